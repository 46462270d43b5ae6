/*
 * url: parses the URLs drover is configured with (server-url, DROVER_SERVER,
 * postgres URLs are left to libpq). Pure; no DNS.
 */
#ifndef DROVER_URL_H
#define DROVER_URL_H

#include <stdbool.h>

#define URL_MAX_HOST 253
#define URL_MAX_PATH 1024

struct url {
    char scheme[8];             /* "https", "http", "wss", "ws" (lowercased) */
    char host[URL_MAX_HOST + 1];/* without brackets for IPv6 literals */
    bool host_is_ip;            /* an IPv4 or IPv6 literal */
    int port;                   /* explicit, or the scheme's default */
    char path[URL_MAX_PATH + 1];/* "/" if absent; query kept */
};

/* Parses s. Returns 0, or -1 with a short reason in *why (static text) for
 * anything but scheme://host[:port][/path]: userinfo, an empty host, a port
 * outside 1..65535, an unknown scheme, over-long parts. */
int url_parse(const char *s, struct url *out, const char **why);

/* host:port for logs and Host headers, brackets around IPv6. */
void url_hostport(const struct url *u, char *buf, unsigned cap);

#endif
