/*
 * deadline.c: an endpoint's per-call deadline from its recent image times
 * (deadline.h). Every function takes the deadline's own mutex, a leaf.
 */
#include "queue/deadline.h"

#include <stdlib.h>
#include <string.h>

void deadline_init(struct deadline *d)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
}

void deadline_destroy(struct deadline *d)
{
    pthread_mutex_destroy(&d->mu);
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* max(floor, factor × p95), or cap_ms while too little is known. The
 * caller holds mu. */
static int64_t normal_ms(const struct deadline *d, const struct deadline_rule *rule)
{
    if (rule->factor <= 0 || d->n < DEADLINE_MIN_SAMPLES)
        return rule->cap_ms;
    int64_t sorted[DEADLINE_WINDOW];
    memcpy(sorted, d->ms, sizeof(int64_t) * (size_t)d->n);
    qsort(sorted, (size_t)d->n, sizeof(int64_t), cmp_ms);
    int rank = (95 * d->n + 99) / 100; /* nearest rank: ceil(0.95 n) */
    int64_t t = sorted[rank - 1] * rule->factor;
    t = t > rule->floor_ms ? t : rule->floor_ms;
    return t < rule->cap_ms ? t : rule->cap_ms;
}

int64_t deadline_next(struct deadline *d, const struct deadline_rule *rule)
{
    if (rule->cap_ms <= 0)
        return 0;
    pthread_mutex_lock(&d->mu);
    int64_t t = normal_ms(d, rule);
    for (int i = 0; i < d->widen && t < rule->cap_ms; i++)
        t *= 2;
    pthread_mutex_unlock(&d->mu);
    return t < rule->cap_ms ? t : rule->cap_ms;
}

void deadline_succeeded(struct deadline *d, const struct deadline_rule *rule, int64_t ms)
{
    pthread_mutex_lock(&d->mu);
    d->ms[d->next] = ms;
    d->next = (d->next + 1) % DEADLINE_WINDOW;
    if (d->n < DEADLINE_WINDOW)
        d->n++;
    if (ms <= normal_ms(d, rule))
        d->widen = 0;
    pthread_mutex_unlock(&d->mu);
}

void deadline_timed_out(struct deadline *d)
{
    pthread_mutex_lock(&d->mu);
    if (d->widen < 30)
        d->widen++;
    pthread_mutex_unlock(&d->mu);
}
