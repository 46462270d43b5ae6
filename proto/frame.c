/*
 * frame: the tunnel wire format as a pure codec. See frame.h and
 * docs/PROTOCOL.md.
 *
 * The parser decides as early as the bytes allow: a bad version fails on the
 * first byte, an unknown type on the second, a stream id the type forbids on
 * the sixth, and a payload length outside the type's bounds as soon as the
 * header is complete. A peer therefore cannot make us buffer a payload we are
 * going to refuse. Parse and encode share the same checks, so whatever parse
 * accepts, encode reproduces byte for byte.
 */
#include "proto/frame.h"

#include <string.h>

/* Windows are 31-bit so that a window plus an increment fits in a u32. */
#define WINDOW_MAX 0x7fffffffu

/* OPEN payload: window (4), service_len (1), service, meta_len (2), meta. */
#define OPEN_FIXED  7u
#define OPEN_MIN    (OPEN_FIXED + 1u)
#define OPEN_MAX    (OPEN_FIXED + TUN_MAX_SERVICE + TUN_MAX_META)
#define RESET_FIXED 2u

/* Per-type rules that the header alone decides. */
struct type_rule {
    const char *name;
    int control;            /* 1: stream must be 0; 0: stream must not be 0 */
    uint32_t min, max;      /* payload length bounds, inclusive */
    const char *too_short, *too_long;
};

static const struct type_rule rules[] = {
    [TUN_OPEN] = { "open", 0, OPEN_MIN, OPEN_MAX,
                   "open payload too short", "open payload too long" },
    [TUN_OPEN_OK] = { "open_ok", 0, 4, 4,
                      "open_ok payload is not 4 bytes",
                      "open_ok payload is not 4 bytes" },
    [TUN_DATA] = { "data", 0, 1, TUN_MAX_DATA,
                   "data payload is empty", "data payload too long" },
    [TUN_WINDOW] = { "window", 0, 4, 4,
                     "window payload is not 4 bytes",
                     "window payload is not 4 bytes" },
    [TUN_CLOSE] = { "close", 0, 0, 0,
                    "close payload is not empty", "close payload is not empty" },
    [TUN_RESET] = { "reset", 0, RESET_FIXED, RESET_FIXED + TUN_MAX_REASON,
                    "reset payload too short", "reset reason too long" },
    [TUN_CONTROL] = { "control", 1, 1, TUN_MAX_CONTROL,
                      "control payload is empty", "control payload too long" },
};

static const struct type_rule *rule_for(uint8_t type)
{
    if (type < TUN_OPEN || type > TUN_CONTROL)
        return NULL;
    return &rules[type];
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* ---- checks shared by parse and encode: NULL if fine, else why ---- */

static const char *check_stream(const struct type_rule *r, uint32_t stream)
{
    if (r->control && stream != 0)
        return "control frame on a nonzero stream";
    if (!r->control && stream == 0)
        return "stream frame on stream 0";
    return NULL;
}

/* size_t so that encode can pass a caller's data_len before narrowing. */
static const char *check_length(const struct type_rule *r, size_t plen)
{
    if (plen < r->min)
        return r->too_short;
    if (plen > r->max)
        return r->too_long;
    return NULL;
}

static const char *check_window(uint8_t type, uint32_t window)
{
    if (window > WINDOW_MAX) {
        if (type == TUN_WINDOW)
            return "window increment over 2^31-1";
        return "initial window over 2^31-1";
    }
    if (type == TUN_WINDOW && window == 0)
        return "window increment is zero";
    return NULL;
}

static int service_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-';
}

static const char *check_service_len(size_t len)
{
    if (len == 0)
        return "service name is empty";
    if (len > TUN_MAX_SERVICE)
        return "service name too long";
    return NULL;
}

/* Service names end up in logs and policy lookups: keep them to a charset
 * that needs no escaping anywhere. */
static const char *check_service_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!service_char_ok((unsigned char)s[i]))
            return "service name has invalid character";
    return NULL;
}

/* ---- parse ---- */

static ssize_t parse_fail(struct tun_frame *out, const char *why)
{
    out->error = why;
    return -1;
}

/* p holds exactly plen >= OPEN_MIN bytes (the header check saw to that). */
static const char *parse_open(const uint8_t *p, uint32_t plen,
                              struct tun_frame *out)
{
    const char *err;
    size_t sl = p[4];

    out->window = get32(p);
    if ((err = check_window(TUN_OPEN, out->window)))
        return err;
    if ((err = check_service_len(sl)))
        return err;
    if (sl > plen - OPEN_FIXED)
        return "service name overruns the payload";
    if ((err = check_service_chars((const char *)p + 5, sl)))
        return err;
    size_t ml = get16(p + 5 + sl);
    if (ml > TUN_MAX_META)
        return "metadata too long";
    if (ml != plen - OPEN_FIXED - sl)
        return "open lengths do not match the payload";
    out->service = (const char *)p + 5;
    out->service_len = sl;
    out->meta = p + OPEN_FIXED + sl;
    out->meta_len = ml;
    return NULL;
}

/* The header check has already bounded plen for the type. */
static const char *parse_payload(const uint8_t *p, uint32_t plen,
                                 struct tun_frame *out)
{
    switch (out->type) {
    case TUN_OPEN:
        return parse_open(p, plen, out);
    case TUN_OPEN_OK:
    case TUN_WINDOW:
        out->window = get32(p);
        return check_window(out->type, out->window);
    case TUN_RESET:
        out->code = get16(p);
        out->data = p + RESET_FIXED;
        out->data_len = plen - RESET_FIXED;
        return NULL;
    case TUN_DATA:
    case TUN_CONTROL:
        out->data = p;
        out->data_len = plen;
        return NULL;
    default: /* TUN_CLOSE: nothing to read */
        return NULL;
    }
}

ssize_t tun_frame_parse(const uint8_t *buf, size_t len, struct tun_frame *out)
{
    const struct type_rule *r;
    const char *err;

    memset(out, 0, sizeof(*out));
    if (len < 1)
        return -2;
    if (buf[0] != TUN_VERSION)
        return parse_fail(out, "unsupported protocol version");
    if (len < 2)
        return -2;
    out->type = buf[1];
    if (!(r = rule_for(out->type)))
        return parse_fail(out, "unknown frame type");
    if (len < 6)
        return -2;
    out->stream = get32(buf + 2);
    if ((err = check_stream(r, out->stream)))
        return parse_fail(out, err);
    if (len < TUN_HDR_LEN)
        return -2;
    uint32_t plen = get32(buf + 6);
    if ((err = check_length(r, plen)))
        return parse_fail(out, err);
    if (plen > len - TUN_HDR_LEN)
        return -2;
    if ((err = parse_payload(buf + TUN_HDR_LEN, plen, out)))
        return parse_fail(out, err);
    return (ssize_t)(TUN_HDR_LEN + plen);
}

/* ---- encode ---- */

/* Validates what f's type uses and works out its payload length. */
static const char *encode_plan(const struct tun_frame *f, size_t *plen)
{
    const struct type_rule *r = rule_for(f->type);
    const char *err;

    if (!r)
        return "unknown frame type";
    if ((err = check_stream(r, f->stream)))
        return err;
    switch (f->type) {
    case TUN_OPEN:
        if ((err = check_window(f->type, f->window)) ||
            (err = check_service_len(f->service_len)))
            return err;
        if (!f->service)
            return "service pointer is null";
        if ((err = check_service_chars(f->service, f->service_len)))
            return err;
        if (f->meta_len > TUN_MAX_META)
            return "metadata too long";
        if (f->meta_len && !f->meta)
            return "metadata pointer is null";
        *plen = OPEN_FIXED + f->service_len + f->meta_len;
        break;
    case TUN_OPEN_OK:
    case TUN_WINDOW:
        if ((err = check_window(f->type, f->window)))
            return err;
        *plen = 4;
        break;
    case TUN_RESET:
        if (f->data_len > TUN_MAX_REASON)
            return "reset reason too long";
        *plen = RESET_FIXED + f->data_len;
        break;
    case TUN_CLOSE:
        *plen = 0;
        break;
    default: /* DATA, CONTROL */
        *plen = f->data_len;
        break;
    }
    if ((f->type == TUN_DATA || f->type == TUN_CONTROL ||
         f->type == TUN_RESET) && f->data_len && !f->data)
        return "data pointer is null";
    return check_length(r, *plen);
}

static void encode_payload(uint8_t *p, const struct tun_frame *f)
{
    switch (f->type) {
    case TUN_OPEN:
        put32(p, f->window);
        p[4] = (uint8_t)f->service_len;
        memcpy(p + 5, f->service, f->service_len);
        put16(p + 5 + f->service_len, (uint16_t)f->meta_len);
        if (f->meta_len)
            memcpy(p + OPEN_FIXED + f->service_len, f->meta, f->meta_len);
        break;
    case TUN_OPEN_OK:
    case TUN_WINDOW:
        put32(p, f->window);
        break;
    case TUN_RESET:
        put16(p, f->code);
        if (f->data_len)
            memcpy(p + RESET_FIXED, f->data, f->data_len);
        break;
    case TUN_DATA:
    case TUN_CONTROL:
        memcpy(p, f->data, f->data_len);
        break;
    default: /* TUN_CLOSE */
        break;
    }
}

ssize_t tun_frame_encode(uint8_t *buf, size_t cap, const struct tun_frame *f)
{
    size_t plen = 0;

    if (encode_plan(f, &plen))
        return -1;
    if (cap < TUN_HDR_LEN || plen > cap - TUN_HDR_LEN)
        return -1;
    tun_frame_put_header(buf, f->type, f->stream, (uint32_t)plen);
    encode_payload(buf + TUN_HDR_LEN, f);
    return (ssize_t)(TUN_HDR_LEN + plen);
}

size_t tun_frame_put_header(uint8_t *buf, uint8_t type, uint32_t stream,
                            uint32_t payload_len)
{
    buf[0] = TUN_VERSION;
    buf[1] = type;
    put32(buf + 2, stream);
    put32(buf + 6, payload_len);
    return TUN_HDR_LEN;
}

/* ---- names ---- */

static const char *const reset_names[] = {
    [TUN_RESET_REFUSED] = "refused",
    [TUN_RESET_UNREACHABLE] = "unreachable",
    [TUN_RESET_PROTOCOL] = "protocol",
    [TUN_RESET_FLOW] = "flow",
    [TUN_RESET_CANCEL] = "cancel",
    [TUN_RESET_INTERNAL] = "internal",
    [TUN_RESET_LIMIT] = "limit",
    [TUN_RESET_UNAVAILABLE] = "unavailable",
};

const char *tun_reset_code_name(uint16_t code)
{
    if (code >= sizeof(reset_names) / sizeof(reset_names[0]) ||
        !reset_names[code])
        return "unknown";
    return reset_names[code];
}

const char *tun_frame_type_name(uint8_t type)
{
    const struct type_rule *r = rule_for(type);

    return r ? r->name : "unknown";
}
