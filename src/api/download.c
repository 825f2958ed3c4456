/*
 * download.c: GET /api/albums/:id/download.zip, an album taken home as one
 * zip file, written while it is sent, and GET /api/runs/:id/download.zip,
 * the images a run has made so far (a running run has no album yet).
 * docs/download.md.
 *
 * The handler takes a snapshot: inside the request's one read snapshot it
 * reads the set's rows that the caller may see (req_scope: an image the
 * caller may not see is never in the zip), holds each image file so that a
 * delete cannot remove it before it is sent (store/imagefiles.c), names the
 * entries, and writes manifest.json and manifest.csv into two unlinked
 * temporary files. What stays in memory per image is its entry name and
 * digest. Then the body is pulled (res_callback): each pull adds the next
 * piece of the archive (a local header, 64 KiB of a file, a data
 * descriptor, at the end the central directory) through util/zipstream.c,
 * so memory stays flat whatever the album's size, and no database work
 * happens after the handler returns. Each file's hold ends once it is sent.
 *
 * Entry order: manifest.json, manifest.csv, then the images in album order.
 * PNGs are stored (they are already deflated), the manifests deflated.
 */
#include "api/api.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/albums.h"
#include "store/imagefiles.h"
#include "store/runs.h"
#include "util/filename.h"
#include "util/log.h"
#include "util/zipstream.h"

#define ZIP_PIECE (64 * 1024)
#define KEY_SLUG_MAX 60
#define NAME_LEN 96 /* position (<= 19 digits), '_', slug or "image_<id>", suffix, ".png" */

struct zip_file {
    char name[NAME_LEN];
    char sha[65];
    int held; /* the file's hold has not ended yet */
};

enum zip_step { STEP_ENTRY, STEP_DATA, STEP_DONE };

struct zip_job {
    const char *data_dir; /* the daemon's, borrowed */
    struct zip_file *files;
    size_t nfiles, cap;
    FILE *json, *csv; /* the manifests, spooled to unlinked files */
    int width;        /* digits of the position prefix */
    long long group_pos;
    size_t group_start; /* the first file of the current position */
    size_t skipped;     /* rows whose file was gone */
    /* while the body is pulled */
    struct zipstream *zip;
    struct strbuf out;
    size_t off;
    enum zip_step step;
    size_t next; /* entry: 0 manifest.json, 1 manifest.csv, 2.. the files */
    int fd;      /* the entry being sent (an image's, or a spool's), or -1 */
    long long left;
    time_t now;
    char piece[ZIP_PIECE];
};

static void job_free(void *ctx)
{
    struct zip_job *j = ctx;
    if (!j)
        return;
    if (j->fd >= 0 && j->next >= 2)
        close(j->fd); /* spools' descriptors close with their FILEs */
    for (size_t i = 0; i < j->nfiles; i++)
        if (j->files[i].held)
            imagefile_release(j->files[i].sha);
    if (j->json)
        fclose(j->json);
    if (j->csv)
        fclose(j->csv);
    zipstream_free(j->zip);
    sb_free(&j->out);
    free(j->files);
    free(j);
}

/* An unlinked read-write temporary file in the data directory (where there
 * is room for images, so for their manifests too), or in TMPDIR. */
static FILE *spool_open(const char *data_dir)
{
    int fd = open(data_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "w+");
        if (!f)
            close(fd);
        return f;
    }
    return tmpfile();
}

/* One CSV field from a JSON scalar: null empty, numbers as JSON writes
 * them, strings quoted by libcsv (csv_fwrite doubles inner quotes), and
 * anything else (the LoRA list) as its JSON text, quoted. */
static void csv_value(FILE *f, const json_t *v, int first)
{
    if (!first)
        fputc(',', f);
    if (json_is_string(v)) {
        csv_fwrite(f, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v) || json_is_real(v)) {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        fputs(text ? text : "", f);
        free(text);
    } else if (v && !json_is_null(v)) {
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
        csv_fwrite(f, text ? text : "", text ? strlen(text) : 0);
        free(text);
    }
}

static const char *const csv_columns[] = {
    "position", "file", "image_id", "run_id", "item_index", "key", "prompt", "negative_prompt",
    "seed", "steps", "guidance_scale", "width", "height", "size", "loras", "backend", "sha256",
    "bytes", "created_at"};
#define NCSV (sizeof(csv_columns) / sizeof(csv_columns[0]))

static void csv_row(FILE *f, const json_t *row)
{
    for (size_t c = 0; c < NCSV; c++) {
        const char *col = csv_columns[c];
        if (strcmp(col, "image_id") == 0) {
            csv_value(f, json_object_get(row, "id"), 0);
        } else if (strcmp(col, "size") == 0) {
            fprintf(f, ",%lldx%lld", (long long)json_integer_value(json_object_get(row, "width")),
                    (long long)json_integer_value(json_object_get(row, "height")));
        } else {
            csv_value(f, json_object_get(row, col), c == 0);
        }
    }
    fputs("\r\n", f);
}

/* Names the row's entry: "<position>_<key>.png", or "<position>_image_<id>.png"
 * without a key, with "_2", "_3"... when an earlier image at the same
 * position has the name already (positions differ otherwise, and the
 * prefix has one width, so names of different positions never meet). */
static void name_file(struct zip_job *j, const json_t *row, long long pos, char *out)
{
    char slug[KEY_SLUG_MAX + 1];
    long long id = json_integer_value(json_object_get(row, "id"));
    if (filename_slug(json_string_value(json_object_get(row, "key")), KEY_SLUG_MAX, slug,
                      sizeof(slug)) == 0)
        snprintf(slug, sizeof(slug), "image_%lld", id);
    if (pos != j->group_pos) {
        j->group_pos = pos;
        j->group_start = j->nfiles;
    }
    for (int n = 1;; n++) {
        char suffix[24] = "";
        if (n > 1)
            snprintf(suffix, sizeof(suffix), "_%d", n);
        snprintf(out, NAME_LEN, "%0*lld_%s%s.png", j->width, pos + 1, slug, suffix);
        int taken = 0;
        for (size_t i = j->group_start; i < j->nfiles && !taken; i++)
            taken = strcmp(j->files[i].name, out) == 0;
        if (!taken)
            return;
    }
}

/* albums_each_image's callback: one image into the snapshot. */
static int on_row(const json_t *row, void *ctx)
{
    struct zip_job *j = ctx;
    const char *sha = json_string_value(json_object_get(row, "sha256"));
    long long size;
    if (!sha || imagefile_hold_existing(j->data_dir, sha, &size) < 0) {
        /* Deleted (row and file) after the snapshot began: it is not part
         * of the album any more. */
        j->skipped++;
        return 0;
    }
    if (j->nfiles == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 64;
        j->files = xrealloc(j->files, j->cap * sizeof(*j->files));
    }
    struct zip_file *f = &j->files[j->nfiles];
    long long pos = json_integer_value(json_object_get(row, "position"));
    name_file(j, row, pos, f->name);
    snprintf(f->sha, sizeof(f->sha), "%s", sha);
    f->held = 1;
    j->nfiles++;

    json_t *m = json_deep_copy(row);
    json_object_set_new(m, "position", json_integer(pos + 1));
    json_object_set_new(m, "file", json_string(f->name));
    if (j->nfiles > 1)
        fputs(",\n", j->json);
    json_dumpf(m, j->json, JSON_COMPACT | JSON_REAL_PRECISION(15));
    csv_row(j->csv, m);
    json_decref(m);
    return 0;
}

static int digits(long long v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Starts entry j->next: 0, 1 when it is skipped (its file is gone), -1. */
static int open_entry(struct zip_job *j)
{
    const char *name;
    enum zip_method method = ZIP_DEFLATE;
    time_t mtime = j->now;
    if (j->next < 2) {
        FILE *spool = j->next == 0 ? j->json : j->csv;
        name = j->next == 0 ? "manifest.json" : "manifest.csv";
        j->fd = fileno(spool);
        off_t end = lseek(j->fd, 0, SEEK_END);
        if (end < 0 || lseek(j->fd, 0, SEEK_SET) < 0)
            return -1;
        j->left = (long long)end;
    } else {
        struct zip_file *f = &j->files[j->next - 2];
        name = f->name;
        method = ZIP_STORE;
        char *path = imagefile_path(j->data_dir, f->sha);
        j->fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        free(path);
        struct stat st;
        if (j->fd < 0 && errno == ENOENT) {
            /* Held, so only someone else's hand removed it: leave it out
             * rather than cut the download short. */
            log_warn("download: image file %s is missing; left out of the zip", f->sha);
            return 1;
        }
        if (j->fd < 0 || fstat(j->fd, &st) < 0) {
            /* Out of descriptors, or unreadable: cutting the download is
             * honest, a zip quietly missing an image is not. */
            log_warn("download: cannot open image file %s: %s", f->sha, strerror(errno));
            if (j->fd >= 0)
                close(j->fd);
            j->fd = -1;
            return -1;
        }
        j->left = (long long)st.st_size;
        mtime = st.st_mtime;
    }
    if (zipstream_entry(j->zip, name, j->left, method, mtime) < 0) {
        log_warn("download: %s: %s", name, zipstream_error(j->zip));
        return -1;
    }
    return 0;
}

/* The entry j->next is sent: its descriptor and its hold end. A spool is
 * closed once sent, so for most of the download it costs one descriptor
 * besides its socket, as util/fdlimit.h counts a connection sending a file. */
static void close_entry(struct zip_job *j)
{
    if (j->next < 2) {
        FILE **spool = j->next == 0 ? &j->json : &j->csv;
        fclose(*spool);
        *spool = NULL;
    } else {
        struct zip_file *f = &j->files[j->next - 2];
        if (j->fd >= 0)
            close(j->fd);
        if (f->held) {
            f->held = 0;
            imagefile_release(f->sha);
        }
    }
    j->fd = -1;
    j->next++;
}

/* Adds the next piece of the archive to j->out. 0, or -1. */
static int step(struct zip_job *j)
{
    if (j->step == STEP_ENTRY) {
        if (j->next == j->nfiles + 2) {
            j->step = STEP_DONE;
            if (zipstream_finish(j->zip) < 0) {
                log_warn("download: %s", zipstream_error(j->zip));
                return -1;
            }
            return 0;
        }
        int rc = open_entry(j);
        if (rc < 0)
            return -1;
        if (rc > 0)
            close_entry(j);
        else
            j->step = STEP_DATA;
        return 0;
    }
    if (j->left == 0) {
        close_entry(j);
        j->step = STEP_ENTRY;
        return 0;
    }
    size_t want = j->left < ZIP_PIECE ? (size_t)j->left : ZIP_PIECE;
    ssize_t n = read(j->fd, j->piece, want);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        log_warn("download: cannot read entry %zu: %s", j->next, strerror(errno));
        return -1;
    }
    if (n == 0) {
        /* Shorter than its size a moment ago: files are written once and
         * renamed into place, so this is damage; keep the archive whole. */
        log_warn("download: entry %zu is shorter than its size; padded", j->next);
        memset(j->piece, 0, want);
        n = (ssize_t)want;
    }
    if (zipstream_write(j->zip, j->piece, (size_t)n) < 0) {
        log_warn("download: %s", zipstream_error(j->zip));
        return -1;
    }
    j->left -= n;
    return 0;
}

static long pull(void *ctx, char *buf, size_t max)
{
    struct zip_job *j = ctx;
    while (j->off == j->out.len) {
        j->out.len = 0;
        j->off = 0;
        if (j->step == STEP_DONE)
            return 0;
        if (step(j) < 0)
            return -1;
    }
    size_t n = j->out.len - j->off;
    if (n > max)
        n = max;
    memcpy(buf, j->out.data + j->off, n);
    j->off += n;
    return (long)n;
}

/* What is being zipped: an album or a run's images. */
struct zip_source {
    const char *kind; /* the manifest's key for header */
    json_t *header;   /* stolen: the album, or the run */
    const char *name; /* the name to save as (borrowed from header) */
    char fallback[40];
    long long max_pos; /* the highest position a row may have */
    sf_status (*each)(long long id, enum read_scope scope,
                      int (*fn)(const json_t *row, void *ctx), void *ctx);
};

/* The snapshot, then the response; src->header is released. */
static sf_status send_zip(struct sf_request *req, struct sf_response *res, long long id,
                          struct zip_source *src)
{
    struct zip_job *j = xcalloc(1, sizeof(*j));
    j->data_dir = req->cfg->data_dir;
    j->fd = -1;
    j->group_pos = -1;
    j->width = digits(src->max_pos + 1);
    j->now = time(NULL);
    sb_init(&j->out);
    j->json = spool_open(j->data_dir);
    j->csv = spool_open(j->data_dir);
    sf_status st = SF_OK;
    if (!j->json || !j->csv) {
        res_header(res, "Retry-After", "1");
        st = res_fail(res, SF_EUNAVAILABLE, "cannot make the zip's manifests now (out of files or space)");
        goto fail;
    }
    fprintf(j->json, "{\"%s\":", src->kind);
    json_dumpf(src->header, j->json, JSON_COMPACT | JSON_REAL_PRECISION(15));
    fputs(",\"images\":[\n", j->json);
    for (size_t c = 0; c < NCSV; c++)
        fprintf(j->csv, "%s%s", c ? "," : "", csv_columns[c]);
    fputs("\r\n", j->csv);

    st = src->each(id, req_scope(req), on_row, j);
    if (st != SF_OK) {
        st = res_fail(res, st, "cannot read the images of %s %lld", src->kind, id);
        goto fail;
    }
    fputs("\n]}\n", j->json);
    if (fflush(j->json) != 0 || fflush(j->csv) != 0 || ferror(j->json) || ferror(j->csv)) {
        st = res_fail(res, SF_EUNAVAILABLE, "cannot write the zip's manifests (out of space?)");
        goto fail;
    }
    char err[256];
    j->zip = zipstream_new(&j->out, err, sizeof(err));
    if (!j->zip) {
        st = res_fail(res, SF_EINTERNAL, "%s", err);
        goto fail;
    }
    if (j->skipped)
        log_info("download: %s %lld: %zu images deleted as the zip began, left out", src->kind, id,
                 j->skipped);

    char disposition[1000];
    filename_disposition(src->name, ".zip", src->fallback, disposition, sizeof(disposition));
    json_decref(src->header);
    st = res_callback(res, "application/zip", pull, j, job_free);
    if (st != SF_OK)
        return st;
    res_header(res, "Content-Disposition", "%s", disposition);
    res_header(res, "Cache-Control", "no-store");
    res_header(res, "X-Content-Type-Options", "nosniff");
    return SF_OK;

fail:
    json_decref(src->header);
    job_free(j);
    return st;
}

sf_status download_album_zip(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    struct zip_source src = {.kind = "album", .each = albums_each_image};
    sf_status st = albums_get(id, req_scope(req), &src.header);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", id);
    if ((st = albums_max_position(id, &src.max_pos)) != SF_OK) {
        json_decref(src.header);
        return res_fail(res, st, "cannot read the album's images");
    }
    json_object_del(src.header, "preview_images");
    json_object_del(src.header, "image_count"); /* what is in this zip is "images" */
    src.name = json_string_value(json_object_get(src.header, "name"));
    snprintf(src.fallback, sizeof(src.fallback), "album_%lld", id);
    return send_zip(req, res, id, &src);
}

sf_status download_run_zip(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    json_t *run;
    sf_status st = runs_get(id, req_scope(req), 1, &run);
    if (st != SF_OK)
        return res_fail(res, st, "run %lld not found", id);
    /* The run's settings, not its errors (texts for the operator) nor its
     * progress estimates. */
    static const char *const keep[] = {
        "id", "template_id", "album_id", "album_name", "user_theme", "status", "total_items",
        "completed_items", "failed_items", "canceled_items", "steps", "seed", "width", "height",
        "guidance_scale", "negative_prompt", "loras", "created_at", "started_at", "completed_at"};
    struct zip_source src = {.kind = "run", .each = runs_each_image, .header = json_object()};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *v = json_object_get(run, keep[i]);
        if (v)
            json_object_set(src.header, keep[i], v);
    }
    json_decref(run);
    src.max_pos = json_integer_value(json_object_get(src.header, "total_items")) - 1;
    src.name = json_string_value(json_object_get(src.header, "album_name"));
    snprintf(src.fallback, sizeof(src.fallback), "run_%lld", id);
    return send_zip(req, res, id, &src);
}
