/*
 * comfyui.c: the backend for a ComfyUI server, driven by a workflow the user
 * exported in API format ("Save (API Format)").
 *
 * ComfyUI has no txt2img call: it runs graphs. At construction the workflow
 * file is read and analysed (comfyui_graph.c: which nodes a job's fields go
 * in; a workflow where that fails is refused with the config entry named).
 * This file is the conversation with the server around it.
 *
 * One generate() fills a copy of the graph with the job, opens the
 * websocket /ws?clientId=<a fresh client_id> (ws_client.c), queues the
 * graph (POST /prompt with that client_id), and listens: "progress" and the
 * binary preview frames become live steps (docs/live.md), and "executing"
 * with node null (or execution_success/_error/_interrupted) for our prompt
 * says the verdict is in GET /history/<id>, which is then read. The history
 * stays the one source of the verdict: it is what polling reads too, and
 * it is the fallback whenever the websocket cannot be opened (a server or
 * proxy without it: not tried again for a minute) or drops mid-prompt:
 * then /history is polled with backoff (50 ms doubling to 1 s), which keeps
 * the latency of fast jobs low and the load of long ones negligible. While
 * the websocket is quiet for 2 s the history is asked once anyway, so a
 * connection that stalls without closing cannot hold an item. The first
 * output image is then downloaded (GET /view) and checked to be a whole
 * PNG. A prompt we
 * give up on (timeout, cancel) is deleted from ComfyUI's queue, and
 * interrupted when it is the one running; cancel() does that for every
 * prompt this endpoint has in flight.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "backends/answers.h"
#include "backends/backends_real.h"
#include "backends/comfyui_graph.h"
#include "backends/ws_client.h"
#include "util/imagehead.h"
#include "util/log.h"
#include "util/oneline.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

struct comfy {
    char *url;
    char who[96];       /* "comfyui c0" */
    struct comfy_graph wf; /* the workflow and where a job goes in it */
    pthread_mutex_t mu; /* guards inflight */
    json_t *inflight;   /* prompt ids queued by running generate() calls */
    atomic_llong no_ws_until; /* mono ms: the websocket failed to open; poll until then */
};

/* How long the websocket is left alone after it could not be opened. */
#define COMFY_WS_RETRY_MS 60000
/* A websocket quiet this long: the history is asked once. */
#define COMFY_WS_QUIET_MS 2000

/* ---- HTTP helpers ---- */

static enum backend_result call(const struct comfy *c, const char *method, const char *path,
                                const char *body, long timeout_ms, atomic_int *cancel,
                                struct http_response *resp, char *err, size_t errlen)
{
    char *url = xasprintf("%s%s", c->url, path);
    struct http_request hr = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms < 10000 ? timeout_ms : 10000,
        .max_bytes = BE_MAX_RESPONSE,
        .cancel = cancel,
        .who = c->who,
    };
    enum backend_result r = be_result(http_client_do(&hr, resp, err, errlen));
    free(url);
    return r;
}

/* Fire-and-forget POST with a short timeout. */
static void post_quietly(const struct comfy *c, const char *path, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct http_response resp;
    char err[256];
    if (call(c, "POST", path, s, 3000, NULL, &resp, err, sizeof err) == BACKEND_OK)
        http_response_free(&resp);
    free(s);
}

/* Takes a prompt we gave up on off the server: out of the queue, and
 * interrupted if it is the one running now. Older ComfyUI ignores the
 * prompt_id of /interrupt and stops whatever runs, so we only interrupt
 * after seeing our prompt in queue_running (the server may be shared). */
static void abandon(const struct comfy *c, const char *prompt_id)
{
    post_quietly(c, "/queue", json_pack("{s:[s]}", "delete", prompt_id));
    struct http_response resp;
    char err[256];
    int running = 0;
    if (call(c, "GET", "/queue", NULL, 3000, NULL, &resp, err, sizeof err) == BACKEND_OK) {
        running = comfy_queue_running(resp.body, resp.len, prompt_id);
        http_response_free(&resp);
    }
    if (running)
        post_quietly(c, "/interrupt", json_pack("{s:s}", "prompt_id", prompt_id));
}

static void inflight_add(struct comfy *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    json_array_append_new(c->inflight, json_string(id));
    pthread_mutex_unlock(&c->mu);
}

static void inflight_remove(struct comfy *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < json_array_size(c->inflight); i++)
        if (strcmp(json_string_value(json_array_get(c->inflight, i)), id) == 0) {
            json_array_remove(c->inflight, i);
            break;
        }
    pthread_mutex_unlock(&c->mu);
}

/* ---- reading answers (contracts in answers.h) ---- */

int comfy_queue_running(const char *body, size_t len, const char *prompt_id)
{
    json_t *q = json_loadb(body, len, 0, NULL);
    int running = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(q, "queue_running"), i, entry) {
        const char *id = json_string_value(json_array_get(entry, 1));
        if (id && strcmp(id, prompt_id) == 0)
            running = 1;
    }
    json_decref(q);
    return running;
}

int comfy_read_prompt_id(const char *body, size_t len, char *id, size_t idlen)
{
    json_t *pr = json_loadb(body, len, 0, NULL);
    const char *pid = json_string_value(json_object_get(pr, "prompt_id"));
    int ok = pid && *pid && strlen(pid) <= COMFY_PROMPT_ID_MAX && !strpbrk(pid, "/?#% ") &&
             strlen(pid) < idlen;
    if (ok)
        snprintf(id, idlen, "%s", pid);
    json_decref(pr);
    return ok ? 0 : -1;
}

/* "Prompt outputs failed validation: CheckpointLoaderSimple (node 4): Value
 * not in list: ckpt_name: 'x' not in [...]" from a 400 of /prompt. */
void comfy_describe_rejection(const char *body, size_t len, char *dst, size_t dstlen)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const json_t *ne = json_object_get(j, "node_errors");
    if (!json_is_object(j) || (!e && !ne)) {
        json_decref(j);
        http_error_text(body, len, dst, dstlen);
        return;
    }
    struct strbuf sb;
    sb_init(&sb);
    const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
                                        : json_string_value(e);
    const char *details = json_string_value(json_object_get(e, "details"));
    sb_puts(&sb, msg ? msg : "prompt rejected");
    if (details && *details)
        sb_printf(&sb, ": %s", details);
    if (json_object_size(ne) > 0) {
        size_t n;
        const char **ids = comfy_graph_sorted_ids(ne, NULL, &n);
        const json_t *first = n ? json_object_get(ne, ids[0]) : NULL;
        const json_t *e0 = json_array_get(json_object_get(first, "errors"), 0);
        const char *cls = json_string_value(json_object_get(first, "class_type"));
        const char *m = json_string_value(json_object_get(e0, "message"));
        const char *d = json_string_value(json_object_get(e0, "details"));
        if (n)
            sb_printf(&sb, "; %s (node %s): %s%s%s", cls ? cls : "node", ids[0],
                      m ? m : "invalid", d && *d ? ": " : "", d && *d ? d : "");
        free(ids);
    }
    one_line(sb.data, sb.len, dst, dstlen);
    sb_free(&sb);
    json_decref(j);
}

/*
 * A name the server sent (a node type, a file name), for a message: one
 * line, valid UTF-8, and short, so that the message fits the engine's
 * buffer whole (snprintf would cut a long one anywhere, even inside a
 * character, and an item error that is not UTF-8 drops out of the API).
 */
static const char *server_name(const char *s, char *buf, size_t buflen)
{
    if (!s)
        return NULL;
    one_line(s, strlen(s), buf, buflen);
    return buf;
}

/* The verdict of a finished history entry. */
static enum backend_result judge_failure(const char *who, const json_t *status,
                                         atomic_int *cancel, char *err, size_t errlen)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(status, "messages"), i, m) {
        const char *kind = json_string_value(json_array_get(m, 0));
        const json_t *d = json_array_get(m, 1);
        if (!kind)
            continue;
        if (strcmp(kind, "execution_error") == 0) {
            const char *ex = json_string_value(json_object_get(d, "exception_message"));
            const char *typ = json_string_value(json_object_get(d, "exception_type"));
            char ntb[100], nidb[40], typb[100];
            const char *nt = server_name(json_string_value(json_object_get(d, "node_type")), ntb,
                                         sizeof ntb);
            const char *nid = server_name(json_string_value(json_object_get(d, "node_id")), nidb,
                                          sizeof nidb);
            char exl[600];
            http_error_text(ex ? ex : "", ex ? strlen(ex) : 0, exl, sizeof exl);
            snprintf(err, errlen, "%s: execution error in %s (node %s): %s%s%s", who,
                     nt ? nt : "a node", nid ? nid : "?",
                     typ ? server_name(typ, typb, sizeof typb) : "", typ ? ": " : "",
                     ex ? exl : "no message");
            /* Running out of VRAM depends on what else ran; another try (or
             * another GPU) can work. Anything else will fail again. */
            if ((typ && strstr(typ, "OutOfMemory")) || (ex && strstr(ex, "out of memory")))
                return BACKEND_TRANSIENT;
            return BACKEND_PERMANENT;
        }
        if (strcmp(kind, "execution_interrupted") == 0) {
            if (cancel && atomic_load(cancel)) {
                snprintf(err, errlen, "%s: canceled", who);
                return BACKEND_CANCELED;
            }
            snprintf(err, errlen, "%s: the prompt was interrupted on the server", who);
            return BACKEND_TRANSIENT;
        }
    }
    snprintf(err, errlen, "%s: the prompt failed without an error message", who);
    return BACKEND_PERMANENT;
}

/* Sleeps ms in 50 ms slices; 1 when canceled meanwhile. */
static int nap(long long ms, atomic_int *cancel)
{
    while (ms > 0) {
        if (cancel && atomic_load(cancel))
            return 1;
        long long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return cancel && atomic_load(cancel);
}

/* The output image to download from a finished entry: the first saved one
 * ("output"), else the first preview; NULL when there is none. Borrowed. */
static const json_t *pick_image(const json_t *entry)
{
    const json_t *pick = NULL;
    const char *k;
    json_t *o;
    json_object_foreach(json_object_get(entry, "outputs"), k, o) {
        size_t i;
        json_t *im;
        json_array_foreach(json_object_get(o, "images"), i, im) {
            const char *t = json_string_value(json_object_get(im, "type"));
            if (!json_is_string(json_object_get(im, "filename")))
                continue;
            if (t && strcmp(t, "output") == 0) {
                pick = im;
                break;
            }
            if (!pick) /* a PreviewImage ("temp") if nothing is saved */
                pick = im;
        }
        const char *pt = pick ? json_string_value(json_object_get(pick, "type")) : NULL;
        if (pt && strcmp(pt, "output") == 0)
            break;
    }
    return pick;
}

enum comfy_progress comfy_read_history(const char *who, const char *body, size_t len,
                                       const char *prompt_id, atomic_int *cancel,
                                       json_t **image, enum backend_result *result, char *err,
                                       size_t errlen)
{
    *image = NULL;
    json_t *h = json_loadb(body, len, 0, NULL);
    if (!json_is_object(h)) {
        json_decref(h);
        snprintf(err, errlen, "%s: history answer is not a JSON object", who);
        *result = BACKEND_TRANSIENT;
        return COMFY_FAILED;
    }
    const json_t *entry = json_object_get(h, prompt_id);
    const json_t *status = json_object_get(entry, "status");
    const char *sstr = json_string_value(json_object_get(status, "status_str"));
    enum comfy_progress p = COMFY_WAITING;
    if (sstr && strcmp(sstr, "error") == 0) {
        *result = judge_failure(who, status, cancel, err, errlen);
        p = COMFY_FAILED;
    } else if (entry && (json_is_true(json_object_get(status, "completed")) ||
                         /* Builds before status existed only wrote the entry once done. */
                         (!status && json_object_size(json_object_get(entry, "outputs"))))) {
        const json_t *pick = pick_image(entry);
        if (pick) {
            *image = json_incref((json_t *)pick);
            p = COMFY_FINISHED;
        } else {
            snprintf(err, errlen, "%s: the workflow produced no image (no SaveImage node?)", who);
            *result = BACKEND_PERMANENT;
            p = COMFY_FAILED;
        }
    }
    json_decref(h);
    return p;
}

/* Downloads pick (an entry of a history answer's outputs) into out. */
static enum backend_result fetch_image(const struct comfy *c, const json_t *pick,
                                       long long deadline, const struct sf_job *job,
                                       struct sf_image *out, char *err, size_t errlen)
{
    const char *fn = json_string_value(json_object_get(pick, "filename"));
    const char *sub = json_string_value(json_object_get(pick, "subfolder"));
    const char *typ = json_string_value(json_object_get(pick, "type"));
    char fnb[200];
    const char *fn_shown = server_name(fn, fnb, sizeof fnb);
    char *efn = http_url_escape(fn);
    char *esub = http_url_escape(sub ? sub : "");
    char *etyp = http_url_escape(typ ? typ : "output");
    char *path = xasprintf("/view?filename=%s&subfolder=%s&type=%s", efn, esub, etyp);
    free(efn);
    free(esub);
    free(etyp);
    long long left = deadline - mono_ms();
    struct http_response resp;
    enum backend_result r = call(c, "GET", path, NULL, left > 1000 ? (long)left : 1000,
                                 job->cancel, &resp, err, errlen);
    free(path);
    if (r != BACKEND_OK)
        return r;
    if (resp.status != 200) {
        char text[300];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: fetching %s: HTTP %ld: %s", c->who, fn_shown, resp.status,
                 text);
        http_response_free(&resp);
        return BACKEND_TRANSIENT;
    }
    char perr[256];
    int w, hgt;
    if (png_check((unsigned char *)resp.body, resp.len, &w, &hgt, perr, sizeof perr) < 0) {
        snprintf(err, errlen, "%s: output image %s: %s", c->who, fn_shown, perr);
        http_response_free(&resp);
        return BACKEND_TRANSIENT;
    }
    out->png = (unsigned char *)http_response_take_body(&resp, &out->png_len);
    out->width = w;
    out->height = hgt;
    out->seed = job->seed;
    return BACKEND_OK;
}

/* One look at /history/<id> (and the image, when it is done): 1 with *r
 * when the item's call is over (done, failed, canceled, out of time), 0
 * when the prompt is still on its way. */
static int history_once(struct comfy *c, const char *prompt_id, long long deadline,
                        long budget_ms, const struct sf_job *job, struct sf_image *out,
                        enum backend_result *r, char *err, size_t errlen)
{
    if (job->cancel && atomic_load(job->cancel)) {
        snprintf(err, errlen, "%s: canceled", c->who);
        *r = BACKEND_CANCELED;
        return 1;
    }
    long long left = deadline - mono_ms();
    if (left <= 0) {
        snprintf(err, errlen, "%s: timed out after %.6g s waiting for prompt %s", c->who,
                 budget_ms / 1000.0, prompt_id);
        *r = BACKEND_TRANSIENT;
        return 1;
    }
    char path[128];
    snprintf(path, sizeof path, "/history/%s", prompt_id);
    struct http_response resp;
    *r = call(c, "GET", path, NULL, left < 30000 ? (long)left : 30000, job->cancel, &resp, err,
              errlen);
    if (*r != BACKEND_OK) {
        if (*r == BACKEND_TRANSIENT && mono_ms() >= deadline)
            snprintf(err, errlen, "%s: timed out after %.6g s waiting for prompt %s", c->who,
                     budget_ms / 1000.0, prompt_id);
        return 1;
    }
    if (resp.status != 200) {
        char text[300];
        http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: polling history: HTTP %ld: %s", c->who, resp.status, text);
        http_response_free(&resp);
        *r = BACKEND_TRANSIENT;
        return 1;
    }
    json_t *image;
    enum comfy_progress p = comfy_read_history(c->who, resp.body, resp.len, prompt_id,
                                               job->cancel, &image, r, err, errlen);
    http_response_free(&resp);
    if (p == COMFY_FAILED)
        return 1;
    if (p == COMFY_FINISHED) {
        *r = fetch_image(c, image, deadline, job, out, err, errlen);
        json_decref(image);
        return 1;
    }
    return 0;
}

/* Polls /history/<id> until the prompt is done, failed, or time is up
 * (deadline, monotonic ms, budget_ms after the call began). */
static enum backend_result wait_for(struct comfy *c, const char *prompt_id, long long deadline,
                                    long budget_ms, const struct sf_job *job,
                                    struct sf_image *out, char *err, size_t errlen)
{
    long long delay = 50;
    for (;;) {
        enum backend_result r;
        if (history_once(c, prompt_id, deadline, budget_ms, job, out, &r, err, errlen))
            return r;
        long long wait = delay < deadline - mono_ms() ? delay : deadline - mono_ms();
        nap(wait, job->cancel); /* a cancel is reported by the next look */
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

/* ---- the websocket ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void comfy_read_ws(const unsigned char *data, size_t len, int binary, const char *prompt_id,
                   struct comfy_ws_read *out)
{
    memset(out, 0, sizeof *out);
    if (binary) {
        /* server.py: 4 bytes of event type, big-endian; PREVIEW_IMAGE (1)
         * then 4 bytes of image type (1 JPEG, 2 PNG) and the image;
         * PREVIEW_IMAGE_WITH_METADATA (4) then 4 bytes of metadata length,
         * the metadata (JSON, with prompt_id) and the image. */
        if (len < 8)
            return;
        uint32_t type = be32(data);
        const unsigned char *img = NULL;
        size_t n = 0;
        if (type == 1) {
            img = data + 8;
            n = len - 8;
        } else if (type == 4) {
            uint32_t mlen = be32(data + 4);
            if (mlen > len - 8)
                return;
            json_t *meta = json_loadb((const char *)data + 8, mlen, 0, NULL);
            const char *pid = json_string_value(json_object_get(meta, "prompt_id"));
            int other = pid && strcmp(pid, prompt_id) != 0;
            json_decref(meta);
            if (other)
                return;
            img = data + 8 + mlen;
            n = len - 8 - mlen;
        }
        /* The bytes say what they are; a type the store cannot serve is dropped. */
        enum image_kind k = img ? image_sniff(img, n) : IMAGE_UNKNOWN;
        if (k != IMAGE_JPEG && k != IMAGE_PNG && k != IMAGE_WEBP)
            return;
        out->event = COMFY_WS_PREVIEW;
        out->image = img;
        out->image_len = n;
        out->mime = image_kind_mime(k);
        return;
    }
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    const json_t *d = json_object_get(j, "data");
    const char *pid = json_string_value(json_object_get(d, "prompt_id"));
    if (!type || !pid || strcmp(pid, prompt_id) != 0) {
        json_decref(j);
        return;
    }
    if (strcmp(type, "progress") == 0) {
        json_int_t v = json_integer_value(json_object_get(d, "value"));
        json_int_t m = json_integer_value(json_object_get(d, "max"));
        if (m > 0 && m <= 100000 && v >= 0) {
            out->event = COMFY_WS_PROGRESS;
            out->steps = (int)m;
            out->step = v > m ? (int)m : (int)v;
        }
    } else if ((strcmp(type, "executing") == 0 && json_is_null(json_object_get(d, "node"))) ||
               strcmp(type, "execution_success") == 0 || strcmp(type, "execution_error") == 0 ||
               strcmp(type, "execution_interrupted") == 0) {
        out->event = COMFY_WS_ENDED;
    }
    json_decref(j);
}

/* Follows the prompt on the websocket until it ends, reporting its steps
 * and previews; then, or when the websocket fails, the history has the
 * verdict (wait_for). The websocket is closed here. */
static enum backend_result wait_ws(struct comfy *c, struct ws_client *ws, const char *prompt_id,
                                   long long deadline, long budget_ms, const struct sf_job *job,
                                   struct sf_image *out, char *err, size_t errlen)
{
    int step = 0, steps = 0;
    long long quiet_since = mono_ms();
    for (;;) {
        if ((job->cancel && atomic_load(job->cancel)) || mono_ms() >= deadline)
            break; /* wait_for says so */
        struct ws_message m;
        char why[128];
        int got = ws_next(ws, 250, &m, why, sizeof why);
        if (got < 0) {
            log_info("%s: %s while prompt %s runs; polling its history", c->who, why, prompt_id);
            break;
        }
        if (got == 0) {
            if (mono_ms() - quiet_since >= COMFY_WS_QUIET_MS) {
                enum backend_result r;
                if (history_once(c, prompt_id, deadline, budget_ms, job, out, &r, err, errlen)) {
                    ws_close(ws);
                    return r;
                }
                quiet_since = mono_ms();
            }
            continue;
        }
        quiet_since = mono_ms();
        struct comfy_ws_read rd;
        comfy_read_ws(m.data, m.len, m.kind == WS_BINARY, prompt_id, &rd);
        if (rd.event == COMFY_WS_PROGRESS) {
            step = rd.step;
            steps = rd.steps;
            be_step(job, step, steps, NULL, 0, NULL);
        } else if (rd.event == COMFY_WS_PREVIEW) {
            be_step(job, step, steps, rd.image, rd.image_len, rd.mime);
        }
        free(m.data);
        if (rd.event == COMFY_WS_ENDED)
            break;
    }
    ws_close(ws);
    return wait_for(c, prompt_id, deadline, budget_ms, job, out, err, errlen);
}

/* Opens /ws?clientId=client_id, or NULL (the history is polled instead)
 * when the server has none or it cannot be opened now. */
static struct ws_client *open_ws(struct comfy *c, const char *client_id, long long deadline,
                                 const struct sf_job *job)
{
    if (mono_ms() < atomic_load(&c->no_ws_until))
        return NULL;
    long long left = deadline - mono_ms();
    long timeout = left < 5000 ? (long)left : 5000;
    if (timeout < 1)
        return NULL;
    char path[96], why[300];
    snprintf(path, sizeof path, "/ws?clientId=%s", client_id);
    struct ws_client *ws;
    enum http_outcome o = ws_open(c->url, path, timeout, job->cancel, c->who, &ws, why, sizeof why);
    if (o == HTTP_ANSWERED)
        return ws;
    if (o != HTTP_CANCELED) {
        log_info("%s: %s; polling /history for a minute", c->who, why);
        atomic_store(&c->no_ws_until, mono_ms() + COMFY_WS_RETRY_MS);
    }
    return NULL;
}

static enum backend_result comfy_generate(struct sf_backend *b, const struct sf_job *job,
                                          struct sf_image *out, char *err, size_t errlen)
{
    struct comfy *c = b->state;
    memset(out, 0, sizeof *out);
    long budget_ms = be_budget_ms(b, job);
    long long deadline = mono_ms() + budget_ms;
    char why[300];
    json_t *g = comfy_graph_fill(&c->wf, job, why, sizeof why);
    if (!g) {
        snprintf(err, errlen, "%s: %s", c->who, why);
        return BACKEND_PERMANENT;
    }
    /* Random (version 4), as ComfyUI's own front end makes them. */
    uuid_t uuid;
    char client_id[37];
    uuid_generate_random(uuid);
    uuid_unparse_lower(uuid, client_id);
    json_t *rq = json_pack("{s:o, s:s}", "prompt", g, "client_id", client_id);
    char *body = json_dumps(rq, JSON_COMPACT);
    json_decref(rq);
    /* Listening before queueing: no message of the prompt can be missed. */
    struct ws_client *ws = open_ws(c, client_id, deadline, job);
    struct http_response resp;
    enum backend_result r = call(c, "POST", "/prompt", body, budget_ms, job->cancel, &resp, err,
                                 errlen);
    free(body);
    if (r != BACKEND_OK) {
        ws_close(ws);
        return r;
    }
    if (resp.status != 200) {
        char text[700];
        if (resp.status == 400)
            comfy_describe_rejection(resp.body, resp.len, text, sizeof text);
        else
            http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: HTTP %ld: %s", c->who, resp.status, text);
        r = be_result_of_status(resp.status);
        http_response_free(&resp);
        ws_close(ws);
        return r;
    }
    char prompt_id[COMFY_PROMPT_ID_MAX + 1];
    int have_id = comfy_read_prompt_id(resp.body, resp.len, prompt_id, sizeof prompt_id);
    http_response_free(&resp);
    if (have_id < 0) {
        snprintf(err, errlen, "%s: /prompt answered without a usable prompt_id", c->who);
        ws_close(ws);
        return BACKEND_TRANSIENT;
    }

    inflight_add(c, prompt_id);
    if (ws)
        r = wait_ws(c, ws, prompt_id, deadline, budget_ms, job, out, err, errlen);
    else
        r = wait_for(c, prompt_id, deadline, budget_ms, job, out, err, errlen);
    inflight_remove(c, prompt_id);
    /* The prompt was queued: a poll that cannot connect now does not make
     * the item undelivered, its GPU time may be spent. */
    if (r == BACKEND_UNDELIVERED)
        r = BACKEND_TRANSIENT;
    /* Gave up (timeout, cancel, poll failure): do not leave it queued on the GPU. */
    if (r == BACKEND_CANCELED || (r == BACKEND_TRANSIENT && !out->png))
        abandon(c, prompt_id);
    return r;
}

static void comfy_cancel(struct sf_backend *b)
{
    struct comfy *c = b->state;
    pthread_mutex_lock(&c->mu);
    json_t *ids = json_deep_copy(c->inflight);
    pthread_mutex_unlock(&c->mu);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) abandon(c, json_string_value(id));
    json_decref(ids);
}

static int comfy_health(struct sf_backend *b, char *err, size_t errlen)
{
    struct comfy *c = b->state;
    char *url = xasprintf("%s/system_stats", c->url);
    struct http_request hr = {
        .method = "GET",
        .url = url,
        .timeout_ms = 10000,
        .connect_timeout_ms = 5000,
        .who = c->who,
    };
    int rc = http_client_probe(&hr, err, errlen);
    free(url);
    return rc;
}

static void comfy_free(struct comfy *c)
{
    if (!c)
        return;
    free(c->url);
    comfy_graph_free(&c->wf);
    json_decref(c->inflight);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void comfy_destroy(struct sf_backend *b)
{
    if (!b)
        return;
    comfy_free(b->state);
    free(b);
}

static const struct sf_backend_ops comfyui_ops = {
    .type = "comfyui",
    .generate = comfy_generate,
    .cancel = comfy_cancel,
    .health = comfy_health,
    .destroy = comfy_destroy,
};

struct sf_backend *comfyui_backend_new(const json_t *ep, int index, char *err, size_t errlen)
{
    struct be_common cm;
    if (be_parse_common(ep, index, 600, &cm, err, errlen) < 0)
        return NULL;
    http_client_global_init();
    struct comfy *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->inflight = json_array();
    snprintf(c->who, sizeof c->who, "comfyui %s", cm.name);
    c->url = be_parse_url(ep, index, cm.name, err, errlen);
    if (!c->url)
        goto fail;
    const char *wf = json_string_value(json_object_get(ep, "workflow"));
    if (!wf || !*wf) {
        be_errf(err, errlen, index, cm.name,
                "workflow is required (the path of a workflow exported in API format)");
        goto fail;
    }
    json_error_t jerr;
    json_t *graph = json_load_file(wf, 0, &jerr);
    if (!graph) {
        if (jerr.line <= 0)
            be_errf(err, errlen, index, cm.name, "workflow %s: %s", wf, jerr.text);
        else
            be_errf(err, errlen, index, cm.name, "workflow %s: invalid JSON at line %d: %s",
                    wf, jerr.line, jerr.text);
        goto fail;
    }
    char msg[300];
    int rc = comfy_graph_analyse(graph, &c->wf, msg, sizeof msg);
    json_decref(graph);
    if (rc < 0) {
        be_errf(err, errlen, index, cm.name, "workflow %s %s", wf, msg);
        goto fail;
    }

    return backend_alloc(&comfyui_ops, cm.name, cm.concurrency, cm.timeout_s, c);
fail:
    comfy_free(c);
    return NULL;
}
