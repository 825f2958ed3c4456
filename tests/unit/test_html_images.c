/*
 * test_html_images.c: the image URLs of a page (backends/html_images.c):
 * every rule of the extractor (img src, the largest srcset candidate,
 * picture sources, og:image, links to image files), resolution against the
 * page URL and <base>, duplicates, page order, the cut at max, and pages
 * that are not well-formed at all. Pure functions: no network.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/html_images.h"
#include "unit.h"

static struct url_list extract(const char *html, const char *page, size_t max)
{
    struct url_list l = {0};
    html_images_extract(html, strlen(html), page, max, &l);
    return l;
}

static void test_resolve(void)
{
    const char *base = "http://example.test/a/b/page.html?q=1";
    struct { const char *ref, *want; } cases[] = {
        {"x.png", "http://example.test/a/b/x.png"},
        {"../x.png", "http://example.test/a/x.png"},
        {"/x.png", "http://example.test/x.png"},
        {"//cdn.test/x.png", "http://cdn.test/x.png"},
        {"https://other.test/y.jpg#frag", "https://other.test/y.jpg"},
        {"  spaced name.png \n", "http://example.test/a/b/spaced%20name.png"},
        {"?v=2", "http://example.test/a/b/page.html?v=2"},
        {"a>b <c\"d.png", "http://example.test/a/b/a%3Eb%20%3Cc%22d.png"},
        {"/im\xc3\xa1genes/x.png", "http://example.test/im%c3%a1genes/x.png"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = url_resolve(base, cases[i].ref);
        CHECK_STR(got, cases[i].want);
        free(got);
    }
    const char *refused[] = {"file:///etc/passwd", "gopher://x.test/", "dict://x.test/",
                             "javascript:alert(1)", "data:image/png;base64,AAAA", "", "   ",
                             "ftp://x.test/a.png", "mailto:a@b.test"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *got = url_resolve(base, refused[i]);
        CHECK(got == NULL);
        free(got);
    }
    CHECK(url_resolve("not a url", "x.png") == NULL);
    CHECK(url_has_image_extension("http://a.test/b/C.JPG?x=1"));
    CHECK(url_has_image_extension("http://a.test/b.webp"));
    CHECK(!url_has_image_extension("http://a.test/b.png.html"));
    CHECK(!url_has_image_extension("http://a.test/page?f=b.png"));
}

static void test_rules(void)
{
    const char *html =
        "<!doctype html><html><head>"
        "<meta property=\"og:image\" content=\"/og.jpg\">"
        "<title>t</title></head><body>"
        "<img src=\"rel.png\">"
        "<img src=\"http://abs.test/abs.gif\">"
        "<img src=\"//proto.test/p.webp\">"
        "<img src=\"small.png\" srcset=\"mid.png 2x, big.png 3x\">"
        "<img srcset=\"w480.png 480w, w1080.png 1080w, w800.png 800w\" src=\"fallback.png\">"
        "<picture><source srcset=\"pic-1x.webp 1x, pic-2x.webp 2x\" type=\"image/webp\">"
        "<source srcset=\"pic.jpg\"><img src=\"pic-fallback.jpg\"></picture>"
        "<picture><img src=\"pic-only-img.png\"></picture>"
        "<a href=\"full.jpeg\">full</a><a href=\"page2.html\">next</a>"
        "<img src=\"rel.png\">"            /* duplicate */
        "<img src=\"rel.png#top\">"        /* the same without its fragment */
        "<img src=\"data:image/png;base64,AAAA\">"
        "<img src=\"\">"
        "</body></html>";
    struct url_list l = extract(html, "http://site.test/dir/index.html", 1000);
    const char *want[] = {
        "http://site.test/og.jpg",          "http://site.test/dir/rel.png",
        "http://abs.test/abs.gif",          "http://proto.test/p.webp",
        "http://site.test/dir/big.png",     "http://site.test/dir/w1080.png",
        "http://site.test/dir/pic-2x.webp", "http://site.test/dir/pic-only-img.png",
        "http://site.test/dir/full.jpeg",
    };
    CHECK(l.n == sizeof want / sizeof want[0]);
    for (size_t i = 0; i < l.n && i < sizeof want / sizeof want[0]; i++)
        CHECK_STR(l.urls[i], want[i]);
    url_list_free(&l);

    /* https page: protocol-relative follows it */
    l = extract("<img src=\"//cdn.test/a.png\">", "https://site.test/", 10);
    CHECK(l.n == 1 && strcmp(l.urls[0], "https://cdn.test/a.png") == 0);
    url_list_free(&l);
}

static void test_base(void)
{
    const char *html = "<html><head><base href=\"https://img.test/assets/\">"
                       "<base href=\"http://ignored.test/\"></head>"
                       "<body><img src=\"a.png\"><img src=\"/b.png\"></body></html>";
    struct url_list l = extract(html, "http://site.test/x/", 10);
    CHECK(l.n == 2);
    if (l.n == 2) {
        CHECK_STR(l.urls[0], "https://img.test/assets/a.png");
        CHECK_STR(l.urls[1], "https://img.test/b.png");
    }
    url_list_free(&l);
    /* a relative <base> is resolved against the page */
    l = extract("<base href=\"../up/\"><img src=\"c.png\">", "http://site.test/x/y/p.html", 10);
    CHECK(l.n == 1 && strcmp(l.urls[0], "http://site.test/x/up/c.png") == 0);
    url_list_free(&l);
}

static void test_max_and_garbage(void)
{
    /* 2,000 images, cut at 100, in page order */
    size_t cap = 2000 * 40 + 64;
    char *html = malloc(cap);
    size_t off = 0;
    for (int i = 0; i < 2000; i++)
        off += (size_t)snprintf(html + off, cap - off, "<img src=\"/i/%d.png\">", i);
    struct url_list l = extract(html, "http://site.test/", 100);
    CHECK(l.n == 100);
    CHECK_STR(l.n ? l.urls[0] : NULL, "http://site.test/i/0.png");
    CHECK_STR(l.n == 100 ? l.urls[99] : NULL, "http://site.test/i/99.png");
    url_list_free(&l);
    free(html);

    /* not HTML at all, unclosed tags, binary, attributes without values */
    const char *bad[] = {"", "\x89PNG\r\n\x1a\n\0\0\0", "<img src=", "<img src=\"a.png",
                         "<<<>>><img/src=x.png>", "<img src>", "<IMG SRC='Up.PNG'>",
                         "<a href>", "<source srcset=\"no-picture.png\">"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct url_list g = {0};
        html_images_extract(bad[i], i == 1 ? 11 : strlen(bad[i]), "http://s.test/", 10, &g);
        for (size_t k = 0; k < g.n; k++)
            CHECK(strncmp(g.urls[k], "http://s.test/", 14) == 0);
        url_list_free(&g);
    }
    l = extract("<IMG SRC='Up.PNG'>", "http://s.test/", 10);
    CHECK(l.n == 1 && strcmp(l.urls[0], "http://s.test/Up.PNG") == 0);
    url_list_free(&l);
    l = extract("<source srcset=\"no-picture.png\">", "http://s.test/", 10);
    CHECK(l.n == 0); /* a <source> outside <picture> (video, audio) */
    url_list_free(&l);
}

int main(void)
{
    test_resolve();
    test_rules();
    test_base();
    test_max_and_garbage();
    UNIT_END("html_images");
}
