/*
 * imagefiles.c: the content-addressed image tree under the data directory.
 *
 * Images live on disk rather than in SQLite so the database stays small and
 * the HTTP layer can send files as they are. Naming a file by the SHA-256 of
 * its bytes makes storing idempotent (a re-run that renders identical bytes
 * costs no space) and makes concurrent stores of the same bytes harmless:
 * each writer fills its own mkstemp file and rename(2) atomically puts one
 * complete copy in place. fsync of the file before the rename and of the
 * directory after it is what lets the database row that follows point at a
 * file that survives a power cut.
 */
#include "store/imagefiles.h"

#include <dirent.h>
#include <pthread.h>
#include <search.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "store/images.h"
#include "util/fsutil.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/xalloc.h"

/*
 * Holds: files that must stay on disk although no committed row may use
 * them yet, or any more. Files are shared by content, so deleting an image
 * row may orphan a file that a worker has just stored again (same bytes)
 * and is about to refer to, or that a zip download (api/download.c) took
 * into its snapshot and has not sent yet; a hold closes the race between
 * "no row uses it" and the new row, or the last byte sent. A removal asked
 * for while the file is held is put off (deferred) and done when the last
 * hold ends, if no row uses the file by then.
 *
 * The holds are a tree (tsearch(3)) of digests with a count, since one
 * download holds every file of its album at once. holds_mu guards the tree
 * and is held across each check-and-unlink.
 */
struct hold {
    char sha[65];
    long count;
    char *deferred_dir; /* the data directory of a removal put off */
};

static pthread_mutex_t holds_mu = PTHREAD_MUTEX_INITIALIZER;
static void *holds; /* tsearch root of struct hold */

static int hold_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hold *)a)->sha, ((const struct hold *)b)->sha);
}

static struct hold *hold_find(const char *sha)
{
    struct hold key;
    snprintf(key.sha, sizeof(key.sha), "%s", sha);
    void *node = tfind(&key, &holds, hold_cmp);
    return node ? *(struct hold **)node : NULL;
}

static void hold(const char *sha)
{
    pthread_mutex_lock(&holds_mu);
    struct hold *h = hold_find(sha);
    if (!h) {
        h = xcalloc(1, sizeof(*h));
        snprintf(h->sha, sizeof(h->sha), "%s", sha);
        if (!tsearch(h, &holds, hold_cmp))
            abort(); /* out of memory, as xmalloc would */
    }
    h->count++;
    pthread_mutex_unlock(&holds_mu);
}

/* Removes the file unless a row uses it; holds_mu held. */
static void remove_unused_locked(const char *data_dir, const char *sha)
{
    if (!images_sha_used(sha) && imagefile_remove(data_dir, sha) < 0)
        log_warn("store: cannot remove image file %s", sha);
}

void imagefile_release(const char *sha)
{
    pthread_mutex_lock(&holds_mu);
    struct hold *h = hold_find(sha);
    if (h && --h->count == 0) {
        tdelete(h, &holds, hold_cmp);
        if (h->deferred_dir)
            remove_unused_locked(h->deferred_dir, h->sha);
        free(h->deferred_dir);
        free(h);
    }
    pthread_mutex_unlock(&holds_mu);
}

void imagefile_remove_if_unused(const char *data_dir, const char *sha)
{
    pthread_mutex_lock(&holds_mu);
    struct hold *h = hold_find(sha);
    if (!h)
        remove_unused_locked(data_dir, sha);
    else if (!h->deferred_dir)
        h->deferred_dir = xstrdup(data_dir); /* the last release decides */
    pthread_mutex_unlock(&holds_mu);
}

int imagefile_hold_existing(const char *data_dir, const char *sha, long long *size)
{
    char *path = imagefile_path(data_dir, sha);
    if (!path)
        return -1;
    /* Held first, looked at second: a removal that comes after the hold
     * is put off, and one that came before it leaves no file to find. */
    hold(sha);
    struct stat st;
    int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    if (!ok) {
        imagefile_release(sha);
        return -1;
    }
    *size = (long long)st.st_size;
    return 0;
}

static int valid_hex(const char *s)
{
    if (!s)
        return 0;
    size_t i = 0;
    for (; s[i]; i++)
        if (i >= 64 || !((s[i] >= '0' && s[i] <= '9') ||
                         (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

/* fsync a directory so that entries created or renamed in it are durable. */
static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (fsync(fd) != 0)
        rc = -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}


static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static sf_status store_bytes(const char *data_dir, const void *data, size_t len,
                             char sha_out[65], char *err, size_t errlen, int held)
{
    char hex[65];
    char *dir = NULL, *final = NULL, *tmp = NULL;
    int fd = -1;
    char dummy[1];

    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!data_dir || !*data_dir || (!data && len > 0)) {
        snprintf(err, errlen, "cannot store image: no data directory or data");
        return SF_EINTERNAL;
    }

    sha256_hex(data, len, hex); /* the one hash of these bytes */
    if (held)
        hold(hex);
    dir = xasprintf("%s/images/%.2s", data_dir, hex);
    final = xasprintf("%s/%s.png", dir, hex);

    /* Each directory made is fsynced into its parent, so an image made
     * durable later is not lost with a directory entry that was not; that
     * costs something only the first time each of the 256 prefixes is used. */
    if (mkdir_p_durable(dir, 0755) != 0) {
        snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        goto fail;
    }

    /* Already stored: the name is the content, so a complete file of the
     * right size is these bytes (the rename below never leaves a partial
     * file under a final name). */
    struct stat st;
    if (stat(final, &st) == 0 && S_ISREG(st.st_mode) &&
        (size_t)st.st_size == len)
        goto done;

    tmp = xasprintf("%s/.tmp-XXXXXX", dir);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file in %s: %s", dir,
                 strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to unlink */
        goto fail;
    }
    /* mkstemp makes 0600 files; images are served and backed up by others. */
    if (fchmod(fd, 0644) != 0) {
        snprintf(err, errlen, "cannot set permissions on %s: %s", tmp,
                 strerror(errno));
        goto fail;
    }
    if (write_all(fd, data, len) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot close %s: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, final,
                 strerror(errno));
        goto fail;
    }
    free(tmp);
    tmp = NULL;
    if (fsync_dir(dir) != 0) {
        snprintf(err, errlen, "cannot sync directory %s: %s", dir,
                 strerror(errno));
        goto fail;
    }

done:
    if (sha_out)
        memcpy(sha_out, hex, 65);
    free(final);
    free(dir);
    return SF_OK;

fail:;
    /* Out of files, space or memory is the machine's state, not this
     * image's fault: SF_EUNAVAILABLE tells the caller to try again later. */
    int e = errno;
    int resource = e == EMFILE || e == ENFILE || e == ENOSPC || e == EDQUOT || e == ENOMEM;
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(final);
    free(dir);
    if (held)
        imagefile_release(hex);
    return resource ? SF_EUNAVAILABLE : SF_EINTERNAL;
}

sf_status imagefile_store(const char *data_dir, const void *data, size_t len,
                          char sha_out[65], char *err, size_t errlen)
{
    return store_bytes(data_dir, data, len, sha_out, err, errlen, 0);
}

sf_status imagefile_store_held(const char *data_dir, const void *data, size_t len,
                               char sha_out[65], char *err, size_t errlen)
{
    return store_bytes(data_dir, data, len, sha_out, err, errlen, 1);
}

char *imagefile_path(const char *data_dir, const char *sha_hex)
{
    if (!data_dir || !valid_hex(sha_hex))
        return NULL;
    return xasprintf("%s/images/%.2s/%s.png", data_dir, sha_hex, sha_hex);
}

int imagefile_remove(const char *data_dir, const char *sha_hex)
{
    char *path = imagefile_path(data_dir, sha_hex);
    if (!path)
        return -1;
    int rc = 0;
    if (unlink(path) != 0 && errno != ENOENT)
        rc = -1;
    free(path);
    return rc;
}

int imagefile_read(const char *data_dir, const char *sha_hex,
                   unsigned char **out, size_t *len)
{
    char *path = imagefile_path(data_dir, sha_hex);
    unsigned char *buf = NULL;
    int fd = -1;

    if (!path || !out || !len)
        goto fail;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        goto fail;
    size_t size = (size_t)st.st_size, got = 0;
    buf = xmalloc(size);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (n == 0)
            goto fail; /* shrank under us: not the file we were told of */
        got += (size_t)n;
    }
    close(fd);
    free(path);
    *out = buf;
    *len = size;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return -1;
}

int imagefile_sweep_temps(const char *data_dir)
{
    char *root = xasprintf("%s/images", data_dir);
    DIR *top = opendir(root);
    int removed = 0;
    struct dirent *d;
    while (top && (d = readdir(top))) {
        if (d->d_name[0] == '.' || strlen(d->d_name) != 2)
            continue;
        char *sub = xasprintf("%s/%s", root, d->d_name);
        DIR *dir = opendir(sub);
        struct dirent *f;
        while (dir && (f = readdir(dir))) {
            if (strncmp(f->d_name, ".tmp-", 5) != 0)
                continue;
            char *path = xasprintf("%s/%s", sub, f->d_name);
            if (unlink(path) == 0)
                removed++;
            free(path);
        }
        if (dir)
            closedir(dir);
        free(sub);
    }
    if (top)
        closedir(top);
    free(root);
    return removed;
}
