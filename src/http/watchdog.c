/*
 * watchdog.c: request head deadlines and body rates (watchdog.h).
 *
 * Lock: one mutex guards the list and every watch's fields. A watch leaves
 * the list (watchdog_forget, from libmicrohttpd's "connection closed"
 * notification) before libmicrohttpd closes its socket, and the shutdown
 * happens with the mutex held, so the watchdog never touches a descriptor
 * that was closed and reused.
 */
#include "http/watchdog.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

enum phase { PHASE_HEAD, PHASE_BODY, PHASE_RESPONDING };

struct watch {
    int fd;
    enum phase phase;
    int64_t since_ms; /* the phase started */
    uint64_t body_bytes;
    int ended;
    struct watch *prev, *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct watch *head;
static pthread_t thread;
static int running, quit;
static int64_t head_limit_ms, min_bps, grace;
static unsigned long ended_total;

struct watch *watchdog_track(int fd)
{
    struct watch *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->phase = PHASE_HEAD;
    w->since_ms = mono_ms();
    pthread_mutex_lock(&mu);
    w->next = head;
    if (head)
        head->prev = w;
    head = w;
    pthread_mutex_unlock(&mu);
    return w;
}

void watchdog_forget(struct watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&mu);
    free(w);
}

static void enter(struct watch *w, enum phase p)
{
    if (!w)
        return;
    pthread_mutex_lock(&mu);
    w->phase = p;
    w->since_ms = mono_ms();
    w->body_bytes = 0;
    pthread_mutex_unlock(&mu);
}

void watchdog_head_done(struct watch *w)
{
    enter(w, PHASE_BODY);
}

void watchdog_body(struct watch *w, size_t len)
{
    if (!w)
        return;
    pthread_mutex_lock(&mu);
    w->body_bytes += len;
    pthread_mutex_unlock(&mu);
}

void watchdog_responding(struct watch *w)
{
    enter(w, PHASE_RESPONDING);
}

void watchdog_request_done(struct watch *w)
{
    enter(w, PHASE_HEAD);
}

unsigned long watchdog_ended(void)
{
    pthread_mutex_lock(&mu);
    unsigned long n = ended_total;
    pthread_mutex_unlock(&mu);
    return n;
}

/* 1 when w is past its deadline. */
static int overdue(const struct watch *w, int64_t now)
{
    int64_t age = now - w->since_ms;
    if (w->phase == PHASE_HEAD)
        return age > head_limit_ms;
    if (w->phase == PHASE_BODY && age > grace)
        return (int64_t)w->body_bytes * 1000 < min_bps * age;
    return 0;
}

static void *watch_main(void *arg)
{
    pthread_mutex_lock(&mu);
    while (!quit) { /* the loop always starts with mu held */
        struct timespec ts = mono_deadline(1000);
        pthread_cond_timedwait(&cv, &mu, &ts);
        int64_t now = mono_ms();
        unsigned long n = 0;
        for (struct watch *w = head; w; w = w->next)
            if (!w->ended && overdue(w, now)) {
                w->ended = 1;
                shutdown(w->fd, SHUT_RDWR);
                n++;
            }
        ended_total += n;
        if (n)
            log_info("http: ended %lu connections that sent their request too slowly", n);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int watchdog_start(int64_t head_ms, int64_t min_body_bps, int64_t grace_ms)
{
    head_limit_ms = head_ms;
    min_bps = min_body_bps;
    grace = grace_ms;
    pthread_cond_destroy(&cv);
    cond_init_monotonic(&cv);
    quit = 0;
    if (pthread_create(&thread, NULL, watch_main, NULL) != 0)
        return -1;
    running = 1;
    return 0;
}

void watchdog_stop(void)
{
    pthread_mutex_lock(&mu);
    quit = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    if (running) {
        pthread_join(thread, NULL);
        running = 0;
    }
}
