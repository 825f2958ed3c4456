/*
 * tokens.c: creating, verifying and revoking API tokens.
 *
 * The lookup is by the SHA-256 of the presented token (an index hit, so a
 * wrong token costs the same as a right one), then the stored hash is
 * compared again in constant time, as the contract asks.
 */
#include "store/tokens.h"

#include <string.h>

#include "store/db.h"
#include "util/hash.h"
#include "util/timeutil.h"

static const char SQL_INSERT[] =
    "INSERT INTO tokens (name, hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_LOOKUP[] =
    "SELECT id, name, is_admin, hash FROM tokens WHERE hash = ?1 AND revoked_at IS NULL";
static const char SQL_REVOKE[] =
    "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
static const char SQL_LIST[] =
    "SELECT id, is_admin, name, created_at, coalesce(revoked_at, '-') FROM tokens ORDER BY id";
static const char SQL_COUNT[] = "SELECT count(*) FROM tokens";

sf_status tokens_create(const char *name, int is_admin,
                        char secret_out[TOKEN_SECRET_LEN + 1], long long *id_out)
{
    unsigned char raw[32], hash[32];
    if (random_bytes(raw, sizeof(raw)) < 0)
        return SF_EINTERNAL;
    memcpy(secret_out, "sf_", 3);
    hex_encode(raw, sizeof(raw), secret_out + 3);
    sha256_raw(secret_out, TOKEN_SECRET_LEN, hash);

    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_INSERT);
    db_bind_text(st, 1, name);
    sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, is_admin ? 1 : 0);
    db_bind_text(st, 4, now);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    if (id_out)
        *id_out = sqlite3_last_insert_rowid(db_conn());
    return SF_OK;
}

sf_status tokens_verify(const char *presented, struct sf_token *out)
{
    unsigned char hash[32];
    sha256_raw(presented, strlen(presented), hash);
    sqlite3_stmt *st = db_stmt(SQL_LOOKUP);
    sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sf_status result = SF_EUNAUTH;
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 3) == 32 &&
        ct_equal(sqlite3_column_blob(st, 3), hash, 32)) {
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->name, sizeof(out->name), "%s", db_col_text(st, 1));
        out->is_admin = sqlite3_column_int(st, 2);
        result = SF_OK;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        result = db_status(rc);
    }
    db_done(st);
    return result;
}

sf_status tokens_revoke(long long id)
{
    char now[32];
    now_rfc3339(now);
    sqlite3_stmt *st = db_stmt(SQL_REVOKE);
    sqlite3_bind_int64(st, 1, id);
    db_bind_text(st, 2, now);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE)
        return db_status(rc);
    return sqlite3_changes(db_conn()) ? SF_OK : SF_ENOTFOUND;
}

sf_status tokens_each(void (*fn)(void *ctx, const struct sf_token_row *t), void *ctx)
{
    sqlite3_stmt *st = db_stmt(SQL_LIST);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct sf_token_row t = {
            .id = sqlite3_column_int64(st, 0),
            .is_admin = sqlite3_column_int(st, 1),
            .name = db_col_text(st, 2),
            .created_at = db_col_text(st, 3),
            .revoked_at = db_col_text(st, 4),
        };
        fn(ctx, &t);
    }
    db_done(st);
    return rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

long long tokens_count(void)
{
    sqlite3_stmt *st = db_stmt(SQL_COUNT);
    long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_done(st);
    return n;
}
