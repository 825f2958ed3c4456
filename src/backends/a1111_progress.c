/*
 * a1111_progress.c: the poller that reads an A1111/Forge task's steps and
 * live previews while its txt2img call waits (why and the routes: see
 * a1111_progress.h).
 *
 * DESIGN. One detached thread per item being drawn with a listener. Its
 * context (struct a1111_progress) is shared by two owners, the generate()
 * call and the thread, and freed by the last one to let go (refs, under
 * p->mu). p->mu also guards stopped and reporting: the thread reports only
 * while not stopped, with reporting set and p->mu released (a report takes
 * the live store's lock, and no lock is held across another here), and
 * a1111_progress_stop() sets stopped then waits for a report in progress
 * to end, which is a copy, never I/O. The thread's own HTTP handle (the
 * client's per-thread one) is its second connection to the server, and
 * is freed when the thread exits. The endpoint's struct a1111_pollers
 * counts the threads, so destroy can wait for them.
 */
#include "backends/a1111_progress.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backends_real.h"
#include "util/base64.h"
#include "util/imagehead.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define POLL_INTERVAL_MS 250
/* The first ask comes sooner: the server has had the task for a moment,
 * and a short image should not end before anyone looked. */
#define POLL_FIRST_MS 50
/* A poll that takes longer is cut; the next one is asked 250 ms later. */
#define POLL_TIMEOUT_MS 3000
/* Failures in a row (no answer, or not a progress answer) after which
 * this item's poller gives up: the server is busy with the image. */
#define POLL_MAX_FAILURES 8

struct a1111_progress {
    struct a1111_pollers *ps;
    char *url, *userpwd, *who;
    char task_id[64];
    const struct sf_job *job; /* reports go to its on_step until stopped */
    int job_steps;            /* job->steps, copied: job is gone after stop */
    atomic_int cancel;        /* cuts the poll in flight at stop */
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* stop wakes the thread; a report's end wakes stop */
    int stopped, reporting, refs;
};

void a1111_pollers_init(struct a1111_pollers *ps)
{
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
    ps->running = 0;
    atomic_init(&ps->route, PROGRESS_UNKNOWN);
}

void a1111_pollers_destroy(struct a1111_pollers *ps)
{
    pthread_mutex_lock(&ps->mu);
    while (ps->running > 0)
        pthread_cond_wait(&ps->cv, &ps->mu);
    pthread_mutex_unlock(&ps->mu);
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
}

/* ---- reading answers ---- */

/* The preview in text (a data: URL or bare base64) as bytes of a known
 * image type; 0, or -1 when it is none. */
static int decode_preview(const char *text, struct a1111_step *out)
{
    unsigned char *bytes;
    size_t n;
    if (!text || !*text || base64_decode(text, strlen(text), &bytes, &n) < 0)
        return -1;
    enum image_kind k = image_sniff(bytes, n);
    if (k == IMAGE_UNKNOWN) {
        free(bytes);
        return -1;
    }
    out->preview = bytes;
    out->preview_len = n;
    out->mime = image_kind_mime(k);
    return 0;
}

int a1111_read_progress(const char *body, size_t len, int internal, int job_steps,
                        struct a1111_step *out)
{
    memset(out, 0, sizeof *out);
    out->id_live_preview = -1;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    int rc = 0;
    if (internal) {
        const json_t *active = json_object_get(j, "active");
        if (!json_is_boolean(active)) {
            rc = -1;
            goto done;
        }
        out->active = json_is_true(active);
        const json_t *id = json_object_get(j, "id_live_preview");
        if (json_is_integer(id))
            out->id_live_preview = (long)json_integer_value(id);
        const json_t *pr = json_object_get(j, "progress");
        /* It gives a fraction of the whole task; with one image of
         * job_steps steps, that is the sampler's step. */
        if (out->active && json_is_number(pr) && job_steps > 0) {
            double f = json_number_value(pr);
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            out->step = (int)lround(f * job_steps);
            out->steps = job_steps;
        }
        if (out->active)
            decode_preview(json_string_value(json_object_get(j, "live_preview")), out);
    } else {
        const json_t *state = json_object_get(j, "state");
        if (!json_is_object(state)) {
            rc = -1;
            goto done;
        }
        json_int_t step = json_integer_value(json_object_get(state, "sampling_step"));
        json_int_t steps = json_integer_value(json_object_get(state, "sampling_steps"));
        /* Whatever the server runs now; nothing runs: no steps. */
        out->active = steps > 0;
        if (out->active) {
            out->steps = steps > 100000 ? 100000 : (int)steps;
            out->step = step < 0 ? 0 : step > steps ? out->steps : (int)step;
            decode_preview(json_string_value(json_object_get(j, "current_image")), out);
        }
    }
done:
    json_decref(j);
    return rc;
}

/* ---- the thread ---- */

static void release(struct a1111_progress *p)
{
    pthread_mutex_lock(&p->mu);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->url);
    if (p->userpwd)
        memset(p->userpwd, 0, strlen(p->userpwd));
    free(p->userpwd);
    free(p->who);
    free(p);
}

/* Hands one answer to the job, unless stopped meanwhile. */
static void report(struct a1111_progress *p, const struct a1111_step *st)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopped) {
        pthread_mutex_unlock(&p->mu);
        return;
    }
    p->reporting = 1;
    pthread_mutex_unlock(&p->mu);
    be_step(p->job, st->step, st->steps, st->preview, st->preview_len, st->mime);
    pthread_mutex_lock(&p->mu);
    p->reporting = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* One poll on the route the endpoint has; moves the endpoint's route on
 * a 404. Returns 1 when it got a progress answer, 0 when not (try again),
 * -1 when there is nothing more to ask. */
static int poll_once(struct a1111_progress *p, long *id_live_preview)
{
    int route = atomic_load(&p->ps->route);
    if (route == PROGRESS_NONE)
        return -1;
    int internal = route != PROGRESS_SDAPI;
    char body[160];
    snprintf(body, sizeof body,
             "{\"id_task\":\"%s\",\"id_live_preview\":%ld,\"live_preview\":true}", p->task_id,
             *id_live_preview);
    char *url = xasprintf("%s%s", p->url,
                          internal ? "/internal/progress" : "/sdapi/v1/progress?skip_current_image=false");
    struct http_request hr = {
        .method = internal ? "POST" : "GET",
        .url = url,
        .body = internal ? body : NULL,
        .body_len = internal ? strlen(body) : 0,
        .userpwd = p->userpwd,
        .timeout_ms = POLL_TIMEOUT_MS,
        .connect_timeout_ms = 2000,
        .max_bytes = (size_t)16 * 1024 * 1024,
        .cancel = &p->cancel,
        .who = p->who,
    };
    struct http_response resp;
    char err[256];
    enum http_outcome o = http_client_do(&hr, &resp, err, sizeof err);
    free(url);
    if (o == HTTP_CANCELED)
        return -1;
    if (o != HTTP_ANSWERED)
        return 0;
    if (resp.status == 404 || resp.status == 405) {
        /* This server has no such route: the next one, for good. */
        atomic_compare_exchange_strong(&p->ps->route, &route,
                                       internal ? PROGRESS_SDAPI : PROGRESS_NONE);
        http_response_free(&resp);
        return 0;
    }
    struct a1111_step st;
    int rc = resp.status == 200 &&
                     a1111_read_progress(resp.body, resp.len, internal, p->job_steps, &st) == 0
                 ? 1
                 : 0;
    http_response_free(&resp);
    if (!rc)
        return 0;
    if (route == PROGRESS_UNKNOWN)
        atomic_compare_exchange_strong(&p->ps->route, &route, PROGRESS_INTERNAL);
    if (internal && st.id_live_preview >= 0)
        *id_live_preview = st.id_live_preview;
    if (st.active)
        report(p, &st);
    free(st.preview);
    return 1;
}

static void *poller_main(void *arg)
{
    struct a1111_progress *p = arg;
    long id_live_preview = -1;
    int failures = 0, polls = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) { /* the loop starts with p->mu held */
        struct timespec until = mono_deadline(polls++ ? POLL_INTERVAL_MS : POLL_FIRST_MS);
        while (!p->stopped && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
            ;
        if (p->stopped)
            break;
        pthread_mutex_unlock(&p->mu);
        int got = poll_once(p, &id_live_preview);
        failures = got == 1 ? 0 : failures + 1;
        pthread_mutex_lock(&p->mu);
        if (got < 0 || failures >= POLL_MAX_FAILURES)
            break;
    }
    pthread_mutex_unlock(&p->mu);
    struct a1111_pollers *ps = p->ps;
    release(p);
    pthread_mutex_lock(&ps->mu);
    ps->running--;
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

struct a1111_progress *a1111_progress_start(struct a1111_pollers *ps, const struct a1111_where *w,
                                            const char *task_id, const struct sf_job *job)
{
    if (!job->on_step || atomic_load(&ps->route) == PROGRESS_NONE)
        return NULL;
    struct a1111_progress *p = xcalloc(1, sizeof *p);
    p->ps = ps;
    p->url = xstrdup(w->url);
    p->userpwd = w->userpwd ? xstrdup(w->userpwd) : NULL;
    p->who = xasprintf("%s (progress)", w->who);
    snprintf(p->task_id, sizeof p->task_id, "%s", task_id);
    p->job = job;
    p->job_steps = job->steps;
    atomic_init(&p->cancel, 0);
    pthread_mutex_init(&p->mu, NULL);
    cond_init_monotonic(&p->cv);
    p->refs = 2;
    pthread_mutex_lock(&ps->mu);
    ps->running++;
    pthread_mutex_unlock(&ps->mu);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, poller_main, p);
    pthread_attr_destroy(&attr);
    if (rc != 0) { /* no steps for this item; the item itself is not hurt */
        pthread_mutex_lock(&ps->mu);
        ps->running--;
        pthread_cond_broadcast(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
        p->refs = 1;
        release(p);
        return NULL;
    }
    return p;
}

void a1111_progress_stop(struct a1111_progress *p)
{
    if (!p)
        return;
    atomic_store(&p->cancel, 1);
    pthread_mutex_lock(&p->mu);
    p->stopped = 1;
    pthread_cond_broadcast(&p->cv);
    while (p->reporting)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    release(p);
}
