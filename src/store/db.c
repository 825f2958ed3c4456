/*
 * db.c: per-thread SQLite connections, the statement cache and migrations.
 *
 * Why one connection per thread: SQLite serialises each connection with a
 * mutex, so a shared connection would make every HTTP thread and worker
 * queue behind one another. With WAL, readers on separate connections never
 * block each other or the writer; writers take the lock with BEGIN IMMEDIATE
 * and wait out contention with the busy timeout.
 *
 * The cache is keyed by the address of the SQL string (a static in the
 * caller), so a lookup is a pointer hash, not a string compare.
 */
#include "store/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/migrations.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define STMT_SLOTS 512 /* power of two, well above the number of statements */

struct conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[STMT_SLOTS];
};

static char *db_path;
static pthread_key_t conn_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void write_release(void);

static void conn_free(void *p)
{
    struct conn *c = p;
    if (!c)
        return;
    for (size_t i = 0; i < STMT_SLOTS; i++)
        if (c->cache[i].st)
            sqlite3_finalize(c->cache[i].st);
    sqlite3_close(c->db);
    /* Closing rolled back a transaction left open; the writers' mutex
     * (below) goes with it, or every writer would wait for it in vain. */
    write_release();
    free(c);
}

static void make_key(void)
{
    pthread_key_create(&conn_key, conn_free);
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/*
 * The generation: a number that grows after every commit this process makes
 * (see db_generation). SQLite calls the WAL hook after a commit is durable
 * and its write lock released, so a reader that sees the new number and then
 * opens a snapshot sees the new data.
 *
 * Setting our hook replaces SQLite's automatic checkpoint (a passive
 * checkpoint once the WAL holds 1000 pages, run by whichever connection
 * committed). We keep the rule but move the work: copying 1000 pages (4 MB)
 * and fsyncing the file takes milliseconds, which would otherwise land on
 * whichever worker claim or HTTP write happened to commit. With the checkpointer thread running
 * (`serve`), the hook only wakes it; without it (CLI, unit tests), the
 * committing connection checkpoints, as SQLite would.
 *
 * A checkpoint that runs beside writers copies what was committed, but the
 * WAL only starts over when a writer finds everything copied; under a
 * steady stream of commits that never happens and the WAL would grow
 * without end. So past CHECKPOINT_HARD_PAGES the committer checkpoints
 * itself and makes the WAL start over: it stays bounded, and the cost lands
 * on a writer only when the load leaves no pause.
 */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_HARD_PAGES 4000

static _Atomic uint64_t generation = 1;
static atomic_ulong checkpoints_async, checkpoints_inline;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* wakes the thread */
    pthread_cond_t idle_cv; /* its pass ended */
    pthread_t thread;
    int running, due, quit, in_pass;
} ckpt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .idle_cv = PTHREAD_COND_INITIALIZER};

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    atomic_fetch_add(&generation, 1);
    if (pages < CHECKPOINT_PAGES)
        return SQLITE_OK;
    pthread_mutex_lock(&ckpt.mu);
    if (ckpt.running && pages < CHECKPOINT_HARD_PAGES) {
        ckpt.due = 1;
        pthread_cond_signal(&ckpt.cv);
        pthread_mutex_unlock(&ckpt.mu);
        return SQLITE_OK;
    }
    int rc;
    if (pages >= CHECKPOINT_HARD_PAGES) {
        /* A passive pass is not enough here: SQLite refuses a second
         * checkpoint while the thread's runs, and readers may sit on old
         * frames. Wait for the thread's pass (and keep it from starting
         * another while we hold mu), then RESTART: it waits for readers
         * within the busy timeout and lets the next writer start over.
         * Other committers past the bound queue on mu meanwhile, which is
         * the back-pressure a WAL this long asks for. */
        while (ckpt.in_pass)
            pthread_cond_wait(&ckpt.idle_cv, &ckpt.mu);
        ckpt.due = 0;
        rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
        pthread_mutex_unlock(&ckpt.mu);
    } else {
        pthread_mutex_unlock(&ckpt.mu);
        rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        atomic_fetch_add(&checkpoints_inline, 1);
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    pthread_mutex_lock(&ckpt.mu);
    for (;;) {
        while (!ckpt.due && !ckpt.quit)
            pthread_cond_wait(&ckpt.cv, &ckpt.mu);
        if (ckpt.quit)
            break;
        ckpt.due = 0;
        ckpt.in_pass = 1;
        pthread_mutex_unlock(&ckpt.mu);
        sqlite3 *db = db_conn();
        int rc = db ? sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) : SQLITE_ERROR;
        if (rc == SQLITE_OK)
            atomic_fetch_add(&checkpoints_async, 1);
        else if (rc != SQLITE_BUSY)
            log_warn("db: checkpoint failed: %s", db ? sqlite3_errmsg(db) : "no connection");
        pthread_mutex_lock(&ckpt.mu);
        ckpt.in_pass = 0;
        pthread_cond_broadcast(&ckpt.idle_cv);
    }
    pthread_mutex_unlock(&ckpt.mu);
    db_close_thread();
    return NULL;
}

void db_checkpoint_counts(unsigned long *async, unsigned long *inline_)
{
    *async = atomic_load(&checkpoints_async);
    *inline_ = atomic_load(&checkpoints_inline);
}

int db_checkpointer_start(void)
{
    pthread_mutex_lock(&ckpt.mu);
    ckpt.quit = ckpt.due = 0;
    int rc = ckpt.running ? 0 : pthread_create(&ckpt.thread, NULL, checkpointer_main, NULL);
    if (rc == 0)
        ckpt.running = 1;
    pthread_mutex_unlock(&ckpt.mu);
    return rc == 0 ? 0 : -1;
}

void db_checkpointer_stop(void)
{
    pthread_mutex_lock(&ckpt.mu);
    int was = ckpt.running;
    ckpt.running = 0; /* from here, committers checkpoint themselves */
    ckpt.quit = 1;
    pthread_cond_signal(&ckpt.cv);
    pthread_mutex_unlock(&ckpt.mu);
    if (was)
        pthread_join(ckpt.thread, NULL);
}

uint64_t db_generation(void)
{
    return atomic_load(&generation);
}

/*
 * Lock contention, counted. With WAL only writers wait for each other
 * (BEGIN IMMEDIATE); SQLite then calls the busy handler until the lock is
 * free or the busy timeout has passed. Ours is SQLite's default handler
 * (sqliteDefaultBusyCallback: the same sleeps, 1 ms growing to 100 ms)
 * plus two counters for /metrics: how often a statement had to wait, and
 * how often it waited in vain and SQLite gave SQLITE_BUSY back. A third
 * counts SQLITE_BUSY/LOCKED results mapped by db_status(), which also sees
 * the ones no handler is asked about (a read snapshot gone stale before its
 * write). Under load the first may grow; the other two should stay 0.
 */
static const int busy_delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
static const int busy_totals[] = {0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228};
#define BUSY_STEPS ((int)(sizeof(busy_delays) / sizeof(busy_delays[0])))

static atomic_int busy_timeout_ms = 10000;
static atomic_ulong busy_waits, busy_timeouts, busy_results;

static int on_busy(void *arg, int count)
{
    int delay, prior, timeout = atomic_load(&busy_timeout_ms);
    if (count == 0)
        atomic_fetch_add(&busy_waits, 1);
    if (count < BUSY_STEPS) {
        delay = busy_delays[count];
        prior = busy_totals[count];
    } else {
        delay = busy_delays[BUSY_STEPS - 1];
        prior = busy_totals[BUSY_STEPS - 1] + delay * (count - (BUSY_STEPS - 1));
    }
    if (prior + delay > timeout) {
        delay = timeout - prior;
        if (delay <= 0) {
            atomic_fetch_add(&busy_timeouts, 1);
            return 0;
        }
    }
    sqlite3_sleep(delay);
    return 1;
}

void db_busy_counts(struct db_busy_counts *out)
{
    out->waits = atomic_load(&busy_waits);
    out->timeouts = atomic_load(&busy_timeouts);
    out->results = atomic_load(&busy_results);
}

void db_set_busy_timeout_ms(int ms)
{
    atomic_store(&busy_timeout_ms, ms);
}

static sqlite3 *open_conn(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, on_busy, NULL);
    sqlite3_extended_result_codes(db, 0);
    /* synchronous=NORMAL is durable across process crashes in WAL mode;
     * only an OS crash may lose the last transactions, never corrupt. */
    if (exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;",
                 err, errlen) < 0) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_wal_hook(db, on_wal_commit, NULL);
    return db;
}

sqlite3 *db_conn(void)
{
    pthread_once(&key_once, make_key);
    struct conn *c = pthread_getspecific(conn_key);
    if (c)
        return c->db;
    char err[256];
    sqlite3 *db = open_conn(db_path, err, sizeof(err));
    if (!db) {
        /* Under a flood of connections this repeats for every request:
         * say it once a second. */
        static atomic_llong last_ms;
        long long now = mono_ms(), last = atomic_load(&last_ms);
        if (now - last >= 1000 && atomic_compare_exchange_strong(&last_ms, &last, now))
            log_error("db: %s", err);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->db = db;
    pthread_setspecific(conn_key, c);
    return db;
}

void db_close_thread(void)
{
    pthread_once(&key_once, make_key);
    struct conn *c = pthread_getspecific(conn_key);
    if (c) {
        conn_free(c);
        pthread_setspecific(conn_key, NULL);
    }
}

sqlite3_stmt *db_stmt(const char *sql)
{
    /* No connection (out of files, most likely): NULL, like a statement
     * that cannot be prepared; every caller turns that into an error
     * answer or a retry, never an abort. db_conn() logged why. */
    if (!db_conn())
        return NULL;
    struct conn *c = pthread_getspecific(conn_key);
    size_t h = ((uintptr_t)sql >> 3) * 0x9E3779B97F4A7C15ULL;
    for (size_t n = 0; n < STMT_SLOTS; n++) {
        size_t i = (h + n) & (STMT_SLOTS - 1);
        if (c->cache[i].sql == sql)
            return c->cache[i].st;
        if (!c->cache[i].sql) {
            sqlite3_stmt *st = NULL;
            int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
            if (rc != SQLITE_OK) {
                /* Our SQL is fixed, so this means the schema is not what we
                 * expect (a damaged or foreign database). NULL makes every
                 * later sqlite3_* call on it fail with SQLITE_MISUSE, which
                 * callers already turn into a 500; nothing is cached. */
                log_error("db: prepare failed: %s\n  in: %s", sqlite3_errmsg(c->db), sql);
                sqlite3_finalize(st);
                return NULL;
            }
            c->cache[i].sql = sql;
            c->cache[i].st = st;
            return st;
        }
    }
    log_error("db: statement cache full");
    abort();
}

void db_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

sf_status db_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return SF_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        atomic_fetch_add(&busy_results, 1);
        return SF_EUNAVAILABLE;
    case SQLITE_CONSTRAINT:
        return SF_ECONFLICT;
    default:
        return SF_EINTERNAL;
    }
}

static sf_status exec_simple(const char *sql)
{
    sqlite3_stmt *st = db_stmt(sql);
    int rc = sqlite3_step(st);
    db_done(st);
    if (rc != SQLITE_DONE) {
        log_error("db: %s: %s", sql, sqlite3_errmsg(db_conn()));
        return db_status(rc);
    }
    return SF_OK;
}

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_READ[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

/*
 * One writer at a time within the process, queued on a mutex. SQLite's own
 * wait is a sleep and retry (1 ms growing to 100 ms): with many threads
 * after the write lock (a worker and a finisher per endpoint slot), a
 * sleeper misses the moment the lock is free and another takes it, and the
 * lock sits idle while everyone sleeps. Measured with 1,000 simulated GPUs
 * (docs/performance.md, Scale): ~41,000 sleeps for 60,000 transactions and
 * gaps of seconds. A mutex hands the lock straight to the next waiter; the
 * busy handler is left for writers outside BEGIN IMMEDIATE (single
 * statements) and for other processes (the CLI). The wait is bounded by the
 * busy timeout, so a stuck writer still ends in SQLITE_BUSY's answer.
 */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int write_held;
static _Thread_local int64_t write_since_us;
/* Time spent waiting for write_mu and holding it, summed over threads (µs):
 * held / elapsed is how busy the one writer is, which bounds the items a
 * second the engine can record (performance.md, Scale). */
static _Atomic int64_t write_wait_us, write_hold_us;

static void write_release(void)
{
    if (write_held) {
        write_held = 0;
        atomic_fetch_add(&write_hold_us, mono_us() - write_since_us);
        pthread_mutex_unlock(&write_mu);
    }
}

void db_write_lock_times(double *wait_s, double *hold_s)
{
    *wait_s = (double)atomic_load(&write_wait_us) / 1e6;
    *hold_s = (double)atomic_load(&write_hold_us) / 1e6;
}

sf_status db_begin(void)
{
    if (write_held) /* nested: BEGIN fails as it always did */
        return exec_simple(SQL_BEGIN);
    /* timedlock's deadline is on the wall clock (a clock step only moves
     * this bound); pthread_mutex_clocklock would take the monotonic one,
     * but ThreadSanitizer does not know it and then misreads the unlock. */
    int64_t t0 = mono_us();
    int ms = atomic_load(&busy_timeout_ms);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&write_mu, &until) != 0) {
        atomic_fetch_add(&busy_timeouts, 1);
        return SF_EUNAVAILABLE;
    }
    write_held = 1;
    write_since_us = mono_us();
    atomic_fetch_add(&write_wait_us, write_since_us - t0);
    sf_status s = exec_simple(SQL_BEGIN);
    if (s != SF_OK)
        write_release();
    return s;
}

sf_status db_begin_read(void)
{
    return exec_simple(SQL_BEGIN_READ);
}

/* Test hook (db_fail_commits): write commits left to fail. */
static atomic_int commits_to_fail;

int db_fail_commits(int n)
{
    int left = atomic_exchange(&commits_to_fail, n);
    return left > 0 ? left : 0;
}

sf_status db_commit(void)
{
    sqlite3 *db = db_conn();
    if (db && sqlite3_txn_state(db, NULL) == SQLITE_TXN_WRITE &&
        atomic_load(&commits_to_fail) > 0 && atomic_fetch_sub(&commits_to_fail, 1) > 0) {
        db_rollback();
        return SF_EUNAVAILABLE;
    }
    sf_status st = exec_simple(SQL_COMMIT);
    if (st != SF_OK)
        db_rollback();
    write_release();
    return st;
}

void db_rollback(void)
{
    sqlite3 *db = db_conn();
    if (db && !sqlite3_get_autocommit(db))
        exec_simple(SQL_ROLLBACK);
    write_release();
}

void db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s)
        sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, idx);
}

void db_bind_json(sqlite3_stmt *st, int idx, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    sqlite3_bind_text(st, idx, text, -1, free);
}

const char *db_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

json_t *db_col_json_text(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_string(db_col_text(st, col));
}

static const char SQL_VERSION[] = "SELECT coalesce(max(version), 0) FROM schema_version";

int db_schema_version(void)
{
    sqlite3_stmt *st = db_stmt(SQL_VERSION);
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    db_done(st);
    return v;
}

/* Applies each migration newer than schema_version, all in one transaction. */
static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    if (exec_sql(db, "BEGIN IMMEDIATE;"
                     "CREATE TABLE IF NOT EXISTS schema_version ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
                 err, errlen) < 0)
        return -1;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st, NULL);
    int current = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    for (const struct sf_migration *m = sf_migrations; m->sql; m++) {
        if (m->version <= current)
            continue;
        char inner[512];
        if (exec_sql(db, m->sql, inner, sizeof(inner)) < 0) {
            snprintf(err, errlen, "migration %s: %s", m->name, inner);
            exec_sql(db, "ROLLBACK", inner, sizeof(inner));
            return -1;
        }
        sqlite3_prepare_v2(db, "INSERT INTO schema_version VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                           -1, &st, NULL);
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            snprintf(err, errlen, "migration %s: cannot record version", m->name);
            exec_sql(db, "ROLLBACK", inner, sizeof(inner));
            return -1;
        }
        log_info("db: applied migration %s", m->name);
    }
    return exec_sql(db, "COMMIT", err, errlen);
}

int db_open(const char *path, char *err, size_t errlen)
{
    /* Before SQLite initialises: connections are never shared between
     * threads (multi-thread mode), and without memory statistics SQLite's
     * allocator takes no global mutex, which every HTTP thread would
     * otherwise queue on. */
    static int configured;
    if (!configured) {
        sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        configured = 1;
    }
    free(db_path);
    db_path = xstrdup(path);
    pthread_once(&key_once, make_key);
    db_close_thread();
    if (!db_conn()) {
        sqlite3 *probe = open_conn(path, err, errlen);
        sqlite3_close(probe);
        return -1;
    }
    return migrate(db_conn(), err, errlen);
}
