/*
 * settings.c: operator flags as meta rows (settings.h). A flag is on while
 * its row exists; the value is when it was set, for whoever reads the
 * database by hand.
 */
#include "store/settings.h"

#include "store/db.h"

static const char SQL_GET[] = "SELECT 1 FROM meta WHERE key = ?1";
static const char SQL_SET[] =
    "INSERT INTO meta (key, value) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) "
    "ON CONFLICT (key) DO NOTHING";
static const char SQL_CLEAR[] = "DELETE FROM meta WHERE key = ?1";

sf_status settings_flag(const char *key, int *on)
{
    sqlite3_stmt *st = db_stmt(SQL_GET);
    db_bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    db_done(st);
    *on = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SF_OK : db_status(rc);
}

sf_status settings_set_flag(const char *key, int on)
{
    sqlite3_stmt *st = db_stmt(on ? SQL_SET : SQL_CLEAR);
    db_bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    db_done(st);
    return db_status(rc);
}
