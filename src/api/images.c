/*
 * images.c: the /api/images routes, including the file itself (a PNG, or
 * a scraped image's own type).
 *
 * Files are content-addressed, so a file's ETag is its SHA-256 and it can
 * be cached forever: the same URL never changes content.
 */
#include "api/api.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "store/imagefiles.h"
#include "store/images.h"

sf_status list_images(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    json_t *rows;
    long long total;
    if ((st = images_list(&pg, req_scope(req), &rows, &total)) != SF_OK)
        return res_fail(res, st, "cannot list images");
    json_t *doc = json_pack("{so}", "images", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

sf_status get_image(struct sf_request *req, struct sf_response *res)
{
    json_t *img;
    sf_status st = images_get(req->ids[0], req_scope(req), &img);
    if (st != SF_OK)
        return res_fail(res, st, "image %lld not found", req->ids[0]);
    return res_json(res, 200, img);
}

/* 1 when an If-None-Match list names etag (or is "*"). */
static int etag_matches(const char *header, const char *etag)
{
    if (!header)
        return 0;
    if (strstr(header, "*"))
        return 1;
    return strstr(header, etag) != NULL;
}

sf_status get_image_file(struct sf_request *req, struct sf_response *res)
{
    char sha[65], mime[64];
    sf_status st = images_file(req->ids[0], req_scope(req), sha, mime);
    if (st != SF_OK)
        return res_fail(res, st, "image %lld not found", req->ids[0]);
    char etag[70];
    snprintf(etag, sizeof(etag), "\"%s\"", sha);
    res_header(res, "ETag", "%s", etag);
    res_header(res, "Cache-Control", "public, max-age=31536000, immutable");
    if (etag_matches(req_header(req, "If-None-Match"), sha))
        return res_body(res, 304, NULL, NULL, 0);
    char *path = imagefile_path(req->cfg->data_dir, sha);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    if (fd < 0)
        return res_fail(res, SF_EINTERNAL, "the file of image %lld is missing", req->ids[0]);
    /* generated images are PNG; a scraped one keeps the type its bytes have */
    return res_file(res, fd, mime[0] ? mime : "image/png");
}

sf_status delete_image(struct sf_request *req, struct sf_response *res)
{
    char sha[65];
    int orphaned;
    sf_status st = images_delete(req->ids[0], sha, &orphaned);
    if (st != SF_OK)
        return res_fail(res, st, "image %lld not found", req->ids[0]);
    if (orphaned)
        imagefile_remove_if_unused(req->cfg->data_dir, sha);
    return res_json(res, 200, json_pack("{ss}", "message", "image deleted"));
}
