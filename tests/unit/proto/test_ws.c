/*
 * Tests for proto/ws.c: RFC 6455 examples, every header error, the length
 * boundaries, truncation at every byte, masking against a byte-wise
 * reference at every alignment and offset.
 */
#include "proto/ws.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define NO_LIMIT UINT64_MAX

/* Parses buf whole and checks every strict prefix is -2. */
static ssize_t parse_all_prefixes(const uint8_t *buf, size_t len, bool masked,
                                  uint64_t max, struct ws_hdr *h)
{
    for (size_t i = 0; i < len; i++) {
        ck_assert_int_eq(ws_hdr_parse(buf, i, masked, max, h), -2);
        ck_assert_ptr_null(h->error);
    }
    return ws_hdr_parse(buf, len, masked, max, h);
}

/* ---- RFC 6455 5.7 examples ---- */

START_TEST(rfc_unmasked_hello)
{
    const uint8_t f[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    struct ws_hdr h;
    ck_assert_int_eq(parse_all_prefixes(f, 2, false, NO_LIMIT, &h), 2);
    ck_assert_int_eq(ws_hdr_parse(f, sizeof(f), false, NO_LIMIT, &h), 2);
    ck_assert(h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
    ck_assert(!h.masked);
    ck_assert_uint_eq(h.payload_len, 5);
    ck_assert_ptr_null(h.error);
}
END_TEST

START_TEST(rfc_masked_hello)
{
    uint8_t f[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                    0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    struct ws_hdr h;
    ck_assert_int_eq(parse_all_prefixes(f, 6, true, NO_LIMIT, &h), 6);
    ck_assert(h.masked);
    ck_assert_uint_eq(h.payload_len, 5);
    const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    ck_assert_mem_eq(h.mask, mask, 4);
    ws_mask(f + 6, 5, h.mask, 0);
    ck_assert_mem_eq(f + 6, "Hello", 5);
}
END_TEST

START_TEST(rfc_fragments_and_ping)
{
    const uint8_t first[] = { 0x01, 0x03, 'H', 'e', 'l' };
    const uint8_t last[] = { 0x80, 0x02, 'l', 'o' };
    const uint8_t ping[] = { 0x89, 0x05, 'H', 'e', 'l', 'l', 'o' };
    const uint8_t pong[] = { 0x8a, 0x00 };
    struct ws_hdr h;

    ck_assert_int_eq(ws_hdr_parse(first, sizeof(first), false, NO_LIMIT, &h), 2);
    ck_assert(!h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
    ck_assert_int_eq(ws_hdr_parse(last, sizeof(last), false, NO_LIMIT, &h), 2);
    ck_assert(h.fin);
    ck_assert_uint_eq(h.opcode, WS_OP_CONT);
    ck_assert_int_eq(ws_hdr_parse(ping, sizeof(ping), false, NO_LIMIT, &h), 2);
    ck_assert_uint_eq(h.opcode, WS_OP_PING);
    ck_assert_int_eq(ws_hdr_parse(pong, sizeof(pong), false, NO_LIMIT, &h), 2);
    ck_assert_uint_eq(h.opcode, WS_OP_PONG);
    ck_assert_uint_eq(h.payload_len, 0);
}
END_TEST

START_TEST(rfc_256_and_64k)
{
    const uint8_t m256[] = { 0x82, 0x7e, 0x01, 0x00 };
    const uint8_t m64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };
    struct ws_hdr h;

    ck_assert_int_eq(parse_all_prefixes(m256, sizeof(m256), false, NO_LIMIT, &h), 4);
    ck_assert_uint_eq(h.opcode, WS_OP_BINARY);
    ck_assert_uint_eq(h.payload_len, 256);
    ck_assert_int_eq(parse_all_prefixes(m64k, sizeof(m64k), false, NO_LIMIT, &h), 10);
    ck_assert_uint_eq(h.payload_len, 65536);
}
END_TEST

/* ---- header errors ---- */

static void expect_invalid(const uint8_t *f, size_t len, bool masked,
                           uint64_t max, const char *why)
{
    struct ws_hdr h;
    ck_assert_int_eq(ws_hdr_parse(f, len, masked, max, &h), -1);
    ck_assert_str_eq(h.error, why);
}

START_TEST(reserved_bits)
{
    const uint8_t rsv[] = { 0x40, 0x20, 0x10, 0x70 };
    for (size_t i = 0; i < sizeof(rsv); i++) {
        uint8_t f[2] = { (uint8_t)(0x82 | rsv[i]), 0x00 };
        /* decided on the first byte alone */
        expect_invalid(f, 1, false, NO_LIMIT, "reserved bits set");
        expect_invalid(f, 2, false, NO_LIMIT, "reserved bits set");
    }
}
END_TEST

START_TEST(unknown_opcodes)
{
    const uint8_t bad[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
    const uint8_t good[] = { 0, 1, 2, 8, 9, 0xa };
    struct ws_hdr h;
    for (size_t i = 0; i < sizeof(bad); i++) {
        uint8_t f[2] = { (uint8_t)(0x80 | bad[i]), 0x00 };
        expect_invalid(f, 1, false, NO_LIMIT, "unknown opcode");
        expect_invalid(f, 2, false, NO_LIMIT, "unknown opcode");
    }
    for (size_t i = 0; i < sizeof(good); i++) {
        uint8_t f[2] = { (uint8_t)(0x80 | good[i]), 0x00 };
        ck_assert_int_eq(ws_hdr_parse(f, 2, false, NO_LIMIT, &h), 2);
        ck_assert_uint_eq(h.opcode, good[i]);
    }
}
END_TEST

START_TEST(control_frames)
{
    const uint8_t ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    struct ws_hdr h;
    for (size_t i = 0; i < sizeof(ops); i++) {
        uint8_t nofin[2] = { ops[i], 0x00 };
        expect_invalid(nofin, 1, false, NO_LIMIT, "fragmented control frame");
        uint8_t f125[2] = { (uint8_t)(0x80 | ops[i]), 125 };
        ck_assert_int_eq(ws_hdr_parse(f125, 2, false, NO_LIMIT, &h), 2);
        ck_assert_uint_eq(h.payload_len, 125);
        /* 126 and 127 announce extended lengths: refused before they arrive */
        uint8_t f126[2] = { (uint8_t)(0x80 | ops[i]), 126 };
        expect_invalid(f126, 2, false, NO_LIMIT, "control frame too long");
        uint8_t f127[2] = { (uint8_t)(0x80 | ops[i]), 127 };
        expect_invalid(f127, 2, false, NO_LIMIT, "control frame too long");
    }
}
END_TEST

START_TEST(mask_direction)
{
    const uint8_t unmasked[] = { 0x82, 0x01 };
    const uint8_t masked[] = { 0x82, 0x81, 1, 2, 3, 4 };
    expect_invalid(unmasked, 2, true, NO_LIMIT, "unmasked client frame");
    expect_invalid(masked, 2, false, NO_LIMIT, "masked server frame");
}
END_TEST

START_TEST(nonminimal_16)
{
    struct ws_hdr h;
    const uint8_t f125[] = { 0x82, 126, 0x00, 125 };
    const uint8_t f0[] = { 0x82, 126, 0x00, 0x00 };
    const uint8_t f126[] = { 0x82, 126, 0x00, 126 };
    const uint8_t fmax[] = { 0x82, 126, 0xff, 0xff };
    expect_invalid(f125, 4, false, NO_LIMIT, "non-minimal length");
    expect_invalid(f0, 4, false, NO_LIMIT, "non-minimal length");
    ck_assert_int_eq(ws_hdr_parse(f126, 4, false, NO_LIMIT, &h), 4);
    ck_assert_uint_eq(h.payload_len, 126);
    ck_assert_int_eq(ws_hdr_parse(fmax, 4, false, NO_LIMIT, &h), 4);
    ck_assert_uint_eq(h.payload_len, 65535);
}
END_TEST

START_TEST(nonminimal_64)
{
    struct ws_hdr h;
    const uint8_t f65535[] = { 0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    const uint8_t f5[] = { 0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5 };
    const uint8_t f65536[] = { 0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0 };
    expect_invalid(f65535, 10, false, NO_LIMIT, "non-minimal length");
    expect_invalid(f5, 10, false, NO_LIMIT, "non-minimal length");
    ck_assert_int_eq(ws_hdr_parse(f65536, 10, false, NO_LIMIT, &h), 10);
    ck_assert_uint_eq(h.payload_len, 65536);
}
END_TEST

START_TEST(top_bit_64)
{
    struct ws_hdr h;
    const uint8_t top[] = { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    const uint8_t all[] = { 0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    const uint8_t max[] = { 0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    expect_invalid(top, 10, false, NO_LIMIT, "length top bit set");
    expect_invalid(all, 10, false, NO_LIMIT, "length top bit set");
    ck_assert_int_eq(ws_hdr_parse(max, 10, false, NO_LIMIT, &h), 10);
    ck_assert_uint_eq(h.payload_len, INT64_MAX);
}
END_TEST

START_TEST(max_payload_7bit)
{
    struct ws_hdr h;
    const uint8_t f[] = { 0x82, 0x80 | 100, 1, 2, 3, 4 };
    ck_assert_int_eq(ws_hdr_parse(f, sizeof(f), true, 100, &h), 6);
    /* refused with the mask still missing */
    expect_invalid(f, 2, true, 99, "payload too big");
    expect_invalid(f, 2, true, 0, "payload too big");
    const uint8_t empty[] = { 0x82, 0x80, 1, 2, 3, 4 };
    ck_assert_int_eq(ws_hdr_parse(empty, sizeof(empty), true, 0, &h), 6);
}
END_TEST

START_TEST(max_payload_16bit)
{
    struct ws_hdr h;
    const uint8_t f[] = { 0x82, 0x80 | 126, 0x10, 0x00, 1, 2, 3, 4 };
    ck_assert_int_eq(ws_hdr_parse(f, sizeof(f), true, 4096, &h), 8);
    expect_invalid(f, 4, true, 4095, "payload too big");
    ck_assert_int_eq(ws_hdr_parse(f, 3, true, 4095, &h), -2);
}
END_TEST

START_TEST(max_payload_64bit)
{
    struct ws_hdr h;
    const uint8_t f[] = { 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4 };
    ck_assert_int_eq(ws_hdr_parse(f, sizeof(f), true, 1048576, &h), 14);
    ck_assert_uint_eq(h.payload_len, 1048576);
    expect_invalid(f, 10, true, 1048575, "payload too big");
    ck_assert_int_eq(ws_hdr_parse(f, 9, true, 1048575, &h), -2);
}
END_TEST

START_TEST(truncation_every_offset)
{
    const uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, (uint64_t)1 << 40 };
    const uint8_t mask[4] = { 0xde, 0xad, 0xbe, 0xef };
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int m = 0; m < 2; m++) {
            uint8_t buf[WS_MAX_HDR];
            struct ws_hdr h;
            size_t n = ws_hdr_build(buf, true, WS_OP_BINARY, lens[i], m ? mask : NULL);
            ck_assert_int_eq(parse_all_prefixes(buf, n, m, NO_LIMIT, &h), (ssize_t)n);
            ck_assert_uint_eq(h.payload_len, lens[i]);
        }
    }
}
END_TEST

/* ---- build ---- */

START_TEST(build_lengths)
{
    const struct { uint64_t len; size_t hdr; } cases[] = {
        { 0, 2 }, { 125, 2 }, { 126, 4 }, { 65535, 4 }, { 65536, 10 },
        { INT64_MAX, 10 },
    };
    const uint8_t mask[4] = { 1, 2, 3, 4 };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[WS_MAX_HDR];
        struct ws_hdr h;
        ck_assert_uint_eq(ws_hdr_build(buf, true, WS_OP_TEXT, cases[i].len, NULL),
                          cases[i].hdr);
        ck_assert_int_eq(ws_hdr_parse(buf, cases[i].hdr, false, NO_LIMIT, &h),
                         (ssize_t)cases[i].hdr);
        ck_assert_uint_eq(h.payload_len, cases[i].len);
        ck_assert_uint_eq(ws_hdr_build(buf, false, WS_OP_CONT, cases[i].len, mask),
                          cases[i].hdr + 4);
        ck_assert_int_eq(ws_hdr_parse(buf, cases[i].hdr + 4, true, NO_LIMIT, &h),
                         (ssize_t)cases[i].hdr + 4);
        ck_assert(!h.fin);
        ck_assert_uint_eq(h.opcode, WS_OP_CONT);
        ck_assert_mem_eq(h.mask, mask, 4);
    }
}
END_TEST

START_TEST(build_bytes)
{
    uint8_t buf[WS_MAX_HDR];
    const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
    const uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d };
    const uint8_t b64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };
    const uint8_t close[] = { 0x88, 0x02 };
    ck_assert_uint_eq(ws_hdr_build(buf, true, WS_OP_TEXT, 5, mask), 6);
    ck_assert_mem_eq(buf, hello, 6);
    ck_assert_uint_eq(ws_hdr_build(buf, true, WS_OP_BINARY, 65536, NULL), 10);
    ck_assert_mem_eq(buf, b64k, 10);
    ck_assert_uint_eq(ws_hdr_build(buf, true, WS_OP_CLOSE, 2, NULL), 2);
    ck_assert_mem_eq(buf, close, 2);
}
END_TEST

/* ---- masking ---- */

static void ref_mask(uint8_t *d, size_t n, const uint8_t m[4], uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        d[i] ^= m[(off + i) % 4];
}

START_TEST(mask_matches_reference)
{
    const uint8_t m[4] = { 0x9c, 0x01, 0xff, 0x5a };
    uint8_t a[300], b[300];
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len + align <= 150; len += (len < 70 ? 1 : 13))
            for (uint64_t off = 0; off < 9; off++) {
                for (size_t i = 0; i < sizeof(a); i++)
                    a[i] = b[i] = (uint8_t)(i * 7 + 3);
                ws_mask(a + align, len, m, off);
                ref_mask(b + align, len, m, off);
                ck_assert_mem_eq(a, b, sizeof(a));
            }
}
END_TEST

START_TEST(mask_in_pieces)
{
    const uint8_t m[4] = { 0x11, 0x22, 0x33, 0x44 };
    uint8_t whole[1000], pieces[1000];
    for (size_t i = 0; i < sizeof(whole); i++)
        whole[i] = pieces[i] = (uint8_t)(i ^ (i >> 3));
    ws_mask(whole, sizeof(whole), m, 0);
    const size_t cuts[] = { 0, 1, 3, 4, 11, 64, 65, 333, 334, 999, 1000 };
    for (size_t c = 0; c + 1 < sizeof(cuts) / sizeof(cuts[0]); c++)
        ws_mask(pieces + cuts[c], cuts[c + 1] - cuts[c], m, cuts[c]);
    ck_assert_mem_eq(whole, pieces, sizeof(whole));
    /* masking is its own inverse, and a large offset rotates the same way */
    ws_mask(pieces, sizeof(pieces), m, (uint64_t)1 << 40);
    for (size_t i = 0; i < sizeof(pieces); i++)
        ck_assert_uint_eq(pieces[i], (uint8_t)(i ^ (i >> 3)));
}
END_TEST

START_TEST(mask_large)
{
    const size_t n = 1 << 20;
    uint8_t *a = malloc(n), *b = malloc(n);
    const uint8_t m[4] = { 0xa5, 0x5a, 0x0f, 0xf0 };
    ck_assert(a && b);
    for (size_t i = 0; i < n; i++)
        a[i] = b[i] = (uint8_t)(i * 131);
    ws_mask(a + 3, n - 3, m, 2);
    ref_mask(b + 3, n - 3, m, 2);
    ck_assert_mem_eq(a, b, n);
    free(a);
    free(b);
}
END_TEST

/* ---- handshake keys ---- */

START_TEST(accept_key_rfc)
{
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    ws_accept_key(key, strlen(key), out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(accept_key_other)
{
    /* the key only counts up to key_len */
    char out[29];
    const char *key = "x3JJHMbDL1EzLkh9GBhXDw==trailing";
    ws_accept_key(key, 24, out);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    ck_assert_uint_eq(strlen(out), 28);
}
END_TEST

START_TEST(accept_key_too_long)
{
    char key[200];
    char out[29];
    memset(key, 'A', sizeof(key));
    memset(out, 'x', sizeof(out));
    ws_accept_key(key, 129, out);
    ck_assert_str_eq(out, "");
    ws_accept_key(key, 128, out);
    ck_assert_uint_eq(strlen(out), 28);
}
END_TEST

START_TEST(key_valid)
{
    ck_assert(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
    ck_assert(ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    ck_assert(ws_key_valid("+/+/+/+/+/+/+/+/+/+/+w==", 24));
    ck_assert(ws_key_valid("x3JJHMbDL1EzLkh9GBhXDw==", 24));
    /* lengths around 24 */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 23));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ===", 25));
    ck_assert(!ws_key_valid("", 0));
    /* padding, alphabet, canonical last digit */
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQA=", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25j=Q==", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ-==", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ Q=", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZR==", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ/==", 24));
    ck_assert(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ\0==", 24));
}
END_TEST

/* ---- close payloads ---- */

START_TEST(close_empty)
{
    uint16_t code = 0;
    const char *reason = "x";
    size_t rlen = 9;
    ck_assert_int_eq(ws_close_parse((const uint8_t *)"", 0, &code, &reason, &rlen), 0);
    ck_assert_uint_eq(code, 1005);
    ck_assert_uint_eq(rlen, 0);
}
END_TEST

START_TEST(close_one_byte)
{
    uint16_t code;
    const uint8_t p[] = { 0x03 };
    ck_assert_int_eq(ws_close_parse(p, 1, &code, NULL, NULL), -1);
}
END_TEST

START_TEST(close_codes)
{
    const uint16_t good[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 3000, 3999, 4000, 4999 };
    const uint16_t bad[] = { 0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014,
                             1015, 1016, 2000, 2999, 5000, 65535 };
    uint16_t code;
    const char *reason;
    size_t rlen;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint8_t p[2] = { (uint8_t)(good[i] >> 8), (uint8_t)good[i] };
        ck_assert_int_eq(ws_close_parse(p, 2, &code, &reason, &rlen), 0);
        ck_assert_uint_eq(code, good[i]);
        ck_assert_uint_eq(rlen, 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t p[2] = { (uint8_t)(bad[i] >> 8), (uint8_t)bad[i] };
        ck_assert_int_eq(ws_close_parse(p, 2, &code, &reason, &rlen), -1);
    }
}
END_TEST

START_TEST(close_reason)
{
    const uint8_t p[] = { 0x03, 0xe8, 'b', 'y', 'e' };
    uint16_t code;
    const char *reason;
    size_t rlen;
    ck_assert_int_eq(ws_close_parse(p, sizeof(p), &code, &reason, &rlen), 0);
    ck_assert_uint_eq(code, 1000);
    ck_assert_uint_eq(rlen, 3);
    ck_assert_mem_eq(reason, "bye", 3);
}
END_TEST

START_TEST(close_length_limit)
{
    uint8_t p[126];
    uint16_t code;
    memset(p, 'a', sizeof(p));
    p[0] = 0x03;
    p[1] = 0xe9;
    ck_assert_int_eq(ws_close_parse(p, 125, &code, NULL, NULL), 0);
    ck_assert_uint_eq(code, 1001);
    ck_assert_int_eq(ws_close_parse(p, 126, &code, NULL, NULL), -1);
}
END_TEST

static int close_with(const char *utf8, size_t n)
{
    uint8_t p[64];
    uint16_t code;
    p[0] = 0x03;
    p[1] = 0xe8;
    memcpy(p + 2, utf8, n);
    return ws_close_parse(p, n + 2, &code, NULL, NULL);
}

START_TEST(close_utf8)
{
    ck_assert_int_eq(close_with("\xc3\xa9", 2), 0);             /* U+00E9 */
    ck_assert_int_eq(close_with("\xe2\x82\xac", 3), 0);         /* U+20AC */
    ck_assert_int_eq(close_with("\xf0\x9d\x84\x9e", 4), 0);     /* U+1D11E */
    ck_assert_int_eq(close_with("\xf4\x8f\xbf\xbf", 4), 0);     /* U+10FFFF */
    ck_assert_int_eq(close_with("\xed\x9f\xbf", 3), 0);         /* U+D7FF */
    ck_assert_int_eq(close_with("\xee\x80\x80", 3), 0);         /* U+E000 */
    ck_assert_int_eq(close_with("\xe0\xa0\x80", 3), 0);         /* U+0800 */
    ck_assert_int_eq(close_with("\xf0\x90\x80\x80", 4), 0);     /* U+10000 */

    ck_assert_int_eq(close_with("\x80", 1), -1);                /* lone continuation */
    ck_assert_int_eq(close_with("\xc0\x80", 2), -1);            /* overlong NUL */
    ck_assert_int_eq(close_with("\xc1\xbf", 2), -1);            /* overlong */
    ck_assert_int_eq(close_with("\xe0\x9f\xbf", 3), -1);        /* overlong */
    ck_assert_int_eq(close_with("\xf0\x8f\xbf\xbf", 4), -1);    /* overlong */
    ck_assert_int_eq(close_with("\xed\xa0\x80", 3), -1);        /* surrogate */
    ck_assert_int_eq(close_with("\xf4\x90\x80\x80", 4), -1);    /* past U+10FFFF */
    ck_assert_int_eq(close_with("\xf5\x80\x80\x80", 4), -1);
    ck_assert_int_eq(close_with("\xff", 1), -1);
    ck_assert_int_eq(close_with("\xe2\x82", 2), -1);            /* truncated */
    ck_assert_int_eq(close_with("\xe2\x28\xac", 3), -1);        /* bad 2nd byte */
    ck_assert_int_eq(close_with("\xe2\x82\x28", 3), -1);        /* bad 3rd byte */
    ck_assert_int_eq(close_with("\xf0\x9d\x84", 3), -1);
    ck_assert_int_eq(close_with("ok\xc3", 3), -1);
}
END_TEST

Suite *suite_proto_ws(void)
{
    Suite *s = suite_create("proto_ws");
    TCase *t = tcase_create("hdr");
    tcase_add_test(t, rfc_unmasked_hello);
    tcase_add_test(t, rfc_masked_hello);
    tcase_add_test(t, rfc_fragments_and_ping);
    tcase_add_test(t, rfc_256_and_64k);
    tcase_add_test(t, reserved_bits);
    tcase_add_test(t, unknown_opcodes);
    tcase_add_test(t, control_frames);
    tcase_add_test(t, mask_direction);
    tcase_add_test(t, nonminimal_16);
    tcase_add_test(t, nonminimal_64);
    tcase_add_test(t, top_bit_64);
    tcase_add_test(t, max_payload_7bit);
    tcase_add_test(t, max_payload_16bit);
    tcase_add_test(t, max_payload_64bit);
    tcase_add_test(t, truncation_every_offset);
    tcase_add_test(t, build_lengths);
    tcase_add_test(t, build_bytes);
    suite_add_tcase(s, t);

    t = tcase_create("mask");
    tcase_add_test(t, mask_matches_reference);
    tcase_add_test(t, mask_in_pieces);
    tcase_add_test(t, mask_large);
    suite_add_tcase(s, t);

    t = tcase_create("handshake");
    tcase_add_test(t, accept_key_rfc);
    tcase_add_test(t, accept_key_other);
    tcase_add_test(t, accept_key_too_long);
    tcase_add_test(t, key_valid);
    suite_add_tcase(s, t);

    t = tcase_create("close");
    tcase_add_test(t, close_empty);
    tcase_add_test(t, close_one_byte);
    tcase_add_test(t, close_codes);
    tcase_add_test(t, close_reason);
    tcase_add_test(t, close_length_limit);
    tcase_add_test(t, close_utf8);
    suite_add_tcase(s, t);
    return s;
}
