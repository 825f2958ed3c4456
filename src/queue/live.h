/*
 * live.h: what the items being drawn show while they are drawn: the
 * sampler's step and the latest preview image (docs/live.md).
 *
 * Nothing here is durable. A worker opens a live entry for the item it
 * draws (live_begin), its backend reports steps and previews through the
 * job's on_step callback (live_step), and the worker closes the entry as
 * soon as generate() returns (live_end), before the outcome is recorded.
 * Event streams read what was published (live_steps_since) and the preview
 * route copies the latest preview out (live_preview); both only ever copy
 * under the store's lock, so an entry can be freed at its item's end while
 * another thread is reading the run.
 *
 * Throttle. A backend may report every step (ComfyUI sends a progress
 * message per step and a preview per step; a fast sampler does 20 a
 * second). An entry publishes at most one step every LIVE_MIN_INTERVAL_MS
 * (4 a second): a report inside the interval updates the entry (and its
 * preview) without waking anyone, and is published by the next report
 * after the interval. The last report of an item may so go unpublished;
 * the item event that follows says more.
 *
 * Publishing wakes the run's event streams through the notify callback
 * given to live_init (the one the engine was started with). A stream keeps
 * the number of the last publication it sent (a store-wide sequence), and
 * asks for the entries of its run published after it: a slow stream thus
 * skips to the latest state instead of queueing every step.
 */
#ifndef SF_LIVE_H
#define SF_LIVE_H

#include <stddef.h>
#include <stdint.h>

#define LIVE_MIN_INTERVAL_MS 250
/* A preview larger than this is not kept (a server sending full-size PNGs
 * every step would cost memory per item for nothing). */
#define LIVE_MAX_PREVIEW_BYTES ((size_t)4 * 1024 * 1024)

/* The throttle of one entry, alone, for its unit test. */
struct live_throttle {
    int64_t last_ms; /* when it last let a step through; 0: never */
};

/* 1 when a step at now_ms may be published (and records it), else 0. */
int live_throttle_pass(struct live_throttle *t, int64_t now_ms);

struct live_item; /* one item being drawn */

/* Sets the callback that wakes a run's streams (NULL: none). */
void live_init(void (*notify)(long long run_id));

/* Opens the entry of item index of run_id, drawn on endpoint (copied).
 * Never NULL. The caller (the worker) owns it until live_end. */
struct live_item *live_begin(long long run_id, int index, const char *endpoint);

/*
 * Records a step (0 <= step <= steps; steps 0 when unknown) and, when
 * preview is not NULL, the latest preview (len bytes of type mime, e.g.
 * "image/jpeg"; copied). Publishes when the throttle lets it through.
 * Safe from any thread while the entry is open; li NULL does nothing.
 */
void live_step(struct live_item *li, int step, int steps, const void *preview, size_t len,
               const char *mime);

/* live_step with the clock given (for tests). */
void live_step_at(struct live_item *li, int64_t now_ms, int step, int steps, const void *preview,
                  size_t len, const char *mime);

/* Closes and frees the entry (and its preview). Nothing may report on it
 * any more. NULL does nothing. */
void live_end(struct live_item *li);

/* What a stream sends for one entry (a copy). */
struct live_view {
    long long run_id;
    int index;
    char endpoint[64];
    int step, steps;
    unsigned long long preview_version; /* 0: no preview yet */
};

/*
 * Calls fn for every open entry of run_id published after *since, in no
 * particular order, and moves *since to the newest publication seen. fn
 * runs under the store's lock: it must only copy (no I/O, no other
 * locks). Returns how many it reported.
 */
int live_steps_since(long long run_id, unsigned long long *since,
                     void (*fn)(void *ctx, const struct live_view *v), void *ctx);

/*
 * The latest preview of item index of run_id: 1 with a malloc'd copy in
 * *bytes (*len bytes, the caller frees) and its type in mime, or 0 when
 * the item is not being drawn or has no preview.
 */
int live_preview(long long run_id, int index, unsigned char **bytes, size_t *len, char *mime,
                 size_t mimelen);

/* Entries open now, and the preview bytes they hold (for /metrics and
 * tests). */
void live_counts(int *items, size_t *preview_bytes);

#endif
