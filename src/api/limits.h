/*
 * limits.h: who may call generate, and how much GPU work they may queue.
 *
 * Generate is the one public route that costs GPU time, so it is admitted
 * in steps, cheapest first (docs/operations.md, "Limits on generate"):
 *
 *   1. generate_admit_call, before the template is read: generate_access
 *      (public, token or admin: 401/403), then the per-IP request window
 *      of callers without an admin token (generate_rate: 429).
 *   2. generate_admit_items, once the run's size is known: a run that can
 *      never fit (larger than the caller's bucket, the anonymous share or
 *      the queue) is a 400 naming the template; otherwise the items come
 *      out of the caller's bucket (not for admins: 429 when it holds too
 *      few), and the caps for runs_create are filled in.
 *   3. runs_create counts the waiting items inside its write transaction
 *      (store/runs.h): 503 queue_full over queue_capacity_items, 429 over
 *      anonymous_queued_items_max. generate_refused answers those, with a
 *      Retry-After estimated from how fast items are drawn.
 *
 * A caller is its token when it has a non-admin one, else its IP address:
 * all anonymous callers behind one address share a bucket, and a token is
 * the same caller from any address.
 */
#ifndef SF_API_LIMITS_H
#define SF_API_LIMITS_H

#include "http/http.h"
#include "store/runs.h"

/* What generate_admit_items took from a bucket, to give back when no run
 * is created after all (refused by a cap, an Idempotency-Key replay). */
struct generate_ticket {
    char client[64];
    long long items; /* 0: nothing was taken */
};

/* Step 1. SF_OK, or the failure (filled in res). */
sf_status generate_admit_call(struct sf_request *req, struct sf_response *res);

/* Step 2 for a run of n items. SF_OK with caps and ticket filled, or the
 * failure (filled in res, nothing taken). */
sf_status generate_admit_items(struct sf_request *req, struct sf_response *res, long long n,
                               struct run_caps *caps, struct generate_ticket *ticket);

/* Gives back what ticket took (nothing when it took nothing). */
void generate_give_back(const struct sf_request *req, const struct generate_ticket *ticket);

/* Step 3: the answer to runs_create's SF_EQUEUEFULL or SF_ERATELIMIT
 * (caps as runs_create left them), with Retry-After. Returns st. */
sf_status generate_refused(struct sf_request *req, struct sf_response *res, sf_status st,
                           const struct run_caps *caps);

#endif
