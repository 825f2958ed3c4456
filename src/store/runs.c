/*
 * runs.c: creating runs and reading runs, items and events.
 */
#include "store/runs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/db.h"
#include "store/images.h"
#include "store/states.h"
#include "store/webhooks.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define RUN_COLS                                                               \
    "id, template_id, album_id, album_name, user_theme, status, total_items, " \
    "completed_items, failed_items, canceled_items, steps, seed, width, "      \
    "height, guidance_scale, negative_prompt, loras, created_at, started_at, " \
    "completed_at, error_message, priority, fit"

static const char SQL_GET[] =
    "SELECT " RUN_COLS " FROM runs WHERE id = ?1 AND " SQL_RUN_VISIBLE(2, "runs.id");
static const char SQL_MEAN[] =
    "SELECT avg(duration_ms) FROM run_items WHERE run_id = ?1 AND status = 'succeeded'";
/* The running items: how many, and the sum and the largest of the time each
 * is expected to still take (eta_ms), given the mean ?2 and now ?3. */
static const char SQL_IN_FLIGHT[] =
    "SELECT count(*), total(max(?2 - e, e)), coalesce(max(max(?2 - e, e)), 0) FROM "
    "(SELECT max(?3 - coalesce(started_ms, ?3), 0) AS e FROM run_items "
    "WHERE run_id = ?1 AND status = 'running')";
static const char SQL_LIST[] =
    "SELECT " RUN_COLS " FROM runs WHERE (?1 = 0 OR template_id = ?1) "
    "AND (?2 IS NULL OR status = ?2) AND " SQL_RUN_VISIBLE(5, "runs.id")
    " ORDER BY id DESC LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM runs WHERE (?1 = 0 OR template_id = ?1) AND (?2 IS NULL OR status = ?2) "
    "AND " SQL_RUN_VISIBLE(3, "runs.id");
static const char SQL_IDEM_EXPIRE[] =
    "UPDATE runs SET idempotency_key = NULL WHERE idempotency_key = ?1 AND created_at < ?2";
static const char SQL_IDEM_FIND[] =
    "SELECT id, request_hash FROM runs WHERE idempotency_key = ?1";
static const char SQL_INSERT[] =
    "INSERT INTO runs (template_id, album_name, user_theme, status, total_items, steps, seed, "
    "width, height, guidance_scale, negative_prompt, loras, idempotency_key, request_hash, "
    "creator, created_at, priority, callback_url, fit) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, "
    "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, coalesce(?18, 'exact'))";
/* Items of queued, running and paused runs not settled yet, in all runs and in
 * those without a creator: from the runs' counters (kept in the same
 * transactions as the items' states), so one index search of the active
 * runs rather than a count of every waiting item. An item of a canceled
 * run still being interrupted (a few ms) is not counted: it is stopping. */
static const char SQL_WAITING[] =
    "SELECT coalesce(sum(total_items - completed_items - failed_items - canceled_items), 0), "
    "coalesce(sum(CASE WHEN creator IS NULL THEN total_items - completed_items - failed_items "
    "- canceled_items END), 0) FROM runs WHERE status IN ('queued', 'running', 'paused')";
static const char SQL_ITEM[] =
    "INSERT INTO run_items (run_id, item_index, prompt, seed) VALUES (?1, ?2, ?3, ?4)";
/* The three events, written only here. The creation event is the short
 * one of the contract (docs/runs.md): run_id, status, total_items. */
static const char SQL_EVENT_CREATED[] =
    "INSERT INTO run_events (run_id, type, data, created_at) SELECT id, 'status', "
    "json_object('run_id', id, 'status', status, 'total_items', total_items), ?2 "
    "FROM runs WHERE id = ?1";
static const char SQL_EVENT_STATUS[] =
    "INSERT INTO run_events (run_id, type, data, created_at) "
    "SELECT id, 'status', json_object('run_id', id, 'status', status, 'total_items', total_items, "
    "'completed_items', completed_items, 'failed_items', failed_items, 'canceled_items', "
    "canceled_items, 'album_id', album_id, 'error_message', error_message, 'priority', "
    "priority, 'progress', CASE WHEN total_items > 0 THEN "
    "round(1.0 * (completed_items + failed_items + canceled_items) / total_items, 4) ELSE 1 END, "
    "'eta_s', json(?3)), ?2 "
    "FROM runs WHERE id = ?1";
static const char SQL_EVENT_ITEM[] =
    "INSERT INTO run_events (run_id, type, data, created_at) "
    "SELECT r.id, 'item', json_object('run_id', r.id, 'index', i.item_index, 'status', i.status, "
    "'image_id', i.image_id, 'error', i.error, 'attempts', i.attempts, 'completed_items', "
    "r.completed_items, 'failed_items', r.failed_items, 'canceled_items', r.canceled_items, "
    "'total_items', r.total_items, 'progress', "
    "round(1.0 * (r.completed_items + r.failed_items + r.canceled_items) / r.total_items, 4), "
    "'eta_s', json(?3)), ?2 "
    "FROM run_items i JOIN runs r ON r.id = i.run_id WHERE i.id = ?1";
/* A run's state and items left, by run id (?2 = 0) or by one of its items'
 * id (?2 = 1), for the eta_s of an event. */
static const char SQL_RUN_LEFT[] =
    "SELECT r.id, r.status, r.total_items - r.completed_items - r.failed_items - r.canceled_items "
    "FROM runs r WHERE (?2 = 0 AND r.id = ?1) OR (?2 = 1 AND r.id = (SELECT run_id FROM run_items "
    "WHERE id = ?1))";
static const char SQL_EXISTS[] =
    "SELECT 1 FROM runs WHERE id = ?1 AND " SQL_RUN_VISIBLE(2, "runs.id");
static const char SQL_QUEUE_DEPTH[] =
    "SELECT (SELECT count(*) FROM run_items WHERE status = 'queued'), "
    "(SELECT count(*) FROM run_items WHERE status = 'running')";
static const char SQL_ITEM_COUNTS[] = "SELECT status, count(*) FROM run_items GROUP BY status";
static const char SQL_RUN_COUNTS[] = "SELECT status, count(*) FROM runs GROUP BY status";
static const char SQL_ITEMS[] =
    "SELECT item_index, prompt, seed, status, attempts, error, image_id, endpoint, duration_ms "
    "FROM run_items WHERE run_id = ?1 ORDER BY item_index LIMIT ?2 OFFSET ?3";
static const char SQL_ITEMS_COUNT[] =
    "SELECT total_items FROM runs WHERE id = ?1 AND " SQL_RUN_VISIBLE(2, "runs.id");
static const char SQL_EVENTS[] =
    "SELECT id, type, data FROM run_events WHERE run_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
/* Final and settled (after a cancel, items still being interrupted will
 * add their events, so the stream waits for them too), and no event after
 * the last one sent. One statement, so one snapshot: asked separately, the
 * run could end between the reads and a stream would close without its last
 * events. */
static const char SQL_FINAL[] =
    "SELECT status IN ('completed', 'failed', 'canceled') AND completed_items + failed_items "
    "+ canceled_items >= total_items AND NOT EXISTS (SELECT 1 FROM run_events e "
    "WHERE e.run_id = ?1 AND e.id > ?2) FROM runs WHERE id = ?1";

static json_t *run_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    long long total = sqlite3_column_int64(st, 6);
    long long done = sqlite3_column_int64(st, 7) + sqlite3_column_int64(st, 8) +
                     sqlite3_column_int64(st, 9);
    json_t *loras = json_loads(db_col_text(st, 16), 0, NULL);
    json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
    json_object_set_new(o, "template_id", json_integer(sqlite3_column_int64(st, 1)));
    json_object_set_new(o, "album_id", sqlite3_column_type(st, 2) == SQLITE_NULL
                                           ? json_null()
                                           : json_integer(sqlite3_column_int64(st, 2)));
    json_object_set_new(o, "album_name", json_string(db_col_text(st, 3)));
    json_object_set_new(o, "user_theme", json_string(db_col_text(st, 4)));
    json_object_set_new(o, "status", json_string(db_col_text(st, 5)));
    enum run_state state = RUN_FAILED;
    run_state_parse(db_col_text(st, 5), &state);
    json_object_set_new(o, "paused", json_boolean(state == RUN_PAUSED));
    json_object_set_new(o, "priority", json_integer(sqlite3_column_int(st, 21)));
    json_object_set_new(o, "total_items", json_integer(total));
    json_object_set_new(o, "completed_items", json_integer(sqlite3_column_int64(st, 7)));
    json_object_set_new(o, "failed_items", json_integer(sqlite3_column_int64(st, 8)));
    json_object_set_new(o, "canceled_items", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "steps", json_integer(sqlite3_column_int(st, 10)));
    json_object_set_new(o, "seed", json_integer(sqlite3_column_int64(st, 11)));
    json_object_set_new(o, "width", json_integer(sqlite3_column_int(st, 12)));
    json_object_set_new(o, "height", json_integer(sqlite3_column_int(st, 13)));
    json_object_set_new(o, "guidance_scale", json_real(sqlite3_column_double(st, 14)));
    json_object_set_new(o, "negative_prompt", json_string(db_col_text(st, 15)));
    json_object_set_new(o, "loras", loras ? loras : json_array());
    json_object_set_new(o, "created_at", json_string(db_col_text(st, 17)));
    json_object_set_new(o, "started_at", db_col_json_text(st, 18));
    json_object_set_new(o, "completed_at", db_col_json_text(st, 19));
    json_object_set_new(o, "error_message", db_col_json_text(st, 20));
    json_object_set_new(o, "fit", json_string(db_col_text(st, 22)));
    json_object_set_new(o, "progress", json_real(total ? (double)done / (double)total : 1.0));
    return o;
}

/*
 * The time run id still needs, in ms, from the mean time of its finished
 * items: each queued item takes the mean; a running item that has run e ms
 * is expected to take max(mean - e, e) more: the rest of the mean while it
 * is on time, and once it is late, as long again as it has already run (the
 * longer a call has been stuck, the longer it is likely to stay stuck). The
 * items share the worker slots, but one item cannot be split among them, so
 * the run takes at least as long as its longest running item.
 */
static double eta_ms(long long id, double mean_ms, long long left, int parallelism)
{
    sqlite3_stmt *st = db_stmt(SQL_IN_FLIGHT);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_double(st, 2, mean_ms);
    sqlite3_bind_int64(st, 3, now_unix_ms());
    long long running = 0;
    double rest_ms = 0, longest_ms = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        running = sqlite3_column_int64(st, 0);
        rest_ms = sqlite3_column_double(st, 1);
        longest_ms = sqlite3_column_double(st, 2);
    }
    db_done(st);
    long long queued = left > running ? left - running : 0;
    double shared = ((double)queued * mean_ms + rest_ms) / (parallelism > 0 ? parallelism : 1);
    return shared > longest_ms ? shared : longest_ms;
}

/* eta_s of run id: 0 once final, null while nothing moves (paused) or no
 * item has finished yet, else seconds to one decimal (eta_ms). */
static json_t *run_eta(long long id, int active, int moving, long long left, int parallelism)
{
    if (!active)
        return json_integer(0);
    if (!moving)
        return json_null();
    sqlite3_stmt *st = db_stmt(SQL_MEAN);
    sqlite3_bind_int64(st, 1, id);
    int known = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    double mean_ms = known ? sqlite3_column_double(st, 0) : 0;
    db_done(st);
    return known ? json_real(ceil(eta_ms(id, mean_ms, left, parallelism) / 100) / 10) : json_null();
}

static int (*eta_parallelism_fn)(void);

void runs_eta_source(int (*parallelism)(void))
{
    eta_parallelism_fn = parallelism;
}

sf_status runs_get(long long id, enum read_scope scope, int parallelism, json_t **out)
{
    sqlite3_stmt *st = db_stmt(SQL_GET);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        db_done(st);
        return rc == SQLITE_DONE ? SF_ENOTFOUND : db_status(rc);
    }
    json_t *run = run_json(st);
    long long left = sqlite3_column_int64(st, 6) - sqlite3_column_int64(st, 7) -
                     sqlite3_column_int64(st, 8) - sqlite3_column_int64(st, 9);
    enum run_state state = RUN_FAILED;
    run_state_parse(db_col_text(st, 5), &state);
    int active = !run_state_is_final(state);
    /* Nothing is drawn for a paused run, nor while the queue is paused
     * (parallelism 0): no time can be promised until an operator resumes. */
    int moving = state != RUN_PAUSED && parallelism > 0;
    db_done(st);

    json_object_set_new(run, "eta_s", run_eta(id, active, moving, left, parallelism));
    json_t *hook = webhooks_run_json(id);
    json_object_set_new(run, "webhook", hook ? hook : json_null());
    *out = run;
    return SF_OK;
}

sf_status runs_list(const struct page *pg, enum read_scope scope, long long template_id,
                    const char *status, json_t **rows_out, long long *total_out)
{
    sqlite3_stmt *st = db_stmt(SQL_COUNT);
    sqlite3_bind_int64(st, 1, template_id);
    db_bind_text(st, 2, status);
    sqlite3_bind_int(st, 3, scope == READ_ALL);
    int rc = sqlite3_step(st);
    *total_out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    if (rc != SQLITE_ROW)
        return db_status(rc);
    st = db_stmt(SQL_LIST);
    sqlite3_bind_int64(st, 1, template_id);
    db_bind_text(st, 2, status);
    sqlite3_bind_int64(st, 3, pg->per_page);
    sqlite3_bind_int64(st, 4, page_offset(pg));
    sqlite3_bind_int(st, 5, scope == READ_ALL);
    json_t *rows = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(rows, run_json(st));
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

/* Looks up an idempotency key; SF_OK with *run_id 0 when unseen. */
static sf_status check_idempotency(const struct run_spec *spec, long long *run_id)
{
    *run_id = 0;
    /* A key older than 24 h is forgotten, so it can be used again. */
    char cutoff[32];
    time_t t = time(NULL) - 24 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(cutoff, sizeof(cutoff), "%Y-%m-%dT%H:%M:%SZ", &tm);
    sqlite3_stmt *st = db_stmt(SQL_IDEM_EXPIRE);
    db_bind_text(st, 1, spec->idempotency_key);
    db_bind_text(st, 2, cutoff);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    st = db_stmt(SQL_IDEM_FIND);
    db_bind_text(st, 1, spec->idempotency_key);
    sf_status result = SF_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (strcmp(db_col_text(st, 1), spec->request_hash) == 0)
            *run_id = sqlite3_column_int64(st, 0);
        else
            result = SF_ECONFLICT;
    }
    db_done(st);
    return result;
}

static sf_status insert_event(const char *sql, long long id, const char *now)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, now);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

static sf_status insert_run(const struct run_spec *spec, long long *run_id)
{
    char now[32];
    now_rfc3339(now);
    size_t n = json_array_size(spec->prompts);
    sqlite3_stmt *st = db_stmt(SQL_INSERT);
    sqlite3_bind_int64(st, 1, spec->template_id);
    db_bind_text(st, 2, spec->album_name);
    db_bind_text(st, 3, spec->user_theme);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)n);
    sqlite3_bind_int(st, 5, spec->steps);
    sqlite3_bind_int64(st, 6, spec->seed);
    sqlite3_bind_int(st, 7, spec->width);
    sqlite3_bind_int(st, 8, spec->height);
    sqlite3_bind_double(st, 9, spec->guidance_scale);
    db_bind_text(st, 10, spec->negative_prompt);
    db_bind_json(st, 11, spec->loras);
    db_bind_text(st, 12, spec->idempotency_key);
    db_bind_text(st, 13, spec->request_hash);
    db_bind_text(st, 14, spec->creator);
    db_bind_text(st, 15, now);
    sqlite3_bind_int(st, 16, spec->priority);
    db_bind_text(st, 17, spec->callback_url);
    db_bind_text(st, 18, spec->fit);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    *run_id = sqlite3_last_insert_rowid(db_conn());

    st = db_stmt(SQL_ITEM);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, *run_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        const char *prompt = json_string_value(json_array_get(spec->prompts, i));
        sqlite3_bind_text(st, 3, prompt, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, run_item_seed(spec->seed, (long long)i));
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            db_done(st);
            return db_status(rc);
        }
    }
    db_done(st);
    return insert_event(SQL_EVENT_CREATED, *run_id, now);
}

/* SF_OK when a run of n items fits under caps now (in the caller's write
 * transaction), else the cap's status with caps->excess set. */
static sf_status check_caps(const struct run_spec *spec, long long n, struct run_caps *caps)
{
    sqlite3_stmt *st = db_stmt(SQL_WAITING);
    int rc = sqlite3_step(st);
    long long all = 0, anonymous = 0;
    if (rc == SQLITE_ROW) {
        all = sqlite3_column_int64(st, 0);
        anonymous = sqlite3_column_int64(st, 1);
    }
    db_done(st);
    if (rc != SQLITE_ROW)
        return db_status(rc);
    if (caps->queue_capacity > 0 && all + n > caps->queue_capacity) {
        caps->excess = all + n - caps->queue_capacity;
        return SF_EQUEUEFULL;
    }
    if (!spec->creator && caps->anonymous_max > 0 && anonymous + n > caps->anonymous_max) {
        caps->excess = anonymous + n - caps->anonymous_max;
        return SF_ERATELIMIT;
    }
    return SF_OK;
}

sf_status runs_create(const struct run_spec *spec, struct run_caps *caps, long long *run_id,
                      int *reused)
{
    *reused = 0;
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    if (spec->idempotency_key) {
        s = check_idempotency(spec, run_id);
        if (s != SF_OK || *run_id) {
            db_rollback();
            *reused = *run_id != 0;
            return s;
        }
    }
    if (caps && (s = check_caps(spec, (long long)json_array_size(spec->prompts), caps)) != SF_OK) {
        db_rollback();
        return s;
    }
    s = insert_run(spec, run_id);
    if (s != SF_OK) {
        db_rollback();
        return s;
    }
    return db_commit();
}

sf_status runs_items(long long run_id, enum read_scope scope, const struct page *pg,
                     json_t **rows_out, long long *total_out)
{
    sqlite3_stmt *st = db_stmt(SQL_ITEMS_COUNT);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
    int rc = sqlite3_step(st);
    *total_out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? SF_ENOTFOUND : db_status(rc);
    st = db_stmt(SQL_ITEMS);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, pg->per_page);
    sqlite3_bind_int64(st, 3, page_offset(pg));
    json_t *rows = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "prompt", json_string(db_col_text(st, 1)));
        json_object_set_new(o, "seed", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(o, "status", json_string(db_col_text(st, 3)));
        json_object_set_new(o, "attempts", json_integer(sqlite3_column_int(st, 4)));
        json_object_set_new(o, "error", db_col_json_text(st, 5));
        json_object_set_new(o, "image_id", sqlite3_column_type(st, 6) == SQLITE_NULL
                                               ? json_null()
                                               : json_integer(sqlite3_column_int64(st, 6)));
        json_object_set_new(o, "endpoint", db_col_json_text(st, 7));
        json_object_set_new(o, "duration_ms", sqlite3_column_type(st, 8) == SQLITE_NULL
                                                  ? json_null()
                                                  : json_integer(sqlite3_column_int64(st, 8)));
        json_array_append_new(rows, o);
    }
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

int runs_events(long long run_id, long long *last_id, int limit, run_event_fn fn, void *ctx)
{
    sqlite3_stmt *st = db_stmt(SQL_EVENTS);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, *last_id);
    sqlite3_bind_int(st, 3, limit);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        *last_id = sqlite3_column_int64(st, 0);
        fn(ctx, *last_id, db_col_text(st, 1), db_col_text(st, 2));
        n++;
    }
    db_done(st);
    return n;
}

/*
 * A status or item event, with the run's eta_s as it stands now stored in
 * it: a client that follows status events alone sees progress and time
 * left, and a replay sends what was sent live. by_item: id is an item's.
 */
static sf_status insert_progress_event(const char *sql, long long id, int by_item,
                                       const char *now)
{
    sqlite3_stmt *st = db_stmt(SQL_RUN_LEFT);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, by_item);
    int rc = sqlite3_step(st);
    long long run_id = 0, left = 0;
    enum run_state state = RUN_FAILED;
    if (rc == SQLITE_ROW) {
        run_id = sqlite3_column_int64(st, 0);
        run_state_parse(db_col_text(st, 1), &state);
        left = sqlite3_column_int64(st, 2);
    }
    db_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_status(rc);
    int parallelism = eta_parallelism_fn ? eta_parallelism_fn() : 1;
    json_t *eta = run_eta(run_id, !run_state_is_final(state),
                          state != RUN_PAUSED && parallelism > 0, left, parallelism);
    char *eta_text = json_dumps(eta, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(eta);
    st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, now);
    db_bind_text(st, 3, eta_text);
    rc = sqlite3_step(st);
    db_done(st);
    free(eta_text);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

sf_status runs_event_status(long long run_id, const char *now)
{
    return insert_progress_event(SQL_EVENT_STATUS, run_id, 0, now);
}

sf_status runs_event_item(long long item_id, const char *now)
{
    return insert_progress_event(SQL_EVENT_ITEM, item_id, 1, now);
}

int runs_exists(long long id, enum read_scope scope)
{
    sqlite3_stmt *st = db_stmt(SQL_EXISTS);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
    int found = sqlite3_step(st) == SQLITE_ROW;
    db_done(st);
    return found;
}

/* Counts rows by stored status name into counts[], indexed by parse. */
static sf_status count_by(const char *sql, long long *counts, int n,
                          int (*index_of)(const char *name))
{
    for (int i = 0; i < n; i++)
        counts[i] = 0;
    sqlite3_stmt *st = db_stmt(sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int i = index_of(db_col_text(st, 0));
        if (i >= 0)
            counts[i] = sqlite3_column_int64(st, 1);
    }
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

static int item_index_of(const char *name)
{
    enum item_state s;
    return item_state_parse(name, &s) == 0 ? (int)s : -1;
}

static int run_index_of(const char *name)
{
    enum run_state s;
    return run_state_parse(name, &s) == 0 ? (int)s : -1;
}

sf_status runs_item_counts(long long counts[ITEM_NSTATES])
{
    return count_by(SQL_ITEM_COUNTS, counts, ITEM_NSTATES, item_index_of);
}

sf_status runs_run_counts(long long counts[RUN_NSTATES])
{
    return count_by(SQL_RUN_COUNTS, counts, RUN_NSTATES, run_index_of);
}

int runs_is_final(long long run_id, long long last_id)
{
    sqlite3_stmt *st = db_stmt(SQL_FINAL);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, last_id);
    int final = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    db_done(st);
    return final;
}

sf_status runs_queue_depth(long long *queued, long long *running, const char **why)
{
    sqlite3_stmt *st = db_stmt(SQL_QUEUE_DEPTH);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *queued = sqlite3_column_int64(st, 0);
        *running = sqlite3_column_int64(st, 1);
    }
    db_done(st);
    *why = rc == SQLITE_ROW ? NULL : sqlite3_errstr(rc);
    return rc == SQLITE_ROW ? SF_OK : db_status(rc);
}

static const char SQL_EACH_IMAGE[] =
    "SELECT " IMAGE_SET_COLS("i.item_index") " FROM images i" IMAGE_SET_JOINS
    "WHERE i.run_id = ?1 AND " SQL_IMAGE_VISIBLE(2, "i.id") " ORDER BY i.item_index, i.id";

sf_status runs_each_image(long long run_id, enum read_scope scope,
                          int (*each)(const json_t *row, void *ctx), void *ctx)
{
    return images_each_in_set(SQL_EACH_IMAGE, run_id, scope, each, ctx);
}
