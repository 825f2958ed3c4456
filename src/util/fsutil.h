/*
 * fsutil.h: the two file-system chores several rooms need, written once:
 * creating a directory with its parents (mkdir -p), and reading a whole
 * file with a size cap.
 *
 * Both report failure the POSIX way (-1 and errno) so that each caller words
 * its own message with the path it cares about.
 */
#ifndef SF_FSUTIL_H
#define SF_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * mkdir -p: creates path and any missing parents with mode (before umask).
 * An existing directory is success; an existing non-directory is -1 with
 * errno ENOTDIR (EEXIST from mkdir is not trusted on its own). "a//b" and a
 * trailing slash are fine. 0, or -1 with errno from the component that failed.
 */
int mkdir_p(const char *path, mode_t mode);

/*
 * The same, and each directory it creates is fsynced into its parent, so a
 * file made durable inside it later is not lost with a directory entry that
 * was not (what the image store wants). Costs an fsync only for directories
 * that did not exist.
 */
int mkdir_p_durable(const char *path, mode_t mode);

/*
 * Reads the whole regular file at path, at most max bytes. 0 with *out a
 * malloc'd buffer (the caller frees it; one NUL byte follows the *out_len
 * bytes, so text can be used as a string) or -1 with errno set: EFBIG when
 * larger than max, EISDIR or EINVAL when not a regular file, EIO on a short
 * read.
 */
int read_file(const char *path, size_t max, unsigned char **out, size_t *out_len);

#endif
