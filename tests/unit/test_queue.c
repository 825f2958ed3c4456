/*
 * test_queue.c: the durable queue's state machine on a real SQLite file:
 * claim with leases, idempotent completion, transient and permanent
 * failures, rescue of expired leases, round robin across runs, cancel,
 * retry, and the album filed when a run ends.
 */
#include <stdlib.h>
#include <unistd.h>

#include "queue/queue.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/templates.h"
#include "unit_runs.h"

static const char *status_of(long long run_id)
{
    static char buf[16];
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_conn(), "SELECT status FROM runs WHERE id = ?1", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run_id);
    snprintf(buf, sizeof(buf), "%s", sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "?");
    sqlite3_finalize(st);
    return buf;
}

static struct sf_image fake_image(void)
{
    struct sf_image img = {.png = NULL, .png_len = 100, .width = 64, .height = 64, .seed = 1};
    return img;
}

static long long rr; /* the round-robin position the worker would keep */
static struct claimed_item it;

/* A 3-item run: claim, complete, a duplicate completion links once. */
static void claim_and_complete_once(long long a)
{
    CHECK(strcmp(status_of(a), "queued") == 0);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1);
    CHECK(it.run_id == a && it.index == 0 && it.attempts == 1 && rr == a);
    CHECK(strcmp(it.prompt, "prompt 0") == 0 && it.seed == 10 && it.width == 64);
    CHECK(strcmp(status_of(a), "running") == 0);
    struct sf_image img = fake_image();
    CHECK(queue_complete(&it, "w1", &img, "aa", "ep", 5) == SF_OK);
    CHECK(queue_complete(&it, "w1", &img, "aa", "ep", 5) == SF_OK); /* idempotent */
    CHECK(unit_scalar("SELECT count(*) FROM images WHERE run_id = ?1", a) == 1);
    CHECK(unit_scalar("SELECT completed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);
}

/* Transient failures go back to queued, avoiding the endpoint skips the
 * item, permanent ones fail at once. */
static void failures_requeue_or_fail(long long a)
{
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.index == 1);
    CHECK(queue_fail(&it, "w1", "timeout", 0, 3, 0, "ep") == SF_OK);
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued' AND error = 'timeout'", a) == 1);
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, "ep", (const char *[]){"ep", "other"}, 2, &it) == 1 && it.index == 2);
    CHECK(queue_fail(&it, "w1", "rejected", 1, 3, 0, "ep") == SF_OK);
    CHECK(unit_scalar("SELECT failed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);
}

/*
 * A retry avoids every endpoint that failed the item while another endpoint
 * it has not failed on is up; once every up endpoint has failed it, any of
 * them may take it. The set is kept in the row; a refusal adds nothing.
 */
static void retries_avoid_every_endpoint_that_failed(long long tid)
{
    long long g = unit_make_run(tid, 1);
    const char *abc[] = {"a", "b", "c"}, *ab[] = {"a", "b"}, *ba[] = {"b", "a"};
    CHECK(queue_claim("w1", 30000, &rr, "a", abc, 3, &it) == 1 && it.run_id == g);
    CHECK(queue_fail(&it, "w1", "HTTP 500", 0, 5, 0, "a") == SF_OK);
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, "a", abc, 3, &it) == 0); /* b and c have not failed it */
    CHECK(queue_claim("w1", 30000, &rr, "b", abc, 3, &it) == 1 && it.run_id == g);
    CHECK(queue_fail(&it, "w1", "HTTP 500", 0, 5, 0, "b") == SF_OK);
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, "a", abc, 3, &it) == 0); /* c is up and has not */
    CHECK(queue_claim("w1", 30000, &rr, "b", abc, 3, &it) == 0);
    /* c is down: every endpoint up has failed it, so it may go anywhere */
    CHECK(queue_claim("w1", 30000, &rr, "b", ba, 2, &it) == 1 && it.run_id == g);
    CHECK(queue_fail(&it, "w1", "HTTP 500", 0, 5, 0, "b") == SF_OK); /* b once, not twice */
    claimed_item_free(&it);
    CHECK(unit_scalar("SELECT failed_endpoints = '[\"a\",\"b\"]' FROM run_items WHERE run_id = ?1", g) == 1);
    CHECK(queue_claim("w1", 30000, &rr, "a", ab, 2, &it) == 1 && it.run_id == g);
    CHECK(queue_fail(&it, "w1", "rejected", 1, 5, 0, "a") == SF_OK); /* permanent */
    claimed_item_free(&it);
    CHECK(unit_scalar("SELECT json_array_length(failed_endpoints) FROM run_items WHERE run_id = ?1", g) == 2);
    CHECK(strcmp(status_of(g), "failed") == 0);
    /* an operator's retry keeps the set, like attempts and the error */
    CHECK(queue_retry_run(g) == SF_OK);
    CHECK(queue_claim("w1", 30000, &rr, "a", abc, 3, &it) == 0);
    CHECK(queue_claim("w1", 30000, &rr, "c", abc, 3, &it) == 1 && it.run_id == g);
    CHECK(queue_cancel_run(g) == SF_OK);
    CHECK(queue_mark_canceled(&it, "w1") == SF_OK);
    claimed_item_free(&it);
}

/* The run's eta_s in tenths of a second. */
static long long eta_tenths(long long run_id, int parallelism)
{
    json_t *run = NULL;
    CHECK(runs_get(run_id, READ_ALL, parallelism, &run) == SF_OK);
    const json_t *eta = json_object_get(run, "eta_s");
    long long t = json_is_number(eta) ? (long long)(json_number_value(eta) * 10 + 0.5) : -1;
    json_decref(run);
    return t;
}

/*
 * The ETA counts what running items have already taken: an item stuck far
 * past the mean (a hung server) keeps the run from claiming it is nearly
 * done; an item on time takes the rest of the mean.
 */
static void eta_counts_the_time_running_items_took(long long tid)
{
    struct sf_image img = fake_image();
    long long h = unit_make_run(tid, 4);
    CHECK(eta_tenths(h, 2) == -1); /* nothing finished: unknown */
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == h);
    CHECK(queue_complete(&it, "w1", &img, "ee", "ep", 100) == SF_OK); /* mean: 100 ms */
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == h);
    /* on time: (2 queued x 100 ms + the rest of its 100 ms) / 2 slots */
    long long t = eta_tenths(h, 2);
    CHECK(t >= 1 && t <= 2);
    /* stuck for 20 s: it needs as long again, and the run waits for it */
    CHECK(unit_scalar("UPDATE run_items SET started_ms = started_ms - 20000 WHERE run_id = ?1 "
                      "AND status = 'running' RETURNING 1", h) == 1);
    t = eta_tenths(h, 2);
    CHECK(t >= 200 && t <= 210);
    CHECK(queue_cancel_run(h) == SF_OK);
    CHECK(queue_mark_canceled(&it, "w1") == SF_OK);
    claimed_item_free(&it);
    CHECK(eta_tenths(h, 2) == 0); /* final */
}

/* A lease that expires is rescued; a stale owner cannot fail it later. */
static void expired_lease_is_rescued(long long a)
{
    CHECK(queue_claim("dead", 1000, &rr, NULL, NULL, 0, &it) == 1 && it.index == 1 && it.attempts == 2);
    CHECK(queue_rescue("me", RESCUE_EXPIRED, 3) == 0); /* not expired yet */
    CHECK(queue_rescue("me", RESCUE_ALL_FOREIGN, 3) == 1); /* foreign owner at start-up */
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued'", a) == 1);
    CHECK(queue_fail(&it, "dead", "late", 1, 3, 0, "ep") == SF_OK); /* changes nothing */
    CHECK(unit_scalar("SELECT failed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);
}

/* The last item completes: the run completes with an album of 2 images,
 * and an event stream is final only once it has read the last event. */
static long long last_item_files_the_album(long long a)
{
    struct sf_image img = fake_image();
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.index == 1 && it.attempts == 3);
    CHECK(queue_complete(&it, "w1", &img, "bb", "ep", 5) == SF_OK);
    claimed_item_free(&it);
    CHECK(strcmp(status_of(a), "completed") == 0);
    long long album = unit_scalar("SELECT album_id FROM runs WHERE id = ?1", a);
    CHECK(album > 0);
    CHECK(unit_scalar("SELECT count(*) FROM album_images WHERE album_id = ?1", album) == 2);
    CHECK(unit_scalar("SELECT source_id FROM albums WHERE id = ?1", album) == a);
    long long last_event = unit_scalar("SELECT max(id) FROM run_events WHERE run_id = ?1", a);
    CHECK(last_event > 0);
    CHECK(runs_is_final(a, last_event) == 1);
    CHECK(runs_is_final(a, last_event - 1) == 0);
    CHECK(runs_is_final(a, 0) == 0);
    return album;
}

/* Retry: the failed item is queued again; finishing it joins the album at
 * its item position. */
static void retry_joins_the_album(long long a, long long album)
{
    struct sf_image img = fake_image();
    CHECK(queue_retry_run(a) == SF_OK);
    CHECK(strcmp(status_of(a), "running") == 0);
    CHECK(queue_retry_run(a) == SF_ECONFLICT); /* nothing left to retry */
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.index == 2);
    CHECK(queue_complete(&it, "w1", &img, "cc", "ep", 5) == SF_OK);
    claimed_item_free(&it);
    CHECK(strcmp(status_of(a), "completed") == 0);
    CHECK(unit_scalar("SELECT count(*) FROM album_images WHERE album_id = ?1", album) == 3);
    CHECK(unit_scalar("SELECT max(position) FROM album_images WHERE album_id = ?1", album) == 2);
}

/* Round robin: two runs alternate. */
static void runs_take_turns(long long tid)
{
    struct sf_image img = fake_image();
    long long b = unit_make_run(tid, 2), c = unit_make_run(tid, 2);
    long long seen[4];
    for (int i = 0; i < 4; i++) {
        CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1);
        seen[i] = it.run_id;
        CHECK(queue_complete(&it, "w1", &img, "dd", "ep", 1) == SF_OK);
        claimed_item_free(&it);
    }
    CHECK(seen[0] != seen[1] && seen[1] != seen[2] && seen[2] != seen[3]);
    CHECK(strcmp(status_of(b), "completed") == 0 && strcmp(status_of(c), "completed") == 0);
}

/* Cancel: queued items canceled, the running one settles as canceled, and
 * the event log ends with a status event. */
static void cancel_settles_every_item(long long tid)
{
    long long d = unit_make_run(tid, 3);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == d);
    CHECK(queue_cancel_run(d) == SF_OK);
    CHECK(strcmp(status_of(d), "canceled") == 0);
    CHECK(unit_scalar("SELECT canceled_items FROM runs WHERE id = ?1", d) == 2);
    CHECK(queue_cancel_run(d) == SF_ECONFLICT);
    CHECK(queue_mark_canceled(&it, "w1") == SF_OK);
    CHECK(unit_scalar("SELECT canceled_items FROM runs WHERE id = ?1", d) == 3);
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 0); /* nothing left */
    CHECK(queue_cancel_run(987654) == SF_ENOTFOUND);
    CHECK(unit_scalar("SELECT type = 'status' FROM run_events WHERE run_id = ?1 ORDER BY id DESC LIMIT 1", d) == 1);
}

/* A run where every item fails: failed, no album. */
static void all_failed_is_failed_without_album(long long tid)
{
    long long e = unit_make_run(tid, 1);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == e);
    CHECK(queue_fail(&it, "w1", "boom", 0, 1, 0, "ep") == SF_OK); /* out of attempts */
    claimed_item_free(&it);
    CHECK(strcmp(status_of(e), "failed") == 0);
    CHECK(unit_scalar("SELECT album_id IS NULL FROM runs WHERE id = ?1", e) == 1);
}

/* The heartbeat renews every lease the owner holds but the skipped ones,
 * which expire and are rescued; a release gives the attempt back. */
static void heartbeat_skips_abandoned_items(long long tid)
{
    long long f = unit_make_run(tid, 2);
    struct claimed_item a2, b2;
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &a2) == 1 && a2.run_id == f);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &b2) == 1 && b2.run_id == f);
    CHECK(unit_scalar("UPDATE run_items SET lease_expires_ms = 1 WHERE run_id = ?1 RETURNING 1", f) == 1);
    long long skip[] = {b2.item_id};
    CHECK(queue_heartbeat("w1", 30000, skip, 1) == SF_OK);
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND lease_expires_ms > 1", f) == 1);
    CHECK(queue_rescue("w1", RESCUE_EXPIRED, 3) == 1); /* the skipped one */
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued'", f) == 1);
    CHECK(queue_release(&a2, "w1") == SF_OK);
    CHECK(unit_scalar("SELECT max(attempts) FROM run_items WHERE run_id = ?1", f) == 1);
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued'", f) == 2);
    claimed_item_free(&a2);
    claimed_item_free(&b2);
    CHECK(queue_cancel_run(f) == SF_OK);
}

/* One name table per state machine, read back the same way. */
static void state_names_round_trip(void)
{
    for (int i = 0; i < ITEM_NSTATES; i++) {
        enum item_state s;
        CHECK(item_state_parse(item_state_name((enum item_state)i), &s) == 0 && (int)s == i);
    }
    for (int i = 0; i < RUN_NSTATES; i++) {
        enum run_state s;
        CHECK(run_state_parse(run_state_name((enum run_state)i), &s) == 0 && (int)s == i);
    }
    enum run_state r;
    CHECK(run_state_parse("resting", &r) == -1 && run_state_parse(NULL, &r) == -1);
    CHECK(run_state_is_final(RUN_CANCELED) && !run_state_is_final(RUN_RUNNING));
    CHECK_STR(item_state_name(ITEM_SUCCEEDED), "succeeded");
    CHECK_STR(run_state_name(RUN_COMPLETED), "completed");
}

int main(void)
{
    char path[] = "/tmp/sf-queue-XXXXXX";
    unit_open_db(path);
    long long tid = unit_template();

    long long a = unit_make_run(tid, 3);
    claim_and_complete_once(a);
    failures_requeue_or_fail(a);
    expired_lease_is_rescued(a);
    long long album = last_item_files_the_album(a);
    retry_joins_the_album(a, album);
    runs_take_turns(tid);
    cancel_settles_every_item(tid);
    all_failed_is_failed_without_album(tid);
    heartbeat_skips_abandoned_items(tid);
    retries_avoid_every_endpoint_that_failed(tid);
    eta_counts_the_time_running_items_took(tid);
    state_names_round_trip();

    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE status = 'running' AND ?1", 1) == 0);
    db_close_thread();
    unit_remove_db(path);
    UNIT_END("queue");
}
