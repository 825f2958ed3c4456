/*
 * errtext.h: the human part of an HTTP error answer (see errtext.c).
 */
#ifndef SF_ERRTEXT_H
#define SF_ERRTEXT_H

#include <stddef.h>

/*
 * Puts the "error text" of an HTTP error answer into dst (dstlen bytes,
 * NUL-terminated): the human part of a JSON error body (FastAPI "detail",
 * sd-server "message"/"error", webui "error" + "errors", ...) or the start
 * (300 bytes at most) of any other body, always collapsed to one line;
 * "(empty answer)" for an empty body. body is borrowed and need not be
 * NUL-terminated.
 */
void http_error_text(const char *body, size_t len, char *dst, size_t dstlen);

#endif
