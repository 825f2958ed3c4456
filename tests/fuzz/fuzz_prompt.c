/*
 * fuzz_prompt.c: the prompt renderer (util/placeholder.c), which a
 * template's prompt_template, a CSV item and a run's theme all reach.
 *
 * Input: the theme on the first line, the item (a JSON object of column
 * name -> value; its keys are the columns) on the second, and the template
 * in the rest (several lines allowed). The check runs as on save, the
 * render as on generate. A template without braces renders as itself.
 */
#include "fuzz.h"
#include "util/placeholder.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *theme = fuzz_line(&data, &size);
    char *item_text = fuzz_line(&data, &size);
    char *tmpl = fuzz_strndup(data, size);

    json_t *item = json_loads(item_text, 0, NULL);
    if (!json_is_object(item)) {
        json_decref(item);
        item = json_object();
    }
    json_t *columns = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(item, key, v) json_array_append_new(columns, json_string(key));

    char err[1024] = "";
    sf_status st = placeholders_check(tmpl, columns, err, sizeof err);
    FUZZ_ASSERT(st == SF_OK || (st == SF_EINVAL && err[0] != '\0'));

    char *out = placeholders_render(tmpl, item, theme);
    FUZZ_ASSERT(out != NULL);
    if (!strpbrk(tmpl, "{}"))
        FUZZ_ASSERT(strcmp(out, tmpl) == 0);
    free(out);
    /* generate renders with the run's theme; an example with none */
    out = placeholders_render(tmpl, item, NULL);
    free(out);

    json_decref(columns);
    json_decref(item);
    free(tmpl);
    free(item_text);
    free(theme);
    return 0;
}
