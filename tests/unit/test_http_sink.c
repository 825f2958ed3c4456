/*
 * test_http_sink.c: the outbound client's sink (backends/http_client.h),
 * which scrape jobs use to write a download to a file as it arrives: the
 * sink gets every byte, in order, and the body stays empty; the byte cap
 * counts what the sink took, with and without Content-Length; a sink that
 * fails ends the exchange with a sentence. Against tests/fakes/fake_web.py
 * on 127.0.0.1.
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/http_client.h"
#include "unit.h"
#include "util/hash.h"
#include "util/xalloc.h"

static pid_t fake_pid;
static int fake_port;

static int start_fake(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    fake_pid = fork();
    if (fake_pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", "tests/fakes/fake_web.py", "--host", "127.0.0.1", "--port", "0",
               (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64];
    size_t n = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&pf, 1, 10000) > 0 && read(p[0], line + n, 1) == 1 &&
           line[n] != '\n')
        n++;
    line[n] = '\0';
    close(p[0]);
    return sscanf(line, "PORT %d", &fake_port) == 1 ? 0 : -1;
}

struct got {
    struct sha256_stream hash;
    size_t len;
    int fail_after; /* calls before the sink refuses; -1 never */
    int calls;
};

static int sink(const char *p, size_t n, void *ud)
{
    struct got *g = ud;
    if (g->fail_after >= 0 && g->calls++ >= g->fail_after)
        return -1;
    sha256_stream_update(&g->hash, p, n);
    g->len += n;
    return 0;
}

static enum http_outcome get(const char *path, size_t max, struct got *g, struct http_response *resp,
                             char *err, size_t errlen)
{
    char *url = xasprintf("http://127.0.0.1:%d%s", fake_port, path);
    struct http_request req = {.url = url, .timeout_ms = 20000, .max_bytes = max, .who = "sink",
                               .sink = g ? sink : NULL, .sink_ud = g};
    enum http_outcome o = http_client_do(&req, resp, err, errlen);
    free(url);
    return o;
}

int main(void)
{
    if (start_fake() != 0) {
        fprintf(stderr, "fake_web.py did not start\n");
        CHECK(0);
        UNIT_END("http_sink");
    }
    char err[256];
    struct http_response plain, sunk;
    /* the same answer into memory and through the sink: the same bytes */
    CHECK(get("/big/s.png?kb=300", 0, NULL, &plain, err, sizeof err) == HTTP_ANSWERED);
    struct got g = {.fail_after = -1};
    sha256_stream_begin(&g.hash);
    CHECK(get("/big/s.png?kb=300", 0, &g, &sunk, err, sizeof err) == HTTP_ANSWERED);
    char a[65], b[65];
    sha256_hex(plain.body, plain.len, a);
    sha256_stream_hex(&g.hash, b);
    CHECK(plain.len > 300 * 1024 && g.len == plain.len && sunk.len == plain.len);
    CHECK_STR(b, a);
    CHECK(sunk.body && sunk.body[0] == '\0'); /* nothing kept in memory */
    CHECK(strcmp(sunk.content_type, "image/png") == 0 && sunk.final_url != NULL);
    http_response_free(&plain);
    http_response_free(&sunk);

    /* the cap counts what the sink took: with Content-Length, and without */
    struct got c = {.fail_after = -1};
    sha256_stream_begin(&c.hash);
    CHECK(get("/big/s.png?kb=300", 100000, &c, &sunk, err, sizeof err) == HTTP_TRANSIENT);
    CHECK(sunk.cut == HTTP_CUT_TOO_LARGE && c.len <= 100000);
    CHECK_HAS(err, "larger than");
    sha256_stream_free(&c.hash);
    struct got h = {.fail_after = -1};
    sha256_stream_begin(&h.hash);
    CHECK(get("/huge.png", (size_t)1 << 20, &h, &sunk, err, sizeof err) == HTTP_TRANSIENT);
    CHECK(sunk.cut == HTTP_CUT_TOO_LARGE && h.len <= (size_t)1 << 20);
    CHECK_HAS(err, "larger than 1 MiB");
    sha256_stream_free(&h.hash);

    /* a sink that fails ends the exchange */
    struct got f = {.fail_after = 1};
    sha256_stream_begin(&f.hash);
    CHECK(get("/big/s.png?kb=300", 0, &f, &sunk, err, sizeof err) == HTTP_TRANSIENT);
    CHECK_HAS(err, "sink: the answer could not be kept");
    CHECK(sunk.body == NULL && sunk.status == 0);
    sha256_stream_free(&f.hash);

    kill(fake_pid, SIGTERM);
    waitpid(fake_pid, NULL, 0);
    UNIT_END("http_sink");
}
