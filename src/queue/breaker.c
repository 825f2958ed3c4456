/*
 * breaker.c: the state of one endpoint's circuit breaker (breaker.h).
 */
#include "queue/breaker.h"

#include "util/timeutil.h"

static const char *const names[] = {"up", "down", "probing"};

void breaker_init(struct breaker *b)
{
    pthread_mutex_init(&b->mu, NULL);
    b->state = BREAKER_UP;
    b->failures_in_row = 0;
    b->down_until_ms = 0;
    b->down_delay_ms = 0;
}

void breaker_destroy(struct breaker *b)
{
    pthread_mutex_destroy(&b->mu);
}

const char *breaker_state_name(enum breaker_state s)
{
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

enum breaker_state breaker_state(struct breaker *b)
{
    pthread_mutex_lock(&b->mu);
    enum breaker_state st = b->state;
    pthread_mutex_unlock(&b->mu);
    return st;
}

void breaker_success(struct breaker *b)
{
    pthread_mutex_lock(&b->mu);
    b->failures_in_row = 0;
    if (b->state == BREAKER_UP) /* a late answer must not shorten a probe delay */
        b->down_delay_ms = 0;
    pthread_mutex_unlock(&b->mu);
}

int breaker_failure(struct breaker *b, int threshold, int64_t delay_ms)
{
    pthread_mutex_lock(&b->mu);
    int tripped = ++b->failures_in_row >= threshold && b->state == BREAKER_UP;
    if (tripped) {
        b->state = BREAKER_DOWN;
        b->down_delay_ms = delay_ms;
        b->down_until_ms = mono_ms() + delay_ms;
    }
    pthread_mutex_unlock(&b->mu);
    return tripped;
}

int breaker_should_probe(struct breaker *b, int64_t *wait_ms)
{
    pthread_mutex_lock(&b->mu);
    int64_t now = mono_ms();
    int probe = b->state == BREAKER_DOWN && now >= b->down_until_ms;
    if (probe)
        b->state = BREAKER_PROBING;
    if (b->state == BREAKER_UP)
        *wait_ms = 0;
    else if (b->state == BREAKER_DOWN)
        *wait_ms = b->down_until_ms - now < 1 ? 1 : b->down_until_ms - now;
    else
        *wait_ms = 100; /* another worker is probing */
    pthread_mutex_unlock(&b->mu);
    return probe;
}

int64_t breaker_probed(struct breaker *b, int ok)
{
    pthread_mutex_lock(&b->mu);
    int64_t delay = 0;
    if (ok) {
        b->state = BREAKER_UP;
        b->failures_in_row = 0;
    } else {
        b->state = BREAKER_DOWN;
        b->down_delay_ms = b->down_delay_ms * 2 > BREAKER_MAX_DELAY_MS ? BREAKER_MAX_DELAY_MS
                                                                        : b->down_delay_ms * 2;
        if (b->down_delay_ms < 1)
            b->down_delay_ms = 1;
        b->down_until_ms = mono_ms() + b->down_delay_ms;
        delay = b->down_delay_ms;
    }
    pthread_mutex_unlock(&b->mu);
    return delay;
}
