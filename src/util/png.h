/*
 * png.h: encoding RGB pixels to PNG in memory, and checking that a PNG is
 * whole.
 *
 * Every image setforge stores is a PNG: the procedural backend encodes its
 * pixels here, and whatever a remote backend returns is checked here before
 * it is stored, so a truncated download or a JPEG never lands in a set.
 * Both work on memory buffers only; files are imagefiles.c's business.
 */
#ifndef SF_PNG_H
#define SF_PNG_H

#include <stddef.h>

/* Widest and tallest image png_check accepts (refuses decompression bombs). */
#define SF_PNG_MAX_DIM 16384

/*
 * Encodes 8-bit RGB pixels (height rows of width*3 bytes, top to bottom) as
 * a PNG. text_pairs is NULL or a NULL-terminated list key0, value0, key1,
 * value1, ..., each pair becoming one uncompressed tEXt chunk (keys are 1-79
 * Latin-1 characters, as the PNG spec requires). Returns 0 with *out a new
 * malloc'd buffer of *out_len bytes (the caller frees it), or -1 with nothing
 * allocated.
 */
int png_encode_rgb(const unsigned char *rgb, int width, int height,
                   const char *const *text_pairs, unsigned char **out,
                   size_t *out_len);

/*
 * Checks that buf holds one complete, decodable PNG: signature, IHDR, every
 * row of image data, and IEND. Any bit depth and colour type is accepted.
 * Returns 0 and sets *width and *height (either pointer may be NULL), or -1
 * with one sentence in err ("truncated PNG: ...", "not a PNG (starts with
 * FF D8 FF: JPEG?)").
 */
int png_check(const unsigned char *buf, size_t len, int *width, int *height,
              char *err, size_t errlen);

/*
 * Cuts the centre width x height out of the PNG in buf (at least that large
 * in both dimensions; an odd margin leaves its extra pixel right and below)
 * and encodes it as a new 8-bit RGB PNG: text_pairs as in png_encode_rgb,
 * then the source's own text chunks (tEXt, zTXt, iTXt) copied as they are.
 * Alpha is dropped. Returns 0 with *out malloc'd (*out_len bytes), or -1
 * with a sentence in err and nothing allocated.
 */
int png_crop_center(const unsigned char *buf, size_t len, int width, int height,
                    const char *const *text_pairs, unsigned char **out, size_t *out_len,
                    char *err, size_t errlen);

/*
 * Sets one text chunk of the PNG in buf without decoding its pixels: every
 * tEXt, zTXt or iTXt chunk whose keyword is key is left out, and one chunk
 * key = text (UTF-8) goes right after IHDR: tEXt when the text is Latin-1,
 * else an uncompressed iTXt. Every other chunk is copied as it is (a
 * ComfyUI image keeps its "prompt" and "workflow"). Returns 0 with *out
 * malloc'd (*out_len bytes), or -1 (not a PNG, a key of 0 or over 79
 * bytes) with nothing allocated.
 */
int png_with_text(const unsigned char *buf, size_t len, const char *key, const char *text,
                 unsigned char **out, size_t *out_len);

#endif
