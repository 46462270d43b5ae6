/*
 * testagent: a cluster agent on a thread, for tests. See testagent.h.
 *
 * The test thread never touches loop objects: it posts a job with
 * loop_post() and waits on the condition variable for the loop thread to
 * fill in the result.
 */
#include "tests/support/testagent.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/conn.h"
#include "common/loop.h"
#include "common/netaddr.h"
#include "common/tls.h"
#include "common/tunnel.h"
#include "common/wsconn.h"
#include "proto/frame.h"
#include "proto/ws.h"

#define MAX_DOCS 64
#define DOC_CAP (1024 * 1024)

struct testagent {
    struct loop *loop;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    SSL_CTX *ctx;
    struct netaddr addr;
    char headers[512];
    struct tunnel *t;
    bool up, down;
    char *rbac[MAX_DOCS];       /* received, not yet taken */
    int nrbac, rbac_total;
};

/* One report in flight. */
struct rjob {
    struct testagent *a;
    const char *doc;
    size_t len, sent;
    struct tun_stream *s;
    char *answer;
    size_t cap, got;
    bool done;
    int rc;
};

/* One rbac stream being answered. */
struct rbstream {
    struct testagent *a;
    char *buf;
    size_t len;
    const char *answer;
    size_t answer_sent;
};

static void notify(struct testagent *a)
{
    pthread_mutex_lock(&a->mu);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* ---- rbac streams (the server opens them) ---- */

static void rb_free(struct rbstream *r)
{
    free(r->buf);
    free(r);
}

static void rb_answer(struct tun_stream *s)
{
    struct rbstream *r = tun_stream_ud(s);
    size_t n = strlen(r->answer);
    while (r->answer_sent < n) {
        ssize_t k = tun_stream_send(s, r->answer + r->answer_sent, n - r->answer_sent);
        if (k <= 0)
            return;
        r->answer_sent += (size_t)k;
    }
    if (tun_stream_close(s) == 1)
        rb_free(r);
}

static void rb_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct rbstream *r = tun_stream_ud(s);
    if (n > DOC_CAP - r->len) {
        tun_stream_reset(s, TUN_RESET_LIMIT, "too big");
        rb_free(r);
        return;
    }
    char *b = realloc(r->buf, r->len + n + 1);
    if (!b)
        abort();
    memcpy(b + r->len, p, n);
    r->buf = b;
    r->len += n;
    r->buf[r->len] = '\0';
    tun_stream_consumed(s, n);
}

static void rb_eof(struct tun_stream *s)
{
    struct rbstream *r = tun_stream_ud(s);
    struct testagent *a = r->a;
    pthread_mutex_lock(&a->mu);
    if (a->nrbac < MAX_DOCS) {
        a->rbac[a->nrbac++] = strdup(r->buf ? r->buf : "");
        a->rbac_total++;
    }
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    r->answer = "{\"ok\":true,\"created\":1,\"updated\":0,\"deleted\":0}";
    rb_answer(s);
}

static void rb_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    (void)code;
    (void)reason;
    rb_free(tun_stream_ud(s));
}

static const struct tun_stream_ops rb_ops = {
    .on_data = rb_data, .on_eof = rb_eof, .on_writable = rb_answer, .on_end = rb_end,
};

static void on_open(struct tunnel *t, struct tun_stream *s, const char *service,
                    const uint8_t *meta, size_t len)
{
    (void)meta;
    (void)len;
    struct rbstream *r;
    if (strcmp(service, "rbac") != 0 || !(r = calloc(1, sizeof(*r)))) {
        tun_stream_reset(s, TUN_RESET_REFUSED, "the test agent serves only rbac");
        return;
    }
    r->a = tunnel_ud(t);
    if (tun_stream_accept(s, &rb_ops, r) < 0)
        rb_free(r);
}

static void on_down(struct tunnel *t, const char *why)
{
    struct testagent *a = tunnel_ud(t);
    (void)why;
    a->t = NULL;
    a->down = true;
    notify(a);
}

static const struct tunnel_ops tops = { .on_open = on_open, .on_down = on_down };

/* ---- the websocket ---- */

static void ws_opened(struct ws *w)
{
    struct testagent *a = ws_ud(w);
    struct tunnel_cfg tc = { 0 };
    a->t = tunnel_new(a->loop, w, false, &tc, &tops, a);
    pthread_mutex_lock(&a->mu);
    a->up = a->t != NULL;
    a->down = a->t == NULL;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void ws_closed(struct ws *w, const char *why)
{
    struct testagent *a = ws_ud(w);
    fprintf(stderr, "testagent: %s\n", why);
    a->down = true;
    notify(a);
}

static const struct ws_ops wops = { .on_open = ws_opened, .on_close = ws_closed };

static void dial(void *arg)
{
    struct testagent *a = arg;
    struct ws_client_opts o = {
        .path = "/v3/connect", .host = "127.0.0.1", .host_is_ip = true,
        .subprotocol = TUN_SUBPROTOCOL, .extra_headers = a->headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    if (!ws_client_connect(a->loop, (struct sockaddr *)&a->addr.ss, a->addr.len, a->ctx, &o,
                           &wops, a)) {
        a->down = true;
        notify(a);
    }
}

/* ---- reports (we open them) ---- */

static void rj_finish(struct rjob *j, int rc)
{
    struct testagent *a = j->a;
    pthread_mutex_lock(&a->mu);
    j->s = NULL;
    j->rc = rc;
    j->done = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void rj_send(struct tun_stream *s)
{
    struct rjob *j = tun_stream_ud(s);
    while (j->sent < j->len) {
        size_t want = j->len - j->sent;
        ssize_t k = tun_stream_send(s, j->doc + j->sent, want > 65536 ? 65536 : want);
        if (k < 0) {
            tun_stream_reset(s, TUN_RESET_CANCEL, "send failed");
            rj_finish(j, -1);
            return;
        }
        if (k == 0)
            return;
        j->sent += (size_t)k;
    }
    if (tun_stream_close(s) == 1)
        rj_finish(j, 0);
}

static void rj_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct rjob *j = tun_stream_ud(s);
    size_t room = j->cap - 1 - j->got;
    memcpy(j->answer + j->got, p, n < room ? n : room);
    j->got += n < room ? n : room;
    j->answer[j->got] = '\0';
    tun_stream_consumed(s, n);
}

static void rj_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    (void)reason;
    rj_finish(tun_stream_ud(s), code);
}

static void rj_eof(struct tun_stream *s)
{
    (void)s;    /* on_end(0) follows once we have closed too */
}

static const struct tun_stream_ops rj_ops = {
    .on_data = rj_data, .on_eof = rj_eof, .on_writable = rj_send, .on_end = rj_end,
};

static void rj_start(void *arg)
{
    struct rjob *j = arg;
    j->s = j->a->t ? tun_stream_open(j->a->t, "report", NULL, 0, &rj_ops, j) : NULL;
    if (!j->s) {
        rj_finish(j, -1);
        return;
    }
    rj_send(j->s);
}

/* ---- the thread and the public calls ---- */

static void *run(void *arg)
{
    struct testagent *a = arg;
    loop_run(a->loop);
    if (a->t)
        tunnel_close(a->t, WS_CLOSE_GOING_AWAY, "test over");
    conn_close_all();
    return NULL;
}

static bool wait_flag(struct testagent *a, const bool *flag, int timeout_ms)
{
    struct timespec ts;
    deadline(&ts, timeout_ms);
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    while (!*flag && !a->down && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    bool ok = *flag;
    pthread_mutex_unlock(&a->mu);
    return ok;
}

struct testagent *testagent_start(int port, const char *cluster, const char *token,
                                  int timeout_ms)
{
    char err[300];
    struct testagent *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    snprintf(a->headers, sizeof(a->headers),
             "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\nX-Drover-Role: cluster\r\n",
             token, cluster);
    a->loop = loop_new();
    a->ctx = tls_client_ctx_insecure(err, sizeof(err));
    if (!a->loop || !a->ctx || netaddr_from_ip("127.0.0.1", port, &a->addr) < 0 ||
        pthread_create(&a->thread, NULL, run, a) != 0) {
        fprintf(stderr, "testagent: cannot start\n");
        if (a->loop)
            loop_free(a->loop);
        if (a->ctx)
            SSL_CTX_free(a->ctx);
        free(a);
        return NULL;
    }
    loop_post(a->loop, dial, a);
    if (!wait_flag(a, &a->up, timeout_ms)) {
        testagent_stop(a);
        return NULL;
    }
    return a;
}

int testagent_report(struct testagent *a, const char *doc, size_t len, char *answer,
                     size_t cap, int timeout_ms)
{
    struct rjob *j = calloc(1, sizeof(*j));
    j->a = a;
    j->doc = doc;
    j->len = len;
    j->answer = answer;
    j->cap = cap;
    answer[0] = '\0';
    loop_post(a->loop, rj_start, j);
    if (!wait_flag(a, &j->done, timeout_ms)) {
        /* The job may still be referenced by the loop: leak it rather than
         * free it under the loop's feet; the test fails anyway. */
        return -1;
    }
    int rc = j->rc;
    free(j);
    return rc;
}

char *testagent_next_rbac(struct testagent *a, int timeout_ms)
{
    struct timespec ts;
    deadline(&ts, timeout_ms);
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    while (a->nrbac == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    char *doc = NULL;
    if (a->nrbac > 0) {
        doc = a->rbac[0];
        memmove(a->rbac, a->rbac + 1, (size_t)(a->nrbac - 1) * sizeof(a->rbac[0]));
        a->nrbac--;
    }
    pthread_mutex_unlock(&a->mu);
    return doc;
}

int testagent_rbac_count(struct testagent *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->rbac_total;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static void stop_loop(void *arg)
{
    loop_stop(arg);
}

void testagent_stop(struct testagent *a)
{
    if (!a)
        return;
    loop_post(a->loop, stop_loop, a->loop);
    pthread_join(a->thread, NULL);
    loop_free(a->loop);
    SSL_CTX_free(a->ctx);
    for (int i = 0; i < a->nrbac; i++)
        free(a->rbac[i]);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
