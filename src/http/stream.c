/*
 * stream.c: responses that wait for news without holding a pool thread.
 *
 * A stream (res_stream) is a libmicrohttpd callback response. When its
 * producer has nothing to send, the connection is suspended, so thousands
 * of watchers cost no threads; stream_notify(topic) resumes the streams of
 * a topic (a run id) when it changes. The sequence number closes the race
 * between "the producer found nothing new" and "we suspended": a stream
 * only suspends if nothing was published since it started to look.
 *
 * A ticker thread resumes streams quiet for STREAM_HEARTBEAT_MS, so the
 * producer can write a keep-alive (and a dead client is noticed), and at
 * shutdown every stream is resumed with closing set, so it ends instead of
 * holding up MHD_stop_daemon.
 *
 * Lock: one mutex (mu) guards the list, every stream's suspended, closing
 * and heartbeat_due flags, and seq. MHD_suspend_connection and
 * MHD_resume_connection are called with it held, so a resume can never
 * overtake the suspend it undoes. Streams are few (one per open browser
 * tab), so a linked list is enough.
 */
#include "http/stream.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/timeutil.h"
#include "util/xalloc.h"

#define STREAM_HEARTBEAT_MS 15000

struct stream {
    long long topic;
    struct MHD_Connection *conn;
    stream_fill_fn fill;
    void *ctx;
    void (*free_ctx)(void *ctx);
    struct strbuf out;
    size_t off;
    int ended;
    /* under mu */
    int suspended;
    int closing;
    int heartbeat_due;
    int64_t last_send_ms;
    struct stream *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticker_cv = PTHREAD_COND_INITIALIZER;
static struct stream *streams;
static unsigned long seq;
static int nstreams;
static int ticker_running, ticker_quit;
static pthread_t ticker;

static void resume(struct stream *s)
{
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

void stream_notify(long long topic)
{
    pthread_mutex_lock(&mu);
    seq++;
    for (struct stream *s = streams; s; s = s->next)
        if (topic < 0 || s->topic == topic)
            resume(s);
    pthread_mutex_unlock(&mu);
}

int stream_count(void)
{
    pthread_mutex_lock(&mu);
    int n = nstreams;
    pthread_mutex_unlock(&mu);
    return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    for (;;) {
        if (s->off < s->out.len) {
            size_t n = s->out.len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->out.data + s->off, n);
            s->off += n;
            pthread_mutex_lock(&mu);
            s->last_send_ms = mono_ms();
            pthread_mutex_unlock(&mu);
            return (ssize_t)n;
        }
        s->out.len = 0;
        s->off = 0;
        pthread_mutex_lock(&mu);
        int closing = s->closing, idle = s->heartbeat_due;
        s->heartbeat_due = 0;
        unsigned long seen = seq;
        pthread_mutex_unlock(&mu);
        if (s->ended || closing)
            return MHD_CONTENT_READER_END_OF_STREAM;
        enum stream_fill f = s->fill(s->ctx, &s->out, idle);
        if (f == STREAM_END) {
            s->ended = 1; /* after what fill wrote is sent */
            continue;
        }
        if (f == STREAM_DATA || s->out.len > 0)
            continue;
        pthread_mutex_lock(&mu);
        int quiet = seq == seen && !s->closing && !s->heartbeat_due;
        if (quiet) {
            s->suspended = 1;
            MHD_suspend_connection(s->conn);
        }
        pthread_mutex_unlock(&mu);
        if (quiet)
            return 0; /* resumed by stream_notify or the ticker */
    }
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    pthread_mutex_lock(&mu);
    for (struct stream **p = &streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            nstreams--;
            break;
        }
    pthread_mutex_unlock(&mu);
    if (s->free_ctx)
        s->free_ctx(s->ctx);
    sb_free(&s->out);
    free(s);
}

sf_status res_stream(struct sf_request *req, struct sf_response *res, long long topic,
                     const char *content_type, stream_fill_fn fill, void *ctx,
                     void (*free_ctx)(void *ctx))
{
    struct stream *s = xcalloc(1, sizeof(*s));
    s->topic = topic;
    s->conn = req->conn;
    s->fill = fill;
    s->ctx = ctx;
    s->free_ctx = free_ctx;
    s->last_send_ms = mono_ms();
    sb_init(&s->out);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read,
                                                               s, stream_free);
    if (!r) {
        if (free_ctx)
            free_ctx(ctx);
        free(s);
        return res_fail(res, SF_EINTERNAL, "cannot open the stream");
    }
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&mu);
    s->next = streams;
    streams = s;
    nstreams++;
    pthread_mutex_unlock(&mu);
    res->mhd_response = r;
    res->http_status = 200;
    return SF_OK;
}

/* Resumes streams quiet for the heartbeat interval, once a second. */
static void *ticker_main(void *arg)
{
    pthread_mutex_lock(&mu);
    while (!ticker_quit) { /* the loop always starts with mu held */
        struct timespec ts = mono_deadline(1000);
        pthread_cond_timedwait(&ticker_cv, &mu, &ts);
        int64_t now = mono_ms();
        for (struct stream *s = streams; s; s = s->next)
            if (s->suspended && now - s->last_send_ms >= STREAM_HEARTBEAT_MS) {
                s->heartbeat_due = 1;
                resume(s);
            }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int stream_ticker_start(void)
{
    pthread_cond_destroy(&ticker_cv);
    cond_init_monotonic(&ticker_cv);
    ticker_quit = 0;
    if (pthread_create(&ticker, NULL, ticker_main, NULL) != 0)
        return -1;
    ticker_running = 1;
    return 0;
}

void stream_close_all(void)
{
    pthread_mutex_lock(&mu);
    seq++;
    for (struct stream *s = streams; s; s = s->next) {
        s->closing = 1;
        resume(s);
    }
    ticker_quit = 1;
    pthread_cond_broadcast(&ticker_cv);
    pthread_mutex_unlock(&mu);
    if (ticker_running) {
        pthread_join(ticker, NULL);
        ticker_running = 0;
    }
}
