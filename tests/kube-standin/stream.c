/*
 * stream: long HTTP answers of the kube-standin test stand-in (watches and
 * followed logs). The connection is taken over from the HTTP server, the
 * head says chunked, and each piece the owner writes is one chunk. A stream
 * ends when its owner ends it, when the client goes away (the owner hears
 * on_gone) or at shutdown. The list of live streams lives in struct ks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conn.h"
#include "tests/kube-standin/standin.h"

struct kstream {
    struct ks *ks;
    struct conn *c;
    void (*on_gone)(void *ud);
    void *ud;
    struct kstream *prev, *next;
};

static void unlink_stream(struct kstream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        s->ks->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* The client went away: the owner lets go, then the stream is freed. */
static void gone(struct kstream *s)
{
    unlink_stream(s);
    s->on_gone(s->ud);
    free(s);
}

static size_t on_read(struct conn *c, uint8_t *data, size_t len)
{
    (void)c;
    (void)data;
    return len;     /* a client sends nothing more on a streamed answer */
}

static void on_eof(struct conn *c)
{
    struct kstream *s = conn_ud(c);
    conn_close(c);
    gone(s);
}

static void on_close(struct conn *c, const char *why)
{
    (void)why;
    gone(conn_ud(c));
}

static const struct conn_ops stream_ops = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_close = on_close,
};

struct kstream *kstream_start(struct kreq *k, const char *ctype,
                              void (*on_gone)(void *ud), void *ud)
{
    struct ks *ks = k->ks;
    struct kstream *s = calloc(1, sizeof(*s));
    k->audit_status = 200;
    struct conn *c = hs_takeover(k->r);     /* k is answered and freed here */
    if (!c || !s) {
        free(s);
        if (c)
            conn_close(c);
        return NULL;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache, "
                     "private\r\nTransfer-Encoding: chunked\r\n\r\n", ctype);
    s->ks = ks;
    s->c = c;
    s->on_gone = on_gone;
    s->ud = ud;
    conn_set_ops(c, &stream_ops);
    conn_set_ud(c, s);
    if (conn_write(c, head, (size_t)n) < 0) {
        conn_close(c);
        free(s);
        return NULL;
    }
    s->next = ks->streams;
    if (ks->streams)
        ks->streams->prev = s;
    ks->streams = s;
    conn_resume_read(c);
    return s;
}

int kstream_write(struct kstream *s, const void *p, size_t n)
{
    char hdr[24];
    if (n == 0)
        return 0;   /* an empty chunk would end the answer */
    int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
    if (conn_write2(s->c, hdr, (size_t)hl, p, n) < 0 || conn_write(s->c, "\r\n", 2) < 0)
        return -1;
    return 0;
}

size_t kstream_pending(const struct kstream *s)
{
    return conn_out_pending(s->c);
}

struct ks *kstream_ks(const struct kstream *s)
{
    return s->ks;
}

void kstream_end(struct kstream *s)
{
    unlink_stream(s);
    conn_write(s->c, "0\r\n\r\n", 5);
    conn_close_after_flush(s->c, 2000);
    free(s);
}

void kstream_shutdown_all(struct ks *ks)
{
    while (ks->streams) {
        struct kstream *s = ks->streams;
        unlink_stream(s);
        s->on_gone(s->ud);
        conn_write(s->c, "0\r\n\r\n", 5);
        conn_close_after_flush(s->c, 500);
        free(s);
    }
}
