/*
 * server.h: the HTTP server (libmicrohttpd) that runs the route table.
 *
 * http/ knows nothing of the database: what a request needs from the
 * application around its handler (who the caller is, one read snapshot, and
 * whether a cached answer is still current) comes through struct sf_app
 * (declared in http.h), which api/ provides and main.c hands to
 * server_start().
 */
#ifndef SF_SERVER_H
#define SF_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "http/http.h"
#include "util/config.h"

struct sf_server {
    struct MHD_Daemon *mhd;
    const struct sf_config *cfg;
    const struct sf_app *app;
    char **cors;
    int ncors;
    int cors_any;
    /* requests served, by route (the last slot: no route) and status */
    atomic_ulong requests[HTTP_MAX_ROUTES + 1][HTTP_STATUS_SLOTS];
};

/* Starts listening, and the stream heartbeat thread. app is borrowed for
 * the server's life. 0, or -1 with a sentence in err. */
int server_start(struct sf_server *srv, const struct sf_config *cfg, const struct sf_app *app,
                 char *err, size_t errlen);

/* Ends every stream, stops accepting, finishes in-flight requests, frees
 * everything. */
void server_stop(struct sf_server *srv);

/* Percent-decodes s in place, as libmicrohttpd is told to do for the path
 * and for each query key and value; "%00" stays as it is. Returns the new
 * length. */
size_t http_unescape(char *s);

/* Wakes the streams of topic (every stream when topic < 0): something they
 * show has changed. Safe from any thread, before and after server_start. */
void stream_notify(long long topic);

#endif
