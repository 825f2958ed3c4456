/*
 * web.c: the operator's page (GET /) and its scripts and styles
 * (GET /assets/<name>), served from the table the build compiled in
 * (api/webassets.h, tools/embed_web.sh); and the API's OpenAPI description
 * (GET /api/openapi.json, docs/openapi.md), compiled in the same way and
 * served by the same code, so it gets the same ETag, 304 and gzip.
 *
 * Caching: an asset's name carries a hash of its content, so it is cached
 * for a year as immutable; the page itself is "no-cache" (revalidated each
 * time, a 304 while its ETag holds), so a new binary's page, naming new
 * assets, is seen at once. Each file was gzipped at build time: a client
 * whose Accept-Encoding allows gzip gets those bytes, anyone else the
 * plain ones, and "Vary: Accept-Encoding" tells caches the two apart. The
 * two representations have different ETags (the gzip one ends "-gz").
 * The page gets a Content-Security-Policy that allows only its own files
 * (and data:/blob: images), which is all it uses: no inline script or
 * style, nothing from another host. docs/web.md has the why.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/webassets.h"

#define PAGE_CSP "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; " \
                 "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/*
 * Whether an Accept-Encoding value allows gzip: a "gzip" (or "x-gzip")
 * coding, else "*", with a q-value that is not zero (RFC 9110 12.5.3).
 */
int web_accepts_gzip(const char *ae)
{
    int star = 0;
    while (ae && *ae) {
        size_t len = strcspn(ae, ",");
        char tok[64];
        size_t n = len < sizeof(tok) - 1 ? len : sizeof(tok) - 1;
        memcpy(tok, ae, n);
        tok[n] = '\0';
        char *name = tok + strspn(tok, " \t");
        char *params = strchr(name, ';');
        int q_zero = 0;
        if (params) {
            *params++ = '\0';
            char *q = strstr(params, "q=");
            if (q && strtod(q + 2, NULL) <= 0.0)
                q_zero = 1;
        }
        name[strcspn(name, " \t")] = '\0';
        if (strcasecmp(name, "gzip") == 0 || strcasecmp(name, "x-gzip") == 0)
            return !q_zero;
        if (strcmp(name, "*") == 0)
            star = !q_zero;
        ae += len;
        if (*ae == ',')
            ae++;
    }
    return star;
}

/* 1 when an If-None-Match list names this asset's ETag (either encoding's,
 * as both come from the same content) or is "*". */
static int etag_matches(const char *header, const char *etag)
{
    return header && (strchr(header, '*') || strstr(header, etag));
}

static sf_status serve(struct sf_request *req, struct sf_response *res,
                       const struct web_asset *table, const char *path)
{
    const struct web_asset *a = table;
    while (a->path && strcmp(a->path, path) != 0)
        a++;
    if (!a->path)
        return res_fail(res, SF_ENOTFOUND, "no such asset: %.200s", path);
    int gz = web_accepts_gzip(req_header(req, "Accept-Encoding"));
    res_header(res, "ETag", "\"%s%s\"", a->etag, gz ? "-gz" : "");
    res_header(res, "Cache-Control", "%s",
               a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    res_header(res, "Vary", "Accept-Encoding");
    res_header(res, "X-Content-Type-Options", "nosniff");
    if (strcmp(a->path, "/") == 0) {
        res_header(res, "Content-Security-Policy", "%s", PAGE_CSP);
        res_header(res, "Referrer-Policy", "no-referrer");
    }
    if (etag_matches(req_header(req, "If-None-Match"), a->etag))
        return res_body(res, 304, NULL, NULL, 0);
    if (gz) {
        res_header(res, "Content-Encoding", "gzip");
        return res_static(res, 200, a->content_type, a->gz, a->gzlen);
    }
    return res_static(res, 200, a->content_type, a->data, a->len);
}

sf_status get_page(struct sf_request *req, struct sf_response *res)
{
    return serve(req, res, sf_web_assets, "/");
}

sf_status get_asset(struct sf_request *req, struct sf_response *res)
{
    return serve(req, res, sf_web_assets, req->path);
}

sf_status get_openapi(struct sf_request *req, struct sf_response *res)
{
    return serve(req, res, sf_doc_assets, "/api/openapi.json");
}
