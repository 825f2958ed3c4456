/*
 * albums.c: the /api/albums routes.
 *
 * Private albums are invisible to anyone but an admin: absent from lists and
 * 404 on detail, so their existence does not leak.
 */
#include "api/api.h"

#include <string.h>
#include <strings.h>

#include "api/bodies.h"
#include "api/validate.h"
#include "store/albums.h"

#define MAX_IMAGE_IDS 1000

static const char *const source_types[] = {"manual", "batch_generation", "scrape"};

static int truthy(const char *v)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
    return 0;
}

sf_status list_albums(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    const char *source = req_query(req, "source_type");
    if (source) {
        int known = 0;
        for (size_t i = 0; i < 3; i++)
            known |= strcmp(source, source_types[i]) == 0;
        if (!known)
            return res_invalid(res,
                               json_pack("{ss}", "source_type", "must be manual, batch_generation or scrape"),
                               "unknown source_type \"%s\"", source);
    }
    json_t *rows;
    long long total;
    const char *set_template = req_query(req, "is_set_template");
    if (set_template && truthy(set_template)) {
        /* Deprecated: set templates became batch templates; old clients get
         * an empty page rather than an error. */
        rows = json_array();
        total = 0;
    } else {
        st = albums_list(&pg, source, req_scope(req), &rows, &total);
        if (st != SF_OK)
            return res_fail(res, st, "cannot list albums");
    }
    json_t *doc = json_pack("{so}", "albums", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

sf_status get_album(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    json_t *album, *images;
    long long total;
    st = albums_get(req->ids[0], req_scope(req), &album);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", req->ids[0]);
    st = albums_images(req->ids[0], &pg, &images, &total);
    if (st != SF_OK) {
        json_decref(album);
        return res_fail(res, st, "cannot read the album's images");
    }
    json_object_set_new(album, "images", images);
    page_annotate(album, &pg, total);
    return res_json(res, 200, album);
}

void album_body_fields(const json_t *body, json_t *row, enum album_check what, json_t *fields)
{
    if (what == ALBUM_NEW && !json_object_get(body, "name"))
        json_object_set_new(fields, "name", json_string("is required"));
    v_string(body, "name", 1, 200, row, fields);
    v_string(body, "description", 0, 2000, row, fields);
    v_boolean(body, "is_public", row, fields);
}

/* Validates name/description/is_public over row; SF_OK or the failure. */
static sf_status check_album(struct sf_request *req, struct sf_response *res,
                             json_t *row, enum album_check what)
{
    json_t *fields = json_object();
    album_body_fields(req->json, row, what, fields);
    if (json_object_size(fields))
        return res_invalid_fields(res, fields, "invalid album");
    json_decref(fields);
    return SF_OK;
}

sf_status create_album(struct sf_request *req, struct sf_response *res)
{
    json_t *row = json_pack("{ss ss sb ss}", "name", "", "description", "", "is_public", 1,
                            "source_type", "manual");
    sf_status st = check_album(req, res, row, ALBUM_NEW);
    long long id = 0;
    if (st == SF_OK && (st = albums_insert(row, req->token_name, &id)) != SF_OK)
        res_fail(res, st, "cannot store the album");
    json_decref(row);
    if (st != SF_OK)
        return st;
    json_t *album;
    if ((st = albums_get(id, READ_ALL, &album)) != SF_OK)
        return res_fail(res, st, "cannot read the new album back");
    res_header(res, "Location", "/api/albums/%lld", id);
    return res_json(res, 201, album);
}

sf_status update_album(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    json_t *row;
    sf_status st = albums_get(id, READ_ALL, &row);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", id);
    st = check_album(req, res, row, ALBUM_CHANGE);
    if (st == SF_OK && (st = albums_update(id, row)) != SF_OK)
        res_fail(res, st, "album %lld could not be updated", id);
    json_decref(row);
    if (st != SF_OK)
        return st;
    if ((st = albums_get(id, READ_ALL, &row)) != SF_OK)
        return res_fail(res, st, "album %lld not found", id);
    return res_json(res, 200, row);
}

sf_status delete_album(struct sf_request *req, struct sf_response *res)
{
    sf_status st = albums_delete(req->ids[0]);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", req->ids[0]);
    return res_json(res, 200, json_pack("{ss}", "message", "album deleted; its images are kept"));
}

sf_status add_album_images(struct sf_request *req, struct sf_response *res)
{
    json_t *ids = json_object_get(req->json, "image_ids");
    const char *bad = NULL;
    if (!json_is_array(ids) || json_array_size(ids) == 0)
        bad = "must be a non-empty array of image ids";
    else if (json_array_size(ids) > MAX_IMAGE_IDS)
        bad = "at most 1000 image ids at a time";
    size_t i;
    json_t *v;
    if (!bad)
        json_array_foreach(ids, i, v) if (!json_is_integer(v) || json_integer_value(v) < 1) bad =
            "every image id must be a positive integer";
    if (bad)
        return res_invalid(res, json_pack("{ss}", "image_ids", bad), "image_ids %s", bad);

    long long added, missing;
    sf_status st = albums_add_images(req->ids[0], ids, &added, &missing);
    if (st == SF_ENOTFOUND && missing)
        return res_fail(res, st, "image %lld not found; nothing was added", missing);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", req->ids[0]);
    return res_json(res, 200, json_pack("{sI}", "added_count", (json_int_t)added));
}

sf_status remove_album_image(struct sf_request *req, struct sf_response *res)
{
    json_t *album;
    sf_status st = albums_get(req->ids[0], READ_ALL, &album);
    if (st != SF_OK)
        return res_fail(res, st, "album %lld not found", req->ids[0]);
    json_decref(album);
    st = albums_remove_image(req->ids[0], req->ids[1]);
    if (st != SF_OK)
        return res_fail(res, st, "image %lld is not in album %lld", req->ids[1], req->ids[0]);
    return res_json(res, 200, json_pack("{ss}", "message", "image removed from the album"));
}
