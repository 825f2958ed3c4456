/*
 * engine.c: worker threads, the sweeper, and the numbers they keep.
 *
 * Like redis's bio.c, a worker is a loop around a mutex, a condition
 * variable and a queue; here the queue is the run_items table, so a worker
 * claims an item in a transaction (queue.c), draws it with its endpoint's
 * backend outside any lock or transaction, stores the PNG file (fsync'd and
 * renamed before the row commits), and records the outcome in another
 * transaction. When there is nothing due it sleeps on the condition variable
 * until engine_kick() or the earliest retry backoff ends.
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
#include "queue/bus.h"
#include "queue/queue.h"
#include "store/db.h"
#include "store/imagefiles.h"
#include "store/images.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/timeutil.h"

#define HIST_BUCKETS 12
static const double hist_bounds_s[HIST_BUCKETS] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                   1, 5, 10, 30, 60, 300};

enum endpoint_state { EP_UP, EP_DOWN, EP_PROBING };
static const char *const state_names[] = {"up", "down", "probing"};

/*
 * One configured endpoint (a GPU server, a command, the procedural drawer)
 * and its circuit breaker: breaker_failures transient failures in a row mark
 * it down; after a delay (doubling up to 60 s) one of its workers probes it
 * with health() and either brings it back up or doubles the delay. A down
 * endpoint's workers claim nothing.
 */
struct endpoint {
    struct sf_backend *backend;
    atomic_long in_flight;
    atomic_ulong done, failed, errors;
    atomic_ullong busy_us;
    pthread_mutex_t mu; /* the breaker fields below */
    enum endpoint_state state;
    int failures_in_row;
    int64_t down_until_ms; /* monotonic */
    int64_t down_delay_ms;
};

/* What a worker hands its finisher: a drawn item and how it went. */
struct outcome {
    struct claimed_item it;
    enum backend_result r;
    struct sf_image img;
    char err[1024];
    int64_t dur_us;
};

/*
 * A worker draws; its finisher records. Storing the PNG (two fsyncs) and the
 * outcome's transaction take a millisecond or two, and a GPU should not sit
 * idle for that: the worker hands the outcome over and claims its next item
 * at once. At most one outcome waits per worker, so memory stays bounded
 * and an endpoint's items are recorded in the order they were drawn.
 */
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

/* Files that workers are storing and about to reference (see
 * engine_remove_file_if_unused). At most one per worker. */
static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
static char (*files_pending)[65];
static int files_npending;
static const char *files_dir;

static void file_hold(const char *sha)
{
    pthread_mutex_lock(&files_mu);
    memcpy(files_pending[files_npending++], sha, 65);
    pthread_mutex_unlock(&files_mu);
}

static void file_release(const char *sha)
{
    pthread_mutex_lock(&files_mu);
    for (int i = 0; i < files_npending; i++)
        if (strcmp(files_pending[i], sha) == 0) {
            memcpy(files_pending[i], files_pending[--files_npending], 65);
            break;
        }
    pthread_mutex_unlock(&files_mu);
}

void engine_remove_file_if_unused(const char *sha)
{
    pthread_mutex_lock(&files_mu);
    int busy = 0;
    for (int i = 0; i < files_npending; i++)
        busy |= strcmp(files_pending[i], sha) == 0;
    if (!busy && !images_sha_used(sha) && imagefile_remove(files_dir, sha) < 0)
        log_warn("engine: cannot remove image file %s", sha);
    pthread_mutex_unlock(&files_mu);
}

static struct {
    const struct sf_config *cfg;
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
    atomic_ulong hist[HIST_BUCKETS + 1];
    atomic_ullong hist_sum_us;
} E = {.mu = PTHREAD_MUTEX_INITIALIZER};

void engine_kick(void)
{
    pthread_mutex_lock(&E.mu);
    E.kicks++;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
}

int engine_parallelism(void)
{
    return E.nworkers;
}

static void observe_duration(int64_t us)
{
    double s = (double)us / 1e6;
    int b = 0;
    while (b < HIST_BUCKETS && s > hist_bounds_s[b])
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

static enum endpoint_state ep_state(struct endpoint *ep)
{
    pthread_mutex_lock(&ep->mu);
    enum endpoint_state st = ep->state;
    pthread_mutex_unlock(&ep->mu);
    return st;
}

/* A call reached the server (it answered, even with a refusal). */
static void ep_success(struct endpoint *ep)
{
    pthread_mutex_lock(&ep->mu);
    ep->failures_in_row = 0;
    ep->down_delay_ms = 0;
    pthread_mutex_unlock(&ep->mu);
}

static void ep_failure(struct endpoint *ep)
{
    pthread_mutex_lock(&ep->mu);
    if (++ep->failures_in_row >= E.cfg->breaker_failures && ep->state == EP_UP) {
        ep->state = EP_DOWN;
        ep->down_delay_ms = E.cfg->breaker_delay_ms;
        ep->down_until_ms = mono_ms() + ep->down_delay_ms;
        log_warn("engine: endpoint %s is down after %d failures in a row; probing in %lld ms",
                 ep->backend->name, ep->failures_in_row, (long long)ep->down_delay_ms);
    }
    pthread_mutex_unlock(&ep->mu);
}

/* 1 when another endpoint than ep is up (a failed item can go there). */
static int others_up(const struct endpoint *ep)
{
    for (int i = 0; i < E.neps; i++)
        if (&E.eps[i] != ep && ep_state(&E.eps[i]) == EP_UP)
            return 1;
    return 0;
}

/*
 * For a worker of a down endpoint: waits for the probe time, then probes
 * (one worker at a time). Returns when the endpoint is up or we stop.
 */
static void wait_until_up(struct endpoint *ep)
{
    for (;;) {
        pthread_mutex_lock(&E.mu);
        int stopping = E.stopping;
        pthread_mutex_unlock(&E.mu);
        if (stopping)
            return;
        pthread_mutex_lock(&ep->mu);
        if (ep->state == EP_UP) {
            pthread_mutex_unlock(&ep->mu);
            return;
        }
        int64_t now = mono_ms();
        int probe = ep->state == EP_DOWN && now >= ep->down_until_ms;
        int64_t wait = ep->state == EP_DOWN ? ep->down_until_ms - now : 100;
        if (probe)
            ep->state = EP_PROBING;
        pthread_mutex_unlock(&ep->mu);
        if (probe) {
            char err[512] = "";
            int ok = !ep->backend->ops->health || ep->backend->ops->health(ep->backend, err, sizeof(err)) == 0;
            pthread_mutex_lock(&ep->mu);
            if (ok) {
                ep->state = EP_UP;
                ep->failures_in_row = 0;
                log_info("engine: endpoint %s is up again", ep->backend->name);
            } else {
                ep->state = EP_DOWN;
                ep->down_delay_ms = ep->down_delay_ms * 2 > 60000 ? 60000 : ep->down_delay_ms * 2;
                ep->down_until_ms = mono_ms() + ep->down_delay_ms;
                log_warn("engine: endpoint %s still down (%s); next probe in %lld ms",
                         ep->backend->name, err, (long long)ep->down_delay_ms);
            }
            pthread_mutex_unlock(&ep->mu);
            if (ok)
                engine_kick();
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (wait < 1)
            wait = 1;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&E.mu);
        if (!E.stopping)
            pthread_cond_timedwait(&E.cv, &E.mu, &ts);
        pthread_mutex_unlock(&E.mu);
    }
}

static void record_outcome(struct worker *w, struct claimed_item *it,
                           enum backend_result r, struct sf_image *img, const char *msg,
                           int64_t dur_us)
{
    struct endpoint *ep = w->ep;
    const char *name = ep->backend->name;
    char err[1024];
    snprintf(err, sizeof(err), "%s", msg);
    if (r == BACKEND_OK) {
        char sha[65];
        char ferr[512];
        sha256_hex(img->png, img->png_len, sha);
        file_hold(sha);
        if (imagefile_store(E.cfg->data_dir, img->png, img->png_len, sha, ferr, sizeof(ferr)) != SF_OK) {
            file_release(sha);
            snprintf(err, sizeof(err), "cannot store the image: %s", ferr);
            r = BACKEND_TRANSIENT;
        } else {
            for (int tries = 0; tries < 5; tries++) {
                if (queue_complete(it, E.owner, img, sha, name, dur_us / 1000) == SF_OK)
                    break;
                log_warn("engine: recording run %lld item %d failed; retrying", it->run_id, it->index);
                usleep(100000);
            }
            file_release(sha);
            atomic_fetch_add(&ep->done, 1);
            observe_duration(dur_us);
            ep_success(ep);
            return;
        }
    }
    if (r == BACKEND_CANCELED) {
        if (E.stopping)
            queue_release(it, E.owner);
        else
            queue_mark_canceled(it, E.owner);
        return;
    }
    atomic_fetch_add(&ep->errors, 1);
    int permanent = r == BACKEND_PERMANENT;
    if (permanent)
        ep_success(ep); /* the server answered; the request was the problem */
    else
        ep_failure(ep);
    if (permanent || it->attempts >= E.cfg->max_attempts)
        atomic_fetch_add(&ep->failed, 1);
    log_warn("engine: run %lld item %d attempt %d on %s: %s", it->run_id, it->index, it->attempts,
             name, err);
    queue_fail(it, E.owner, err, permanent, (int)E.cfg->max_attempts,
               now_unix_ms() + backoff_ms(it->attempts), name);
}

static void *finisher_main(void *arg)
{
    struct worker *w = arg;
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
        record_outcome(w, &o->it, o->r, &o->img, o->err, o->dur_us);
        free(o->img.png);
        claimed_item_free(&o->it);
        bus_notify(run_id);
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&E.mu);
    if (!E.stopping && E.kicks == seen)
        pthread_cond_timedwait(&E.cv, &E.mu, &ts);
    pthread_mutex_unlock(&E.mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&E.mu);
        int stopping = E.stopping;
        unsigned long seen = E.kicks;
        long long rr = E.rr_run;
        pthread_mutex_unlock(&E.mu);
        if (stopping)
            break;
        if (ep_state(w->ep) != EP_UP) {
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
            bus_notify(it.run_id);
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

static void *sweeper_main(void *arg)
{
    int64_t last_rescue = 0;
    for (;;) {
        pthread_mutex_lock(&E.mu);
        int stopping = E.stopping;
        if (!stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&E.cv, &E.mu, &ts);
            stopping = E.stopping;
        }
        pthread_mutex_unlock(&E.mu);
        if (stopping)
            break;
        queue_heartbeat(E.owner, E.cfg->lease_ms);
        if (mono_ms() - last_rescue >= 1000) {
            last_rescue = mono_ms();
            int n = queue_rescue(E.owner, 0, (int)E.cfg->max_attempts);
            if (n > 0) {
                atomic_fetch_add(&E.rescued, (unsigned long)n);
                log_warn("engine: %d items had expired leases and were rescued", n);
                engine_kick();
                bus_notify(-1);
            }
        }
        bus_tick(15000);
    }
    db_close_thread();
    return NULL;
}

int engine_start(const struct sf_config *cfg, char *err, size_t errlen)
{
    E.cfg = cfg;
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
        pthread_mutex_init(&E.eps[i].mu, NULL);

    int temps = imagefile_sweep_temps(cfg->data_dir);
    if (temps > 0)
        log_info("engine: removed %d temporary files left by a previous process", temps);

    /* Whatever was running when the last process died is ours to redo. */
    int n = queue_rescue(E.owner, 1, (int)cfg->max_attempts);
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
    files_pending = xcalloc((size_t)E.nworkers, 65);
    files_dir = cfg->data_dir;
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
    backends_destroy(E.backends, E.neps);
    free(E.workers);
    free(E.eps);
    free(files_pending);
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
}

json_t *engine_backends_json(void)
{
    json_t *list = json_array();
    for (int i = 0; i < E.neps; i++) {
        struct endpoint *ep = &E.eps[i];
        unsigned long done = atomic_load(&ep->done);
        double mean = done ? (double)atomic_load(&ep->busy_us) / 1e6 / (double)done : 0;
        json_array_append_new(
            list, json_pack("{ss ss ss si sI sI sI sf}", "name", ep->backend->name, "type",
                            ep->backend->ops->type, "state", state_names[ep_state(ep)],
                            "concurrency", ep->backend->concurrency,
                            "in_flight", (json_int_t)atomic_load(&ep->in_flight),
                            "done", (json_int_t)done, "failed", (json_int_t)atomic_load(&ep->failed),
                            "mean_item_s", mean));
    }
    return list;
}

void engine_metrics(struct strbuf *sb)
{
    sb_puts(sb, "# HELP setforge_items_rescued_total Items whose lease expired and were put back.\n"
                "# TYPE setforge_items_rescued_total counter\n");
    sb_printf(sb, "setforge_items_rescued_total %lu\n", atomic_load(&E.rescued));
    sb_puts(sb, "# HELP setforge_item_duration_seconds Time a backend took per image.\n"
                "# TYPE setforge_item_duration_seconds histogram\n");
    unsigned long cum = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        cum += atomic_load(&E.hist[b]);
        sb_printf(sb, "setforge_item_duration_seconds_bucket{le=\"%g\"} %lu\n", hist_bounds_s[b], cum);
    }
    cum += atomic_load(&E.hist[HIST_BUCKETS]);
    sb_printf(sb, "setforge_item_duration_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    sb_printf(sb, "setforge_item_duration_seconds_sum %.6f\n", (double)atomic_load(&E.hist_sum_us) / 1e6);
    sb_printf(sb, "setforge_item_duration_seconds_count %lu\n", cum);
    sb_puts(sb, "# HELP setforge_backend_errors_total Failed backend calls, by endpoint.\n"
                "# TYPE setforge_backend_errors_total counter\n");
    for (int i = 0; i < E.neps; i++)
        sb_printf(sb, "setforge_backend_errors_total{endpoint=\"%s\"} %lu\n",
                  E.eps[i].backend->name, atomic_load(&E.eps[i].errors));
    sb_puts(sb, "# HELP setforge_backend_up 1 when the endpoint takes work, 0 when down or probing.\n"
                "# TYPE setforge_backend_up gauge\n");
    for (int i = 0; i < E.neps; i++)
        sb_printf(sb, "setforge_backend_up{endpoint=\"%s\"} %d\n", E.eps[i].backend->name,
                  ep_state(&E.eps[i]) == EP_UP);
    sb_puts(sb, "# HELP setforge_backend_in_flight Items being drawn now, by endpoint.\n"
                "# TYPE setforge_backend_in_flight gauge\n");
    for (int i = 0; i < E.neps; i++)
        sb_printf(sb, "setforge_backend_in_flight{endpoint=\"%s\"} %ld\n",
                  E.eps[i].backend->name, atomic_load(&E.eps[i].in_flight));
}
