/*
 * placeholder.c: finding and filling `{column}` placeholders in a template's
 * prompt_template.
 *
 * The syntax follows Python's str.format, which the system we replace used,
 * but forgivingly: where Python raises on a lone `{` or `}`, we keep the
 * brace as text, because prompts are written by people, not programs. One
 * tokenizer serves both the check (at save time) and the render (at
 * generation time), so the two can never disagree about what is a
 * placeholder.
 *
 * Decisions worth knowing:
 *  - `{a{b}`: a `{` met before the closing `}` makes the first `{` literal,
 *    so this is the text "{a" followed by the placeholder {b}.
 *  - `{}` and `{  }` are an unknown placeholder, reported as "{}".
 *  - `theme` always means the run's theme, even when a column is named
 *    "theme"; such a column cannot be referenced.
 */
#include "util/placeholder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

enum tok_kind { TOK_END, TOK_TEXT, TOK_NAME };

struct token {
    enum tok_kind kind;
    const char *s; /* literal text, or the trimmed placeholder name */
    size_t len;
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static struct token make_token(enum tok_kind kind, const char *s, size_t len)
{
    struct token t = {kind, s, len};
    return t;
}

static struct token name_token(const char *s, size_t len)
{
    while (len && is_blank(*s)) {
        s++;
        len--;
    }
    while (len && is_blank(s[len - 1]))
        len--;
    return make_token(TOK_NAME, s, len);
}

/* The next piece of tmpl at *cursor, advancing *cursor past it. */
static struct token next_token(const char **cursor)
{
    const char *p = *cursor;
    if (*p == '\0')
        return make_token(TOK_END, p, 0);
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
        *cursor = p + 2;
        return make_token(TOK_TEXT, p, 1);
    }
    if (p[0] == '{') {
        const char *close = p + 1 + strcspn(p + 1, "{}");
        if (*close == '}') {
            *cursor = close + 1;
            return name_token(p + 1, (size_t)(close - p - 1));
        }
        *cursor = p + 1;
        return make_token(TOK_TEXT, p, 1);
    }
    size_t n = strcspn(p, "{}");
    if (n == 0) /* a lone '}' */
        n = 1;
    *cursor = p + n;
    return make_token(TOK_TEXT, p, n);
}

static int is_theme(const struct token *t)
{
    return t->len == 5 && memcmp(t->s, "theme", 5) == 0;
}

static int is_column(const struct token *t, const json_t *columns)
{
    size_t i;
    json_t *col;
    json_array_foreach(columns, i, col) {
        const char *name = json_string_value(col);
        if (name && json_string_length(col) == t->len && memcmp(name, t->s, t->len) == 0)
            return 1;
    }
    return 0;
}

/* Unknown names seen so far, to list each once. Templates are at most a few
 * thousand characters, so a linear scan is plenty. */
struct unknowns {
    struct token *v;
    size_t n, cap;
};

static int unknowns_has(const struct unknowns *u, const struct token *t)
{
    for (size_t i = 0; i < u->n; i++) {
        if (u->v[i].len == t->len && memcmp(u->v[i].s, t->s, t->len) == 0)
            return 1;
    }
    return 0;
}

static void unknowns_add(struct unknowns *u, const struct token *t)
{
    if (unknowns_has(u, t))
        return;
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 8;
        u->v = xrealloc(u->v, u->cap * sizeof *u->v);
    }
    u->v[u->n++] = *t;
}

static void describe_unknowns(const struct unknowns *u, const json_t *columns,
                              struct strbuf *sb)
{
    sb_puts(sb, u->n == 1 ? "unknown placeholder " : "unknown placeholders ");
    for (size_t i = 0; i < u->n; i++) {
        if (i)
            sb_puts(sb, ", ");
        sb_putc(sb, '{');
        sb_append(sb, u->v[i].s, u->v[i].len);
        sb_putc(sb, '}');
    }
    sb_puts(sb, "; columns are: ");
    if (json_array_size(columns) == 0)
        sb_puts(sb, "(none)");
    size_t i;
    json_t *col;
    json_array_foreach(columns, i, col) {
        const char *name = json_string_value(col);
        if (i)
            sb_puts(sb, ", ");
        if (name)
            sb_append(sb, name, json_string_length(col));
    }
}

sf_status placeholders_check(const char *tmpl, const json_t *columns, char *err,
                             size_t errlen)
{
    struct unknowns u = {NULL, 0, 0};
    const char *cursor = tmpl ? tmpl : "";
    for (struct token t = next_token(&cursor); t.kind != TOK_END; t = next_token(&cursor)) {
        if (t.kind == TOK_NAME && (t.len == 0 || (!is_theme(&t) && !is_column(&t, columns))))
            unknowns_add(&u, &t);
    }
    if (u.n == 0)
        return SF_OK;

    struct strbuf sb;
    sb_init(&sb);
    describe_unknowns(&u, columns, &sb);
    if (err && errlen)
        snprintf(err, errlen, "%s", sb.data);
    sb_free(&sb);
    free(u.v);
    return SF_EINVAL;
}

static void render_name(struct strbuf *sb, const struct token *t, const json_t *item,
                        const char *theme)
{
    if (t->len == 0)
        return;
    if (is_theme(t)) {
        if (theme)
            sb_puts(sb, theme);
        return;
    }
    const json_t *v = json_object_getn(item, t->s, t->len);
    if (json_is_string(v))
        sb_append(sb, json_string_value(v), json_string_length(v));
}

char *placeholders_render(const char *tmpl, const json_t *item, const char *theme)
{
    struct strbuf sb;
    sb_init(&sb);
    const char *cursor = tmpl ? tmpl : "";
    for (struct token t = next_token(&cursor); t.kind != TOK_END; t = next_token(&cursor)) {
        if (t.kind == TOK_TEXT)
            sb_append(&sb, t.s, t.len);
        else
            render_name(&sb, &t, item, theme);
    }
    return sb_detach(&sb, NULL);
}
