/*
 * http_client.h: the daemon's one outbound HTTP client.
 *
 * What it is for. Every request setforge makes to another server goes
 * through http_client_do(): today the inference backends (A1111 and Forge,
 * stable-diffusion.cpp's sd-server, ComfyUI), later scraping web pages into
 * albums, webhooks and live previews. One place then decides timeouts, the
 * cap on what an answer may weigh, cancellation, keep-alive, the protocols
 * allowed and how a failure is classified, and a new caller gets all of that
 * by filling in one struct. It knows nothing of backends, jobs or images:
 * it takes a request and gives back status and bytes.
 *
 * Threads and keep-alive. Each thread that calls http_client_do() gets its
 * own libcurl easy handle on its first call, kept in thread-specific storage
 * and reused: between requests the handle's options are reset, its
 * connection cache is not. A worker that talks to one inference server thus
 * keeps its TCP connection (HTTP/1.1 keep-alive) open from one image to the
 * next: no new handshake, and no new connection for the server to set up
 * while a GPU waits. A connection the server closed meanwhile is noticed by
 * libcurl and replaced transparently. A handle is never shared between
 * threads (so there is no lock), a thread may talk to any number of servers,
 * and the handle is freed when its thread exits.
 *
 * Results. http_client_do() says how the exchange went, not whether the
 * caller got what it wanted:
 *   HTTP_ANSWERED   an HTTP answer arrived, whatever its status; the caller
 *                   judges the status (a 404 is an error for a backend and
 *                   "no such page" for a scraper).
 *   HTTP_TRANSIENT  no usable answer, and the same request may work later
 *                   or elsewhere: timeout, connection dropped mid-answer,
 *                   an answer over the byte cap, no curl handle.
 *   HTTP_UNDELIVERED no byte of the request reached a server: connection
 *                   refused, no such host, no connection before the
 *                   timeout. Sending it again, here or elsewhere, costs
 *                   the server nothing (the engine does not count it as an
 *                   attempt).
 *   HTTP_PERMANENT  the request can never work as given: a malformed URL or
 *                   a scheme other than http and https.
 *   HTTP_CANCELED   *cancel was set before or during the exchange.
 * This is its own enum rather than backend.h's backend_result because the
 * two answer different questions: BACKEND_OK means "here is an image",
 * HTTP_ANSWERED only "a server said something" (a 500 is HTTP_ANSWERED and
 * becomes BACKEND_TRANSIENT once judged), and webhooks or a scraper should
 * not include the backend interface to make a request. Backends map the
 * three failure classes one to one (be_result() in backends_real.h).
 *
 * A request body is sent once. libcurl re-sends a request on a fresh
 * connection when a kept-alive one dies before any answer byte arrives; for
 * a txt2img POST that is a second GPU job when the server died after
 * reading the first (a GPU minute is not idempotent). The body is therefore
 * given through a read callback whose rewind is refused once a byte was
 * handed over: such an exchange ends as HTTP_TRANSIENT, "connection lost
 * mid-request", and the server has seen the body once.
 *
 * Cancellation goes through libcurl's progress callback, which runs often
 * while bytes flow and about once a second while the server is silent: a
 * set *cancel ends an exchange within about a second at worst.
 *
 * Guarded requests. The inference servers are the operator's own, named in
 * the config, and often on loopback or the LAN. Scrape jobs and webhooks go
 * to URLs that users type, so they set req->guard: then the client is the
 * SSRF-safe one of docs/security.md:
 *   - only http and https, on the first request and on every redirect;
 *   - at most guard->max_redirects redirects (the limit is 3);
 *   - the address actually connected to, after DNS and on every connection
 *     and redirect hop, is judged by util/netfilter.c before the socket is
 *     opened (CURLOPT_OPENSOCKETFUNCTION), so a refused address never gets
 *     a byte, whatever the URL's spelling (2130706433, [::ffff:127.0.0.1],
 *     a name that resolves to loopback, a redirect to 169.254.169.254);
 *   - a new connection every time (a kept-alive connection opened by an
 *     unguarded request to the same host would skip the check), and no
 *     proxy from the environment (it would be the address checked);
 *   - a low-speed limit, so a one-byte-a-second drip is cut;
 *   - the byte cap counts bytes as they stream, so an answer without
 *     Content-Length cannot grow past it either.
 * A refusal is HTTP_REFUSED with a sentence naming the rule ("... 127.0.0.1
 * is loopback (127.0.0.0/8); private addresses are off (setting
 * outbound_addresses: all)"). The settings that pick the policy live with
 * the callers; this module only applies it.
 *
 * Raw connections. A websocket (ComfyUI's /ws, for live steps) starts as
 * an HTTP request and then speaks its own framing on the same socket.
 * http_client_connect() opens that socket under the same rules as an
 * exchange (the URL's scheme, timeouts, the guard's address check before
 * the socket exists, TLS for https) and hands it over as a struct
 * http_conn, on which the caller sends and receives bytes itself
 * (libcurl's CURLOPT_CONNECT_ONLY). Such a connection has its own handle,
 * not the thread's, so it may outlive and cross exchanges.
 */
#ifndef SF_HTTP_CLIENT_H
#define SF_HTTP_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/netfilter.h"

/* The answer cap when a request sets none. */
#define HTTP_CLIENT_MAX_BYTES ((size_t)256 * 1024 * 1024)

enum http_outcome {
    HTTP_ANSWERED = 0, /* an answer with some status: the caller judges it */
    HTTP_TRANSIENT,    /* no answer; may work later or elsewhere */
    HTTP_UNDELIVERED,  /* no answer, and the request never left: may be sent again freely */
    HTTP_PERMANENT,    /* cannot work as given (bad URL, scheme) */
    HTTP_CANCELED,     /* *cancel was set */
    HTTP_REFUSED,      /* a guarded request's URL, scheme, redirect or address is refused */
};

/* What makes a request to a user-typed URL safe (see the top of this file). */
struct http_guard {
    enum net_policy policy; /* which addresses may be reached */
    int max_redirects;      /* redirects followed, each hop checked; 0: none */
    long low_speed_bps;     /* an answer slower than this... */
    long low_speed_s;       /* ...for this many seconds is cut; 0: no limit */
};

/* One request. Every pointer is borrowed for the duration of the call. */
struct http_request {
    const char *method;          /* "GET" (also when NULL), "HEAD", "POST", "PUT", ... */
    const char *url;             /* http:// or https:// */
    const char *const *headers;  /* extra "Name: value" lines, NULL-terminated; or NULL */
    const char *body;            /* request body; POST sends "" when NULL */
    size_t body_len;
    const char *content_type;    /* of the body; NULL: "application/json" */
    const char *userpwd;         /* "user:pass" for HTTP Basic, or NULL */
    long timeout_ms;             /* the whole exchange; 0: 600 s */
    long connect_timeout_ms;     /* 0: 10 s */
    size_t max_bytes;            /* largest answer body; 0: HTTP_CLIENT_MAX_BYTES */
    atomic_int *cancel;          /* the exchange ends when it becomes non-zero; may be NULL */
    const char *who;             /* starts every message, e.g. "a1111 gpu0"; NULL: "http" */
    const struct http_guard *guard; /* user-typed URL: the SSRF-safe rules; NULL: trusted */
    /* Optional: the answer's bytes go to sink as they arrive instead of into
     * resp->body (which stays "", resp->len counts them), so a large answer
     * costs no memory (scrape jobs write downloads to a file). max_bytes
     * still applies. A sink that returns non-zero ends the exchange
     * (HTTP_TRANSIENT, "... the answer could not be kept"). */
    int (*sink)(const char *p, size_t n, void *ud);
    void *sink_ud;
};

/* Why an exchange without an answer was cut (http_response.cut), for
 * callers that count reasons (scrape jobs); the sentence in err says more. */
enum http_cut {
    HTTP_CUT_NONE = 0,
    HTTP_CUT_TOO_LARGE, /* over max_bytes */
    HTTP_CUT_TOO_SLOW,  /* under the guard's low-speed limit */
    HTTP_CUT_TIMEOUT,   /* over timeout_ms */
    HTTP_CUT_CONNECT,   /* no connection (refused, DNS) */
};

struct http_response {
    long status;           /* HTTP status; 0 when no answer came */
    char *body;            /* malloc'd, NUL-terminated after len bytes; see http_response_free */
    size_t len;
    char content_type[128]; /* the answer's Content-Type, "" when none (cut when longer) */
    char *final_url;       /* malloc'd: the URL that answered (after redirects), or NULL */
    enum http_cut cut;     /* set when no answer came (HTTP_TRANSIENT) and why is known */
};

/*
 * Performs one exchange on this thread's handle. HTTP_ANSWERED fills resp
 * (the caller owns resp->body and frees it with http_response_free).
 * Otherwise resp is empty (body NULL, status 0) and err holds a sentence
 * starting with req->who ("a1111 gpu0: cannot connect (...)"): the classes
 * are described at the top of this file.
 */
enum http_outcome http_client_do(const struct http_request *req, struct http_response *resp,
                                 char *err, size_t errlen);

/* A raw connection (see "Raw connections" above). */
struct http_conn;

/*
 * Connects to req->url's host and port (method, body and headers are not
 * used; timeout_ms bounds the connection, connect_timeout_ms too, cancel
 * and guard apply). HTTP_ANSWERED with *out set (the caller closes it with
 * http_conn_close), or a failure class with err, as http_client_do.
 */
enum http_outcome http_client_connect(const struct http_request *req, struct http_conn **out,
                                      char *err, size_t errlen);

/* Sends up to n bytes: how many went (> 0), 0 when the socket cannot take
 * any now (wait with http_conn_fd), -1 when the connection is broken. */
long http_conn_send(struct http_conn *c, const void *p, size_t n);
/* Receives up to n bytes: how many came (> 0), 0 when none are there now,
 * -1 when the peer closed the connection or it broke. */
long http_conn_recv(struct http_conn *c, void *p, size_t n);
/* The socket, for poll(); -1 when unknown. */
int http_conn_fd(struct http_conn *c);
/* Closes the connection and frees c; NULL does nothing. */
void http_conn_close(struct http_conn *c);

/* Frees resp->body and empties resp; safe on an emptied response. */
void http_response_free(struct http_response *resp);

/* Takes the body out of resp (the caller frees it; *len gets its length)
 * and frees the rest, leaving resp empty. */
char *http_response_take_body(struct http_response *resp, size_t *len);

/*
 * A health probe: performs req and wants HTTP 200. 0, or -1 with a sentence
 * in err (why no answer came, or "<who>: HTTP 503: <the server's error
 * text>", see errtext.h).
 */
int http_client_probe(const struct http_request *req, char *err, size_t errlen);

/* Percent-encodes s for a URL query value or path segment; returns a
 * malloc'd string the caller frees. */
char *http_url_escape(const char *s);

/* libcurl's process-wide initialisation, once (http_client_do calls it too;
 * constructors call it early, before any worker thread exists, because
 * curl_global_init is not thread-safe on every platform). */
void http_client_global_init(void);

#endif
