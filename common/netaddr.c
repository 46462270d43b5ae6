/*
 * netaddr: address parsing and listening sockets. See netaddr.h.
 */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define ACCEPT_BATCH 64
#define EMFILE_BACKOFF_MS 100

int netaddr_from_ip(const char *ip, int port, struct netaddr *out)
{
    memset(out, 0, sizeof(*out));
    if (port < 0 || port > 65535)
        return -1;
    struct sockaddr_in *in = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        out->len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*in6);
        return 0;
    }
    return -1;
}

static int parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return -1;
    int p = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        p = p * 10 + (*s - '0');
    }
    if (p > 65535)
        return -1;
    *port = p;
    return 0;
}

int netaddr_parse(const char *s, struct netaddr *out, const char **why)
{
    char host[64];
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') {
            *why = "expected [ipv6]:port";
            return -1;
        }
        hl = (size_t)(end - s - 1);
        s++;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *why = "expected host:port";
            return -1;
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(host)) {
        *why = "missing or over-long host";
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    int port;
    if (parse_port(colon + 1, &port) < 0) {
        *why = "port must be a number from 0 to 65535";
        return -1;
    }
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", 10);
    if (netaddr_from_ip(host, port, out) < 0) {
        *why = "host must be an IP address or localhost";
        return -1;
    }
    return 0;
}

int netaddr_port(const struct netaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

void netaddr_format(const struct netaddr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, ip, sizeof(ip));
        snprintf(buf, cap, "%s:%d", ip, netaddr_port(a));
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, ip, sizeof(ip));
        snprintf(buf, cap, "[%s]:%d", ip, netaddr_port(a));
    }
}

bool netaddr_is_loopback(const struct netaddr *a)
{
    if (a->ss.ss_family == AF_INET) {
        uint32_t ip = ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr);
        return (ip >> 24) == 127;
    }
    const struct in6_addr *ip6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(ip6);
}

struct listener {
    struct loop_io io;
    struct loop *loop;
    struct loop_timer pause;
    listener_cb cb;
    void *ud;
    int port;
};

static void on_resume(struct loop_timer *t)
{
    struct listener *ls = (struct listener *)((char *)t - offsetof(struct listener, pause));
    loop_io_mod(ls->loop, &ls->io, LOOP_READ);
}

static void on_listen_io(struct loop_io *io, unsigned events)
{
    struct listener *ls = (struct listener *)((char *)io - offsetof(struct listener, io));
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            ls->cb(ls, fd, ls->ud);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: the pending connection would wake us again
             * at once, so stop listening briefly instead of spinning. */
            log_warn("accept on port %d: %s; pausing accepts for %d ms",
                     ls->port, strerror(errno), EMFILE_BACKOFF_MS);
            loop_io_mod(ls->loop, &ls->io, 0);
            loop_timer_start(ls->loop, &ls->pause, EMFILE_BACKOFF_MS, on_resume);
        }
        return;
    }
}

struct listener *listener_new(struct loop *l, const struct netaddr *a,
                              listener_cb cb, void *ud, const char **err)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = strerror(errno);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 4096) < 0) {
        *err = strerror(errno);
        close(fd);
        return NULL;
    }
    struct listener *ls = calloc(1, sizeof(*ls));
    if (!ls) {
        *err = "out of memory";
        close(fd);
        return NULL;
    }
    struct netaddr bound = { .len = sizeof(bound.ss) };
    getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len);
    ls->port = netaddr_port(&bound);
    ls->loop = l;
    ls->cb = cb;
    ls->ud = ud;
    if (loop_io_add(l, &ls->io, fd, LOOP_READ, on_listen_io) < 0) {
        *err = strerror(errno);
        close(fd);
        free(ls);
        return NULL;
    }
    return ls;
}

int listener_port(const struct listener *ls)
{
    return ls->port;
}

void listener_free(struct listener *ls)
{
    if (!ls)
        return;
    int fd = ls->io.fd;
    loop_timer_stop(ls->loop, &ls->pause);
    loop_io_del(ls->loop, &ls->io);
    if (fd >= 0)
        close(fd);
    free(ls);
}
