/*
 * fsutil.c: mkdir -p and "read this whole file", see fsutil.h.
 *
 * Before this file, the command backend created data_dir/tmp one level at a
 * time, the image store had its own mkdir -p (with fsyncs), and the command
 * backend read its output PNG with a helper of its own; one copy of each
 * lives here now.
 */
#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

/* fsync of the directory holding path (its entry for path's last part). */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent = !slash ? xstrdup(".") : slash == path ? xstrdup("/")
                                                          : xstrndup(path, (size_t)(slash - path));
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int make_dirs(const char *path, mode_t mode, int durable)
{
    if (!path || !*path) {
        errno = ENOENT;
        return -1;
    }
    char *buf = xstrdup(path);
    size_t n = strlen(buf);
    int rc = 0;
    /* Each prefix that ends at a slash (or the end), parents first. */
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i - 1] == '/')
            continue; /* "a//b", or a trailing slash */
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) == 0) {
            if (durable)
                rc = sync_parent(buf);
        } else if (errno == EEXIST) {
            struct stat st;
            if (stat(buf, &st) < 0)
                rc = -1;
            else if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                rc = -1;
            }
        } else {
            rc = -1;
        }
        buf[i] = saved;
    }
    int saved_errno = errno;
    free(buf);
    errno = saved_errno;
    return rc;
}

int mkdir_p(const char *path, mode_t mode)
{
    return make_dirs(path, mode, 0);
}

int mkdir_p_durable(const char *path, mode_t mode)
{
    return make_dirs(path, mode, 1);
}

int read_file(const char *path, size_t max, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* "e": O_CLOEXEC, as worker threads start programs meanwhile. */
    FILE *f = fopen(path, "rbe");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        int e = errno;
        fclose(f);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(f);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        fclose(f);
        errno = EFBIG;
        return -1;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = xmalloc(n + 1);
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        errno = EIO;
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}
