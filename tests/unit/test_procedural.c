/*
 * test_procedural.c: the procedural backend's pictures and PNG metadata.
 *
 * Re-runs and content addressing rely on byte-identical output for the same
 * inputs; users rely on items looking different. Both are checked here, along
 * with the A1111-style parameters text that tools read back.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/procedural_draw.h"
#include "unit.h"
#include "util/png.h"
#include "util/xalloc.h"

static unsigned char *draw(unsigned long long seed, const char *prompt, int w,
                           int h)
{
    unsigned char *p = xmalloc((size_t)w * (size_t)h * 3);
    memset(p, 0xAB, (size_t)w * (size_t)h * 3);
    procedural_draw(seed, prompt, w, h, p);
    return p;
}

/* Percentage of pixels that differ in any channel. */
static int percent_differing(const unsigned char *a, const unsigned char *b,
                             int w, int h)
{
    size_t n = (size_t)w * (size_t)h, diff = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + 3 * i, b + 3 * i, 3) != 0)
            diff++;
    return (int)(diff * 100 / n);
}

/* Distinct colours (5 bits a channel) among 4096 pixels spread over the
 * image; a flat or two-tone picture would mean the shapes are not drawn. */
static int rough_colour_count(const unsigned char *p, int w, int h)
{
    size_t n = (size_t)w * (size_t)h, stride = n / 4096 ? n / 4096 : 1;
    unsigned char *seen = xcalloc(1, 1 << 15);
    int count = 0;
    for (size_t i = 0; i < n; i += stride) {
        unsigned key = (unsigned)(p[3 * i] >> 3) << 10 |
                       (unsigned)(p[3 * i + 1] >> 3) << 5 |
                       (unsigned)(p[3 * i + 2] >> 3);
        if (!seen[key]) {
            seen[key] = 1;
            count++;
        }
    }
    free(seen);
    return count;
}

static int contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

/* The same inputs give the same pixels, whatever the buffer held before;
 * the pictures are not flat. */
static void test_same_inputs_same_pixels(void)
{
    unsigned char *a = draw(42, "ace of spades", 512, 720);
    unsigned char *b = xmalloc(512 * 720 * 3);
    memset(b, 0x11, 512 * 720 * 3);
    procedural_draw(42, "ace of spades", 512, 720, b);
    CHECK(memcmp(a, b, 512 * 720 * 3) == 0);
    CHECK(rough_colour_count(a, 512, 720) > 20);
    free(a);
    free(b);
}

/* Another seed or another prompt: another picture. */
static void test_seed_or_prompt_changes_the_picture(void)
{
    unsigned char *a = draw(42, "ace of spades", 512, 720);
    unsigned char *c = draw(43, "ace of spades", 512, 720);
    CHECK(percent_differing(a, c, 512, 720) > 10);
    unsigned char *d = draw(42, "two of hearts", 512, 720);
    CHECK(percent_differing(a, d, 512, 720) > 10);
    free(a);
    free(c);
    free(d);
}

static void test_null_prompt_is_the_empty_prompt(void)
{
    unsigned char *e = draw(7, NULL, 64, 64), *f = draw(7, "", 64, 64);
    CHECK(memcmp(e, f, 64 * 64 * 3) == 0);
    free(e);
    free(f);
}

/* Seeds 0..49 of one prompt: every pair clearly differs. */
static void test_seeds_differ_pairwise(void)
{
    enum { N = 50, W = 64, H = 64 };
    unsigned char *img[N];
    for (int i = 0; i < N; i++)
        img[i] = draw((unsigned long long)i, "card", W, H);
    int worst = 100;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            int p = percent_differing(img[i], img[j], W, H);
            if (p < worst)
                worst = p;
        }
    CHECK(worst > 10);
    for (int i = 0; i < N; i++)
        free(img[i]);
}

/* Degenerate sizes do nothing and do not crash. */
static void test_degenerate_sizes_draw_nothing(void)
{
    unsigned char px[3] = {1, 2, 3};
    procedural_draw(1, "x", 0, 5, px);
    procedural_draw(1, "x", 5, -1, px);
    procedural_draw(1, "x", 1, 1, NULL);
    CHECK(px[0] == 1 && px[1] == 2 && px[2] == 3);
}

/* A 1x1 picture is drawn within its 3 bytes (exactly sized buffers, so the
 * sanitizers see any write past them), and all of them: the result does
 * not depend on what the buffer held. */
static void test_one_pixel_picture(void)
{
    unsigned char *p = xmalloc(3), *q = xmalloc(3);
    memcpy(p, "\x01\x02\x03", 3);
    memcpy(q, "\xAA\xBB\xCC", 3);
    procedural_draw(1, "x", 1, 1, p);
    procedural_draw(1, "x", 1, 1, q);
    CHECK(memcmp(p, q, 3) == 0);
    free(p);
    free(q);
}

/* PNGs of the requested size, byte-identical on re-render. */
static void test_png_size_and_rerender(void)
{
    static const int sizes[][2] = {{64, 64}, {512, 720}, {8, 2048},
                                   {2048, 8}, {1, 1}, {3, 17}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int w = sizes[i][0], h = sizes[i][1], gw = 0, gh = 0;
        unsigned char *png = NULL, *png2 = NULL;
        size_t len = 0, len2 = 0;
        char err[256] = "";
        CHECK(procedural_render_png(42, "a knight", "blurry", 20, 7.0, w,
                                    h, NULL, &png, &len) == 0);
        CHECK(png_check(png, len, &gw, &gh, err, sizeof err) == 0);
        CHECK(gw == w && gh == h);
        CHECK(procedural_render_png(42, "a knight", "blurry", 20, 7.0, w,
                                    h, NULL, &png2, &len2) == 0);
        CHECK(len == len2 && memcmp(png, png2, len) == 0);
        free(png);
        free(png2);
    }
}

/* The PNG carries the A1111-style parameters text and says what made it. */
static void test_png_metadata(void)
{
    unsigned char *png = NULL;
    size_t len = 0;
    CHECK(procedural_render_png(42, "a knight, red cloak", "blurry, text",
                                25, 6.5, 64, 96, "knight_style:0.8",
                                &png, &len) == 0);
    CHECK(contains(png, len, "tEXtparameters"));
    CHECK(contains(png, len, "Seed: 42"));
    CHECK(contains(png, len, "backend: procedural"));
    CHECK(contains(png, len, "a knight, red cloak\nNegative prompt: "
                             "blurry, text\nSteps: 25"));
    CHECK(contains(png, len, "CFG scale: 6.5"));
    CHECK(contains(png, len, "Size: 64x96"));
    CHECK(contains(png, len, "Loras: \"knight_style:0.8\", "));
    CHECK(contains(png, len, "tEXtSoftware"));
    CHECK(contains(png, len, "setforge procedural backend (not an AI "
                             "model)"));
    free(png);
}

static void test_parameters_text(void)
{
    char *t = procedural_parameters_text(18446744073709551615ULL, "p", "",
                                         20, 7.0, 512, 720, "");
    CHECK_STR(t, "p\nSteps: 20, Sampler: procedural, CFG scale: 7, "
                 "Seed: 18446744073709551615, Size: 512x720, "
                 "backend: procedural");
    free(t);

    /* A value with commas is quoted so "k: v, k: v" still parses. */
    t = procedural_parameters_text(1, "p", NULL, 20, 7.5, 8, 8,
                                   "a:0.5, b \"x\":1");
    CHECK_STR(t, "p\nSteps: 20, Sampler: procedural, CFG scale: 7.5, "
                 "Seed: 1, Size: 8x8, Loras: \"a:0.5, b \\\"x\\\":1\", "
                 "backend: procedural");
    free(t);

    t = procedural_parameters_text(1, NULL, NULL, 20, 7.0, 8, 8, NULL);
    CHECK(t && strncmp(t, "\nSteps: 20,", 11) == 0);
    free(t);
}

/* Bad sizes fail without allocating. */
static void test_bad_png_sizes_fail(void)
{
    unsigned char *png = NULL;
    size_t len = 0;
    CHECK(procedural_render_png(1, "x", NULL, 20, 7, 0, 64, NULL, &png,
                                &len) == -1);
    CHECK(procedural_render_png(1, "x", NULL, 20, 7, 64, 16385, NULL, &png,
                                &len) == -1);
    CHECK(png == NULL);
}

int main(void)
{
    test_same_inputs_same_pixels();
    test_seed_or_prompt_changes_the_picture();
    test_null_prompt_is_the_empty_prompt();
    test_seeds_differ_pairwise();
    test_degenerate_sizes_draw_nothing();
    test_one_pixel_picture();
    test_png_size_and_rerender();
    test_png_metadata();
    test_parameters_text();
    test_bad_png_sizes_fail();
    UNIT_END("procedural");
}
