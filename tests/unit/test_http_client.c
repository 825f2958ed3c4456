/*
 * test_http_client.c: the outbound HTTP client (backends/http_client.c) on
 * its own, against the fake A1111 server, which logs what it receives.
 *
 * The backends' tests show the client working for them; this one holds it
 * to the general contract of http_client.h that future callers (scraping,
 * webhooks, previews) will rely on: methods, headers and content types go
 * out as asked, every failure comes back in the right class with a sentence,
 * the byte cap holds, and a thread keeps its connection between requests.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/errtext.h"
#include "backends/http_client.h"
#include "fake_server.h"
#include "unit.h"
#include "util/xalloc.h"

static struct fake fk;
static char err[512];

/* One exchange with the fake; resp must be freed by the caller. */
static enum http_outcome ask(struct http_request *rq, const char *path, struct http_response *resp)
{
    char *url = xasprintf("%s%s", fk.base, path);
    rq->url = url;
    err[0] = '\0';
    enum http_outcome r = http_client_do(rq, resp, err, sizeof err);
    rq->url = NULL;
    free(url);
    return r;
}

static void test_methods_and_headers(void)
{
    struct http_response rs;
    struct http_request rq = {.who = "t"};
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_ANSWERED);
    CHECK(rs.status == 200);
    CHECK_STR(rs.content_type, "application/json");
    json_t *models = json_loadb(rs.body, rs.len, 0, NULL);
    CHECK(json_is_array(models) && json_array_size(models) == 1);
    CHECK(rs.body[rs.len] == '\0');
    json_decref(models);
    http_response_free(&rs);
    CHECK(rs.body == NULL && rs.len == 0 && rs.status == 0);
    http_response_free(&rs); /* twice is fine */

    /* POST: JSON by default, the body as given, Basic auth. */
    rq = (struct http_request){.method = "POST", .body = "{\"a\": 1}", .body_len = 8,
                               .userpwd = "alice:s3cret", .who = "t"};
    CHECK(ask(&rq, "/x/post", &rs) == HTTP_ANSWERED && rs.status == 404);
    http_response_free(&rs);
    json_t *seen = last_request_m(&fk, "POST", "/x/post");
    CHECK_STR(json_string_value(json_object_get(seen, "content_type")), "application/json");
    CHECK(json_integer_value(json_object_get(json_object_get(seen, "body"), "a")) == 1);
    CHECK_STR(json_string_value(json_object_get(seen, "authorization")), "Basic YWxpY2U6czNjcmV0");
    json_decref(seen);

    /* Another content type; extra header lines; a POST without a body. */
    const char *const headers[] = {"Authorization: Bearer tok", NULL};
    rq = (struct http_request){.method = "POST", .body = "plain words", .body_len = 5,
                               .content_type = "text/plain", .headers = headers, .who = "t"};
    CHECK(ask(&rq, "/x/text", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);
    seen = last_request_m(&fk, "POST", "/x/text");
    CHECK_STR(json_string_value(json_object_get(seen, "content_type")), "text/plain");
    CHECK_STR(json_string_value(json_object_get(seen, "body")), "plain"); /* body_len counts */
    CHECK_STR(json_string_value(json_object_get(seen, "authorization")), "Bearer tok");
    json_decref(seen);
    rq = (struct http_request){.method = "POST", .who = "t"};
    CHECK(ask(&rq, "/x/empty", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);
    seen = last_request_m(&fk, "POST", "/x/empty");
    CHECK(seen && json_is_null(json_object_get(seen, "body")));
    json_decref(seen);

    /* Methods the fake does not implement still reach it: it answers 501. */
    rq = (struct http_request){.method = "DELETE", .who = "t"};
    CHECK(ask(&rq, "/x/thing", &rs) == HTTP_ANSWERED && rs.status == 501);
    http_response_free(&rs);
    rq = (struct http_request){.method = "HEAD", .who = "t"};
    CHECK(ask(&rq, "/x/thing", &rs) == HTTP_ANSWERED && rs.status == 501 && rs.len == 0);
    http_response_free(&rs);

    /* An error answer is still an answer; its text is one call away. */
    rq = (struct http_request){.who = "t"};
    CHECK(ask(&rq, "/nope", &rs) == HTTP_ANSWERED && rs.status == 404);
    char text[64];
    http_error_text(rs.body, rs.len, text, sizeof text);
    CHECK_STR(text, "Not Found");
    http_response_free(&rs);
}

static void test_failures(void)
{
    struct http_response rs;
    struct http_request rq = {.who = "t", .max_bytes = 10};
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_TRANSIENT);
    CHECK_STR(err, "t: answer larger than 10 bytes");
    CHECK(rs.body == NULL && rs.status == 0);
    rq.max_bytes = (size_t)1 << 20;
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);

    /* Set before the call: no exchange at all. */
    atomic_int cancel = 1;
    rq = (struct http_request){.cancel = &cancel};
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_CANCELED);
    CHECK_STR(err, "http: canceled"); /* who defaults to "http" */

    rq = (struct http_request){.url = "ftp://127.0.0.1/x", .who = "t"};
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_PERMANENT);
    CHECK_HAS(err, "t: bad URL");
    rq.url = "http://";
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_PERMANENT);
    /* Nothing listens: the request never left, which costs nobody anything. */
    rq.url = "http://127.0.0.1:1/";
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_UNDELIVERED);
    CHECK_HAS(err, "t: cannot connect");
    rq = (struct http_request){.method = "POST", .url = "http://127.0.0.1:1/sdapi/v1/txt2img",
                               .body = "{}", .body_len = 2, .who = "t"};
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_UNDELIVERED);
    CHECK(rs.body == NULL);

    /* A server that never answers: the timeout, as transient. */
    set_mode(&fk, "{\"mode\": \"hang\"}");
    rq = (struct http_request){.method = "POST", .body = "{}", .body_len = 2, .timeout_ms = 300,
                               .who = "t"};
    CHECK(ask(&rq, "/sdapi/v1/txt2img", &rs) == HTTP_TRANSIENT);
    CHECK_HAS(err, "t: timed out after");
    /* ...and one that drops the connection mid-answer. */
    set_mode(&fk, "{\"mode\": \"close\"}");
    rq.timeout_ms = 5000;
    CHECK(ask(&rq, "/sdapi/v1/txt2img", &rs) == HTTP_TRANSIENT);
    CHECK_HAS(err, "mid-answer");
    set_mode(&fk, "{\"mode\": \"ok\"}");
}

/*
 * A server that dies after reading a POST, on a kept-alive connection:
 * libcurl would send the request again on a new connection (it does so
 * when no answer byte came back). The body must reach the server once: a
 * txt2img POST is a GPU job. Without the refused rewind the fake logs two.
 */
static void test_post_never_sent_twice(void)
{
    struct http_response rs;
    struct http_request rq = {.who = "t"};
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_ANSWERED); /* opens the connection */
    http_response_free(&rs);
    set_mode(&fk, "{\"mode\": \"drop\"}");
    int before = count_requests(&fk, "/sdapi/v1/txt2img");
    rq = (struct http_request){.method = "POST", .body = "{\"prompt\": \"once\"}", .body_len = 18,
                               .timeout_ms = 10000, .who = "t"};
    enum http_outcome o = ask(&rq, "/sdapi/v1/txt2img", &rs);
    if (o != HTTP_TRANSIENT)
        fprintf(stderr, "  outcome %d status %ld err %s\n", (int)o, rs.status, err);
    CHECK(o == HTTP_TRANSIENT);
    CHECK_HAS(err, "t: connection lost mid-request");
    CHECK(count_requests(&fk, "/sdapi/v1/txt2img") == before + 1);
    set_mode(&fk, "{\"mode\": \"ok\"}");
    /* The next request gets a new connection and an answer. */
    rq = (struct http_request){.method = "POST", .body = "{\"prompt\": \"x\"}", .body_len = 15,
                               .who = "t"};
    CHECK(ask(&rq, "/sdapi/v1/txt2img", &rs) == HTTP_ANSWERED && rs.status == 200);
    http_response_free(&rs);
}

static void test_probe_and_escape(void)
{
    char *url = xasprintf("%s/sdapi/v1/sd-models", fk.base);
    struct http_request rq = {.url = url, .who = "t"};
    CHECK(http_client_probe(&rq, err, sizeof err) == 0);
    free(url);
    url = xasprintf("%s/nope", fk.base);
    rq.url = url;
    CHECK(http_client_probe(&rq, err, sizeof err) == -1);
    CHECK_STR(err, "t: HTTP 404: Not Found");
    free(url);

    char *e = http_url_escape("a b/c&d=\xc3\xa9~");
    CHECK_STR(e, "a%20b%2Fc%26d%3D%C3%A9~");
    free(e);
    e = http_url_escape("");
    CHECK_STR(e, "");
    free(e);
}

/* The client's port of the last logged request to path, as the fake saw it. */
static long long peer_of(const char *path)
{
    json_t *r = last_request(&fk, path);
    long long port = json_integer_value(json_object_get(r, "peer"));
    json_decref(r);
    return port;
}

static void *other_thread(void *arg)
{
    struct http_response rs;
    struct http_request rq = {.who = "t2"};
    if (ask(&rq, "/sdapi/v1/samplers", &rs) == HTTP_ANSWERED)
        http_response_free(&rs);
    *(long long *)arg = peer_of("/sdapi/v1/samplers");
    return NULL;
}

/* One handle per thread: a thread's requests share its connection; another
 * thread has its own. */
static void test_keep_alive(void)
{
    struct http_response rs;
    struct http_request rq = {.who = "t"};
    CHECK(ask(&rq, "/sdapi/v1/sd-models", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);
    long long first = peer_of("/sdapi/v1/sd-models");
    CHECK(ask(&rq, "/sdapi/v1/loras", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);
    long long second = peer_of("/sdapi/v1/loras");
    CHECK(first > 0 && first == second);
    long long theirs = 0;
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &theirs);
    pthread_join(t, NULL);
    CHECK(theirs > 0 && theirs != first);
}

/*
 * A guarded request (a user-typed URL) to this machine is refused before a
 * socket is opened, whatever the spelling of the address: the fake, which
 * listens on 127.0.0.1, receives nothing. Only loopback is ever the target,
 * so a broken filter could reach nothing but the fake.
 */
static void test_guard(void)
{
    struct http_guard g = {.policy = NET_PUBLIC_ONLY, .max_redirects = 3};
    struct http_response rs;
    const char *hosts[] = {"127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                           "0.0.0.0", "localhost", "[::ffff:127.0.0.1]", "[::1]"};
    int before = count_requests(&fk, "/sdapi/v1/sd-models");
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char *url = xasprintf("http://%s:%d/sdapi/v1/sd-models", hosts[i], fk.port);
        struct http_request rq = {.url = url, .who = "scrape", .guard = &g,
                                  .connect_timeout_ms = 2000};
        enum http_outcome o = http_client_do(&rq, &rs, err, sizeof err);
        if (o != HTTP_REFUSED)
            fprintf(stderr, "  %s: outcome %d: %s\n", url, (int)o, err);
        CHECK(o == HTTP_REFUSED);
        CHECK_HAS(err, "scrape: refused: ");
        CHECK(strstr(err, "loopback") || strstr(err, "this network"));
        CHECK(rs.body == NULL && rs.final_url == NULL);
        free(url);
    }
    CHECK(count_requests(&fk, "/sdapi/v1/sd-models") == before);

    /* The message names the rule and the switch. */
    char *url = xasprintf("http://127.0.0.1:%d/sdapi/v1/sd-models", fk.port);
    struct http_request rq = {.url = url, .who = "scrape", .guard = &g};
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_REFUSED);
    CHECK_STR(err, "scrape: refused: 127.0.0.1 is loopback (127.0.0.0/8); private addresses "
                   "are off (setting outbound_addresses: all)");

    /* Schemes other than http and https, guarded: refused, naming the rule. */
    const char *schemes[] = {"file:///etc/passwd", "gopher://127.0.0.1:1/", "dict://127.0.0.1:1/",
                             "ftp://127.0.0.1:1/"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        rq.url = schemes[i];
        CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_REFUSED);
        CHECK_HAS(err, "only http and https");
    }

    /* The operator's switch opens the private ranges; the answer carries
     * the URL that answered. */
    g.policy = NET_ALLOW_PRIVATE;
    rq.url = url;
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_ANSWERED && rs.status == 200);
    CHECK_STR(rs.final_url, url);
    http_response_free(&rs);
    CHECK(count_requests(&fk, "/sdapi/v1/sd-models") == before + 1);

    /* The test policy refuses 127.0.0.1 only. */
    g.policy = NET_DENY_127_0_0_1;
    CHECK(http_client_do(&rq, &rs, err, sizeof err) == HTTP_REFUSED);
    CHECK_STR(err, "scrape: refused: 127.0.0.1 is loopback (127.0.0.1/32, the test policy)");
    free(url);

    /* A guarded request never rides a kept-alive connection that an
     * unguarded one opened: it would skip the address check. */
    struct http_request plain = {.who = "t"};
    CHECK(ask(&plain, "/sdapi/v1/sd-models", &rs) == HTTP_ANSWERED);
    http_response_free(&rs);
    g.policy = NET_PUBLIC_ONLY;
    plain.guard = &g;
    CHECK(ask(&plain, "/sdapi/v1/sd-models", &rs) == HTTP_REFUSED);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK(fake_start(&fk, "tests/fakes/fake_a1111.py") == 0);
    if (fk.pid > 0) {
        test_methods_and_headers();
        test_failures();
        test_probe_and_escape();
        test_keep_alive();
        test_guard();
        test_post_never_sent_twice();
    }
    fake_stop(&fk);
    UNIT_END("http_client");
}
