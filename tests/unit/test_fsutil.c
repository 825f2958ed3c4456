/*
 * test_fsutil.c: mkdir -p and read_file (util/fsutil.c).
 *
 * Everything happens under a fresh directory in /tmp that is removed at the
 * end; the failure cases (a file in the way, a file too large, a directory
 * where a file should be) get as many checks as the happy ones, with errno,
 * because callers word their messages from it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

static char root[64];

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_mkdir_p(void)
{
    char *deep = xasprintf("%s/a/b/c", root);
    CHECK(mkdir_p(deep, 0755) == 0);
    CHECK(is_dir(deep));
    CHECK(mkdir_p(deep, 0755) == 0); /* exists: fine */
    free(deep);

    char *messy = xasprintf("%s//d///e/", root);
    CHECK(mkdir_p(messy, 0755) == 0);
    free(messy);
    char *clean = xasprintf("%s/d/e", root);
    CHECK(is_dir(clean));
    free(clean);

    char *durable = xasprintf("%s/f/g", root);
    CHECK(mkdir_p_durable(durable, 0700) == 0);
    CHECK(is_dir(durable));
    struct stat st;
    CHECK(stat(durable, &st) == 0 && (st.st_mode & 0777) == 0700);
    free(durable);

    /* A file in the way, as the last part or in the middle. */
    char *file = xasprintf("%s/plain", root);
    write_text(file, "x");
    errno = 0;
    CHECK(mkdir_p(file, 0755) == -1 && errno == ENOTDIR);
    char *under = xasprintf("%s/plain/sub", root);
    errno = 0;
    CHECK(mkdir_p(under, 0755) == -1 && errno == ENOTDIR);
    free(under);
    unlink(file);
    free(file);

    errno = 0;
    CHECK(mkdir_p("", 0755) == -1 && errno == ENOENT);
    CHECK(mkdir_p("/", 0755) == 0);
    /* procfs takes no directories, not even from root: the error of the
     * component that failed comes back. */
    errno = 0;
    CHECK(mkdir_p("/proc/sf-no/such", 0755) == -1 && errno != 0);
}

static void test_read_file(void)
{
    char *path = xasprintf("%s/file.txt", root);
    write_text(path, "hello\n");
    unsigned char *buf;
    size_t n;
    CHECK(read_file(path, 100, &buf, &n) == 0);
    CHECK(n == 6 && memcmp(buf, "hello\n", 6) == 0 && buf[6] == '\0');
    free(buf);
    /* Exactly at the cap is fine; one byte over is EFBIG. */
    CHECK(read_file(path, 6, &buf, &n) == 0 && n == 6);
    free(buf);
    errno = 0;
    CHECK(read_file(path, 5, &buf, &n) == -1 && errno == EFBIG && buf == NULL && n == 0);

    write_text(path, "");
    CHECK(read_file(path, 100, &buf, &n) == 0 && n == 0 && buf && buf[0] == '\0');
    free(buf);
    unlink(path);

    errno = 0;
    CHECK(read_file(path, 100, &buf, &n) == -1 && errno == ENOENT && buf == NULL);
    errno = 0;
    CHECK(read_file(root, 100, &buf, &n) == -1 && errno == EISDIR);
    errno = 0;
    CHECK(read_file("/dev/null", 100, &buf, &n) == -1 && errno == EINVAL);
    free(path);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/sf-fsutil-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_mkdir_p();
    test_read_file();
    char *cmd = xasprintf("rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    free(cmd);
    UNIT_END("fsutil");
}
