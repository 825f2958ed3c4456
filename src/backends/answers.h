/*
 * answers.h: reading what an inference server answered, apart from asking.
 *
 * The parts of a1111.c and comfyui.c that turn an answer's bytes into a
 * verdict are pure functions of those bytes: no network, no state. They are
 * declared here so that the unit tests and the fuzzers (tests/fuzz/) can
 * feed them bytes directly; the backends call them on every answer. Bodies
 * are borrowed, len bytes long, and need not be NUL-terminated. Every
 * sentence written to err starts with who ("a1111 gpu0: ...").
 */
#ifndef SF_ANSWERS_H
#define SF_ANSWERS_H

#include <jansson.h>
#include <stddef.h>

#include "backends/backend.h"

/* ---- AUTOMATIC1111 / sd-server ---- */

/*
 * Reads the body of a 200 from POST /sdapi/v1/txt2img: the first of
 * "images" (base64 of a whole PNG) and the seed "info" says was used
 * (requested_seed when it says nothing). BACKEND_OK with out filled (out->png
 * is malloc'd; the caller frees it), or BACKEND_TRANSIENT with err and out
 * untouched: a 200 without a usable image is a broken server or proxy.
 */
enum backend_result a1111_read_answer(const char *who, const char *body, size_t len,
                                      long long requested_seed, struct sf_image *out,
                                      char *err, size_t errlen);

/* a1111_read_answer, and info's "version" into version (vlen bytes, ""
 * when none; may be NULL): "stable-diffusion.cpp" on sd-server. */
enum backend_result a1111_read_answer_version(const char *who, const char *body, size_t len,
                                              long long requested_seed, struct sf_image *out,
                                              char *version, size_t vlen, char *err,
                                              size_t errlen);

/* ---- ComfyUI ---- */

/* Longest prompt id we take from ComfyUI (it makes 36-character UUIDs). */
#define COMFY_PROMPT_ID_MAX 64

/*
 * The "prompt_id" of a 200 from POST /prompt, copied into id (idlen bytes):
 * 0, or -1 when there is none we can use in a URL path (empty, longer than
 * COMFY_PROMPT_ID_MAX or idlen - 1, or holding '/', '?', '#', '%' or a space).
 */
int comfy_read_prompt_id(const char *body, size_t len, char *id, size_t idlen);

/*
 * The one-line reason of a 400 from POST /prompt ("Prompt outputs failed
 * validation; CheckpointLoaderSimple (node 4): Value not in list: ..."),
 * into dst (dstlen bytes, NUL-terminated); http_error_text's reading when
 * the body is not ComfyUI's validation answer.
 */
void comfy_describe_rejection(const char *body, size_t len, char *dst, size_t dstlen);

/* Where a prompt is, by one answer of GET /history/<prompt_id>. */
enum comfy_progress {
    COMFY_WAITING,  /* not done yet: ask again */
    COMFY_FINISHED, /* done: *image is the output image to download */
    COMFY_FAILED,   /* *result and err say why */
};

/*
 * Reads one answer of GET /history/<prompt_id>. On COMFY_FINISHED, *image
 * is a new reference to the chosen output ({"filename", "subfolder",
 * "type"}: the first saved image, else the first preview); otherwise
 * *image is NULL. cancel (may be NULL) tells an interruption we asked for
 * (BACKEND_CANCELED) from one we did not (BACKEND_TRANSIENT).
 */
enum comfy_progress comfy_read_history(const char *who, const char *body, size_t len,
                                       const char *prompt_id, atomic_int *cancel,
                                       json_t **image, enum backend_result *result, char *err,
                                       size_t errlen);

/* 1 when an answer of GET /queue lists prompt_id under "queue_running". */
int comfy_queue_running(const char *body, size_t len, const char *prompt_id);

/* What one message of ComfyUI's websocket says about our prompt
 * (server.py send_sync, execution.py; docs/live.md). */
enum comfy_ws_event {
    COMFY_WS_OTHER = 0, /* another prompt's, a broadcast, or unknown */
    COMFY_WS_PROGRESS,  /* "progress": step of steps */
    COMFY_WS_PREVIEW,   /* a binary preview frame: image bytes */
    COMFY_WS_ENDED,     /* "executing" with node null, "execution_success",
                         * "execution_error", "execution_interrupted": the
                         * history has (or is about to have) the verdict */
};

struct comfy_ws_read {
    enum comfy_ws_event event;
    int step, steps;
    const unsigned char *image; /* COMFY_WS_PREVIEW: borrowed from the message */
    size_t image_len;
    const char *mime;           /* "image/jpeg" or "image/png": static */
};

/* Reads a text (binary = 0) or binary message of len bytes. A text
 * message names its prompt; a binary one is ours by the connection (it
 * goes to the prompt's client_id only) unless its metadata names another. */
void comfy_read_ws(const unsigned char *data, size_t len, int binary, const char *prompt_id,
                   struct comfy_ws_read *out);

#endif
