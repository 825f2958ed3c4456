/*
 * fuzz_a1111.c: what an AUTOMATIC1111 / Forge / sd-server answers to
 * POST /sdapi/v1/txt2img, read as a1111.c reads it.
 *
 * Input: an answer body. It is read as a 200 (a1111_read_answer: JSON, the
 * base64 of the first image, png_check of the decoded bytes, the seed out of
 * "info") and as an error answer (http_error_text, which every backend uses
 * for a status other than success). Promised: an image taken is a whole
 * PNG of a sane size; every message is one line.
 */
#include "backends/answers.h"
#include "backends/errtext.h"
#include "fuzz.h"
#include "util/png.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct sf_image img;
    memset(&img, 0, sizeof img);
    char err[1024] = ""; /* as the engine's */
    enum backend_result r = a1111_read_answer("a1111 gpu0", body, size, 42, &img, err, sizeof err);
    if (r == BACKEND_OK) {
        FUZZ_ASSERT(img.png && img.png_len > 0);
        FUZZ_ASSERT(img.width >= 1 && img.width <= SF_PNG_MAX_DIM);
        FUZZ_ASSERT(img.height >= 1 && img.height <= SF_PNG_MAX_DIM);
        FUZZ_ASSERT(png_check(img.png, img.png_len, NULL, NULL, err, sizeof err) == 0);
        free(img.png);
    } else {
        FUZZ_ASSERT(r == BACKEND_TRANSIENT);
        FUZZ_ASSERT(img.png == NULL);
        FUZZ_ASSERT(strncmp(err, "a1111 gpu0: ", 12) == 0);
        FUZZ_ASSERT(fuzz_utf8(err)); /* it becomes the item's "error" */
    }

    fuzz_error_text(http_error_text, body, size); /* an answer with an error status */
    return 0;
}
