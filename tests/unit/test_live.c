/*
 * test_live.c: the live store of items being drawn (queue/live.c): the
 * throttle (at most one step every 250 ms, the first at once), what a
 * stream is given (only what was published, each publication once, the
 * newest state when it fell behind), the preview store (copies in, copies
 * out, replaced, refused when too large, gone when the item ends), and an
 * item that ends while other threads report on other items, read its run
 * and copy its preview, which TSan and ASan builds judge.
 *
 * The clock is passed in (live_step_at), so no test sleeps.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "queue/live.h"
#include "unit.h"

static atomic_int notified;
static atomic_llong last_notified_run;

static void count_notify(long long run_id)
{
    atomic_fetch_add(&notified, 1);
    atomic_store(&last_notified_run, run_id);
}

static void throttle_lets_four_a_second_through(void)
{
    struct live_throttle t = {0};
    CHECK(live_throttle_pass(&t, 0) == 1); /* the first, even at clock 0 */
    CHECK(live_throttle_pass(&t, 100) == 0);
    CHECK(live_throttle_pass(&t, 249) == 0);
    CHECK(live_throttle_pass(&t, 251) == 1);
    CHECK(live_throttle_pass(&t, 300) == 0);
    int passed = 0;
    for (int64_t ms = 1000; ms < 11000; ms += 10) /* 100 reports a second for 10 s */
        passed += live_throttle_pass(&t, ms);
    CHECK(passed >= 39 && passed <= 41);
}

struct seen {
    int n;
    struct live_view v[8];
};

static void collect(void *ctx, const struct live_view *v)
{
    struct seen *s = ctx;
    if (s->n < 8)
        s->v[s->n] = *v;
    s->n++;
}

static void streams_get_each_publication_once(void)
{
    atomic_store(&notified, 0);
    struct live_item *a = live_begin(7, 0, "gpu0");
    struct live_item *b = live_begin(7, 1, "gpu1");
    struct live_item *other = live_begin(8, 0, "gpu2");
    unsigned long long since = 0;
    struct seen s = {0};
    CHECK(live_steps_since(7, &since, collect, &s) == 0); /* nothing reported yet */

    live_step_at(a, 1000, 1, 20, NULL, 0, NULL);
    CHECK(atomic_load(&notified) == 1);
    CHECK(atomic_load(&last_notified_run) == 7);
    live_step_at(a, 1100, 2, 20, NULL, 0, NULL); /* inside the interval: kept, not published */
    CHECK(atomic_load(&notified) == 1);
    live_step_at(other, 1100, 5, 10, NULL, 0, NULL);
    CHECK(atomic_load(&notified) == 2);

    CHECK(live_steps_since(7, &since, collect, &s) == 1);
    CHECK(s.v[0].index == 0 && s.v[0].step == 1 && s.v[0].steps == 20);
    CHECK_STR(s.v[0].endpoint, "gpu0");
    CHECK(s.v[0].preview_version == 0);
    s.n = 0;
    CHECK(live_steps_since(7, &since, collect, &s) == 0); /* once */

    live_step_at(a, 1300, 3, 20, NULL, 0, NULL);
    live_step_at(b, 1300, 9, 20, NULL, 0, NULL);
    live_step_at(a, 1400, 4, 20, NULL, 0, NULL); /* not published: the stream sees 3 */
    CHECK(live_steps_since(7, &since, collect, &s) == 2);
    int sa = s.v[0].index == 0 ? 0 : 1;
    CHECK(s.v[sa].step == 3);
    CHECK(s.v[1 - sa].step == 9);

    /* A stream that joins late gets the current state of every item. */
    unsigned long long late = 0;
    s.n = 0;
    CHECK(live_steps_since(7, &late, collect, &s) == 2);
    CHECK(late == since);

    /* The same step again publishes nothing. */
    int before = atomic_load(&notified);
    live_step_at(b, 5000, 9, 20, NULL, 0, NULL);
    CHECK(atomic_load(&notified) == before);

    live_end(a);
    live_end(b);
    live_end(other);
    s.n = 0;
    late = 0;
    CHECK(live_steps_since(7, &late, collect, &s) == 0); /* ended: gone */
}

static void previews_are_copied_and_freed(void)
{
    struct live_item *a = live_begin(9, 3, "gpu0");
    unsigned char *bytes;
    size_t len;
    char mime[32];
    CHECK(live_preview(9, 3, &bytes, &len, mime, sizeof mime) == 0);
    CHECK(bytes == NULL && len == 0);

    unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3};
    live_step_at(a, 10000, 4, 20, jpeg, sizeof jpeg, "image/jpeg");
    jpeg[4] = 99; /* the store kept its own copy */
    CHECK(live_preview(9, 3, &bytes, &len, mime, sizeof mime) == 1);
    CHECK(len == sizeof jpeg && bytes[4] == 1);
    CHECK_STR(mime, "image/jpeg");
    free(bytes);
    CHECK(live_preview(9, 4, &bytes, &len, mime, sizeof mime) == 0); /* another item */
    CHECK(live_preview(10, 3, &bytes, &len, mime, sizeof mime) == 0); /* another run */

    /* A newer preview replaces it at once, published or not. */
    unsigned char png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a};
    live_step_at(a, 10010, 4, 20, png, sizeof png, "image/png");
    CHECK(live_preview(9, 3, &bytes, &len, mime, sizeof mime) == 1);
    CHECK(len == sizeof png && bytes[1] == 'P');
    CHECK_STR(mime, "image/png");
    free(bytes);
    int n;
    size_t held;
    live_counts(&n, &held);
    CHECK(n == 1 && held == sizeof png);

    /* The published version names the preview the event points at. */
    unsigned long long since = 0;
    struct seen s = {0};
    CHECK(live_steps_since(9, &since, collect, &s) == 1);
    unsigned long long v1 = s.v[0].preview_version;
    CHECK(v1 > 0);
    live_step_at(a, 10300, 5, 20, png, sizeof png, "image/png");
    s.n = 0;
    CHECK(live_steps_since(9, &since, collect, &s) == 1);
    CHECK(s.v[0].preview_version > v1);

    /* The same bytes again are no news: no new version, nothing published. */
    unsigned char png_again[sizeof png];
    memcpy(png_again, png, sizeof png);
    int before = atomic_load(&notified);
    live_step_at(a, 20000, 5, 20, png_again, sizeof png_again, "image/png");
    CHECK(atomic_load(&notified) == before);
    s.n = 0;
    CHECK(live_steps_since(9, &since, collect, &s) == 0);

    /* Too large: not kept (the previous one stays). */
    size_t big = LIVE_MAX_PREVIEW_BYTES + 1;
    unsigned char *huge = calloc(1, big);
    live_step_at(a, 10600, 6, 20, huge, big, "image/png");
    free(huge);
    live_counts(&n, &held);
    CHECK(held == sizeof png);

    live_end(a);
    CHECK(live_preview(9, 3, &bytes, &len, mime, sizeof mime) == 0);
    live_counts(&n, &held);
    CHECK(n == 0 && held == 0);
    live_step(NULL, 1, 2, NULL, 0, NULL); /* a job nobody watches */
    live_end(NULL);
}

/* ---- items ending while others read and report --------------------------- */

#define ROUNDS 2000
static atomic_int stop_readers;

static void ignore(void *ctx, const struct live_view *v)
{
    (void)ctx;
    (void)v;
}

static void *reader(void *arg)
{
    (void)arg;
    unsigned long long since = 0;
    long reads = 0;
    while (!atomic_load(&stop_readers)) {
        unsigned char *bytes;
        size_t len;
        char mime[32];
        for (int i = 0; i < 4; i++)
            if (live_preview(100, i, &bytes, &len, mime, sizeof mime)) {
                if (len != 64 || bytes[63] != (unsigned char)i)
                    return (void *)1; /* a torn or freed copy */
                free(bytes);
            }
        live_steps_since(100, &since, ignore, NULL);
        reads++;
    }
    return (void *)reads;
}

/* A worker: items begin, report with previews (from this thread and from a
 * helper thread, as the A1111 poller does) and end, over and over. */
struct worker_arg {
    int index;
};

struct reporter_arg {
    struct live_item *li;
    int index;
};

static void *reporter(void *arg)
{
    struct reporter_arg *r = arg;
    unsigned char buf[64];
    memset(buf, r->index, sizeof buf);
    for (int s = 0; s < 5; s++)
        live_step(r->li, s, 5, buf, sizeof buf, "image/jpeg");
    return NULL;
}

static void *worker(void *arg)
{
    struct worker_arg *w = arg;
    unsigned char buf[64];
    memset(buf, w->index, sizeof buf);
    for (int round = 0; round < ROUNDS; round++) {
        struct live_item *li = live_begin(100, w->index, "gpu");
        struct reporter_arg ra = {li, w->index};
        pthread_t helper;
        int helped = round % 16 == 0 && pthread_create(&helper, NULL, reporter, &ra) == 0;
        live_step(li, 1, 5, buf, sizeof buf, "image/jpeg");
        if (helped)
            pthread_join(helper, NULL); /* stopped before the item ends, as backends do */
        live_end(li);
    }
    return NULL;
}

static void ending_items_race_readers_safely(void)
{
    atomic_store(&stop_readers, 0);
    pthread_t readers[2], workers[4];
    struct worker_arg wa[4];
    for (int i = 0; i < 2; i++)
        pthread_create(&readers[i], NULL, reader, NULL);
    for (int i = 0; i < 4; i++) {
        wa[i].index = i;
        pthread_create(&workers[i], NULL, worker, &wa[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(workers[i], NULL);
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 2; i++) {
        void *rv;
        pthread_join(readers[i], &rv);
        CHECK(rv != (void *)1);
    }
    int n;
    size_t held;
    live_counts(&n, &held);
    CHECK(n == 0 && held == 0);
}

int main(void)
{
    live_init(count_notify);
    throttle_lets_four_a_second_through();
    streams_get_each_publication_once();
    previews_are_copied_and_freed();
    ending_items_race_readers_safely();
    UNIT_END("live");
}
