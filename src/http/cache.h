/*
 * cache.h: the per-thread cache of GET answers for routes marked
 * ROUTE_CACHED (see cache.c for why it is safe).
 */
#ifndef SF_CACHE_H
#define SF_CACHE_H

#include <stdint.h>

#include "http/http.h"

/* When an answer is read: the database generation and the monotonic time,
 * both taken before the handler's snapshot opens. */
struct respcache_stamp {
    uint64_t gen;
    int64_t ms;
};

/* What identifies a request's answer, and when it was asked. */
struct respcache_key {
    char data[1024];
    size_t len;
    int overflow; /* too long to cache */
    struct respcache_stamp stamp;
};

/* How long an answer may be served, in ms, whatever the generation says (an
 * edit by another process does not move it). Call before the server's
 * threads start; 1000 until then. */
void respcache_set_max_age_ms(long long ms);

/* Builds the key of this request and stamps it with the data generation
 * (struct sf_app) and the time; call it before the handler's snapshot
 * opens. */
void respcache_key(const struct sf_request *req, uint64_t generation, struct respcache_key *k);

/* Fills res with the answer kept for k that is still current at its stamp.
 * 1 when there was one, 0 otherwise (res untouched). */
int respcache_get(const struct respcache_key *k, struct sf_response *res);

/* Keeps res (a 200 with no extra header, up to a size) as the answer to k,
 * read from a snapshot opened after k was stamped. */
void respcache_put(const struct respcache_key *k, const struct sf_response *res);

#endif
