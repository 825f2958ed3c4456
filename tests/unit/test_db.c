/*
 * test_db.c: the store's connection layer on a real SQLite file: the
 * generation that the response cache trusts (moves on every commit, on any
 * thread, never on a read or a rollback), and WAL checkpoints, which our
 * WAL hook took over from SQLite, on the checkpointer thread and inline.
 */
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

/* The last commit of a burst always asks for one more pass, which copies
 * everything; wait until passes stop coming (200 ms without one). */
static void wait_checkpointer_quiet(void)
{
    unsigned long last = 0, now, ign;
    db_checkpoint_counts(&last, &ign);
    for (int quiet = 0, k = 0; quiet < 20 && k < 1000; k++) {
        usleep(10000);
        db_checkpoint_counts(&now, &ign);
        quiet = now == last ? quiet + 1 : 0;
        last = now;
    }
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

    /* with the checkpointer: commits with pauses leave the checkpoints to
     * it, none lands on the committing thread */
    CHECK(db_checkpointer_start() == 0);
    db_checkpoint_counts(&a0, &i0);
    for (int round = 0; round < 3; round++) {
        many_commits(1100);
        wait_checkpointer_quiet();
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

    db_close_thread();
    unit_remove_db(path);
    UNIT_END("db");
}
