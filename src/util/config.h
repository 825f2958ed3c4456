/*
 * config.h: every setting of the daemon, declared once.
 *
 * One table (config.c) names each setting with its type, bounds, default
 * and help line. The same table is read from a JSON config file, from
 * SETFORGE_<NAME> environment variables and from --name flags, in that order
 * of increasing precedence, and printed by `setforge serve --help`. A bad
 * value anywhere is refused with a sentence naming the setting and source;
 * the caller exits 2.
 */
#ifndef SF_CONFIG_H
#define SF_CONFIG_H

#include <jansson.h>
#include <stdio.h>

struct sf_config {
    long long port;
    char *bind;
    char *db;
    char *data_dir;
    long long body_limit;
    long long threads;
    long long conn_limit;
    long long per_ip_limit;
    long long conn_timeout;
    long long request_head_timeout_s;
    long long request_body_min_bps;
    long long conn_memory;
    char *cors_origins;
    int examples;
    int access_log;
    int response_cache;
    long long response_cache_max_age_ms;
    long long workers;
    long long max_attempts;
    long long lease_ms;
    long long procedural_delay_ms;
    long long generate_rate;
    long long generate_rate_window_s;
    long long generate_items_per_minute;
    long long generate_items_burst;
    long long anonymous_queued_items_max;
    long long queue_capacity_items;
    int generate_access; /* enum generate_access */
    int outbound_addresses; /* enum net_policy (util/netfilter.h) */
    char *webhook_secret; /* "" or whsec_<base64>: never logged nor printed */
    long long webhook_retry_base_ms;
    long long webhook_timeout_ms;
    long long breaker_failures;
    long long breaker_delay_ms;
    long long adaptive_timeout_floor_s;
    long long adaptive_timeout_factor;
    int start_paused;
    char *config_path;
    json_t *endpoints; /* "endpoints" array of the config file, or NULL */
};

/* Who may call generate (the generate_access setting). */
enum generate_access { GENERATE_PUBLIC, GENERATE_TOKEN, GENERATE_ADMIN };

/* Fills c with every default. */
void config_defaults(struct sf_config *c);
/* Frees what c owns (strings, endpoints). */
void config_free(struct sf_config *c);

/*
 * Sets one setting from text. name may use '_' or '-'. Returns 0, or -1
 * with a sentence in err ("port: 99999 is above the maximum 65535").
 */
int config_set(struct sf_config *c, const char *name, const char *value,
               char *err, size_t errlen);

/* Reads a JSON object file of settings; 0 or -1 with err. */
int config_load_file(struct sf_config *c, const char *path, char *err,
                     size_t errlen);

/* Applies every SETFORGE_<NAME> variable that is set; 0 or -1 with err. */
int config_load_env(struct sf_config *c, char *err, size_t errlen);

/*
 * The whole start-up sequence: defaults, then the file named by --config or
 * SETFORGE_CONFIG, then the environment, then the flags in argv. Flags that
 * are not settings are left in argv (compacted, *argc updated) for the
 * subcommand, which must refuse any it does not know. 0 or -1 with err.
 */
int config_init(struct sf_config *c, int *argc, char **argv, char *err,
                size_t errlen);

/* Prints the settings table (flag, env, default, bounds, help). */
void config_print_help(FILE *out);

#endif
