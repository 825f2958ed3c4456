/*
 * finisher.c: each worker's finisher thread, which stores the drawn image
 * and records the outcome, so the worker can claim its next item at once
 * and a GPU does not wait for two fsyncs and a transaction.
 *
 * Recording never gives up silently: a failed transaction is tried again
 * with backoff; an outcome that still cannot be recorded is released to
 * the queue (its attempt given back); if even that fails, the item is left
 * out of the heartbeat so its lease runs out and the sweeper rescues it.
 */
#include "queue/engine_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/lora.h"
#include "setforge.h"
#include "store/db.h"
#include "store/imagefiles.h"
#include "util/hash.h"
#include "util/infotext.h"
#include "util/log.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* Tries to record one outcome before it is released to the queue: about
 * 6 s of backoff, long enough to ride out a busy database; an item that
 * still cannot be recorded is drawn again later rather than lost. */
#define RECORD_TRIES 10
#define RECORD_BACKOFF_MAX_MS 1000

static void observe_duration(int64_t us)
{
    double s = (double)us / 1e6;
    int b = 0;
    while (b < ENGINE_HIST_BUCKETS && s > engine_hist_bounds_s[b])
        b++;
    atomic_fetch_add(&eng.hist[b], 1);
    atomic_fetch_add(&eng.hist_sum_us, (unsigned long long)us);
}

/* Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... capped at 60 s,
 * each scaled by a random factor in [0.5, 1.5) so retries spread out. */
static int64_t backoff_ms(int attempts)
{
    int64_t base = 500LL << (attempts > 7 ? 7 : (attempts > 0 ? attempts - 1 : 0));
    if (base > 60000)
        base = 60000;
    unsigned short r = 0;
    random_bytes(&r, sizeof(r));
    return base / 2 + (int64_t)((double)base * r / 65536.0);
}

static void abandon(long long item_id)
{
    pthread_mutex_lock(&eng.abandon_mu);
    if (eng.nabandoned == eng.abandoned_cap) {
        eng.abandoned_cap = eng.abandoned_cap ? eng.abandoned_cap * 2 : 8;
        eng.abandoned = xrealloc(eng.abandoned, sizeof(long long) * (size_t)eng.abandoned_cap);
    }
    eng.abandoned[eng.nabandoned++] = item_id;
    pthread_mutex_unlock(&eng.abandon_mu);
}

void finisher_unabandon(long long item_id)
{
    pthread_mutex_lock(&eng.abandon_mu);
    for (int i = 0; i < eng.nabandoned; i++)
        if (eng.abandoned[i] == item_id)
            eng.abandoned[i--] = eng.abandoned[--eng.nabandoned];
    pthread_mutex_unlock(&eng.abandon_mu);
}

long long *finisher_abandoned(int *n)
{
    pthread_mutex_lock(&eng.abandon_mu);
    *n = eng.nabandoned;
    long long *copy = *n ? xmalloc(sizeof(long long) * (size_t)*n) : NULL;
    if (*n)
        memcpy(copy, eng.abandoned, sizeof(long long) * (size_t)*n);
    pthread_mutex_unlock(&eng.abandon_mu);
    return copy;
}

enum record_kind { RECORD_COMPLETE, RECORD_FAIL, RECORD_CANCELED, RECORD_RELEASE };

struct record {
    enum record_kind kind;
    const struct claimed_item *it;
    const struct sf_image *img;
    const char *sha;
    const char *endpoint;
    int64_t dur_ms;
    const char *err;
    int permanent;
    int64_t retry_at_ms;
};

static sf_status record_once(const struct record *rec)
{
    switch (rec->kind) {
    case RECORD_COMPLETE:
        return queue_complete(rec->it, eng.owner, rec->img, rec->sha, rec->endpoint, rec->dur_ms);
    case RECORD_FAIL:
        return queue_fail(rec->it, eng.owner, rec->err, rec->permanent, (int)eng.cfg->max_attempts,
                          rec->retry_at_ms, rec->endpoint);
    case RECORD_CANCELED:
        return queue_mark_canceled(rec->it, eng.owner);
    case RECORD_RELEASE:
        return queue_release(rec->it, eng.owner);
    }
    return SF_EINTERNAL;
}

/*
 * Writes an outcome, trying again with backoff when the transaction fails.
 * When it never succeeds, the item goes back to the queue (its attempt
 * returned) to be drawn again; when even that fails, its lease is left to
 * run out and the sweeper rescues it. Returns 1 when recorded as asked.
 */
static int record(const struct record *rec)
{
    int64_t pause = 100;
    for (int tries = 1;; tries++) {
        if (record_once(rec) == SF_OK)
            return 1;
        if (tries >= RECORD_TRIES)
            break;
        log_warn("engine: recording run %lld item %d failed (try %d of %d); trying again",
                 rec->it->run_id, rec->it->index, tries, RECORD_TRIES);
        usleep((useconds_t)pause * 1000);
        pause = pause * 2 > RECORD_BACKOFF_MAX_MS ? RECORD_BACKOFF_MAX_MS : pause * 2;
    }
    if (rec->kind != RECORD_RELEASE && queue_release(rec->it, eng.owner) == SF_OK) {
        log_error("engine: cannot record run %lld item %d; it is queued again", rec->it->run_id,
                  rec->it->index);
        engine_kick();
        return 0;
    }
    log_error("engine: cannot record nor release run %lld item %d; its lease will expire and "
              "it will be rescued", rec->it->run_id, rec->it->index);
    abandon(rec->it->item_id);
    return 0;
}

/*
 * "fit": "crop": an image larger than the item asked for in both dimensions
 * (a server that aligns sizes up) becomes its centre at the asked size; the
 * PNG says so in a "fit" text chunk, the image row in cropped_from. One
 * smaller in a dimension is kept as it is (the backend judged its size).
 */
/*
 * Writes the image's A1111 "parameters" text chunk from what was really
 * used: the item's prompt (with the LoRA tags A1111 would show, when the
 * server applied the LoRAs), its settings, the seed and size the server
 * answered with, the model and sampler it named, the endpoint that drew it.
 * Whatever the server wrote there (or did not) is replaced, so every image
 * setforge stores reads back the same way in A1111's PNG Info and the tools
 * that follow it; a ComfyUI image keeps its "prompt" and "workflow" chunks.
 * An image that is not a PNG setforge can edit is kept as it came.
 */
static void stamp_parameters(const struct endpoint *ep, const struct claimed_item *it,
                             struct sf_image *img)
{
    struct strbuf prompt;
    sb_init(&prompt);
    sb_puts(&prompt, it->prompt ? it->prompt : "");
    size_t n = img->loras_applied && json_is_array(it->loras) ? json_array_size(it->loras) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        char wbuf[32];
        if (be_lora_get(it->loras, i, &name, &path, &w) < 0)
            continue;
        be_fmt_weight(w, wbuf, sizeof wbuf);
        sb_printf(&prompt, " <lora:%s:%s>", name ? name : path, wbuf);
    }
    char steps[16], cfg[32], seed[32], size[32], cropped[32] = "", backend[160], version[96];
    snprintf(steps, sizeof steps, "%d", it->steps);
    infotext_number(it->guidance_scale, cfg, sizeof cfg);
    snprintf(seed, sizeof seed, "%lld", img->seed);
    snprintf(size, sizeof size, "%dx%d", img->width, img->height);
    if (img->cropped_from_w)
        snprintf(cropped, sizeof cropped, "%dx%d", img->cropped_from_w, img->cropped_from_h);
    snprintf(backend, sizeof backend, "%s %s", ep->backend->ops->type, ep->backend->name);
    snprintf(version, sizeof version, "%s", img->version[0] ? img->version
                                                            : "setforge " SETFORGE_VERSION);
    const struct infotext_param params[] = {
        {"Steps", steps},       {"Sampler", img->sampler},        {"CFG scale", cfg},
        {"Seed", seed},         {"Size", size},                   {"Model hash", img->model_hash},
        {"Model", img->model},  {"Cropped from", cropped},        {"Backend", backend},
        {"Version", version},
    };
    char *text = infotext_format(prompt.data, it->negative_prompt, params,
                                 sizeof params / sizeof params[0]);
    sb_free(&prompt);
    unsigned char *png;
    size_t len;
    if (png_with_text(img->png, img->png_len, "parameters", text, &png, &len) == 0) {
        free(img->png);
        img->png = png;
        img->png_len = len;
    }
    free(text);
}

static enum backend_result crop_to_request(const struct claimed_item *it, struct sf_image *img,
                                           char *err, size_t errlen)
{
    if ((img->width == it->width && img->height == it->height) || img->width < it->width ||
        img->height < it->height)
        return BACKEND_OK;
    char note[128];
    snprintf(note, sizeof(note), "centre-cropped from %dx%d to %dx%d (fit: crop)", img->width,
             img->height, it->width, it->height);
    const char *text[] = {"fit", note, NULL};
    unsigned char *png;
    size_t len;
    char why[256];
    if (png_crop_center(img->png, img->png_len, it->width, it->height, text, &png, &len, why,
                        sizeof(why)) < 0) {
        snprintf(err, errlen, "fit crop: %s", why);
        return BACKEND_TRANSIENT;
    }
    free(img->png);
    img->png = png;
    img->png_len = len;
    img->cropped_from_w = img->width;
    img->cropped_from_h = img->height;
    img->width = it->width;
    img->height = it->height;
    return BACKEND_OK;
}

static void record_outcome(struct worker *w, struct outcome *o)
{
    struct endpoint *ep = w->ep;
    struct claimed_item *it = &o->it;
    struct record rec = {.it = it, .endpoint = ep->backend->name, .err = o->err};
    enum backend_result r = o->r;
    if (r == BACKEND_OK && it->fit_crop)
        r = crop_to_request(it, &o->img, o->err, sizeof(o->err));
    if (r == BACKEND_OK)
        stamp_parameters(ep, it, &o->img);
    if (r == BACKEND_OK) {
        char sha[65];
        char ferr[512];
        sf_status st = imagefile_store_held(eng.cfg->data_dir, o->img.png, o->img.png_len, sha,
                                            ferr, sizeof(ferr));
        if (st == SF_EUNAVAILABLE) {
            /* The machine is out of files or space: not the item's fault,
             * so it is drawn again later without spending an attempt. */
            log_warn("engine: run %lld item %d: cannot store the image (%s); queued again",
                     it->run_id, it->index, ferr);
            rec.kind = RECORD_RELEASE;
            record(&rec);
            usleep(200000); /* give whatever holds the files a moment */
            return;
        }
        if (st != SF_OK) {
            snprintf(o->err, sizeof(o->err), "cannot store the image: %s", ferr);
            r = BACKEND_TRANSIENT;
        } else {
            rec.kind = RECORD_COMPLETE;
            rec.img = &o->img;
            rec.sha = sha;
            rec.dur_ms = o->dur_us / 1000;
            record(&rec);
            imagefile_release(sha);
            atomic_fetch_add(&ep->ok_us, (unsigned long long)o->dur_us);
            atomic_fetch_add(&ep->done, 1);
            observe_duration(o->dur_us);
            return;
        }
    }
    if (r == BACKEND_CANCELED) {
        rec.kind = atomic_load(&eng.stopping) ? RECORD_RELEASE : RECORD_CANCELED;
        record(&rec);
        return;
    }
    if (r == BACKEND_UNDELIVERED) {
        /* The request never reached the server: no GPU time was spent, so
         * no attempt either. The endpoint is down now (report_call), and
         * the item waits in the queue for another one, or for this one to
         * come back. */
        atomic_fetch_add(&ep->errors, 1);
        log_warn("engine: run %lld item %d on %s: %s; queued again, no attempt spent",
                 it->run_id, it->index, ep->backend->name, o->err);
        rec.kind = RECORD_RELEASE;
        record(&rec);
        return;
    }
    /* The endpoint's breaker has heard of this call from the worker. */
    atomic_fetch_add(&ep->errors, 1);
    int permanent = r == BACKEND_PERMANENT;
    if (permanent || it->attempts >= eng.cfg->max_attempts)
        atomic_fetch_add(&ep->failed, 1);
    log_warn("engine: run %lld item %d attempt %d on %s: %s", it->run_id, it->index, it->attempts,
             ep->backend->name, o->err);
    rec.kind = RECORD_FAIL;
    rec.permanent = permanent;
    rec.retry_at_ms = now_unix_ms() + backoff_ms(it->attempts);
    record(&rec);
}


/* Opens this thread's database connection now, while files are there to
 * open, rather than at its first outcome in the middle of a flood. */
void engine_open_db(const char *who)
{
    if (!db_conn())
        log_warn("engine: the %s cannot open the database yet; it will try again", who);
}

void *finisher_main(void *arg)
{
    struct worker *w = arg;
    engine_open_db("finisher");
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->has_pending && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        int done = !w->has_pending && w->quit;
        pthread_mutex_unlock(&w->mu);
        if (done)
            break;
        struct outcome *o = &w->pending;
        long long run_id = o->it.run_id;
        record_outcome(w, o);
        free(o->img.png);
        claimed_item_free(&o->it);
        engine_notify(run_id);
        pthread_mutex_lock(&w->mu);
        w->has_pending = 0;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    db_close_thread();
    return NULL;
}

/* Moves o (and what it owns) to the finisher, once the previous is done. */
void finisher_hand_over(struct worker *w, const struct outcome *o)
{
    pthread_mutex_lock(&w->mu);
    while (w->has_pending)
        pthread_cond_wait(&w->cv, &w->mu);
    w->pending = *o;
    w->has_pending = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
