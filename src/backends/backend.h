/*
 * backend.h: the one interface every inference backend implements.
 *
 * The run engine hands a backend one job (one CSV item, fully resolved: the
 * final prompt, seed, size, LoRAs) and gets back PNG bytes or an error
 * classified as transient (worth retrying: connection refused, timeout,
 * HTTP 5xx) or permanent (the server rejected the request: retrying cannot
 * help). A backend instance is one configured endpoint (one GPU server, one
 * command, or the procedural drawer); several worker threads may call
 * generate() on it at once, up to its configured concurrency.
 *
 * Each type is one constant struct sf_backend_ops (its name and its four
 * operations); an endpoint is a struct sf_backend pointing at its type's
 * table, so the engine calls b->ops->generate(b, ...) whatever the type. The
 * engine gets its endpoints from backends_build() (the config's list, or the
 * procedural default) and gives them back with backends_destroy().
 *
 * Cancellation: the engine sets *job->cancel to 1 and calls ops->cancel; a
 * backend checks the flag wherever it waits (libcurl progress callback,
 * poll loops, child process waits) and returns BACKEND_CANCELED promptly.
 *
 * Live steps: a backend that can see the sampler's progress reports it
 * through job->on_step (be_step in backends_real.h), from any thread, as
 * often as it likes (the receiver throttles), and never after generate()
 * returns: a helper thread that reports is stopped first. Reporting must
 * never delay or fail the item: a progress route that is missing or slow
 * only means no steps (docs/live.md).
 *
 * Deadlines: a call may take the endpoint's timeout_s, or job->timeout_ms
 * when the engine sets one (it shortens it for an endpoint whose images
 * usually take far less: a hung server is then noticed in seconds, not
 * minutes). The whole call counts, from the request to the last byte or
 * the program's exit.
 */
#ifndef SF_BACKEND_H
#define SF_BACKEND_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

enum backend_result {
    BACKEND_OK = 0,
    BACKEND_TRANSIENT, /* retry, possibly elsewhere */
    BACKEND_PERMANENT, /* fail the item now */
    BACKEND_CANCELED,  /* *job->cancel was set */
    BACKEND_UNDELIVERED, /* the request never reached the server (connection
                          * refused, no such host): no GPU time was spent, so
                          * the item is queued again without spending an
                          * attempt, and the endpoint is down at once */
};

struct sf_job {
    long long run_id;
    int item_index;
    const char *prompt;          /* final prompt text, LoRA tags not added */
    const char *negative_prompt; /* may be "" */
    long long seed;
    int steps;
    double cfg_scale;
    int width, height;
    const json_t *loras;   /* borrowed: [{"name"|"path": s, "weight": f}] */
    const char *data_dir;  /* for backends that need scratch files */
    atomic_int *cancel;    /* set to 1 by the engine to stop this job */
    long timeout_ms;       /* this call's deadline, from its start; 0: the
                            * endpoint's timeout_s. A call that runs out of
                            * it ends BACKEND_TRANSIENT */
    int fit_crop;          /* the run asked for "fit": "crop": an image larger
                            * than width x height in both dimensions is
                            * centre-cropped by the engine, so a backend must
                            * not refuse it for its size */
    /* Optional (NULL: nobody listens): the sampler is at step of steps
     * (steps 0: unknown), with the server's latest preview (len bytes of
     * type mime, "image/jpeg" or "image/png"; borrowed for the call) or
     * preview NULL. Called with step_ctx. */
    void (*on_step)(void *step_ctx, int step, int steps, const void *preview, size_t len,
                    const char *mime);
    void *step_ctx;
};

struct sf_image {
    unsigned char *png; /* malloc'd PNG bytes; the caller frees */
    size_t png_len;
    int width, height;  /* the real size of the PNG */
    long long seed;     /* the seed the backend really used */
    int cropped_from_w, cropped_from_h; /* the size the backend returned when the
                                         * engine cropped it ("fit": "crop"); 0 */
    /* What the server says it used, for the image's "parameters" text
     * (queue/finisher.c); "" when it did not say. */
    char sampler[64];
    char model[128];
    char model_hash[32];
    char version[64];   /* the server's version ("v1.10.1", "stable-diffusion.cpp") */
    int loras_applied;  /* the job's LoRAs reached the server in a form it applies */
};

struct sf_backend;

/*
 * What a backend type does. Each type has one constant table (a1111_ops,
 * comfyui_ops, command_ops, procedural_ops in their files) shared by all its
 * endpoints; an endpoint's own data is in sf_backend.state.
 */
struct sf_backend_ops {
    const char *type; /* "procedural", "a1111", "comfyui", "command" */
    /* Draws one image. On BACKEND_OK fills out; otherwise writes a
     * sentence to err (at most errlen bytes, NUL-terminated). Called by up
     * to concurrency threads at once. */
    enum backend_result (*generate)(struct sf_backend *b, const struct sf_job *job,
                                    struct sf_image *out, char *err, size_t errlen);
    /* Interrupts whatever this endpoint is running now (NULL: setting the
     * jobs' cancel flags is enough). */
    void (*cancel)(struct sf_backend *b);
    /* 0 when the endpoint answers, -1 with err otherwise (NULL: always up). */
    int (*health)(struct sf_backend *b, char *err, size_t errlen);
    /* Frees the backend and its state. */
    void (*destroy)(struct sf_backend *b);
    /* Optional (NULL: none). The wire dialect the endpoint speaks now, for
     * /api/health ("a1111", "sdcpp", "undetected"): a static string. */
    const char *(*dialect)(struct sf_backend *b);
    /* Optional (NULL: the endpoint returns the size asked for). The size
     * an image of width x height will come back in, as far as the endpoint
     * knows by now: 1 with *out_w and *out_h, or 0 when it cannot tell. */
    int (*output_size)(struct sf_backend *b, int width, int height, int *out_w, int *out_h);
};

/* One configured endpoint. */
struct sf_backend {
    const struct sf_backend_ops *ops;
    char name[64];  /* the endpoint's name from the config */
    int concurrency;
    int timeout_s;  /* the longest one image may take (the config's timeout_s);
                     * 0: no limit (the procedural drawer, which cannot hang) */
    void *state;    /* the type's own data, owned by the backend */
};

/*
 * Builds a backend from one endpoint object of the config file (borrowed),
 * e.g. {"name": "gpu0", "type": "a1111", "url": "http://10.0.0.5:7860",
 * "concurrency": 1, "timeout_s": 300}. Returns a new backend (the caller
 * frees it with b->ops->destroy), or NULL with a sentence naming the entry
 * and field in err when the entry is invalid.
 */
struct sf_backend *backend_from_config(const json_t *endpoint, int index,
                                       char *err, size_t errlen);

/*
 * Builds the daemon's whole list of endpoints from the config's "endpoints"
 * array (borrowed; NULL or empty: one procedural endpoint named
 * "procedural" with default_workers slots and procedural_delay_ms of
 * simulated GPU time). Names must be unique. Returns 0 with *out a malloc'd
 * array of *n backends (free it with backends_destroy), or -1 with *out
 * NULL, *n 0, nothing left allocated, and err naming the entry
 * ('endpoints[1]: the name "gpu0" is used twice').
 */
int backends_build(const json_t *endpoints, int default_workers, long long procedural_delay_ms,
                   struct sf_backend ***out, int *n, char *err, size_t errlen);

/* Destroys the n backends of list and frees list (as backends_build made
 * it; NULL entries are skipped). Nothing may be using them any more. */
void backends_destroy(struct sf_backend **list, int n);

/* The built-in procedural backend; delay_ms simulates GPU time. */
struct sf_backend *procedural_backend_new(const char *name, int concurrency,
                                          long long delay_ms);

#endif
