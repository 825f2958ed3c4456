/*
 * backends_real.h: the constructors of the real inference backends (the GPU
 * servers and the local command), and the plumbing they share.
 *
 * backend_from_config() in registry.c dispatches on an endpoint's "type" to
 * one of the constructors below; tests call them directly. Each constructor
 * validates its own fields (through be_parse_common for the shared ones), so
 * a direct call is exactly as strict as going through the registry.
 *
 * The shared plumbing (one HTTP exchange with cancellation and a size cap,
 * a strict base64 decoder, reading a whole file) lives in registry.c and is
 * meant only for src/backends/: the engine sees backend.h and nothing else.
 */
#ifndef SF_BACKENDS_REAL_H
#define SF_BACKENDS_REAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "backends/backend.h"
#include "backends/errtext.h"
#include "backends/lora.h"

/* AUTOMATIC1111 / Forge / stable-diffusion.cpp sd-server (flavor "sdcpp"). */
struct sf_backend *a1111_backend_new(const json_t *endpoint, int index, char *err,
                                     size_t errlen);
/* ComfyUI with a workflow file in API format. */
struct sf_backend *comfyui_backend_new(const json_t *endpoint, int index, char *err,
                                       size_t errlen);
/* A local program started once per image, as the original system did. */
struct sf_backend *command_backend_new(const json_t *endpoint, int index, char *err,
                                       size_t errlen);

/* ---- shared by the backends in src/backends/ only ---- */

/* Largest answer (JSON or image) a backend accepts from a server or a file. */
#define BE_MAX_RESPONSE ((size_t)256 * 1024 * 1024)

/* The fields every endpoint has. */
struct be_common {
    char name[64];
    int concurrency; /* 1..64, default 1 */
    int timeout_s;   /* 1..86400, default_timeout_s when absent */
};

/*
 * Reads and checks name, concurrency and timeout_s of endpoints[index].
 * Returns 0, or -1 with a sentence starting with the entry
 * ('endpoints[2] ("gpu2"): concurrency must be an integer from 1 to 64').
 */
int be_parse_common(const json_t *endpoint, int index, int default_timeout_s,
                    struct be_common *out, char *err, size_t errlen);

/*
 * Reads the required "url" field: http:// or https://, a host, no user:pass@
 * (credentials go in "auth", so they never show up in messages), no spaces.
 * Returns it malloc'd without trailing slashes, or NULL with err written.
 */
char *be_parse_url(const json_t *endpoint, int index, const char *name, char *err,
                   size_t errlen);

/* Writes the 'endpoints[i] ("name"): ' prefix of construction errors. */
void be_errf(char *err, size_t errlen, int index, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* One HTTP exchange. */
struct be_http_req {
    const char *method;       /* "GET" or "POST" */
    const char *url;
    const char *body;         /* POST body (JSON), or NULL */
    size_t body_len;
    const char *userpwd;      /* "user:pass" for HTTP Basic, or NULL */
    long timeout_ms;          /* whole exchange */
    long connect_timeout_ms;  /* 0 = 10 s */
    atomic_int *cancel;       /* aborts the exchange when set; may be NULL */
    const char *who;          /* "a1111 gpu0", the start of every message */
};

struct be_http_resp {
    long status;  /* HTTP status; 0 when no answer came */
    char *body;   /* malloc'd, NUL-terminated after len bytes; the caller frees */
    size_t len;
};

/*
 * Performs the exchange. BACKEND_OK means an HTTP answer arrived (whatever
 * its status; the caller judges it) and resp holds it. Otherwise resp is
 * empty and err says what happened: BACKEND_CANCELED when *cancel was set,
 * BACKEND_TRANSIENT for refused connections, timeouts, a connection closed
 * mid-answer or an answer over BE_MAX_RESPONSE, BACKEND_PERMANENT for a URL
 * libcurl cannot use.
 */
enum backend_result be_http(const struct be_http_req *req, struct be_http_resp *resp,
                            char *err, size_t errlen);
void be_http_resp_free(struct be_http_resp *resp);

/* Calls curl_global_init once per process (constructors call it, so it runs
 * before any worker thread exists). */
void be_http_global_init(void);

/*
 * A health probe: performs req and wants HTTP 200. 0, or -1 with a sentence
 * in err (no answer, or "<who>: HTTP 503: <the server's error text>").
 */
int be_probe(const struct be_http_req *req, char *err, size_t errlen);


#endif
