/*
 * allowlist: the addresses an agent may be asked to dial (DROVER_ALLOW_DIAL):
 * "IP:port" or "CIDR:port" entries, comma-separated, IPv4 or [IPv6]. Anything
 * not on the list is refused, so a compromised server cannot use an agent to
 * reach arbitrary hosts inside the cluster network.
 */
#ifndef DROVER_ALLOWLIST_H
#define DROVER_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/netaddr.h"

#define ALLOWLIST_MAX 128

struct allow_entry {
    int family;
    unsigned char addr[16];
    int prefix;                 /* bits that must match */
    int port;
};

struct allowlist {
    struct allow_entry e[ALLOWLIST_MAX];
    size_t n;
};

/* Parses spec (NULL or empty = allow nothing). 0, or -1 with *why naming
 * the bad entry's problem. */
int allowlist_parse(const char *spec, struct allowlist *out, const char **why);
/* A settings check: NULL if spec parses, else the reason. */
const char *allowlist_check(const char *spec);
bool allowlist_match(const struct allowlist *l, const struct netaddr *a);

#endif
