/*
 * health: /healthz and /readyz for the kubelet. See health.h.
 */
#include "common/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/http1.h"

#define HEALTH_MAX_HEAD 2048
#define HEALTH_DEADLINE_MS 5000

struct health {
    struct loop *loop;
    struct listener *ls;
    bool (*ready)(void *ud);
    void *ud;
};

struct probe {
    struct health *h;
    struct conn *c;
    struct loop_timer deadline;
    size_t len;
    char buf[HEALTH_MAX_HEAD];
};

static void probe_free(struct probe *p)
{
    loop_timer_stop(p->h->loop, &p->deadline);
    free(p);
}

static void answer(struct probe *p, int status, const char *body)
{
    char out[256];
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", status, http1_reason(status),
                     strlen(body), body);
    conn_write(p->c, out, (size_t)n);
    conn_close_after_flush(p->c, 1000);
    probe_free(p);
}

static size_t on_read(struct conn *c, uint8_t *data, size_t len)
{
    struct probe *p = conn_ud(c);
    size_t take = len < sizeof(p->buf) - p->len ? len : sizeof(p->buf) - p->len;
    memcpy(p->buf + p->len, data, take);
    p->len += take;
    struct http_header hd[16];
    struct http_request req = { .headers = hd, .num_headers = 16 };
    ssize_t r = http1_parse_request(p->buf, p->len, &req);
    if (r == -2 && p->len < sizeof(p->buf))
        return len;
    if (r < 0) {
        answer(p, 400, "bad request\n");
        return len;
    }
    bool ready = p->h->ready(p->h->ud);
    if (req.target_len == 8 && memcmp(req.target, "/healthz", 8) == 0)
        answer(p, 200, "ok\n");
    else if (req.target_len == 7 && memcmp(req.target, "/readyz", 7) == 0)
        answer(p, ready ? 200 : 503, ready ? "ok\n" : "no link to drover-server\n");
    else
        answer(p, 404, "not found\n");
    return len;
}

static void on_close(struct conn *c, const char *why)
{
    (void)why;
    probe_free(conn_ud(c));
}

static const struct conn_ops probe_ops = { .on_read = on_read, .on_close = on_close };

static void on_deadline(struct loop_timer *t)
{
    struct probe *p = (struct probe *)((char *)t - offsetof(struct probe, deadline));
    conn_close(p->c);
    probe_free(p);
}

static void on_accept(struct listener *ls, int fd, void *ud)
{
    struct health *h = ud;
    (void)ls;
    struct probe *p = calloc(1, sizeof(*p));
    if (!p) {
        close(fd);
        return;
    }
    p->h = h;
    p->c = conn_adopt(h->loop, fd, NULL, &probe_ops, p);
    if (!p->c) {
        free(p);
        return;
    }
    loop_timer_start(h->loop, &p->deadline, HEALTH_DEADLINE_MS, on_deadline);
}

struct health *health_new(struct loop *l, const struct netaddr *a,
                          bool (*ready)(void *ud), void *ud, const char **err)
{
    struct health *h = calloc(1, sizeof(*h));
    if (!h) {
        *err = "out of memory";
        return NULL;
    }
    h->loop = l;
    h->ready = ready;
    h->ud = ud;
    h->ls = listener_new(l, a, on_accept, h, err);
    if (!h->ls) {
        free(h);
        return NULL;
    }
    return h;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    listener_free(h->ls);
    free(h);
}
