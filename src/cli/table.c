/*
 * table.c: aligned tables for people (table.h).
 */
#include "cli/table.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

size_t table_text_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void table_init(struct table *t, int ncols, const char *const *titles)
{
    t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
    t->nrows = t->cap = 0;
    t->cells = NULL;
    table_add(t, titles);
}

void table_add(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = xstrdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

void table_print(const struct table *t, FILE *out)
{
    size_t width[TABLE_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t w = table_text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * (size_t)t->ncols + (size_t)c];
            fputs(cell, out);
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(width[c] - table_text_width(cell) + 2), "");
        }
        fputc('\n', out);
    }
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}
