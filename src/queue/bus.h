/*
 * bus.h: wakes suspended event streams when their run changes.
 *
 * An SSE connection that has sent everything so far suspends itself (so it
 * holds no libmicrohttpd thread). The engine calls bus_notify(run) after
 * every committed change; the bus resumes the streams of that run. The
 * sequence number closes the race between "I found nothing new" and
 * "I suspended": a stream only suspends if nothing was published since it
 * last looked.
 */
#ifndef SF_BUS_H
#define SF_BUS_H

#include <microhttpd.h>
#include <stdint.h>

struct bus_waiter {
    long long run_id;
    struct MHD_Connection *conn;
    int suspended;
    int closing;       /* the daemon is stopping: end the stream */
    int heartbeat_due; /* send a comment line on the next read */
    int64_t last_send_ms;
    struct bus_waiter *next;
};

unsigned long bus_seq(void);
void bus_add(struct bus_waiter *w);
void bus_remove(struct bus_waiter *w);
/* Suspends w's connection unless something was published after seq;
 * returns 1 when it suspended. */
int bus_suspend_if_quiet(struct bus_waiter *w, unsigned long seq);
/* Wakes the streams of run_id (every stream when run_id < 0). */
void bus_notify(long long run_id);
/* Resumes streams quiet for longer than idle_ms so they send a heartbeat. */
void bus_tick(int64_t idle_ms);
/* Ends every stream (shutdown): resumes them with closing set. */
void bus_close_all(void);
/* Number of streams open now. */
int bus_count(void);

#endif
