/*
 * engine.c: worker threads, their finishers and the sweeper.
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
#include "queue/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "queue/breaker.h"
#include "queue/queue.h"
#include "store/db.h"
#include "store/imagefiles.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

const double engine_hist_bounds_s[ENGINE_HIST_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                           1,     5,     10,   30,   60,  300};

/* Tries to record one outcome before it is released to the queue: about
 * 6 s of backoff, long enough to ride out a busy database; an item that
 * still cannot be recorded is drawn again later rather than lost. */
#define RECORD_TRIES 10
#define RECORD_BACKOFF_MAX_MS 1000

/* One configured endpoint (a GPU server, a command, the procedural drawer). */
struct endpoint {
    struct sf_backend *backend;
    struct breaker breaker;
    atomic_long in_flight;
    atomic_ulong done, failed, errors;
    atomic_ullong busy_us;
};

/* What a worker hands its finisher: a drawn item and how it went. */
struct outcome {
    struct claimed_item it;
    enum backend_result r;
    struct sf_image img;
    char err[1024];
    int64_t dur_us;
};

struct worker {
    pthread_t thread;
    struct endpoint *ep;
    atomic_int cancel;
    atomic_llong run_id;
    pthread_t finisher;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int has_pending, quit;
    struct outcome pending;
};

static struct {
    const struct sf_config *cfg;
    engine_notify_fn notify;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long kicks;
    atomic_int stopping; /* also read outside mu, by finishers */
    long long rr_run;
    struct endpoint *eps;
    struct sf_backend **backends; /* eps[i].backend, as backends_build made them */
    int neps;
    struct worker *workers;
    int nworkers;
    pthread_t sweeper;
    int started;
    char owner[64];
    atomic_ulong rescued;
    atomic_ulong hist[ENGINE_HIST_BUCKETS + 1];
    atomic_ullong hist_sum_us;
    /* items whose outcome could be neither recorded nor released: the
     * heartbeat leaves them out, so they expire and are rescued */
    pthread_mutex_t abandon_mu;
    long long *abandoned;
    int nabandoned, abandoned_cap;
} E = {.mu = PTHREAD_MUTEX_INITIALIZER, .abandon_mu = PTHREAD_MUTEX_INITIALIZER};

static void notify(long long run_id)
{
    if (E.notify)
        E.notify(run_id);
}

void engine_kick(void)
{
    pthread_mutex_lock(&E.mu);
    E.kicks++;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
}

void engine_run_requeued(long long run_id)
{
    engine_kick();
    notify(run_id);
}

int engine_parallelism(void)
{
    return E.nworkers;
}

static void observe_duration(int64_t us)
{
    double s = (double)us / 1e6;
    int b = 0;
    while (b < ENGINE_HIST_BUCKETS && s > engine_hist_bounds_s[b])
        b++;
    atomic_fetch_add(&E.hist[b], 1);
    atomic_fetch_add(&E.hist_sum_us, (unsigned long long)us);
}

/* Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... capped at 60 s,
 * each scaled by a random factor in [0.5, 1.5) so retries spread out. */
static int64_t backoff_ms(int attempts)
{
    int64_t base = 500LL << (attempts > 7 ? 7 : (attempts > 0 ? attempts - 1 : 0));
    if (base > 60000)
        base = 60000;
    unsigned short r = 0;
    random_bytes(&r, sizeof(r));
    return base / 2 + (int64_t)((double)base * r / 65536.0);
}

/* 1 when another endpoint than ep is up (a failed item can go there). */
static int others_up(const struct endpoint *ep)
{
    for (int i = 0; i < E.neps; i++)
        if (&E.eps[i] != ep && breaker_state(&E.eps[i].breaker) == BREAKER_UP)
            return 1;
    return 0;
}

/* Sleeps on E.cv for up to ms, unless the engine is stopping or, with
 * seen != NULL, a kick came after *seen. */
static void sleep_on_engine(int64_t ms, const unsigned long *seen)
{
    if (ms < 1)
        ms = 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&E.mu);
    if (!E.stopping && (!seen || E.kicks == *seen))
        pthread_cond_timedwait(&E.cv, &E.mu, &ts);
    pthread_mutex_unlock(&E.mu);
}

/*
 * For a worker of a down endpoint: waits for the probe time, then probes
 * (one worker at a time). Returns when the endpoint is up or we stop.
 */
static void wait_until_up(struct endpoint *ep)
{
    while (!atomic_load(&E.stopping)) {
        int64_t wait;
        if (!breaker_should_probe(&ep->breaker, &wait)) {
            if (wait == 0)
                return; /* up */
            sleep_on_engine(wait, NULL);
            continue;
        }
        char err[512] = "";
        struct sf_backend *b = ep->backend;
        int ok = !b->ops->health || b->ops->health(b, err, sizeof(err)) == 0;
        int64_t delay = breaker_probed(&ep->breaker, ok);
        if (ok) {
            log_info("engine: endpoint %s is up again", b->name);
            engine_kick();
        } else {
            log_warn("engine: endpoint %s still down (%s); next probe in %lld ms", b->name, err,
                     (long long)delay);
        }
    }
}

static void ep_failure(struct endpoint *ep)
{
    if (breaker_failure(&ep->breaker, (int)E.cfg->breaker_failures, E.cfg->breaker_delay_ms))
        log_warn("engine: endpoint %s is down after %lld failures in a row; probing in %lld ms",
                 ep->backend->name, (long long)E.cfg->breaker_failures,
                 (long long)E.cfg->breaker_delay_ms);
}

/* ---- recording outcomes ------------------------------------------------ */

static void abandon(long long item_id)
{
    pthread_mutex_lock(&E.abandon_mu);
    if (E.nabandoned == E.abandoned_cap) {
        E.abandoned_cap = E.abandoned_cap ? E.abandoned_cap * 2 : 8;
        E.abandoned = xrealloc(E.abandoned, sizeof(long long) * (size_t)E.abandoned_cap);
    }
    E.abandoned[E.nabandoned++] = item_id;
    pthread_mutex_unlock(&E.abandon_mu);
}

/* A claimed item is ours again: renew its lease from now on. */
static void unabandon(long long item_id)
{
    pthread_mutex_lock(&E.abandon_mu);
    for (int i = 0; i < E.nabandoned; i++)
        if (E.abandoned[i] == item_id)
            E.abandoned[i--] = E.abandoned[--E.nabandoned];
    pthread_mutex_unlock(&E.abandon_mu);
}

enum record_kind { RECORD_COMPLETE, RECORD_FAIL, RECORD_CANCELED, RECORD_RELEASE };

struct record {
    enum record_kind kind;
    const struct claimed_item *it;
    const struct sf_image *img;
    const char *sha;
    const char *endpoint;
    int64_t dur_ms;
    const char *err;
    int permanent;
    int64_t retry_at_ms;
};

static sf_status record_once(const struct record *rec)
{
    switch (rec->kind) {
    case RECORD_COMPLETE:
        return queue_complete(rec->it, E.owner, rec->img, rec->sha, rec->endpoint, rec->dur_ms);
    case RECORD_FAIL:
        return queue_fail(rec->it, E.owner, rec->err, rec->permanent, (int)E.cfg->max_attempts,
                          rec->retry_at_ms, rec->endpoint);
    case RECORD_CANCELED:
        return queue_mark_canceled(rec->it, E.owner);
    case RECORD_RELEASE:
        return queue_release(rec->it, E.owner);
    }
    return SF_EINTERNAL;
}

/*
 * Writes an outcome, trying again with backoff when the transaction fails.
 * When it never succeeds, the item goes back to the queue (its attempt
 * returned) to be drawn again; when even that fails, its lease is left to
 * run out and the sweeper rescues it. Returns 1 when recorded as asked.
 */
static int record(const struct record *rec)
{
    int64_t pause = 100;
    for (int tries = 1;; tries++) {
        if (record_once(rec) == SF_OK)
            return 1;
        if (tries >= RECORD_TRIES)
            break;
        log_warn("engine: recording run %lld item %d failed (try %d of %d); trying again",
                 rec->it->run_id, rec->it->index, tries, RECORD_TRIES);
        usleep((useconds_t)pause * 1000);
        pause = pause * 2 > RECORD_BACKOFF_MAX_MS ? RECORD_BACKOFF_MAX_MS : pause * 2;
    }
    if (rec->kind != RECORD_RELEASE && queue_release(rec->it, E.owner) == SF_OK) {
        log_error("engine: cannot record run %lld item %d; it is queued again", rec->it->run_id,
                  rec->it->index);
        engine_kick();
        return 0;
    }
    log_error("engine: cannot record nor release run %lld item %d; its lease will expire and "
              "it will be rescued", rec->it->run_id, rec->it->index);
    abandon(rec->it->item_id);
    return 0;
}

static void record_outcome(struct worker *w, struct outcome *o)
{
    struct endpoint *ep = w->ep;
    struct claimed_item *it = &o->it;
    struct record rec = {.it = it, .endpoint = ep->backend->name, .err = o->err};
    enum backend_result r = o->r;
    if (r == BACKEND_OK) {
        char sha[65];
        char ferr[512];
        sf_status st = imagefile_store_held(E.cfg->data_dir, o->img.png, o->img.png_len, sha,
                                            ferr, sizeof(ferr));
        if (st == SF_EUNAVAILABLE) {
            /* The machine is out of files or space: not the item's fault,
             * so it is drawn again later without spending an attempt. */
            log_warn("engine: run %lld item %d: cannot store the image (%s); queued again",
                     it->run_id, it->index, ferr);
            rec.kind = RECORD_RELEASE;
            record(&rec);
            usleep(200000); /* give whatever holds the files a moment */
            return;
        }
        if (st != SF_OK) {
            snprintf(o->err, sizeof(o->err), "cannot store the image: %s", ferr);
            r = BACKEND_TRANSIENT;
        } else {
            rec.kind = RECORD_COMPLETE;
            rec.img = &o->img;
            rec.sha = sha;
            rec.dur_ms = o->dur_us / 1000;
            record(&rec);
            imagefile_release(sha);
            atomic_fetch_add(&ep->done, 1);
            observe_duration(o->dur_us);
            breaker_success(&ep->breaker);
            return;
        }
    }
    if (r == BACKEND_CANCELED) {
        rec.kind = atomic_load(&E.stopping) ? RECORD_RELEASE : RECORD_CANCELED;
        record(&rec);
        return;
    }
    atomic_fetch_add(&ep->errors, 1);
    int permanent = r == BACKEND_PERMANENT;
    if (permanent)
        breaker_success(&ep->breaker); /* the server answered; the request was the problem */
    else
        ep_failure(ep);
    if (permanent || it->attempts >= E.cfg->max_attempts)
        atomic_fetch_add(&ep->failed, 1);
    log_warn("engine: run %lld item %d attempt %d on %s: %s", it->run_id, it->index, it->attempts,
             ep->backend->name, o->err);
    rec.kind = RECORD_FAIL;
    rec.permanent = permanent;
    rec.retry_at_ms = now_unix_ms() + backoff_ms(it->attempts);
    record(&rec);
}

/* Opens this thread's database connection now, while files are there to
 * open, rather than at its first outcome in the middle of a flood. */
static void open_db_now(const char *who)
{
    if (!db_conn())
        log_warn("engine: the %s cannot open the database yet; it will try again", who);
}

static void *finisher_main(void *arg)
{
    struct worker *w = arg;
    open_db_now("finisher");
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->has_pending && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        int done = !w->has_pending && w->quit;
        pthread_mutex_unlock(&w->mu);
        if (done)
            break;
        struct outcome *o = &w->pending;
        long long run_id = o->it.run_id;
        record_outcome(w, o);
        free(o->img.png);
        claimed_item_free(&o->it);
        notify(run_id);
        pthread_mutex_lock(&w->mu);
        w->has_pending = 0;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    db_close_thread();
    return NULL;
}

/* Moves o (and what it owns) to the finisher, once the previous is done. */
static void hand_over(struct worker *w, const struct outcome *o)
{
    pthread_mutex_lock(&w->mu);
    while (w->has_pending)
        pthread_cond_wait(&w->cv, &w->mu);
    w->pending = *o;
    w->has_pending = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- drawing ------------------------------------------------------------- */

/* Draws it; the claimed item now belongs to the finisher. */
static void run_item(struct worker *w, struct claimed_item *it)
{
    atomic_store(&w->run_id, it->run_id);
    /* engine_stop() may have set cancel between our claim and here: keep
     * it, or this item would run to its end and hold up the shutdown. */
    atomic_store(&w->cancel, 0);
    if (atomic_load(&E.stopping))
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
        .data_dir = E.cfg->data_dir,
        .cancel = &w->cancel,
    };
    struct outcome o;
    memset(&o, 0, sizeof(o));
    struct endpoint *ep = w->ep;
    atomic_fetch_add(&ep->in_flight, 1);
    int64_t t0 = mono_us();
    o.r = ep->backend->ops->generate(ep->backend, &job, &o.img, o.err, sizeof(o.err));
    o.dur_us = mono_us() - t0;
    atomic_fetch_add(&ep->busy_us, (unsigned long long)o.dur_us);
    atomic_fetch_sub(&ep->in_flight, 1);
    atomic_store(&w->run_id, 0);
    /* An image that finished is kept even when we are stopping: the
     * finisher records it before the worker exits. */
    o.it = *it;
    memset(it, 0, sizeof(*it));
    hand_over(w, &o);
}

static void wait_for_work(unsigned long seen)
{
    int64_t due = queue_next_due();
    int64_t wait_ms = 5000;
    if (due) {
        int64_t until = due - now_unix_ms();
        wait_ms = until < 1 ? 1 : (until < wait_ms ? until : wait_ms);
    }
    sleep_on_engine(wait_ms, &seen);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    open_db_now("worker");
    for (;;) {
        pthread_mutex_lock(&E.mu);
        int stopping = E.stopping;
        unsigned long seen = E.kicks;
        long long rr = E.rr_run;
        pthread_mutex_unlock(&E.mu);
        if (stopping)
            break;
        if (breaker_state(&w->ep->breaker) != BREAKER_UP) {
            wait_until_up(w->ep);
            continue;
        }
        struct claimed_item it;
        /* A failed item is retried on another endpoint when one is up. */
        const char *avoid = others_up(w->ep) ? w->ep->backend->name : NULL;
        int got = queue_claim(E.owner, E.cfg->lease_ms, &rr, avoid, &it);
        if (got == 1) {
            pthread_mutex_lock(&E.mu);
            E.rr_run = rr;
            pthread_mutex_unlock(&E.mu);
            unabandon(it.item_id);
            notify(it.run_id);
            run_item(w, &it);
            continue;
        }
        if (got < 0)
            usleep(50000); /* the database was busy: back off a little */
        wait_for_work(seen);
    }
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->finisher, NULL); /* it records what is pending first */
    db_close_thread();
    return NULL;
}

/* ---- leases ---------------------------------------------------------------- */

static void heartbeat(void)
{
    pthread_mutex_lock(&E.abandon_mu);
    int n = E.nabandoned;
    long long *skip = n ? xmalloc(sizeof(long long) * (size_t)n) : NULL;
    if (n)
        memcpy(skip, E.abandoned, sizeof(long long) * (size_t)n);
    pthread_mutex_unlock(&E.abandon_mu);
    queue_heartbeat(E.owner, E.cfg->lease_ms, skip, n);
    free(skip);
}

static void *sweeper_main(void *arg)
{
    open_db_now("sweeper");
    int64_t last = mono_ms();
    for (;;) {
        /* Kicks wake this sleep too; the work below runs once a second. */
        sleep_on_engine(1000 - (mono_ms() - last), NULL);
        if (atomic_load(&E.stopping))
            break;
        if (mono_ms() - last < 1000)
            continue;
        last = mono_ms();
        heartbeat();
        int n = queue_rescue(E.owner, RESCUE_EXPIRED, (int)E.cfg->max_attempts);
        if (n > 0) {
            atomic_fetch_add(&E.rescued, (unsigned long)n);
            log_warn("engine: %d items had expired leases and were rescued", n);
            engine_kick();
            notify(-1);
        }
    }
    db_close_thread();
    return NULL;
}

/* ---- start and stop -------------------------------------------------------- */

int engine_start(const struct sf_config *cfg, engine_notify_fn notify_fn, char *err, size_t errlen)
{
    E.cfg = cfg;
    E.notify = notify_fn;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&E.cv, &ca);
    pthread_condattr_destroy(&ca);
    unsigned char rnd[6];
    char hex[13];
    random_bytes(rnd, sizeof(rnd));
    hex_encode(rnd, sizeof(rnd), hex);
    snprintf(E.owner, sizeof(E.owner), "pid%ld-%s", (long)getpid(), hex);

    if (backends_build(cfg->endpoints, (int)cfg->workers, cfg->procedural_delay_ms, &E.backends,
                       &E.neps, err, errlen) < 0)
        return -2;
    E.eps = xcalloc((size_t)E.neps, sizeof(struct endpoint));
    for (int i = 0; i < E.neps; i++)
        E.eps[i].backend = E.backends[i];
    for (int i = 0; i < E.neps; i++)
        breaker_init(&E.eps[i].breaker);

    int temps = imagefile_sweep_temps(cfg->data_dir);
    if (temps > 0)
        log_info("engine: removed %d temporary files left by a previous process", temps);

    /* Whatever was running when the last process died is ours to redo. */
    int n = queue_rescue(E.owner, RESCUE_ALL_FOREIGN, (int)cfg->max_attempts);
    if (n < 0) {
        snprintf(err, errlen, "cannot rescue the items of the previous run");
        return -1;
    }
    if (n > 0) {
        atomic_fetch_add(&E.rescued, (unsigned long)n);
        log_info("engine: rescued %d items left running by a previous process", n);
    }

    for (int i = 0; i < E.neps; i++)
        E.nworkers += E.eps[i].backend->concurrency;
    E.workers = xcalloc((size_t)E.nworkers, sizeof(struct worker));
    int k = 0;
    for (int i = 0; i < E.neps; i++)
        for (int c = 0; c < E.eps[i].backend->concurrency; c++, k++) {
            struct worker *w = &E.workers[k];
            w->ep = &E.eps[i];
            pthread_mutex_init(&w->mu, NULL);
            pthread_cond_init(&w->cv, NULL);
            pthread_create(&w->finisher, NULL, finisher_main, w);
            pthread_create(&w->thread, NULL, worker_main, w);
        }
    pthread_create(&E.sweeper, NULL, sweeper_main, NULL);
    E.started = 1;
    return 0;
}

void engine_stop(void)
{
    if (!E.started)
        return;
    pthread_mutex_lock(&E.mu);
    E.stopping = 1;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    /* Interrupt what is being drawn: those items go back to queued and are
     * redone after the restart, instead of holding the shutdown hostage. */
    for (int i = 0; i < E.nworkers; i++) {
        atomic_store(&E.workers[i].cancel, 1);
        if (E.workers[i].ep->backend->ops->cancel && atomic_load(&E.workers[i].run_id))
            E.workers[i].ep->backend->ops->cancel(E.workers[i].ep->backend);
    }
    for (int i = 0; i < E.nworkers; i++)
        pthread_join(E.workers[i].thread, NULL);
    pthread_join(E.sweeper, NULL);
    for (int i = 0; i < E.nworkers; i++) {
        pthread_mutex_destroy(&E.workers[i].mu);
        pthread_cond_destroy(&E.workers[i].cv);
    }
    backends_destroy(E.backends, E.neps);
    for (int i = 0; i < E.neps; i++)
        breaker_destroy(&E.eps[i].breaker);
    free(E.workers);
    free(E.eps);
    free(E.abandoned);
    E.workers = NULL;
    E.eps = NULL;
    E.abandoned = NULL;
    E.backends = NULL;
    E.nworkers = E.neps = E.nabandoned = E.abandoned_cap = 0;
    E.kicks = 0;
    E.rr_run = 0;
    atomic_store(&E.stopping, 0);
    pthread_cond_destroy(&E.cv);
    E.started = 0;
}

void engine_cancel_run(long long run_id)
{
    for (int i = 0; i < E.nworkers; i++) {
        struct worker *w = &E.workers[i];
        if (atomic_load(&w->run_id) == run_id) {
            atomic_store(&w->cancel, 1);
            if (w->ep->backend->ops->cancel)
                w->ep->backend->ops->cancel(w->ep->backend);
        }
    }
    notify(run_id);
}

/* ---- numbers ----------------------------------------------------------------- */

void engine_stats(struct engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->rescued = atomic_load(&E.rescued);
    for (int b = 0; b <= ENGINE_HIST_BUCKETS; b++)
        out->hist[b] = atomic_load(&E.hist[b]);
    out->hist_sum_s = (double)atomic_load(&E.hist_sum_us) / 1e6;
    out->nendpoints = E.neps;
    out->endpoints = xcalloc(E.neps > 0 ? (size_t)E.neps : 1, sizeof(*out->endpoints));
    for (int i = 0; i < E.neps; i++) {
        struct endpoint *ep = &E.eps[i];
        struct engine_endpoint_stats *s = &out->endpoints[i];
        snprintf(s->name, sizeof(s->name), "%s", ep->backend->name);
        snprintf(s->type, sizeof(s->type), "%s", ep->backend->ops->type);
        s->state = breaker_state_name(breaker_state(&ep->breaker));
        s->concurrency = ep->backend->concurrency;
        s->in_flight = atomic_load(&ep->in_flight);
        s->done = atomic_load(&ep->done);
        s->failed = atomic_load(&ep->failed);
        s->errors = atomic_load(&ep->errors);
        s->mean_item_s = s->done ? (double)atomic_load(&ep->busy_us) / 1e6 / (double)s->done : 0;
    }
}

void engine_stats_free(struct engine_stats *st)
{
    free(st->endpoints);
    st->endpoints = NULL;
    st->nendpoints = 0;
}
