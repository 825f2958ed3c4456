/*
 * oneline.c: one_line(), the single "collapse this text to one line" of the
 * daemon (it used to be written out in registry.c and command.c).
 */
#include "util/oneline.h"

size_t one_line(const char *s, size_t n, char *dst, size_t dstlen)
{
    size_t o = 0;
    int space = 0;
    if (dstlen == 0)
        return 0;
    for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            space = o > 0;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f)
            ch = '?';
        /* The space only when the character after it fits too. */
        if (space && o + 2 < dstlen)
            dst[o++] = ' ';
        space = 0;
        dst[o++] = (char)ch;
    }
    dst[o] = '\0';
    return o;
}
