/*
 * imagefiles.h: content-addressed PNG files under the data directory.
 *
 * An image is stored once, at <data_dir>/images/<h0h1>/<sha256 hex>.png,
 * whatever number of runs or items produced it; the database refers to it by
 * its hex digest. Files appear atomically (temp file, fsync, rename, fsync of
 * the directory), so after a crash a path either holds the whole image or
 * does not exist.
 */
#ifndef SF_IMAGEFILES_H
#define SF_IMAGEFILES_H

#include <stddef.h>

#include "util/status.h"

/*
 * Stores len bytes, creating directories as needed, and writes the lowercase
 * SHA-256 hex of the bytes into sha_out. Storing bytes that are already
 * there is a no-op that succeeds; two threads or processes may store the same
 * bytes at once. Returns SF_OK, or SF_EUNAVAILABLE (out of files, space or
 * memory: try again later) or SF_EINTERNAL, with a sentence in err (which
 * includes strerror) and no temp file left behind.
 */
sf_status imagefile_store(const char *data_dir, const void *data, size_t len,
                          char sha_out[65], char *err, size_t errlen);

/*
 * imagefile_store, and the file is held for a row about to refer to it:
 * imagefile_remove_if_unused() leaves it alone until imagefile_release(sha).
 * On failure nothing is held.
 */
sf_status imagefile_store_held(const char *data_dir, const void *data, size_t len,
                               char sha_out[65], char *err, size_t errlen);

/* Ends a hold (of imagefile_store_held: the row has committed, or will
 * never be written; of imagefile_hold_existing: the file was sent). When
 * the last hold of a file ends and a removal was put off while it was
 * held, the file is removed now if no row uses it. */
void imagefile_release(const char *sha);

/*
 * Holds the file of digest sha for a reader that opens it later (a zip
 * download): 0 with *size set when the file is there, -1 (nothing held)
 * when it is not or sha is malformed. Until imagefile_release(sha), an
 * image delete does not remove it.
 */
int imagefile_hold_existing(const char *data_dir, const char *sha, long long *size);

/* Removes a file after an image row was deleted, unless another row uses it;
 * while the file is held, the removal waits for the last release (a warning
 * is logged when the unlink fails). */
void imagefile_remove_if_unused(const char *data_dir, const char *sha);

/*
 * The malloc'd path of the image with digest sha_hex (the caller frees it),
 * or NULL when sha_hex is not 64 lowercase hex digits, so that no digest from
 * a URL can name a path outside the image tree.
 */
char *imagefile_path(const char *data_dir, const char *sha_hex);

/* Unlinks the image: 0 when removed or already absent, -1 on another error
 * or a malformed sha_hex. */
int imagefile_remove(const char *data_dir, const char *sha_hex);

/* Reads the whole image into a new malloc'd buffer (the caller frees it):
 * 0, or -1 (absent, unreadable or malformed sha_hex) with nothing
 * allocated. */
int imagefile_read(const char *data_dir, const char *sha_hex,
                   unsigned char **out, size_t *len);

/*
 * Removes the temporary files a killed process left behind (".tmp-*" in the
 * image tree). Call at start-up only, before any worker stores a file.
 * Returns how many were removed.
 */
int imagefile_sweep_temps(const char *data_dir);

#endif
