/*
 * cache.h: the per-thread cache of GET answers for routes marked
 * ROUTE_CACHED (see cache.c for why it is safe).
 */
#ifndef SF_CACHE_H
#define SF_CACHE_H

#include <stdint.h>

#include "http/http.h"

/* Fills res with the answer kept for this request at generation gen.
 * 1 when there was one, 0 otherwise (res untouched). */
int respcache_get(const struct sf_request *req, uint64_t gen, struct sf_response *res);

/* Keeps res (a 200 with no extra header, up to a size) as the answer to
 * this request at generation gen, read before the handler's snapshot. */
void respcache_put(const struct sf_request *req, uint64_t gen, const struct sf_response *res);

#endif
