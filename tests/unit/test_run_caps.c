/*
 * test_run_caps.c: runs_create's caps on waiting items (the queue's
 * capacity, the anonymous callers' share), counted in its transaction, as
 * items are drawn, fail, are canceled and retried.
 */
#include "queue/queue.h"
#include "unit_runs.h"

static long long tid;

/* A run of n items by creator (NULL: anonymous) under the caps; its
 * status, with *id and *excess set. */
static sf_status create(int n, const char *creator, long long capacity, long long anonymous_max,
                        const char *key, long long *id, long long *excess)
{
    struct run_caps caps = {.queue_capacity = capacity, .anonymous_max = anonymous_max};
    int reused = 0;
    sf_status st = unit_create_run(tid, n, creator, key, &caps, id, &reused);
    *excess = caps.excess;
    return st;
}

/* Items queued or running, counted one by one. */
static long long waiting(void)
{
    return unit_scalar("SELECT count(*) FROM run_items WHERE status IN ('queued', 'running') AND ?1", 1);
}

static long long runs_total(void)
{
    return unit_scalar("SELECT count(*) FROM runs WHERE ?1", 1);
}

int main(void)
{
    char path[] = "/tmp/sf-caps-XXXXXX";
    unit_open_db(path);
    tid = unit_template();
    long long id, excess, a, b;

    /* the queue's capacity: all callers; exactly full is fine */
    CHECK(create(6, "admin", 10, 0, NULL, &a, &excess) == SF_OK && a > 0);
    CHECK(create(4, NULL, 10, 0, NULL, &b, &excess) == SF_OK);
    long long before = runs_total();
    CHECK(create(1, "admin", 10, 0, NULL, &id, &excess) == SF_EQUEUEFULL && excess == 1 && id == 0);
    CHECK(create(3, NULL, 12, 0, NULL, &id, &excess) == SF_EQUEUEFULL && excess == 1);
    CHECK(runs_total() == before); /* a refused run leaves nothing */
    CHECK(waiting() == 10);
    CHECK(create(1, "admin", 0, 0, NULL, &id, &excess) == SF_OK); /* 0: no cap */

    /* the anonymous share: only runs without a creator, only for them */
    CHECK(create(2, NULL, 0, 5, NULL, &id, &excess) == SF_ERATELIMIT && excess == 1);
    CHECK(create(1, NULL, 0, 5, NULL, &id, &excess) == SF_OK);
    CHECK(create(50, "user", 0, 5, NULL, &id, &excess) == SF_OK); /* a token's run: not anonymous */
    CHECK(create(1, NULL, 0, 5, NULL, &id, &excess) == SF_ERATELIMIT && excess == 1);
    /* both caps: the queue's is told first */
    CHECK(create(1, NULL, waiting(), 5, NULL, &id, &excess) == SF_EQUEUEFULL);

    /* an idempotent replay creates nothing, so no cap refuses it */
    CHECK(create(1, "admin", 0, 0, "key-1", &id, &excess) == SF_OK && id > 0);
    long long first = id;
    CHECK(create(1, "admin", 1, 0, "key-1", &id, &excess) == SF_OK && id == first);

    /* what is drawn still waits; what settles frees its place */
    long long now_waiting = waiting();
    CHECK(create(1, "admin", now_waiting, 0, NULL, &id, &excess) == SF_EQUEUEFULL);
    long long rr = 0;
    struct claimed_item it;
    CHECK(queue_claim("w1", 30000, &rr, NULL, NULL, 0, &it) == 1);
    CHECK(create(1, "admin", now_waiting, 0, NULL, &id, &excess) == SF_EQUEUEFULL); /* running */
    CHECK(queue_fail(&it, "w1", "boom", 1, 3, 0, NULL) == SF_OK);
    claimed_item_free(&it);
    CHECK(waiting() == now_waiting - 1);
    CHECK(create(1, "admin", now_waiting, 0, NULL, &id, &excess) == SF_OK);
    /* the anonymous run b (4 items) canceled: 4 anonymous places free */
    CHECK(create(4, NULL, 0, 5, NULL, &id, &excess) == SF_ERATELIMIT && excess == 4);
    CHECK(queue_cancel_run(b) == SF_OK);
    CHECK(create(4, NULL, 0, 5, NULL, &id, &excess) == SF_OK);
    /* retried, b's 4 wait again: 9 anonymous items */
    CHECK(queue_retry_run(b) == SF_OK);
    CHECK(create(1, NULL, 0, 9, NULL, &id, &excess) == SF_ERATELIMIT && excess == 1);
    /* the runs' counters and the items agree */
    CHECK(create(1, "admin", waiting(), 0, NULL, &id, &excess) == SF_EQUEUEFULL && excess == 1);
    CHECK(create(1, "admin", waiting() + 1, 0, NULL, &id, &excess) == SF_OK);

    db_close_thread();
    unit_remove_db(path);
    UNIT_END("run_caps");
}
