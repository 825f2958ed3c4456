/*
 * server.h: the HTTP server (libmicrohttpd) that runs the route table.
 */
#ifndef SF_SERVER_H
#define SF_SERVER_H

#include <stdatomic.h>

#include "util/config.h"

#define SERVER_MAX_ROUTES 64
#define SERVER_STATUS_CODES 12 /* see server.c: status_slot() */

struct sf_server {
    struct MHD_Daemon *mhd;
    const struct sf_config *cfg;
    char **cors;
    int ncors;
    int cors_any;
    /* requests served, by route (the last slot: no route) and status */
    atomic_ulong requests[SERVER_MAX_ROUTES + 1][SERVER_STATUS_CODES];
};

/* Starts listening. 0, or -1 with a sentence in err. */
int server_start(struct sf_server *srv, const struct sf_config *cfg,
                 char *err, size_t errlen);

/* Stops accepting, finishes in-flight requests, frees everything. */
void server_stop(struct sf_server *srv);

/* The HTTP status codes counted in requests[][], in slot order. */
extern const int server_status_codes[SERVER_STATUS_CODES];

#endif
