/*
 * xalloc.h: allocation wrappers that never return NULL, and a growable byte
 * buffer.
 *
 * Running out of memory is not an error setforge can recover from in a
 * useful way, so, like kore and redis, the wrappers abort with a message
 * instead of making every caller check. The memory limits of the HTTP layer
 * and the body limit keep requests from getting there.
 */
#ifndef SF_XALLOC_H
#define SF_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer, always NUL-terminated after len bytes. */
struct strbuf {
    char *data;
    size_t len;
    size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_append(struct strbuf *sb, const void *p, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer to the caller (who frees it) and resets sb. */
char *sb_detach(struct strbuf *sb, size_t *len_out);

#endif
