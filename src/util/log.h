/*
 * log.h: one-line log messages to stderr, with a UTC timestamp.
 */
#ifndef SF_LOG_H
#define SF_LOG_H

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
