/*
 * limits.c: generate's admission (limits.h): access, the request window,
 * the item buckets, and the answers to the caps runs_create counts.
 *
 * The window and the buckets live in this process's memory (a restart
 * gives every caller a full bucket); what bounds the queue across restarts
 * and processes is the pair of caps counted in the database.
 */
#include "api/limits.h"

#include <math.h>
#include <stdio.h>

#include "queue/engine.h"
#include "util/ratelimit.h"
#include "util/timeutil.h"

static struct window_table call_windows = WINDOW_TABLE_INIT;
static struct bucket_table item_buckets = BUCKET_TABLE_INIT;

/* Before any item has been drawn, there is no speed to go by. */
#define RETRY_UNKNOWN_S 60
#define RETRY_MAX_S 3600

sf_status generate_admit_call(struct sf_request *req, struct sf_response *res)
{
    const struct sf_config *cfg = req->cfg;
    if (cfg->generate_access == GENERATE_TOKEN && !req->authenticated)
        return res_fail(res, SF_EUNAUTH, "generate needs a token on this server");
    if (cfg->generate_access == GENERATE_ADMIN) {
        if (!req->authenticated)
            return res_fail(res, SF_EUNAUTH, "generate needs an admin token on this server");
        if (!req->is_admin)
            return res_fail(res, SF_EFORBIDDEN, "generate needs an admin token on this server; yours is not one");
    }
    if (req->is_admin || cfg->generate_rate == 0)
        return SF_OK;
    long long retry = window_hit(&call_windows, req_client_ip(req), cfg->generate_rate,
                                 cfg->generate_rate_window_s, now_unix_ms() / 1000);
    if (retry == 0)
        return SF_OK;
    res_header(res, "Retry-After", "%lld", retry);
    return res_fail(res, SF_ERATELIMIT, "too many generate requests; try again in %lld s", retry);
}

static sf_status never_fits(struct sf_response *res, long long n, const char *why)
{
    char text[256];
    snprintf(text, sizeof(text), "has %lld items; %s", n, why);
    json_t *fields = json_pack("{ss}", "template", text);
    return res_invalid(res, fields, "this run can never be queued: the template %s", text);
}

sf_status generate_admit_items(struct sf_request *req, struct sf_response *res, long long n,
                               struct run_caps *caps, struct generate_ticket *ticket)
{
    const struct sf_config *cfg = req->cfg;
    char why[192];
    *caps = (struct run_caps){.queue_capacity = cfg->queue_capacity_items,
                              .anonymous_max = req->authenticated ? 0 : cfg->anonymous_queued_items_max};
    *ticket = (struct generate_ticket){.items = 0};
    if (caps->queue_capacity > 0 && n > caps->queue_capacity) {
        snprintf(why, sizeof(why), "the queue holds at most %lld (queue_capacity_items)",
                 caps->queue_capacity);
        return never_fits(res, n, why);
    }
    if (caps->anonymous_max > 0 && n > caps->anonymous_max) {
        snprintf(why, sizeof(why), "callers without a token may have at most %lld waiting "
                 "(anonymous_queued_items_max); send a token", caps->anonymous_max);
        return never_fits(res, n, why);
    }
    if (req->is_admin || cfg->generate_items_per_minute == 0)
        return SF_OK;
    struct bucket_rate rate = {cfg->generate_items_burst, cfg->generate_items_per_minute};
    if (n > rate.burst) {
        snprintf(why, sizeof(why), "a caller without an admin token may queue at most %lld at once "
                 "(generate_items_burst)", rate.burst);
        return never_fits(res, n, why);
    }
    if (req->authenticated)
        snprintf(ticket->client, sizeof(ticket->client), "token:%lld", req->token_id);
    else
        snprintf(ticket->client, sizeof(ticket->client), "ip:%s", req_client_ip(req));
    long long retry = bucket_take(&item_buckets, ticket->client, n, &rate, mono_ms());
    if (retry == 0) {
        ticket->items = n;
        return SF_OK;
    }
    res_header(res, "Retry-After", "%lld", retry);
    return res_fail(res, SF_ERATELIMIT,
                    "you may queue %lld items a minute, at most %lld at once; these %lld fit again "
                    "in %lld s", rate.per_minute, rate.burst, n, retry);
}

void generate_give_back(const struct sf_request *req, const struct generate_ticket *ticket)
{
    if (ticket->items == 0)
        return;
    struct bucket_rate rate = {req->cfg->generate_items_burst, req->cfg->generate_items_per_minute};
    bucket_give_back(&item_buckets, ticket->client, ticket->items, &rate, mono_ms());
}

/* Seconds until excess more items have been drawn: every endpoint that
 * has drawn something delivers concurrency / mean item time items a
 * second. An estimate (other runs take turns too), 1..RETRY_MAX_S. */
static long long drain_estimate_s(long long excess)
{
    struct engine_stats es;
    engine_stats(&es);
    double per_s = 0;
    for (int i = 0; i < es.nendpoints; i++)
        if (es.endpoints[i].done > 0 && es.endpoints[i].mean_item_s > 0)
            per_s += es.endpoints[i].concurrency / es.endpoints[i].mean_item_s;
    engine_stats_free(&es);
    if (per_s <= 0)
        return RETRY_UNKNOWN_S;
    double s = ceil((double)excess / per_s);
    return s < 1 ? 1 : s > RETRY_MAX_S ? RETRY_MAX_S : (long long)s;
}

sf_status generate_refused(struct sf_request *req, struct sf_response *res, sf_status st,
                           const struct run_caps *caps)
{
    long long retry = drain_estimate_s(caps->excess);
    res_header(res, "Retry-After", "%lld", retry);
    if (st == SF_EQUEUEFULL)
        return res_fail(res, st, "the queue is full (queue_capacity_items %lld); try again in about %lld s",
                        caps->queue_capacity, retry);
    return res_fail(res, st, "callers without a token have as many items waiting as they may "
                    "(anonymous_queued_items_max %lld); try again in about %lld s, or send a token",
                    caps->anonymous_max, retry);
}
