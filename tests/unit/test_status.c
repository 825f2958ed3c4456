/*
 * test_status.c: the one mapping from internal status to HTTP and slug.
 */
#include "unit.h"
#include "util/status.h"

int main(void)
{
    static const struct {
        sf_status st;
        int http;
        const char *slug;
    } want[] = {
        {SF_OK, 200, "ok"},
        {SF_EINVAL, 400, "invalid_request"},
        {SF_EUNAUTH, 401, "unauthorized"},
        {SF_EFORBIDDEN, 403, "forbidden"},
        {SF_ENOTFOUND, 404, "not_found"},
        {SF_EMETHOD, 405, "method_not_allowed"},
        {SF_ECONFLICT, 409, "conflict"},
        {SF_ETOOLARGE, 413, "payload_too_large"},
        {SF_EURITOOLONG, 414, "uri_too_long"},
        {SF_EMEDIATYPE, 415, "unsupported_media_type"},
        {SF_ERATELIMIT, 429, "rate_limited"},
        {SF_EINTERNAL, 500, "internal_error"},
        {SF_ENOTIMPL, 501, "not_implemented"},
        {SF_EUNAVAILABLE, 503, "unavailable"},
        {SF_EQUEUEFULL, 503, "queue_full"},
    };
    size_t n = sizeof(want) / sizeof(want[0]);
    CHECK(n == SF_STATUS_COUNT); /* every status has a row here */
    for (size_t i = 0; i < n; i++) {
        CHECK(sf_status_http(want[i].st) == want[i].http);
        CHECK_STR(sf_status_slug(want[i].st), want[i].slug);
    }
    /* Out of range: a 500, never a crash or an empty slug. */
    CHECK(sf_status_http((sf_status)99) == 500);
    CHECK_STR(sf_status_slug((sf_status)-1), "internal_error");
    UNIT_END("status");
}
