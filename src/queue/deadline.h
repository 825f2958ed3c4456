/*
 * deadline.h: how long one call to an endpoint may take, learned from how
 * long its images have been taking.
 *
 * An endpoint's timeout_s (default 600 s) is sized for the slowest image it
 * may ever make, so a server that hangs used to hold its item for ten
 * minutes per attempt. Once we know how fast the endpoint really is, a call
 * that has taken several times its usual time is a hang:
 *
 *   deadline = min(timeout_s, max(floor, factor × p95) × 2^widen)
 *
 * p95 is over its last DEADLINE_WINDOW successful calls (nearest rank);
 * until DEADLINE_MIN_SAMPLES have been timed, or with factor 0, the
 * deadline is timeout_s. floor and factor are the settings
 * adaptive_timeout_floor_s and adaptive_timeout_factor.
 *
 * widen counts the calls that ran out of their deadline since the last one
 * that finished within the normal deadline: each doubles the next deadline
 * (up to timeout_s). A hung server is thus cut after the normal deadline
 * and then costs twice as much per probe, while a server that became slower
 * for a good reason (a bigger model) still gets its images through, and its
 * new times soon make the normal deadline fit them.
 */
#ifndef SF_DEADLINE_H
#define SF_DEADLINE_H

#include <pthread.h>
#include <stdint.h>

#define DEADLINE_WINDOW 64
#define DEADLINE_MIN_SAMPLES 8

struct deadline {
    pthread_mutex_t mu; /* every field below */
    int64_t ms[DEADLINE_WINDOW]; /* ring of recent successful call times */
    int n, next;
    int widen;
};

/* The settings a deadline is computed from. */
struct deadline_rule {
    int64_t cap_ms;   /* the endpoint's timeout_s in ms; 0: no deadline at all */
    int64_t floor_ms; /* adaptive_timeout_floor_s */
    int factor;       /* adaptive_timeout_factor; 0: always cap_ms */
};

void deadline_init(struct deadline *d);
void deadline_destroy(struct deadline *d);

/* The deadline of the next call in ms (0: none, when cap_ms is 0). */
int64_t deadline_next(struct deadline *d, const struct deadline_rule *rule);

/* A call drew an image in ms. */
void deadline_succeeded(struct deadline *d, const struct deadline_rule *rule, int64_t ms);

/* A call ran out of its deadline: the next one gets twice as long. */
void deadline_timed_out(struct deadline *d);

#endif
