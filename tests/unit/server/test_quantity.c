/*
 * Tests of server/quantity.c: Kubernetes quantities parsed, summed and
 * formatted back.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "server/quantity.h"

static int64_t parse(const char *s, enum qty_unit u)
{
    int64_t v = -12345;
    ck_assert_msg(qty_parse(s, u, &v) == 0, "\"%s\" refused", s);
    return v;
}

START_TEST(cpu)
{
    ck_assert_int_eq(parse("4", QTY_MILLI), 4000);
    ck_assert_int_eq(parse("500m", QTY_MILLI), 500);
    ck_assert_int_eq(parse("0.5", QTY_MILLI), 500);
    ck_assert_int_eq(parse("1.25", QTY_MILLI), 1250);
    ck_assert_int_eq(parse("+2", QTY_MILLI), 2000);
    ck_assert_int_eq(parse("0", QTY_MILLI), 0);
    ck_assert_int_eq(parse("1e3", QTY_MILLI), 1000000);
    ck_assert_int_eq(parse("0.0001", QTY_MILLI), 1);     /* rounded up */
}
END_TEST

START_TEST(memory)
{
    ck_assert_int_eq(parse("16Gi", QTY_UNITS), INT64_C(16) << 30);
    ck_assert_int_eq(parse("1.5Ti", QTY_UNITS), INT64_C(3) << 39);
    ck_assert_int_eq(parse("100k", QTY_UNITS), 100000);
    ck_assert_int_eq(parse("128974848", QTY_UNITS), 128974848);
    ck_assert_int_eq(parse("129M", QTY_UNITS), 129000000);
    ck_assert_int_eq(parse("123Mi", QTY_UNITS), INT64_C(123) << 20);
    ck_assert_int_eq(parse("1Ki", QTY_UNITS), 1024);
    ck_assert_int_eq(parse("2Pi", QTY_UNITS), INT64_C(2) << 50);
    ck_assert_int_eq(parse("1Ei", QTY_UNITS), INT64_C(1) << 60);
    ck_assert_int_eq(parse("1E", QTY_UNITS), INT64_C(1000000000000000000));
    ck_assert_int_eq(parse("3G", QTY_UNITS), 3000000000);
    ck_assert_int_eq(parse("1T", QTY_UNITS), INT64_C(1000000000000));
    ck_assert_int_eq(parse("1500m", QTY_UNITS), 2);      /* rounded up */
    ck_assert_int_eq(parse("1E3", QTY_UNITS), 1000);
    ck_assert_int_eq(parse("12e-1", QTY_UNITS), 2);
}
END_TEST

START_TEST(refused)
{
    const char *bad[] = { "", "-1", "Gi", "1Gb", "1 Gi", "1..5", ".", "1Gi ", "abc", "1e",
                          "1e99", "8Ei", "99999999999999999999", "0x10", "1ki", "1.5.Gi",
                          "1Mi1" };
    int64_t v;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(qty_parse(bad[i], QTY_UNITS, &v) < 0, "\"%s\" accepted", bad[i]);
    ck_assert_int_lt(qty_parse(NULL, QTY_UNITS, &v), 0);
    ck_assert_int_lt(qty_parse("9Ei", QTY_MILLI, &v), 0);    /* does not fit in milli */
    char long_text[QTY_MAX_TEXT + 2];
    memset(long_text, '1', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    ck_assert_int_lt(qty_parse(long_text, QTY_UNITS, &v), 0);
}
END_TEST

START_TEST(sums)
{
    int64_t sum = 0;
    ck_assert_int_eq(qty_add(&sum, parse("16Gi", QTY_UNITS)), 0);
    ck_assert_int_eq(qty_add(&sum, parse("16Gi", QTY_UNITS)), 0);
    ck_assert_int_eq(qty_add(&sum, parse("16Gi", QTY_UNITS)), 0);
    char buf[QTY_FMT_MAX];
    ck_assert_int_gt(qty_format_bytes(sum, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "48Gi");
    sum = INT64_MAX - 1;
    ck_assert_int_lt(qty_add(&sum, 2), 0);
    ck_assert_int_eq(sum, INT64_MAX - 1);
}
END_TEST

START_TEST(formatting)
{
    char b[QTY_FMT_MAX];
    ck_assert_int_eq(qty_format_cpu(12000, b, sizeof(b)), 2);
    ck_assert_str_eq(b, "12");
    qty_format_cpu(4500, b, sizeof(b));
    ck_assert_str_eq(b, "4500m");
    qty_format_cpu(0, b, sizeof(b));
    ck_assert_str_eq(b, "0");
    qty_format_bytes(INT64_C(1536) << 20, b, sizeof(b));
    ck_assert_str_eq(b, "1536Mi");
    qty_format_bytes(INT64_C(2) << 40, b, sizeof(b));
    ck_assert_str_eq(b, "2Ti");
    qty_format_bytes(1000, b, sizeof(b));
    ck_assert_str_eq(b, "1000");
    qty_format_bytes(0, b, sizeof(b));
    ck_assert_str_eq(b, "0");
    qty_format_count(330, b, sizeof(b));
    ck_assert_str_eq(b, "330");
    ck_assert_int_lt(qty_format_bytes(INT64_C(48) << 30, b, 4), 0);   /* "48Gi" + NUL */
}
END_TEST

Suite *suite_server_quantity(void)
{
    Suite *s = suite_create("server/quantity");
    TCase *tc = tcase_create("quantity");
    tcase_add_test(tc, cpu);
    tcase_add_test(tc, memory);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, sums);
    tcase_add_test(tc, formatting);
    suite_add_tcase(s, tc);
    return s;
}
