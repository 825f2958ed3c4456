/*
 * fuzz_body.c: the validation of POST/PUT bodies: what the handlers check in
 * a body before anything is stored (api/bodies.h, on api/validate.c).
 *
 * Input: a request body. As in the server (server.c, dispatch) it must
 * parse as a JSON object; then it goes through the checks of every handler
 * that takes one: a template's create and update (template_body_row, with
 * its csv or csv_items import and the placeholder check), generate
 * (generate_body_settings) and an album's create and update
 * (album_body_fields). A rejected body ends in res_invalid_fields, as in the
 * handlers; an accepted template has its prompts rendered, as generate will.
 *
 * What the checks promise is checked too: what they accept is within its
 * bounds (one line where it must be), and every failure names its field
 * with a sentence.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "api/bodies.h"
#include "api/validate.h"
#include "fuzz.h"
#include "http/http.h"
#include "util/placeholder.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

/* Ends a check as the handlers do; fields is taken. */
static void finish(json_t *fields, const char *what)
{
    if (json_object_size(fields) == 0) {
        json_decref(fields);
        return;
    }
    const char *key;
    json_t *msg;
    json_object_foreach(fields, key, msg) FUZZ_ASSERT(json_string_length(msg) > 0);
    struct sf_response res;
    memset(&res, 0, sizeof res);
    FUZZ_ASSERT(res_invalid_fields(&res, fields, what) == SF_EINVAL);
    FUZZ_ASSERT(res.error && res.error[0]);
    free(res.error);
    json_decref(res.fields);
}

static void check_string(const json_t *row, const char *key, size_t minlen, size_t maxlen)
{
    const json_t *v = json_object_get(row, key);
    if (!v)
        return;
    FUZZ_ASSERT(json_is_string(v));
    size_t n = utf8_length(json_string_value(v));
    FUZZ_ASSERT(n >= minlen && n <= maxlen);
}

static void check_integer(const json_t *row, const char *key, long long min, long long max,
                          long long multiple)
{
    const json_t *v = json_object_get(row, key);
    if (!v)
        return;
    FUZZ_ASSERT(json_is_integer(v));
    long long x = json_integer_value(v);
    FUZZ_ASSERT(x >= min && x <= max && x % multiple == 0);
}

/* What the LoRA rule is for: resolved against the server's LoRA folder,
 * the reference never leaves it (not absolute, no drive, never climbs
 * above the folder), and it is one line. */
static int stays_in_folder(const char *ref)
{
    if (ref[0] == '/' || ref[0] == '\\' || strchr(ref, ':') == ref + 1 || !fuzz_one_line(ref))
        return 0;
    long depth = 0;
    const char *seg = ref;
    for (const char *p = ref;; p++) {
        if (*p == '/' || *p == '\\' || *p == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 2 && memcmp(seg, "..", 2) == 0)
                depth--;
            else if (n > 0 && !(n == 1 && seg[0] == '.'))
                depth++;
            if (depth < 0)
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
        }
    }
}

static void check_loras(const json_t *loras)
{
    FUZZ_ASSERT(json_is_array(loras) && json_array_size(loras) <= 32);
    size_t i;
    json_t *l;
    json_array_foreach(loras, i, l) {
        const json_t *w = json_object_get(l, "weight");
        FUZZ_ASSERT(json_is_real(w) && json_real_value(w) >= -5 && json_real_value(w) <= 5);
        const char *name = json_string_value(json_object_get(l, "name"));
        const char *path = json_string_value(json_object_get(l, "path"));
        FUZZ_ASSERT((name && *name) || (path && *path));
        FUZZ_ASSERT(!name || stays_in_folder(name));
        FUZZ_ASSERT(!path || stays_in_folder(path));
    }
}

static void template_body(const json_t *body, const json_t *current)
{
    json_t *fields = json_object();
    json_t *row = template_body_row(body, current, fields);
    if (json_object_size(fields) == 0) {
        check_string(row, "name", 1, 200);
        check_string(row, "prompt_template", 1, 5000);
        check_string(row, "example_theme", 0, 500);
        check_integer(row, "width", 64, 2048, 8);
        check_integer(row, "height", 64, 2048, 8);
        check_loras(json_object_get(row, "loras"));
        char err[1024];
        const char *tmpl = json_string_value(json_object_get(row, "prompt_template"));
        FUZZ_ASSERT(placeholders_check(tmpl, json_object_get(row, "csv_columns"), err,
                                       sizeof err) == SF_OK);
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(row, "csv_items"), i, item) {
            char *p = placeholders_render(tmpl, item, "a theme");
            FUZZ_ASSERT(fuzz_utf8(p));
            free(p);
        }
    }
    json_decref(row);
    finish(fields, "invalid batch template");
}

static void generate_body(const json_t *body)
{
    json_t *tpl = json_pack("{si si s[{ss sf}]}", "width", 512, "height", 768, "loras", "name",
                            "from_template", "weight", 0.5);
    json_t *fields = json_object();
    json_t *v = generate_body_settings(body, tpl, fields);
    if (json_object_size(fields) == 0) {
        check_string(v, "album_name", 1, 200);
        check_string(v, "user_theme", 1, 500);
        check_string(v, "negative_prompt", 0, 2000);
        FUZZ_ASSERT(fuzz_one_line(json_string_value(json_object_get(v, "album_name"))));
        FUZZ_ASSERT(fuzz_one_line(json_string_value(json_object_get(v, "user_theme"))));
        const char *neg = json_string_value(json_object_get(v, "negative_prompt"));
        FUZZ_ASSERT(!neg || fuzz_one_line(neg));
        check_integer(v, "steps", 1, 150, 1);
        check_integer(v, "seed", 0, 2147483647, 1);
        check_integer(v, "width", 64, 2048, 8);
        check_integer(v, "height", 64, 2048, 8);
        check_integer(v, "priority", -100, 100, 1);
        double g = json_number_value(json_object_get(v, "guidance_scale"));
        FUZZ_ASSERT(isfinite(g) && g >= 0 && g <= 30);
        if (json_object_get(body, "loras"))
            check_loras(json_object_get(v, "loras"));
        /* an accepted callback_url: http(s), printable ASCII, no userinfo (docs/webhooks.md) */
        const char *cb = json_string_value(json_object_get(v, "callback_url"));
        if (cb) {
            size_t n = strlen(cb);
            FUZZ_ASSERT(n >= 8 && n <= 2048);
            FUZZ_ASSERT(strncasecmp(cb, "http://", 7) == 0 || strncasecmp(cb, "https://", 8) == 0);
            for (size_t i = 0; i < n; i++)
                FUZZ_ASSERT((unsigned char)cb[i] > 0x20 && (unsigned char)cb[i] < 0x7f);
            const char *host = strstr(cb, "://") + 3;
            FUZZ_ASSERT(!memchr(host, '@', strcspn(host, "/?#")));
        }
    }
    json_decref(v);
    json_decref(tpl);
    finish(fields, "invalid generate request");
}

static void album_body(const json_t *body, enum album_check what)
{
    json_t *row = json_pack("{ss ss sb ss}", "name", "Stored", "description", "", "is_public", 1,
                            "source_type", "manual");
    json_t *fields = json_object();
    album_body_fields(body, row, what, fields);
    if (json_object_size(fields) == 0) {
        check_string(row, "name", 1, 200);
        check_string(row, "description", 0, 2000);
        FUZZ_ASSERT(json_is_boolean(json_object_get(row, "is_public")));
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
    template_body(body, NULL);
    /* an update over a stored template with items */
    json_t *stored = json_pack("{ss ss ss ss ss ss ss si si s[] s[s] s[{ss}]}", "name", "Cards",
                               "description", "", "prompt_template", "{rank}", "base_prompt", "",
                               "style_suffix", "", "example_theme", "", "negative_prompt", "",
                               "width", 512, "height", 512, "loras", "csv_columns", "rank",
                               "csv_items", "rank", "Ace");
    template_body(body, stored);
    json_decref(stored);
    generate_body(body);
    album_body(body, ALBUM_NEW);
    album_body(body, ALBUM_CHANGE);
    json_decref(body);
    return 0;
}
