/*
 * timeutil.h: wall-clock timestamps (RFC 3339 UTC) and monotonic clocks.
 */
#ifndef SF_TIMEUTIL_H
#define SF_TIMEUTIL_H

#include <stdint.h>

/* "2025-11-04T18:46:51Z" for now, into buf (at least 21 bytes). */
void now_rfc3339(char buf[32]);
/* Unix time in milliseconds (wall clock: stored in the database). */
int64_t now_unix_ms(void);
/* Monotonic milliseconds and microseconds, for durations and timeouts. */
int64_t mono_ms(void);
int64_t mono_us(void);

#endif
