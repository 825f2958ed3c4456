/*
 * webhook_sender.h: the thread that delivers run webhooks.
 *
 * One thread, started with the engine when webhook_secret is set. It takes
 * the due rows of webhook_deliveries (store/webhooks.h) one at a time,
 * signs each attempt as Standard Webhooks 1.0 says (util/stdwebhook.h) and
 * POSTs it through the SSRF-safe client (backends/http_client.h, a guard
 * with the outbound_addresses policy and no redirects). A 2xx answer
 * delivers; anything else is a failed attempt, retried after a full-jitter
 * exponential wait (webhook_retry_base_ms) until WEBHOOK_MAX_ATTEMPTS.
 * Every attempt is recorded in the row, so a restart resumes where the
 * last process stopped. It sleeps until the next delivery is due, at most
 * a second, and wakes early when a run changes (webhook_sender_kick).
 *
 * One thread is enough: a delivery is one small POST with a short timeout,
 * and deliveries are one per finished run. A receiver that hangs holds the
 * others up for at most webhook_timeout_ms per attempt. docs/webhooks.md.
 */
#ifndef SF_WEBHOOK_SENDER_H
#define SF_WEBHOOK_SENDER_H

#include <stddef.h>

#include "util/config.h"

/* Starts the thread when cfg has a webhook_secret (0: started, or nothing
 * to start); -1 with err. cfg must outlive webhook_sender_stop. */
int webhook_sender_start(const struct sf_config *cfg, char *err, size_t errlen);

/* Interrupts an attempt under way (left pending: sent again at the next
 * start) and joins the thread. Safe when it was never started. */
void webhook_sender_stop(void);

/* A run changed: a delivery may have been queued. Cheap; no-op when not
 * running. */
void webhook_sender_kick(void);

/* Counts since start, for /metrics. */
struct webhook_sender_stats {
    int enabled;
    unsigned long delivered;      /* deliveries that got a 2xx */
    unsigned long failed_attempts; /* attempts that did not */
    unsigned long gave_up;        /* deliveries failed after the last attempt */
};
void webhook_sender_stats(struct webhook_sender_stats *out);

#endif
