/*
 * health.c: GET /api/health, for load balancers, the web page and humans.
 * It reads the database, so "db": "ok" means a query really ran.
 */
#include "api/api.h"
#include "setforge.h"
#include "queue/engine.h"
#include "store/db.h"

static const char SQL_QUEUE[] =
    "SELECT (SELECT count(*) FROM run_items WHERE status = 'queued'), "
    "(SELECT count(*) FROM run_items WHERE status = 'running')";

sf_status get_health(struct sf_request *req, struct sf_response *res)
{
    sqlite3_stmt *st = db_stmt(SQL_QUEUE);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        json_t *doc = json_pack("{ss ss ss ss ss}", "status", "degraded", "version", SETFORGE_VERSION,
                                "db", sqlite3_errstr(rc), "error", "the database cannot be read",
                                "code", sf_status_slug(SF_EUNAVAILABLE));
        db_done(st);
        return res_json(res, 503, doc);
    }
    json_t *queue = json_pack("{sIsI}", "queued", (json_int_t)sqlite3_column_int64(st, 0),
                              "running", (json_int_t)sqlite3_column_int64(st, 1));
    db_done(st);
    return res_json(res, 200, json_pack("{ss ss ss so so}", "status", "ok", "version", SETFORGE_VERSION,
                                        "db", "ok", "queue", queue, "backends", engine_backends_json()));
}
