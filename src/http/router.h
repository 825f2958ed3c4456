/*
 * router.h: the route table's shape and the matcher.
 *
 * The table itself is src/api/routes.c: one row per (method, pattern) with
 * its auth level, whether it takes a JSON body, its handler, and whether its
 * answer may be cached. Patterns are
 * literal segments, ":id" segments, which match a positive decimal
 * integer and are captured, in order, into sf_request.ids, and "*"
 * segments, which match one non-empty segment of any text (not captured:
 * the handler reads sf_request.path).
 */
#ifndef SF_ROUTER_H
#define SF_ROUTER_H

#include <stddef.h>

#include "http/http.h"

enum route_auth { ROUTE_PUBLIC, ROUTE_ADMIN };
enum route_body { BODY_NONE, BODY_JSON };
/* ROUTE_CACHED: the answer depends only on the path, the query, whether the
 * caller is an admin, and the database, so http/cache.c may keep it. */
enum route_cache { ROUTE_FRESH, ROUTE_CACHED };

struct route {
    const char *method;
    const char *pattern;
    enum route_auth auth;
    enum route_body body;
    sf_handler handler;
    enum route_cache cache;
};

extern const struct route sf_routes[];
extern const size_t sf_nroutes;

enum route_match { MATCH_FOUND, MATCH_WRONG_METHOD, MATCH_NONE };

/*
 * Finds the route for method and path. HEAD matches GET routes. On
 * MATCH_FOUND, *out and ids are set. When no route has this method (always
 * for OPTIONS) but the path is known: MATCH_WRONG_METHOD, and allow gets the
 * comma-separated methods of the path (with HEAD and OPTIONS).
 */
enum route_match router_match(const char *method, const char *path,
                              const struct route **out,
                              long long ids[REQ_MAX_IDS], int *nids,
                              char *allow, size_t allowlen);

#endif
