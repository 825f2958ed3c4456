/*
 * png.c: PNG encoding to memory and whole-file validation, over libpng.
 *
 * The encoder exists so the procedural backend can hand the store a real
 * PNG with A1111-style tEXt metadata; it trades some file size for speed
 * (zlib level 1, one fixed filter), because encoding sits on the
 * run engine's hot path and the pictures are cheap to make again. The checker
 * exists because a remote backend can return anything: an HTML error page, a
 * JPEG, or a PNG cut short by a dropped connection. It decodes every row and
 * reads through IEND, so only a file a viewer could show gets stored.
 *
 * libpng reports errors by longjmp. Our error callback records the message
 * and jumps back to the setjmp in each function; anything that must be freed
 * or reported after the jump is reached through a pointer (the strbuf libpng
 * writes to, the check context), never a register-cached local.
 */
#include "util/png.h"

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/xalloc.h"

struct png_err {
    char msg[200];
};

static void on_error(png_structp png, png_const_charp msg)
{
    struct png_err *e = png_get_error_ptr(png);
    if (e)
        snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* Warnings (a bad CRC on an ancillary chunk, say) do not make a PNG unusable,
 * and libpng's default would print them on the daemon's stderr. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* ---- encoding ---------------------------------------------------------- */

static void write_to_strbuf(png_structp png, png_bytep data, size_t len)
{
    sb_append(png_get_io_ptr(png), data, len);
}

static void flush_nothing(png_structp png)
{
    (void)png;
}

int png_encode_rgb(const unsigned char *rgb, int width, int height,
                   const char *const *text_pairs, unsigned char **out,
                   size_t *out_len)
{
    struct png_err err = {{0}};
    struct strbuf sb;
    png_structp png = NULL;
    png_infop info = NULL;

    if (!rgb || !out || width <= 0 || height <= 0)
        return -1;
    sb_init(&sb);

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_error,
                                  on_warning);
    if (!png)
        return -1;
    info = png_create_info_struct(png);
    if (!info)
        goto fail;
    /* sb is only changed through the pointer libpng holds, so it is current
     * in memory when we land here. */
    if (setjmp(png_jmpbuf(png)))
        goto fail;

    png_set_write_fn(png, &sb, write_to_strbuf, flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Measured on procedural 512x720 pictures (flat fills and gradients):
     * libpng's adaptive filtering at zlib level 6 takes ~8 ms; the UP filter
     * alone at level 1 takes ~2 ms for a file ~60% larger, and was both
     * faster and smaller than SUB or NONE; levels 2-3 cost more time than
     * the bytes they save. memLevel 6 (a
     * smaller hash table than the default 8) is ~10% faster at the same size.
     * RLE strategy was faster only on tiny images and 10x larger on big ones. */
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
    png_set_compression_level(png, 1);
    png_set_compression_mem_level(png, 6);
    png_set_compression_strategy(png, Z_DEFAULT_STRATEGY);

    for (size_t i = 0; text_pairs && text_pairs[i] && text_pairs[i + 1];
         i += 2) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        /* libpng copies both strings; it only lacks const in its API. */
        t.key = (png_charp)text_pairs[i];
        t.text = (png_charp)text_pairs[i + 1];
        t.text_length = strlen(text_pairs[i + 1]);
        png_set_text(png, info, &t, 1);
    }

    png_write_info(png, info);
    size_t stride = (size_t)width * 3;
    for (int y = 0; y < height; y++)
        png_write_row(png, rgb + (size_t)y * stride);
    png_write_end(png, NULL); /* text went out before IDAT */

    png_destroy_write_struct(&png, &info);
    *out = (unsigned char *)sb_detach(&sb, out_len);
    return 0;

fail:
    png_destroy_write_struct(&png, info ? &info : NULL);
    sb_free(&sb);
    return -1;
}

/* ---- checking ---------------------------------------------------------- */

struct mem_reader {
    const unsigned char *buf;
    size_t len;
    size_t pos;
    int ran_out;
};

static void read_from_memory(png_structp png, png_bytep data, size_t n)
{
    struct mem_reader *r = png_get_io_ptr(png);
    if (n > r->len - r->pos) {
        r->ran_out = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(data, r->buf + r->pos, n);
    r->pos += n;
}

/* A sentence for a buffer that does not start with the PNG signature, naming
 * what it most likely is, since "not a PNG" alone helps nobody debug a remote
 * backend that answered with an error page. */
static void describe_not_png(const unsigned char *b, size_t len, char *err,
                             size_t errlen)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n',
                                         0x1a, '\n'};

    if (len == 0)
        snprintf(err, errlen, "not a PNG (the data is empty)");
    else if (len < 8 && memcmp(b, sig, len) == 0)
        snprintf(err, errlen, "truncated PNG: only %zu bytes, less than the "
                 "8-byte signature", len);
    else if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        snprintf(err, errlen, "not a PNG (starts with FF D8 FF: JPEG?)");
    else if (len >= 4 && memcmp(b, "GIF8", 4) == 0)
        snprintf(err, errlen, "not a PNG (starts with GIF8: GIF?)");
    else if (len >= 12 && memcmp(b, "RIFF", 4) == 0 &&
             memcmp(b + 8, "WEBP", 4) == 0)
        snprintf(err, errlen, "not a PNG (starts with RIFF....WEBP: WebP?)");
    else if (b[0] == '<')
        snprintf(err, errlen, "not a PNG (starts with '<': HTML or XML?)");
    else if (b[0] == '{' || b[0] == '[')
        snprintf(err, errlen, "not a PNG (starts with '%c': JSON?)", b[0]);
    else if (len >= 4)
        snprintf(err, errlen, "not a PNG (starts with %02X %02X %02X %02X)",
                 b[0], b[1], b[2], b[3]);
    else
        snprintf(err, errlen, "not a PNG (only %zu bytes)", len);
}

enum check_stage { STAGE_HEADER, STAGE_ROWS, STAGE_END };

/* Everything png_check's decoding touches after setjmp lives here, in memory
 * reached through one pointer, so a longjmp cannot leave any of it stale in
 * a register. */
struct check_ctx {
    struct mem_reader r;
    struct png_err perr;
    png_structp png;
    png_infop info;
    png_bytep row;
    enum check_stage stage;
    png_uint_32 w, h;
    char *err;
    size_t errlen;
};

static int check_decode(struct check_ctx *c)
{
    if (setjmp(png_jmpbuf(c->png))) {
        static const char *const where[] = {
            [STAGE_HEADER] = "inside the header chunks",
            [STAGE_ROWS] = "before all rows of image data",
            [STAGE_END] = "before the IEND chunk",
        };
        if (c->r.ran_out)
            snprintf(c->err, c->errlen, "truncated PNG: the data ends after "
                     "%zu bytes, %s", c->r.len, where[c->stage]);
        else
            snprintf(c->err, c->errlen, "corrupt PNG: %s", c->perr.msg);
        return -1;
    }

    c->r.pos = 8;
    png_set_read_fn(c->png, &c->r, read_from_memory);
    png_set_sig_bytes(c->png, 8);
    png_read_info(c->png, c->info);

    c->w = png_get_image_width(c->png, c->info);
    c->h = png_get_image_height(c->png, c->info);
    /* Refuse before any image data is inflated: a 100-byte file can claim
     * gigapixels. */
    if (c->w == 0 || c->h == 0 || c->w > SF_PNG_MAX_DIM ||
        c->h > SF_PNG_MAX_DIM) {
        snprintf(c->err, c->errlen, "PNG is %lux%lu; each side must be 1 to "
                 "%d pixels", (unsigned long)c->w, (unsigned long)c->h,
                 SF_PNG_MAX_DIM);
        return -1;
    }

    /* Rows are read raw, whatever the bit depth or colour type; we only need
     * zlib and the filters to succeed on every one of them. */
    int passes = png_set_interlace_handling(c->png);
    png_read_update_info(c->png, c->info);
    c->row = xmalloc(png_get_rowbytes(c->png, c->info));
    c->stage = STAGE_ROWS;
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < c->h; y++)
            png_read_row(c->png, c->row, NULL);
    c->stage = STAGE_END;
    png_read_end(c->png, NULL);
    return 0;
}

int png_check(const unsigned char *buf, size_t len, int *width, int *height,
              char *err, size_t errlen)
{
    char dummy[1];
    struct check_ctx c;

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!buf || len < 8 || png_sig_cmp(buf, 0, 8) != 0) {
        describe_not_png(buf ? buf : (const unsigned char *)"", buf ? len : 0,
                         err, errlen);
        return -1;
    }

    memset(&c, 0, sizeof c);
    c.r.buf = buf;
    c.r.len = len;
    c.stage = STAGE_HEADER;
    c.err = err;
    c.errlen = errlen;
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c.perr, on_error,
                                   on_warning);
    if (c.png)
        c.info = png_create_info_struct(c.png);
    if (!c.png || !c.info) {
        snprintf(err, errlen, "cannot check PNG: out of memory");
        png_destroy_read_struct(c.png ? &c.png : NULL, NULL, NULL);
        return -1;
    }

    int rc = check_decode(&c);
    free(c.row);
    png_destroy_read_struct(&c.png, &c.info, NULL);
    if (rc == 0) {
        if (width)
            *width = (int)c.w;
        if (height)
            *height = (int)c.h;
    }
    return rc;
}

/* ---- centre crop ---- */

/* The source's text chunks (tEXt, zTXt, iTXt: a server's "parameters"),
 * whole with their CRCs, appended to sb. */
static void copy_text_chunks(const unsigned char *buf, size_t len, struct strbuf *sb)
{
    size_t pos = 8;
    while (pos + 12 <= len) {
        size_t n = ((size_t)buf[pos] << 24) | ((size_t)buf[pos + 1] << 16) |
                   ((size_t)buf[pos + 2] << 8) | buf[pos + 3];
        if (n > len - pos - 12)
            return;
        const unsigned char *type = buf + pos + 4;
        if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
            memcmp(type, "iTXt", 4) == 0)
            sb_append(sb, buf + pos, n + 12);
        pos += n + 12;
    }
}

int png_crop_center(const unsigned char *buf, size_t len, int width, int height,
                    const char *const *text_pairs, unsigned char **out, size_t *out_len,
                    char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, buf, len)) {
        snprintf(err, errlen, "cannot read the PNG to crop it: %s", img.message);
        return -1;
    }
    int sw = (int)img.width, sh = (int)img.height;
    if (width <= 0 || height <= 0 || width > sw || height > sh || sw > SF_PNG_MAX_DIM ||
        sh > SF_PNG_MAX_DIM) {
        png_image_free(&img);
        snprintf(err, errlen, "cannot crop a %dx%d image to %dx%d", sw, sh, width, height);
        return -1;
    }
    img.format = PNG_FORMAT_RGB;
    size_t stride = (size_t)sw * 3;
    unsigned char *rgb = malloc(stride * (size_t)sh);
    if (!rgb) {
        png_image_free(&img);
        snprintf(err, errlen, "out of memory cropping the image");
        return -1;
    }
    if (!png_image_finish_read(&img, NULL, rgb, (png_int_32)stride, NULL)) {
        snprintf(err, errlen, "cannot decode the PNG to crop it: %s", img.message);
        free(rgb);
        return -1;
    }
    /* The centre: an odd margin leaves its extra pixel on the right and
     * at the bottom. Rows are moved down in place. */
    int x0 = (sw - width) / 2, y0 = (sh - height) / 2;
    size_t row = (size_t)width * 3;
    for (int y = 0; y < height; y++)
        memmove(rgb + (size_t)y * row, rgb + (size_t)(y0 + y) * stride + (size_t)x0 * 3, row);
    unsigned char *enc = NULL;
    size_t enc_len = 0;
    int rc = png_encode_rgb(rgb, width, height, text_pairs, &enc, &enc_len);
    free(rgb);
    if (rc < 0 || enc_len < 12) {
        free(enc);
        snprintf(err, errlen, "cannot encode the cropped image");
        return -1;
    }
    /* Everything but IEND (its 12 bytes last), the source's text, IEND. */
    struct strbuf sb;
    sb_init(&sb);
    sb_append(&sb, enc, enc_len - 12);
    copy_text_chunks(buf, len, &sb);
    sb_append(&sb, enc + enc_len - 12, 12);
    free(enc);
    *out = (unsigned char *)sb_detach(&sb, out_len);
    return 0;
}

/* ---- one text chunk, set without decoding ------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* text as Latin-1 in out (the caller's buffer of at least strlen(text)
 * bytes); 0 and *n set when every character fits, -1 otherwise (also on
 * bytes that are not UTF-8). */
static int utf8_to_latin1(const char *text, unsigned char *out, size_t *n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t k = 0;
    while (*s) {
        if (*s < 0x80) {
            out[k++] = *s++;
        } else if ((s[0] == 0xc2 || s[0] == 0xc3) && (s[1] & 0xc0) == 0x80) {
            out[k++] = (unsigned char)(((s[0] & 0x1f) << 6) | (s[1] & 0x3f));
            s += 2;
        } else {
            return -1;
        }
    }
    *n = k;
    return 0;
}

/* The keyword of a text chunk's data (tEXt, zTXt and iTXt all start with
 * it, NUL-terminated) equals key. */
static int chunk_keyword_is(const unsigned char *data, uint32_t len, const char *key)
{
    size_t klen = strlen(key);
    return len > klen && memcmp(data, key, klen) == 0 && data[klen] == '\0';
}

int png_with_text(const unsigned char *buf, size_t len, const char *key, const char *text,
                 unsigned char **out, size_t *out_len)
{
    static const unsigned char SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t klen = strlen(key), tlen = strlen(text);
    if (len < 8 + 25 || memcmp(buf, SIG, 8) != 0 || klen < 1 || klen > 79)
        return -1;
    /* The new chunk: tEXt when the text is Latin-1, as the PNG spec wants
     * (A1111 and PIL do the same), else iTXt, uncompressed, in UTF-8. */
    unsigned char *latin = xmalloc(tlen + 1);
    size_t llen = 0;
    int as_text = utf8_to_latin1(text, latin, &llen) == 0;
    size_t dlen = as_text ? klen + 1 + llen : klen + 5 + tlen;
    unsigned char *chunk = xmalloc(12 + dlen);
    put_be32(chunk, (uint32_t)dlen);
    memcpy(chunk + 4, as_text ? "tEXt" : "iTXt", 4);
    unsigned char *d = chunk + 8;
    memcpy(d, key, klen + 1);
    if (as_text) {
        memcpy(d + klen + 1, latin, llen);
    } else {
        /* compression flag 0, method 0, empty language tag and translated keyword */
        memset(d + klen + 1, 0, 4);
        memcpy(d + klen + 5, text, tlen);
    }
    free(latin);
    put_be32(chunk + 8 + dlen, (uint32_t)crc32(crc32(0L, Z_NULL, 0), chunk + 4, (uInt)(4 + dlen)));

    /* Copy the chunks, leaving out any text chunk of the same keyword, and
     * put the new one right after IHDR (before the image data, where
     * readers that stop early still find it). */
    unsigned char *o = xmalloc(len + 12 + dlen);
    size_t olen = 8, pos = 8;
    memcpy(o, buf, 8);
    int placed = 0, ok = 0;
    while (pos + 12 <= len) {
        uint32_t clen = get_be32(buf + pos);
        if (clen > len - pos - 12)
            break;
        const unsigned char *type = buf + pos + 4, *data = buf + pos + 8;
        int is_text = memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 ||
                      memcmp(type, "iTXt", 4) == 0;
        if (!(is_text && chunk_keyword_is(data, clen, key))) {
            memcpy(o + olen, buf + pos, 12 + (size_t)clen);
            olen += 12 + (size_t)clen;
        }
        if (!placed && memcmp(type, "IHDR", 4) == 0) {
            memcpy(o + olen, chunk, 12 + dlen);
            olen += 12 + dlen;
            placed = 1;
        }
        pos += 12 + (size_t)clen;
        if (memcmp(type, "IEND", 4) == 0) {
            ok = placed;
            break;
        }
    }
    free(chunk);
    if (!ok) {
        free(o);
        return -1;
    }
    *out = o;
    *out_len = olen;
    return 0;
}
