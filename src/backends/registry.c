/*
 * registry.c: from one "endpoints" entry of the config to a backend, and the
 * plumbing the real backends share.
 *
 * backend_from_config() (declared in backend.h) is the only way the daemon
 * builds backends: it checks the fields every endpoint has, then hands the
 * entry to the constructor its "type" names. Messages always start with the
 * entry ('endpoints[2] ("gpu2"): ...') because a config with eight GPUs is
 * otherwise a guessing game.
 *
 * The second half is what a1111.c and comfyui.c (and command.c, for files)
 * would otherwise each write again: one libcurl exchange that can be
 * canceled, is size-capped and classifies every failure as transient or
 * permanent; a strict base64 decoder (A1111 sends its PNGs as base64, and a
 * lenient decoder would turn garbage into garbage bytes that only fail later
 * with a confusing message); and the "error text" of an HTTP error body.
 */
#include "backends/backends_real.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "setforge.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---- endpoint entries ---- */

void be_errf(char *err, size_t errlen, int index, const char *name, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    int n;
    if (name && *name)
        n = snprintf(err, errlen, "endpoints[%d] (\"%s\"): ", index, name);
    else
        n = snprintf(err, errlen, "endpoints[%d]: ", index);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Reads an optional integer field in [lo, hi]; 0, or -1 with err written. */
static int int_field(const json_t *ep, const char *key, long long lo, long long hi,
                     long long dflt, long long *out, int index, const char *name,
                     char *err, size_t errlen)
{
    const json_t *v = json_object_get(ep, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        be_errf(err, errlen, index, name, "%s must be an integer from %lld to %lld", key, lo, hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

int be_parse_common(const json_t *ep, int index, int default_timeout_s,
                    struct be_common *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(ep)) {
        be_errf(err, errlen, index, NULL, "must be an object");
        return -1;
    }
    const json_t *jn = json_object_get(ep, "name");
    if (!json_is_string(jn) || json_string_length(jn) == 0) {
        be_errf(err, errlen, index, NULL, "name is required (a non-empty string)");
        return -1;
    }
    const char *name = json_string_value(jn);
    if (json_string_length(jn) > sizeof out->name - 1) {
        be_errf(err, errlen, index, NULL, "name must be at most %zu characters",
                sizeof out->name - 1);
        return -1;
    }
    /* The name ends up in log lines, error messages and image metadata. */
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            be_errf(err, errlen, index, NULL, "name must not contain control characters");
            return -1;
        }
    snprintf(out->name, sizeof out->name, "%s", name);
    long long v;
    if (int_field(ep, "concurrency", 1, 64, 1, &v, index, name, err, errlen) < 0)
        return -1;
    out->concurrency = (int)v;
    if (int_field(ep, "timeout_s", 1, 86400, default_timeout_s, &v, index, name, err, errlen) < 0)
        return -1;
    out->timeout_s = (int)v;
    return 0;
}

char *be_parse_url(const json_t *ep, int index, const char *name, char *err, size_t errlen)
{
    const json_t *ju = json_object_get(ep, "url");
    if (!json_is_string(ju) || json_string_length(ju) == 0) {
        be_errf(err, errlen, index, name, "url is required (e.g. \"http://127.0.0.1:7860\")");
        return NULL;
    }
    const char *u = json_string_value(ju);
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip) {
        be_errf(err, errlen, index, name, "url must start with http:// or https://");
        return NULL;
    }
    if (json_string_length(ju) > 2000) {
        be_errf(err, errlen, index, name, "url is too long");
        return NULL;
    }
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            be_errf(err, errlen, index, name, "url must not contain spaces or control characters");
            return NULL;
        }
    size_t host_len = strcspn(u + skip, "/?#");
    if (host_len == 0) {
        be_errf(err, errlen, index, name, "url has no host");
        return NULL;
    }
    if (memchr(u + skip, '@', host_len)) {
        be_errf(err, errlen, index, name,
                "url must not hold credentials; put \"user:pass\" in auth");
        return NULL;
    }
    if (strpbrk(u, "?#")) { /* routes are appended to it */
        be_errf(err, errlen, index, name, "url must not have a query or fragment");
        return NULL;
    }
    size_t n = strlen(u);
    while (n > skip && u[n - 1] == '/')
        n--;
    return xstrndup(u, n);
}

/* Fields a type knows; anything else is probably a typo, worth a warning
 * (not an error: a newer config must still load on an older daemon). */
static void warn_unknown_fields(const json_t *ep, int index, const char *const *known)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)ep, key, val) {
        (void)val;
        int found = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, key) == 0)
                found = 1;
        if (!found)
            log_warn("endpoints[%d]: unknown field \"%s\" ignored", index, key);
    }
}

struct sf_backend *backend_from_config(const json_t *endpoint, int index, char *err,
                                       size_t errlen)
{
    static const char *const known_a1111[] = {"name", "type", "url", "concurrency",
                                              "timeout_s", "auth", "flavor", "sampler",
                                              "checkpoint", NULL};
    static const char *const known_comfy[] = {"name", "type", "url", "concurrency",
                                              "timeout_s", "workflow", NULL};
    static const char *const known_cmd[] = {"name", "type", "argv", "concurrency",
                                            "timeout_s", NULL};
    static const char *const known_proc[] = {"name", "type", "concurrency", "timeout_s",
                                             "delay_ms", NULL};
    struct be_common c;
    if (be_parse_common(endpoint, index, 600, &c, err, errlen) < 0)
        return NULL;
    const char *type = json_string_value(json_object_get(endpoint, "type"));
    if (!type) {
        be_errf(err, errlen, index, c.name,
                "type must be one of a1111, comfyui, command, procedural");
        return NULL;
    }
    if (strcmp(type, "a1111") == 0) {
        warn_unknown_fields(endpoint, index, known_a1111);
        return a1111_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "comfyui") == 0) {
        warn_unknown_fields(endpoint, index, known_comfy);
        return comfyui_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "command") == 0) {
        warn_unknown_fields(endpoint, index, known_cmd);
        return command_backend_new(endpoint, index, err, errlen);
    }
    if (strcmp(type, "procedural") == 0) {
        warn_unknown_fields(endpoint, index, known_proc);
        long long delay;
        if (int_field(endpoint, "delay_ms", 0, 3600000, 0, &delay, index, c.name, err,
                      errlen) < 0)
            return NULL;
        struct sf_backend *b = procedural_backend_new(c.name, c.concurrency, delay);
        if (!b)
            be_errf(err, errlen, index, c.name, "cannot create the procedural backend");
        return b;
    }
    be_errf(err, errlen, index, c.name,
            "type must be one of a1111, comfyui, command, procedural");
    return NULL;
}

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    /* Never paired with curl_global_cleanup: backends live as long as the
     * process, and cleanup is not safe while another thread may use curl. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void be_http_global_init(void)
{
    pthread_once(&curl_once, curl_init_once);
}

/*
 * One curl handle per thread, kept between requests: its connection cache
 * keeps the TCP connection to the endpoint open (A1111's uvicorn, sd-server
 * and ComfyUI's aiohttp all keep HTTP/1.1 connections alive), so the next
 * item goes out without a new handshake, and the server does not set up a
 * new connection between two images of a busy GPU. Each worker serves one
 * endpoint, so a handle talks to one server. curl_easy_reset clears the
 * options and keeps the connections; a connection the server has closed
 * meanwhile is noticed by curl and replaced.
 */
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

static CURL *thread_handle(void)
{
    pthread_once(&handle_once, make_handle_key);
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h)
        pthread_setspecific(handle_key, h);
    return h;
}

struct xfer {
    struct strbuf sb;
    int too_big;
    atomic_int *cancel;
};

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (x->sb.len + len > BE_MAX_RESPONSE) {
        x->too_big = 1;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
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

void be_http_resp_free(struct be_http_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
    resp->status = 0;
}

enum backend_result be_http(const struct be_http_req *req, struct be_http_resp *resp,
                            char *err, size_t errlen)
{
    be_http_global_init();
    memset(resp, 0, sizeof *resp);
    const char *who = req->who ? req->who : "backend";
    if (req->cancel && atomic_load(req->cancel)) {
        snprintf(err, errlen, "%s: canceled", who);
        return BACKEND_CANCELED;
    }
    CURL *h = thread_handle();
    if (!h) {
        snprintf(err, errlen, "%s: cannot create an HTTP handle", who);
        return BACKEND_TRANSIENT;
    }
    struct xfer x;
    sb_init(&x.sb);
    x.too_big = 0;
    x.cancel = req->cancel;
    char cerr[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    /* Worker threads: no SIGALRM-based DNS timeouts. */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 600000L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "setforge/" SETFORGE_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)BE_MAX_RESPONSE);
    /* A backend URL is http(s) only, redirects included (none are followed:
     * an inference API that redirects is misconfigured). */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (req->userpwd) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, req->userpwd);
    }
    if (req->method && strcmp(req->method, "POST") == 0) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    /* The handle stays, with its connection, for this thread's next call;
     * it must not keep pointers into this call's buffers. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);

    const char *detail = cerr[0] ? cerr : curl_easy_strerror(rc);
    enum backend_result res = BACKEND_TRANSIENT;
    switch (rc) {
    case CURLE_OK:
        resp->status = status;
        resp->body = sb_detach(&x.sb, &resp->len);
        return BACKEND_OK;
    case CURLE_ABORTED_BY_CALLBACK:
        snprintf(err, errlen, "%s: canceled", who);
        res = BACKEND_CANCELED;
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED)
            snprintf(err, errlen, "%s: answer larger than %zu MiB", who,
                     BE_MAX_RESPONSE >> 20);
        else
            snprintf(err, errlen, "%s: %s", who, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "%s: timed out after %ld s (%s)", who,
                 (req->timeout_ms > 0 ? req->timeout_ms : 600000L) / 1000, detail);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(err, errlen, "%s: cannot connect (%s)", who, detail);
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
        res = BACKEND_PERMANENT;
        break;
    default:
        snprintf(err, errlen, "%s: %s", who, detail);
        break;
    }
    sb_free(&x.sb);
    return res;
}

int be_probe(const struct be_http_req *req, char *err, size_t errlen)
{
    struct be_http_resp resp;
    if (be_http(req, &resp, err, errlen) != BACKEND_OK)
        return -1;
    int rc = 0;
    if (resp.status != 200) {
        char text[256];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: HTTP %ld: %s", req->who, resp.status, text);
        rc = -1;
    }
    be_http_resp_free(&resp);
    return rc;
}
