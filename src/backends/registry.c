/*
 * registry.c: from one "endpoints" entry of the config to a backend.
 *
 * backend_from_config() (declared in backend.h) is the only way the daemon
 * builds backends: it checks the fields every endpoint has, then hands the
 * entry to the constructor its "type" names. Messages always start with the
 * entry ('endpoints[2] ("gpu2"): ...') because a config with eight GPUs is
 * otherwise a guessing game. The helpers the constructors share for that
 * (be_parse_common, be_parse_url, be_errf) live here too, being the same
 * job: reading an endpoint entry.
 *
 * What the real backends share beyond that has rooms of its own: the HTTP
 * client (http_client.c), error texts of HTTP answers (errtext.c), LoRA
 * entries (lora.c); base64, files and one-line text are in util/.
 */
#include "backends/backends_real.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---- endpoint entries ---- */

struct sf_backend *backend_alloc(const struct sf_backend_ops *ops, const char *name,
                                 int concurrency, int timeout_s, void *state)
{
    struct sf_backend *b = xcalloc(1, sizeof *b);
    b->ops = ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->concurrency = concurrency;
    b->timeout_s = timeout_s;
    b->state = state;
    return b;
}

void be_errf(char *err, size_t errlen, int index, const char *name, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    int n;
    if (name && *name)
        n = snprintf(err, errlen, "endpoints[%d] (\"%s\"): ", index, name);
    else
        n = snprintf(err, errlen, "endpoints[%d]: ", index);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Reads an optional integer field in [lo, hi]; 0, or -1 with err written. */
static int int_field(const json_t *ep, const char *key, long long lo, long long hi,
                     long long dflt, long long *out, int index, const char *name,
                     char *err, size_t errlen)
{
    const json_t *v = json_object_get(ep, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        be_errf(err, errlen, index, name, "%s must be an integer from %lld to %lld", key, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int be_parse_common(const json_t *ep, int index, int default_timeout_s,
                    struct be_common *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(ep)) {
        be_errf(err, errlen, index, NULL, "must be an object");
        return -1;
    }
    const json_t *jn = json_object_get(ep, "name");
    if (!json_is_string(jn) || json_string_length(jn) == 0) {
        be_errf(err, errlen, index, NULL, "name is required (a non-empty string)");
        return -1;
    }
    const char *name = json_string_value(jn);
    if (json_string_length(jn) > sizeof out->name - 1) {
        be_errf(err, errlen, index, NULL, "name must be at most %zu characters",
                sizeof out->name - 1);
        return -1;
    }
    /* The name ends up in log lines, error messages and image metadata. */
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            be_errf(err, errlen, index, NULL, "name must not contain control characters");
            return -1;
        }
    snprintf(out->name, sizeof out->name, "%s", name);
    long long v;
    if (int_field(ep, "concurrency", 1, 64, 1, &v, index, name, err, errlen) < 0)
        return -1;
    out->concurrency = (int)v;
    if (int_field(ep, "timeout_s", 1, 86400, default_timeout_s, &v, index, name, err, errlen) < 0)
        return -1;
    out->timeout_s = (int)v;
    return 0;
}

char *be_parse_url(const json_t *ep, int index, const char *name, char *err, size_t errlen)
{
    const json_t *ju = json_object_get(ep, "url");
    if (!json_is_string(ju) || json_string_length(ju) == 0) {
        be_errf(err, errlen, index, name, "url is required (e.g. \"http://127.0.0.1:7860\")");
        return NULL;
    }
    const char *u = json_string_value(ju);
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip) {
        be_errf(err, errlen, index, name, "url must start with http:// or https://");
        return NULL;
    }
    if (json_string_length(ju) > 2000) {
        be_errf(err, errlen, index, name, "url is too long");
        return NULL;
    }
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            be_errf(err, errlen, index, name, "url must not contain spaces or control characters");
            return NULL;
        }
    size_t host_len = strcspn(u + skip, "/?#");
    if (host_len == 0) {
        be_errf(err, errlen, index, name, "url has no host");
        return NULL;
    }
    if (memchr(u + skip, '@', host_len)) {
        be_errf(err, errlen, index, name,
                "url must not hold credentials; put \"user:pass\" in auth");
        return NULL;
    }
    if (strpbrk(u, "?#")) { /* routes are appended to it */
        be_errf(err, errlen, index, name, "url must not have a query or fragment");
        return NULL;
    }
    size_t n = strlen(u);
    while (n > skip && u[n - 1] == '/')
        n--;
    return xstrndup(u, n);
}

/* Fields a type knows; anything else is probably a typo, worth a warning
 * (not an error: a newer config must still load on an older daemon). */
static void warn_unknown_fields(const json_t *ep, int index, const char *const *known)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)ep, key, val) {
        (void)val;
        int found = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, key) == 0)
                found = 1;
        if (!found)
            log_warn("endpoints[%d]: unknown field \"%s\" ignored", index, key);
    }
}

struct sf_backend *backend_from_config(const json_t *endpoint, int index, char *err,
                                       size_t errlen)
{
    static const char *const known_a1111[] = {"name", "type", "url", "concurrency",
                                              "timeout_s", "auth", "flavor", "sampler",
                                              "checkpoint", NULL};
    static const char *const known_comfy[] = {"name", "type", "url", "concurrency",
                                              "timeout_s", "workflow", NULL};
    static const char *const known_cmd[] = {"name", "type", "argv", "concurrency",
                                            "timeout_s", NULL};
    static const char *const known_proc[] = {"name", "type", "concurrency", "timeout_s",
                                             "delay_ms", NULL};
    struct be_common c;
    if (be_parse_common(endpoint, index, 600, &c, err, errlen) < 0)
        return NULL;
    const char *type = json_string_value(json_object_get(endpoint, "type"));
    if (!type) {
        be_errf(err, errlen, index, c.name,
                "type must be one of a1111, comfyui, command, procedural");
        return NULL;
    }
    if (strcmp(type, "a1111") == 0) {
        warn_unknown_fields(endpoint, index, known_a1111);
        return a1111_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "comfyui") == 0) {
        warn_unknown_fields(endpoint, index, known_comfy);
        return comfyui_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "command") == 0) {
        warn_unknown_fields(endpoint, index, known_cmd);
        return command_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "procedural") == 0) {
        warn_unknown_fields(endpoint, index, known_proc);
        long long delay;
        if (int_field(endpoint, "delay_ms", 0, 3600000, 0, &delay, index, c.name, err,
                      errlen) < 0)
            return NULL;
        struct sf_backend *b = procedural_backend_new(c.name, c.concurrency, delay);
        if (!b)
            be_errf(err, errlen, index, c.name, "cannot create the procedural backend");
        return b;
    }
    be_errf(err, errlen, index, c.name,
            "type must be one of a1111, comfyui, command, procedural");
    return NULL;
}

/* ---- the endpoint list ---- */

int backends_build(const json_t *endpoints, int default_workers, long long procedural_delay_ms,
                   struct sf_backend ***out, int *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    size_t count = json_array_size(endpoints); /* 0 for NULL or a non-array */
    if (count == 0) {
        /* No endpoints configured: the built-in drawer, `workers` wide. */
        struct sf_backend **list = xcalloc(1, sizeof *list);
        list[0] = procedural_backend_new("procedural", default_workers, procedural_delay_ms);
        *out = list;
        *n = 1;
        return 0;
    }
    struct sf_backend **list = xcalloc(count, sizeof *list);
    for (size_t i = 0; i < count; i++) {
        list[i] = backend_from_config(json_array_get(endpoints, i), (int)i, err, errlen);
        if (!list[i])
            goto fail;
        /* The name labels health, metrics and every image: it must say
         * which GPU did what. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[j]->name, list[i]->name) == 0) {
                snprintf(err, errlen, "endpoints[%d]: the name \"%s\" is used twice", (int)i,
                         list[i]->name);
                goto fail;
            }
    }
    *out = list;
    *n = (int)count;
    return 0;
fail:
    backends_destroy(list, (int)count);
    return -1;
}

void backends_destroy(struct sf_backend **list, int n)
{
    for (int i = 0; list && i < n; i++)
        if (list[i])
            list[i]->ops->destroy(list[i]);
    free(list);
}
