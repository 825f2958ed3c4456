/*
 * webhooks.c: the rows of webhook_deliveries (webhooks.h). The payload is
 * built by SQLite's json_object from the run's row in the transaction that
 * ends the run, so it shows the run exactly as it ended; the sender sends
 * the stored text byte for byte, which is what it signs.
 */
#include "store/webhooks.h"

#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/log.h"
#include "util/stdwebhook.h"
#include "util/xalloc.h"

/* ?1 run id, ?2 webhook id, ?3 now (text), ?4 now (unix ms). */
static const char SQL_QUEUE[] =
    "INSERT INTO webhook_deliveries (run_id, webhook_id, url, payload, next_attempt_ms, created_at) "
    "SELECT id, ?2, callback_url, json_object('type', 'run.' || status, 'timestamp', ?3, "
    "'data', json_object('run_id', id, 'template_id', template_id, 'status', status, "
    "'counts', json_object('total', total_items, 'succeeded', completed_items, "
    "'failed', failed_items, 'canceled', canceled_items), 'album_id', album_id, "
    "'created_at', created_at, 'finished_at', completed_at)), ?4, ?3 "
    "FROM runs WHERE id = ?1 AND callback_url IS NOT NULL";
static const char SQL_NEXT_DUE[] =
    "SELECT id, webhook_id, url, payload, attempts FROM webhook_deliveries "
    "WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT 1";
static const char SQL_EARLIEST[] =
    "SELECT min(next_attempt_ms) FROM webhook_deliveries WHERE status = 'pending'";
static const char SQL_PENDING[] =
    "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'";
/* ?2 http status or NULL, ?3 error or NULL, ?4 next ms or NULL, ?5 now,
 * ?6 the new status */
static const char SQL_ATTEMPT[] =
    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?5, "
    "last_error = ?3, status = ?6, next_attempt_ms = ?4, "
    "delivered_at = CASE WHEN ?6 = 'delivered' THEN ?5 END, "
    "attempts_log = json_insert(attempts_log, '$[#]', json_object('attempt', attempts + 1, "
    "'at', ?5, 'http_status', ?2, 'error', ?3)) WHERE id = ?1 AND status = 'pending'";
static const char SQL_RUN_WEBHOOK[] =
    "SELECT r.callback_url, d.status, d.webhook_id, d.attempts, d.last_error, d.last_attempt_at, "
    "CASE WHEN d.status = 'pending' THEN strftime('%Y-%m-%dT%H:%M:%SZ', "
    "d.next_attempt_ms / 1000, 'unixepoch') END, d.attempts_log, d.id IS NOT NULL, d.url "
    "FROM runs r LEFT JOIN webhook_deliveries d ON d.id = "
    "(SELECT max(id) FROM webhook_deliveries WHERE run_id = r.id) WHERE r.id = ?1";

sf_status webhooks_queue_run_end(long long run_id, const char *now)
{
    char id[STDWEBHOOK_ID_LEN];
    stdwebhook_new_id(id);
    sqlite3_stmt *st = db_stmt(SQL_QUEUE);
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, 0); /* due at once */
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE) {
        log_error("webhooks: cannot queue the delivery of run %lld: %s", run_id,
                  sqlite3_errmsg(db_conn()));
        return db_status(rc);
    }
    return SF_OK;
}

void webhook_due_free(struct webhook_due *d)
{
    free(d->url);
    free(d->payload);
    memset(d, 0, sizeof(*d));
}

int webhooks_next_due(int64_t now_ms, struct webhook_due *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = db_stmt(SQL_NEXT_DUE);
    sqlite3_bind_int64(st, 1, now_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->webhook_id, sizeof(out->webhook_id), "%s", db_col_text(st, 1));
        out->url = xstrdup(db_col_text(st, 2));
        out->payload = xstrdup(db_col_text(st, 3));
        out->attempts = sqlite3_column_int(st, 4);
    }
    db_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_warn("webhooks: cannot read due deliveries: %s", sqlite3_errstr(rc));
        return -1;
    }
    return rc == SQLITE_ROW;
}

static long long one_number(const char *sql)
{
    sqlite3_stmt *st = db_stmt(sql);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    return v;
}

int64_t webhooks_earliest_due(void)
{
    return one_number(SQL_EARLIEST);
}

long long webhooks_pending_count(void)
{
    return one_number(SQL_PENDING);
}

sf_status webhooks_record_attempt(long long id, long http_status, const char *error,
                                  int64_t next_ms, const char *now)
{
    const char *status = next_ms ? "pending" : error ? "failed" : "delivered";
    sqlite3_stmt *st = db_stmt(SQL_ATTEMPT);
    sqlite3_bind_int64(st, 1, id);
    if (http_status)
        sqlite3_bind_int64(st, 2, http_status);
    db_bind_text(st, 3, error);
    if (next_ms)
        sqlite3_bind_int64(st, 4, next_ms);
    db_bind_text(st, 5, now);
    db_bind_text(st, 6, status);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

json_t *webhooks_run_json(long long run_id)
{
    sqlite3_stmt *st = db_stmt(SQL_RUN_WEBHOOK);
    sqlite3_bind_int64(st, 1, run_id);
    json_t *o = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int has_delivery = sqlite3_column_int(st, 8);
        if (has_delivery || sqlite3_column_type(st, 0) != SQLITE_NULL) {
            o = json_object();
            /* the delivery's own URL: the run's could only differ if edited by hand */
            json_object_set_new(o, "url", db_col_json_text(st, has_delivery ? 9 : 0));
            json_object_set_new(o, "status", has_delivery ? json_string(db_col_text(st, 1))
                                                          : json_string("waiting"));
            json_object_set_new(o, "webhook_id", db_col_json_text(st, 2));
            json_object_set_new(o, "attempts", json_integer(sqlite3_column_int(st, 3)));
            json_object_set_new(o, "last_error", db_col_json_text(st, 4));
            json_object_set_new(o, "last_attempt_at", db_col_json_text(st, 5));
            json_object_set_new(o, "next_attempt_at", db_col_json_text(st, 6));
            json_t *log = has_delivery ? json_loads(db_col_text(st, 7), 0, NULL) : NULL;
            json_object_set_new(o, "attempts_log", log ? log : json_array());
        }
    }
    db_done(st);
    return o;
}
