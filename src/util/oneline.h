/*
 * oneline.h: squeezing text from elsewhere (a server's error page, a
 * program's output, an exception message) into one line that fits a
 * buffer, for error messages, logs and the API's "error" fields.
 */
#ifndef SF_ONELINE_H
#define SF_ONELINE_H

#include <stddef.h>

/*
 * Copies the n bytes at s into dst (dstlen bytes, always NUL-terminated when
 * dstlen > 0) as one line of valid UTF-8: runs of spaces, tabs, CRs and LFs
 * become one space, leading and trailing ones go, and other control bytes
 * (NUL included) become '?', as does each byte that is not part of a valid
 * UTF-8 character. Text that does not fit is cut at the end, between two
 * characters. Returns the length written. Callers that want to stop at a
 * NUL pass strnlen(s, n).
 */
size_t one_line(const char *s, size_t n, char *dst, size_t dstlen);

#endif
