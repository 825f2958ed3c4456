/*
 * zipstream.h: a zip archive written a piece at a time into a buffer that
 * the caller drains between pieces (libarchive's zip writer underneath).
 *
 * The caller pulls: it adds an entry's header, then the entry's bytes in
 * pieces, then the next entry, and finally the central directory; after
 * each call the new bytes are at the end of the strbuf it gave, ready to be
 * sent, and it empties the strbuf before it asks for more. So the archive
 * never exists as a whole anywhere: memory holds one piece, plus the
 * central directory that libarchive keeps until the end (about 100 bytes an
 * entry). No seek is ever needed: entries carry data descriptors (their
 * CRC-32 and sizes after their data), and ZIP64 records are written when
 * sizes, offsets or the entry count need them. docs/download.md says why
 * libarchive and not libzip.
 */
#ifndef SF_ZIPSTREAM_H
#define SF_ZIPSTREAM_H

#include <stddef.h>
#include <time.h>

#include "util/xalloc.h"

struct zipstream;

enum zip_method { ZIP_STORE, ZIP_DEFLATE };

/* A new archive whose bytes are appended to out (borrowed for the
 * archive's life). NULL with a sentence in err when libarchive cannot
 * start one. */
struct zipstream *zipstream_new(struct strbuf *out, char *err, size_t errlen);

/* Starts the next entry: name (ASCII, as given), size in bytes (-1 when not
 * known yet), stored or deflated, modification time. 0, or -1 (see
 * zipstream_error). The previous entry is finished first. */
int zipstream_entry(struct zipstream *z, const char *name, long long size,
                    enum zip_method method, time_t mtime);

/* The entry's next len bytes. 0, or -1. */
int zipstream_write(struct zipstream *z, const void *data, size_t len);

/* Ends the last entry and writes the central directory. 0, or -1. */
int zipstream_finish(struct zipstream *z);

/* What went wrong in the last failed call (libarchive's sentence). */
const char *zipstream_error(const struct zipstream *z);

void zipstream_free(struct zipstream *z);

#endif
