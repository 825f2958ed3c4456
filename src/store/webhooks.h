/*
 * webhooks.h: the durable queue of run webhook deliveries
 * (sql/007_webhooks.sql, docs/webhooks.md).
 *
 * A delivery is queued by the transaction that ends its run (queue/queue.c
 * calls webhooks_queue_run_end inside it), so a crash between "the run
 * ended" and "a delivery is owed" cannot happen. The delivery thread
 * (queue/webhook_sender.c) takes due rows one at a time and records each
 * attempt; a row stays `pending` until it is `delivered` or, after
 * WEBHOOK_MAX_ATTEMPTS, `failed`. Reads for the API: webhooks_run_json.
 */
#ifndef SF_STORE_WEBHOOKS_H
#define SF_STORE_WEBHOOKS_H

#include <jansson.h>
#include <stdint.h>

#include "util/status.h"

/* Attempts per delivery, the first one included. */
#define WEBHOOK_MAX_ATTEMPTS 5

/*
 * In the caller's open write transaction, after the run's final status,
 * counters and album are written: when run_id has a callback_url, queues
 * the delivery of its end ("run.completed", "run.failed", "run.canceled"),
 * due at once, with a new webhook id. SF_OK also when there is no URL.
 */
sf_status webhooks_queue_run_end(long long run_id, const char *now);

/* A due delivery, as the sender needs it. */
struct webhook_due {
    long long id;
    char webhook_id[64];
    char *url;     /* malloc'd */
    char *payload; /* malloc'd JSON text: the body, sent as stored */
    int attempts;  /* made so far */
};
void webhook_due_free(struct webhook_due *d);

/* The pending delivery due earliest, if due at now_ms: 1 (out filled), 0
 * none due, -1 error. */
int webhooks_next_due(int64_t now_ms, struct webhook_due *out);

/* Unix ms when the earliest pending delivery is due; 0 when none is. */
int64_t webhooks_earliest_due(void);

/* Pending deliveries (to warn at start when nothing can send them). */
long long webhooks_pending_count(void);

/*
 * Records one attempt of delivery id: http_status (0: no answer) and error
 * (NULL on success). next_ms: 0 when the delivery is over (delivered when
 * error is NULL, failed otherwise), else when the next attempt is due.
 */
sf_status webhooks_record_attempt(long long id, long http_status, const char *error,
                                  int64_t next_ms, const char *now);

/*
 * The run's webhook for GET /api/runs/:id: NULL when the run named no
 * callback_url, else {"url", "status" (waiting: the run has not ended;
 * pending, delivered, failed), "webhook_id", "attempts", "last_error",
 * "last_attempt_at", "next_attempt_at", "attempts_log"} of its latest
 * delivery. The caller decides what a non-admin sees (api/runs.c).
 */
json_t *webhooks_run_json(long long run_id);

#endif
