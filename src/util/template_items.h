/*
 * template_items.h: a template's item list, in and out of CSV and JSON.
 *
 * A batch template's items are an array of JSON objects (one per CSV row,
 * keys = header names, values = strings) plus the ordered list of columns.
 * They reach us either as raw CSV text (parsed with libcsv, RFC 4180) or as a
 * JSON array from the client; both paths end in the same normalised pair
 * (columns, items) that the store keeps as JSON columns. Export writes the
 * same pair back as CSV that round-trips through import.
 */
#ifndef SF_TEMPLATE_ITEMS_H
#define SF_TEMPLATE_ITEMS_H

#include <jansson.h>
#include <stddef.h>

#include "util/status.h"

/* Most items and columns a template may have. */
#define TEMPLATE_ITEMS_MAX 10000
#define TEMPLATE_ITEMS_MAX_COLUMNS 64
#define TEMPLATE_ITEMS_MAX_FIELD 4000 /* bytes in one value or header name */

/*
 * Parses CSV text (first row = header). On SF_OK, *columns_out is a new
 * reference to an array of header names and *items_out a new reference to an
 * array of objects. On SF_EINVAL, err holds one human sentence naming the
 * problem ("row 3 has 2 fields; the header has 3") and nothing is returned.
 */
sf_status template_items_from_csv(const char *text, size_t len,
                                  json_t **columns_out, json_t **items_out,
                                  char *err, size_t errlen);

/*
 * Checks and normalises a client's csv_items (borrowed): an array of objects
 * whose values are strings or numbers (numbers become their decimal text).
 * Columns are the keys in first-seen order; an item lacking a column gets "".
 * Same ownership and error rules as template_items_from_csv.
 */
sf_status template_items_normalize(const json_t *items_in,
                                   json_t **columns_out, json_t **items_out,
                                   char *err, size_t errlen);

/*
 * Writes columns and items (borrowed) as CSV with CRLF line ends. Returns a
 * new malloc'd buffer (the caller frees it); *len_out gets its length.
 */
char *template_items_to_csv(const json_t *columns, const json_t *items,
                            size_t *len_out);

#endif
