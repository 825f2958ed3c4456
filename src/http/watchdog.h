/*
 * watchdog.h: deadlines for the parts of a request that the client sends.
 *
 * libmicrohttpd's connection timeout is an idle timeout: any byte resets it,
 * so a client that sends one byte every few seconds keeps a connection (and
 * a slot of conn_limit) forever; a thousand of them deny service to
 * everyone. The watchdog gives each request head a total deadline, and each
 * body a minimum rate, and ends a connection that misses them. A response
 * being sent (an event stream too) is not the client's part and has no
 * deadline here.
 *
 * One thread checks once a second; the server reports each connection's
 * progress from its callbacks. Ending a connection is a shutdown(2) of its
 * socket: libmicrohttpd sees the end at its next read and cleans up as for
 * any client that went away.
 */
#ifndef SF_WATCHDOG_H
#define SF_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

struct watch;

/* Starts the checking thread: a head must be complete within head_ms of
 * the connection starting (or of its previous request ending); a body must
 * arrive at min_body_bps bytes a second or more, after grace_ms. 0 or -1. */
int watchdog_start(int64_t head_ms, int64_t min_body_bps, int64_t grace_ms);
void watchdog_stop(void);

/* A connection started on socket fd / ended. The watch is owned by the
 * watchdog; watchdog_forget frees it. */
struct watch *watchdog_track(int fd);
void watchdog_forget(struct watch *w);

/* The head of a request is in / len more body bytes arrived / the request
 * is answered and its response is being sent (no deadline until it ends) /
 * the response is done (the next request's head clock starts). */
void watchdog_head_done(struct watch *w);
void watchdog_body(struct watch *w, size_t len);
void watchdog_responding(struct watch *w);
void watchdog_request_done(struct watch *w);

/* Connections the watchdog has ended so far. */
unsigned long watchdog_ended(void);

#endif
