/*
 * api.h: every route handler, one per (verb, noun), all with the one
 * signature of http/http.h. The table that maps paths to them is routes.c.
 */
#ifndef SF_API_H
#define SF_API_H

#include "http/http.h"
#include "store/scope.h"

/* What the caller may read: everything for an admin token, the public
 * part for anyone else (store/scope.h has the rule). Every read of runs,
 * images and albums asks this, and nothing else decides it. */
enum read_scope req_scope(const struct sf_request *req);

/* app.c: the server's hooks into the application (http/server.h). */
struct sf_app;
extern const struct sf_app sf_api_app;

/* health.c */
sf_status get_health(struct sf_request *req, struct sf_response *res);

/* templates.c */
sf_status list_templates(struct sf_request *req, struct sf_response *res);
sf_status get_template(struct sf_request *req, struct sf_response *res);
sf_status create_template(struct sf_request *req, struct sf_response *res);
sf_status update_template(struct sf_request *req, struct sf_response *res);
sf_status delete_template(struct sf_request *req, struct sf_response *res);
sf_status export_template_items(struct sf_request *req, struct sf_response *res);

/* albums.c */
sf_status list_albums(struct sf_request *req, struct sf_response *res);
sf_status get_album(struct sf_request *req, struct sf_response *res);
sf_status create_album(struct sf_request *req, struct sf_response *res);
sf_status update_album(struct sf_request *req, struct sf_response *res);
sf_status delete_album(struct sf_request *req, struct sf_response *res);
sf_status add_album_images(struct sf_request *req, struct sf_response *res);
sf_status remove_album_image(struct sf_request *req, struct sf_response *res);

/* download.c */
sf_status download_album_zip(struct sf_request *req, struct sf_response *res);
sf_status download_run_zip(struct sf_request *req, struct sf_response *res);

/* runs.c */
sf_status generate_run(struct sf_request *req, struct sf_response *res);
sf_status preview_run(struct sf_request *req, struct sf_response *res);
sf_status list_runs(struct sf_request *req, struct sf_response *res);
sf_status list_template_runs(struct sf_request *req, struct sf_response *res);
sf_status get_run(struct sf_request *req, struct sf_response *res);
sf_status get_template_run(struct sf_request *req, struct sf_response *res);
sf_status list_run_items(struct sf_request *req, struct sf_response *res);
sf_status cancel_run(struct sf_request *req, struct sf_response *res);
sf_status retry_run(struct sf_request *req, struct sf_response *res);
sf_status stream_run_events(struct sf_request *req, struct sf_response *res);
sf_status get_run_item_preview(struct sf_request *req, struct sf_response *res);
sf_status pause_run(struct sf_request *req, struct sf_response *res);
sf_status resume_run(struct sf_request *req, struct sf_response *res);
sf_status update_run(struct sf_request *req, struct sf_response *res);

/* queue.c */
sf_status pause_queue(struct sf_request *req, struct sf_response *res);
sf_status resume_queue(struct sf_request *req, struct sf_response *res);
/* {"queued", "running", "paused"} now (new object), or NULL when the
 * database cannot be read (*why: SQLite's reason, static). */
json_t *queue_state_json(const char **why);

/* images.c */
sf_status list_images(struct sf_request *req, struct sf_response *res);
sf_status get_image(struct sf_request *req, struct sf_response *res);
sf_status get_image_file(struct sf_request *req, struct sf_response *res);
sf_status delete_image(struct sf_request *req, struct sf_response *res);

/* scrapes.c */
sf_status create_scrape_job(struct sf_request *req, struct sf_response *res);
sf_status list_scrape_jobs(struct sf_request *req, struct sf_response *res);
sf_status get_scrape_job(struct sf_request *req, struct sf_response *res);
sf_status list_scrape_job_items(struct sf_request *req, struct sf_response *res);
sf_status cancel_scrape_job(struct sf_request *req, struct sf_response *res);

/* web.c: the operator's page and its assets (docs/web.md) */
sf_status get_page(struct sf_request *req, struct sf_response *res);
sf_status get_asset(struct sf_request *req, struct sf_response *res);
/* docs/openapi.json, compiled in (docs/openapi.md) */
sf_status get_openapi(struct sf_request *req, struct sf_response *res);

/* metrics.c */
sf_status get_metrics(struct sf_request *req, struct sf_response *res);

#endif
