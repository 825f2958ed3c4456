/*
 * scrapes.c: the scrape_jobs and scrape_items tables (scrapes.h).
 *
 * Every change of a download's state, the job's counters and, when it was
 * the last download, the job's end and its album are one BEGIN IMMEDIATE
 * transaction, so a kill -9 at any moment leaves a consistent database. A
 * settling statement names the lease owner: an outcome that arrives after
 * its job was canceled (or its lease rescued) changes nothing. A job's album
 * rows are written here, in the same transaction, the way albums_file_run
 * writes a run's.
 */
#include "store/scrapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/states.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* ---- reading ------------------------------------------------------------ */

#define JOB_COLS                                                                          \
    "id, url, album_name, max_images, status, images_found, images_scraped, "            \
    "images_skipped, album_id, error_message, created_by, created_at, started_at, "      \
    "completed_at, page_url, page_fetched"

static const char SQL_SKIPPED[] =
    "SELECT reason, count(*) FROM scrape_items WHERE job_id = ?1 AND status = 'skipped' "
    "GROUP BY reason ORDER BY reason";

static json_t *text_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null()
                                                       : json_string(db_col_text(st, col));
}

/* The reasons of a job's skipped downloads, counted: {"http_404": 1, ...}. */
static json_t *skipped_reasons(long long id)
{
    json_t *o = json_object();
    sqlite3_stmt *st = db_stmt(SQL_SKIPPED);
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *r = db_col_text(st, 0);
        json_object_set_new(o, r && *r ? r : "other", json_integer(sqlite3_column_int64(st, 1)));
    }
    db_done(st);
    return o;
}

static json_t *job_json(sqlite3_stmt *st)
{
    long long id = sqlite3_column_int64(st, 0);
    long long found = sqlite3_column_int64(st, 5), scraped = sqlite3_column_int64(st, 6),
              skipped = sqlite3_column_int64(st, 7);
    enum scrape_state state = SCRAPE_PENDING;
    scrape_state_parse(db_col_text(st, 4), &state);
    double progress = found > 0 ? (double)(scraped + skipped) / (double)found : 0.0;
    if (state == SCRAPE_COMPLETED || state == SCRAPE_FAILED)
        progress = 1.0;
    if (progress > 1.0)
        progress = 1.0;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "url", json_string(db_col_text(st, 1)));
    json_object_set_new(o, "album_name", json_string(db_col_text(st, 2)));
    json_object_set_new(o, "max_images", json_integer(sqlite3_column_int(st, 3)));
    json_object_set_new(o, "status", json_string(scrape_state_name(state)));
    json_object_set_new(o, "progress", json_real(progress));
    json_object_set_new(o, "page_url", text_or_null(st, 14));
    json_object_set_new(o, "images_found", json_integer(found));
    json_object_set_new(o, "images_scraped", json_integer(scraped));
    json_object_set_new(o, "images_skipped", json_integer(skipped));
    json_object_set_new(o, "skipped", skipped_reasons(id));
    json_object_set_new(o, "album_id", sqlite3_column_type(st, 8) == SQLITE_NULL
                                           ? json_null()
                                           : json_integer(sqlite3_column_int64(st, 8)));
    json_object_set_new(o, "error", text_or_null(st, 9));
    json_object_set_new(o, "created_by", text_or_null(st, 10));
    json_object_set_new(o, "created_at", json_string(db_col_text(st, 11)));
    json_object_set_new(o, "started_at", text_or_null(st, 12));
    json_object_set_new(o, "completed_at", text_or_null(st, 13));
    return o;
}

static const char SQL_CREATE[] =
    "INSERT INTO scrape_jobs (url, album_name, max_images, created_by, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_GET[] = "SELECT " JOB_COLS " FROM scrape_jobs WHERE id = ?1";
static const char SQL_COUNT[] = "SELECT count(*) FROM scrape_jobs WHERE ?1 IS NULL OR status = ?1";
static const char SQL_LIST[] = "SELECT " JOB_COLS " FROM scrape_jobs WHERE ?3 IS NULL OR status = ?3 "
                               "ORDER BY id DESC LIMIT ?1 OFFSET ?2";
static const char SQL_ITEMS_COUNT[] = "SELECT count(*) FROM scrape_items WHERE job_id = ?1";
static const char SQL_ITEMS[] =
    "SELECT position, url, status, reason, error, image_id FROM scrape_items WHERE job_id = ?1 "
    "ORDER BY position LIMIT ?2 OFFSET ?3";

sf_status scrapes_create(const struct scrape_spec *spec, long long *id)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_CREATE);
    db_bind_text(st, 1, spec->url);
    db_bind_text(st, 2, spec->album_name);
    sqlite3_bind_int(st, 3, spec->max_images);
    db_bind_text(st, 4, spec->creator);
    db_bind_text(st, 5, now);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    *id = sqlite3_last_insert_rowid(db_conn());
    return SF_OK;
}

sf_status scrapes_get(long long id, json_t **out)
{
    sqlite3_stmt *st = db_stmt(SQL_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    json_t *job = rc == SQLITE_ROW ? job_json(st) : NULL;
    db_done(st);
    if (job) {
        *out = job;
        return SF_OK;
    }
    return rc == SQLITE_DONE ? SF_ENOTFOUND : db_status(rc);
}

/* The one number sql answers, with ?1 bound to id (count_id) or to text
 * (count_text, NULL allowed). */
static sf_status count_step(sqlite3_stmt *st, long long *out)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    return rc == SQLITE_ROW ? SF_OK : db_status(rc);
}

static sf_status count_id(const char *sql, long long id, long long *out)
{
    sqlite3_stmt *st = db_stmt(sql);
    sqlite3_bind_int64(st, 1, id);
    return count_step(st, out);
}

static sf_status count_text(const char *sql, const char *text, long long *out)
{
    sqlite3_stmt *st = db_stmt(sql);
    db_bind_text(st, 1, text);
    return count_step(st, out);
}

sf_status scrapes_list(const struct page *pg, const char *status, json_t **rows_out,
                       long long *total_out)
{
    sf_status s = count_text(SQL_COUNT, status, total_out);
    if (s != SF_OK)
        return s;
    /* the rows first, then each one's skipped reasons: never two uses of
     * one statement at once, and the reasons' statement is another text */
    sqlite3_stmt *st = db_stmt(SQL_LIST);
    sqlite3_bind_int64(st, 1, pg->per_page);
    sqlite3_bind_int64(st, 2, page_offset(pg));
    db_bind_text(st, 3, status);
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(rows, job_json(st));
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

sf_status scrapes_items(long long job_id, const struct page *pg, json_t **rows_out,
                        long long *total_out)
{
    json_t *job;
    sf_status s = scrapes_get(job_id, &job);
    if (s != SF_OK)
        return s;
    json_decref(job);
    if ((s = count_id(SQL_ITEMS_COUNT, job_id, total_out)) != SF_OK)
        return s;
    sqlite3_stmt *st = db_stmt(SQL_ITEMS);
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, pg->per_page);
    sqlite3_bind_int64(st, 3, page_offset(pg));
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "position", json_integer(sqlite3_column_int(st, 0)));
        json_object_set_new(o, "url", json_string(db_col_text(st, 1)));
        json_object_set_new(o, "status", json_string(db_col_text(st, 2)));
        json_object_set_new(o, "reason", text_or_null(st, 3));
        json_object_set_new(o, "error", text_or_null(st, 4));
        json_object_set_new(o, "image_id", sqlite3_column_type(st, 5) == SQLITE_NULL
                                               ? json_null()
                                               : json_integer(sqlite3_column_int64(st, 5)));
        json_array_append_new(rows, o);
    }
    db_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return db_status(rc);
    }
    *rows_out = rows;
    return SF_OK;
}

/* ---- the end of a job --------------------------------------------------- */

static const char SQL_JOB_ROW[] =
    "SELECT status, images_scraped, images_skipped, album_name, created_by, album_id "
    "FROM scrape_jobs WHERE id = ?1";
static const char SQL_UNSETTLED[] =
    "SELECT count(*) FROM scrape_items WHERE job_id = ?1 AND status IN ('queued', 'running')";
static const char SQL_ALBUM_NEW[] =
    "INSERT INTO albums (name, description, source_type, source_id, is_public, created_by, "
    "created_at, updated_at) VALUES (?2, '', 'scrape', ?1, 1, ?3, ?4, ?4)";
static const char SQL_ALBUM_LINK[] =
    "INSERT OR IGNORE INTO album_images (album_id, image_id, position, added_at) "
    "SELECT ?2, image_id, position, ?3 FROM scrape_items "
    "WHERE job_id = ?1 AND status = 'done' AND image_id IS NOT NULL ORDER BY position";
static const char SQL_JOB_END[] =
    "UPDATE scrape_jobs SET status = ?2, album_id = ?3, error_message = ?4, completed_at = ?5, "
    "lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1";

struct job_row {
    enum scrape_state state;
    long long scraped, skipped, album_id;
    char album_name[1024];
    char creator[256];
    int has_creator;
};

static sf_status read_job(long long id, struct job_row *j)
{
    sqlite3_stmt *st = db_stmt(SQL_JOB_ROW);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        j->state = SCRAPE_PENDING;
        scrape_state_parse(db_col_text(st, 0), &j->state);
        j->scraped = sqlite3_column_int64(st, 1);
        j->skipped = sqlite3_column_int64(st, 2);
        snprintf(j->album_name, sizeof j->album_name, "%s", db_col_text(st, 3));
        j->has_creator = sqlite3_column_type(st, 4) != SQLITE_NULL;
        snprintf(j->creator, sizeof j->creator, "%s", j->has_creator ? db_col_text(st, 4) : "");
        j->album_id = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 5);
    }
    db_done(st);
    if (rc == SQLITE_ROW)
        return SF_OK;
    return rc == SQLITE_DONE ? SF_ENOTFOUND : db_status(rc);
}

/* The job's album (public, like a run's: docs/scrape.md) with its images
 * in page order. */
static sf_status file_album(long long id, struct job_row *j, const char *now)
{
    int rc;
    if (!j->album_id) {
        sqlite3_stmt *st = db_stmt(SQL_ALBUM_NEW);
        sqlite3_bind_int64(st, 1, id);
        db_bind_text(st, 2, j->album_name);
        db_bind_text(st, 3, j->has_creator ? j->creator : NULL);
        db_bind_text(st, 4, now);
        rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            return db_status(rc);
        j->album_id = sqlite3_last_insert_rowid(db_conn());
    }
    sqlite3_stmt *st = db_stmt(SQL_ALBUM_LINK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, j->album_id);
    db_bind_text(st, 3, now);
    rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

static sf_status end_job(long long id, enum scrape_state state, long long album_id,
                         const char *error, const char *now)
{
    sqlite3_stmt *st = db_stmt(SQL_JOB_END);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, scrape_state_name(state));
    if (album_id)
        sqlite3_bind_int64(st, 3, album_id);
    else
        sqlite3_bind_null(st, 3);
    db_bind_text(st, 4, error);
    db_bind_text(st, 5, now);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

/* In the open transaction: when the running job has no unsettled download
 * left, it ends completed with its album, or failed when no image came. */
static sf_status maybe_finish(long long id, const char *now)
{
    long long left;
    sf_status s = count_id(SQL_UNSETTLED, id, &left);
    if (s != SF_OK || left > 0)
        return s;
    struct job_row j;
    if ((s = read_job(id, &j)) != SF_OK || j.state != SCRAPE_RUNNING)
        return s;
    if (j.scraped > 0) {
        if ((s = file_album(id, &j, now)) != SF_OK)
            return s;
        return end_job(id, SCRAPE_COMPLETED, j.album_id, NULL, now);
    }
    json_t *counted = skipped_reasons(id);
    char *reasons = json_dumps(counted, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(counted);
    char *err = xasprintf("no image could be downloaded: %lld skipped %s", j.skipped,
                          reasons ? reasons : "");
    free(reasons);
    s = end_job(id, SCRAPE_FAILED, 0, err, now);
    free(err);
    return s;
}

static sf_status commit_or_rollback(sf_status s)
{
    if (s != SF_OK) {
        db_rollback();
        return s;
    }
    return db_commit();
}

/* ---- cancel ------------------------------------------------------------- */

static const char SQL_CANCEL_ITEMS[] =
    "UPDATE scrape_items SET status = 'canceled', lease_owner = NULL, lease_expires_ms = NULL, "
    "finished_at = ?2 WHERE job_id = ?1 AND status IN ('queued', 'running')";

sf_status scrapes_cancel(long long id)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    struct job_row j;
    if ((s = read_job(id, &j)) != SF_OK) {
        db_rollback();
        return s;
    }
    if (scrape_state_is_final(j.state)) {
        db_rollback();
        return SF_ECONFLICT;
    }
    sqlite3_stmt *st = db_stmt(SQL_CANCEL_ITEMS);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, now);
    int rc = sqlite3_step(st);
    db_done(st);
    s = rc == SQLITE_DONE ? SF_OK : db_status(rc);
    /* the images already in are not lost to those without a token */
    if (s == SF_OK && j.scraped > 0)
        s = file_album(id, &j, now);
    if (s == SF_OK)
        s = end_job(id, SCRAPE_CANCELED, j.album_id, NULL, now);
    return commit_or_rollback(s);
}

/* ---- pages -------------------------------------------------------------- */

static const char SQL_CLAIM_PAGE[] =
    "UPDATE scrape_jobs SET status = 'running', started_at = coalesce(started_at, ?3), "
    "lease_owner = ?1, lease_expires_ms = ?2, attempts = attempts + 1 "
    "WHERE id = (SELECT id FROM scrape_jobs WHERE page_fetched = 0 AND (status = 'pending' "
    "OR (status = 'running' AND coalesce(lease_expires_ms, 0) < ?4)) ORDER BY id LIMIT 1) "
    "RETURNING id, url, max_images";
static const char SQL_PAGE_HELD[] =
    "SELECT 1 FROM scrape_jobs WHERE id = ?1 AND status = 'running' AND page_fetched = 0 "
    "AND lease_owner = ?2";
static const char SQL_PAGE_SET[] =
    "UPDATE scrape_jobs SET page_fetched = 1, page_url = ?2, images_found = ?3, "
    "lease_owner = NULL, lease_expires_ms = NULL WHERE id = ?1";
static const char SQL_ITEM_ADD[] =
    "INSERT INTO scrape_items (job_id, position, url) VALUES (?1, ?2, ?3)";

void scrape_page_claim_free(struct scrape_page_claim *c)
{
    free(c->url);
    memset(c, 0, sizeof *c);
}

void scrape_item_claim_free(struct scrape_item_claim *c)
{
    free(c->url);
    memset(c, 0, sizeof *c);
}

int scrapes_claim_page(const char *owner, int64_t lease_ms, struct scrape_page_claim *out)
{
    memset(out, 0, sizeof *out);
    char now[32];
    now_rfc3339(now);
    int64_t t = now_unix_ms();
    sqlite3_stmt *st = db_stmt(SQL_CLAIM_PAGE);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, t + lease_ms);
    db_bind_text(st, 3, now);
    sqlite3_bind_int64(st, 4, t);
    int rc = sqlite3_step(st);
    int got = 0;
    if (rc == SQLITE_ROW) {
        out->job_id = sqlite3_column_int64(st, 0);
        out->url = xstrdup(db_col_text(st, 1));
        out->max_images = sqlite3_column_int(st, 2);
        got = 1;
        rc = sqlite3_step(st); /* RETURNING rows are lazy: finish the statement */
    }
    db_done(st);
    if (rc != SQLITE_DONE) {
        scrape_page_claim_free(out);
        return -1;
    }
    return got;
}

/* 1 when owner still holds the job's page lease. */
static int page_held(long long id, const char *owner)
{
    sqlite3_stmt *st = db_stmt(SQL_PAGE_HELD);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, owner);
    int held = sqlite3_step(st) == SQLITE_ROW;
    db_done(st);
    return held;
}

static sf_status settle(long long item_id, long long job_id, const char *owner,
                        enum scrape_item_state state, const char *reason, const char *error,
                        long long image_id, const char *now, int *changed);

sf_status scrapes_page_done(long long job_id, const char *owner, const char *final_url,
                            const char *const *urls, size_t n, const struct scraped_image *img)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    if (!page_held(job_id, owner)) {
        db_rollback();
        return SF_OK; /* canceled meanwhile, or rescued by another owner */
    }
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_PAGE_SET);
    sqlite3_bind_int64(st, 1, job_id);
    db_bind_text(st, 2, final_url);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    int rc = sqlite3_step(st);
    db_done(st);
    s = rc == SQLITE_DONE ? SF_OK : db_status(rc);
    long long last_item = 0;
    for (size_t i = 0; i < n && s == SF_OK; i++) {
        st = db_stmt(SQL_ITEM_ADD);
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        db_bind_text(st, 3, urls[i]);
        rc = sqlite3_step(st);
        db_done(st);
        s = rc == SQLITE_DONE ? SF_OK : db_status(rc);
        last_item = sqlite3_last_insert_rowid(db_conn());
    }
    if (s == SF_OK && n == 0)
        s = end_job(job_id, SCRAPE_FAILED, 0, "no images found on the page", now);
    if (s == SF_OK && img && n == 1) {
        /* the page URL was an image: its one download is this answer */
        long long image_id;
        int existing, changed;
        s = images_insert_scraped(img, now, &image_id, &existing);
        static const char SQL_TAKE[] =
            "UPDATE scrape_items SET status = 'running', lease_owner = ?2, attempts = 1 WHERE id = ?1";
        st = db_stmt(SQL_TAKE);
        sqlite3_bind_int64(st, 1, last_item);
        db_bind_text(st, 2, owner);
        rc = sqlite3_step(st);
        db_done(st);
        if (s == SF_OK && rc != SQLITE_DONE)
            s = db_status(rc);
        if (s == SF_OK)
            s = settle(last_item, job_id, owner, SITEM_DONE, NULL, NULL, image_id, now, &changed);
    }
    return commit_or_rollback(s);
}

static const char SQL_PAGE_RELEASE[] =
    "UPDATE scrape_jobs SET lease_owner = NULL, lease_expires_ms = 0, "
    "attempts = max(attempts - 1, 0) WHERE id = ?1 AND lease_owner = ?2 AND page_fetched = 0 "
    "AND status = 'running'";

sf_status scrapes_page_release(long long job_id, const char *owner)
{
    sqlite3_stmt *st = db_stmt(SQL_PAGE_RELEASE);
    sqlite3_bind_int64(st, 1, job_id);
    db_bind_text(st, 2, owner);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

sf_status scrapes_page_failed(long long job_id, const char *owner, const char *error)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    if (!page_held(job_id, owner)) {
        db_rollback();
        return SF_OK;
    }
    char now[32];
    now_rfc3339(now);
    return commit_or_rollback(end_job(job_id, SCRAPE_FAILED, 0, error, now));
}

/* ---- downloads ---------------------------------------------------------- */

/* The queued download first, through the (status, job_id, position) index
 * (settled rows pile up over time and are never read here), else one whose
 * lease ran out (its owner hung). */
static const char SQL_CLAIM_ITEM[] =
    "UPDATE scrape_items SET status = 'running', lease_owner = ?1, lease_expires_ms = ?2, "
    "attempts = attempts + 1 "
    "WHERE id = coalesce((SELECT i.id FROM scrape_items i JOIN scrape_jobs j ON j.id = i.job_id "
    "WHERE i.status = 'queued' AND j.status = 'running' ORDER BY i.job_id, i.position LIMIT 1), "
    "(SELECT i.id FROM scrape_items i JOIN scrape_jobs j ON j.id = i.job_id "
    "WHERE i.status = 'running' AND coalesce(i.lease_expires_ms, 0) < ?3 AND j.status = 'running' "
    "ORDER BY i.job_id, i.position LIMIT 1)) "
    "RETURNING id, job_id, position, url";
static const char SQL_SETTLE[] =
    "UPDATE scrape_items SET status = ?3, reason = ?4, error = ?5, image_id = ?6, "
    "finished_at = ?7, lease_owner = NULL, lease_expires_ms = NULL "
    "WHERE id = ?1 AND status = 'running' AND lease_owner = ?2";
static const char SQL_COUNTERS[] =
    "UPDATE scrape_jobs SET images_scraped = images_scraped + ?2, "
    "images_skipped = images_skipped + ?3 WHERE id = ?1";
static const char SQL_DUPLICATE[] =
    "SELECT id, position FROM scrape_items WHERE job_id = ?1 AND image_id = ?2 AND status = 'done' "
    "LIMIT 1";
static const char SQL_DEMOTE[] =
    "UPDATE scrape_items SET status = 'skipped', reason = 'duplicate', error = ?2, image_id = NULL "
    "WHERE id = ?1";
static const char SQL_DEMOTED[] =
    "UPDATE scrape_jobs SET images_scraped = images_scraped - 1, "
    "images_skipped = images_skipped + 1 WHERE id = ?1";
static const char SQL_RELEASE[] =
    "UPDATE scrape_items SET status = 'queued', lease_owner = NULL, lease_expires_ms = NULL, "
    "attempts = max(attempts - 1, 0) WHERE id = ?1 AND status = 'running' AND lease_owner = ?2";

int scrapes_claim_item(const char *owner, int64_t lease_ms, struct scrape_item_claim *out)
{
    memset(out, 0, sizeof *out);
    int64_t t = now_unix_ms();
    sqlite3_stmt *st = db_stmt(SQL_CLAIM_ITEM);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, t + lease_ms);
    sqlite3_bind_int64(st, 3, t);
    int rc = sqlite3_step(st);
    int got = 0;
    if (rc == SQLITE_ROW) {
        out->item_id = sqlite3_column_int64(st, 0);
        out->job_id = sqlite3_column_int64(st, 1);
        out->position = sqlite3_column_int(st, 2);
        out->url = xstrdup(db_col_text(st, 3));
        got = 1;
        rc = sqlite3_step(st);
    }
    db_done(st);
    if (rc != SQLITE_DONE) {
        scrape_item_claim_free(out);
        return -1;
    }
    return got;
}

/* In the open transaction: the item's outcome (when owner still holds it:
 * *changed), the job's counters, and the job's end if that was the last. */
static sf_status settle(long long item_id, long long job_id, const char *owner,
                        enum scrape_item_state state, const char *reason, const char *error,
                        long long image_id, const char *now, int *changed)
{
    sqlite3_stmt *st = db_stmt(SQL_SETTLE);
    sqlite3_bind_int64(st, 1, item_id);
    db_bind_text(st, 2, owner);
    db_bind_text(st, 3, scrape_item_state_name(state));
    db_bind_text(st, 4, reason);
    db_bind_text(st, 5, error);
    if (image_id)
        sqlite3_bind_int64(st, 6, image_id);
    else
        sqlite3_bind_null(st, 6);
    db_bind_text(st, 7, now);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    *changed = sqlite3_changes(db_conn()) > 0;
    if (!*changed)
        return SF_OK;
    st = db_stmt(SQL_COUNTERS);
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, state == SITEM_DONE);
    sqlite3_bind_int(st, 3, state == SITEM_SKIPPED);
    rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return maybe_finish(job_id, now);
}

sf_status scrapes_item_done(const struct scrape_item_claim *c, const char *owner,
                            const struct scraped_image *img, long long *image_id)
{
    *image_id = 0;
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    long long id;
    int existing, changed = 0;
    s = images_insert_scraped(img, now, &id, &existing);
    int dup_pos = -1;
    long long dup_item = 0;
    if (s == SF_OK && existing) {
        sqlite3_stmt *st = db_stmt(SQL_DUPLICATE);
        sqlite3_bind_int64(st, 1, c->job_id);
        sqlite3_bind_int64(st, 2, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            dup_item = sqlite3_column_int64(st, 0);
            dup_pos = sqlite3_column_int(st, 1);
        }
        db_done(st);
    }
    if (s == SF_OK && dup_pos > c->position) {
        /* downloads finish in any order, but the first one in page order
         * keeps the image: the later one becomes the duplicate */
        char *err = xasprintf("the same bytes as image %lld (position %d)", id, c->position);
        sqlite3_stmt *st = db_stmt(SQL_DEMOTE);
        sqlite3_bind_int64(st, 1, dup_item);
        db_bind_text(st, 2, err);
        int rc = sqlite3_step(st);
        db_done(st);
        free(err);
        if (rc == SQLITE_DONE) {
            st = db_stmt(SQL_DEMOTED);
            sqlite3_bind_int64(st, 1, c->job_id);
            rc = sqlite3_step(st);
            db_done(st);
        }
        if (rc != SQLITE_DONE)
            s = db_status(rc);
        dup_pos = -1;
    }
    if (s == SF_OK && dup_pos >= 0) {
        char *err = xasprintf("the same bytes as image %lld (position %d)", id, dup_pos);
        s = settle(c->item_id, c->job_id, owner, SITEM_SKIPPED, "duplicate", err, 0, now, &changed);
        free(err);
    } else if (s == SF_OK) {
        s = settle(c->item_id, c->job_id, owner, SITEM_DONE, NULL, NULL, id, now, &changed);
        if (s == SF_OK && changed)
            *image_id = id;
    }
    if (s == SF_OK && !changed) { /* no longer ours (canceled): change nothing */
        db_rollback();
        *image_id = 0;
        return SF_OK;
    }
    return commit_or_rollback(s);
}

sf_status scrapes_item_skipped(const struct scrape_item_claim *c, const char *owner,
                               const char *reason, const char *error)
{
    sf_status s = db_begin();
    if (s != SF_OK)
        return s;
    char now[32];
    now_rfc3339(now);
    int changed;
    s = settle(c->item_id, c->job_id, owner, SITEM_SKIPPED, reason, error, 0, now, &changed);
    return commit_or_rollback(s);
}

sf_status scrapes_item_release(const struct scrape_item_claim *c, const char *owner)
{
    sqlite3_stmt *st = db_stmt(SQL_RELEASE);
    sqlite3_bind_int64(st, 1, c->item_id);
    db_bind_text(st, 2, owner);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

/* ---- rescue ------------------------------------------------------------- */

static const char SQL_WORN_OUT[] =
    "SELECT id, job_id, lease_owner FROM scrape_items WHERE status = 'running' "
    "AND (lease_owner IS NOT ?1 OR coalesce(lease_expires_ms, 0) < ?2) AND attempts >= ?3";
static const char SQL_RESCUE_ITEMS[] =
    "UPDATE scrape_items SET status = 'queued', lease_owner = NULL, lease_expires_ms = NULL "
    "WHERE status = 'running' AND (lease_owner IS NOT ?1 OR coalesce(lease_expires_ms, 0) < ?2)";
static const char SQL_WORN_PAGES[] =
    "UPDATE scrape_jobs SET status = 'failed', completed_at = ?4, lease_owner = NULL, "
    "lease_expires_ms = NULL, error_message = 'scrape: the page was interrupted too many times "
    "(the daemon stopped while reading it)' WHERE status = 'running' AND page_fetched = 0 "
    "AND (lease_owner IS NOT ?1 OR coalesce(lease_expires_ms, 0) < ?2) AND attempts >= ?3";
static const char SQL_RESCUE_PAGES[] =
    "UPDATE scrape_jobs SET lease_owner = NULL, lease_expires_ms = 0 WHERE status = 'running' "
    "AND page_fetched = 0 AND (lease_owner IS NOT ?1 OR coalesce(lease_expires_ms, 0) < ?2)";

int scrapes_rescue(const char *owner, int max_attempts)
{
    if (db_begin() != SF_OK)
        return -1;
    char now[32];
    now_rfc3339(now);
    int64_t t = now_unix_ms();
    /* downloads that were interrupted max_attempts times (a page whose
     * image kills the process?) are given up, one at a time */
    sqlite3_stmt *st = db_stmt(SQL_WORN_OUT);
    db_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, t);
    sqlite3_bind_int(st, 3, max_attempts);
    long long (*worn)[2] = NULL;
    char **owners = NULL;
    size_t nworn = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        worn = xrealloc(worn, (nworn + 1) * sizeof *worn);
        owners = xrealloc(owners, (nworn + 1) * sizeof *owners);
        worn[nworn][0] = sqlite3_column_int64(st, 0);
        worn[nworn][1] = sqlite3_column_int64(st, 1);
        owners[nworn] = xstrdup(db_col_text(st, 2));
        nworn++;
    }
    db_done(st);
    sf_status s = SF_OK;
    int changed;
    for (size_t i = 0; i < nworn; i++) {
        if (s == SF_OK)
            s = settle(worn[i][0], worn[i][1], owners[i], SITEM_SKIPPED, "interrupted",
                       "the download was interrupted too many times (the daemon stopped)", 0,
                       now, &changed);
        free(owners[i]);
    }
    free(worn);
    free(owners);
    int n = 0;
    const char *sqls[] = {SQL_RESCUE_ITEMS, SQL_WORN_PAGES, SQL_RESCUE_PAGES};
    for (int k = 0; k < 3 && s == SF_OK; k++) {
        st = db_stmt(sqls[k]);
        db_bind_text(st, 1, owner);
        sqlite3_bind_int64(st, 2, t);
        if (sqls[k] == SQL_WORN_PAGES) {
            sqlite3_bind_int(st, 3, max_attempts);
            db_bind_text(st, 4, now);
        }
        int rc = sqlite3_step(st);
        db_done(st);
        if (rc != SQLITE_DONE)
            s = db_status(rc);
        else
            n += sqlite3_changes(db_conn());
    }
    if (commit_or_rollback(s) != SF_OK)
        return -1;
    return n + (int)nworn;
}

static const char SQL_ACTIVE[] =
    "SELECT 1 FROM scrape_jobs WHERE id = ?1 AND status IN ('pending', 'running')";

int scrapes_active(long long job_id)
{
    sqlite3_stmt *st = db_stmt(SQL_ACTIVE);
    sqlite3_bind_int64(st, 1, job_id);
    int yes = sqlite3_step(st) == SQLITE_ROW;
    db_done(st);
    return yes;
}

static const char SQL_JOB_COUNTS[] = "SELECT status, count(*) FROM scrape_jobs GROUP BY status";
static const char SQL_ITEM_COUNTS[] = "SELECT status, count(*) FROM scrape_items GROUP BY status";

sf_status scrapes_counts(long long jobs[SCRAPE_NSTATES], long long items[SITEM_NSTATES])
{
    memset(jobs, 0, SCRAPE_NSTATES * sizeof jobs[0]);
    memset(items, 0, SITEM_NSTATES * sizeof items[0]);
    sqlite3_stmt *st = db_stmt(SQL_JOB_COUNTS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        enum scrape_state s;
        if (scrape_state_parse(db_col_text(st, 0), &s) == 0)
            jobs[s] = sqlite3_column_int64(st, 1);
    }
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    st = db_stmt(SQL_ITEM_COUNTS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = db_col_text(st, 0);
        for (int i = 0; i < SITEM_NSTATES; i++)
            if (name && strcmp(name, scrape_item_state_name((enum scrape_item_state)i)) == 0)
                items[i] = sqlite3_column_int64(st, 1);
    }
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}
