/*
 * a1111.c: the backend for AUTOMATIC1111's stable-diffusion-webui API (and
 * Forge, which speaks the same), and for stable-diffusion.cpp's sd-server,
 * which speaks a dialect of it.
 *
 * One generate() is one synchronous POST /sdapi/v1/txt2img: the server
 * blocks until the picture is done and answers with it base64-encoded inside
 * JSON. Everything the server can get wrong is checked here before the engine
 * sees bytes: HTTP status (5xx and network trouble are transient, 4xx means
 * the request itself is refused and is permanent), JSON, base64, and a whole
 * PNG (png_check), whose real size is what we report. The seed comes from
 * "info" (a JSON document inside a string) when the server says which one
 * it used.
 *
 * The two dialects differ in ways that silently spoil images when mixed up,
 * so the dialect is detected, not trusted to the config: sd-server alone
 * answers GET /sdcpp/v1/capabilities with 200, and its txt2img "info" says
 * "version": "stable-diffusion.cpp". A configured "flavor" only fills in
 * until the server has said which it is; a flavor that contradicts it is
 * logged and the detected dialect wins (docs/backends.md).
 *   - LoRAs: A1111 parses "<lora:NAME:WEIGHT>" out of the prompt; sd-server
 *     ignores such tags and takes a "lora" array of {path, multiplier}, where
 *     path must be exactly one GET /sdapi/v1/loras lists, a list sd-server
 *     fills only when that route is called. So the list is read before the
 *     first LoRA item, names are mapped to listed paths (sdcpp.h), and an
 *     "invalid lora path" answer reads the list again and retries once.
 *   - Checkpoints: only A1111 has override_settings; on sd-server a
 *     configured checkpoint is refused rather than ignored.
 *   - Sizes: sd-server aligns width and height up (64 for SD1.x); the
 *     alignment is learned from answers, and an answer no alignment explains
 *     fails the item instead of being recorded as what was asked for.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/a1111_progress.h"
#include "backends/answers.h"
#include "backends/backends_real.h"
#include "backends/sdcpp.h"
#include "backends/sdcpp_jobs.h"
#include "util/base64.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/oneline.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

enum dialect { DIALECT_UNKNOWN = 0, DIALECT_A1111, DIALECT_SDCPP };

static const char *dialect_name(int d)
{
    return d == DIALECT_SDCPP ? "sdcpp" : d == DIALECT_A1111 ? "a1111" : "undetected";
}

/* The alignment assumed for sd-server until its answers teach ours: 64,
 * what its SD1.x build applies (docs/backends.md). */
#define SDCPP_DEFAULT_ALIGN 64

struct a1111 {
    char *url;       /* no trailing slash */
    char *userpwd;   /* "user:pass" or NULL */
    char *checkpoint; /* or NULL */
    char sampler[64];
    int flavor;      /* configured: DIALECT_UNKNOWN (not set), _A1111 or _SDCPP */
    char who[96];    /* "a1111 gpu0", starts every message */
    pthread_t detector; /* asks the server what it is, once, at start */
    atomic_int stop;    /* set by destroy: the detector gives up */
    pthread_mutex_t mu; /* guards the fields below */
    int detected;    /* the dialect the server showed, DIALECT_UNKNOWN before */
    int align;       /* learned size alignment, 0 before any answer */
    json_t *loras;   /* the last GET /sdapi/v1/loras answer, NULL before one */
    int native;      /* sd-server offers its async job API (sdcpp_jobs.h) */
    int probed;      /* detect() got answers that did not tell */
    long job_ms;     /* usual time of a native job, queueing to image (EWMA); 0 */
    struct a1111_pollers pollers; /* live steps of txt2img calls (a1111_progress.h) */
};

static char *route(const struct a1111 *a, const char *path)
{
    return xasprintf("%s%s", a->url, path);
}

/* The dialect to speak now: the detected one, else the configured one,
 * else A1111's. */
static int dialect_now(struct a1111 *a)
{
    pthread_mutex_lock(&a->mu);
    int d = a->detected ? a->detected : (a->flavor ? a->flavor : DIALECT_A1111);
    pthread_mutex_unlock(&a->mu);
    return d;
}

/* Records what the server showed; a configured flavor it contradicts is
 * worth a warning (once per change), never a silent wrong image. */
static void set_detected(struct a1111 *a, int d, const char *how)
{
    pthread_mutex_lock(&a->mu);
    int before = a->detected;
    a->detected = d;
    pthread_mutex_unlock(&a->mu);
    if (before == d)
        return;
    if (a->flavor && a->flavor != d)
        log_warn("%s: configured flavor \"%s\", but the server is %s (%s): using the %s "
                 "dialect", a->who, dialect_name(a->flavor),
                 d == DIALECT_SDCPP ? "stable-diffusion.cpp sd-server" : "not sd-server", how,
                 dialect_name(d));
    else if (before)
        log_warn("%s: the server now shows the %s dialect (%s)", a->who, dialect_name(d), how);
    else
        log_info("%s: the server speaks the %s dialect (%s)", a->who, dialect_name(d), how);
}

/* One GET; HTTP_ANSWERED fills resp. */
static enum http_outcome get(struct a1111 *a, const char *path, atomic_int *cancel,
                             struct http_response *resp, char *err, size_t errlen)
{
    char *url = route(a, path);
    struct http_request hr = {
        .method = "GET",
        .url = url,
        .userpwd = a->userpwd,
        .timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .max_bytes = (size_t)16 * 1024 * 1024,
        .cancel = cancel,
        .who = a->who,
    };
    enum http_outcome o = http_client_do(&hr, resp, err, errlen);
    free(url);
    return o;
}

/* Asks the server what it is, once it answers at all: GET
 * /sdcpp/v1/capabilities answers 200 only on sd-server; otherwise GET
 * /sdapi/v1/cmd-flags answers 200 only on A1111 and Forge. An older
 * sd-server has neither: then nothing is known until a txt2img answer's
 * info.version says, and the configured flavor applies meanwhile. */
static void detect(struct a1111 *a, atomic_int *cancel)
{
    pthread_mutex_lock(&a->mu);
    int known = a->detected || a->probed;
    pthread_mutex_unlock(&a->mu);
    if (known)
        return;
    struct http_response resp;
    char err[256];
    if (get(a, "/sdcpp/v1/capabilities", cancel, &resp, err, sizeof err) != HTTP_ANSWERED)
        return;
    if (resp.status == 200) {
        /* The builds that describe themselves there queue jobs too. */
        json_t *caps = json_loadb(resp.body, resp.len, 0, NULL);
        pthread_mutex_lock(&a->mu);
        a->native = json_is_object(caps);
        pthread_mutex_unlock(&a->mu);
        json_decref(caps);
        set_detected(a, DIALECT_SDCPP, "GET /sdcpp/v1/capabilities answers 200");
        http_response_free(&resp);
        return;
    }
    http_response_free(&resp);
    if (get(a, "/sdapi/v1/cmd-flags", cancel, &resp, err, sizeof err) != HTTP_ANSWERED)
        return;
    if (resp.status == 200)
        set_detected(a, DIALECT_A1111, "GET /sdapi/v1/cmd-flags answers, an A1111/Forge route");
    http_response_free(&resp);
    pthread_mutex_lock(&a->mu);
    a->probed = 1;
    pthread_mutex_unlock(&a->mu);
}

static void *detector_main(void *arg)
{
    struct a1111 *a = arg;
    detect(a, &a->stop);
    return NULL;
}

/* ---- sd-server's LoRA list ---- */

/* Reads GET /sdapi/v1/loras (which also makes sd-server look at its LoRA
 * folder again). BACKEND_OK, or a failure with err. */
static enum backend_result fetch_loras(struct a1111 *a, atomic_int *cancel, char *err,
                                       size_t errlen)
{
    struct http_response resp;
    enum backend_result r = be_result(get(a, "/sdapi/v1/loras", cancel, &resp, err, errlen));
    if (r != BACKEND_OK)
        return r;
    if (resp.status != 200) {
        char text[256];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: GET /sdapi/v1/loras: HTTP %ld: %s", a->who, resp.status, text);
        r = be_result_of_status(resp.status);
        http_response_free(&resp);
        return r;
    }
    json_t *list = json_loadb(resp.body, resp.len, 0, NULL);
    http_response_free(&resp);
    if (!json_is_array(list)) {
        json_decref(list);
        snprintf(err, errlen, "%s: GET /sdapi/v1/loras did not answer a JSON array", a->who);
        return BACKEND_TRANSIENT;
    }
    pthread_mutex_lock(&a->mu);
    json_decref(a->loras);
    a->loras = list;
    pthread_mutex_unlock(&a->mu);
    return BACKEND_OK;
}

/*
 * The listed path of each of the job's LoRAs, as a new array of strings
 * (*out). The list is read first when none was read yet, or when fresh is
 * set (after "invalid lora path"); a name the list lacks reads it once more
 * (a file added since), then fails the item with the close matches.
 */
static enum backend_result map_loras(struct a1111 *a, const struct sf_job *job, int fresh,
                                     json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t n = json_is_array(job->loras) ? json_array_size(job->loras) : 0;
    if (n == 0)
        return BACKEND_OK;
    pthread_mutex_lock(&a->mu);
    int have = a->loras != NULL;
    pthread_mutex_unlock(&a->mu);
    int fetched = 0;
    if (!have || fresh) {
        enum backend_result r = fetch_loras(a, job->cancel, err, errlen);
        if (r != BACKEND_OK)
            return r;
        fetched = 1;
    }
    json_t *paths = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        if (be_lora_get(job->loras, i, &name, &path, &w) < 0) {
            snprintf(err, errlen, "%s: LoRA %zu has neither a name nor a path", a->who, i + 1);
            json_decref(paths);
            return BACKEND_PERMANENT;
        }
        const char *wanted = path ? path : name;
        for (;;) {
            char raw[512], hint[512];
            const char *found;
            pthread_mutex_lock(&a->mu);
            size_t listed = json_array_size(a->loras);
            enum lora_match m = sdcpp_lora_match(a->loras, wanted, &found, raw, sizeof raw);
            if (m == LORA_FOUND)
                json_array_append_new(paths, json_string(found));
            pthread_mutex_unlock(&a->mu);
            /* The listed paths are the server's words: one line of UTF-8. */
            one_line(raw, strlen(raw), hint, sizeof hint);
            if (m == LORA_FOUND)
                break;
            if (!fetched) {
                enum backend_result r = fetch_loras(a, job->cancel, err, errlen);
                if (r != BACKEND_OK) {
                    json_decref(paths);
                    return r;
                }
                fetched = 1;
                continue;
            }
            if (m == LORA_AMBIGUOUS)
                snprintf(err, errlen,
                         "%s: LoRA \"%s\" matches several LoRAs the server lists (%s): give "
                         "its path as listed",
                         a->who, wanted, hint);
            else if (listed == 0)
                snprintf(err, errlen,
                         "%s: LoRA \"%s\" is unknown to the server: GET /sdapi/v1/loras lists "
                         "none (is sd-server started with --lora-model-dir?)",
                         a->who, wanted);
            else
                snprintf(err, errlen,
                         "%s: LoRA \"%s\" is not among the %zu LoRAs the server lists%s%s",
                         a->who, wanted, listed, hint[0] ? "; close matches: " : "", hint);
            json_decref(paths);
            return BACKEND_PERMANENT;
        }
    }
    *out = paths;
    return BACKEND_OK;
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

/* Builds the txt2img request in dialect d (sdcpp_paths: the listed paths
 * of the job's LoRAs, for sd-server); NULL with err when a LoRA cannot be
 * expressed. */
static json_t *build_request(const struct a1111 *a, int d, const struct sf_job *job,
                             const json_t *sdcpp_paths, char *err, size_t errlen)
{
    int sdcpp = d == DIALECT_SDCPP;
    struct strbuf prompt;
    sb_init(&prompt);
    sb_puts(&prompt, job->prompt ? job->prompt : "");
    json_t *lora_arr = sdcpp ? json_array() : NULL;
    size_t n = json_is_array(job->loras) ? json_array_size(job->loras) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        if (be_lora_get(job->loras, i, &name, &path, &w) < 0) {
            snprintf(err, errlen, "%s: LoRA %zu has neither a name nor a path", a->who, i + 1);
            goto fail;
        }
        if (sdcpp) {
            const char *listed = json_string_value(json_array_get(sdcpp_paths, i));
            json_array_append_new(lora_arr,
                                  json_pack("{s:s, s:f}", "path",
                                            listed ? listed : (path ? path : name),
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
    if (a->checkpoint && !sdcpp)
        json_object_set_new(rq, "override_settings",
                            json_pack("{s:s}", "sd_model_checkpoint", a->checkpoint));
    return rq;
fail:
    sb_free(&prompt);
    json_decref(lora_arr);
    return NULL;
}

/* The seed the server says it used: info is a JSON document in a string
 * (empty from older sd-server builds); absent or odd means "the one we sent".
 * version (vlen bytes, may be NULL) gets info's "version", "" when none. */
static long long read_info(const json_t *info, long long requested, char *version, size_t vlen)
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
    if (version && vlen) {
        const char *v = json_string_value(json_object_get(obj, "version"));
        one_line(v ? v : "", v ? strlen(v) : 0, version, vlen);
    }
    json_decref(doc);
    return seed;
}

/* Copies info's string field key into out (one line, "" when absent). */
static void info_text(const json_t *obj, const char *key, char *out, size_t outlen)
{
    const char *v = json_string_value(json_object_get(obj, key));
    one_line(v ? v : "", v ? strlen(v) : 0, out, outlen);
}

/* What A1111's info says it drew with (model, its hash, the sampler, the
 * version), for the image's parameters text; sd-server says only its
 * version. */
static void read_generation(const json_t *info, struct sf_image *out)
{
    json_t *doc = json_is_string(info) ? json_loads(json_string_value(info), 0, NULL) : NULL;
    const json_t *obj = doc ? doc : info;
    info_text(obj, "sampler_name", out->sampler, sizeof out->sampler);
    info_text(obj, "sd_model_name", out->model, sizeof out->model);
    info_text(obj, "sd_model_hash", out->model_hash, sizeof out->model_hash);
    info_text(obj, "version", out->version, sizeof out->version);
    json_decref(doc);
}

enum backend_result a1111_read_answer_version(const char *who, const char *body, size_t len,
                                              long long requested_seed, struct sf_image *out,
                                              char *version, size_t vlen, char *err,
                                              size_t errlen)
{
    if (version && vlen)
        version[0] = '\0';
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
    out->seed = read_info(json_object_get(doc, "info"), requested_seed, version, vlen);
    read_generation(json_object_get(doc, "info"), out);
    json_decref(doc);
    return BACKEND_OK;
}

/* The body of a 200 from txt2img (contract in answers.h). Anything
 * unusable in a 200 means a broken server or proxy, worth another try
 * (possibly elsewhere), so transient. */
enum backend_result a1111_read_answer(const char *who, const char *body, size_t len,
                                      long long requested_seed, struct sf_image *out,
                                      char *err, size_t errlen)
{
    return a1111_read_answer_version(who, body, len, requested_seed, out, NULL, 0, err, errlen);
}

/* Judges the size of an image against the request and learns the
 * endpoint's alignment from it. BACKEND_PERMANENT with err when no
 * alignment explains it (and the run does not crop an image larger in both
 * dimensions): recording it as what was asked for would be a lie. */
static enum backend_result judge_size(struct a1111 *a, const struct sf_job *job,
                                      const struct sf_image *img, char *err, size_t errlen)
{
    int need = sdcpp_size_explain(job->width, job->height, img->width, img->height);
    if (need == 0) {
        if (job->fit_crop && img->width >= job->width && img->height >= job->height) {
            log_warn("%s: answered %dx%d for %dx%d, which no size alignment explains; cropped "
                     "as the run asks (fit: crop)",
                     a->who, img->width, img->height, job->width, job->height);
            return BACKEND_OK;
        }
        snprintf(err, errlen,
                 "%s: the server answered a %dx%d image for a request of %dx%d, which no size "
                 "alignment explains (a broken server or model?); the image is not kept",
                 a->who, img->width, img->height, job->width, job->height);
        return BACKEND_PERMANENT;
    }
    pthread_mutex_lock(&a->mu);
    int before = a->align;
    if (!before || align_up(job->width, before) != img->width ||
        align_up(job->height, before) != img->height)
        a->align = need;
    int after = a->align;
    pthread_mutex_unlock(&a->mu);
    if (after != before && after > 1)
        log_info("%s: the server aligns sizes up to multiples of %d (%dx%d came back %dx%d)",
                 a->who, after, job->width, job->height, img->width, img->height);
    return BACKEND_OK;
}

/* One POST /sdapi/v1/txt2img of rq; HTTP_ANSWERED-level failures become
 * backend results, an answer's status is the caller's to judge. */
static enum backend_result post_txt2img(struct a1111 *a, const struct sf_job *job,
                                        const json_t *rq, long timeout_ms,
                                        struct http_response *resp, char *err, size_t errlen)
{
    char *body = json_dumps(rq, JSON_COMPACT);
    char *url = route(a, "/sdapi/v1/txt2img");
    struct http_request hr = {
        .method = "POST",
        .url = url,
        .body = body,
        .body_len = strlen(body),
        .userpwd = a->userpwd,
        .timeout_ms = timeout_ms,
        .max_bytes = BE_MAX_RESPONSE,
        .cancel = job->cancel,
        .who = a->who,
    };
    enum backend_result r = be_result(http_client_do(&hr, resp, err, errlen));
    free(url);
    free(body);
    return r;
}

/* What a txt2img answer's "version" says about the dialect. */
static int dialect_of_version(const char *version)
{
    if (!version[0])
        return DIALECT_UNKNOWN; /* older sd-server builds send an empty info */
    return strcmp(version, "stable-diffusion.cpp") == 0 ? DIALECT_SDCPP : DIALECT_A1111;
}

static enum backend_result generate_rounds(struct sf_backend *b, const struct sf_job *job,
                                           struct sf_image *out, int *answered, char *err,
                                           size_t errlen);

static enum backend_result a1111_draw(struct sf_backend *b, const struct sf_job *job,
                                          struct sf_image *out, char *err, size_t errlen)
{
    int answered = 0;
    enum backend_result r = generate_rounds(b, job, out, &answered, err, errlen);
    /* A retry that could not connect after a txt2img was answered: GPU time
     * was spent on this item, so it is not "never delivered". */
    if (r == BACKEND_UNDELIVERED && answered)
        r = BACKEND_TRANSIENT;
    return r;
}

/* The rounds of one item: a second one after "invalid lora path", or after
 * the answer showed the other dialect. *answered: a txt2img was answered. */
static enum backend_result generate_rounds(struct sf_backend *b, const struct sf_job *job,
                                           struct sf_image *out, int *answered, char *err,
                                           size_t errlen)
{
    struct a1111 *a = b->state;
    memset(out, 0, sizeof *out);
    detect(a, job->cancel);
    /* A second round (a retry) gets what is left of the one deadline. */
    long budget = be_budget_ms(b, job);
    int64_t until = mono_ms() + budget;
    int round = 0;
    int lora_fresh = 0;     /* read the LoRA list again before this round */
    int retried_lora = 0, retried_dialect = 0;
    int has_loras = json_is_array(job->loras) && json_array_size(job->loras) > 0;
    for (;;) {
        long left = round++ ? (long)(until - mono_ms()) : budget;
        if (left < 1) {
            snprintf(err, errlen, "%s: out of time for another try", a->who);
            return BACKEND_TRANSIENT;
        }
        int d = dialect_now(a);
        if (d == DIALECT_SDCPP && a->checkpoint) {
            snprintf(err, errlen,
                     "%s: the server is stable-diffusion.cpp sd-server, whose txt2img has no "
                     "override_settings: the endpoint's \"checkpoint\" cannot be applied; "
                     "remove it (sd-server draws with the model it was started with)",
                     a->who);
            return BACKEND_PERMANENT;
        }
        json_t *paths = NULL;
        enum backend_result r = BACKEND_OK;
        if (d == DIALECT_SDCPP)
            r = map_loras(a, job, lora_fresh, &paths, err, errlen);
        if (r != BACKEND_OK)
            return r;
        pthread_mutex_lock(&a->mu);
        int native = d == DIALECT_SDCPP && a->native;
        pthread_mutex_unlock(&a->mu);
        if (native) {
            json_t *jrq = sdcpp_job_request(job, a->sampler, paths);
            json_decref(paths);
            if (!jrq) {
                snprintf(err, errlen, "%s: the prompt is not valid UTF-8", a->who);
                return BACKEND_PERMANENT;
            }
            struct sdcpp_conn conn = {a->url, a->userpwd, a->who};
            int not_served = 0;
            pthread_mutex_lock(&a->mu);
            long expect = a->job_ms;
            pthread_mutex_unlock(&a->mu);
            int64_t t0 = mono_ms();
            r = sdcpp_job_generate(&conn, job, jrq, left, expect, out, &not_served, err, errlen);
            if (r == BACKEND_OK) { /* the usual time, weighted 1/4 to the newest */
                long took = (long)(mono_ms() - t0);
                pthread_mutex_lock(&a->mu);
                a->job_ms = a->job_ms ? (a->job_ms * 3 + took) / 4 : took;
                pthread_mutex_unlock(&a->mu);
            }
            json_decref(jrq);
            if (not_served) { /* a build without the job API: txt2img it is */
                pthread_mutex_lock(&a->mu);
                a->native = 0;
                pthread_mutex_unlock(&a->mu);
                continue;
            }
            /* An unknown LoRA path is a 400 there too: the list may be stale. */
            if (r == BACKEND_PERMANENT && strstr(err, "HTTP 400") && has_loras && !retried_lora) {
                retried_lora = 1;
                lora_fresh = 1;
                continue;
            }
            if (r == BACKEND_OK) {
                r = judge_size(a, job, out, err, errlen);
                if (r != BACKEND_OK) {
                    free(out->png);
                    memset(out, 0, sizeof *out);
                }
            }
            return r;
        }
        json_t *rq = build_request(a, d, job, paths, err, errlen);
        json_decref(paths);
        if (!rq)
            return BACKEND_PERMANENT;
        /* Live steps (a1111_progress.h): the task gets an id of ours, and a
         * poller asks about it while the call waits. sd-server has no
         * progress route. */
        struct a1111_progress *prog = NULL;
        if (d != DIALECT_SDCPP && job->on_step) {
            unsigned char rnd[8];
            char hex[17], task_id[32];
            random_bytes(rnd, sizeof rnd);
            hex_encode(rnd, sizeof rnd, hex);
            snprintf(task_id, sizeof task_id, "task(%s)", hex);
            struct a1111_where where = {a->url, a->userpwd, a->who};
            prog = a1111_progress_start(&a->pollers, &where, task_id, job);
            if (prog)
                json_object_set_new(rq, "force_task_id", json_string(task_id));
        }
        struct http_response resp;
        r = post_txt2img(a, job, rq, left, &resp, err, errlen);
        a1111_progress_stop(prog);
        json_decref(rq);
        if (r != BACKEND_OK)
            return r;
        *answered = 1;

        if (resp.status < 200 || resp.status > 299) {
            char text[512];
            http_error_text(resp.body, resp.len, text, sizeof text);
            snprintf(err, errlen, "%s: HTTP %ld: %s", a->who, resp.status, text);
            r = be_result_of_status(resp.status);
            int stale = resp.status == 400 && strstr(text, "invalid lora path") != NULL;
            http_response_free(&resp);
            /* sd-server's list is stale (a file added since it was last
             * read): read it again and try once more. */
            if (stale && has_loras && !retried_lora) {
                if (d != DIALECT_SDCPP)
                    set_detected(a, DIALECT_SDCPP, "txt2img answers \"invalid lora path\"");
                retried_lora = 1;
                lora_fresh = 1;
                continue;
            }
            return r;
        }

        char version[64];
        r = a1111_read_answer_version(a->who, resp.body, resp.len, job->seed, out, version,
                                      sizeof version, err, errlen);
        http_response_free(&resp);
        if (r != BACKEND_OK)
            return r;
        int shown = dialect_of_version(version);
        if (shown && shown != d) {
            set_detected(a, shown, shown == DIALECT_SDCPP
                                       ? "its txt2img info says version stable-diffusion.cpp"
                                       : "its txt2img info names another version");
            /* LoRAs (or a checkpoint) went the other dialect's way and were
             * dropped: this image is not what the item asked for. */
            if (has_loras || a->checkpoint) {
                free(out->png);
                memset(out, 0, sizeof *out);
                if (retried_dialect) {
                    snprintf(err, errlen, "%s: the server changed dialect twice in one item",
                             a->who);
                    return BACKEND_TRANSIENT;
                }
                retried_dialect = 1;
                continue;
            }
        }
        r = judge_size(a, job, out, err, errlen);
        if (r != BACKEND_OK) {
            free(out->png);
            memset(out, 0, sizeof *out);
        }
        return r;
    }
}

/* One image, and what it was drawn with: both dialects apply the LoRAs
 * they are sent (a tag A1111 parses, a path sd-server has checked), and a
 * server whose answer does not say its version is at least known by the
 * dialect it was spoken to. */
static enum backend_result a1111_generate(struct sf_backend *b, const struct sf_job *job,
                                          struct sf_image *out, char *err, size_t errlen)
{
    enum backend_result r = a1111_draw(b, job, out, err, errlen);
    if (r == BACKEND_OK) {
        out->loras_applied = json_is_array(job->loras) && json_array_size(job->loras) > 0;
        if (!out->version[0] && b->ops->dialect && strcmp(b->ops->dialect(b), "sdcpp") == 0)
            snprintf(out->version, sizeof out->version, "stable-diffusion.cpp");
    }
    return r;
}

/* Best effort: the engine has already set the cancel flags, which end our
 * own requests; this makes the GPU stop too. */
static void a1111_cancel(struct sf_backend *b)
{
    struct a1111 *a = b->state;
    /* sd-server has no interrupt route: its jobs are canceled by the
     * waiting generate() calls themselves (sdcpp_jobs.c). */
    if (dialect_now(a) == DIALECT_SDCPP)
        return;
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
    if (rc == 0)
        detect(a, NULL);
    return rc;
}

static const char *a1111_dialect(struct sf_backend *b)
{
    struct a1111 *a = b->state;
    pthread_mutex_lock(&a->mu);
    int d = a->detected;
    pthread_mutex_unlock(&a->mu);
    return dialect_name(d);
}

static int a1111_output_size(struct sf_backend *b, int width, int height, int *out_w, int *out_h)
{
    struct a1111 *a = b->state;
    pthread_mutex_lock(&a->mu);
    int d = a->detected ? a->detected : a->flavor;
    int align = a->align ? a->align
                         : d == DIALECT_SDCPP ? SDCPP_DEFAULT_ALIGN : d == DIALECT_A1111 ? 1 : 0;
    pthread_mutex_unlock(&a->mu);
    if (!align)
        return 0;
    *out_w = align_up(width, align);
    *out_h = align_up(height, align);
    return 1;
}

static void a1111_destroy(struct sf_backend *b)
{
    if (!b)
        return;
    struct a1111 *a = b->state;
    if (a) {
        atomic_store(&a->stop, 1);
        pthread_join(a->detector, NULL);
        free(a->url);
        if (a->userpwd) /* do not leave the password in freed memory */
            memset(a->userpwd, 0, strlen(a->userpwd));
        free(a->userpwd);
        free(a->checkpoint);
        json_decref(a->loras);
        a1111_pollers_destroy(&a->pollers); /* waits for pollers still leaving */
        pthread_mutex_destroy(&a->mu);
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
    .dialect = a1111_dialect,
    .output_size = a1111_output_size,
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
            a->flavor = DIALECT_SDCPP;
        else if (s && strcmp(s, "a1111") == 0)
            a->flavor = DIALECT_A1111;
        else {
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
    if (a->checkpoint && a->flavor == DIALECT_SDCPP) {
        be_errf(err, errlen, index, c.name,
                "checkpoint cannot be used with flavor \"sdcpp\": sd-server's txt2img has no "
                "override_settings (it draws with the model it was started with)");
        goto fail;
    }
    pthread_mutex_init(&a->mu, NULL);
    a1111_pollers_init(&a->pollers);
    /* The first probe: the dialect is known before the first generate asks
     * for size warnings, and /api/health shows it from the start. */
    pthread_create(&a->detector, NULL, detector_main, a);
    return backend_alloc(&a1111_ops, c.name, c.concurrency, c.timeout_s, a);
fail:
    free(a->url);
    free(a->userpwd);
    free(a->checkpoint);
    free(a);
    return NULL;
}
