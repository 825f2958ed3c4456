/*
 * fuzz_router.c: a request line as the server takes it apart: the path,
 * percent-decoded (http_unescape, which libmicrohttpd is given) and matched
 * against the route table (router_match, as on_request does); and the
 * query, split into arguments the way libmicrohttpd splits it ('&', then
 * the first '=', '+' as a space), each key and value decoded, and the ones
 * the handlers read parsed: page and per_page (page_parse, req_page) and a
 * run status filter (run_state_parse).
 *
 * Input: the method on the first line, the request target ("/api/runs/7?
 * page=2") on the second.
 */
#include "fuzz.h"
#include "http/router.h"
#include "http/server.h"
#include "store/states.h"
#include "util/pagination.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

static size_t count_captures(const char *pattern)
{
    size_t n = 0;
    for (; *pattern; pattern++)
        n += *pattern == ':';
    return n;
}

/* The least value the k-th capture of pattern may take: 0 for ":index" (a
 * run's 0-based item), 1 for every ":id". */
static long long capture_min(const char *pattern, int k)
{
    for (const char *p = pattern; (p = strchr(p, ':')) != NULL; p++)
        if (k-- == 0)
            return strncmp(p, ":index", 6) == 0 ? 0 : 1;
    return 1;
}

static void match_path(const char *method, char *path)
{
    size_t before = strlen(path);
    size_t len = http_unescape(path);
    FUZZ_ASSERT(len <= before && len == strlen(path));

    const struct route *route = NULL;
    long long ids[REQ_MAX_IDS];
    int nids = -1;
    char allow[256]; /* as on_request */
    enum route_match m = router_match(method, path, &route, ids, &nids, allow, sizeof allow);
    FUZZ_ASSERT(strlen(allow) < sizeof allow);
    if (m == MATCH_FOUND) {
        FUZZ_ASSERT(route >= sf_routes && route < sf_routes + sf_nroutes);
        FUZZ_ASSERT(strcmp(route->method, strcmp(method, "HEAD") == 0 ? "GET" : method) == 0);
        FUZZ_ASSERT(nids >= 0 && nids <= REQ_MAX_IDS);
        FUZZ_ASSERT((size_t)nids == count_captures(route->pattern));
        for (int i = 0; i < nids; i++)
            FUZZ_ASSERT(ids[i] >= capture_min(route->pattern, i));
    } else if (m == MATCH_WRONG_METHOD) {
        FUZZ_ASSERT(allow[0] != '\0');
    }
}

/* The query arguments the handlers read, as they read them. */
struct query {
    char *page, *per_page, *status;
};

static void take_arg(struct query *q, char *arg)
{
    for (char *p = arg; *p; p++) /* libmicrohttpd: '+' is a space */
        if (*p == '+')
            *p = ' ';
    char *eq = strchr(arg, '=');
    char *value = eq ? eq + 1 : NULL;
    if (eq)
        *eq = '\0';
    http_unescape(arg);
    if (value)
        http_unescape(value);
    char **slot = strcmp(arg, "page") == 0       ? &q->page
                  : strcmp(arg, "per_page") == 0 ? &q->per_page
                  : strcmp(arg, "status") == 0   ? &q->status
                                                 : NULL;
    if (slot && !*slot) /* libmicrohttpd's lookup finds the first */
        *slot = value ? value : arg + strlen(arg);
}

static void parse_query(char *query)
{
    struct query q = {NULL, NULL, NULL};
    char *save = NULL;
    for (char *arg = strtok_r(query, "&", &save); arg; arg = strtok_r(NULL, "&", &save))
        take_arg(&q, arg);

    struct page pg;
    const char *bad = NULL;
    char err[128] = "";
    if (page_parse(q.page, q.per_page, &pg, &bad, err, sizeof err) == 0) {
        FUZZ_ASSERT(pg.page >= 1 && pg.per_page >= 1 && pg.per_page <= PAGE_MAX_SIZE);
        FUZZ_ASSERT(page_offset(&pg) >= 0);
        json_t *doc = json_object();
        page_annotate(doc, &pg, 123456789);
        json_decref(doc);
    } else {
        FUZZ_ASSERT(bad && err[0]);
    }
    enum run_state state;
    if (q.status && run_state_parse(q.status, &state) == 0)
        FUZZ_ASSERT(strcmp(run_state_name(state), q.status) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method = fuzz_line(&data, &size);
    char *target = fuzz_line(&data, &size);
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    match_path(method, target);
    if (query)
        parse_query(query);
    free(target);
    free(method);
    return 0;
}
