/*
 * engine.c: the worker threads, starting and stopping the engine, and its
 * numbers. The finishers are in finisher.c, the sweeper in sweeper.c.
 *
 * The threads, the locks and how work moves between them are described in
 * engine.h (DESIGN). Like redis's bio.c, a worker is a loop around a mutex,
 * a condition variable and a queue; here the queue is the run_items table.
 * When there is nothing due a worker sleeps on the condition variable until
 * engine_kick() or the earliest retry backoff ends.
 *
 * Each worker is bound to one concurrency slot of one endpoint, so an
 * endpoint never has more requests in flight than its configured
 * concurrency, and every endpoint pulls work as soon as it is free.
 */
#include "queue/engine_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "queue/breaker.h"
#include "queue/live.h"
#include "queue/queue.h"
#include "store/db.h"
#include "store/imagefiles.h"
#include "store/settings.h"
#include "util/hash.h"
#include "queue/webhook_sender.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

const double engine_hist_bounds_s[ENGINE_HIST_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                           1,     5,     10,   30,   60,  300};

struct engine eng = {.mu = PTHREAD_MUTEX_INITIALIZER, .abandon_mu = PTHREAD_MUTEX_INITIALIZER};

void engine_notify(long long run_id)
{
    if (eng.notify)
        eng.notify(run_id);
    webhook_sender_kick(); /* the change may have ended a run that has a webhook */
}

void engine_kick(void)
{
    pthread_mutex_lock(&eng.mu);
    eng.kicks++;
    pthread_cond_broadcast(&eng.cv);
    pthread_mutex_unlock(&eng.mu);
}

void engine_run_requeued(long long run_id)
{
    engine_kick();
    engine_notify(run_id);
}

void engine_run_changed(long long run_id)
{
    engine_run_requeued(run_id);
}

int engine_parallelism(void)
{
    return eng.nworkers;
}

/* The names of the endpoints that take items now (up), with self among
 * them; into names (room for eng.neps). Returns how many. */
static int takers(const struct endpoint *self, const char **names)
{
    int n = 0;
    for (int i = 0; i < eng.neps; i++)
        if (&eng.eps[i] == self || breaker_state(&eng.eps[i].breaker) == BREAKER_UP)
            names[n++] = eng.eps[i].backend->name;
    return n;
}

void engine_sleep(int64_t ms, const unsigned long *seen)
{
    if (ms < 1)
        ms = 1;
    struct timespec ts = mono_deadline(ms);
    pthread_mutex_lock(&eng.mu);
    if (!eng.stopping && (!seen || eng.kicks == *seen))
        pthread_cond_timedwait(&eng.cv, &eng.mu, &ts);
    pthread_mutex_unlock(&eng.mu);
}

/* The health call of a down endpoint whose delay is over: a pass lets one
 * real item through (the trial), a failure doubles the delay. */
static void probe(struct endpoint *ep)
{
    char err[512] = "";
    struct sf_backend *b = ep->backend;
    int ok = !b->ops->health || b->ops->health(b, err, sizeof(err)) == 0;
    int64_t delay = breaker_probed(&ep->breaker, ok);
    if (ok) {
        log_info("engine: endpoint %s answers its health call; one item goes there as a trial",
                 b->name);
        engine_kick();
    } else {
        log_warn("engine: endpoint %s still down (%s); next probe in %lld ms", b->name, err,
                 (long long)delay);
    }
}

/* A transient failure that took at least its deadline (less this, for the
 * rounding of the clocks that timed it) ran out of it. */
#define DEADLINE_SLACK_MS 10

/* The settings of ep's per-call deadline (deadline.h). */
static struct deadline_rule deadline_rule_of(const struct endpoint *ep)
{
    struct deadline_rule rule = {
        .cap_ms = (int64_t)ep->backend->timeout_s * 1000,
        .floor_ms = eng.cfg->adaptive_timeout_floor_s * 1000,
        .factor = (int)eng.cfg->adaptive_timeout_factor,
    };
    return rule;
}

/*
 * Tells the endpoint's breaker what a call did, before the worker claims
 * again (so a worker whose call opened the breaker claims nothing more).
 * An image is a success; a refusal of the request says nothing about the
 * server; a transient failure counts toward breaker_failures, and one that
 * ran out of its deadline (timed_out_ms, else 0) opens the breaker at once:
 * a server that hangs is not worth two more hangs.
 */
static void report_call(struct endpoint *ep, enum backend_result r, int trial,
                        int64_t timed_out_ms)
{
    struct breaker *br = &ep->breaker;
    const char *name = ep->backend->name;
    switch (r) {
    case BACKEND_OK:
        breaker_success(br, trial);
        if (trial)
            log_info("engine: endpoint %s drew its trial item; it is up again", name);
        return;
    case BACKEND_PERMANENT:
        breaker_refused(br, trial);
        return;
    case BACKEND_CANCELED:
        if (trial)
            breaker_trial_unused(br);
        return;
    case BACKEND_UNDELIVERED:
    case BACKEND_TRANSIENT:
        break;
    }
    /* A server that refuses connections is down now, not after three more
     * items have found it so. */
    int at_once = timed_out_ms || r == BACKEND_UNDELIVERED;
    int threshold = at_once ? 1 : (int)eng.cfg->breaker_failures;
    int64_t opened = breaker_failure(br, threshold, eng.cfg->breaker_delay_ms, trial);
    if (opened && r == BACKEND_UNDELIVERED)
        log_warn("engine: endpoint %s cannot be reached; it is down, probing in %lld ms", name,
                 (long long)opened);
    else if (opened && timed_out_ms)
        log_warn("engine: endpoint %s did not answer within its deadline of %lld ms; it is down, "
                 "probing in %lld ms", name, (long long)timed_out_ms, (long long)opened);
    else if (opened && trial)
        log_warn("engine: endpoint %s failed its trial item; probing again in %lld ms", name,
                 (long long)opened);
    else if (opened)
        log_warn("engine: endpoint %s is down after %lld failures in a row; probing in %lld ms",
                 name, (long long)eng.cfg->breaker_failures, (long long)opened);
}

/* ---- drawing ------------------------------------------------------------- */

/* The job's on_step: the backend's report goes to the item's live entry. */
static void report_step(void *ctx, int step, int steps, const void *preview, size_t len,
                        const char *mime)
{
    live_step(ctx, step, steps, preview, len, mime);
}

/* Draws it; the claimed item now belongs to the finisher. trial: the one
 * item a probing endpoint lets through (breaker.h). */
static void run_item(struct worker *w, struct claimed_item *it, int trial)
{
    atomic_store(&w->run_id, it->run_id);
    /* engine_stop() may have set cancel between our claim and here: keep
     * it, or this item would run to its end and hold up the shutdown. */
    atomic_store(&w->cancel, 0);
    if (atomic_load(&eng.stopping))
        atomic_store(&w->cancel, 1);
    struct sf_job job = {
        .run_id = it->run_id,
        .item_index = it->index,
        .prompt = it->prompt,
        .negative_prompt = it->negative_prompt,
        .seed = it->seed,
        .steps = it->steps,
        .cfg_scale = it->guidance_scale,
        .width = it->width,
        .height = it->height,
        .loras = it->loras,
        .data_dir = eng.cfg->data_dir,
        .cancel = &w->cancel,
        .fit_crop = it->fit_crop,
    };
    struct endpoint *ep = w->ep;
    struct deadline_rule rule = deadline_rule_of(ep);
    int64_t limit_ms = deadline_next(&ep->deadline, &rule);
    job.timeout_ms = (long)limit_ms;
    struct outcome o;
    memset(&o, 0, sizeof(o));
    /* Steps and previews live only while the call runs: the entry is
     * closed before the outcome is recorded (docs/live.md). */
    struct live_item *li = live_begin(it->run_id, it->index, ep->backend->name);
    job.on_step = report_step;
    job.step_ctx = li;
    atomic_fetch_add(&ep->in_flight, 1);
    int64_t t0 = mono_us();
    o.r = ep->backend->ops->generate(ep->backend, &job, &o.img, o.err, sizeof(o.err));
    o.dur_us = mono_us() - t0;
    live_end(li);
    atomic_fetch_sub(&ep->in_flight, 1);
    atomic_store(&w->run_id, 0);
    int timed_out = o.r == BACKEND_TRANSIENT && limit_ms > 0 &&
                    o.dur_us / 1000 + DEADLINE_SLACK_MS >= limit_ms;
    if (o.r == BACKEND_OK)
        deadline_succeeded(&ep->deadline, &rule, o.dur_us / 1000);
    else if (timed_out)
        deadline_timed_out(&ep->deadline);
    report_call(ep, o.r, trial, timed_out ? limit_ms : 0);
    /* An image that finished is kept even when we are stopping: the
     * finisher records it before the worker exits. */
    o.it = *it;
    memset(it, 0, sizeof(*it));
    finisher_hand_over(w, &o);
}

static void wait_for_work(unsigned long seen)
{
    int64_t due = queue_next_due();
    int64_t wait_ms = 5000;
    if (due) {
        int64_t until = due - now_unix_ms();
        wait_ms = until < 1 ? 1 : (until < wait_ms ? until : wait_ms);
    }
    engine_sleep(wait_ms, &seen);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct endpoint *ep = w->ep;
    const char **up = xcalloc((size_t)eng.neps, sizeof(*up));
    engine_open_db("worker");
    for (;;) {
        pthread_mutex_lock(&eng.mu);
        int stopping = eng.stopping;
        unsigned long seen = eng.kicks;
        long long rr = eng.rr_run;
        pthread_mutex_unlock(&eng.mu);
        if (stopping)
            break;
        if (atomic_load(&eng.queue_paused)) { /* until engine_pause_queue(0) kicks */
            engine_sleep(60000, &seen);
            continue;
        }
        int64_t wait;
        enum breaker_turn turn = breaker_turn(&ep->breaker, &wait);
        if (turn == TURN_WAIT) {
            engine_sleep(wait, NULL);
            continue;
        }
        if (turn == TURN_PROBE) {
            probe(ep);
            continue;
        }
        int trial = turn == TURN_TRIAL;
        struct claimed_item it;
        /* A failed item is retried on an endpoint it has not failed on
         * while one is up (queue_claim). */
        int nup = takers(ep, up);
        int got = queue_claim(eng.owner, eng.cfg->lease_ms, &rr, ep->backend->name, up, nup, &it);
        if (got == 1) {
            pthread_mutex_lock(&eng.mu);
            eng.rr_run = rr;
            pthread_mutex_unlock(&eng.mu);
            finisher_unabandon(it.item_id);
            engine_notify(it.run_id);
            run_item(w, &it, trial);
            continue;
        }
        if (trial)
            breaker_trial_unused(&ep->breaker);
        if (got < 0)
            usleep(50000); /* the database was busy: back off a little */
        wait_for_work(seen);
    }
    free(up);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->finisher, NULL); /* it records what is pending first */
    db_close_thread();
    return NULL;
}

/* ---- start and stop -------------------------------------------------------- */

int engine_start(const struct sf_config *cfg, engine_notify_fn notify_fn, char *err, size_t errlen)
{
    eng.cfg = cfg;
    eng.notify = notify_fn;
    live_init(notify_fn); /* step events wake the streams, not the webhook sender */
    cond_init_monotonic(&eng.cv);
    unsigned char rnd[6];
    char hex[13];
    random_bytes(rnd, sizeof(rnd));
    hex_encode(rnd, sizeof(rnd), hex);
    snprintf(eng.owner, sizeof(eng.owner), "pid%ld-%s", (long)getpid(), hex);

    if (backends_build(cfg->endpoints, (int)cfg->workers, cfg->procedural_delay_ms, &eng.backends,
                       &eng.neps, err, errlen) < 0)
        return -2;
    eng.eps = xcalloc((size_t)eng.neps, sizeof(struct endpoint));
    for (int i = 0; i < eng.neps; i++)
        eng.eps[i].backend = eng.backends[i];
    for (int i = 0; i < eng.neps; i++) {
        breaker_init(&eng.eps[i].breaker);
        deadline_init(&eng.eps[i].deadline);
    }

    int temps = imagefile_sweep_temps(cfg->data_dir);
    if (temps > 0)
        log_info("engine: removed %d temporary files left by a previous process", temps);

    /* Whatever was running when the last process died is ours to redo. */
    int n = queue_rescue(eng.owner, RESCUE_ALL_FOREIGN, (int)cfg->max_attempts);
    if (n < 0) {
        snprintf(err, errlen, "cannot rescue the items of the previous run");
        return -1;
    }
    if (n > 0) {
        atomic_fetch_add(&eng.rescued, (unsigned long)n);
        log_info("engine: rescued %d items left running by a previous process", n);
    }

    int paused = 0;
    if (cfg->start_paused && settings_set_flag(SETTING_QUEUE_PAUSED, 1) != SF_OK) {
        snprintf(err, errlen, "cannot pause the queue (start_paused)");
        return -1;
    }
    if (settings_flag(SETTING_QUEUE_PAUSED, &paused) != SF_OK) {
        snprintf(err, errlen, "cannot read whether the queue is paused");
        return -1;
    }
    atomic_store(&eng.queue_paused, paused);
    if (paused)
        log_info("engine: the queue is paused%s; nothing is drawn until POST /api/queue/resume",
                 cfg->start_paused ? " (start_paused)" : "");

    for (int i = 0; i < eng.neps; i++)
        eng.nworkers += eng.eps[i].backend->concurrency;
    eng.workers = xcalloc((size_t)eng.nworkers, sizeof(struct worker));
    int k = 0;
    for (int i = 0; i < eng.neps; i++)
        for (int c = 0; c < eng.eps[i].backend->concurrency; c++, k++) {
            struct worker *w = &eng.workers[k];
            w->ep = &eng.eps[i];
            pthread_mutex_init(&w->mu, NULL);
            pthread_cond_init(&w->cv, NULL);
            pthread_create(&w->finisher, NULL, finisher_main, w);
            pthread_create(&w->thread, NULL, worker_main, w);
        }
    pthread_create(&eng.sweeper, NULL, sweeper_main, NULL);
    eng.started = 1;
    return 0;
}

void engine_stop(void)
{
    if (!eng.started)
        return;
    pthread_mutex_lock(&eng.mu);
    eng.stopping = 1;
    pthread_cond_broadcast(&eng.cv);
    pthread_mutex_unlock(&eng.mu);
    /* Interrupt what is being drawn: those items go back to queued and are
     * redone after the restart, instead of holding the shutdown hostage. */
    for (int i = 0; i < eng.nworkers; i++) {
        atomic_store(&eng.workers[i].cancel, 1);
        if (eng.workers[i].ep->backend->ops->cancel && atomic_load(&eng.workers[i].run_id))
            eng.workers[i].ep->backend->ops->cancel(eng.workers[i].ep->backend);
    }
    for (int i = 0; i < eng.nworkers; i++)
        pthread_join(eng.workers[i].thread, NULL);
    pthread_join(eng.sweeper, NULL);
    for (int i = 0; i < eng.nworkers; i++) {
        pthread_mutex_destroy(&eng.workers[i].mu);
        pthread_cond_destroy(&eng.workers[i].cv);
    }
    backends_destroy(eng.backends, eng.neps);
    for (int i = 0; i < eng.neps; i++) {
        breaker_destroy(&eng.eps[i].breaker);
        deadline_destroy(&eng.eps[i].deadline);
    }
    free(eng.workers);
    free(eng.eps);
    free(eng.abandoned);
    eng.workers = NULL;
    eng.eps = NULL;
    eng.abandoned = NULL;
    eng.backends = NULL;
    eng.nworkers = eng.neps = eng.nabandoned = eng.abandoned_cap = 0;
    eng.kicks = 0;
    eng.rr_run = 0;
    atomic_store(&eng.stopping, 0);
    pthread_cond_destroy(&eng.cv);
    eng.started = 0;
}

sf_status engine_pause_queue(int paused)
{
    sf_status st = settings_set_flag(SETTING_QUEUE_PAUSED, paused);
    if (st != SF_OK)
        return st;
    atomic_store(&eng.queue_paused, paused ? 1 : 0);
    if (!paused)
        engine_kick();
    log_info("engine: queue %s by an operator", paused ? "paused" : "resumed");
    return SF_OK;
}

int engine_queue_paused(void)
{
    return atomic_load(&eng.queue_paused);
}

void engine_cancel_run(long long run_id)
{
    for (int i = 0; i < eng.nworkers; i++) {
        struct worker *w = &eng.workers[i];
        if (atomic_load(&w->run_id) == run_id) {
            atomic_store(&w->cancel, 1);
            if (w->ep->backend->ops->cancel)
                w->ep->backend->ops->cancel(w->ep->backend);
        }
    }
    engine_notify(run_id);
}

/* ---- numbers ----------------------------------------------------------------- */

void engine_stats(struct engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->rescued = atomic_load(&eng.rescued);
    for (int b = 0; b <= ENGINE_HIST_BUCKETS; b++)
        out->hist[b] = atomic_load(&eng.hist[b]);
    out->hist_sum_s = (double)atomic_load(&eng.hist_sum_us) / 1e6;
    out->nendpoints = eng.neps;
    out->endpoints = xcalloc(eng.neps > 0 ? (size_t)eng.neps : 1, sizeof(*out->endpoints));
    for (int i = 0; i < eng.neps; i++) {
        struct endpoint *ep = &eng.eps[i];
        struct engine_endpoint_stats *s = &out->endpoints[i];
        snprintf(s->name, sizeof(s->name), "%s", ep->backend->name);
        snprintf(s->type, sizeof(s->type), "%s", ep->backend->ops->type);
        s->dialect = ep->backend->ops->dialect ? ep->backend->ops->dialect(ep->backend) : NULL;
        s->state = breaker_state_name(breaker_state(&ep->breaker));
        s->concurrency = ep->backend->concurrency;
        s->in_flight = atomic_load(&ep->in_flight);
        s->done = atomic_load(&ep->done);
        s->failed = atomic_load(&ep->failed);
        s->errors = atomic_load(&ep->errors);
        /* Successful items only: a failed attempt's time (up to a whole
         * timeout) says nothing of how fast this endpoint draws. */
        s->mean_item_s = s->done ? (double)atomic_load(&ep->ok_us) / 1e6 / (double)s->done : 0;
    }
}

void engine_stats_free(struct engine_stats *st)
{
    free(st->endpoints);
    st->endpoints = NULL;
    st->nendpoints = 0;
}


json_t *engine_size_warnings(int width, int height, int fit_crop)
{
    json_t *list = json_array();
    for (int i = 0; i < eng.neps; i++) {
        struct sf_backend *b = eng.eps[i].backend;
        int w, h;
        if (!b->ops->output_size || !b->ops->output_size(b, width, height, &w, &h) ||
            (w == width && h == height))
            continue;
        if (fit_crop && w >= width && h >= height)
            json_array_append_new(
                list, json_sprintf("endpoint %s returns %dx%d images when asked for %dx%d (it "
                                   "aligns sizes up); they will be centre-cropped to %dx%d "
                                   "(fit: crop)",
                                   b->name, w, h, width, height, width, height));
        else
            json_array_append_new(
                list, json_sprintf("endpoint %s returns %dx%d images when asked for %dx%d (it "
                                   "aligns sizes up); the images keep that size, or ask \"fit\": "
                                   "\"crop\" for %dx%d",
                                   b->name, w, h, width, height, width, height));
    }
    return list;
}
