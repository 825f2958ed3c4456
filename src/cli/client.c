/*
 * client.c: the client's API calls (client.h), on http_client_do.
 */
#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/http_client.h"

void cli_ctx_init(struct cli_ctx *ctx, const char *url_flag, int json)
{
    const char *url = url_flag ? url_flag : getenv("SETFORGE_URL");
    if (!url || !*url)
        url = "http://127.0.0.1:8080";
    snprintf(ctx->url, sizeof ctx->url, "%s", url);
    size_t n = strlen(ctx->url);
    while (n > 0 && ctx->url[n - 1] == '/')
        ctx->url[--n] = '\0';
    const char *token = getenv("SETFORGE_TOKEN");
    ctx->auth[0] = '\0';
    if (token && *token)
        snprintf(ctx->auth, sizeof ctx->auth, "Authorization: Bearer %s", token);
    ctx->json = json;
}

void cli_print_api_error(long status, const char *body, size_t len)
{
    json_t *doc = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *sentence = json_string_value(json_object_get(doc, "error"));
    if (sentence) {
        fprintf(stderr, "setforge: %s\n", sentence);
        /* a validation failure says which fields, one per line, unless
         * the sentence already quotes what is wrong with them */
        const char *field;
        json_t *why;
        json_object_foreach(json_object_get(doc, "fields"), field, why)
            if (json_is_string(why) && !strstr(sentence, json_string_value(why)))
                fprintf(stderr, "  %s: %s\n", field, json_string_value(why));
    } else {
        fprintf(stderr, "setforge: the daemon answered HTTP %ld\n", status);
    }
    json_decref(doc);
}

void cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    putchar('\n');
}

/* The extra header lines of a request: the token, then `more`. */
static void headers_of(const struct cli_ctx *ctx, const char *const *more, const char **out,
                       size_t max)
{
    size_t n = 0;
    if (ctx->auth[0])
        out[n++] = ctx->auth;
    for (; more && *more && n + 1 < max; more++)
        out[n++] = *more;
    out[n] = NULL;
}

json_t *cli_call(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 long *status)
{
    char url[1024], err[512];
    snprintf(url, sizeof url, "%s%s", ctx->url, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    const char *hdrs[4];
    headers_of(ctx, NULL, hdrs, 4);
    struct http_request req = {
        .method = method, .url = url, .headers = hdrs, .body = text,
        .body_len = text ? strlen(text) : 0, .timeout_ms = 120000, .who = ctx->url,
    };
    struct http_response resp;
    enum http_outcome out = http_client_do(&req, &resp, err, sizeof err);
    free(text);
    if (status)
        *status = out == HTTP_ANSWERED ? resp.status : 0;
    if (out != HTTP_ANSWERED) {
        fprintf(stderr, "setforge: %s\n", err);
        return NULL;
    }
    if (resp.status < 200 || resp.status > 299) {
        cli_print_api_error(resp.status, resp.body, resp.len);
        http_response_free(&resp);
        return NULL;
    }
    json_t *doc = json_loadb(resp.body, resp.len, 0, NULL);
    http_response_free(&resp);
    return doc ? doc : json_object();
}

static int stream_sink(const char *p, size_t n, void *ud)
{
    struct cli_stream *s = ud;
    if (s->head_len < sizeof s->head - 1) {
        size_t k = sizeof s->head - 1 - s->head_len;
        k = k < n ? k : n;
        memcpy(s->head + s->head_len, p, k);
        s->head_len += k;
        s->head[s->head_len] = '\0';
    }
    return s->sink ? s->sink(p, n, s->ud) : 0;
}

long cli_stream_get(const struct cli_ctx *ctx, const char *path, const char *const *headers,
                    struct cli_stream *s, char *err, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", ctx->url, path);
    const char *hdrs[8];
    headers_of(ctx, headers, hdrs, 8);
    s->head_len = 0;
    s->head[0] = '\0';
    struct http_request req = {
        .method = "GET", .url = url, .headers = hdrs,
        /* a day: an event stream lasts as long as its run (it is
         * reconnected when cut), a zip as long as the album is large */
        .timeout_ms = 24L * 3600 * 1000, .max_bytes = (size_t)-1, .who = ctx->url,
        .sink = stream_sink, .sink_ud = s,
    };
    struct http_response resp;
    enum http_outcome out = http_client_do(&req, &resp, err, errlen);
    long status = out == HTTP_ANSWERED ? resp.status : 0;
    http_response_free(&resp);
    return status;
}

void cli_stream_error(const struct cli_stream *s, long status, const char *err)
{
    if (status == 0)
        fprintf(stderr, "setforge: %s\n", err);
    else
        cli_print_api_error(status, s->head, s->head_len);
}
