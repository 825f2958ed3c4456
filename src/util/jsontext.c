/*
 * jsontext.c: JSON string escaping (RFC 8259 section 7).
 */
#include "util/jsontext.h"

#include <string.h>

void jt_str(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(sb, '"');
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_append(sb, run, (size_t)(p - run));
        run = p + 1;
        switch (c) {
        case '"': sb_puts(sb, "\\\""); break;
        case '\\': sb_puts(sb, "\\\\"); break;
        case '\n': sb_puts(sb, "\\n"); break;
        case '\r': sb_puts(sb, "\\r"); break;
        case '\t': sb_puts(sb, "\\t"); break;
        default: {
            char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            sb_puts(sb, esc);
        }
        }
    }
    sb_append(sb, run, strlen(run));
    sb_putc(sb, '"');
}

void jt_key(struct strbuf *sb, const char *key, int first)
{
    if (!first)
        sb_putc(sb, ',');
    jt_str(sb, key);
    sb_putc(sb, ':');
}
