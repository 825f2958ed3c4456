/*
 * infotext.h: the "parameters" text that AUTOMATIC1111 writes into every
 * PNG it makes, and that its PNG Info tab, civitai, ComfyUI loaders and
 * many image browsers read back:
 *
 *   <prompt>
 *   Negative prompt: <negative prompt>
 *   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x720, ...
 *
 * The negative line is left out when empty; the last line is "key: value"
 * pairs joined by ", ". A value that would break that line (a comma, a
 * colon, a newline or a quote) is written as a JSON string, which is what
 * A1111's own writer does and what its reader (parse_generation_parameters
 * in modules/infotext_utils.py) unquotes. setforge writes it into every
 * stored image from what the backend really used (queue/finisher.c), so the
 * text is the same whatever the server wrote or dropped.
 */
#ifndef SF_INFOTEXT_H
#define SF_INFOTEXT_H

#include <stddef.h>

struct infotext_param {
    const char *key;   /* "Steps", "Model hash", ... */
    const char *value; /* as text; NULL or "": the pair is left out */
};

/* The whole text, malloc'd (the caller frees it). prompt and negative may
 * be NULL. */
char *infotext_format(const char *prompt, const char *negative,
                      const struct infotext_param *params, size_t nparams);

/* A CFG scale as A1111 prints it: "7", "7.5". */
void infotext_number(double v, char *out, size_t outlen);

#endif
