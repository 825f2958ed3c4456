/*
 * pagination.h: the contract's ?page=&per_page= rule, in one place.
 */
#ifndef SF_PAGINATION_H
#define SF_PAGINATION_H

#include <jansson.h>

#define PAGE_DEFAULT_SIZE 50
#define PAGE_MAX_SIZE 100

struct page {
    long long page;     /* 1-based */
    long long per_page; /* 1..PAGE_MAX_SIZE */
};

/*
 * Parses the two parameters (either may be NULL: the default). A value that
 * is not a decimal integer, or below 1, fails: returns -1 and sets the
 * offending name in *bad_param and a sentence in err. per_page above the
 * maximum is clamped.
 */
int page_parse(const char *page_s, const char *per_page_s, struct page *out,
               const char **bad_param, char *err, size_t errlen);

/* Row offset of the page, saturated instead of overflowing. */
long long page_offset(const struct page *pg);

/*
 * Adds "total", "page", "per_page" and "pages" to obj (borrowed) for total
 * rows.
 */
void page_annotate(json_t *obj, const struct page *pg, long long total);

#endif
