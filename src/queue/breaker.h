/*
 * breaker.h: the circuit breaker of one endpoint.
 *
 * up → down: `failures` transient failures in a row (one, for a call that
 * ran out of its deadline: a hung server is not worth three more hangs).
 * A down endpoint's workers claim nothing, so its items go to the
 * endpoints that work.
 *
 * down → probing: after a delay, one of its workers runs the backend's
 * health call. A failed health call (the server does not answer a cheap
 * GET) is asked again after at most BREAKER_PROBE_RETRY_MS, the delay
 * unchanged: probes cost nothing, and a restarted server must be back in
 * use within a second or two of listening (issue 10, finding 9).
 *
 * probing (half-open): a passing health call proves only that the server
 * answers (A1111's model list can load while txt2img fails every time), so
 * it lets exactly one real item through: the trial. An image from the
 * trial closes the breaker (up); a transient failure of it re-opens it for
 * twice the delay (up to BREAKER_MAX_DELAY_MS): a server that answers but
 * cannot draw is tried less and less often. A trial that ends without a verdict (no item was due, it
 * was canceled, the server refused the request itself) is handed out
 * again.
 *
 * The breaker only keeps the state; the engine decides when to ask, does
 * the probing and reports what its calls did.
 */
#ifndef SF_BREAKER_H
#define SF_BREAKER_H

#include <pthread.h>
#include <stdint.h>

#define BREAKER_MAX_DELAY_MS 60000
#define BREAKER_PROBE_RETRY_MS 1000

enum breaker_state { BREAKER_UP, BREAKER_DOWN, BREAKER_PROBING };

/* Where a probing endpoint is: its health call, then its one trial item. */
enum breaker_probe { PROBE_HEALTH, PROBE_TRIAL_FREE, PROBE_TRIAL_TAKEN };

struct breaker {
    pthread_mutex_t mu; /* every field below */
    enum breaker_state state;
    enum breaker_probe probe; /* while probing */
    int failures_in_row;
    int64_t down_until_ms; /* monotonic */
    int64_t down_delay_ms;
};

void breaker_init(struct breaker *b);
void breaker_destroy(struct breaker *b);

/* "up", "down" or "probing". */
const char *breaker_state_name(enum breaker_state s);

enum breaker_state breaker_state(struct breaker *b);

/* What a worker of the endpoint should do now (breaker_turn). */
enum breaker_turn {
    TURN_CLAIM, /* up: claim items as usual */
    TURN_TRIAL, /* claim one item, the trial; report it with trial = 1, or
                 * breaker_trial_unused when none was claimed */
    TURN_PROBE, /* run the health call now and report it (breaker_probed) */
    TURN_WAIT,  /* wait *wait_ms, then ask again */
};

enum breaker_turn breaker_turn(struct breaker *b, int64_t *wait_ms);

/* The health call's outcome: ok lets the trial through; a failure is down
 * for min(delay, BREAKER_PROBE_RETRY_MS). Returns that wait when down, 0
 * otherwise. */
int64_t breaker_probed(struct breaker *b, int ok);

/* The trial turn ended without a verdict (nothing was claimed, or the item
 * was canceled): the next worker to ask gets it. */
void breaker_trial_unused(struct breaker *b);

/* A call drew an image. trial: it was the trial, which closes the breaker. */
void breaker_success(struct breaker *b, int trial);

/* A call reached the server, which refused the request itself (permanent):
 * no failure in a row, and a trial proves nothing either way (given back). */
void breaker_refused(struct breaker *b, int trial);

/* A call failed for a transient reason: after threshold in a row an up
 * endpoint goes down for delay_ms; a failed trial re-opens it for twice the
 * last delay. Returns the delay when this call opened it, else 0. */
int64_t breaker_failure(struct breaker *b, int threshold, int64_t delay_ms, int trial);

#endif
