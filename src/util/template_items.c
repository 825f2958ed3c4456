/*
 * template_items.c: a batch template's items, from CSV text or a client's JSON
 * array into the (columns, items) pair the store keeps, and back out as CSV.
 *
 * Import drives libcsv in strict mode (RFC 4180) and builds the JSON as the
 * fields arrive, so the only copy of the data is the one we return. Every
 * rejection is a single sentence a person can act on, naming the row,
 * column or byte, because the text comes straight from an uploaded file.
 *
 * Rows are counted as CSV records, not lines: the header is row 1, a quoted
 * field spanning several lines is still one row, and skipped blank lines are
 * not counted. A "blank line" is an empty one; since values are not trimmed,
 * a line holding only spaces is a record with one field.
 */
#include "util/template_items.h"

#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* libcsv's buffer grows by 128-byte blocks; past this, the field being read
 * is certainly over TEMPLATE_ITEMS_MAX_FIELD, so import can stop without reading on. */
#define FIELD_BUFFER_CAP (TEMPLATE_ITEMS_MAX_FIELD + 1024)
/* Fed to libcsv in slices so a failure stops the parse early. */
#define PARSE_SLICE 65536

static void put_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* ---------------------------------------------------------------- import */

struct import_ctx {
    json_t *header;  /* names so far; the column list once the header ends */
    int have_header; /* the header row is complete */
    json_t *items;
    json_t *row;     /* the data row being read, created on its first field */
    size_t nfields;  /* fields seen in the record being read */
    size_t row_no;   /* 1-based number of the record being read */
    int failed;
    char *err;
    size_t errlen;
};

static void import_fail(struct import_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void import_fail(struct import_ctx *c, const char *fmt, ...)
{
    c->failed = 1;
    if (!c->err || c->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

/* libcsv may hand an empty field as a NULL pointer; jansson wants bytes. */
static const char *field_bytes(const void *s, size_t len)
{
    return len && s ? s : "";
}

static int header_has(const json_t *header, const char *name, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(header, i, v) {
        if (json_string_length(v) == len && memcmp(json_string_value(v), name, len) == 0)
            return 1;
    }
    return 0;
}

static void header_field(struct import_ctx *c, const char *s, size_t len, size_t col)
{
    if (col >= TEMPLATE_ITEMS_MAX_COLUMNS) {
        import_fail(c, "the header has more than %d columns; the limit is %d",
                    TEMPLATE_ITEMS_MAX_COLUMNS, TEMPLATE_ITEMS_MAX_COLUMNS);
        return;
    }
    while (len && is_blank(*s)) {
        s++;
        len--;
    }
    while (len && is_blank(s[len - 1]))
        len--;
    if (len == 0) {
        import_fail(c, "column %zu of the header is empty", col + 1);
        return;
    }
    if (len > TEMPLATE_ITEMS_MAX_FIELD) {
        import_fail(c, "column %zu of the header is %zu bytes long; the limit is %d",
                    col + 1, len, TEMPLATE_ITEMS_MAX_FIELD);
        return;
    }
    if (memchr(s, '\0', len)) {
        import_fail(c, "column %zu of the header contains a NUL byte", col + 1);
        return;
    }
    json_t *name = json_stringn(s, len);
    if (!name) {
        import_fail(c, "column %zu of the header is not valid UTF-8", col + 1);
        return;
    }
    if (header_has(c->header, s, len)) {
        import_fail(c, "the header names column \"%s\" twice", json_string_value(name));
        json_decref(name);
        return;
    }
    json_array_append_new(c->header, name);
}

static void data_field(struct import_ctx *c, const char *s, size_t len, size_t col)
{
    /* Extra fields are only counted; the row is rejected when it ends. */
    if (col >= json_array_size(c->header))
        return;
    const char *name = json_string_value(json_array_get(c->header, col));
    if (len > TEMPLATE_ITEMS_MAX_FIELD) {
        import_fail(c, "row %zu, column \"%s\" is %zu bytes long; the limit is %d",
                    c->row_no, name, len, TEMPLATE_ITEMS_MAX_FIELD);
        return;
    }
    if (memchr(s, '\0', len)) {
        import_fail(c, "row %zu, column \"%s\" contains a NUL byte", c->row_no, name);
        return;
    }
    json_t *value = json_stringn(s, len);
    if (!value) {
        import_fail(c, "row %zu, column \"%s\" is not valid UTF-8", c->row_no, name);
        return;
    }
    if (!c->row)
        c->row = json_object();
    json_object_set_new(c->row, name, value);
}

static void on_field(void *s, size_t len, void *data)
{
    struct import_ctx *c = data;
    if (c->failed)
        return;
    size_t col = c->nfields++;
    if (c->have_header)
        data_field(c, field_bytes(s, len), len, col);
    else
        header_field(c, field_bytes(s, len), len, col);
}

static void end_data_row(struct import_ctx *c)
{
    size_t want = json_array_size(c->header);
    if (c->nfields != want) {
        import_fail(c, "row %zu has %zu field%s; the header has %zu", c->row_no,
                    c->nfields, c->nfields == 1 ? "" : "s", want);
        return;
    }
    if (json_array_size(c->items) >= TEMPLATE_ITEMS_MAX) {
        import_fail(c, "the CSV has more than %d data rows; the limit is %d",
                    TEMPLATE_ITEMS_MAX, TEMPLATE_ITEMS_MAX);
        return;
    }
    json_array_append_new(c->items, c->row);
    c->row = NULL;
}

static void on_row(int term, void *data)
{
    struct import_ctx *c = data;
    if (c->failed)
        return;
    if (c->have_header)
        end_data_row(c);
    else
        c->have_header = 1;
    c->nfields = 0;
    c->row_no++;
}

static int never_space(unsigned char ch)
{
    return 0;
}

/* Feeds text to libcsv; offset is where text starts in the caller's buffer,
 * so byte numbers in messages match the file the user has. */
static void parse_text(struct csv_parser *p, struct import_ctx *c, const char *text,
                       size_t len, size_t offset)
{
    size_t done = 0;
    while (done < len && !c->failed) {
        size_t n = len - done < PARSE_SLICE ? len - done : PARSE_SLICE;
        size_t used = csv_parse(p, text + done, n, on_field, on_row, c);
        if (used != n && !c->failed) {
            import_fail(c, "CSV parse error near byte %zu: %s", offset + done + used + 1,
                        csv_strerror(csv_error(p)));
            return;
        }
        done += n;
        if (!c->failed && csv_get_buffer_size(p) > FIELD_BUFFER_CAP)
            import_fail(c, "row %zu has a field longer than %d bytes", c->row_no,
                        TEMPLATE_ITEMS_MAX_FIELD);
    }
    if (c->failed)
        return;
    if (csv_fini(p, on_field, on_row, c) != 0 && !c->failed)
        import_fail(c, "CSV parse error near byte %zu: %s (row %zu has a quoted field "
                       "that is never closed)",
                    offset + len, csv_strerror(csv_error(p)), c->row_no);
}

static size_t bom_length(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

sf_status template_items_from_csv(const char *text, size_t len,
                                  json_t **columns_out, json_t **items_out,
                                  char *err, size_t errlen)
{
    struct import_ctx c = {
        .header = json_array(),
        .items = json_array(),
        .row_no = 1,
        .err = err,
        .errlen = errlen,
    };
    if (!text) {
        text = "";
        len = 0;
    }
    size_t skip = bom_length(text, len);

    struct csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    /* Values keep their spaces; by default libcsv trims unquoted fields. */
    csv_set_space_func(&p, never_space);
    /* Out of memory aborts here as everywhere else (see xalloc.h). */
    csv_set_realloc_func(&p, xrealloc);
    csv_set_free_func(&p, free);
    parse_text(&p, &c, text + skip, len - skip, skip);
    csv_free(&p);

    if (!c.failed && !c.have_header)
        import_fail(&c, "the CSV has no header row");
    json_decref(c.row);
    if (c.failed) {
        json_decref(c.header);
        json_decref(c.items);
        return SF_EINVAL;
    }
    *columns_out = c.header;
    *items_out = c.items;
    return SF_OK;
}

/* ------------------------------------------------------------- normalise */

/* Shortest "%.Ng" that reads back as the same double, so 1.5 is "1.5" and
 * 0.1 is "0.1" rather than 0.10000000000000001. */
static void format_real(double d, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/*
 * The CSV text of a value: strings as they are, numbers as decimal text,
 * null as "". Returns 0 with *text (v's own bytes or buf) and *len, or -1
 * for booleans, objects and arrays, which have no sensible cell form.
 */
static int value_text(const json_t *v, char *buf, size_t size, const char **text,
                      size_t *len)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *len = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        format_real(json_real_value(v), buf, size);
        break;
    case JSON_NULL:
        buf[0] = '\0';
        break;
    default:
        return -1;
    }
    *text = buf;
    *len = strlen(buf);
    return 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    default:
        return "a boolean";
    }
}

/*
 * Keys become header names, so they must survive an export and re-import:
 * import trims header names and rejects empty ones, hence the same rules.
 */
static int check_key(size_t i, const char *key, size_t keylen, char *err, size_t errlen)
{
    if (keylen == 0) {
        put_err(err, errlen, "csv_items[%zu] has an empty key", i);
        return -1;
    }
    if (memchr(key, '\0', keylen)) {
        put_err(err, errlen, "csv_items[%zu] has a key containing a NUL byte", i);
        return -1;
    }
    if (keylen > TEMPLATE_ITEMS_MAX_FIELD) {
        put_err(err, errlen, "csv_items[%zu] has a key of %zu bytes; the limit is %d", i,
                keylen, TEMPLATE_ITEMS_MAX_FIELD);
        return -1;
    }
    if (is_blank(key[0]) || is_blank(key[keylen - 1])) {
        put_err(err, errlen,
                "csv_items[%zu] key \"%s\" starts or ends with a space or tab; "
                "column names may not",
                i, key);
        return -1;
    }
    return 0;
}

static int check_value(size_t i, const char *key, const json_t *v, char *err,
                       size_t errlen)
{
    char buf[64];
    const char *text;
    size_t len;
    if (value_text(v, buf, sizeof buf, &text, &len) != 0) {
        put_err(err, errlen,
                "csv_items[%zu][\"%s\"] is %s; values must be strings, numbers or null", i,
                key, type_name(v));
        return -1;
    }
    if (len > TEMPLATE_ITEMS_MAX_FIELD) {
        put_err(err, errlen, "csv_items[%zu][\"%s\"] is %zu bytes long; the limit is %d",
                i, key, len, TEMPLATE_ITEMS_MAX_FIELD);
        return -1;
    }
    if (memchr(text, '\0', len)) {
        put_err(err, errlen, "csv_items[%zu][\"%s\"] contains a NUL byte", i, key);
        return -1;
    }
    return 0;
}

/* Validates item i and adds its unseen keys to columns (seen mirrors it as a
 * set, so 10,000 items x 64 keys stay cheap). */
static int scan_item(size_t i, json_t *item, json_t *columns, json_t *seen, char *err,
                     size_t errlen)
{
    if (!json_is_object(item)) {
        put_err(err, errlen, "csv_items[%zu] is not an object", i);
        return -1;
    }
    const char *key;
    size_t keylen;
    json_t *v;
    json_object_keylen_foreach(item, key, keylen, v) {
        if (check_key(i, key, keylen, err, errlen) != 0 ||
            check_value(i, key, v, err, errlen) != 0)
            return -1;
        if (json_object_getn(seen, key, keylen))
            continue;
        if (json_array_size(columns) >= TEMPLATE_ITEMS_MAX_COLUMNS) {
            put_err(err, errlen, "csv_items has more than %d distinct keys; the limit is %d",
                    TEMPLATE_ITEMS_MAX_COLUMNS, TEMPLATE_ITEMS_MAX_COLUMNS);
            return -1;
        }
        json_object_setn_new(seen, key, keylen, json_true());
        json_array_append_new(columns, json_stringn(key, keylen));
    }
    return 0;
}

/* An item with every column, in column order; values already checked. */
static json_t *full_item(json_t *item, const json_t *columns)
{
    json_t *out = json_object();
    size_t c;
    json_t *col;
    json_array_foreach(columns, c, col) {
        const char *name = json_string_value(col);
        json_t *v = json_object_get(item, name);
        char buf[64];
        const char *text = "";
        size_t len = 0;
        if (v)
            value_text(v, buf, sizeof buf, &text, &len);
        json_object_set_new(out, name, json_stringn(text, len));
    }
    return out;
}

sf_status template_items_normalize(const json_t *items_in,
                                   json_t **columns_out, json_t **items_out,
                                   char *err, size_t errlen)
{
    if (!json_is_array(items_in)) {
        put_err(err, errlen, "csv_items must be an array of objects");
        return SF_EINVAL;
    }
    size_t n = json_array_size(items_in);
    if (n > TEMPLATE_ITEMS_MAX) {
        put_err(err, errlen, "csv_items has %zu items; the limit is %d", n, TEMPLATE_ITEMS_MAX);
        return SF_EINVAL;
    }
    json_t *columns = json_array();
    json_t *seen = json_object();
    json_t *items = NULL;
    for (size_t i = 0; i < n; i++) {
        if (scan_item(i, json_array_get(items_in, i), columns, seen, err, errlen) != 0)
            goto fail;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, full_item(json_array_get(items_in, i), columns));
    json_decref(seen);
    *columns_out = columns;
    *items_out = items;
    return SF_OK;

fail:
    json_decref(seen);
    json_decref(columns);
    return SF_EINVAL;
}

/* ---------------------------------------------------------------- export */

struct export_buf {
    struct strbuf out;
    char *scratch; /* csv_write's output for one field */
    size_t scratch_cap;
};

static void put_field(struct export_buf *b, const char *s, size_t len, int first)
{
    /* csv_write doubles every quote and adds two: at most 2 * len + 2. */
    size_t need = 2 * len + 2;
    if (need > b->scratch_cap) {
        b->scratch = xrealloc(b->scratch, need);
        b->scratch_cap = need;
    }
    size_t n = csv_write(b->scratch, b->scratch_cap, s, len);
    if (!first)
        sb_putc(&b->out, ',');
    sb_append(&b->out, b->scratch, n);
}

/* A column's name; a non-string column (never stored) writes as "". */
static const char *column_name(const json_t *col, size_t *len)
{
    const char *name = json_string_value(col);
    *len = name ? json_string_length(col) : 0;
    return name ? name : "";
}

static void put_item(struct export_buf *b, const json_t *columns, const json_t *item)
{
    size_t c;
    json_t *col;
    json_array_foreach(columns, c, col) {
        size_t namelen;
        const char *name = column_name(col, &namelen);
        json_t *v = json_object_getn(item, name, namelen);
        char buf[64];
        const char *text = "";
        size_t len = 0;
        if (v && value_text(v, buf, sizeof buf, &text, &len) != 0) {
            text = "";
            len = 0;
        }
        put_field(b, text, len, c == 0);
    }
    sb_puts(&b->out, "\r\n");
}

/* With no columns there is nothing to write a header for, so the result is
 * empty (which import rejects: a template without columns does not
 * round-trip). */
char *template_items_to_csv(const json_t *columns, const json_t *items,
                            size_t *len_out)
{
    struct export_buf b = {.scratch = NULL, .scratch_cap = 0};
    sb_init(&b.out);
    if (json_array_size(columns) == 0)
        return sb_detach(&b.out, len_out);

    size_t c;
    json_t *col;
    json_array_foreach(columns, c, col) {
        size_t namelen;
        const char *name = column_name(col, &namelen);
        put_field(&b, name, namelen, c == 0);
    }
    sb_puts(&b.out, "\r\n");

    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        put_item(&b, columns, item);
    }
    free(b.scratch);
    return sb_detach(&b.out, len_out);
}
