/*
 * url: the scheme://host[:port][/path] URLs of drover's configuration. See
 * url.h.
 *
 * Deliberately narrower than RFC 3986: these URLs come from flags and
 * environment variables, so anything unusual (userinfo, a fragment, a zone
 * id, raw non-ASCII) is far more likely a mistake than intent, and a clear
 * error at startup beats a confusing one at connect time.
 */
#include "common/url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

struct scheme {
    const char *name;
    int port;
};

static const struct scheme schemes[] = {
    { "https", 443 }, { "http", 80 }, { "wss", 443 }, { "ws", 80 },
};

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
}

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

/* Matches the scheme before "://" and sets the default port. Returns the
 * length through "://", or 0. */
static size_t parse_scheme(const char *s, struct url *out)
{
    const char *sep = strstr(s, "://");
    if (!sep)
        return 0;
    size_t n = (size_t)(sep - s);
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i].name) != n)
            continue;
        size_t j = 0;
        while (j < n && lower(s[j]) == schemes[i].name[j])
            j++;
        if (j < n)
            continue;
        memcpy(out->scheme, schemes[i].name, n + 1);
        out->port = schemes[i].port;
        return n + 3;
    }
    return 0;
}

/* 1..65535, digits only. */
static int parse_port(const char *p, size_t n, int *port)
{
    int v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

static bool host_char(char c)
{
    c = lower(c);
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* Splits authority a (n bytes, no '/') into host and port. */
static int parse_authority(const char *a, size_t n, struct url *out,
                           const char **why)
{
    const char *host = a, *rest;
    size_t host_len;

    if (memchr(a, '@', n))
        return fail(why, "userinfo not allowed");
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (!close)
            return fail(why, "unterminated IPv6 literal");
        host = a + 1;
        host_len = (size_t)(close - host);
        rest = close + 1;
    } else {
        const char *colon = memchr(a, ':', n);
        host_len = colon ? (size_t)(colon - a) : n;
        rest = a + host_len;
    }
    size_t rest_len = n - (size_t)(rest - a);
    if (rest_len > 0 && (rest[0] != ':' ||
                         parse_port(rest + 1, rest_len - 1, &out->port) < 0))
        return fail(why, "bad port");
    if (host_len == 0)
        return fail(why, "empty host");
    if (host_len > URL_MAX_HOST)
        return fail(why, "host too long");
    for (size_t i = 0; i < host_len; i++)
        out->host[i] = lower(host[i]);
    out->host[host_len] = '\0';
    return 0;
}

/* Checks the host's characters now that it is a C string. */
static int check_host(struct url *out, bool bracketed, const char **why)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (bracketed) {
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return fail(why, "bad IPv6 literal");
        out->host_is_ip = true;
        return 0;
    }
    for (const char *p = out->host; *p; p++)
        if (!host_char(*p))
            return fail(why, "bad character in host");
    out->host_is_ip = inet_pton(AF_INET, out->host, &a4) == 1;
    return 0;
}

static int parse_path(const char *p, struct url *out, const char **why)
{
    size_t n = strlen(p);
    if (n == 0) {
        memcpy(out->path, "/", 2);
        return 0;
    }
    /* "https://h?x=1" has an empty path before its query. */
    size_t lead = p[0] == '?' ? 1 : 0;
    if (n > URL_MAX_PATH - lead)
        return fail(why, "path too long");
    out->path[0] = '/';
    memcpy(out->path + lead, p, n + 1);
    return 0;
}

int url_parse(const char *s, struct url *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return fail(why, "no URL");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f)
            return fail(why, "whitespace or control character");
        if (c >= 0x80)
            return fail(why, "non-ASCII character");
    }
    if (strchr(s, '#'))
        return fail(why, "fragment not allowed");

    size_t skip = parse_scheme(s, out);
    if (skip == 0)
        return fail(why, strstr(s, "://") ? "unknown scheme" : "missing scheme");
    const char *auth = s + skip;
    size_t auth_len = strcspn(auth, "/?");
    if (parse_authority(auth, auth_len, out, why) < 0 ||
        check_host(out, auth[0] == '[', why) < 0 ||
        parse_path(auth + auth_len, out, why) < 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

void url_hostport(const struct url *u, char *buf, unsigned cap)
{
    if (cap == 0)
        return;
    if (strchr(u->host, ':'))
        snprintf(buf, cap, "[%s]:%d", u->host, u->port);
    else
        snprintf(buf, cap, "%s:%d", u->host, u->port);
}
