/*
 * test_deadline.c: an endpoint's per-call deadline: timeout_s until enough
 * images have been timed, then max(floor, factor x p95) capped by
 * timeout_s; each call that runs out of it doubles the next, until a call
 * finishes within the normal deadline again.
 */
#include "queue/deadline.h"
#include "unit.h"

static const struct deadline_rule rule = {.cap_ms = 600000, .floor_ms = 30000, .factor = 5};

static void timeout_s_until_enough_samples(void)
{
    struct deadline d;
    deadline_init(&d);
    CHECK(deadline_next(&d, &rule) == 600000);
    for (int i = 0; i < DEADLINE_MIN_SAMPLES - 1; i++)
        deadline_succeeded(&d, &rule, 2000);
    CHECK(deadline_next(&d, &rule) == 600000);
    deadline_succeeded(&d, &rule, 2000);
    CHECK(deadline_next(&d, &rule) == 30000); /* 5 x 2 s is under the floor */
    struct deadline_rule none = {.cap_ms = 0, .floor_ms = 30000, .factor = 5};
    CHECK(deadline_next(&d, &none) == 0); /* no timeout_s (procedural): no deadline */
    struct deadline_rule off = {.cap_ms = 600000, .floor_ms = 30000, .factor = 0};
    CHECK(deadline_next(&d, &off) == 600000); /* factor 0: always timeout_s */
    deadline_destroy(&d);
}

/* 95th percentile by nearest rank over the last DEADLINE_WINDOW images. */
static void five_times_p95_capped_by_timeout_s(void)
{
    struct deadline d;
    deadline_init(&d);
    for (int i = 1; i <= 100; i++) /* 10 s .. 1000 s; the window keeps 37..100 */
        deadline_succeeded(&d, &rule, i * 10000LL);
    CHECK(deadline_next(&d, &rule) == 600000); /* 5 x 970 s, capped */
    struct deadline_rule big = {.cap_ms = 86400000, .floor_ms = 30000, .factor = 5};
    /* ceil(0.95 x 64) = 61st of 37..100 is 97: 5 x 970 s */
    CHECK(deadline_next(&d, &big) == 5 * 970000LL);
    deadline_destroy(&d);

    deadline_init(&d);
    for (int i = 0; i < 20; i++)
        deadline_succeeded(&d, &rule, i == 19 ? 60000 : 9000); /* one slow image of 20 */
    CHECK(deadline_next(&d, &rule) == 45000);                   /* p95 is 9 s */
    deadline_destroy(&d);
}

/* A hang doubles the next deadline; an image within the normal one ends
 * that, and a slower server's images make room for themselves. */
static void timeouts_widen_until_a_call_fits(void)
{
    struct deadline d;
    deadline_init(&d);
    for (int i = 0; i < 20; i++)
        deadline_succeeded(&d, &rule, 10000);
    CHECK(deadline_next(&d, &rule) == 50000);
    deadline_timed_out(&d);
    CHECK(deadline_next(&d, &rule) == 100000);
    deadline_timed_out(&d);
    deadline_timed_out(&d);
    CHECK(deadline_next(&d, &rule) == 400000);
    deadline_timed_out(&d);
    CHECK(deadline_next(&d, &rule) == 600000); /* never above timeout_s */
    deadline_succeeded(&d, &rule, 90000); /* over the normal 50 s: still wide */
    CHECK(deadline_next(&d, &rule) == 600000);
    deadline_succeeded(&d, &rule, 20000); /* within it: back to normal, */
    CHECK(deadline_next(&d, &rule) == 100000); /* which the slower images widened (p95 20 s) */
    deadline_destroy(&d);
}

int main(void)
{
    timeout_s_until_enough_samples();
    five_times_p95_capped_by_timeout_s();
    timeouts_widen_until_a_call_fits();
    UNIT_END("deadline");
}
