/*
 * routes.c: the route table, the one list of every path the daemon serves.
 *
 * Order matters only for readability; the matcher picks the row whose
 * pattern and method both match. Each row: method, pattern, auth, whether
 * a JSON object body is required, handler, and whether the answer may be
 * served from the response cache (http/cache.c).
 */
#include "api/api.h"
#include "http/router.h"

const struct route sf_routes[] = {
    {"GET", "/api/health", ROUTE_PUBLIC, BODY_NONE, get_health, ROUTE_FRESH},

    {"GET", "/api/batch-templates", ROUTE_PUBLIC, BODY_NONE, list_templates, ROUTE_CACHED},
    {"POST", "/api/batch-templates", ROUTE_ADMIN, BODY_JSON, create_template, ROUTE_FRESH},
    {"GET", "/api/batch-templates/:id", ROUTE_PUBLIC, BODY_NONE, get_template, ROUTE_CACHED},
    {"PUT", "/api/batch-templates/:id", ROUTE_ADMIN, BODY_JSON, update_template, ROUTE_FRESH},
    {"DELETE", "/api/batch-templates/:id", ROUTE_ADMIN, BODY_NONE, delete_template, ROUTE_FRESH},
    {"GET", "/api/batch-templates/:id/items.csv", ROUTE_PUBLIC, BODY_NONE, export_template_items, ROUTE_FRESH},

    {"GET", "/api/batch-templates/:id/runs", ROUTE_PUBLIC, BODY_NONE, list_template_runs, ROUTE_FRESH},
    {"GET", "/api/batch-templates/:id/runs/:id", ROUTE_PUBLIC, BODY_NONE, get_template_run, ROUTE_FRESH},
    {"POST", "/api/batch-templates/:id/generate", ROUTE_PUBLIC, BODY_JSON, generate_run, ROUTE_FRESH},
    {"POST", "/api/batch-templates/:id/preview", ROUTE_PUBLIC, BODY_JSON, preview_run, ROUTE_FRESH},

    {"GET", "/api/runs", ROUTE_PUBLIC, BODY_NONE, list_runs, ROUTE_FRESH},
    {"GET", "/api/runs/:id", ROUTE_PUBLIC, BODY_NONE, get_run, ROUTE_FRESH},
    {"GET", "/api/runs/:id/items", ROUTE_PUBLIC, BODY_NONE, list_run_items, ROUTE_FRESH},
    {"GET", "/api/runs/:id/events", ROUTE_PUBLIC, BODY_NONE, stream_run_events, ROUTE_FRESH},
    {"GET", "/api/runs/:id/items/:index/preview", ROUTE_PUBLIC, BODY_NONE, get_run_item_preview, ROUTE_FRESH},
    {"POST", "/api/runs/:id/cancel", ROUTE_ADMIN, BODY_NONE, cancel_run, ROUTE_FRESH},
    {"POST", "/api/runs/:id/retry", ROUTE_ADMIN, BODY_NONE, retry_run, ROUTE_FRESH},
    {"POST", "/api/runs/:id/pause", ROUTE_ADMIN, BODY_NONE, pause_run, ROUTE_FRESH},
    {"POST", "/api/runs/:id/resume", ROUTE_ADMIN, BODY_NONE, resume_run, ROUTE_FRESH},
    {"PATCH", "/api/runs/:id", ROUTE_ADMIN, BODY_JSON, update_run, ROUTE_FRESH},
    {"POST", "/api/queue/pause", ROUTE_ADMIN, BODY_NONE, pause_queue, ROUTE_FRESH},
    {"POST", "/api/queue/resume", ROUTE_ADMIN, BODY_NONE, resume_queue, ROUTE_FRESH},
    {"GET", "/api/runs/:id/download.zip", ROUTE_PUBLIC, BODY_NONE, download_run_zip, ROUTE_FRESH},

    {"GET", "/api/images", ROUTE_PUBLIC, BODY_NONE, list_images, ROUTE_CACHED},
    {"GET", "/api/images/:id", ROUTE_PUBLIC, BODY_NONE, get_image, ROUTE_CACHED},
    {"GET", "/api/images/:id/file", ROUTE_PUBLIC, BODY_NONE, get_image_file, ROUTE_FRESH},
    {"DELETE", "/api/images/:id", ROUTE_ADMIN, BODY_NONE, delete_image, ROUTE_FRESH},

    {"GET", "/api/albums", ROUTE_PUBLIC, BODY_NONE, list_albums, ROUTE_CACHED},
    {"POST", "/api/albums", ROUTE_ADMIN, BODY_JSON, create_album, ROUTE_FRESH},
    {"GET", "/api/albums/:id", ROUTE_PUBLIC, BODY_NONE, get_album, ROUTE_CACHED},
    {"PUT", "/api/albums/:id", ROUTE_ADMIN, BODY_JSON, update_album, ROUTE_FRESH},
    {"DELETE", "/api/albums/:id", ROUTE_ADMIN, BODY_NONE, delete_album, ROUTE_FRESH},
    {"POST", "/api/albums/:id/images", ROUTE_ADMIN, BODY_JSON, add_album_images, ROUTE_FRESH},
    {"DELETE", "/api/albums/:id/images/:id", ROUTE_ADMIN, BODY_NONE, remove_album_image, ROUTE_FRESH},
    {"GET", "/api/albums/:id/download.zip", ROUTE_PUBLIC, BODY_NONE, download_album_zip, ROUTE_FRESH},

    {"POST", "/api/scrape-jobs", ROUTE_ADMIN, BODY_JSON, create_scrape_job, ROUTE_FRESH},
    {"GET", "/api/scrape-jobs", ROUTE_ADMIN, BODY_NONE, list_scrape_jobs, ROUTE_FRESH},
    {"GET", "/api/scrape-jobs/:id", ROUTE_ADMIN, BODY_NONE, get_scrape_job, ROUTE_FRESH},
    {"GET", "/api/scrape-jobs/:id/items", ROUTE_ADMIN, BODY_NONE, list_scrape_job_items, ROUTE_FRESH},
    {"POST", "/api/scrape-jobs/:id/cancel", ROUTE_ADMIN, BODY_NONE, cancel_scrape_job, ROUTE_FRESH},

    {"GET", "/metrics", ROUTE_PUBLIC, BODY_NONE, get_metrics, ROUTE_FRESH},
    /* this table described (docs/openapi.json; test_openapi.py keeps the two equal) */
    {"GET", "/api/openapi.json", ROUTE_PUBLIC, BODY_NONE, get_openapi, ROUTE_FRESH},

    /* the operator's page (api/web.c); "*" matches one segment of any text */
    {"GET", "/", ROUTE_PUBLIC, BODY_NONE, get_page, ROUTE_FRESH},
    {"GET", "/assets/*", ROUTE_PUBLIC, BODY_NONE, get_asset, ROUTE_FRESH},
};

const size_t sf_nroutes = sizeof(sf_routes) / sizeof(sf_routes[0]);
