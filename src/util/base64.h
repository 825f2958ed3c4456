/*
 * base64.h: a strict base64 decoder on top of libcrypto.
 *
 * Strict because base64 arrives from servers we do not control (A1111 sends
 * its PNGs as base64 inside JSON): a lenient decoder would turn garbage into
 * garbage bytes that fail much later with a confusing message, while a -1
 * here says exactly what went wrong.
 */
#ifndef SF_BASE64_H
#define SF_BASE64_H

#include <stddef.h>

/*
 * Decodes standard base64 (RFC 4648 alphabet, not the URL-safe one).
 * Accepted: line breaks (CR, LF) anywhere; the '=' padding, or none (as some
 * servers send), but never in the middle nor more than the last quantum
 * needs; a "data:<type>;base64," prefix, which is skipped.
 * Refused (-1): any other byte (spaces included), a lone symbol in the last
 * quantum, non-canonical text (set bits that decoding would drop), and text
 * that decodes to nothing.
 * Returns 0 with *out a malloc'd buffer of exactly *out_len bytes (the caller
 * frees it), or -1 with *out NULL and *out_len 0.
 */
int base64_decode(const char *in, size_t in_len, unsigned char **out, size_t *out_len);

#endif
