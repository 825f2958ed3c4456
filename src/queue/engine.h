/*
 * engine.h: the worker pool that drains the durable queue.
 *
 * DESIGN (the redis bio.c way: every thread, what it owns, how work moves)
 *
 * Threads:
 *   - one worker per concurrency slot of each endpoint. It claims the next
 *     due item (queue_claim, one transaction; an item avoids the endpoints
 *     it already failed on while another is up), draws it with its
 *     endpoint's backend outside any lock or transaction, within a deadline
 *     learned from the endpoint's speed (queue/deadline.h), tells the
 *     endpoint's breaker what the call did, and hands the outcome to its
 *     finisher. While its endpoint's breaker is not up it waits, runs the
 *     health probe, or draws the one trial item a passing probe lets
 *     through (queue/breaker.h).
 *   - one finisher per worker. It stores the PNG (store/imagefiles.c,
 *     fsync + rename, the file held until its row commits) and records the
 *     outcome in one transaction, retrying a failed commit with backoff; an
 *     outcome that still cannot be recorded is released to the queue, and
 *     if even that fails, left out of the heartbeat so its lease runs out
 *     and the sweeper rescues it. No outcome ends with its item stuck in
 *     `running`. At most one outcome waits per worker, so memory stays
 *     bounded and an endpoint's items are recorded in the order drawn.
 *   - one sweeper. Every second it renews the leases of the items this
 *     process holds (heartbeat) and puts back items whose lease ran out.
 *
 * Locks: no code path holds two of them at once, so there is no lock order
 * to keep; each is a leaf.
 *   - eng.mu: kicks, stopping, rr_run and the condition variable eng.cv that
 *     idle workers and the sweeper sleep on. The loops read what they need
 *     under it and release it before any database or backend call.
 *   - worker.mu: that worker's hand-over slot (has_pending, pending, quit)
 *     and its condition variable, shared by the worker and its finisher.
 *   - breaker.mu (queue/breaker.c): one endpoint's breaker state (up, down,
 *     probing, and whether its trial item is out).
 *   - deadline.mu (queue/deadline.c): one endpoint's recent image times, from
 *     which a worker sets each call's deadline (job.timeout_ms).
 *   - eng.abandon_mu (finisher.c): the item ids left out of the heartbeat.
 *   Atomics, no lock: counters and histograms, each worker's cancel flag and
 *   current run id (read by engine_cancel_run and engine_stop).
 *
 * After every committed change of a run, the engine calls the notify
 * callback it was started with (main.c passes the HTTP server's
 * stream_notify), so event streams wake; it knows nothing of HTTP.
 */
#ifndef SF_ENGINE_H
#define SF_ENGINE_H

#include <jansson.h>
#include <stddef.h>

#include "util/config.h"
#include "util/status.h"

/* Called after a committed change of run run_id (-1: of any run). */
typedef void (*engine_notify_fn)(long long run_id);

/* Starts the workers and the sweeper. 0; -2 when an endpoint of the
 * config is invalid (err names the entry and field); -1 other failures.
 * notify may be NULL. */
int engine_start(const struct sf_config *cfg, engine_notify_fn notify, char *err, size_t errlen);

/* Stops accepting work, interrupts what is being drawn (those items go
 * back to queued), waits for the finishers to record what is done. */
void engine_stop(void);

/* Wakes the workers: there is new work. */
void engine_kick(void);

/* A run's items were queued again (retry): wakes workers and streams. */
void engine_run_requeued(long long run_id);

/* A run was paused, resumed or given a new priority: wakes the workers
 * (a resumed run has work) and its streams. */
void engine_run_changed(long long run_id);

/* A run was canceled: interrupts its items that workers are drawing now,
 * and wakes its streams. */
void engine_cancel_run(long long run_id);

/*
 * The queue-wide pause (docs/run-controls.md): paused, no item of any run
 * is claimed (the claim checks the durable flag in its transaction); items
 * being drawn finish and are recorded. Durable: a meta row, read back at
 * engine_start (which sets it first when the start_paused setting is on).
 * Resuming wakes the workers. SF_OK or the database's failure.
 */
sf_status engine_pause_queue(int paused);

/* 1 while the queue is paused (as this process last set or read it). */
int engine_queue_paused(void);

/* Worker slots across all endpoints (for ETAs). */
int engine_parallelism(void);

/* A snapshot of the engine's numbers, for /api/health and /metrics. */
#define ENGINE_HIST_BUCKETS 12
extern const double engine_hist_bounds_s[ENGINE_HIST_BUCKETS];

struct engine_endpoint_stats {
    char name[64];
    char type[16];
    const char *dialect; /* the wire dialect the endpoint speaks ("a1111", "sdcpp",
                          * "undetected"; static), NULL for types without one */
    const char *state; /* "up", "down", "probing" (static) */
    int concurrency;
    long in_flight;
    unsigned long done, failed, errors;
    double mean_item_s;
};

struct engine_stats {
    unsigned long rescued;
    /* item durations: hist[b] counts items of at most bounds[b] seconds
     * (not cumulative), hist[ENGINE_HIST_BUCKETS] the rest */
    unsigned long hist[ENGINE_HIST_BUCKETS + 1];
    double hist_sum_s;
    int nendpoints;
    struct engine_endpoint_stats *endpoints; /* malloc'd; engine_stats_free */
};

void engine_stats(struct engine_stats *out);

/*
 * Sentences about a run of width x height that some endpoint will not
 * return at that size (it aligns sizes up, as far as it knows by now), one
 * per such endpoint, saying what comes back and what fit_crop (the run's
 * "fit": "crop") makes of it. A new JSON array, empty when every endpoint
 * honours the size or cannot tell yet.
 */
json_t *engine_size_warnings(int width, int height, int fit_crop);
void engine_stats_free(struct engine_stats *st);

#endif
