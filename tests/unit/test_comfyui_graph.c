/*
 * test_comfyui_graph.c: reading ComfyUI workflows and writing jobs into them
 * (backends/comfyui_graph.c), without a server.
 *
 * The workflows in tests/fakes/workflows/ are real exports (API format);
 * the rest are small hand-made graphs for what users' files can hold: cycles,
 * long chains, links that are not links, several samplers, odd node ids.
 * Refusals are checked word for word, because they reach the user as the
 * start-up error of their config; fills are checked link by link, because
 * ComfyUI refuses a graph with one dangling link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/comfyui_graph.h"
#include "unit.h"
#include "util/xalloc.h"

#define WORKFLOWS "tests/fakes/workflows/"

static char msg[512];

static json_t *from_text(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fprintf(stderr, "bad test JSON: %s: %s\n", text, e.text);
    return j;
}

static json_t *from_file(const char *name)
{
    json_error_t e;
    json_t *j = json_load_file(name, 0, &e);
    if (!j)
        fprintf(stderr, "%s: %s\n", name, e.text);
    return j;
}

/* Analyses graph (which the call consumes); msg holds the refusal. */
static int analyse(json_t *graph, struct comfy_graph *wf)
{
    msg[0] = '\0';
    int rc = comfy_graph_analyse(graph, wf, msg, sizeof msg);
    json_decref(graph);
    return rc;
}

/* The refusal for a graph given as text, or "(accepted)". */
static const char *refusal(const char *text)
{
    struct comfy_graph wf;
    if (analyse(from_text(text), &wf) == 0) {
        comfy_graph_free(&wf);
        return "(accepted)";
    }
    /* A refused graph leaves nothing behind. */
    if (wf.graph || wf.sampler_id || wf.pos_id || wf.lora_ids)
        return "(refused, but out is not empty)";
    return msg;
}

static struct sf_job job_of(const json_t *loras)
{
    struct sf_job j = {
        .prompt = "a red fox",
        .negative_prompt = "blurry",
        .seed = 1234,
        .steps = 20,
        .cfg_scale = 7.5,
        .width = 64,
        .height = 48,
        .loras = loras,
    };
    return j;
}

static const json_t *input(const json_t *g, const char *id, const char *name)
{
    return json_object_get(json_object_get(json_object_get(g, id), "inputs"), name);
}

/* "4:1" for the link ["4", 1]; "-" when the input is not a link. */
static const char *wire(const json_t *g, const char *id, const char *name)
{
    static char buf[128];
    const json_t *v = input(g, id, name);
    if (!json_is_array(v) || !json_is_string(json_array_get(v, 0)))
        return "-";
    snprintf(buf, sizeof buf, "%s:%lld", json_string_value(json_array_get(v, 0)),
             (long long)json_integer_value(json_array_get(v, 1)));
    return buf;
}

static const char *class_of(const json_t *g, const char *id)
{
    return json_string_value(json_object_get(json_object_get(g, id), "class_type"));
}

/* A minimal text-to-image graph; SAMPLER_INPUTS replaces the sampler's inputs. */
#define NODES_AROUND(sampler_inputs)                                                         \
    "{\"3\": {\"class_type\": \"KSampler\", \"inputs\": " sampler_inputs "},"               \
    " \"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {\"ckpt_name\": \"m\"}}," \
    " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {\"width\": 512}},"          \
    " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"\", \"clip\": [\"4\", 1]}}," \
    " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"text\": \"\", \"clip\": [\"4\", 1]}}}"
#define GOOD_INPUTS                                                                          \
    "{\"model\": [\"4\", 0], \"positive\": [\"6\", 0], \"negative\": [\"7\", 0],"            \
    " \"latent_image\": [\"5\", 0]}"

/* ---- the real exports ---- */

static void test_default_workflow(void)
{
    json_t *file = from_file(WORKFLOWS "sd15_default.json");
    struct comfy_graph wf;
    CHECK(analyse(json_incref(file), &wf) == 0);
    CHECK_STR(wf.sampler_id, "3");
    CHECK(wf.advanced == 0);
    CHECK_STR(wf.pos_id, "6");
    CHECK_STR(wf.neg_id, "7");
    CHECK_STR(wf.latent_id, "5");
    CHECK_STR(wf.ckpt_id, "4");
    CHECK(json_array_size(wf.lora_ids) == 0);

    struct sf_job job = job_of(NULL);
    char err[256] = "";
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(g != NULL);
    CHECK(json_integer_value(input(g, "3", "seed")) == 1234);
    CHECK(json_integer_value(input(g, "3", "steps")) == 20);
    CHECK(json_real_value(input(g, "3", "cfg")) == 7.5);
    CHECK_STR(json_string_value(input(g, "6", "text")), "a red fox");
    CHECK_STR(json_string_value(input(g, "7", "text")), "blurry");
    CHECK(json_integer_value(input(g, "5", "width")) == 64);
    CHECK(json_integer_value(input(g, "5", "height")) == 48);
    CHECK(json_integer_value(input(g, "5", "batch_size")) == 1);
    CHECK(json_object_size(g) == 7);
    /* Only those inputs change. */
    CHECK(json_equal(input(g, "3", "sampler_name"), input(file, "3", "sampler_name")));
    CHECK(json_equal(json_object_get(g, "8"), json_object_get(file, "8")));
    json_decref(g);
    /* The analysed graph is a private copy, untouched by fills. */
    CHECK(json_equal(wf.graph, file));
    json_object_clear(file);
    CHECK(json_object_size(wf.graph) == 7);
    json_decref(file);

    /* Without prompts: empty texts, not nulls. */
    job.prompt = NULL;
    job.negative_prompt = NULL;
    g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK_STR(json_string_value(input(g, "6", "text")), "");
    CHECK_STR(json_string_value(input(g, "7", "text")), "");
    json_decref(g);
    comfy_graph_free(&wf);
    comfy_graph_free(&wf); /* emptied: a second free is harmless */
}

static void test_advanced_workflow(void)
{
    struct comfy_graph wf;
    CHECK(analyse(from_file(WORKFLOWS "sd15_advanced.json"), &wf) == 0);
    CHECK_STR(wf.sampler_id, "3");
    CHECK(wf.advanced == 1);
    CHECK_STR(wf.latent_id, "5"); /* through the LatentUpscale "11" */
    struct sf_job job = job_of(NULL);
    char err[256];
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(json_integer_value(input(g, "3", "noise_seed")) == 1234);
    CHECK(input(g, "3", "seed") == NULL);
    CHECK(json_integer_value(input(g, "5", "width")) == 64);
    CHECK(json_equal(input(g, "11", "width"), input(wf.graph, "11", "width")));
    json_decref(g);
    comfy_graph_free(&wf);
}

static void test_lora_workflow(void)
{
    struct comfy_graph wf;
    CHECK(analyse(from_file(WORKFLOWS "sd15_lora.json"), &wf) == 0);
    CHECK_STR(wf.ckpt_id, "4"); /* through the LoraLoader "10" */
    CHECK(json_array_size(wf.lora_ids) == 1);
    CHECK_STR(json_string_value(json_array_get(wf.lora_ids, 0)), "10");
    char err[256];

    /* No LoRAs: the loader is switched off, its wiring kept. */
    struct sf_job job = job_of(NULL);
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(json_object_size(g) == 8);
    CHECK(json_real_value(input(g, "10", "strength_model")) == 0);
    CHECK(json_real_value(input(g, "10", "strength_clip")) == 0);
    CHECK(json_equal(input(g, "10", "lora_name"), input(wf.graph, "10", "lora_name")));
    CHECK_STR(wire(g, "10", "model"), "4:0");
    json_decref(g);

    /* One, by path, without a weight: weight 1. */
    json_t *loras = from_text("[{\"path\": \"film_grain.safetensors\"}]");
    job = job_of(loras);
    g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(json_object_size(g) == 8);
    CHECK_STR(json_string_value(input(g, "10", "lora_name")), "film_grain.safetensors");
    CHECK(json_real_value(input(g, "10", "strength_model")) == 1);
    json_decref(g);
    json_decref(loras);

    /* Two: the loader takes the first, a new one chained before it the
     * second; the old loader now reads the new one. */
    loras = from_text("[{\"name\": \"detail.safetensors\", \"weight\": 0.8},"
                      " {\"name\": \"grain.safetensors\", \"path\": \"/x/y\", \"weight\": -0.5}]");
    job = job_of(loras);
    g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(json_object_size(g) == 9);
    CHECK_STR(json_string_value(input(g, "10", "lora_name")), "detail.safetensors");
    CHECK(json_real_value(input(g, "10", "strength_clip")) == 0.8);
    CHECK_STR(class_of(g, "11"), "LoraLoader");
    CHECK_STR(json_string_value(input(g, "11", "lora_name")), "grain.safetensors"); /* name wins */
    CHECK(json_real_value(input(g, "11", "strength_model")) == -0.5);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(g, "11"), "_meta"),
                                                "title")),
              "setforge LoRA 2");
    CHECK_STR(wire(g, "11", "model"), "4:0");
    CHECK_STR(wire(g, "11", "clip"), "4:1");
    CHECK_STR(wire(g, "10", "model"), "11:0");
    CHECK_STR(wire(g, "10", "clip"), "11:1");
    CHECK_STR(wire(g, "3", "model"), "10:0");
    CHECK_STR(wire(g, "6", "clip"), "10:1");
    CHECK_STR(wire(g, "8", "vae"), "4:2"); /* the VAE is not a LoRA's business */
    json_decref(g);
    json_decref(loras);
    comfy_graph_free(&wf);
}

static void test_chain_on_default(void)
{
    struct comfy_graph wf;
    CHECK(analyse(from_file(WORKFLOWS "sd15_default.json"), &wf) == 0);
    json_t *loras = from_text("[{\"name\": \"a\", \"weight\": 0.25}, {\"name\": \"b\"},"
                              " {\"path\": \"/l/c.safetensors\", \"weight\": 2}]");
    struct sf_job job = job_of(loras);
    char err[256];
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(json_object_size(g) == 10);
    CHECK_STR(wire(g, "10", "model"), "4:0");
    CHECK_STR(wire(g, "11", "model"), "10:0");
    CHECK_STR(wire(g, "11", "clip"), "10:1");
    CHECK_STR(wire(g, "12", "model"), "11:0");
    CHECK_STR(wire(g, "3", "model"), "12:0");
    CHECK_STR(wire(g, "6", "clip"), "12:1");
    CHECK_STR(wire(g, "7", "clip"), "12:1");
    CHECK_STR(wire(g, "8", "vae"), "4:2");
    CHECK(json_real_value(input(g, "10", "strength_model")) == 0.25);
    CHECK(json_real_value(input(g, "11", "strength_model")) == 1);
    CHECK_STR(json_string_value(input(g, "12", "lora_name")), "/l/c.safetensors");
    json_decref(g);
    json_decref(loras);
    comfy_graph_free(&wf);
}

static void test_no_sampler_workflow(void)
{
    struct comfy_graph wf;
    CHECK(analyse(from_file(WORKFLOWS "no_sampler.json"), &wf) == -1);
    CHECK_STR(msg, "has no KSampler or KSamplerAdvanced node");
    CHECK(wf.graph == NULL && wf.sampler_id == NULL && wf.lora_ids == NULL);
}

/* ---- refusals ---- */

static void test_shape_refusals(void)
{
    CHECK_STR(refusal("[]"), "is not a JSON object of nodes");
    CHECK_STR(refusal("\"3\""), "is not a JSON object of nodes");
    CHECK_STR(refusal("{\"last_node_id\": 9, \"nodes\": [], \"links\": []}"),
              "is in ComfyUI's UI format, not API format; export it with \"Save (API Format)\"");
    CHECK_STR(refusal("{\"3\": {\"inputs\": {}}}"),
              "has a node \"3\" without class_type or inputs (not API format?)");
    CHECK_STR(refusal("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": []}}"),
              "has a node \"3\" without class_type or inputs (not API format?)");
    CHECK_STR(refusal("{\"3\": {\"class_type\": 7, \"inputs\": {}}}"),
              "has a node \"3\" without class_type or inputs (not API format?)");
    CHECK_STR(refusal("{\"3\": 1}"), "has a node \"3\" without class_type or inputs (not API format?)");
    CHECK_STR(refusal("{}"), "has no KSampler or KSamplerAdvanced node");
    CHECK(comfy_graph_analyse(NULL, &(struct comfy_graph){0}, msg, sizeof msg) == -1);
    CHECK_STR(msg, "is not a JSON object of nodes");
}

static void test_sampler_refusals(void)
{
    CHECK_STR(refusal(NODES_AROUND(GOOD_INPUTS)), "(accepted)");
    CHECK_STR(refusal(NODES_AROUND("{\"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}")),
              "has KSampler node 3 whose positive input does not lead to a CLIPTextEncode node");
    CHECK_STR(refusal(NODES_AROUND("{\"positive\": [\"6\", 0], \"latent_image\": [\"5\", 0]}")),
              "has KSampler node 3 whose negative input does not lead to a CLIPTextEncode node");
    CHECK_STR(refusal(NODES_AROUND("{\"positive\": [\"6\", 0], \"negative\": [\"7\", 0]}")),
              "has KSampler node 3 whose latent_image input does not lead to an EmptyLatentImage "
              "node");
    CHECK_STR(refusal(NODES_AROUND("{\"positive\": [\"6\", 0], \"negative\": [\"6\", 0],"
                                   " \"latent_image\": [\"5\", 0]}")),
              "has KSampler node 3 whose positive and negative inputs come from the same "
              "CLIPTextEncode node");
    /* Things that look like links and are not, or lead nowhere. */
    const char *const not_links[] = {
        "\"6\"", "[\"6\"]", "[\"6\", \"0\"]", "[6, 0]", "[\"6\", 0, 1]", "[\"99\", 0]", "null",
    };
    for (size_t i = 0; i < sizeof not_links / sizeof not_links[0]; i++) {
        char inputs[256];
        snprintf(inputs, sizeof inputs,
                 "{\"positive\": %s, \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}",
                 not_links[i]);
        char *text = xasprintf("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": %s},"
                               " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
                               " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                               " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}",
                               inputs);
        const char *got = refusal(text);
        if (strcmp(got, "has KSampler node 3 whose positive input does not lead to a "
                        "CLIPTextEncode node") != 0) {
            unit_failed++;
            fprintf(stderr, "FAIL positive = %s: %s\n", not_links[i], got);
        } else {
            unit_passed++;
        }
        free(text);
    }
    /* A model that is not from a checkpoint loader: accepted, no ckpt_id. */
    struct comfy_graph wf;
    CHECK(analyse(from_text("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {"
                            "\"model\": [\"1\", 0], \"positive\": [\"6\", 0],"
                            " \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},"
                            " \"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {}},"
                            " \"5\": {\"class_type\": \"EmptySD3LatentImage\", \"inputs\": {}},"
                            " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                            " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}"),
                  &wf) == 0);
    CHECK(wf.ckpt_id == NULL);
    CHECK_STR(wf.latent_id, "5");
    comfy_graph_free(&wf);
}

/* ---- walking the graph ---- */

/* A graph whose sampler's positive input goes through n pass-through nodes
 * ("100", "101", ...) before its CLIPTextEncode; returned as text. */
static char *long_chain(int n)
{
    json_t *g = from_text(NODES_AROUND("{\"positive\": [\"100\", 0], \"negative\": [\"7\", 0],"
                                       " \"latent_image\": [\"5\", 0]}"));
    for (int i = 0; i < n; i++) {
        char id[16], next[16];
        snprintf(id, sizeof id, "%d", 100 + i);
        snprintf(next, sizeof next, "%d", 101 + i);
        json_object_set_new(g, id,
                            json_pack("{s:s, s:{s:[s,i]}}", "class_type", "ConditioningZeroOut",
                                      "inputs", "conditioning", i + 1 < n ? next : "6", 0));
    }
    char *text = json_dumps(g, JSON_COMPACT);
    json_decref(g);
    return text;
}

static void test_walks(void)
{
    /* Cycles end the walk: the encoder behind the cycle is still found, a
     * cycle with none is refused, nothing recurses forever. */
    CHECK_STR(refusal("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"positive\": [\"20\", 0],"
                      " \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},"
                      " \"20\": {\"class_type\": \"ConditioningCombine\", \"inputs\":"
                      " {\"a\": [\"21\", 0], \"b\": [\"6\", 0]}},"
                      " \"21\": {\"class_type\": \"ConditioningCombine\", \"inputs\":"
                      " {\"a\": [\"20\", 0], \"b\": [\"21\", 0]}},"
                      " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
                      " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                      " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}"),
              "(accepted)");
    CHECK_STR(refusal("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"positive\": [\"20\", 0],"
                      " \"negative\": [\"7\", 0], \"latent_image\": [\"3\", 0]}},"
                      " \"20\": {\"class_type\": \"X\", \"inputs\": {\"a\": [\"20\", 0]}},"
                      " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}"),
              "has KSampler node 3 whose positive input does not lead to a CLIPTextEncode node");
    /* Depth: 60 nodes between is followed, 70 is too far. */
    char *text = long_chain(60);
    CHECK_STR(refusal(text), "(accepted)");
    free(text);
    text = long_chain(70);
    CHECK_STR(refusal(text),
              "has KSampler node 3 whose positive input does not lead to a CLIPTextEncode node");
    free(text);
}

static void test_sampler_choice(void)
{
    struct comfy_graph wf;
    /* The first sampler is broken, the second works: the second is used. */
    CHECK(analyse(from_text("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {}},"
                            " \"12\": {\"class_type\": \"KSamplerAdvanced\", \"inputs\": {"
                            "\"positive\": [\"6\", 0], \"negative\": [\"7\", 0],"
                            " \"latent_image\": [\"5\", 0]}},"
                            " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
                            " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                            " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}"),
                  &wf) == 0);
    CHECK_STR(wf.sampler_id, "12");
    CHECK(wf.advanced == 1);
    comfy_graph_free(&wf);
    /* Two that work: the first in id order, "9" before "10" (a hires
     * workflow's first pass), numbers before names. */
    const char *two = "{\"10\": {\"class_type\": \"KSampler\", \"inputs\": " GOOD_INPUTS "},"
                      " \"%s\": {\"class_type\": \"KSampler\", \"inputs\": " GOOD_INPUTS "},"
                      " \"4\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {}},"
                      " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
                      " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                      " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}";
    char text[1024];
    snprintf(text, sizeof text, two, "9");
    CHECK(analyse(from_text(text), &wf) == 0);
    CHECK_STR(wf.sampler_id, "9");
    comfy_graph_free(&wf);
    snprintf(text, sizeof text, two, "hires");
    CHECK(analyse(from_text(text), &wf) == 0);
    CHECK_STR(wf.sampler_id, "10");
    comfy_graph_free(&wf);
    /* When all are broken, the message is about the first. */
    CHECK_STR(refusal("{\"8\": {\"class_type\": \"KSampler\", \"inputs\": {}},"
                      " \"2\": {\"class_type\": \"KSamplerAdvanced\", \"inputs\": {}}}"),
              "has KSamplerAdvanced node 2 whose positive input does not lead to a CLIPTextEncode "
              "node");
}

static void test_sorted_ids(void)
{
    json_t *obj = from_text("{\"b\": {}, \"10\": {\"class_type\": \"LoraLoader\"}, \"9\": {},"
                            " \"a\": {}, \"7\": {\"class_type\": \"LoraLoader\"}, \"007\": {},"
                            " \"1234567890\": {}}");
    size_t n;
    const char **ids = comfy_graph_sorted_ids(obj, NULL, &n);
    CHECK(n == 7);
    /* A 10-digit id is taken as a name, like any id that is not a small number. */
    const char *want[] = {"007", "7", "9", "10", "1234567890", "a", "b"};
    int same = n == 7;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(ids[i], want[i]) == 0;
    CHECK(same);
    free(ids);
    ids = comfy_graph_sorted_ids(obj, "LoraLoader", &n);
    CHECK(n == 2 && strcmp(ids[0], "7") == 0 && strcmp(ids[1], "10") == 0);
    free(ids);
    ids = comfy_graph_sorted_ids(obj, "KSampler", &n);
    CHECK(n == 0 && ids != NULL);
    free(ids);
    json_decref(obj);
}

/* ---- fills that cannot be done ---- */

static void test_fill_refusals(void)
{
    struct comfy_graph wf;
    CHECK(analyse(from_file(WORKFLOWS "sd15_lora.json"), &wf) == 0);
    json_t *before = json_deep_copy(wf.graph);
    char err[256];

    json_t *loras = from_text("[{\"name\": \"a\"}, {\"weight\": 0.5}]");
    struct sf_job job = job_of(loras);
    CHECK(comfy_graph_fill(&wf, &job, err, sizeof err) == NULL);
    CHECK_STR(err, "LoRA 2 has neither a name nor a path");
    json_decref(loras);
    loras = from_text("[{\"name\": \"\", \"path\": \"\"}]");
    job = job_of(loras);
    CHECK(comfy_graph_fill(&wf, &job, err, sizeof err) == NULL);
    CHECK_STR(err, "LoRA 1 has neither a name nor a path");
    json_decref(loras);

    job = job_of(NULL);
    job.prompt = "caf\xe9"; /* Latin-1, not UTF-8 */
    CHECK(comfy_graph_fill(&wf, &job, err, sizeof err) == NULL);
    CHECK_STR(err, "the prompt is not valid UTF-8");
    job = job_of(NULL);
    job.negative_prompt = "\xff";
    CHECK(comfy_graph_fill(&wf, &job, err, sizeof err) == NULL);
    CHECK_STR(err, "the prompt is not valid UTF-8");
    CHECK(json_equal(wf.graph, before));
    json_decref(before);
    comfy_graph_free(&wf);

    /* No checkpoint loader: as many LoRAs as loaders work, one more cannot. */
    CHECK(analyse(from_text("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {"
                            "\"model\": [\"10\", 0], \"positive\": [\"6\", 0],"
                            " \"negative\": [\"7\", 0], \"latent_image\": [\"5\", 0]}},"
                            " \"1\": {\"class_type\": \"UNETLoader\", \"inputs\": {}},"
                            " \"10\": {\"class_type\": \"LoraLoader\", \"inputs\": "
                            "{\"model\": [\"1\", 0]}},"
                            " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
                            " \"6\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}},"
                            " \"7\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {}}}"),
                  &wf) == 0);
    loras = from_text("[{\"name\": \"a\"}]");
    job = job_of(loras);
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(g != NULL);
    json_decref(g);
    json_decref(loras);
    loras = from_text("[{\"name\": \"a\"}, {\"name\": \"b\"}]");
    job = job_of(loras);
    CHECK(comfy_graph_fill(&wf, &job, err, sizeof err) == NULL);
    CHECK_STR(err, "2 LoRAs but the workflow has 1 LoraLoader nodes and no "
                   "CheckpointLoaderSimple to chain more on");
    json_decref(loras);
    comfy_graph_free(&wf);
}

/* New node ids come after the largest numeric id, and a checkpoint loader
 * with a long name is linked by its whole name. */
static void test_new_node_ids(void)
{
    const char *ckpt = "checkpoint_loader_with_a_rather_long_node_id";
    char *text = xasprintf(
        "{\"sampler\": {\"class_type\": \"KSampler\", \"inputs\": {\"model\": [\"%s\", 0],"
        " \"positive\": [\"0006\", 0], \"negative\": [\"neg\", 0], \"latent_image\": [\"5\", 0]}},"
        " \"%s\": {\"class_type\": \"CheckpointLoaderSimple\", \"inputs\": {}},"
        " \"5\": {\"class_type\": \"EmptyLatentImage\", \"inputs\": {}},"
        " \"0006\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"clip\": [\"%s\", 1]}},"
        " \"neg\": {\"class_type\": \"CLIPTextEncode\", \"inputs\": {\"clip\": [\"%s\", 1]}}}",
        ckpt, ckpt, ckpt, ckpt);
    struct comfy_graph wf;
    CHECK(analyse(from_text(text), &wf) == 0);
    free(text);
    CHECK_STR(wf.ckpt_id, ckpt);
    json_t *loras = from_text("[{\"name\": \"a\"}, {\"name\": \"b\"}]");
    struct sf_job job = job_of(loras);
    char err[256];
    json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
    CHECK(g && json_object_size(g) == 7);
    char want[128];
    snprintf(want, sizeof want, "%s:0", ckpt);
    CHECK_STR(wire(g, "7", "model"), want); /* "0006" counts as 6 */
    CHECK_STR(wire(g, "8", "model"), "7:0");
    CHECK_STR(wire(g, "sampler", "model"), "8:0");
    CHECK_STR(wire(g, "0006", "clip"), "8:1");
    CHECK_STR(wire(g, "neg", "clip"), "8:1");
    json_decref(g);
    json_decref(loras);
    comfy_graph_free(&wf);
}

int main(void)
{
    test_default_workflow();
    test_advanced_workflow();
    test_lora_workflow();
    test_chain_on_default();
    test_no_sampler_workflow();
    test_shape_refusals();
    test_sampler_refusals();
    test_walks();
    test_sampler_choice();
    test_sorted_ids();
    test_fill_refusals();
    test_new_node_ids();
    UNIT_END("comfyui_graph");
}
