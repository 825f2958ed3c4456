/*
 * main.c: the command line. `setforge serve | migrate | token ...`.
 *
 * Every subcommand reads the settings table (util/config.c) the same way,
 * then does its one job. Bad usage exits 2 with a message; runtime failures
 * exit 1.
 *
 * Signals: serve blocks SIGTERM/SIGINT in every thread before starting any,
 * and the main thread waits for them with sigwait(). No code runs in a
 * signal handler at all.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>

#include "api/api.h"
#include "cli/cli.h"
#include "http/router.h"
#include "http/server.h"
#include "queue/engine.h"
#include "queue/webhook_sender.h"
#include "queue/scraper.h"
#include "setforge.h"
#include "store/db.h"
#include "store/examples.h"
#include "store/runs.h"
#include "store/tokens.h"
#include "util/config.h"
#include "util/fdlimit.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/netfilter.h"

static void usage(FILE *out)
{
    fprintf(out,
            "setforge %s: turns a list into a set of pictures\n\n"
            "usage:\n"
            "  setforge serve [--port 8080] [--bind 127.0.0.1] [--db PATH] [--data-dir DIR] ...\n"
            "  setforge migrate [--db PATH]\n"
            "  setforge token create [--admin] [--name NAME] [--db PATH]\n"
            "  setforge token list [--db PATH]\n"
            "  setforge token revoke ID [--db PATH]\n"
            "  setforge routes [--json]        the route table of this binary\n\n"
            "Every command above takes --config FILE and the settings of `setforge serve --help`.\n\n"
            "As a client of a running daemon (docs/client.md):\n",
            SETFORGE_VERSION);
    cli_usage(out);
}

/* Creates the directories above path when they are missing; opening the
 * file then says what is wrong if this could not. */
static void ensure_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    if (mkdir_p(dir, 0755) < 0)
        fprintf(stderr, "setforge: cannot create %s: %s\n", dir, strerror(errno));
}

static int open_db(const struct sf_config *cfg)
{
    char err[512];
    ensure_parent_dir(cfg->db);
    /* The database holds token hashes and every prompt: a new one is made
     * readable by its owner only (its -wal and -shm files follow it). */
    int fd = open(cfg->db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    if (db_open(cfg->db, err, sizeof(err)) < 0) {
        fprintf(stderr, "setforge: database %s: %s\n", cfg->db, err);
        return -1;
    }
    return 0;
}

static void print_token(void *ctx, const struct sf_token_row *t)
{
    fprintf(ctx, "%-6lld %-6s %-24s %-22s %s\n", t->id, t->is_admin ? "yes" : "no", t->name,
            t->created_at, t->revoked_at);
}

/* `setforge token list`: one line per token, never its secret. */
static sf_status print_tokens(FILE *out)
{
    fprintf(out, "%-6s %-6s %-24s %-22s %s\n", "ID", "ADMIN", "NAME", "CREATED", "REVOKED");
    return tokens_each(print_token, out);
}

static int refuse_extra(int argc, char **argv, int from)
{
    if (argc > from) {
        fprintf(stderr, "setforge: unknown argument \"%s\" (see setforge --help)\n", argv[from]);
        return 2;
    }
    return 0;
}

static int cmd_migrate(struct sf_config *cfg, int argc, char **argv)
{
    int rc = refuse_extra(argc, argv, 2);
    if (rc)
        return rc;
    if (open_db(cfg) < 0)
        return 1;
    printf("database %s is at schema version %d\n", cfg->db, db_schema_version());
    return 0;
}

static int cmd_token(struct sf_config *cfg, int argc, char **argv)
{
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[2];
    if (strcmp(sub, "create") == 0) {
        int admin = 0;
        const char *name = NULL;
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--admin") == 0)
                admin = 1;
            else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                name = argv[++i];
            else if (strncmp(argv[i], "--name=", 7) == 0)
                name = argv[i] + 7;
            else
                return refuse_extra(argc, argv, i);
        }
        if (open_db(cfg) < 0)
            return 1;
        char secret[TOKEN_SECRET_LEN + 1];
        long long id;
        if (tokens_create(name ? name : (admin ? "admin" : "token"), admin, secret, &id) != SF_OK) {
            fprintf(stderr, "setforge: cannot create the token\n");
            return 1;
        }
        printf("created %s token %lld; it is shown only this once:\n%s\n",
               admin ? "admin" : "non-admin", id, secret);
        return 0;
    }
    if (strcmp(sub, "list") == 0) {
        int rc = refuse_extra(argc, argv, 3);
        if (rc)
            return rc;
        if (open_db(cfg) < 0)
            return 1;
        return print_tokens(stdout) == SF_OK ? 0 : 1;
    }
    if (strcmp(sub, "revoke") == 0) {
        char *end;
        long long id = argc == 4 ? strtoll(argv[3], &end, 10) : 0;
        if (argc != 4 || *end || id < 1) {
            fprintf(stderr, "setforge: usage: setforge token revoke ID\n");
            return 2;
        }
        if (open_db(cfg) < 0)
            return 1;
        sf_status st = tokens_revoke(id);
        if (st == SF_ENOTFOUND) {
            fprintf(stderr, "setforge: no live token %lld\n", id);
            return 1;
        }
        if (st != SF_OK)
            return 1;
        printf("token %lld revoked\n", id);
        return 0;
    }
    usage(stderr);
    return 2;
}

/*
 * `setforge routes [--json]`: the route table compiled into this binary
 * (api/routes.c), one row per method and pattern with its auth level and
 * whether it takes a JSON body. tests/blackbox/test_openapi.py compares it
 * with docs/openapi.json both ways, so it prints the table as it is, not a
 * copy kept by hand.
 */
static int cmd_routes(int argc, char **argv)
{
    int as_json = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else
            return refuse_extra(argc, argv, i);
    }
    if (as_json) {
        json_t *rows = json_array();
        for (size_t i = 0; i < sf_nroutes; i++) {
            const struct route *r = &sf_routes[i];
            json_array_append_new(rows, json_pack("{ssssssss}", "method", r->method, "pattern",
                                                  r->pattern, "auth",
                                                  r->auth == ROUTE_ADMIN ? "admin" : "public",
                                                  "body", r->body == BODY_JSON ? "json" : "none"));
        }
        json_dumpf(rows, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(rows);
        return 0;
    }
    printf("%-7s %-45s %-7s %s\n", "METHOD", "PATTERN", "AUTH", "BODY");
    for (size_t i = 0; i < sf_nroutes; i++) {
        const struct route *r = &sf_routes[i];
        printf("%-7s %-45s %-7s %s\n", r->method, r->pattern,
               r->auth == ROUTE_ADMIN ? "admin" : "public", r->body == BODY_JSON ? "json" : "-");
    }
    return 0;
}

/* The worker slots a run's ETA is spread over: none while the queue is
 * paused, so no event promises a time then (store/runs.c). */
static int eta_slots(void)
{
    return engine_queue_paused() ? 0 : engine_parallelism();
}

static int cmd_serve(struct sf_config *cfg, int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: setforge serve [settings]\n\n");
            config_print_help(stdout);
            return 0;
        }
    int rc = refuse_extra(argc, argv, 2);
    if (rc)
        return rc;

    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Before anything opens a file: the whole fd budget, so a flood of
     * connections cannot starve the database (util/fdlimit.h). */
    long fd_before, fd_limit = fd_limit_raise(&fd_before);

    if (open_db(cfg) < 0)
        return 1;
    /* Private images live here too (docs/visibility.md): a new data
     * directory is the owner's only. */
    if (mkdir_p(cfg->data_dir, 0700) < 0) {
        fprintf(stderr, "setforge: cannot create data dir %s: %s\n", cfg->data_dir, strerror(errno));
        return 1;
    }
    char err[512];
    /* Endpoints are checked before anything is written: a bad config
     * changes nothing. */
    runs_eta_source(eta_slots);
    int erc = engine_start(cfg, stream_notify, err, sizeof(err));
    if (erc < 0) {
        fprintf(stderr, "setforge: %s\n", err);
        return erc == -2 ? 2 : 1;
    }
    if (webhook_sender_start(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "setforge: %s\n", err);
        return 1;
    }
    if (cfg->examples) {
        int seeded;
        if (examples_seed(&seeded) != SF_OK) {
            fprintf(stderr, "setforge: cannot seed the example templates\n");
            return 1;
        }
        if (seeded)
            log_info("seeded the example templates (playing cards, tarot, zodiac)");
    }
    if (tokens_count() == 0) {
        char secret[TOKEN_SECRET_LEN + 1];
        long long id;
        if (tokens_create("admin", 1, secret, &id) != SF_OK) {
            fprintf(stderr, "setforge: cannot create the first admin token\n");
            return 1;
        }
        printf("First start: created admin token %lld. It is shown only this once; keep it:\n%s\n",
               id, secret);
    }

    if (cfg->outbound_addresses == NET_ALLOW_PRIVATE)
        log_warn("outbound_addresses is all: scrape jobs and webhooks may reach loopback, "
                 "private and link-local addresses (docs/security.md)");
    else if (cfg->outbound_addresses == NET_DENY_127_0_0_1)
        log_warn("outbound_addresses is test_deny_127_0_0_1, a setting for tests: only "
                 "127.0.0.1 is refused to scrape jobs and webhooks");

    long reserve = fd_reserve(cfg->threads, engine_parallelism());
    long conns = fd_conn_limit(fd_limit, reserve, cfg->conn_limit);
    log_info("open files: limit %ld (was %ld); %ld kept for the database, images and backends; "
             "conn_limit %ld", fd_limit, fd_before, reserve, conns);
    if (conns < cfg->conn_limit) {
        /* The per-address share shrinks with the slots, so a few addresses
         * still cannot take them all (docs/operations.md). */
        long long per_ip = cfg->per_ip_limit * conns / cfg->conn_limit;
        per_ip = per_ip < 4 ? 4 : (per_ip > conns ? conns : per_ip);
        log_warn("conn_limit %lld does not fit in %ld open files; using %ld, and per_ip_limit "
                 "%lld (raise `ulimit -n`)", cfg->conn_limit, fd_limit, conns, per_ip);
        cfg->conn_limit = conns;
        cfg->per_ip_limit = per_ip;
    }

    if (scraper_start(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "setforge: %s\n", err);
        return 1;
    }
    if (db_checkpointer_start() < 0) {
        fprintf(stderr, "setforge: cannot start the checkpoint thread\n");
        return 1;
    }
    static struct sf_server srv;
    if (server_start(&srv, cfg, &sf_api_app, err, sizeof(err)) < 0) {
        fprintf(stderr, "setforge: %s\n", err);
        db_checkpointer_stop();
        return 1;
    }
    printf("setforge %s listening on http://%s:%lld/ (database %s)\n", SETFORGE_VERSION,
           cfg->bind, cfg->port, cfg->db);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    log_info("received signal %d, stopping", sig);
    server_stop(&srv); /* event streams end first, instead of holding it up */
    webhook_sender_stop(); /* an attempt under way stays pending for the next start */
    engine_stop();
    scraper_stop();
    db_checkpointer_stop();
    db_close_thread();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "routes") == 0)
        return cmd_routes(argc, argv);
    /* The client commands talk to a daemon over HTTP and read no settings:
     * they take their own flags (src/cli/cli.h). */
    if (cli_is_command(argv[1]))
        return cli_main(argc, argv);
    if (strcmp(argv[1], "--version") == 0) {
        printf("setforge %s\n", SETFORGE_VERSION);
        return 0;
    }
    struct sf_config cfg;
    char err[512];
    if (config_init(&cfg, &argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "setforge: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    int rc;
    if (strcmp(argv[1], "serve") == 0)
        rc = cmd_serve(&cfg, argc, argv);
    else if (strcmp(argv[1], "migrate") == 0)
        rc = cmd_migrate(&cfg, argc, argv);
    else if (strcmp(argv[1], "token") == 0)
        rc = cmd_token(&cfg, argc, argv);
    else {
        fprintf(stderr, "setforge: unknown command \"%s\"\n", argv[1]);
        usage(stderr);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
