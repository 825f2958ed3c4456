/*
 * procedural.c: the built-in backend, wrapped in the backend interface.
 *
 * It is what a fresh machine has: no GPU, no model. It draws a
 * deterministic picture (procedural_draw.c) and labels it as procedural in
 * the PNG's parameters. An optional delay stands in for GPU time so tests
 * and demos can watch a run progress, be canceled, or be killed mid-item;
 * the delay sleeps in short steps so a cancel lands within ~10 ms, and
 * reports them as the sampler's steps (docs/live.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backends_real.h"
#include "backends/procedural_draw.h"
#include "util/xalloc.h"

struct procedural_state {
    long long delay_ms;
};

static enum backend_result procedural_generate(struct sf_backend *b, const struct sf_job *job,
                                               struct sf_image *out, char *err, size_t errlen)
{
    struct procedural_state *s = b->state;
    /* The delay stands for the sampler's steps: they are reported as it
     * passes (no preview), so the step events can be watched without a GPU. */
    int reported = -1;
    for (long long waited = 0; waited < s->delay_ms; waited += 10) {
        if (atomic_load(job->cancel))
            return BACKEND_CANCELED;
        int step = (int)(waited * job->steps / s->delay_ms);
        if (step != reported) {
            reported = step;
            be_step(job, step, job->steps, NULL, 0, NULL);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(job->cancel))
        return BACKEND_CANCELED;
    char *loras = json_dumps(job->loras, JSON_COMPACT | JSON_REAL_PRECISION(15));
    int rc = procedural_render_png((unsigned long long)job->seed, job->prompt, job->negative_prompt,
                                   job->steps, job->cfg_scale, job->width, job->height,
                                   loras && strcmp(loras, "[]") ? loras : "", &out->png, &out->png_len);
    free(loras);
    if (rc < 0) {
        snprintf(err, errlen, "procedural: cannot encode a %dx%d PNG", job->width, job->height);
        return BACKEND_PERMANENT;
    }
    out->width = job->width;
    out->height = job->height;
    out->seed = job->seed;
    snprintf(out->sampler, sizeof out->sampler, "procedural");
    return BACKEND_OK;
}

static int procedural_health(struct sf_backend *b, char *err, size_t errlen)
{
    return 0;
}

static void procedural_destroy(struct sf_backend *b)
{
    free(b->state);
    free(b);
}

static const struct sf_backend_ops procedural_ops = {
    .type = "procedural",
    .generate = procedural_generate,
    .cancel = NULL, /* generate() sleeps in 10 ms steps and checks the flag */
    .health = procedural_health,
    .destroy = procedural_destroy,
};

struct sf_backend *procedural_backend_new(const char *name, int concurrency, long long delay_ms)
{
    struct procedural_state *s = xcalloc(1, sizeof(*s));
    s->delay_ms = delay_ms;
    return backend_alloc(&procedural_ops, name, concurrency, 0, s); /* it cannot hang */
}
