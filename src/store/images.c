/*
 * images.c: reading image rows. Writing them belongs to the run engine,
 * which links a file and a row in one step.
 */
#include "store/images.h"

#include "store/db.h"

static json_t *nullable_int(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(st, col));
}

json_t *image_row_json(sqlite3_stmt *st, int c)
{
    long long id = sqlite3_column_int64(st, c);
    json_t *loras = json_loads(db_col_text(st, c + 8), 0, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "prompt", json_string(db_col_text(st, c + 1)));
    json_object_set_new(o, "negative_prompt", json_string(db_col_text(st, c + 2)));
    json_object_set_new(o, "seed", nullable_int(st, c + 3));
    json_object_set_new(o, "steps", nullable_int(st, c + 4));
    if (sqlite3_column_type(st, c + 5) == SQLITE_NULL)
        json_object_set_new(o, "guidance_scale", json_null());
    else
        json_object_set_new(o, "guidance_scale", json_real(sqlite3_column_double(st, c + 5)));
    json_object_set_new(o, "width", json_integer(sqlite3_column_int(st, c + 6)));
    json_object_set_new(o, "height", json_integer(sqlite3_column_int(st, c + 7)));
    json_object_set_new(o, "loras", loras ? loras : json_array());
    json_object_set_new(o, "run_id", nullable_int(st, c + 9));
    json_object_set_new(o, "item_index", nullable_int(st, c + 10));
    json_object_set_new(o, "sha256", json_string(db_col_text(st, c + 11)));
    json_object_set_new(o, "bytes", json_integer(sqlite3_column_int64(st, c + 12)));
    json_object_set_new(o, "created_at", json_string(db_col_text(st, c + 13)));
    json_object_set_new(o, "url", json_sprintf("/api/images/%lld/file", id));
    return o;
}

static const char SQL_GET[] = "SELECT " IMAGE_COLS("") " FROM images WHERE id = ?1";

sf_status images_get(long long id, json_t **out)
{
    sqlite3_stmt *st = db_stmt(SQL_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    sf_status result = SF_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        *out = image_row_json(st, 0);
        result = SF_OK;
    } else if (rc != SQLITE_DONE) {
        result = db_status(rc);
    }
    db_done(st);
    return result;
}
