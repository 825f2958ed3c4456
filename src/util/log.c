/*
 * log.c: stderr logging. Each message is formatted into one buffer and
 * written with a single write(2), so lines from different threads never
 * interleave.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/timeutil.h"

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    char ts[32];
    now_rfc3339(ts);
    int n = snprintf(line, sizeof(line), "%s %s ", ts, level);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return;
    size_t len = strlen(line);
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
