/*
 * ws: RFC 6455 framing as a pure codec. See ws.h.
 *
 * The header parser decides as early as the bytes allow: a reserved bit or
 * an unknown opcode fails on the first byte, an oversized payload fails as
 * soon as its length field is complete (before the mask arrives), so a peer
 * cannot make us buffer anything for a frame we are going to refuse.
 */
#include "proto/ws.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_GUID_LEN (sizeof(WS_GUID) - 1)

/* A real key is 24 characters; anything much longer is not a key, and
 * bounding it lets the hash input live on the stack. */
#define WS_KEY_MAX 128

static bool opcode_known(uint8_t op)
{
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

static int hdr_fail(struct ws_hdr *out, const char *why)
{
    out->error = why;
    return -1;
}

/* Checks what the first two bytes say on their own. 0 or -1. */
static int check_lead(const uint8_t *buf, size_t len, bool expect_masked,
                      struct ws_hdr *out)
{
    out->fin = (buf[0] & 0x80) != 0;
    out->opcode = buf[0] & 0x0f;
    if (buf[0] & 0x70)
        return hdr_fail(out, "reserved bits set");
    if (!opcode_known(out->opcode))
        return hdr_fail(out, "unknown opcode");
    if ((out->opcode & 0x08) && !out->fin)
        return hdr_fail(out, "fragmented control frame");
    if (len < 2)
        return 0;
    out->masked = (buf[1] & 0x80) != 0;
    if (out->masked != expect_masked)
        return hdr_fail(out, expect_masked ? "unmasked client frame"
                                           : "masked server frame");
    if ((out->opcode & 0x08) && (buf[1] & 0x7f) > WS_MAX_CONTROL_PAYLOAD)
        return hdr_fail(out, "control frame too long");
    return 0;
}

ssize_t ws_hdr_parse(const uint8_t *buf, size_t len, bool expect_masked,
                     uint64_t max_payload, struct ws_hdr *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return -2;
    if (check_lead(buf, len, expect_masked, out) < 0)
        return -1;
    if (len < 2)
        return -2;

    uint8_t len7 = buf[1] & 0x7f;
    size_t pos = 2;
    uint64_t plen = len7;
    if (len7 == 126) {
        if (len < 4)
            return -2;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126)
            return hdr_fail(out, "non-minimal length");
        pos = 4;
    } else if (len7 == 127) {
        if (len < 10)
            return -2;
        plen = 0;
        for (size_t i = 2; i < 10; i++)
            plen = plen << 8 | buf[i];
        if (plen >> 63)
            return hdr_fail(out, "length top bit set");
        if (plen < 65536)
            return hdr_fail(out, "non-minimal length");
        pos = 10;
    }
    out->payload_len = plen;
    if (plen > max_payload)
        return hdr_fail(out, "payload too big");

    if (out->masked) {
        if (len - pos < 4)
            return -2;
        memcpy(out->mask, buf + pos, 4);
        pos += 4;
    }
    return (ssize_t)pos;
}

size_t ws_hdr_build(uint8_t *buf, bool fin, uint8_t opcode, uint64_t payload_len,
                    const uint8_t mask[4])
{
    size_t pos = 2;
    buf[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    buf[1] = mask ? 0x80 : 0;
    if (payload_len < 126) {
        buf[1] |= (uint8_t)payload_len;
    } else if (payload_len <= 0xffff) {
        buf[1] |= 126;
        buf[2] = (uint8_t)(payload_len >> 8);
        buf[3] = (uint8_t)payload_len;
        pos = 4;
    } else {
        buf[1] |= 127;
        for (int i = 0; i < 8; i++)
            buf[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        pos = 10;
    }
    if (mask) {
        memcpy(buf + pos, mask, 4);
        pos += 4;
    }
    return pos;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    /* The mask rotated to this offset, twice over: as bytes its layout
     * matches memory order, so the 64-bit XOR is endian-neutral, and since
     * it repeats every 4 bytes rot[i & 7] is the key byte for data[i]. */
    uint8_t rot[8];
    for (unsigned i = 0; i < 8; i++)
        rot[i] = mask[(offset + i) & 3];
    uint64_t m;
    memcpy(&m, rot, sizeof(m));

    size_t i = 0;
    for (; len - i >= 32; i += 32) {
        uint64_t w[4];
        memcpy(w, data + i, sizeof(w));
        w[0] ^= m;
        w[1] ^= m;
        w[2] ^= m;
        w[3] ^= m;
        memcpy(data + i, w, sizeof(w));
    }
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, data + i, sizeof(w));
        w ^= m;
        memcpy(data + i, &w, sizeof(w));
    }
    for (; i < len; i++)
        data[i] ^= rot[i & 7];
}

/*
 * A key over WS_KEY_MAX bytes (never a valid key; check ws_key_valid first)
 * gets an empty string, which no client will accept.
 */
void ws_accept_key(const char *key, size_t key_len, char out[29])
{
    uint8_t in[WS_KEY_MAX + WS_GUID_LEN];
    uint8_t md[SHA_DIGEST_LENGTH];

    out[0] = '\0';
    if (key_len > WS_KEY_MAX)
        return;
    memcpy(in, key, key_len);
    memcpy(in + key_len, WS_GUID, WS_GUID_LEN);
    SHA1(in, key_len + WS_GUID_LEN, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* 16 bytes are 22 base64 digits and "=="; the last digit carries only two
 * bits of data, so its low four bits must be zero in a canonical encoding. */
bool ws_key_valid(const char *key, size_t key_len)
{
    if (key_len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        int v = b64_value(key[i]);
        if (v < 0)
            return false;
        if (i == 21 && (v & 0x0f))
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 if it is not
 * well-formed: overlong forms, surrogates and values past U+10FFFF fail. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;   /* bounds of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static bool close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* reason and reason_len may be NULL. They point into p; on -1 they are
 * left empty. */
int ws_close_parse(const uint8_t *p, size_t len, uint16_t *code,
                   const char **reason, size_t *reason_len)
{
    const char *r = NULL;
    size_t rlen = 0;
    int rc = -1;

    *code = 0;
    if (len == 0) {
        *code = 1005;
        rc = 0;
        goto out;
    }
    if (len < 2 || len > WS_MAX_CONTROL_PAYLOAD)
        goto out;
    *code = (uint16_t)(p[0] << 8 | p[1]);
    if (!close_code_valid(*code) || !utf8_valid(p + 2, len - 2))
        goto out;
    r = (const char *)p + 2;
    rlen = len - 2;
    rc = 0;
out:
    if (reason)
        *reason = r;
    if (reason_len)
        *reason_len = rlen;
    return rc;
}
