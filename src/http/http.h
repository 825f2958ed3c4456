/*
 * http.h: what a route handler sees: the request, the response it fills, and
 * the one handler signature.
 *
 * A handler reads from struct sf_request (path ids, query, parsed JSON body,
 * who is calling), and either fills the response with res_json()/res_body()
 * and returns SF_OK, or returns the status of res_fail()/res_invalid(). The
 * server turns a failure into the HTTP status and {"error", "code"} body in
 * one place (server.c, using util/status.c), so handlers never pick HTTP
 * numbers for errors.
 */
#ifndef SF_HTTP_H
#define SF_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"
#include "util/status.h"
#include "util/xalloc.h"

#define REQ_MAX_IDS 4
#define RES_MAX_HEADERS 8

struct route;
struct sf_server;
struct MHD_Connection;
struct MHD_Response;

struct sf_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const struct route *route;
    long long ids[REQ_MAX_IDS]; /* the numeric path segments, in order */
    int nids;
    const char *body; /* raw body (NUL-terminated), may be NULL */
    size_t body_len;
    json_t *json;     /* parsed body for routes that take one (borrowed) */
    bool authenticated;
    bool is_admin;
    long long token_id;
    char token_name[128];
    char client_ip[48]; /* filled by req_client_ip() on first use */
    const struct sf_config *cfg; /* the daemon's settings (borrowed) */
    struct sf_server *server;    /* opaque to handlers: see req_server_stats() */
};

struct sf_response {
    int http_status;
    char *body; /* owned */
    size_t body_len;
    const char *content_type;
    struct {
        const char *name;
        char *value; /* owned */
    } headers[RES_MAX_HEADERS];
    int nheaders;
    /* failure details, turned into the error body by the server */
    char *error;    /* owned */
    json_t *fields; /* owned */
    /* set by res_file(), res_stream() and res_callback(), never by
     * handlers themselves */
    struct MHD_Response *mhd_response;
};

typedef sf_status (*sf_handler)(struct sf_request *req, struct sf_response *res);

/* Responds with a JSON document (stolen). Returns SF_OK. */
sf_status res_json(struct sf_response *res, int http_status, json_t *doc);
/* Responds with raw bytes (stolen, malloc'd) of a content type (static). */
sf_status res_body(struct sf_response *res, int http_status,
                   const char *content_type, char *body, size_t len);
/* Adds a response header; value is printf-formatted and copied. */
void res_header(struct sf_response *res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Responds 200 with the contents of an open file (fd is stolen: closed now
 * on failure, or by libmicrohttpd after sending it with sendfile()).
 * SF_EINTERNAL with a sentence when the file cannot be sent.
 */
sf_status res_file(struct sf_response *res, int fd, const char *content_type);

/*
 * A stream that can wait without holding a pool thread (Server-Sent
 * Events). The server calls fill whenever what it was given has been sent:
 * fill appends what is new to out and returns STREAM_DATA, or returns
 * STREAM_WAIT when there is nothing yet (the connection is suspended until
 * stream_notify() names its topic, or the stream has been quiet for the
 * heartbeat interval, when fill is called with idle = 1 and should write a
 * keep-alive), or STREAM_END. Races are closed by the server: a notify that
 * comes while fill runs wakes the stream again at once.
 */
enum stream_fill { STREAM_DATA, STREAM_WAIT, STREAM_END };
typedef enum stream_fill (*stream_fill_fn)(void *ctx, struct strbuf *out, int idle);

/* Responds 200 with a stream on topic (a run id) of content_type (static).
 * ctx is owned by the stream from now on and freed with free_ctx when the
 * connection ends, also when this call fails. */
sf_status res_stream(struct sf_request *req, struct sf_response *res, long long topic,
                     const char *content_type, stream_fill_fn fill, void *ctx,
                     void (*free_ctx)(void *ctx));

/*
 * A body produced while it is sent, of a length not known up front (sent
 * chunked): a pull generator. Whenever the client can take more, the
 * server calls pull, which writes at most max bytes (max > 0) into buf and
 * returns how many: > 0, 0 at the end of the body, or -1 to cut the
 * connection (the client sees a body without its last chunk, never a
 * complete-looking one). pull runs on a pool thread and should return
 * promptly (a read of a local file is fine); it must not return 0 before
 * the end. ctx is owned from now on and freed with free_ctx when the
 * connection is done with it, also when this call fails.
 */
typedef long (*res_pull_fn)(void *ctx, char *buf, size_t max);

/* Responds 200 with a pulled body of content_type (static). */
sf_status res_callback(struct sf_response *res, const char *content_type, res_pull_fn pull,
                       void *ctx, void (*free_ctx)(void *ctx));

/* Records a failure sentence and returns st. */
sf_status res_fail(struct sf_response *res, sf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A validation failure: fields (stolen) names what is wrong. Returns SF_EINVAL. */
sf_status res_invalid(struct sf_response *res, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* res_invalid with a sentence naming the fields (stolen) after what. */
sf_status res_invalid_fields(struct sf_response *res, json_t *fields, const char *what);

/* The value of a query parameter, or NULL (borrowed from libmicrohttpd). */
const char *req_query(const struct sf_request *req, const char *name);
/* The client's IPv4 address as text (looked up once per request). */
const char *req_client_ip(struct sf_request *req);

/* The value of a request header, or NULL (borrowed). */
const char *req_header(const struct sf_request *req, const char *name);

/* Pagination from ?page and ?per_page (see util/pagination.h). */
struct page;
sf_status req_page(struct sf_request *req, struct sf_response *res, struct page *pg);

/* What the server has counted since it started (for /metrics): requests by
 * route (slot HTTP_MAX_ROUTES: no route matched) and status slot
 * (http_status_slots[], the last slot: any other status), and the streams
 * open now. */
#define HTTP_MAX_ROUTES 64
#define HTTP_STATUS_SLOTS 12
extern const int http_status_slots[HTTP_STATUS_SLOTS];
struct http_stats {
    unsigned long requests[HTTP_MAX_ROUTES + 1][HTTP_STATUS_SLOTS];
    int streams;
};
void req_server_stats(const struct sf_request *req, struct http_stats *out);

/* What the server asks of the application around each handler; api/
 * provides it, so http/ needs no store. */
struct sf_app {
    /* Makes sure this thread can serve (its database connection is open);
     * 0, or -1 when it cannot now (out of files): the request gets a 503.
     * Called when a pool thread takes a connection, and before each
     * handler. */
    int (*thread_ready)(void);
    /* Resolves a presented bearer token: fills req->authenticated,
     * is_admin, token_id and token_name. SF_OK for a live token,
     * SF_EUNAUTH for an unknown or revoked one, another status when it
     * cannot be checked now. */
    sf_status (*authenticate)(struct sf_request *req, const char *token);
    /* Opens one read snapshot for a GET handler: 1 when opened. */
    int (*begin_read)(void);
    /* After every handler: ends the snapshot when one was opened, and
     * undoes whatever a failed handler left open. */
    void (*end_request)(int snapshot);
    /* A number that moves after every commit of this process: an answer
     * cached at one value is current while it stays the same. */
    uint64_t (*generation)(void);
};

#endif
