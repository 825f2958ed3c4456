/*
 * webassets.h: the operator's page as the binary carries it.
 *
 * tools/embed_web.sh turns the files of web/ into the table below at build
 * time (the way tools/embed_sql.sh carries the migrations), so the daemon
 * serves its page whatever directory it runs in: every file as it is and
 * gzipped (gzip -9n, done once at build time), its ETag, and, for the
 * scripts and styles, a name carrying a hash of their content, so that they
 * can be cached forever (docs/web.md).
 */
#ifndef SF_API_WEBASSETS_H
#define SF_API_WEBASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path;         /* "/" or "/assets/<name>.<hash>.<ext>" */
    const char *content_type;
    int immutable;            /* content-hashed name: the same URL never changes */
    const char *etag;         /* 16 hex digits of the SHA-256 of data, unquoted */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;  /* data gzipped */
    size_t gzlen;
};

/* Every asset; the last row has path NULL. */
extern const struct web_asset sf_web_assets[];

/* The documents served under /api, built in the same way (today one:
 * docs/openapi.json at /api/openapi.json); the last row has path NULL. */
extern const struct web_asset sf_doc_assets[];

/* api/web.c: 1 when an Accept-Encoding value allows gzip (a "gzip" or
 * "x-gzip" coding, else "*", whose q-value is not 0). */
int web_accepts_gzip(const char *ae);

#endif
