/*
 * server.c: libmicrohttpd set-up and the one access handler.
 *
 * libmicrohttpd calls the access handler several times per request (its
 * examples call this the three-call pattern): once when the headers are in,
 * once per chunk of body, and once more with no data when the body is done.
 * We use the first call to reject a declared oversized body before reading
 * it, the data calls to collect the body up to body_limit (past that we keep
 * reading and discard, so the answer is a clean 413 and never a truncated
 * body), and the last call to route, authenticate, parse JSON and run the
 * handler.
 *
 * This is also the one place that turns an internal sf_status into an HTTP
 * status and the contract's {"error", "code"[, "fields"]} body.
 *
 * Threads: an epoll loop per pool thread (MHD_USE_EPOLL_INTERNAL_THREAD with
 * MHD_OPTION_THREAD_POOL_SIZE). Handlers must not block on slow things;
 * anything long (inference) happens in the worker pool, and streams suspend
 * their connection instead of holding a pool thread.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/cache.h"
#include "http/http.h"
#include "http/router.h"
#include "http/stream.h"
#include "http/watchdog.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

const int http_status_slots[HTTP_STATUS_SLOTS] = {
    200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 413, 0 /* any other */};

struct conn_state {
    struct strbuf body;
    int too_large;
    int uri_too_long;
    int started; /* the access handler has seen the headers */
    struct watch *watch; /* the connection's deadlines (http/watchdog.c), or NULL */
    int64_t start_us;
};

/* A request line longer than this, or a query with more arguments, is a
 * 414 in JSON. (A query so large that libmicrohttpd 0.9.75 cannot even
 * store its arguments in the connection's memory never reaches us: it
 * tries its own 431 and, with the pool full, leaves the client to the
 * connection timeout. docs/operations.md.) */
#define URI_MAX_LEN 8192
#define QUERY_MAX_ARGS 256

/*
 * Called with the raw request target as soon as the request line is in,
 * before libmicrohttpd parses the query: the per-request state starts here
 * (its pointer becomes *con_cls), with the verdict on the URI's size.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct conn_state *cs = xcalloc(1, sizeof(*cs));
    sb_init(&cs->body);
    cs->start_us = mono_us();
    size_t args = 0;
    const char *q = strchr(uri, '?');
    for (const char *p = q; p && *p; p++)
        args += *p == '&';
    cs->uri_too_long = strlen(uri) > URI_MAX_LEN || (q && args + 1 > QUERY_MAX_ARGS);
    return cs;
}

/* The one transfer coding we take is a single "chunked" (RFC 9112 6.1),
 * compared exactly as libmicrohttpd does, so that the two never disagree
 * on where a body ends. */
static int transfer_coding_ok(const char *te)
{
    return !te || strcasecmp(te, "chunked") == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int status_slot(int http)
{
    for (int i = 0; i < HTTP_STATUS_SLOTS - 1; i++)
        if (http_status_slots[i] == http)
            return i;
    return HTTP_STATUS_SLOTS - 1;
}

static const char *origin_allowed(const struct sf_server *srv, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    if (srv->cors_any)
        return origin;
    for (int i = 0; i < srv->ncors; i++)
        if (strcmp(srv->cors[i], origin) == 0)
            return origin;
    return NULL;
}

static void add_cors(const struct sf_server *srv, struct MHD_Connection *conn,
                     struct MHD_Response *r)
{
    const char *origin = origin_allowed(srv, conn);
    if (!origin)
        return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(r, "Vary", "Origin");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "Location, Retry-After, ETag");
}

/*
 * Builds the error body for st. The only function that decides what an
 * error looks like on the wire.
 */
static void fill_error(struct sf_response *res, sf_status st)
{
    if (st == SF_OK)
        st = SF_EINTERNAL;
    json_t *doc = json_object();
    json_object_set_new(doc, "error", json_string(res->error ? res->error : sf_status_slug(st)));
    json_object_set_new(doc, "code", json_string(sf_status_slug(st)));
    if (res->fields && st == SF_EINVAL)
        json_object_set(doc, "fields", res->fields);
    if (!json_object_get(doc, "error")) /* an error sentence that was not UTF-8 */
        json_object_set_new(doc, "error", json_string(sf_status_slug(st)));
    res_json(res, sf_status_http(st), doc);
    if (st == SF_EUNAUTH)
        res_header(res, "WWW-Authenticate", "Bearer realm=\"setforge\"");
}

static void res_release(struct sf_response *res)
{
    free(res->body);
    free(res->error);
    json_decref(res->fields);
    for (int i = 0; i < res->nheaders; i++)
        free(res->headers[i].value);
}

static enum MHD_Result send_response(struct sf_server *srv, struct MHD_Connection *conn,
                                     struct sf_response *res)
{
    struct MHD_Response *r = res->mhd_response;
    if (!r) {
        r = MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
        res->body = NULL; /* now owned by libmicrohttpd */
        if (res->content_type)
            MHD_add_response_header(r, "Content-Type", res->content_type);
    }
    for (int i = 0; i < res->nheaders; i++)
        MHD_add_response_header(r, res->headers[i].name, res->headers[i].value);
    add_cors(srv, conn, r);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)res->http_status, r);
    MHD_destroy_response(r);
    res->mhd_response = NULL;
    return ret;
}

/* Answers an error straight away (no route involved). */
static enum MHD_Result send_error(struct sf_server *srv, struct MHD_Connection *conn,
                                  sf_status st, const char *msg)
{
    struct sf_response res = {0};
    res.error = xstrdup(msg);
    fill_error(&res, st);
    enum MHD_Result ret = send_response(srv, conn, &res);
    res_release(&res);
    return ret;
}

static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return 0;
    char next = ct[16];
    return next == '\0' || next == ';' || next == ' ';
}

/* Resolves the Authorization header into req. SF_OK when absent or valid. */
static sf_status authenticate(struct sf_request *req, struct sf_response *res)
{
    const char *authz = req_header(req, "Authorization");
    if (!authz)
        return SF_OK;
    if (strncasecmp(authz, "Bearer ", 7) != 0)
        return res_fail(res, SF_EUNAUTH, "Authorization must be \"Bearer <token>\"");
    const char *tok = authz + 7;
    while (*tok == ' ')
        tok++;
    sf_status st = req->server->app->authenticate(req, tok);
    if (st == SF_EUNAUTH)
        return res_fail(res, st, "unknown or revoked token");
    if (st != SF_OK)
        return res_fail(res, st, "cannot check the token right now");
    return SF_OK;
}

/* Everything between "the body is in" and "the handler ran". */
static sf_status dispatch(struct sf_request *req, struct sf_response *res,
                          const struct route *route)
{
    if (req->server->app->thread_ready() < 0) {
        res_header(res, "Retry-After", "1");
        return res_fail(res, SF_EUNAVAILABLE,
                        "the server is out of resources (open files) right now; try again");
    }
    sf_status st = authenticate(req, res);
    if (st != SF_OK)
        return st;
    if (route->auth == ROUTE_ADMIN) {
        if (!req->authenticated)
            return res_fail(res, SF_EUNAUTH, "this route needs an admin token");
        if (!req->is_admin)
            return res_fail(res, SF_EFORBIDDEN, "this route needs an admin token; yours is not one");
    }
    json_t *doc = NULL;
    if (route->body == BODY_JSON) {
        if (req->body_len == 0)
            return res_fail(res, SF_EINVAL, "a JSON object body is required");
        if (!is_json_type(req_header(req, "Content-Type")))
            return res_fail(res, SF_EMEDIATYPE, "the body must be sent as Content-Type: application/json");
        json_error_t jerr;
        doc = json_loadb(req->body, req->body_len, 0, &jerr);
        if (!doc)
            return res_fail(res, SF_EINVAL, "malformed JSON at line %d, column %d: %s",
                            jerr.line, jerr.column, jerr.text);
        if (!json_is_object(doc)) {
            json_decref(doc);
            return res_fail(res, SF_EINVAL, "the body must be a JSON object");
        }
        req->json = doc;
    }
    const struct sf_app *app = req->server->app;
    /* The key is stamped before the snapshot opens (http/cache.c). */
    int cached = route->cache == ROUTE_CACHED && req->cfg->response_cache;
    struct respcache_key key;
    if (cached) {
        respcache_key(req, app->generation(), &key);
        if (respcache_get(&key, res))
            return SF_OK; /* a GET: no body was parsed */
    }
    /* A GET reads one snapshot: a list's count and its page agree, and the
     * WAL read lock is taken once, not once per statement. */
    int snapshot = strcmp(route->method, "GET") == 0 && app->begin_read();
    st = route->handler(req, res);
    app->end_request(snapshot);
    if (cached && st == SF_OK)
        respcache_put(&key, res);
    req->json = NULL;
    json_decref(doc);
    return st;
}

/* The watchdog's record of this request's connection, or NULL. */
static struct watch *watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct sf_server *srv = cls;
    struct conn_state *cs = *con_cls;
    long long limit = srv->cfg->body_limit;

    if (!cs->started) {
        cs->started = 1;
        cs->watch = watch_of(conn);
        watchdog_head_done(cs->watch);
        if (cs->uri_too_long) {
            cs->too_large = 1; /* no body is kept */
            return send_error(srv, conn, SF_EURITOOLONG,
                              "the URL is too long (at most 8192 bytes and 256 query arguments)");
        }
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        if (!transfer_coding_ok(te)) {
            cs->too_large = 1;
            return send_error(srv, conn, SF_ENOTIMPL,
                              "only \"Transfer-Encoding: chunked\" is supported");
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)limit) {
            cs->too_large = 1;
            return send_error(srv, conn, SF_ETOOLARGE, "the request body is larger than the limit");
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        watchdog_body(cs->watch, *upload_data_size);
        if (!cs->too_large) {
            if (cs->body.len + *upload_data_size > (size_t)limit) {
                cs->too_large = 1;
                sb_free(&cs->body);
            } else {
                sb_append(&cs->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cs->too_large)
        return send_error(srv, conn, SF_ETOOLARGE, "the request body is larger than the limit");

    watchdog_responding(cs->watch); /* the client's part is done */
    struct sf_request req = {0};
    struct sf_response res = {0};
    req.conn = conn;
    req.method = method;
    req.path = url;
    req.server = srv;
    req.cfg = srv->cfg;
    req.body = cs->body.data;
    req.body_len = cs->body.len;

    const struct route *route = NULL;
    char allow[256];
    enum route_match m = router_match(method, url, &route, req.ids, &req.nids, allow, sizeof(allow));
    sf_status st;
    if (strcmp(method, "OPTIONS") == 0 && m != MATCH_NONE) {
        /* CORS preflight and plain OPTIONS, answered from the route table. */
        res_body(&res, 204, NULL, NULL, 0);
        res_header(&res, "Allow", "%s", allow);
        if (origin_allowed(srv, conn)) {
            res_header(&res, "Access-Control-Allow-Methods", "%s", allow);
            res_header(&res, "Access-Control-Allow-Headers",
                       "Authorization, Content-Type, Idempotency-Key, Last-Event-ID");
            res_header(&res, "Access-Control-Max-Age", "600");
        }
        st = SF_OK;
    } else if (m == MATCH_NONE) {
        st = res_fail(&res, SF_ENOTFOUND, "no such path: %s", url);
    } else if (m == MATCH_WRONG_METHOD) {
        res_header(&res, "Allow", "%s", allow);
        st = res_fail(&res, SF_EMETHOD, "%s is not allowed on %s (allowed: %s)", method, url, allow);
    } else {
        req.route = route;
        st = dispatch(&req, &res, route);
    }
    if (st != SF_OK)
        fill_error(&res, st);

    int slot = route ? (int)(route - sf_routes) : HTTP_MAX_ROUTES;
    if (slot > HTTP_MAX_ROUTES)
        slot = HTTP_MAX_ROUTES;
    atomic_fetch_add_explicit(&srv->requests[slot][status_slot(res.http_status)], 1,
                              memory_order_relaxed);
    if (srv->cfg->access_log) {
        char who[32] = ""; /* the token's id, never the token */
        if (req.authenticated)
            snprintf(who, sizeof(who), " token=%lld", req.token_id);
        log_info("%s %s %d %.2fms%s", method, url, res.http_status,
                 (double)(mono_us() - cs->start_us) / 1000.0, who);
    }
    enum MHD_Result ret = send_response(srv, conn, &res);
    res_release(&res);
    return ret;
}

/* A pool thread takes a connection: its per-thread resources are opened
 * now, while the reserve of descriptors is there, not under a flood. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    const struct sf_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        srv->app->thread_ready();
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (srv->cfg->request_head_timeout_s > 0 && ci)
            *socket_context = watchdog_track(ci->connect_fd);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        watchdog_forget(*socket_context);
        *socket_context = NULL;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *cs = *con_cls;
    if (!cs)
        return;
    watchdog_request_done(cs->watch); /* the next request's head clock starts */
    sb_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

/*
 * Percent-decoding for paths and query values. Like libmicrohttpd's own, but
 * "%00" stays encoded: a decoded NUL would cut the C string short, and
 * "/api/albums/2%00" must not reach album 2.
 */
size_t http_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    return http_unescape(s);
}

static void parse_cors(struct sf_server *srv, const char *list)
{
    char *copy = xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (strcmp(tok, "*") == 0) {
            srv->cors_any = 1;
            continue;
        }
        srv->cors = xrealloc(srv->cors, sizeof(char *) * (size_t)(srv->ncors + 1));
        srv->cors[srv->ncors++] = xstrdup(tok);
    }
    free(copy);
}

void req_server_stats(const struct sf_request *req, struct http_stats *out)
{
    for (int r = 0; r <= HTTP_MAX_ROUTES; r++)
        for (int c = 0; c < HTTP_STATUS_SLOTS; c++)
            out->requests[r][c] = atomic_load_explicit(&req->server->requests[r][c],
                                                       memory_order_relaxed);
    out->streams = stream_count();
}

int server_start(struct sf_server *srv, const struct sf_config *cfg, const struct sf_app *app,
                 char *err, size_t errlen)
{
    if (sf_nroutes > HTTP_MAX_ROUTES) {
        snprintf(err, errlen, "route table larger than HTTP_MAX_ROUTES");
        return -1;
    }
    srv->cfg = cfg;
    srv->app = app;
    respcache_set_max_age_ms(cfg->response_cache_max_age_ms);
    parse_cors(srv, cfg->cors_origins);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->bind, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "bind: \"%s\" is not an IPv4 address", cfg->bind);
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    srv->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->conn_memory,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_END);
    if (!srv->mhd) {
        snprintf(err, errlen, "cannot listen on %s:%lld (in use, or not allowed)", cfg->bind, cfg->port);
        return -1;
    }
    if (cfg->request_head_timeout_s > 0 &&
        watchdog_start(cfg->request_head_timeout_s * 1000, cfg->request_body_min_bps,
                       cfg->request_head_timeout_s * 1000) < 0) {
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        snprintf(err, errlen, "cannot start the request watchdog thread");
        return -1;
    }
    if (stream_ticker_start() < 0) {
        watchdog_stop();
        MHD_stop_daemon(srv->mhd);
        srv->mhd = NULL;
        snprintf(err, errlen, "cannot start the stream heartbeat thread");
        return -1;
    }
    return 0;
}

void server_stop(struct sf_server *srv)
{
    stream_close_all(); /* streams end instead of holding the shutdown */
    watchdog_stop();
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    for (int i = 0; i < srv->ncors; i++)
        free(srv->cors[i]);
    free(srv->cors);
    srv->cors = NULL;
    srv->ncors = 0;
}
