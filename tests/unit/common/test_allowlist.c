/*
 * Tests for common/allowlist.c: DROVER_ALLOW_DIAL parsing (every entry form,
 * every way an entry can be wrong, the entry cap) and matching (exact
 * addresses, CIDR prefixes on and off byte boundaries, ports, families).
 * The allowlist is a security boundary, so refusals matter as much as
 * matches.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/allowlist.h"

static struct allowlist al;

static void parse_ok(const char *spec, size_t n)
{
    const char *why = NULL;
    ck_assert_msg(allowlist_parse(spec, &al, &why) == 0, "%s refused: %s", spec, why);
    ck_assert_uint_eq(al.n, n);
    ck_assert_ptr_null(allowlist_check(spec));
}

static void parse_bad(const char *spec)
{
    const char *why = NULL;
    ck_assert_msg(allowlist_parse(spec, &al, &why) == -1, "%s was accepted", spec);
    ck_assert_msg(why && *why, "no reason for %s", spec);
    const char *c = allowlist_check(spec);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, why);
}

static bool allowed(const char *target)
{
    struct netaddr a;
    const char *why = NULL;
    ck_assert_msg(netaddr_parse(target, &a, &why) == 0, "%s: %s", target, why);
    return allowlist_match(&al, &a);
}

START_TEST(exact_ip_and_port)
{
    parse_ok("10.0.0.1:443", 1);
    ck_assert(allowed("10.0.0.1:443"));
    ck_assert(!allowed("10.0.0.1:444"));
    ck_assert(!allowed("10.0.0.1:80"));
    ck_assert(!allowed("10.0.0.2:443"));
    ck_assert(!allowed("10.0.0.0:443"));
    ck_assert(!allowed("11.0.0.1:443"));
    ck_assert(!allowed("[::ffff:10.0.0.1]:443"));   /* another family */
    ck_assert(!allowed("[::1]:443"));
}
END_TEST

START_TEST(several_entries)
{
    parse_ok("10.0.0.1:443, 10.0.0.2:6443,,  [::1]:8080 ,localhost:22", 4);
    ck_assert(allowed("10.0.0.1:443"));
    ck_assert(allowed("10.0.0.2:6443"));
    ck_assert(!allowed("10.0.0.2:443"));       /* ports are per entry */
    ck_assert(!allowed("10.0.0.1:6443"));
    ck_assert(allowed("[::1]:8080"));
    ck_assert(allowed("127.0.0.1:22"));
    ck_assert(!allowed("127.0.0.1:8080"));
    ck_assert(!allowed("[::1]:22"));
}
END_TEST

START_TEST(cidr_prefixes)
{
    parse_ok("10.0.0.0/8:443", 1);
    ck_assert(allowed("10.0.0.1:443"));
    ck_assert(allowed("10.255.255.255:443"));
    ck_assert(!allowed("11.0.0.0:443"));
    ck_assert(!allowed("9.255.255.255:443"));
    ck_assert(!allowed("10.1.2.3:444"));

    parse_ok("192.168.7.0/24:80", 1);
    ck_assert(allowed("192.168.7.0:80"));
    ck_assert(allowed("192.168.7.255:80"));
    ck_assert(!allowed("192.168.6.255:80"));
    ck_assert(!allowed("192.168.8.0:80"));

    /* Host bits in the entry do not matter. */
    parse_ok("192.168.7.99/24:80", 1);
    ck_assert(allowed("192.168.7.1:80"));

    parse_ok("172.16.5.4/32:22", 1);
    ck_assert(allowed("172.16.5.4:22"));
    ck_assert(!allowed("172.16.5.5:22"));

    parse_ok("0.0.0.0/0:443", 1);
    ck_assert(allowed("1.2.3.4:443"));
    ck_assert(allowed("255.255.255.255:443"));
    ck_assert(!allowed("1.2.3.4:80"));
    ck_assert(!allowed("[::1]:443"));           /* /0 covers one family only */
}
END_TEST

/* Prefixes that end inside a byte compare only the leading bits. */
START_TEST(cidr_prefixes_inside_a_byte)
{
    parse_ok("172.16.0.0/12:6443", 1);
    ck_assert(allowed("172.16.0.1:6443"));
    ck_assert(allowed("172.31.255.255:6443"));
    ck_assert(!allowed("172.32.0.0:6443"));
    ck_assert(!allowed("172.15.255.255:6443"));

    parse_ok("10.0.0.128/25:1", 1);
    ck_assert(allowed("10.0.0.128:1"));
    ck_assert(allowed("10.0.0.255:1"));
    ck_assert(!allowed("10.0.0.127:1"));

    parse_ok("128.0.0.0/1:1", 1);
    ck_assert(allowed("200.1.1.1:1"));
    ck_assert(!allowed("127.255.255.255:1"));

    parse_ok("10.0.0.6/31:1", 1);
    ck_assert(allowed("10.0.0.6:1"));
    ck_assert(allowed("10.0.0.7:1"));
    ck_assert(!allowed("10.0.0.5:1"));
    ck_assert(!allowed("10.0.0.8:1"));
}
END_TEST

START_TEST(ipv6)
{
    parse_ok("[fd00:1:2:3::/64]:443", 1);
    ck_assert(allowed("[fd00:1:2:3::1]:443"));
    ck_assert(allowed("[fd00:1:2:3:ffff:ffff:ffff:ffff]:443"));
    ck_assert(!allowed("[fd00:1:2:4::1]:443"));
    ck_assert(!allowed("[fd00:1:2:3::1]:80"));
    ck_assert(!allowed("10.0.0.1:443"));

    parse_ok("[2001:db8::17]:6443", 1);
    ck_assert(allowed("[2001:db8::17]:6443"));
    ck_assert(!allowed("[2001:db8::18]:6443"));

    parse_ok("[fd00::/7]:1", 1);
    ck_assert(allowed("[fc00::1]:1"));
    ck_assert(allowed("[fdff::1]:1"));
    ck_assert(!allowed("[fe00::1]:1"));

    parse_ok("[::/0]:9", 1);
    ck_assert(allowed("[2001:db8::1]:9"));
    ck_assert(!allowed("1.2.3.4:9"));

    parse_ok("[::1/128]:9", 1);
    ck_assert(allowed("[::1]:9"));
    ck_assert(!allowed("[::2]:9"));
}
END_TEST

START_TEST(invalid_entries)
{
    parse_bad("10.0.0.0/33:443");
    parse_bad("10.0.0.0/-1:443");
    parse_bad("10.0.0.0/:443");
    parse_bad("10.0.0.0/8x:443");
    parse_bad("[fd00::/129]:443");
    parse_bad("kubernetes.default.svc:443");
    parse_bad("example.com:443");
    parse_bad("10.0.0.1");
    parse_bad("10.0.0.1:");
    parse_bad(":443");
    parse_bad("10.0.0.1:0");
    parse_bad("10.0.0.1:65536");
    parse_bad("10.0.0.1:-443");
    parse_bad("10.0.0.1:https");
    parse_bad("10.0.0.1:443x");
    parse_bad("[::1]");
    parse_bad("10.0.0.256:443");
    /* One bad entry spoils the whole list. */
    parse_bad("10.0.0.1:443,bad:1,10.0.0.2:443");
    parse_bad("10.0.0.1:443,10.0.0.2");
    /* An over-long entry is refused, not truncated. */
    char lng[200];
    memset(lng, '1', 150);
    snprintf(lng + 150, 50, ":443");
    parse_bad(lng);
}
END_TEST

START_TEST(entry_cap)
{
    char spec[ALLOWLIST_MAX * 24 + 64];
    size_t off = 0;
    for (int i = 0; i < ALLOWLIST_MAX; i++)
        off += (size_t)snprintf(spec + off, sizeof(spec) - off, "%s10.0.%d.%d:443",
                                i ? "," : "", i / 250, i % 250);
    parse_ok(spec, ALLOWLIST_MAX);
    ck_assert(allowed("10.0.0.0:443"));
    char last[32];
    snprintf(last, sizeof(last), "10.0.%d.%d:443", (ALLOWLIST_MAX - 1) / 250,
             (ALLOWLIST_MAX - 1) % 250);
    ck_assert(allowed(last));
    snprintf(spec + off, sizeof(spec) - off, ",10.9.9.9:443");
    parse_bad(spec);
}
END_TEST

START_TEST(empty_spec_allows_nothing)
{
    parse_ok("", 0);
    ck_assert(!allowed("127.0.0.1:443"));
    parse_ok(NULL, 0);
    ck_assert(!allowed("10.0.0.1:443"));
    ck_assert(!allowed("[::1]:443"));
    parse_ok(" , ,,", 0);
    ck_assert(!allowed("127.0.0.1:443"));
}
END_TEST

Suite *suite_common_allowlist(void)
{
    Suite *s = suite_create("common_allowlist");
    TCase *tc = tcase_create("allowlist");
    tcase_add_test(tc, exact_ip_and_port);
    tcase_add_test(tc, several_entries);
    tcase_add_test(tc, cidr_prefixes);
    tcase_add_test(tc, cidr_prefixes_inside_a_byte);
    tcase_add_test(tc, ipv6);
    tcase_add_test(tc, invalid_entries);
    tcase_add_test(tc, entry_cap);
    tcase_add_test(tc, empty_spec_allows_nothing);
    suite_add_tcase(s, tc);
    return s;
}
