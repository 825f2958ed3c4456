/*
 * images.h: rows of the images table as the API shows them.
 */
#ifndef SF_STORE_IMAGES_H
#define SF_STORE_IMAGES_H

#include <jansson.h>
#include <sqlite3.h>

#include "store/scope.h"
#include "util/pagination.h"
#include "util/status.h"

/* The columns image_row_json() reads, in order; prefix with an alias. */
#define IMAGE_COLS(a)                                                          \
    a "id, " a "prompt, " a "negative_prompt, " a "seed, " a "steps, " a       \
    "guidance_scale, " a "width, " a "height, " a "loras, " a "run_id, " a     \
    "item_index, " a "sha256, " a "bytes, " a "created_at, " a "cropped_from"
#define IMAGE_NCOLS 15

/*
 * The columns of an image in a set to be downloaded (an album, a run's
 * images): IMAGE_COLS, then its position (an SQL expression), the endpoint
 * that drew it and its run's template. The statement selects FROM the
 * images as "i" followed by IMAGE_SET_JOINS.
 */
#define IMAGE_SET_COLS(position) IMAGE_COLS("i.") ", " position ", i.backend, r.template_id"
#define IMAGE_SET_JOINS " LEFT JOIN runs r ON r.id = i.run_id "

/*
 * Runs sql (IMAGE_SET_COLS; ?1 the set's id, ?2 1 for READ_ALL) to the
 * end, calling each(row, ctx) with every image as the API shows it plus "position",
 * "backend" (or null) and "key" (the value of the first column of its
 * template's item, or null: no run item, or the template no longer has the
 * item); row is borrowed for the call. Each template's items are read once
 * per call, not once per row. Stops early, with SF_OK, when each returns
 * non-zero.
 */
sf_status images_each_in_set(const char *sql, long long id, enum read_scope scope,
                             int (*each)(const json_t *row, void *ctx), void *ctx);

/* A new JSON object from the IMAGE_COLS starting at column col0 of st. */
json_t *image_row_json(sqlite3_stmt *st, int col0);

/* Steps st (bound, IMAGE_COLS first) to the end and resets it; *rows_out
 * gets a new array of the image objects. */
sf_status images_collect(sqlite3_stmt *st, json_t **rows_out);

/* *out: a new object. SF_ENOTFOUND, also for an image scope may not see. */
sf_status images_get(long long id, enum read_scope scope, json_t **out);

/* A page of the images scope may see, newest first (new array). */
sf_status images_list(const struct page *pg, enum read_scope scope, json_t **rows_out,
                      long long *total_out);

/* The sha256 of an image (into sha, 65 bytes). SF_ENOTFOUND, also for an
 * image scope may not see. */
sf_status images_sha(long long id, enum read_scope scope, char sha[65]);

/*
 * Deletes the image row (its album links go by cascade). *file_orphaned is
 * set when no other row uses the same file, which may then be removed.
 */
sf_status images_delete(long long id, char sha[65], int *file_orphaned);

/* An image a run item produced (all borrowed). */
struct generated_image {
    const char *prompt, *negative_prompt;
    long long seed;
    int steps;
    double guidance_scale;
    int width, height;
    const json_t *loras;
    long long run_id;
    int item_index;
    const char *sha256;
    size_t bytes;
    const char *backend; /* the endpoint's name */
    const char *created_at;
    const char *cropped_from; /* "WxH" the server returned before a crop, or NULL */
};

/*
 * Adds the row of a run item's image, in the caller's open transaction;
 * *image_id is the item's image row (an earlier one when the item already
 * has one: one image per run item).
 */
sf_status images_insert_generated(const struct generated_image *g, long long *image_id);

/* 1 when some image row uses the file with this sha256. */
int images_sha_used(const char *sha);

#endif
