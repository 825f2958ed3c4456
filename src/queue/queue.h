/*
 * queue.h: the durable queue of run items, on SQLite.
 *
 * An item's life, in beanstalkd's words: queued (ready) → running (reserved,
 * with a lease that the engine's heartbeat extends) → succeeded | failed |
 * canceled. A lease that runs out (the process died, or hung) puts the item
 * back to queued, or fails it once it has used up its attempts. Every change
 * of state, the run's counters, its event log entry and, at the end, its
 * album are written in one transaction, so a kill -9 at any moment leaves a
 * consistent database.
 */
#ifndef SF_QUEUE_H
#define SF_QUEUE_H

#include <jansson.h>
#include <stdint.h>

#include "backends/backend.h"
#include "util/status.h"

struct claimed_item {
    long long item_id, run_id;
    int index;
    int attempts;
    char *prompt;
    char *negative_prompt;
    long long seed;
    int steps;
    double guidance_scale;
    int width, height;
    json_t *loras;
    int fit_crop; /* the run's "fit" is "crop" */
};

void claimed_item_free(struct claimed_item *it);

/*
 * Claims the next queued item whose backoff has passed, from the runs of
 * the highest priority that have one (paused runs have none), preferring
 * the first run after *rr_run (round robin across runs), leased to owner until
 * now + lease_ms. With endpoint (the claiming endpoint's name), an item that
 * already failed on it (queue_fail, transiently) is skipped unless every
 * one of the nup names in up (the endpoints taking items now, the claimer
 * among them; borrowed) has failed it too: a retry goes to an endpoint it
 * has not failed on while one is up, and anywhere once none is left.
 * endpoint NULL: any item. 1 claimed (and *rr_run updated), 0 nothing due,
 * -1 error.
 */
int queue_claim(const char *owner, int64_t lease_ms, long long *rr_run, const char *endpoint,
                const char *const *up, int nup, struct claimed_item *out);

/* The claim's statement, for the tests and bench that read its plan. */
const char *queue_claim_sql(void);

/*
 * Records a finished image: the file (already stored) gets its row, the item
 * is succeeded and linked. Idempotent per (run, item). Like every change
 * below, one transaction: a failure (busy, disk full) changes nothing and
 * the call can be repeated.
 */
sf_status queue_complete(const struct claimed_item *it, const char *owner,
                         const struct sf_image *img, const char *sha256,
                         const char *endpoint, int64_t duration_ms);

/*
 * Records a failed attempt at endpoint. Transient errors with attempts left
 * go back to queued with a backoff until retry_at_ms; anything else fails
 * the item. A transient error also adds endpoint to the endpoints the item
 * has failed on, which later claims avoid (queue_claim).
 */
sf_status queue_fail(const struct claimed_item *it, const char *owner, const char *error,
                     int permanent, int max_attempts, int64_t retry_at_ms,
                     const char *endpoint);

/* Marks a running item canceled (its run was canceled while it ran). */
sf_status queue_mark_canceled(const struct claimed_item *it, const char *owner);

/* Gives an item back untouched (the daemon is stopping, or its outcome
 * cannot be recorded): queued again, and the attempt it used is returned.
 * One statement, no transaction. */
sf_status queue_release(const struct claimed_item *it, const char *owner);

/* Extends the lease of every item owner holds, except the nskip item ids
 * in skip: items whose outcome could not be recorded nor released, left to
 * expire so queue_rescue() puts them back. */
sf_status queue_heartbeat(const char *owner, int64_t lease_ms, const long long *skip, int nskip);

/*
 * Puts back items whose lease expired, or, with RESCUE_ALL_FOREIGN, every running
 * item not leased by owner (at start-up: their owner is dead). Items out of
 * attempts fail. Returns the number of items rescued or failed.
 */
enum rescue_scope { RESCUE_EXPIRED, RESCUE_ALL_FOREIGN };
int queue_rescue(const char *owner, enum rescue_scope scope, int max_attempts);

/* SF_ENOTFOUND, SF_ECONFLICT when already final. */
sf_status queue_cancel_run(long long run_id);

/* Queues failed and canceled items again; SF_ECONFLICT when there are none. */
sf_status queue_retry_run(long long run_id);

/*
 * Pause: a queued or running run becomes paused; its queued items are not
 * claimed, its running items finish and are recorded. Resume: back to
 * running (queued if nothing was ever claimed). Priority: -100..100 (the
 * caller checks), higher claimed first, in any state but a final one.
 * Each writes the run's status event. SF_ENOTFOUND; SF_ECONFLICT when the
 * run is in a state the change does not start from.
 */
sf_status queue_pause_run(long long run_id);
sf_status queue_resume_run(long long run_id);
sf_status queue_set_priority(long long run_id, int priority);

/* Unix ms of the earliest due queued item of a run that is not paused, or
 * 0 when none. */
int64_t queue_next_due(void);

#endif
