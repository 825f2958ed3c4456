/*
 * images.c: reading image rows. Writing them belongs to the run engine,
 * which links a file and a row in one step.
 */
#include "store/images.h"

#include <stdlib.h>

#include "store/db.h"
#include "store/scope.h"
#include "util/xalloc.h"

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
    /* "fit": "crop" cut it out of a larger image the server returned */
    const char *cropped = (const char *)sqlite3_column_text(st, c + 14);
    json_object_set_new(o, "cropped_from", cropped ? json_string(cropped) : json_null());
    return o;
}

sf_status images_collect(sqlite3_stmt *st, json_t **rows_out)
{
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(rows, image_row_json(st, 0));
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

/* The first-column values of a template's items, in item order: read
 * once per template and download (a template's items can be megabytes of
 * JSON, read per row they would cost as much again for every image). */
struct template_keys {
    long long template_id;
    json_t *keys; /* array of strings and nulls */
    struct template_keys *next;
};

static const char SQL_TEMPLATE_KEYS[] =
    "SELECT json_extract(csv_columns, '$[0]'), csv_items FROM batch_templates WHERE id = ?1";

static json_t *template_keys(struct template_keys **cache, long long template_id)
{
    for (struct template_keys *k = *cache; k; k = k->next)
        if (k->template_id == template_id)
            return k->keys;
    struct template_keys *k = xcalloc(1, sizeof(*k));
    k->template_id = template_id;
    k->keys = json_array();
    k->next = *cache;
    *cache = k;
    sqlite3_stmt *st = db_stmt(SQL_TEMPLATE_KEYS);
    sqlite3_bind_int64(st, 1, template_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        /* The column name is compared as it is, whatever text it holds. */
        const char *col = db_col_text(st, 0);
        json_t *items = json_loads(db_col_text(st, 1), 0, NULL);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            json_t *v = json_object_get(item, col);
            json_array_append_new(k->keys, json_is_string(v) ? json_incref(v) : json_null());
        }
        json_decref(items);
    }
    db_done(st);
    return k->keys;
}

sf_status images_each_in_set(const char *sql, long long id, enum read_scope scope,
                             int (*each)(const json_t *row, void *ctx), void *ctx)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
    struct template_keys *cache = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = image_row_json(st, 0);
        json_object_set_new(row, "position", json_integer(sqlite3_column_int64(st, IMAGE_NCOLS)));
        json_object_set_new(row, "backend", sqlite3_column_type(st, IMAGE_NCOLS + 1) == SQLITE_NULL
                                                ? json_null()
                                                : json_string(db_col_text(st, IMAGE_NCOLS + 1)));
        json_t *key = NULL, *index = json_object_get(row, "item_index");
        if (sqlite3_column_type(st, IMAGE_NCOLS + 2) != SQLITE_NULL && json_is_integer(index))
            key = json_array_get(template_keys(&cache, sqlite3_column_int64(st, IMAGE_NCOLS + 2)),
                                 (size_t)json_integer_value(index));
        json_object_set(row, "key", key ? key : json_null());
        int stop = each(row, ctx);
        json_decref(row);
        if (stop) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_done(st);
    while (cache) {
        struct template_keys *next = cache->next;
        json_decref(cache->keys);
        free(cache);
        cache = next;
    }
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

static const char SQL_GET[] =
    "SELECT " IMAGE_COLS("") " FROM images WHERE id = ?1 AND " SQL_IMAGE_VISIBLE(2, "images.id");

sf_status images_get(long long id, enum read_scope scope, json_t **out)
{
    sqlite3_stmt *st = db_stmt(SQL_GET);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
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

static const char SQL_LIST[] =
    "SELECT " IMAGE_COLS("") " FROM images WHERE " SQL_IMAGE_VISIBLE(3, "images.id")
    " ORDER BY id DESC LIMIT ?1 OFFSET ?2";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM images WHERE " SQL_IMAGE_VISIBLE(1, "images.id");
static const char SQL_SHA[] =
    "SELECT sha256 FROM images WHERE id = ?1 AND " SQL_IMAGE_VISIBLE(2, "images.id");
static const char SQL_DELETE[] = "DELETE FROM images WHERE id = ?1";
static const char SQL_SHA_USED[] = "SELECT 1 FROM images WHERE sha256 = ?1 LIMIT 1";

sf_status images_list(const struct page *pg, enum read_scope scope, json_t **rows_out,
                      long long *total_out)
{
    sqlite3_stmt *st = db_stmt(SQL_COUNT);
    sqlite3_bind_int(st, 1, scope == READ_ALL);
    int rc = sqlite3_step(st);
    *total_out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    if (rc != SQLITE_ROW)
        return db_status(rc);
    st = db_stmt(SQL_LIST);
    sqlite3_bind_int64(st, 1, pg->per_page);
    sqlite3_bind_int64(st, 2, page_offset(pg));
    sqlite3_bind_int(st, 3, scope == READ_ALL);
    return images_collect(st, rows_out);
}

sf_status images_sha(long long id, enum read_scope scope, char sha[65])
{
    sqlite3_stmt *st = db_stmt(SQL_SHA);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, scope == READ_ALL);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(sha, 65, "%s", db_col_text(st, 0));
    db_done(st);
    if (rc == SQLITE_ROW)
        return SF_OK;
    return rc == SQLITE_DONE ? SF_ENOTFOUND : db_status(rc);
}

sf_status images_delete(long long id, char sha[65], int *file_orphaned)
{
    *file_orphaned = 0;
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    s = images_sha(id, READ_ALL, sha);
    if (s != SF_OK) {
        db_rollback();
        return s;
    }
    sqlite3_stmt *st = db_stmt(SQL_DELETE);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE) {
        db_rollback();
        return db_status(rc);
    }
    st = db_stmt(SQL_SHA_USED);
    db_bind_text(st, 1, sha);
    *file_orphaned = sqlite3_step(st) != SQLITE_ROW;
    db_done(st);
    return db_commit();
}

int images_sha_used(const char *sha)
{
    sqlite3_stmt *st = db_stmt(SQL_SHA_USED);
    db_bind_text(st, 1, sha);
    int used = sqlite3_step(st) == SQLITE_ROW;
    db_done(st);
    return used;
}

static const char SQL_INSERT_GENERATED[] =
    "INSERT OR IGNORE INTO images (prompt, negative_prompt, seed, steps, guidance_scale, width, "
    "height, loras, run_id, item_index, sha256, bytes, backend, created_at, cropped_from) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
static const char SQL_FIND_GENERATED[] = "SELECT id FROM images WHERE run_id = ?1 AND item_index = ?2";

sf_status images_insert_generated(const struct generated_image *g, long long *image_id)
{
    sqlite3_stmt *st = db_stmt(SQL_INSERT_GENERATED);
    db_bind_text(st, 1, g->prompt);
    db_bind_text(st, 2, g->negative_prompt);
    sqlite3_bind_int64(st, 3, g->seed);
    sqlite3_bind_int(st, 4, g->steps);
    sqlite3_bind_double(st, 5, g->guidance_scale);
    sqlite3_bind_int(st, 6, g->width);
    sqlite3_bind_int(st, 7, g->height);
    db_bind_json(st, 8, g->loras);
    sqlite3_bind_int64(st, 9, g->run_id);
    sqlite3_bind_int(st, 10, g->item_index);
    db_bind_text(st, 11, g->sha256);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)g->bytes);
    db_bind_text(st, 13, g->backend);
    db_bind_text(st, 14, g->created_at);
    db_bind_text(st, 15, g->cropped_from);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    /* The UNIQUE (run_id, item_index) index makes a second finisher find
     * the first one's image instead of adding another. */
    st = db_stmt(SQL_FIND_GENERATED);
    sqlite3_bind_int64(st, 1, g->run_id);
    sqlite3_bind_int(st, 2, g->item_index);
    rc = sqlite3_step(st);
    *image_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    if (rc == SQLITE_ROW)
        return SF_OK;
    return rc == SQLITE_DONE ? SF_EINTERNAL : db_status(rc);
}
