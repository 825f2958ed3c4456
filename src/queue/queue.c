/*
 * queue.c: every state change of run items and runs, one transaction each.
 *
 * The run's counters (completed/failed/canceled items) move in the same
 * transaction as the item whose state changed, so "is the run done?" is a
 * comparison of three numbers with total_items, never a count over
 * thousands of rows. When the last item settles, the same transaction sets
 * the run's final status and files its images into a new album, in item
 * order (album position = item index).
 *
 * Each change also appends to run_events, the log that Server-Sent Events
 * replay from (Last-Event-ID), so a client never misses a step.
 */
#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

void claimed_item_free(struct claimed_item *it)
{
    free(it->prompt);
    free(it->negative_prompt);
    json_decref(it->loras);
    memset(it, 0, sizeof(*it));
}

/* ---- claiming ---------------------------------------------------------- */

static const char SQL_CLAIM[] =
    "UPDATE run_items SET status = 'running', attempts = attempts + 1, lease_owner = ?1, "
    "lease_expires_ms = ?2, started_at = ?3 "
    "WHERE id = (SELECT id FROM run_items WHERE status = 'queued' AND not_before_ms <= ?4 "
    "AND run_id > ?5 AND (?6 IS NULL OR error IS NULL OR endpoint IS NOT ?6) "
    "ORDER BY run_id, item_index LIMIT 1) "
    "RETURNING id, run_id, item_index, attempts, prompt, seed";
static const char SQL_RUN_PARAMS[] =
    "SELECT negative_prompt, steps, guidance_scale, width, height, loras FROM runs WHERE id = ?1";
static const char SQL_RUN_START[] =
    "UPDATE runs SET status = 'running', started_at = coalesce(started_at, ?2) "
    "WHERE id = ?1 AND status = 'queued'";

static const char SQL_EVENT_STATUS[] =
    "INSERT INTO run_events (run_id, type, data, created_at) "
    "SELECT id, 'status', json_object('run_id', id, 'status', status, 'total_items', total_items, "
    "'completed_items', completed_items, 'failed_items', failed_items, 'canceled_items', "
    "canceled_items, 'album_id', album_id, 'error_message', error_message), ?2 "
    "FROM runs WHERE id = ?1";
static const char SQL_EVENT_ITEM[] =
    "INSERT INTO run_events (run_id, type, data, created_at) "
    "SELECT r.id, 'item', json_object('run_id', r.id, 'index', i.item_index, 'status', i.status, "
    "'image_id', i.image_id, 'error', i.error, 'attempts', i.attempts, 'completed_items', "
    "r.completed_items, 'failed_items', r.failed_items, 'canceled_items', r.canceled_items, "
    "'total_items', r.total_items, 'progress', "
    "round(1.0 * (r.completed_items + r.failed_items + r.canceled_items) / r.total_items, 4)), ?2 "
    "FROM run_items i JOIN runs r ON r.id = i.run_id WHERE i.id = ?1";

static int step_done(const char *sql, long long a, const char *text)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, a);
    db_bind_text(st, 2, text);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE) {
        log_error("queue: %s", sqlite3_errmsg(db_conn()));
        return -1;
    }
    return sqlite3_changes(db_conn());
}

static int event_status(long long run_id, const char *now)
{
    return step_done(SQL_EVENT_STATUS, run_id, now);
}

static int event_item(long long item_id, const char *now)
{
    return step_done(SQL_EVENT_ITEM, item_id, now);
}

static int claim_after(const char *owner, int64_t lease_ms, long long after, const char *avoid,
                       const char *now, struct claimed_item *out)
{
    int64_t t = now_unix_ms();
    sqlite3_stmt *st = db_stmt(SQL_CLAIM);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, t + lease_ms);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, t);
    sqlite3_bind_int64(st, 5, after);
    db_bind_text(st, 6, avoid);
    int rc = sqlite3_step(st);
    int got = 0;
    if (rc == SQLITE_ROW) {
        out->item_id = sqlite3_column_int64(st, 0);
        out->run_id = sqlite3_column_int64(st, 1);
        out->index = sqlite3_column_int(st, 2);
        out->attempts = sqlite3_column_int(st, 3);
        out->prompt = xstrdup(db_col_text(st, 4));
        out->seed = sqlite3_column_int64(st, 5);
        got = 1;
        rc = sqlite3_step(st); /* finish the statement: RETURNING rows are lazy */
    }
    db_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_error("queue: claim: %s", sqlite3_errmsg(db_conn()));
        return -1;
    }
    return got;
}

int queue_claim(const char *owner, int64_t lease_ms, long long *rr_run, const char *avoid,
                struct claimed_item *out)
{
    memset(out, 0, sizeof(*out));
    if (db_begin() != SF_OK)
        return -1;
    char now[32];
    now_rfc3339(now);
    int got = claim_after(owner, lease_ms, *rr_run, avoid, now, out);
    if (got == 0 && *rr_run > 0)
        got = claim_after(owner, lease_ms, 0, avoid, now, out); /* wrap around */
    if (got <= 0) {
        db_rollback();
        return got;
    }
    sqlite3_stmt *st = db_stmt(SQL_RUN_PARAMS);
    sqlite3_bind_int64(st, 1, out->run_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->negative_prompt = xstrdup(db_col_text(st, 0));
        out->steps = sqlite3_column_int(st, 1);
        out->guidance_scale = sqlite3_column_double(st, 2);
        out->width = sqlite3_column_int(st, 3);
        out->height = sqlite3_column_int(st, 4);
        out->loras = json_loads(db_col_text(st, 5), 0, NULL);
    }
    db_done(st);
    if (!out->loras)
        out->loras = json_array();
    if (!out->negative_prompt)
        out->negative_prompt = xstrdup("");
    if (step_done(SQL_RUN_START, out->run_id, now) > 0)
        event_status(out->run_id, now);
    if (db_commit() != SF_OK) {
        claimed_item_free(out);
        return -1;
    }
    *rr_run = out->run_id;
    return 1;
}

/* ---- finishing a run ----------------------------------------------------- */

static const char SQL_RUN_STATE[] =
    "SELECT status, total_items, completed_items, failed_items, canceled_items, album_id, "
    "album_name, creator FROM runs WHERE id = ?1";
static const char SQL_LAST_ERROR[] =
    "SELECT error FROM run_items WHERE run_id = ?1 AND status = 'failed' AND error IS NOT NULL "
    "ORDER BY finished_at DESC LIMIT 1";
static const char SQL_RUN_FINISH[] =
    "UPDATE runs SET status = ?2, completed_at = ?3, error_message = ?4 WHERE id = ?1";
static const char SQL_ALBUM_NEW[] =
    "INSERT INTO albums (name, description, source_type, source_id, is_public, created_by, "
    "created_at, updated_at) VALUES (?2, '', 'batch_generation', ?1, 1, ?3, ?4, ?4)";
static const char SQL_RUN_ALBUM[] = "UPDATE runs SET album_id = ?2 WHERE id = ?1";
static const char SQL_LINK_RUN[] =
    "INSERT OR IGNORE INTO album_images (album_id, image_id, position, added_at) "
    "SELECT ?2, image_id, item_index, ?3 FROM run_items "
    "WHERE run_id = ?1 AND image_id IS NOT NULL ORDER BY item_index";

struct run_state {
    char status[16];
    long long total, completed, failed, canceled, album_id;
    char album_name[512];
    char creator[128];
};

static int read_run(long long run_id, struct run_state *rs)
{
    sqlite3_stmt *st = db_stmt(SQL_RUN_STATE);
    sqlite3_bind_int64(st, 1, run_id);
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        snprintf(rs->status, sizeof(rs->status), "%s", db_col_text(st, 0));
        rs->total = sqlite3_column_int64(st, 1);
        rs->completed = sqlite3_column_int64(st, 2);
        rs->failed = sqlite3_column_int64(st, 3);
        rs->canceled = sqlite3_column_int64(st, 4);
        rs->album_id = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 5);
        snprintf(rs->album_name, sizeof(rs->album_name), "%s", db_col_text(st, 6));
        snprintf(rs->creator, sizeof(rs->creator), "%s", db_col_text(st, 7));
    }
    db_done(st);
    return ok ? 0 : -1;
}

/*
 * Files every image of the run into its album, creating the album first
 * when the run has none. Positions are item indexes, so a retried item's
 * image lands in its place.
 */
static int file_album(long long run_id, struct run_state *rs, const char *now)
{
    if (!rs->album_id) {
        sqlite3_stmt *st = db_stmt(SQL_ALBUM_NEW);
        sqlite3_bind_int64(st, 1, run_id);
        db_bind_text(st, 2, rs->album_name);
        db_bind_text(st, 3, rs->creator[0] ? rs->creator : NULL);
        db_bind_text(st, 4, now);
        int rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            return -1;
        rs->album_id = sqlite3_last_insert_rowid(db_conn());
        st = db_stmt(SQL_RUN_ALBUM);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, rs->album_id);
        rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            return -1;
    }
    sqlite3_stmt *st = db_stmt(SQL_LINK_RUN);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, rs->album_id);
    db_bind_text(st, 3, now);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Settles the run when no item is left queued or running. */
static int maybe_finish(long long run_id, const char *now)
{
    struct run_state rs;
    if (read_run(run_id, &rs) < 0)
        return -1;
    int active = strcmp(rs.status, "queued") == 0 || strcmp(rs.status, "running") == 0;
    if (!active) {
        if (strcmp(rs.status, "canceled") != 0)
            return 0;
        /* An item that settled after its run was canceled: a late image still
         * belongs in the album, and a fresh status event (with the new
         * counts) keeps "the last event of a stream is its final status". */
        if (rs.completed > 0 && file_album(run_id, &rs, now) < 0)
            return -1;
        return event_status(run_id, now) < 0 ? -1 : 0;
    }
    if (rs.completed + rs.failed + rs.canceled < rs.total)
        return 0;
    const char *status = rs.completed > 0 ? "completed" : "failed";
    char msg[1200] = "";
    if (rs.failed > 0) {
        char last[1024] = "";
        sqlite3_stmt *st = db_stmt(SQL_LAST_ERROR);
        sqlite3_bind_int64(st, 1, run_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(last, sizeof(last), "%s", db_col_text(st, 0));
        db_done(st);
        snprintf(msg, sizeof(msg), "%lld of %lld items failed%s%s", rs.failed, rs.total,
                 last[0] ? "; last error: " : "", last);
    }
    sqlite3_stmt *st = db_stmt(SQL_RUN_FINISH);
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text(st, 2, status);
    db_bind_text(st, 3, now);
    db_bind_text(st, 4, msg[0] ? msg : NULL);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (rs.completed > 0 && file_album(run_id, &rs, now) < 0)
        return -1;
    return event_status(run_id, now) < 0 ? -1 : 0;
}

/* ---- completing and failing items ---------------------------------------- */

static const char SQL_ITEM_STATE[] = "SELECT status, lease_owner FROM run_items WHERE id = ?1";
static const char SQL_IMAGE_INSERT[] =
    "INSERT OR IGNORE INTO images (prompt, negative_prompt, seed, steps, guidance_scale, width, "
    "height, loras, run_id, item_index, sha256, bytes, backend, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_IMAGE_FIND[] = "SELECT id FROM images WHERE run_id = ?1 AND item_index = ?2";
static const char SQL_ITEM_SUCCEED[] =
    "UPDATE run_items SET status = 'succeeded', image_id = ?2, error = NULL, finished_at = ?3, "
    "duration_ms = ?4, endpoint = ?5, lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1";
/* ?2..?4: deltas of completed, failed, canceled */
static const char SQL_RUN_COUNT[] =
    "UPDATE runs SET completed_items = completed_items + ?2, failed_items = failed_items + ?3, "
    "canceled_items = canceled_items + ?4 WHERE id = ?1";

static int bump(long long run_id, int completed, int failed, int canceled)
{
    sqlite3_stmt *st = db_stmt(SQL_RUN_COUNT);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, completed);
    sqlite3_bind_int(st, 3, failed);
    sqlite3_bind_int(st, 4, canceled);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The item's status, and whether another worker holds it now. */
static int item_state(long long item_id, const char *owner, char status[16], int *foreign)
{
    sqlite3_stmt *st = db_stmt(SQL_ITEM_STATE);
    sqlite3_bind_int64(st, 1, item_id);
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        snprintf(status, 16, "%s", db_col_text(st, 0));
        *foreign = strcmp(status, "running") == 0 &&
                   strcmp(db_col_text(st, 1), owner) != 0;
    }
    db_done(st);
    return ok ? 0 : -1;
}

static sf_status finish_tx(int ok)
{
    if (!ok) {
        db_rollback();
        return SF_EINTERNAL;
    }
    return db_commit();
}

sf_status queue_complete(const struct claimed_item *it, const char *owner,
                         const struct sf_image *img, const char *sha256,
                         const char *endpoint, int64_t duration_ms)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    char status[16];
    int foreign = 0;
    int ok = item_state(it->item_id, owner, status, &foreign) == 0;
    if (!ok || strcmp(status, "succeeded") == 0) /* done already: nothing to add */
        return finish_tx(ok);

    sqlite3_stmt *st = db_stmt(SQL_IMAGE_INSERT);
    db_bind_text(st, 1, it->prompt);
    db_bind_text(st, 2, it->negative_prompt);
    sqlite3_bind_int64(st, 3, img->seed);
    sqlite3_bind_int(st, 4, it->steps);
    sqlite3_bind_double(st, 5, it->guidance_scale);
    sqlite3_bind_int(st, 6, img->width);
    sqlite3_bind_int(st, 7, img->height);
    db_bind_json(st, 8, it->loras);
    sqlite3_bind_int64(st, 9, it->run_id);
    sqlite3_bind_int(st, 10, it->index);
    db_bind_text(st, 11, sha256);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)img->png_len);
    db_bind_text(st, 13, endpoint);
    db_bind_text(st, 14, now);
    ok = sqlite3_step(st) == SQLITE_DONE;
    db_done(st);
    /* The UNIQUE (run_id, item_index) index makes a second finisher find
     * the first one's image instead of adding another. */
    long long image_id = 0;
    st = db_stmt(SQL_IMAGE_FIND);
    sqlite3_bind_int64(st, 1, it->run_id);
    sqlite3_bind_int(st, 2, it->index);
    if (ok && sqlite3_step(st) == SQLITE_ROW)
        image_id = sqlite3_column_int64(st, 0);
    db_done(st);
    ok = ok && image_id > 0;
    if (!ok || foreign) /* the image row exists; its current holder links it */
        return finish_tx(ok);

    st = db_stmt(SQL_ITEM_SUCCEED);
    sqlite3_bind_int64(st, 1, it->item_id);
    sqlite3_bind_int64(st, 2, image_id);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, duration_ms);
    db_bind_text(st, 5, endpoint);
    ok = sqlite3_step(st) == SQLITE_DONE;
    db_done(st);
    int was_failed = strcmp(status, "failed") == 0, was_canceled = strcmp(status, "canceled") == 0;
    ok = ok && bump(it->run_id, 1, -was_failed, -was_canceled) == 0;
    ok = ok && event_item(it->item_id, now) >= 0;
    ok = ok && maybe_finish(it->run_id, now) == 0;
    return finish_tx(ok);
}

static const char SQL_ITEM_REQUEUE[] =
    "UPDATE run_items SET status = 'queued', error = ?2, not_before_ms = ?3, endpoint = ?4, "
    "lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1 AND status = 'running' "
    "AND lease_owner = ?5";
static const char SQL_ITEM_FAIL[] =
    "UPDATE run_items SET status = 'failed', error = ?2, finished_at = ?3, endpoint = ?4, "
    "lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1 AND status = 'running' "
    "AND lease_owner = ?5";
static const char SQL_ITEM_CANCELED[] =
    "UPDATE run_items SET status = 'canceled', finished_at = ?2, lease_owner = NULL, "
    "lease_expires_ms = NULL WHERE id = ?1 AND status = 'running' AND lease_owner = ?3";

sf_status queue_fail(const struct claimed_item *it, const char *owner, const char *error,
                     int permanent, int max_attempts, int64_t retry_at_ms,
                     const char *endpoint)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    int retry = !permanent && it->attempts < max_attempts;
    sqlite3_stmt *st = db_stmt(retry ? SQL_ITEM_REQUEUE : SQL_ITEM_FAIL);
    sqlite3_bind_int64(st, 1, it->item_id);
    db_bind_text(st, 2, error);
    if (retry)
        sqlite3_bind_int64(st, 3, retry_at_ms);
    else
        db_bind_text(st, 3, now);
    db_bind_text(st, 4, endpoint);
    db_bind_text(st, 5, owner);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    int changed = sqlite3_changes(db_conn());
    db_done(st);
    if (ok && changed && !retry) {
        ok = bump(it->run_id, 0, 1, 0) == 0;
        ok = ok && event_item(it->item_id, now) >= 0;
        ok = ok && maybe_finish(it->run_id, now) == 0;
    }
    return finish_tx(ok);
}

sf_status queue_mark_canceled(const struct claimed_item *it, const char *owner)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_ITEM_CANCELED);
    sqlite3_bind_int64(st, 1, it->item_id);
    db_bind_text(st, 2, now);
    db_bind_text(st, 3, owner);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    int changed = sqlite3_changes(db_conn());
    db_done(st);
    if (ok && changed) {
        ok = bump(it->run_id, 0, 0, 1) == 0;
        ok = ok && event_item(it->item_id, now) >= 0;
        ok = ok && maybe_finish(it->run_id, now) == 0;
    }
    return finish_tx(ok);
}

/* ---- leases -------------------------------------------------------------- */

static const char SQL_HEARTBEAT[] =
    "UPDATE run_items SET lease_expires_ms = ?2 WHERE status = 'running' AND lease_owner = ?1";
static const char SQL_EXPIRED[] =
    "SELECT id, run_id, attempts FROM run_items WHERE status = 'running' "
    "AND (lease_expires_ms < ?1 OR (?2 AND lease_owner IS NOT ?3))";
static const char SQL_RESCUE_REQUEUE[] =
    "UPDATE run_items SET status = 'queued', lease_owner = NULL, lease_expires_ms = NULL, "
    "not_before_ms = 0 WHERE id = ?1 AND status = 'running'";
static const char SQL_RESCUE_FAIL[] =
    "UPDATE run_items SET status = 'failed', error = ?2, finished_at = ?3, lease_owner = NULL, "
    "lease_expires_ms = NULL WHERE id = ?1 AND status = 'running'";

void queue_heartbeat(const char *owner, int64_t lease_ms)
{
    sqlite3_stmt *st = db_stmt(SQL_HEARTBEAT);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, now_unix_ms() + lease_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        log_warn("queue: heartbeat: %s", sqlite3_errmsg(db_conn()));
    db_done(st);
}

int queue_rescue(const char *owner, int all_foreign, int max_attempts)
{
    if (db_begin() != SF_OK)
        return -1;
    char now[32];
    now_rfc3339(now);
    struct {
        long long id, run_id;
        int attempts;
    } *found = NULL;
    size_t n = 0;
    sqlite3_stmt *st = db_stmt(SQL_EXPIRED);
    sqlite3_bind_int64(st, 1, now_unix_ms());
    sqlite3_bind_int(st, 2, all_foreign);
    db_bind_text(st, 3, owner);
    while (sqlite3_step(st) == SQLITE_ROW) {
        found = xrealloc(found, sizeof(*found) * (n + 1));
        found[n].id = sqlite3_column_int64(st, 0);
        found[n].run_id = sqlite3_column_int64(st, 1);
        found[n].attempts = sqlite3_column_int(st, 2);
        n++;
    }
    db_done(st);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int give_up = found[i].attempts >= max_attempts;
        st = db_stmt(give_up ? SQL_RESCUE_FAIL : SQL_RESCUE_REQUEUE);
        sqlite3_bind_int64(st, 1, found[i].id);
        if (give_up) {
            char msg[160];
            snprintf(msg, sizeof(msg), "the worker stopped while drawing this item %d times "
                                       "(lease expired); giving up", found[i].attempts);
            db_bind_text(st, 2, msg);
            db_bind_text(st, 3, now);
        }
        ok = sqlite3_step(st) == SQLITE_DONE;
        db_done(st);
        if (ok && give_up) {
            ok = bump(found[i].run_id, 0, 1, 0) == 0;
            ok = ok && event_item(found[i].id, now) >= 0;
            ok = ok && maybe_finish(found[i].run_id, now) == 0;
        }
    }
    free(found);
    if (finish_tx(ok) != SF_OK)
        return -1;
    return (int)n;
}

/* ---- cancel and retry ---------------------------------------------------- */

static const char SQL_CANCEL_QUEUED[] =
    "UPDATE run_items SET status = 'canceled', finished_at = ?2 WHERE run_id = ?1 "
    "AND status = 'queued' RETURNING id";
static const char SQL_RUN_CANCEL[] =
    "UPDATE runs SET status = 'canceled', completed_at = ?2, "
    "error_message = 'canceled by an operator' WHERE id = ?1";
static const char SQL_RETRY_ITEMS[] =
    "UPDATE run_items SET status = 'queued', not_before_ms = 0, lease_owner = NULL, "
    "lease_expires_ms = NULL, finished_at = NULL WHERE run_id = ?1 AND status = ?2";
static const char SQL_RUN_RETRY[] =
    "UPDATE runs SET status = 'running', completed_at = NULL, error_message = NULL WHERE id = ?1";

/* Opens the write transaction of a run-wide change and reads the run. */
static sf_status begin_on_run(long long run_id, struct run_state *rs)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    if (read_run(run_id, rs) < 0) {
        db_rollback();
        return SF_ENOTFOUND;
    }
    return SF_OK;
}

sf_status queue_cancel_run(long long run_id)
{
    struct run_state rs;
    sf_status s = begin_on_run(run_id, &rs);
    if (s != SF_OK)
        return s;
    if (strcmp(rs.status, "queued") != 0 && strcmp(rs.status, "running") != 0) {
        db_rollback();
        return SF_ECONFLICT;
    }
    char now[32];
    now_rfc3339(now);
    long long *ids = NULL;
    int n = 0;
    sqlite3_stmt *st = db_stmt(SQL_CANCEL_QUEUED);
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text(st, 2, now);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = xrealloc(ids, sizeof(*ids) * (size_t)(n + 1));
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    db_done(st);
    int ok = rc == SQLITE_DONE && bump(run_id, 0, 0, n) == 0;
    /* One item event per canceled item, like any other settled item. */
    for (int i = 0; i < n && ok; i++)
        ok = event_item(ids[i], now) >= 0;
    free(ids);
    ok = ok && step_done(SQL_RUN_CANCEL, run_id, now) >= 0;
    rs.canceled += n;
    /* Images made before the cancel are kept and filed like any run's. */
    ok = ok && (rs.completed == 0 || file_album(run_id, &rs, now) == 0);
    ok = ok && event_status(run_id, now) >= 0;
    return finish_tx(ok);
}

static int retry_status(long long run_id, const char *status)
{
    sqlite3_stmt *st = db_stmt(SQL_RETRY_ITEMS);
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text(st, 2, status);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db_conn()) : -1;
}

sf_status queue_retry_run(long long run_id)
{
    struct run_state rs;
    sf_status s = begin_on_run(run_id, &rs);
    if (s != SF_OK)
        return s;
    int failed = retry_status(run_id, "failed");
    int canceled = retry_status(run_id, "canceled");
    if (failed < 0 || canceled < 0) {
        db_rollback();
        return SF_EINTERNAL;
    }
    if (failed + canceled == 0) {
        db_rollback();
        return SF_ECONFLICT;
    }
    char now[32];
    now_rfc3339(now);
    int ok = bump(run_id, 0, -failed, -canceled) == 0;
    ok = ok && step_done(SQL_RUN_RETRY, run_id, NULL) >= 0;
    ok = ok && event_status(run_id, now) >= 0;
    return finish_tx(ok);
}

static const char SQL_NEXT_DUE[] =
    "SELECT min(not_before_ms) FROM run_items WHERE status = 'queued'";

int64_t queue_next_due(void)
{
    sqlite3_stmt *st = db_stmt(SQL_NEXT_DUE);
    int64_t due = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        due = sqlite3_column_int64(st, 0);
    db_done(st);
    return due;
}

static const char SQL_RELEASE[] =
    "UPDATE run_items SET status = 'queued', attempts = max(attempts - 1, 0), lease_owner = NULL, "
    "lease_expires_ms = NULL WHERE id = ?1 AND status = 'running' AND lease_owner = ?2";

void queue_release(const struct claimed_item *it, const char *owner)
{
    sqlite3_stmt *st = db_stmt(SQL_RELEASE);
    sqlite3_bind_int64(st, 1, it->item_id);
    db_bind_text(st, 2, owner);
    if (sqlite3_step(st) != SQLITE_DONE)
        log_warn("queue: release: %s", sqlite3_errmsg(db_conn()));
    db_done(st);
}
