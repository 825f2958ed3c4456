/*
 * test_webhooks_store.c: run webhook deliveries in the database
 * (store/webhooks.c, queue/queue.c): a run's end queues exactly one
 * delivery in the transaction that ends it, or none when that transaction
 * fails; runs without callback_url queue nothing; attempts move a delivery
 * through pending, delivered and failed; the run's webhook JSON shows it.
 */
#include <stdlib.h>
#include <unistd.h>

#include "queue/queue.h"
#include "store/webhooks.h"
#include "unit_runs.h"
#include "util/timeutil.h"

static long long deliveries(long long run_id)
{
    return unit_scalar("SELECT count(*) FROM webhook_deliveries WHERE run_id = ?1", run_id);
}

static void set_callback(long long run_id)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_conn(), "UPDATE runs SET callback_url = 'http://127.0.0.1:9/h' WHERE id = ?1", -1,
                       &st, NULL);
    sqlite3_bind_int64(st, 1, run_id);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
}

static long long rr;

/* Claims the next item and completes it. */
static sf_status complete_next(void)
{
    struct claimed_item it;
    if (queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) != 1)
        return SF_EINTERNAL;
    struct sf_image img = {.png = NULL, .png_len = 100, .width = 64, .height = 64, .seed = 1};
    sf_status s = queue_complete(&it, "w1", &img, "aa", "ep", 5);
    if (s != SF_OK)
        queue_release(&it, "w1");
    claimed_item_free(&it);
    return s;
}

static void completed_run_queues_one_delivery_atomically(long long tid)
{
    long long run = unit_make_run(tid, 2);
    set_callback(run);
    CHECK(complete_next() == SF_OK);
    CHECK(deliveries(run) == 0); /* not ended yet */
    /* The commit that would end the run fails: neither the end nor the delivery is kept. */
    db_fail_commits(1);
    CHECK(complete_next() != SF_OK);
    db_fail_commits(0);
    CHECK(unit_scalar("SELECT count(*) FROM runs WHERE id = ?1 AND status = 'completed'", run) == 0);
    CHECK(deliveries(run) == 0);
    CHECK(complete_next() == SF_OK);
    CHECK(unit_scalar("SELECT count(*) FROM runs WHERE id = ?1 AND status = 'completed'", run) == 1);
    CHECK(deliveries(run) == 1);
    CHECK(unit_scalar("SELECT count(*) FROM webhook_deliveries WHERE run_id = ?1 AND status = 'pending' "
                      "AND attempts = 0 AND webhook_id LIKE 'msg_%' AND "
                      "json_extract(payload, '$.type') = 'run.completed' AND "
                      "json_extract(payload, '$.data.counts.succeeded') = 2 AND "
                      "json_extract(payload, '$.data.album_id') = (SELECT album_id FROM runs WHERE id = ?1) AND "
                      "json_extract(payload, '$.data.finished_at') = (SELECT completed_at FROM runs WHERE id = ?1)",
                      run) == 1);

    json_t *hook = webhooks_run_json(run);
    CHECK(hook && strcmp(json_string_value(json_object_get(hook, "status")), "pending") == 0);
    CHECK(strcmp(json_string_value(json_object_get(hook, "url")), "http://127.0.0.1:9/h") == 0);
    json_decref(hook);

    /* Due now: taken; a failed attempt puts it off until next_ms. */
    struct webhook_due d;
    CHECK(webhooks_next_due(now_unix_ms(), &d) == 1 && d.attempts == 0);
    long long id = d.id;
    int64_t later = now_unix_ms() + 60000;
    CHECK(webhooks_record_attempt(id, 500, "webhook: HTTP 500", later, "2026-01-01T00:00:00Z") == SF_OK);
    webhook_due_free(&d);
    CHECK(webhooks_next_due(now_unix_ms(), &d) == 0);
    CHECK(webhooks_earliest_due() == later);
    CHECK(webhooks_next_due(later, &d) == 1 && d.id == id && d.attempts == 1);
    webhook_due_free(&d);
    /* The last attempt fails: failed, with both attempts in the log. */
    CHECK(webhooks_record_attempt(id, 0, "webhook: cannot connect", 0, "2026-01-01T00:00:01Z") == SF_OK);
    hook = webhooks_run_json(run);
    CHECK(strcmp(json_string_value(json_object_get(hook, "status")), "failed") == 0);
    CHECK(json_integer_value(json_object_get(hook, "attempts")) == 2);
    CHECK(strcmp(json_string_value(json_object_get(hook, "last_error")), "webhook: cannot connect") == 0);
    CHECK(json_is_null(json_object_get(hook, "next_attempt_at")));
    json_t *log = json_object_get(hook, "attempts_log");
    CHECK(json_array_size(log) == 2);
    CHECK(json_integer_value(json_object_get(json_array_get(log, 0), "http_status")) == 500);
    CHECK(json_is_null(json_object_get(json_array_get(log, 1), "http_status")));
    json_decref(hook);
    /* Over: an attempt recorded late changes nothing. */
    CHECK(webhooks_record_attempt(id, 200, NULL, 0, "2026-01-01T00:00:02Z") == SF_OK);
    CHECK(unit_scalar("SELECT attempts FROM webhook_deliveries WHERE id = ?1", id) == 2);
    CHECK(webhooks_earliest_due() == 0);
}

static void canceled_run_queues_run_canceled(long long tid)
{
    long long run = unit_make_run(tid, 3);
    set_callback(run);
    json_t *hook = webhooks_run_json(run);
    CHECK(hook && strcmp(json_string_value(json_object_get(hook, "status")), "waiting") == 0);
    CHECK(json_integer_value(json_object_get(hook, "attempts")) == 0);
    json_decref(hook);
    CHECK(queue_cancel_run(run) == SF_OK);
    CHECK(unit_scalar("SELECT count(*) FROM webhook_deliveries WHERE run_id = ?1 AND "
                      "json_extract(payload, '$.type') = 'run.canceled' AND "
                      "json_extract(payload, '$.data.counts.canceled') = 3",
                      run) == 1);
    struct webhook_due d;
    CHECK(webhooks_next_due(now_unix_ms(), &d) == 1);
    CHECK(webhooks_record_attempt(d.id, 204, NULL, 0, "2026-01-01T00:00:00Z") == SF_OK);
    webhook_due_free(&d);
    hook = webhooks_run_json(run);
    CHECK(strcmp(json_string_value(json_object_get(hook, "status")), "delivered") == 0);
    CHECK(json_is_null(json_object_get(hook, "last_error")));
    json_decref(hook);
    CHECK(webhooks_pending_count() == 0);
}

static void run_without_callback_queues_nothing(long long tid)
{
    long long run = unit_make_run(tid, 1);
    CHECK(webhooks_run_json(run) == NULL);
    CHECK(queue_cancel_run(run) == SF_OK);
    CHECK(deliveries(run) == 0);
    CHECK(webhooks_run_json(run) == NULL);
}

int main(void)
{
    char path[] = "/tmp/sf-webhooks-XXXXXX";
    unit_open_db(path);
    long long tid = unit_template();
    completed_run_queues_one_delivery_atomically(tid);
    canceled_run_queues_run_canceled(tid);
    run_without_callback_queues_nothing(tid);
    db_close_thread();
    unit_remove_db(path);
    UNIT_END("test_webhooks_store");
}
