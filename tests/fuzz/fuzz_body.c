/*
 * fuzz_body.c: the validation of POST/PUT bodies (api/validate.c, and what
 * the handlers run on a body before anything is stored).
 *
 * Input: a request body. As in the server (server.c, dispatch), it must
 * parse as a JSON object; then it goes through the field checks of the
 * three handlers that take one, in their order and with their bounds:
 * a batch template (templates.c build_template, with its csv or csv_items
 * import and the placeholder check), a generate request (runs.c
 * generate_run) and an album (albums.c check_album). The lists below
 * mirror those handlers, which need a database to run whole; keep them in
 * step. A rejected body ends in res_invalid_fields, as in the handlers.
 *
 * What the checks promise is checked too: a value they accept is within
 * its bounds, and every failure names its field.
 */
#include <math.h>

#include "api/validate.h"
#include "fuzz.h"
#include "http/http.h"
#include "util/placeholder.h"
#include "util/template_items.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

/* Ends a check list as the handlers do; fields is taken. */
static void finish(json_t *fields, const char *what)
{
    if (json_object_size(fields) == 0) {
        json_decref(fields);
        return;
    }
    const char *key;
    json_t *msg;
    json_object_foreach(fields, key, msg) FUZZ_ASSERT(json_is_string(msg));
    struct sf_response res;
    memset(&res, 0, sizeof res);
    FUZZ_ASSERT(res_invalid_fields(&res, fields, what) == SF_EINVAL);
    FUZZ_ASSERT(res.error && res.error[0]);
    free(res.error);
    json_decref(res.fields);
}

static void check_string_bounds(const json_t *row, const char *key, size_t minlen,
                                size_t maxlen)
{
    const json_t *v = json_object_get(row, key);
    if (!v)
        return;
    FUZZ_ASSERT(json_is_string(v));
    size_t n = utf8_length(json_string_value(v));
    FUZZ_ASSERT(n >= minlen && n <= maxlen);
}

static void check_integer_bounds(const json_t *row, const char *key, long long min,
                                 long long max, long long multiple)
{
    const json_t *v = json_object_get(row, key);
    if (!v)
        return;
    FUZZ_ASSERT(json_is_integer(v));
    long long x = json_integer_value(v);
    FUZZ_ASSERT(x >= min && x <= max && x % multiple == 0);
}

/* templates.c: import_items */
static void import_items(const json_t *body, json_t *row, json_t *fields)
{
    json_t *csv = json_object_get(body, "csv");
    json_t *items = json_object_get(body, "csv_items");
    if (!csv && !items)
        return;
    if (csv && items) {
        json_object_set_new(fields, "csv", json_string("send either csv or csv_items, not both"));
        return;
    }
    json_t *columns = NULL, *parsed = NULL;
    char err[512] = "";
    sf_status st;
    const char *key = csv ? "csv" : "csv_items";
    if (csv) {
        if (!json_is_string(csv)) {
            json_object_set_new(fields, "csv", json_string("must be a string of CSV text"));
            return;
        }
        st = template_items_from_csv(json_string_value(csv), json_string_length(csv), &columns,
                                     &parsed, err, sizeof err);
    } else {
        st = template_items_normalize(items, &columns, &parsed, err, sizeof err);
    }
    if (st != SF_OK) {
        FUZZ_ASSERT(err[0] != '\0');
        json_object_set_new(fields, key, json_string(err));
        FUZZ_ASSERT(json_object_get(fields, key)); /* the sentence is UTF-8 */
        return;
    }
    json_object_set_new(row, "csv_columns", columns);
    json_object_set_new(row, "csv_items", parsed);
}

/* templates.c: build_template, on create */
static void template_body(const json_t *body)
{
    json_t *fields = json_object();
    json_t *row = json_pack("{ss ss ss ss ss ss ss si si s[] s[] s[]}", "name", "",
                            "description", "", "prompt_template", "", "base_prompt", "",
                            "style_suffix", "", "example_theme", "", "negative_prompt", "",
                            "width", 512, "height", 512, "loras", "csv_columns", "csv_items");
    if (!json_object_get(body, "name"))
        json_object_set_new(fields, "name", json_string("is required"));
    if (!json_object_get(body, "prompt_template"))
        json_object_set_new(fields, "prompt_template", json_string("is required"));
    v_string(body, "name", 1, 200, row, fields);
    v_string(body, "prompt_template", 1, 5000, row, fields);
    v_string(body, "description", 0, 2000, row, fields);
    v_string(body, "base_prompt", 0, 2000, row, fields);
    v_string(body, "style_suffix", 0, 2000, row, fields);
    v_string(body, "negative_prompt", 0, 2000, row, fields);
    v_string(body, "example_theme", 0, 500, row, fields);
    v_integer(body, "width", 64, 2048, 8, row, fields);
    v_integer(body, "height", 64, 2048, 8, row, fields);
    v_loras(body, "loras", row, fields);
    import_items(body, row, fields);
    if (!json_object_get(fields, "prompt_template") && !json_object_get(fields, "csv") &&
        !json_object_get(fields, "csv_items")) {
        char err[1024] = "";
        if (placeholders_check(json_string_value(json_object_get(row, "prompt_template")),
                               json_object_get(row, "csv_columns"), err, sizeof err) != SF_OK)
            json_object_set_new(fields, "prompt_template", json_string(err));
    }
    if (json_object_size(fields) == 0) {
        check_string_bounds(row, "name", 1, 200);
        check_string_bounds(row, "prompt_template", 1, 5000);
        check_string_bounds(row, "example_theme", 0, 500);
        check_integer_bounds(row, "width", 64, 2048, 8);
        check_integer_bounds(row, "height", 64, 2048, 8);
        FUZZ_ASSERT(json_array_size(json_object_get(row, "loras")) <= 32);
        /* what generate will do with it: one prompt per item */
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(row, "csv_items"), i, item) {
            char *p = placeholders_render(json_string_value(json_object_get(row, "prompt_template")),
                                          item, json_string_value(json_object_get(row, "example_theme")));
            free(p);
        }
    }
    json_decref(row);
    finish(fields, "invalid batch template");
}

/* runs.c: generate_run, up to the template's items */
static void generate_body(const json_t *body_in)
{
    json_t *body = json_copy((json_t *)body_in);
    if (json_is_null(json_object_get(body, "seed")))
        json_object_del(body, "seed");
    json_t *v = json_pack("{si sf sI sI s[]}", "steps", 25, "guidance_scale", 7.5, "width",
                          (json_int_t)512, "height", (json_int_t)512, "loras");
    json_t *fields = json_object();
    if (!json_object_get(body, "album_name"))
        json_object_set_new(fields, "album_name", json_string("is required"));
    if (!json_object_get(body, "user_theme"))
        json_object_set_new(fields, "user_theme", json_string("is required"));
    v_line(body, "album_name", 1, 200, v, fields);
    v_line(body, "user_theme", 1, 500, v, fields);
    v_integer(body, "steps", 1, 150, 1, v, fields);
    v_integer(body, "seed", 0, 2147483647, 1, v, fields);
    v_integer(body, "width", 64, 2048, 8, v, fields);
    v_integer(body, "height", 64, 2048, 8, v, fields);
    v_number(body, "guidance_scale", 0, 30, v, fields);
    v_line(body, "negative_prompt", 0, 2000, v, fields);
    v_loras(body, "loras", v, fields);
    json_decref(body);
    if (json_object_size(fields) == 0) {
        check_string_bounds(v, "album_name", 1, 200);
        check_string_bounds(v, "user_theme", 1, 500);
        FUZZ_ASSERT(fuzz_one_line(json_string_value(json_object_get(v, "album_name"))));
        FUZZ_ASSERT(fuzz_one_line(json_string_value(json_object_get(v, "user_theme"))));
        check_integer_bounds(v, "steps", 1, 150, 1);
        check_integer_bounds(v, "seed", 0, 2147483647, 1);
        double g = json_number_value(json_object_get(v, "guidance_scale"));
        FUZZ_ASSERT(isfinite(g) && g >= 0 && g <= 30);
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(v, "loras"), i, l) {
            double w = json_number_value(json_object_get(l, "weight"));
            FUZZ_ASSERT(json_is_real(json_object_get(l, "weight")) && w >= -5 && w <= 5);
            FUZZ_ASSERT(json_object_get(l, "name") || json_object_get(l, "path"));
        }
    }
    json_decref(v);
    finish(fields, "invalid generate request");
}

/* albums.c: check_album, on create */
static void album_body(const json_t *body)
{
    json_t *row = json_pack("{ss ss sb ss}", "name", "", "description", "", "is_public", 1,
                            "source_type", "manual");
    json_t *fields = json_object();
    if (!json_object_get(body, "name"))
        json_object_set_new(fields, "name", json_string("is required"));
    v_string(body, "name", 1, 200, row, fields);
    v_string(body, "description", 0, 2000, row, fields);
    v_boolean(body, "is_public", row, fields);
    if (json_object_size(fields) == 0) {
        check_string_bounds(row, "name", 1, 200);
        check_string_bounds(row, "description", 0, 2000);
    }
    json_decref(row);
    finish(fields, "invalid album");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    template_body(body);
    generate_body(body);
    album_body(body);
    json_decref(body);
    return 0;
}
