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
#include "unit.h"

static long long scalar(const char *sql, long long arg)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL);
    sqlite3_bind_int64(st, 1, arg);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static long long make_run(long long tid, int n)
{
    json_t *prompts = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(prompts, json_sprintf("prompt %d", i));
    json_t *loras = json_array();
    struct run_spec spec = {.template_id = tid, .album_name = "album", .user_theme = "t", .steps = 5,
                            .seed = 10, .width = 64, .height = 64, .guidance_scale = 7,
                            .negative_prompt = "", .loras = loras, .prompts = prompts,
                            .request_hash = "h"};
    long long id = 0;
    int reused;
    CHECK(runs_create(&spec, &id, &reused) == SF_OK && !reused);
    json_decref(prompts);
    json_decref(loras);
    return id;
}

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

int main(void)
{
    char path[] = "/tmp/sf-queue-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    CHECK(db_open(path, err, sizeof(err)) == 0);
    json_t *row = json_pack("{ss ss si si s[] s[] s[]}", "name", "t", "prompt_template", "x", "width", 64,
                            "height", 64, "loras", "csv_columns", "csv_items");
    long long tid;
    CHECK(templates_insert(row, "test", &tid) == SF_OK);
    json_decref(row);

    /* a 3-item run: claim, complete, a duplicate completion links once */
    long long a = make_run(tid, 3);
    CHECK(strcmp(status_of(a), "queued") == 0);
    long long rr = 0;
    struct claimed_item it;
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1);
    CHECK(it.run_id == a && it.index == 0 && it.attempts == 1 && rr == a);
    CHECK(strcmp(it.prompt, "prompt 0") == 0 && it.seed == 10 && it.width == 64);
    CHECK(strcmp(status_of(a), "running") == 0);
    struct sf_image img = fake_image();
    CHECK(queue_complete(&it, "w1", &img, "aa", "ep", 5) == SF_OK);
    CHECK(queue_complete(&it, "w1", &img, "aa", "ep", 5) == SF_OK); /* idempotent */
    CHECK(scalar("SELECT count(*) FROM images WHERE run_id = ?1", a) == 1);
    CHECK(scalar("SELECT completed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);

    /* transient failure with attempts left: back to queued with a backoff */
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1 && it.index == 1);
    CHECK(queue_fail(&it, "w1", "timeout", 0, 3, 0, "ep") == SF_OK);
    CHECK(scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued' AND error = 'timeout'", a) == 1);
    claimed_item_free(&it);
    /* avoiding the endpoint that failed skips that item */
    CHECK(queue_claim("w1", 30000, &rr, "ep", &it) == 1 && it.index == 2);
    /* permanent failure: failed at once */
    CHECK(queue_fail(&it, "w1", "rejected", 1, 3, 0, "ep") == SF_OK);
    CHECK(scalar("SELECT failed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);

    /* a lease that expires is rescued; a stale owner cannot fail it later */
    CHECK(queue_claim("dead", 1000, &rr, NULL, &it) == 1 && it.index == 1 && it.attempts == 2);
    CHECK(queue_rescue("me", RESCUE_ALL_FOREIGN, 3) == 1); /* foreign owner at start-up */
    CHECK(scalar("SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = 'queued'", a) == 1);
    CHECK(queue_fail(&it, "dead", "late", 1, 3, 0, "ep") == SF_OK); /* changes nothing */
    CHECK(scalar("SELECT failed_items FROM runs WHERE id = ?1", a) == 1);
    claimed_item_free(&it);

    /* the last item completes: the run completes with an album of 2 images */
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1 && it.index == 1 && it.attempts == 3);
    CHECK(queue_complete(&it, "w1", &img, "bb", "ep", 5) == SF_OK);
    claimed_item_free(&it);
    CHECK(strcmp(status_of(a), "completed") == 0);
    long long album = scalar("SELECT album_id FROM runs WHERE id = ?1", a);
    CHECK(album > 0);
    CHECK(scalar("SELECT count(*) FROM album_images WHERE album_id = ?1", album) == 2);
    CHECK(scalar("SELECT source_id FROM albums WHERE id = ?1", album) == a);
    /* an event stream is done only once it has sent the last event: a
     * stream that read the events just before the run ended must read on */
    long long last_event = scalar("SELECT max(id) FROM run_events WHERE run_id = ?1", a);
    CHECK(last_event > 0);
    CHECK(runs_is_final(a, last_event) == 1);
    CHECK(runs_is_final(a, last_event - 1) == 0);
    CHECK(runs_is_final(a, 0) == 0);

    /* retry: the failed item is queued again; finishing it joins the album
     * at its item position */
    CHECK(queue_retry_run(a) == SF_OK);
    CHECK(strcmp(status_of(a), "running") == 0);
    CHECK(queue_retry_run(a) == SF_ECONFLICT); /* nothing left to retry */
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1 && it.index == 2);
    CHECK(queue_complete(&it, "w1", &img, "cc", "ep", 5) == SF_OK);
    claimed_item_free(&it);
    CHECK(strcmp(status_of(a), "completed") == 0);
    CHECK(scalar("SELECT count(*) FROM album_images WHERE album_id = ?1", album) == 3);
    CHECK(scalar("SELECT max(position) FROM album_images WHERE album_id = ?1", album) == 2);

    /* round robin: two runs alternate */
    long long b = make_run(tid, 2), c = make_run(tid, 2);
    long long seen[4];
    for (int i = 0; i < 4; i++) {
        CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1);
        seen[i] = it.run_id;
        queue_complete(&it, "w1", &img, "dd", "ep", 1);
        claimed_item_free(&it);
    }
    CHECK(seen[0] != seen[1] && seen[1] != seen[2] && seen[2] != seen[3]);
    CHECK(strcmp(status_of(b), "completed") == 0 && strcmp(status_of(c), "completed") == 0);

    /* cancel: queued items canceled, the running one settles as canceled */
    long long d = make_run(tid, 3);
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1 && it.run_id == d);
    CHECK(queue_cancel_run(d) == SF_OK);
    CHECK(strcmp(status_of(d), "canceled") == 0);
    CHECK(scalar("SELECT canceled_items FROM runs WHERE id = ?1", d) == 2);
    CHECK(queue_cancel_run(d) == SF_ECONFLICT);
    CHECK(queue_mark_canceled(&it, "w1") == SF_OK);
    CHECK(scalar("SELECT canceled_items FROM runs WHERE id = ?1", d) == 3);
    claimed_item_free(&it);
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 0); /* nothing left */
    CHECK(queue_cancel_run(987654) == SF_ENOTFOUND);
    /* the event log ends with a status event */
    CHECK(scalar("SELECT type = 'status' FROM run_events WHERE run_id = ?1 ORDER BY id DESC LIMIT 1", d) == 1);

    /* a run where every item fails: failed, no album */
    long long e = make_run(tid, 1);
    CHECK(queue_claim("w1", 30000, &rr, NULL, &it) == 1 && it.run_id == e);
    CHECK(queue_fail(&it, "w1", "boom", 0, 1, 0, "ep") == SF_OK); /* out of attempts */
    claimed_item_free(&it);
    CHECK(strcmp(status_of(e), "failed") == 0);
    CHECK(scalar("SELECT album_id IS NULL FROM runs WHERE id = ?1", e) == 1);

    CHECK(scalar("SELECT count(*) FROM run_items WHERE status = 'running' AND ?1", 1) == 0);
    db_close_thread();
    unit_remove_db(path);
    UNIT_END("queue");
}
