/*
 * fuzz_csv.c: CSV import (template_items_from_csv), the text of a
 * template's "csv" field or an uploaded file, straight from the client.
 *
 * Beyond "no crash, no leak": what import accepts stays within the limits,
 * and its promises hold: the export of an import imports back to the same
 * columns and items, and the items, sent back as a client's csv_items,
 * normalise to themselves.
 */
#include "fuzz.h"
#include "util/template_items.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init_json();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *columns, *items;
    char err[512] = "";
    if (template_items_from_csv((const char *)data, size, &columns, &items, err, sizeof err) !=
        SF_OK) {
        FUZZ_ASSERT(err[0] != '\0'); /* a refusal always says why */
        return 0;
    }
    size_t ncols = json_array_size(columns);
    FUZZ_ASSERT(ncols >= 1 && ncols <= TEMPLATE_ITEMS_MAX_COLUMNS);
    FUZZ_ASSERT(json_array_size(items) <= TEMPLATE_ITEMS_MAX);

    size_t len;
    char *csv = template_items_to_csv(columns, items, &len);
    json_t *columns2, *items2;
    FUZZ_ASSERT(template_items_from_csv(csv, len, &columns2, &items2, err, sizeof err) == SF_OK);
    FUZZ_ASSERT(json_equal(columns, columns2));
    FUZZ_ASSERT(json_equal(items, items2));
    json_decref(columns2);
    json_decref(items2);
    free(csv);

    if (json_array_size(items) > 0) {
        json_t *columns3, *items3;
        FUZZ_ASSERT(template_items_normalize(items, &columns3, &items3, err, sizeof err) == SF_OK);
        FUZZ_ASSERT(json_equal(columns, columns3));
        FUZZ_ASSERT(json_equal(items, items3));
        json_decref(columns3);
        json_decref(items3);
    }
    json_decref(columns);
    json_decref(items);
    return 0;
}
