/*
 * status.c: the single mapping from internal status to HTTP status and slug.
 */
#include "util/status.h"

static const struct {
    int http;
    const char *slug;
} status_table[SF_STATUS_COUNT] = {
    [SF_OK] = {200, "ok"},
    [SF_EINVAL] = {400, "invalid_request"},
    [SF_EUNAUTH] = {401, "unauthorized"},
    [SF_EFORBIDDEN] = {403, "forbidden"},
    [SF_ENOTFOUND] = {404, "not_found"},
    [SF_EMETHOD] = {405, "method_not_allowed"},
    [SF_ECONFLICT] = {409, "conflict"},
    [SF_ETOOLARGE] = {413, "payload_too_large"},
    [SF_EURITOOLONG] = {414, "uri_too_long"},
    [SF_EMEDIATYPE] = {415, "unsupported_media_type"},
    [SF_ERATELIMIT] = {429, "rate_limited"},
    [SF_EINTERNAL] = {500, "internal_error"},
    [SF_ENOTIMPL] = {501, "not_implemented"},
    [SF_EUNAVAILABLE] = {503, "unavailable"},
    [SF_EQUEUEFULL] = {503, "queue_full"},
};

int sf_status_http(sf_status st)
{
    if ((unsigned)st >= SF_STATUS_COUNT)
        return 500;
    return status_table[st].http;
}

const char *sf_status_slug(sf_status st)
{
    if ((unsigned)st >= SF_STATUS_COUNT)
        return "internal_error";
    return status_table[st].slug;
}
