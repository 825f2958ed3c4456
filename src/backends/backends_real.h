/*
 * backends_real.h: the constructors of the real inference backends (the GPU
 * servers and the local command), and the plumbing they share.
 *
 * backend_from_config() in registry.c dispatches on an endpoint's "type" to
 * one of the constructors below; tests call them directly. Each constructor
 * validates its own fields (through be_parse_common for the shared ones), so
 * a direct call is exactly as strict as going through the registry.
 *
 * Below them, what only src/backends/ uses: the endpoint-entry helpers of
 * registry.c, the answer cap, and the mapping from the HTTP client's
 * outcomes to backend results. The engine sees backend.h and nothing else.
 */
#ifndef SF_BACKENDS_REAL_H
#define SF_BACKENDS_REAL_H

#include <jansson.h>
#include <stddef.h>

#include "backends/backend.h"
#include "backends/errtext.h"
#include "backends/http_client.h"
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

/*
 * A new endpoint of the type ops describes (ops is static and borrowed;
 * state becomes the backend's, freed by ops->destroy). name is copied, cut
 * at 63 bytes (be_parse_common has refused longer ones). timeout_s: the
 * endpoint's, 0 for none.
 */
struct sf_backend *backend_alloc(const struct sf_backend_ops *ops, const char *name,
                                 int concurrency, int timeout_s, void *state);

/* How long one generate() call may take, in milliseconds: the job's
 * deadline when the engine set one, else the endpoint's timeout_s. */
static inline long be_budget_ms(const struct sf_backend *b, const struct sf_job *job)
{
    return job->timeout_ms > 0 ? job->timeout_ms : (long)b->timeout_s * 1000;
}

/* Reports the sampler's progress to whoever listens (backend.h, "Live
 * steps"); nothing when nobody does. */
static inline void be_step(const struct sf_job *job, int step, int steps, const void *preview,
                           size_t len, const char *mime)
{
    if (job->on_step)
        job->on_step(job->step_ctx, step, steps, preview, len, mime);
}

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

/*
 * An exchange's outcome in the backend's terms: the failure classes mean the
 * same thing on both sides. HTTP_ANSWERED becomes BACKEND_OK only in the
 * sense of "go on": the caller still judges the status and the body.
 */
static inline enum backend_result be_result(enum http_outcome o)
{
    switch (o) {
    case HTTP_ANSWERED:
        return BACKEND_OK;
    case HTTP_PERMANENT:
    case HTTP_REFUSED: /* backends are not guarded; permanent if one ever is */
        return BACKEND_PERMANENT;
    case HTTP_CANCELED:
        return BACKEND_CANCELED;
    case HTTP_UNDELIVERED:
        return BACKEND_UNDELIVERED;
    case HTTP_TRANSIENT:
        break;
    }
    return BACKEND_TRANSIENT;
}

/*
 * The verdict on an answer whose status is not the success wanted: 4xx means
 * the server refuses this request and will again (permanent), except 408
 * and 429, "timeout" and "too many requests", which are about the moment;
 * anything else (5xx, a redirect, which is not followed) is transient.
 */
static inline enum backend_result be_result_of_status(long status)
{
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        return BACKEND_PERMANENT;
    return BACKEND_TRANSIENT;
}

#endif
