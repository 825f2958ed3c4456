/*
 * metrics.c: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * This is the one file that speaks that format. Counts that live in the
 * database (runs and items by state) are read at scrape time; the rest come
 * from snapshots of the engine's and the HTTP server's counters.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "queue/engine.h"
#include "queue/webhook_sender.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/webhooks.h"
#include "store/scrapes.h"
#include "util/xalloc.h"

static void gauge_head(struct strbuf *sb, const char *name, const char *help, const char *type)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void state_counts(struct strbuf *sb)
{
    long long runs[RUN_NSTATES], items[ITEM_NSTATES];
    gauge_head(sb, "setforge_runs", "Runs by status.", "gauge");
    if (runs_run_counts(runs) == SF_OK)
        for (int i = 0; i < RUN_NSTATES; i++)
            if (runs[i])
                sb_printf(sb, "setforge_runs{status=\"%s\"} %lld\n",
                          run_state_name((enum run_state)i), runs[i]);
    gauge_head(sb, "setforge_items", "Run items by status.", "gauge");
    if (runs_item_counts(items) == SF_OK)
        for (int i = 0; i < ITEM_NSTATES; i++)
            if (items[i])
                sb_printf(sb, "setforge_items{status=\"%s\"} %lld\n",
                          item_state_name((enum item_state)i), items[i]);
}

static void scrape_counts(struct strbuf *sb)
{
    long long jobs[SCRAPE_NSTATES], items[SITEM_NSTATES];
    if (scrapes_counts(jobs, items) != SF_OK)
        return;
    gauge_head(sb, "setforge_scrape_jobs", "Scrape jobs by status.", "gauge");
    for (int i = 0; i < SCRAPE_NSTATES; i++)
        if (jobs[i])
            sb_printf(sb, "setforge_scrape_jobs{status=\"%s\"} %lld\n",
                      scrape_state_name((enum scrape_state)i), jobs[i]);
    gauge_head(sb, "setforge_scrape_downloads", "Scrape job downloads by status.", "gauge");
    for (int i = 0; i < SITEM_NSTATES; i++)
        if (items[i])
            sb_printf(sb, "setforge_scrape_downloads{status=\"%s\"} %lld\n",
                      scrape_item_state_name((enum scrape_item_state)i), items[i]);
}

static void engine_numbers(struct strbuf *sb)
{
    struct engine_stats es;
    engine_stats(&es);
    gauge_head(sb, "setforge_items_rescued_total", "Items whose lease expired and were put back.",
               "counter");
    sb_printf(sb, "setforge_items_rescued_total %lu\n", es.rescued);
    gauge_head(sb, "setforge_queue_paused", "1 while the whole queue is paused.", "gauge");
    sb_printf(sb, "setforge_queue_paused %d\n", engine_queue_paused());
    gauge_head(sb, "setforge_item_duration_seconds", "Time a backend took per image.", "histogram");
    unsigned long cum = 0;
    for (int b = 0; b < ENGINE_HIST_BUCKETS; b++) {
        cum += es.hist[b];
        sb_printf(sb, "setforge_item_duration_seconds_bucket{le=\"%g\"} %lu\n",
                  engine_hist_bounds_s[b], cum);
    }
    cum += es.hist[ENGINE_HIST_BUCKETS];
    sb_printf(sb, "setforge_item_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    sb_printf(sb, "setforge_item_duration_seconds_sum %.6f\n", es.hist_sum_s);
    sb_printf(sb, "setforge_item_duration_seconds_count %lu\n", cum);
    gauge_head(sb, "setforge_backend_errors_total", "Failed backend calls, by endpoint.", "counter");
    for (int i = 0; i < es.nendpoints; i++)
        sb_printf(sb, "setforge_backend_errors_total{endpoint=\"%s\"} %lu\n", es.endpoints[i].name,
                  es.endpoints[i].errors);
    gauge_head(sb, "setforge_backend_up", "1 when the endpoint takes work, 0 when down or probing.",
               "gauge");
    for (int i = 0; i < es.nendpoints; i++)
        sb_printf(sb, "setforge_backend_up{endpoint=\"%s\"} %d\n", es.endpoints[i].name,
                  strcmp(es.endpoints[i].state, "up") == 0);
    gauge_head(sb, "setforge_backend_in_flight", "Items being drawn now, by endpoint.", "gauge");
    for (int i = 0; i < es.nendpoints; i++)
        sb_printf(sb, "setforge_backend_in_flight{endpoint=\"%s\"} %ld\n", es.endpoints[i].name,
                  es.endpoints[i].in_flight);
    engine_stats_free(&es);
}

/* A counter with one label that takes two values. */
static void counter2(struct strbuf *sb, const char *name, const char *help, const char *label,
                     const char *k1, double v1, const char *k2, double v2)
{
    gauge_head(sb, name, help, "counter");
    sb_printf(sb, "%s{%s=\"%s\"} %.15g\n", name, label, k1, v1);
    sb_printf(sb, "%s{%s=\"%s\"} %.15g\n", name, label, k2, v2);
}

static void db_numbers(struct strbuf *sb)
{
    unsigned long ck_thread, ck_inline;
    db_checkpoint_counts(&ck_thread, &ck_inline);
    counter2(sb, "setforge_db_checkpoints_total",
             "WAL checkpoints, by who ran them (inline: a committing thread, when the WAL passed "
             "its hard bound).",
             "by", "checkpointer", (double)ck_thread, "inline", (double)ck_inline);
    struct db_busy_counts busy;
    db_busy_counts(&busy);
    gauge_head(sb, "setforge_db_lock_waits_total",
               "Statements that found SQLite's write lock held and waited for it.", "counter");
    sb_printf(sb, "setforge_db_lock_waits_total %lu\n", busy.waits);
    counter2(sb, "setforge_db_busy_total",
             "SQLITE_BUSY: waits that ran out the busy timeout, and BUSY/LOCKED results "
             "that reached the store's error mapping.",
             "kind", "timeout", (double)busy.timeouts, "result", (double)busy.results);
    double wait_s, hold_s;
    db_write_lock_times(&wait_s, &hold_s);
    counter2(sb, "setforge_db_write_seconds_total",
             "Seconds write transactions spent waiting for their turn, and holding the write lock "
             "(summed over threads).",
             "phase", "wait", wait_s, "hold", hold_s);
}

static void http_numbers(struct strbuf *sb, const struct sf_request *req)
{
    struct http_stats *hs = xmalloc(sizeof(*hs));
    req_server_stats(req, hs);
    gauge_head(sb, "setforge_event_streams", "Open Server-Sent Event streams.", "gauge");
    sb_printf(sb, "setforge_event_streams %d\n", hs->streams);
    gauge_head(sb, "setforge_http_requests_total", "HTTP requests by route and status.", "counter");
    for (size_t r = 0; r <= sf_nroutes; r++) {
        size_t slot = r < sf_nroutes ? r : HTTP_MAX_ROUTES;
        for (int c = 0; c < HTTP_STATUS_SLOTS; c++) {
            unsigned long n = hs->requests[slot][c];
            if (!n)
                continue;
            char code[8];
            if (http_status_slots[c])
                snprintf(code, sizeof(code), "%d", http_status_slots[c]);
            else
                snprintf(code, sizeof(code), "other");
            if (r < sf_nroutes)
                sb_printf(sb, "setforge_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %lu\n",
                          sf_routes[r].method, sf_routes[r].pattern, code, n);
            else
                sb_printf(sb, "setforge_http_requests_total{method=\"\",route=\"unmatched\",status=\"%s\"} %lu\n",
                          code, n);
        }
    }
    free(hs);
}

/* Run webhooks since start (docs/webhooks.md): a delivery ends delivered
 * or gave_up; every attempt that was not a 2xx is a failed_attempt. */
static void webhook_numbers(struct strbuf *sb)
{
    struct webhook_sender_stats ws;
    webhook_sender_stats(&ws);
    gauge_head(sb, "setforge_webhook_deliveries_total",
               "Run webhook outcomes: deliveries delivered, attempts failed, deliveries given up.",
               "counter");
    sb_printf(sb, "setforge_webhook_deliveries_total{result=\"delivered\"} %lu\n", ws.delivered);
    sb_printf(sb, "setforge_webhook_deliveries_total{result=\"failed_attempt\"} %lu\n",
              ws.failed_attempts);
    sb_printf(sb, "setforge_webhook_deliveries_total{result=\"gave_up\"} %lu\n", ws.gave_up);
    gauge_head(sb, "setforge_webhook_pending", "Run webhook deliveries owed (not delivered nor given up yet).",
               "gauge");
    sb_printf(sb, "setforge_webhook_pending %lld\n", webhooks_pending_count());
}

sf_status get_metrics(struct sf_request *req, struct sf_response *res)
{
    struct strbuf sb;
    sb_init(&sb);
    state_counts(&sb);
    scrape_counts(&sb);
    engine_numbers(&sb);
    db_numbers(&sb);
    http_numbers(&sb, req);
    webhook_numbers(&sb);
    size_t len;
    char *body = sb_detach(&sb, &len);
    return res_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
