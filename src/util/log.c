/*
 * log.c: stderr logging. Each message is formatted into one buffer and
 * written with a single write(2), so lines from different threads never
 * interleave.
 *
 * Logged values come from outside (a request path with %0a decoded into a
 * newline, a server's error text with terminal escapes), so every control
 * character of a message is written as \xNN: one message is one line, and
 * nothing a client sends can forge a line or drive the operator's terminal.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/timeutil.h"

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char msg[2048];
    char line[2048];
    char ts[32];
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        return;
    now_rfc3339(ts);
    int n = snprintf(line, sizeof(line), "%s %s ", ts, level);
    if (n < 0)
        return;
    size_t len = (size_t)n;
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)msg; *p && len + 5 < sizeof(line); p++) {
        if (*p < 0x20 || *p == 0x7f) {
            line[len++] = '\\';
            line[len++] = 'x';
            line[len++] = hex[*p >> 4];
            line[len++] = hex[*p & 15];
        } else {
            line[len++] = (char)*p;
        }
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

#define DEFINE_LOG(fn, level)                                                  \
    void fn(const char *fmt, ...)                                              \
    {                                                                          \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        vlog(level, fmt, ap);                                                  \
        va_end(ap);                                                            \
    }

DEFINE_LOG(log_info, "info")
DEFINE_LOG(log_warn, "warn")
DEFINE_LOG(log_error, "error")
