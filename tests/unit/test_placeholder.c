/*
 * test_placeholder.c: checking and rendering `{column}` placeholders.
 *
 * The check runs when a template is saved and the render when a run is
 * generated, so a template that passes the check must render as the user
 * expects; the brace edge cases below are exercised through both.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/placeholder.h"

static char err[512];
static json_t *columns; /* rank, suit */
static json_t *item;    /* rank=A, suit=♠, n=7 */

static sf_status check(const char *tmpl)
{
    err[0] = '\0';
    return placeholders_check(tmpl, columns, err, sizeof err);
}

/* Renders with item and theme "space"; compares and frees. */
static int renders(const char *tmpl, const char *want)
{
    char *got = placeholders_render(tmpl, item, "space");
    int ok = got && strcmp(got, want) == 0;
    if (!ok)
        fprintf(stderr, "render \"%s\": want \"%s\", got \"%s\"\n", tmpl, want,
                got ? got : "(null)");
    free(got);
    return ok;
}

static void test_known(void)
{
    CHECK(check("A {rank} of {suit}") == SF_OK);
    CHECK(check("{theme}") == SF_OK);
    CHECK(check("{rank}{suit}{theme}") == SF_OK);
    CHECK(check("{ rank }, {  suit\t}, { theme }") == SF_OK);
    CHECK(check("no placeholders at all") == SF_OK);
    CHECK(check("") == SF_OK);
    CHECK(check(NULL) == SF_OK);
    CHECK(placeholders_check("{theme} only", NULL, err, sizeof err) == SF_OK);

    CHECK(renders("A {rank} of {suit}", "A A of ♠"));
    CHECK(renders("{theme}: {rank}", "space: A"));
    CHECK(renders("{ rank }|{\tsuit }|{  theme  }", "A|♠|space"));
    CHECK(renders("", ""));
    CHECK(renders("plain text", "plain text"));
    CHECK(renders("Ā♠ 王 {rank}", "Ā♠ 王 A"));
}

static void test_unknown(void)
{
    CHECK(check("{colour} card") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {colour}; columns are: rank, suit");
    CHECK(check("{colour} {rank} {size} {colour} {size}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholders {colour}, {size}; columns are: rank, suit");
    /* Listed trimmed, so { x } and {x} are one name. */
    CHECK(check("{ x } {x} {y}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholders {x}, {y}; columns are: rank, suit");
    /* Names are case-sensitive and exact. */
    CHECK(check("{Rank} {ranks} {Theme}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholders {Rank}, {ranks}, {Theme}; columns are: rank, suit");
    CHECK(check("{}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {}; columns are: rank, suit");
    CHECK(check("{ } and {} and {\t}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {}; columns are: rank, suit");
    CHECK(check("{a b} {} {rank}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholders {a b}, {}; columns are: rank, suit");
    /* A JSON-looking snippet is a placeholder, as in Python; {{ }} escape it. */
    CHECK(check("like {\"a\": 1}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {\"a\": 1}; columns are: rank, suit");
    CHECK(check("like {{\"a\": 1}}") == SF_OK);

    /* Unknown names render as nothing. */
    CHECK(renders("[{colour}][{}][{ }]", "[][][]"));
}

static void test_no_columns(void)
{
    json_t *none = json_array();
    err[0] = '\0';
    CHECK(placeholders_check("{rank}", none, err, sizeof err) == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {rank}; columns are: (none)");
    err[0] = '\0';
    CHECK(placeholders_check("{a}{b}", NULL, err, sizeof err) == SF_EINVAL);
    CHECK_STR(err, "unknown placeholders {a}, {b}; columns are: (none)");
    CHECK(placeholders_check("{theme}", none, err, sizeof err) == SF_OK);
    json_decref(none);
}

static void test_braces(void)
{
    CHECK(check("{{literal}}") == SF_OK);
    CHECK(renders("{{literal}}", "{literal}"));
    CHECK(check("{{rank}}") == SF_OK);
    CHECK(renders("{{rank}}", "{rank}"));
    CHECK(renders("{{{rank}}}", "{A}"));
    CHECK(renders("{{}}", "{}"));
    CHECK(check("{{}}") == SF_OK);
    CHECK(renders("a }} b {{ c", "a } b { c"));

    /* An unclosed '{' is literal text. */
    CHECK(check("open { brace") == SF_OK);
    CHECK(renders("open { brace", "open { brace"));
    CHECK(check("trailing {") == SF_OK);
    CHECK(renders("trailing {", "trailing {"));
    CHECK(check("{unclosed rank") == SF_OK);
    CHECK(renders("{rank} then {", "A then {"));
    /* ...also when another '{' comes before any '}'. */
    CHECK(check("{a{rank}") == SF_OK);
    CHECK(renders("{a{rank}", "{aA"));
    CHECK(check("{a{colour}") == SF_EINVAL);
    CHECK_STR(err, "unknown placeholder {colour}; columns are: rank, suit");

    /* A lone '}' is literal text too. */
    CHECK(check("a } b") == SF_OK);
    CHECK(renders("a } b", "a } b"));
    CHECK(renders("{rank}}", "A}"));
    CHECK(renders("}{rank}", "}A"));
}

static void test_render_values(void)
{
    /* Missing keys, non-strings and unknown names give "". */
    CHECK(renders("[{n}][{missing}]", "[][]"));
    /* Values are not expanded again. */
    json_t *tricky = json_pack("{s:s}", "rank", "{suit} {{x}}");
    char *got = placeholders_render("<{rank}>", tricky, NULL);
    CHECK_STR(got, "<{suit} {{x}}>");
    free(got);
    json_decref(tricky);

    /* NULL theme renders as ""; theme wins over a column called theme. */
    got = placeholders_render("[{theme}]", item, NULL);
    CHECK_STR(got, "[]");
    free(got);
    json_t *with_theme = json_pack("{s:s}", "theme", "column");
    got = placeholders_render("{theme}", with_theme, "argument");
    CHECK_STR(got, "argument");
    free(got);
    json_decref(with_theme);

    /* No item at all: columns render as "", theme still works. */
    got = placeholders_render("{rank}/{theme}", NULL, "t");
    CHECK_STR(got, "/t");
    free(got);
    got = placeholders_render(NULL, item, "t");
    CHECK_STR(got, "");
    free(got);

    /* A value with an embedded NUL is copied by length, not cut. */
    json_t *nul = json_object();
    json_object_set_new(nul, "rank", json_stringn("a\0b", 3));
    got = placeholders_render("{rank}!", nul, NULL);
    CHECK(got && memcmp(got, "a\0b!", 5) == 0);
    free(got);
    json_decref(nul);
}

static void test_err_buffer(void)
{
    char tiny[1] = {'x'};
    CHECK(placeholders_check("{x}", columns, tiny, sizeof tiny) == SF_EINVAL);
    CHECK(tiny[0] == '\0');
    char small[10];
    CHECK(placeholders_check("{x}", columns, small, sizeof small) == SF_EINVAL);
    CHECK_STR(small, "unknown p");
    CHECK(placeholders_check("{x}", columns, NULL, 0) == SF_EINVAL);
}

int main(void)
{
    columns = json_pack("[s,s]", "rank", "suit");
    item = json_pack("{s:s,s:s,s:i}", "rank", "A", "suit", "♠", "n", 7);
    test_known();
    test_unknown();
    test_no_columns();
    test_braces();
    test_render_values();
    test_err_buffer();
    json_decref(columns);
    json_decref(item);
    UNIT_END("placeholder");
}
