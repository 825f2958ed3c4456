/*
 * oneline.c: one_line(), the single "collapse this text to one line" of the
 * daemon (it used to be written out in registry.c and command.c).
 *
 * What comes out is valid UTF-8 whatever went in, because it ends up in the
 * API's JSON: an item's "error" that is not UTF-8 cannot be a JSON string,
 * and jansson then leaves the key out. So a byte that does not begin a whole
 * UTF-8 character (a Latin-1 page from a proxy, an answer cut at 300 bytes
 * inside a character) is a '?' like a control byte, and a text that does not
 * fit is cut between characters.
 */
#include "util/oneline.h"

#include <string.h>

/* The length of the UTF-8 character at s (n bytes left), or 0 when the bytes
 * there are not one: RFC 3629, so no overlong forms, no surrogates, nothing
 * above U+10FFFF (what jansson accepts in a string). */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

size_t one_line(const char *s, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    int space = 0;
    if (dstlen == 0)
        return 0;
    for (size_t i = 0; i < n && o + 1 < dstlen;) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            space = o > 0;
            i++;
            continue;
        }
        const char *put = s + i;
        size_t len = utf8_char_len((const unsigned char *)put, n - i);
        if (len == 0 || ch < 0x20 || ch == 0x7f) {
            put = "?";
            len = 1;
            i++;
        } else {
            i += len;
        }
        if (o + len >= dstlen)
            break; /* a character goes in whole or not at all */
        /* The space only when the character after it fits too. */
        if (space && o + len + 1 < dstlen)
            dst[o++] = ' ';
        space = 0;
        memcpy(dst + o, put, len);
        o += len;
    }
    dst[o] = '\0';
    return o;
}
