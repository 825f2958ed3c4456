/*
 * test_run_controls.c: pause, resume and priority on the durable queue
 * (docs/run-controls.md): the claim takes the highest priority first and
 * keeps the round robin within a level; a paused run's items are not
 * claimed while its running ones finish; the queue-wide pause stops every
 * claim; the states a change starts from; the events each writes.
 */
#include <stdlib.h>
#include <unistd.h>

#include "queue/queue.h"
#include "store/settings.h"
#include "unit_runs.h"

static long long rr;

static const char *status_of(long long run_id)
{
    static char buf[16];
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_conn(), "SELECT status FROM runs WHERE id = ?1", -1, &st, NULL);
    sqlite3_bind_int64(st, 1, run_id);
    snprintf(buf, sizeof(buf), "%s",
             sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "?");
    sqlite3_finalize(st);
    return buf;
}

/* Claims one item and completes it; its run id (0: nothing claimed). */
static long long claim_complete(void)
{
    struct claimed_item it;
    if (queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) != 1)
        return 0;
    struct sf_image img = {.png = NULL, .png_len = 10, .width = 64, .height = 64, .seed = 1};
    CHECK(queue_complete(&it, "w1", &img, "ab", "ep", 1) == SF_OK);
    long long run = it.run_id;
    claimed_item_free(&it);
    return run;
}

static long long events_of(long long run_id)
{
    return unit_scalar("SELECT count(*) FROM run_events WHERE run_id = ?1", run_id);
}

/* Higher priority first, whatever the order of creation; equal priorities
 * take turns; a lower one waits until nothing higher is left. */
static void priority_then_round_robin(long long tid)
{
    long long low = unit_make_run(tid, 2);   /* priority 0 */
    long long a = unit_make_run(tid, 2), b = unit_make_run(tid, 2);
    CHECK(queue_set_priority(a, 10) == SF_OK && queue_set_priority(b, 10) == SF_OK);
    long long seen[4];
    for (int i = 0; i < 4; i++)
        seen[i] = claim_complete();
    for (int i = 0; i < 4; i++)
        CHECK(seen[i] == a || seen[i] == b);
    CHECK(seen[0] != seen[1] && seen[1] != seen[2] && seen[2] != seen[3]); /* turns */
    CHECK(claim_complete() == low && claim_complete() == low);
    CHECK(claim_complete() == 0);
    CHECK(strcmp(status_of(low), "completed") == 0);
    /* a negative priority goes behind the default */
    long long back = unit_make_run(tid, 1), normal = unit_make_run(tid, 1);
    CHECK(queue_set_priority(back, -5) == SF_OK);
    CHECK(claim_complete() == normal && claim_complete() == back);
}

/* A new priority counts from the next claim on. */
static void changed_priority_takes_effect_at_the_next_claim(long long tid)
{
    long long first = unit_make_run(tid, 3), second = unit_make_run(tid, 3);
    CHECK(claim_complete() != 0);
    long long events = events_of(second);
    CHECK(queue_set_priority(second, 50) == SF_OK);
    CHECK(events_of(second) == events + 1); /* its status event, with the priority */
    CHECK(unit_scalar("SELECT json_extract(data, '$.priority') FROM run_events WHERE run_id = ?1 "
                      "ORDER BY id DESC LIMIT 1", second) == 50);
    CHECK(claim_complete() == second && claim_complete() == second && claim_complete() == second);
    CHECK(claim_complete() != second);
    while (claim_complete())
        ;
    CHECK(strcmp(status_of(first), "completed") == 0);
    /* a final run's priority cannot change; out of range is the caller's
     * check, and the schema's too */
    CHECK(queue_set_priority(first, 3) == SF_ECONFLICT);
    CHECK(queue_set_priority(987654, 3) == SF_ENOTFOUND);
    long long r = unit_make_run(tid, 1);
    CHECK(queue_set_priority(r, 101) != SF_OK);
    CHECK(unit_scalar("SELECT priority FROM runs WHERE id = ?1", r) == 0);
    CHECK(queue_cancel_run(r) == SF_OK);
}

/* Pause: the item being drawn finishes and counts, nothing more is claimed,
 * the run stays paused; resume brings it back to running. */
static void paused_run_is_skipped(long long tid)
{
    long long p = unit_make_run(tid, 3), other = unit_make_run(tid, 2);
    struct claimed_item it;
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1);
    while (it.run_id != p) { /* draw until one of p's items is in flight */
        struct sf_image img = {.png_len = 10, .width = 64, .height = 64};
        CHECK(queue_complete(&it, "w1", &img, "cd", "ep", 1) == SF_OK);
        claimed_item_free(&it);
        CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1);
    }
    CHECK(queue_pause_run(p) == SF_OK);
    CHECK(strcmp(status_of(p), "paused") == 0);
    CHECK(queue_pause_run(p) == SF_ECONFLICT); /* already paused */
    struct sf_image img = {.png_len = 10, .width = 64, .height = 64};
    CHECK(queue_complete(&it, "w1", &img, "ef", "ep", 1) == SF_OK); /* in flight: recorded */
    claimed_item_free(&it);
    CHECK(strcmp(status_of(p), "paused") == 0); /* items left: stays paused */
    long long done = unit_scalar("SELECT completed_items FROM runs WHERE id = ?1", p);
    while (claim_complete())
        ; /* drains the other run only */
    CHECK(strcmp(status_of(other), "completed") == 0);
    CHECK(unit_scalar("SELECT completed_items FROM runs WHERE id = ?1", p) == done);
    /* a paused run's items are not due, even past their backoff (else an
     * idle worker would wake every millisecond for them) */
    CHECK(unit_scalar("UPDATE run_items SET not_before_ms = 7 WHERE run_id = ?1 "
                      "AND status = 'queued' RETURNING 1", p) == 1);
    CHECK(queue_next_due() == 0);
    CHECK(queue_resume_run(p) == SF_OK);
    CHECK(strcmp(status_of(p), "running") == 0);
    CHECK(queue_resume_run(p) == SF_ECONFLICT);
    CHECK(queue_next_due() == 7);
    while (claim_complete())
        ;
    CHECK(strcmp(status_of(p), "completed") == 0);
    CHECK(queue_pause_run(p) == SF_ECONFLICT); /* final */
    CHECK(queue_resume_run(987654) == SF_ENOTFOUND && queue_pause_run(987654) == SF_ENOTFOUND);
}

/* A run paused before its first claim resumes to queued; a paused run can
 * be canceled; a paused run whose last items settle ends. */
static void paused_edges(long long tid)
{
    long long q = unit_make_run(tid, 2);
    long long events = events_of(q);
    CHECK(queue_pause_run(q) == SF_OK && events_of(q) == events + 1);
    CHECK(unit_scalar("SELECT json_extract(data, '$.status') = 'paused' FROM run_events "
                      "WHERE run_id = ?1 ORDER BY id DESC LIMIT 1", q) == 1);
    CHECK(queue_resume_run(q) == SF_OK && strcmp(status_of(q), "queued") == 0);
    CHECK(queue_pause_run(q) == SF_OK);
    CHECK(queue_cancel_run(q) == SF_OK && strcmp(status_of(q), "canceled") == 0);
    CHECK(unit_scalar("SELECT canceled_items FROM runs WHERE id = ?1", q) == 2);

    /* every item in flight when paused: the run completes, not "paused
     * forever with nothing to resume" */
    long long f = unit_make_run(tid, 1);
    struct claimed_item it;
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == f);
    CHECK(queue_pause_run(f) == SF_OK);
    struct sf_image img = {.png_len = 10, .width = 64, .height = 64};
    CHECK(queue_complete(&it, "w1", &img, "gh", "ep", 1) == SF_OK);
    claimed_item_free(&it);
    CHECK(strcmp(status_of(f), "completed") == 0);

    /* retry of a paused run's failed item keeps it paused */
    long long g = unit_make_run(tid, 2);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == g);
    CHECK(queue_fail(&it, "w1", "bad", 1, 3, 0, "ep") == SF_OK);
    claimed_item_free(&it);
    CHECK(queue_pause_run(g) == SF_OK && queue_retry_run(g) == SF_OK);
    CHECK(strcmp(status_of(g), "paused") == 0);
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 0);
    CHECK(queue_cancel_run(g) == SF_OK);
}

/* The queue-wide pause: no claim at all while its row exists. */
static void queue_pause_stops_every_claim(long long tid)
{
    long long r = unit_make_run(tid, 1);
    CHECK(settings_set_flag(SETTING_QUEUE_PAUSED, 1) == SF_OK);
    CHECK(settings_set_flag(SETTING_QUEUE_PAUSED, 1) == SF_OK); /* twice: still on */
    int on = 0;
    CHECK(settings_flag(SETTING_QUEUE_PAUSED, &on) == SF_OK && on == 1);
    CHECK(claim_complete() == 0);
    CHECK(settings_set_flag(SETTING_QUEUE_PAUSED, 0) == SF_OK);
    CHECK(settings_flag(SETTING_QUEUE_PAUSED, &on) == SF_OK && on == 0);
    CHECK(claim_complete() == r);
}

/* An item released by a stopping daemon after its run was canceled is
 * settled as canceled at the next start, not left queued forever. */
static void orphan_of_a_canceled_run_settles(long long tid)
{
    long long c = unit_make_run(tid, 2);
    struct claimed_item it;
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1 && it.run_id == c);
    CHECK(queue_cancel_run(c) == SF_OK);
    CHECK(queue_release(&it, "w1") == SF_OK); /* the daemon stopped meanwhile */
    claimed_item_free(&it);
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued'", c) == 1);
    CHECK(queue_rescue("new", RESCUE_ALL_FOREIGN, 3) == 1);
    CHECK(unit_scalar("SELECT canceled_items FROM runs WHERE id = ?1", c) == 2);
    CHECK(runs_is_final(c, unit_scalar("SELECT max(id) FROM run_events WHERE run_id = ?1", c)) == 1);
}

/* The plan of the claim: the runs walked in runs_claim's order, each run's
 * item found through run_items_queue; no table scanned without an index
 * and nothing sorted (only json_each, the one-row CTEs and the constant
 * row are SCANs). */
static void claim_uses_indexes(void)
{
    char *sql = NULL;
    CHECK(asprintf(&sql, "EXPLAIN QUERY PLAN %s", queue_claim_sql()) > 0);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL) == SQLITE_OK);
    int bad = 0, walks = 0, items = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        int scan = strncmp(d, "SCAN", 4) == 0;
        if ((scan && !strstr(d, "USING INDEX") && !strstr(d, "VIRTUAL TABLE") &&
             strcmp(d, "SCAN top") != 0 && strcmp(d, "SCAN pick") != 0 &&
             strcmp(d, "SCAN CONSTANT ROW") != 0) || strstr(d, "TEMP B-TREE")) {
            fprintf(stderr, "claim plan: %s\n", d);
            bad++;
        }
        walks += strstr(d, "USING INDEX runs_claim") != NULL;
        items += strstr(d, "USING INDEX run_items_queue") != NULL;
    }
    sqlite3_finalize(st);
    free(sql);
    CHECK(bad == 0);
    CHECK(walks == 2 && items >= 2);
}

int main(void)
{
    char path[] = "/tmp/sf-runctl-XXXXXX";
    unit_open_db(path);
    long long tid = unit_template();
    priority_then_round_robin(tid);
    changed_priority_takes_effect_at_the_next_claim(tid);
    paused_run_is_skipped(tid);
    paused_edges(tid);
    queue_pause_stops_every_claim(tid);
    orphan_of_a_canceled_run_settles(tid);
    claim_uses_indexes();
    CHECK(unit_scalar("SELECT count(*) FROM run_items WHERE status = 'running' AND ?1", 1) == 0);
    db_close_thread();
    unit_remove_db(path);
    UNIT_END("run_controls");
}
