/*
 * fuzz_sdcpp.c: what stable-diffusion.cpp's sd-server answers, read as the
 * a1111 backend reads it in that dialect (backends/sdcpp.h, sdcpp_jobs.h).
 *
 * Input: an answer body. It is read as an answer of GET /sdcpp/v1/jobs/<id>
 * (sdcpp_read_job) and as the LoRA list of GET /sdapi/v1/loras, in which a
 * few names are looked up (sdcpp_lora_match); its first bytes also give a
 * requested and a returned size for sdcpp_size_explain. Promised: a job
 * image taken is a whole PNG of a sane size; every message is one line of
 * UTF-8 starting with who; a LoRA found is one of the listed paths; an
 * alignment found explains the sizes.
 */
#include "backends/sdcpp.h"
#include "backends/sdcpp_jobs.h"
#include "fuzz.h"
#include "util/png.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

static int listed(const json_t *list, const char *path)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (json_array_get(list, i) && path ==
            json_string_value(json_object_get(json_array_get(list, i), "path")))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct sf_image img;
    memset(&img, 0, sizeof img);
    char err[1024] = "";
    enum sdcpp_job_state st = sdcpp_read_job("a1111 cpp0", body, size, &img, err, sizeof err);
    if (st == SDCPP_JOB_DONE) {
        FUZZ_ASSERT(img.png && img.png_len > 0);
        FUZZ_ASSERT(img.width >= 1 && img.width <= SF_PNG_MAX_DIM);
        FUZZ_ASSERT(img.height >= 1 && img.height <= SF_PNG_MAX_DIM);
        FUZZ_ASSERT(png_check(img.png, img.png_len, NULL, NULL, err, sizeof err) == 0);
        free(img.png);
    } else {
        FUZZ_ASSERT(img.png == NULL);
        if (st == SDCPP_JOB_FAILED) {
            FUZZ_ASSERT(strncmp(err, "a1111 cpp0: ", 12) == 0);
            FUZZ_ASSERT(fuzz_utf8(err)); /* it becomes the item's "error" */
            FUZZ_ASSERT(!strchr(err, '\n'));
        }
    }

    json_t *list = json_loadb(body, size, 0, NULL);
    static const char *const wanted[] = {"detail", "Detail.safetensors", "a/b", "x.ckpt", ""};
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        const char *path;
        char hint[256];
        enum lora_match m = sdcpp_lora_match(list, wanted[i], &path, hint, sizeof hint);
        FUZZ_ASSERT(strlen(hint) < sizeof hint);
        if (m == LORA_FOUND)
            FUZZ_ASSERT(path && *path && listed(list, path));
        else
            FUZZ_ASSERT(path == NULL);
    }
    json_decref(list);

    if (size >= 8) {
        int ww = 1 + (data[0] | data[1] << 8) % 4096, wh = 1 + (data[2] | data[3] << 8) % 4096;
        int gw = (data[4] | data[5] << 8) % 8192, gh = (data[6] | data[7] << 8) % 8192;
        int a = sdcpp_size_explain(ww, wh, gw, gh);
        if (a)
            FUZZ_ASSERT(align_up(ww, a) == gw && align_up(wh, a) == gh && a <= SDCPP_MAX_ALIGN);
    }
    return 0;
}
