/*
 * html_images.h: the image URLs of a web page, and URL resolution.
 *
 * A scrape job fetches a page once and keeps, in page order, the URLs of
 * the images it shows: <img src> and <img srcset> (the largest candidate),
 * <picture><source srcset> (the first source's largest candidate stands for
 * the whole picture), <meta property="og:image" content>, and <a href> whose
 * path ends in .png, .jpg, .jpeg, .gif or .webp. Each is resolved against
 * the page's final URL, or its <base href> from where that appears (it
 * belongs at the top of <head>), with libcurl's URL API; only http and
 * https results are kept, the fragment is dropped, duplicates are left out
 * and the list stops at max.
 *
 * The page is read by libxml2's HTML parser (the HTML5-tolerant recovering
 * one, no network, no entities from outside) through its SAX interface, so
 * no tree is built: memory does not grow with the page, only with the list
 * (at most max URLs). Never a regular expression on HTML.
 *
 * Pure functions of their arguments (no network, no globals): unit tested in
 * tests/unit/test_html_images.c and fuzzed by tests/fuzz/fuzz_html_images.c.
 * They live in backends/ because libcurl (the URL API) is allowed only here.
 */
#ifndef SF_HTML_IMAGES_H
#define SF_HTML_IMAGES_H

#include <stddef.h>

struct url_list {
    char **urls; /* malloc'd strings, in page order */
    size_t n;
};

/*
 * Appends to out (zeroed by the caller, or a list to extend) the image URLs
 * of the HTML in data[0..len), resolved against page_url (absolute). Stops
 * at max URLs in out. Returns how many URLs out holds.
 */
size_t html_images_extract(const char *data, size_t len, const char *page_url, size_t max,
                           struct url_list *out);

/* The same, for a page that arrives in pieces: begin, feed each piece in
 * order (feed returns 1 once max URLs are kept: nothing more is needed),
 * end (returns how many URLs out holds; frees the parser). */
struct html_images;
struct html_images *html_images_begin(const char *page_url, size_t max, struct url_list *out);
int html_images_feed(struct html_images *h, const char *data, size_t len);
size_t html_images_end(struct html_images *h);

void url_list_free(struct url_list *l);

/*
 * ref resolved against the absolute URL base (RFC 3986 via curl_url):
 * a malloc'd absolute URL without fragment, or NULL when either does not
 * parse or the result's scheme is not http or https. Leading and trailing
 * whitespace of ref is ignored; spaces, controls, non-ASCII bytes and
 * "<>\\^`{|} inside are percent-encoded.
 */
char *url_resolve(const char *base, const char *ref);

/* 1 when the path of the absolute URL url ends in an image file extension
 * (.png .jpg .jpeg .gif .webp, any case). */
int url_has_image_extension(const char *url);

#endif
