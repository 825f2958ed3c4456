/*
 * client.h: the terminal client's calls to a running daemon's API, made
 * with the daemon's own outbound client (backends/http_client.h: the same
 * libcurl code as the inference backends; no second HTTP stack).
 *
 * Where the daemon is: --url, else $SETFORGE_URL, else
 * http://127.0.0.1:8080. The token: $SETFORGE_TOKEN, sent as
 * "Authorization: Bearer" when set (reading is public; changing things
 * needs an admin token). A failure prints one line on stderr, "setforge: "
 * and the API's `error` sentence (or why no answer came), and the command
 * exits 1: that is the whole error policy of the client.
 */
#ifndef SF_CLI_CLIENT_H
#define SF_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

struct cli_ctx {
    char url[512];      /* base URL, no trailing slash */
    char auth[256];     /* "Authorization: Bearer ...", or "" */
    int json;           /* --json: print the API's answers as they are */
};

/* Fills ctx from --url (may be NULL) and the environment. */
void cli_ctx_init(struct cli_ctx *ctx, const char *url_flag, int json);

/*
 * One JSON exchange: method and path ("/api/runs?page=2"), body a JSON
 * value or NULL (stolen). A 2xx answer's parsed body is returned (a new
 * reference; an empty object when the body is not JSON); anything else
 * prints the error and returns NULL, with *status the HTTP status (0 when
 * no answer came) when status is not NULL.
 */
json_t *cli_call(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 long *status);

/*
 * A GET whose answer goes to sink as it arrives (the zip, the event
 * stream), with no size cap and a long timeout. headers: extra lines,
 * NULL-terminated, or NULL. Returns the HTTP status, or 0 when no answer
 * came (err then says why). A non-2xx answer's body is also kept (its first
 * 4 KiB) so that its `error` sentence can be printed: cli_stream_error.
 */
struct cli_stream {
    int (*sink)(const char *p, size_t n, void *ud);
    void *ud;
    char head[4096]; /* the answer's first bytes */
    size_t head_len;
};
long cli_stream_get(const struct cli_ctx *ctx, const char *path, const char *const *headers,
                    struct cli_stream *s, char *err, size_t errlen);
/* Prints the error of a failed stream (status, the kept bytes, or err). */
void cli_stream_error(const struct cli_stream *s, long status, const char *err);

/* Prints "setforge: <the API's error sentence>" for an error answer body. */
void cli_print_api_error(long status, const char *body, size_t len);

/* Prints v as the API sent it, indented, on stdout (--json). */
void cli_print_json(const json_t *v);

#endif
