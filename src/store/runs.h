/*
 * runs.h: batch generation runs, their items and their event log.
 *
 * A run and all of its items are created in one transaction. Reading is
 * here too (run JSON with progress, item pages, events after an id); the
 * state changes of a running queue live in queue/queue.c.
 */
#ifndef SF_STORE_RUNS_H
#define SF_STORE_RUNS_H

#include <jansson.h>

#include "store/scope.h"
#include "store/states.h"
#include "util/pagination.h"
#include "util/status.h"

/* A run's priority: higher is claimed first (docs/run-controls.md). */
#define RUN_PRIORITY_MIN (-100)
#define RUN_PRIORITY_MAX 100

/*
 * The seed of item index of a run whose seed is seed (0..2^31-1): seed +
 * index, wrapped modulo 2^31, so it stays in [0, 2147483647]. Every server
 * reads that range: stable-diffusion.cpp's sd-server parses "seed" as a
 * 32-bit int and draws a random one for anything larger, which would make
 * the recorded seed a lie (docs/backends.md, "Seeds").
 */
#define RUN_SEED_MODULUS 2147483648LL
static inline long long run_item_seed(long long seed, long long index)
{
    long long s = (seed + index) % RUN_SEED_MODULUS;
    return s < 0 ? s + RUN_SEED_MODULUS : s;
}

struct run_spec {
    long long template_id;
    const char *album_name;
    const char *user_theme;
    int steps;
    long long seed;
    int width, height;
    double guidance_scale;
    const char *negative_prompt;
    const json_t *loras;   /* borrowed */
    const json_t *prompts; /* borrowed array of strings, one per item */
    const char *idempotency_key;  /* or NULL */
    const char *request_hash;     /* hex SHA-256 of the request body */
    const char *creator;
    const char *callback_url;     /* or NULL: no webhook (docs/webhooks.md) */
    int priority; /* -100..100, higher claimed first (docs/run-controls.md) */
    const char *fit; /* "exact" (also when NULL) or "crop" */
};

/*
 * Caps on the items waiting in the queue: items of queued and running runs
 * that have not settled (queued, or being drawn). 0 is no cap. They are
 * counted inside runs_create's write transaction, and BEGIN IMMEDIATE
 * holds SQLite's one write lock until the run is in: two creates (on any
 * threads, in any processes) are counted one after the other, so they can
 * never both pass a cap that they exceed together.
 */
struct run_caps {
    long long queue_capacity; /* all runs */
    long long anonymous_max;  /* runs without a creator; only when spec->creator is NULL */
    /* out, when a cap refused the run: how many items over it the queue
     * would be with this run in it */
    long long excess;
};

/*
 * Creates the run and its queued items atomically. With an idempotency key
 * seen in the last 24 h: the same request returns that run (*reused = 1),
 * a different request is SF_ECONFLICT; neither is counted against caps.
 * caps (may be NULL): SF_EQUEUEFULL when the run does not fit in
 * queue_capacity, SF_ERATELIMIT when it does not fit in anonymous_max;
 * nothing is created then.
 */
sf_status runs_create(const struct run_spec *spec, struct run_caps *caps, long long *run_id,
                      int *reused);

/*
 * Run JSON (new object) with "webhook" (webhooks_run_json, or null), and
 * "progress" (0..1) and "eta_s": from the run's
 * mean item time so far, the queued items and the time its running items
 * have already taken, over parallelism workers (runs.c eta_ms; null until
 * an item has finished, while the run is paused and when parallelism is 0
 * (the queue is paused), 0 once the run is final). "paused" and "priority"
 * come with it (docs/run-controls.md). SF_ENOTFOUND.
 */
sf_status runs_get(long long id, enum read_scope scope, int parallelism, json_t **out);

/*
 * Calls each(row, ctx) for every image the run has made so far that scope
 * may see, in item order, inside the caller's read snapshot: the rows of
 * albums_each_image (store/albums.h), with "position" the item index. A
 * running run's images are those of its items that have succeeded.
 */
sf_status runs_each_image(long long run_id, enum read_scope scope,
                          int (*each)(const json_t *row, void *ctx), void *ctx);

/* template_id 0 = all templates; status NULL = all statuses. */
sf_status runs_list(const struct page *pg, enum read_scope scope, long long template_id,
                    const char *status, json_t **rows_out, long long *total_out);

/* A page of items in item order (new array). */
sf_status runs_items(long long run_id, enum read_scope scope, const struct page *pg,
                     json_t **rows_out, long long *total_out);

/*
 * Calls fn for up to limit events of the run with id > *last_id, in order
 * (type and data borrowed for the call), and advances *last_id. Returns how
 * many there were.
 */
typedef void (*run_event_fn)(void *ctx, long long id, const char *type, const char *data);
int runs_events(long long run_id, long long *last_id, int limit, run_event_fn fn, void *ctx);

/* Appends the run's status event (its state and counters now), or the
 * item's event (its state and the run's progress), in the caller's open
 * transaction: the one writer of run_events. */
/* Who tells the store how many worker slots an ETA is spread over (0
 * while the queue is paused): the engine, wired by main.c. Until set, 1. */
void runs_eta_source(int (*parallelism)(void));
sf_status runs_event_status(long long run_id, const char *now);
sf_status runs_event_item(long long item_id, const char *now);

/* 1 when the run exists and scope may see it. */
int runs_exists(long long id, enum read_scope scope);

/* Items queued and running now (two index lookups, cheap enough for every
 * health check). On failure *why names SQLite's reason (static). */
sf_status runs_queue_depth(long long *queued, long long *running, const char **why);

/* Items and runs by state (counts[state]), in one read each. */
sf_status runs_item_counts(long long counts[ITEM_NSTATES]);
sf_status runs_run_counts(long long counts[RUN_NSTATES]);

/* 1 when the run is in a final state (completed, failed, canceled), every
 * item has settled (none is still being interrupted) and no event after
 * last_id remains to be sent. */
int runs_is_final(long long run_id, long long last_id);

#endif
