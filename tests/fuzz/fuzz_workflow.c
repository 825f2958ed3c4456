/*
 * fuzz_workflow.c: a ComfyUI workflow file and the jobs written into it
 * (backends/comfyui_graph.c): comfy_graph_analyse as when an endpoint is
 * built, then comfy_graph_fill as for every item.
 *
 * Input: the prompt on the first line and the negative prompt on the second
 * (raw bytes, as a job carries them: not necessarily UTF-8), the job's
 * numbers and LoRAs on the third as JSON ({"seed", "steps", "cfg", "width",
 * "height", "loras": [{"name"|"path", "weight"}]}, each optional), and the
 * workflow JSON in the rest. Promised: a filled graph has the job where the
 * analysis said (seed, prompts, size), and a LoraLoader per LoRA.
 */
#include "backends/comfyui_graph.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

static const json_t *input_of(const json_t *graph, const char *id, const char *name)
{
    return json_object_get(json_object_get(json_object_get(graph, id), "inputs"), name);
}

static size_t count_class(const json_t *graph, const char *cls)
{
    size_t n;
    free(comfy_graph_sorted_ids(graph, cls, &n));
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *prompt = fuzz_line(&data, &size);
    char *negative = fuzz_line(&data, &size);
    char *job_text = fuzz_line(&data, &size);
    json_t *graph = json_loadb((const char *)data, size, 0, NULL);
    json_t *jobj = json_loads(job_text, 0, NULL);

    struct comfy_graph wf;
    char msg[300] = "";
    if (graph && comfy_graph_analyse(graph, &wf, msg, sizeof msg) == 0) {
        const json_t *loras = json_object_get(jobj, "loras");
        struct sf_job job = {
            .prompt = prompt,
            .negative_prompt = negative,
            .seed = json_integer_value(json_object_get(jobj, "seed")),
            .steps = (int)json_integer_value(json_object_get(jobj, "steps")),
            .cfg_scale = json_number_value(json_object_get(jobj, "cfg")),
            .width = (int)json_integer_value(json_object_get(jobj, "width")),
            .height = (int)json_integer_value(json_object_get(jobj, "height")),
            .loras = loras,
        };
        char err[300] = "";
        json_t *g = comfy_graph_fill(&wf, &job, err, sizeof err);
        if (g) {
            const char *seed_key = wf.advanced ? "noise_seed" : "seed";
            FUZZ_ASSERT(json_integer_value(input_of(g, wf.sampler_id, seed_key)) == job.seed);
            FUZZ_ASSERT(strcmp(json_string_value(input_of(g, wf.pos_id, "text")), prompt) == 0);
            FUZZ_ASSERT(strcmp(json_string_value(input_of(g, wf.neg_id, "text")), negative) == 0);
            FUZZ_ASSERT(json_integer_value(input_of(g, wf.latent_id, "width")) == job.width);
            size_t nloras = json_is_array(loras) ? json_array_size(loras) : 0;
            FUZZ_ASSERT(count_class(g, "LoraLoader") >= nloras);
            char *text = json_dumps(g, JSON_COMPACT);
            FUZZ_ASSERT(text != NULL);
            free(text);
            json_decref(g);
        } else {
            FUZZ_ASSERT(err[0] != '\0');
        }
        comfy_graph_free(&wf);
    } else if (graph) {
        FUZZ_ASSERT(msg[0] != '\0');
    }
    json_decref(jobj);
    json_decref(graph);
    free(job_text);
    free(negative);
    free(prompt);
    return 0;
}
