/*
 * db.h: the SQLite connection layer.
 *
 * Each thread (HTTP pool thread, worker) gets its own connection, opened on
 * first use and closed when the thread exits; SQLite connections are not
 * shared. Every connection runs in WAL mode with foreign keys on and a busy
 * timeout. Statements are prepared once per connection and cached by the
 * address of their SQL text, so call sites pass a static string:
 *
 *     static const char SQL[] = "SELECT ... WHERE id = ?1";
 *     sqlite3_stmt *st = db_stmt(SQL);
 *     sqlite3_bind_int64(st, 1, id);
 *     ... sqlite3_step(st) ...
 *     db_done(st);
 *
 * Never nest two uses of the same SQL text on one thread.
 */
#ifndef SF_DB_H
#define SF_DB_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stddef.h>

#include "util/status.h"

/*
 * Sets the database path for every later connection, opens it, applies the
 * pending migrations in one transaction. 0, or -1 with a sentence in err.
 */
int db_open(const char *path, char *err, size_t errlen);

/* This thread's connection (borrowed). NULL only when opening failed. */
sqlite3 *db_conn(void);

/*
 * A ready statement for sql on this thread's connection (borrowed; the cache
 * owns it). NULL when it cannot be prepared (the schema is damaged): every
 * sqlite3_bind/step/column call accepts NULL and fails with SQLITE_MISUSE.
 */
sqlite3_stmt *db_stmt(const char *sql);

/* Resets st and clears its bindings, ready for the next use. */
void db_done(sqlite3_stmt *st);

/* Maps a SQLite result code to a status (BUSY → unavailable, ...). */
sf_status db_status(int rc);

/* A number that grows after every write this process commits, on any
 * thread; read it before a snapshot, and an answer built from that snapshot
 * is current for as long as the number stays the same. Writes by another
 * process (the CLI's token commands) do not move it. */
uint64_t db_generation(void);

/* A thread that runs WAL checkpoints, so that no worker or HTTP thread
 * pays for one inside its commit (db.c). Start after db_open; stop after
 * every other thread that writes has stopped. */
int db_checkpointer_start(void);
void db_checkpointer_stop(void);
/* WAL checkpoints so far: on the checkpointer thread, and by committers
 * (no checkpointer, or the WAL past its hard bound). */
void db_checkpoint_counts(unsigned long *async, unsigned long *inline_);

/* Lock contention since start (db.c): statements that found the write
 * lock held and waited; waits that ran out the busy timeout (10 s) and
 * returned SQLITE_BUSY; SQLITE_BUSY/LOCKED results seen by db_status(). */
struct db_busy_counts {
    unsigned long waits, timeouts, results;
};
void db_busy_counts(struct db_busy_counts *out);
/* Seconds, summed over threads, spent waiting for the process's write
 * mutex and holding it (from db_begin to db_commit/db_rollback). */
void db_write_lock_times(double *wait_s, double *hold_s);
/* Test hook: the busy timeout of every connection, in ms (10000). */
void db_set_busy_timeout_ms(int ms);

/* A read transaction (BEGIN DEFERRED): the statements until db_commit()
 * see one snapshot and take the WAL read lock once. */
sf_status db_begin_read(void);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK on this thread's connection. */
sf_status db_begin(void);
sf_status db_commit(void);
void db_rollback(void);

/* Test hook: the next n write commits, on any thread, fail as a full disk
 * would (rolled back, SF_EUNAVAILABLE). 0 turns it off. Returns how many
 * of the previous setting were left unused. */
int db_fail_commits(int n);

/* The schema version of the open database. */
int db_schema_version(void);

/* Closes this thread's connection now (at thread end it happens anyway). */
void db_close_thread(void);

/* Bind helpers: text with SQLITE_TRANSIENT, NULL when s is NULL. */
void db_bind_text(sqlite3_stmt *st, int idx, const char *s);

/* Binds v (borrowed) as compact JSON text, reals with 15 digits so 0.6
 * stays "0.6". */
void db_bind_json(sqlite3_stmt *st, int idx, const json_t *v);

/* Column text, "" for NULL (borrowed until the next step/reset). */
const char *db_col_text(sqlite3_stmt *st, int col);

/* Column text as a new JSON string, or JSON null for NULL. */
json_t *db_col_json_text(sqlite3_stmt *st, int col);

#endif
