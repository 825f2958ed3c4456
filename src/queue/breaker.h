/*
 * breaker.h: the circuit breaker of one endpoint.
 *
 * `failures` transient failures in a row mark an endpoint down; after a
 * delay (doubling up to BREAKER_MAX_DELAY_MS) one of its workers probes it
 * (the backend's health call) and either brings it back up or doubles the
 * delay. A down endpoint's workers claim nothing, so its items go to the
 * endpoints that work. The breaker only keeps the state; the engine decides
 * when to ask and does the probing.
 */
#ifndef SF_BREAKER_H
#define SF_BREAKER_H

#include <pthread.h>
#include <stdint.h>

#define BREAKER_MAX_DELAY_MS 60000

enum breaker_state { BREAKER_UP, BREAKER_DOWN, BREAKER_PROBING };

struct breaker {
    pthread_mutex_t mu; /* every field below */
    enum breaker_state state;
    int failures_in_row;
    int64_t down_until_ms; /* monotonic */
    int64_t down_delay_ms;
};

void breaker_init(struct breaker *b);
void breaker_destroy(struct breaker *b);

/* "up", "down" or "probing". */
const char *breaker_state_name(enum breaker_state s);

enum breaker_state breaker_state(struct breaker *b);

/* A call reached the server (it answered, even with a refusal). */
void breaker_success(struct breaker *b);

/* A call failed for a transient reason: after threshold in a row an up
 * endpoint goes down for delay_ms. Returns 1 when this call tripped it. */
int breaker_failure(struct breaker *b, int threshold, int64_t delay_ms);

/*
 * For a worker of an endpoint that is not up: 1 when this caller should
 * probe now (the state is then probing, and the caller must report with
 * breaker_probed), 0 when it should wait *wait_ms and ask again (0 when the
 * endpoint is up again).
 */
int breaker_should_probe(struct breaker *b, int64_t *wait_ms);

/* The probe's outcome: up again, or down for twice the delay. Returns the
 * new delay when still down, 0 when up. */
int64_t breaker_probed(struct breaker *b, int ok);

#endif
