/*
 * commands.c: what each client command asks the daemon and how it shows
 * the answer: an aligned table or a few lines for people, the API's JSON
 * as it came with --json (for scripts and jq). Paths, bodies and fields are
 * the API's (../shared/spec/API.md); nothing here knows more of the daemon
 * than a curl user would.
 */
#include "cli/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/http_client.h"
#include "cli/progress.h"
#include "cli/sse.h"
#include "cli/table.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

/* A CSV file larger than this is refused before it is sent (the daemon's
 * default body limit is 10 MiB; a larger one is surely the wrong file). */
#define IMPORT_MAX_BYTES ((size_t)64 << 20)

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "setforge: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see setforge help)\n");
    return CLI_USAGE;
}

/* A field as text for a table cell: strings as they are, numbers printed,
 * null as NULL (the table shows "-"). Returns buf or a borrowed string. */
static const char *cell(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, len, "%g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    return NULL;
}

static long long int_of(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* "page 1 of 3 (250 runs); --page 2 for more" under a list that has more. */
static void page_footer(const json_t *doc, const char *things)
{
    long long page = int_of(doc, "page"), pages = int_of(doc, "pages");
    if (pages > 1)
        printf("page %lld of %lld (%lld %s)%s\n", page, pages, int_of(doc, "total"), things,
               page < pages ? "; --page N for more" : "");
}

/* "?page=N&per_page=100" from --page (1 when absent): 0, or a usage error. */
static int page_query(const struct cli_args *a, char *q, size_t len)
{
    long long page = 1;
    const char *p = args_get(a, "page");
    if (p && (args_parse_id(p, &page) < 0))
        return usage_error("--page must be a positive integer, not \"%s\"", p);
    snprintf(q, len, "page=%lld&per_page=100", page);
    return 0;
}

/* --json: the API's answer as it came, and nothing else; 1 when printed (doc
 * is then released). */
static int printed_as_json(const struct cli_ctx *ctx, json_t *doc)
{
    if (!ctx->json)
        return 0;
    cli_print_json(doc);
    json_decref(doc);
    return 1;
}

int cmd_templates(const struct cli_ctx *ctx, const struct cli_args *a)
{
    char q[64], path[128];
    if (page_query(a, q, sizeof q))
        return CLI_USAGE;
    snprintf(path, sizeof path, "/api/batch-templates?%s", q);
    json_t *doc = cli_call(ctx, "GET", path, NULL, NULL);
    if (!doc)
        return CLI_FAILED;
    if (printed_as_json(ctx, doc))
        return CLI_OK;
    static const char *const titles[] = {"ID", "NAME", "ITEMS", "SIZE", "COLUMNS"};
    struct table t;
    table_init(&t, 5, titles);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "templates"), i, row) {
        char id[24], items[24], size[32];
        struct strbuf cols;
        sb_init(&cols);
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(row, "csv_columns"), k, c)
            sb_printf(&cols, "%s%s", k ? ", " : "", json_string_value(c) ? json_string_value(c) : "");
        snprintf(size, sizeof size, "%lldx%lld", int_of(row, "width"), int_of(row, "height"));
        const char *cells[] = {cell(row, "id", id, sizeof id), str_of(row, "name"),
                               cell(row, "template_item_count", items, sizeof items), size,
                               cols.data ? cols.data : ""};
        table_add(&t, cells);
        sb_free(&cols);
    }
    table_print(&t, stdout);
    table_free(&t);
    page_footer(doc, "templates");
    json_decref(doc);
    return CLI_OK;
}

int cmd_template(const struct cli_ctx *ctx, const struct cli_args *a)
{
    long long id;
    if (args_parse_id(a->pos[0], &id) < 0)
        return usage_error("template id must be a positive integer, not \"%s\"", a->pos[0]);
    char path[64];
    snprintf(path, sizeof path, "/api/batch-templates/%lld", id);
    json_t *doc = cli_call(ctx, "GET", path, NULL, NULL);
    if (!doc)
        return CLI_FAILED;
    if (printed_as_json(ctx, doc))
        return CLI_OK;
    printf("template %lld: %s\n", id, str_of(doc, "name"));
    static const char *const keys[] = {"description", "prompt_template", "base_prompt", "style_suffix",
                                       "negative_prompt"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (*str_of(doc, keys[k]))
            printf("  %-16s %s\n", keys[k], str_of(doc, keys[k]));
    printf("  %-16s %lldx%lld\n", "size", int_of(doc, "width"), int_of(doc, "height"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "loras"), i, v) {
        const char *name = str_of(v, "name");
        printf("  %-16s %s %g\n", i ? "" : "loras", *name ? name : str_of(v, "path"),
               json_number_value(json_object_get(v, "weight")));
    }
    printf("  %-16s %lld\n\n", "items", int_of(doc, "template_item_count"));
    /* the items as a table: "#" then the CSV columns (as many as fit) */
    const json_t *cols = json_object_get(doc, "csv_columns");
    int ncols = 1 + (int)json_array_size(cols);
    if (ncols > TABLE_MAX_COLS)
        ncols = TABLE_MAX_COLS;
    const char *titles[TABLE_MAX_COLS] = {"#"};
    for (int c = 1; c < ncols; c++)
        titles[c] = json_string_value(json_array_get(cols, (size_t)c - 1));
    struct table t;
    table_init(&t, ncols, titles);
    json_array_foreach(json_object_get(doc, "csv_items"), i, v) {
        char n[24];
        snprintf(n, sizeof n, "%zu", i);
        const char *cells[TABLE_MAX_COLS] = {n};
        for (int c = 1; c < ncols; c++)
            cells[c] = json_string_value(json_object_get(v, titles[c]));
        table_add(&t, cells);
    }
    table_print(&t, stdout);
    table_free(&t);
    json_decref(doc);
    return CLI_OK;
}

int cmd_import(const struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *name = args_get(a, "name"), *prompt = args_get(a, "prompt");
    if (!name)
        return usage_error("import needs --name%s", "");
    if (!prompt)
        return usage_error("import needs --prompt%s", "");
    int w = 0, h = 0;
    const char *size = args_get(a, "size");
    if (size && args_parse_size(size, &w, &h) < 0)
        return usage_error("--size must be WIDTHxHEIGHT such as 512x720, not \"%s\"", size);
    unsigned char *csv;
    size_t len;
    if (read_file(a->pos[0], IMPORT_MAX_BYTES, &csv, &len) < 0) {
        fprintf(stderr, "setforge: cannot read %s: %s\n", a->pos[0],
                errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
        return CLI_FAILED;
    }
    json_t *body = json_pack("{ssss}", "name", name, "prompt_template", prompt);
    json_t *text = json_stringn((const char *)csv, len);
    free(csv);
    if (!text) {
        json_decref(body);
        fprintf(stderr, "setforge: %s is not UTF-8 text\n", a->pos[0]);
        return CLI_FAILED;
    }
    json_object_set_new(body, "csv", text);
    if (size) {
        json_object_set_new(body, "width", json_integer(w));
        json_object_set_new(body, "height", json_integer(h));
    }
    const char *desc = args_get(a, "description");
    if (desc)
        json_object_set_new(body, "description", json_string(desc));
    json_t *doc = cli_call(ctx, "POST", "/api/batch-templates", body, NULL);
    if (!doc)
        return CLI_FAILED;
    if (ctx->json) {
        cli_print_json(doc);
    } else {
        printf("created template %lld \"%s\": %lld items, %lldx%lld\n", int_of(doc, "id"),
               str_of(doc, "name"), int_of(doc, "template_item_count"), int_of(doc, "width"),
               int_of(doc, "height"));
    }
    json_decref(doc);
    return CLI_OK;
}

/* ---- generate --wait: following a run's event stream ---- */

struct follow {
    struct sse_parser sse;
    int tty, quiet;            /* draw the bar; print nothing while following (--json) */
    long long run_id, done, failed, total;
    double eta_s;              /* -1: unknown */
    char status[24];
    int final;
};

static int is_final(const char *status)
{
    return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "canceled") == 0;
}

static void draw(struct follow *f)
{
    char line[256];
    progress_line(line, sizeof line, 30, f->done, f->failed, f->total, f->eta_s);
    /* \r and erase-to-end: the bar is redrawn in place */
    printf("\r%s  %s\033[K", line, f->status);
    fflush(stdout);
}

static void on_event(void *ud, const char *type, const char *data, long long id)
{
    struct follow *f = ud;
    json_t *ev = json_loads(data, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return;
    }
    if (json_object_get(ev, "total_items")) {
        f->done = int_of(ev, "completed_items");
        f->failed = int_of(ev, "failed_items");
        f->total = int_of(ev, "total_items");
    }
    if (strcmp(type, "status") == 0) {
        snprintf(f->status, sizeof f->status, "%s", str_of(ev, "status"));
        const json_t *eta = json_object_get(ev, "eta_s");
        f->eta_s = json_is_number(eta) ? json_number_value(eta) : -1;
        f->final = is_final(f->status);
    }
    if (f->tty) {
        draw(f);
    } else if (!f->quiet) {
        if (strcmp(type, "status") == 0)
            printf("run %lld %s: %lld/%lld done, %lld failed\n", f->run_id, f->status, f->done,
                   f->total, f->failed);
        else if (strcmp(type, "item") == 0)
            printf("item %lld %s (%lld/%lld done, %lld failed)\n", int_of(ev, "index"),
                   str_of(ev, "status"), f->done, f->total, f->failed);
        fflush(stdout);
    }
    json_decref(ev);
}

static int sse_sink(const char *p, size_t n, void *ud)
{
    sse_feed(&((struct follow *)ud)->sse, p, n);
    return 0;
}

/* Follows run_id's events until it is final; reconnects where it left off
 * (Last-Event-ID) when the stream is cut. 0, or -1 after printing why. */
static int follow_run(const struct cli_ctx *ctx, struct follow *f)
{
    char path[64], last[64], err[512];
    snprintf(path, sizeof path, "/api/runs/%lld/events", f->run_id);
    int refused = 0;
    sse_init(&f->sse, on_event, f);
    while (!f->final) {
        struct cli_stream s = {.sink = sse_sink, .ud = f};
        const char *hdrs[] = {last, "Accept: text/event-stream", NULL};
        snprintf(last, sizeof last, "Last-Event-ID: %lld", f->sse.last_id);
        long status = cli_stream_get(ctx, path, f->sse.last_id ? hdrs : hdrs + 1, &s, err,
                                     sizeof err);
        if (status == 0 && ++refused <= 3) {
            sleep(1); /* the daemon restarting: its runs survive, so wait for it */
            continue;
        }
        if (status != 200) {
            if (f->tty)
                putchar('\n');
            cli_stream_error(&s, status, err);
            sse_free(&f->sse);
            return -1;
        }
        refused = 0;
        /* A stream that ended before the final status was cut (a proxy, a
         * restart): the parser keeps its last id, so the next one resumes. */
    }
    sse_free(&f->sse);
    if (f->tty)
        putchar('\n');
    return 0;
}

int cmd_generate(const struct cli_ctx *ctx, const struct cli_args *a)
{
    long long tid;
    if (args_parse_id(a->pos[0], &tid) < 0)
        return usage_error("template id must be a positive integer, not \"%s\"", a->pos[0]);
    const char *theme = args_get(a, "theme"), *album = args_get(a, "album");
    if (!theme)
        return usage_error("generate needs --theme%s", "");
    if (!album)
        return usage_error("generate needs --album%s", "");
    json_t *body = json_pack("{ssss}", "user_theme", theme, "album_name", album);
    static const char *const ints[] = {"seed", "priority", "steps"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *v = args_get(a, ints[i]);
        long long n;
        if (!v)
            continue;
        if (args_parse_int(v, &n) < 0) {
            json_decref(body);
            fprintf(stderr, "setforge: --%s must be an integer, not \"%s\" (see setforge help)\n",
                    ints[i], v);
            return CLI_USAGE;
        }
        json_object_set_new(body, ints[i], json_integer(n));
    }
    char path[96];
    snprintf(path, sizeof path, "/api/batch-templates/%lld/generate", tid);
    json_t *doc = cli_call(ctx, "POST", path, body, NULL);
    if (!doc)
        return CLI_FAILED;
    const json_t *run = json_object_get(doc, "run");
    long long rid = int_of(run, "id");
    if (!args_has(a, "wait")) {
        if (ctx->json)
            cli_print_json(doc);
        else
            printf("run %lld queued: %lld items of \"%s\" in the theme \"%s\"; album \"%s\"\n", rid,
                   int_of(run, "total_items"), str_of(json_object_get(doc, "template"), "name"),
                   theme, album);
        json_decref(doc);
        return CLI_OK;
    }
    struct follow f = {.run_id = rid, .total = int_of(run, "total_items"), .eta_s = -1};
    json_decref(doc);
    f.tty = !ctx->json && isatty(STDOUT_FILENO);
    f.quiet = ctx->json;
    snprintf(f.status, sizeof f.status, "queued");
    if (follow_run(ctx, &f) < 0)
        return CLI_FAILED;
    snprintf(path, sizeof path, "/api/runs/%lld", rid);
    json_t *final = cli_call(ctx, "GET", path, NULL, NULL);
    if (!final)
        return CLI_FAILED;
    const char *status = str_of(final, "status");
    if (ctx->json) {
        cli_print_json(final);
    } else {
        printf("run %lld %s: %lld done, %lld failed, %lld canceled", rid, status,
               int_of(final, "completed_items"), int_of(final, "failed_items"),
               int_of(final, "canceled_items"));
        if (json_is_integer(json_object_get(final, "album_id")))
            printf("; album %lld", int_of(final, "album_id"));
        printf("\n");
        if (*str_of(final, "error_message"))
            printf("  %s\n", str_of(final, "error_message"));
    }
    int rc = strcmp(status, "completed") == 0 ? CLI_OK
             : strcmp(status, "canceled") == 0 ? CLI_CANCELED : CLI_FAILED;
    json_decref(final);
    return rc;
}

int cmd_runs(const struct cli_ctx *ctx, const struct cli_args *a)
{
    char q[64], path[192];
    if (page_query(a, q, sizeof q))
        return CLI_USAGE;
    const char *status = args_get(a, "status");
    char *esc = NULL;
    if (status) {
        /* percent-encoded: a status is a word, but a typo such as "a&b"
         * must reach the API as typed, for its 400 to name it */
        esc = http_url_escape(status);
    }
    snprintf(path, sizeof path, "/api/runs?%s%s%s", q, esc ? "&status=" : "", esc ? esc : "");
    free(esc);
    json_t *doc = cli_call(ctx, "GET", path, NULL, NULL);
    if (!doc)
        return CLI_FAILED;
    if (printed_as_json(ctx, doc))
        return CLI_OK;
    static const char *const titles[] = {"ID", "TEMPLATE", "STATUS", "DONE", "FAILED", "TOTAL",
                                         "PRIORITY", "ALBUM", "CREATED"};
    struct table t;
    table_init(&t, 9, titles);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(doc, "runs"), i, row) {
        char b[6][24];
        const char *cells[] = {cell(row, "id", b[0], 24), cell(row, "template_id", b[1], 24),
                               str_of(row, "status"), cell(row, "completed_items", b[2], 24),
                               cell(row, "failed_items", b[3], 24), cell(row, "total_items", b[4], 24),
                               cell(row, "priority", b[5], 24), str_of(row, "album_name"),
                               str_of(row, "created_at")};
        table_add(&t, cells);
    }
    table_print(&t, stdout);
    table_free(&t);
    page_footer(doc, "runs");
    json_decref(doc);
    return CLI_OK;
}

int cmd_run_action(const struct cli_ctx *ctx, const struct cli_args *a)
{
    const char *verb = a->pos[0];
    long long id;
    if (args_parse_id(a->pos[1], &id) < 0)
        return usage_error("run id must be a positive integer, not \"%s\"", a->pos[1]);
    char path[96];
    snprintf(path, sizeof path, "/api/runs/%lld/%s", id, verb);
    json_t *doc = cli_call(ctx, "POST", path, NULL, NULL);
    if (!doc)
        return CLI_FAILED;
    if (ctx->json) {
        cli_print_json(doc);
    } else {
        const json_t *run = json_object_get(doc, "run");
        printf("run %lld is %s: %s\n", id, str_of(run, "status"), str_of(doc, "message"));
    }
    json_decref(doc);
    return CLI_OK;
}

/* ---- download: the zip, streamed into a file ---- */

struct file_sink {
    FILE *f;
    int failed;
};

static int file_write(const char *p, size_t n, void *ud)
{
    struct file_sink *s = ud;
    if (fwrite(p, 1, n, s->f) != n) {
        s->failed = 1;
        return -1;
    }
    return 0;
}

int cmd_download(const struct cli_ctx *ctx, const struct cli_args *a)
{
    long long id;
    if (args_parse_id(a->pos[0], &id) < 0)
        return usage_error("album id must be a positive integer, not \"%s\"", a->pos[0]);
    char def[64], path[96], err[512];
    snprintf(def, sizeof def, "album-%lld.zip", id);
    const char *out = args_get(a, "output");
    if (!out)
        out = def;
    /* Written beside the target and renamed once whole: an interrupted or
     * refused download never leaves a file that looks like an archive. */
    char *part = xasprintf("%s.part", out);
    struct file_sink fs = {fopen(part, "wb"), 0};
    if (!fs.f) {
        fprintf(stderr, "setforge: cannot write %s: %s\n", part, strerror(errno));
        free(part);
        return CLI_FAILED;
    }
    snprintf(path, sizeof path, "/api/albums/%lld/download.zip", id);
    struct cli_stream s = {.sink = file_write, .ud = &fs};
    long status = cli_stream_get(ctx, path, NULL, &s, err, sizeof err);
    long long bytes = (long long)ftell(fs.f);
    int closed = fclose(fs.f) == 0;
    int rc = CLI_FAILED;
    if (status != 200) {
        cli_stream_error(&s, status, err);
    } else if (fs.failed || !closed) {
        fprintf(stderr, "setforge: cannot write %s: %s\n", part, strerror(errno));
    } else if (rename(part, out) < 0) {
        fprintf(stderr, "setforge: cannot rename %s to %s: %s\n", part, out, strerror(errno));
    } else {
        rc = CLI_OK;
        if (ctx->json) {
            json_t *doc = json_pack("{sIsssI}", "album_id", (json_int_t)id, "file", out, "bytes",
                                    (json_int_t)bytes);
            cli_print_json(doc);
            json_decref(doc);
        } else
            printf("wrote %s (%lld bytes)\n", out, bytes);
    }
    if (rc != CLI_OK)
        unlink(part);
    free(part);
    return rc;
}
