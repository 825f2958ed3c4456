/*
 * health.c: GET /api/health, for load balancers, the web page and humans.
 * It reads the database, so "db": "ok" means a query really ran.
 */
#include "api/api.h"

#include "queue/engine.h"
#include "setforge.h"

static json_t *backends_json(void)
{
    struct engine_stats es;
    engine_stats(&es);
    json_t *list = json_array();
    for (int i = 0; i < es.nendpoints; i++) {
        const struct engine_endpoint_stats *e = &es.endpoints[i];
        json_t *entry = json_pack(
            "{ss ss ss si sI sI sI sf}", "name", e->name, "type", e->type, "state", e->state,
            "concurrency", e->concurrency, "in_flight", (json_int_t)e->in_flight, "done",
            (json_int_t)e->done, "failed", (json_int_t)e->failed, "mean_item_s", e->mean_item_s);
        if (e->dialect)
            json_object_set_new(entry, "dialect", json_string(e->dialect));
        json_array_append_new(list, entry);
    }
    engine_stats_free(&es);
    return list;
}

sf_status get_health(struct sf_request *req, struct sf_response *res)
{
    const char *why = NULL;
    json_t *queue = queue_state_json(&why);
    if (!queue) {
        json_t *doc = json_pack("{ss ss ss ss ss}", "status", "degraded", "version", SETFORGE_VERSION,
                                "db", why ? why : "error", "error", "the database cannot be read",
                                "code", sf_status_slug(SF_EUNAVAILABLE));
        return res_json(res, 503, doc);
    }
    return res_json(res, 200, json_pack("{ss ss ss so so}", "status", "ok", "version", SETFORGE_VERSION,
                                        "db", "ok", "queue", queue, "backends", backends_json()));
}
