/*
 * engine.h: the worker pool that drains the durable queue.
 *
 * One worker thread per concurrency slot of each backend endpoint. Workers
 * sleep on a condition variable and are woken by engine_kick() when a run is
 * created or retried; a sweeper thread renews leases (heartbeat), rescues
 * expired ones, and wakes idle event streams for their heartbeat comment.
 */
#ifndef SF_ENGINE_H
#define SF_ENGINE_H

#include <jansson.h>

#include "util/config.h"
#include "util/xalloc.h"

/* Starts the workers and the sweeper. 0; -2 when an endpoint of the
 * config is invalid (err names the entry and field); -1 other failures. */
int engine_start(const struct sf_config *cfg, char *err, size_t errlen);

/* Stops accepting work, interrupts nothing, waits for running items. */
void engine_stop(void);

/* Wakes the workers: there is new work. */
void engine_kick(void);

/* Interrupts the items of run_id that workers are drawing now. */
void engine_cancel_run(long long run_id);

/* Worker slots across all endpoints (for ETAs). */
int engine_parallelism(void);

/* The "backends" array of /api/health (new reference). */
json_t *engine_backends_json(void);

/* Appends the engine's Prometheus metrics to sb. */
void engine_metrics(struct strbuf *sb);

/*
 * Removes an image file after its row was deleted, unless a row uses it
 * again or a worker is about to (files are shared by content). Closes the
 * race between "no row uses it" and a worker storing the same bytes.
 */
void engine_remove_file_if_unused(const char *sha);

#endif
