/*
 * test_backends.c: the real backends (a1111, comfyui, command) and the
 * registry, against fake servers that speak the real protocols.
 *
 * The fakes (tests/fakes/fake_a1111.py, fake_comfyui.py) are started here,
 * once each, and switched between behaviours through their control route;
 * every fault a GPU server can show (500s, broken base64, a JPEG, a
 * truncated PNG, invalid JSON, a hang, a dropped connection, 4xx, node and
 * execution errors) must come out of generate() as the right result with a
 * message a user can act on. What the backends sent is read back from the
 * fakes' request logs (substituted prompt, LoRA tags, rewired graphs).
 * Run from the repository root (tests/run.sh does).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/backends_real.h"
#include "fake_server.h"
#include "unit.h"
#include "util/png.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* ---- jobs ---- */

static char data_dir[64];

static struct sf_job make_job(atomic_int *cancel)
{
    struct sf_job j = {
        .run_id = 7,
        .item_index = 3,
        .prompt = "a red fox in the snow",
        .negative_prompt = "blurry",
        .seed = 1234,
        .steps = 20,
        .cfg_scale = 7.5,
        .width = 64,
        .height = 48,
        .loras = NULL,
        .data_dir = data_dir,
        .cancel = cancel,
    };
    return j;
}

static struct sf_backend *make(struct sf_backend *(*ctor)(const json_t *, int, char *, size_t),
                               const char *json_text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *ep = json_loads(json_text, 0, &je);
    if (!ep) {
        fprintf(stderr, "bad test JSON: %s: %s\n", json_text, je.text);
        return NULL;
    }
    err[0] = '\0';
    struct sf_backend *b = ctor(ep, 0, err, errlen);
    json_decref(ep);
    return b;
}

static enum backend_result run(struct sf_backend *b, const struct sf_job *job,
                               struct sf_image *img, char *err, size_t errlen)
{
    err[0] = '\0';
    memset(img, 0, sizeof *img);
    enum backend_result r = b->ops->generate(b, job, img, err, errlen);
    if (r == BACKEND_OK) {
        int w, h;
        char perr[200];
        if (png_check(img->png, img->png_len, &w, &h, perr, sizeof perr) != 0 ||
            w != img->width || h != img->height) {
            fprintf(stderr, "generate returned OK with a bad PNG\n");
            unit_failed++;
        }
    }
    return r;
}

/*
 * A call that never ends on its own, given the engine's deadline (timeout_ms)
 * on an endpoint whose timeout_s is 600: it ends transient, not before the
 * deadline and long before timeout_s, saying so (want). Destroys b.
 */
static void ends_at_the_job_deadline(struct sf_backend *b, struct sf_job job, long timeout_ms,
                                     const char *want)
{
    CHECK(b != NULL);
    if (!b)
        return;
    struct sf_image img;
    char err[1024];
    job.timeout_ms = timeout_ms;
    long long t0 = mono_ms();
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    long long el = mono_ms() - t0;
    CHECK(el >= timeout_ms - 100 && el < timeout_ms + 9000);
    CHECK_HAS(err, want);
    b->ops->destroy(b);
}

/*
 * Canceling a job in flight. The canceler thread waits for a condition that
 * shows the backend's work has started (the fake logged the request, the
 * program left its mark), never for a guessed number of milliseconds, then
 * sets the flag (and calls ops->cancel unless flag_only). What is measured
 * is the time from the cancel to generate() returning.
 */
struct started_at_fake {
    const struct fake *f;
    const char *path; /* a request whose path starts with this has arrived */
};

static int fake_got(const void *arg)
{
    const struct started_at_fake *s = arg;
    return count_requests(s->f, s->path) > 0;
}

static int file_made(const void *arg)
{
    return access((const char *)arg, F_OK) == 0;
}

struct canceler {
    struct sf_backend *b;
    atomic_int *flag;
    int (*started)(const void *arg);
    const void *arg;
    int flag_only;            /* set the flag without calling b->ops->cancel */
    int saw_start;            /* the condition held (else it gave up after 30 s) */
    atomic_llong canceled_at; /* mono_ms() when the flag was set */
};

static void *cancel_when_started(void *arg)
{
    struct canceler *c = arg;
    /* Only a broken test waits 30 s; it then cancels anyway and fails. */
    long long give_up = mono_ms() + 30000;
    while (!(c->saw_start = c->started(c->arg)) && mono_ms() < give_up) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&c->canceled_at, mono_ms());
    atomic_store(c->flag, 1);
    if (c->b->ops->cancel && !c->flag_only)
        c->b->ops->cancel(c->b);
    return NULL;
}

/* Generates, canceled once started() holds; returns the ms from the cancel
 * to generate() returning (-1 when it returned before being canceled). */
static long long run_canceled2(struct sf_backend *b, struct sf_job *job,
                               int (*started)(const void *), const void *arg, int flag_only,
                               enum backend_result *r)
{
    atomic_int flag = 0;
    job->cancel = &flag;
    struct canceler c = {.b = b, .flag = &flag, .started = started, .arg = arg,
                         .flag_only = flag_only};
    pthread_t t;
    pthread_create(&t, NULL, cancel_when_started, &c);
    struct sf_image img;
    char err[512];
    *r = run(b, job, &img, err, sizeof err);
    long long returned = mono_ms();
    pthread_join(t, NULL);
    free(img.png);
    job->cancel = NULL;
    CHECK(c.saw_start);
    long long el = returned >= atomic_load(&c.canceled_at) ? returned - atomic_load(&c.canceled_at)
                                                          : -1;
    fprintf(stderr, "note: %s returned %lld ms after the cancel\n", b->ops->type, el);
    return el;
}

static long long run_canceled(struct sf_backend *b, struct sf_job *job,
                              int (*started)(const void *), const void *arg,
                              enum backend_result *r)
{
    return run_canceled2(b, job, started, arg, 0, r);
}

/* Several workers on one backend at once (concurrency > 1). */
struct par {
    struct sf_backend *b;
    int i;
    enum backend_result r;
    int width;
};

static void *par_run(void *arg)
{
    struct par *p = arg;
    struct sf_job job = make_job(NULL);
    job.width = 32 + p->i * 8;
    job.seed = p->i;
    struct sf_image img;
    char err[256];
    p->r = p->b->ops->generate(p->b, &job, &img, err, sizeof err);
    if (p->r == BACKEND_OK) {
        p->width = img.width;
        free(img.png);
    } else {
        fprintf(stderr, "parallel %d: %s\n", p->i, err);
    }
    return NULL;
}

static void check_parallel(struct sf_backend *b)
{
    struct par ps[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        ps[i] = (struct par){b, i, BACKEND_PERMANENT, 0};
        pthread_create(&t[i], NULL, par_run, &ps[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(ps[i].r == BACKEND_OK && ps[i].width == 32 + i * 8);
    }
}

/* ---- a1111 ---- */

static void test_a1111(const struct fake *f)
{
    char err[512];
    struct sf_image img;
    char *cfg = xasprintf("{\"name\": \"gpu0\", \"type\": \"a1111\", \"url\": \"%s/\", "
                          "\"timeout_s\": 5, \"checkpoint\": \"v1-5-pruned-emaonly.safetensors\"}",
                          f->base);
    struct sf_backend *b = make(a1111_backend_new, cfg, err, sizeof err);
    free(cfg);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "a1111: %s\n", err);
        return;
    }
    CHECK_STR(b->name, "gpu0");
    CHECK_STR(b->ops->type, "a1111");
    CHECK(b->concurrency == 1);
    CHECK(b->ops->health(b, err, sizeof err) == 0);

    /* ok, with two LoRAs (by name, and by path) */
    set_mode(f, "{\"mode\": \"ok\"}");
    json_t *loras = json_pack("[{s:s, s:f}, {s:s, s:f}]", "name", "detail", "weight", 0.8,
                              "path", "/models/Lora/film_grain.safetensors", "weight", 0.5);
    struct sf_job job = make_job(NULL);
    job.loras = loras;
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.width == 64 && img.height == 48);
    CHECK(img.seed == 1234);
    free(img.png);
    json_t *rq = last_request(f, "/sdapi/v1/txt2img");
    json_t *body = json_object_get(rq, "body");
    CHECK_STR(json_string_value(json_object_get(body, "prompt")),
              "a red fox in the snow <lora:detail:0.8> <lora:film_grain:0.5>");
    CHECK_STR(json_string_value(json_object_get(body, "negative_prompt")), "blurry");
    CHECK_STR(json_string_value(json_object_get(body, "sampler_name")), "Euler a");
    CHECK(json_integer_value(json_object_get(body, "seed")) == 1234);
    CHECK(json_integer_value(json_object_get(body, "steps")) == 20);
    CHECK(json_number_value(json_object_get(body, "cfg_scale")) == 7.5);
    CHECK(json_integer_value(json_object_get(body, "batch_size")) == 1);
    CHECK(json_integer_value(json_object_get(body, "n_iter")) == 1);
    CHECK(json_object_get(body, "lora") == NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(body, "override_settings"),
                                                "sd_model_checkpoint")),
              "v1-5-pruned-emaonly.safetensors");
    CHECK(json_is_null(json_object_get(rq, "authorization")));
    json_decref(rq);
    job.loras = NULL;

    /* the seed the server reports wins (webui picks one for -1) */
    job.seed = -1;
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.seed == 987654321);
    free(img.png);
    job.seed = 1234;
    check_parallel(b);

    /* faults from a server that answers 200 with garbage: transient */
    set_mode(f, "{\"mode\": \"fail500\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "HTTP 500");
    CHECK_HAS(err, "CUDA out of memory");
    CHECK_HAS(err, "a1111 gpu0: ");
    set_mode(f, "{\"mode\": \"badbase64\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "not valid base64");
    set_mode(f, "{\"mode\": \"jpeg\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "JPEG");
    set_mode(f, "{\"mode\": \"truncated\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "truncated");
    set_mode(f, "{\"mode\": \"invalidjson\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "not valid JSON");
    set_mode(f, "{\"mode\": \"close\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "mid-answer");

    /* 4xx: the request itself is refused */
    set_mode(f, "{\"mode\": \"ok\"}");
    struct sf_backend *bad = make(a1111_backend_new,
                                  cfg = xasprintf("{\"name\": \"gpu0\", \"url\": \"%s\", "
                                                  "\"sampler\": \"Nope\"}", f->base),
                                  err, sizeof err);
    free(cfg);
    CHECK(bad != NULL);
    if (bad) {
        CHECK(run(bad, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
        CHECK_HAS(err, "HTTP 404: Sampler not found");
        bad->ops->destroy(bad);
    }

    /* cancel while the server works: well before the 30 s job or the 5 s
     * timeout_s (which would be TRANSIENT), and the GPU is told to stop */
    set_mode(f, "{\"mode\": \"slow\", \"delay_ms\": 30000}");
    struct started_at_fake txt2img = {f, "/sdapi/v1/txt2img"};
    enum backend_result r;
    long long el = run_canceled(b, &job, fake_got, &txt2img, &r);
    CHECK(r == BACKEND_CANCELED);
    CHECK(el >= 0 && el < 10000);
    CHECK(count_requests(f, "/sdapi/v1/interrupt") == 1);
    /* the flag alone ends a silent exchange too (libcurl's idle progress
     * calls come about once a second) */
    set_mode(f, "{\"mode\": \"hang\"}");
    el = run_canceled2(b, &job, fake_got, &txt2img, 1, &r);
    CHECK(r == BACKEND_CANCELED);
    CHECK(el >= 0 && el < 10000);
    b->ops->destroy(b);

    /* a hang ends at timeout_s */
    set_mode(f, "{\"mode\": \"hang\"}");
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"gpu1\", \"url\": \"%s\", \"timeout_s\": 1}", f->base),
             err, sizeof err);
    free(cfg);
    long long t0 = mono_ms();
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    el = mono_ms() - t0;
    CHECK(el >= 900 && el < 10000); /* not before timeout_s; long before never */
    CHECK_HAS(err, "timed out");
    b->ops->destroy(b);

    /* the job's deadline (the engine's, learned from the endpoint's speed)
     * ends it instead of timeout_s */
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"gpu1\", \"url\": \"%s\", \"timeout_s\": 600}", f->base),
             err, sizeof err);
    free(cfg);
    ends_at_the_job_deadline(b, job, 1000, "timed out after 1 s");

    /* HTTP Basic auth, right and wrong */
    set_mode(f, "{\"mode\": \"ok\", \"auth\": \"alice:s3cret\"}");
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"gpu2\", \"url\": \"%s\", \"auth\": \"alice:s3cret\"}",
                             f->base),
             err, sizeof err);
    free(cfg);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    free(img.png);
    rq = last_request(f, "/sdapi/v1/txt2img");
    CHECK_STR(json_string_value(json_object_get(rq, "authorization")),
              "Basic YWxpY2U6czNjcmV0");
    json_decref(rq);
    b->ops->destroy(b);
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"gpu2\", \"url\": \"%s\", \"auth\": \"alice:wrong\"}",
                             f->base),
             err, sizeof err);
    free(cfg);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "HTTP 401: Incorrect username or password");
    CHECK(b->ops->health(b, err, sizeof err) == -1);
    b->ops->destroy(b);
    set_mode(f, "{\"mode\": \"ok\", \"auth\": null}");

    /* an older sd-server (no capabilities, no job API): LoRAs as a field,
     * sizes rounded, empty info */
    set_mode(f, "{\"mode\": \"ok\", \"flavor\": \"sdcpp\", \"empty_info\": true, "
                "\"no_capabilities\": true}");
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"cpp\", \"url\": \"%s\", \"flavor\": \"sdcpp\"}",
                             f->base),
             err, sizeof err);
    free(cfg);
    job.loras = loras;
    job.width = 60;
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.width == 64 && img.height == 64);
    CHECK(img.seed == 1234);
    free(img.png);
    rq = last_request(f, "/sdapi/v1/txt2img");
    body = json_object_get(rq, "body");
    CHECK_STR(json_string_value(json_object_get(body, "prompt")), "a red fox in the snow");
    json_t *l1 = json_array_get(json_object_get(body, "lora"), 1);
    /* mapped to the paths sd-server lists (with the extension) */
    CHECK_STR(json_string_value(json_object_get(l1, "path")), "film_grain.safetensors");
    CHECK(json_number_value(json_object_get(l1, "multiplier")) == 0.5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(body, "lora"), 0),
                                                "path")),
              "detail.safetensors");
    /* nothing told which it is: the configured flavor was used */
    CHECK_STR(b->ops->dialect(b), "undetected");
    json_decref(rq);
    b->ops->destroy(b);

    /* a newer sd-server: its job API (POST /sdcpp/v1/img_gen, polled) */
    set_mode(f, "{\"mode\": \"ok\", \"flavor\": \"sdcpp\", \"no_capabilities\": false}");
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"cpp2\", \"url\": \"%s\"}", f->base), err, sizeof err);
    free(cfg);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.width == 64 && img.height == 64);
    CHECK(img.seed == 1234);
    free(img.png);
    CHECK_STR(b->ops->dialect(b), "sdcpp");
    rq = last_request(f, "/sdcpp/v1/img_gen");
    body = json_object_get(rq, "body");
    CHECK_STR(json_string_value(json_object_get(body, "prompt")), "a red fox in the snow");
    CHECK(json_integer_value(json_object_get(body, "seed")) == 1234);
    CHECK(json_integer_value(json_object_get(body, "width")) == 60);
    json_t *sp = json_object_get(body, "sample_params");
    CHECK(json_integer_value(json_object_get(sp, "sample_steps")) == 20);
    CHECK_STR(json_string_value(json_object_get(sp, "sample_method")), "euler_a");
    CHECK(json_number_value(json_object_get(json_object_get(sp, "guidance"), "txt_cfg")) == 7.5);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(body, "lora"), 1),
                                                "path")),
              "film_grain.safetensors");
    CHECK_STR(json_string_value(json_object_get(body, "output_format")), "png");
    json_decref(rq);
    /* a failed job is transient, with the server's message */
    set_mode(f, "{\"mode\": \"fail500\", \"flavor\": \"sdcpp\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "generate_image returned no results");
    /* a full queue: 429, transient */
    set_mode(f, "{\"mode\": \"ok\", \"flavor\": \"sdcpp\", \"max_queue\": 0}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "HTTP 429");
    /* the job vanished (the server restarted): transient */
    set_mode(f, "{\"mode\": \"ok\", \"flavor\": \"sdcpp\", \"max_queue\": 8, "
                "\"lose_jobs\": true}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "HTTP 404: job not found");
    b->ops->destroy(b);
    /* past the deadline: transient, and the job is canceled on the server */
    set_mode(f, "{\"mode\": \"slow\", \"delay_ms\": 3000, \"flavor\": \"sdcpp\", "
                "\"lose_jobs\": false}");
    b = make(a1111_backend_new,
             cfg = xasprintf("{\"name\": \"cpp3\", \"url\": \"%s\", \"timeout_s\": 1}", f->base),
             err, sizeof err);
    free(cfg);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "did not finish within 1000 ms");
    char *jobs_text = fetch(f, "GET", "/_fake/jobs", NULL);
    json_t *jobs = jobs_text ? json_loads(jobs_text, 0, NULL) : NULL;
    free(jobs_text);
    size_t nj = json_array_size(jobs);
    CHECK(nj > 0 && json_integer_value(json_object_get(json_array_get(jobs, nj - 1),
                                                       "cancel_requests")) == 1);
    json_decref(jobs);
    b->ops->destroy(b);
    set_mode(f, "{\"mode\": \"ok\", \"flavor\": \"a1111\", \"max_queue\": 8}");
    json_decref(loras);

    /* nobody listening: undelivered (no attempt spent), and unhealthy */
    b = make(a1111_backend_new, "{\"name\": \"gone\", \"url\": \"http://127.0.0.1:1\"}", err,
             sizeof err);
    job = make_job(NULL);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_UNDELIVERED);
    CHECK_HAS(err, "cannot connect");
    CHECK(b->ops->health(b, err, sizeof err) == -1);
    b->ops->destroy(b);

    /* construction errors name the entry and the field */
    CHECK(make(a1111_backend_new, "{\"name\": \"g\"}", err, sizeof err) == NULL);
    CHECK_STR(err, "endpoints[0] (\"g\"): url is required (e.g. \"http://127.0.0.1:7860\")");
    CHECK(make(a1111_backend_new, "{\"name\": \"g\", \"url\": \"ftp://x\"}", err, sizeof err) ==
          NULL);
    CHECK_HAS(err, "http:// or https://");
    CHECK(make(a1111_backend_new, "{\"name\": \"g\", \"url\": \"http://u:p@h\"}", err,
               sizeof err) == NULL);
    CHECK_HAS(err, "auth");
    CHECK(make(a1111_backend_new, "{\"name\": \"g\", \"url\": \"http://h\", \"flavor\": \"x\"}",
               err, sizeof err) == NULL);
    CHECK_HAS(err, "flavor");
    CHECK(make(a1111_backend_new, "{\"name\": \"g\", \"url\": \"http://h\", \"auth\": \"nocolon\"}",
               err, sizeof err) == NULL);
    CHECK_HAS(err, "user:pass");
}

/* ---- comfyui ---- */

static json_t *recorded_graph(const struct fake *f)
{
    json_t *rq = last_request(f, "/prompt");
    json_t *g = json_incref(json_object_get(json_object_get(rq, "body"), "prompt"));
    json_decref(rq);
    return g;
}

static const char *input_str(const json_t *g, const char *id, const char *input)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(g, id), "inputs"),
                                             input));
}

static double input_num(const json_t *g, const char *id, const char *input)
{
    return json_number_value(json_object_get(json_object_get(json_object_get(g, id), "inputs"),
                                             input));
}

/* "a:0" when input of node id is the link ["a", 0]. */
static const char *link_of(const json_t *g, const char *id, const char *input)
{
    static char buf[64];
    const json_t *v = json_object_get(json_object_get(json_object_get(g, id), "inputs"), input);
    if (!json_is_array(v))
        return "(not a link)";
    snprintf(buf, sizeof buf, "%s:%lld", json_string_value(json_array_get(v, 0)),
             (long long)json_integer_value(json_array_get(v, 1)));
    return buf;
}

static struct sf_backend *comfy(const struct fake *f, const char *workflow, int timeout_s,
                                char *err, size_t errlen)
{
    char *cfg = xasprintf("{\"name\": \"c0\", \"type\": \"comfyui\", \"url\": \"%s\", "
                          "\"timeout_s\": %d, \"workflow\": \"%s\"}",
                          f->base, timeout_s, workflow);
    struct sf_backend *b = make(comfyui_backend_new, cfg, err, errlen);
    free(cfg);
    if (!b)
        fprintf(stderr, "comfy: %s\n", err);
    return b;
}

static void test_comfyui(const struct fake *f)
{
    char err[512];
    struct sf_image img;
    struct sf_backend *b = comfy(f, "tests/fakes/workflows/sd15_default.json", 10, err, sizeof err);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_STR(b->ops->type, "comfyui");
    CHECK(b->ops->health(b, err, sizeof err) == 0);

    set_mode(f, "{\"mode\": \"ok\"}");
    struct sf_job job = make_job(NULL);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.width == 64 && img.height == 48 && img.seed == 1234);
    free(img.png);
    json_t *g = recorded_graph(f);
    CHECK(input_num(g, "3", "seed") == 1234);
    CHECK(input_num(g, "3", "steps") == 20);
    CHECK(input_num(g, "3", "cfg") == 7.5);
    CHECK_STR(input_str(g, "6", "text"), "a red fox in the snow");
    CHECK_STR(input_str(g, "7", "text"), "blurry");
    CHECK(input_num(g, "5", "width") == 64 && input_num(g, "5", "height") == 48);
    CHECK(input_num(g, "5", "batch_size") == 1);
    CHECK(json_object_size(g) == 7);
    json_decref(g);
    check_parallel(b);
    json_t *rq = last_request(f, "/prompt");
    const char *cid = json_string_value(json_object_get(json_object_get(rq, "body"), "client_id"));
    CHECK(cid && strlen(cid) == 36 && cid[14] == '4' && cid[8] == '-' && strchr("89ab", cid[19]));
    json_decref(rq);

    /* two LoRAs, no LoraLoader in the workflow: a chain of two is inserted */
    json_t *loras = json_pack("[{s:s, s:f}, {s:s, s:f}]", "name", "detail.safetensors", "weight",
                              0.8, "path", "film_grain.safetensors", "weight", 0.5);
    job.loras = loras;
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK); /* the fake validated the links */
    free(img.png);
    g = recorded_graph(f);
    CHECK(json_object_size(g) == 9);
    CHECK_STR(json_string_value(json_object_get(json_object_get(g, "10"), "class_type")),
              "LoraLoader");
    CHECK_STR(input_str(g, "10", "lora_name"), "detail.safetensors");
    CHECK(input_num(g, "10", "strength_model") == 0.8 && input_num(g, "10", "strength_clip") == 0.8);
    CHECK_STR(input_str(g, "11", "lora_name"), "film_grain.safetensors");
    CHECK(input_num(g, "11", "strength_clip") == 0.5);
    CHECK_STR(link_of(g, "10", "model"), "4:0");
    CHECK_STR(link_of(g, "10", "clip"), "4:1");
    CHECK_STR(link_of(g, "11", "model"), "10:0");
    CHECK_STR(link_of(g, "11", "clip"), "10:1");
    CHECK_STR(link_of(g, "3", "model"), "11:0");
    CHECK_STR(link_of(g, "6", "clip"), "11:1");
    CHECK_STR(link_of(g, "7", "clip"), "11:1");
    CHECK_STR(link_of(g, "8", "vae"), "4:2");
    json_decref(g);
    b->ops->destroy(b);

    /* a workflow with one LoraLoader: filled first, one more inserted; with
     * no LoRAs it is switched off */
    b = comfy(f, "tests/fakes/workflows/sd15_lora.json", 10, err, sizeof err);
    CHECK(b != NULL);
    if (b) {
        CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
        free(img.png);
        g = recorded_graph(f);
        CHECK(json_object_size(g) == 9);
        CHECK_STR(input_str(g, "10", "lora_name"), "detail.safetensors");
        CHECK_STR(input_str(g, "11", "lora_name"), "film_grain.safetensors");
        CHECK_STR(link_of(g, "11", "model"), "4:0");
        CHECK_STR(link_of(g, "10", "model"), "11:0");
        CHECK_STR(link_of(g, "10", "clip"), "11:1");
        CHECK_STR(link_of(g, "3", "model"), "10:0");
        json_decref(g);
        job.loras = NULL;
        CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
        free(img.png);
        g = recorded_graph(f);
        CHECK(json_object_size(g) == 8);
        CHECK(input_num(g, "10", "strength_model") == 0 && input_num(g, "10", "strength_clip") == 0);
        json_decref(g);
        b->ops->destroy(b);
    }
    json_decref(loras);

    /* KSamplerAdvanced, latent reached through a LatentUpscale */
    b = comfy(f, "tests/fakes/workflows/sd15_advanced.json", 10, err, sizeof err);
    CHECK(b != NULL);
    if (b) {
        CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
        free(img.png);
        g = recorded_graph(f);
        CHECK(input_num(g, "3", "noise_seed") == 1234);
        CHECK(json_object_get(json_object_get(json_object_get(g, "3"), "inputs"), "seed") == NULL);
        CHECK(input_num(g, "5", "width") == 64);
        json_decref(g);
        b->ops->destroy(b);
    }

    b = comfy(f, "tests/fakes/workflows/sd15_default.json", 10, err, sizeof err);
    if (!b)
        return;
    set_mode(f, "{\"mode\": \"node_errors\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "comfyui c0: HTTP 400: Prompt outputs failed validation; "
                   "CheckpointLoaderSimple (node 4): Value not in list: ckpt_name:");
    set_mode(f, "{\"mode\": \"exec_error\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "execution error in KSampler (node 3): RuntimeError: mat1 and mat2 shapes");
    set_mode(f, "{\"mode\": \"fail500\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "HTTP 500");
    set_mode(f, "{\"mode\": \"jpeg\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "JPEG");
    set_mode(f, "{\"mode\": \"truncated\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "truncated");
    set_mode(f, "{\"mode\": \"invalidjson\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    set_mode(f, "{\"mode\": \"close\"}");
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "mid-answer");

    /* cancel while it runs (queued, and followed on the websocket): well
     * before the 30 s job or the 10 s timeout_s, and taken off the GPU */
    set_mode(f, "{\"mode\": \"slow\", \"delay_ms\": 30000}");
    struct started_at_fake polled = {f, "/prompt"};
    enum backend_result r;
    long long el = run_canceled(b, &job, fake_got, &polled, &r);
    CHECK(r == BACKEND_CANCELED);
    CHECK(el >= 0 && el < 8000);
    rq = last_request(f, "/interrupt");
    CHECK(rq != NULL);
    CHECK(json_is_string(json_object_get(json_object_get(rq, "body"), "prompt_id")));
    json_decref(rq);
    b->ops->destroy(b);

    /* never finishes: timeout_s, then deleted from the queue and interrupted */
    set_mode(f, "{\"mode\": \"hang\"}");
    b = comfy(f, "tests/fakes/workflows/sd15_default.json", 1, err, sizeof err);
    if (b) {
        long long t0 = mono_ms();
        CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
        el = mono_ms() - t0;
        CHECK(el >= 900 && el < 10000); /* not before timeout_s; the hang is endless */
        CHECK_HAS(err, "timed out after 1 s");
        rq = last_request_m(f, "POST", "/queue");
        CHECK(rq && json_is_array(json_object_get(json_object_get(rq, "body"), "delete")));
        json_decref(rq);
        CHECK(count_requests(f, "/interrupt") == 1);
        b->ops->destroy(b);
    }
    /* the job's deadline ends it instead of timeout_s */
    b = comfy(f, "tests/fakes/workflows/sd15_default.json", 600, err, sizeof err);
    ends_at_the_job_deadline(b, job, 1500, "timed out after 1.5 s");
    set_mode(f, "{\"mode\": \"ok\"}");

    /* workflows refused at construction */
    CHECK(comfy(f, "tests/fakes/workflows/no_sampler.json", 10, err, sizeof err) == NULL);
    CHECK_STR(err, "endpoints[0] (\"c0\"): workflow tests/fakes/workflows/no_sampler.json has "
                   "no KSampler or KSamplerAdvanced node");
    CHECK(comfy(f, "tests/fakes/workflows/missing.json", 10, err, sizeof err) == NULL);
    CHECK_HAS(err, "missing.json");
    CHECK_HAS(err, "endpoints[0] (\"c0\"): workflow");
    char path[128];
    snprintf(path, sizeof path, "%s/ui.json", data_dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"last_node_id\": 9, \"nodes\": [], \"links\": []}", fp);
    fclose(fp);
    CHECK(comfy(f, path, 10, err, sizeof err) == NULL);
    CHECK_HAS(err, "Save (API Format)");
    fp = fopen(path, "w");
    fputs("{\"3\": {\"class_type\": \"KSampler\", \"inputs\": {\"positive\": [\"6\", 0], "
          "\"negative\": [\"6\", 0], \"latent_image\": [\"5\", 0]}}, \"5\": {\"class_type\": "
          "\"EmptyLatentImage\", \"inputs\": {}}, \"6\": {\"class_type\": \"CLIPTextEncode\", "
          "\"inputs\": {}}}", fp);
    fclose(fp);
    CHECK(comfy(f, path, 10, err, sizeof err) == NULL);
    CHECK_HAS(err, "same CLIPTextEncode");
    unlink(path);
}

/* ---- command ---- */

static struct sf_backend *command(const char *argv_json, int timeout_s, char *err, size_t errlen)
{
    char *cfg = xasprintf("{\"name\": \"gen\", \"type\": \"command\", \"timeout_s\": %d, "
                          "\"argv\": %s}", timeout_s, argv_json);
    struct sf_backend *b = make(command_backend_new, cfg, err, errlen);
    free(cfg);
    if (!b)
        fprintf(stderr, "command: %s\n", err);
    return b;
}

static int dir_entries(const char *path)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", path);
    FILE *p = popen(cmd, "r");
    free(cmd);
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static void test_command(void)
{
    char err[512];
    struct sf_image img;
    char log[128], tmp[128];
    snprintf(log, sizeof log, "%s/argv.json", data_dir);
    snprintf(tmp, sizeof tmp, "%s/tmp", data_dir);
    char *argv = xasprintf("[\"tests/fakes/gen_ok.sh\", \"--prompt\", \"{prompt}\", "
                           "\"--negative-prompt\", \"{negative_prompt}\", \"--seed\", \"{seed}\", "
                           "\"--steps\", \"{steps}\", \"--guidance-scale\", \"{cfg_scale}\", "
                           "\"--width\", \"{width}\", \"--height\", \"{height}\", "
                           "\"--lora-paths\", \"{lora_paths}\", \"--lora-weights\", "
                           "\"{lora_weights}\", \"--output\", \"{output}\", \"--argv-log\", "
                           "\"%s\", \"--tag={seed}x{unknown}\"]",
                           log);
    struct sf_backend *b = command(argv, 10, err, sizeof err);
    free(argv);
    CHECK(b != NULL);
    if (!b)
        return;
    CHECK_STR(b->ops->type, "command");
    CHECK(b->ops->health(b, err, sizeof err) == 0);
    struct sf_job job = make_job(NULL);
    job.prompt = "a fox; rm -rf ~ $(id) \"quoted\" 'single'";
    json_t *loras = json_pack("[{s:s, s:f}, {s:s, s:i}]", "path", "/l/a.safetensors", "weight",
                              0.75, "name", "b", "weight", 1);
    job.loras = loras;
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_OK);
    CHECK(img.width == 64 && img.height == 48 && img.seed == 1234);
    free(img.png);
    json_t *av = json_load_file(log, 0, NULL);
    CHECK_STR(json_string_value(json_array_get(av, 2)), job.prompt);
    CHECK_STR(json_string_value(json_array_get(av, 4)), "blurry");
    CHECK_STR(json_string_value(json_array_get(av, 6)), "1234");
    CHECK_STR(json_string_value(json_array_get(av, 10)), "7.5");
    CHECK_STR(json_string_value(json_array_get(av, 16)), "/l/a.safetensors,b");
    CHECK_STR(json_string_value(json_array_get(av, 18)), "0.75,1");
    const char *out = json_string_value(json_array_get(av, 20));
    CHECK(out && strncmp(out, tmp, strlen(tmp)) == 0);
    CHECK_STR(json_string_value(json_array_get(av, 23)), "--tag=1234x{unknown}");
    json_decref(av);
    CHECK(dir_entries(tmp) == 0); /* the scratch PNG is gone */
    json_decref(loras);
    job.loras = NULL;
    b->ops->destroy(b);

    /* a path the program prints is never read, only {output}: a prompt it
     * echoes could name any file (here: a real PNG it wrote elsewhere) */
    char *saved = xasprintf("%s/elsewhere.png", tmp);
    argv = xasprintf("[\"python3\", \"tests/fakes/gen_png.py\", \"--output\", \"{output}\", "
                     "\"--width\", \"{width}\", \"--height\", \"{height}\", \"--saved-to\", \"%s\"]",
                     saved);
    b = command(argv, 10, err, sizeof err);
    free(argv);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "saved it somewhere else, which is not read");
    CHECK(access(saved, F_OK) != 0); /* it was under our tmp dir: removed */
    free(saved);
    b->ops->destroy(b);

    /* exit 0 but no image */
    b = command("[\"sh\", \"-c\", \"echo working; echo done\"]", 10, err, sizeof err);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "exit 0 but no image");
    b->ops->destroy(b);

    /* a failing program: permanent, with the end of its output */
    b = command("[\"sh\", \"-c\", \"echo Loading...; echo 'Traceback (most recent call last):' >&2;"
                " echo 'RuntimeError: boom' >&2; exit 1\"]",
                10, err, sizeof err);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_STR(err, "command gen: exit 1: Loading... Traceback (most recent call last): "
                   "RuntimeError: boom");
    b->ops->destroy(b);

    /* lots of output: only the end is kept, the message fits err */
    b = command("[\"sh\", \"-c\", \"i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); "
                "done; echo FINAL ERROR; exit 3\"]",
                10, err, sizeof err);
    char small[120];
    CHECK(b->ops->generate(b, &job, &img, small, sizeof small) == BACKEND_PERMANENT);
    CHECK_HAS(small, "command gen: exit 3: ...");
    CHECK_HAS(small, "FINAL ERROR");
    CHECK(strlen(small) < sizeof small);
    b->ops->destroy(b);

    /* over the time limit: transient, killed at once */
    b = command("[\"sh\", \"-c\", \"echo started; sleep 30\"]", 1, err, sizeof err);
    long long t0 = mono_ms();
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    long long el = mono_ms() - t0;
    CHECK(el >= 900 && el < 10000); /* not before timeout_s; long before the 30 s sleep */
    CHECK_HAS(err, "timed out after 1 s: started");
    b->ops->destroy(b);
    /* the job's deadline ends it instead of timeout_s */
    b = command("[\"sh\", \"-c\", \"echo started; sleep 30\"]", 600, err, sizeof err);
    ends_at_the_job_deadline(b, job, 1000, "timed out after 1 s: started");

    /* ...and one that ignores SIGTERM gets SIGKILL 3 s later */
    b = command("[\"sh\", \"-c\", \"trap '' TERM; sleep 30\"]", 1, err, sizeof err);
    t0 = mono_ms();
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    el = mono_ms() - t0;
    CHECK(el >= 3900 && el < 15000); /* 1 s + the 3 s grace; long before the 30 s sleep */
    b->ops->destroy(b);

    /* killed by a signal it did not get from us: transient */
    b = command("[\"sh\", \"-c\", \"kill -9 $$\"]", 10, err, sizeof err);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_TRANSIENT);
    CHECK_HAS(err, "killed by signal 9");
    b->ops->destroy(b);

    /* canceled once running: long before its 30 s sleep */
    char mark[128];
    snprintf(mark, sizeof mark, "%s/started", data_dir);
    char *sleeper =
        xasprintf("[\"sh\", \"-c\", \"touch \\\"$0\\\"; exec sleep 30\", \"%s\"]", mark);
    b = command(sleeper, 60, err, sizeof err);
    free(sleeper);
    enum backend_result r;
    el = run_canceled(b, &job, file_made, mark, &r);
    CHECK(r == BACKEND_CANCELED);
    CHECK(el >= 0 && el < 10000);
    unlink(mark);
    b->ops->destroy(b);

    /* not startable */
    b = command("[\"/nonexistent/generate\"]", 10, err, sizeof err);
    CHECK(run(b, &job, &img, err, sizeof err) == BACKEND_PERMANENT);
    CHECK_HAS(err, "cannot start /nonexistent/generate");
    CHECK(b->ops->health(b, err, sizeof err) == -1);
    b->ops->destroy(b);
    b = command("[\"no-such-program-here\"]", 10, err, sizeof err);
    CHECK(b->ops->health(b, err, sizeof err) == -1);
    CHECK_HAS(err, "not found in PATH");
    b->ops->destroy(b);

    CHECK(command("[]", 10, err, sizeof err) == NULL);
    CHECK_HAS(err, "argv is required");
    CHECK(command("[\"a\", 3]", 10, err, sizeof err) == NULL);
    CHECK_HAS(err, "argv[1] must be a string");
    CHECK(dir_entries(tmp) == 0);
    unlink(log);
}

/* ---- registry and shared helpers ---- */

static void test_registry(void)
{
    char err[512];
    struct sf_backend *b;
    json_t *ep;
#define FROM(text)                                                                      \
    (ep = json_loads(text, 0, NULL), b = backend_from_config(ep, 2, err, sizeof err),   \
     json_decref(ep), b)
    CHECK(FROM("{\"name\": \"gpu2\", \"type\": \"dalle\"}") == NULL);
    CHECK_STR(err, "endpoints[2] (\"gpu2\"): type must be one of a1111, comfyui, command, "
                   "procedural");
    CHECK(FROM("{\"name\": \"gpu2\"}") == NULL);
    CHECK_HAS(err, "type must be one of");
    CHECK(FROM("{\"type\": \"a1111\"}") == NULL);
    CHECK_STR(err, "endpoints[2]: name is required (a non-empty string)");
    CHECK(FROM("{\"name\": \"\", \"type\": \"a1111\"}") == NULL);
    CHECK(FROM("{\"name\": \"0123456789012345678901234567890123456789012345678901234567890123\","
               " \"type\": \"procedural\"}") == NULL);
    CHECK_HAS(err, "at most 63 characters");
    CHECK(FROM("{\"name\": \"p\", \"type\": \"procedural\", \"concurrency\": 65}") == NULL);
    CHECK_STR(err, "endpoints[2] (\"p\"): concurrency must be an integer from 1 to 64");
    CHECK(FROM("{\"name\": \"p\", \"type\": \"procedural\", \"concurrency\": \"2\"}") == NULL);
    CHECK(FROM("{\"name\": \"p\", \"type\": \"procedural\", \"timeout_s\": 0}") == NULL);
    CHECK_HAS(err, "timeout_s must be an integer from 1 to 86400");
    CHECK(FROM("{\"name\": \"p\", \"type\": \"procedural\", \"delay_ms\": -1}") == NULL);
    CHECK(FROM("[1]") == NULL);
    CHECK_STR(err, "endpoints[2]: must be an object");
    CHECK(FROM("{\"name\": \"gpu2\", \"type\": \"a1111\", \"url\": \"http://127.0.0.1:9\"}") !=
          NULL);
    if (b) {
        CHECK_STR(b->ops->type, "a1111");
        CHECK(b->concurrency == 1);
        b->ops->destroy(b);
    }
    CHECK(FROM("{\"name\": \"p\", \"type\": \"procedural\", \"concurrency\": 4, \"delay_ms\": 5}") !=
          NULL);
    if (b) {
        CHECK_STR(b->name, "p");
        CHECK(b->concurrency == 4);
        b->ops->destroy(b);
    }
    CHECK(FROM("{\"name\": \"cmd\", \"type\": \"command\", \"argv\": [\"true\"], "
               "\"concurrency\": 2}") != NULL);
    if (b) {
        CHECK(b->concurrency == 2);
        b->ops->destroy(b);
    }
#undef FROM

    char t[200];
    const char *fastapi = "{\"detail\": [{\"loc\": [\"body\", \"steps\"], "
                          "\"msg\": \"value is not a valid integer\"}]}";
    http_error_text(fastapi, strlen(fastapi), t, sizeof t);
    CHECK_STR(t, "body.steps: value is not a valid integer");
    http_error_text("<html>\n<h1>502 Bad   Gateway</h1>", 33, t, sizeof t);
    CHECK_STR(t, "<html> <h1>502 Bad Gateway</h1>");
    char w[32];
    be_fmt_weight(0.8, w, sizeof w);
    CHECK_STR(w, "0.8");
    be_fmt_weight(1, w, sizeof w);
    CHECK_STR(w, "1");
    be_fmt_weight(-0.25, w, sizeof w);
    CHECK_STR(w, "-0.25");
}

/* The whole endpoint list, as the engine builds it. */
static void test_backends_build(void)
{
    char err[512] = "";
    struct sf_backend **list = (struct sf_backend **)1;
    int n = -1;
    /* Nothing configured: one procedural endpoint, `workers` wide. */
    CHECK(backends_build(NULL, 3, 25, &list, &n, err, sizeof err) == 0);
    CHECK(n == 1 && list && list[0]);
    if (n == 1) {
        CHECK_STR(list[0]->name, "procedural");
        CHECK_STR(list[0]->ops->type, "procedural");
        CHECK(list[0]->concurrency == 3);
    }
    backends_destroy(list, n);
    json_t *eps = json_loads("[]", 0, NULL);
    CHECK(backends_build(eps, 2, 0, &list, &n, err, sizeof err) == 0 && n == 1 &&
          list[0]->concurrency == 2);
    backends_destroy(list, n);
    json_decref(eps);

    eps = json_loads("[{\"name\": \"p0\", \"type\": \"procedural\", \"concurrency\": 2},"
                     " {\"name\": \"cmd\", \"type\": \"command\", \"argv\": [\"true\"]}]",
                     0, NULL);
    CHECK(backends_build(eps, 9, 0, &list, &n, err, sizeof err) == 0 && n == 2);
    if (n == 2) {
        CHECK_STR(list[0]->name, "p0");
        CHECK(list[0]->concurrency == 2);
        CHECK_STR(list[1]->ops->type, "command");
    }
    backends_destroy(list, n);
    json_decref(eps);

    /* Refusals: nothing comes back, nothing leaks (ASan checks), and the
     * message names the entry. */
    eps = json_loads("[{\"name\": \"gpu0\", \"type\": \"procedural\"},"
                     " {\"name\": \"gpu1\", \"type\": \"procedural\"},"
                     " {\"name\": \"gpu0\", \"type\": \"command\", \"argv\": [\"true\"]}]",
                     0, NULL);
    CHECK(backends_build(eps, 1, 0, &list, &n, err, sizeof err) == -1);
    CHECK(list == NULL && n == 0);
    CHECK_STR(err, "endpoints[2]: the name \"gpu0\" is used twice");
    json_decref(eps);
    eps = json_loads("[{\"name\": \"gpu0\", \"type\": \"procedural\"},"
                     " {\"name\": \"gpu1\", \"type\": \"a1111\"}]", 0, NULL);
    CHECK(backends_build(eps, 1, 0, &list, &n, err, sizeof err) == -1);
    CHECK(list == NULL && n == 0);
    CHECK_STR(err, "endpoints[1] (\"gpu1\"): url is required (e.g. \"http://127.0.0.1:7860\")");
    json_decref(eps);
    backends_destroy(NULL, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(data_dir, sizeof data_dir, "/tmp/sf-backends-XXXXXX");
    if (!mkdtemp(data_dir)) {
        perror("mkdtemp");
        return 1;
    }
    long long t0 = mono_ms();
    test_registry();
    test_backends_build();
    struct fake a, c;
    int fa = fake_start(&a, "tests/fakes/fake_a1111.py");
    int fc = fake_start(&c, "tests/fakes/fake_comfyui.py");
    CHECK(fa == 0);
    CHECK(fc == 0);
    if (fa == 0)
        test_a1111(&a);
    if (fc == 0)
        test_comfyui(&c);
    fake_stop(&a);
    fake_stop(&c);
    test_command();
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/tmp", data_dir);
    rmdir(tmp);
    CHECK(rmdir(data_dir) == 0);
    fprintf(stderr, "backends: %lld ms\n", mono_ms() - t0);
    UNIT_END("backends");
}
