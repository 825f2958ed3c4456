/*
 * fuzz_comfyui.c: what a ComfyUI server answers, read as comfyui.c reads it
 * (backends/answers.h).
 *
 * Input: an answer body, given to every reader, as each is a different
 * route's answer with the same JSON underneath: POST /prompt's 200
 * (comfy_read_prompt_id) and 400 (comfy_describe_rejection), GET
 * /history/<id> (comfy_read_history, with and without a cancel we asked
 * for), GET /queue (comfy_queue_running), and GET /view (png_check, as
 * fetch_image checks the download). The prompt id asked about is the one in
 * the seeds. Promised: a prompt id taken is safe in a URL path; a finished
 * prompt names an image file; every message is one line where it is a
 * server's words.
 */
#include <stdatomic.h>

#include "backends/answers.h"
#include "fuzz.h"
#include "util/png.h"

#define PROMPT_ID "0c6f3b2e-5d1a-4c8e-9b7f-2a4d6e8f0a1b"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

static void history(const char *body, size_t size, int canceled)
{
    atomic_int cancel = canceled;
    json_t *image = (json_t *)1;
    enum backend_result r = BACKEND_OK;
    char err[1024] = ""; /* as the engine's */
    enum comfy_progress p = comfy_read_history("comfyui c0", body, size, PROMPT_ID, &cancel,
                                               &image, &r, err, sizeof err);
    switch (p) {
    case COMFY_WAITING:
        FUZZ_ASSERT(image == NULL);
        break;
    case COMFY_FINISHED:
        FUZZ_ASSERT(json_is_string(json_object_get(image, "filename")));
        json_decref(image);
        break;
    case COMFY_FAILED:
        FUZZ_ASSERT(image == NULL);
        FUZZ_ASSERT(r == BACKEND_TRANSIENT || r == BACKEND_PERMANENT || r == BACKEND_CANCELED);
        FUZZ_ASSERT(r != BACKEND_CANCELED || canceled);
        FUZZ_ASSERT(strncmp(err, "comfyui c0: ", 12) == 0);
        FUZZ_ASSERT(fuzz_utf8(err)); /* it becomes the item's "error" */
        FUZZ_ASSERT(fuzz_one_line(err));
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;

    char id[COMFY_PROMPT_ID_MAX + 1];
    if (comfy_read_prompt_id(body, size, id, sizeof id) == 0) {
        FUZZ_ASSERT(id[0] && strlen(id) <= COMFY_PROMPT_ID_MAX);
        FUZZ_ASSERT(!strpbrk(id, "/?#% "));
    }
    char small[8];
    comfy_read_prompt_id(body, size, small, sizeof small);

    fuzz_error_text(comfy_describe_rejection, body, size);

    history(body, size, 0);
    history(body, size, 1);

    int running = comfy_queue_running(body, size, PROMPT_ID);
    FUZZ_ASSERT(running == 0 || running == 1);

    char perr[256];
    int w = 0, h = 0;
    if (png_check(data, size, &w, &h, perr, sizeof perr) == 0)
        FUZZ_ASSERT(w >= 1 && w <= SF_PNG_MAX_DIM && h >= 1 && h <= SF_PNG_MAX_DIM);
    else
        FUZZ_ASSERT(perr[0] != '\0');
    return 0;
}
