/*
 * test_config.c: the settings table read from defaults, a file, the
 * environment and flags, with bounds and types enforced.
 */
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "unit.h"
#include "util/config.h"

static int init(struct sf_config *c, int argc, char **argv, char *err, size_t errlen)
{
    return config_init(c, &argc, argv, err, errlen);
}

int main(void)
{
    char err[256];
    struct sf_config c;

    unsetenv("SETFORGE_PORT");
    unsetenv("SETFORGE_CONFIG");
    config_defaults(&c);
    CHECK(c.port == 8080 && c.body_limit == 10485760 && c.examples == 1);
    CHECK(c.response_cache_max_age_ms == 1000);
    CHECK(c.generate_rate == 60 && c.generate_rate_window_s == 60);
    CHECK(c.generate_items_per_minute == 200 && c.generate_items_burst == 500);
    CHECK(c.anonymous_queued_items_max == 1000 && c.queue_capacity_items == 100000);
    CHECK(c.generate_access == GENERATE_PUBLIC);
    CHECK_STR(c.bind, "127.0.0.1");
    CHECK_STR(c.db, "var/setforge.db");
    config_free(&c);

    /* config_set: names with - or _, bounds, types */
    config_defaults(&c);
    CHECK(config_set(&c, "port", "9000", err, sizeof(err)) == 0 && c.port == 9000);
    CHECK(config_set(&c, "body-limit", "2048", err, sizeof(err)) == 0 && c.body_limit == 2048);
    CHECK(config_set(&c, "port", "99999", err, sizeof(err)) < 0 && strstr(err, "port"));
    CHECK(config_set(&c, "port", "0", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "port", "abc", err, sizeof(err)) < 0 && strstr(err, "not an integer"));
    CHECK(config_set(&c, "port", "80x", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "port", "", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "examples", "off", err, sizeof(err)) == 0 && c.examples == 0);
    CHECK(config_set(&c, "examples", "YES", err, sizeof(err)) == 0 && c.examples == 1);
    CHECK(config_set(&c, "examples", "maybe", err, sizeof(err)) < 0 && strstr(err, "boolean"));
    CHECK(config_set(&c, "bind", "0.0.0.0", err, sizeof(err)) == 0);
    CHECK(config_set(&c, "bind", "localhost", err, sizeof(err)) < 0 && strstr(err, "IPv4"));
    CHECK(config_set(&c, "db", "", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "nope", "1", err, sizeof(err)) < 0 && strstr(err, "unknown setting"));
    CHECK(config_set(&c, "response-cache-max-age-ms", "50", err, sizeof(err)) == 0 &&
          c.response_cache_max_age_ms == 50);
    CHECK(config_set(&c, "response_cache_max_age_ms", "0", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "generate-rate-window-s", "2", err, sizeof(err)) == 0 && c.generate_rate_window_s == 2);
    CHECK(config_set(&c, "generate_rate_window_s", "0", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "generate-items-per-minute", "0", err, sizeof(err)) == 0 &&
          c.generate_items_per_minute == 0);
    CHECK(config_set(&c, "generate_items_burst", "0", err, sizeof(err)) < 0 && strstr(err, "1..1000000"));
    CHECK(config_set(&c, "anonymous_queued_items_max", "-1", err, sizeof(err)) < 0);
    CHECK(config_set(&c, "queue-capacity-items", "7", err, sizeof(err)) == 0 && c.queue_capacity_items == 7);
    /* a choice: one of its names, exactly; stored as the enum's value */
    CHECK(config_set(&c, "generate-access", "admin", err, sizeof(err)) == 0 &&
          c.generate_access == GENERATE_ADMIN);
    CHECK(config_set(&c, "generate_access", "token", err, sizeof(err)) == 0 &&
          c.generate_access == GENERATE_TOKEN);
    CHECK(config_set(&c, "generate_access", "public", err, sizeof(err)) == 0 &&
          c.generate_access == GENERATE_PUBLIC);
    CHECK(config_set(&c, "generate_access", "Admin", err, sizeof(err)) < 0 &&
          strstr(err, "generate_access: \"Admin\" is not one of public, token, admin"));
    CHECK(config_set(&c, "generate_access", "", err, sizeof(err)) < 0);
    CHECK(c.generate_access == GENERATE_PUBLIC); /* a refused value changes nothing */
    config_free(&c);

    /* precedence: file < environment < flags; other flags are kept */
    char path[] = "/tmp/sf-config-XXXXXX";
    int fd = mkstemp(path);
    const char *json = "{\"port\": 7000, \"threads\": 3, \"examples\": false, \"endpoints\": [], "
                       "\"generate_access\": \"token\"}";
    CHECK(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    setenv("SETFORGE_THREADS", "5", 1);
    char *argv1[] = {"setforge", "serve", "--config", path, "--admin", "--threads=7", NULL};
    CHECK(init(&c, 6, argv1, err, sizeof(err)) == 0);
    CHECK(c.port == 7000);   /* from the file */
    CHECK(c.threads == 7);   /* the flag beats env and file */
    CHECK(c.examples == 0);
    CHECK(c.generate_access == GENERATE_TOKEN); /* a choice from the file */
    CHECK(c.endpoints && json_is_array(c.endpoints));
    CHECK_STR(argv1[1], "serve");
    CHECK_STR(argv1[2], "--admin"); /* not a setting: left for the subcommand */
    config_free(&c);

    char *argv2[] = {"setforge", "serve", "--config", path, NULL};
    CHECK(init(&c, 4, argv2, err, sizeof(err)) == 0 && c.threads == 5); /* env beats file */
    config_free(&c);
    unsetenv("SETFORGE_THREADS");

    setenv("SETFORGE_PORT", "70000", 1);
    char *argv3[] = {"setforge", "serve", NULL};
    CHECK(init(&c, 2, argv3, err, sizeof(err)) < 0 && strstr(err, "SETFORGE_PORT"));
    config_free(&c);
    unsetenv("SETFORGE_PORT");

    char *argv4[] = {"setforge", "serve", "--port", NULL};
    CHECK(init(&c, 3, argv4, err, sizeof(err)) < 0 && strstr(err, "needs a value"));
    config_free(&c);

    /* bad files: unknown key, wrong type, not JSON, missing */
    const char *bad[] = {"{\"prot\": 1}", "{\"port\": [1]}", "{\"port\": 1.5}", "not json",
                         "[1, 2]", "{\"port\": 1, \"port\": 2}", "{\"endpoints\": {}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fd = open(path, O_WRONLY | O_TRUNC);
        CHECK(write(fd, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]));
        close(fd);
        config_defaults(&c);
        CHECK(config_load_file(&c, path, err, sizeof(err)) < 0 && strstr(err, path));
        config_free(&c);
    }
    unlink(path);
    config_defaults(&c);
    CHECK(config_load_file(&c, "/nonexistent/sf.json", err, sizeof(err)) < 0);
    config_free(&c);
    UNIT_END("config");
}
