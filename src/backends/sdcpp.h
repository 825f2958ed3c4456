/*
 * sdcpp.h: what stable-diffusion.cpp's sd-server needs that A1111 does not,
 * as pure functions: LoRA names mapped to the paths it lists, and the size
 * alignment it applies to width and height.
 *
 * sd-server accepts a LoRA only by the exact "path" that GET /sdapi/v1/loras
 * lists (relative to its LoRA folder, with the extension: "x.safetensors");
 * people write "x", "X" or "/models/Lora/x.safetensors". sdcpp_lora_match
 * maps what they wrote to what the server lists, tolerant of case and
 * extension but never guessing between two candidates.
 *
 * sd-server rounds width and height UP to a multiple that depends on the
 * model (64 for the SD1.x build we measured) and says so only in its log.
 * The a1111 backend learns that multiple per endpoint from its answers
 * (sdcpp_size_explain) and predicts the size of the next one (align_up).
 * Both are unit-tested (tests/unit/test_sdcpp.c).
 */
#ifndef SF_SDCPP_H
#define SF_SDCPP_H

#include <jansson.h>
#include <stddef.h>

/* The largest alignment (a power of two) an answer may be explained by. */
#define SDCPP_MAX_ALIGN 256

/* v rounded up to a multiple of align (align >= 1). */
static inline int align_up(int v, int align)
{
    return align <= 1 ? v : (v + align - 1) / align * align;
}

/*
 * The smallest power of two a (1..SDCPP_MAX_ALIGN) such that a request of
 * want_w x want_h aligned up to a gives got_w x got_h; 0 when none does (a
 * smaller image, or one far larger: no alignment explains it).
 */
int sdcpp_size_explain(int want_w, int want_h, int got_w, int got_h);

enum lora_match {
    LORA_FOUND,     /* *path is the listed path to send */
    LORA_NONE,      /* nothing matches; hint lists close names, if any */
    LORA_AMBIGUOUS, /* several entries match equally; hint lists them */
};

/*
 * Finds wanted (a LoRA's name or path as the item gives it) in list, an
 * answer of GET /sdapi/v1/loras ([{"name": stem, "path": "rel/x.ext"}]).
 * In order, the first rule that matches anything wins:
 *   1. a listed path equal to wanted;
 *   2. a listed path equal to wanted ignoring ASCII case;
 *   3. equal ignoring case and the file extension (".safetensors", ".ckpt",
 *      ".pt", ".bin", ".gguf") on either side;
 *   4. the listed file name (no folder, no extension) equal, ignoring case,
 *      to wanted's file name without folder and extension.
 * A rule that matches two or more entries is LORA_AMBIGUOUS. *path is
 * borrowed from list. hint (hintlen bytes) gets up to five listed paths,
 * comma-separated: the candidates when ambiguous, else the close ones (a
 * file name containing, or contained in, wanted's, or within three edits
 * of it); "" when there are none.
 */
enum lora_match sdcpp_lora_match(const json_t *list, const char *wanted, const char **path,
                                 char *hint, size_t hintlen);

#endif
