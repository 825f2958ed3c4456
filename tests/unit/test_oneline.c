/*
 * test_oneline.c: one_line() (util/oneline.c) and the error text of HTTP
 * error answers built on it (backends/errtext.c).
 *
 * Both end up inside error messages that users read in the API and in logs,
 * so the checks are word for word: what is kept, what becomes '?', and where
 * a long text is cut.
 */
#include <string.h>

#include "backends/errtext.h"
#include "unit.h"
#include "util/oneline.h"

static char buf[128];

static const char *flat(const char *s, size_t n, size_t room)
{
    memset(buf, 'Z', sizeof buf);
    one_line(s, n, buf, room);
    return buf;
}

static void test_one_line(void)
{
    CHECK_STR(flat("  a \t b\r\n\nc  ", 13, sizeof buf), "a b c");
    CHECK(one_line("  a \t b\r\n\nc  ", 13, buf, sizeof buf) == 5);
    CHECK_STR(flat("a\x01" "b\x7f", 4, sizeof buf), "a?b?");
    /* NUL is a control byte like any other: the length decides. */
    CHECK_STR(flat("a\0b", 3, sizeof buf), "a?b");
    CHECK_STR(flat("", 0, sizeof buf), "");
    CHECK_STR(flat(" \n\t ", 4, sizeof buf), "");
    /* UTF-8 passes through untouched. */
    CHECK_STR(flat("caf\xc3\xa9 \xe2\x9c\x93", 9, sizeof buf), "caf\xc3\xa9 \xe2\x9c\x93");
    /* Cut at the end; a space is written only with a character after it. */
    CHECK_STR(flat("abcdef", 6, 4), "abc");
    CHECK_STR(flat("ab cd", 5, 4), "abc");
    CHECK_STR(flat("ab cd", 5, 5), "ab c");
    CHECK_STR(flat("abc", 3, 1), "");
    memset(buf, 'Z', sizeof buf);
    CHECK(one_line("abc", 3, buf, 0) == 0 && buf[0] == 'Z');
}

static const char *etext(const char *body)
{
    http_error_text(body, body ? strlen(body) : 0, buf, sizeof buf);
    return buf;
}

static void test_error_text(void)
{
    CHECK_STR(etext(NULL), "(empty answer)");
    CHECK_STR(etext(""), "(empty answer)");
    CHECK_STR(etext("{\"detail\": \"Sampler not found\"}"), "Sampler not found");
    CHECK_STR(etext("{\"detail\": [{\"loc\": [\"body\", 0], \"msg\": \"Expecting value\"}]}"),
              "body.0: Expecting value");
    CHECK_STR(etext("{\"detail\": [{\"type\": \"x\"}]}"), "invalid request");
    CHECK_STR(etext("{\"error\": \"server_error\", \"message\": \"invalid JSON body\"}"),
              "invalid JSON body");
    CHECK_STR(etext("{\"error\": {\"message\": \"bad\\nthing\", \"type\": \"x\"}}"), "bad thing");
    CHECK_STR(etext("{\"error\": \"OutOfMemoryError\", \"errors\": \"CUDA out of memory\"}"),
              "OutOfMemoryError: CUDA out of memory");
    CHECK_STR(etext("{\"errors\": \"only the text\"}"), "only the text");
    CHECK_STR(etext("{\"error\": \"just a name\"}"), "just a name");
    /* JSON without any of those: shown as text. */
    CHECK_STR(etext("{\"ok\": false}"), "{\"ok\": false}");
    CHECK_STR(etext("[1, 2]"), "[1, 2]");
    CHECK_STR(etext("Internal Server Error\n\nTraceback"), "Internal Server Error Traceback");
    /* A body is not a string: its length counts, and a NUL ends the text. */
    http_error_text("bad\0gateway", 11, buf, sizeof buf);
    CHECK_STR(buf, "bad");
    http_error_text("bad gateway", 3, buf, sizeof buf);
    CHECK_STR(buf, "bad");
    /* A long page: its start, cut to the buffer. */
    char page[1000];
    memset(page, 'x', sizeof page - 1);
    page[sizeof page - 1] = '\0';
    char small[16];
    http_error_text(page, strlen(page), small, sizeof small);
    CHECK(strlen(small) == 15);
    http_error_text(page, strlen(page), buf, sizeof buf);
    CHECK(strlen(buf) == sizeof buf - 1);
}

int main(void)
{
    test_one_line();
    test_error_text();
    UNIT_END("oneline");
}
