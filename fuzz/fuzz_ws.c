/*
 * libFuzzer target for proto/ws.c.
 *
 * Input: one flags byte (bit 0: parse as a server, expecting masked frames;
 * bits 1-2: the max_payload tier), then frames back to back. Each header
 * that parses must rebuild to the very same bytes (the parser admits only
 * minimal encodings, so the encoding is unique) and parse again to the same
 * fields; each payload is unmasked whole and in two pieces, which must
 * agree with a byte-wise reference. CLOSE payloads go through
 * ws_close_parse, 24-byte runs through the key functions.
 */
#include "proto/ws.h"

#include <stdlib.h>
#include <string.h>

static const uint64_t max_tiers[4] = { 125, 65536, 1u << 24, UINT64_MAX };

static void check_roundtrip(const uint8_t *hdr, size_t n, const struct ws_hdr *h,
                            bool masked, uint64_t max)
{
    uint8_t built[WS_MAX_HDR];
    struct ws_hdr again;

    size_t m = ws_hdr_build(built, h->fin, h->opcode, h->payload_len,
                            h->masked ? h->mask : NULL);
    if (m != n || memcmp(built, hdr, n) != 0)
        abort();
    if (ws_hdr_parse(built, m, masked, max, &again) != (ssize_t)m)
        abort();
    if (again.fin != h->fin || again.opcode != h->opcode ||
        again.masked != h->masked || again.payload_len != h->payload_len ||
        memcmp(again.mask, h->mask, 4) != 0)
        abort();
}

static void check_unmask(const uint8_t *p, size_t n, const uint8_t mask[4],
                         uint64_t offset, size_t cut)
{
    uint8_t *whole = malloc(n + 1), *pieces = malloc(n + 1);
    if (!whole || !pieces)
        abort();
    memcpy(whole, p, n);
    memcpy(pieces, p, n);
    ws_mask(whole, n, mask, offset);
    cut = n ? cut % (n + 1) : 0;
    ws_mask(pieces, cut, mask, offset);
    ws_mask(pieces + cut, n - cut, mask, offset + cut);
    for (size_t i = 0; i < n; i++)
        if (whole[i] != (p[i] ^ mask[(offset + i) & 3]) || pieces[i] != whole[i])
            abort();
    free(whole);
    free(pieces);
}

static void check_close(const uint8_t *p, size_t n)
{
    uint16_t code;
    const char *reason;
    size_t rlen;
    if (ws_close_parse(p, n, &code, &reason, &rlen) == 0) {
        if (n == 0 ? code != 1005 : (rlen != n - 2 || reason != (const char *)p + 2))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool masked = data[0] & 1;
    uint64_t max = max_tiers[(data[0] >> 1) & 3];
    const uint8_t *p = data + 1;
    size_t len = size - 1, pos = 0;

    while (pos < len) {
        struct ws_hdr h;
        ssize_t n = ws_hdr_parse(p + pos, len - pos, masked, max, &h);
        if (n == -1 && !h.error)
            abort();
        if (n < 0)
            break;
        if (n < 2 || n > WS_MAX_HDR || (size_t)n > len - pos || h.payload_len > max)
            abort();
        check_roundtrip(p + pos, (size_t)n, &h, masked, max);
        pos += (size_t)n;
        size_t avail = len - pos;
        size_t take = h.payload_len < avail ? (size_t)h.payload_len : avail;
        static const uint8_t zero[4];
        check_unmask(p + pos, take, h.masked ? h.mask : zero, h.payload_len & 7,
                     h.mask[0]);
        if (h.opcode == WS_OP_CLOSE && take == h.payload_len)
            check_close(p + pos, take);
        pos += take;
    }

    if (len >= 24) {
        char out[29];
        const char *key = (const char *)p + len - 24;
        if (ws_key_valid(key, 24)) {
            ws_accept_key(key, 24, out);
            if (strlen(out) != 28)
                abort();
        }
    }
    return 0;
}
