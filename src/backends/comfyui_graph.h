/*
 * comfyui_graph.h: a ComfyUI workflow (API format) read once, then filled
 * with one job at a time. Pure JSON in, JSON out: no network, no files, no
 * globals, so every case can be unit-tested (tests/unit/test_comfyui_graph.c).
 *
 * ComfyUI has no txt2img call, it runs graphs: {"<node id>": {"class_type",
 * "inputs": {"<name>": value, or a link ["<node id>", <output index>]}}}.
 * comfy_graph_analyse() follows the links from a sampler to the nodes a
 * job's fields belong in; comfy_graph_fill() writes a job into a copy.
 */
#ifndef SF_COMFYUI_GRAPH_H
#define SF_COMFYUI_GRAPH_H

#include <jansson.h>
#include <stddef.h>

#include "backends/backend.h"

/* A workflow and where a job goes in it. Node ids are malloc'd copies. */
struct comfy_graph {
    json_t *graph;     /* the workflow (a private copy, never modified) */
    char *sampler_id;  /* the KSampler or KSamplerAdvanced used */
    int advanced;      /* KSamplerAdvanced: the seed input is noise_seed */
    char *pos_id;      /* CLIPTextEncode of the prompt */
    char *neg_id;      /* CLIPTextEncode of the negative prompt */
    char *latent_id;   /* EmptyLatentImage (or EmptySD3LatentImage): the size */
    char *ckpt_id;     /* CheckpointLoaderSimple feeding the sampler's model, or NULL */
    json_t *lora_ids;  /* the LoraLoader node ids, as strings, in id order */
};

/*
 * Checks that graph (borrowed) is an API-format workflow and finds its
 * nodes: the first sampler, in id order, whose positive and negative inputs
 * lead to two different CLIPTextEncode nodes and whose latent_image leads to
 * an empty latent (through any nodes between: a two-pass workflow uses its
 * first pass); the checkpoint loader its model comes from; every LoraLoader.
 * Returns 0 with out filled (free it with comfy_graph_free), or -1 with out
 * empty and msg holding what is wrong, worded to follow "workflow <path> ":
 * "has no KSampler or KSamplerAdvanced node", "is in ComfyUI's UI format, ...".
 */
int comfy_graph_analyse(const json_t *graph, struct comfy_graph *out, char *msg, size_t msglen);

/* Frees what comfy_graph_analyse filled in; safe on an empty struct. */
void comfy_graph_free(struct comfy_graph *g);

/*
 * A copy of the workflow with job written in (new reference): seed (or
 * noise_seed), steps and cfg on the sampler; the prompts' text; width,
 * height and batch_size 1 on the latent. LoRAs fill the LoraLoader nodes in
 * id order (lora_name, strength_model and strength_clip = weight); loaders
 * left over get strength 0, which ComfyUI treats as a no-op. More LoRAs than
 * loaders: new LoraLoader nodes (ids after the largest numeric id) are
 * chained after the checkpoint loader, and every input that read its MODEL
 * or CLIP output reads the end of the chain instead. Returns NULL with a
 * sentence in err when the job cannot be expressed (a LoRA with neither
 * name nor path, a prompt that is not UTF-8, more LoRAs than loaders and no
 * checkpoint loader to chain on); the sentence has no "who" prefix.
 */
json_t *comfy_graph_fill(const struct comfy_graph *g, const struct sf_job *job, char *err,
                         size_t errlen);

/*
 * The keys of obj (a graph, or any object keyed by node id) whose
 * "class_type" is cls, or all keys when cls is NULL, in a stable order:
 * numeric ids by value ("9" before "10"), then the others by strcmp.
 * Returns a malloc'd array of n_out keys borrowed from obj (free the array
 * only; it is valid while obj is unchanged).
 */
const char **comfy_graph_sorted_ids(const json_t *obj, const char *cls, size_t *n_out);

#endif
