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
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/status.h"

#define REQ_MAX_IDS 4
#define RES_MAX_HEADERS 8

struct route;
struct sf_server;

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
    struct sf_server *server;
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
    /* set by handlers that take over the connection (streams) */
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

#endif
