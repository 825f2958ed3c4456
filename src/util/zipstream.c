/*
 * zipstream.c: libarchive's zip writer, turned from "push" into "pull".
 *
 * libarchive writes an archive by calling a write callback with each block
 * it produces; ours appends the block to the caller's buffer. Blocking is
 * off (bytes_per_block 0), so every piece reaches the buffer at once, and
 * nothing is padded at the end. libarchive never seeks on a callback
 * archive: a regular file's local header is followed by its data and then a
 * data descriptor (its CRC-32 and sizes), and with a size that is not known
 * up front (the manifests, written row by row) the entry gets ZIP64 fields
 * from the start. Entries and offsets past 4 GiB, and more than 65,535
 * entries, get ZIP64 records as needed (libarchive decides).
 */
#include "util/zipstream.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>

struct zipstream {
    struct archive *a;
    struct archive_entry *entry;
    struct strbuf *out; /* NULL once abandoned: output is dropped */
};

static la_ssize_t on_write(struct archive *a, void *cls, const void *buf, size_t len)
{
    struct zipstream *z = cls;
    if (z->out)
        sb_append(z->out, buf, len);
    return (la_ssize_t)len;
}

struct zipstream *zipstream_new(struct strbuf *out, char *err, size_t errlen)
{
    struct zipstream *z = xcalloc(1, sizeof(*z));
    z->out = out;
    z->a = archive_write_new();
    z->entry = archive_entry_new();
    if (!z->a || !z->entry || archive_write_set_format_zip(z->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(z->a, 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(z->a, 1) != ARCHIVE_OK ||
        archive_write_open(z->a, z, NULL, on_write, NULL) != ARCHIVE_OK) {
        snprintf(err, errlen, "cannot start a zip archive: %s",
                 z->a && archive_error_string(z->a) ? archive_error_string(z->a) : "no memory");
        zipstream_free(z);
        return NULL;
    }
    return z;
}

int zipstream_entry(struct zipstream *z, const char *name, long long size,
                    enum zip_method method, time_t mtime)
{
    archive_entry_clear(z->entry);
    archive_entry_set_pathname(z->entry, name);
    archive_entry_set_filetype(z->entry, AE_IFREG);
    archive_entry_set_perm(z->entry, 0644);
    archive_entry_set_mtime(z->entry, mtime, 0);
    if (size >= 0)
        archive_entry_set_size(z->entry, size);
    else
        archive_entry_unset_size(z->entry);
    int rc = method == ZIP_STORE ? archive_write_zip_set_compression_store(z->a)
                                 : archive_write_zip_set_compression_deflate(z->a);
    if (rc != ARCHIVE_OK)
        return -1;
    rc = archive_write_header(z->a, z->entry);
    return rc == ARCHIVE_OK || rc == ARCHIVE_WARN ? 0 : -1;
}

int zipstream_write(struct zipstream *z, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        la_ssize_t n = archive_write_data(z->a, p, len);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int zipstream_finish(struct zipstream *z)
{
    return archive_write_close(z->a) == ARCHIVE_OK ? 0 : -1;
}

const char *zipstream_error(const struct zipstream *z)
{
    const char *e = archive_error_string(z->a);
    return e ? e : "unknown zip writer error";
}

void zipstream_free(struct zipstream *z)
{
    if (!z)
        return;
    if (z->a) {
        /* An archive abandoned half-way (the client went away) is closed
         * into nothing: archive_write_fail would skip the close, but then
         * libarchive 3.6 leaks its output filter's state. */
        z->out = NULL;
        archive_write_free(z->a);
    }
    if (z->entry)
        archive_entry_free(z->entry);
    free(z);
}
