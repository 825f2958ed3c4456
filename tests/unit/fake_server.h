/*
 * fake_server.h: starting and stopping the fake inference servers of
 * tests/fakes/ from a unit test (header-only, like unit.h).
 *
 * A fake is started as "python3 <script> --port 0", prints "listening PORT"
 * on its stdout once it accepts connections, and is stopped with SIGTERM.
 * Tests run from the repository root (tests/run.sh does), so script paths
 * are relative to it. The fakes are driven through their control routes:
 * POST /_fake/mode picks a behaviour, GET /_fake/requests lists what they
 * received (method, path, body, some headers, the client's port).
 */
#ifndef SF_FAKE_SERVER_H
#define SF_FAKE_SERVER_H

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/http_client.h"
#include "util/xalloc.h"

struct fake {
    pid_t pid;
    int port;
    char base[64];
};

static inline int fake_start(struct fake *f, const char *script)
{
    int p[2];
    memset(f, 0, sizeof *f);
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execlp("python3", "python3", script, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    f->pid = pid;
    char line[128];
    size_t n = 0;
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    while (n < sizeof line - 1 && poll(&pf, 1, 10000) > 0) {
        ssize_t r = read(p[0], line + n, 1);
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(p[0]);
    if (sscanf(line, "listening %d", &f->port) != 1) {
        fprintf(stderr, "%s did not start (got \"%s\")\n", script, line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        f->pid = 0;
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
    return 0;
}

static inline void fake_stop(struct fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

/* ---- the fakes' control routes ---- */

/* A plain exchange with a fake; the body, or NULL. */
static inline char *fetch(const struct fake *f, const char *method, const char *path,
                          const char *body)
{
    char *url = xasprintf("%s%s", f->base, path);
    char err[256];
    struct http_request rq = {.method = method, .url = url, .body = body,
                              .body_len = body ? strlen(body) : 0, .timeout_ms = 5000,
                              .who = "test"};
    struct http_response rs;
    enum http_outcome r = http_client_do(&rq, &rs, err, sizeof err);
    free(url);
    if (r != HTTP_ANSWERED) {
        fprintf(stderr, "fetch %s: %s\n", path, err);
        return NULL;
    }
    return http_response_take_body(&rs, NULL);
}

static inline void set_mode(const struct fake *f, const char *json)
{
    free(fetch(f, "POST", "/_fake/mode", json));
    free(fetch(f, "POST", "/_fake/reset", "{}"));
}

/* The last request the fake got with that method (NULL: any) whose path
 * starts with prefix (new ref). */
static inline json_t *last_request_m(const struct fake *f, const char *method, const char *prefix)
{
    char *s = fetch(f, "GET", "/_fake/requests", NULL);
    json_t *all = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    json_t *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r) {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *m = json_string_value(json_object_get(r, "method"));
        if (p && strncmp(p, prefix, strlen(prefix)) == 0 &&
            (!method || (m && strcmp(m, method) == 0))) {
            json_decref(found);
            found = json_incref(r);
        }
    }
    json_decref(all);
    return found;
}

static inline json_t *last_request(const struct fake *f, const char *prefix)
{
    return last_request_m(f, NULL, prefix);
}

static inline int count_requests(const struct fake *f, const char *prefix)
{
    char *s = fetch(f, "GET", "/_fake/requests", NULL);
    json_t *all = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r) {
        const char *p = json_string_value(json_object_get(r, "path"));
        if (p && strncmp(p, prefix, strlen(prefix)) == 0)
            n++;
    }
    json_decref(all);
    return n;
}

#endif
