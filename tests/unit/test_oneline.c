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

/* What comes out is always valid UTF-8, because it ends up in JSON strings
 * (found by tests/fuzz/fuzz_a1111.c: an answer "{\xc2" gave an error text
 * that jansson refused, and a failed item then had no "error" at all). */
static void test_one_line_utf8(void)
{
    /* A byte that does not begin a whole character becomes '?'. */
    CHECK_STR(flat("{\xc2", 2, sizeof buf), "{?");
    CHECK_STR(flat("caf\xe9 cr\xe8me", 10, sizeof buf), "caf? cr?me"); /* Latin-1 */
    CHECK_STR(flat("\x89PNG", 4, sizeof buf), "?PNG");
    CHECK_STR(flat("a\x80\xbf" "b", 4, sizeof buf), "a??b");        /* lone continuations */
    CHECK_STR(flat("\xc0\xaf", 2, sizeof buf), "??");               /* overlong '/' */
    CHECK_STR(flat("\xe0\x80\xaf", 3, sizeof buf), "???");          /* overlong */
    CHECK_STR(flat("\xed\xa0\x80", 3, sizeof buf), "???");          /* a surrogate */
    CHECK_STR(flat("\xf4\x90\x80\x80", 4, sizeof buf), "????");     /* above U+10FFFF */
    CHECK_STR(flat("\xe2\x9c", 2, sizeof buf), "??");               /* cut short */
    CHECK_STR(flat("\xe2\x9c" "a", 3, sizeof buf), "??a");
    /* Whole characters of every length pass. */
    CHECK_STR(flat("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x8e\xa8", 9, sizeof buf),
              "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x8e\xa8");
    /* Cut between characters, never inside one. */
    CHECK_STR(flat("ab\xe2\x9c\x93", 5, 5), "ab");
    CHECK_STR(flat("ab\xe2\x9c\x93", 5, 6), "ab\xe2\x9c\x93");
    CHECK_STR(flat("a \xc3\xa9", 4, 3), "a");
    CHECK_STR(flat("a \xc3\xa9", 4, 4), "a\xc3\xa9"); /* the space gives way first */
    CHECK_STR(flat("a \xc3\xa9", 4, 5), "a \xc3\xa9");
    CHECK_STR(flat("\xc3\xa9", 2, 2), "");
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
    /* A page is shown by its first 300 bytes: the cut may fall inside a
     * character, which must not make the text invalid UTF-8. */
    char wide[1000] = "";
    for (int i = 0; i < 151; i++)
        strcat(wide, i ? "\xc3\xa9" : "x"); /* byte 300 starts an e-acute */
    char big[700];
    http_error_text(wide, strlen(wide), big, sizeof big);
    CHECK(strlen(big) == 300 && big[298] == '\xa9' && big[299] == '?');
    http_error_text("{\xc2", 2, big, sizeof big);
    CHECK_STR(big, "{?");
}

int main(void)
{
    test_one_line();
    test_one_line_utf8();
    test_error_text();
    UNIT_END("oneline");
}
