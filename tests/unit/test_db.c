/*
 * test_db.c: the store's connection layer on a real SQLite file: the
 * generation that the response cache trusts (moves on every commit, on any
 * thread, never on a read or a rollback), and WAL checkpoints, which our
 * WAL hook took over from SQLite, on the checkpointer thread and inline;
 * the writers' mutex, and the lock-contention counters that /metrics shows.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/db.h"
#include "unit.h"

static const char SQL_CREATE[] = "CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, b BLOB)";
static const char SQL_INSERT[] = "INSERT INTO blobs (b) VALUES (zeroblob(2000))";
static const char SQL_COUNT[] = "SELECT count(*) FROM blobs";

static int exec1(const char *sql)
{
    sqlite3_stmt *st = db_stmt(sql);
    int rc = sqlite3_step(st);
    db_done(st);
    return rc;
}

static long long wal_size(const char *path)
{
    char wal[256];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    struct stat sb;
    return stat(wal, &sb) == 0 ? (long long)sb.st_size : -1;
}

static void *commit_on_other_thread(void *arg)
{
    *(int *)arg = exec1(SQL_INSERT) == SQLITE_DONE;
    db_close_thread();
    return NULL;
}

/* n single-row commits of 2 KB each: without checkpoints the WAL would
 * hold every page; with them it is reused from the start. */
static void many_commits(int n)
{
    for (int i = 0; i < n; i++)
        exec1(SQL_INSERT);
}

/* From the WAL-index header at the start of the -shm file
 * (sqlite.org/walformat.html, native byte order): the frames in the WAL
 * (mxFrame, at offset 16 of each of the two copies of the header) and how
 * many of them checkpoints have copied back (nBackfill, at offset 96).
 * 0, or -1 when it cannot be read or the copies differ (mid-update). */
static int wal_index(const char *path, uint32_t *frames, uint32_t *copied)
{
    char shm[256];
    unsigned char h[100];
    snprintf(shm, sizeof(shm), "%s-shm", path);
    int fd = open(shm, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, h, sizeof(h), 0);
    close(fd);
    if (n != (ssize_t)sizeof(h) || memcmp(h, h + 48, 48) != 0)
        return -1;
    memcpy(frames, h + 16, 4);
    memcpy(copied, h + 96, 4);
    return 0;
}

/* Waits until the checkpointer has caught up after a burst of commits:
 * every frame copied back, or too few frames for a commit to have asked
 * for a pass (db.c's CHECKPOINT_PAGES, 1000). The pass the last commit
 * asked for always comes, so only a checkpointer that never runs makes
 * this give up, after a minute. 1 when caught up. */
static int checkpointer_caught_up(const char *path)
{
    for (int ms = 0; ms < 60000; ms++) {
        uint32_t frames, copied;
        if (wal_index(path, &frames, &copied) == 0 && (frames < 1000 || copied >= frames))
            return 1;
        usleep(1000);
    }
    return 0;
}

/* Holds SQLite's write lock on a connection of its own, opened outside
 * db.c as another process (the CLI) would, until told to let go. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int holding, release;
    const char *path;
} locker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL};

static void *hold_write_lock(void *arg)
{
    sqlite3 *db = NULL;
    int ok = sqlite3_open(locker.path, &db) == SQLITE_OK &&
             sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO blobs (b) VALUES (zeroblob(10))", NULL, NULL,
                          NULL) == SQLITE_OK;
    pthread_mutex_lock(&locker.mu);
    locker.holding = ok ? 1 : -1;
    pthread_cond_broadcast(&locker.cv);
    while (!locker.release)
        pthread_cond_wait(&locker.cv, &locker.mu);
    pthread_mutex_unlock(&locker.mu);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

static void start_locker(pthread_t *t)
{
    locker.holding = locker.release = 0;
    pthread_create(t, NULL, hold_write_lock, NULL);
    pthread_mutex_lock(&locker.mu);
    while (!locker.holding)
        pthread_cond_wait(&locker.cv, &locker.mu);
    pthread_mutex_unlock(&locker.mu);
    CHECK(locker.holding == 1);
}

static void stop_locker(pthread_t t)
{
    pthread_mutex_lock(&locker.mu);
    locker.release = 1;
    pthread_cond_broadcast(&locker.cv);
    pthread_mutex_unlock(&locker.mu);
    pthread_join(t, NULL);
}

static void *release_after_a_wait(void *arg)
{
    /* let go once the main thread has been seen waiting */
    struct db_busy_counts b;
    unsigned long before = *(unsigned long *)arg;
    do {
        usleep(1000);
        db_busy_counts(&b);
    } while (b.waits == before);
    pthread_mutex_lock(&locker.mu);
    locker.release = 1;
    pthread_cond_broadcast(&locker.cv);
    pthread_mutex_unlock(&locker.mu);
    return NULL;
}

#define WRITERS 8
#define WRITES 200

static void *begin_and_leave(void *arg)
{
    *(int *)arg = db_begin() == SF_OK && exec1(SQL_INSERT) == SQLITE_DONE;
    db_close_thread(); /* no commit: the connection's end rolls back */
    return NULL;
}

static void *write_many(void *arg)
{
    int *ok = arg;
    for (int i = 0; i < WRITES; i++)
        *ok += db_begin() == SF_OK && exec1(SQL_INSERT) == SQLITE_DONE && db_commit() == SF_OK;
    db_close_thread();
    return NULL;
}

/* Writers of this process queue on db.c's mutex, not in SQLite's sleeping
 * busy handler: 8 threads x 200 transactions, (nearly) no lock wait
 * counted (each would be a sleep of 1..100 ms), every row in. */
static void writers_take_turns(void)
{
    struct db_busy_counts b0, b1;
    pthread_t t[WRITERS];
    int ok[WRITERS] = {0};
    sqlite3_stmt *st = db_stmt(SQL_COUNT);
    sqlite3_step(st);
    long long rows0 = sqlite3_column_int64(st, 0);
    db_done(st);
    db_busy_counts(&b0);
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, write_many, &ok[i]);
    int all = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        all += ok[i];
    }
    db_busy_counts(&b1);
    double wait_s, hold_s;
    db_write_lock_times(&wait_s, &hold_s);
    CHECK(hold_s > 0 && wait_s >= 0);
    CHECK(all == WRITERS * WRITES);
    /* Not always 0: SQLite's own checkpoint after a commit may still meet a
     * writer now and then under a slow build (TSan, a busy machine); the
     * writers themselves meet on the mutex, never in SQLite's busy handler. */
    CHECK(b1.waits - b0.waits <= WRITERS);
    st = db_stmt(SQL_COUNT);
    sqlite3_step(st);
    CHECK(sqlite3_column_int64(st, 0) == rows0 + WRITERS * WRITES);
    db_done(st);
    /* a failed BEGIN, a rollback and a nested BEGIN leave the mutex free */
    CHECK(db_begin() == SF_OK);
    CHECK(db_begin() != SF_OK);
    db_rollback();
    CHECK(db_begin() == SF_OK);
    CHECK(db_commit() == SF_OK);
    int one = 0;
    pthread_t u;
    pthread_create(&u, NULL, write_many, &one);
    pthread_join(u, NULL);
    CHECK(one == WRITES);
    /* a thread that ends inside a transaction does not keep the mutex
     * (without that, this db_begin would wait out the timeout and fail) */
    int began = 0;
    pthread_create(&u, NULL, begin_and_leave, &began);
    pthread_join(u, NULL);
    CHECK(began);
    db_set_busy_timeout_ms(2000);
    CHECK(db_begin() == SF_OK);
    CHECK(db_commit() == SF_OK);
    db_set_busy_timeout_ms(10000);
}

/* The lock counters behind /metrics: a writer that finds the lock held
 * (by another process) waits (counted) and gets it when it is released;
 * one that waits longer than the busy timeout gets SQLITE_BUSY (counted as
 * a timeout and as a result, and the status is "unavailable"). */
static void busy_counters(const char *path)
{
    locker.path = path;
    struct db_busy_counts b0, b1;
    pthread_t t, r;
    db_busy_counts(&b0);
    CHECK(db_begin() == SF_OK);
    CHECK(db_commit() == SF_OK);
    db_busy_counts(&b1);
    CHECK(b1.waits == b0.waits && b1.timeouts == b0.timeouts && b1.results == b0.results);

    start_locker(&t);
    unsigned long w = b1.waits;
    pthread_create(&r, NULL, release_after_a_wait, &w);
    CHECK(db_begin() == SF_OK); /* waits until the locker commits */
    CHECK(exec1(SQL_INSERT) == SQLITE_DONE);
    CHECK(db_commit() == SF_OK);
    pthread_join(r, NULL);
    stop_locker(t);
    db_busy_counts(&b0);
    CHECK(b0.waits >= b1.waits + 1);
    CHECK(b0.timeouts == b1.timeouts && b0.results == b1.results);

    db_set_busy_timeout_ms(30);
    start_locker(&t);
    CHECK(db_begin() == SF_EUNAVAILABLE);
    stop_locker(t);
    db_set_busy_timeout_ms(10000);
    db_busy_counts(&b1);
    CHECK(b1.waits >= b0.waits + 1);
    CHECK(b1.timeouts == b0.timeouts + 1);
    CHECK(b1.results >= b0.results + 1);
}

int main(void)
{
    char path[] = "/tmp/sf-db-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    CHECK(db_open(path, err, sizeof(err)) == 0);
    CHECK(exec1(SQL_CREATE) == SQLITE_DONE);

    /* the generation moves after a commit, on this thread or another */
    uint64_t g0 = db_generation();
    CHECK(exec1(SQL_INSERT) == SQLITE_DONE);
    uint64_t g1 = db_generation();
    CHECK(g1 > g0);
    int ok = 0;
    pthread_t t;
    pthread_create(&t, NULL, commit_on_other_thread, &ok);
    pthread_join(t, NULL);
    CHECK(ok);
    uint64_t g2 = db_generation();
    CHECK(g2 > g1);
    /* ... and not after reads, read transactions or a rollback */
    CHECK(exec1(SQL_COUNT) == SQLITE_ROW);
    CHECK(db_begin_read() == SF_OK);
    CHECK(exec1(SQL_COUNT) == SQLITE_ROW);
    CHECK(db_commit() == SF_OK);
    CHECK(db_begin() == SF_OK);
    CHECK(exec1(SQL_INSERT) == SQLITE_DONE);
    db_rollback();
    CHECK(db_generation() == g2);
    /* a transaction of several statements moves it once it commits */
    CHECK(db_begin() == SF_OK);
    CHECK(exec1(SQL_INSERT) == SQLITE_DONE);
    CHECK(db_generation() == g2);
    CHECK(db_commit() == SF_OK);
    CHECK(db_generation() > g2);

    /* checkpoints inline (no checkpointer): 3000 commits of ~1 page
     * each stay far below 3000 pages of WAL */
    unsigned long a0, i0, a1, i1;
    db_checkpoint_counts(&a0, &i0);
    many_commits(3000);
    long long inline_size = wal_size(path);
    CHECK(inline_size > 0 && inline_size < 1600LL * 4096);
    db_checkpoint_counts(&a1, &i1);
    CHECK(a1 == a0 && i1 > i0);

    /* with the checkpointer: commits with pauses (until it has caught
     * up) leave the checkpoints to it, none lands on the committing thread */
    CHECK(db_checkpointer_start() == 0);
    db_checkpoint_counts(&a0, &i0);
    for (int round = 0; round < 3; round++) {
        many_commits(1100);
        CHECK(checkpointer_caught_up(path));
    }
    db_checkpoint_counts(&a1, &i1);
    CHECK(a1 >= a0 + 2);
    CHECK(i1 == i0);
    /* a steady stream with no pause: the hard bound keeps the WAL finite */
    many_commits(12000);
    long long steady_size = wal_size(path);
    /* about two frames per commit: 24,000 frames without checkpoints; the
     * hard bound is 4000 */
    CHECK(steady_size > 0 && steady_size < 4500LL * 4096);
    db_checkpointer_stop();
    db_checkpointer_stop(); /* twice is harmless */
    CHECK(exec1(SQL_COUNT) == SQLITE_ROW);

    writers_take_turns();
    busy_counters(path);

    db_close_thread();
    unit_remove_db(path);
    UNIT_END("db");
}
