/*
 * queue.c: POST /api/queue/pause and /resume, the queue-wide switch an
 * operator flips before a restart, a driver update or a long lunch
 * (docs/run-controls.md). The engine keeps the flag durable (a meta row);
 * the answer is the queue part of /api/health.
 */
#include "api/api.h"

#include "queue/engine.h"
#include "store/runs.h"

json_t *queue_state_json(const char **why)
{
    long long queued = 0, running = 0;
    if (runs_queue_depth(&queued, &running, why) != SF_OK)
        return NULL;
    return json_pack("{sI sI sb}", "queued", (json_int_t)queued, "running", (json_int_t)running,
                     "paused", engine_queue_paused());
}

static sf_status set_paused(struct sf_response *res, int paused)
{
    sf_status st = engine_pause_queue(paused);
    if (st != SF_OK)
        return res_fail(res, st, "cannot %s the queue now", paused ? "pause" : "resume");
    const char *why = NULL;
    json_t *queue = queue_state_json(&why);
    if (!queue)
        return res_fail(res, SF_EUNAVAILABLE, "the queue was %s, but cannot be read back (%s)",
                        paused ? "paused" : "resumed", why ? why : "error");
    return res_json(res, 200, json_pack("{so ss}", "queue", queue, "message",
                                        paused ? "queue paused; items being drawn finish, "
                                                 "nothing more is claimed"
                                               : "queue resumed"));
}

sf_status pause_queue(struct sf_request *req, struct sf_response *res)
{
    return set_paused(res, 1);
}

sf_status resume_queue(struct sf_request *req, struct sf_response *res)
{
    return set_paused(res, 0);
}
