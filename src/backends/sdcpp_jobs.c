/*
 * sdcpp_jobs.c: one image through stable-diffusion.cpp sd-server's native
 * async API, the way a canceled item really stops there.
 *
 * sd-server has no /sdapi/v1/interrupt: a canceled txt2img runs to its end
 * and the next item waits behind it. Its own API queues jobs instead
 * (examples/server, routes_sdcpp.cpp and async_jobs.cpp):
 *   POST /sdcpp/v1/img_gen          202 {"id", "status": "queued", "poll_url"};
 *                                   429 when its queue is full; 400 for bad
 *                                   parameters (an unknown LoRA path too)
 *   GET  /sdcpp/v1/jobs/<id>        {"status": queued|generating|completed|
 *                                   failed|cancelled, "queue_position",
 *                                   "result": {"images": [{"b64_json"}]},
 *                                   "error": {"code", "message"}}; 404/410
 *                                   once it is unknown or expired
 *   POST /sdcpp/v1/jobs/<id>/cancel 200 for a queued job (it never runs),
 *                                   409 for one already generating
 * A canceled item is canceled there at once; one already generating cannot
 * be stopped (409): its result is never fetched (the server drops it after
 * its TTL) and the worker is free at once.
 *
 * Polling has a cost txt2img has not: the GPU idles from the moment its
 * image is done until we ask, and with one job at a time the next job is
 * not sent before. So once the endpoint's usual job time is known, the first
 * poll waits until 85% of it has passed and the next ones come every 10 ms
 * until twice that time, then doubling (a job far slower than usual, with a
 * queue ahead of it on the server); before that time is known, polls start
 * at 50 ms and double to 250 ms.
 */
#include "backends/sdcpp_jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/backends_real.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/oneline.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* sd-server's name of an A1111 sampler (its sdapi route's own table, the
 * other way round); NULL: leave the server's default. */
static const char *sample_method_of(const char *sampler)
{
    static const char *const map[][2] = {
        {"euler a", "euler_a"}, {"euler", "euler"},     {"heun", "heun"},
        {"dpm2", "dpm2"},       {"dpm++ 2m", "dpm++2m"}, {"lcm", "lcm"},
        {"ddim", "ddim_trailing"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(sampler, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

json_t *sdcpp_job_request(const struct sf_job *job, const char *sampler, const json_t *paths)
{
    json_t *guidance = json_pack("{s:f}", "txt_cfg", job->cfg_scale);
    json_t *sample = json_pack("{s:i, s:o}", "sample_steps", job->steps, "guidance", guidance);
    const char *method = sample_method_of(sampler);
    if (method)
        json_object_set_new(sample, "sample_method", json_string(method));
    json_t *rq = json_pack("{s:s, s:s, s:i, s:i, s:I, s:i, s:o, s:s}", "prompt",
                           job->prompt ? job->prompt : "", "negative_prompt",
                           job->negative_prompt ? job->negative_prompt : "", "width", job->width,
                           "height", job->height, "seed", (json_int_t)job->seed, "batch_count", 1,
                           "sample_params", sample, "output_format", "png");
    if (!rq)
        return NULL; /* a prompt that is not UTF-8 (sample is freed by "o") */
    json_t *loras = json_array();
    size_t n = json_array_size(paths);
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        if (be_lora_get(job->loras, i, &name, &path, &w) < 0)
            continue;
        json_array_append_new(loras, json_pack("{s:s, s:f}", "path",
                                               json_string_value(json_array_get(paths, i)),
                                               "multiplier", w));
    }
    json_object_set_new(rq, "lora", loras);
    return rq;
}

enum sdcpp_job_state sdcpp_read_job(const char *who, const char *body, size_t len,
                                    struct sf_image *out, char *err, size_t errlen)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *status = json_string_value(json_object_get(doc, "status"));
    enum sdcpp_job_state st = SDCPP_JOB_FAILED;
    if (!status) {
        snprintf(err, errlen, "%s: a job answer without a status", who);
    } else if (strcmp(status, "queued") == 0 || strcmp(status, "generating") == 0) {
        st = SDCPP_JOB_WAITING;
    } else if (strcmp(status, "completed") == 0) {
        const json_t *img = json_array_get(
            json_object_get(json_object_get(doc, "result"), "images"), 0);
        const json_t *b64 = json_object_get(img, "b64_json");
        unsigned char *png;
        size_t png_len;
        char perr[200];
        int w, h;
        if (!json_is_string(b64)) {
            snprintf(err, errlen, "%s: the job completed without an image", who);
        } else if (base64_decode(json_string_value(b64), json_string_length(b64), &png,
                                 &png_len) < 0) {
            snprintf(err, errlen, "%s: the job's image is not valid base64", who);
        } else if (png_check(png, png_len, &w, &h, perr, sizeof perr) < 0) {
            snprintf(err, errlen, "%s: the job's image: %s", who, perr);
            free(png);
        } else {
            out->png = png;
            out->png_len = png_len;
            out->width = w;
            out->height = h;
            st = SDCPP_JOB_DONE;
        }
    } else {
        const json_t *e = json_object_get(doc, "error");
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (!msg || !*msg)
            msg = status;
        char text[512]; /* the server's words: one line of UTF-8 */
        one_line(msg, strlen(msg), text, sizeof text);
        snprintf(err, errlen, "%s: the job %s: %s", who,
                 strcmp(status, "cancelled") == 0 ? "was cancelled on the server" : "failed",
                 text);
    }
    json_decref(doc);
    return st;
}

/* One exchange with the server's job routes. */
static enum http_outcome call(const struct sdcpp_conn *c, const char *method, const char *path,
                              const char *body, long timeout_ms, atomic_int *cancel,
                              struct http_response *resp, char *err, size_t errlen)
{
    char *url = xasprintf("%s%s", c->url, path);
    struct http_request hr = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .userpwd = c->userpwd,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = 5000,
        .max_bytes = BE_MAX_RESPONSE,
        .cancel = cancel,
        .who = c->who,
    };
    enum http_outcome o = http_client_do(&hr, resp, err, errlen);
    free(url);
    return o;
}

/* Asks the server to cancel job id; says in the log what became of it. */
static void cancel_job(const struct sdcpp_conn *c, const char *id)
{
    char path[160], err[256];
    snprintf(path, sizeof path, "/sdcpp/v1/jobs/%s/cancel", id);
    struct http_response resp;
    if (call(c, "POST", path, "{}", 3000, NULL, &resp, err, sizeof err) != HTTP_ANSWERED) {
        log_warn("%s", err);
        return;
    }
    if (resp.status == 409)
        log_info("%s: job %s is already generating and cannot be stopped; its image will be "
                 "dropped", c->who, id);
    else if (resp.status == 200)
        log_info("%s: job %s canceled on the server before it started", c->who, id);
    http_response_free(&resp);
}

/* Sleeps ms, or less when *cancel is set meanwhile. */
static void nap(long ms, atomic_int *cancel)
{
    for (long left = ms; left > 0 && !(cancel && atomic_load(cancel)); left -= 10) {
        struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Polls once the usual job time has (nearly) passed: the gap a GPU idles. */
#define POLL_TIGHT_MS 10
#define POLL_START_MS 50
#define POLL_MAX_MS 250

enum backend_result sdcpp_job_generate(const struct sdcpp_conn *c, const struct sf_job *job,
                                       const json_t *rq, long budget_ms, long expect_ms,
                                       struct sf_image *out, int *not_served, char *err,
                                       size_t errlen)
{
    *not_served = 0;
    int64_t deadline = mono_ms() + (budget_ms > 0 ? budget_ms : 600000);
    char *body = json_dumps(rq, JSON_COMPACT);
    struct http_response resp;
    /* Not cut by a cancel: a job the server queued while we stopped
     * listening would run with nobody to cancel it. It answers at once. */
    long submit_ms = budget_ms > 0 && budget_ms < 30000 ? budget_ms : 30000;
    enum backend_result r = be_result(call(c, "POST", "/sdcpp/v1/img_gen", body, submit_ms, NULL,
                                           &resp, err, errlen));
    free(body);
    if (r != BACKEND_OK)
        return r;
    if (resp.status == 404) {
        *not_served = 1;
        http_response_free(&resp);
        return BACKEND_TRANSIENT;
    }
    if (resp.status != 202 && resp.status != 200) {
        char text[512];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: POST /sdcpp/v1/img_gen: HTTP %ld: %s", c->who, resp.status,
                 text);
        r = be_result_of_status(resp.status);
        http_response_free(&resp);
        return r;
    }
    json_t *doc = json_loadb(resp.body, resp.len, 0, NULL);
    http_response_free(&resp);
    const char *jid = json_string_value(json_object_get(doc, "id"));
    char id[96];
    /* The id goes into a path: sd-server's own route takes [A-Za-z0-9_-]. */
    if (!jid || !*jid || strlen(jid) >= sizeof id || strspn(jid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                  "abcdefghijklmnopqrstuvwxyz"
                                                                  "0123456789_-") != strlen(jid)) {
        snprintf(err, errlen, "%s: POST /sdcpp/v1/img_gen answered no usable job id", c->who);
        json_decref(doc);
        return BACKEND_TRANSIENT;
    }
    snprintf(id, sizeof id, "%s", jid);
    json_decref(doc);

    char path[128];
    snprintf(path, sizeof path, "/sdcpp/v1/jobs/%s", id);
    int64_t submitted = mono_ms();
    long pause = expect_ms > 0 ? expect_ms * 17 / 20 : POLL_START_MS;
    for (;;) {
        if (job->cancel && atomic_load(job->cancel)) {
            cancel_job(c, id);
            snprintf(err, errlen, "%s: canceled", c->who);
            return BACKEND_CANCELED;
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            cancel_job(c, id);
            snprintf(err, errlen, "%s: job %s did not finish within %ld ms", c->who, id,
                     budget_ms);
            return BACKEND_TRANSIENT;
        }
        r = be_result(call(c, "GET", path, NULL, left < 10000 ? (long)left : 10000, job->cancel,
                           &resp, err, errlen));
        if (r == BACKEND_CANCELED)
            continue; /* cancel it on the server above */
        if (r != BACKEND_OK)
            return r == BACKEND_UNDELIVERED ? BACKEND_TRANSIENT : r; /* it was queued */
        if (resp.status != 200) {
            char text[256];
            http_error_text(resp.body, resp.len, text, sizeof text);
            snprintf(err, errlen, "%s: GET %s: HTTP %ld: %s", c->who, path, resp.status, text);
            http_response_free(&resp);
            return BACKEND_TRANSIENT;
        }
        enum sdcpp_job_state st = sdcpp_read_job(c->who, resp.body, resp.len, out, err, errlen);
        http_response_free(&resp);
        if (st == SDCPP_JOB_DONE) {
            out->seed = job->seed; /* the job answer does not say; we sent one */
            return BACKEND_OK;
        }
        if (st == SDCPP_JOB_FAILED)
            return BACKEND_TRANSIENT;
        nap(pause < left ? pause : (long)left, job->cancel);
        /* Tight around the usual time; a job far slower than usual (a queue
         * ahead of it on the server) is polled less and less often. */
        if (expect_ms > 0 && mono_ms() - submitted < expect_ms * 2)
            pause = POLL_TIGHT_MS;
        else
            pause = pause * 2 > POLL_MAX_MS ? POLL_MAX_MS : pause * 2;
    }
}
