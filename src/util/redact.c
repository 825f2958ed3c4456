/*
 * redact.c: URLs and absolute paths out of public error texts (redact.h).
 */
#include "util/redact.h"

#include <ctype.h>
#include <string.h>

#include "util/xalloc.h"

/* Characters that end a URL or a path inside a sentence. */
static int ends_token(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == '"' || c == '\'' || c == ')' ||
           c == ']' || c == '>' || c == ',' || c == ';';
}

/* 1 when a word starts at s (the text before is a boundary). */
static int word_start(const char *start, const char *s)
{
    if (s == start)
        return 1;
    char b = s[-1];
    return isspace((unsigned char)b) || b == '"' || b == '\'' || b == '(' || b == '[' || b == '=' ||
           b == '<';
}

/* Length of a URL scheme followed by "://" at s, or 0. */
static size_t scheme_len(const char *s)
{
    size_t n = 0;
    while (isalpha((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return n > 0 && strncmp(s + n, "://", 3) == 0 ? n + 3 : 0;
}

char *redact_internal(const char *s)
{
    if (!s)
        return NULL;
    struct strbuf sb;
    sb_init(&sb);
    for (const char *p = s; *p;) {
        const char *what = NULL;
        if (word_start(s, p) && scheme_len(p))
            what = "<url>";
        else if (word_start(s, p) && ((p[0] == '/' && !ends_token(p[1]) && p[1] != '/') ||
                                      (p[0] == '~' && p[1] == '/')))
            what = "<path>";
        if (!what) {
            sb_putc(&sb, *p++);
            continue;
        }
        sb_puts(&sb, what);
        while (!ends_token(*p)) {
            /* a sentence's colon or period right after the token is not part of it */
            if ((*p == ':' || *p == '.') && ends_token(p[1]))
                break;
            p++;
        }
    }
    return sb_detach(&sb, NULL);
}
