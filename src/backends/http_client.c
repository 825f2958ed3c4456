/*
 * http_client.c: one HTTP exchange on libcurl, with a per-thread handle,
 * cancellation, a size cap and a classified result (see http_client.h for
 * the contract and why it is shaped so).
 *
 * The handle: thread-specific data created on a thread's first request and
 * freed by the key's destructor when the thread exits. curl_easy_reset
 * between requests clears the options set for the previous caller (its
 * buffers, headers, callbacks) but keeps the connection cache, which is what
 * gives keep-alive: A1111's uvicorn, sd-server and ComfyUI's aiohttp all
 * keep HTTP/1.1 connections open, so a worker's next item goes out on the
 * same connection.
 */
#include "backends/http_client.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/errtext.h"
#include "setforge.h"
#include "util/xalloc.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int quickack_off; /* SETFORGE_NO_QUICKACK=1: for make bench's comparison only */

static void curl_init_once(void)
{
    /* Never paired with curl_global_cleanup: the client lives as long as the
     * process, and cleanup is not safe while another thread may use curl. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *q = getenv("SETFORGE_NO_QUICKACK");
    quickack_off = q && strcmp(q, "1") == 0;
}

void http_client_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void make_handle_key(void)
{
    pthread_key_create(&handle_key, handle_free);
}

/* This thread's handle (created on first use), or NULL when curl cannot
 * make one. Its options are whatever the last request left: reset them. */
static CURL *thread_handle(void)
{
    pthread_once(&handle_once, make_handle_key);
    CURL *h = pthread_getspecific(handle_key);
    if (h)
        return h;
    h = curl_easy_init();
    if (h)
        pthread_setspecific(handle_key, h);
    return h;
}

/*
 * The sockets this thread's handle has open (its connection cache: one per
 * server it keeps a connection to, usually one). libcurl does not say which
 * socket a transfer uses while it runs (CURLINFO_ACTIVESOCKET answers only
 * between transfers), and ack_now needs it: every one of them gets the
 * option, which on an idle connection does nothing. A handle belongs to one
 * thread, so the list is thread-local and needs no lock.
 */
#define MAX_SOCKETS 16
static _Thread_local curl_socket_t sockets[MAX_SOCKETS];
static _Thread_local int nsockets;

struct xfer {
    struct strbuf sb;
    size_t max_bytes;
    int too_big;
    atomic_int *cancel;
    const struct http_guard *guard;
    int (*sink)(const char *p, size_t n, void *ud);
    void *sink_ud;
    size_t sunk;     /* bytes given to the sink */
    int sink_failed;
    char refused[256]; /* why the guard refused an address; "" when it did not */
    CURL *h;
    const char *body;  /* the request body, handed over by on_read */
    size_t body_len, body_pos;
    int body_sent;     /* a byte of it was handed to libcurl: no rewind */
};

/* Hands libcurl the body, once (see "A request body is sent once" in
 * http_client.h). */
static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t room = size * n, left = x->body_len - x->body_pos;
    size_t k = left < room ? left : room;
    memcpy(buf, x->body + x->body_pos, k);
    x->body_pos += k;
    if (k)
        x->body_sent = 1;
    return k;
}

/* libcurl asks to rewind the body when it wants to send the request again
 * on a new connection: allowed only while nothing was handed over. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    struct xfer *x = ud;
    if (x->body_sent || origin != SEEK_SET || offset != 0)
        return CURL_SEEKFUNC_FAIL;
    x->body_pos = 0;
    return CURL_SEEKFUNC_OK;
}

/*
 * Answer bytes are arriving: acknowledge them at once. A server that does
 * not set TCP_NODELAY (sd-server's cpp-httplib, Python's http.server)
 * holds the last small segment of an answer until the previous ones are
 * acknowledged (Nagle), while Linux delays that acknowledgement up to 40 ms
 * on a connection that looks interactive: a kept-alive connection then
 * loses ~40 ms per answer. TCP_QUICKACK is not sticky (the kernel leaves
 * quick-ack mode on its own), so it is set again as each chunk arrives;
 * setting it also sends an acknowledgement that is pending.
 */
static void ack_now(struct xfer *x)
{
#ifdef TCP_QUICKACK
    if (quickack_off)
        return;
    (void)x;
    for (int i = 0; i < nsockets; i++) {
        int one = 1;
        setsockopt(sockets[i], IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
#else
    (void)x;
#endif
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    ack_now(ud);
    return size * n;
}

/* The guard's judgement of an address libcurl is about to connect to: 1 (and
 * the reason in x->refused) when a guarded request may not go there. */
static int guard_refuses(struct xfer *x, curlsocktype purpose, const struct curl_sockaddr *a)
{
    if (!x->guard || purpose != CURLSOCKTYPE_IPCXN)
        return 0;
    char rule[160], addr[64];
    if (!net_denied(&a->addr, x->guard->policy, rule, sizeof rule))
        return 0;
    net_addr_text(&a->addr, addr, sizeof addr);
    snprintf(x->refused, sizeof x->refused, "%s is %s", addr, rule);
    return 1;
}

/*
 * libcurl asks this for every socket it would open, after DNS, with the
 * address it will connect to: the first connection, each happy-eyeballs
 * attempt and each redirect hop. A guarded request's refused address gets
 * no socket, so not one byte is sent to it; libcurl then tries the next
 * address of the name, if any, and otherwise fails with COULDNT_CONNECT.
 */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = ud;
    if (guard_refuses(x, purpose, a))
        return CURL_SOCKET_BAD;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd != CURL_SOCKET_BAD && nsockets < MAX_SOCKETS)
        sockets[nsockets++] = fd;
    return fd;
}

/* Every socket this thread's handle opened is closed here (libcurl calls it
 * for the sockets on_open_socket made), so the list never names a closed
 * descriptor that was reused for something else. */
static int on_close_socket(void *ud, curl_socket_t fd)
{
    for (int i = 0; i < nsockets; i++)
        if (sockets[i] == fd) {
            sockets[i] = sockets[--nsockets];
            break;
        }
    return close(fd);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    ack_now(x);
    if (x->sb.len + x->sunk + len > x->max_bytes) {
        x->too_big = 1;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (x->sink) {
        if (x->sink(p, len, x->sink_ud) != 0) {
            x->sink_failed = 1;
            return 0;
        }
        x->sunk += len;
        return len;
    }
    sb_append(&x->sb, p, len);
    return len;
}

/* libcurl calls this often while data flows and about once a second when
 * idle; returning non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = ud;
    return x->cancel && atomic_load(x->cancel) ? 1 : 0;
}

char *http_response_take_body(struct http_response *resp, size_t *len)
{
    char *body = resp->body;
    if (len)
        *len = resp->len;
    resp->body = NULL;
    http_response_free(resp);
    return body;
}

void http_response_free(struct http_response *resp)
{
    free(resp->body);
    free(resp->final_url);
    memset(resp, 0, sizeof *resp);
}

/* The method and body options; returns the header list to send (owned by
 * the caller, freed after the exchange). The body goes through on_read. */
static struct curl_slist *set_method_and_body(CURL *h, const struct http_request *req,
                                              struct curl_slist *hdrs, struct xfer *x)
{
    const char *method = req->method ? req->method : "GET";
    int post = strcmp(method, "POST") == 0;
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (post || req->body) {
        char ctype[160];
        snprintf(ctype, sizeof ctype, "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        hdrs = curl_slist_append(hdrs, ctype);
        /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        x->body = req->body ? req->body : "";
        x->body_len = req->body ? req->body_len : 0;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
        /* A length, so the body goes with Content-Length, not chunked. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        if (!post)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method); /* DELETE and the like */
    }
    return hdrs;
}

/* The options of a guarded request (http_client.h, "Guarded requests"). */
static void set_guard(CURL *h, const struct http_guard *g)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (g->max_redirects > 0) {
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)g->max_redirects);
    }
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (g->low_speed_s > 0) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, g->low_speed_bps > 0 ? g->low_speed_bps : 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, g->low_speed_s);
    }
}

/* The sentence of a guard's refusal, or 0 when rc is not one. */
static int guard_refusal(const struct xfer *x, CURLcode rc, const char *who, char *err,
                         size_t errlen)
{
    if (!x->guard)
        return 0;
    if (x->refused[0] && rc == CURLE_COULDNT_CONNECT) {
        snprintf(err, errlen, "%s: refused: %s; private addresses are off (setting "
                 "outbound_addresses: all)", who, x->refused);
        if (x->guard->policy == NET_DENY_127_0_0_1)
            snprintf(err, errlen, "%s: refused: %s", who, x->refused);
        return 1;
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(err, errlen, "%s: refused: only http and https URLs are allowed", who);
        return 1;
    }
    if (rc == CURLE_TOO_MANY_REDIRECTS) {
        snprintf(err, errlen, "%s: refused: more than %d redirects", who, x->guard->max_redirects);
        return 1;
    }
    return 0;
}

enum http_outcome http_client_do(const struct http_request *req, struct http_response *resp,
                                 char *err, size_t errlen)
{
    http_client_global_init();
    memset(resp, 0, sizeof *resp);
    const char *who = req->who ? req->who : "http";
    if (req->cancel && atomic_load(req->cancel)) {
        snprintf(err, errlen, "%s: canceled", who);
        return HTTP_CANCELED;
    }
    CURL *h = thread_handle();
    if (!h) {
        snprintf(err, errlen, "%s: cannot create an HTTP handle", who);
        return HTTP_TRANSIENT;
    }
    curl_easy_reset(h);
    struct xfer x;
    sb_init(&x.sb);
    x.max_bytes = req->max_bytes ? req->max_bytes : HTTP_CLIENT_MAX_BYTES;
    x.too_big = 0;
    x.cancel = req->cancel;
    x.guard = req->guard;
    x.sink = req->sink;
    x.sink_ud = req->sink_ud;
    x.sunk = 0;
    x.sink_failed = 0;
    x.refused[0] = '\0';
    x.h = h;
    x.body = NULL;
    x.body_len = x.body_pos = 0;
    x.body_sent = 0;
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 600000L;
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    /* Worker threads: no SIGALRM-based DNS timeouts. */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "setforge/" SETFORGE_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x.max_bytes);
    /* http(s) only, redirects included (none are followed; see the header). */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &x);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    if (req->guard)
        set_guard(h, req->guard);
    if (req->userpwd) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, req->userpwd);
    }
    hdrs = set_method_and_body(h, req, hdrs, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    for (const char *const *p = req->headers; p && *p; p++)
        hdrs = curl_slist_append(hdrs, *p);
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    const char *ctype = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
    if (rc == CURLE_OK && ctype)
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ctype);
    curl_slist_free_all(hdrs);
    /* The handle stays, with its connection, for this thread's next call;
     * it must not keep pointers into this call's buffers. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, NULL);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, NULL);
    curl_easy_setopt(h, CURLOPT_READDATA, NULL);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);

    const char *detail = cerr[0] ? cerr : curl_easy_strerror(rc);
    enum http_outcome res = HTTP_TRANSIENT;
    if (rc != CURLE_OK && guard_refusal(&x, rc, who, err, errlen)) {
        sb_free(&x.sb);
        return HTTP_REFUSED;
    }
    switch (rc) {
    case CURLE_OK: {
        const char *final = NULL;
        curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &final);
        resp->status = status;
        resp->body = sb_detach(&x.sb, &resp->len);
        if (x.sink)
            resp->len = x.sunk;
        resp->final_url = xstrdup(final ? final : req->url);
        return HTTP_ANSWERED;
    }
    case CURLE_ABORTED_BY_CALLBACK:
        snprintf(err, errlen, "%s: canceled", who);
        res = HTTP_CANCELED;
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (x.sink_failed) {
            snprintf(err, errlen, "%s: the answer could not be kept", who);
            break;
        }
        if (!x.too_big && rc != CURLE_FILESIZE_EXCEEDED) {
            snprintf(err, errlen, "%s: %s", who, detail);
            break;
        }
        resp->cut = HTTP_CUT_TOO_LARGE;
        if (x.max_bytes % ((size_t)1 << 20) == 0)
            snprintf(err, errlen, "%s: answer larger than %zu MiB", who, x.max_bytes >> 20);
        else
            snprintf(err, errlen, "%s: answer larger than %zu bytes", who, x.max_bytes);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (req->guard && req->guard->low_speed_s > 0 && strstr(detail, "too slow")) {
            snprintf(err, errlen, "%s: too slow (under %ld bytes/s for %ld s)", who,
                     req->guard->low_speed_bps > 0 ? req->guard->low_speed_bps : 1L,
                     req->guard->low_speed_s);
            resp->cut = HTTP_CUT_TOO_SLOW;
            break;
        }
        resp->cut = HTTP_CUT_TIMEOUT;
        snprintf(err, errlen, "%s: timed out after %.6g s (%s)", who, timeout_ms / 1000.0, detail);
        /* No body byte left: a POST that never got a connection. */
        if (x.body && !x.body_sent && x.body_len > 0)
            res = HTTP_UNDELIVERED;
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        resp->cut = HTTP_CUT_CONNECT;
        snprintf(err, errlen, "%s: cannot connect (%s)", who, detail);
        res = HTTP_UNDELIVERED;
        break;
    case CURLE_SEND_FAIL_REWIND:
        /* libcurl wanted to send the request again on a new connection. */
        snprintf(err, errlen, "%s: connection lost mid-request (the server may have received "
                 "it; it is not sent twice)", who);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        snprintf(err, errlen, "%s: connection closed mid-answer (%s)", who, detail);
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(err, errlen, "%s: bad URL (%s)", who, detail);
        res = HTTP_PERMANENT;
        break;
    default:
        snprintf(err, errlen, "%s: %s", who, detail);
        break;
    }
    sb_free(&x.sb);
    return res;
}

int http_client_probe(const struct http_request *req, char *err, size_t errlen)
{
    struct http_response resp;
    if (http_client_do(req, &resp, err, errlen) != HTTP_ANSWERED)
        return -1;
    int rc = 0;
    if (resp.status != 200) {
        char text[256];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: HTTP %ld: %s", req->who ? req->who : "http", resp.status,
                 text);
        rc = -1;
    }
    http_response_free(&resp);
    return rc;
}

char *http_url_escape(const char *s)
{
    /* curl_easy_escape uses the handle for nothing that a request set up,
     * so this thread's handle serves and is left as it was. It fails only
     * when out of memory, where "" is as good as anything. */
    http_client_global_init();
    CURL *h = thread_handle();
    char *e = h ? curl_easy_escape(h, s ? s : "", 0) : NULL;
    char *copy = xstrdup(e ? e : "");
    curl_free(e);
    return copy;
}

/* ---- raw connections (http_client.h, "Raw connections") ---- */

struct http_conn {
    CURL *h;
    curl_socket_t fd;
};

/* The guard of a raw connection's socket: the same judgement as an
 * exchange's, without the thread's socket list (the connection is not the
 * thread's, and may be closed elsewhere). */
static curl_socket_t on_open_conn_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = ud;
    if (guard_refuses(x, purpose, a))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

enum http_outcome http_client_connect(const struct http_request *req, struct http_conn **out,
                                      char *err, size_t errlen)
{
    http_client_global_init();
    *out = NULL;
    const char *who = req->who ? req->who : "http";
    if (req->cancel && atomic_load(req->cancel)) {
        snprintf(err, errlen, "%s: canceled", who);
        return HTTP_CANCELED;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "%s: cannot create an HTTP handle", who);
        return HTTP_TRANSIENT;
    }
    struct xfer x;
    memset(&x, 0, sizeof x);
    x.guard = req->guard;
    x.cancel = req->cancel;
    char cerr[CURL_ERROR_SIZE] = "";
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 10000L;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_conn_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &x);
    if (req->guard)
        set_guard(h, req->guard);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, NULL);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, NULL);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
    if (rc != CURLE_OK) {
        const char *detail = cerr[0] ? cerr : curl_easy_strerror(rc);
        enum http_outcome res = HTTP_TRANSIENT;
        if (guard_refusal(&x, rc, who, err, errlen))
            res = HTTP_REFUSED;
        else if (rc == CURLE_ABORTED_BY_CALLBACK) {
            snprintf(err, errlen, "%s: canceled", who);
            res = HTTP_CANCELED;
        } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
            snprintf(err, errlen, "%s: cannot connect (%s)", who, detail);
            res = HTTP_UNDELIVERED;
        } else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
            snprintf(err, errlen, "%s: bad URL (%s)", who, detail);
            res = HTTP_PERMANENT;
        } else {
            snprintf(err, errlen, "%s: %s", who, detail);
        }
        curl_easy_cleanup(h);
        return res;
    }
    curl_socket_t fd = CURL_SOCKET_BAD;
    curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd);
    struct http_conn *c = xcalloc(1, sizeof *c);
    c->h = h;
    c->fd = fd;
    *out = c;
    return HTTP_ANSWERED;
}

long http_conn_send(struct http_conn *c, const void *p, size_t n)
{
    size_t sent = 0;
    CURLcode rc = curl_easy_send(c->h, p, n, &sent);
    if (rc == CURLE_AGAIN)
        return 0;
    return rc == CURLE_OK ? (long)sent : -1;
}

long http_conn_recv(struct http_conn *c, void *p, size_t n)
{
    size_t got = 0;
    CURLcode rc = curl_easy_recv(c->h, p, n, &got);
    if (rc == CURLE_AGAIN)
        return 0;
    if (rc != CURLE_OK || got == 0) /* 0 bytes with CURLE_OK: the peer closed */
        return -1;
    return (long)got;
}

int http_conn_fd(struct http_conn *c)
{
    return c->fd == CURL_SOCKET_BAD ? -1 : (int)c->fd;
}

void http_conn_close(struct http_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}
