/*
 * test_answers.c: the readers of inference servers' answers
 * (backends/answers.h), fed bytes directly: the A1111 txt2img answer and
 * ComfyUI's /prompt, /history and /queue answers. test_backends.c runs the
 * same code against the fake servers; here are the answers a fake does not
 * send, among them the ones tests/fuzz/ found.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/a1111_progress.h"
#include "backends/answers.h"
#include "unit.h"

/* A 3x2 PNG (tests/fakes/gen_png.py make_png(3, 2, 5)), base64. */
#define PNG_B64                                                                            \
    "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR4nGN4rysEQQxwFgBMCgcVBkNlZgAAAABJ" \
    "RU5ErkJggg=="

#define PID "0c6f3b2e-5d1a-4c8e-9b7f-2a4d6e8f0a1b"

static char err[1024];

/* err is what becomes an item's "error": it must be a JSON string. */
static int err_is_utf8(void)
{
    json_t *j = json_string(err);
    json_decref(j);
    return j != NULL;
}

static enum backend_result a1111(const char *body, struct sf_image *img)
{
    memset(img, 0, sizeof *img);
    err[0] = '\0';
    return a1111_read_answer("a1111 gpu0", body, strlen(body), 42, img, err, sizeof err);
}

static void test_a1111(void)
{
    struct sf_image img;
    CHECK(a1111("{\"images\": [\"" PNG_B64 "\"], \"info\": \"{\\\"seed\\\": 7}\"}", &img) ==
          BACKEND_OK);
    CHECK(img.png && img.width == 3 && img.height == 2 && img.seed == 7);
    free(img.png);
    /* sd-server: an empty info, a data: prefix; the seed is the one asked for */
    CHECK(a1111("{\"images\": [\"data:image/png;base64," PNG_B64 "\"], \"info\": \"\"}", &img) ==
          BACKEND_OK);
    CHECK(img.seed == 42);
    free(img.png);
    CHECK(a1111("{\"images\": [\"" PNG_B64 "\"], \"info\": {\"seed\": -1}}", &img) == BACKEND_OK);
    CHECK(img.seed == 42);
    free(img.png);

    CHECK(a1111("{\"images\": []}", &img) == BACKEND_TRANSIENT && img.png == NULL);
    CHECK_STR(err, "a1111 gpu0: response has no image (\"images\" is empty or missing)");
    CHECK(a1111("{\"images\": [\"iVBOR w0\"]}", &img) == BACKEND_TRANSIENT);
    CHECK_STR(err, "a1111 gpu0: response image is not valid base64");
    CHECK(a1111("{\"images\": [\"/9j/4AAQSkZJRgABAQ==\"]}", &img) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "a1111 gpu0: response image: not a PNG");
    CHECK(a1111("<html>", &img) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "a1111 gpu0: response is not valid JSON (");

    /* Found by tests/fuzz/fuzz_a1111.c: jansson's message quotes the bytes
     * it stopped at, here the first byte of a two-byte character, so the
     * item's error was not UTF-8 and the API left it out. */
    const char bad[] = "{\"images\": [\"x\"], \"info\": \"{a cat\\\xde\x82\"}";
    memset(&img, 0, sizeof img);
    CHECK(a1111_read_answer("a1111 gpu0", bad, sizeof bad - 1, 42, &img, err, sizeof err) ==
          BACKEND_TRANSIENT);
    CHECK_HAS(err, "a1111 gpu0: response is not valid JSON (invalid escape near");
    CHECK(err_is_utf8());
}

static void test_comfy_prompt_id(void)
{
    char id[COMFY_PROMPT_ID_MAX + 1];
    const char *ok = "{\"prompt_id\": \"" PID "\", \"number\": 3, \"node_errors\": {}}";
    CHECK(comfy_read_prompt_id(ok, strlen(ok), id, sizeof id) == 0);
    CHECK_STR(id, PID);
    char small[8];
    CHECK(comfy_read_prompt_id(ok, strlen(ok), small, sizeof small) == -1);
    static const char *const bad[] = {
        "{}", "{\"prompt_id\": \"\"}", "{\"prompt_id\": 5}", "{\"prompt_id\": \"../x\"}",
        "{\"prompt_id\": \"a b\"}", "{\"prompt_id\": \"a%2f\"}", "not json",
        "{\"prompt_id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(comfy_read_prompt_id(bad[i], strlen(bad[i]), id, sizeof id) == -1);
}

static enum comfy_progress history(const char *body, int canceled, json_t **image,
                                   enum backend_result *r)
{
    atomic_int cancel = canceled;
    err[0] = '\0';
    *r = BACKEND_OK;
    return comfy_read_history("comfyui c0", body, strlen(body), PID, &cancel, image, r, err,
                              sizeof err);
}

static void test_comfy_history(void)
{
    json_t *image;
    enum backend_result r;
    CHECK(history("{}", 0, &image, &r) == COMFY_WAITING && image == NULL);
    CHECK(history("{\"" PID "\": {\"outputs\": {}, \"status\": {\"status_str\": \"success\", "
                  "\"completed\": false}}}",
                  0, &image, &r) == COMFY_WAITING);

    /* A saved image wins over a preview, in whichever node it is. */
    CHECK(history("{\"" PID "\": {\"outputs\": {\"12\": {\"images\": [{\"filename\": \"p.png\", "
                  "\"type\": \"temp\"}]}, \"9\": {\"images\": [{\"filename\": \"s.png\", "
                  "\"subfolder\": \"\", \"type\": \"output\"}]}}, \"status\": {\"status_str\": "
                  "\"success\", \"completed\": true}}}",
                  0, &image, &r) == COMFY_FINISHED);
    CHECK_STR(json_string_value(json_object_get(image, "filename")), "s.png");
    json_decref(image);
    /* Builds before "status" existed: the entry appears when done. */
    CHECK(history("{\"" PID "\": {\"outputs\": {\"12\": {\"images\": [{\"filename\": 5}, "
                  "{\"filename\": \"p.png\", \"type\": \"temp\"}]}}}}",
                  0, &image, &r) == COMFY_FINISHED);
    CHECK_STR(json_string_value(json_object_get(image, "filename")), "p.png");
    json_decref(image);

    CHECK(history("{\"" PID "\": {\"outputs\": {\"3\": {}}, \"status\": {\"completed\": true}}}",
                  0, &image, &r) == COMFY_FAILED);
    CHECK(r == BACKEND_PERMANENT && image == NULL);
    CHECK_STR(err, "comfyui c0: the workflow produced no image (no SaveImage node?)");

    const char *oom = "{\"" PID "\": {\"status\": {\"status_str\": \"error\", \"messages\": "
                      "[[\"execution_start\", {}], [\"execution_error\", {\"node_id\": \"3\", "
                      "\"node_type\": \"KSampler\", \"exception_type\": "
                      "\"torch.cuda.OutOfMemoryError\", \"exception_message\": "
                      "\"CUDA out of memory.\\nTried\"}]]}}}";
    CHECK(history(oom, 0, &image, &r) == COMFY_FAILED && r == BACKEND_TRANSIENT);
    CHECK_STR(err, "comfyui c0: execution error in KSampler (node 3): "
                   "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried");
    const char *intr = "{\"" PID "\": {\"status\": {\"status_str\": \"error\", \"messages\": "
                       "[[\"execution_interrupted\", {}]]}}}";
    CHECK(history(intr, 1, &image, &r) == COMFY_FAILED && r == BACKEND_CANCELED);
    CHECK(history(intr, 0, &image, &r) == COMFY_FAILED && r == BACKEND_TRANSIENT);
    CHECK(history("{\"" PID "\": {\"status\": {\"status_str\": \"error\"}}}", 0, &image, &r) ==
          COMFY_FAILED);
    CHECK(r == BACKEND_PERMANENT);
    CHECK(history("[]", 0, &image, &r) == COMFY_FAILED && r == BACKEND_TRANSIENT);
    CHECK_STR(err, "comfyui c0: history answer is not a JSON object");

    /* The server's names go in short and on one line: a 1,201-byte node
     * type used to fill the message to the engine's 1,024 bytes, cut
     * inside a character (tests/fuzz/corpus/comfyui/finding_long_node_type.json). */
    char big[2000] = "{\"" PID "\": {\"status\": {\"status_str\": \"error\", \"messages\": "
                     "[[\"execution_error\", {\"node_id\": \"3\\n4\", \"node_type\": \"x";
    for (int i = 0; i < 600; i++)
        strcat(big, "\xc3\xa9");
    strcat(big, "\"}]]}}}");
    CHECK(history(big, 0, &image, &r) == COMFY_FAILED && r == BACKEND_PERMANENT);
    CHECK(err_is_utf8() && strlen(err) < 300 && !strchr(err, '\n'));
    CHECK_HAS(err, "comfyui c0: execution error in x\xc3\xa9\xc3\xa9");
    CHECK_HAS(err, " (node 3 4): no message");
}

static void test_comfy_other(void)
{
    const char *q = "{\"queue_running\": [[0, \"" PID "\", {}, {}, []]], \"queue_pending\": []}";
    CHECK(comfy_queue_running(q, strlen(q), PID) == 1);
    CHECK(comfy_queue_running(q, strlen(q), "other") == 0);
    CHECK(comfy_queue_running("{\"queue_running\": [[0], 5]}", 27, PID) == 0);
    CHECK(comfy_queue_running("", 0, PID) == 0);

    char text[700];
    const char *rej = "{\"error\": {\"message\": \"Prompt outputs failed validation\", "
                      "\"details\": \"\"}, \"node_errors\": {\"10\": {\"errors\": [{\"message\": "
                      "\"Value not in list\", \"details\": \"ckpt_name: 'x' not in []\"}], "
                      "\"class_type\": \"CheckpointLoaderSimple\"}, \"4\": {\"errors\": []}}}";
    comfy_describe_rejection(rej, strlen(rej), text, sizeof text);
    CHECK_STR(text, "Prompt outputs failed validation; node (node 4): invalid");
    comfy_describe_rejection("<html>\xde", 7, text, sizeof text);
    CHECK_STR(text, "<html>?");
    /* One line, cut between characters however long the server's words. */
    char rej2[1200] = "{\"error\": {\"message\": \"failed\\nvalidation\", \"details\": \"x";
    for (int i = 0; i < 400; i++)
        strcat(rej2, "\xc3\xa9");
    strcat(rej2, "\"}}");
    comfy_describe_rejection(rej2, strlen(rej2), text, sizeof text);
    json_t *j = json_string(text);
    CHECK(j != NULL && strlen(text) == 698);
    json_decref(j);
    CHECK(strncmp(text, "failed validation: x\xc3\xa9", 22) == 0);
}

/* Live steps: A1111's two progress answers and ComfyUI's websocket
 * messages (docs/live.md). */
static void test_live_answers(void)
{
    struct a1111_step st;
    /* /internal/progress: a fraction of the steps asked for, the preview as a data: URL */
    const char *ip = "{\"active\": true, \"queued\": false, \"completed\": false, \"progress\": 0.5,"
                     " \"eta\": 3.2, \"live_preview\": \"data:image/jpeg;base64,/9j/4AAQ\","
                     " \"id_live_preview\": 7, \"textinfo\": null}";
    CHECK(a1111_read_progress(ip, strlen(ip), 1, 30, &st) == 0);
    CHECK(st.active && st.step == 15 && st.steps == 30 && st.id_live_preview == 7);
    CHECK(st.preview && st.preview_len == 6 && st.preview[0] == 0xff);
    CHECK_STR(st.mime, "image/jpeg");
    free(st.preview);
    const char *queued = "{\"active\": false, \"queued\": true, \"completed\": false,"
                         " \"id_live_preview\": -1, \"textinfo\": \"In queue...\"}";
    CHECK(a1111_read_progress(queued, strlen(queued), 1, 30, &st) == 0);
    CHECK(!st.active && st.steps == 0 && !st.preview);
    CHECK(a1111_read_progress("{}", 2, 1, 30, &st) == -1);
    CHECK(a1111_read_progress("<html>", 6, 1, 30, &st) == -1);
    /* /sdapi/v1/progress: the state's steps; a preview that is not an image is dropped */
    const char *sp = "{\"progress\": 0.25, \"state\": {\"sampling_step\": 5, \"sampling_steps\": 20},"
                     " \"current_image\": \"aGVsbG8=\"}";
    CHECK(a1111_read_progress(sp, strlen(sp), 0, 30, &st) == 0);
    CHECK(st.active && st.step == 5 && st.steps == 20 && !st.preview);
    const char *idle = "{\"progress\": 0, \"state\": {\"sampling_step\": 0, \"sampling_steps\": 0}}";
    CHECK(a1111_read_progress(idle, strlen(idle), 0, 30, &st) == 0);
    CHECK(!st.active);

    struct comfy_ws_read rd;
    const char *pr = "{\"type\": \"progress\", \"data\": {\"value\": 4, \"max\": 25, "
                     "\"prompt_id\": \"p1\", \"node\": \"3\"}}";
    comfy_read_ws((const unsigned char *)pr, strlen(pr), 0, "p1", &rd);
    CHECK(rd.event == COMFY_WS_PROGRESS && rd.step == 4 && rd.steps == 25);
    comfy_read_ws((const unsigned char *)pr, strlen(pr), 0, "p2", &rd);
    CHECK(rd.event == COMFY_WS_OTHER); /* another prompt's */
    const char *done = "{\"type\": \"executing\", \"data\": {\"node\": null, \"prompt_id\": \"p1\"}}";
    comfy_read_ws((const unsigned char *)done, strlen(done), 0, "p1", &rd);
    CHECK(rd.event == COMFY_WS_ENDED);
    const char *node = "{\"type\": \"executing\", \"data\": {\"node\": \"3\", \"prompt_id\": \"p1\"}}";
    comfy_read_ws((const unsigned char *)node, strlen(node), 0, "p1", &rd);
    CHECK(rd.event == COMFY_WS_OTHER);
    const char *status = "{\"type\": \"status\", \"data\": {\"status\": {}}}";
    comfy_read_ws((const unsigned char *)status, strlen(status), 0, "p1", &rd);
    CHECK(rd.event == COMFY_WS_OTHER);
    unsigned char bin[] = {0, 0, 0, 1, 0, 0, 0, 2, 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0};
    comfy_read_ws(bin, sizeof bin, 1, "p1", &rd);
    CHECK(rd.event == COMFY_WS_PREVIEW && rd.image == bin + 8 && rd.image_len == 9);
    CHECK_STR(rd.mime, "image/png");
    unsigned char meta[64] = {0, 0, 0, 4, 0, 0, 0, 18};
    memcpy(meta + 8, "{\"prompt_id\":\"p9\"}", 18);
    memcpy(meta + 26, "\xff\xd8\xff\xe0", 4);
    comfy_read_ws(meta, 30, 1, "p1", &rd);
    CHECK(rd.event == COMFY_WS_OTHER); /* metadata names another prompt */
    comfy_read_ws(meta, 30, 1, "p9", &rd);
    CHECK(rd.event == COMFY_WS_PREVIEW && rd.image_len == 4);
    CHECK_STR(rd.mime, "image/jpeg");
    comfy_read_ws(bin, 6, 1, "p1", &rd); /* cut short */
    CHECK(rd.event == COMFY_WS_OTHER);
}

int main(void)
{
    test_live_answers();
    test_a1111();
    test_comfy_prompt_id();
    test_comfy_history();
    test_comfy_other();
    UNIT_END("answers");
}
