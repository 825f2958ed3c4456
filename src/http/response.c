/*
 * response.c: the helpers handlers use to fill a response, and the request
 * accessors. Handlers never build libmicrohttpd objects themselves.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"
#include "util/pagination.h"
#include "util/xalloc.h"

sf_status res_json(struct sf_response *res, int http_status, json_t *doc)
{
    size_t len = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(15));
    char *buf = xmalloc(len + 1);
    json_dumpb(doc, buf, len, JSON_COMPACT | JSON_REAL_PRECISION(15));
    buf[len] = '\0';
    json_decref(doc);
    return res_body(res, http_status, "application/json", buf, len);
}

sf_status res_body(struct sf_response *res, int http_status,
                   const char *content_type, char *body, size_t len)
{
    free(res->body);
    res->http_status = http_status;
    res->content_type = content_type;
    res->body = body;
    res->body_len = len;
    return SF_OK;
}

/* Answers 200 with a libmicrohttpd response made by one of the helpers. */
static sf_status res_mhd(struct sf_response *res, struct MHD_Response *r, const char *content_type)
{
    if (content_type)
        MHD_add_response_header(r, "Content-Type", content_type);
    res->mhd_response = r;
    res->http_status = 200;
    return SF_OK;
}

sf_status res_file(struct sf_response *res, int fd, const char *content_type)
{
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        return res_fail(res, SF_EINTERNAL, "the file cannot be read");
    }
    /* libmicrohttpd sends the file with sendfile() and closes fd; when it
     * cannot take it (no memory), fd is still ours. */
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
    if (!r) {
        close(fd);
        return res_fail(res, SF_EINTERNAL, "cannot answer with the file");
    }
    return res_mhd(res, r, content_type);
}

/* A pulled body (res_callback) as libmicrohttpd's content reader. */
struct pulled {
    res_pull_fn pull;
    void *ctx;
    void (*free_ctx)(void *ctx);
};

/* Block size libmicrohttpd reads a pulled body in. */
#define PULL_BLOCK (64 * 1024)

static ssize_t pulled_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct pulled *p = cls;
    long n = p->pull(p->ctx, buf, max);
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void pulled_free(void *cls)
{
    struct pulled *p = cls;
    if (p->free_ctx)
        p->free_ctx(p->ctx);
    free(p);
}

sf_status res_callback(struct sf_response *res, const char *content_type, res_pull_fn pull,
                       void *ctx, void (*free_ctx)(void *ctx))
{
    struct pulled *p = xmalloc(sizeof(*p));
    p->pull = pull;
    p->ctx = ctx;
    p->free_ctx = free_ctx;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, PULL_BLOCK,
                                                               pulled_read, p, pulled_free);
    if (!r) {
        pulled_free(p);
        return res_fail(res, SF_EINTERNAL, "cannot answer with a generated body");
    }
    return res_mhd(res, r, content_type);
}

void res_header(struct sf_response *res, const char *name, const char *fmt, ...)
{
    if (res->nheaders >= RES_MAX_HEADERS)
        abort(); /* a handler adding that many headers is a bug */
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    res->headers[res->nheaders].name = name;
    res->headers[res->nheaders].value = xstrdup(buf);
    res->nheaders++;
}

static void set_error(struct sf_response *res, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    free(res->error);
    res->error = xstrdup(buf);
}

sf_status res_fail(struct sf_response *res, sf_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(res, fmt, ap);
    va_end(ap);
    return st;
}

sf_status res_invalid(struct sf_response *res, json_t *fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(res, fmt, ap);
    va_end(ap);
    json_decref(res->fields);
    res->fields = fields;
    return SF_EINVAL;
}

const char *req_query(const struct sf_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(const struct sf_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

sf_status req_page(struct sf_request *req, struct sf_response *res, struct page *pg)
{
    const char *bad = NULL;
    char err[128];
    if (page_parse(req_query(req, "page"), req_query(req, "per_page"), pg, &bad, err, sizeof(err)) < 0)
        return res_invalid(res, json_pack("{ss}", bad, err), "invalid pagination: %s", err);
    return SF_OK;
}

sf_status res_invalid_fields(struct sf_response *res, json_t *fields, const char *what)
{
    char msg[512];
    size_t used = (size_t)snprintf(msg, sizeof(msg), "%s: check", what);
    const char *key;
    json_t *val;
    int first = 1;
    json_object_foreach(fields, key, val) {
        if (used < sizeof(msg))
            used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s", first ? " " : ", ", key);
        first = 0;
    }
    if (json_object_size(fields) == 1) {
        const char *k = NULL;
        json_object_foreach(fields, key, val) k = key;
        snprintf(msg, sizeof(msg), "%s: %s %s", what, k,
                 json_string_value(json_object_get(fields, k)));
    }
    return res_invalid(res, fields, "%s", msg);
}

const char *req_client_ip(struct sf_request *req)
{
    if (!req->client_ip[0]) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr,
                      req->client_ip, sizeof(req->client_ip));
        else
            snprintf(req->client_ip, sizeof(req->client_ip), "?");
    }
    return req->client_ip;
}
