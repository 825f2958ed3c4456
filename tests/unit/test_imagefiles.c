/*
 * test_imagefiles.c: the content-addressed image tree.
 *
 * Checks the on-disk layout other parts rely on (HTTP serving, cleanup), that
 * storing is idempotent and leaves no temp files, that concurrent stores of
 * the same bytes agree, and that unusable data directories fail with a
 * sentence rather than a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/imagefiles.h"
#include "unit.h"
#include "util/hash.h"
#include "util/xalloc.h"

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        chmod(path, 0755);
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries in dir whose names start with ".tmp-". */
static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, ".tmp-", 5) == 0)
            n++;
    closedir(d);
    return n;
}

static int write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fputs(s, f);
    return fclose(f);
}

struct racer {
    const char *data_dir;
    const unsigned char *data;
    size_t len;
    int failures;
    char sha[65];
};

static void *race_store(void *arg)
{
    struct racer *r = arg;
    char err[256];
    for (int i = 0; i < 40; i++)
        if (imagefile_store(r->data_dir, r->data, r->len, r->sha, err,
                            sizeof err) != SF_OK)
            r->failures++;
    return NULL;
}

int main(void)
{
    char base[] = "/tmp/sf-imagefiles-XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char *data_dir = xasprintf("%s/data", base); /* not created yet */
    char err[512];
    char sha[65], want[65];
    const char payload[] = "\x89PNG\r\n\x1a\n pretend image bytes";
    size_t plen = sizeof payload - 1;

    /* First store creates the tree and lays the file out by digest. */
    err[0] = '\0';
    CHECK(imagefile_store(data_dir, payload, plen, sha, err, sizeof err) ==
          SF_OK);
    CHECK_STR(err, "");
    sha256_hex(payload, plen, want);
    CHECK_STR(sha, want);

    char *path = imagefile_path(data_dir, sha);
    char *expect = xasprintf("%s/images/%.2s/%s.png", data_dir, want, want);
    CHECK_STR(path, expect);
    struct stat st1, st2;
    CHECK(stat(path, &st1) == 0);
    CHECK(S_ISREG(st1.st_mode) && (size_t)st1.st_size == plen);
    CHECK((st1.st_mode & 0777) == 0644);

    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_read(data_dir, sha, &back, &blen) == 0);
    CHECK(blen == plen && back && memcmp(back, payload, plen) == 0);
    free(back);

    /* Storing the same bytes again is a no-op: same name, same inode. */
    char sha2[65];
    CHECK(imagefile_store(data_dir, payload, plen, sha2, err, sizeof err) ==
          SF_OK);
    CHECK_STR(sha2, sha);
    CHECK(stat(path, &st2) == 0);
    CHECK(st1.st_ino == st2.st_ino);

    char *prefix_dir = xasprintf("%s/images/%.2s", data_dir, want);
    CHECK(count_temp_files(prefix_dir) == 0);

    /* A wrong-sized file under the final name (a past bug) is replaced. */
    CHECK(write_file(path, "short") == 0);
    CHECK(imagefile_store(data_dir, payload, plen, sha2, err, sizeof err) ==
          SF_OK);
    CHECK(imagefile_read(data_dir, sha, &back, &blen) == 0);
    CHECK(blen == plen && back && memcmp(back, payload, plen) == 0);
    free(back);
    CHECK(count_temp_files(prefix_dir) == 0);

    /* Zero bytes are storable too. */
    CHECK(imagefile_store(data_dir, "", 0, sha2, err, sizeof err) == SF_OK);
    CHECK_STR(sha2, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(imagefile_read(data_dir, sha2, &back, &blen) == 0);
    CHECK(blen == 0);
    free(back);

    /* Malformed digests never become paths. */
    CHECK(imagefile_path(data_dir, "../../etc/passwd") == NULL);
    CHECK(imagefile_path(data_dir, "") == NULL);
    CHECK(imagefile_path(data_dir, NULL) == NULL);
    char upper[65];
    memcpy(upper, sha, 65);
    upper[0] = 'A';
    CHECK(imagefile_path(data_dir, upper) == NULL);
    char longer[70];
    snprintf(longer, sizeof longer, "%s00", sha);
    CHECK(imagefile_path(data_dir, longer) == NULL);
    CHECK(imagefile_remove(data_dir, "..") == -1);
    CHECK(imagefile_read(data_dir, "..", &back, &blen) == -1);

    /* Remove, then remove again, then read fails. */
    CHECK(imagefile_remove(data_dir, sha) == 0);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT);
    CHECK(imagefile_remove(data_dir, sha) == 0);
    back = NULL;
    CHECK(imagefile_read(data_dir, sha, &back, &blen) == -1);
    CHECK(back == NULL);

    /* Threads storing the same bytes at once all succeed, leaving one file
     * and no temp files. */
    {
        enum { T = 8 };
        unsigned char big[50000];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)(i * 2654435761u >> 13);
        pthread_t th[T];
        struct racer rc[T];
        for (int i = 0; i < T; i++) {
            rc[i] = (struct racer){data_dir, big, sizeof big, 0, ""};
            pthread_create(&th[i], NULL, race_store, &rc[i]);
        }
        int failures = 0, agree = 1;
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            failures += rc[i].failures;
            if (strcmp(rc[i].sha, rc[0].sha) != 0)
                agree = 0;
        }
        CHECK(failures == 0);
        CHECK(agree);
        CHECK(imagefile_read(data_dir, rc[0].sha, &back, &blen) == 0);
        CHECK(blen == sizeof big && back && memcmp(back, big, blen) == 0);
        free(back);
        char *d = xasprintf("%s/images/%.2s", data_dir, rc[0].sha);
        CHECK(count_temp_files(d) == 0);
        free(d);
    }

    /* A data directory that is a regular file: a sentence, no crash. */
    {
        char *file_dir = xasprintf("%s/plainfile", base);
        CHECK(write_file(file_dir, "x") == 0);
        err[0] = '\0';
        CHECK(imagefile_store(file_dir, payload, plen, sha2, err, sizeof err) ==
              SF_EINTERNAL);
        CHECK(strstr(err, strerror(ENOTDIR)) != NULL);
        CHECK(strstr(err, file_dir) != NULL);
        /* err may be omitted. */
        CHECK(imagefile_store(file_dir, payload, plen, sha2, NULL, 0) ==
              SF_EINTERNAL);
        free(file_dir);
    }

    /* The prefix directory's name taken by a regular file. */
    {
        char *dd = xasprintf("%s/data2", base);
        char *images = xasprintf("%s/images", dd);
        char *blocker = xasprintf("%s/%.2s", images, want);
        CHECK(mkdir(dd, 0755) == 0 && mkdir(images, 0755) == 0);
        CHECK(write_file(blocker, "x") == 0);
        err[0] = '\0';
        CHECK(imagefile_store(dd, payload, plen, sha2, err, sizeof err) ==
              SF_EINTERNAL);
        CHECK(err[0] != '\0');
        free(blocker);
        free(images);
        free(dd);
    }

    /* An unwritable prefix directory: the temp file cannot be made (root
     * ignores permissions, so this only runs as another user). */
    if (geteuid() != 0) {
        CHECK(chmod(prefix_dir, 0555) == 0);
        err[0] = '\0';
        CHECK(imagefile_store(data_dir, payload, plen, sha2, err,
                              sizeof err) == SF_EINTERNAL);
        CHECK(strstr(err, strerror(EACCES)) != NULL);
        CHECK(chmod(prefix_dir, 0755) == 0);
        CHECK(count_temp_files(prefix_dir) == 0);
    }

    free(prefix_dir);
    free(expect);
    free(path);
    free(data_dir);
    rm_rf(base);
    UNIT_END("imagefiles");
}
