/*
 * webhook_sender.c: the delivery thread of run webhooks (webhook_sender.h).
 *
 * Locks: `mu` guards kicks and stopping, with `cv` to sleep on; it is never
 * held across a database call or a request, and no other lock is taken
 * while it is held. Counters are atomics.
 *
 * At least once: an attempt that was under way when the process died is
 * not recorded, so the next start sends it again with the same webhook-id;
 * receivers deduplicate by that id, as the specification asks.
 */
#include "queue/webhook_sender.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/http_client.h"
#include "store/db.h"
#include "store/webhooks.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/oneline.h"
#include "util/stdwebhook.h"
#include "util/timeutil.h"

/* The longest sleep, and so the longest a queued delivery waits for its
 * first attempt should a kick be missed (engine_notify kicks after every
 * committed run change, so it should not be). */
#define IDLE_MS 1000
/* The ceiling of one wait between attempts, whatever the base. */
#define BACKOFF_CAP_MS (3600LL * 1000)
/* A receiver's answer is read up to this much, then the attempt fails. */
#define ANSWER_CAP ((size_t)64 * 1024)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    atomic_int running;
    int stopping;          /* under mu */
    unsigned long kicks;   /* under mu */
    atomic_int cancel;     /* set by stop: ends an attempt under way */
    const struct sf_config *cfg;
    unsigned char key[STDWEBHOOK_KEY_MAX];
    size_t keylen;
    atomic_ulong delivered, failed_attempts, gave_up;
} snd = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Why an answered attempt failed, into err; 0 when it was a 2xx. */
static int judge_answer(const struct http_response *r, char *err, size_t errlen)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    if (r->status >= 300 && r->status < 400) {
        snprintf(err, errlen, "webhook: HTTP %ld: a redirect, not followed (webhooks go to "
                              "the callback_url only)", r->status);
        return -1;
    }
    char text[160] = "";
    if (r->body && r->len)
        one_line(r->body, r->len < 120 ? r->len : 120, text, sizeof(text));
    snprintf(err, errlen, "webhook: HTTP %ld%s%s", r->status, text[0] ? ": " : "", text);
    return -1;
}

/* One attempt of d: records it, or leaves it pending when stopping cut it.
 * -1 when the attempt could not be recorded (the row is still due: the
 * caller waits before taking it again, so a database that refuses writes
 * does not turn into a stream of POSTs). */
static int attempt(struct webhook_due *d)
{
    const struct sf_config *cfg = snd.cfg;
    long long ts = now_unix_ms() / 1000;
    size_t body_len = strlen(d->payload);
    char sig[STDWEBHOOK_SIG_LEN];
    stdwebhook_sign(snd.key, snd.keylen, d->webhook_id, ts, d->payload, body_len, sig);
    char h_id[96], h_ts[48], h_sig[96];
    snprintf(h_id, sizeof(h_id), "webhook-id: %s", d->webhook_id);
    snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", ts);
    snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", sig);
    const char *headers[] = {h_id, h_ts, h_sig, NULL};
    /* No redirects: a redirect is a failed attempt (docs/webhooks.md). No
     * low-speed cut: a receiver may think for a while before it answers,
     * and webhook_timeout_ms already bounds a drip. */
    struct http_guard guard = {.policy = (enum net_policy)cfg->outbound_addresses,
                               .max_redirects = 0};
    long timeout = (long)cfg->webhook_timeout_ms;
    struct http_request req = {.method = "POST", .url = d->url, .headers = headers,
                               .body = d->payload, .body_len = body_len,
                               .content_type = "application/json", .timeout_ms = timeout,
                               .connect_timeout_ms = timeout < 5000 ? timeout : 5000,
                               .max_bytes = ANSWER_CAP, .cancel = &snd.cancel,
                               .who = "webhook", .guard = &guard};
    struct http_response resp = {0};
    char err[512] = "";
    enum http_outcome out = http_client_do(&req, &resp, err, sizeof(err));
    if (out == HTTP_CANCELED)
        return 0; /* stopping: not an attempt; sent again at the next start */
    long status = out == HTTP_ANSWERED ? resp.status : 0;
    int ok = out == HTTP_ANSWERED && judge_answer(&resp, err, sizeof(err)) == 0;
    http_response_free(&resp);

    int made = d->attempts + 1;
    int64_t next = 0;
    if (!ok && made < WEBHOOK_MAX_ATTEMPTS) {
        unsigned int r = 0;
        random_bytes(&r, sizeof(r));
        next = now_unix_ms() + 1 + stdwebhook_backoff_ms(cfg->webhook_retry_base_ms, BACKOFF_CAP_MS,
                                                         made, (double)r / 4294967296.0);
    }
    char now[32];
    now_rfc3339(now);
    if (webhooks_record_attempt(d->id, status, ok ? NULL : err, next, now) != SF_OK) {
        /* Not recorded: the row is unchanged, so it is tried again (and
         * may arrive twice, with the same webhook-id). */
        log_warn("webhooks: cannot record attempt %d of %s", made, d->webhook_id);
        return -1;
    }
    if (ok) {
        atomic_fetch_add(&snd.delivered, 1);
        log_info("webhooks: %s delivered (attempt %d)", d->webhook_id, made);
        return 0;
    }
    atomic_fetch_add(&snd.failed_attempts, 1);
    if (next) {
        log_warn("webhooks: %s attempt %d of %d failed: %s; next in %lld ms", d->webhook_id, made,
                 WEBHOOK_MAX_ATTEMPTS, err, (long long)(next - now_unix_ms()));
    } else {
        atomic_fetch_add(&snd.gave_up, 1);
        log_warn("webhooks: %s failed after %d attempts: %s", d->webhook_id, made, err);
    }
    return 0;
}

static int stopping(unsigned long *kicks)
{
    pthread_mutex_lock(&snd.mu);
    int s = snd.stopping;
    if (kicks)
        *kicks = snd.kicks;
    pthread_mutex_unlock(&snd.mu);
    return s;
}

static void *sender_main(void *arg)
{
    (void)arg;
    if (!db_conn())
        log_warn("webhooks: the sender cannot open the database yet; it will try again");
    unsigned long seen;
    while (!stopping(&seen)) {
        struct webhook_due d;
        int stuck = 0; /* an attempt could not be recorded: wait before the next */
        while (!stuck && !stopping(NULL) && webhooks_next_due(now_unix_ms(), &d) == 1) {
            stuck = attempt(&d) < 0;
            webhook_due_free(&d);
        }
        int64_t due = webhooks_earliest_due(), wait = IDLE_MS;
        if (due > 0 && !stuck) {
            int64_t until = due - now_unix_ms();
            wait = until < 1 ? 1 : until < IDLE_MS ? until : IDLE_MS;
        }
        struct timespec ts = mono_deadline(wait);
        pthread_mutex_lock(&snd.mu);
        if (!snd.stopping && snd.kicks == seen)
            pthread_cond_timedwait(&snd.cv, &snd.mu, &ts);
        pthread_mutex_unlock(&snd.mu);
    }
    db_close_thread();
    return NULL;
}

int webhook_sender_start(const struct sf_config *cfg, char *err, size_t errlen)
{
    if (!cfg->webhook_secret || !*cfg->webhook_secret) {
        long long waiting = webhooks_pending_count();
        if (waiting > 0)
            log_warn("webhooks: %lld deliveries are pending but webhook_secret is not set; "
                     "they wait until it is", waiting);
        return 0;
    }
    char why[160];
    int n = stdwebhook_key(cfg->webhook_secret, snd.key, why, sizeof(why));
    if (n < 0) { /* config_set checked it already */
        snprintf(err, errlen, "webhook_secret: %s", why);
        return -1;
    }
    snd.keylen = (size_t)n;
    snd.cfg = cfg;
    snd.stopping = 0;
    atomic_store(&snd.cancel, 0);
    cond_init_monotonic(&snd.cv);
    if (pthread_create(&snd.thread, NULL, sender_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the webhook sender thread");
        return -1;
    }
    atomic_store(&snd.running, 1);
    return 0;
}

void webhook_sender_stop(void)
{
    if (!atomic_load(&snd.running))
        return;
    pthread_mutex_lock(&snd.mu);
    snd.stopping = 1;
    pthread_cond_broadcast(&snd.cv);
    pthread_mutex_unlock(&snd.mu);
    atomic_store(&snd.cancel, 1);
    pthread_join(snd.thread, NULL);
    atomic_store(&snd.running, 0);
    memset(snd.key, 0, sizeof(snd.key));
}

void webhook_sender_kick(void)
{
    if (!atomic_load(&snd.running))
        return;
    pthread_mutex_lock(&snd.mu);
    snd.kicks++;
    pthread_cond_broadcast(&snd.cv);
    pthread_mutex_unlock(&snd.mu);
}

void webhook_sender_stats(struct webhook_sender_stats *out)
{
    out->enabled = atomic_load(&snd.running);
    out->delivered = atomic_load(&snd.delivered);
    out->failed_attempts = atomic_load(&snd.failed_attempts);
    out->gave_up = atomic_load(&snd.gave_up);
}
