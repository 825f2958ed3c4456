/*
 * ws_client.c: a websocket client on a socket from http_client_connect,
 * with libwslay for the frames (see ws_client.h for what it is for).
 *
 * The handshake is ours (RFC 6455 4.1): a GET with Upgrade: websocket and
 * a random Sec-WebSocket-Key; the answer must be 101 with
 * Sec-WebSocket-Accept = base64(SHA-1(key + the RFC's GUID)), or we refuse
 * to go on (a proxy or a server that did not understand would otherwise
 * send us HTTP we would read as frames). Bytes that arrived after the
 * answer's headers are the first frames, so they are kept and handed to
 * wslay before the socket is read again.
 *
 * wslay's event API pulls bytes through our recv and send callbacks, which
 * call the connection's non-blocking recv and send and say "would block"
 * when there is nothing; ws_next() polls the socket between its attempts.
 * A message wslay completes is copied onto a small queue that ws_next()
 * hands out one at a time.
 */
#include "backends/ws_client.h"

#include <openssl/evp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#include "util/hash.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEAD 16384
#define WS_MAX_MESSAGE ((uint64_t)32 * 1024 * 1024)

struct queued {
    struct ws_message m;
    struct queued *next;
};

struct ws_client {
    struct http_conn *conn;
    wslay_event_context_ptr ctx;
    unsigned char *pre; /* bytes read with the handshake's answer, not yet given to wslay */
    size_t pre_len, pre_off;
    struct queued *head, *tail;
    int broken; /* the socket failed (not just "nothing now") */
};

void ws_accept_key(const char *key, char out[29])
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen); /* 20 bytes: 28 chars + NUL */
}

/* ---- wslay's callbacks ---- */

/* wslay's answer for a transfer of n bytes (http_conn_recv/send: 0 = would
 * block, < 0 = the connection broke). */
static ssize_t io_result(wslay_event_context_ptr ctx, struct ws_client *c, long n)
{
    if (n > 0)
        return n;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    } else {
        c->broken = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    }
    return -1;
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *ud)
{
    struct ws_client *c = ud;
    if (c->pre_off < c->pre_len) {
        size_t n = c->pre_len - c->pre_off;
        if (n > len)
            n = len;
        memcpy(buf, c->pre + c->pre_off, n);
        c->pre_off += n;
        return (ssize_t)n;
    }
    long n = http_conn_recv(c->conn, buf, len);
    return io_result(ctx, c, n);
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    struct ws_client *c = ud;
    long n = http_conn_send(c->conn, data, len);
    return io_result(ctx, c, n);
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    return random_bytes(buf, len) == 0 ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    struct ws_client *c = ud;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping, pong, close: wslay answers them */
    struct queued *q = xcalloc(1, sizeof *q);
    q->m.kind = arg->opcode == WSLAY_TEXT_FRAME ? WS_TEXT : WS_BINARY;
    q->m.data = xmalloc(arg->msg_length + 1);
    memcpy(q->m.data, arg->msg, arg->msg_length);
    q->m.data[arg->msg_length] = '\0';
    q->m.len = arg->msg_length;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
}

/* ---- the handshake ---- */

/* Waits until the socket is readable (events POLLIN) or writable, or ms. */
static void wait_fd(struct ws_client *c, short events, int64_t ms)
{
    int fd = http_conn_fd(c->conn);
    if (fd < 0 || ms <= 0)
        return;
    struct pollfd p = {.fd = fd, .events = events};
    poll(&p, 1, ms > 1000 ? 1000 : (int)ms);
}

/* A header's value in an answer's head (NUL-terminated), or NULL; the
 * value is copied into out. */
static const char *header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t)(end - v) : strlen(v);
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            snprintf(out, outlen, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

enum http_outcome ws_open(const char *base_url, const char *path, long timeout_ms,
                          atomic_int *cancel, const char *who, struct ws_client **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    const char *rest = strstr(base_url, "://");
    if (!rest) {
        snprintf(err, errlen, "%s: websocket: bad URL %s", who, base_url);
        return HTTP_PERMANENT;
    }
    rest += 3;
    const char *slash = strchr(rest, '/');
    size_t hostlen = slash ? (size_t)(slash - rest) : strlen(rest);
    int64_t until = mono_ms() + timeout_ms;
    struct http_request hr = {
        .url = base_url,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms,
        .cancel = cancel,
        .who = who,
    };
    struct http_conn *conn;
    enum http_outcome o = http_client_connect(&hr, &conn, err, errlen);
    if (o != HTTP_ANSWERED)
        return o;
    struct ws_client *c = xcalloc(1, sizeof *c);
    c->conn = conn;

    unsigned char rnd[16];
    char key[32], want[29];
    random_bytes(rnd, sizeof rnd);
    EVP_EncodeBlock((unsigned char *)key, rnd, (int)sizeof rnd);
    ws_accept_key(key, want);
    char *req = xasprintf("GET %s%s HTTP/1.1\r\nHost: %.*s\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\nUser-Agent: setforge\r\n\r\n",
                          slash ? slash : "", path, (int)hostlen, rest, key);
    size_t reqlen = strlen(req), sent = 0;
    o = HTTP_TRANSIENT;
    while (sent < reqlen) {
        long n = http_conn_send(conn, req + sent, reqlen - sent);
        if (n < 0 || mono_ms() >= until || (cancel && atomic_load(cancel))) {
            snprintf(err, errlen, "%s: websocket: the upgrade request could not be sent", who);
            goto fail;
        }
        sent += (size_t)n;
        if (n == 0)
            wait_fd(c, POLLOUT, until - mono_ms());
    }
    unsigned char *head = xmalloc(WS_MAX_HEAD + 1);
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == WS_MAX_HEAD || mono_ms() >= until || (cancel && atomic_load(cancel))) {
            snprintf(err, errlen, "%s: websocket: no upgrade answer", who);
            free(head);
            goto fail;
        }
        long n = http_conn_recv(conn, head + got, WS_MAX_HEAD - got);
        if (n < 0) {
            snprintf(err, errlen, "%s: websocket: the connection closed during the upgrade", who);
            free(head);
            goto fail;
        }
        if (n == 0) {
            wait_fd(c, POLLIN, until - mono_ms());
            continue;
        }
        got += (size_t)n;
        head[got] = '\0';
        end = strstr((char *)head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - (char *)head) + 4;
    end[2] = '\0'; /* the head, with its last line's CRLF, as a string */
    int status = 0;
    sscanf((char *)head, "HTTP/%*d.%*d %d", &status);
    char accept[64];
    if (status != 101) {
        snprintf(err, errlen, "%s: websocket: HTTP %d to the upgrade of %s", who, status, path);
        free(head);
        o = HTTP_PERMANENT;
        goto fail;
    }
    if (!header_value((char *)head, "Sec-WebSocket-Accept", accept, sizeof accept) ||
        strcmp(accept, want) != 0) {
        snprintf(err, errlen, "%s: websocket: the upgrade answer's Sec-WebSocket-Accept is wrong",
                 who);
        free(head);
        o = HTTP_PERMANENT;
        goto fail;
    }
    c->pre_len = got - head_len;
    if (c->pre_len) {
        c->pre = xmalloc(c->pre_len);
        memcpy(c->pre, head + head_len, c->pre_len);
    }
    free(head);
    free(req);
    struct wslay_event_callbacks cb = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .genmask_callback = on_genmask,
        .on_msg_recv_callback = on_msg,
    };
    if (wslay_event_context_client_init(&c->ctx, &cb, c) != 0) {
        snprintf(err, errlen, "%s: websocket: out of memory", who);
        ws_close(c);
        return HTTP_TRANSIENT;
    }
    wslay_event_config_set_max_recv_msg_length(c->ctx, WS_MAX_MESSAGE);
    *out = c;
    return HTTP_ANSWERED;
fail:
    free(req);
    ws_close(c);
    return o;
}

/* ---- messages ---- */

int ws_next(struct ws_client *c, int wait_ms, struct ws_message *m, char *err, size_t errlen)
{
    int64_t until = mono_ms() + wait_ms;
    for (;;) {
        if (c->head) {
            struct queued *q = c->head;
            c->head = q->next;
            if (!c->head)
                c->tail = NULL;
            *m = q->m;
            free(q);
            return 1;
        }
        /* Read first, poll after: bytes may wait inside the connection
         * (TLS) while the socket itself has nothing. */
        if (wslay_event_want_read(c->ctx) && wslay_event_recv(c->ctx) != 0) {
            snprintf(err, errlen, c->broken ? "the websocket connection broke"
                                            : "the websocket stream is malformed");
            return -1;
        }
        if (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0) {
            snprintf(err, errlen, "the websocket connection broke");
            return -1;
        }
        if (c->head)
            continue;
        if (!wslay_event_want_read(c->ctx)) {
            snprintf(err, errlen, "the server closed the websocket");
            return -1;
        }
        int64_t left = until - mono_ms();
        if (left <= 0)
            return 0;
        wait_fd(c, (short)(POLLIN | (wslay_event_want_write(c->ctx) ? POLLOUT : 0)), left);
    }
}

void ws_close(struct ws_client *c)
{
    if (!c)
        return;
    if (c->ctx) {
        /* Polite when it can be at once; never waits for the server. */
        wslay_event_queue_close(c->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        wslay_event_send(c->ctx);
        wslay_event_context_free(c->ctx);
    }
    while (c->head) {
        struct queued *q = c->head;
        c->head = q->next;
        free(q->m.data);
        free(q);
    }
    http_conn_close(c->conn);
    free(c->pre);
    free(c);
}
