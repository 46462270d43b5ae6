/*
 * table: aligned text tables. See table.h.
 */
#include "cli/table.h"

#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, int ncols, const char *const *heads)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
    for (int i = 0; i < t->ncols; i++)
        t->heads[i] = heads[i];
}

static char *clean_copy(const char *s)
{
    char *c = strdup(s && s[0] ? s : "-");
    for (char *p = c; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

void table_add(struct table *t, const char *const *cells)
{
    if (t->failed)
        return;
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        char **nb = realloc(t->cells, nc * (size_t)t->ncols * sizeof(*nb));
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->cells = nb;
        t->cap = nc;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        row[i] = clean_copy(cells[i]);
        if (!row[i]) {
            while (i-- > 0)
                free(row[i]);
            t->failed = 1;
            return;
        }
    }
    t->nrows++;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

int table_print(const struct table *t, FILE *f)
{
    size_t w[TABLE_MAX_COLS];
    for (int c = 0; c < t->ncols; c++) {
        w[c] = width(t->heads[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (cw > w[c])
                w[c] = cw;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->heads[c]
                                   : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
            if (c == t->ncols - 1) {
                fprintf(f, "%s\n", s);
                continue;
            }
            fprintf(f, "%s%*s", s, (int)(w[c] - width(s) + 3), "");
        }
    }
    return t->failed ? -1 : 0;
}

void table_free(struct table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
