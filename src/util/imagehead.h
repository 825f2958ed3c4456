/*
 * imagehead.h: what an image file is, and its size, from its first bytes.
 *
 * A scrape job keeps a download only when the server's Content-Type says
 * image/(something) AND the bytes start the way a PNG, JPEG, GIF or WebP file does,
 * and it records the width and height without decoding the image: they sit
 * in the header of each of those formats (PNG's IHDR, a JPEG start-of-frame
 * marker, GIF's logical screen, WebP's VP8/VP8L/VP8X chunk). One function
 * per format, each a pure function of the bytes (tests/unit/test_imagehead.c).
 *
 * Why not a library: libpng, libjpeg, giflib and libwebp would each be
 * needed for one header read; the layouts are a few fixed offsets.
 */
#ifndef SF_IMAGEHEAD_H
#define SF_IMAGEHEAD_H

#include <stddef.h>

enum image_kind { IMAGE_UNKNOWN = 0, IMAGE_PNG, IMAGE_JPEG, IMAGE_GIF, IMAGE_WEBP };

/* The format the magic bytes name, or IMAGE_UNKNOWN. */
enum image_kind image_sniff(const unsigned char *p, size_t len);

/* "image/png", ... ; "" for IMAGE_UNKNOWN. */
const char *image_kind_mime(enum image_kind k);

/* Width and height from the header: 0, or -1 when the header is cut short
 * or malformed (or says 0 x 0). */
int png_dimensions(const unsigned char *p, size_t len, int *w, int *h);
int jpeg_dimensions(const unsigned char *p, size_t len, int *w, int *h);
int gif_dimensions(const unsigned char *p, size_t len, int *w, int *h);
int webp_dimensions(const unsigned char *p, size_t len, int *w, int *h);

/* image_sniff, then that format's dimensions: the kind, or IMAGE_UNKNOWN
 * when either fails. */
enum image_kind image_head(const unsigned char *p, size_t len, int *w, int *h);

/* 1 when a Content-Type value (parameters allowed) is image/<something>,
 * case-insensitively. */
int content_type_is_image(const char *ctype);

#endif
