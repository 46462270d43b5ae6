/*
 * table: droverctl's aligned text tables: a header row in capitals and
 * one row per item, columns padded to their widest cell and separated by
 * three spaces, the last column unpadded. Pure; owns copies of its cells.
 */
#ifndef DROVER_CLI_TABLE_H
#define DROVER_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TABLE_MAX_COLS 12

struct table {
    int ncols;
    const char *heads[TABLE_MAX_COLS];
    char **cells;           /* nrows * ncols, row-major */
    size_t nrows, cap;
    int failed;             /* out of memory: print says so */
};

/* heads: ncols static strings. */
void table_init(struct table *t, int ncols, const char *const *heads);
/* Adds a row of ncols cells (NULL shows as "-"); cells are copied and
 * control characters replaced by '?', so a server value cannot move the
 * terminal's cursor. */
void table_add(struct table *t, const char *const *cells);
/* Prints it; -1 if a row could not be added (out of memory). */
int table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

#endif
