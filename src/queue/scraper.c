/*
 * scraper.c: the scrape job threads (scraper.h has the design).
 *
 * A page is fetched once: its answer is either an image (the job's one
 * download is that answer) or a page whose image URLs html_images_extract
 * lists; they are stored in page order, and from then on the job is its
 * rows. Each download ends done or skipped with a reason slug, counted on
 * the job: not_an_image, too_large, too_slow, timeout, refused,
 * cannot_connect, http_<status>, network, store_failed, duplicate (decided
 * in store/scrapes.c), interrupted (store/scrapes.c, scrapes_rescue).
 */
#include "queue/scraper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backends/html_images.h"
#include "backends/http_client.h"
#include "store/db.h"
#include "store/imagefiles.h"
#include "store/scrapes.h"
#include "util/hash.h"
#include "util/imagehead.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* Interrupted downloads are tried again this many times in all. */
#define SCRAPE_MAX_ATTEMPTS 3

/* A download that fails in a way that may pass (worth_another_try) is
 * tried this many times in all, SCRAPE_RETRY_MS, then twice that, apart. */
#define SCRAPE_TRIES 3
#define SCRAPE_RETRY_MS 500

/* The first bytes of a download, read back to judge it: more than any PNG,
 * GIF or WebP header, and room for JPEG metadata segments before the
 * start-of-frame marker that holds the size. */
#define HEAD_BYTES (256 * 1024)

struct slot {
    pthread_t thread;
    unsigned char *head;   /* HEAD_BYTES, this thread's */
    atomic_int cancel;     /* set by scraper_cancel_job and scraper_stop */
    atomic_llong job_id;   /* the job this thread works on now, 0: none */
};

static struct {
    const struct sf_config *cfg;
    char owner[64];
    int64_t lease_ms;
    struct http_guard guard;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping, kicks; /* under mu */
    int nslots;
    struct slot *slots;
} sc = {.mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_int sc_stopping; /* mirrors sc.stopping for the request loops */

/* The client's sink: a download goes to its file as it arrives. */
static int to_file(const char *p, size_t n, void *ud)
{
    return imagefile_writer_write(ud, p, n);
}

static void request_for(struct http_request *req, struct slot *s, const char *url, size_t max_bytes,
                        struct imagefile_writer *w)
{
    static const char *const headers[] = {
        "Accept: text/html,application/xhtml+xml,image/png,image/jpeg,image/gif,image/webp;q=0.9,*/*;q=0.5",
        NULL};
    memset(req, 0, sizeof *req);
    req->url = url;
    req->headers = headers;
    req->timeout_ms = sc.cfg->scrape_timeout_s * 1000;
    req->connect_timeout_ms = 10000;
    req->max_bytes = max_bytes;
    req->cancel = &s->cancel;
    req->who = "scrape";
    req->guard = &sc.guard;
    req->sink = to_file;
    req->sink_ud = w;
}

/* The reason slug of a request that got no answer. */
static const char *failure_reason(enum http_outcome o, const struct http_response *resp)
{
    if (o == HTTP_REFUSED)
        return "refused";
    switch (resp->cut) {
    case HTTP_CUT_TOO_LARGE: return "too_large";
    case HTTP_CUT_TOO_SLOW: return "too_slow";
    case HTTP_CUT_TIMEOUT: return "timeout";
    case HTTP_CUT_CONNECT: return "cannot_connect";
    default: return o == HTTP_PERMANENT ? "bad_url" : "network";
    }
}

/* The format a Content-Type names, when it is one of the four we keep. */
static enum image_kind ctype_kind(const char *ctype)
{
    static const struct { const char *sub; enum image_kind k; } subs[] = {
        {"png", IMAGE_PNG}, {"x-png", IMAGE_PNG}, {"jpeg", IMAGE_JPEG}, {"jpg", IMAGE_JPEG},
        {"pjpeg", IMAGE_JPEG}, {"gif", IMAGE_GIF}, {"webp", IMAGE_WEBP},
    };
    while (*ctype == ' ')
        ctype++;
    const char *sub = ctype + 6; /* after "image/" (content_type_is_image checked it) */
    size_t n = strcspn(sub, "; \t");
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strlen(subs[i].sub) == n && strncasecmp(sub, subs[i].sub, n) == 0)
            return subs[i].k;
    return IMAGE_UNKNOWN;
}

/*
 * Judges an answer as an image: 0 with *kind, *w, *h, or -1 with the reason
 * slug and a sentence. The Content-Type must be image/(png|jpeg|gif|webp)
 * and the bytes that format.
 */
static int judge_image(const struct http_response *resp, const unsigned char *head, size_t headlen,
                       enum image_kind *kind, int *w, int *h, const char **reason, char *err,
                       size_t errlen)
{
    *reason = "not_an_image";
    if (!content_type_is_image(resp->content_type)) {
        snprintf(err, errlen, "Content-Type is %s, not an image",
                 resp->content_type[0] ? resp->content_type : "missing");
        return -1;
    }
    enum image_kind said = ctype_kind(resp->content_type);
    *kind = image_head(head, headlen, w, h);
    if (*kind == IMAGE_UNKNOWN) {
        snprintf(err, errlen, "Content-Type is %s but the bytes are not a readable PNG, JPEG, "
                 "GIF or WebP image", resp->content_type);
        return -1;
    }
    if (said != *kind) {
        snprintf(err, errlen, "Content-Type is %s but the bytes are %s", resp->content_type,
                 image_kind_mime(*kind));
        return -1;
    }
    return 0;
}

/* Judges the downloaded file; when it is an image, stores it (held until
 * released: *sha set) and fills img. 0 stored, -1 with a reason slug and a
 * sentence. The writer is consumed either way. */
static int keep_image(struct slot *s, struct imagefile_writer *fw, const struct http_response *resp,
                      char sha[65], struct scraped_image *img, const char **reason, char *err,
                      size_t errlen)
{
    long got = imagefile_writer_read(fw, 0, s->head, HEAD_BYTES);
    enum image_kind kind;
    int w, h;
    if (judge_image(resp, s->head, got > 0 ? (size_t)got : 0, &kind, &w, &h, reason, err,
                    errlen) < 0) {
        imagefile_writer_abort(fw);
        return -1;
    }
    size_t bytes = imagefile_writer_size(fw);
    if (imagefile_writer_commit_held(fw, sha, err, errlen) != SF_OK) {
        *reason = "store_failed";
        return -1;
    }
    img->sha256 = sha;
    img->bytes = bytes;
    img->width = w;
    img->height = h;
    img->mime_type = image_kind_mime(kind);
    img->source_url = resp->final_url;
    return 0;
}

/* Feeds the downloaded page to the extractor in slices read back from its
 * file: neither the page nor a tree of it is ever whole in memory. */
static void extract_from_file(struct slot *s, struct imagefile_writer *fw, const char *page_url,
                              size_t max, struct url_list *out)
{
    struct html_images *h = html_images_begin(page_url, max, out);
    size_t off = 0;
    long n;
    while ((n = imagefile_writer_read(fw, off, s->head, HEAD_BYTES)) > 0) {
        if (html_images_feed(h, (const char *)s->head, (size_t)n))
            break;
        off += (size_t)n;
    }
    html_images_end(h);
}

static void do_page(struct slot *s, struct scrape_page_claim *pc)
{
    char err[512] = "";
    struct imagefile_writer *fw = imagefile_writer_open(sc.cfg->data_dir, err, sizeof err);
    if (!fw) { /* the disk: the lease runs out and another try comes */
        log_warn("scrape job %lld: %s", pc->job_id, err);
        return;
    }
    struct http_request req;
    size_t cap = (size_t)(sc.cfg->scrape_max_page_bytes > sc.cfg->scrape_max_image_bytes
                              ? sc.cfg->scrape_max_page_bytes
                              : sc.cfg->scrape_max_image_bytes);
    request_for(&req, s, pc->url, cap, fw);
    struct http_response resp;
    enum http_outcome o = http_client_do(&req, &resp, err, sizeof err);
    sf_status st = SF_OK;
    if (o == HTTP_CANCELED) {
        /* stopping: back for the next start; canceled: nothing to record */
        imagefile_writer_abort(fw);
        if (atomic_load(&sc_stopping))
            st = scrapes_page_release(pc->job_id, sc.owner);
    } else if (o != HTTP_ANSWERED) {
        imagefile_writer_abort(fw);
        st = scrapes_page_failed(pc->job_id, sc.owner, err);
    } else if (resp.status < 200 || resp.status > 299) {
        imagefile_writer_abort(fw);
        snprintf(err, sizeof err, "scrape: the page answered HTTP %ld", resp.status);
        st = scrapes_page_failed(pc->job_id, sc.owner, err);
    } else if (content_type_is_image(resp.content_type)) {
        /* the URL is an image: this answer is the job's one download */
        const char *reason;
        char sha[65], why[400];
        struct scraped_image img;
        if (keep_image(s, fw, &resp, sha, &img, &reason, why, sizeof why) < 0) {
            snprintf(err, sizeof err, "scrape: the URL is not a usable image: %s", why);
            st = scrapes_page_failed(pc->job_id, sc.owner, err);
        } else {
            const char *urls[1] = {resp.final_url};
            st = scrapes_page_done(pc->job_id, sc.owner, resp.final_url, urls, 1, &img);
            imagefile_release(sha);
        }
    } else {
        struct url_list l = {0};
        extract_from_file(s, fw, resp.final_url, (size_t)pc->max_images, &l);
        imagefile_writer_abort(fw);
        st = scrapes_page_done(pc->job_id, sc.owner, resp.final_url, (const char *const *)l.urls,
                               l.n, NULL);
        url_list_free(&l);
    }
    if (st != SF_OK) /* the lease runs out and another try comes */
        log_warn("scrape job %lld: cannot record its page: %s", pc->job_id, sf_status_slug(st));
    http_response_free(&resp);
}

/* What wget --retry and curl --retry treat as passing: no answer for a
 * reason other than size, speed or time (a reset, a refused connection),
 * or an answer that says "later" (429, 500, 502, 503, 504). A 404, a
 * refusal by the guard, a drip or a timeout would fail the same way again,
 * or cost the job as long again. */
static int worth_another_try(enum http_outcome o, const struct http_response *resp)
{
    if (o == HTTP_TRANSIENT || o == HTTP_UNDELIVERED)
        return resp->cut == HTTP_CUT_NONE || resp->cut == HTTP_CUT_CONNECT;
    if (o == HTTP_ANSWERED)
        return resp->status == 429 || resp->status == 500 || resp->status == 502 ||
               resp->status == 503 || resp->status == 504;
    return 0;
}

/* Waits ms between two tries; -1 as soon as the job is canceled or the
 * daemon stops. */
static int wait_to_retry(struct slot *s, int ms)
{
    for (int waited = 0; waited < ms; waited += 20) {
        if (atomic_load(&s->cancel) || atomic_load(&sc_stopping))
            return -1;
        usleep(20 * 1000);
    }
    return 0;
}

static void do_item(struct slot *s, struct scrape_item_claim *ic)
{
    char err[512] = "";
    sf_status st;
    struct imagefile_writer *fw = imagefile_writer_open(sc.cfg->data_dir, err, sizeof err);
    if (!fw) {
        log_warn("scrape job %lld: %s", ic->job_id, err);
        scrapes_item_release(ic, sc.owner);
        return;
    }
    struct http_request req;
    request_for(&req, s, ic->url, (size_t)sc.cfg->scrape_max_image_bytes, fw);
    struct http_response resp;
    enum http_outcome o;
    for (int attempt = 1;; attempt++) {
        o = http_client_do(&req, &resp, err, sizeof err);
        if (attempt >= SCRAPE_TRIES || !worth_another_try(o, &resp))
            break;
        int wait_ms = SCRAPE_RETRY_MS << (attempt - 1);
        log_info("scrape job %lld: download %d (%s) %s: trying again in %d ms", ic->job_id,
                 ic->position, ic->url,
                 o == HTTP_ANSWERED ? "answered with an error status" : "got no answer", wait_ms);
        http_response_free(&resp);
        imagefile_writer_abort(fw); /* a fresh file for the next try */
        if (wait_to_retry(s, wait_ms) < 0) {
            o = HTTP_CANCELED;
            fw = NULL;
            break;
        }
        fw = imagefile_writer_open(sc.cfg->data_dir, err, sizeof err);
        if (!fw) {
            log_warn("scrape job %lld: %s", ic->job_id, err);
            scrapes_item_release(ic, sc.owner);
            return;
        }
        req.sink_ud = fw;
    }
    if (o == HTTP_CANCELED) {
        imagefile_writer_abort(fw);
        /* stopping: back to the queue; canceled: the row already says so */
        st = atomic_load(&sc_stopping) ? scrapes_item_release(ic, sc.owner) : SF_OK;
    } else if (o != HTTP_ANSWERED) {
        imagefile_writer_abort(fw);
        st = scrapes_item_skipped(ic, sc.owner, failure_reason(o, &resp), err);
    } else if (resp.status < 200 || resp.status > 299) {
        imagefile_writer_abort(fw);
        char reason[32];
        snprintf(reason, sizeof reason, "http_%ld", resp.status);
        snprintf(err, sizeof err, "scrape: HTTP %ld", resp.status);
        st = scrapes_item_skipped(ic, sc.owner, reason, err);
    } else {
        const char *reason;
        char sha[65];
        struct scraped_image img;
        if (keep_image(s, fw, &resp, sha, &img, &reason, err, sizeof err) < 0) {
            st = scrapes_item_skipped(ic, sc.owner, reason, err);
        } else {
            long long image_id;
            st = scrapes_item_done(ic, sc.owner, &img, &image_id);
            imagefile_release(sha);
            if (st == SF_OK && image_id == 0) /* a duplicate, or canceled meanwhile */
                imagefile_remove_if_unused(sc.cfg->data_dir, sha);
        }
    }
    if (st != SF_OK) {
        /* could not record (busy, disk full): back to the queue, or, if
         * even that fails, its lease runs out and it is tried again */
        log_warn("scrape job %lld: cannot record download %d: %s", ic->job_id, ic->position,
                 sf_status_slug(st));
        scrapes_item_release(ic, sc.owner);
    }
    http_response_free(&resp);
}

static void *scrape_thread(void *arg)
{
    struct slot *s = arg;
    for (;;) {
        /* reset before looking at stopping: scraper_stop sets stopping
         * first and the flags after, so a stop is never lost here */
        atomic_store(&s->cancel, 0);
        pthread_mutex_lock(&sc.mu);
        int stop = sc.stopping;
        pthread_mutex_unlock(&sc.mu);
        if (stop)
            break;
        struct scrape_page_claim pc;
        struct scrape_item_claim ic;
        int got = scrapes_claim_page(sc.owner, sc.lease_ms, &pc);
        if (got == 1) {
            atomic_store(&s->job_id, pc.job_id);
            do_page(s, &pc);
            atomic_store(&s->job_id, 0);
            scrape_page_claim_free(&pc);
            continue;
        }
        if (got == 0)
            got = scrapes_claim_item(sc.owner, sc.lease_ms, &ic);
        if (got == 1) {
            atomic_store(&s->job_id, ic.job_id);
            if (!scrapes_active(ic.job_id)) /* canceled between the claim and now */
                atomic_store(&s->cancel, 1);
            do_item(s, &ic);
            atomic_store(&s->job_id, 0);
            scrape_item_claim_free(&ic);
            continue;
        }
        /* nothing to do (or a database error): wait for a kick, at most a
         * second (a lease may run out meanwhile) */
        pthread_mutex_lock(&sc.mu);
        if (!sc.stopping && sc.kicks == 0) {
            struct timespec until = mono_deadline(1000);
            pthread_cond_timedwait(&sc.cv, &sc.mu, &until);
        }
        if (sc.kicks > 0)
            sc.kicks--;
        pthread_mutex_unlock(&sc.mu);
    }
    db_close_thread();
    return NULL;
}

int scraper_start(const struct sf_config *cfg, char *err, size_t errlen)
{
    sc.cfg = cfg;
    unsigned char rnd[6];
    char hex[13];
    random_bytes(rnd, sizeof rnd);
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(sc.owner, sizeof sc.owner, "scrape-pid%ld-%s", (long)getpid(), hex);
    sc.lease_ms = cfg->scrape_timeout_s * 1000 + 60000;
    sc.guard.policy = (enum net_policy)cfg->outbound_addresses;
    sc.guard.max_redirects = 3;
    sc.guard.low_speed_bps = (long)cfg->scrape_low_speed_bps;
    sc.guard.low_speed_s = (long)cfg->scrape_low_speed_s;
    cond_init_monotonic(&sc.cv);
    sc.stopping = 0;
    sc.kicks = 0;
    atomic_store(&sc_stopping, 0);
    int n = scrapes_rescue(sc.owner, SCRAPE_MAX_ATTEMPTS);
    if (n < 0) {
        snprintf(err, errlen, "scrape jobs: cannot put back the downloads of a stopped process");
        return -1;
    }
    if (n > 0)
        log_info("scrape jobs: put back %d interrupted page or image downloads", n);
    sc.nslots = (int)cfg->scrape_parallel;
    sc.slots = xcalloc((size_t)sc.nslots, sizeof *sc.slots);
    for (int i = 0; i < sc.nslots; i++)
        sc.slots[i].head = xmalloc(HEAD_BYTES);
    for (int i = 0; i < sc.nslots; i++) {
        if (pthread_create(&sc.slots[i].thread, NULL, scrape_thread, &sc.slots[i]) != 0) {
            snprintf(err, errlen, "scrape jobs: cannot start a thread");
            sc.nslots = i;
            scraper_stop();
            return -1;
        }
    }
    return 0;
}

void scraper_stop(void)
{
    if (!sc.slots)
        return;
    pthread_mutex_lock(&sc.mu);
    sc.stopping = 1;
    atomic_store(&sc_stopping, 1);
    pthread_cond_broadcast(&sc.cv);
    pthread_mutex_unlock(&sc.mu);
    for (int i = 0; i < sc.nslots; i++)
        atomic_store(&sc.slots[i].cancel, 1);
    for (int i = 0; i < sc.nslots; i++)
        pthread_join(sc.slots[i].thread, NULL);
    for (int i = 0; i < sc.nslots; i++)
        free(sc.slots[i].head);
    free(sc.slots);
    sc.slots = NULL;
    sc.nslots = 0;
}

void scraper_kick(void)
{
    pthread_mutex_lock(&sc.mu);
    sc.kicks += sc.nslots;
    pthread_cond_broadcast(&sc.cv);
    pthread_mutex_unlock(&sc.mu);
}

void scraper_cancel_job(long long job_id)
{
    for (int i = 0; i < sc.nslots; i++)
        if (atomic_load(&sc.slots[i].job_id) == job_id)
            atomic_store(&sc.slots[i].cancel, 1);
}
