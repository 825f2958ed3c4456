/*
 * timeutil.h: wall-clock timestamps (RFC 3339 UTC) and monotonic clocks.
 */
#ifndef SF_TIMEUTIL_H
#define SF_TIMEUTIL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* "2025-11-04T18:46:51Z" for now, into buf (at least 21 bytes). */
void now_rfc3339(char buf[32]);
/* Unix time in milliseconds (wall clock: stored in the database). */
int64_t now_unix_ms(void);
/* Monotonic milliseconds and microseconds, for durations and timeouts. */
int64_t mono_ms(void);
int64_t mono_us(void);

/* Initialises cv to time its waits on the monotonic clock, so a wall-clock
 * step never shortens or stretches a timed wait. */
void cond_init_monotonic(pthread_cond_t *cv);
/* The monotonic time ms from now, for pthread_cond_timedwait on such a cv. */
struct timespec mono_deadline(int64_t ms);

#endif
