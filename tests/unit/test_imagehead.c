/*
 * test_imagehead.c: magic bytes and header dimensions of PNG, JPEG, GIF and
 * WebP (util/imagehead.c), including every cut-short header, which must be
 * refused rather than read past its end.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/imagehead.h"
#include "util/png.h"

static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 0x40, 0x01, 0xF0, 0x00,
                                    0x80, 0x00, 0x00};
/* SOI, an APP0 segment, then SOF0 with height 0x01E0 (480) and width 0x0280 (640) */
static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J', 'F',
                                     0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x03};
/* RIFF, VP8X with canvas 1024 x 768 (stored minus one) */
static unsigned char webp_x[30] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P',
                                   'V', 'P', '8', 'X', 10, 0, 0, 0, 0, 0, 0, 0,
                                   0xFF, 0x03, 0x00, 0xFF, 0x02, 0x00};

static void test_formats(void)
{
    int w = 0, h = 0;
    size_t plen = 0;
    unsigned char *rgb = calloc(1, 33 * 17 * 3), *png = NULL;
    CHECK(png_encode_rgb(rgb, 33, 17, NULL, &png, &plen) == 0);
    free(rgb);
    CHECK(image_head(png, plen, &w, &h) == IMAGE_PNG && w == 33 && h == 17);
    CHECK_STR(image_kind_mime(IMAGE_PNG), "image/png");
    for (size_t n = 0; n < 24; n++)
        CHECK(png_dimensions(png, n, &w, &h) == -1);
    free(png);

    CHECK(image_head(gif, sizeof gif, &w, &h) == IMAGE_GIF && w == 320 && h == 240);
    for (size_t n = 0; n < 10; n++)
        CHECK(image_head(gif, n, &w, &h) == IMAGE_UNKNOWN);
    CHECK(image_head(jpeg, sizeof jpeg, &w, &h) == IMAGE_JPEG && w == 640 && h == 480);
    for (size_t n = 0; n < sizeof jpeg - 1; n++) /* the last byte is past the sizes */
        CHECK(jpeg_dimensions(jpeg, n, &w, &h) == -1);
    CHECK_STR(image_kind_mime(IMAGE_JPEG), "image/jpeg");
    CHECK(image_head(webp_x, sizeof webp_x, &w, &h) == IMAGE_WEBP && w == 1024 && h == 768);
    for (size_t n = 0; n < sizeof webp_x; n++)
        CHECK(webp_dimensions(webp_x, n, &w, &h) == -1);

    /* VP8 (lossy key frame) 300 x 200 and VP8L (lossless) 5 x 7 */
    unsigned char vp8[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
    vp8[23] = 0x9D, vp8[24] = 0x01, vp8[25] = 0x2A;
    vp8[26] = 300 & 0xFF, vp8[27] = 300 >> 8, vp8[28] = 200, vp8[29] = 0;
    CHECK(image_head(vp8, sizeof vp8, &w, &h) == IMAGE_WEBP && w == 300 && h == 200);
    vp8[23] = 0;
    CHECK(image_head(vp8, sizeof vp8, &w, &h) == IMAGE_UNKNOWN);
    unsigned char vp8l[30] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'};
    unsigned long bits = (5 - 1) | (unsigned long)(7 - 1) << 14;
    vp8l[20] = 0x2F;
    vp8l[21] = bits & 0xFF, vp8l[22] = (bits >> 8) & 0xFF, vp8l[23] = (bits >> 16) & 0xFF;
    CHECK(image_head(vp8l, sizeof vp8l, &w, &h) == IMAGE_WEBP && w == 5 && h == 7);

    /* HTML posing as an image, and zero sizes */
    const char *html = "<!doctype html><html><body>not an image</body></html>";
    CHECK(image_sniff((const unsigned char *)html, strlen(html)) == IMAGE_UNKNOWN);
    unsigned char gif0[13];
    memcpy(gif0, gif, sizeof gif0);
    gif0[6] = gif0[7] = 0;
    CHECK(image_head(gif0, sizeof gif0, &w, &h) == IMAGE_UNKNOWN);
    CHECK(image_head(NULL, 0, &w, &h) == IMAGE_UNKNOWN);
}

static void test_content_type(void)
{
    CHECK(content_type_is_image("image/png"));
    CHECK(content_type_is_image("Image/JPEG; charset=binary"));
    CHECK(!content_type_is_image("text/html"));
    CHECK(!content_type_is_image("image/"));
    CHECK(!content_type_is_image(""));
    CHECK(!content_type_is_image(NULL));
    CHECK(!content_type_is_image("application/octet-stream"));
}

int main(void)
{
    test_formats();
    test_content_type();
    UNIT_END("imagehead");
}
