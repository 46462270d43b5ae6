/*
 * conn_open: making a conn (see conn.h for the contract).
 *
 * Owns adopting an accepted socket, the non-blocking outbound connect
 * (optionally from a given source address), socket tuning, the peer's
 * printable address and the step to the open state once connected (and
 * TLS is done).
 */
#include "common/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn_int.h"
#include "common/tls.h"

void conn_opened(struct conn *c)
{
    c->state = C_OPEN;
    conn_update_interest(c);
    /* An owner that already closed (after flush) hears nothing more. */
    if (c->ops->on_open && !c->closing_after_flush)
        c->ops->on_open(c);
    if (c->state == C_OPEN && (c->out_pending || c->enc_pending))
        conn_flush(c);
    /* Read-ahead may have pulled application data in with the handshake's
     * last flight; epoll will not report it again. */
    if (c->state == C_OPEN && c->ssl && SSL_has_pending(c->ssl) && !c->read_paused)
        conn_resume_read(c);
}

void conn_finish_connect(struct conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        conn_fail(c, strerror(soerr));
        return;
    }
    if (c->ssl) {
        c->state = C_HANDSHAKE;
        conn_handshake(c);
    } else {
        conn_opened(c);
    }
}

static void tune_socket(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void format_peer(char *buf, size_t len, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", ip, port);
    } else {
        buf[0] = '\0';
    }
}

static struct conn *conn_new(struct loop *l, const struct conn_ops *ops, void *ud)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = l;
    c->ops = ops;
    c->ud = ud;
    c->io.fd = -1;
    c->out_cap = CONN_DEFAULT_CAP;
    conn_live_link(c);
    return c;
}

/* Undoes conn_new for a conn that never got going. */
static void discard(struct conn *c)
{
    c->state = C_CONNECTING;    /* anything but C_CLOSED */
    loop_io_del(c->loop, &c->io);
    c->io.fd = -1;
    conn_live_unlink(c);
    free(c);
}

static void deferred_open(void *arg)
{
    struct conn *c = arg;
    if (c->state == C_OPEN && c->ops->on_open)
        c->ops->on_open(c);
}

struct conn *conn_adopt(struct loop *l, int fd, SSL_CTX *ctx,
                        const struct conn_ops *ops, void *ud)
{
    struct conn *c = conn_new(l, ops, ud);
    if (!c) {
        close(fd);
        return NULL;
    }
    tune_socket(fd);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        format_peer(c->peer, sizeof(c->peer), (struct sockaddr *)&ss);
    if (ctx) {
        if (conn_attach_tls(c, ctx, fd) < 0)
            goto fail;
        SSL_set_accept_state(c->ssl);
        c->state = C_HANDSHAKE;
    } else {
        c->state = C_OPEN;
    }
    if (loop_io_add(l, &c->io, fd, LOOP_READ, conn_on_io) < 0)
        goto fail;
    if (!ctx && loop_defer(l, deferred_open, c) < 0)
        goto fail;
    return c;
fail:
    if (c->ssl)
        SSL_free(c->ssl);
    close(fd);
    discard(c);
    return NULL;
}

static void deferred_fail(void *arg)
{
    struct conn *c = arg;
    if (c->state != C_CLOSED)
        conn_fail(c, c->deferred_error);
}

struct conn *conn_connect(struct loop *l, const struct sockaddr *addr,
                          socklen_t addrlen, SSL_CTX *ctx, const char *host,
                          bool host_is_ip, const struct conn_ops *ops, void *ud)
{
    return conn_connect_from(l, NULL, 0, addr, addrlen, ctx, host, host_is_ip, ops, ud);
}

struct conn *conn_connect_from(struct loop *l, const struct sockaddr *src, socklen_t srclen,
                               const struct sockaddr *addr, socklen_t addrlen, SSL_CTX *ctx,
                               const char *host, bool host_is_ip,
                               const struct conn_ops *ops, void *ud)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (src) {
        /* The port is picked at connect, per destination: a source address
         * then has the whole ephemeral range toward each server port. */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, src, srclen) < 0) {
            close(fd);
            return NULL;
        }
    }
    struct conn *c = conn_new(l, ops, ud);
    if (!c) {
        close(fd);
        return NULL;
    }
    tune_socket(fd);
    format_peer(c->peer, sizeof(c->peer), addr);
    if (ctx) {
        if (conn_attach_tls(c, ctx, fd) < 0 ||
            (host && tls_client_set_host(c->ssl, host, host_is_ip) < 0)) {
            if (c->ssl)
                SSL_free(c->ssl);
            close(fd);
            discard(c);
            return NULL;
        }
        SSL_set_connect_state(c->ssl);
    }
    c->state = C_CONNECTING;
    if (loop_io_add(l, &c->io, fd, LOOP_WRITE, conn_on_io) < 0) {
        if (c->ssl)
            SSL_free(c->ssl);
        close(fd);
        discard(c);
        return NULL;
    }
    if (connect(fd, addr, addrlen) < 0 && errno != EINPROGRESS) {
        /* Report through on_close like any other failure, but not from
         * inside this call: the caller has not stored c yet. */
        c->deferred_error = strerror(errno);
        if (loop_defer(l, deferred_fail, c) < 0)
            abort();
    }
    return c;
}
