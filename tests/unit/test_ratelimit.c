/*
 * test_ratelimit.c: the request window and the item buckets of generate,
 * with the clock moved by hand.
 */
#include <stdio.h>

#include "unit.h"
#include "util/hash.h"
#include "util/ratelimit.h"

static struct window_table windows = WINDOW_TABLE_INIT;
static struct bucket_table buckets = BUCKET_TABLE_INIT;

/* The n-th key ("k<i>") whose bucket set is the same as key0's. */
static void same_set_key(const char *key0, int n, char *out, size_t len)
{
    uint64_t want = fnv1a64(key0, strlen(key0)) % BUCKET_SETS;
    for (int i = 0, found = 0;; i++) {
        snprintf(out, len, "k%d", i);
        if (strcmp(out, key0) != 0 && fnv1a64(out, strlen(out)) % BUCKET_SETS == want && ++found == n)
            return;
    }
}

static void test_window(void)
{
    /* 3 per 60 s window; now 125 s is in the window 120..180 */
    CHECK(window_hit(&windows, "ip:a", 3, 60, 125) == 0);
    CHECK(window_hit(&windows, "ip:a", 3, 60, 126) == 0);
    CHECK(window_hit(&windows, "ip:a", 3, 60, 127) == 0);
    CHECK(window_hit(&windows, "ip:a", 3, 60, 128) == 52); /* seconds to 180 */
    CHECK(window_hit(&windows, "ip:a", 3, 60, 179) == 1);
    CHECK(window_hit(&windows, "ip:b", 3, 60, 179) == 0); /* another client */
    CHECK(window_hit(&windows, "ip:a", 3, 60, 180) == 0); /* a new window */
}

static void test_bucket(void)
{
    /* 10 items at most, 60 a minute: one a second */
    struct bucket_rate r = {.burst = 10, .per_minute = 60};
    CHECK(bucket_take(&buckets, "token:1", 4, &r, 1000) == 0);
    CHECK(bucket_take(&buckets, "token:1", 6, &r, 1000) == 0);
    CHECK(bucket_take(&buckets, "token:1", 1, &r, 1000) == 1); /* empty: one second */
    CHECK(bucket_take(&buckets, "token:1", 10, &r, 1000) == 10);
    CHECK(bucket_take(&buckets, "token:2", 10, &r, 1000) == 0); /* its own bucket */
    /* half a second refills half an item: still a second to wait (rounded up) */
    CHECK(bucket_take(&buckets, "token:1", 1, &r, 1500) == 1);
    CHECK(bucket_take(&buckets, "token:1", 3, &r, 3500) == 1);  /* 2.5 there */
    CHECK(bucket_take(&buckets, "token:1", 3, &r, 4000) == 0);  /* 3 there */
    /* a clock that goes back refills nothing, and breaks nothing */
    CHECK(bucket_take(&buckets, "token:1", 1, &r, 2000) == 1);
    /* never more than burst, however long it waited */
    CHECK(bucket_take(&buckets, "token:1", 10, &r, 1000000) == 0);
    CHECK(bucket_take(&buckets, "token:1", 1, &r, 1000000) == 1);
    /* giving back: up to burst, and nothing for a bucket it does not know */
    bucket_give_back(&buckets, "token:1", 4, &r, 1000000);
    CHECK(bucket_take(&buckets, "token:1", 4, &r, 1000000) == 0);
    bucket_give_back(&buckets, "token:1", 50, &r, 1000000);
    CHECK(bucket_take(&buckets, "token:1", 10, &r, 1000000) == 0);
    CHECK(bucket_take(&buckets, "token:1", 1, &r, 1000000) == 1);
    bucket_give_back(&buckets, "never-seen", 3, &r, 1000000);
    /* retry counts the items still missing at the refill rate */
    struct bucket_rate slow = {.burst = 500, .per_minute = 200};
    CHECK(bucket_take(&buckets, "ip:slow", 500, &slow, 0) == 0);
    CHECK(bucket_take(&buckets, "ip:slow", 54, &slow, 0) == 17); /* 54 × 0.3 s = 16.2 s */
}

/* Nine clients of one set of eight: a bucket that has refilled is
 * forgotten first (no loss), else the fullest. */
static struct bucket_table crowded = BUCKET_TABLE_INIT;

static void test_eviction(void)
{
    struct bucket_rate r = {.burst = 100, .per_minute = 60};
    char keys[BUCKET_WAYS + 1][16];
    snprintf(keys[0], sizeof(keys[0]), "ip:evict");
    for (int i = 1; i <= BUCKET_WAYS; i++)
        same_set_key(keys[0], i, keys[i], sizeof(keys[i]));
    int64_t t0 = 10000000;
    /* eight ways: keys[0] keeps 10 items, the others none */
    CHECK(bucket_take(&crowded, keys[0], 90, &r, t0) == 0);
    for (int i = 1; i < BUCKET_WAYS; i++)
        CHECK(bucket_take(&crowded, keys[i], 100, &r, t0) == 0);
    /* the ninth takes the fullest way (keys[0]'s), not a drained one */
    CHECK(bucket_take(&crowded, keys[BUCKET_WAYS], 100, &r, t0) == 0);
    for (int i = 1; i <= BUCKET_WAYS; i++)
        CHECK(bucket_take(&crowded, keys[i], 1, &r, t0) == 1); /* all remembered, drained */
    /* 200 s later all have refilled; keys[1] drains again. A newcomer
     * takes a full bucket's way, so keys[1] is still remembered. */
    int64_t t1 = t0 + 200000;
    CHECK(bucket_take(&crowded, keys[1], 100, &r, t1) == 0);
    CHECK(bucket_take(&crowded, keys[0], 100, &r, t1) == 0);
    CHECK(bucket_take(&crowded, keys[1], 1, &r, t1) == 1);
    CHECK(bucket_take(&crowded, keys[0], 1, &r, t1) == 1);
}

int main(void)
{
    test_window();
    test_bucket();
    test_eviction();
    UNIT_END("ratelimit");
}
