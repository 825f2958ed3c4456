/*
 * filename.h: names for files a client saves: the entries of a zip, and the
 * Content-Disposition of a download (RFC 6266).
 */
#ifndef SF_FILENAME_H
#define SF_FILENAME_H

#include <stddef.h>

/*
 * Writes into out (outlen bytes, at least 2) a name made of [a-z0-9_-] only:
 * ASCII letters lowercased, digits and '-' kept, every other run of bytes
 * (spaces, punctuation, any non-ASCII character) one '_', no '_' at either
 * end, cut at max_len bytes (and at outlen - 1). Returns its length: 0 when
 * nothing of in was usable (out is then "").
 */
size_t filename_slug(const char *in, size_t max_len, char *out, size_t outlen);

/*
 * A Content-Disposition value for saving name + ext as an attachment:
 * attachment; filename="<slug><ext>"; filename*=UTF-8''<percent-encoded name><ext>
 * The quoted form is the slug (fallback when the slug is empty), for old
 * clients; filename* carries the name as it is, percent-encoded (RFC 8187),
 * cut at a character boundary so the whole value fits in outlen. ext is
 * plain ASCII (".zip").
 */
void filename_disposition(const char *name, const char *ext, const char *fallback,
                          char *out, size_t outlen);

#endif
