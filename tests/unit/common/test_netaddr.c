/*
 * Tests for common/netaddr.c: "host:port" parsing (what is accepted and what
 * is refused, with a reason), formatting round trips, the loopback test, and
 * a listener on the loop that accepts a real connection.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/netaddr.h"
#include "tests/support/unit_net.h"

static void parse_ok(const char *s, int family, const char *ip, int port)
{
    struct netaddr a;
    const char *why = NULL;
    ck_assert_msg(netaddr_parse(s, &a, &why) == 0, "%s refused: %s", s, why);
    ck_assert_int_eq(a.ss.ss_family, family);
    ck_assert_int_eq(netaddr_port(&a), port);
    char got[INET6_ADDRSTRLEN];
    const void *bin = family == AF_INET
                          ? (const void *)&((struct sockaddr_in *)&a.ss)->sin_addr
                          : (const void *)&((struct sockaddr_in6 *)&a.ss)->sin6_addr;
    ck_assert_ptr_nonnull(inet_ntop(family, bin, got, sizeof(got)));
    ck_assert_str_eq(got, ip);
    ck_assert_uint_eq(a.len, family == AF_INET ? sizeof(struct sockaddr_in)
                                               : sizeof(struct sockaddr_in6));
}

static void parse_bad(const char *s)
{
    struct netaddr a;
    const char *why = NULL;
    ck_assert_msg(netaddr_parse(s, &a, &why) == -1, "%s was accepted", s);
    ck_assert_msg(why && *why, "no reason for %s", s);
}

START_TEST(parses_ip_literals_and_localhost)
{
    parse_ok("1.2.3.4:80", AF_INET, "1.2.3.4", 80);
    parse_ok("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
    parse_ok("255.255.255.255:65535", AF_INET, "255.255.255.255", 65535);
    parse_ok("127.0.0.1:00443", AF_INET, "127.0.0.1", 443);
    parse_ok("[::1]:443", AF_INET6, "::1", 443);
    parse_ok("[::]:8080", AF_INET6, "::", 8080);
    parse_ok("[2001:db8::17]:6443", AF_INET6, "2001:db8::17", 6443);
    parse_ok("[::ffff:10.0.0.1]:22", AF_INET6, "::ffff:10.0.0.1", 22);
    parse_ok("localhost:6443", AF_INET, "127.0.0.1", 6443);
}
END_TEST

START_TEST(refuses_bad_ports)
{
    parse_bad("1.2.3.4:65536");
    parse_bad("1.2.3.4:99999");
    parse_bad("1.2.3.4:100000");
    parse_bad("1.2.3.4:-1");
    parse_bad("1.2.3.4:+80");
    parse_bad("1.2.3.4:");
    parse_bad("1.2.3.4:http");
    parse_bad("1.2.3.4:80a");
    parse_bad("1.2.3.4:8 0");
    parse_bad("1.2.3.4: 80");
    parse_bad("[::1]:");
    parse_bad("[::1]:65536");
    parse_bad("localhost:x");
}
END_TEST

START_TEST(refuses_missing_parts_and_names)
{
    parse_bad("1.2.3.4");
    parse_bad("");
    parse_bad(":80");
    parse_bad("[::1]");
    parse_bad("[::1]80");
    parse_bad("[]:80");
    parse_bad("[::1:80");
    parse_bad("example.com:80");
    parse_bad("kubernetes.default.svc:443");
    parse_bad("LOCALHOST:80");          /* only the exact name is special */
    parse_bad("localhost.:80");
    parse_bad("1.2.3:80");
    parse_bad("1.2.3.256:80");
    parse_bad("[fe80::1%eth0]:80");
    /* Over-long hosts are refused, not truncated into something valid. */
    char lng[200];
    memset(lng, '1', sizeof(lng));
    snprintf(lng + 150, 50, ":80");
    parse_bad(lng);
}
END_TEST

START_TEST(from_ip)
{
    struct netaddr a;
    ck_assert_int_eq(netaddr_from_ip("10.1.2.3", 8443, &a), 0);
    ck_assert_int_eq(a.ss.ss_family, AF_INET);
    ck_assert_int_eq(netaddr_port(&a), 8443);
    ck_assert_int_eq(netaddr_from_ip("fd00::1", 0, &a), 0);
    ck_assert_int_eq(a.ss.ss_family, AF_INET6);
    ck_assert_int_eq(netaddr_from_ip("10.1.2.3", -1, &a), -1);
    ck_assert_int_eq(netaddr_from_ip("10.1.2.3", 65536, &a), -1);
    ck_assert_int_eq(netaddr_from_ip("[::1]", 80, &a), -1);
    ck_assert_int_eq(netaddr_from_ip("localhost", 80, &a), -1);
    ck_assert_int_eq(netaddr_from_ip("", 80, &a), -1);
}
END_TEST

START_TEST(format_round_trip)
{
    static const char *const in[] = {
        "1.2.3.4:80", "127.0.0.1:0", "255.255.255.255:65535", "[::1]:443",
        "[2001:db8::17]:6443", "[::]:1", "[fd00:1:2:3:4:5:6:7]:65535",
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct netaddr a, b;
        const char *why = NULL;
        char out[64];
        ck_assert_int_eq(netaddr_parse(in[i], &a, &why), 0);
        netaddr_format(&a, out, sizeof(out));
        ck_assert_str_eq(out, in[i]);
        ck_assert_int_eq(netaddr_parse(out, &b, &why), 0);
        ck_assert_int_eq(memcmp(&a.ss, &b.ss, a.len), 0);
    }
    /* localhost comes back as the address it stands for. */
    struct netaddr a;
    const char *why;
    char out[64];
    ck_assert_int_eq(netaddr_parse("localhost:9", &a, &why), 0);
    netaddr_format(&a, out, sizeof(out));
    ck_assert_str_eq(out, "127.0.0.1:9");
    /* A short buffer is truncated, never overrun. */
    char small[8];
    memset(small, 'Z', sizeof(small));
    ck_assert_int_eq(netaddr_parse("[2001:db8::17]:6443", &a, &why), 0);
    netaddr_format(&a, small, 6);
    ck_assert_int_eq(small[5], '\0');
    ck_assert_int_eq(small[6], 'Z');
}
END_TEST

static bool loopback(const char *s)
{
    struct netaddr a;
    const char *why;
    ck_assert_int_eq(netaddr_parse(s, &a, &why), 0);
    return netaddr_is_loopback(&a);
}

START_TEST(is_loopback)
{
    ck_assert(loopback("127.0.0.1:1"));
    ck_assert(loopback("127.255.3.4:1"));
    ck_assert(loopback("127.0.0.0:1"));
    ck_assert(loopback("localhost:1"));
    ck_assert(loopback("[::1]:1"));
    ck_assert(!loopback("10.0.0.1:1"));
    ck_assert(!loopback("126.255.255.255:1"));
    ck_assert(!loopback("128.0.0.1:1"));
    ck_assert(!loopback("0.0.0.0:1"));
    ck_assert(!loopback("[::]:1"));
    ck_assert(!loopback("[::2]:1"));
    ck_assert(!loopback("[fe80::1]:1"));
}
END_TEST

/* ---- listener ---- */

struct accepted {
    int fd;
    int count;
    void *ud_seen;
};

static void on_accept(struct listener *ls, int fd, void *ud)
{
    struct accepted *a = ud;
    (void)ls;
    a->ud_seen = ud;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd;
    a->count++;
}

static bool accepted_n(void *ud)
{
    return ((struct accepted *)ud)->count >= 1;
}

static void listen_and_connect(const char *spec)
{
    struct loop *l = loop_new();
    ck_assert_ptr_nonnull(l);
    struct netaddr a;
    const char *why = NULL, *err = NULL;
    ck_assert_int_eq(netaddr_parse(spec, &a, &why), 0);
    struct accepted acc = { .fd = -1 };
    struct listener *ls = listener_new(l, &a, on_accept, &acc, &err);
    if (!ls && a.ss.ss_family == AF_INET6) {
        /* No IPv6 loopback in this sandbox: nothing to test. */
        loop_free(l);
        return;
    }
    ck_assert_msg(ls != NULL, "listener_new(%s): %s", spec, err);
    int port = listener_port(ls);
    ck_assert_int_gt(port, 0);

    /* Binding the same port again fails with a reason. */
    struct netaddr same = a;
    if (same.ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&same.ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&same.ss)->sin6_port = htons((uint16_t)port);
    err = NULL;
    ck_assert_ptr_null(listener_new(l, &same, on_accept, &acc, &err));
    ck_assert_ptr_nonnull(err);

    int c = socket(same.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&same.ss, same.len), 0);
    ck_assert(unit_run_until(l, accepted_n, &acc, 5000));
    ck_assert_int_eq(acc.count, 1);
    ck_assert_ptr_eq(acc.ud_seen, &acc);
    /* The accepted descriptor is the other end of our connection. */
    ck_assert_int_eq(write(c, "ping", 4), 4);
    char buf[8] = "";
    ssize_t r = -1;
    for (int i = 0; i < 200 && r < 0; i++) {
        r = read(acc.fd, buf, sizeof(buf));     /* accepted non-blocking */
        if (r < 0)
            usleep(5000);
    }
    ck_assert_int_eq(r, 4);
    ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
    close(c);
    close(acc.fd);
    listener_free(ls);
    listener_free(NULL);
    loop_free(l);
}

START_TEST(listener_on_port_zero_accepts)
{
    listen_and_connect("127.0.0.1:0");
}
END_TEST

START_TEST(listener_ipv6)
{
    listen_and_connect("[::1]:0");
}
END_TEST

/* Several connections queued before the loop runs are all accepted. */
START_TEST(listener_accepts_a_backlog)
{
    struct loop *l = loop_new();
    struct netaddr a;
    const char *why, *err = NULL;
    ck_assert_int_eq(netaddr_parse("127.0.0.1:0", &a, &why), 0);
    struct accepted acc = { .fd = -1 };
    struct listener *ls = listener_new(l, &a, on_accept, &acc, &err);
    ck_assert_ptr_nonnull(ls);
    ((struct sockaddr_in *)&a.ss)->sin_port = htons((uint16_t)listener_port(ls));
    int cs[100];
    for (int i = 0; i < 100; i++) {
        cs[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(cs[i], (struct sockaddr *)&a.ss, a.len), 0);
    }
    int want = 100;
    for (uint64_t end = loop_clock_ms() + 5000; acc.count < want && loop_clock_ms() < end;)
        unit_run_for(l, 1);
    ck_assert_int_eq(acc.count, 100);
    for (int i = 0; i < 100; i++)
        close(cs[i]);
    close(acc.fd);
    listener_free(ls);
    loop_free(l);
}
END_TEST

Suite *suite_common_netaddr(void)
{
    Suite *s = suite_create("common_netaddr");
    TCase *p = tcase_create("parse");
    TCase *ls = tcase_create("listener");
    tcase_set_timeout(ls, 30);
    tcase_add_test(p, parses_ip_literals_and_localhost);
    tcase_add_test(p, refuses_bad_ports);
    tcase_add_test(p, refuses_missing_parts_and_names);
    tcase_add_test(p, from_ip);
    tcase_add_test(p, format_round_trip);
    tcase_add_test(p, is_loopback);
    tcase_add_test(ls, listener_on_port_zero_accepts);
    tcase_add_test(ls, listener_ipv6);
    tcase_add_test(ls, listener_accepts_a_backlog);
    suite_add_tcase(s, p);
    suite_add_tcase(s, ls);
    return s;
}
