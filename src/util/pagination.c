/*
 * pagination.c: parsing and describing pages of a list.
 */
#include "util/pagination.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int parse_one(const char *name, const char *s, long long def,
                     long long *out, const char **bad, char *err, size_t errlen)
{
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || (*s != '-' && (*s < '0' || *s > '9'))) {
        *bad = name;
        snprintf(err, errlen, "%s must be an integer", name);
        return -1;
    }
    if (v < 1) {
        *bad = name;
        snprintf(err, errlen, "%s must be at least 1", name);
        return -1;
    }
    *out = v;
    return 0;
}

int page_parse(const char *page_s, const char *per_page_s, struct page *out,
               const char **bad_param, char *err, size_t errlen)
{
    if (parse_one("page", page_s, 1, &out->page, bad_param, err, errlen) < 0)
        return -1;
    if (parse_one("per_page", per_page_s, PAGE_DEFAULT_SIZE, &out->per_page, bad_param, err, errlen) < 0)
        return -1;
    if (out->per_page > PAGE_MAX_SIZE)
        out->per_page = PAGE_MAX_SIZE;
    return 0;
}

long long page_offset(const struct page *pg)
{
    if (pg->page - 1 > (long long)1e15 / pg->per_page)
        return (long long)1e15;
    return (pg->page - 1) * pg->per_page;
}

void page_annotate(json_t *obj, const struct page *pg, long long total)
{
    json_object_set_new(obj, "total", json_integer(total));
    json_object_set_new(obj, "page", json_integer(pg->page));
    json_object_set_new(obj, "per_page", json_integer(pg->per_page));
    json_object_set_new(obj, "pages", json_integer((total + pg->per_page - 1) / pg->per_page));
}
