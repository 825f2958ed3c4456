/*
 * procedural_draw.c: deterministic abstract pictures for the procedural
 * backend.
 *
 * A run needs images that differ visibly from item to item, are identical
 * when the same item is rendered again (so retries and re-runs are
 * byte-stable and content addressing de-duplicates them), and cost almost
 * nothing, so tests and demos exercise the whole pipeline at full speed.
 * Every choice below (palette, gradient, stripes, rectangles, circles, card
 * frame) comes from one splitmix64 stream seeded with seed XOR FNV-1a(prompt).
 * Drawing is integer arithmetic only, with no floating point or libm, so the
 * bytes cannot drift between compilers or CPUs, and the inner loops are
 * plain span fills: 512x720 takes about half a millisecond.
 */
#include "backends/procedural_draw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/infotext.h"
#include "util/png.h"
#include "util/xalloc.h"

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform-enough integer in [lo, hi]; the modulo bias is irrelevant here. */
static int rng_range(struct rng *r, int lo, int hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

struct colour {
    int r, g, b;
};

/* Integer HSV to RGB: h in [0, 1536), s and v in [0, 255]. Hue-based colours
 * give each picture a coherent palette rather than random noise. */
static struct colour hsv(int h, int s, int v)
{
    h %= 1536;
    if (h < 0)
        h += 1536;
    int sector = h >> 8, f = h & 255;
    int p = v * (255 - s) / 255;
    int q = v * (255 - s * f / 255) / 255;
    int t = v * (255 - s * (255 - f) / 255) / 255;
    switch (sector) {
    case 0: return (struct colour){v, t, p};
    case 1: return (struct colour){q, v, p};
    case 2: return (struct colour){p, v, t};
    case 3: return (struct colour){p, q, v};
    case 4: return (struct colour){t, p, v};
    default: return (struct colour){v, p, q};
    }
}

struct canvas {
    unsigned char *px;
    int w, h;
};

/* Blends colour c at alpha a (0..256) over pixels [x0, x1) of row y, clipped
 * to the canvas. Every shape is built from these spans. */
static void span(const struct canvas *cv, int y, int x0, int x1,
                 struct colour c, int a)
{
    if (y < 0 || y >= cv->h)
        return;
    if (x0 < 0)
        x0 = 0;
    if (x1 > cv->w)
        x1 = cv->w;
    if (x0 >= x1)
        return;
    unsigned char *p = cv->px + ((size_t)y * (size_t)cv->w + (size_t)x0) * 3;
    int ia = 256 - a;
    int cr = c.r * a, cg = c.g * a, cb = c.b * a;
    for (int x = x0; x < x1; x++, p += 3) {
        p[0] = (unsigned char)((p[0] * ia + cr) >> 8);
        p[1] = (unsigned char)((p[1] * ia + cg) >> 8);
        p[2] = (unsigned char)((p[2] * ia + cb) >> 8);
    }
}

static void fill_rect(const struct canvas *cv, int x, int y, int w, int h,
                      struct colour c, int a)
{
    for (int yy = y; yy < y + h; yy++)
        span(cv, yy, x, x + w, c, a);
}

/* Outline of thickness t just inside the rectangle. */
static void frame_rect(const struct canvas *cv, int x, int y, int w, int h,
                       int t, struct colour c, int a)
{
    if (2 * t >= w || 2 * t >= h) {
        fill_rect(cv, x, y, w, h, c, a);
        return;
    }
    fill_rect(cv, x, y, w, t, c, a);
    fill_rect(cv, x, y + h - t, w, t, c, a);
    fill_rect(cv, x, y + t, t, h - 2 * t, c, a);
    fill_rect(cv, x + w - t, y + t, t, h - 2 * t, c, a);
}

static int64_t isqrt64(int64_t n)
{
    if (n <= 0)
        return 0;
    uint64_t x = (uint64_t)n, r = 0, bit = 1ULL << 62;
    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (int64_t)r;
}

/* A disc, or a ring when inner > 0: one square root per row, none per pixel. */
static void disc(const struct canvas *cv, int cx, int cy, int radius,
                 int inner, struct colour c, int a)
{
    int64_t r2 = (int64_t)radius * radius, i2 = (int64_t)inner * inner;
    for (int dy = -radius; dy <= radius; dy++) {
        int y = cy + dy;
        if (y < 0 || y >= cv->h)
            continue;
        int64_t d2 = (int64_t)dy * dy;
        int half = (int)isqrt64(r2 - d2);
        if (inner > 0 && d2 < i2) {
            int ihalf = (int)isqrt64(i2 - d2);
            span(cv, y, cx - half, cx - ihalf, c, a);
            span(cv, y, cx + ihalf + 1, cx + half + 1, c, a);
        } else {
            span(cv, y, cx - half, cx + half + 1, c, a);
        }
    }
}

/* Four-corner gradient, stepped in 16.16 fixed point along each row. */
static void background(const struct canvas *cv, const struct colour corner[4])
{
    int w = cv->w, h = cv->h;
    int dh = h > 1 ? h - 1 : 1, dw = w > 1 ? w - 1 : 1;
    for (int y = 0; y < h; y++) {
        int l[3], r[3];
        const int tl[3] = {corner[0].r, corner[0].g, corner[0].b};
        const int tr[3] = {corner[1].r, corner[1].g, corner[1].b};
        const int bl[3] = {corner[2].r, corner[2].g, corner[2].b};
        const int br[3] = {corner[3].r, corner[3].g, corner[3].b};
        for (int k = 0; k < 3; k++) {
            l[k] = tl[k] + (bl[k] - tl[k]) * y / dh;
            r[k] = tr[k] + (br[k] - tr[k]) * y / dh;
        }
        int32_t v[3], step[3];
        for (int k = 0; k < 3; k++) {
            v[k] = l[k] << 16;
            step[k] = (int32_t)((int64_t)(r[k] - l[k]) * 65536 / dw);
        }
        unsigned char *p = cv->px + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++, p += 3) {
            p[0] = (unsigned char)(v[0] >> 16);
            p[1] = (unsigned char)(v[1] >> 16);
            p[2] = (unsigned char)(v[2] >> 16);
            v[0] += step[0];
            v[1] += step[1];
            v[2] += step[2];
        }
    }
}

/* Diagonal stripes inside a rectangle; the phase advances by a counter, so
 * there is no division per pixel. */
static void stripes(const struct canvas *cv, int x, int y, int w, int h,
                    int period, int slope, struct colour c, int a)
{
    if (period < 2)
        period = 2;
    int on = period / 2;
    int x0 = x < 0 ? 0 : x, x1 = x + w > cv->w ? cv->w : x + w;
    int y0 = y < 0 ? 0 : y, y1 = y + h > cv->h ? cv->h : y + h;
    for (int yy = y0; yy < y1; yy++) {
        int phase = (int)(((int64_t)yy * slope + x0) % period);
        if (phase < 0)
            phase += period;
        int run_start = -1;
        for (int xx = x0; xx < x1; xx++) {
            if (phase < on) {
                if (run_start < 0)
                    run_start = xx;
            } else if (run_start >= 0) {
                span(cv, yy, run_start, xx, c, a);
                run_start = -1;
            }
            if (++phase == period)
                phase = 0;
        }
        if (run_start >= 0)
            span(cv, yy, run_start, x1, c, a);
    }
}

void procedural_draw(unsigned long long seed, const char *prompt, int width,
                     int height, unsigned char *rgb)
{
    if (!rgb || width <= 0 || height <= 0)
        return;
    struct rng r = {(uint64_t)seed ^ fnv1a64(prompt, prompt ? strlen(prompt) : 0)};
    /* One warm-up draw so that seeds differing in a low bit do not start
     * from neighbouring states. */
    rng_next(&r);
    struct canvas cv = {rgb, width, height};
    int m = width < height ? width : height;

    /* Palette: a base hue and four companions at a random spread. */
    int hue = rng_range(&r, 0, 1535);
    int spread = rng_range(&r, 96, 512);
    struct colour pal[5];
    for (int i = 0; i < 5; i++)
        pal[i] = hsv(hue + i * spread, rng_range(&r, 90, 255),
                     rng_range(&r, 110, 255));

    struct colour corner[4];
    int dark = rng_range(&r, 0, 1);
    for (int i = 0; i < 4; i++)
        corner[i] = hsv(hue + rng_range(&r, -200, 200),
                        rng_range(&r, 60, 220),
                        dark ? rng_range(&r, 20, 110)
                             : rng_range(&r, 150, 250));
    background(&cv, corner);

    int nstripe = rng_range(&r, 0, 2);
    for (int i = 0; i < nstripe; i++) {
        int sw = rng_range(&r, width / 4, width), sh = rng_range(&r, height / 6, height / 2);
        stripes(&cv, rng_range(&r, -width / 4, width - sw / 2),
                rng_range(&r, -height / 8, height - sh / 2), sw, sh,
                rng_range(&r, 4, 4 + m / 8), rng_range(&r, -2, 2),
                pal[rng_range(&r, 0, 4)], rng_range(&r, 60, 140));
    }

    int nrect = rng_range(&r, 2, 5);
    for (int i = 0; i < nrect; i++) {
        int rw = rng_range(&r, width / 10 + 1, width / 2 + 1);
        int rh = rng_range(&r, height / 10 + 1, height / 2 + 1);
        int rx = rng_range(&r, -rw / 3, width - rw * 2 / 3);
        int ry = rng_range(&r, -rh / 3, height - rh * 2 / 3);
        struct colour c = pal[rng_range(&r, 0, 4)];
        fill_rect(&cv, rx, ry, rw, rh, c, rng_range(&r, 110, 230));
        if (rng_range(&r, 0, 2) == 0)
            frame_rect(&cv, rx, ry, rw, rh, 1 + m / 100,
                       pal[rng_range(&r, 0, 4)], 220);
    }

    int ncirc = rng_range(&r, 3, 8);
    for (int i = 0; i < ncirc; i++) {
        int rad = rng_range(&r, m / 16 + 1, m / 4 + 1);
        int inner = rng_range(&r, 0, 3) == 0 ? rad * rng_range(&r, 40, 85) / 100
                                             : 0;
        disc(&cv, rng_range(&r, 0, width - 1), rng_range(&r, 0, height - 1),
             rad, inner, pal[rng_range(&r, 0, 4)], rng_range(&r, 120, 240));
    }

    /* The card frame: an outer border, a title band and a thin inner rule,
     * so the output reads as "one card of a set". */
    if (m >= 16) {
        int inset = m / 24, t = 1 + m / 48;
        struct colour fc = pal[rng_range(&r, 0, 4)];
        frame_rect(&cv, inset, inset, width - 2 * inset, height - 2 * inset,
                   t, fc, 230);
        int band = height / 12 + 1;
        fill_rect(&cv, inset + t, inset + t, width - 2 * (inset + t), band,
                  fc, 120);
        int in2 = inset + t + 2 + m / 64;
        frame_rect(&cv, in2, in2, width - 2 * in2, height - 2 * in2, 1,
                   (struct colour){255 - fc.r, 255 - fc.g, 255 - fc.b}, 150);
    }
}

char *procedural_parameters_text(unsigned long long seed, const char *prompt,
                                 const char *negative_prompt, int steps,
                                 double cfg_scale, int width, int height,
                                 const char *loras_text)
{
    char st[16], cfg[32], sd[32], size[32];
    snprintf(st, sizeof st, "%d", steps);
    infotext_number(cfg_scale, cfg, sizeof cfg);
    snprintf(sd, sizeof sd, "%llu", seed);
    snprintf(size, sizeof size, "%dx%d", width, height);
    const struct infotext_param params[] = {
        {"Steps", st}, {"Sampler", "procedural"}, {"CFG scale", cfg}, {"Seed", sd},
        {"Size", size}, {"Loras", loras_text}, {"backend", "procedural"},
    };
    return infotext_format(prompt, negative_prompt, params, sizeof params / sizeof params[0]);
}

int procedural_render_png(unsigned long long seed, const char *prompt,
                          const char *negative_prompt, int steps,
                          double cfg_scale, int width, int height,
                          const char *loras_text, unsigned char **png_out,
                          size_t *png_len)
{
    if (!png_out || !png_len || width <= 0 || height <= 0 ||
        width > SF_PNG_MAX_DIM || height > SF_PNG_MAX_DIM)
        return -1;

    unsigned char *rgb = xmalloc((size_t)width * (size_t)height * 3);
    procedural_draw(seed, prompt, width, height, rgb);
    char *params = procedural_parameters_text(seed, prompt, negative_prompt,
                                              steps, cfg_scale, width, height,
                                              loras_text);
    const char *text[] = {
        "parameters", params,
        "Software", "setforge procedural backend (not an AI model)",
        NULL,
    };
    int rc = png_encode_rgb(rgb, width, height, text, png_out, png_len);
    free(params);
    free(rgb);
    return rc;
}
