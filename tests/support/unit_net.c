/*
 * unit_net: loop slices, loopback sockets and a temporary PKI for unit
 * tests. See unit_net.h.
 */
#include "tests/support/unit_net.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct slice {
    struct loop_timer t;
    struct loop *l;
};

static void slice_end(struct loop_timer *t)
{
    struct slice *s = (struct slice *)((char *)t - offsetof(struct slice, t));
    loop_stop(s->l);
}

/* Runs l until about ms from now. The loop's cached clock may be stale
 * (it was last refreshed when the loop last ran), so the delay is made
 * relative to a fresh reading or the slice would end before polling. */
static void slice(struct loop *l, int ms)
{
    struct slice s = { .l = l };
    uint64_t stale = loop_clock_ms() - loop_now_ms(l);
    loop_timer_start(l, &s.t, stale + (uint64_t)ms, slice_end);
    ck_assert_int_eq(loop_run(l), 0);
    loop_timer_stop(l, &s.t);
}

void unit_run_for(struct loop *l, int ms)
{
    slice(l, ms);
}

bool unit_run2_until(struct loop *a, struct loop *b, unit_cond cond, void *ud,
                     int timeout_ms)
{
    uint64_t deadline = loop_clock_ms() + (uint64_t)timeout_ms;
    while (!cond(ud)) {
        if (loop_clock_ms() >= deadline)
            return cond(ud);
        slice(a, 1);
        if (b && !cond(ud))
            slice(b, 1);
    }
    return true;
}

bool unit_run_until(struct loop *l, unit_cond cond, void *ud, int timeout_ms)
{
    return unit_run2_until(l, NULL, cond, ud, timeout_ms);
}

static bool never(void *ud)
{
    (void)ud;
    return false;
}

void unit_run2_for(struct loop *a, struct loop *b, int ms)
{
    unit_run2_until(a, b, never, NULL, ms);
}

void unit_tcp_pair(int fds[2])
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(ls, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(ls, 1), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fds[0], 0);
    ck_assert_int_eq(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
    fds[1] = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(fds[1], 0);
    close(ls);
}

struct listener *unit_listen(struct loop *l, struct netaddr *addr, listener_cb on_accept,
                             void *ud)
{
    const char *why, *err = NULL;
    ck_assert_int_eq(netaddr_parse("127.0.0.1:0", addr, &why), 0);
    struct listener *lsn = listener_new(l, addr, on_accept, ud, &err);
    ck_assert_msg(lsn != NULL, "listener: %s", err);
    ((struct sockaddr_in *)&addr->ss)->sin_port = htons((uint16_t)listener_port(lsn));
    return lsn;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void unit_pki_init(struct unit_pki *p)
{
    char err[256] = "";
    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/drover-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    ck_assert_msg(tls_pki_ensure(p->dir, NULL, 0, &p->pki, err, sizeof(err)) == 0,
                  "tls_pki_ensure: %s", err);
    p->server = tls_server_ctx(p->pki.cert_file, p->pki.key_file, err, sizeof(err));
    ck_assert_msg(p->server != NULL, "tls_server_ctx: %s", err);
    p->client = tls_client_ctx_pinned(p->pki.ca_pem, p->pki.ca_pem_len, err, sizeof(err));
    ck_assert_msg(p->client != NULL, "tls_client_ctx_pinned: %s", err);
}

void unit_pki_free(struct unit_pki *p)
{
    SSL_CTX_free(p->server);
    SSL_CTX_free(p->client);
    p->server = p->client = NULL;
    tls_pki_free(&p->pki);
    if (p->dir[0])
        rm_tree(p->dir);
    p->dir[0] = '\0';
}
