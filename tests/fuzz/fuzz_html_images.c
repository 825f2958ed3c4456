/*
 * fuzz_html_images.c: the image URLs of a page (html_images_extract and
 * url_resolve, backends/html_images.c) and the image header readers
 * (image_head, util/imagehead.c), on bytes from any web server.
 *
 * Input: the page URL on the first line, the page after it. Beyond "no
 * crash, no leak": at most max URLs, each an absolute http(s) URL without
 * fragment or space, no two the same; the same page extracted with a larger
 * max starts with the same URLs (the cut keeps page order); a header read
 * gives positive sizes.
 */
#include "backends/html_images.h"
#include "fuzz.h"
#include "util/imagehead.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_list(const struct url_list *l, size_t max)
{
    FUZZ_ASSERT(l->n <= max);
    for (size_t i = 0; i < l->n; i++) {
        const char *u = l->urls[i];
        FUZZ_ASSERT(strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
        FUZZ_ASSERT(strchr(u, '#') == NULL);
        for (const unsigned char *p = (const unsigned char *)u; *p; p++)
            FUZZ_ASSERT(*p > 0x20 && *p < 0x7f && !strchr("\"<>\\^`{|}", *p));
        for (size_t k = 0; k < i; k++)
            FUZZ_ASSERT(strcmp(l->urls[k], u) != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t ulen = nl ? (size_t)(nl - (const char *)data) : 0;
    char *page = ulen ? strndup((const char *)data, ulen) : strdup("http://site.test/dir/page.html");
    const char *html = (const char *)data + (nl ? ulen + 1 : 0);
    size_t hlen = size - (size_t)(html - (const char *)data);

    struct url_list few = {0}, many = {0};
    html_images_extract(html, hlen, page, 3, &few);
    html_images_extract(html, hlen, page, 1000, &many);
    check_list(&few, 3);
    check_list(&many, 1000);
    FUZZ_ASSERT(few.n <= many.n);
    for (size_t i = 0; i < few.n; i++)
        FUZZ_ASSERT(strcmp(few.urls[i], many.urls[i]) == 0);
    url_list_free(&few);
    url_list_free(&many);

    /* the first line as a reference against a fixed page, too */
    char *r = url_resolve("http://site.test/a/b.html", page);
    FUZZ_ASSERT(!r || strncmp(r, "http://", 7) == 0 || strncmp(r, "https://", 8) == 0);
    free(r);
    free(page);

    int w = 0, h = 0;
    if (image_head(data, size, &w, &h) != IMAGE_UNKNOWN)
        FUZZ_ASSERT(w > 0 && h > 0);
    return 0;
}
