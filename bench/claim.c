/*
 * claim.c: what one claim of the queue costs (docs/run-controls.md), printed,
 * never asserted. A claim is queue_claim (one write transaction: the claim
 * statement, the run's parameters, maybe its start) followed by
 * queue_release, so the queue keeps its size from one claim to the next.
 *
 * Queues of 10,000 queued items: in one run; in 100 runs of 100; in 1,000
 * runs of 10; the same 1,000 runs over 21 priority levels; and 1,000 paused
 * runs beside one drawable run. Then the claim's query plan.
 *
 * usage: bench/claim (built by bench/run.sh against build/release objects)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue.h"
#include "store/db.h"
#include "store/runs.h"
#include "store/templates.h"

static long long make_run(long long tid, int n, int priority)
{
    json_t *prompts = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(prompts, json_sprintf("prompt %d", i));
    json_t *loras = json_array();
    struct run_spec spec = {.template_id = tid, .album_name = "a", .user_theme = "t", .steps = 5,
                            .seed = 1, .width = 64, .height = 64, .guidance_scale = 7,
                            .negative_prompt = "", .loras = loras, .prompts = prompts,
                            .request_hash = "h", .priority = priority};
    long long id = 0;
    int reused = 0;
    if (runs_create(&spec, NULL, &id, &reused) != SF_OK) {
        fprintf(stderr, "cannot create a run\n");
        exit(1);
    }
    json_decref(prompts);
    json_decref(loras);
    return id;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Mean microseconds of a claim and release, over n claims. */
static double time_claims(int n)
{
    long long rr = 0;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        struct claimed_item it;
        if (queue_claim("bench", 30000, &rr, "ep", (const char *[]){"ep"}, 1, &it) != 1) {
            fprintf(stderr, "nothing to claim\n");
            exit(1);
        }
        queue_release(&it, "bench");
        claimed_item_free(&it);
    }
    return (now_us() - t0) / n;
}

static void clear_runs(void)
{
    sqlite3_exec(db_conn(), "DELETE FROM run_events; DELETE FROM run_items; DELETE FROM runs;", NULL,
                 NULL, NULL);
}

static void scenario(const char *what, long long tid, int runs, int per_run, int levels, int paused)
{
    clear_runs();
    for (int r = 0; r < runs; r++) {
        long long id = make_run(tid, per_run, levels > 1 ? r % levels - levels / 2 : 0);
        if (r < paused)
            queue_pause_run(id);
    }
    double us = time_claims(2000);
    printf("  %-44s %8.1f us per claim (+ release)\n", what, us);
}

int main(void)
{
    char path[] = "/tmp/sf-claim-bench-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    if (db_open(path, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    json_t *row = json_pack("{ss ss si si s[] s[] s[]}", "name", "t", "prompt_template", "x",
                            "width", 64, "height", 64, "loras", "csv_columns", "csv_items");
    long long tid = 0;
    templates_insert(row, "bench", &tid);
    json_decref(row);

    printf("claim of the next item, 10,000 items queued\n");
    scenario("1 run of 10,000", tid, 1, 10000, 1, 0);
    scenario("100 runs of 100", tid, 100, 100, 1, 0);
    scenario("1,000 runs of 10", tid, 1000, 10, 1, 0);
    scenario("1,000 runs of 10, 21 priority levels", tid, 1000, 10, 21, 0);
    scenario("1,000 paused runs of 10 + 1 drawable run", tid, 1001, 10, 1, 1000);

    printf("the claim's query plan\n");
    char *sql = NULL;
    if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", queue_claim_sql()) > 0) {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL);
        while (sqlite3_step(st) == SQLITE_ROW)
            printf("  %s\n", sqlite3_column_text(st, 3));
        sqlite3_finalize(st);
    }
    free(sql);
    db_close_thread();
    unlink(path);
    char side[64];
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
    return 0;
}
