/*
 * engine_int.h: what the engine's three files share, and nothing else
 * includes: engine.c (workers, start and stop, numbers), finisher.c
 * (storing images and recording outcomes) and sweeper.c (leases). The
 * threads and locks are described in engine.h (DESIGN).
 */
#ifndef SF_ENGINE_INT_H
#define SF_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backends/backend.h"
#include "queue/breaker.h"
#include "queue/deadline.h"
#include "queue/engine.h"
#include "queue/queue.h"

/* One configured endpoint (a GPU server, a command, the procedural drawer). */
struct endpoint {
    struct sf_backend *backend;
    struct breaker breaker;
    struct deadline deadline; /* how long its next call may take */
    atomic_long in_flight;
    atomic_ulong done, failed, errors;
    atomic_ullong ok_us; /* time of the calls that drew an image */
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

/* The engine's state: one instance, eng, defined in engine.c. */
struct engine {
    const struct sf_config *cfg;
    engine_notify_fn notify;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long kicks;
    atomic_int stopping; /* also read outside mu, by finishers */
    /* the queue-wide pause, as last set (engine_pause_queue): idle workers
     * sleep instead of asking the database; the claim itself checks the
     * durable flag, so a claim racing the pause cannot slip through */
    atomic_int queue_paused;
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
};

extern struct engine eng;

/* Calls the notify callback of engine_start (the streams of run_id). */
void engine_notify(long long run_id);

/* Sleeps on eng.cv for up to ms, unless the engine is stopping or, with
 * seen != NULL, a kick came after *seen. */
void engine_sleep(int64_t ms, const unsigned long *seen);

/* Opens this thread's database connection now, while files are there to
 * open, rather than at its first use in the middle of a flood. */
void engine_open_db(const char *who);

/* finisher.c: the thread that records a worker's outcomes (arg: the worker). */
void *finisher_main(void *arg);
/* Moves o (and what it owns) to w's finisher, once the previous is done. */
void finisher_hand_over(struct worker *w, const struct outcome *o);
/* A claimed item is ours again: renew its lease from now on. */
void finisher_unabandon(long long item_id);
/* The item ids the heartbeat must leave out (malloc'd copy, *n of them). */
long long *finisher_abandoned(int *n);

/* sweeper.c: heartbeat and rescue, once a second. */
void *sweeper_main(void *arg);

#endif
