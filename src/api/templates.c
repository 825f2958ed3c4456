/*
 * templates.c: the /api/batch-templates routes.
 *
 * Create and update share one builder: it starts from the current row (or
 * the defaults), overlays every valid field of the body, imports items from
 * `csv` or `csv_items`, and finally checks that the prompt template's
 * placeholders name real columns. Every bad field is reported at once.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "api/bodies.h"
#include "api/validate.h"
#include "store/templates.h"
#include "util/placeholder.h"
#include "util/template_items.h"
#include "util/xalloc.h"

static json_t *template_defaults(void)
{
    return json_pack("{ss ss ss ss ss ss ss si si s[] s[] s[]}",
                     "name", "", "description", "", "prompt_template", "",
                     "base_prompt", "", "style_suffix", "", "example_theme", "",
                     "negative_prompt", "", "width", 512, "height", 512,
                     "loras", "csv_columns", "csv_items");
}

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
    char err[512];
    sf_status st;
    const char *key = csv ? "csv" : "csv_items";
    if (csv) {
        if (!json_is_string(csv)) {
            json_object_set_new(fields, "csv", json_string("must be a string of CSV text"));
            return;
        }
        st = template_items_from_csv(json_string_value(csv), json_string_length(csv), &columns, &parsed, err, sizeof(err));
    } else {
        st = template_items_normalize(items, &columns, &parsed, err, sizeof(err));
    }
    if (st != SF_OK) {
        json_object_set_new(fields, key, json_string(err));
        return;
    }
    json_object_set_new(row, "csv_columns", columns);
    json_object_set_new(row, "csv_items", parsed);
}

json_t *template_body_row(const json_t *body, const json_t *current, json_t *fields)
{
    json_t *row = current ? json_deep_copy(current) : template_defaults();

    if (!current) {
        if (!json_object_get(body, "name"))
            json_object_set_new(fields, "name", json_string("is required"));
        if (!json_object_get(body, "prompt_template"))
            json_object_set_new(fields, "prompt_template", json_string("is required"));
    }
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
        char err[1024];
        if (placeholders_check(json_string_value(json_object_get(row, "prompt_template")),
                               json_object_get(row, "csv_columns"), err, sizeof(err)) != SF_OK)
            json_object_set_new(fields, "prompt_template", json_string(err));
    }
    return row;
}

/*
 * Builds the row to store from the body over current (NULL on create).
 * Returns SF_OK with *row_out (new reference) or the failure.
 */
static sf_status build_template(struct sf_request *req, struct sf_response *res,
                                const json_t *current, json_t **row_out)
{
    json_t *fields = json_object();
    json_t *row = template_body_row(req->json, current, fields);
    if (json_object_size(fields)) {
        json_decref(row);
        return res_invalid_fields(res, fields, "invalid batch template");
    }
    json_decref(fields);
    *row_out = row;
    return SF_OK;
}

sf_status list_templates(struct sf_request *req, struct sf_response *res)
{
    struct page pg;
    sf_status st = req_page(req, res, &pg);
    if (st != SF_OK)
        return st;
    struct strbuf sb;
    sb_init(&sb);
    long long total;
    sb_puts(&sb, "{\"templates\":[");
    st = templates_list_text(&pg, &sb, &total);
    if (st != SF_OK) {
        sb_free(&sb);
        return res_fail(res, st, "cannot list templates");
    }
    sb_printf(&sb, "],\"total\":%lld,\"page\":%lld,\"per_page\":%lld,\"pages\":%lld}", total, pg.page,
              pg.per_page, (total + pg.per_page - 1) / pg.per_page);
    size_t len;
    char *body = sb_detach(&sb, &len);
    return res_body(res, 200, "application/json", body, len);
}

sf_status get_template(struct sf_request *req, struct sf_response *res)
{
    struct strbuf sb;
    sb_init(&sb);
    sf_status st = templates_get_text(req->ids[0], TEMPLATE_WITH_ITEMS, &sb);
    if (st != SF_OK) {
        sb_free(&sb);
        return res_fail(res, st, "batch template %lld not found", req->ids[0]);
    }
    size_t len;
    char *body = sb_detach(&sb, &len);
    return res_body(res, 200, "application/json", body, len);
}

sf_status create_template(struct sf_request *req, struct sf_response *res)
{
    json_t *row;
    sf_status st = build_template(req, res, NULL, &row);
    if (st != SF_OK)
        return st;
    long long id;
    st = templates_insert(row, req->token_name, &id);
    json_decref(row);
    if (st != SF_OK)
        return res_fail(res, st, "cannot store the template");
    json_t *t;
    if ((st = templates_get(id, TEMPLATE_WITH_ITEMS, &t)) != SF_OK)
        return res_fail(res, st, "cannot read the new template back");
    res_header(res, "Location", "/api/batch-templates/%lld", id);
    return res_json(res, 201, t);
}

sf_status update_template(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    json_t *current, *row;
    sf_status st = templates_get(id, TEMPLATE_WITH_ITEMS, &current);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld not found", id);
    st = build_template(req, res, current, &row);
    json_decref(current);
    if (st != SF_OK)
        return st;
    st = templates_update(id, row);
    json_decref(row);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld could not be updated", id);
    json_t *t;
    if ((st = templates_get(id, TEMPLATE_WITH_ITEMS, &t)) != SF_OK)
        return res_fail(res, st, "batch template %lld not found", id);
    return res_json(res, 200, t);
}

sf_status delete_template(struct sf_request *req, struct sf_response *res)
{
    long long id = req->ids[0];
    sf_status st = templates_delete(id);
    if (st == SF_ECONFLICT)
        return res_fail(res, st, "batch template %lld has runs; it is kept for their provenance", id);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld not found", id);
    return res_json(res, 200, json_pack("{ss}", "message", "batch template deleted"));
}

sf_status export_template_items(struct sf_request *req, struct sf_response *res)
{
    json_t *t;
    sf_status st = templates_get(req->ids[0], TEMPLATE_WITH_ITEMS, &t);
    if (st != SF_OK)
        return res_fail(res, st, "batch template %lld not found", req->ids[0]);
    size_t len;
    char *csv = template_items_to_csv(json_object_get(t, "csv_columns"), json_object_get(t, "csv_items"), &len);
    json_decref(t);
    res_header(res, "Content-Disposition", "attachment; filename=\"template-%lld-items.csv\"", req->ids[0]);
    return res_body(res, 200, "text/csv; charset=utf-8", csv, len);
}
