/*
 * Tests for common/hmap.c: put/get/del/replace, key copies, growth far past
 * the first table with deletes mixed in, iteration, NULL values and absent
 * keys.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"

static void *V(uintptr_t n)
{
    return (void *)n;
}

START_TEST(put_get_del_replace)
{
    struct hmap *m = hmap_new();
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(hmap_count(m), 0);
    ck_assert_ptr_null(hmap_get(m, "a"));
    ck_assert_ptr_null(hmap_del(m, "a"));       /* empty map, no table yet */

    ck_assert_ptr_null(hmap_put(m, "a", V(1)));
    ck_assert_ptr_null(hmap_put(m, "b", V(2)));
    ck_assert_uint_eq(hmap_count(m), 2);
    ck_assert_ptr_eq(hmap_get(m, "a"), V(1));
    ck_assert_ptr_eq(hmap_get(m, "b"), V(2));

    ck_assert_ptr_eq(hmap_put(m, "a", V(3)), V(1));    /* replace: old back */
    ck_assert_uint_eq(hmap_count(m), 2);
    ck_assert_ptr_eq(hmap_get(m, "a"), V(3));

    ck_assert_ptr_eq(hmap_del(m, "a"), V(3));
    ck_assert_ptr_null(hmap_get(m, "a"));
    ck_assert_ptr_null(hmap_del(m, "a"));
    ck_assert_uint_eq(hmap_count(m), 1);
    ck_assert_ptr_eq(hmap_get(m, "b"), V(2));

    ck_assert_ptr_null(hmap_put(m, "a", V(4)));        /* back after delete */
    ck_assert_ptr_eq(hmap_get(m, "a"), V(4));
    hmap_free(m);
    hmap_free(NULL);
}
END_TEST

START_TEST(keys_are_copied_and_compared_whole)
{
    struct hmap *m = hmap_new();
    char key[32];
    snprintf(key, sizeof(key), "tunnel-1");
    hmap_put(m, key, V(1));
    snprintf(key, sizeof(key), "tunnel-2");  /* the caller reuses its buffer */
    ck_assert_ptr_eq(hmap_get(m, "tunnel-1"), V(1));
    ck_assert_ptr_null(hmap_get(m, key));
    /* Prefixes, extensions and case are different keys. */
    ck_assert_ptr_null(hmap_get(m, "tunnel-"));
    ck_assert_ptr_null(hmap_get(m, "tunnel-11"));
    ck_assert_ptr_null(hmap_get(m, "TUNNEL-1"));
    hmap_put(m, "", V(7));               /* the empty key is a key */
    ck_assert_ptr_eq(hmap_get(m, ""), V(7));
    ck_assert_uint_eq(hmap_count(m), 2);
    hmap_free(m);
}
END_TEST

START_TEST(null_values_and_absent_keys)
{
    struct hmap *m = hmap_new();
    /* A NULL value is stored like any other: it counts and can be replaced. */
    ck_assert_ptr_null(hmap_put(m, "n", NULL));
    ck_assert_uint_eq(hmap_count(m), 1);
    ck_assert_ptr_null(hmap_get(m, "n"));
    ck_assert_ptr_null(hmap_put(m, "n", V(5)));
    ck_assert_uint_eq(hmap_count(m), 1);
    ck_assert_ptr_eq(hmap_del(m, "n"), V(5));
    ck_assert_uint_eq(hmap_count(m), 0);
    ck_assert_ptr_null(hmap_put(m, "n", NULL));
    ck_assert_ptr_null(hmap_del(m, "n"));
    ck_assert_uint_eq(hmap_count(m), 0);
    /* Absent keys in a populated table. */
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        hmap_put(m, k, V((uintptr_t)i + 1));
    }
    ck_assert_ptr_null(hmap_get(m, "k100"));
    ck_assert_ptr_null(hmap_del(m, "k-1"));
    ck_assert_uint_eq(hmap_count(m), 100);
    hmap_free(m);
}
END_TEST

#define BIG 25000

static void key_of(char *k, size_t cap, int i)
{
    snprintf(k, cap, "c-%07d.cluster", i);
}

START_TEST(growth_keeps_every_key)
{
    struct hmap *m = hmap_new();
    char k[32];
    for (int i = 0; i < BIG; i++) {
        key_of(k, sizeof(k), i);
        ck_assert_ptr_null(hmap_put(m, k, V((uintptr_t)i + 1)));
        ck_assert_uint_eq(hmap_count(m), (size_t)i + 1);
        /* The newest key and an early one survive every resize. */
        ck_assert_ptr_eq(hmap_get(m, k), V((uintptr_t)i + 1));
        ck_assert_ptr_eq(hmap_get(m, "c-0000000.cluster"), V(1));
    }
    for (int i = 0; i < BIG; i++) {
        key_of(k, sizeof(k), i);
        ck_assert_ptr_eq(hmap_get(m, k), V((uintptr_t)i + 1));
    }
    key_of(k, sizeof(k), BIG);
    ck_assert_ptr_null(hmap_get(m, k));
    hmap_free(m);
}
END_TEST

/* Deletes interleaved with the inserts that trigger resizes: a table
 * rebuilt while chains are short must not lose or resurrect anything. */
START_TEST(deletes_during_growth)
{
    struct hmap *m = hmap_new();
    static bool present[BIG];
    memset(present, 0, sizeof(present));
    char k[32];
    size_t n = 0;
    unsigned seed = 99;
    for (int i = 0; i < BIG; i++) {
        key_of(k, sizeof(k), i);
        hmap_put(m, k, V((uintptr_t)i + 1));
        present[i] = true;
        n++;
        if (i % 3 == 2) {
            int j = rand_r(&seed) % (i + 1);
            key_of(k, sizeof(k), j);
            void *v = hmap_del(m, k);
            if (present[j]) {
                ck_assert_ptr_eq(v, V((uintptr_t)j + 1));
                present[j] = false;
                n--;
            } else {
                ck_assert_ptr_null(v);
            }
        }
        ck_assert_uint_eq(hmap_count(m), n);
    }
    for (int i = 0; i < BIG; i++) {
        key_of(k, sizeof(k), i);
        ck_assert_ptr_eq(hmap_get(m, k), present[i] ? V((uintptr_t)i + 1) : NULL);
    }
    /* Delete everything, then the map is usable again. */
    for (int i = 0; i < BIG; i++) {
        key_of(k, sizeof(k), i);
        hmap_del(m, k);
    }
    ck_assert_uint_eq(hmap_count(m), 0);
    hmap_put(m, "again", V(1));
    ck_assert_ptr_eq(hmap_get(m, "again"), V(1));
    hmap_free(m);
}
END_TEST

struct visit {
    int *seen;
    int n;
    int bad;
};

static void count_visit(const char *key, void *val, void *ud)
{
    struct visit *v = ud;
    int i;
    if (sscanf(key, "c-%d.cluster", &i) != 1 || i < 0 || i >= BIG ||
        val != V((uintptr_t)i + 1)) {
        v->bad++;
        return;
    }
    v->seen[i]++;
    v->n++;
}

START_TEST(each_visits_every_entry_once)
{
    struct hmap *m = hmap_new();
    struct visit v = { calloc(BIG, sizeof(int)), 0, 0 };
    ck_assert_ptr_nonnull(v.seen);
    hmap_each(m, count_visit, &v);      /* empty: nothing */
    ck_assert_int_eq(v.n, 0);
    char k[32];
    for (int i = 0; i < 12000; i++) {
        key_of(k, sizeof(k), i);
        hmap_put(m, k, V((uintptr_t)i + 1));
    }
    for (int i = 0; i < 12000; i += 4) {
        key_of(k, sizeof(k), i);
        hmap_del(m, k);
    }
    hmap_each(m, count_visit, &v);
    ck_assert_int_eq(v.bad, 0);
    ck_assert_int_eq(v.n, 9000);
    for (int i = 0; i < 12000; i++)
        ck_assert_int_eq(v.seen[i], i % 4 == 0 ? 0 : 1);
    free(v.seen);
    hmap_free(m);
}
END_TEST

Suite *suite_common_hmap(void)
{
    Suite *s = suite_create("common_hmap");
    TCase *tc = tcase_create("hmap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, put_get_del_replace);
    tcase_add_test(tc, keys_are_copied_and_compared_whole);
    tcase_add_test(tc, null_values_and_absent_keys);
    tcase_add_test(tc, growth_keeps_every_key);
    tcase_add_test(tc, deletes_during_growth);
    tcase_add_test(tc, each_visits_every_entry_once);
    suite_add_tcase(s, tc);
    return s;
}
