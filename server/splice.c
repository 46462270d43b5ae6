/*
 * splice: stream to stream. See splice.h.
 *
 * Each direction has a holding buffer for what the far side's window did not
 * take; it only ever holds bytes the near side sent within the window we
 * granted it, because we return that credit as the bytes leave.
 */
#include "server/splice.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

struct dir {
    uint8_t *buf;
    size_t len, cap;
    bool eof;           /* the source half-closed: close the sink once empty */
    bool closed;        /* we half-closed the sink */
};

struct splice {
    struct tun_stream *side[2];
    struct dir to[2];   /* to[i]: bytes waiting to be sent on side[i] */
};

static unsigned long live;

unsigned long splice_count(void)
{
    return live;
}

static int index_of(struct splice *sp, struct tun_stream *s)
{
    return sp->side[0] == s ? 0 : 1;
}

static void maybe_free(struct splice *sp)
{
    if (sp->side[0] || sp->side[1])
        return;
    free(sp->to[0].buf);
    free(sp->to[1].buf);
    free(sp);
    live--;
}

/* Resets the other side (if still there) after side i ended abnormally. */
static void end_both(struct splice *sp, int i, uint16_t code, const char *reason)
{
    sp->side[i] = NULL;
    struct tun_stream *o = sp->side[!i];
    sp->side[!i] = NULL;
    if (o)
        tun_stream_reset(o, code ? code : TUN_RESET_CANCEL, reason ? reason : "");
    maybe_free(sp);
}

static void close_sink(struct splice *sp, int i)
{
    struct dir *d = &sp->to[i];
    if (!d->eof || d->closed || d->len || !sp->side[i])
        return;
    d->closed = true;
    if (tun_stream_close(sp->side[i]) == 1) {
        sp->side[i] = NULL;
        maybe_free(sp);
    }
}

/* Sends what waits for side i; returns the credit to the other side. */
static void flush(struct splice *sp, int i)
{
    struct dir *d = &sp->to[i];
    if (!d->len || !sp->side[i])
        return;
    ssize_t n = tun_stream_send(sp->side[i], d->buf, d->len);
    if (n < 0) {
        end_both(sp, i, TUN_RESET_CANCEL, "the spliced stream cannot send");
        return;
    }
    memmove(d->buf, d->buf + n, d->len - (size_t)n);
    d->len -= (size_t)n;
    if (n > 0 && sp->side[!i])
        tun_stream_consumed(sp->side[!i], (size_t)n);
    close_sink(sp, i);
}

static void on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct splice *sp = tun_stream_ud(s);
    int i = index_of(sp, s), o = !i;
    struct dir *d = &sp->to[o];
    if (!sp->side[o])
        return;     /* the sink is gone; the reset to s is under way */
    size_t sent = 0;
    if (!d->len) {
        ssize_t r = tun_stream_send(sp->side[o], p, n);
        if (r < 0) {
            end_both(sp, o, TUN_RESET_CANCEL, "the spliced stream cannot send");
            return;
        }
        sent = (size_t)r;
        if (sent)
            tun_stream_consumed(s, sent);
    }
    if (sent == n)
        return;
    /* Bounded by the window s was granted: its credit is still out. */
    if (d->len + n - sent > d->cap) {
        size_t cap = d->cap ? d->cap : 16384;
        while (cap < d->len + n - sent)
            cap *= 2;
        uint8_t *b = realloc(d->buf, cap);
        if (!b) {
            end_both(sp, i, TUN_RESET_INTERNAL, "out of memory");
            tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
            return;
        }
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p + sent, n - sent);
    d->len += n - sent;
}

static void on_eof(struct tun_stream *s)
{
    struct splice *sp = tun_stream_ud(s);
    int o = !index_of(sp, s);
    sp->to[o].eof = true;
    close_sink(sp, o);
}

static void on_writable(struct tun_stream *s)
{
    struct splice *sp = tun_stream_ud(s);
    flush(sp, index_of(sp, s));
}

static void on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct splice *sp = tun_stream_ud(s);
    int i = index_of(sp, s);
    if (code != 0) {
        end_both(sp, i, code, reason);
        return;
    }
    /* Both halves of s are closed: nothing more moves through it. */
    sp->side[i] = NULL;
    sp->to[i].len = 0;
    maybe_free(sp);
}

static const struct tun_stream_ops splice_ops = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_writable = on_writable,
    .on_end = on_end,
};

int splice_join(struct tun_stream *in, struct tun_stream *out)
{
    struct splice *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        tun_stream_reset(in, TUN_RESET_INTERNAL, "out of memory");
        tun_stream_reset(out, TUN_RESET_INTERNAL, "out of memory");
        return -1;
    }
    live++;
    sp->side[0] = in;
    sp->side[1] = out;
    tun_stream_set_ops(out, &splice_ops, sp);
    /* Early data and an early half-close are delivered from inside the
     * accept: the splice may be gone by the time it returns. */
    if (tun_stream_accept(in, &splice_ops, sp) < 0) {
        end_both(sp, 0, TUN_RESET_CANCEL, "the peer stream failed");
        return -1;
    }
    return 0;
}
