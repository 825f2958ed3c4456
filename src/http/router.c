/*
 * router.c: matching a path against the route table.
 *
 * The table is small (a few dozen rows), so a linear scan comparing segment
 * by segment is both the simplest and fast enough: no allocation, no regex.
 */
#include "http/router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Matches path against pattern; captures ":id" segments. A capture must be
 * 1..18 decimal digits with no leading zero, so it always fits a long long;
 * an ":index" segment (a 0-based position) may also be "0".
 * A "*" segment matches one non-empty segment of any text (the handler reads
 * it from the path: an asset's name).
 */
static int path_matches(const char *pattern, const char *path,
                        long long ids[REQ_MAX_IDS], int *nids)
{
    int n = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == ':') {
            const char *seg_end = strchr(s, '/');
            size_t len = seg_end ? (size_t)(seg_end - s) : strlen(s);
            /* ":index" is 0-based (a run's item): a lone "0" is one. */
            int zero_ok = strncmp(p, ":index", 6) == 0 && (p[6] == '/' || p[6] == '\0');
            if (len == 0 || len > 18 || (*s == '0' && !(zero_ok && len == 1)) ||
                n >= REQ_MAX_IDS)
                return 0;
            long long v = 0;
            for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                    return 0;
                v = v * 10 + (s[i] - '0');
            }
            ids[n++] = v;
            s += len;
            while (*p && *p != '/')
                p++;
            continue;
        }
        if (*p == '*') { /* one non-empty segment of any text, not captured */
            const char *seg_end = strchr(s, '/');
            size_t len = seg_end ? (size_t)(seg_end - s) : strlen(s);
            if (len == 0)
                return 0;
            s += len;
            p++;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p || *s)
        return 0;
    *nids = n;
    return 1;
}

/* The methods of every route on path, comma-separated, with HEAD and OPTIONS. */
static size_t allowed_methods(const char *path, char *allow, size_t allowlen)
{
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < sf_nroutes; i++) {
        long long scratch[REQ_MAX_IDS];
        int n;
        if (!path_matches(sf_routes[i].pattern, path, scratch, &n))
            continue;
        const char *m = sf_routes[i].method;
        int w = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", m,
                         strcmp(m, "GET") == 0 ? ", HEAD" : "");
        if (w > 0 && (size_t)w < allowlen - used)
            used += (size_t)w;
    }
    if (used && used + 9 < allowlen)
        strcat(allow, ", OPTIONS");
    return used;
}

enum route_match router_match(const char *method, const char *path,
                              const struct route **out,
                              long long ids[REQ_MAX_IDS], int *nids,
                              char *allow, size_t allowlen)
{
    /* The common case first and without formatting: a route for this
     * method. "Allow" is only built for OPTIONS and 405s. */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    allow[0] = '\0';
    if (strcmp(method, "OPTIONS") != 0) {
        for (size_t i = 0; i < sf_nroutes; i++) {
            const struct route *r = &sf_routes[i];
            if (strcmp(r->method, want) == 0 && path_matches(r->pattern, path, ids, nids)) {
                *out = r;
                return MATCH_FOUND;
            }
        }
    }
    if (!allowed_methods(path, allow, allowlen))
        return MATCH_NONE;
    return MATCH_WRONG_METHOD;
}
