/*
 * test_png_crop.c: png_crop_center (util/png.h), which "fit": "crop" uses:
 * the centre of the right size, the source's text chunks kept and a new
 * one added, and the unhappy paths (too small, not a PNG, truncated).
 */
#include <png.h>
#include <stdlib.h>

#include "unit.h"
#include "util/png.h"

/* A w x h RGB image whose pixel (x, y) is (x, y, 7). */
static unsigned char *gradient(int w, int h, const char *const *text, size_t *len)
{
    unsigned char *rgb = malloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (unsigned char)x;
            p[1] = (unsigned char)y;
            p[2] = 7;
        }
    unsigned char *png = NULL;
    png_encode_rgb(rgb, w, h, text, &png, len);
    free(rgb);
    return png;
}

/* Pixel (x, y) of a PNG, as RGB. */
static void pixel(const unsigned char *buf, size_t len, int x, int y, unsigned char rgb[3])
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    memset(rgb, 0, 3);
    if (!png_image_begin_read_from_memory(&img, buf, len))
        return;
    img.format = PNG_FORMAT_RGB;
    unsigned char *all = malloc(PNG_IMAGE_SIZE(img));
    if (png_image_finish_read(&img, NULL, all, 0, NULL))
        memcpy(rgb, all + ((size_t)y * img.width + (size_t)x) * 3, 3);
    free(all);
}

static int has(const unsigned char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, s, n) == 0)
            return 1;
    return 0;
}

int main(void)
{
    const char *src_text[] = {"parameters", "a fox\nSteps: 2, Seed: 1, Size: 128x64", NULL};
    size_t len;
    unsigned char *src = gradient(128, 64, src_text, &len);
    CHECK(src != NULL);

    const char *note[] = {"fit", "centre-cropped from 128x64 to 72x64 (fit: crop)", NULL};
    unsigned char *out;
    size_t out_len;
    char err[256];
    CHECK(png_crop_center(src, len, 72, 64, note, &out, &out_len, err, sizeof err) == 0);
    int w = 0, h = 0;
    CHECK(png_check(out, out_len, &w, &h, err, sizeof err) == 0);
    CHECK(w == 72 && h == 64);
    CHECK(has(out, out_len, "centre-cropped from 128x64"));
    CHECK(has(out, out_len, "Steps: 2, Seed: 1")); /* the server's text is kept */
    /* the centre: (0, 0) is the source's (28, 0), (71, 63) its (99, 63) */
    unsigned char rgb[3];
    pixel(out, out_len, 0, 0, rgb);
    CHECK(rgb[0] == 28 && rgb[1] == 0 && rgb[2] == 7);
    pixel(out, out_len, 71, 63, rgb);
    CHECK(rgb[0] == 99 && rgb[1] == 63 && rgb[2] == 7);
    free(out);

    /* an odd margin: the extra pixel stays right and below */
    CHECK(png_crop_center(src, len, 127, 63, NULL, &out, &out_len, err, sizeof err) == 0);
    CHECK(png_check(out, out_len, &w, &h, err, sizeof err) == 0 && w == 127 && h == 63);
    pixel(out, out_len, 0, 0, rgb);
    CHECK(rgb[0] == 0 && rgb[1] == 0);
    free(out);

    /* the same size: a copy */
    CHECK(png_crop_center(src, len, 128, 64, NULL, &out, &out_len, err, sizeof err) == 0);
    free(out);

    /* refusals */
    out = (unsigned char *)1;
    CHECK(png_crop_center(src, len, 129, 64, NULL, &out, &out_len, err, sizeof err) == -1);
    CHECK(out == NULL);
    CHECK(strstr(err, "cannot crop a 128x64 image to 129x64") != NULL);
    CHECK(png_crop_center(src, len, 0, 64, NULL, &out, &out_len, err, sizeof err) == -1);
    CHECK(png_crop_center((const unsigned char *)"\xff\xd8\xff\xe0 jpeg", 8, 8, 8, NULL, &out,
                          &out_len, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot read the PNG") != NULL);
    CHECK(png_crop_center(src, len / 2, 8, 8, NULL, &out, &out_len, err, sizeof err) == -1);
    CHECK(out == NULL);
    free(src);
    UNIT_END("png_crop");
}
