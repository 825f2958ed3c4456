/*
 * progress.h: the one-line progress bar of `setforge generate --wait`, and
 * the durations it shows. Pure functions of their arguments, so that the
 * exact text can be unit-tested; the caller decides when to draw it (only
 * on a terminal) and where.
 */
#ifndef SF_CLI_PROGRESS_H
#define SF_CLI_PROGRESS_H

#include <stddef.h>

/* "45s", "3m05s", "2h07m"; "?" for a negative (unknown) time. */
void progress_duration(char *buf, size_t len, double seconds);

/*
 * The bar, e.g. "[#########-----------]  9/20 done  1 failed  ETA 1m05s":
 * width characters of bar, done and failed items (failed ones count toward
 * the filled part: they are settled), and the ETA (omitted when eta_s < 0,
 * the API's null: paused or not known yet). Written into buf, cut to len.
 */
void progress_line(char *buf, size_t len, int width, long long done, long long failed,
                   long long total, double eta_s);

#endif
