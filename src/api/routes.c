/*
 * routes.c: the route table, the one list of every path the daemon serves.
 *
 * Order matters only for readability; the matcher picks the row whose
 * pattern and method both match. Each row: method, pattern, auth, whether
 * a JSON object body is required, handler.
 */
#include "api/api.h"
#include "http/router.h"

const struct route sf_routes[] = {
    {"GET", "/api/health", ROUTE_PUBLIC, BODY_NONE, get_health},

    {"GET", "/api/batch-templates", ROUTE_PUBLIC, BODY_NONE, list_templates},
    {"POST", "/api/batch-templates", ROUTE_ADMIN, BODY_JSON, create_template},
    {"GET", "/api/batch-templates/:id", ROUTE_PUBLIC, BODY_NONE, get_template},
    {"PUT", "/api/batch-templates/:id", ROUTE_ADMIN, BODY_JSON, update_template},
    {"DELETE", "/api/batch-templates/:id", ROUTE_ADMIN, BODY_NONE, delete_template},
    {"GET", "/api/batch-templates/:id/items.csv", ROUTE_PUBLIC, BODY_NONE, export_template_items},

    {"GET", "/api/batch-templates/:id/runs", ROUTE_PUBLIC, BODY_NONE, list_template_runs},
    {"GET", "/api/batch-templates/:id/runs/:id", ROUTE_PUBLIC, BODY_NONE, get_template_run},
    {"POST", "/api/batch-templates/:id/generate", ROUTE_PUBLIC, BODY_JSON, generate_run},

    {"GET", "/api/runs", ROUTE_PUBLIC, BODY_NONE, list_runs},
    {"GET", "/api/runs/:id", ROUTE_PUBLIC, BODY_NONE, get_run},
    {"GET", "/api/runs/:id/items", ROUTE_PUBLIC, BODY_NONE, list_run_items},
    {"GET", "/api/runs/:id/events", ROUTE_PUBLIC, BODY_NONE, stream_run_events},
    {"POST", "/api/runs/:id/cancel", ROUTE_ADMIN, BODY_NONE, cancel_run},
    {"POST", "/api/runs/:id/retry", ROUTE_ADMIN, BODY_NONE, retry_run},

    {"GET", "/api/images", ROUTE_PUBLIC, BODY_NONE, list_images},
    {"GET", "/api/images/:id", ROUTE_PUBLIC, BODY_NONE, get_image},
    {"GET", "/api/images/:id/file", ROUTE_PUBLIC, BODY_NONE, get_image_file},
    {"DELETE", "/api/images/:id", ROUTE_ADMIN, BODY_NONE, delete_image},

    {"GET", "/api/albums", ROUTE_PUBLIC, BODY_NONE, list_albums},
    {"POST", "/api/albums", ROUTE_ADMIN, BODY_JSON, create_album},
    {"GET", "/api/albums/:id", ROUTE_PUBLIC, BODY_NONE, get_album},
    {"PUT", "/api/albums/:id", ROUTE_ADMIN, BODY_JSON, update_album},
    {"DELETE", "/api/albums/:id", ROUTE_ADMIN, BODY_NONE, delete_album},
    {"POST", "/api/albums/:id/images", ROUTE_ADMIN, BODY_JSON, add_album_images},
    {"DELETE", "/api/albums/:id/images/:id", ROUTE_ADMIN, BODY_NONE, remove_album_image},

    {"GET", "/metrics", ROUTE_PUBLIC, BODY_NONE, get_metrics},
};

const size_t sf_nroutes = sizeof(sf_routes) / sizeof(sf_routes[0]);
