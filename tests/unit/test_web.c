/*
 * test_web.c: the page's routes in the route table ("/" and the "*"
 * segment of the assets route), the Accept-Encoding rule, and the asset table the
 * build compiled in (tools/embed_web.sh).
 */
#include <string.h>

#include "api/webassets.h"
#include "http/router.h"
#include "unit.h"

static enum route_match m(const char *method, const char *path, const struct route **r)
{
    long long ids[REQ_MAX_IDS];
    int n;
    char allow[256];
    *r = NULL;
    return router_match(method, path, r, ids, &n, allow, sizeof(allow));
}

static int is_hex16(const char *s)
{
    if (strlen(s) != 16)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int main(void)
{
    const struct route *r, *page, *asset;

    /* routes: "/" exactly; "*" is one non-empty segment of any text */
    CHECK(m("GET", "/", &page) == MATCH_FOUND && page && page->auth == ROUTE_PUBLIC);
    CHECK(m("HEAD", "/", &r) == MATCH_FOUND && r == page);
    CHECK(m("POST", "/", &r) == MATCH_WRONG_METHOD);
    CHECK(m("GET", "/assets/app.0123456789abcdef.js", &asset) == MATCH_FOUND && asset && asset != page);
    CHECK(m("GET", "/assets/anything-at_all.~", &r) == MATCH_FOUND && r == asset);
    CHECK(m("GET", "/assets/", &r) == MATCH_NONE);
    CHECK(m("GET", "/assets", &r) == MATCH_NONE);
    CHECK(m("GET", "/assets/a/b.js", &r) == MATCH_NONE);
    CHECK(m("GET", "/assets/a/", &r) == MATCH_NONE);
    CHECK(m("GET", "/index.html", &r) == MATCH_NONE);
    CHECK(m("GET", "//", &r) == MATCH_NONE);
    CHECK(m("DELETE", "/assets/x.js", &r) == MATCH_WRONG_METHOD);

    /* Accept-Encoding */
    CHECK(web_accepts_gzip("gzip"));
    CHECK(web_accepts_gzip("gzip, deflate, br"));
    CHECK(web_accepts_gzip("br;q=1.0, gzip;q=0.8, *;q=0.1"));
    CHECK(web_accepts_gzip("GZIP"));
    CHECK(web_accepts_gzip("x-gzip"));
    CHECK(web_accepts_gzip(" deflate ,  gzip ; q=0.5"));
    CHECK(web_accepts_gzip("*"));
    CHECK(!web_accepts_gzip(NULL));
    CHECK(!web_accepts_gzip(""));
    CHECK(!web_accepts_gzip("identity"));
    CHECK(!web_accepts_gzip("deflate, br"));
    CHECK(!web_accepts_gzip("gzip;q=0"));
    CHECK(!web_accepts_gzip("gzip;q=0.000"));
    CHECK(!web_accepts_gzip("gzip;q=0, *"));  /* gzip named: its q decides */
    CHECK(!web_accepts_gzip("*;q=0"));
    CHECK(!web_accepts_gzip("gzipx, xgzip"));
    CHECK(!web_accepts_gzip(",,,"));

    /* the table: "/" once, every other asset hashed and immutable, each
     * with its gzip (a gzip member starts 1f 8b 08) */
    int pages = 0, n = 0;
    for (const struct web_asset *a = sf_web_assets; a->path; a++, n++) {
        CHECK(is_hex16(a->etag));
        CHECK(a->len > 0 && a->gzlen > 18);
        CHECK(a->gz[0] == 0x1f && a->gz[1] == 0x8b && a->gz[2] == 0x08);
        CHECK(a->content_type && *a->content_type);
        if (strcmp(a->path, "/") == 0) {
            pages++;
            CHECK(!a->immutable);
            CHECK(strncmp(a->content_type, "text/html", 9) == 0);
            CHECK(memmem(a->data, a->len, "/assets/", 8) != NULL);
        } else {
            CHECK(a->immutable);
            CHECK(strncmp(a->path, "/assets/", 8) == 0);
            CHECK(strstr(a->path, a->etag) != NULL); /* the name carries the content's hash */
            CHECK(m("GET", a->path, &r) == MATCH_FOUND && r == asset);
            /* the page names it */
            const struct web_asset *p = sf_web_assets;
            while (p->path && strcmp(p->path, "/") != 0)
                p++;
            CHECK(p->path && memmem(p->data, p->len, a->path, strlen(a->path)) != NULL);
        }
    }
    CHECK(pages == 1);
    CHECK(n >= 3);
    UNIT_END("web");
}
