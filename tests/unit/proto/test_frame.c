/*
 * Tests for proto/frame: golden bytes for every frame type (written out by
 * hand, so the codec is checked against the spec rather than against itself),
 * truncation at every offset, every error path, and each limit at and just
 * past its boundary, for both parse and encode.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

#define BIG (TUN_HDR_LEN + TUN_MAX_PAYLOAD + 64)

/* Big frames are built here rather than on the stack. */
static uint8_t big[BIG];
static uint8_t big2[BIG];

#define EXPECT_INVALID(buf, len, msg) do {                        \
        struct tun_frame f_;                                      \
        ck_assert_int_eq(tun_frame_parse((buf), (len), &f_), -1); \
        ck_assert_ptr_nonnull(f_.error);                          \
        ck_assert_str_eq(f_.error, (msg));                        \
    } while (0)

#define EXPECT_ENCODE_FAILS(fr) do {                              \
        ck_assert_int_eq(tun_frame_encode(big2, BIG, (fr)), -1);  \
    } while (0)

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Writes a header by hand (not via the codec) and returns TUN_HDR_LEN. */
static size_t hdr(uint8_t *buf, uint8_t ver, uint8_t type, uint32_t stream,
                  uint32_t plen)
{
    buf[0] = ver;
    buf[1] = type;
    be32(buf + 2, stream);
    be32(buf + 6, plen);
    return TUN_HDR_LEN;
}

/* An OPEN payload at buf + TUN_HDR_LEN with the given lengths claimed, the
 * service filled with 'a' and meta with 'm'. Returns the whole frame length. */
static size_t open_frame(uint8_t *buf, uint32_t plen, uint32_t window,
                         uint8_t sl, uint16_t ml, size_t fill)
{
    uint8_t *p = buf + hdr(buf, 1, TUN_OPEN, 2, plen);

    be32(p, window);
    p[4] = sl;
    memset(p + 5, 'a', sl);
    be16(p + 5 + sl, ml);
    memset(p + 7 + sl, 'm', fill);
    return TUN_HDR_LEN + plen;
}

/* ---- golden frames ---- */

static const uint8_t g_open[] = {
    1, 1, 0, 0, 0, 2, 0, 0, 0, 13,
    0, 4, 0, 0, 3, 'a', 'p', 'i', 0, 3, 'm', '=', '1',
};
static const uint8_t g_open_nometa[] = {
    1, 1, 0, 0, 0, 3, 0, 0, 0, 12,
    0, 0, 0, 0, 5, 'k', '8', 's', '.', '-', 0, 0,
};
static const uint8_t g_open_ok[] = {
    1, 2, 0, 0, 0, 2, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff,
};
static const uint8_t g_data[] = {
    1, 3, 1, 2, 3, 4, 0, 0, 0, 3, 'x', 'y', 'z',
};
static const uint8_t g_window[] = {
    1, 4, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 1,
};
static const uint8_t g_close[] = {
    1, 5, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
};
static const uint8_t g_reset[] = {
    1, 6, 0, 0, 0, 7, 0, 0, 0, 6, 0, 2, 'n', 'o', 'p', 'e',
};
static const uint8_t g_reset_empty[] = {
    1, 6, 0, 0, 0, 7, 0, 0, 0, 2, 0xff, 0xff,
};
static const uint8_t g_control[] = {
    1, 7, 0, 0, 0, 0, 0, 0, 0, 12,
    '{', '"', 't', 'y', 'p', 'e', '"', ':', '"', 'x', '"', '}',
};

static const struct golden {
    const uint8_t *bytes;
    size_t len;
    struct tun_frame f;
} goldens[] = {
    { g_open, sizeof(g_open),
      { .type = TUN_OPEN, .stream = 2, .window = 0x40000,
        .service = "api", .service_len = 3,
        .meta = (const uint8_t *)"m=1", .meta_len = 3 } },
    { g_open_nometa, sizeof(g_open_nometa),
      { .type = TUN_OPEN, .stream = 3, .window = 0,
        .service = "k8s.-", .service_len = 5 } },
    { g_open_ok, sizeof(g_open_ok),
      { .type = TUN_OPEN_OK, .stream = 2, .window = 0x7fffffff } },
    { g_data, sizeof(g_data),
      { .type = TUN_DATA, .stream = 0x01020304,
        .data = (const uint8_t *)"xyz", .data_len = 3 } },
    { g_window, sizeof(g_window),
      { .type = TUN_WINDOW, .stream = 5, .window = 1 } },
    { g_close, sizeof(g_close),
      { .type = TUN_CLOSE, .stream = 0xffffffff } },
    { g_reset, sizeof(g_reset),
      { .type = TUN_RESET, .stream = 7, .code = TUN_RESET_UNREACHABLE,
        .data = (const uint8_t *)"nope", .data_len = 4 } },
    { g_reset_empty, sizeof(g_reset_empty),
      { .type = TUN_RESET, .stream = 7, .code = 0xffff } },
    { g_control, sizeof(g_control),
      { .type = TUN_CONTROL, .stream = 0,
        .data = (const uint8_t *)"{\"type\":\"x\"}", .data_len = 12 } },
};
#define N_GOLDEN ((int)(sizeof(goldens) / sizeof(goldens[0])))

static void assert_same_frame(const struct tun_frame *got,
                              const struct tun_frame *want)
{
    ck_assert_uint_eq(got->type, want->type);
    ck_assert_uint_eq(got->stream, want->stream);
    ck_assert_uint_eq(got->window, want->window);
    ck_assert_uint_eq(got->code, want->code);
    ck_assert_uint_eq(got->service_len, want->service_len);
    if (want->service_len)
        ck_assert_mem_eq(got->service, want->service, want->service_len);
    ck_assert_uint_eq(got->meta_len, want->meta_len);
    if (want->meta_len)
        ck_assert_mem_eq(got->meta, want->meta, want->meta_len);
    ck_assert_uint_eq(got->data_len, want->data_len);
    if (want->data_len)
        ck_assert_mem_eq(got->data, want->data, want->data_len);
    ck_assert_ptr_null(got->error);
}

START_TEST(golden_parse)
{
    const struct golden *g = &goldens[_i];
    struct tun_frame f;

    memset(&f, 0xaa, sizeof(f));
    ck_assert_int_eq(tun_frame_parse(g->bytes, g->len, &f), (ssize_t)g->len);
    assert_same_frame(&f, &g->f);
    /* Pointers must point into the caller's buffer, not at copies. */
    /* An empty RESET reason still points at the (empty) reason, so callers
     * can print it as %.*s without a NULL check. */
    if (f.data_len || f.type == TUN_RESET)
        ck_assert_ptr_eq(f.data, g->bytes + g->len - f.data_len);
    else
        ck_assert_ptr_null(f.data);
    if (f.meta_len)
        ck_assert_ptr_eq(f.meta, g->bytes + g->len - f.meta_len);
    if (f.service_len)
        ck_assert_ptr_eq(f.service, (const char *)g->bytes + TUN_HDR_LEN + 5);
    if (!f.service_len)
        ck_assert_ptr_null(f.service);
}
END_TEST

START_TEST(golden_encode)
{
    const struct golden *g = &goldens[_i];

    memset(big, 0xee, 64);
    ck_assert_int_eq(tun_frame_encode(big, BIG, &g->f), (ssize_t)g->len);
    ck_assert_mem_eq(big, g->bytes, g->len);
    ck_assert_uint_eq(big[g->len], 0xee);
}
END_TEST

/* Every proper prefix is "need more", never invalid and never a frame. */
START_TEST(golden_truncated)
{
    const struct golden *g = &goldens[_i];
    struct tun_frame f;

    /* Each prefix sits at the end of an exact-size heap block, so the
     * sanitizer and valgrind runs catch any read past len. */
    for (size_t k = 0; k < g->len; k++) {
        uint8_t *p = malloc(k ? k : 1);
        ck_assert_ptr_nonnull(p);
        memcpy(p, g->bytes, k);
        f.error = "stale";
        ssize_t n = tun_frame_parse(p, k, &f);
        free(p);
        ck_assert_int_eq(n, -2);
        ck_assert_ptr_null(f.error);
    }
}
END_TEST

START_TEST(golden_trailing_bytes_not_consumed)
{
    const struct golden *g = &goldens[_i];
    struct tun_frame f;

    memcpy(big, g->bytes, g->len);
    memset(big + g->len, 0xff, 32);
    ck_assert_int_eq(tun_frame_parse(big, g->len + 32, &f), (ssize_t)g->len);
    ck_assert_uint_eq(f.type, g->f.type);
}
END_TEST

/* Encode never writes past cap and fails whenever cap is short. */
START_TEST(golden_encode_cap)
{
    const struct golden *g = &goldens[_i];

    for (size_t cap = 0; cap < g->len; cap++) {
        memset(big, 0xee, 64);
        ck_assert_int_eq(tun_frame_encode(big, cap, &g->f), -1);
        for (size_t i = cap; i < 64; i++)
            ck_assert_uint_eq(big[i], 0xee);
    }
    ck_assert_int_eq(tun_frame_encode(big, g->len, &g->f), (ssize_t)g->len);
}
END_TEST

START_TEST(golden_roundtrip)
{
    const struct golden *g = &goldens[_i];
    struct tun_frame f;

    ssize_t n = tun_frame_encode(big, BIG, &g->f);
    ck_assert_int_eq(n, (ssize_t)g->len);
    ck_assert_int_eq(tun_frame_parse(big, (size_t)n, &f), n);
    assert_same_frame(&f, &g->f);
    ck_assert_int_eq(tun_frame_encode(big2, BIG, &f), n);
    ck_assert_mem_eq(big2, big, (size_t)n);
}
END_TEST

START_TEST(multi_frame_back_to_back)
{
    size_t used = 0, off = 0;
    struct tun_frame f;

    for (int i = 0; i < N_GOLDEN; i++) {
        memcpy(big + used, goldens[i].bytes, goldens[i].len);
        used += goldens[i].len;
    }
    for (int i = 0; i < N_GOLDEN; i++) {
        ssize_t n = tun_frame_parse(big + off, used - off, &f);
        ck_assert_int_eq(n, (ssize_t)goldens[i].len);
        assert_same_frame(&f, &goldens[i].f);
        off += (size_t)n;
    }
    ck_assert_uint_eq(off, used);
    ck_assert_int_eq(tun_frame_parse(big + off, 0, &f), -2);
}
END_TEST

START_TEST(multi_frame_last_truncated)
{
    struct tun_frame f;
    size_t n1 = sizeof(g_data), n2 = sizeof(g_reset);

    memcpy(big, g_data, n1);
    memcpy(big + n1, g_reset, n2);
    ck_assert_int_eq(tun_frame_parse(big, n1 + n2 - 1, &f), (ssize_t)n1);
    ck_assert_int_eq(tun_frame_parse(big + n1, n2 - 1, &f), -2);
    ck_assert_int_eq(tun_frame_parse(big + n1, n2, &f), (ssize_t)n2);
}
END_TEST

/* ---- header errors ---- */

START_TEST(bad_version)
{
    static const uint8_t versions[] = { 0, 2, 0x81, 0xff };

    for (size_t i = 0; i < sizeof(versions); i++) {
        uint8_t buf[sizeof(g_close)];
        memcpy(buf, g_close, sizeof(buf));
        buf[0] = versions[i];
        /* Refused on the first byte, without waiting for the rest. */
        EXPECT_INVALID(buf, 1, "unsupported protocol version");
        EXPECT_INVALID(buf, sizeof(buf), "unsupported protocol version");
    }
}
END_TEST

START_TEST(unknown_type)
{
    static const uint8_t types[] = { 0, 8, 0x80, 0xff };

    for (size_t i = 0; i < sizeof(types); i++) {
        uint8_t buf[sizeof(g_close)];
        memcpy(buf, g_close, sizeof(buf));
        buf[1] = types[i];
        EXPECT_INVALID(buf, 2, "unknown frame type");
        EXPECT_INVALID(buf, sizeof(buf), "unknown frame type");
    }
}
END_TEST

START_TEST(stream_zero_on_stream_types)
{
    for (uint8_t t = TUN_OPEN; t <= TUN_RESET; t++) {
        uint8_t buf[TUN_HDR_LEN];
        hdr(buf, 1, t, 0, 4);
        EXPECT_INVALID(buf, 6, "stream frame on stream 0");
        EXPECT_INVALID(buf, TUN_HDR_LEN, "stream frame on stream 0");
    }
}
END_TEST

START_TEST(control_on_nonzero_stream)
{
    static const uint32_t ids[] = { 1, 2, 0x80000000u, 0xffffffffu };

    for (size_t i = 0; i < 4; i++) {
        uint8_t buf[TUN_HDR_LEN];
        struct tun_frame f;
        hdr(buf, 1, TUN_CONTROL, ids[i], 2);
        /* Not judged until all four id bytes are in. */
        for (size_t k = 2; k < 6; k++)
            ck_assert_int_eq(tun_frame_parse(buf, k, &f), -2);
        EXPECT_INVALID(buf, 6, "control frame on a nonzero stream");
    }
}
END_TEST

/* Until the length field is complete nothing about it can be known. */
START_TEST(partial_length_field_needs_more)
{
    uint8_t buf[TUN_HDR_LEN];
    struct tun_frame f;

    hdr(buf, 1, TUN_DATA, 1, 0xffffffffu);
    for (size_t k = 6; k < TUN_HDR_LEN; k++)
        ck_assert_int_eq(tun_frame_parse(buf, k, &f), -2);
    EXPECT_INVALID(buf, TUN_HDR_LEN, "data payload too long");
}
END_TEST

/* Per type: smallest/largest legal payload length, and the error just past
 * each bound, decided from the header alone (no payload bytes present). */
static const struct bound {
    uint8_t type;
    uint32_t stream, min, max;
    const char *too_short, *too_long;
} bounds[] = {
    { TUN_OPEN, 2, 8, 7 + 64 + 4096,
      "open payload too short", "open payload too long" },
    { TUN_OPEN_OK, 2, 4, 4,
      "open_ok payload is not 4 bytes", "open_ok payload is not 4 bytes" },
    { TUN_DATA, 2, 1, 65536,
      "data payload is empty", "data payload too long" },
    { TUN_WINDOW, 2, 4, 4,
      "window payload is not 4 bytes", "window payload is not 4 bytes" },
    { TUN_CLOSE, 2, 0, 0, NULL, "close payload is not empty" },
    { TUN_RESET, 2, 2, 2 + 256,
      "reset payload too short", "reset reason too long" },
    { TUN_CONTROL, 0, 1, 65536,
      "control payload is empty", "control payload too long" },
};

START_TEST(length_past_bounds_rejected_from_header)
{
    const struct bound *b = &bounds[_i];
    uint8_t buf[TUN_HDR_LEN];
    struct tun_frame f;

    hdr(buf, 1, b->type, b->stream, b->max + 1);
    EXPECT_INVALID(buf, TUN_HDR_LEN, b->too_long);
    hdr(buf, 1, b->type, b->stream, 0xffffffffu);
    EXPECT_INVALID(buf, TUN_HDR_LEN, b->too_long);
    if (b->min > 0) {
        hdr(buf, 1, b->type, b->stream, b->min - 1);
        EXPECT_INVALID(buf, TUN_HDR_LEN, b->too_short);
    }
    /* At the bounds the header is fine and the parser waits for payload. */
    hdr(buf, 1, b->type, b->stream, b->max);
    ck_assert_int_eq(tun_frame_parse(buf, TUN_HDR_LEN, &f), b->max ? -2 : 10);
    hdr(buf, 1, b->type, b->stream, b->min);
    ck_assert_int_eq(tun_frame_parse(buf, TUN_HDR_LEN, &f), b->min ? -2 : 10);
}
END_TEST

/* ---- DATA and CONTROL limits ---- */

static void check_blob_limits(uint8_t type, uint32_t stream, const char *long_err)
{
    struct tun_frame f, e = { .type = type, .stream = stream, .data = big2 };

    hdr(big, 1, type, stream, 65536);
    memset(big + TUN_HDR_LEN, 'q', 65536);
    ck_assert_int_eq(tun_frame_parse(big, TUN_HDR_LEN + 65536, &f),
                     TUN_HDR_LEN + 65536);
    ck_assert_uint_eq(f.data_len, 65536);
    ck_assert_ptr_eq(f.data, big + TUN_HDR_LEN);

    hdr(big, 1, type, stream, 1);
    ck_assert_int_eq(tun_frame_parse(big, TUN_HDR_LEN + 1, &f), TUN_HDR_LEN + 1);
    ck_assert_uint_eq(f.data_len, 1);

    hdr(big, 1, type, stream, 65537);
    EXPECT_INVALID(big, TUN_HDR_LEN + 65537, long_err);

    memset(big2, 'q', 65537);
    e.data_len = 65536;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 65536);
    e.data_len = 65537;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), -1);
    e.data_len = 0;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), -1);
    e.data_len = SIZE_MAX;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), -1);
    e.data_len = 1;
    e.data = NULL;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), -1);
}

START_TEST(data_limits)
{
    check_blob_limits(TUN_DATA, 9, "data payload too long");
}
END_TEST

START_TEST(control_limits)
{
    check_blob_limits(TUN_CONTROL, 0, "control payload too long");
}
END_TEST

/* ---- OPEN ---- */

START_TEST(open_largest)
{
    struct tun_frame f;
    size_t n = open_frame(big, 7 + 64 + 4096, 0, 64, 4096, 4096);

    ck_assert_int_eq(tun_frame_parse(big, n, &f), (ssize_t)n);
    ck_assert_uint_eq(f.service_len, 64);
    ck_assert_uint_eq(f.meta_len, 4096);
    ck_assert_ptr_eq(f.meta, big + TUN_HDR_LEN + 7 + 64);
    ck_assert_int_eq(tun_frame_encode(big2, BIG, &f), (ssize_t)n);
    ck_assert_mem_eq(big2, big, n);
}
END_TEST

START_TEST(open_smallest)
{
    struct tun_frame f;
    size_t n = open_frame(big, 8, 0, 1, 0, 0);

    ck_assert_int_eq(tun_frame_parse(big, n, &f), (ssize_t)n);
    ck_assert_uint_eq(f.service_len, 1);
    ck_assert_uint_eq(f.meta_len, 0);
}
END_TEST

START_TEST(open_service_length_errors)
{
    size_t n = open_frame(big, 8, 0, 0, 1, 1);
    EXPECT_INVALID(big, n, "service name is empty");
    n = open_frame(big, 7 + 65, 0, 65, 0, 0);
    EXPECT_INVALID(big, n, "service name too long");
    /* Claims 2 service bytes in a payload with room for 1. */
    n = open_frame(big, 8, 0, 1, 0, 0);
    big[TUN_HDR_LEN + 4] = 2;
    EXPECT_INVALID(big, n, "service name overruns the payload");
    n = open_frame(big, 8, 0, 1, 0, 0);
    big[TUN_HDR_LEN + 4] = 0xff;
    EXPECT_INVALID(big, n, "service name too long");
}
END_TEST

START_TEST(open_meta_errors)
{
    /* meta_len says 4097: refused on the length itself. */
    size_t n = open_frame(big, 7 + 1 + 10, 0, 1, 4097, 10);
    EXPECT_INVALID(big, n, "metadata too long");
    n = open_frame(big, 7 + 1 + 10, 0, 1, 0xffff, 10);
    EXPECT_INVALID(big, n, "metadata too long");
    /* meta_len one more and one less than the payload holds. */
    n = open_frame(big, 7 + 1 + 10, 0, 1, 11, 10);
    EXPECT_INVALID(big, n, "open lengths do not match the payload");
    n = open_frame(big, 7 + 1 + 10, 0, 1, 9, 10);
    EXPECT_INVALID(big, n, "open lengths do not match the payload");
    /* Service length that leaves no room for meta_len, etc. */
    n = open_frame(big, 7 + 3, 0, 3, 0, 0);
    big[TUN_HDR_LEN + 4] = 4;
    EXPECT_INVALID(big, n, "service name overruns the payload");
}
END_TEST

static int allowed(unsigned char c)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789.-";
    return memchr(set, c, sizeof(set) - 1) != NULL;
}

START_TEST(open_service_charset)
{
    int n_ok = 0;

    for (int c = 0; c < 256; c++) {
        char svc[3] = { 'a', (char)c, 'z' };
        struct tun_frame f, e = { .type = TUN_OPEN, .stream = 2,
                                  .service = svc, .service_len = 3 };
        size_t n = open_frame(big, 10, 0, 3, 0, 0);
        big[TUN_HDR_LEN + 6] = (uint8_t)c;
        if (allowed((unsigned char)c)) {
            n_ok++;
            ck_assert_int_eq(tun_frame_parse(big, n, &f), (ssize_t)n);
            ck_assert_int_eq(tun_frame_encode(big2, BIG, &e), (ssize_t)n);
        } else {
            EXPECT_INVALID(big, n, "service name has invalid character");
            ck_assert_int_eq(tun_frame_encode(big2, BIG, &e), -1);
        }
    }
    ck_assert_int_eq(n_ok, 26 + 10 + 2);
}
END_TEST

/* The character check covers the first and last byte, not just the middle. */
START_TEST(open_service_bad_char_at_ends)
{
    size_t n = open_frame(big, 7 + 64, 0, 64, 0, 0);
    big[TUN_HDR_LEN + 5] = 'A';
    EXPECT_INVALID(big, n, "service name has invalid character");
    n = open_frame(big, 7 + 64, 0, 64, 0, 0);
    big[TUN_HDR_LEN + 5 + 63] = '_';
    EXPECT_INVALID(big, n, "service name has invalid character");
}
END_TEST

/* ---- windows ---- */

static void window_frame(uint8_t *buf, uint8_t type, uint32_t w)
{
    if (type == TUN_OPEN) {
        open_frame(buf, 8, w, 1, 0, 0);
        return;
    }
    hdr(buf, 1, type, 2, 4);
    be32(buf + TUN_HDR_LEN, w);
}

START_TEST(window_bounds)
{
    static const uint8_t types[] = { TUN_OPEN, TUN_OPEN_OK, TUN_WINDOW };
    uint8_t t = types[_i];
    size_t n = t == TUN_OPEN ? 18 : 14;
    const char *over = t == TUN_WINDOW ? "window increment over 2^31-1"
                                       : "initial window over 2^31-1";
    struct tun_frame f, e = { .type = t, .stream = 2,
                              .service = "a", .service_len = 1 };

    window_frame(big, t, 0x7fffffffu);
    ck_assert_int_eq(tun_frame_parse(big, n, &f), (ssize_t)n);
    ck_assert_uint_eq(f.window, 0x7fffffffu);
    window_frame(big, t, 0x80000000u);
    EXPECT_INVALID(big, n, over);
    window_frame(big, t, 0xffffffffu);
    EXPECT_INVALID(big, n, over);
    window_frame(big, t, 1);
    ck_assert_int_eq(tun_frame_parse(big, n, &f), (ssize_t)n);
    ck_assert_uint_eq(f.window, 1);

    e.window = 0x7fffffffu;
    ck_assert_int_eq(tun_frame_encode(big2, BIG, &e), (ssize_t)n);
    e.window = 0x80000000u;
    EXPECT_ENCODE_FAILS(&e);
    e.window = 0xffffffffu;
    EXPECT_ENCODE_FAILS(&e);
}
END_TEST

START_TEST(window_zero)
{
    struct tun_frame f, e = { .type = TUN_WINDOW, .stream = 2 };

    window_frame(big, TUN_WINDOW, 0);
    EXPECT_INVALID(big, 14, "window increment is zero");
    EXPECT_ENCODE_FAILS(&e);
    /* A zero initial window is legal: the peer just may not send yet. */
    window_frame(big, TUN_OPEN_OK, 0);
    ck_assert_int_eq(tun_frame_parse(big, 14, &f), 14);
    window_frame(big, TUN_OPEN, 0);
    ck_assert_int_eq(tun_frame_parse(big, 18, &f), 18);
}
END_TEST

/* ---- RESET ---- */

START_TEST(reset_reason_limits)
{
    struct tun_frame f, e = { .type = TUN_RESET, .stream = 3,
                              .code = TUN_RESET_FLOW, .data = big2 };

    memset(big2, 'r', 300);
    hdr(big, 1, TUN_RESET, 3, 2 + 256);
    be16(big + TUN_HDR_LEN, TUN_RESET_FLOW);
    memset(big + TUN_HDR_LEN + 2, 'r', 256);
    ck_assert_int_eq(tun_frame_parse(big, TUN_HDR_LEN + 258, &f),
                     TUN_HDR_LEN + 258);
    ck_assert_uint_eq(f.data_len, 256);
    ck_assert_uint_eq(f.code, TUN_RESET_FLOW);
    hdr(big, 1, TUN_RESET, 3, 2 + 257);
    EXPECT_INVALID(big, TUN_HDR_LEN + 259, "reset reason too long");

    e.data_len = 256;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 258);
    e.data_len = 257;
    EXPECT_ENCODE_FAILS(&e);
    e.data_len = SIZE_MAX;
    EXPECT_ENCODE_FAILS(&e);
    e.data_len = 1;
    e.data = NULL;
    EXPECT_ENCODE_FAILS(&e);
    e.data_len = 0;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 2);
}
END_TEST

/* Codes outside the enum pass through: a later version may add codes. */
START_TEST(reset_any_code_roundtrips)
{
    static const uint16_t codes[] = { 0, 1, 8, 9, 0x7fff, 0xffff };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct tun_frame f, e = { .type = TUN_RESET, .stream = 1,
                                  .code = codes[i] };
        ck_assert_int_eq(tun_frame_encode(big, BIG, &e), 12);
        ck_assert_int_eq(tun_frame_parse(big, 12, &f), 12);
        ck_assert_uint_eq(f.code, codes[i]);
    }
}
END_TEST

/* ---- encode-only errors ---- */

START_TEST(encode_rejects_bad_type_and_stream)
{
    struct tun_frame e = { .type = 0, .stream = 1 };

    EXPECT_ENCODE_FAILS(&e);
    e.type = 8;
    EXPECT_ENCODE_FAILS(&e);
    e.type = 0xff;
    EXPECT_ENCODE_FAILS(&e);
    e.type = TUN_CLOSE;
    ck_assert_int_eq(tun_frame_encode(big2, BIG, &e), TUN_HDR_LEN);
    e.stream = 0;
    EXPECT_ENCODE_FAILS(&e);
    for (uint8_t t = TUN_OPEN; t <= TUN_RESET; t++) {
        struct tun_frame s = { .type = t, .stream = 0, .window = 1,
                               .service = "a", .service_len = 1,
                               .data = (const uint8_t *)"x", .data_len = 1 };
        EXPECT_ENCODE_FAILS(&s);
        s.stream = 2;
        ck_assert_int_gt(tun_frame_encode(big2, BIG, &s), 0);
    }
    struct tun_frame c = { .type = TUN_CONTROL, .stream = 1,
                           .data = (const uint8_t *)"{}", .data_len = 2 };
    EXPECT_ENCODE_FAILS(&c);
    c.stream = 0;
    ck_assert_int_eq(tun_frame_encode(big2, BIG, &c), TUN_HDR_LEN + 2);
}
END_TEST

START_TEST(encode_open_errors)
{
    char svc[66];
    struct tun_frame e = { .type = TUN_OPEN, .stream = 2, .service = svc,
                           .service_len = 64, .meta = big2, .meta_len = 4096 };

    memset(svc, 's', sizeof(svc));
    memset(big2, 'm', 4097);
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 7 + 64 + 4096);
    e.meta_len = 4097;
    EXPECT_ENCODE_FAILS(&e);
    e.meta_len = SIZE_MAX;
    EXPECT_ENCODE_FAILS(&e);
    e.meta_len = 0;
    e.service_len = 65;
    EXPECT_ENCODE_FAILS(&e);
    e.service_len = 0;
    EXPECT_ENCODE_FAILS(&e);
    e.service_len = 1;
    e.service = NULL;
    EXPECT_ENCODE_FAILS(&e);
    e.service = svc;
    e.meta = NULL;
    e.meta_len = 1;
    EXPECT_ENCODE_FAILS(&e);
    e.meta_len = 0;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 8);
}
END_TEST

/* Fields a type does not use are ignored by encode and zeroed by parse. */
START_TEST(unused_fields)
{
    struct tun_frame f, e = { .type = TUN_CLOSE, .stream = 4,
                              .window = 0xffffffffu, .code = 9,
                              .service = NULL, .service_len = 999,
                              .meta = NULL, .meta_len = 99999,
                              .data = NULL, .data_len = 5 };

    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN);
    memset(&f, 0xaa, sizeof(f));
    ck_assert_int_eq(tun_frame_parse(big, TUN_HDR_LEN, &f), TUN_HDR_LEN);
    ck_assert_uint_eq(f.window, 0);
    ck_assert_uint_eq(f.code, 0);
    ck_assert_ptr_null(f.service);
    ck_assert_ptr_null(f.meta);
    ck_assert_ptr_null(f.data);
    ck_assert_uint_eq(f.service_len + f.meta_len + f.data_len, 0);

    e.type = TUN_WINDOW;
    e.window = 7;
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 4);
    e.type = TUN_DATA;
    e.data = (const uint8_t *)"hello";
    ck_assert_int_eq(tun_frame_encode(big, BIG, &e), TUN_HDR_LEN + 5);
}
END_TEST

/* ---- put_header and names ---- */

START_TEST(put_header_bytes)
{
    static const uint8_t want[] = { 1, 3, 0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0 };
    struct tun_frame f;

    memset(big, 0xee, 32);
    ck_assert_uint_eq(tun_frame_put_header(big, TUN_DATA, 0xdeadbeefu, 65536),
                      TUN_HDR_LEN);
    ck_assert_mem_eq(big, want, sizeof(want));
    ck_assert_uint_eq(big[TUN_HDR_LEN], 0xee);
    memset(big + TUN_HDR_LEN, 'd', 65536);
    ck_assert_int_eq(tun_frame_parse(big, TUN_HDR_LEN + 65536, &f),
                     TUN_HDR_LEN + 65536);
    ck_assert_uint_eq(f.stream, 0xdeadbeefu);
}
END_TEST

START_TEST(type_names)
{
    ck_assert_str_eq(tun_frame_type_name(TUN_OPEN), "open");
    ck_assert_str_eq(tun_frame_type_name(TUN_OPEN_OK), "open_ok");
    ck_assert_str_eq(tun_frame_type_name(TUN_DATA), "data");
    ck_assert_str_eq(tun_frame_type_name(TUN_WINDOW), "window");
    ck_assert_str_eq(tun_frame_type_name(TUN_CLOSE), "close");
    ck_assert_str_eq(tun_frame_type_name(TUN_RESET), "reset");
    ck_assert_str_eq(tun_frame_type_name(TUN_CONTROL), "control");
    ck_assert_str_eq(tun_frame_type_name(0), "unknown");
    ck_assert_str_eq(tun_frame_type_name(8), "unknown");
    ck_assert_str_eq(tun_frame_type_name(0xff), "unknown");
}
END_TEST

START_TEST(reset_code_names)
{
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_REFUSED), "refused");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_UNREACHABLE), "unreachable");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_PROTOCOL), "protocol");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_FLOW), "flow");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_CANCEL), "cancel");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_INTERNAL), "internal");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_LIMIT), "limit");
    ck_assert_str_eq(tun_reset_code_name(TUN_RESET_UNAVAILABLE), "unavailable");
    ck_assert_str_eq(tun_reset_code_name(0), "unknown");
    ck_assert_str_eq(tun_reset_code_name(9), "unknown");
    ck_assert_str_eq(tun_reset_code_name(0xffff), "unknown");
}
END_TEST

Suite *suite_proto_frame(void)
{
    Suite *s = suite_create("proto_frame");
    TCase *tc = tcase_create("golden");
    int nb = (int)(sizeof(bounds) / sizeof(bounds[0]));

    tcase_add_loop_test(tc, golden_parse, 0, N_GOLDEN);
    tcase_add_loop_test(tc, golden_encode, 0, N_GOLDEN);
    tcase_add_loop_test(tc, golden_truncated, 0, N_GOLDEN);
    tcase_add_loop_test(tc, golden_trailing_bytes_not_consumed, 0, N_GOLDEN);
    tcase_add_loop_test(tc, golden_encode_cap, 0, N_GOLDEN);
    tcase_add_loop_test(tc, golden_roundtrip, 0, N_GOLDEN);
    tcase_add_test(tc, multi_frame_back_to_back);
    tcase_add_test(tc, multi_frame_last_truncated);
    suite_add_tcase(s, tc);

    tc = tcase_create("header");
    tcase_add_test(tc, bad_version);
    tcase_add_test(tc, unknown_type);
    tcase_add_test(tc, stream_zero_on_stream_types);
    tcase_add_test(tc, control_on_nonzero_stream);
    tcase_add_test(tc, partial_length_field_needs_more);
    tcase_add_loop_test(tc, length_past_bounds_rejected_from_header, 0, nb);
    suite_add_tcase(s, tc);

    tc = tcase_create("payload");
    tcase_add_test(tc, data_limits);
    tcase_add_test(tc, control_limits);
    tcase_add_test(tc, open_largest);
    tcase_add_test(tc, open_smallest);
    tcase_add_test(tc, open_service_length_errors);
    tcase_add_test(tc, open_meta_errors);
    tcase_add_test(tc, open_service_charset);
    tcase_add_test(tc, open_service_bad_char_at_ends);
    tcase_add_loop_test(tc, window_bounds, 0, 3);
    tcase_add_test(tc, window_zero);
    tcase_add_test(tc, reset_reason_limits);
    tcase_add_test(tc, reset_any_code_roundtrips);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, encode_rejects_bad_type_and_stream);
    tcase_add_test(tc, encode_open_errors);
    tcase_add_test(tc, unused_fields);
    tcase_add_test(tc, put_header_bytes);
    tcase_add_test(tc, type_names);
    tcase_add_test(tc, reset_code_names);
    suite_add_tcase(s, tc);
    return s;
}
