/*
 * test_engine.c: the worker pool on a real SQLite file with the procedural
 * backend: every outcome ends recorded, or released and drawn again, even
 * when the database refuses commits (the store's db_fail_commits hook), and
 * the engine tells its listener about every run it changes.
 *
 * Every wait is on a condition, with a bound far beyond what a slow
 * sanitizer build needs; the bound only turns a hang into a failure.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "queue/engine.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/templates.h"
#include "unit_runs.h"
#include "util/config.h"
#include "util/timeutil.h"

#define WAIT_BOUND_MS 120000

static atomic_int notified;
static atomic_llong last_notified;

static void on_notify(long long run_id)
{
    atomic_fetch_add(&notified, 1);
    atomic_store(&last_notified, run_id);
}

/* 1 when the run's single item has the state, waiting up to the bound. */
static int wait_item(long long run_id, const char *state)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM run_items WHERE run_id = ?1 AND status = '%s'",
             state);
    int64_t until = mono_ms() + WAIT_BOUND_MS;
    while (mono_ms() < until) {
        if (unit_scalar(sql, run_id) == 1)
            return 1;
        usleep(2000);
    }
    return 0;
}

static long long make_run(long long tid)
{
    long long id = unit_make_run(tid, 1);
    engine_kick();
    return id;
}

/*
 * The commit of a finished image fails 8 times in a row (more than the 5
 * tries the engine used to give it, after which the item stayed `running`
 * until a restart). The finisher keeps trying, and the item ends succeeded
 * with its image in the run's album.
 */
static void outcome_recorded_after_failed_commits(long long tid)
{
    long long run = make_run(tid);
    CHECK(wait_item(run, "running"));
    db_fail_commits(8);
    CHECK(wait_item(run, "succeeded"));
    CHECK(db_fail_commits(0) == 0); /* every failure was really met */
    CHECK(unit_scalar("SELECT count(*) FROM runs WHERE id = ?1 AND status = 'completed'", run) == 1);
    CHECK(unit_scalar("SELECT count(*) FROM album_images a JOIN runs r ON r.album_id = a.album_id "
                 "WHERE r.id = ?1",
                 run) == 1);
}

/*
 * The database refuses every commit for longer than the finisher tries:
 * the item is released to the queue (its attempt given back), not left
 * `running`; once commits work again it is drawn and recorded.
 */
static void outcome_released_when_never_recordable(long long tid)
{
    long long run = make_run(tid);
    CHECK(wait_item(run, "running"));
    db_fail_commits(1000000);
    CHECK(wait_item(run, "queued"));
    CHECK(unit_scalar("SELECT attempts FROM run_items WHERE run_id = ?1", run) == 0);
    db_fail_commits(0);
    engine_kick();
    CHECK(wait_item(run, "succeeded"));
    CHECK(unit_scalar("SELECT attempts FROM run_items WHERE run_id = ?1", run) == 1);
    CHECK(unit_scalar("SELECT count(*) FROM runs WHERE id = ?1 AND status = 'completed'", run) == 1);
}

/* The engine tells its listener (the HTTP streams, in the daemon) about
 * the runs it changes, and stats describe its one endpoint. */
static void listener_and_stats(long long tid)
{
    atomic_store(&notified, 0);
    long long run = make_run(tid);
    CHECK(wait_item(run, "succeeded"));
    int64_t until = mono_ms() + WAIT_BOUND_MS;
    while (atomic_load(&notified) < 2 && mono_ms() < until)
        usleep(2000); /* the finisher notifies right after its commit */
    CHECK(atomic_load(&notified) >= 2); /* claimed, then recorded */
    CHECK(atomic_load(&last_notified) == run);
    struct engine_stats es;
    engine_stats(&es);
    CHECK(es.nendpoints == 1);
    CHECK_STR(es.endpoints[0].name, "procedural");
    CHECK_STR(es.endpoints[0].state, "up");
    CHECK(es.endpoints[0].done >= 3);
    engine_stats_free(&es);
}

int main(void)
{
    char path[] = "/tmp/sf-engine-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char dir[] = "/tmp/sf-engine-data-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[256];
    CHECK(db_open(path, err, sizeof(err)) == 0);
    long long tid = unit_template();

    struct sf_config cfg;
    config_defaults(&cfg);
    free(cfg.data_dir);
    cfg.data_dir = dir;
    cfg.workers = 1;
    cfg.procedural_delay_ms = 500; /* long enough to see the item running */
    CHECK(engine_start(&cfg, on_notify, err, sizeof(err)) == 0);

    outcome_recorded_after_failed_commits(tid);
    outcome_released_when_never_recordable(tid);
    listener_and_stats(tid);

    engine_stop();
    cfg.data_dir = NULL;
    config_free(&cfg);
    db_close_thread();
    unit_remove_db(path);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    UNIT_END("test_engine");
}
