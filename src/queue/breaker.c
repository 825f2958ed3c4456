/*
 * breaker.c: the state of one endpoint's circuit breaker (breaker.h).
 * Every function is one transition under the breaker's mutex.
 */
#include "queue/breaker.h"

#include "util/timeutil.h"

static const char *const names[] = {"up", "down", "probing"};

/* How often a worker re-asks while another one holds the probe or trial. */
#define BREAKER_POLL_MS 100

void breaker_init(struct breaker *b)
{
    pthread_mutex_init(&b->mu, NULL);
    b->state = BREAKER_UP;
    b->probe = PROBE_HEALTH;
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

/* Down for delay_ms from now. The caller holds mu. */
static void open_for(struct breaker *b, int64_t delay_ms)
{
    b->state = BREAKER_DOWN;
    b->down_delay_ms = delay_ms < 1 ? 1 : delay_ms;
    b->down_until_ms = mono_ms() + b->down_delay_ms;
}

/* Down again after a failed trial: twice the last delay, at most
 * BREAKER_MAX_DELAY_MS. The caller holds mu. */
static void reopen(struct breaker *b)
{
    int64_t d = b->down_delay_ms * 2;
    open_for(b, d > BREAKER_MAX_DELAY_MS ? BREAKER_MAX_DELAY_MS : d);
}

enum breaker_turn breaker_turn(struct breaker *b, int64_t *wait_ms)
{
    pthread_mutex_lock(&b->mu);
    enum breaker_turn turn = TURN_WAIT;
    *wait_ms = 0;
    int64_t now = mono_ms();
    switch (b->state) {
    case BREAKER_UP:
        turn = TURN_CLAIM;
        break;
    case BREAKER_DOWN:
        if (now >= b->down_until_ms) {
            b->state = BREAKER_PROBING;
            b->probe = PROBE_HEALTH;
            turn = TURN_PROBE;
        } else {
            *wait_ms = b->down_until_ms - now;
        }
        break;
    case BREAKER_PROBING:
        if (b->probe == PROBE_TRIAL_FREE) {
            b->probe = PROBE_TRIAL_TAKEN;
            turn = TURN_TRIAL;
        } else {
            *wait_ms = BREAKER_POLL_MS; /* another worker probes, or draws the trial */
        }
        break;
    }
    pthread_mutex_unlock(&b->mu);
    return turn;
}

int64_t breaker_probed(struct breaker *b, int ok)
{
    pthread_mutex_lock(&b->mu);
    int64_t delay = 0;
    if (b->state == BREAKER_PROBING && b->probe == PROBE_HEALTH) {
        if (ok) {
            b->probe = PROBE_TRIAL_FREE;
        } else {
            /* The server does not answer its cheapest GET: ask again soon,
             * without growing the delay, so a restarted server is back in
             * use within a second of listening. The doubling is for trials,
             * which cost an image and fail on a server that answers. */
            delay = b->down_delay_ms < BREAKER_PROBE_RETRY_MS ? b->down_delay_ms
                                                              : BREAKER_PROBE_RETRY_MS;
            b->state = BREAKER_DOWN;
            b->down_until_ms = mono_ms() + delay;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return delay;
}

void breaker_trial_unused(struct breaker *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == BREAKER_PROBING && b->probe == PROBE_TRIAL_TAKEN)
        b->probe = PROBE_TRIAL_FREE;
    pthread_mutex_unlock(&b->mu);
}

void breaker_success(struct breaker *b, int trial)
{
    pthread_mutex_lock(&b->mu);
    b->failures_in_row = 0;
    if (trial && b->state == BREAKER_PROBING) {
        b->state = BREAKER_UP;
        b->down_delay_ms = 0;
    } else if (b->state == BREAKER_UP) {
        /* Only while up: a late answer of a call started before the
         * endpoint went down must not shorten its probe delay. */
        b->down_delay_ms = 0;
    }
    pthread_mutex_unlock(&b->mu);
}

void breaker_refused(struct breaker *b, int trial)
{
    pthread_mutex_lock(&b->mu);
    b->failures_in_row = 0;
    if (trial && b->state == BREAKER_PROBING && b->probe == PROBE_TRIAL_TAKEN)
        b->probe = PROBE_TRIAL_FREE;
    pthread_mutex_unlock(&b->mu);
}

int64_t breaker_failure(struct breaker *b, int threshold, int64_t delay_ms, int trial)
{
    pthread_mutex_lock(&b->mu);
    int64_t opened = 0;
    b->failures_in_row++;
    if (trial && b->state == BREAKER_PROBING) {
        reopen(b);
        opened = b->down_delay_ms;
    } else if (b->state == BREAKER_UP && b->failures_in_row >= threshold) {
        open_for(b, delay_ms);
        opened = b->down_delay_ms;
    }
    pthread_mutex_unlock(&b->mu);
    return opened;
}
