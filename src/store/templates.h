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

/* How much of a template a read returns: the summary row, or with its
 * "csv_items" too. */
enum template_detail { TEMPLATE_SUMMARY, TEMPLATE_WITH_ITEMS };

/* *out: a new object. SF_ENOTFOUND. */
sf_status templates_get(long long id, enum template_detail detail, json_t **out);

/* The same row as JSON text, appended to sb (the fast path of the API). */
struct strbuf;
sf_status templates_get_text(long long id, enum template_detail detail, struct strbuf *sb);

/* Appends the page's rows (newest first, no csv_items) as comma-separated
 * JSON objects to sb; *total_out gets the count of all templates. */
sf_status templates_list_text(const struct page *pg, struct strbuf *sb, long long *total_out);

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
