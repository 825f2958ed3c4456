/*
 * test_png.c: PNG encoding round trips and the whole-file checker.
 *
 * The checker is the gate between a remote backend and the image store, so
 * most checks here are about what it must refuse: cut-off files at every
 * length, other formats, garbage, oversized dimensions, corrupted data.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/png.h"
#include "util/xalloc.h"

static unsigned char *make_rgb(int w, int h)
{
    unsigned char *p = xmalloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *q = p + ((size_t)y * (size_t)w + (size_t)x) * 3;
            q[0] = (unsigned char)(x * 7);
            q[1] = (unsigned char)(y * 3);
            q[2] = (unsigned char)((x ^ y) & 255);
        }
    return p;
}

static int contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static void roundtrip(int w, int h)
{
    unsigned char *rgb = make_rgb(w, h), *png = NULL;
    size_t len = 0;
    int gw = -1, gh = -1;
    char err[256];
    CHECK(png_encode_rgb(rgb, w, h, NULL, &png, &len) == 0);
    CHECK(png && len > 8);
    CHECK(png_check(png, len, &gw, &gh, err, sizeof err) == 0);
    CHECK(gw == w && gh == h);
    free(png);
    free(rgb);
}

/* Writes a PNG of another kind with libpng directly, to show the checker is
 * not tied to what our encoder produces. */
struct memout {
    struct strbuf sb;
};

static void mem_write(png_structp p, png_bytep d, size_t n)
{
    sb_append(png_get_io_ptr(p), d, n);
}

static void mem_flush(png_structp p)
{
    (void)p;
}

static unsigned char *make_other_png(int w, int h, int depth, int ctype,
                                     int interlace, size_t *len)
{
    struct strbuf sb;
    sb_init(&sb);
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL,
                                            NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) {
        png_destroy_write_struct(&p, &info);
        sb_free(&sb);
        return NULL;
    }
    png_set_write_fn(p, &sb, mem_write, mem_flush);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(p, info, pal, 4);
    }
    png_write_info(p, info);
    int passes = png_set_interlace_handling(p);
    size_t rowbytes = png_get_rowbytes(p, info);
    unsigned char *row = xcalloc(1, rowbytes);
    for (size_t i = 0; i < rowbytes; i++)
        row[i] = (unsigned char)(i * 37 & 0x55);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++)
            png_write_row(p, row);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
    return (unsigned char *)sb_detach(&sb, len);
}

static void test_round_trips(void)
{
    /* odd and extreme shapes */
    roundtrip(1, 1);
    roundtrip(64, 64);
    roundtrip(2048, 16);
    roundtrip(16, 2048);
    roundtrip(513, 7);
}

/* tEXt chunks, in order, with their exact bytes. */
static void test_text_chunks(void)
{
    char err[256];
    int w, h;
    unsigned char *rgb = make_rgb(32, 32), *png = NULL;
    size_t len = 0;
    const char *text[] = {"parameters", "a cat\nSteps: 20, Seed: 42",
                          "Software", "setforge", NULL};
    CHECK(png_encode_rgb(rgb, 32, 32, text, &png, &len) == 0);
    CHECK(contains(png, len, "tEXtparameters"));
    CHECK(contains(png, len, "parameters\0a cat\nSteps: 20, Seed: 42") ||
          contains(png, len, "a cat\nSteps: 20, Seed: 42"));
    CHECK(contains(png, len, "tEXtSoftware"));
    CHECK(png_check(png, len, &w, &h, err, sizeof err) == 0);
    CHECK(w == 32 && h == 32);
    free(png);
    free(rgb);
}

/* A dangling key without a value is ignored, not read past. */
static void test_text_key_without_value_is_ignored(void)
{
    unsigned char *rgb = make_rgb(32, 32), *png = NULL;
    size_t len = 0;
    const char *odd[] = {"parameters", NULL};
    CHECK(png_encode_rgb(rgb, 32, 32, odd, &png, &len) == 0);
    CHECK(!contains(png, len, "tEXt"));
    free(png);
    free(rgb);
}

/* An invalid keyword (empty) fails cleanly, leaving *out alone. */
static void test_text_empty_keyword_fails(void)
{
    unsigned char *rgb = make_rgb(32, 32), *png = NULL;
    size_t len = 0;
    const char *bad[] = {"", "value", NULL};
    CHECK(png_encode_rgb(rgb, 32, 32, bad, &png, &len) == -1);
    CHECK(png == NULL);
    free(rgb);
}

static void test_encode_bad_arguments(void)
{
    unsigned char px[3] = {1, 2, 3}, *png = NULL;
    size_t len;
    CHECK(png_encode_rgb(px, 0, 1, NULL, &png, &len) == -1);
    CHECK(png_encode_rgb(px, 1, -1, NULL, &png, &len) == -1);
    CHECK(png_encode_rgb(NULL, 1, 1, NULL, &png, &len) == -1);
    CHECK(png == NULL);
}

/* A 16x16 PNG with one tEXt chunk (the caller frees it). */
static unsigned char *small_png(size_t *len)
{
    unsigned char *rgb = make_rgb(16, 16), *png = NULL;
    const char *text[] = {"parameters", "x", NULL};
    CHECK(png_encode_rgb(rgb, 16, 16, text, &png, len) == 0);
    free(rgb);
    return png;
}

/* Every truncation of a small PNG fails, and says "truncated". */
static void test_every_truncation_fails(void)
{
    char err[256];
    int w, h;
    size_t len = 0;
    unsigned char *png = small_png(&len);
    int all_fail = 1, all_say_truncated = 1;
    for (size_t cut = 0; cut < len; cut++) {
        if (png_check(png, cut, &w, &h, err, sizeof err) == 0)
            all_fail = 0;
        else if (cut > 0 && strncmp(err, "truncated PNG", 13) != 0) {
            all_say_truncated = 0;
            fprintf(stderr, "cut %zu: %s\n", cut, err);
        }
    }
    CHECK(all_fail);
    CHECK(all_say_truncated);
    CHECK(png_check(png, len, &w, &h, err, sizeof err) == 0);
    free(png);
}

/* Cut inside the image data, and just before IEND: each named. */
static void test_truncation_names_where(void)
{
    char err[256];
    size_t len = 0;
    unsigned char *png = small_png(&len);
    CHECK(png_check(png, len / 2, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "truncated PNG") != NULL);
    CHECK(png_check(png, len - 12, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "IEND") != NULL);
    free(png);
}

/* A flipped byte in the image data is a CRC error, not "truncated". */
static void test_flipped_byte_is_corrupt(void)
{
    char err[256];
    size_t len = 0;
    unsigned char *png = small_png(&len);
    png[len - 20] ^= 0x40;
    CHECK(png_check(png, len, NULL, NULL, err, sizeof err) == -1);
    CHECK(strncmp(err, "corrupt PNG", 11) == 0);
    free(png);
}

/* A large image, truncated in the middle of its rows. */
static void test_large_image_cut_in_its_rows(void)
{
    char err[256];
    int w, h;
    unsigned char *rgb = make_rgb(512, 512), *png = NULL;
    size_t len = 0;
    CHECK(png_encode_rgb(rgb, 512, 512, NULL, &png, &len) == 0);
    CHECK(png_check(png, len, &w, &h, err, sizeof err) == 0);
    CHECK(png_check(png, len * 2 / 3, &w, &h, err, sizeof err) == -1);
    CHECK(strstr(err, "before all rows") != NULL);
    free(png);
    free(rgb);
}

static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10,
                                     'J', 'F', 'I', 'F', 0, 1, 1, 0};

/* Other formats are refused with a guess at what they are. */
static void test_other_formats_named(void)
{
    char err[256];
    int w, h;
    CHECK(png_check(jpeg, sizeof jpeg, &w, &h, err, sizeof err) == -1);
    CHECK_STR(err, "not a PNG (starts with FF D8 FF: JPEG?)");

    static const unsigned char gif[] = "GIF89a\x01\x00\x01\x00";
    CHECK(png_check(gif, sizeof gif - 1, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "GIF") != NULL);

    const char *html = "<html><body>502 Bad Gateway</body></html>";
    CHECK(png_check((const unsigned char *)html, strlen(html), NULL, NULL,
                    err, sizeof err) == -1);
    CHECK(strstr(err, "HTML") != NULL);
}

static void test_garbage_refused(void)
{
    char err[256];
    unsigned char garbage[1000];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 131 + 7);
    CHECK(png_check(garbage, sizeof garbage, NULL, NULL, err, sizeof err) ==
          -1);
    CHECK(strncmp(err, "not a PNG", 9) == 0);

    /* The signature followed by garbage. */
    memcpy(garbage, "\x89PNG\r\n\x1a\n", 8);
    CHECK(png_check(garbage, sizeof garbage, NULL, NULL, err, sizeof err) ==
          -1);
    CHECK(err[0] != '\0');
}

static void test_empty_input_refused(void)
{
    char err[256];
    int w, h;
    CHECK(png_check((const unsigned char *)"", 0, &w, &h, err, sizeof err) ==
          -1);
    CHECK(strstr(err, "empty") != NULL);
    CHECK(png_check(NULL, 0, &w, &h, err, sizeof err) == -1);
}

static void test_err_may_be_omitted(void)
{
    CHECK(png_check(jpeg, sizeof jpeg, NULL, NULL, NULL, 0) == -1);
}

/* Refuses dimensions over the cap before inflating anything. */
static void test_dimensions_over_the_cap_refused(void)
{
    char err[256];
    int w, h;
    int wide = SF_PNG_MAX_DIM + 1;
    unsigned char *rgb = xcalloc((size_t)wide, 3), *png = NULL;
    size_t len = 0;
    CHECK(png_encode_rgb(rgb, wide, 1, NULL, &png, &len) == 0);
    CHECK(png_check(png, len, &w, &h, err, sizeof err) == -1);
    CHECK(strstr(err, "16385x1") != NULL);
    free(png);
    free(rgb);
}

/* Other bit depths, colour types and interlacing are accepted. */
static void test_other_png_kinds_accepted(void)
{
    char err[256];
    int w, h;
    static const struct {
        int depth, ctype, interlace;
    } kinds[] = {
        {1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE},
        {16, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_ADAM7},
        {2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_ADAM7},
        {8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t len = 0;
        unsigned char *png = make_other_png(37, 23, kinds[k].depth,
                                            kinds[k].ctype,
                                            kinds[k].interlace, &len);
        CHECK(png != NULL);
        w = h = 0;
        CHECK(png && png_check(png, len, &w, &h, err, sizeof err) == 0);
        CHECK(w == 37 && h == 23);
        CHECK(png && png_check(png, len - 30, &w, &h, err, sizeof err) ==
              -1);
        free(png);
    }
}

int main(void)
{
    test_round_trips();
    test_text_chunks();
    test_text_key_without_value_is_ignored();
    test_text_empty_keyword_fails();
    test_encode_bad_arguments();
    test_every_truncation_fails();
    test_truncation_names_where();
    test_flipped_byte_is_corrupt();
    test_large_image_cut_in_its_rows();
    test_other_formats_named();
    test_garbage_refused();
    test_empty_input_refused();
    test_err_may_be_omitted();
    test_dimensions_over_the_cap_refused();
    test_other_png_kinds_accepted();
    UNIT_END("png");
}
