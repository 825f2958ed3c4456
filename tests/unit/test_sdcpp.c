/*
 * test_sdcpp.c: the pure rules the a1111 backend applies to sd-server
 * (backends/sdcpp.h): LoRA names to listed paths, size alignment; and the
 * item seed rule of store/runs.h, which keeps seeds within 32 bits.
 */
#include <stdlib.h>

#include "backends/sdcpp.h"
#include "backends/sdcpp_jobs.h"
#include "util/png.h"
#include "store/runs.h"
#include "unit.h"

static json_t *listed(void)
{
    return json_pack("[{ss ss} {ss ss} {ss ss} {ss ss} {ss ss}]", "name", "detail", "path",
                     "detail.safetensors", "name", "film_grain", "path", "film_grain.safetensors",
                     "name", "Watercolor", "path", "styles/Watercolor.safetensors", "name",
                     "ink", "path", "a/ink.safetensors", "name", "ink", "path",
                     "b/ink.ckpt");
}

static const char *match(const json_t *list, const char *wanted, enum lora_match want,
                         char *hint, size_t hintlen)
{
    const char *path = NULL;
    enum lora_match m = sdcpp_lora_match(list, wanted, &path, hint, hintlen);
    CHECK(m == want);
    return path ? path : "";
}

static void test_lora_match(void)
{
    json_t *l = listed();
    char hint[256];
    CHECK_STR(match(l, "detail.safetensors", LORA_FOUND, hint, sizeof hint), "detail.safetensors");
    CHECK_STR(match(l, "DETAIL.SafeTensors", LORA_FOUND, hint, sizeof hint), "detail.safetensors");
    CHECK_STR(match(l, "detail", LORA_FOUND, hint, sizeof hint), "detail.safetensors");
    CHECK_STR(match(l, "Film_Grain", LORA_FOUND, hint, sizeof hint), "film_grain.safetensors");
    CHECK_STR(match(l, "/models/Lora/film_grain.safetensors", LORA_FOUND, hint, sizeof hint),
              "film_grain.safetensors");
    CHECK_STR(match(l, "styles/watercolor", LORA_FOUND, hint, sizeof hint),
              "styles/Watercolor.safetensors");
    CHECK_STR(match(l, "watercolor", LORA_FOUND, hint, sizeof hint),
              "styles/Watercolor.safetensors");
    /* a folder given picks one of two files of the same name */
    CHECK_STR(match(l, "b/ink", LORA_FOUND, hint, sizeof hint), "b/ink.ckpt");
    /* two files of that name: never guessed */
    CHECK_STR(match(l, "ink", LORA_AMBIGUOUS, hint, sizeof hint), "");
    CHECK_STR(hint, "a/ink.safetensors, b/ink.ckpt");
    /* none: the close ones */
    CHECK_STR(match(l, "detial", LORA_NONE, hint, sizeof hint), "");
    CHECK_STR(hint, "detail.safetensors");
    CHECK_STR(match(l, "grain", LORA_NONE, hint, sizeof hint), "");
    CHECK_STR(hint, "film_grain.safetensors");
    CHECK_STR(match(l, "zzzzzzzzzz", LORA_NONE, hint, sizeof hint), "");
    CHECK_STR(hint, "");
    /* an empty or odd list */
    json_t *empty = json_array();
    CHECK_STR(match(empty, "detail", LORA_NONE, hint, sizeof hint), "");
    CHECK_STR(match(NULL, "detail", LORA_NONE, hint, sizeof hint), "");
    json_t *odd = json_pack("[i {si} {ss}]", 3, "path", 4, "path", "");
    CHECK_STR(match(odd, "detail", LORA_NONE, hint, sizeof hint), "");
    json_decref(odd);
    json_decref(empty);
    json_decref(l);
}

static void test_alignment(void)
{
    CHECK(align_up(72, 64) == 128);
    CHECK(align_up(64, 64) == 64);
    CHECK(align_up(720, 64) == 768);
    CHECK(align_up(72, 1) == 72);
    CHECK(align_up(72, 0) == 72);
    /* the smallest power of two that explains an answer */
    CHECK(sdcpp_size_explain(72, 64, 72, 64) == 1);
    CHECK(sdcpp_size_explain(72, 64, 128, 64) == 64);
    CHECK(sdcpp_size_explain(512, 720, 512, 768) == 64);
    CHECK(sdcpp_size_explain(72, 64, 80, 64) == 16);
    CHECK(sdcpp_size_explain(60, 48, 64, 64) == 32);
    /* what no alignment explains: smaller, or far larger */
    CHECK(sdcpp_size_explain(512, 720, 256, 368) == 0);
    CHECK(sdcpp_size_explain(64, 64, 1024, 1024) == 0);
    CHECK(sdcpp_size_explain(72, 64, 128, 72) == 0);
    CHECK(sdcpp_size_explain(0, 64, 64, 64) == 0);
}

static void test_item_seed(void)
{
    CHECK(run_item_seed(100, 0) == 100);
    CHECK(run_item_seed(100, 5) == 105);
    CHECK(run_item_seed(2147483646, 1) == 2147483647);
    CHECK(run_item_seed(2147483646, 2) == 0);
    CHECK(run_item_seed(2147483647, 100000) == 99999);
    for (long long i = 0; i < 100000; i += 997)
        CHECK(run_item_seed(2147483600, i) >= 0 && run_item_seed(2147483600, i) <= 2147483647);
}

/* sd-server's job answers (routes_sdcpp.cpp, make_async_job_json). */
static enum sdcpp_job_state job(const char *body, struct sf_image *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    err[0] = '\0';
    return sdcpp_read_job("a1111 cpp0", body, strlen(body), img, err, errlen);
}

static void test_job_answers(void)
{
    struct sf_image img;
    char err[256];
    CHECK(job("{\"id\":\"job_1\",\"status\":\"queued\",\"queue_position\":2}", &img, err,
              sizeof err) == SDCPP_JOB_WAITING);
    CHECK(job("{\"status\":\"generating\",\"queue_position\":0}", &img, err, sizeof err) ==
          SDCPP_JOB_WAITING);
    /* a 2x3 PNG (tests/fakes/gen_png.py) */
    const char *body = "{\"status\":\"completed\",\"result\":{\"output_format\":\"png\","
                       "\"images\":[{\"index\":0,\"b64_json\":\"iVBORw0KGgoAAAANSUhEUgAAAAIAAAADCAIAAAA2iEnWAAAAEElEQVR4nGPIbtsERAwoFABliAnTJ/h4iAAAAABJRU5ErkJggg==\"}]},\"error\":null}";
    CHECK(job(body, &img, err, sizeof err) == SDCPP_JOB_DONE);
    CHECK(img.width == 2 && img.height == 3 && img.png != NULL);
    free(img.png);
    CHECK(job("{\"status\":\"failed\",\"error\":{\"code\":\"generation_failed\",\"message\":"
              "\"generate_image returned no results\"}}",
              &img, err, sizeof err) == SDCPP_JOB_FAILED);
    CHECK_STR(err, "a1111 cpp0: the job failed: generate_image returned no results");
    CHECK(job("{\"status\":\"cancelled\",\"error\":{\"code\":\"cancelled\",\"message\":"
              "\"job cancelled by client\"}}",
              &img, err, sizeof err) == SDCPP_JOB_FAILED);
    CHECK(strstr(err, "cancelled on the server") != NULL);
    CHECK(job("{\"status\":\"completed\",\"result\":{\"images\":[]}}", &img, err, sizeof err) ==
          SDCPP_JOB_FAILED);
    CHECK(strstr(err, "without an image") != NULL);
    CHECK(job("{\"status\":\"completed\",\"result\":{\"images\":[{\"b64_json\":\"$$$\"}]}}", &img,
              err, sizeof err) == SDCPP_JOB_FAILED);
    CHECK(job("{\"status\":\"completed\",\"result\":{\"images\":[{\"b64_json\":\"aGVsbG8=\"}]}}",
              &img, err, sizeof err) == SDCPP_JOB_FAILED);
    CHECK(img.png == NULL);
    CHECK(job("not json", &img, err, sizeof err) == SDCPP_JOB_FAILED);
    CHECK(strstr(err, "without a status") != NULL);
}

static void test_job_request(void)
{
    json_t *loras = json_pack("[{ss sf}]", "name", "Detail", "weight", 0.5);
    json_t *paths = json_pack("[s]", "detail.safetensors");
    struct sf_job j = {.prompt = "a fox", .negative_prompt = "blur", .seed = 7, .steps = 2,
                       .cfg_scale = 6.5, .width = 72, .height = 64, .loras = loras};
    json_t *rq = sdcpp_job_request(&j, "DPM++ 2M", paths);
    CHECK(rq != NULL);
    CHECK_STR(json_string_value(json_object_get(rq, "prompt")), "a fox");
    CHECK(json_integer_value(json_object_get(rq, "seed")) == 7);
    CHECK(json_integer_value(json_object_get(rq, "batch_count")) == 1);
    json_t *sp = json_object_get(rq, "sample_params");
    CHECK_STR(json_string_value(json_object_get(sp, "sample_method")), "dpm++2m");
    CHECK(json_integer_value(json_object_get(sp, "sample_steps")) == 2);
    json_t *l0 = json_array_get(json_object_get(rq, "lora"), 0);
    CHECK_STR(json_string_value(json_object_get(l0, "path")), "detail.safetensors");
    CHECK(json_number_value(json_object_get(l0, "multiplier")) == 0.5);
    json_decref(rq);
    /* a sampler sd-server has no name for: its default */
    rq = sdcpp_job_request(&j, "UniPC", NULL);
    CHECK(json_object_get(json_object_get(rq, "sample_params"), "sample_method") == NULL);
    CHECK(json_array_size(json_object_get(rq, "lora")) == 0);
    json_decref(rq);
    j.prompt = "\xff\xfe";
    CHECK(sdcpp_job_request(&j, "Euler a", NULL) == NULL);
    json_decref(paths);
    json_decref(loras);
}

int main(void)
{
    test_job_answers();
    test_job_request();
    test_lora_match();
    test_alignment();
    test_item_seed();
    UNIT_END("sdcpp");
}
