/*
 * test_breaker.c: one endpoint's circuit breaker, transition by transition:
 * failures in a row open it, a passing health call lets exactly one trial
 * item through (half-open), only an image from that trial closes it, and a
 * failed trial or probe re-opens it for twice the delay, at most 60 s.
 *
 * Delays are a few milliseconds; a wait for one to pass polls the breaker
 * with a bound far beyond what a slow sanitizer build needs.
 */
#include <unistd.h>

#include "queue/breaker.h"
#include "unit.h"
#include "util/timeutil.h"

#define WAIT_BOUND_MS 60000

/* The turn a worker gets once the down delay has passed. */
static enum breaker_turn turn_after_delay(struct breaker *b)
{
    int64_t until = mono_ms() + WAIT_BOUND_MS, wait;
    enum breaker_turn t;
    while ((t = breaker_turn(b, &wait)) == TURN_WAIT && breaker_state(b) == BREAKER_DOWN &&
           mono_ms() < until)
        usleep(1000);
    return t;
}

static void failures_in_a_row_open_it(struct breaker *b)
{
    int64_t wait;
    CHECK(breaker_turn(b, &wait) == TURN_CLAIM);
    CHECK(breaker_failure(b, 3, 20, 0) == 0);
    CHECK(breaker_failure(b, 3, 20, 0) == 0);
    breaker_refused(b, 0); /* the server answered: the count starts again */
    CHECK(breaker_failure(b, 3, 20, 0) == 0);
    CHECK(breaker_failure(b, 3, 20, 0) == 0);
    CHECK(breaker_state(b) == BREAKER_UP);
    CHECK(breaker_failure(b, 3, 20, 0) == 20);
    CHECK(breaker_state(b) == BREAKER_DOWN);
    CHECK(breaker_turn(b, &wait) == TURN_WAIT && wait >= 1 && wait <= 20);
}

/* A passing probe is not enough: one trial item, and only its image closes. */
static void half_open_lets_one_trial_through(struct breaker *b)
{
    int64_t wait;
    CHECK(turn_after_delay(b) == TURN_PROBE);
    CHECK(breaker_state(b) == BREAKER_PROBING);
    CHECK(breaker_turn(b, &wait) == TURN_WAIT); /* one worker probes */
    CHECK(breaker_probed(b, 1) == 0);
    CHECK_STR(breaker_state_name(breaker_state(b)), "probing");
    CHECK(breaker_turn(b, &wait) == TURN_TRIAL);
    CHECK(breaker_turn(b, &wait) == TURN_WAIT); /* exactly one */
    breaker_trial_unused(b);                    /* nothing was due */
    CHECK(breaker_turn(b, &wait) == TURN_TRIAL);
    breaker_refused(b, 1); /* a refused request proves nothing */
    CHECK(breaker_state(b) == BREAKER_PROBING);
    CHECK(breaker_turn(b, &wait) == TURN_TRIAL);
    breaker_success(b, 0); /* a late image of an older call does not close it */
    CHECK(breaker_state(b) == BREAKER_PROBING);
    /* the trial fails: down again for twice the delay */
    CHECK(breaker_failure(b, 3, 20, 1) == 40);
    CHECK(breaker_state(b) == BREAKER_DOWN);
    CHECK(turn_after_delay(b) == TURN_PROBE);
    CHECK(breaker_probed(b, 0) == 40); /* a failed probe: again soon, not doubled */
    CHECK(turn_after_delay(b) == TURN_PROBE);
    CHECK(breaker_probed(b, 0) == 40);
    CHECK(turn_after_delay(b) == TURN_PROBE);
    CHECK(breaker_probed(b, 1) == 0);
    CHECK(breaker_turn(b, &wait) == TURN_TRIAL);
    breaker_success(b, 1);
    CHECK(breaker_state(b) == BREAKER_UP);
    CHECK(breaker_turn(b, &wait) == TURN_CLAIM);
}

/* A threshold of one (a call that ran out of its deadline) opens at once;
 * the doubled delay stops at BREAKER_MAX_DELAY_MS. */
static void timeouts_open_at_once_and_delays_are_capped(struct breaker *b)
{
    CHECK(breaker_failure(b, 1, 20, 0) == 20);
    CHECK(breaker_state(b) == BREAKER_DOWN);
    CHECK(breaker_failure(b, 1, 20, 0) == 0); /* already down */
    CHECK(turn_after_delay(b) == TURN_PROBE);
    b->down_delay_ms = 40000;
    /* However long the trials' delay has grown, a server that does not
     * answer is probed again within BREAKER_PROBE_RETRY_MS... */
    CHECK(breaker_probed(b, 0) == BREAKER_PROBE_RETRY_MS);
    CHECK(b->down_delay_ms == 40000);
    /* ...while a failed trial doubles, up to BREAKER_MAX_DELAY_MS. */
    b->down_until_ms = 0;
    int64_t wait;
    CHECK(breaker_turn(b, &wait) == TURN_PROBE);
    CHECK(breaker_probed(b, 1) == 0);
    CHECK(breaker_turn(b, &wait) == TURN_TRIAL);
    CHECK(breaker_failure(b, 1, 20, 1) == BREAKER_MAX_DELAY_MS);
}

int main(void)
{
    struct breaker b;
    breaker_init(&b);
    failures_in_a_row_open_it(&b);
    half_open_lets_one_trial_through(&b);
    timeouts_open_at_once_and_delays_are_capped(&b);
    breaker_destroy(&b);
    UNIT_END("breaker");
}
