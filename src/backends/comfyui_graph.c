/*
 * comfyui_graph.c: reading a ComfyUI workflow and writing jobs into it (the
 * contract is in comfyui_graph.h).
 *
 * Analysis happens once, when the endpoint is built, so a workflow we cannot
 * use is refused at start with the config entry named rather than failing
 * every item of every run later. It starts from each sampler (KSampler or
 * KSamplerAdvanced, in id order) and follows links upstream, depth first and
 * inputs in file order, to the first node of the class it wants: so nodes in
 * between (a LatentUpscale, a LoraLoader, a conditioning combiner) are
 * walked through, and a hand-edited file with a cycle ends the walk instead
 * of recursing forever.
 *
 * Filling happens per item on a deep copy, so the analysed graph is shared
 * read-only by every worker of the endpoint. LoRAs are the one structural
 * change: the CSV item, not the workflow, says which LoRAs a picture has, so
 * the workflow's LoraLoader nodes are filled in id order and the rest
 * switched off (strength 0), and when there are more LoRAs than loaders new
 * ones are chained right after the checkpoint loader, with everything that
 * read the checkpoint's MODEL (output 0) or CLIP (output 1) rewired to the
 * end of the chain. The VAE (output 2) is left alone.
 */
#include "backends/comfyui_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/lora.h"
#include "util/xalloc.h"

/* Links further than this from the sampler are not followed: real workflows
 * are a few nodes deep, and it bounds the recursion. */
#define MAX_DEPTH 64

static const char *const SAMPLERS[] = {"KSampler", "KSamplerAdvanced", NULL};
static const char *const TEXT_ENC[] = {"CLIPTextEncode", NULL};
static const char *const LATENTS[] = {"EmptyLatentImage", "EmptySD3LatentImage", NULL};
static const char *const CKPTS[] = {"CheckpointLoaderSimple", NULL};

/* The node id a link ["<node id>", <output index>] points at; NULL when v
 * is not a link (a literal input). */
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

static int class_in(const char *cls, const char *const *classes)
{
    for (; cls && *classes; classes++)
        if (strcmp(cls, *classes) == 0)
            return 1;
    return 0;
}

/* Ids ComfyUI writes are small decimal numbers; 9 digits keep atol exact. */
static int is_uint(const char *s)
{
    if (!*s || strlen(s) > 9)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int id_cmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    int na = is_uint(a), nb = is_uint(b);
    if (na && nb && atol(a) != atol(b))
        return atol(a) < atol(b) ? -1 : 1;
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(a, b); /* "7" and "07" too: qsort is not stable */
}

const char **comfy_graph_sorted_ids(const json_t *obj, const char *cls, size_t *n_out)
{
    size_t n = 0;
    const char **ids = xcalloc(json_object_size(obj) + 1, sizeof *ids);
    const char *key;
    json_t *node;
    json_object_foreach((json_t *)obj, key, node) {
        const char *c = json_string_value(json_object_get(node, "class_type"));
        if (!cls || (c && strcmp(c, cls) == 0))
            ids[n++] = key;
    }
    qsort(ids, n, sizeof *ids, id_cmp);
    *n_out = n;
    return ids;
}

/* ---- analysis ---- */

/* The first node of one of the classes upstream of node id, or NULL.
 * visited holds the ids already walked (cycles, and diamonds walked once).
 * The id returned is the graph's own key, valid while the graph lives. */
static const char *find_upstream(const json_t *graph, const char *id,
                                 const char *const *classes, json_t *visited, int depth)
{
    if (!id || depth > MAX_DEPTH || json_object_get(visited, id))
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

/* The shape of an API-format graph; a sentence in msg when wrong. */
static int check_shape(const json_t *g, char *msg, size_t msglen)
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

/* Finds the nodes in out->graph. The first sampler (in id order) that leads
 * to everything wins; when none does, msg tells about the first one. */
static int find_nodes(struct comfy_graph *out, char *msg, size_t msglen)
{
    const json_t *g = out->graph;
    size_t samplers = 0, total = 0;
    const char **all = comfy_graph_sorted_ids(g, NULL, &total);
    msg[0] = '\0';
    for (size_t i = 0; i < total; i++) {
        const char *id = all[i];
        const char *cls = class_of(g, id);
        if (!class_in(cls, SAMPLERS))
            continue;
        samplers++;
        const char *pos = upstream_of_input(g, id, "positive", TEXT_ENC);
        const char *neg = upstream_of_input(g, id, "negative", TEXT_ENC);
        const char *lat = upstream_of_input(g, id, "latent_image", LATENTS);
        if (!pos || !neg || !lat || strcmp(pos, neg) == 0) {
            if (!msg[0])
                snprintf(msg, msglen, "has %s node %s whose %s", cls, id,
                         !pos   ? "positive input does not lead to a CLIPTextEncode node"
                         : !neg ? "negative input does not lead to a CLIPTextEncode node"
                         : !lat ? "latent_image input does not lead to an EmptyLatentImage node"
                                : "positive and negative inputs come from the same CLIPTextEncode node");
            continue;
        }
        out->sampler_id = xstrdup(id);
        out->advanced = strcmp(cls, "KSamplerAdvanced") == 0;
        out->pos_id = xstrdup(pos);
        out->neg_id = xstrdup(neg);
        out->latent_id = xstrdup(lat);
        const char *ck = upstream_of_input(g, id, "model", CKPTS);
        out->ckpt_id = ck ? xstrdup(ck) : NULL;
        break;
    }
    free(all);
    if (!out->sampler_id) {
        if (samplers == 0)
            snprintf(msg, msglen, "has no KSampler or KSamplerAdvanced node");
        return -1;
    }
    size_t nl;
    const char **loras = comfy_graph_sorted_ids(g, "LoraLoader", &nl);
    out->lora_ids = json_array();
    for (size_t i = 0; i < nl; i++)
        json_array_append_new(out->lora_ids, json_string(loras[i]));
    free(loras);
    return 0;
}

int comfy_graph_analyse(const json_t *graph, struct comfy_graph *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    if (check_shape(graph, msg, msglen) < 0)
        return -1;
    out->graph = json_deep_copy(graph);
    if (find_nodes(out, msg, msglen) < 0) {
        comfy_graph_free(out);
        return -1;
    }
    return 0;
}

void comfy_graph_free(struct comfy_graph *g)
{
    json_decref(g->graph);
    free(g->sampler_id);
    free(g->pos_id);
    free(g->neg_id);
    free(g->latent_id);
    free(g->ckpt_id);
    json_decref(g->lora_ids);
    memset(g, 0, sizeof *g);
}

/* ---- one job into a copy ---- */

static void set_input(json_t *graph, const char *id, const char *input, json_t *value)
{
    json_object_set_new(json_object_get(json_object_get(graph, id), "inputs"), input, value);
}

static json_t *lora_value(const char *name, const char *path)
{
    return json_string(name ? name : path);
}

/* New LoraLoader nodes for LoRAs [from, n), chained after the checkpoint
 * loader; the inputs that read its MODEL or CLIP then read the chain's end. */
static void chain_loras(const struct comfy_graph *wf, json_t *g, const json_t *loras,
                        size_t from, size_t n)
{
    /* Collected before the new nodes exist, as they read it themselves. */
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
            json_int_t output = json_integer_value(json_array_get(v, 1));
            if (t && strcmp(t, wf->ckpt_id) == 0 && (output == 0 || output == 1))
                json_array_append(users, v);
        }
    }
    char *prev = xstrdup(wf->ckpt_id);
    long next = max_id + 1;
    for (size_t i = from; i < n; i++) {
        const char *name, *path;
        double w;
        be_lora_get(loras, i, &name, &path, &w);
        char cur[32];
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
        free(prev);
        prev = xstrdup(cur);
    }
    size_t i;
    json_t *v;
    json_array_foreach(users, i, v) json_array_set_new(v, 0, json_string(prev));
    json_decref(users);
    free(prev);
}

/* Writes the LoRAs into g; -1 with err when they cannot be placed. */
static int place_loras(const struct comfy_graph *wf, json_t *g, const json_t *loras, char *err,
                       size_t errlen)
{
    size_t n = json_is_array(loras) ? json_array_size(loras) : 0;
    size_t nl = json_array_size(wf->lora_ids);
    const char *name, *path;
    double w;
    for (size_t i = 0; i < n; i++)
        if (be_lora_get(loras, i, &name, &path, &w) < 0) {
            snprintf(err, errlen, "LoRA %zu has neither a name nor a path", i + 1);
            return -1;
        }
    if (n > nl && !wf->ckpt_id) {
        snprintf(err, errlen,
                 "%zu LoRAs but the workflow has %zu LoraLoader nodes and no "
                 "CheckpointLoaderSimple to chain more on",
                 n, nl);
        return -1;
    }
    for (size_t i = 0; i < nl; i++) {
        const char *id = json_string_value(json_array_get(wf->lora_ids, i));
        if (i < n) {
            be_lora_get(loras, i, &name, &path, &w);
            set_input(g, id, "lora_name", lora_value(name, path));
            set_input(g, id, "strength_model", json_real(w));
            set_input(g, id, "strength_clip", json_real(w));
        } else {
            set_input(g, id, "strength_model", json_real(0));
            set_input(g, id, "strength_clip", json_real(0));
        }
    }
    if (n > nl)
        chain_loras(wf, g, loras, nl, n);
    return 0;
}

json_t *comfy_graph_fill(const struct comfy_graph *wf, const struct sf_job *job, char *err,
                         size_t errlen)
{
    json_t *pos = json_string(job->prompt ? job->prompt : "");
    json_t *neg = json_string(job->negative_prompt ? job->negative_prompt : "");
    if (!pos || !neg) {
        json_decref(pos);
        json_decref(neg);
        snprintf(err, errlen, "the prompt is not valid UTF-8");
        return NULL;
    }
    json_t *g = json_deep_copy(wf->graph);
    set_input(g, wf->sampler_id, wf->advanced ? "noise_seed" : "seed",
              json_integer((json_int_t)job->seed));
    set_input(g, wf->sampler_id, "steps", json_integer(job->steps));
    set_input(g, wf->sampler_id, "cfg", json_real(job->cfg_scale));
    set_input(g, wf->pos_id, "text", pos);
    set_input(g, wf->neg_id, "text", neg);
    set_input(g, wf->latent_id, "width", json_integer(job->width));
    set_input(g, wf->latent_id, "height", json_integer(job->height));
    set_input(g, wf->latent_id, "batch_size", json_integer(1));
    if (place_loras(wf, g, job->loras, err, errlen) < 0) {
        json_decref(g);
        return NULL;
    }
    return g;
}
