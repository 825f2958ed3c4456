/*
 * metrics.c: GET /metrics in the Prometheus text format (version 0.0.4).
 * Counts that live in the database (runs and items by status) are read at
 * scrape time; the rest are counters kept in memory since start.
 */
#include "api/api.h"

#include "http/router.h"
#include "http/server.h"
#include "queue/bus.h"
#include "queue/engine.h"
#include "store/db.h"
#include "util/xalloc.h"

static const char SQL_RUNS[] = "SELECT status, count(*) FROM runs GROUP BY status";
static const char SQL_ITEMS[] = "SELECT status, count(*) FROM run_items GROUP BY status";

static void by_status(struct strbuf *sb, const char *sql, const char *name, const char *help)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    sqlite3_stmt *st = db_stmt(sql);
    while (sqlite3_step(st) == SQLITE_ROW)
        sb_printf(sb, "%s{status=\"%s\"} %lld\n", name, db_col_text(st, 0),
                  (long long)sqlite3_column_int64(st, 1));
    db_done(st);
}

sf_status get_metrics(struct sf_request *req, struct sf_response *res)
{
    struct strbuf sb;
    sb_init(&sb);
    by_status(&sb, SQL_RUNS, "setforge_runs", "Runs by status.");
    by_status(&sb, SQL_ITEMS, "setforge_items", "Run items by status.");
    engine_metrics(&sb);
    sb_printf(&sb, "# HELP setforge_event_streams Open Server-Sent Event streams.\n"
                   "# TYPE setforge_event_streams gauge\nsetforge_event_streams %d\n",
              bus_count());
    unsigned long ck_thread, ck_inline;
    db_checkpoint_counts(&ck_thread, &ck_inline);
    sb_printf(&sb, "# HELP setforge_db_checkpoints_total WAL checkpoints, by who ran them (inline: a "
                   "committing thread, when the WAL passed its hard bound).\n"
                   "# TYPE setforge_db_checkpoints_total counter\n"
                   "setforge_db_checkpoints_total{by=\"checkpointer\"} %lu\n"
                   "setforge_db_checkpoints_total{by=\"inline\"} %lu\n",
              ck_thread, ck_inline);
    sb_puts(&sb, "# HELP setforge_http_requests_total HTTP requests by route and status.\n"
                 "# TYPE setforge_http_requests_total counter\n");
    const struct sf_server *srv = req->server;
    for (size_t r = 0; r <= sf_nroutes; r++) {
        size_t slot = r < sf_nroutes ? r : SERVER_MAX_ROUTES;
        for (int c = 0; c < SERVER_STATUS_CODES; c++) {
            unsigned long n = atomic_load(&srv->requests[slot][c]);
            if (!n)
                continue;
            char code[8];
            if (server_status_codes[c])
                snprintf(code, sizeof(code), "%d", server_status_codes[c]);
            else
                snprintf(code, sizeof(code), "other");
            if (r < sf_nroutes)
                sb_printf(&sb, "setforge_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %lu\n",
                          sf_routes[r].method, sf_routes[r].pattern, code, n);
            else
                sb_printf(&sb, "setforge_http_requests_total{method=\"\",route=\"unmatched\",status=\"%s\"} %lu\n",
                          code, n);
        }
    }
    size_t len;
    char *body = sb_detach(&sb, &len);
    return res_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
