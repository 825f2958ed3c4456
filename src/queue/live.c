/*
 * live.c: the in-memory store of the items being drawn, their latest step
 * and preview (the contract and the throttle are in live.h; the wire
 * schema in docs/live.md).
 *
 * DESIGN. One mutex (mu) guards the list of open entries, every field of
 * every entry and the publication sequence. Who takes it:
 *   - a worker, at live_begin and live_end around each generate() call;
 *   - whatever thread a backend reports from (the worker itself, or an
 *     A1111 progress poller the backend stops before generate() returns),
 *     in live_step;
 *   - HTTP pool threads: an event stream's fill (live_steps_since) and the
 *     preview route (live_preview), which copy out under it.
 * No other lock is taken while mu is held: the notify callback (which
 * takes the streams' lock) is called after mu is released. An entry is
 * unlinked and freed under mu, so a reader either finds it whole or not at
 * all. Entries are few (one per worker slot), so a list is enough; a
 * stream's scan is O(open entries).
 */
#include "queue/live.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/xalloc.h"

struct live_item {
    long long run_id;
    int index;
    char endpoint[64];
    int step, steps;                   /* the latest report */
    int pub_step, pub_steps;           /* what was published */
    unsigned long long pub_seq;        /* its publication number; 0: never */
    unsigned long long pub_preview;    /* the preview version published */
    unsigned char *preview;            /* the latest preview, or NULL */
    size_t preview_len;
    char mime[32];
    unsigned long long preview_version; /* bumped by every new preview */
    struct live_throttle throttle;
    struct live_item *prev, *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct live_item *items;
static unsigned long long seq;           /* the last publication number */
static unsigned long long versions;      /* the last preview version */
static size_t preview_bytes;             /* held by all entries */
static int nitems;
static void (*notify_fn)(long long run_id);

int live_throttle_pass(struct live_throttle *t, int64_t now_ms)
{
    if (t->last_ms && now_ms - t->last_ms < LIVE_MIN_INTERVAL_MS)
        return 0;
    /* 0 means "never": a clock that starts at 0 still counts. */
    t->last_ms = now_ms ? now_ms : 1;
    return 1;
}

void live_init(void (*notify)(long long run_id))
{
    pthread_mutex_lock(&mu);
    notify_fn = notify;
    pthread_mutex_unlock(&mu);
}

struct live_item *live_begin(long long run_id, int index, const char *endpoint)
{
    struct live_item *li = xcalloc(1, sizeof *li);
    li->run_id = run_id;
    li->index = index;
    snprintf(li->endpoint, sizeof li->endpoint, "%s", endpoint ? endpoint : "");
    pthread_mutex_lock(&mu);
    li->next = items;
    if (items)
        items->prev = li;
    items = li;
    nitems++;
    pthread_mutex_unlock(&mu);
    return li;
}

void live_step_at(struct live_item *li, int64_t now_ms, int step, int steps, const void *preview,
                  size_t len, const char *mime)
{
    if (!li)
        return;
    if (steps < 0)
        steps = 0;
    if (step < 0)
        step = 0;
    if (steps && step > steps)
        step = steps;
    /* The copy is made outside the lock: a preview is tens of KiB. */
    unsigned char *copy = NULL;
    if (preview && len > 0 && len <= LIVE_MAX_PREVIEW_BYTES) {
        copy = xmalloc(len);
        memcpy(copy, preview, len);
    }
    unsigned char *old = NULL;
    void (*notify)(long long) = NULL;
    long long run_id = li->run_id;
    pthread_mutex_lock(&mu);
    li->step = step;
    li->steps = steps;
    /* The same picture again (a server that sends its current image with
     * every answer) is no news: no new version, nothing to publish. */
    if (copy && li->preview && li->preview_len == len && memcmp(li->preview, copy, len) == 0) {
        old = copy;
        copy = NULL;
    }
    if (copy) {
        old = li->preview;
        preview_bytes -= li->preview_len;
        li->preview = copy;
        li->preview_len = len;
        snprintf(li->mime, sizeof li->mime, "%s", mime && *mime ? mime : "image/jpeg");
        li->preview_version = ++versions;
        preview_bytes += len;
    }
    int changed = li->pub_seq == 0 || li->pub_step != li->step || li->pub_steps != li->steps ||
                  li->pub_preview != li->preview_version;
    if (changed && live_throttle_pass(&li->throttle, now_ms)) {
        li->pub_step = li->step;
        li->pub_steps = li->steps;
        li->pub_preview = li->preview_version;
        li->pub_seq = ++seq;
        notify = notify_fn;
    }
    pthread_mutex_unlock(&mu);
    free(old);
    if (notify)
        notify(run_id);
}

void live_step(struct live_item *li, int step, int steps, const void *preview, size_t len,
               const char *mime)
{
    live_step_at(li, mono_ms(), step, steps, preview, len, mime);
}

void live_end(struct live_item *li)
{
    if (!li)
        return;
    pthread_mutex_lock(&mu);
    if (li->prev)
        li->prev->next = li->next;
    else
        items = li->next;
    if (li->next)
        li->next->prev = li->prev;
    nitems--;
    preview_bytes -= li->preview_len;
    pthread_mutex_unlock(&mu);
    free(li->preview);
    free(li);
}

int live_steps_since(long long run_id, unsigned long long *since,
                     void (*fn)(void *ctx, const struct live_view *v), void *ctx)
{
    int n = 0;
    unsigned long long newest = *since;
    pthread_mutex_lock(&mu);
    for (struct live_item *li = items; li; li = li->next) {
        if (li->run_id != run_id || li->pub_seq <= *since)
            continue;
        struct live_view v = {
            .run_id = li->run_id,
            .index = li->index,
            .step = li->pub_step,
            .steps = li->pub_steps,
            .preview_version = li->pub_preview,
        };
        memcpy(v.endpoint, li->endpoint, sizeof v.endpoint);
        fn(ctx, &v);
        n++;
        if (li->pub_seq > newest)
            newest = li->pub_seq;
    }
    pthread_mutex_unlock(&mu);
    *since = newest;
    return n;
}

int live_preview(long long run_id, int index, unsigned char **bytes, size_t *len, char *mime,
                 size_t mimelen)
{
    *bytes = NULL;
    *len = 0;
    /* Copied under the lock: the entry may be freed the moment it is
     * released. A preview is small, and readers are a page or two. */
    pthread_mutex_lock(&mu);
    struct live_item *li = items;
    while (li && !(li->run_id == run_id && li->index == index && li->preview))
        li = li->next;
    if (li) {
        *bytes = xmalloc(li->preview_len);
        memcpy(*bytes, li->preview, li->preview_len);
        *len = li->preview_len;
        snprintf(mime, mimelen, "%s", li->mime);
    }
    pthread_mutex_unlock(&mu);
    return li != NULL;
}

void live_counts(int *n, size_t *bytes)
{
    pthread_mutex_lock(&mu);
    *n = nitems;
    *bytes = preview_bytes;
    pthread_mutex_unlock(&mu);
}
