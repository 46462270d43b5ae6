/*
 * cli/table.c: column alignment, missing cells, control characters.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/table.h"

static char *render(struct table *t)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_int_eq(table_print(t, f), 0);
    fclose(f);
    return out;
}

START_TEST(aligns_columns)
{
    static const char *const heads[] = { "ID", "NAME", "STATE" };
    struct table t;
    table_init(&t, 3, heads);
    table_add(&t, (const char *const[]){ "c-1", "prod-eu-west", "active" });
    table_add(&t, (const char *const[]){ "c-22222", NULL, "" });
    char *out = render(&t);
    ck_assert_str_eq(out, "ID        NAME           STATE\n"
                          "c-1       prod-eu-west   active\n"
                          "c-22222   -              -\n");
    free(out);
    table_free(&t);
}
END_TEST

START_TEST(header_only_and_hostile_cells)
{
    static const char *const heads[] = { "A", "B" };
    struct table t;
    table_init(&t, 2, heads);
    char *out = render(&t);
    ck_assert_str_eq(out, "A   B\n");
    free(out);
    /* A server value cannot move the cursor or add a line. */
    table_add(&t, (const char *const[]){ "x\033[2J", "y\nz" });
    /* UTF-8 counts one column per character. */
    table_add(&t, (const char *const[]){ "h\xc3\xa9llo", "w" });
    out = render(&t);
    ck_assert_str_eq(out, "A       B\n"
                          "x?[2J   y?z\n"
                          "h\xc3\xa9llo   w\n");
    free(out);
    table_free(&t);
    table_free(NULL);
}
END_TEST

Suite *suite_cli_table(void)
{
    Suite *s = suite_create("cli_table");
    TCase *t = tcase_create("table");
    tcase_add_test(t, aligns_columns);
    tcase_add_test(t, header_only_and_hostile_cells);
    suite_add_tcase(s, t);
    return s;
}
