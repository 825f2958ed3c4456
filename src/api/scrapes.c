/*
 * scrapes.c: the /api/scrape-jobs routes (docs/scrape.md).
 *
 * An admin gives a page URL; the job is stored pending and the scrape
 * threads (queue/scraper.c) take it from there, so POST answers 202 at
 * once. Every route is admin-only: a job holds the URLs an admin typed,
 * and its result is an album, which has its own visibility.
 */
#include "api/api.h"

#include <string.h>
#include <strings.h>

#include "api/validate.h"
#include "queue/scraper.h"
#include "store/scrapes.h"
#include "store/states.h"

#define SCRAPE_URL_MAX 2048

/* http:// or https:// with something after it; no spaces (the client and
 * its guard decide the rest: docs/security.md). */
static const char *url_problem(const char *url)
{
    size_t skip = 0;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return "must be an http:// or https:// URL";
    if (!url[skip] || url[skip] == '/')
        return "must name a host";
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return "must not contain spaces or control characters";
    return NULL;
}

sf_status create_scrape_job(struct sf_request *req, struct sf_response *res)
{
    json_t *fields = json_object(), *v = json_object();
    const json_t *body = req->json;
    static const char *const required[] = {"url", "album_name", "max_images"};
    for (size_t i = 0; i < 3; i++)
        if (!json_object_get(body, required[i]))
            json_object_set_new(fields, required[i], json_string("is required"));
    if (v_line(body, "url", 1, SCRAPE_URL_MAX, v, fields) == 1) {
        const char *why = url_problem(json_string_value(json_object_get(v, "url")));
        if (why)
            json_object_set_new(fields, "url", json_string(why));
    }
    v_line(body, "album_name", 1, 200, v, fields);
    v_integer(body, "max_images", 1, 1000, 1, v, fields);
    if (json_object_size(fields)) {
        json_decref(v);
        return res_invalid_fields(res, fields, "invalid scrape job");
    }
    json_decref(fields);
    struct scrape_spec spec = {
        .url = json_string_value(json_object_get(v, "url")),
        .album_name = json_string_value(json_object_get(v, "album_name")),
        .max_images = (int)json_integer_value(json_object_get(v, "max_images")),
        .creator = req->authenticated ? req->token_name : NULL,
    };
    long long id;
    sf_status st = scrapes_create(&spec, &id);
    json_decref(v);
    if (st != SF_OK)
        return res_fail(res, st, "cannot store the scrape job");
    /* read back before the kick: the answer is the job as created */
    json_t *job;
    st = scrapes_get(id, &job);
    scraper_kick();
    if (st != SF_OK)
        return res_fail(res, st, "cannot read the new scrape job back");
    res_header(res, "Location", "/api/scrape-jobs/%lld", id);
    return res_json(res, 202, job);
}

sf_status list_scrape_jobs(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    const char *status = req_query(req, "status");
    enum scrape_state state;
    if (status) {
        if (scrape_state_parse(status, &state) != 0)
            return res_invalid(res,
                               json_pack("{ss}", "status",
                                         "must be pending, running, completed, failed or canceled"),
                               "unknown scrape job status \"%s\"", status);
        status = scrape_state_name(state);
    }
    json_t *rows;
    long long total;
    if ((st = scrapes_list(&pg, status, &rows, &total)) != SF_OK)
        return res_fail(res, st, "cannot list scrape jobs");
    json_t *doc = json_pack("{so}", "scrape_jobs", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

sf_status get_scrape_job(struct sf_request *req, struct sf_response *res)
{
    json_t *job;
    sf_status st = scrapes_get(req->ids[0], &job);
    if (st != SF_OK)
        return res_fail(res, st, "scrape job %lld not found", req->ids[0]);
    return res_json(res, 200, job);
}

sf_status list_scrape_job_items(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    json_t *rows;
    long long total;
    if ((st = scrapes_items(req->ids[0], &pg, &rows, &total)) != SF_OK)
        return res_fail(res, st, "scrape job %lld not found", req->ids[0]);
    json_t *doc = json_pack("{so}", "items", rows);
    page_annotate(doc, &pg, total);
    return res_json(res, 200, doc);
}

sf_status cancel_scrape_job(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    sf_status st = scrapes_cancel(id);
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "scrape job %lld has already finished", id);
    if (st != SF_OK)
        return res_fail(res, st, "scrape job %lld not found", id);
    scraper_cancel_job(id);
    json_t *job;
    if ((st = scrapes_get(id, &job)) != SF_OK)
        return res_fail(res, st, "scrape job %lld not found", id);
    return res_json(res, 200, job);
}
