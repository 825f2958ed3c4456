/*
 * test_cli_helpers.c: the pure parts of the terminal client (src/cli/):
 * reading its command line and sizes, the aligned table, the progress bar
 * and durations, and the event-stream parser fed in every cut.
 */
#include <stdlib.h>

#include "cli/args.h"
#include "cli/progress.h"
#include "cli/sse.h"
#include "cli/table.h"
#include "unit.h"

static int parse(struct cli_args *a, const char *line, const char *takes, const char *flags, char *err)
{
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
        argv[argc++] = t;
    err[0] = '\0';
    return args_parse(a, argc, argv, 2, takes, flags, err, 256);
}

static void test_args(void)
{
    struct cli_args a;
    char err[256];
    CHECK(parse(&a, "setforge generate 4 --theme noir --album=Deck --wait --json", " url theme album ",
                " json wait ", err) == 0);
    CHECK(a.npos == 1 && strcmp(a.pos[0], "4") == 0);
    CHECK_STR(args_get(&a, "theme"), "noir");
    CHECK_STR(args_get(&a, "album"), "Deck");
    CHECK(args_has(&a, "wait") && args_has(&a, "json") && !args_has(&a, "url"));
    CHECK(args_get(&a, "them") == NULL); /* no prefix matching */
    CHECK(parse(&a, "setforge generate 4 --thme noir", " theme ", " json ", err) < 0);
    CHECK(strstr(err, "--thme") != NULL);
    CHECK(parse(&a, "setforge generate 4 --theme", " theme ", " json ", err) < 0);
    CHECK(strstr(err, "needs a value") != NULL);
    CHECK(parse(&a, "setforge runs --json=1", " url ", " json ", err) < 0); /* a flag takes no value */
    CHECK(parse(&a, "setforge download 3 -o deck.zip", " output ", "", err) == 0);
    CHECK_STR(args_get(&a, "output"), "deck.zip");
    CHECK(parse(&a, "setforge runs --url a --url b", " url ", "", err) == 0);
    CHECK_STR(args_get(&a, "url"), "b"); /* the last one wins */
    CHECK(parse(&a, "setforge x 1 2 3 4 5", "", "", err) < 0);
    /* a value may look like an option name of another command */
    CHECK(parse(&a, "setforge import f.csv --name --prompt --prompt x", " name prompt ", "", err) == 0);
    CHECK_STR(args_get(&a, "name"), "--prompt");
    CHECK_STR(args_get(&a, "prompt"), "x");

    int w, h;
    CHECK(args_parse_size("512x720", &w, &h) == 0 && w == 512 && h == 720);
    CHECK(args_parse_size("64X64", &w, &h) == 0 && w == 64 && h == 64);
    CHECK(args_parse_size("512", &w, &h) < 0);
    CHECK(args_parse_size("512x", &w, &h) < 0);
    CHECK(args_parse_size("x512", &w, &h) < 0);
    CHECK(args_parse_size("512x720x3", &w, &h) < 0);
    CHECK(args_parse_size("-512x720", &w, &h) < 0);
    CHECK(args_parse_size("512 x720", &w, &h) < 0);
    CHECK(args_parse_size("0x720", &w, &h) < 0);
    CHECK(args_parse_size("999999x1", &w, &h) < 0);
    CHECK(args_parse_size(NULL, &w, &h) < 0);

    long long n;
    CHECK(args_parse_int("-5", &n) == 0 && n == -5);
    CHECK(args_parse_int("42", &n) == 0 && n == 42);
    CHECK(args_parse_int("4.2", &n) < 0 && args_parse_int("", &n) < 0 && args_parse_int("-", &n) < 0);
    CHECK(args_parse_int("99999999999999999999", &n) < 0);
    CHECK(args_parse_id("7", &n) == 0 && n == 7);
    CHECK(args_parse_id("0", &n) < 0 && args_parse_id("-1", &n) < 0 && args_parse_id("abc", &n) < 0);
}

static char *printed(const struct table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    table_print(t, f);
    fclose(f);
    return buf;
}

static void test_table(void)
{
    static const char *const titles[] = {"ID", "NAME", "STATUS"};
    struct table t;
    table_init(&t, 3, titles);
    const char *r1[] = {"1", "Zodiac", "completed"};
    const char *r2[] = {"12", "Tarot — Major", NULL};
    table_add(&t, r1);
    table_add(&t, r2);
    char *out = printed(&t);
    CHECK_STR(out, "ID  NAME           STATUS\n"
                   "1   Zodiac         completed\n"
                   "12  Tarot — Major  -\n");
    free(out);
    table_free(&t);
    CHECK(table_text_width("é—x") == 3);

    /* more rows than the first allocation */
    struct table big;
    table_init(&big, 1, titles);
    for (int i = 0; i < 100; i++) {
        const char *r[] = {"x"};
        table_add(&big, r);
    }
    out = printed(&big);
    CHECK(strlen(out) == 3 + 100 * 2);
    free(out);
    table_free(&big);
}

static void test_progress(void)
{
    char b[256];
    progress_duration(b, sizeof b, 45);
    CHECK_STR(b, "45s");
    progress_duration(b, sizeof b, 185);
    CHECK_STR(b, "3m05s");
    progress_duration(b, sizeof b, 7620);
    CHECK_STR(b, "2h07m");
    progress_duration(b, sizeof b, -1);
    CHECK_STR(b, "?");
    progress_line(b, sizeof b, 10, 4, 1, 10, 65);
    CHECK_STR(b, "[#####-----] 4/10 done  1 failed  ETA 1m05s");
    progress_line(b, sizeof b, 10, 0, 0, 10, -1); /* eta unknown: left out */
    CHECK_STR(b, "[----------] 0/10 done  0 failed");
    progress_line(b, sizeof b, 4, 3, 0, 3, 0);
    CHECK_STR(b, "[####] 3/3 done  0 failed  ETA 0s");
    progress_line(b, sizeof b, 4, 0, 0, 0, -1); /* an empty run is whole */
    CHECK_STR(b, "[####] 0/0 done  0 failed");
    progress_line(b, 8, 30, 1, 0, 2, 5); /* cut, never overrun */
    CHECK(strlen(b) == 7);
}

struct seen {
    char log[1024];
    int n;
};

static void on_event(void *ud, const char *type, const char *data, long long id)
{
    struct seen *s = ud;
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof s->log - len, "%s#%lld[%s];", type, id, data);
    s->n++;
}

static void feed_in_pieces(const char *text, size_t piece, struct seen *s)
{
    struct sse_parser p;
    memset(s, 0, sizeof *s);
    sse_init(&p, on_event, s);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += piece)
        sse_feed(&p, text + i, n - i < piece ? n - i : piece);
    sse_free(&p);
}

static void test_sse(void)
{
    const char *stream = "retry: 2000\n\n"
                         "id: 1\nevent: status\ndata: {\"status\":\"queued\"}\n\n"
                         ": heartbeat\n\n"
                         "id: 2\r\nevent: item\r\ndata: {\"index\":0,\r\ndata: \"x\":1}\r\n\r\n"
                         "id: 3\revent: status\rdata:{\"status\":\"completed\"}\r\r"
                         "data: no type\n\n"
                         "id: 9\nevent: half";
    const char *want = "status#1[{\"status\":\"queued\"}];"
                       "item#2[{\"index\":0,\n\"x\":1}];"
                       "status#3[{\"status\":\"completed\"}];"
                       "message#3[no type];";
    /* every cut gives the same events: one byte at a time, odd sizes, whole */
    static const size_t pieces[] = {1, 2, 3, 7, 64, 100000};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        struct seen s;
        feed_in_pieces(stream, pieces[i], &s);
        CHECK_STR(s.log, want);
        CHECK(s.n == 4); /* the unfinished last event is not handed over */
    }
}

int main(void)
{
    test_args();
    test_table();
    test_progress();
    test_sse();
    UNIT_END("test_cli_helpers");
}
