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

static char base[] = "/tmp/sf-imagefiles-XXXXXX"; /* made by main */
static const char payload[] = "\x89PNG\r\n\x1a\n pretend image bytes";
#define PLEN (sizeof payload - 1)

/* A data directory of its own under base, not created yet (the caller
 * frees the name). */
static char *new_data_dir(const char *name)
{
    return xasprintf("%s/%s", base, name);
}

/* Stores payload in data_dir; its digest goes to sha. */
static void store_payload(const char *data_dir, char sha[65])
{
    char err[256];
    CHECK(imagefile_store(data_dir, payload, PLEN, sha, err, sizeof err) ==
          SF_OK);
}

/* The prefix directory of payload's digest in data_dir (the caller frees). */
static char *payload_prefix_dir(const char *data_dir)
{
    char want[65];
    sha256_hex(payload, PLEN, want);
    return xasprintf("%s/images/%.2s", data_dir, want);
}

/* payload, stored in a data directory of its own. */
struct stored {
    char *data_dir;
    char sha[65];
    char *path; /* of its file */
};

static struct stored store_fresh(const char *name)
{
    struct stored st;
    st.data_dir = new_data_dir(name);
    store_payload(st.data_dir, st.sha);
    st.path = imagefile_path(st.data_dir, st.sha);
    return st;
}

static void stored_free(struct stored *st)
{
    free(st->path);
    free(st->data_dir);
}

/* data_dir holds payload under sha. */
static void check_holds_payload(const char *data_dir, const char *sha)
{
    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_read(data_dir, sha, &back, &blen) == 0);
    CHECK(blen == PLEN && back && memcmp(back, payload, PLEN) == 0);
    free(back);
}

/* No temp file is left beside payload's file in data_dir. */
static void check_no_temp_files(const char *data_dir)
{
    char *prefix_dir = payload_prefix_dir(data_dir);
    CHECK(count_temp_files(prefix_dir) == 0);
    free(prefix_dir);
}

/* The first store creates the tree and lays the file out by digest. */
static void test_first_store_lays_out_by_digest(void)
{
    char *data_dir = new_data_dir("layout");
    char err[512] = "", sha[65], want[65];
    CHECK(imagefile_store(data_dir, payload, PLEN, sha, err, sizeof err) ==
          SF_OK);
    CHECK_STR(err, "");
    sha256_hex(payload, PLEN, want);
    CHECK_STR(sha, want);

    char *path = imagefile_path(data_dir, sha);
    char *expect = xasprintf("%s/images/%.2s/%s.png", data_dir, want, want);
    CHECK_STR(path, expect);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(S_ISREG(st.st_mode) && (size_t)st.st_size == PLEN);
    CHECK((st.st_mode & 0777) == 0644);
    check_holds_payload(data_dir, sha);
    free(expect);
    free(path);
    free(data_dir);
}

/* Storing the same bytes again is a no-op: same name, same inode, no temp
 * file left. */
static void test_storing_again_is_a_no_op(void)
{
    struct stored s = store_fresh("again");
    char sha2[65];
    struct stat st1, st2;
    CHECK(stat(s.path, &st1) == 0);
    store_payload(s.data_dir, sha2);
    CHECK_STR(sha2, s.sha);
    CHECK(stat(s.path, &st2) == 0);
    CHECK(st1.st_ino == st2.st_ino);
    check_no_temp_files(s.data_dir);
    stored_free(&s);
}

/* A wrong-sized file under the final name (a past bug) is replaced. */
static void test_wrong_sized_file_is_replaced(void)
{
    struct stored s = store_fresh("wrong-size");
    CHECK(write_file(s.path, "short") == 0);
    store_payload(s.data_dir, s.sha);
    check_holds_payload(s.data_dir, s.sha);
    check_no_temp_files(s.data_dir);
    stored_free(&s);
}

static void test_zero_bytes_are_storable(void)
{
    char *data_dir = new_data_dir("empty");
    char err[256], sha[65];
    CHECK(imagefile_store(data_dir, "", 0, sha, err, sizeof err) == SF_OK);
    CHECK_STR(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_read(data_dir, sha, &back, &blen) == 0);
    CHECK(blen == 0);
    free(back);
    free(data_dir);
}

static void test_malformed_digests_never_become_paths(void)
{
    struct stored s = store_fresh("malformed");
    CHECK(imagefile_path(s.data_dir, "../../etc/passwd") == NULL);
    CHECK(imagefile_path(s.data_dir, "") == NULL);
    CHECK(imagefile_path(s.data_dir, NULL) == NULL);
    char upper[65];
    memcpy(upper, s.sha, 65);
    upper[0] = 'A';
    CHECK(imagefile_path(s.data_dir, upper) == NULL);
    char longer[70];
    snprintf(longer, sizeof longer, "%s00", s.sha);
    CHECK(imagefile_path(s.data_dir, longer) == NULL);
    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_remove(s.data_dir, "..") == -1);
    CHECK(imagefile_read(s.data_dir, "..", &back, &blen) == -1);
    stored_free(&s);
}

/* Remove, then remove again, then read fails. */
static void test_remove_twice_then_read_fails(void)
{
    struct stored s = store_fresh("remove");
    CHECK(imagefile_remove(s.data_dir, s.sha) == 0);
    CHECK(access(s.path, F_OK) != 0 && errno == ENOENT);
    CHECK(imagefile_remove(s.data_dir, s.sha) == 0);
    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_read(s.data_dir, s.sha, &back, &blen) == -1);
    CHECK(back == NULL);
    stored_free(&s);
}

/* Threads storing the same bytes at once all succeed, leaving one file and
 * no temp files. */
static void test_concurrent_stores_agree(void)
{
    enum { T = 8 };
    char *data_dir = new_data_dir("race");
    static unsigned char big[50000];
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
    unsigned char *back = NULL;
    size_t blen = 0;
    CHECK(imagefile_read(data_dir, rc[0].sha, &back, &blen) == 0);
    CHECK(blen == sizeof big && back && memcmp(back, big, blen) == 0);
    free(back);
    char *d = xasprintf("%s/images/%.2s", data_dir, rc[0].sha);
    CHECK(count_temp_files(d) == 0);
    free(d);
    free(data_dir);
}

/* A data directory that is a regular file: a sentence, no crash. */
static void test_data_dir_that_is_a_file(void)
{
    char *file_dir = new_data_dir("plainfile");
    char err[512] = "", sha[65];
    CHECK(write_file(file_dir, "x") == 0);
    CHECK(imagefile_store(file_dir, payload, PLEN, sha, err, sizeof err) ==
          SF_EINTERNAL);
    CHECK(strstr(err, strerror(ENOTDIR)) != NULL);
    CHECK(strstr(err, file_dir) != NULL);
    /* err may be omitted. */
    CHECK(imagefile_store(file_dir, payload, PLEN, sha, NULL, 0) ==
          SF_EINTERNAL);
    free(file_dir);
}

/* The prefix directory's name taken by a regular file. */
static void test_prefix_dir_name_taken_by_a_file(void)
{
    char *dd = new_data_dir("blocked");
    char *images = xasprintf("%s/images", dd);
    char *blocker = payload_prefix_dir(dd);
    char err[512] = "", sha[65];
    CHECK(mkdir(dd, 0755) == 0 && mkdir(images, 0755) == 0);
    CHECK(write_file(blocker, "x") == 0);
    CHECK(imagefile_store(dd, payload, PLEN, sha, err, sizeof err) ==
          SF_EINTERNAL);
    CHECK(err[0] != '\0');
    free(blocker);
    free(images);
    free(dd);
}

/* An unwritable prefix directory: the temp file cannot be made (root
 * ignores permissions, so this only runs as another user). */
static void test_unwritable_prefix_dir(void)
{
    if (geteuid() == 0)
        return;
    struct stored s = store_fresh("unwritable"); /* makes the prefix directory */
    char err[512] = "";
    CHECK(imagefile_remove(s.data_dir, s.sha) == 0);
    char *prefix_dir = payload_prefix_dir(s.data_dir);
    CHECK(chmod(prefix_dir, 0555) == 0);
    CHECK(imagefile_store(s.data_dir, payload, PLEN, s.sha, err, sizeof err) ==
          SF_EINTERNAL);
    CHECK(strstr(err, strerror(EACCES)) != NULL);
    CHECK(chmod(prefix_dir, 0755) == 0);
    check_no_temp_files(s.data_dir);
    free(prefix_dir);
    stored_free(&s);
}

int main(void)
{
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    test_first_store_lays_out_by_digest();
    test_storing_again_is_a_no_op();
    test_wrong_sized_file_is_replaced();
    test_zero_bytes_are_storable();
    test_malformed_digests_never_become_paths();
    test_remove_twice_then_read_fails();
    test_concurrent_stores_agree();
    test_data_dir_that_is_a_file();
    test_prefix_dir_name_taken_by_a_file();
    test_unwritable_prefix_dir();
    rm_rf(base);
    UNIT_END("imagefiles");
}
