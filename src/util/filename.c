/*
 * filename.c: safe file names and the Content-Disposition of downloads.
 *
 * A zip's entry names end up as files on the user's disk, unpacked by tools
 * that trust them to different degrees: only [a-z0-9_-] (and the extension
 * we add) can never mean a directory, a device, a hidden file or a
 * different name on a case-insensitive disk. The album name in
 * Content-Disposition is given twice, as RFC 6266 suggests: a plain ASCII
 * filename="..." that every client reads, and filename*= with the real
 * name in UTF-8, percent-encoded by the attr-char rule of RFC 8187, which
 * modern browsers prefer.
 */
#include "util/filename.h"

#include <stdio.h>
#include <string.h>

size_t filename_slug(const char *in, size_t max_len, char *out, size_t outlen)
{
    size_t n = 0, cap = outlen - 1 < max_len ? outlen - 1 : max_len;
    int gap = 0; /* a run of unusable bytes is waiting to become one '_' */
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && n < cap; p++) {
        unsigned char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (gap && n > 0) {
                out[n++] = '_';
                if (n >= cap)
                    break;
            }
            gap = 0;
            out[n++] = (char)c;
        } else {
            gap = 1;
        }
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
    return n;
}

/* RFC 8187 attr-char: what filename* may carry unencoded. */
static int attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$&+-.^_`|~", c));
}

void filename_disposition(const char *name, const char *ext, const char *fallback,
                          char *out, size_t outlen)
{
    char slug[101];
    if (!name || !*name)
        name = fallback;
    if (filename_slug(name, 100, slug, sizeof(slug)) == 0)
        snprintf(slug, sizeof(slug), "%s", fallback);
    int used = snprintf(out, outlen, "attachment; filename=\"%s%s\"; filename*=UTF-8''", slug, ext);
    if (used < 0 || (size_t)used >= outlen) {
        snprintf(out, outlen, "attachment");
        return;
    }
    size_t n = (size_t)used, room = outlen - strlen(ext) - 1;
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)name;
    while (*p) {
        /* One whole UTF-8 character at a time, so a cut never splits one. */
        size_t clen = 1;
        if (*p >= 0xc0)
            while (clen < 4 && (p[clen] & 0xc0) == 0x80)
                clen++;
        size_t need = 0;
        for (size_t i = 0; i < clen; i++)
            need += attr_char(p[i]) ? 1 : 3;
        if (n + need > room)
            break;
        for (size_t i = 0; i < clen; i++) {
            if (attr_char(p[i])) {
                out[n++] = (char)p[i];
            } else {
                out[n++] = '%';
                out[n++] = hex[p[i] >> 4];
                out[n++] = hex[p[i] & 15];
            }
        }
        p += clen;
    }
    snprintf(out + n, outlen - n, "%s", ext);
}
