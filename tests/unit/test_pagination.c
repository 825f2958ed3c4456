/*
 * test_pagination.c: the ?page=&per_page= rule of the contract.
 */
#include "unit.h"
#include "util/pagination.h"

static int parse(const char *p, const char *pp, struct page *pg, const char **bad)
{
    char err[128];
    *bad = NULL;
    return page_parse(p, pp, pg, bad, err, sizeof(err));
}

int main(void)
{
    struct page pg;
    const char *bad;
    CHECK(parse(NULL, NULL, &pg, &bad) == 0 && pg.page == 1 && pg.per_page == 50);
    CHECK(parse("3", "20", &pg, &bad) == 0 && pg.page == 3 && pg.per_page == 20);
    CHECK(parse("1", "100", &pg, &bad) == 0 && pg.per_page == 100);
    CHECK(parse("1", "101", &pg, &bad) == 0 && pg.per_page == 100); /* clamped */
    CHECK(parse("1", "999999999999", &pg, &bad) == 0 && pg.per_page == 100);
    CHECK(parse("abc", NULL, &pg, &bad) < 0 && bad && strcmp(bad, "page") == 0);
    CHECK(parse("1.5", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse(" 1", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("1 ", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("+1", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("0", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("-2", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("99999999999999999999999", NULL, &pg, &bad) < 0 && strcmp(bad, "page") == 0);
    CHECK(parse("1", "0", &pg, &bad) < 0 && strcmp(bad, "per_page") == 0);
    CHECK(parse("1", "x", &pg, &bad) < 0 && strcmp(bad, "per_page") == 0);
    CHECK(parse("2", "1e2", &pg, &bad) < 0 && strcmp(bad, "per_page") == 0);

    pg.page = 3;
    pg.per_page = 20;
    CHECK(page_offset(&pg) == 40);
    pg.page = 9223372036854775807LL;
    CHECK(page_offset(&pg) > 0); /* saturates, never overflows */

    struct {
        long long total, per_page, pages;
    } cases[] = {{0, 50, 0}, {1, 50, 1}, {50, 50, 1}, {51, 50, 2}, {54, 10, 6}, {100, 100, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct page p = {1, cases[i].per_page};
        json_t *o = json_object();
        page_annotate(o, &p, cases[i].total);
        CHECK(json_integer_value(json_object_get(o, "pages")) == cases[i].pages);
        CHECK(json_integer_value(json_object_get(o, "total")) == cases[i].total);
        CHECK(json_integer_value(json_object_get(o, "per_page")) == cases[i].per_page);
        CHECK(json_integer_value(json_object_get(o, "page")) == 1);
        json_decref(o);
    }
    UNIT_END("pagination");
}
