/*
 * imagehead.c: magic bytes and header dimensions of PNG, JPEG, GIF and WebP
 * (imagehead.h). Every read is bounds-checked against len: the bytes come
 * from any web server.
 */
#include "util/imagehead.h"

#include <string.h>
#include <strings.h>

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned le16(const unsigned char *p) { return (unsigned)p[1] << 8 | p[0]; }
static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

enum image_kind image_sniff(const unsigned char *p, size_t len)
{
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return IMAGE_PNG;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return IMAGE_JPEG;
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return IMAGE_GIF;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return IMAGE_WEBP;
    return IMAGE_UNKNOWN;
}

const char *image_kind_mime(enum image_kind k)
{
    switch (k) {
    case IMAGE_PNG: return "image/png";
    case IMAGE_JPEG: return "image/jpeg";
    case IMAGE_GIF: return "image/gif";
    case IMAGE_WEBP: return "image/webp";
    default: return "";
    }
}

static int positive(int *w, int *h, unsigned long ww, unsigned long hh)
{
    if (ww == 0 || hh == 0 || ww > 0x7fffffffUL || hh > 0x7fffffffUL)
        return -1;
    *w = (int)ww;
    *h = (int)hh;
    return 0;
}

/* Signature, then the IHDR chunk: length 13, "IHDR", width, height. */
int png_dimensions(const unsigned char *p, size_t len, int *w, int *h)
{
    if (len < 24 || image_sniff(p, len) != IMAGE_PNG || memcmp(p + 12, "IHDR", 4) != 0)
        return -1;
    return positive(w, h, be32(p + 16), be32(p + 20));
}

/* Markers after SOI until a start-of-frame (C0..CF except C4, C8, CC),
 * whose segment holds precision, height, width. */
int jpeg_dimensions(const unsigned char *p, size_t len, int *w, int *h)
{
    if (image_sniff(p, len) != IMAGE_JPEG)
        return -1;
    size_t i = 2;
    while (i + 4 <= len) {
        if (p[i] != 0xFF)
            return -1;
        unsigned char m = p[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* no length */
            i += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA) /* end of image, or scan data before any frame */
            return -1;
        unsigned seglen = be16(p + i + 2);
        if (seglen < 2)
            return -1;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (seglen < 7 || i + 9 > len)
                return -1;
            return positive(w, h, be16(p + i + 7), be16(p + i + 5));
        }
        i += 2 + (size_t)seglen;
    }
    return -1;
}

/* "GIF8?a", then the logical screen width and height, little-endian. */
int gif_dimensions(const unsigned char *p, size_t len, int *w, int *h)
{
    if (len < 10 || image_sniff(p, len) != IMAGE_GIF)
        return -1;
    return positive(w, h, le16(p + 6), le16(p + 8));
}

/* RIFF header, then the first chunk: VP8 (lossy: a key frame's 14-bit
 * sizes), VP8L (lossless: 14-bit sizes minus one, packed after 0x2F) or
 * VP8X (extended: 24-bit canvas sizes minus one). */
int webp_dimensions(const unsigned char *p, size_t len, int *w, int *h)
{
    if (len < 30 || image_sniff(p, len) != IMAGE_WEBP)
        return -1;
    const unsigned char *c = p + 12;
    if (memcmp(c, "VP8 ", 4) == 0) {
        if (c[11] != 0x9D || c[12] != 0x01 || c[13] != 0x2A)
            return -1;
        return positive(w, h, le16(c + 14) & 0x3FFF, le16(c + 16) & 0x3FFF);
    }
    if (memcmp(c, "VP8L", 4) == 0) {
        if (c[8] != 0x2F)
            return -1;
        unsigned long b = (unsigned long)c[9] | (unsigned long)c[10] << 8 |
                          (unsigned long)c[11] << 16 | (unsigned long)c[12] << 24;
        return positive(w, h, (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1);
    }
    if (memcmp(c, "VP8X", 4) == 0) {
        unsigned long ww = (unsigned long)c[12] | (unsigned long)c[13] << 8 | (unsigned long)c[14] << 16;
        unsigned long hh = (unsigned long)c[15] | (unsigned long)c[16] << 8 | (unsigned long)c[17] << 16;
        return positive(w, h, ww + 1, hh + 1);
    }
    return -1;
}

enum image_kind image_head(const unsigned char *p, size_t len, int *w, int *h)
{
    enum image_kind k = image_sniff(p, len);
    int rc = -1;
    switch (k) {
    case IMAGE_PNG: rc = png_dimensions(p, len, w, h); break;
    case IMAGE_JPEG: rc = jpeg_dimensions(p, len, w, h); break;
    case IMAGE_GIF: rc = gif_dimensions(p, len, w, h); break;
    case IMAGE_WEBP: rc = webp_dimensions(p, len, w, h); break;
    default: break;
    }
    return rc == 0 ? k : IMAGE_UNKNOWN;
}

int content_type_is_image(const char *ctype)
{
    if (!ctype)
        return 0;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return strncasecmp(ctype, "image/", 6) == 0 && ctype[6] && ctype[6] != ';' && ctype[6] != ' ';
}
