/*
 * table.h: the aligned tables the client prints for people (`setforge runs`,
 * `templates`, ...). Rows are collected first, then printed with every
 * column as wide as its widest cell (counted in UTF-8 characters, so a name
 * with accents does not push the next column), the last column unpadded.
 * Cells are copied; a NULL cell prints as "-".
 */
#ifndef SF_CLI_TABLE_H
#define SF_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12

struct table {
    int ncols;
    size_t nrows, cap; /* rows[0] is the header */
    char **cells;      /* nrows * ncols, row-major */
};

/* A table with these column titles (ncols of them, at most TABLE_MAX_COLS). */
void table_init(struct table *t, int ncols, const char *const *titles);
/* Appends a row of ncols cells (copied). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);

/* Characters in a UTF-8 string (continuation bytes not counted). */
size_t table_text_width(const char *s);

#endif
