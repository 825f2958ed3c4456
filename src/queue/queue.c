/*
 * queue.c: every state change of run items and runs, one transaction each.
 *
 * The run's counters (completed/failed/canceled items) move in the same
 * transaction as the item whose state changed, so "is the run done?" is a
 * comparison of three numbers with total_items, never a count over
 * thousands of rows. When the last item settles, the same transaction sets
 * the run's final status and files its images into a new album, in item
 * order (album position = item index), and, when the run named a
 * callback_url, queues its webhook delivery (store/webhooks.h), so a crash
 * can never end a run without owing its webhook.
 *
 * Each change also appends to run_events, the log that Server-Sent Events
 * replay from (Last-Event-ID), so a client never misses a step.
 *
 * The statements here change run_items and runs, the queue's own tables
 * (the claim also reads the queue-wide pause, a meta row, in its own
 * transaction); images, album links and events are written by store/
 * functions that work inside the transaction opened here. States are named in store/states.h.
 */
#include "queue/queue.h"

#include <stdlib.h>
#include <string.h>

#include "store/albums.h"
#include "store/db.h"
#include "store/images.h"
#include "store/runs.h"
#include "store/settings.h"
#include "store/states.h"
#include "store/webhooks.h"
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

/*
 * The next item, unless the whole queue is paused (the meta row of
 * store/settings.h, read in the claim's own transaction, so no claim
 * commits after the pause did). It comes from the runs that may be drawn
 * (queued or running: not paused, not final): the highest priority that
 * has a due item ("top"); within that level, the first run after ?5 (the
 * round robin's position) that has one, else top itself (the wrap-around);
 * within the run, its first due item in item order.
 *
 * Why this shape: each step walks an index in the order it wants and stops
 * at the first hit. The runs come from runs_claim (priority DESC, id; only
 * drawable runs), a run's due item from run_items_queue (status, run_id,
 * item_index). So a claim costs a few index searches however many items
 * and runs are queued; ordering all drawable runs by a computed key instead
 * cost 1.6 ms with 1,000 runs (docs/run-controls.md has the figures).
 * INDEXED BY: without statistics the planner prefers runs_status and sorts
 * every drawable run; and should runs_claim ever go missing, the statement
 * fails to prepare rather than quietly turning slow.
 *
 * CLAIM_DUE(r) is run r's first due item this endpoint may take (?6 its
 * name, ?7 the endpoints up, as JSON): one it has not failed on, or any
 * once every endpoint up has failed it.
 */
#define CLAIM_DUE(r)                                                                            \
    "(SELECT i.id FROM run_items i WHERE i.status = 'queued' AND i.run_id = " r " "             \
    "AND i.not_before_ms <= ?4 AND (?6 IS NULL OR i.failed_endpoints IS NULL "                 \
    "OR NOT EXISTS (SELECT 1 FROM json_each(i.failed_endpoints) WHERE value = ?6) "             \
    "OR NOT EXISTS (SELECT 1 FROM json_each(?7) AS up WHERE up.value NOT IN "                   \
    "(SELECT value FROM json_each(i.failed_endpoints)))) ORDER BY i.item_index LIMIT 1)"
#define CLAIM_DRAWABLE(r) r ".status IN ('queued', 'running')"
static const char SQL_CLAIM[] =
    "WITH top AS (SELECT r.id, r.priority FROM runs r INDEXED BY runs_claim WHERE "
    CLAIM_DRAWABLE("r") " "
    "AND NOT EXISTS (SELECT 1 FROM meta WHERE key = '" SETTING_QUEUE_PAUSED "') "
    "AND " CLAIM_DUE("r.id") " IS NOT NULL ORDER BY r.priority DESC, r.id LIMIT 1), "
    "pick AS (SELECT coalesce((SELECT n.id FROM runs n INDEXED BY runs_claim WHERE "
    CLAIM_DRAWABLE("n") " AND n.priority = (SELECT priority FROM top) AND n.id > ?5 "
    "AND " CLAIM_DUE("n.id") " IS NOT NULL ORDER BY n.id LIMIT 1), "
    "(SELECT id FROM top)) AS run_id) "
    "UPDATE run_items SET status = 'running', attempts = attempts + 1, lease_owner = ?1, "
    "lease_expires_ms = ?2, started_at = ?3, started_ms = ?4 "
    "WHERE id = (SELECT " CLAIM_DUE("pick.run_id") " FROM pick) "
    "RETURNING id, run_id, item_index, attempts, prompt, seed";

const char *queue_claim_sql(void)
{
    return SQL_CLAIM;
}

static const char SQL_RUN_PARAMS[] =
    "SELECT negative_prompt, steps, guidance_scale, width, height, loras, fit = 'crop' FROM runs "
    "WHERE id = ?1";
static const char SQL_RUN_START[] =
    "UPDATE runs SET status = 'running', started_at = coalesce(started_at, ?2) "
    "WHERE id = ?1 AND status = 'queued'";

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

static sf_status finish_tx(int ok)
{
    if (!ok) {
        db_rollback();
        return SF_EINTERNAL;
    }
    return db_commit();
}

static int event_status(long long run_id, const char *now)
{
    return runs_event_status(run_id, now) == SF_OK ? 0 : -1;
}

static int event_item(long long item_id, const char *now)
{
    return runs_event_item(item_id, now) == SF_OK ? 0 : -1;
}

static int claim_next(const char *owner, int64_t lease_ms, long long after, const char *endpoint,
                       const char *up, const char *now, struct claimed_item *out)
{
    int64_t t = now_unix_ms();
    sqlite3_stmt *st = db_stmt(SQL_CLAIM);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, t + lease_ms);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, t);
    sqlite3_bind_int64(st, 5, after);
    db_bind_text(st, 6, endpoint);
    db_bind_text(st, 7, up);
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

/* The names as a JSON array (malloc'd text), for json_each(). */
static char *names_json(const char *const *names, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

int queue_claim(const char *owner, int64_t lease_ms, long long *rr_run, const char *endpoint,
                const char *const *up, int nup, struct claimed_item *out)
{
    memset(out, 0, sizeof(*out));
    if (db_begin() != SF_OK)
        return -1;
    char now[32];
    now_rfc3339(now);
    char *up_json = endpoint ? names_json(up, nup) : NULL;
    int got = claim_next(owner, lease_ms, *rr_run, endpoint, up_json, now, out);
    free(up_json);
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
        out->fit_crop = sqlite3_column_int(st, 6);
    }
    db_done(st);
    if (!out->loras)
        out->loras = json_array();
    if (!out->negative_prompt)
        out->negative_prompt = xstrdup("");
    int started = step_done(SQL_RUN_START, out->run_id, now);
    int ok = started >= 0 && (started == 0 || event_status(out->run_id, now) == 0);
    if (finish_tx(ok) != SF_OK) {
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

/* The row of a run, as a state change needs it. */
struct run_row {
    enum run_state state;
    long long total, completed, failed, canceled, album_id;
    char album_name[512];
    char creator[128];
};

static int read_run(long long run_id, struct run_row *rs)
{
    sqlite3_stmt *st = db_stmt(SQL_RUN_STATE);
    sqlite3_bind_int64(st, 1, run_id);
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        ok = run_state_parse(db_col_text(st, 0), &rs->state) == 0;
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

/* Files every image of the run into its album (created when missing). */
static int file_album(long long run_id, struct run_row *rs, const char *now)
{
    return albums_file_run(run_id, rs->album_name, rs->creator, now, &rs->album_id) == SF_OK ? 0 : -1;
}

/* Settles the run when no item is left queued or running. */
static int maybe_finish(long long run_id, const char *now)
{
    struct run_row rs;
    if (read_run(run_id, &rs) < 0)
        return -1;
    if (run_state_is_final(rs.state)) {
        if (rs.state != RUN_CANCELED)
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
    enum run_state final = rs.completed > 0 ? RUN_COMPLETED : RUN_FAILED;
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
    db_bind_text(st, 2, run_state_name(final));
    db_bind_text(st, 3, now);
    db_bind_text(st, 4, msg[0] ? msg : NULL);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (rs.completed > 0 && file_album(run_id, &rs, now) < 0)
        return -1;
    /* The end's webhook, owed from the same commit (docs/webhooks.md). */
    if (webhooks_queue_run_end(run_id, now) != SF_OK)
        return -1;
    return event_status(run_id, now) < 0 ? -1 : 0;
}

/* ---- completing and failing items ---------------------------------------- */

static const char SQL_ITEM_STATE[] = "SELECT status, lease_owner FROM run_items WHERE id = ?1";
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

/*
 * An item has settled (its row already says how): the run's counters move
 * by the deltas, the item's event is logged, and the run is finished when
 * it was the last one. Every settling goes through here.
 */
static int settle_item(long long item_id, long long run_id, int completed, int failed,
                       int canceled, const char *now)
{
    if (bump(run_id, completed, failed, canceled) < 0)
        return -1;
    if (event_item(item_id, now) < 0)
        return -1;
    return maybe_finish(run_id, now);
}

/* The item's state, and whether another worker holds it now. */
static int item_state(long long item_id, const char *owner, enum item_state *state, int *foreign)
{
    sqlite3_stmt *st = db_stmt(SQL_ITEM_STATE);
    sqlite3_bind_int64(st, 1, item_id);
    int ok = sqlite3_step(st) == SQLITE_ROW && item_state_parse(db_col_text(st, 0), state) == 0;
    if (ok)
        *foreign = *state == ITEM_RUNNING && strcmp(db_col_text(st, 1), owner) != 0;
    db_done(st);
    return ok ? 0 : -1;
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
    enum item_state state;
    int foreign = 0;
    int ok = item_state(it->item_id, owner, &state, &foreign) == 0;
    if (!ok || state == ITEM_SUCCEEDED) /* done already: nothing to add */
        return finish_tx(ok);

    struct generated_image g = {
        .prompt = it->prompt,
        .negative_prompt = it->negative_prompt,
        .seed = img->seed,
        .steps = it->steps,
        .guidance_scale = it->guidance_scale,
        .width = img->width,
        .height = img->height,
        .loras = it->loras,
        .run_id = it->run_id,
        .item_index = it->index,
        .sha256 = sha256,
        .bytes = img->png_len,
        .backend = endpoint,
        .created_at = now,
    };
    char cropped[32];
    if (img->cropped_from_w > 0) {
        snprintf(cropped, sizeof cropped, "%dx%d", img->cropped_from_w, img->cropped_from_h);
        g.cropped_from = cropped;
    }
    long long image_id = 0;
    ok = images_insert_generated(&g, &image_id) == SF_OK;
    if (!ok || foreign) /* the image row exists; its current holder links it */
        return finish_tx(ok);

    sqlite3_stmt *st = db_stmt(SQL_ITEM_SUCCEED);
    sqlite3_bind_int64(st, 1, it->item_id);
    sqlite3_bind_int64(st, 2, image_id);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, duration_ms);
    db_bind_text(st, 5, endpoint);
    ok = sqlite3_step(st) == SQLITE_DONE;
    db_done(st);
    /* A late image of an item that was failed (lease lost) or canceled
     * moves it from that counter to completed. */
    ok = ok && settle_item(it->item_id, it->run_id, 1, -(state == ITEM_FAILED),
                           -(state == ITEM_CANCELED), now) == 0;
    return finish_tx(ok);
}

/* failed_endpoints with the endpoint ?6 added (once); unchanged when NULL. */
#define SQL_ADD_FAILED_ENDPOINT                                                                  \
    "failed_endpoints = CASE WHEN ?6 IS NULL OR EXISTS (SELECT 1 FROM "                          \
    "json_each(coalesce(failed_endpoints, '[]')) WHERE value = ?6) THEN failed_endpoints "      \
    "ELSE json_insert(coalesce(failed_endpoints, '[]'), '$[#]', ?6) END"
static const char SQL_ITEM_REQUEUE[] =
    "UPDATE run_items SET status = 'queued', error = ?2, not_before_ms = ?3, endpoint = ?4, "
    "lease_owner = NULL, lease_expires_ms = NULL, " SQL_ADD_FAILED_ENDPOINT " "
    "WHERE id = ?1 AND status = 'running' AND lease_owner = ?5";
static const char SQL_ITEM_FAIL[] =
    "UPDATE run_items SET status = 'failed', error = ?2, finished_at = ?3, endpoint = ?4, "
    "lease_owner = NULL, lease_expires_ms = NULL, " SQL_ADD_FAILED_ENDPOINT " "
    "WHERE id = ?1 AND status = 'running' AND lease_owner = ?5";
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
    /* A refusal is the request's fault, not the endpoint's. */
    db_bind_text(st, 6, permanent ? NULL : endpoint);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    int changed = sqlite3_changes(db_conn());
    db_done(st);
    if (ok && changed && !retry)
        ok = settle_item(it->item_id, it->run_id, 0, 1, 0, now) == 0;
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
    if (ok && changed)
        ok = settle_item(it->item_id, it->run_id, 0, 0, 1, now) == 0;
    return finish_tx(ok);
}

/* ---- leases -------------------------------------------------------------- */

static const char SQL_HEARTBEAT[] =
    "UPDATE run_items SET lease_expires_ms = ?2 WHERE status = 'running' AND lease_owner = ?1 "
    "AND id NOT IN (SELECT value FROM json_each(?3))";
/* An item of a canceled run is not queued again: nothing would claim it
 * (the claim draws from queued and running runs only), so it settles as
 * canceled instead. */
static const char SQL_EXPIRED[] =
    "SELECT i.id, i.run_id, i.attempts, r.status = 'canceled' FROM run_items i "
    "JOIN runs r ON r.id = i.run_id WHERE i.status = 'running' "
    "AND (i.lease_expires_ms < ?1 OR (?2 AND i.lease_owner IS NOT ?3))";
static const char SQL_RESCUE_CANCEL[] =
    "UPDATE run_items SET status = 'canceled', finished_at = ?2, lease_owner = NULL, "
    "lease_expires_ms = NULL WHERE id = ?1 AND status = 'running'";
/* Items given back (queue_release) by a stopping daemon after their run was
 * canceled: at start-up they settle as canceled. */
static const char SQL_ORPHANS[] =
    "UPDATE run_items SET status = 'canceled', finished_at = ?1 WHERE status = 'queued' "
    "AND run_id IN (SELECT id FROM runs WHERE status = 'canceled') RETURNING id, run_id";
static const char SQL_RESCUE_REQUEUE[] =
    "UPDATE run_items SET status = 'queued', lease_owner = NULL, lease_expires_ms = NULL, "
    "not_before_ms = 0 WHERE id = ?1 AND status = 'running'";
static const char SQL_RESCUE_FAIL[] =
    "UPDATE run_items SET status = 'failed', error = ?2, finished_at = ?3, lease_owner = NULL, "
    "lease_expires_ms = NULL WHERE id = ?1 AND status = 'running'";

sf_status queue_heartbeat(const char *owner, int64_t lease_ms, const long long *skip, int nskip)
{
    struct strbuf ids;
    sb_init(&ids);
    sb_putc(&ids, '[');
    for (int i = 0; i < nskip; i++)
        sb_printf(&ids, "%s%lld", i ? "," : "", skip[i]);
    sb_putc(&ids, ']');
    sqlite3_stmt *st = db_stmt(SQL_HEARTBEAT);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, now_unix_ms() + lease_ms);
    sqlite3_bind_text(st, 3, ids.data, (int)ids.len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_warn("queue: heartbeat: %s", sqlite3_errmsg(db_conn()));
    db_done(st);
    sb_free(&ids);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

/* SQL_ORPHANS in the open transaction; how many, or -1. */
static int cancel_orphans(const char *now)
{
    struct {
        long long id, run_id;
    } *found = NULL;
    int n = 0, rc;
    sqlite3_stmt *st = db_stmt(SQL_ORPHANS);
    db_bind_text(st, 1, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        found = xrealloc(found, sizeof(*found) * (size_t)(n + 1));
        found[n].id = sqlite3_column_int64(st, 0);
        found[n].run_id = sqlite3_column_int64(st, 1);
        n++;
    }
    db_done(st);
    int ok = rc == SQLITE_DONE;
    for (int i = 0; i < n && ok; i++)
        ok = settle_item(found[i].id, found[i].run_id, 0, 0, 1, now) == 0;
    free(found);
    return ok ? n : -1;
}

int queue_rescue(const char *owner, enum rescue_scope scope, int max_attempts)
{
    if (db_begin() != SF_OK)
        return -1;
    char now[32];
    now_rfc3339(now);
    struct {
        long long id, run_id;
        int attempts, canceled;
    } *found = NULL;
    size_t n = 0;
    int orphans = scope == RESCUE_ALL_FOREIGN ? cancel_orphans(now) : 0;
    if (orphans < 0) {
        db_rollback();
        return -1;
    }
    sqlite3_stmt *st = db_stmt(SQL_EXPIRED);
    sqlite3_bind_int64(st, 1, now_unix_ms());
    sqlite3_bind_int(st, 2, scope == RESCUE_ALL_FOREIGN);
    db_bind_text(st, 3, owner);
    while (sqlite3_step(st) == SQLITE_ROW) {
        found = xrealloc(found, sizeof(*found) * (n + 1));
        found[n].id = sqlite3_column_int64(st, 0);
        found[n].run_id = sqlite3_column_int64(st, 1);
        found[n].attempts = sqlite3_column_int(st, 2);
        found[n].canceled = sqlite3_column_int(st, 3);
        n++;
    }
    db_done(st);
    if (n == 0 && orphans == 0) { /* the common case, once a second: nothing to commit */
        db_rollback();
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        int give_up = found[i].attempts >= max_attempts;
        if (found[i].canceled) {
            st = db_stmt(SQL_RESCUE_CANCEL);
            sqlite3_bind_int64(st, 1, found[i].id);
            db_bind_text(st, 2, now);
            ok = sqlite3_step(st) == SQLITE_DONE;
            db_done(st);
            if (ok)
                ok = settle_item(found[i].id, found[i].run_id, 0, 0, 1, now) == 0;
            continue;
        }
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
        if (ok && give_up)
            ok = settle_item(found[i].id, found[i].run_id, 0, 1, 0, now) == 0;
    }
    free(found);
    if (finish_tx(ok) != SF_OK)
        return -1;
    return (int)n + orphans;
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
/* A paused run stays paused: its items wait for the resume. */
static const char SQL_RUN_RETRY[] =
    "UPDATE runs SET status = CASE status WHEN 'paused' THEN 'paused' ELSE 'running' END, "
    "completed_at = NULL, error_message = NULL WHERE id = ?1";

/* Opens the write transaction of a run-wide change and reads the run. */
static sf_status begin_on_run(long long run_id, struct run_row *rs)
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
    struct run_row rs;
    sf_status s = begin_on_run(run_id, &rs);
    if (s != SF_OK)
        return s;
    if (run_state_is_final(rs.state)) {
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
        ok = event_item(ids[i], now) == 0;
    free(ids);
    ok = ok && step_done(SQL_RUN_CANCEL, run_id, now) >= 0;
    rs.canceled += n;
    /* Images made before the cancel are kept and filed like any run's. */
    ok = ok && (rs.completed == 0 || file_album(run_id, &rs, now) == 0);
    ok = ok && webhooks_queue_run_end(run_id, now) == SF_OK;
    ok = ok && event_status(run_id, now) == 0;
    return finish_tx(ok);
}

/* ---- pause, resume, priority ---------------------------------------------- */

static const char SQL_RUN_PAUSE[] = "UPDATE runs SET status = 'paused' WHERE id = ?1";
/* Back to running, or to queued when no item was ever claimed. */
static const char SQL_RUN_RESUME[] =
    "UPDATE runs SET status = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END "
    "WHERE id = ?1";
static const char SQL_RUN_PRIORITY[] = "UPDATE runs SET priority = ?2 WHERE id = ?1";

/* The run's status row and its status event, when from (a set of states,
 * as bits 1 << state) allows the change. */
static sf_status change_run(long long run_id, unsigned from, const char *sql, int value)
{
    struct run_row rs;
    sf_status s = begin_on_run(run_id, &rs);
    if (s != SF_OK)
        return s;
    if (!(from & (1u << rs.state))) {
        db_rollback();
        return SF_ECONFLICT;
    }
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_bind_parameter_count(st) >= 2) /* the priority's ?2 */
        sqlite3_bind_int(st, 2, value);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    db_done(st);
    ok = ok && event_status(run_id, now) == 0;
    return finish_tx(ok);
}

#define FROM(state) (1u << (state))

sf_status queue_pause_run(long long run_id)
{
    return change_run(run_id, FROM(RUN_QUEUED) | FROM(RUN_RUNNING), SQL_RUN_PAUSE, 0);
}

sf_status queue_resume_run(long long run_id)
{
    return change_run(run_id, FROM(RUN_PAUSED), SQL_RUN_RESUME, 0);
}

sf_status queue_set_priority(long long run_id, int priority)
{
    return change_run(run_id, FROM(RUN_QUEUED) | FROM(RUN_RUNNING) | FROM(RUN_PAUSED),
                      SQL_RUN_PRIORITY, priority);
}

static int retry_state(long long run_id, enum item_state state)
{
    sqlite3_stmt *st = db_stmt(SQL_RETRY_ITEMS);
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text(st, 2, item_state_name(state));
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? sqlite3_changes(db_conn()) : -1;
}

sf_status queue_retry_run(long long run_id)
{
    struct run_row rs;
    sf_status s = begin_on_run(run_id, &rs);
    if (s != SF_OK)
        return s;
    int failed = retry_state(run_id, ITEM_FAILED);
    int canceled = retry_state(run_id, ITEM_CANCELED);
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
    ok = ok && event_status(run_id, now) == 0;
    return finish_tx(ok);
}

/* Items of paused runs are not due: they wait for an operator. */
static const char SQL_NEXT_DUE[] =
    "SELECT min(i.not_before_ms) FROM runs r JOIN run_items i ON i.run_id = r.id "
    "AND i.status = 'queued' WHERE r.status IN ('queued', 'running')";

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

sf_status queue_release(const struct claimed_item *it, const char *owner)
{
    sqlite3_stmt *st = db_stmt(SQL_RELEASE);
    sqlite3_bind_int64(st, 1, it->item_id);
    db_bind_text(st, 2, owner);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_warn("queue: release: %s", sqlite3_errmsg(db_conn()));
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}
