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

#include "util/pagination.h"
#include "util/status.h"

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
};

/*
 * Creates the run and its queued items atomically. With an idempotency key
 * seen in the last 24 h: the same request returns that run (*reused = 1),
 * a different request is SF_ECONFLICT.
 */
sf_status runs_create(const struct run_spec *spec, long long *run_id, int *reused);

/*
 * Run JSON (new object) with "progress" (0..1) and "eta_s": the run's mean
 * item time so far times the items left, over parallelism workers (null
 * until an item has finished). SF_ENOTFOUND.
 */
sf_status runs_get(long long id, int parallelism, json_t **out);

/* template_id 0 = all templates; status NULL = all statuses. */
sf_status runs_list(const struct page *pg, long long template_id, const char *status,
                    json_t **rows_out, long long *total_out);

/* A page of items in item order (new array). */
sf_status runs_items(long long run_id, const struct page *pg, json_t **rows_out,
                     long long *total_out);

/*
 * Appends to sb, as Server-Sent Events, up to limit events of the run with
 * id > *last_id, and advances *last_id. Returns how many were written.
 */
struct strbuf;
int runs_events_sse(long long run_id, long long *last_id, int limit, struct strbuf *sb);

/* 1 when the run is in a final state (completed, failed, canceled), every
 * item has settled (none is still being interrupted) and no event after
 * last_id remains to be sent. */
int runs_is_final(long long run_id, long long last_id);

#endif
