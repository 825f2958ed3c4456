/*
 * unit_runs.h: fixtures for the tests of the queue and the engine: a
 * one-value query, a template and a run of n items on the open database.
 */
#ifndef SF_UNIT_RUNS_H
#define SF_UNIT_RUNS_H

#include <stdlib.h>
#include <unistd.h>

#include "store/db.h"
#include "store/runs.h"
#include "store/templates.h"
#include "unit.h"

/* The first column of the first row of sql with ?1 bound to arg; -1 when
 * there is no row. */
static inline long long unit_scalar(const char *sql, long long arg)
{
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db_conn(), sql, -1, &st, NULL);
    sqlite3_bind_int64(st, 1, arg);
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

/* A 64x64 template with no items of its own; its id. */
static inline long long unit_template(void)
{
    json_t *row = json_pack("{ss ss si si s[] s[] s[]}", "name", "t", "prompt_template", "x", "width", 64,
                            "height", 64, "loras", "csv_columns", "csv_items");
    long long tid = 0;
    CHECK(templates_insert(row, "test", &tid) == SF_OK);
    json_decref(row);
    return tid;
}

/* Opens a fresh database at a temporary path made from path (a mkstemp
 * template, "/tmp/sf-x-XXXXXX", filled in). */
static inline void unit_open_db(char *path)
{
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    CHECK(db_open(path, err, sizeof(err)) == 0);
}

/* runs_create for a run of n items ("prompt 0", ...) of template tid by
 * creator (NULL: anonymous) with an optional idempotency key, under caps
 * (may be NULL); its status, with *id set. */
static inline sf_status unit_create_run(long long tid, int n, const char *creator, const char *key,
                                        struct run_caps *caps, long long *id, int *reused)
{
    json_t *prompts = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(prompts, json_pack("{sosI}", "prompt", json_sprintf("prompt %d", i),
                                                 "seed", (json_int_t)(10 + i)));
    json_t *loras = json_array();
    struct run_spec spec = {.template_id = tid, .album_name = "album", .user_theme = "t", .steps = 5,
                            .seed = 10, .width = 64, .height = 64, .guidance_scale = 7,
                            .negative_prompt = "", .loras = loras, .items = prompts,
                            .request_hash = "h", .creator = creator, .idempotency_key = key};
    *id = 0;
    sf_status st = runs_create(&spec, caps, id, reused);
    json_decref(prompts);
    json_decref(loras);
    return st;
}

/* A queued run of n items ("prompt 0", ...) of template tid; its id. */
static inline long long unit_make_run(long long tid, int n)
{
    long long id;
    int reused;
    CHECK(unit_create_run(tid, n, NULL, NULL, NULL, &id, &reused) == SF_OK && !reused);
    return id;
}

#endif
