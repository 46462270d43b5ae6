/*
 * spdy: SPDY/3.1 frames and header blocks for the kube-standin test
 * stand-in. See spdy.h. Written from the SPDY/3 draft: frame layouts, the
 * header-block format and the compression dictionary are the protocol's.
 */
#include "tests/kube-standin/spdy.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SPDY_VERSION 3

/* ---- the SPDY/3 header compression dictionary ---- */

/*
 * The dictionary is a list of length-prefixed words (4-byte big-endian
 * length, then the word) followed by one run of plain text; both deflate
 * ends must use the very same bytes, which zlib checks by Adler-32.
 */
static const char *const dict_words[] = {
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
    "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
    "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
    "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
};

static const char dict_tail[] =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0.";

static uint8_t dict[1600];
static size_t dict_len;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const uint8_t *dictionary(size_t *len)
{
    if (!dict_len) {
        size_t o = 0;
        for (size_t i = 0; i < sizeof(dict_words) / sizeof(dict_words[0]); i++) {
            size_t n = strlen(dict_words[i]);
            put32(dict + o, (uint32_t)n);
            memcpy(dict + o + 4, dict_words[i], n);
            o += 4 + n;
        }
        memcpy(dict + o, dict_tail, sizeof(dict_tail) - 1);
        dict_len = o + sizeof(dict_tail) - 1;
    }
    *len = dict_len;
    return dict;
}

/* ---- frames ---- */

static ssize_t parse_control(const uint8_t *p, size_t len, struct spdy_frame *out)
{
    switch (out->type) {
    case SPDY_SYN_STREAM:
        if (len < 10)
            break;
        out->stream_id = get32(p) & 0x7fffffff;
        out->payload = p + 10;
        out->payload_len = len - 10;
        return out->stream_id ? 0 : -1;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        if (len < 4)
            break;
        out->stream_id = get32(p) & 0x7fffffff;
        out->payload = p + 4;
        out->payload_len = len - 4;
        return 0;
    case SPDY_RST_STREAM:
    case SPDY_WINDOW_UPDATE:
    case SPDY_GOAWAY:
        if (len != 8)
            break;
        out->stream_id = get32(p) & 0x7fffffff;
        out->value = get32(p + 4) & (out->type == SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
        return 0;
    case SPDY_PING:
        if (len != 4)
            break;
        out->value = get32(p);
        return 0;
    case SPDY_SETTINGS:
        if (len < 4 || len != 4 + 8 * (size_t)get32(p))
            break;
        out->payload = p;
        out->payload_len = len;
        return 0;
    default:
        return 0;   /* unknown control frames are ignored, as the draft says */
    }
    out->error = "control frame of the wrong length";
    return -1;
}

ssize_t spdy_frame_parse(const uint8_t *buf, size_t len, size_t max, struct spdy_frame *out)
{
    memset(out, 0, sizeof(*out));
    if (len < SPDY_HDR_LEN)
        return -2;
    size_t flen = (size_t)buf[5] << 16 | (size_t)buf[6] << 8 | buf[7];
    out->flags = buf[4];
    if (flen > max) {
        out->error = "frame too large";
        return -1;
    }
    if (len - SPDY_HDR_LEN < flen)
        return -2;
    const uint8_t *p = buf + SPDY_HDR_LEN;
    if (buf[0] & 0x80) {
        unsigned version = (unsigned)(buf[0] & 0x7f) << 8 | buf[1];
        if (version != SPDY_VERSION) {
            out->error = "not SPDY version 3";
            return -1;
        }
        out->type = (uint16_t)(buf[2] << 8 | buf[3]);
        if (parse_control(p, flen, out) < 0) {
            if (!out->error)
                out->error = "stream id zero";
            return -1;
        }
    } else {
        out->type = SPDY_DATA;
        out->stream_id = get32(buf) & 0x7fffffff;
        if (!out->stream_id) {
            out->error = "data frame on stream zero";
            return -1;
        }
        out->payload = p;
        out->payload_len = flen;
    }
    return (ssize_t)(SPDY_HDR_LEN + flen);
}

size_t spdy_data_head(uint8_t out[SPDY_HDR_LEN], uint32_t stream, uint8_t flags, size_t len)
{
    put32(out, stream & 0x7fffffff);
    put32(out + 4, (uint32_t)flags << 24 | ((uint32_t)len & 0xffffff));
    return SPDY_HDR_LEN;
}

size_t spdy_ctrl_head(uint8_t out[SPDY_HDR_LEN], uint16_t type, uint8_t flags, size_t len)
{
    out[0] = 0x80;
    out[1] = SPDY_VERSION;
    out[2] = (uint8_t)(type >> 8);
    out[3] = (uint8_t)type;
    put32(out + 4, (uint32_t)flags << 24 | ((uint32_t)len & 0xffffff));
    return SPDY_HDR_LEN;
}

size_t spdy_rst(uint8_t out[16], uint32_t stream, uint32_t status)
{
    spdy_ctrl_head(out, SPDY_RST_STREAM, 0, 8);
    put32(out + 8, stream & 0x7fffffff);
    put32(out + 12, status);
    return 16;
}

size_t spdy_ping(uint8_t out[12], uint32_t id)
{
    spdy_ctrl_head(out, SPDY_PING, 0, 4);
    put32(out + 8, id);
    return 12;
}

size_t spdy_goaway(uint8_t out[16], uint32_t last_stream, uint32_t status)
{
    spdy_ctrl_head(out, SPDY_GOAWAY, 0, 8);
    put32(out + 8, last_stream & 0x7fffffff);
    put32(out + 12, status);
    return 16;
}

/* ---- header blocks ---- */

struct spdy_zin {
    z_stream z;
};

struct spdy_zout {
    z_stream z;
};

struct spdy_zin *spdy_zin_new(void)
{
    struct spdy_zin *z = calloc(1, sizeof(*z));
    if (z && inflateInit(&z->z) != Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

void spdy_zin_free(struct spdy_zin *z)
{
    if (!z)
        return;
    inflateEnd(&z->z);
    free(z);
}

struct spdy_zout *spdy_zout_new(void)
{
    struct spdy_zout *z = calloc(1, sizeof(*z));
    size_t dl;
    const uint8_t *d = dictionary(&dl);
    if (!z)
        return NULL;
    if (deflateInit(&z->z, Z_DEFAULT_COMPRESSION) != Z_OK) {
        free(z);
        return NULL;
    }
    if (deflateSetDictionary(&z->z, d, (uInt)dl) != Z_OK) {
        deflateEnd(&z->z);
        free(z);
        return NULL;
    }
    return z;
}

void spdy_zout_free(struct spdy_zout *z)
{
    if (!z)
        return;
    deflateEnd(&z->z);
    free(z);
}

/* Inflates all of p into out (up to max). Returns the length or -1. */
static ssize_t inflate_block(struct spdy_zin *z, const uint8_t *p, size_t n, uint8_t *out,
                             size_t max)
{
    z->z.next_in = (Bytef *)p;
    z->z.avail_in = (uInt)n;
    z->z.next_out = out;
    z->z.avail_out = (uInt)max;
    for (;;) {
        int rc = inflate(&z->z, Z_SYNC_FLUSH);
        if (rc == Z_NEED_DICT) {
            size_t dl;
            const uint8_t *d = dictionary(&dl);
            if (inflateSetDictionary(&z->z, d, (uInt)dl) != Z_OK)
                return -1;
            continue;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return -1;
        if (z->z.avail_in == 0)
            break;
        if (z->z.avail_out == 0 || rc == Z_BUF_ERROR)
            return -1;  /* over max, or stuck */
    }
    return (ssize_t)(max - z->z.avail_out);
}

int spdy_headers_decode(struct spdy_zin *z, const uint8_t *p, size_t n, size_t max,
                        int (*fn)(void *ud, const char *name, size_t nl, const char *val,
                                  size_t vl),
                        void *ud)
{
    uint8_t *buf = malloc(max ? max : 1);
    if (!buf)
        return -1;
    ssize_t len = inflate_block(z, p, n, buf, max);
    int rc = -1;
    if (len < 4)
        goto out;
    uint32_t count = get32(buf);
    size_t o = 4;
    for (uint32_t i = 0; i < count; i++) {
        if ((size_t)len - o < 4)
            goto out;
        size_t nl = get32(buf + o);
        o += 4;
        if ((size_t)len - o < nl || (size_t)len - o - nl < 4)
            goto out;
        const char *name = (const char *)buf + o;
        o += nl;
        size_t vl = get32(buf + o);
        o += 4;
        if ((size_t)len - o < vl)
            goto out;
        if (fn(ud, name, nl, (const char *)buf + o, vl))
            goto out;
        o += vl;
    }
    rc = o == (size_t)len ? 0 : -1;
out:
    free(buf);
    return rc;
}

int spdy_headers_encode(struct spdy_zout *z, const char *const *names,
                        const char *const *values, size_t n, uint8_t **out, size_t *out_len)
{
    size_t raw_len = 4;
    for (size_t i = 0; i < n; i++)
        raw_len += 8 + strlen(names[i]) + strlen(values[i]);
    uint8_t *raw = malloc(raw_len);
    size_t cap = deflateBound(&z->z, (uLong)raw_len) + 64;
    uint8_t *dst = malloc(cap);
    if (!raw || !dst) {
        free(raw);
        free(dst);
        return -1;
    }
    size_t o = 0;
    put32(raw, (uint32_t)n);
    o = 4;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        put32(raw + o, (uint32_t)nl);
        memcpy(raw + o + 4, names[i], nl);
        o += 4 + nl;
        put32(raw + o, (uint32_t)vl);
        memcpy(raw + o + 4, values[i], vl);
        o += 4 + vl;
    }
    z->z.next_in = raw;
    z->z.avail_in = (uInt)raw_len;
    z->z.next_out = dst;
    z->z.avail_out = (uInt)cap;
    int rc = deflate(&z->z, Z_SYNC_FLUSH);
    free(raw);
    if (rc != Z_OK || z->z.avail_in != 0) {
        free(dst);
        return -1;
    }
    *out = dst;
    *out_len = cap - z->z.avail_out;
    return 0;
}
