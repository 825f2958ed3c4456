/*
 * procedural_draw.h: the procedural backend's pictures.
 *
 * The procedural backend is setforge's built-in stand-in for an image model:
 * it turns (seed, prompt) into a deterministic abstract picture, so a run can
 * be exercised end to end, re-run byte-identically, and told apart item by
 * item, with no GPU and no network. It is not an AI model and says so in the
 * PNG's Software chunk.
 */
#ifndef SF_PROCEDURAL_DRAW_H
#define SF_PROCEDURAL_DRAW_H

#include <stddef.h>

/*
 * Draws into rgb (width*height*3 bytes, rows top to bottom): a background
 * gradient, stripes, rectangles, circles and a card frame, all chosen by a
 * PRNG keyed on seed and prompt (NULL counts as ""). The same inputs always
 * give the same bytes, on any platform. Does nothing if a side is <= 0.
 */
void procedural_draw(unsigned long long seed, const char *prompt, int width,
                     int height, unsigned char *rgb);

/*
 * Draws and encodes a PNG carrying A1111-style metadata: a tEXt "parameters"
 * chunk ("<prompt>\nNegative prompt: <neg>\nSteps: 20, Sampler: procedural,
 * CFG scale: 7, Seed: 42, Size: 512x720, backend: procedural"; the negative
 * line is left out when empty, "Loras: <loras_text>" is added when loras_text
 * is non-empty) and a tEXt "Software" chunk. Any string may be NULL. Sides
 * must be 1 to 16384. Returns 0 with *png_out a new malloc'd buffer of
 * *png_len bytes (the caller frees it), or -1 with nothing allocated.
 */
int procedural_render_png(unsigned long long seed, const char *prompt,
                          const char *negative_prompt, int steps,
                          double cfg_scale, int width, int height,
                          const char *loras_text, unsigned char **png_out,
                          size_t *png_len);

/*
 * Returns the malloc'd "parameters" text procedural_render_png embeds, for
 * callers that want to record it next to the image.
 */
char *procedural_parameters_text(unsigned long long seed, const char *prompt,
                                 const char *negative_prompt, int steps,
                                 double cfg_scale, int width, int height,
                                 const char *loras_text);

#endif
