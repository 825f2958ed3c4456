/*
 * scrapes.h: scrape jobs and their downloads, durable like run items.
 *
 * A job is pending until a worker leases it and fetches its page; the
 * page's image URLs are then stored as scrape_items rows in page order (one
 * transaction with the job's page_fetched flag), and each item is leased by
 * a worker while it downloads and settled once: done (with its image row)
 * or skipped (with a reason and the sentence behind it). The item's outcome,
 * the job's counters and, when it was the last item, the job's end and its
 * album are one transaction. A process that dies leaves leases behind; the
 * next one puts them back (scrapes_rescue), so a settled download is never
 * fetched again and an unsettled one is fetched once more.
 *
 * The state names are those of store/states.h (enum scrape_state and
 * scrape_item_state); docs/scrape.md tells the whole story.
 */
#ifndef SF_STORE_SCRAPES_H
#define SF_STORE_SCRAPES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/images.h"
#include "store/states.h"
#include "util/pagination.h"
#include "util/status.h"

struct scrape_spec {
    const char *url;
    const char *album_name;
    int max_images;
    const char *creator; /* the token's name, or NULL */
};

/* A pending job; *id set. */
sf_status scrapes_create(const struct scrape_spec *spec, long long *id);

/* The job as the API shows it (new object): status, progress, counters,
 * skipped reasons counted, error, album_id, timestamps. SF_ENOTFOUND. */
sf_status scrapes_get(long long id, json_t **out);

/* A page of jobs, newest first; status NULL: all (new array). */
sf_status scrapes_list(const struct page *pg, const char *status, json_t **rows_out,
                       long long *total_out);

/* A page of a job's downloads in page order (new array): position, url,
 * status, reason, error, image_id. SF_ENOTFOUND for an unknown job. */
sf_status scrapes_items(long long job_id, const struct page *pg, json_t **rows_out,
                        long long *total_out);

/* Cancels a pending or running job and its unsettled downloads (an album
 * is filed when some images are in). SF_ENOTFOUND; SF_ECONFLICT when the
 * job has already finished. */
sf_status scrapes_cancel(long long id);

/* Jobs and downloads by state (indexed by enum scrape_state and
 * enum scrape_item_state), for /metrics. */
sf_status scrapes_counts(long long jobs[SCRAPE_NSTATES], long long items[SITEM_NSTATES]);

/* ---- the runner's side (queue/scraper.c) ---------------------------------- */

struct scrape_page_claim {
    long long job_id;
    char *url;       /* malloc'd */
    int max_images;
};

struct scrape_item_claim {
    long long item_id, job_id;
    int position;
    char *url; /* malloc'd */
};

void scrape_page_claim_free(struct scrape_page_claim *c);
void scrape_item_claim_free(struct scrape_item_claim *c);

/* Leases the oldest job whose page is still to fetch (pending, or running
 * with an expired lease) to owner until now + lease_ms; a pending job
 * becomes running. 1 claimed, 0 none, -1 error. */
int scrapes_claim_page(const char *owner, int64_t lease_ms, struct scrape_page_claim *out);

/*
 * Stores the page's image URLs (n of them, page order) as queued items and
 * final_url as the job's page_url, in one transaction. With img (the page
 * URL answered with an image): the one item is stored done with it instead.
 * No URL: the job fails ("no images found on the page"). Nothing happens
 * when owner no longer holds the job (it was canceled).
 */
sf_status scrapes_page_done(long long job_id, const char *owner, const char *final_url,
                            const char *const *urls, size_t n, const struct scraped_image *img);

/* Gives a page back untouched (the daemon is stopping): the next start
 * fetches it, and the attempt is not counted. */
sf_status scrapes_page_release(long long job_id, const char *owner);

/* The page could not be fetched or read: the job fails with error. */
sf_status scrapes_page_failed(long long job_id, const char *owner, const char *error);

/* Leases the next queued download (or one whose lease expired) of a
 * running job, oldest job first, in page order. 1, 0 or -1. */
int scrapes_claim_item(const char *owner, int64_t lease_ms, struct scrape_item_claim *out);

/*
 * Settles a download with its image: the same bytes as an image already
 * stored reuse that row, and as one already in this job make the item
 * skipped as a "duplicate". *image_id gets the row (0 when skipped). The
 * job ends when it was its last download.
 */
sf_status scrapes_item_done(const struct scrape_item_claim *c, const char *owner,
                            const struct scraped_image *img, long long *image_id);

/* Settles a download as skipped, reason a short slug (not_an_image,
 * too_large, refused, http_404, ...) and error its sentence. */
sf_status scrapes_item_skipped(const struct scrape_item_claim *c, const char *owner,
                               const char *reason, const char *error);

/* Gives a download back untouched (the daemon is stopping). */
sf_status scrapes_item_release(const struct scrape_item_claim *c, const char *owner);

/* Puts back the leases owner does not hold (at start-up: their owner is
 * dead) and the expired ones; a download already tried max_attempts times
 * is skipped as "interrupted", a page the job fails. Returns how many were
 * put back or given up, or -1. */
int scrapes_rescue(const char *owner, int max_attempts);

/* 1 when the job is pending or running (workers check it between steps). */
int scrapes_active(long long job_id);

#endif
