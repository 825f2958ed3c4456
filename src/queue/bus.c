/*
 * bus.c: the list of event streams waiting for news, under one mutex.
 * Streams are few (one per open browser tab), so a linked list is enough.
 */
#include "queue/bus.h"

#include <pthread.h>

#include "util/timeutil.h"

static pthread_mutex_t bus_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bus_waiter *waiters;
static unsigned long seq;

unsigned long bus_seq(void)
{
    pthread_mutex_lock(&bus_mu);
    unsigned long s = seq;
    pthread_mutex_unlock(&bus_mu);
    return s;
}

void bus_add(struct bus_waiter *w)
{
    pthread_mutex_lock(&bus_mu);
    w->next = waiters;
    waiters = w;
    pthread_mutex_unlock(&bus_mu);
}

void bus_remove(struct bus_waiter *w)
{
    pthread_mutex_lock(&bus_mu);
    for (struct bus_waiter **p = &waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&bus_mu);
}

int bus_suspend_if_quiet(struct bus_waiter *w, unsigned long seen)
{
    int suspended = 0;
    pthread_mutex_lock(&bus_mu);
    if (seq == seen && !w->closing && !w->heartbeat_due) {
        w->suspended = 1;
        MHD_suspend_connection(w->conn);
        suspended = 1;
    }
    pthread_mutex_unlock(&bus_mu);
    return suspended;
}

static void resume(struct bus_waiter *w)
{
    if (w->suspended) {
        w->suspended = 0;
        MHD_resume_connection(w->conn);
    }
}

void bus_notify(long long run_id)
{
    pthread_mutex_lock(&bus_mu);
    seq++;
    for (struct bus_waiter *w = waiters; w; w = w->next)
        if (run_id < 0 || w->run_id == run_id)
            resume(w);
    pthread_mutex_unlock(&bus_mu);
}

void bus_tick(int64_t idle_ms)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&bus_mu);
    for (struct bus_waiter *w = waiters; w; w = w->next)
        if (w->suspended && now - w->last_send_ms >= idle_ms) {
            w->heartbeat_due = 1;
            resume(w);
        }
    pthread_mutex_unlock(&bus_mu);
}

void bus_close_all(void)
{
    pthread_mutex_lock(&bus_mu);
    seq++;
    for (struct bus_waiter *w = waiters; w; w = w->next) {
        w->closing = 1;
        resume(w);
    }
    pthread_mutex_unlock(&bus_mu);
}

int bus_count(void)
{
    int n = 0;
    pthread_mutex_lock(&bus_mu);
    for (struct bus_waiter *w = waiters; w; w = w->next)
        n++;
    pthread_mutex_unlock(&bus_mu);
    return n;
}
