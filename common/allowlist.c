/*
 * allowlist: parsing and matching of DROVER_ALLOW_DIAL. See allowlist.h.
 */
#include "common/allowlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_entry(const char *s, size_t n, struct allow_entry *e, const char **why)
{
    char buf[96];
    if (n >= sizeof(buf)) {
        *why = "entry too long";
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon || colon == buf) {
        *why = "entries are IP:PORT or CIDR:PORT";
        return -1;
    }
    *colon = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 1 || port > 65535) {
        *why = "port must be 1-65535";
        return -1;
    }
    e->port = (int)port;
    char *host = buf;
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        host++;
    }
    char *slash = strchr(host, '/');
    if (slash)
        *slash = '\0';
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, e->addr) == 1) {
        e->family = AF_INET;
        e->prefix = 32;
    } else if (inet_pton(AF_INET6, host, e->addr) == 1) {
        e->family = AF_INET6;
        e->prefix = 128;
    } else {
        *why = "host must be an IP address or CIDR (names are not resolved)";
        return -1;
    }
    if (slash) {
        long p = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || p < 0 || p > e->prefix) {
            *why = "invalid CIDR prefix length";
            return -1;
        }
        e->prefix = (int)p;
    }
    return 0;
}

int allowlist_parse(const char *spec, struct allowlist *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    for (const char *s = spec ? spec : ""; *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 0)
            break;
        if (out->n == ALLOWLIST_MAX) {
            *why = "too many entries";
            return -1;
        }
        if (parse_entry(s, n, &out->e[out->n], why) < 0)
            return -1;
        out->n++;
        s += n;
    }
    return 0;
}

const char *allowlist_check(const char *spec)
{
    struct allowlist *l = malloc(sizeof(*l));
    const char *why = "out of memory";
    if (l && allowlist_parse(spec, l, &why) == 0)
        why = NULL;
    free(l);
    return why;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool allowlist_match(const struct allowlist *l, const struct netaddr *a)
{
    const unsigned char *ip;
    int fam = a->ss.ss_family;
    if (fam == AF_INET)
        ip = (const unsigned char *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    else
        ip = (const unsigned char *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    int port = netaddr_port(a);
    for (size_t i = 0; i < l->n; i++) {
        const struct allow_entry *e = &l->e[i];
        if (e->family == fam && e->port == port && prefix_match(ip, e->addr, e->prefix))
            return true;
    }
    return false;
}
