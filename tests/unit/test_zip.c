/*
 * test_zip.c: the pieces of an album download (api/download.c) that can be
 * checked without a server: the zip writer (util/zipstream.c) read back by
 * libarchive's reader, safe names and Content-Disposition
 * (util/filename.c), and the holds that keep a file on disk while a
 * download still has to send it (store/imagefiles.c).
 */
#include <archive.h>
#include <archive_entry.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "store/imagefiles.h"
#include "unit.h"
#include "util/filename.h"
#include "util/zipstream.h"

/* Reads the zip in buf back: names joined by ' ' into names, the bytes of
 * entry want_name into got (up to gotcap). Number of entries, or -1. */
static int read_back(const char *buf, size_t len, char *names, size_t ncap,
                     const char *want_name, char *got, size_t gotcap, size_t *gotlen)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        fprintf(stderr, "open: %s\n", archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    int n = 0;
    names[0] = '\0';
    struct archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        snprintf(names + strlen(names), ncap - strlen(names), "%s%s", n ? " " : "", name);
        if (want_name && strcmp(name, want_name) == 0) {
            la_ssize_t r = archive_read_data(a, got, gotcap);
            *gotlen = r > 0 ? (size_t)r : 0;
        } else {
            archive_read_data_skip(a);
        }
        n++;
    }
    if (rc != ARCHIVE_EOF) {
        fprintf(stderr, "read: %s\n", archive_error_string(a));
        n = -1;
    }
    archive_read_free(a);
    return n;
}

static void test_zipstream(void)
{
    struct strbuf piece, all;
    sb_init(&piece);
    sb_init(&all);
    char err[256];
    struct zipstream *z = zipstream_new(&piece, err, sizeof(err));
    CHECK(z != NULL);
    if (!z)
        return;
    static char big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7 + i / 300);
    const char text[] = "position,file\r\n1,\"01_a.png\"\r\n";
    size_t most = 0;
    /* the caller drains what each call wrote before the next one */
#define DRAIN()                                                                \
    do {                                                                       \
        sb_append(&all, piece.data, piece.len);                                \
        if (piece.len > most)                                                  \
            most = piece.len;                                                  \
        piece.len = 0;                                                         \
    } while (0)
    CHECK(zipstream_entry(z, "manifest.csv", -1, ZIP_DEFLATE, 1700000000) == 0);
    DRAIN();
    CHECK(zipstream_write(z, text, strlen(text)) == 0);
    DRAIN();
    CHECK(zipstream_entry(z, "01_a.png", sizeof(big), ZIP_STORE, 1700000000) == 0);
    DRAIN();
    for (size_t off = 0; off < sizeof(big); off += 65536) {
        size_t n = sizeof(big) - off < 65536 ? sizeof(big) - off : 65536;
        CHECK(zipstream_write(z, big + off, n) == 0);
        DRAIN();
    }
    CHECK(zipstream_entry(z, "02_b.png", 0, ZIP_STORE, 1700000000) == 0);
    DRAIN();
    CHECK(zipstream_finish(z) == 0);
    DRAIN();
    zipstream_free(z);
    /* a stored piece is about what was written: nothing piles up */
    CHECK(most < 65536 + 4096);
    /* stored: the file's bytes are in the archive as they are */
    CHECK(memmem(all.data, all.len, big, sizeof(big)) != NULL);

    char names[256], *got = malloc(sizeof(big));
    size_t gotlen = 0;
    CHECK(read_back(all.data, all.len, names, sizeof(names), "01_a.png", got, sizeof(big), &gotlen) == 3);
    CHECK_STR(names, "manifest.csv 01_a.png 02_b.png");
    CHECK(gotlen == sizeof(big) && memcmp(got, big, sizeof(big)) == 0);
    CHECK(read_back(all.data, all.len, names, sizeof(names), "manifest.csv", got, sizeof(big), &gotlen) == 3);
    CHECK(gotlen == strlen(text) && memcmp(got, text, gotlen) == 0);
    free(got);

    /* an archive with no entries is a valid empty zip */
    all.len = 0;
    z = zipstream_new(&all, err, sizeof(err));
    CHECK(z && zipstream_finish(z) == 0);
    zipstream_free(z);
    CHECK(all.len == 22 && memcmp(all.data, "PK\x05\x06", 4) == 0);

    /* one abandoned half-way (the client left) frees without writing on */
    all.len = 0;
    z = zipstream_new(&all, err, sizeof(err));
    CHECK(z && zipstream_entry(z, "x.png", 10, ZIP_STORE, 0) == 0 && zipstream_write(z, "12345", 5) == 0);
    size_t before = all.len;
    zipstream_free(z);
    CHECK(all.len == before);
    sb_free(&piece);
    sb_free(&all);
}

/* More than 65,535 entries need the ZIP64 end records; libarchive writes
 * them on its own. Read back by libarchive's reader and, when it is there,
 * by unzip (another implementation). */
static void test_zip64_entry_count(void)
{
    struct strbuf out;
    sb_init(&out);
    char err[256], path[] = "/tmp/sf-zip64-XXXXXX";
    struct zipstream *z = zipstream_new(&out, err, sizeof(err));
    int fd = mkstemp(path), ok = z && fd >= 0;
    for (int i = 0; ok && i < 70000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%05d.png", i);
        ok = zipstream_entry(z, name, 3, ZIP_STORE, 0) == 0 && zipstream_write(z, "abc", 3) == 0 &&
             write(fd, out.data, out.len) == (ssize_t)out.len;
        out.len = 0;
    }
    ok = ok && zipstream_finish(z) == 0 && write(fd, out.data, out.len) == (ssize_t)out.len;
    CHECK(ok);
    zipstream_free(z);
    if (fd >= 0)
        close(fd);
    FILE *f = fopen(path, "rb");
    struct strbuf all;
    sb_init(&all);
    char buf[65536];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        sb_append(&all, buf, n);
    if (f)
        fclose(f);
    char names[64], got[8];
    size_t gotlen = 0;
    CHECK(read_back(all.data, all.len, names, sizeof(names), "69999.png", got, sizeof(got), &gotlen) == 70000);
    CHECK(gotlen == 3 && memcmp(got, "abc", 3) == 0);
    if (access("/usr/bin/unzip", X_OK) == 0) {
        char *cmd = xasprintf("unzip -tq %s >/dev/null 2>&1", path);
        CHECK(system(cmd) == 0);
        free(cmd);
    }
    unlink(path);
    sb_free(&all);
    sb_free(&out);
}

static void test_slug(void)
{
    char out[64];
    CHECK(filename_slug("Seven of Hearts", 60, out, sizeof(out)) == 15);
    CHECK_STR(out, "seven_of_hearts");
    filename_slug("  ♥ Ace!! ", 60, out, sizeof(out));
    CHECK_STR(out, "ace");
    filename_slug("../../etc/passwd", 60, out, sizeof(out));
    CHECK_STR(out, "etc_passwd");
    filename_slug("A-b_c.PNG", 60, out, sizeof(out));
    CHECK_STR(out, "a-b_c_png");
    filename_slug("Ω 10 — Wheel", 60, out, sizeof(out));
    CHECK_STR(out, "10_wheel");
    CHECK(filename_slug("♠♥", 60, out, sizeof(out)) == 0);
    CHECK_STR(out, "");
    CHECK(filename_slug(NULL, 60, out, sizeof(out)) == 0);
    /* cut at max_len, never ending in '_' */
    filename_slug("abcd efgh", 5, out, sizeof(out));
    CHECK_STR(out, "abcd");
    filename_slug("abcdefgh", 60, out, 4);
    CHECK_STR(out, "abc");
}

static void test_disposition(void)
{
    char out[200];
    filename_disposition("Ma Deck ♥ \"x\"", ".zip", "album_1", out, sizeof(out));
    CHECK_STR(out, "attachment; filename=\"ma_deck_x.zip\"; "
                   "filename*=UTF-8''Ma%20Deck%20%E2%99%A5%20%22x%22.zip");
    filename_disposition("♠♠", ".zip", "album_7", out, sizeof(out));
    CHECK_STR(out, "attachment; filename=\"album_7.zip\"; filename*=UTF-8''%E2%99%A0%E2%99%A0.zip");
    filename_disposition("", ".zip", "album_7", out, sizeof(out));
    CHECK_STR(out, "attachment; filename=\"album_7.zip\"; filename*=UTF-8''album_7.zip");
    /* too long for the buffer: cut between characters, the extension kept */
    char longname[400] = "";
    for (int i = 0; i < 60; i++)
        strcat(longname, "♥");
    filename_disposition(longname, ".zip", "a", out, 120);
    size_t n = strlen(out);
    CHECK(n < 120 && strcmp(out + n - 4, ".zip") == 0);
    CHECK(strstr(out, "%E2%99%A5.zip") != NULL);
}

/* Whatever the bytes, a slug is [a-z0-9_-] with no '_' at either end,
 * and a Content-Disposition is printable ASCII whose quoted name holds no
 * quote or backslash and whose filename* holds only attr-chars and %XX. */
static void test_names_any_bytes(void)
{
    srand(12);
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        char in[80];
        size_t n = (size_t)(rand() % 79);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)(rand() % 255 + 1);
        in[n] = '\0';
        char slug[64], disp[160];
        size_t len = filename_slug(in, 60, slug, sizeof(slug));
        bad += len != strlen(slug) || len > 60 || (len && (slug[0] == '_' || slug[len - 1] == '_'));
        for (size_t i = 0; i < len; i++)
            bad += !((slug[i] >= 'a' && slug[i] <= 'z') || (slug[i] >= '0' && slug[i] <= '9') ||
                     slug[i] == '_' || slug[i] == '-');
        filename_disposition(in, ".zip", "album_1", disp, sizeof(disp));
        const char *q1 = strchr(disp, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        const char *star = strstr(disp, "filename*=UTF-8''");
        bad += !q1 || !q2 || !star || star < q2;
        for (const char *p = disp; *p; p++)
            bad += (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e;
        for (const char *p = q1 ? q1 + 1 : disp; q2 && p < q2; p++)
            bad += *p == '\\';
        for (const char *p = star ? star + 17 : disp; star && *p; p++)
            bad += !(strchr("!#$&+-.^_`|~%", *p) || (*p >= 'a' && *p <= 'z') ||
                     (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
        bad += strcmp(disp + strlen(disp) - 4, ".zip") != 0;
    }
    CHECK(bad == 0);
}

static int exec1(const char *sql)
{
    return sqlite3_exec(db_conn(), sql, NULL, NULL, NULL);
}

static void test_holds(const char *data_dir)
{
    char sha[65], err[256];
    CHECK(imagefile_store(data_dir, "hold me", 7, sha, err, sizeof(err)) == SF_OK);
    char *path = imagefile_path(data_dir, sha);
    struct stat st;
    long long size = 0;

    /* held twice (two downloads): a delete waits for the last release */
    CHECK(imagefile_hold_existing(data_dir, sha, &size) == 0 && size == 7);
    CHECK(imagefile_hold_existing(data_dir, sha, &size) == 0);
    imagefile_remove_if_unused(data_dir, sha);
    CHECK(stat(path, &st) == 0);
    imagefile_remove_if_unused(data_dir, sha); /* a second row with these bytes */
    CHECK(stat(path, &st) == 0);
    imagefile_release(sha);
    CHECK(stat(path, &st) == 0);
    imagefile_release(sha);
    CHECK(stat(path, &st) != 0);
    /* gone: nothing to hold */
    CHECK(imagefile_hold_existing(data_dir, sha, &size) < 0);
    CHECK(imagefile_hold_existing(data_dir, "not-a-digest", &size) < 0);

    /* a release without a removal put off removes nothing */
    CHECK(imagefile_store(data_dir, "hold me", 7, sha, err, sizeof(err)) == SF_OK);
    CHECK(imagefile_hold_existing(data_dir, sha, &size) == 0);
    imagefile_release(sha);
    CHECK(stat(path, &st) == 0);

    /* a removal put off, then a row that uses the file again: it stays */
    char sql[300];
    CHECK(imagefile_hold_existing(data_dir, sha, &size) == 0);
    imagefile_remove_if_unused(data_dir, sha);
    snprintf(sql, sizeof(sql),
             "INSERT INTO images (width, height, sha256, bytes, created_at) "
             "VALUES (1, 1, '%s', 7, '2026-01-01T00:00:00Z')", sha);
    CHECK(exec1(sql) == SQLITE_OK);
    imagefile_release(sha);
    CHECK(stat(path, &st) == 0);
    free(path);
}

int main(void)
{
    test_zipstream();
    test_zip64_entry_count();
    test_slug();
    test_disposition();
    test_names_any_bytes();

    char dir[] = "/tmp/sf-zip-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *db = xasprintf("%s/db", dir), err[256];
    CHECK(db_open(db, err, sizeof(err)) == 0);
    test_holds(dir);
    db_close_thread();
    unit_remove_db(db);
    free(db);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    UNIT_END("zip");
}
