/*
 * Tests for common/url.c: the accepted forms with their defaults, each
 * refusal with its reason, and the host/path length limits at and past the
 * boundary.
 */
#include "common/url.h"

#include <check.h>
#include <string.h>

static struct url u;

static void ok(const char *s, const char *scheme, const char *host, int port,
               const char *path, bool is_ip)
{
    const char *why = NULL;
    ck_assert_msg(url_parse(s, &u, &why) == 0, "%s: %s", s, why ? why : "?");
    ck_assert_str_eq(u.scheme, scheme);
    ck_assert_str_eq(u.host, host);
    ck_assert_int_eq(u.port, port);
    ck_assert_str_eq(u.path, path);
    ck_assert(u.host_is_ip == is_ip);
}

static void bad(const char *s, const char *reason)
{
    const char *why = NULL;
    ck_assert_msg(url_parse(s, &u, &why) == -1, "accepted %s", s ? s : "NULL");
    ck_assert_str_eq(why, reason);
    ck_assert_str_eq(u.host, "");       /* nothing half-filled */
    ck_assert_int_eq(u.port, 0);
}

START_TEST(defaults)
{
    ok("https://example.com", "https", "example.com", 443, "/", false);
    ok("http://example.com", "http", "example.com", 80, "/", false);
    ok("wss://example.com", "wss", "example.com", 443, "/", false);
    ok("ws://example.com", "ws", "example.com", 80, "/", false);
    ok("https://example.com/", "https", "example.com", 443, "/", false);
}
END_TEST

START_TEST(case_and_parts)
{
    ok("HTTPS://Drover.Example.COM:8443/v3/Connect?Token=AbC",
       "https", "drover.example.com", 8443, "/v3/Connect?Token=AbC", false);
    ok("Wss://h:1/", "wss", "h", 1, "/", false);
    ok("ws://h:65535", "ws", "h", 65535, "/", false);
    ok("http://h:00080/x", "http", "h", 80, "/x", false);
    ok("https://h?watch=1", "https", "h", 443, "/?watch=1", false);
    ok("https://h/a/b//c/%2F?x=1&y", "https", "h", 443, "/a/b//c/%2F?x=1&y", false);
    ok("https://my_host-1.svc.cluster.local.", "https",
       "my_host-1.svc.cluster.local.", 443, "/", false);
}
END_TEST

START_TEST(ip_literals)
{
    ok("https://10.0.0.1:6443/", "https", "10.0.0.1", 6443, "/", true);
    ok("http://127.0.0.1", "http", "127.0.0.1", 80, "/", true);
    ok("https://[::1]:9443/p", "https", "::1", 9443, "/p", true);
    ok("https://[2001:DB8::1]", "https", "2001:db8::1", 443, "/", true);
    ok("wss://[::ffff:10.1.2.3]/t", "wss", "::ffff:10.1.2.3", 443, "/t", true);
    /* not dotted quads: ordinary names */
    ok("https://1.2.3", "https", "1.2.3", 443, "/", false);
    ok("https://999.1.1.1", "https", "999.1.1.1", 443, "/", false);
    ok("https://1.2.3.4.5", "https", "1.2.3.4.5", 443, "/", false);
}
END_TEST

START_TEST(bad_scheme)
{
    bad("", "missing scheme");
    bad("example.com", "missing scheme");
    bad("https:/example.com", "missing scheme");
    bad("https:example.com", "missing scheme");
    bad("ftp://example.com", "unknown scheme");
    bad("httpss://example.com", "unknown scheme");
    bad("htt://example.com", "unknown scheme");
    bad("://example.com", "unknown scheme");
    bad(NULL, "no URL");
}
END_TEST

START_TEST(bad_authority)
{
    bad("https://", "empty host");
    bad("https:///x", "empty host");
    bad("https://:443", "empty host");
    bad("https://?x", "empty host");
    bad("https://user@h", "userinfo not allowed");
    bad("https://user:pw@h/x", "userinfo not allowed");
    bad("https://@h", "userinfo not allowed");
    bad("https://ex!ample.com", "bad character in host");
    bad("https://ex%41mple.com", "bad character in host");
    bad("https://exa[mple.com", "bad character in host");
    bad("https://::1", "bad port");
    bad("https://[::1", "unterminated IPv6 literal");
    bad("https://[]", "empty host");
    bad("https://[zz::1]", "bad IPv6 literal");
    bad("https://[10.0.0.1]", "bad IPv6 literal");
    bad("https://[fe80::1%25eth0]", "bad IPv6 literal");
    bad("https://[::1]x", "bad port");
    bad("https://[::1]:", "bad port");
    bad("https://[::1]:0", "bad port");
}
END_TEST

START_TEST(bad_port)
{
    bad("https://h:", "bad port");
    bad("https://h:0", "bad port");
    bad("https://h:00000", "bad port");
    bad("https://h:65536", "bad port");
    bad("https://h:99999", "bad port");
    bad("https://h:123456", "bad port");
    bad("https://h:000443", "bad port");
    bad("https://h:-1", "bad port");
    bad("https://h:+80", "bad port");
    bad("https://h:8o", "bad port");
    bad("https://h:80:81", "bad port");
}
END_TEST

START_TEST(bad_characters)
{
    bad("https://h /x", "whitespace or control character");
    bad(" https://h", "whitespace or control character");
    bad("https://h\t", "whitespace or control character");
    bad("https://h/\n", "whitespace or control character");
    bad("https://h/\r", "whitespace or control character");
    bad("https://h/\x01", "whitespace or control character");
    bad("https://h/\x7f", "whitespace or control character");
    bad("https://h\x1b", "whitespace or control character");
    bad("https://h\xc3\xa9.com", "non-ASCII character");
    bad("https://h/\xff", "non-ASCII character");
    bad("https://h/#frag", "fragment not allowed");
    bad("https://h#", "fragment not allowed");
}
END_TEST

START_TEST(host_length)
{
    char s[600], host[300];
    memset(host, 'a', sizeof(host));
    host[URL_MAX_HOST] = '\0';
    memcpy(s, "https://", 8);
    memcpy(s + 8, host, URL_MAX_HOST + 1);
    ok(s, "https", host, 443, "/", false);
    ck_assert_uint_eq(strlen(u.host), URL_MAX_HOST);
    host[URL_MAX_HOST] = 'a';
    host[URL_MAX_HOST + 1] = '\0';
    memcpy(s + 8, host, URL_MAX_HOST + 2);
    bad(s, "host too long");
}
END_TEST

START_TEST(path_length)
{
    static char s[2100], path[1100];
    memset(path, 'p', sizeof(path));
    path[0] = '/';
    path[URL_MAX_PATH] = '\0';
    memcpy(s, "https://h", 9);
    memcpy(s + 9, path, URL_MAX_PATH + 1);
    ok(s, "https", "h", 443, path, false);
    path[URL_MAX_PATH] = 'p';
    path[URL_MAX_PATH + 1] = '\0';
    memcpy(s + 9, path, URL_MAX_PATH + 2);
    bad(s, "path too long");
    /* a query without a path gains a '/' that counts towards the limit */
    path[0] = '?';
    path[URL_MAX_PATH - 1] = '\0';
    memcpy(s + 9, path, URL_MAX_PATH);
    const char *why;
    ck_assert_int_eq(url_parse(s, &u, &why), 0);
    ck_assert_uint_eq(strlen(u.path), URL_MAX_PATH);
    ck_assert_int_eq(u.path[0], '/');
    ck_assert_int_eq(u.path[1], '?');
    path[URL_MAX_PATH - 1] = 'p';
    path[URL_MAX_PATH] = '\0';
    memcpy(s + 9, path, URL_MAX_PATH + 1);
    bad(s, "path too long");
}
END_TEST

START_TEST(why_optional)
{
    ck_assert_int_eq(url_parse("ftp://h", &u, NULL), -1);
    ck_assert_int_eq(url_parse("https://h", &u, NULL), 0);
}
END_TEST

START_TEST(hostport)
{
    char buf[64];
    ck_assert_int_eq(url_parse("https://Example.com/x", &u, NULL), 0);
    url_hostport(&u, buf, sizeof(buf));
    ck_assert_str_eq(buf, "example.com:443");
    ck_assert_int_eq(url_parse("wss://[::1]:9443", &u, NULL), 0);
    url_hostport(&u, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[::1]:9443");
    ck_assert_int_eq(url_parse("http://10.0.0.1:8080", &u, NULL), 0);
    url_hostport(&u, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.0.0.1:8080");
    /* truncated, still terminated; cap 0 writes nothing */
    url_hostport(&u, buf, 5);
    ck_assert_str_eq(buf, "10.0");
    buf[0] = 'Z';
    url_hostport(&u, buf, 0);
    ck_assert_int_eq(buf[0], 'Z');
}
END_TEST

Suite *suite_common_url(void)
{
    Suite *s = suite_create("common_url");
    TCase *t = tcase_create("parse");
    tcase_add_test(t, defaults);
    tcase_add_test(t, case_and_parts);
    tcase_add_test(t, ip_literals);
    tcase_add_test(t, bad_scheme);
    tcase_add_test(t, bad_authority);
    tcase_add_test(t, bad_port);
    tcase_add_test(t, bad_characters);
    tcase_add_test(t, host_length);
    tcase_add_test(t, path_length);
    tcase_add_test(t, why_optional);
    tcase_add_test(t, hostport);
    suite_add_tcase(s, t);
    return s;
}
