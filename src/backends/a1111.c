/*
 * a1111.c: the backend for AUTOMATIC1111's stable-diffusion-webui API (and
 * Forge, which speaks the same), plus stable-diffusion.cpp's sd-server
 * through flavor "sdcpp".
 *
 * One generate() is one synchronous POST /sdapi/v1/txt2img: the server
 * blocks until the picture is done and answers with it base64-encoded inside
 * JSON. Everything the server can get wrong is checked here before the engine
 * sees bytes: HTTP status (5xx and network trouble are transient, 4xx means
 * the request itself is refused and is permanent), JSON, base64, and a whole
 * PNG (png_check), whose real size is what we report, because sd-server
 * rounds sizes. The seed comes from "info" (a JSON document inside a string)
 * when the server says which one it used.
 *
 * The two flavors differ only in how LoRAs travel: A1111 parses
 * "<lora:NAME:WEIGHT>" out of the prompt; sd-server ignores such tags and
 * takes a "lora" array of {path, multiplier}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/answers.h"
#include "backends/backends_real.h"
#include "util/base64.h"
#include "util/oneline.h"
#include "util/png.h"
#include "util/xalloc.h"

struct a1111 {
    char *url;       /* no trailing slash */
    char *userpwd;   /* "user:pass" or NULL */
    char *checkpoint; /* or NULL */
    char sampler[64];
    int sdcpp;
    char who[96];    /* "a1111 gpu0", starts every message */
};

static char *route(const struct a1111 *a, const char *path)
{
    return xasprintf("%s%s", a->url, path);
}

/* "NAME" of a <lora:NAME:W> tag: the name, or the file name of the path
 * without its extension (how A1111 lists LoRAs). */
static void lora_tag_name(const char *name, const char *path, char *buf, size_t buflen)
{
    if (name) {
        snprintf(buf, buflen, "%s", name);
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(buf, buflen, "%.*s", (int)n, base);
}

/* Builds the txt2img request; NULL with err when a LoRA cannot be expressed. */
static json_t *build_request(const struct a1111 *a, const struct sf_job *job, char *err,
                             size_t errlen)
{
    struct strbuf prompt;
    sb_init(&prompt);
    sb_puts(&prompt, job->prompt ? job->prompt : "");
    json_t *lora_arr = a->sdcpp ? json_array() : NULL;
    size_t n = json_is_array(job->loras) ? json_array_size(job->loras) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        if (be_lora_get(job->loras, i, &name, &path, &w) < 0) {
            snprintf(err, errlen, "%s: LoRA %zu has neither a name nor a path", a->who, i + 1);
            goto fail;
        }
        if (a->sdcpp) {
            json_array_append_new(lora_arr, json_pack("{s:s, s:f}", "path", path ? path : name,
                                                      "multiplier", w));
            continue;
        }
        char tag[512], wbuf[32];
        lora_tag_name(name, path, tag, sizeof tag);
        /* A1111 splits the tag on ':' and ends it at '>'. */
        if (!tag[0] || strpbrk(tag, "<>:")) {
            snprintf(err, errlen, "%s: LoRA name \"%s\" cannot go in a <lora:...> tag", a->who,
                     tag);
            goto fail;
        }
        be_fmt_weight(w, wbuf, sizeof wbuf);
        sb_printf(&prompt, " <lora:%s:%s>", tag, wbuf);
    }
    json_t *rq = json_pack("{s:s, s:s, s:I, s:i, s:f, s:i, s:i, s:s, s:i, s:i}", "prompt",
                           prompt.data, "negative_prompt",
                           job->negative_prompt ? job->negative_prompt : "", "seed",
                           (json_int_t)job->seed, "steps", job->steps, "cfg_scale",
                           job->cfg_scale, "width", job->width, "height", job->height,
                           "sampler_name", a->sampler, "batch_size", 1, "n_iter", 1);
    sb_free(&prompt);
    if (!rq) { /* only when the prompt is not valid UTF-8 */
        snprintf(err, errlen, "%s: the prompt is not valid UTF-8", a->who);
        json_decref(lora_arr);
        return NULL;
    }
    if (lora_arr)
        json_object_set_new(rq, "lora", lora_arr);
    if (a->checkpoint)
        json_object_set_new(rq, "override_settings",
                            json_pack("{s:s}", "sd_model_checkpoint", a->checkpoint));
    return rq;
fail:
    sb_free(&prompt);
    json_decref(lora_arr);
    return NULL;
}

/* The seed the server says it used: info is a JSON document in a string
 * (empty from older sd-server builds); absent or odd means "the one we sent". */
static long long seed_from_info(const json_t *info, long long requested)
{
    json_t *doc = NULL;
    const json_t *obj = info;
    if (json_is_string(info)) {
        doc = json_loads(json_string_value(info), 0, NULL);
        obj = doc;
    }
    const json_t *s = json_object_get(obj, "seed");
    long long seed = requested;
    if (json_is_integer(s) && json_integer_value(s) >= 0)
        seed = json_integer_value(s);
    json_decref(doc);
    return seed;
}

/* The body of a 200 from txt2img (contract in answers.h). Anything
 * unusable in a 200 means a broken server or proxy, worth another try
 * (possibly elsewhere), so transient. */
enum backend_result a1111_read_answer(const char *who, const char *body, size_t len,
                                      long long requested_seed, struct sf_image *out,
                                      char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!doc) {
        /* jansson quotes the bytes it stopped at, which need not be UTF-8. */
        char why[sizeof jerr.text];
        one_line(jerr.text, strlen(jerr.text), why, sizeof why);
        snprintf(err, errlen, "%s: response is not valid JSON (%s)", who, why);
        return BACKEND_TRANSIENT;
    }
    const json_t *img = json_array_get(json_object_get(doc, "images"), 0);
    if (!json_is_string(img)) {
        snprintf(err, errlen, "%s: response has no image (\"images\" is empty or missing)", who);
        json_decref(doc);
        return BACKEND_TRANSIENT;
    }
    unsigned char *png;
    size_t png_len;
    if (base64_decode(json_string_value(img), json_string_length(img), &png, &png_len) < 0) {
        snprintf(err, errlen, "%s: response image is not valid base64", who);
        json_decref(doc);
        return BACKEND_TRANSIENT;
    }
    char perr[256];
    int w, h;
    if (png_check(png, png_len, &w, &h, perr, sizeof perr) < 0) {
        snprintf(err, errlen, "%s: response image: %s", who, perr);
        free(png);
        json_decref(doc);
        return BACKEND_TRANSIENT;
    }
    out->png = png;
    out->png_len = png_len;
    out->width = w;
    out->height = h;
    out->seed = seed_from_info(json_object_get(doc, "info"), requested_seed);
    json_decref(doc);
    return BACKEND_OK;
}

static enum backend_result a1111_generate(struct sf_backend *b, const struct sf_job *job,
                                          struct sf_image *out, char *err, size_t errlen)
{
    struct a1111 *a = b->state;
    memset(out, 0, sizeof *out);
    json_t *rq = build_request(a, job, err, errlen);
    if (!rq)
        return BACKEND_PERMANENT;
    char *body = json_dumps(rq, JSON_COMPACT);
    json_decref(rq);
    char *url = route(a, "/sdapi/v1/txt2img");
    struct http_request hr = {
        .method = "POST",
        .url = url,
        .body = body,
        .body_len = strlen(body),
        .userpwd = a->userpwd,
        .timeout_ms = be_budget_ms(b, job),
        .max_bytes = BE_MAX_RESPONSE,
        .cancel = job->cancel,
        .who = a->who,
    };
    struct http_response resp;
    enum backend_result r = be_result(http_client_do(&hr, &resp, err, errlen));
    free(url);
    free(body);
    if (r != BACKEND_OK)
        return r;

    if (resp.status < 200 || resp.status > 299) {
        char text[512];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: HTTP %ld: %s", a->who, resp.status, text);
        r = be_result_of_status(resp.status);
        http_response_free(&resp);
        return r;
    }

    r = a1111_read_answer(a->who, resp.body, resp.len, job->seed, out, err, errlen);
    http_response_free(&resp);
    return r;
}

/* Best effort: the engine has already set the cancel flags, which end our
 * own requests; this makes the GPU stop too. */
static void a1111_cancel(struct sf_backend *b)
{
    struct a1111 *a = b->state;
    char *url = route(a, "/sdapi/v1/interrupt");
    char err[256];
    struct http_request hr = {
        .method = "POST",
        .url = url,
        .body = "{}",
        .body_len = 2,
        .userpwd = a->userpwd,
        .timeout_ms = 3000,
        .connect_timeout_ms = 2000,
        .who = a->who,
    };
    struct http_response resp;
    if (http_client_do(&hr, &resp, err, sizeof err) == HTTP_ANSWERED)
        http_response_free(&resp);
    free(url);
}

static int a1111_health(struct sf_backend *b, char *err, size_t errlen)
{
    struct a1111 *a = b->state;
    /* sd-server serves this route too (with its one model). */
    char *url = route(a, "/sdapi/v1/sd-models");
    struct http_request hr = {
        .method = "GET",
        .url = url,
        .userpwd = a->userpwd,
        .timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .who = a->who,
    };
    int rc = http_client_probe(&hr, err, errlen);
    free(url);
    return rc;
}

static void a1111_destroy(struct sf_backend *b)
{
    if (!b)
        return;
    struct a1111 *a = b->state;
    if (a) {
        free(a->url);
        if (a->userpwd) /* do not leave the password in freed memory */
            memset(a->userpwd, 0, strlen(a->userpwd));
        free(a->userpwd);
        free(a->checkpoint);
        free(a);
    }
    free(b);
}

static const struct sf_backend_ops a1111_ops = {
    .type = "a1111",
    .generate = a1111_generate,
    .cancel = a1111_cancel,
    .health = a1111_health,
    .destroy = a1111_destroy,
};

struct sf_backend *a1111_backend_new(const json_t *ep, int index, char *err, size_t errlen)
{
    struct be_common c;
    if (be_parse_common(ep, index, 600, &c, err, errlen) < 0)
        return NULL;
    http_client_global_init();
    struct a1111 *a = xcalloc(1, sizeof *a);
    snprintf(a->who, sizeof a->who, "a1111 %s", c.name);
    a->url = be_parse_url(ep, index, c.name, err, errlen);
    if (!a->url)
        goto fail;

    const json_t *v = json_object_get(ep, "auth");
    if (v && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (!s || !strchr(s, ':') || s[0] == ':') {
            be_errf(err, errlen, index, c.name, "auth must be a string \"user:pass\"");
            goto fail;
        }
        a->userpwd = xstrdup(s);
    }
    v = json_object_get(ep, "flavor");
    if (v && !json_is_null(v)) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, "sdcpp") == 0)
            a->sdcpp = 1;
        else if (!s || strcmp(s, "a1111") != 0) {
            be_errf(err, errlen, index, c.name, "flavor must be \"a1111\" or \"sdcpp\"");
            goto fail;
        }
    }
    v = json_object_get(ep, "sampler");
    snprintf(a->sampler, sizeof a->sampler, "Euler a");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) >= sizeof a->sampler) {
            be_errf(err, errlen, index, c.name,
                    "sampler must be a sampler name such as \"Euler a\"");
            goto fail;
        }
        snprintf(a->sampler, sizeof a->sampler, "%s", json_string_value(v));
    }
    v = json_object_get(ep, "checkpoint");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            be_errf(err, errlen, index, c.name,
                    "checkpoint must be a model title such as \"v1-5-pruned-emaonly.safetensors\"");
            goto fail;
        }
        a->checkpoint = xstrdup(json_string_value(v));
    }

    return backend_alloc(&a1111_ops, c.name, c.concurrency, c.timeout_s, a);
fail:
    free(a->url);
    free(a->userpwd);
    free(a->checkpoint);
    free(a);
    return NULL;
}
