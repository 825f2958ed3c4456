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

struct respcache_stamp respcache_now(void);

/* Fills res with the answer kept for this request that is still current at
 * now. 1 when there was one, 0 otherwise (res untouched). */
int respcache_get(const struct sf_request *req, struct respcache_stamp now, struct sf_response *res);

/* Keeps res (a 200 with no extra header, up to a size) as the answer to
 * this request, read from a snapshot opened after stamp was taken. */
void respcache_put(const struct sf_request *req, struct respcache_stamp stamp, const struct sf_response *res);

#endif
