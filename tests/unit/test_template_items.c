/*
 * test_template_items.c: template items from CSV, csv_items normalisation, and
 * the items back out as CSV.
 *
 * Uploaded CSV is the least trustworthy input setforge takes, so the failure
 * cases (ragged rows, bad quoting, limits, bad bytes) get as many checks as
 * the happy ones, and every message is checked word for word: clients show
 * them to people.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/template_items.h"
#include "util/xalloc.h"

#define PARSE_ERR "error parsing data while strict checking enabled"

static char err[512];
static json_t *cols, *items;

/* Imports text (strlen) into the globals; on failure they stay NULL. */
static sf_status imp(const char *text)
{
    cols = items = NULL;
    err[0] = '\0';
    return template_items_from_csv(text, strlen(text), &cols, &items, err, sizeof err);
}

static sf_status impn(const char *text, size_t len)
{
    cols = items = NULL;
    err[0] = '\0';
    return template_items_from_csv(text, len, &cols, &items, err, sizeof err);
}

static sf_status norm(const json_t *in)
{
    cols = items = NULL;
    err[0] = '\0';
    return template_items_normalize(in, &cols, &items, err, sizeof err);
}

static void drop(void)
{
    json_decref(cols);
    json_decref(items);
    cols = items = NULL;
}

/* Compact JSON with keys in insertion order, so order is checked too. */
static char dumped[65536];
static const char *dump(const json_t *j)
{
    if (!j)
        return "(null)";
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(dumped, sizeof dumped, "%s", s ? s : "(unprintable)");
    free(s);
    return dumped;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, e.text);
    return j;
}

static void test_basic(void)
{
    CHECK(imp("rank,suit\nA,spades\n10,hearts\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"rank\",\"suit\"]");
    CHECK_STR(dump(items), "[{\"rank\":\"A\",\"suit\":\"spades\"},"
                           "{\"rank\":\"10\",\"suit\":\"hearts\"}]");
    drop();

    /* No newline after the last row, CRLF, lone CR. */
    CHECK(imp("a,b\r\n1,2\r\n3,4") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"1\",\"b\":\"2\"},{\"a\":\"3\",\"b\":\"4\"}]");
    drop();
    CHECK(imp("a,b\r1,2\r3,4\r") == SF_OK);
    CHECK(json_array_size(items) == 2);
    drop();

    /* Header only: columns but no items. */
    CHECK(imp("a,b\r\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"a\",\"b\"]");
    CHECK_STR(dump(items), "[]");
    drop();
    CHECK(imp("only") == SF_OK);
    CHECK_STR(dump(cols), "[\"only\"]");
    CHECK_STR(dump(items), "[]");
    drop();

    /* Empty fields are empty strings. */
    CHECK(imp("a,b,c\n,,\n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"\",\"b\":\"\",\"c\":\"\"}]");
    drop();
}

static void test_quoting(void)
{
    CHECK(imp("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"x, y\",\"b\":\"say \\\"hi\\\"\"}]");
    drop();

    /* Embedded newlines keep their exact bytes, CRLF included. */
    CHECK(imp("a,b\r\n\"line1\r\nline2\",\"x\ny\"\r\n2,3\r\n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"line1\\r\\nline2\",\"b\":\"x\\ny\"},"
                           "{\"a\":\"2\",\"b\":\"3\"}]");
    drop();

    /* Quoted header names; a quoted empty value; a lone quoted quote. */
    CHECK(imp("\"a,1\",\"b\"\n\"\",\"\"\"\"\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"a,1\",\"b\"]");
    CHECK_STR(dump(items), "[{\"a,1\":\"\",\"b\":\"\\\"\"}]");
    drop();

    /* A one-column CSV whose value is empty must be quoted to count. */
    CHECK(imp("a\n\"\"\n\nx\n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"\"},{\"a\":\"x\"}]");
    drop();
}

static void test_whitespace_and_bom(void)
{
    /* Header names are trimmed; values are not. */
    CHECK(imp(" a \t,\tb \n 1 , 2 \n") == SF_OK);
    CHECK_STR(dump(cols), "[\"a\",\"b\"]");
    CHECK_STR(dump(items), "[{\"a\":\" 1 \",\"b\":\" 2 \"}]");
    drop();

    /* Blank lines anywhere are skipped, before the header too. */
    CHECK(imp("\n\r\n\na,b\n\n1,2\r\n\r\n\r\n3,4\n\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"a\",\"b\"]");
    CHECK(json_array_size(items) == 2);
    drop();

    /* A line of spaces is not blank: it is a one-field record. */
    CHECK(imp("a\n  \n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"  \"}]");
    drop();
    CHECK(imp("a,b\n1,2\n  \n") == SF_EINVAL);
    CHECK_STR(err, "row 3 has 1 field; the header has 2");

    CHECK(imp("\xEF\xBB\xBFname,suit\nA,x\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"name\",\"suit\"]");
    drop();
    /* Only a leading BOM is special. */
    CHECK(imp("a\n\xEF\xBB\xBFx\n") == SF_OK);
    CHECK_STR(dump(items), "[{\"a\":\"\xEF\xBB\xBFx\"}]");
    drop();
}

static void test_utf8(void)
{
    CHECK(imp("名前,suit\n\"\xC4\x80\xE2\x99\xA0 \xE7\x8E\x8B\",\xE2\x99\xA5\n") == SF_OK);
    CHECK_STR(dump(cols), "[\"名前\",\"suit\"]");
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "名前")),
              "Ā♠ 王");
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "suit")), "♥");
    drop();

    CHECK(imp("a,b\n1,\xFF\n") == SF_EINVAL);
    CHECK_STR(err, "row 2, column \"b\" is not valid UTF-8");
    CHECK(cols == NULL && items == NULL);
    CHECK(imp("a,b\n1,\xC3\n") == SF_EINVAL); /* truncated sequence */
    CHECK_STR(err, "row 2, column \"b\" is not valid UTF-8");
    CHECK(imp("a,\xC0\xAF\n") == SF_EINVAL); /* overlong encoding */
    CHECK_STR(err, "column 2 of the header is not valid UTF-8");

    CHECK(impn("a,b\n1,x\0y\n", 10) == SF_EINVAL);
    CHECK_STR(err, "row 2, column \"b\" contains a NUL byte");
    CHECK(impn("a,\0\n", 4) == SF_EINVAL);
    CHECK_STR(err, "column 2 of the header contains a NUL byte");
}

static void test_header_errors(void)
{
    CHECK(imp("") == SF_EINVAL);
    CHECK_STR(err, "the CSV has no header row");
    CHECK(imp("\n\r\n\n") == SF_EINVAL);
    CHECK_STR(err, "the CSV has no header row");
    CHECK(imp("\xEF\xBB\xBF") == SF_EINVAL);
    CHECK_STR(err, "the CSV has no header row");
    CHECK(template_items_from_csv(NULL, 0, &cols, &items, err, sizeof err) == SF_EINVAL);
    CHECK_STR(err, "the CSV has no header row");

    CHECK(imp("a,,c\n1,2,3\n") == SF_EINVAL);
    CHECK_STR(err, "column 2 of the header is empty");
    CHECK(imp("a, \t ,c\n") == SF_EINVAL);
    CHECK_STR(err, "column 2 of the header is empty");
    CHECK(imp("\"\",b\n") == SF_EINVAL);
    CHECK_STR(err, "column 1 of the header is empty");
    CHECK(imp("a,b,\n") == SF_EINVAL);
    CHECK_STR(err, "column 3 of the header is empty");

    CHECK(imp("rank,suit,rank\n") == SF_EINVAL);
    CHECK_STR(err, "the header names column \"rank\" twice");
    CHECK(imp("rank, rank \n") == SF_EINVAL); /* equal once trimmed */
    CHECK_STR(err, "the header names column \"rank\" twice");
    CHECK(imp("Rank,rank\n1,2\n") == SF_OK); /* names are case-sensitive */
    drop();
}

static void test_ragged(void)
{
    CHECK(imp("a,b,c\n1,2,3\n4,5\n") == SF_EINVAL);
    CHECK_STR(err, "row 3 has 2 fields; the header has 3");
    CHECK(cols == NULL && items == NULL);
    CHECK(imp("a,b,c\n1,2,3,4\n") == SF_EINVAL);
    CHECK_STR(err, "row 2 has 4 fields; the header has 3");
    CHECK(imp("a,b\n1\n") == SF_EINVAL);
    CHECK_STR(err, "row 2 has 1 field; the header has 2");
    /* The last row, without a line end, is checked too. */
    CHECK(imp("a,b\n1,2\n3") == SF_EINVAL);
    CHECK_STR(err, "row 3 has 1 field; the header has 2");
    /* Blank lines do not count as rows. */
    CHECK(imp("\na,b\n\n1,2\r\n\r\n3\n") == SF_EINVAL);
    CHECK_STR(err, "row 3 has 1 field; the header has 2");
    /* A row spanning lines counts once. */
    CHECK(imp("a,b\n\"x\ny\nz\",1\n2\n") == SF_EINVAL);
    CHECK_STR(err, "row 3 has 1 field; the header has 2");
    /* A trailing comma is one more (empty) field. */
    CHECK(imp("a,b\n1,2,\n") == SF_EINVAL);
    CHECK_STR(err, "row 2 has 3 fields; the header has 2");
}

static void test_bad_quoting(void)
{
    /* 'c' after the closing quote is byte 12 (1-based) of the text. */
    CHECK(imp("h1,h2\na,\"b\"c\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 12: " PARSE_ERR);
    CHECK(cols == NULL && items == NULL);
    /* Byte numbers count the BOM, as the user's file does. */
    CHECK(imp("\xEF\xBB\xBFh1,h2\na,\"b\"c\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 15: " PARSE_ERR);
    /* A quote inside an unquoted field. */
    CHECK(imp("a,b\n1,x\"y\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 8: " PARSE_ERR);
    /* A quote after a space: strict RFC 4180, the space is field content. */
    CHECK(imp("a,b\n1, \"y\"\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 8: " PARSE_ERR);
    /* In the header. */
    CHECK(imp("a\"b\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 2: " PARSE_ERR);

    /* An unclosed quote runs to the end; the row is where it opened. */
    CHECK(imp("h\n\"abc") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 6: " PARSE_ERR
                   " (row 2 has a quoted field that is never closed)");
    CHECK(imp("a,b\n1,\"never closed\n2,3\n") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 24: " PARSE_ERR
                   " (row 2 has a quoted field that is never closed)");
    CHECK(imp("\"") == SF_EINVAL);
    CHECK_STR(err, "CSV parse error near byte 1: " PARSE_ERR
                   " (row 1 has a quoted field that is never closed)");
}

static void test_err_buffer(void)
{
    char tiny[1] = {'x'};
    cols = items = NULL;
    CHECK(template_items_from_csv("a,a", 3, &cols, &items, tiny, sizeof tiny) == SF_EINVAL);
    CHECK(tiny[0] == '\0');
    char small[8];
    CHECK(template_items_from_csv("a,a", 3, &cols, &items, small, sizeof small) == SF_EINVAL);
    CHECK_STR(small, "the hea");

    /* Outputs are left alone on failure. */
    json_t *sentinel = json_array();
    json_t *c = sentinel, *i = sentinel;
    CHECK(template_items_from_csv("a,b\n1\n", 6, &c, &i, err, sizeof err) == SF_EINVAL);
    CHECK(c == sentinel && i == sentinel);
    CHECK(template_items_normalize(sentinel, &c, &i, err, sizeof err) == SF_OK);
    json_decref(c);
    json_decref(i);
    c = i = sentinel;
    json_t *bad = parse("[1]");
    CHECK(template_items_normalize(bad, &c, &i, err, sizeof err) == SF_EINVAL);
    CHECK(c == sentinel && i == sentinel);
    json_decref(bad);
    json_decref(sentinel);
}

/* n data rows of "i,x" under a two-column header. */
static char *rows_csv(size_t n)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "n,x\r\n");
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%zu,x\r\n", i);
    return sb_detach(&sb, NULL);
}

/* A header of n columns c0..c(n-1) and one row of values. */
static char *cols_csv(size_t n)
{
    struct strbuf sb;
    sb_init(&sb);
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%sc%zu", i ? "," : "", i);
    sb_puts(&sb, "\n");
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%sv%zu", i ? "," : "", i);
    sb_puts(&sb, "\n");
    return sb_detach(&sb, NULL);
}

static char *repeat(char ch, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

static void test_limits(void)
{
    char *t = rows_csv(TEMPLATE_ITEMS_MAX);
    CHECK(imp(t) == SF_OK);
    CHECK(json_array_size(items) == TEMPLATE_ITEMS_MAX);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 9999), "n")), "9999");
    drop();
    free(t);
    t = rows_csv(TEMPLATE_ITEMS_MAX + 1);
    CHECK(imp(t) == SF_EINVAL);
    CHECK_STR(err, "the CSV has more than 10000 data rows; the limit is 10000");
    free(t);

    t = cols_csv(TEMPLATE_ITEMS_MAX_COLUMNS);
    CHECK(imp(t) == SF_OK);
    CHECK(json_array_size(cols) == TEMPLATE_ITEMS_MAX_COLUMNS);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "c63")), "v63");
    drop();
    free(t);
    t = cols_csv(TEMPLATE_ITEMS_MAX_COLUMNS + 1);
    CHECK(imp(t) == SF_EINVAL);
    CHECK_STR(err, "the header has more than 64 columns; the limit is 64");
    free(t);

    char *v = repeat('v', TEMPLATE_ITEMS_MAX_FIELD);
    t = xasprintf("a,b\n1,%s\n", v);
    CHECK(imp(t) == SF_OK);
    CHECK(json_string_length(json_object_get(json_array_get(items, 0), "b")) == TEMPLATE_ITEMS_MAX_FIELD);
    drop();
    free(t);
    t = xasprintf("a,b\n1,2\n3,\"%sv\"\n", v);
    CHECK(imp(t) == SF_EINVAL);
    CHECK_STR(err, "row 3, column \"b\" is 4001 bytes long; the limit is 4000");
    free(t);
    t = xasprintf("a,%s\n", v);
    CHECK(imp(t) == SF_OK);
    drop();
    free(t);
    t = xasprintf("a,%sv\n", v);
    CHECK(imp(t) == SF_EINVAL);
    CHECK_STR(err, "column 2 of the header is 4001 bytes long; the limit is 4000");
    free(t);
    free(v);

    /* A huge field is refused without being read to its end. */
    v = repeat('v', 300000);
    t = xasprintf("a\n1\n\"%s\"\n", v);
    CHECK(imp(t) == SF_EINVAL);
    CHECK_STR(err, "row 3 has a field longer than 4000 bytes");
    free(t);
    free(v);
}

static void test_normalize(void)
{
    json_t *in = parse("[{\"rank\":\"A\",\"suit\":\"\xE2\x99\xA0\"},"
                       "{\"rank\":7,\"extra\":1.5},"
                       "{\"suit\":null},"
                       "{}]");
    CHECK(norm(in) == SF_OK);
    CHECK_STR(dump(cols), "[\"rank\",\"suit\",\"extra\"]");
    CHECK_STR(dump(items), "[{\"rank\":\"A\",\"suit\":\"♠\",\"extra\":\"\"},"
                           "{\"rank\":\"7\",\"suit\":\"\",\"extra\":\"1.5\"},"
                           "{\"rank\":\"\",\"suit\":\"\",\"extra\":\"\"},"
                           "{\"rank\":\"\",\"suit\":\"\",\"extra\":\"\"}]");
    /* The input is borrowed: untouched. */
    CHECK(json_integer_value(json_object_get(json_array_get(in, 1), "rank")) == 7);
    drop();
    json_decref(in);

    /* Item key order does not change column order once a key is seen. */
    in = parse("[{\"b\":\"1\",\"a\":\"2\"},{\"a\":\"3\",\"c\":\"4\",\"b\":\"5\"}]");
    CHECK(norm(in) == SF_OK);
    CHECK_STR(dump(cols), "[\"b\",\"a\",\"c\"]");
    CHECK_STR(dump(items), "[{\"b\":\"1\",\"a\":\"2\",\"c\":\"\"},"
                           "{\"b\":\"5\",\"a\":\"3\",\"c\":\"4\"}]");
    drop();
    json_decref(in);

    in = parse("[{\"i\":-42,\"big\":9007199254740993,\"r1\":0.1,\"r2\":-2.5,"
               "\"r3\":3.0,\"r4\":1e20,\"r5\":1.0e-7,\"r6\":0.30000000000000004}]");
    CHECK(norm(in) == SF_OK);
    json_t *o = json_array_get(items, 0);
    CHECK_STR(json_string_value(json_object_get(o, "i")), "-42");
    CHECK_STR(json_string_value(json_object_get(o, "big")), "9007199254740993");
    CHECK_STR(json_string_value(json_object_get(o, "r1")), "0.1");
    CHECK_STR(json_string_value(json_object_get(o, "r2")), "-2.5");
    CHECK_STR(json_string_value(json_object_get(o, "r3")), "3");
    CHECK_STR(json_string_value(json_object_get(o, "r4")), "1e+20");
    CHECK_STR(json_string_value(json_object_get(o, "r5")), "1e-07");
    CHECK_STR(json_string_value(json_object_get(o, "r6")), "0.30000000000000004");
    drop();
    json_decref(in);

    in = parse("[]");
    CHECK(norm(in) == SF_OK);
    CHECK_STR(dump(cols), "[]");
    CHECK_STR(dump(items), "[]");
    drop();
    json_decref(in);
}

/* norm(parse(text)) must fail with message want. */
static void norm_rejects(const char *text, const char *want)
{
    json_t *in = parse(text);
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, want);
    CHECK(cols == NULL && items == NULL);
    json_decref(in);
}

static void test_normalize_errors(void)
{
    CHECK(norm(NULL) == SF_EINVAL);
    CHECK_STR(err, "csv_items must be an array of objects");
    norm_rejects("{\"a\":\"1\"}", "csv_items must be an array of objects");
    norm_rejects("\"a,b\\n1,2\"", "csv_items must be an array of objects");
    norm_rejects("[{\"a\":\"1\"},{\"a\":\"2\"},{\"a\":\"3\"},5]", "csv_items[3] is not an object");
    norm_rejects("[[\"a\"]]", "csv_items[0] is not an object");
    norm_rejects("[null]", "csv_items[0] is not an object");
    norm_rejects("[{\"a\":\"1\"},{\"a\":\"2\",\"flag\":true}]",
                 "csv_items[1][\"flag\"] is a boolean; values must be strings, numbers or null");
    norm_rejects("[{\"a\":false}]",
                 "csv_items[0][\"a\"] is a boolean; values must be strings, numbers or null");
    norm_rejects("[{\"a\":{\"b\":\"c\"}}]",
                 "csv_items[0][\"a\"] is an object; values must be strings, numbers or null");
    norm_rejects("[{\"a\":[1,2]}]",
                 "csv_items[0][\"a\"] is an array; values must be strings, numbers or null");
    norm_rejects("[{\"a\":\"1\"},{\"\":\"x\"}]", "csv_items[1] has an empty key");
    norm_rejects("[{\" a\":\"1\"}]", "csv_items[0] key \" a\" starts or ends with a space "
                                     "or tab; column names may not");
    norm_rejects("[{\"a\\t\":\"1\"}]", "csv_items[0] key \"a\t\" starts or ends with a space "
                                       "or tab; column names may not");

    /* NULs that jansson can hold but a CSV cell cannot. */
    json_t *in = json_pack("[{s:o}]", "a", json_stringn("x\0y", 3));
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items[0][\"a\"] contains a NUL byte");
    json_decref(in);
    json_t *obj = json_object();
    json_object_setn_new(obj, "k\0z", 3, json_string("v"));
    in = json_pack("[o]", obj);
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items[0] has a key containing a NUL byte");
    json_decref(in);
}

static void test_normalize_limits(void)
{
    json_t *in = json_array();
    for (int i = 0; i < TEMPLATE_ITEMS_MAX; i++)
        json_array_append_new(in, json_pack("{s:i}", "n", i));
    CHECK(norm(in) == SF_OK);
    CHECK(json_array_size(items) == TEMPLATE_ITEMS_MAX);
    drop();
    json_array_append_new(in, json_pack("{s:i}", "n", 1));
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items has 10001 items; the limit is 10000");
    json_decref(in);

    /* 64 distinct keys spread over items are fine; a 65th is not. */
    in = json_array();
    for (int i = 0; i < TEMPLATE_ITEMS_MAX_COLUMNS; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        json_array_append_new(in, json_pack("{s:s}", key, "v"));
    }
    CHECK(norm(in) == SF_OK);
    CHECK(json_array_size(cols) == TEMPLATE_ITEMS_MAX_COLUMNS);
    CHECK(json_object_size(json_array_get(items, 0)) == TEMPLATE_ITEMS_MAX_COLUMNS);
    drop();
    json_array_append_new(in, json_pack("{s:s}", "one-more", "v"));
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items has more than 64 distinct keys; the limit is 64");
    json_decref(in);

    char *v = repeat('v', TEMPLATE_ITEMS_MAX_FIELD);
    in = json_pack("[{s:s}]", "a", v);
    CHECK(norm(in) == SF_OK);
    drop();
    json_decref(in);
    free(v);
    v = repeat('v', TEMPLATE_ITEMS_MAX_FIELD + 1);
    in = json_pack("[{s:s}]", "a", v);
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items[0][\"a\"] is 4001 bytes long; the limit is 4000");
    json_decref(in);
    in = json_pack("[{s:s}]", v, "x");
    CHECK(norm(in) == SF_EINVAL);
    CHECK_STR(err, "csv_items[0] has a key of 4001 bytes; the limit is 4000");
    json_decref(in);
    free(v);
}

static void test_export(void)
{
    json_t *c = parse("[\"a\",\"b\"]");
    json_t *i = parse("[{\"a\":\"1\",\"b\":\"x\\\"y\"},{\"b\":\"only b\"},"
                      "{\"a\":7,\"b\":null}]");
    size_t len = 0;
    char *out = template_items_to_csv(c, i, &len);
    CHECK_STR(out, "\"a\",\"b\"\r\n"
                   "\"1\",\"x\"\"y\"\r\n"
                   "\"\",\"only b\"\r\n"
                   "\"7\",\"\"\r\n");
    CHECK(len == strlen(out));
    free(out);
    json_decref(i);

    /* No items: just the header. */
    i = json_array();
    out = template_items_to_csv(c, i, &len);
    CHECK_STR(out, "\"a\",\"b\"\r\n");
    free(out);
    json_decref(i);
    json_decref(c);

    /* No columns: nothing at all. */
    c = json_array();
    i = parse("[{}]");
    out = template_items_to_csv(c, i, &len);
    CHECK_STR(out, "");
    CHECK(len == 0);
    free(out);
    out = template_items_to_csv(NULL, NULL, NULL);
    CHECK_STR(out, "");
    free(out);
    json_decref(i);
    json_decref(c);
}

/* export -> import gives back the same pair. */
static void check_round_trip(const json_t *c, const json_t *i)
{
    size_t len;
    char *out = template_items_to_csv(c, i, &len);
    CHECK(impn(out, len) == SF_OK);
    CHECK(json_equal(cols, (json_t *)c));
    CHECK(json_equal(items, (json_t *)i));
    /* json_equal ignores key order; the column order must hold too. */
    char *want = json_dumps(c, JSON_COMPACT);
    CHECK_STR(dump(cols), want);
    free(want);
    drop();
    free(out);
}

static void test_round_trip(void)
{
    static const char *values[] = {
        "",         " lead",      "trail ",         "  ",      "a,b",
        "\"q\"",    "\"",         ",",              "\n",      "\r",
        "\r\n",     "line1\nline2", "cr\r\nlf",     "Ā♠ 王",  "\357\273\277bom",
        "{rank}",   "\t tab",     "a\"\"b",         "x,\"y\"\nz", "''",
    };
    size_t n = sizeof values / sizeof values[0];
    json_t *c = parse("[\"plain\",\"with, comma\",\"say \\\"x\\\"\",\"multi\\nline\","
                      "\"Ā♠ 王\"]");
    json_t *i = json_array();
    for (size_t k = 0; k < n; k++) {
        json_t *o = json_object();
        for (size_t col = 0; col < json_array_size(c); col++)
            json_object_set_new(o, json_string_value(json_array_get(c, col)),
                                json_string(values[(k + col) % n]));
        json_array_append_new(i, o);
    }
    check_round_trip(c, i);
    json_decref(i);

    /* One column whose only value is empty survives: export quotes it. */
    json_decref(c);
    c = parse("[\"a\"]");
    i = parse("[{\"a\":\"\"},{\"a\":\"x\"},{\"a\":\"\"}]");
    check_round_trip(c, i);
    json_decref(i);
    json_decref(c);

    /* Through normalise too: numbers come back as their text. */
    json_t *in = parse("[{\"n\":1.5,\"s\":\"x\"},{\"s\":\"a,\\\"b\\\"\",\"m\":null}]");
    CHECK(norm(in) == SF_OK);
    c = cols;
    i = items;
    cols = items = NULL;
    check_round_trip(c, i);
    json_decref(c);
    json_decref(i);
    json_decref(in);

    /* And import -> export -> import of a file with a BOM and CRLF. */
    CHECK(imp("\xEF\xBB\xBF h1 ,h2\r\n\"a\r\nb\",\"\"\"\"\r\n\r\nc, d \r\n") == SF_OK);
    c = cols;
    i = items;
    cols = items = NULL;
    check_round_trip(c, i);
    json_decref(c);
    json_decref(i);
}

int main(void)
{
    test_basic();
    test_quoting();
    test_whitespace_and_bom();
    test_utf8();
    test_header_errors();
    test_ragged();
    test_bad_quoting();
    test_err_buffer();
    test_limits();
    test_normalize();
    test_normalize_errors();
    test_normalize_limits();
    test_export();
    test_round_trip();
    UNIT_END("template_items");
}
