/*
 * test_infotext.c: A1111's parameters text (util/infotext.c) and setting a
 * text chunk in a PNG without decoding it (png_with_text in util/png.c).
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/infotext.h"
#include "util/png.h"

static void layout_and_quoting(void)
{
    const struct infotext_param p[] = {
        {"Steps", "20"}, {"Sampler", "Euler a"}, {"CFG scale", "7"}, {"Seed", "42"},
        {"Size", "512x720"}, {"Model", ""}, {"Model hash", NULL},
        {"Lora hashes", "ink: 0a1b, wash: 2c3d"}, {"Note", "say \"hi\"\nthere"},
    };
    char *t = infotext_format("a knight <lora:ink:0.7>", "blurry", p, sizeof p / sizeof p[0]);
    CHECK_STR(t, "a knight <lora:ink:0.7>\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, "
                 "CFG scale: 7, Seed: 42, Size: 512x720, Lora hashes: \"ink: 0a1b, wash: 2c3d\", "
                 "Note: \"say \\\"hi\\\"\\nthere\"");
    free(t);
    t = infotext_format(NULL, "", p, 1);
    CHECK_STR(t, "\nSteps: 20");
    free(t);
    char n[32];
    infotext_number(7.0, n, sizeof n);
    CHECK_STR(n, "7");
    infotext_number(6.5, n, sizeof n);
    CHECK_STR(n, "6.5");
}

/* The chunk (type and text) with keyword key in png, or NULL. */
static const unsigned char *find_chunk(const unsigned char *png, size_t len, const char *key,
                                       char type[5], int *count)
{
    const unsigned char *found = NULL;
    *count = 0;
    for (size_t pos = 8; pos + 12 <= len;) {
        size_t n = (size_t)png[pos] << 24 | (size_t)png[pos + 1] << 16 | (size_t)png[pos + 2] << 8 |
                   png[pos + 3];
        const unsigned char *data = png + pos + 8;
        if ((!memcmp(png + pos + 4, "tEXt", 4) || !memcmp(png + pos + 4, "iTXt", 4)) &&
            n > strlen(key) && !memcmp(data, key, strlen(key) + 1)) {
            memcpy(type, png + pos + 4, 4);
            type[4] = '\0';
            found = data + strlen(key) + 1;
            (*count)++;
        }
        pos += 12 + n;
    }
    return found;
}

static void chunks(void)
{
    unsigned char rgb[4 * 4 * 3] = {0};
    const char *const pairs[] = {"parameters", "old text", "Software", "x", NULL};
    unsigned char *png, *out, *out2;
    size_t len, olen, olen2;
    CHECK(png_encode_rgb(rgb, 4, 4, pairs, &png, &len) == 0);

    CHECK(png_with_text(png, len, "parameters", "new, caf\xc3\xa9", &out, &olen) == 0);
    char type[5];
    int count;
    const unsigned char *v = find_chunk(out, olen, "parameters", type, &count);
    CHECK(count == 1);
    CHECK_STR(type, "tEXt");
    CHECK(v && memcmp(v, "new, caf\xe9", 9) == 0); /* Latin-1 */
    CHECK(find_chunk(out, olen, "Software", type, &count) && count == 1);
    int w, h;
    char err[128];
    CHECK(png_check(out, olen, &w, &h, err, sizeof err) == 0 && w == 4 && h == 4);

    /* Not Latin-1: iTXt, UTF-8, replacing the tEXt one. */
    CHECK(png_with_text(out, olen, "parameters", "\xe6\x9d\xb1\xe4\xba\xac", &out2, &olen2) == 0);
    v = find_chunk(out2, olen2, "parameters", type, &count);
    CHECK(count == 1);
    CHECK_STR(type, "iTXt");
    CHECK(v && memcmp(v, "\0\0\0\0\xe6\x9d\xb1", 7) == 0);
    CHECK(png_check(out2, olen2, NULL, NULL, err, sizeof err) == 0);
    free(out2);

    /* Refused: not a PNG, a truncated one, an empty or long key. */
    unsigned char *none = NULL;
    CHECK(png_with_text((const unsigned char *)"GIF89a........................................", 46,
                        "k", "v", &none, &olen2) == -1);
    CHECK(png_with_text(png, len - 12, "k", "v", &none, &olen2) == -1); /* no IEND */
    CHECK(png_with_text(png, len, "", "v", &none, &olen2) == -1);
    char longkey[100];
    memset(longkey, 'k', 99);
    longkey[99] = '\0';
    CHECK(png_with_text(png, len, longkey, "v", &none, &olen2) == -1);
    CHECK(none == NULL);
    free(out);
    free(png);
}

int main(void)
{
    layout_and_quoting();
    chunks();
    UNIT_END("test_infotext");
}
