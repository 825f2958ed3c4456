/*
 * a1111_progress.h: the live steps of an A1111/Forge txt2img call
 * (docs/live.md), read on a second connection while the first waits for
 * the image.
 *
 * A1111's txt2img blocks until the image is done, so the progress has to
 * be asked for beside it. The request carries "force_task_id" (a task id
 * we make), and a poller thread asks POST /internal/progress {id_task,
 * id_live_preview, live_preview: true} about that task every 250 ms
 * (modules/progress.py: active, queued, completed, progress 0..1, eta,
 * live_preview as a data: URL when it changed since id_live_preview,
 * textinfo). A server without that route (404) is asked GET
 * /sdapi/v1/progress instead (state.sampling_step, state.sampling_steps,
 * current_image in base64), which describes whatever the server runs now;
 * one without either (sd-server) gives no steps. What an endpoint answered
 * is remembered (struct a1111_pollers.route), so a missing route costs one
 * 404 per endpoint, not one per item.
 *
 * The poller never delays the item: a1111_progress_stop() only marks it
 * stopped (waiting at most for a report in progress, which copies bytes
 * and takes no I/O) and returns; the thread leaves on its own once its
 * current request ends (cut within a second by its cancel flag) and frees
 * what it owns. An endpoint's destroy waits for its pollers to be gone.
 */
#ifndef SF_A1111_PROGRESS_H
#define SF_A1111_PROGRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "backends/backend.h"

enum progress_route {
    PROGRESS_UNKNOWN = 0, /* not asked yet: try /internal/progress */
    PROGRESS_INTERNAL,    /* POST /internal/progress answers */
    PROGRESS_SDAPI,       /* only GET /sdapi/v1/progress answers */
    PROGRESS_NONE,        /* neither: no steps from this endpoint */
};

/* An endpoint's pollers: how many run, and which route its server has. */
struct a1111_pollers {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when running drops */
    int running;
    atomic_int route; /* enum progress_route */
};

void a1111_pollers_init(struct a1111_pollers *ps);
/* Waits for every poller of the endpoint to be gone, then frees. */
void a1111_pollers_destroy(struct a1111_pollers *ps);

/* Where and how to ask (copied by a1111_progress_start). */
struct a1111_where {
    const char *url;     /* the endpoint's base URL, no trailing slash */
    const char *userpwd; /* or NULL */
    const char *who;     /* "a1111 gpu0" */
};

struct a1111_progress;

/*
 * Starts polling for task_id on behalf of job (whose on_step gets the
 * reports; borrowed until a1111_progress_stop). NULL (nothing started)
 * when nobody listens to the job's steps or the endpoint has no progress
 * route.
 */
struct a1111_progress *a1111_progress_start(struct a1111_pollers *ps, const struct a1111_where *w,
                                            const char *task_id, const struct sf_job *job);

/* No report reaches the job after this returns. NULL does nothing. */
void a1111_progress_stop(struct a1111_progress *p);

/* What one progress answer says (pure, for tests). */
struct a1111_step {
    int active;     /* the task is being drawn now */
    int step, steps;
    unsigned char *preview; /* malloc'd (the caller frees), or NULL */
    size_t preview_len;
    const char *mime;       /* "image/jpeg", "image/png", ...: static */
    long id_live_preview;   /* to send with the next request; -1 */
};

/* Reads an answer of /internal/progress (internal = 1; job_steps: the
 * steps asked for, as it gives only a fraction) or /sdapi/v1/progress
 * (internal = 0). 0, or -1 when it is not such an answer. */
int a1111_read_progress(const char *body, size_t len, int internal, int job_steps,
                        struct a1111_step *out);

#endif
