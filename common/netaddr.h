/*
 * netaddr: "host:port" text to socket addresses and back, and the
 * listening sockets built from them. Only IP literals and "localhost" are
 * resolved here: the loop thread must never block on DNS.
 */
#ifndef DROVER_NETADDR_H
#define DROVER_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/loop.h"

struct netaddr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Parses "1.2.3.4:80", "[::1]:80" or "localhost:80" (port 0..65535).
 * 0, or -1 with *why. */
int netaddr_parse(const char *s, struct netaddr *out, const char **why);
/* Parses an IP literal (no brackets) and a port. 0 or -1. */
int netaddr_from_ip(const char *ip, int port, struct netaddr *out);
int netaddr_port(const struct netaddr *a);
/* "1.2.3.4:80" / "[::1]:80". */
void netaddr_format(const struct netaddr *a, char *buf, size_t cap);
bool netaddr_is_loopback(const struct netaddr *a);

/* A listening socket on the loop that hands accepted fds to on_accept. */
struct listener;
typedef void (*listener_cb)(struct listener *ls, int fd, void *ud);
/* Binds and listens (SO_REUSEADDR, backlog 4096). NULL with *err (a static
 * or strerror text) on failure. */
struct listener *listener_new(struct loop *l, const struct netaddr *a,
                              listener_cb cb, void *ud, const char **err);
/* The bound port (useful after binding port 0). */
int listener_port(const struct listener *ls);
void listener_free(struct listener *ls);

#endif
