/*
 * albums.c: the albums and album_images tables.
 *
 * image_count and the first five previews come from subqueries on the
 * (album_id, position) index, so a list page is one statement.
 */
#include "store/albums.h"

#include "store/db.h"
#include "store/images.h"
#include "util/timeutil.h"

#define ALBUM_COLS                                                             \
    "a.id, a.name, a.description, a.source_type, a.source_id, a.is_public, "   \
    "a.created_by, a.created_at, a.updated_at, "                               \
    "(SELECT count(*) FROM album_images ai WHERE ai.album_id = a.id), "        \
    "(SELECT json_group_array(image_id) FROM (SELECT image_id FROM album_images ai " \
    " WHERE ai.album_id = a.id ORDER BY position LIMIT 5))"

/* ?2 = include private, ?3 = source_type or NULL */
#define ALBUM_FILTER " WHERE (?2 OR a.is_public) AND (?3 IS NULL OR a.source_type = ?3)"

static const char SQL_LIST[] =
    "SELECT " ALBUM_COLS " FROM albums a" ALBUM_FILTER " ORDER BY a.id DESC LIMIT ?1 OFFSET ?4";
static const char SQL_COUNT[] = "SELECT count(*) FROM albums a" ALBUM_FILTER;
static const char SQL_GET[] =
    "SELECT " ALBUM_COLS " FROM albums a WHERE a.id = ?1 AND (?2 OR a.is_public)";
static const char SQL_IMAGES[] =
    "SELECT " IMAGE_COLS("i.") " FROM album_images ai JOIN images i ON i.id = ai.image_id "
    "WHERE ai.album_id = ?1 ORDER BY ai.position LIMIT ?2 OFFSET ?3";
static const char SQL_IMAGES_COUNT[] = "SELECT count(*) FROM album_images WHERE album_id = ?1";
static const char SQL_INSERT[] =
    "INSERT INTO albums (name, description, is_public, source_type, source_id, created_by, "
    "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)";
static const char SQL_UPDATE[] =
    "UPDATE albums SET name = ?1, description = ?2, is_public = ?3, updated_at = ?4 WHERE id = ?5";
static const char SQL_DELETE[] = "DELETE FROM albums WHERE id = ?1";
static const char SQL_ALBUM_EXISTS[] = "SELECT 1 FROM albums WHERE id = ?1";
static const char SQL_IMAGE_EXISTS[] = "SELECT 1 FROM images WHERE id = ?1";
static const char SQL_LINK[] =
    "INSERT OR IGNORE INTO album_images (album_id, image_id, position, added_at) "
    "VALUES (?1, ?2, (SELECT coalesce(max(position), -1) + 1 FROM album_images "
    "WHERE album_id = ?1), ?3)";
static const char SQL_TOUCH[] = "UPDATE albums SET updated_at = ?2 WHERE id = ?1";
static const char SQL_UNLINK[] = "DELETE FROM album_images WHERE album_id = ?1 AND image_id = ?2";

static json_t *album_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
    json_object_set_new(o, "name", json_string(db_col_text(st, 1)));
    json_object_set_new(o, "description", json_string(db_col_text(st, 2)));
    json_object_set_new(o, "source_type", json_string(db_col_text(st, 3)));
    json_object_set_new(o, "source_id", sqlite3_column_type(st, 4) == SQLITE_NULL
                                            ? json_null()
                                            : json_integer(sqlite3_column_int64(st, 4)));
    json_object_set_new(o, "is_public", json_boolean(sqlite3_column_int(st, 5)));
    json_object_set_new(o, "image_count", json_integer(sqlite3_column_int64(st, 9)));
    json_t *ids = json_loads(db_col_text(st, 10), 0, NULL);
    json_t *previews = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        json_int_t v = json_integer_value(id);
        json_array_append_new(previews, json_pack("{sIso}", "id", v, "url",
                                                  json_sprintf("/api/images/%lld/file", (long long)v)));
    }
    json_decref(ids);
    json_object_set_new(o, "preview_images", previews);
    json_object_set_new(o, "created_by", sqlite3_column_type(st, 6) == SQLITE_NULL
                                             ? json_null()
                                             : json_string(db_col_text(st, 6)));
    json_object_set_new(o, "created_at", json_string(db_col_text(st, 7)));
    json_object_set_new(o, "updated_at", json_string(db_col_text(st, 8)));
    return o;
}

static sf_status count(const char *sql, long long a, int b, const char *c, long long *out)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int(st, 2, b);
    db_bind_text(st, 3, c);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    return rc == SQLITE_ROW ? SF_OK : db_status(rc);
}

sf_status albums_list(const struct page *pg, const char *source_type,
                      enum read_scope scope, json_t **rows_out, long long *total_out)
{
    int include_private = scope == READ_ALL;
    sf_status s = count(SQL_COUNT, 0, include_private, source_type, total_out);
    if (s != SF_OK)
        return s;
    sqlite3_stmt *st = db_stmt(SQL_LIST);
    sqlite3_bind_int64(st, 1, pg->per_page);
    sqlite3_bind_int(st, 2, include_private);
    db_bind_text(st, 3, source_type);
    sqlite3_bind_int64(st, 4, page_offset(pg));
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(rows, album_json(st));
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

sf_status albums_get(long long id, enum read_scope scope, json_t **out)
{
    int include_private = scope == READ_ALL;
    sqlite3_stmt *st = db_stmt(SQL_GET);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, include_private);
    int rc = sqlite3_step(st);
    sf_status result = SF_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        *out = album_json(st);
        result = SF_OK;
    } else if (rc != SQLITE_DONE) {
        result = db_status(rc);
    }
    db_done(st);
    return result;
}

sf_status albums_images(long long album_id, const struct page *pg,
                        json_t **rows_out, long long *total_out)
{
    sf_status s = count(SQL_IMAGES_COUNT, album_id, 0, NULL, total_out);
    if (s != SF_OK)
        return s;
    sqlite3_stmt *st = db_stmt(SQL_IMAGES);
    sqlite3_bind_int64(st, 1, album_id);
    sqlite3_bind_int64(st, 2, pg->per_page);
    sqlite3_bind_int64(st, 3, page_offset(pg));
    return images_collect(st, rows_out);
}

static const char SQL_EACH_IMAGE[] =
    "SELECT " IMAGE_SET_COLS("ai.position") " FROM album_images ai JOIN images i ON i.id = ai.image_id "
    IMAGE_SET_JOINS "WHERE ai.album_id = ?1 AND " SQL_IMAGE_VISIBLE(2, "i.id")
    " ORDER BY ai.position, ai.image_id";

sf_status albums_each_image(long long album_id, enum read_scope scope,
                            int (*each)(const json_t *row, void *ctx), void *ctx)
{
    return images_each_in_set(SQL_EACH_IMAGE, album_id, scope, each, ctx);
}

static const char SQL_MAX_POSITION[] =
    "SELECT coalesce(max(position), -1) FROM album_images WHERE album_id = ?1";

sf_status albums_max_position(long long album_id, long long *out)
{
    return count(SQL_MAX_POSITION, album_id, 0, NULL, out);
}

static const char *str(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "";
}

sf_status albums_insert(const json_t *row, const char *created_by, long long *id_out)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_INSERT);
    db_bind_text(st, 1, str(row, "name"));
    db_bind_text(st, 2, str(row, "description"));
    sqlite3_bind_int(st, 3, json_is_false(json_object_get(row, "is_public")) ? 0 : 1);
    db_bind_text(st, 4, json_object_get(row, "source_type") ? str(row, "source_type") : "manual");
    json_t *src = json_object_get(row, "source_id");
    if (json_is_integer(src))
        sqlite3_bind_int64(st, 5, json_integer_value(src));
    db_bind_text(st, 6, created_by);
    db_bind_text(st, 7, now);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    *id_out = sqlite3_last_insert_rowid(db_conn());
    return SF_OK;
}

sf_status albums_update(long long id, const json_t *row)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_UPDATE);
    db_bind_text(st, 1, str(row, "name"));
    db_bind_text(st, 2, str(row, "description"));
    sqlite3_bind_int(st, 3, json_is_false(json_object_get(row, "is_public")) ? 0 : 1);
    db_bind_text(st, 4, now);
    sqlite3_bind_int64(st, 5, id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return sqlite3_changes(db_conn()) ? SF_OK : SF_ENOTFOUND;
}

sf_status albums_delete(long long id)
{
    sqlite3_stmt *st = db_stmt(SQL_DELETE);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return sqlite3_changes(db_conn()) ? SF_OK : SF_ENOTFOUND;
}

static int exists(const char *sql, long long id)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    db_done(st);
    return found;
}

sf_status albums_add_images(long long album_id, const json_t *image_ids,
                            long long *added, long long *missing)
{
    *added = 0;
    *missing = 0;
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    if (!exists(SQL_ALBUM_EXISTS, album_id)) {
        db_rollback();
        return SF_ENOTFOUND;
    }
    char now[32];
    now_rfc3339(now);
    size_t i;
    json_t *v;
    json_array_foreach(image_ids, i, v) {
        long long image_id = json_integer_value(v);
        if (!exists(SQL_IMAGE_EXISTS, image_id)) {
            db_rollback();
            *added = 0;
            *missing = image_id;
            return SF_ENOTFOUND;
        }
        sqlite3_stmt *st = db_stmt(SQL_LINK);
        sqlite3_bind_int64(st, 1, album_id);
        sqlite3_bind_int64(st, 2, image_id);
        db_bind_text(st, 3, now);
        int rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE) {
            db_rollback();
            return db_status(rc);
        }
        *added += sqlite3_changes(db_conn());
    }
    sqlite3_stmt *st = db_stmt(SQL_TOUCH);
    sqlite3_bind_int64(st, 1, album_id);
    db_bind_text(st, 2, now);
    sqlite3_step(st);
    db_done(st);
    return db_commit();
}

sf_status albums_remove_image(long long album_id, long long image_id)
{
    sqlite3_stmt *st = db_stmt(SQL_UNLINK);
    sqlite3_bind_int64(st, 1, album_id);
    sqlite3_bind_int64(st, 2, image_id);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return sqlite3_changes(db_conn()) ? SF_OK : SF_ENOTFOUND;
}

static const char SQL_RUN_ALBUM_NEW[] =
    "INSERT INTO albums (name, description, source_type, source_id, is_public, created_by, "
    "created_at, updated_at) VALUES (?2, '', 'batch_generation', ?1, 1, ?3, ?4, ?4)";
static const char SQL_RUN_ALBUM_SET[] = "UPDATE runs SET album_id = ?2 WHERE id = ?1";
static const char SQL_RUN_LINK[] =
    "INSERT OR IGNORE INTO album_images (album_id, image_id, position, added_at) "
    "SELECT ?2, image_id, item_index, ?3 FROM run_items "
    "WHERE run_id = ?1 AND image_id IS NOT NULL ORDER BY item_index";

sf_status albums_file_run(long long run_id, const char *album_name, const char *creator,
                          const char *now, long long *album_id)
{
    int rc;
    if (!*album_id) {
        sqlite3_stmt *st = db_stmt(SQL_RUN_ALBUM_NEW);
        sqlite3_bind_int64(st, 1, run_id);
        db_bind_text(st, 2, album_name);
        db_bind_text(st, 3, creator && *creator ? creator : NULL);
        db_bind_text(st, 4, now);
        rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            return db_status(rc);
        *album_id = sqlite3_last_insert_rowid(db_conn());
        st = db_stmt(SQL_RUN_ALBUM_SET);
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_int64(st, 2, *album_id);
        rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            return db_status(rc);
    }
    sqlite3_stmt *st = db_stmt(SQL_RUN_LINK);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, *album_id);
    db_bind_text(st, 3, now);
    rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}
