/*
 * html_images.c: image URLs out of HTML with libxml2's SAX HTML parser, and
 * URL resolution with curl_url (html_images.h says what is kept and why).
 *
 * The parser calls on_start/on_end for every element in document order;
 * nothing else is kept, so no tree is built. Candidates are resolved as they
 * come (against <base href> once it has appeared, otherwise the page URL),
 * checked against the URLs already kept through a small hash set, and the
 * parser is stopped once max URLs are kept.
 */
#include "backends/html_images.h"

#include <curl/curl.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/http_client.h"
#include "util/hash.h"
#include "util/xalloc.h"

/* ---- URLs ---------------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* A copy of url with the bytes no URL may hold raw percent-encoded: space,
 * controls, non-ASCII and "<>\\^`{|}. They have no meaning in URL syntax,
 * so the URL stays the same URL (libcurl keeps spaces as they are). */
static char *encode_unsafe(const char *url)
{
    static const char hex[] = "0123456789ABCDEF";
    struct strbuf sb;
    sb_init(&sb);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"<>\\^`{|}", *p)) {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sb_append(&sb, e, 3);
        } else {
            sb_putc(&sb, (char)*p);
        }
    }
    return sb_detach(&sb, NULL);
}

char *url_resolve(const char *base, const char *ref)
{
    if (!base || !ref)
        return NULL;
    while (is_space(*ref))
        ref++;
    size_t n = strlen(ref);
    while (n && is_space(ref[n - 1]))
        n--;
    if (n == 0 || n > 8192)
        return NULL;
    char *trimmed = xstrndup(ref, n);
    http_client_global_init();
    CURLU *u = curl_url();
    char *out = NULL, *scheme = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, trimmed, CURLU_ALLOW_SPACE | CURLU_NON_SUPPORT_SCHEME) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK) {
        char *s = NULL;
        if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
            out = encode_unsafe(s);
        curl_free(s);
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    free(trimmed);
    return out;
}

int url_has_image_extension(const char *url)
{
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".gif", ".webp"};
    CURLU *u = curl_url();
    char *path = NULL;
    int yes = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        size_t n = strlen(path);
        for (size_t i = 0; i < sizeof exts / sizeof exts[0] && !yes; i++) {
            size_t e = strlen(exts[i]);
            yes = n >= e && strcasecmp(path + n - e, exts[i]) == 0;
        }
    }
    curl_free(path);
    curl_url_cleanup(u);
    return yes;
}

void url_list_free(struct url_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->urls[i]);
    free(l->urls);
    l->urls = NULL;
    l->n = 0;
}

/* ---- srcset -------------------------------------------------------------- */

/*
 * The largest candidate of a srcset ("a.png 1x, b.png 2x" or "a.png 480w,
 * b.png 1080w"): by width when any candidate has a w descriptor, else by
 * density (no descriptor is 1x). fallback (an <img src>, or NULL) competes
 * as 1x. A malloc'd copy of the URL, or NULL when there is none.
 */
static char *srcset_largest(const char *s, const char *fallback)
{
    char *best_w = NULL, *best_x = fallback ? xstrdup(fallback) : NULL;
    double max_w = 0, max_x = fallback ? 1.0 : 0;
    while (s && *s) {
        while (is_space(*s) || *s == ',')
            s++;
        if (!*s)
            break;
        const char *u = s;
        while (*s && !is_space(*s))
            s++;
        size_t ulen = (size_t)(s - u);
        int cut_by_comma = 0;
        while (ulen && u[ulen - 1] == ',') { /* "a.png," : no descriptor */
            ulen--;
            cut_by_comma = 1;
        }
        const char *d = s, *dend = s;
        if (!cut_by_comma) {
            while (*s && *s != ',')
                s++;
            dend = s;
        }
        while (d < dend && is_space(*d))
            d++;
        char unit = 'x';
        double v = 1.0;
        if (d < dend) {
            char *end;
            double val = strtod(d, &end);
            if (end > d && end < dend && (*end == 'w' || *end == 'x' || *end == 'h')) {
                unit = *end;
                v = val;
            }
        }
        if (ulen == 0 || !(v > 0))
            continue;
        if (unit == 'w' && v > max_w) {
            free(best_w);
            best_w = xstrndup(u, ulen);
            max_w = v;
        } else if (unit == 'x' && v > max_x) {
            free(best_x);
            best_x = xstrndup(u, ulen);
            max_x = v;
        }
    }
    if (best_w) {
        free(best_x);
        return best_w;
    }
    return best_x;
}

/* ---- the SAX walk -------------------------------------------------------- */

struct walk {
    htmlParserCtxtPtr ctxt;
    char *page_url;
    char *base;          /* <base href> resolved, or NULL */
    size_t max;
    struct url_list *out;
    uint64_t *set;       /* hashes of kept URLs, open addressing, 0 = empty */
    size_t set_cap;      /* a power of two, > 2 x max */
    int picture_depth;   /* inside <picture> elements */
    int picture_taken;   /* the current picture's source gave its URL */
};

static const char *attr(const xmlChar **atts, const char *name)
{
    for (size_t i = 0; atts && atts[i]; i += 2)
        if (strcasecmp((const char *)atts[i], name) == 0)
            return atts[i + 1] ? (const char *)atts[i + 1] : "";
    return NULL;
}

/* Adds url (taken) unless kept already; stops the parser at max. */
static void keep(struct walk *w, char *url)
{
    if (!url)
        return;
    uint64_t h = fnv1a64(url, strlen(url));
    if (h == 0)
        h = 1;
    size_t i = (size_t)h & (w->set_cap - 1);
    while (w->set[i]) {
        if (w->set[i] == h) {
            /* the same hash: a duplicate unless the strings differ */
            int dup = 0;
            for (size_t k = 0; k < w->out->n && !dup; k++)
                dup = strcmp(w->out->urls[k], url) == 0;
            if (dup) {
                free(url);
                return;
            }
        }
        i = (i + 1) & (w->set_cap - 1);
    }
    w->set[i] = h;
    w->out->urls = xrealloc(w->out->urls, (w->out->n + 1) * sizeof(char *));
    w->out->urls[w->out->n++] = url;
    if (w->out->n >= w->max)
        xmlStopParser(w->ctxt);
}

static void candidate(struct walk *w, const char *ref, int need_extension)
{
    if (!ref || w->out->n >= w->max)
        return;
    char *url = url_resolve(w->base ? w->base : w->page_url, ref);
    if (url && need_extension && !url_has_image_extension(url)) {
        free(url);
        return;
    }
    keep(w, url);
}

static void on_start(void *ud, const xmlChar *xname, const xmlChar **atts)
{
    struct walk *w = ud;
    const char *name = (const char *)xname;
    if (strcasecmp(name, "base") == 0) {
        const char *href = attr(atts, "href");
        if (href && !w->base) /* the first <base href> counts */
            w->base = url_resolve(w->page_url, href);
    } else if (strcasecmp(name, "picture") == 0) {
        if (w->picture_depth++ == 0)
            w->picture_taken = 0;
    } else if (strcasecmp(name, "source") == 0) {
        const char *srcset = attr(atts, "srcset");
        if (w->picture_depth > 0 && srcset && !w->picture_taken) {
            char *best = srcset_largest(srcset, NULL);
            if (best) {
                w->picture_taken = 1;
                candidate(w, best, 0);
                free(best);
            }
        }
    } else if (strcasecmp(name, "img") == 0) {
        if (w->picture_depth > 0 && w->picture_taken)
            return;
        const char *src = attr(atts, "src");
        const char *srcset = attr(atts, "srcset");
        if (src && !*src)
            src = NULL;
        char *best = srcset ? srcset_largest(srcset, src) : NULL;
        candidate(w, best ? best : src, 0);
        free(best);
    } else if (strcasecmp(name, "meta") == 0) {
        const char *prop = attr(atts, "property");
        if (!prop)
            prop = attr(atts, "name");
        if (prop && (strcasecmp(prop, "og:image") == 0 || strcasecmp(prop, "og:image:url") == 0))
            candidate(w, attr(atts, "content"), 0);
    } else if (strcasecmp(name, "a") == 0) {
        candidate(w, attr(atts, "href"), 1);
    }
}

static void on_end(void *ud, const xmlChar *xname)
{
    struct walk *w = ud;
    if (strcasecmp((const char *)xname, "picture") == 0 && w->picture_depth > 0)
        w->picture_depth--;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
    xmlInitParser(); /* once, before threads parse (libxml2's rule) */
}

struct html_images *html_images_begin(const char *page_url, size_t max, struct url_list *out)
{
    pthread_once(&xml_once, xml_init_once);
    struct walk *w = xcalloc(1, sizeof *w);
    w->page_url = xstrdup(page_url ? page_url : "");
    w->max = max;
    w->out = out;
    w->set_cap = 64;
    while (w->set_cap < 2 * (max + out->n) + 2)
        w->set_cap <<= 1;
    w->set = xcalloc(w->set_cap, sizeof(uint64_t));
    for (size_t i = 0; i < out->n; i++) { /* URLs already in out count as kept */
        uint64_t h = fnv1a64(out->urls[i], strlen(out->urls[i]));
        size_t k = (size_t)(h ? h : 1) & (w->set_cap - 1);
        while (w->set[k])
            k = (k + 1) & (w->set_cap - 1);
        w->set[k] = h ? h : 1;
    }
    htmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.startElement = on_start;
    sax.endElement = on_end;
    w->ctxt = htmlCreatePushParserCtxt(&sax, w, NULL, 0, NULL, XML_CHAR_ENCODING_NONE);
    if (w->ctxt)
        htmlCtxtUseOptions(w->ctxt, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    return (struct html_images *)w;
}

static int walk_done(const struct walk *w)
{
    return !w->ctxt || w->ctxt->disableSAX || w->out->n >= w->max;
}

int html_images_feed(struct html_images *h, const char *data, size_t len)
{
    struct walk *w = (struct walk *)h;
    /* in slices: a stop at max ends the work early */
    const size_t slice = 64 * 1024;
    size_t off = 0;
    while (off < len && !walk_done(w)) {
        size_t n = len - off < slice ? len - off : slice;
        htmlParseChunk(w->ctxt, data + off, (int)n, 0);
        off += n;
    }
    return walk_done(w);
}

size_t html_images_end(struct html_images *h)
{
    struct walk *w = (struct walk *)h;
    if (w->ctxt) {
        if (!w->ctxt->disableSAX)
            htmlParseChunk(w->ctxt, NULL, 0, 1);
        htmlFreeParserCtxt(w->ctxt);
    }
    size_t n = w->out->n;
    free(w->set);
    free(w->base);
    free(w->page_url);
    free(w);
    return n;
}

size_t html_images_extract(const char *data, size_t len, const char *page_url, size_t max,
                           struct url_list *out)
{
    if (!data || !page_url || out->n >= max)
        return out->n;
    struct html_images *h = html_images_begin(page_url, max, out);
    html_images_feed(h, data, len);
    return html_images_end(h);
}
