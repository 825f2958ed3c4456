/*
 * comfyui.c: the backend for a ComfyUI server, driven by a workflow the user
 * exported in API format ("Save (API Format)").
 *
 * ComfyUI has no txt2img call: it runs graphs. So at construction we load
 * the user's graph and find, by following links from a KSampler (or
 * KSamplerAdvanced), the nodes our job fields belong in: the positive and
 * negative CLIPTextEncode, the EmptyLatentImage (through any nodes between),
 * the CheckpointLoaderSimple feeding the model and the LoraLoader nodes. A
 * workflow where that fails is refused with the config entry named, rather
 * than failing every item of every run later.
 *
 * One generate() copies the graph, writes the job into those nodes, queues it
 * (POST /prompt), polls GET /history/<id> with backoff until it is done, then
 * downloads the first output image (GET /view) and checks it is a whole PNG.
 * Polling rather than the websocket keeps us on plain libcurl; the backoff
 * (50 ms doubling to 1 s) keeps the latency of fast jobs low and the load of
 * long ones negligible.
 *
 * LoRAs fill the workflow's LoraLoader nodes in node-id order; unused ones are
 * switched off (strength 0, which ComfyUI's LoraLoader treats as a no-op)
 * because the CSV item, not the workflow, says which LoRAs a picture has.
 * When there are more LoRAs than nodes, new LoraLoader nodes are chained
 * right after the checkpoint loader and everything that used the checkpoint's
 * MODEL and CLIP outputs is rewired to the end of that chain.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#include "backends/backends_real.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

struct comfy {
    char *url;
    int timeout_s;
    char who[96];       /* "comfyui c0" */
    json_t *graph;      /* the workflow as loaded (never modified) */
    char *sampler_id;
    int advanced;       /* KSamplerAdvanced: the seed input is noise_seed */
    char *pos_id, *neg_id, *latent_id;
    char *ckpt_id;      /* NULL when the model does not come from a CheckpointLoaderSimple */
    json_t *lora_ids;   /* array of LoraLoader node ids, in id order */
    pthread_mutex_t mu; /* guards inflight */
    json_t *inflight;   /* prompt ids queued by running generate() calls */
};

/* ---- graph analysis ---- */

/* A link is ["<node id>", <output index>]. */
static const char *link_target(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 1)))
        return NULL;
    return json_string_value(json_array_get(v, 0));
}

static const char *class_of(const json_t *graph, const char *id)
{
    return json_string_value(json_object_get(json_object_get(graph, id), "class_type"));
}

static int is_uint(const char *s)
{
    if (!*s || strlen(s) > 9)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Node ids in a stable order: numbers numerically, then other ids. */
static int id_cmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int na = is_uint(a), nb = is_uint(b);
    if (na && nb)
        return atol(a) < atol(b) ? -1 : atol(a) > atol(b);
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(a, b);
}

/* Ids of the nodes whose class is cls (any class when NULL), sorted. */
static const char **sorted_ids(const json_t *graph, const char *cls, size_t *n_out)
{
    size_t n = 0;
    const char **ids = xcalloc(json_object_size(graph) + 1, sizeof *ids);
    const char *key;
    json_t *node;
    json_object_foreach((json_t *)graph, key, node) {
        const char *c = json_string_value(json_object_get(node, "class_type"));
        if (!cls || (c && strcmp(c, cls) == 0))
            ids[n++] = key;
    }
    qsort(ids, n, sizeof *ids, id_cmp);
    *n_out = n;
    return ids;
}

static int class_in(const char *cls, const char *const *classes)
{
    for (; cls && *classes; classes++)
        if (strcmp(cls, *classes) == 0)
            return 1;
    return 0;
}

/* Follows links upstream from node id (depth first, inputs in key order)
 * to the first node of one of the classes; NULL when none. visited guards
 * against cycles a hand-edited file may have. */
static const char *find_upstream(const json_t *graph, const char *id,
                                 const char *const *classes, json_t *visited, int depth)
{
    if (!id || depth > 64 || json_object_get(visited, id))
        return NULL;
    json_object_set_new(visited, id, json_true());
    const json_t *node = json_object_get(graph, id);
    if (!node)
        return NULL;
    if (class_in(class_of(graph, id), classes))
        return json_object_iter_key(json_object_iter_at((json_t *)graph, id));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(node, "inputs"), key, v) {
        const char *found = find_upstream(graph, link_target(v), classes, visited, depth + 1);
        if (found)
            return found;
    }
    return NULL;
}

static const char *upstream_of_input(const json_t *graph, const char *id, const char *input,
                                     const char *const *classes)
{
    const json_t *v = json_object_get(json_object_get(json_object_get(graph, id), "inputs"),
                                      input);
    json_t *visited = json_object();
    const char *r = find_upstream(graph, link_target(v), classes, visited, 0);
    json_decref(visited);
    return r;
}

/* Checks the shape of an API-format graph; a sentence in msg when wrong. */
static int check_graph(const json_t *g, char *msg, size_t msglen)
{
    if (!json_is_object(g)) {
        snprintf(msg, msglen, "is not a JSON object of nodes");
        return -1;
    }
    if (json_is_array(json_object_get(g, "nodes")) && json_object_get(g, "links")) {
        snprintf(msg, msglen,
                 "is in ComfyUI's UI format, not API format; export it with \"Save (API Format)\"");
        return -1;
    }
    const char *key;
    json_t *node;
    json_object_foreach((json_t *)g, key, node) {
        if (!json_is_string(json_object_get(node, "class_type")) ||
            !json_is_object(json_object_get(node, "inputs"))) {
            snprintf(msg, msglen, "has a node \"%s\" without class_type or inputs (not API format?)",
                     key);
            return -1;
        }
    }
    return 0;
}

static const char *const SAMPLERS[] = {"KSampler", "KSamplerAdvanced", NULL};
static const char *const TEXT_ENC[] = {"CLIPTextEncode", NULL};
static const char *const LATENTS[] = {"EmptyLatentImage", "EmptySD3LatentImage", NULL};
static const char *const CKPTS[] = {"CheckpointLoaderSimple", NULL};

/* Fills the node ids of c from its graph; -1 with msg when the workflow lacks
 * what we need. The first sampler (in id order) that leads to everything
 * wins, so a two-pass (hires) workflow uses its first pass. */
static int analyse(struct comfy *c, char *msg, size_t msglen)
{
    size_t n = 0, total = 0;
    const char **all = sorted_ids(c->graph, NULL, &total);
    msg[0] = '\0';
    for (size_t i = 0; i < total; i++) {
        const char *id = all[i];
        if (!class_in(class_of(c->graph, id), SAMPLERS))
            continue;
        n++;
        const char *pos = upstream_of_input(c->graph, id, "positive", TEXT_ENC);
        const char *neg = upstream_of_input(c->graph, id, "negative", TEXT_ENC);
        const char *lat = upstream_of_input(c->graph, id, "latent_image", LATENTS);
        const char *cls = class_of(c->graph, id);
        if (!pos || !neg || !lat || strcmp(pos, neg) == 0) {
            if (!msg[0])
                snprintf(msg, msglen, "has %s node %s whose %s", cls, id,
                         !pos   ? "positive input does not lead to a CLIPTextEncode node"
                         : !neg ? "negative input does not lead to a CLIPTextEncode node"
                         : !lat ? "latent_image input does not lead to an EmptyLatentImage node"
                                : "positive and negative inputs come from the same CLIPTextEncode node");
            continue;
        }
        c->sampler_id = xstrdup(id);
        c->advanced = strcmp(cls, "KSamplerAdvanced") == 0;
        c->pos_id = xstrdup(pos);
        c->neg_id = xstrdup(neg);
        c->latent_id = xstrdup(lat);
        const char *ck = upstream_of_input(c->graph, id, "model", CKPTS);
        c->ckpt_id = ck ? xstrdup(ck) : NULL;
        break;
    }
    free(all);
    if (!c->sampler_id) {
        if (n == 0)
            snprintf(msg, msglen, "has no KSampler or KSamplerAdvanced node");
        return -1;
    }
    size_t nl;
    const char **loras = sorted_ids(c->graph, "LoraLoader", &nl);
    c->lora_ids = json_array();
    for (size_t i = 0; i < nl; i++)
        json_array_append_new(c->lora_ids, json_string(loras[i]));
    free(loras);
    return 0;
}

/* ---- one job into a copy of the graph ---- */

static void set_input(json_t *graph, const char *id, const char *input, json_t *value)
{
    json_object_set_new(json_object_get(json_object_get(graph, id), "inputs"), input, value);
}

static json_t *lora_value(const char *name, const char *path)
{
    return json_string(name ? name : path);
}

/* Writes the LoRAs into g; -1 with err when they cannot be placed. */
static int place_loras(const struct comfy *c, json_t *g, const json_t *loras, char *err,
                       size_t errlen)
{
    size_t n = json_is_array(loras) ? json_array_size(loras) : 0;
    size_t nl = json_array_size(c->lora_ids);
    for (size_t i = 0; i < n; i++) {
        const char *name, *path;
        double w;
        if (be_lora_get(loras, i, &name, &path, &w) < 0) {
            snprintf(err, errlen, "%s: LoRA %zu has neither a name nor a path", c->who, i + 1);
            return -1;
        }
    }
    for (size_t i = 0; i < nl; i++) {
        const char *id = json_string_value(json_array_get(c->lora_ids, i));
        if (i < n) {
            const char *name, *path;
            double w;
            be_lora_get(loras, i, &name, &path, &w);
            set_input(g, id, "lora_name", lora_value(name, path));
            set_input(g, id, "strength_model", json_real(w));
            set_input(g, id, "strength_clip", json_real(w));
        } else {
            set_input(g, id, "strength_model", json_real(0));
            set_input(g, id, "strength_clip", json_real(0));
        }
    }
    if (n <= nl)
        return 0;
    if (!c->ckpt_id) {
        snprintf(err, errlen,
                 "%s: %zu LoRAs but the workflow has %zu LoraLoader nodes and no "
                 "CheckpointLoaderSimple to chain more on",
                 c->who, n, nl);
        return -1;
    }
    /* Every input that reads the checkpoint's MODEL (0) or CLIP (1) output,
     * collected before the new nodes exist (they read it themselves). */
    json_t *users = json_array();
    long max_id = 0;
    const char *key;
    json_t *node;
    json_object_foreach(g, key, node) {
        if (is_uint(key) && atol(key) > max_id)
            max_id = atol(key);
        const char *ik;
        json_t *v;
        json_object_foreach(json_object_get(node, "inputs"), ik, v) {
            const char *t = link_target(v);
            json_int_t out = json_integer_value(json_array_get(v, 1));
            if (t && strcmp(t, c->ckpt_id) == 0 && (out == 0 || out == 1))
                json_array_append(users, v);
        }
    }
    char prev[32];
    snprintf(prev, sizeof prev, "%s", c->ckpt_id);
    char cur[32] = "";
    long next = max_id + 1;
    for (size_t i = nl; i < n; i++) {
        const char *name, *path;
        double w;
        be_lora_get(loras, i, &name, &path, &w);
        do
            snprintf(cur, sizeof cur, "%ld", next++);
        while (json_object_get(g, cur));
        char title[48];
        snprintf(title, sizeof title, "setforge LoRA %zu", i + 1);
        json_object_set_new(
            g, cur,
            json_pack("{s:s, s:{s:o, s:f, s:f, s:[s,i], s:[s,i]}, s:{s:s}}", "class_type",
                      "LoraLoader", "inputs", "lora_name", lora_value(name, path),
                      "strength_model", w, "strength_clip", w, "model", prev, 0, "clip",
                      prev, 1, "_meta", "title", title));
        snprintf(prev, sizeof prev, "%s", cur);
    }
    size_t i;
    json_t *v;
    json_array_foreach(users, i, v) json_array_set_new(v, 0, json_string(cur));
    json_decref(users);
    return 0;
}

static json_t *build_graph(const struct comfy *c, const struct sf_job *job, char *err,
                           size_t errlen)
{
    json_t *g = json_deep_copy(c->graph);
    set_input(g, c->sampler_id, c->advanced ? "noise_seed" : "seed",
              json_integer((json_int_t)job->seed));
    set_input(g, c->sampler_id, "steps", json_integer(job->steps));
    set_input(g, c->sampler_id, "cfg", json_real(job->cfg_scale));
    json_t *pos = json_string(job->prompt ? job->prompt : "");
    json_t *neg = json_string(job->negative_prompt ? job->negative_prompt : "");
    if (!pos || !neg) {
        json_decref(pos);
        json_decref(neg);
        json_decref(g);
        snprintf(err, errlen, "%s: the prompt is not valid UTF-8", c->who);
        return NULL;
    }
    set_input(g, c->pos_id, "text", pos);
    set_input(g, c->neg_id, "text", neg);
    set_input(g, c->latent_id, "width", json_integer(job->width));
    set_input(g, c->latent_id, "height", json_integer(job->height));
    set_input(g, c->latent_id, "batch_size", json_integer(1));
    if (place_loras(c, g, job->loras, err, errlen) < 0) {
        json_decref(g);
        return NULL;
    }
    return g;
}

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
        json_t *q = json_loadb(resp.body, resp.len, 0, NULL);
        size_t i;
        json_t *entry;
        json_array_foreach(json_object_get(q, "queue_running"), i, entry) {
            const char *id = json_string_value(json_array_get(entry, 1));
            if (id && strcmp(id, prompt_id) == 0)
                running = 1;
        }
        json_decref(q);
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

/* "Prompt outputs failed validation: CheckpointLoaderSimple (node 4): Value
 * not in list: ckpt_name: 'x' not in [...]" from a 400 of /prompt. */
static void describe_rejection(const char *body, size_t len, char *dst, size_t dstlen)
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
        const char **ids = sorted_ids(ne, NULL, &n);
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
    snprintf(dst, dstlen, "%s", sb.data);
    sb_free(&sb);
    json_decref(j);
}

/* The verdict of a finished history entry. */
static enum backend_result judge_failure(const struct comfy *c, const json_t *status,
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
            const char *nt = json_string_value(json_object_get(d, "node_type"));
            const char *nid = json_string_value(json_object_get(d, "node_id"));
            char exl[600];
            http_error_text(ex ? ex : "", ex ? strlen(ex) : 0, exl, sizeof exl);
            snprintf(err, errlen, "%s: execution error in %s (node %s): %s%s%s", c->who,
                     nt ? nt : "a node", nid ? nid : "?", typ ? typ : "", typ ? ": " : "",
                     ex ? exl : "no message");
            /* Running out of VRAM depends on what else ran; another try (or
             * another GPU) can work. Anything else will fail again. */
            if ((typ && strstr(typ, "OutOfMemory")) || (ex && strstr(ex, "out of memory")))
                return BACKEND_TRANSIENT;
            return BACKEND_PERMANENT;
        }
        if (strcmp(kind, "execution_interrupted") == 0) {
            if (cancel && atomic_load(cancel)) {
                snprintf(err, errlen, "%s: canceled", c->who);
                return BACKEND_CANCELED;
            }
            snprintf(err, errlen, "%s: the prompt was interrupted on the server", c->who);
            return BACKEND_TRANSIENT;
        }
    }
    snprintf(err, errlen, "%s: the prompt failed without an error message", c->who);
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

/* Downloads the first output image of a finished entry into out. */
static enum backend_result fetch_image(const struct comfy *c, const json_t *entry,
                                       long long deadline, const struct sf_job *job,
                                       struct sf_image *out, char *err, size_t errlen)
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
    if (!pick) {
        snprintf(err, errlen, "%s: the workflow produced no image (no SaveImage node?)", c->who);
        return BACKEND_PERMANENT;
    }
    const char *fn = json_string_value(json_object_get(pick, "filename"));
    const char *sub = json_string_value(json_object_get(pick, "subfolder"));
    const char *typ = json_string_value(json_object_get(pick, "type"));
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
        snprintf(err, errlen, "%s: fetching %s: HTTP %ld: %s", c->who, fn, resp.status, text);
        http_response_free(&resp);
        return BACKEND_TRANSIENT;
    }
    char perr[256];
    int w, hgt;
    if (png_check((unsigned char *)resp.body, resp.len, &w, &hgt, perr, sizeof perr) < 0) {
        snprintf(err, errlen, "%s: output image %s: %s", c->who, fn, perr);
        http_response_free(&resp);
        return BACKEND_TRANSIENT;
    }
    out->png = (unsigned char *)resp.body;
    out->png_len = resp.len;
    out->width = w;
    out->height = hgt;
    out->seed = job->seed;
    return BACKEND_OK;
}

/* Polls /history/<id> until the prompt is done, failed, or time is up. */
static enum backend_result wait_for(struct comfy *c, const char *prompt_id, long long deadline,
                                    const struct sf_job *job, struct sf_image *out, char *err,
                                    size_t errlen)
{
    long long delay = 50;
    char path[128];
    snprintf(path, sizeof path, "/history/%s", prompt_id);
    for (;;) {
        if (job->cancel && atomic_load(job->cancel)) {
            snprintf(err, errlen, "%s: canceled", c->who);
            return BACKEND_CANCELED;
        }
        long long left = deadline - mono_ms();
        if (left <= 0) {
            snprintf(err, errlen, "%s: timed out after %d s waiting for prompt %s", c->who,
                     c->timeout_s, prompt_id);
            return BACKEND_TRANSIENT;
        }
        struct http_response resp;
        enum backend_result r = call(c, "GET", path, NULL, left < 30000 ? (long)left : 30000,
                                     job->cancel, &resp, err, errlen);
        if (r != BACKEND_OK) {
            if (r == BACKEND_TRANSIENT && mono_ms() >= deadline)
                snprintf(err, errlen, "%s: timed out after %d s waiting for prompt %s",
                         c->who, c->timeout_s, prompt_id);
            return r;
        }
        if (resp.status != 200) {
            char text[300];
            http_error_text(resp.body, resp.len, text, sizeof text);
            snprintf(err, errlen, "%s: polling history: HTTP %ld: %s", c->who, resp.status,
                     text);
            http_response_free(&resp);
            return BACKEND_TRANSIENT;
        }
        json_t *h = json_loadb(resp.body, resp.len, 0, NULL);
        http_response_free(&resp);
        if (!json_is_object(h)) {
            json_decref(h);
            snprintf(err, errlen, "%s: history answer is not a JSON object", c->who);
            return BACKEND_TRANSIENT;
        }
        const json_t *entry = json_object_get(h, prompt_id);
        const json_t *status = json_object_get(entry, "status");
        const char *sstr = json_string_value(json_object_get(status, "status_str"));
        if (sstr && strcmp(sstr, "error") == 0) {
            r = judge_failure(c, status, job->cancel, err, errlen);
            json_decref(h);
            return r;
        }
        /* Builds before status existed only wrote the entry once done. */
        if (entry && (json_is_true(json_object_get(status, "completed")) ||
                      (!status && json_object_size(json_object_get(entry, "outputs"))))) {
            r = fetch_image(c, entry, deadline, job, out, err, errlen);
            json_decref(h);
            return r;
        }
        json_decref(h);
        long long wait = delay < deadline - mono_ms() ? delay : deadline - mono_ms();
        if (nap(wait, job->cancel))
            continue; /* reported at the top */
        delay = delay * 2 > 1000 ? 1000 : delay * 2;
    }
}

static enum backend_result comfy_generate(struct sf_backend *b, const struct sf_job *job,
                                          struct sf_image *out, char *err, size_t errlen)
{
    struct comfy *c = b->state;
    memset(out, 0, sizeof *out);
    long long deadline = mono_ms() + (long long)c->timeout_s * 1000;
    json_t *g = build_graph(c, job, err, errlen);
    if (!g)
        return BACKEND_PERMANENT;
    /* Random (version 4), as ComfyUI's own front end makes them. */
    uuid_t uuid;
    char client_id[37];
    uuid_generate_random(uuid);
    uuid_unparse_lower(uuid, client_id);
    json_t *rq = json_pack("{s:o, s:s}", "prompt", g, "client_id", client_id);
    char *body = json_dumps(rq, JSON_COMPACT);
    json_decref(rq);
    struct http_response resp;
    enum backend_result r = call(c, "POST", "/prompt", body, (long)c->timeout_s * 1000,
                                 job->cancel, &resp, err, errlen);
    free(body);
    if (r != BACKEND_OK)
        return r;
    if (resp.status != 200) {
        char text[700];
        if (resp.status == 400)
            describe_rejection(resp.body, resp.len, text, sizeof text);
        else
            http_error_text(resp.body, resp.len, text, sizeof text);
        snprintf(err, errlen, "%s: HTTP %ld: %s", c->who, resp.status, text);
        r = resp.status >= 400 && resp.status < 500 && resp.status != 408 &&
                    resp.status != 429
                ? BACKEND_PERMANENT
                : BACKEND_TRANSIENT;
        http_response_free(&resp);
        return r;
    }
    json_t *pr = json_loadb(resp.body, resp.len, 0, NULL);
    http_response_free(&resp);
    const char *pid = json_string_value(json_object_get(pr, "prompt_id"));
    if (!pid || !*pid || strlen(pid) > 64 || strpbrk(pid, "/?#% ")) {
        snprintf(err, errlen, "%s: /prompt answered without a usable prompt_id", c->who);
        json_decref(pr);
        return BACKEND_TRANSIENT;
    }
    char prompt_id[72];
    snprintf(prompt_id, sizeof prompt_id, "%s", pid);
    json_decref(pr);

    inflight_add(c, prompt_id);
    r = wait_for(c, prompt_id, deadline, job, out, err, errlen);
    inflight_remove(c, prompt_id);
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
    json_decref(c->graph);
    free(c->sampler_id);
    free(c->pos_id);
    free(c->neg_id);
    free(c->latent_id);
    free(c->ckpt_id);
    json_decref(c->lora_ids);
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

struct sf_backend *comfyui_backend_new(const json_t *ep, int index, char *err, size_t errlen)
{
    struct be_common cm;
    if (be_parse_common(ep, index, 600, &cm, err, errlen) < 0)
        return NULL;
    http_client_global_init();
    struct comfy *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->inflight = json_array();
    c->timeout_s = cm.timeout_s;
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
    c->graph = json_load_file(wf, 0, &jerr);
    if (!c->graph) {
        if (jerr.line <= 0)
            be_errf(err, errlen, index, cm.name, "workflow %s: %s", wf, jerr.text);
        else
            be_errf(err, errlen, index, cm.name, "workflow %s: invalid JSON at line %d: %s",
                    wf, jerr.line, jerr.text);
        goto fail;
    }
    char msg[300];
    if (check_graph(c->graph, msg, sizeof msg) < 0 || analyse(c, msg, sizeof msg) < 0) {
        be_errf(err, errlen, index, cm.name, "workflow %s %s", wf, msg);
        goto fail;
    }

    struct sf_backend *b = xcalloc(1, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", cm.name);
    snprintf(b->type, sizeof b->type, "comfyui");
    b->concurrency = cm.concurrency;
    b->generate = comfy_generate;
    b->cancel = comfy_cancel;
    b->health = comfy_health;
    b->destroy = comfy_destroy;
    b->state = c;
    return b;
fail:
    comfy_free(c);
    return NULL;
}
