/*
 * templates.h: batch templates in SQLite.
 *
 * Rows go in and come out as JSON objects in the API's shape, so the API
 * layer validates and the store only persists. csv_items, csv_columns and
 * loras are JSON columns.
 */
#ifndef SF_STORE_TEMPLATES_H
#define SF_STORE_TEMPLATES_H

#include <jansson.h>

#include "util/pagination.h"
#include "util/status.h"

/* *out: a new object; with_items adds "csv_items". SF_ENOTFOUND. */
sf_status templates_get(long long id, int with_items, json_t **out);

/* *rows_out: a new array (newest first, no csv_items); *total_out: count. */
sf_status templates_list(const struct page *pg, json_t **rows_out, long long *total_out);

/*
 * row (borrowed) has every writable key: name, description, prompt_template,
 * base_prompt, style_suffix, example_theme, negative_prompt, width, height,
 * loras, csv_columns, csv_items.
 */
sf_status templates_insert(const json_t *row, const char *created_by, long long *id_out);
sf_status templates_update(long long id, const json_t *row);

/* SF_ENOTFOUND, or SF_ECONFLICT while any run of it exists. */
sf_status templates_delete(long long id);

/* Number of templates. */
long long templates_count(void);

#endif
