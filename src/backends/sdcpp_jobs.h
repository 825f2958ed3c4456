/*
 * sdcpp_jobs.h: drawing one image through sd-server's native async API
 * (POST /sdcpp/v1/img_gen, GET /sdcpp/v1/jobs/<id>, POST .../cancel), used
 * by the a1111 backend when the server offers it, so a cancel cancels.
 */
#ifndef SF_SDCPP_JOBS_H
#define SF_SDCPP_JOBS_H

#include <jansson.h>
#include <stddef.h>

#include "backends/backend.h"

/* Where and as whom (borrowed strings). */
struct sdcpp_conn {
    const char *url;     /* no trailing slash */
    const char *userpwd; /* or NULL */
    const char *who;     /* "a1111 cpp0" */
};

/*
 * The img_gen body of job: prompt, negative_prompt, width, height, seed,
 * batch_count 1, sample_params {sample_steps, guidance {txt_cfg},
 * sample_method (sd-server's name of the A1111 sampler, when it has one)},
 * output_format "png", and "lora" from paths (the listed path of each of
 * the job's LoRAs, in order). NULL when the prompt is not UTF-8.
 */
json_t *sdcpp_job_request(const struct sf_job *job, const char *sampler, const json_t *paths);

enum sdcpp_job_state { SDCPP_JOB_WAITING, SDCPP_JOB_DONE, SDCPP_JOB_FAILED };

/*
 * Reads one answer of GET /sdcpp/v1/jobs/<id>: WAITING (queued or
 * generating), DONE with out's png (malloc'd), width and height filled from
 * the first result image (a whole PNG), or FAILED with err (failed,
 * cancelled, an unusable image or answer).
 */
enum sdcpp_job_state sdcpp_read_job(const char *who, const char *body, size_t len,
                                    struct sf_image *out, char *err, size_t errlen);

/*
 * Queues rq (sdcpp_job_request) and waits for its image, at most budget_ms
 * in all, polling tightly once 85% of expect_ms (the endpoint's usual time
 * from queueing to image; 0: unknown) has passed; *job->cancel cancels it
 * on the server (a job already generating cannot be: its result is
 * dropped) and returns BACKEND_CANCELED at once.
 * A server without the route (404) sets *not_served and returns
 * BACKEND_TRANSIENT with nothing queued. out->seed is job->seed.
 */
enum backend_result sdcpp_job_generate(const struct sdcpp_conn *c, const struct sf_job *job,
                                       const json_t *rq, long budget_ms, long expect_ms,
                                       struct sf_image *out, int *not_served, char *err,
                                       size_t errlen);

#endif
