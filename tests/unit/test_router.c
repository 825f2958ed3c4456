/*
 * test_router.c: path matching against the real route table, and the JSON
 * text helpers the hot routes use.
 */
#include "http/router.h"
#include "unit.h"
#include "util/jsontext.h"

static enum route_match m(const char *method, const char *path, const struct route **r,
                          long long ids[REQ_MAX_IDS], int *n, char *allow)
{
    *r = NULL;
    return router_match(method, path, r, ids, n, allow, 256);
}

int main(void)
{
    const struct route *r;
    long long ids[REQ_MAX_IDS];
    int n;
    char allow[256];

    CHECK(m("GET", "/api/batch-templates", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(r && r->auth == ROUTE_PUBLIC && n == 0);
    CHECK(m("POST", "/api/batch-templates", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(r && r->auth == ROUTE_ADMIN && r->body == BODY_JSON);
    CHECK(m("GET", "/api/batch-templates/42", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(n == 1 && ids[0] == 42);
    CHECK(m("HEAD", "/api/batch-templates/42", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(m("GET", "/api/batch-templates/7/runs/9", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(n == 2 && ids[0] == 7 && ids[1] == 9);
    CHECK(m("DELETE", "/api/albums/3/images/12", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(n == 2 && ids[0] == 3 && ids[1] == 12);
    CHECK(m("GET", "/api/batch-templates/1/items.csv", &r, ids, &n, allow) == MATCH_FOUND);

    /* ids: positive decimal, no leading zero, at most 18 digits */
    CHECK(m("GET", "/api/albums/0", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/01", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/-1", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/abc", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/1x", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/999999999999999999", &r, ids, &n, allow) == MATCH_FOUND);
    CHECK(m("GET", "/api/albums/9999999999999999999", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums/", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/albums//images", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "/api/album", &r, ids, &n, allow) == MATCH_NONE);
    CHECK(m("GET", "//", &r, ids, &n, allow) == MATCH_NONE); /* "/" is the page (test_web.c) */
    CHECK(m("GET", "", &r, ids, &n, allow) == MATCH_NONE);

    /* wrong method: Allow lists the path's methods */
    CHECK(m("PATCH", "/api/albums", &r, ids, &n, allow) == MATCH_WRONG_METHOD && !r);
    CHECK_STR(allow, "GET, HEAD, POST, OPTIONS");
    CHECK(m("GET", "/api/runs/5/cancel", &r, ids, &n, allow) == MATCH_WRONG_METHOD);
    CHECK_STR(allow, "POST, OPTIONS");
    CHECK(m("OPTIONS", "/api/albums/3", &r, ids, &n, allow) == MATCH_WRONG_METHOD);
    CHECK_STR(allow, "GET, HEAD, PUT, DELETE, OPTIONS");
    CHECK(m("OPTIONS", "/nope", &r, ids, &n, allow) == MATCH_NONE);

    /* every handler name follows <verb>_<noun>: at least a non-NULL handler */
    for (size_t i = 0; i < sf_nroutes; i++)
        CHECK(sf_routes[i].handler != NULL && sf_routes[i].pattern[0] == '/');

    /* JSON text escaping */
    struct strbuf sb;
    sb_init(&sb);
    jt_str(&sb, "plain");
    CHECK_STR(sb.data, "\"plain\"");
    sb.len = 0;
    jt_str(&sb, "q\"b\\n\nt\tr\r\x01 ♠ 王");
    CHECK_STR(sb.data, "\"q\\\"b\\\\n\\nt\\tr\\r\\u0001 ♠ 王\"");
    sb.len = 0;
    jt_key(&sb, "a", 1);
    jt_key(&sb, "b", 0);
    CHECK_STR(sb.data, "\"a\":,\"b\":");
    sb.len = 0;
    jt_str(&sb, "");
    CHECK_STR(sb.data, "\"\"");
    /* round trip through jansson */
    sb.len = 0;
    const char *tricky = "\x1f\"\\/\b\f end";
    jt_str(&sb, tricky);
    json_t *back = json_loads(sb.data, JSON_DECODE_ANY, NULL);
    CHECK(back && strcmp(json_string_value(back), tricky) == 0);
    json_decref(back);
    sb_free(&sb);
    UNIT_END("router");
}
