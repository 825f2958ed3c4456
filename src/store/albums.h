/*
 * albums.h: albums and their ordered image links.
 */
#ifndef SF_STORE_ALBUMS_H
#define SF_STORE_ALBUMS_H

#include <jansson.h>

#include "store/scope.h"
#include "util/pagination.h"
#include "util/status.h"

/*
 * Lists albums newest first. source_type filters when not NULL; private
 * albums are left out with READ_PUBLIC. New array in *rows_out.
 */
sf_status albums_list(const struct page *pg, const char *source_type,
                      enum read_scope scope, json_t **rows_out, long long *total_out);

/* One album (new object), SF_ENOTFOUND also for a private one with
 * READ_PUBLIC. */
sf_status albums_get(long long id, enum read_scope scope, json_t **out);

/* A page of the album's images in album order (new array). */
sf_status albums_images(long long album_id, const struct page *pg,
                        json_t **rows_out, long long *total_out);

/*
 * Calls each(row, ctx) for every image of the album that scope may see, in
 * album order (position, then image id), inside the caller's read snapshot.
 * row (borrowed, valid during the call) is the image as the API shows it,
 * plus "position" (its album position, from 0), "backend" (the endpoint
 * that drew it, or null) and "key" (the value of the first column of its
 * template's item, or null: no run item, or the template no longer has the
 * item). Stops early, with SF_OK, when each returns non-zero.
 */
sf_status albums_each_image(long long album_id, enum read_scope scope,
                            int (*each)(const json_t *row, void *ctx), void *ctx);

/* The highest position in the album (-1 when it is empty). */
sf_status albums_max_position(long long album_id, long long *out);

/* row (borrowed): name, description, is_public, source_type, source_id. */
sf_status albums_insert(const json_t *row, const char *created_by, long long *id_out);
/* row (borrowed): name, description, is_public. */
sf_status albums_update(long long id, const json_t *row);
sf_status albums_delete(long long id);

/*
 * Links image_ids (borrowed array of integers) at the end of the album, in
 * one transaction. *added counts new links. An unknown image: SF_ENOTFOUND
 * with *missing set, and nothing is added. An unknown album: SF_ENOTFOUND
 * with *missing = 0.
 */
sf_status albums_add_images(long long album_id, const json_t *image_ids,
                            long long *added, long long *missing);

/*
 * Files every image of a run into its album, in the caller's open
 * transaction: with *album_id 0 the album (public, named album_name,
 * created by creator or nobody) is created first and *album_id set.
 * Positions are item indexes, so a retried item's image lands in its place.
 */
sf_status albums_file_run(long long run_id, const char *album_name, const char *creator,
                          const char *now, long long *album_id);

/* SF_ENOTFOUND when the image is not in the album. */
sf_status albums_remove_image(long long album_id, long long image_id);

#endif
