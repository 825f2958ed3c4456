/*
 * config.c: the declarative settings table and its three readers.
 *
 * Like redis's config.c, each setting is a row: name, type, bounds, default,
 * help, and where it lives in struct sf_config. Every reader turns its input
 * into text and calls config_set(), so a value means the same thing whether
 * it came from the file, the environment or a flag.
 */
#include "util/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/stdwebhook.h"
#include "util/xalloc.h"

/* SETTING_CHOICE: one of the names in choices, stored as its index (an
 * int, the value of the enum the names stand for). */
enum setting_type { SETTING_INT, SETTING_STRING, SETTING_BOOL, SETTING_CHOICE };

struct setting {
    const char *name;
    enum setting_type type;
    long long min, max;
    const char *def;
    const char *help;
    size_t offset;
    /* optional extra check of a text value: 0 ok, -1 with a reason */
    int (*check)(const char *value, char *why, size_t whylen);
    const char *const *choices; /* SETTING_CHOICE: the names, NULL-terminated */
};

/* In the order of enum generate_access (config.h). */
static const char *const generate_access_names[] = {"public", "token", "admin", NULL};
/* In enum net_policy order (util/netfilter.h). */
static const char *const outbound_addresses_names[] = {"public", "all", "test_deny_127_0_0_1", NULL};

static int check_ipv4(const char *v, char *why, size_t whylen)
{
    struct in_addr a;
    if (inet_pton(AF_INET, v, &a) == 1)
        return 0;
    snprintf(why, whylen, "\"%s\" is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)", v);
    return -1;
}

static int check_not_empty(const char *v, char *why, size_t whylen)
{
    if (*v)
        return 0;
    snprintf(why, whylen, "must not be empty");
    return -1;
}

#define OFF(field) offsetof(struct sf_config, field), NULL, NULL
#define OFFC(field, check) offsetof(struct sf_config, field), check, NULL
#define CHOICE(field, names) offsetof(struct sf_config, field), NULL, names

static const struct setting settings[] = {
    {"port", SETTING_INT, 1, 65535, "8080", "TCP port to listen on", OFF(port)},
    {"bind", SETTING_STRING, 0, 0, "127.0.0.1", "IPv4 address to listen on", OFFC(bind, check_ipv4)},
    {"db", SETTING_STRING, 0, 0, "var/setforge.db", "SQLite database file", OFFC(db, check_not_empty)},
    {"data_dir", SETTING_STRING, 0, 0, "var/data", "where image files are stored", OFFC(data_dir, check_not_empty)},
    {"body_limit", SETTING_INT, 1024, 1LL << 30, "10485760", "largest request body in bytes (413 above)", OFF(body_limit)},
    {"threads", SETTING_INT, 1, 256, "4", "HTTP thread pool size", OFF(threads)},
    {"conn_limit", SETTING_INT, 4, 100000, "1024", "most open HTTP connections", OFF(conn_limit)},
    {"per_ip_limit", SETTING_INT, 1, 100000, "64", "most open HTTP connections from one IP (behind a proxy: raise it)", OFF(per_ip_limit)},
    {"conn_timeout", SETTING_INT, 1, 3600, "60", "seconds an idle connection is kept", OFF(conn_timeout)},
    {"request_head_timeout_s", SETTING_INT, 0, 3600, "10", "seconds a client has to send a request's head (0: no deadline)", OFF(request_head_timeout_s)},
    {"request_body_min_bps", SETTING_INT, 0, 1LL << 30, "1024", "bytes a second a request body must arrive at, after request_head_timeout_s", OFF(request_body_min_bps)},
    {"conn_memory", SETTING_INT, 8192, 16 << 20, "32768", "memory per connection for the request head, in bytes", OFF(conn_memory)},
    {"cors_origins", SETTING_STRING, 0, 0, "", "origins allowed by CORS, comma-separated; * for any", OFF(cors_origins)},
    {"examples", SETTING_BOOL, 0, 1, "true", "seed the three example templates on first start", OFF(examples)},
    {"response_cache", SETTING_BOOL, 0, 1, "true", "serve repeated GETs of templates, albums and images from memory until the next write", OFF(response_cache)},
    {"response_cache_max_age_ms", SETTING_INT, 1, 3600000, "1000", "longest a cached answer is served; bounds how late an edit by another process (the sqlite3 shell) shows", OFF(response_cache_max_age_ms)},
    {"access_log", SETTING_BOOL, 0, 1, "true", "log one line per HTTP request to stderr", OFF(access_log)},
    {"workers", SETTING_INT, 1, 256, "2", "worker threads that run queued items", OFF(workers)},
    {"max_attempts", SETTING_INT, 1, 100, "3", "tries per item before it fails", OFF(max_attempts)},
    {"lease_ms", SETTING_INT, 1000, 3600000, "30000", "how long a claimed item stays leased without a heartbeat", OFF(lease_ms)},
    {"procedural_delay_ms", SETTING_INT, 0, 600000, "0", "simulated GPU time per procedural image", OFF(procedural_delay_ms)},
    {"breaker_failures", SETTING_INT, 1, 1000, "3", "transient failures in a row that mark an endpoint down", OFF(breaker_failures)},
    {"breaker_delay_ms", SETTING_INT, 100, 3600000, "1000", "first wait before probing a down endpoint (doubles, up to 60 s)", OFF(breaker_delay_ms)},
    {"adaptive_timeout_floor_s", SETTING_INT, 1, 86400, "30", "shortest deadline of an image once an endpoint's speed is known: max(this, adaptive_timeout_factor x its p95 image time), never above its timeout_s", OFF(adaptive_timeout_floor_s)},
    {"adaptive_timeout_factor", SETTING_INT, 0, 1000, "5", "an endpoint's deadline per image in multiples of its p95 image time (0: always its timeout_s)", OFF(adaptive_timeout_factor)},
    {"generate_rate", SETTING_INT, 0, 1000000, "60", "generate requests per window (generate_rate_window_s) per client IP (0: no limit)", OFF(generate_rate)},
    {"generate_rate_window_s", SETTING_INT, 1, 86400, "60", "length of the generate rate limit's window in seconds (windows start on multiples of it in Unix time)", OFF(generate_rate_window_s)},
    {"generate_items_per_minute", SETTING_INT, 0, 1000000, "200", "items a client without an admin token may queue per minute, on average: the refill of its item bucket (0: no item limit)", OFF(generate_items_per_minute)},
    {"generate_items_burst", SETTING_INT, 1, 1000000, "500", "most items such a client may queue at once: the size of its item bucket (a larger run is refused)", OFF(generate_items_burst)},
    {"anonymous_queued_items_max", SETTING_INT, 0, 100000000, "1000", "most items queued or running at once in runs generated without a token, all such callers together (0: no cap)", OFF(anonymous_queued_items_max)},
    {"queue_capacity_items", SETTING_INT, 0, 100000000, "100000", "most items queued or running at once in all runs, admins' too; above it generate is 503 queue_full (0: no cap)", OFF(queue_capacity_items)},
    {"start_paused", SETTING_BOOL, 0, 1, "false", "start with the queue paused: nothing is drawn until POST /api/queue/resume (docs/run-controls.md)", OFF(start_paused)},
    {"generate_access", SETTING_CHOICE, 0, 2, "public", "who may call generate: public (anyone), token (any token) or admin (an admin token)", CHOICE(generate_access, generate_access_names)},
    {"outbound_addresses", SETTING_CHOICE, 0, 2, "public", "what scrape jobs and webhooks may connect to: public (no loopback, private, link-local or other special ranges), all (also those: sources on your own network), or test_deny_127_0_0_1 (tests only: refuse just 127.0.0.1)", CHOICE(outbound_addresses, outbound_addresses_names)},
    {"webhook_secret", SETTING_STRING, 0, 0, "", "signing secret of run webhooks, whsec_ and base64 of 24 to 64 bytes (Standard Webhooks); empty: generate refuses callback_url. Never printed nor logged", OFFC(webhook_secret, stdwebhook_check_secret)},
    {"webhook_retry_base_ms", SETTING_INT, 1, 3600000, "5000", "wait before a webhook's second attempt, at most; doubles each time, with full jitter (5 attempts in all)", OFF(webhook_retry_base_ms)},
    {"webhook_timeout_ms", SETTING_INT, 100, 600000, "10000", "time a webhook receiver has to answer one attempt", OFF(webhook_timeout_ms)},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static const struct setting *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *s = settings[i].name;
        if (strlen(s) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = name[j] == '-' ? '_' : name[j];
            if (c != s[j])
                break;
        }
        if (j == len)
            return &settings[i];
    }
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "public, token, admin": the names of a choice, into buf; returns buf. */
static const char *choice_list(const struct setting *s, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; s->choices[i] && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", s->choices[i]);
    return buf;
}

static int apply(struct sf_config *c, const struct setting *s, const char *value,
                 char *err, size_t errlen)
{
    char *field = (char *)c + s->offset;
    switch (s->type) {
    case SETTING_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end != '\0' || isspace((unsigned char)*value)) {
            snprintf(err, errlen, "%s: \"%s\" is not an integer", s->name, value);
            return -1;
        }
        if (v < s->min || v > s->max) {
            snprintf(err, errlen, "%s: %lld is outside %lld..%lld", s->name, v, s->min, s->max);
            return -1;
        }
        *(long long *)(void *)field = v;
        return 0;
    }
    case SETTING_BOOL: {
        int b;
        if (parse_bool(value, &b) < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not a boolean (true/false)", s->name, value);
            return -1;
        }
        *(int *)(void *)field = b;
        return 0;
    }
    case SETTING_CHOICE: {
        for (int i = 0; s->choices[i]; i++)
            if (strcmp(value, s->choices[i]) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
        char names[160];
        snprintf(err, errlen, "%s: \"%s\" is not one of %s", s->name, value,
                 choice_list(s, names, sizeof(names)));
        return -1;
    }
    case SETTING_STRING: {
        char **p = (char **)(void *)field;
        char why[160];
        if (s->check && s->check(value, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s: %s", s->name, why);
            return -1;
        }
        free(*p);
        *p = xstrdup(value);
        return 0;
    }
    }
    return -1;
}

int config_set(struct sf_config *c, const char *name, const char *value,
               char *err, size_t errlen)
{
    const struct setting *s = find_setting(name, strlen(name));
    if (!s) {
        snprintf(err, errlen, "unknown setting \"%s\" (see `setforge serve --help`)", name);
        return -1;
    }
    return apply(c, s, value, err, errlen);
}

void config_defaults(struct sf_config *c)
{
    char err[128];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NSETTINGS; i++)
        if (apply(c, &settings[i], settings[i].def, err, sizeof(err)) < 0)
            abort(); /* a bad default is a bug in the table */
}

void config_free(struct sf_config *c)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].type == SETTING_STRING) {
            char **p = (char **)(void *)((char *)c + settings[i].offset);
            free(*p);
            *p = NULL;
        }
    free(c->config_path);
    c->config_path = NULL;
    json_decref(c->endpoints);
    c->endpoints = NULL;
}

int config_load_file(struct sf_config *c, const char *path, char *err,
                     size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "config %s: line %d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config %s: must be a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "endpoints") == 0) {
            if (!json_is_array(val)) {
                snprintf(err, errlen, "config %s: endpoints must be an array", path);
                goto out;
            }
            json_decref(c->endpoints);
            c->endpoints = json_incref(val);
            continue;
        }
        char text[64];
        const char *v;
        if (json_is_string(val))
            v = json_string_value(val);
        else if (json_is_integer(val)) {
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
            v = text;
        } else if (json_is_boolean(val))
            v = json_is_true(val) ? "true" : "false";
        else {
            snprintf(err, errlen, "config %s: %s must be a string, integer or boolean", path, key);
            goto out;
        }
        char inner[256];
        if (config_set(c, key, v, inner, sizeof(inner)) < 0) {
            snprintf(err, errlen, "config %s: %s", path, inner);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int config_load_env(struct sf_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char var[64] = "SETFORGE_";
        size_t n = strlen(var);
        for (const char *p = settings[i].name; *p && n < sizeof(var) - 1; p++)
            var[n++] = (char)toupper((unsigned char)*p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (!v)
            continue;
        char inner[256];
        if (apply(c, &settings[i], v, inner, sizeof(inner)) < 0) {
            snprintf(err, errlen, "environment %s: %s", var, inner);
            return -1;
        }
    }
    return 0;
}

/* Finds --config in argv (either form) before anything else is read. */
static const char *scan_config_flag(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return getenv("SETFORGE_CONFIG");
}

int config_init(struct sf_config *c, int *argc, char **argv, char *err,
                size_t errlen)
{
    config_defaults(c);
    const char *path = scan_config_flag(*argc, argv);
    if (path) {
        c->config_path = xstrdup(path);
        if (config_load_file(c, path, err, errlen) < 0)
            return -1;
    }
    if (config_load_env(c, err, errlen) < 0)
        return -1;

    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            argv[out++] = argv[i];
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        const struct setting *s = find_setting(name, len);
        if (!s) {
            argv[out++] = argv[i]; /* the subcommand's own flag */
            continue;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (i + 1 < *argc)
            value = argv[++i];
        else {
            snprintf(err, errlen, "--%s needs a value", s->name);
            return -1;
        }
        char inner[256];
        if (apply(c, s, value, inner, sizeof(inner)) < 0) {
            snprintf(err, errlen, "--%s", inner);
            return -1;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out, "Settings (flag, environment variable, or key of the JSON --config file;\n"
                 "flags win over the environment, which wins over the file):\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char flag[64], env[64], names[160];
        size_t n = 0;
        for (const char *p = s->name; *p; p++)
            flag[n++] = *p == '_' ? '-' : *p;
        flag[n] = '\0';
        n = 0;
        for (const char *p = s->name; *p; p++)
            env[n++] = (char)toupper((unsigned char)*p);
        env[n] = '\0';
        const char *type = s->type == SETTING_INT ? "int" : s->type == SETTING_BOOL ? "bool" : "text";
        fprintf(out, "  --%-20s SETFORGE_%-20s %s\n", flag, env, s->help);
        if (s->type == SETTING_INT)
            fprintf(out, "  %-22s %s %lld..%lld, default %s\n\n", "", type, s->min, s->max, s->def);
        else if (s->type == SETTING_CHOICE)
            fprintf(out, "  %-22s one of %s, default \"%s\"\n\n", "", choice_list(s, names, sizeof(names)),
                    s->def);
        else
            fprintf(out, "  %-22s %s, default \"%s\"\n\n", "", type, s->def);
    }
    fprintf(out, "  --config FILE          SETFORGE_CONFIG           JSON file of the settings above\n");
}
