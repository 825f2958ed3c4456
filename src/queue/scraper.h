/*
 * scraper.h: the threads that run scrape jobs (docs/scrape.md).
 *
 * DESIGN (like engine.h, smaller):
 *   - scrape_parallel threads, all alike. Each loops: lease a job whose
 *     page is still to fetch and fetch it (store/scrapes.h), or else lease
 *     the next download of a running job (oldest job first, page order) and
 *     fetch it, or else sleep until kicked (a new job) or a second passes.
 *     So a job's downloads run scrape_parallel at a time, and a second job
 *     waits for the first one's downloads to be handed out.
 *   - every request goes through the SSRF-safe client (backends/
 *     http_client.h with a guard: the outbound_addresses policy, 3
 *     redirects, a low-speed limit, the time and byte limits of the scrape_*
 *     settings); a refusal is recorded, never skipped silently.
 *   - an answer streams into an unnamed file in the image tree (the
 *     client's sink and store/imagefiles.h's writer, hashed on the way), so
 *     memory does not grow with the page or the image; a page is then
 *     parsed from that file in slices, an image judged by its first bytes
 *     (Content-Type image/..., magic bytes of PNG, JPEG, GIF or WebP that
 *     agree with it, the header's width and height: util/imagehead.h),
 *     linked under its SHA-256 (held until its row commits) and settled in
 *     one transaction.
 *   - leases, no heartbeat: a lease lasts scrape_timeout_s plus a minute,
 *     longer than any one request may take, so a live thread never loses
 *     one. At start-up the leases of a dead process are put back
 *     (scrapes_rescue), so a restart or a kill -9 resumes where it stopped;
 *     settled downloads are never fetched again.
 * Locks: sc.mu guards kicks and stopping (sc.cv); each thread's job id and
 * cancel flag are atomics read by scraper_cancel_job. No lock is held
 * across a request or a database call.
 */
#ifndef SF_SCRAPER_H
#define SF_SCRAPER_H

#include <stddef.h>

#include "util/config.h"

/* Rescues what a dead process left and starts the threads. 0, or -1 with
 * a sentence in err. */
int scraper_start(const struct sf_config *cfg, char *err, size_t errlen);

/* Interrupts the requests in flight (their downloads go back to queued)
 * and joins the threads. */
void scraper_stop(void);

/* There is a new job. */
void scraper_kick(void);

/* The job was canceled: interrupts its requests in flight. */
void scraper_cancel_job(long long job_id);

#endif
