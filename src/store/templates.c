/*
 * templates.c: the batch_templates table.
 */
#include "store/templates.h"

#include <stdlib.h>

#include "store/db.h"
#include "util/jsontext.h"
#include "util/timeutil.h"

#define COLS "id, name, description, prompt_template, base_prompt, style_suffix, " \
             "example_theme, negative_prompt, width, height, loras, csv_columns, "  \
             "item_count, created_by, created_at, updated_at, json_array_length(loras)"

static const char SQL_GET[] = "SELECT " COLS ", csv_items FROM batch_templates WHERE id = ?1";
static const char SQL_GET_NO_ITEMS[] = "SELECT " COLS " FROM batch_templates WHERE id = ?1";
static const char SQL_LIST[] =
    "SELECT " COLS " FROM batch_templates ORDER BY id DESC LIMIT ?1 OFFSET ?2";
static const char SQL_COUNT[] = "SELECT count(*) FROM batch_templates";
static const char SQL_INSERT[] =
    "INSERT INTO batch_templates (name, description, prompt_template, base_prompt, "
    "style_suffix, example_theme, negative_prompt, width, height, loras, csv_columns, "
    "csv_items, item_count, created_by, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)";
static const char SQL_UPDATE[] =
    "UPDATE batch_templates SET name = ?1, description = ?2, prompt_template = ?3, "
    "base_prompt = ?4, style_suffix = ?5, example_theme = ?6, negative_prompt = ?7, "
    "width = ?8, height = ?9, loras = ?10, csv_columns = ?11, csv_items = ?12, "
    "item_count = ?13, updated_at = ?15 WHERE id = ?16";
/* NOT EXISTS makes "no runs" and "delete" one atomic step; the foreign key
 * (ON DELETE RESTRICT) backs it up. */
static const char SQL_DELETE[] =
    "DELETE FROM batch_templates WHERE id = ?1 "
    "AND NOT EXISTS (SELECT 1 FROM runs WHERE template_id = ?1)";
static const char SQL_EXISTS[] = "SELECT 1 FROM batch_templates WHERE id = ?1";

/*
 * Writes one row as JSON text. The JSON columns were written by us with
 * json_dumps and are CHECKed with json_valid, so they are spliced as they
 * are; only the plain text columns are escaped.
 */
static void render(sqlite3_stmt *st, enum template_detail detail, struct strbuf *sb)
{
    static const char *const text_cols[] = {"name", "description", "prompt_template", "base_prompt",
                                            "style_suffix", "example_theme", "negative_prompt"};
    sb_printf(sb, "{\"id\":%lld", (long long)sqlite3_column_int64(st, 0));
    for (int i = 0; i < 7; i++) {
        jt_key(sb, text_cols[i], 0);
        jt_str(sb, db_col_text(st, 1 + i));
    }
    sb_printf(sb, ",\"width\":%d,\"height\":%d,\"lora_count\":%d,\"loras\":%s,\"csv_columns\":%s,"
                  "\"template_item_count\":%lld",
              sqlite3_column_int(st, 8), sqlite3_column_int(st, 9), sqlite3_column_int(st, 16),
              db_col_text(st, 10), db_col_text(st, 11), (long long)sqlite3_column_int64(st, 12));
    jt_key(sb, "created_by", 0);
    if (sqlite3_column_type(st, 13) == SQLITE_NULL)
        sb_puts(sb, "null");
    else
        jt_str(sb, db_col_text(st, 13));
    jt_key(sb, "created_at", 0);
    jt_str(sb, db_col_text(st, 14));
    jt_key(sb, "updated_at", 0);
    jt_str(sb, db_col_text(st, 15));
    if (detail == TEMPLATE_WITH_ITEMS) {
        jt_key(sb, "csv_items", 0);
        sb_puts(sb, db_col_text(st, 17));
    }
    sb_putc(sb, '}');
}

sf_status templates_get_text(long long id, enum template_detail detail, struct strbuf *sb)
{
    sqlite3_stmt *st = db_stmt(detail == TEMPLATE_WITH_ITEMS ? SQL_GET : SQL_GET_NO_ITEMS);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sf_status result = SF_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        render(st, detail, sb);
        result = SF_OK;
    } else if (rc != SQLITE_DONE) {
        result = db_status(rc);
    }
    db_done(st);
    return result;
}

sf_status templates_get(long long id, enum template_detail detail, json_t **out)
{
    struct strbuf sb;
    sb_init(&sb);
    sf_status result = templates_get_text(id, detail, &sb);
    if (result == SF_OK) {
        *out = json_loadb(sb.data, sb.len, 0, NULL);
        if (!*out)
            result = SF_EINTERNAL;
    }
    sb_free(&sb);
    return result;
}

long long templates_count(void)
{
    sqlite3_stmt *st = db_stmt(SQL_COUNT);
    long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    return n;
}

sf_status templates_list_text(const struct page *pg, struct strbuf *sb, long long *total_out)
{
    *total_out = templates_count();
    sqlite3_stmt *st = db_stmt(SQL_LIST);
    sqlite3_bind_int64(st, 1, pg->per_page);
    sqlite3_bind_int64(st, 2, page_offset(pg));
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            sb_putc(sb, ',');
        render(st, 0, sb);
    }
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

static const char *str(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "";
}

static void bind_row(sqlite3_stmt *st, const json_t *row, const char *now)
{
    db_bind_text(st, 1, str(row, "name"));
    db_bind_text(st, 2, str(row, "description"));
    db_bind_text(st, 3, str(row, "prompt_template"));
    db_bind_text(st, 4, str(row, "base_prompt"));
    db_bind_text(st, 5, str(row, "style_suffix"));
    db_bind_text(st, 6, str(row, "example_theme"));
    db_bind_text(st, 7, str(row, "negative_prompt"));
    sqlite3_bind_int64(st, 8, json_integer_value(json_object_get(row, "width")));
    sqlite3_bind_int64(st, 9, json_integer_value(json_object_get(row, "height")));
    db_bind_json(st, 10, json_object_get(row, "loras"));
    db_bind_json(st, 11, json_object_get(row, "csv_columns"));
    db_bind_json(st, 12, json_object_get(row, "csv_items"));
    sqlite3_bind_int64(st, 13, (sqlite3_int64)json_array_size(json_object_get(row, "csv_items")));
    db_bind_text(st, 15, now);
}

sf_status templates_insert(const json_t *row, const char *created_by, long long *id_out)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_INSERT);
    bind_row(st, row, now);
    db_bind_text(st, 14, created_by);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    *id_out = sqlite3_last_insert_rowid(db_conn());
    return SF_OK;
}

sf_status templates_update(long long id, const json_t *row)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_UPDATE);
    bind_row(st, row, now);
    sqlite3_bind_int64(st, 16, id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return sqlite3_changes(db_conn()) ? SF_OK : SF_ENOTFOUND;
}

sf_status templates_delete(long long id)
{
    sqlite3_stmt *st = db_stmt(SQL_DELETE);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    if (sqlite3_changes(db_conn()))
        return SF_OK;
    st = db_stmt(SQL_EXISTS);
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_ROW ? SF_ECONFLICT : SF_ENOTFOUND;
}
