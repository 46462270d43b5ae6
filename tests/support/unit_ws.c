/*
 * unit_ws: both ends of a tunnel websocket for unit tests. See unit_ws.h.
 */
#include "tests/support/unit_ws.h"

#include <check.h>
#include <string.h>

#include "common/conn.h"
#include "common/http1.h"
#include "common/tunnel.h"

void unit_ws_ignore(struct ws *w, uint8_t op, const uint8_t *d, size_t n)
{
    (void)w;
    (void)op;
    (void)d;
    (void)n;
}

static void setup_close(struct ws *w, const char *why)
{
    (void)w;
    ck_abort_msg("server websocket closed before the test took it: %s", why);
}

static const struct ws_ops setup_ws_ops = {
    .on_message = unit_ws_ignore, .on_close = setup_close,
};

/* Gathers the request; once whole, answers it and attaches the websocket
 * (with whatever came after the request as its first bytes). */
static size_t up_read(struct conn *c, uint8_t *data, size_t len)
{
    struct unit_ws_accept *a = conn_ud(c);
    ck_assert_uint_le(len, sizeof(a->buf) - a->len);
    memcpy(a->buf + a->len, data, len);
    a->len += len;
    struct http_header hdrs[32];
    struct http_request req = { .headers = hdrs, .num_headers = 32 };
    ssize_t hl = http1_parse_request(a->buf, a->len, &req);
    if (hl == -2)
        return len;
    ck_assert_int_gt(hl, 0);
    char answer[1024];
    const char *why = NULL;
    ssize_t al = ws_upgrade_answer(&req, TUN_SUBPROTOCOL, answer, sizeof(answer), &why);
    ck_assert_msg(al > 0, "upgrade refused: %s", why);
    ck_assert_int_eq(conn_write(c, answer, (size_t)al), 0);
    a->done = true;
    struct ws *w = ws_server_attach(c, (const uint8_t *)a->buf + hl, a->len - (size_t)hl,
                                    TUN_MAX_MESSAGE, &setup_ws_ops, NULL);
    ck_assert_ptr_nonnull(w);
    a->on_ws(a, w);
    return len;
}

static void up_close(struct conn *c, const char *why)
{
    (void)c;
    ck_abort_msg("upgrade connection failed: %s", why);
}

static const struct conn_ops up_ops = { .on_read = up_read, .on_close = up_close };

void unit_ws_accept(struct loop *l, int fd, SSL_CTX *tls, struct unit_ws_accept *a)
{
    ck_assert_ptr_nonnull(conn_adopt(l, fd, tls, &up_ops, a));
}

struct ws *unit_ws_dial(struct loop *l, const struct netaddr *addr, SSL_CTX *tls,
                        const char *path, const struct ws_ops *ops, void *ud)
{
    struct ws_client_opts o = {
        .path = path, .host = "127.0.0.1", .host_is_ip = true,
        .subprotocol = TUN_SUBPROTOCOL, .max_message = TUN_MAX_MESSAGE,
    };
    struct ws *w = ws_client_connect(l, (const struct sockaddr *)&addr->ss, addr->len, tls, &o,
                                     ops, ud);
    ck_assert_ptr_nonnull(w);
    return w;
}
