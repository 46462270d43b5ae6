/*
 * libFuzzer target for tunnel CONTROL messages (docs/PROTOCOL.md section 8),
 * the JSON the agents and the server exchange on stream 0. The input is cut
 * at 0xff bytes into payloads; each is framed with tun_frame_encode, the
 * frames are laid back to back as in one websocket message and decoded
 * again with tun_frame_parse, which must give back exactly the payloads
 * (empty or oversized ones must be refused by both). Every payload that
 * survives is then read the way both ends read it: json_loadb, then the
 * string member "type" ("standby" is the one the agents act on).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

#define MAX_PARTS 16

/* As agent.c's on_control: 1 standby, 0 anything else (ignored). */
static int interpret(const uint8_t *json, size_t len)
{
    json_t *msg = json_loadb((const char *)json, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    int standby = type && strcmp(type, "standby") == 0;
    json_decref(msg);
    return standby;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t msg[MAX_PARTS * TUN_MAX_FRAME];
    const uint8_t *part[MAX_PARTS];
    size_t plen[MAX_PARTS], nparts = 0, mlen = 0;
    for (size_t off = 0; off <= size && nparts < MAX_PARTS;) {
        const uint8_t *cut = memchr(data + off, 0xff, size - off);
        size_t n = cut ? (size_t)(cut - (data + off)) : size - off;
        struct tun_frame f = { .type = TUN_CONTROL, .data = data + off, .data_len = n };
        ssize_t e = tun_frame_encode(msg + mlen, sizeof(msg) - mlen, &f);
        if ((n == 0 || n > TUN_MAX_CONTROL) != (e < 0))
            abort();
        if (e > 0) {
            part[nparts] = data + off;
            plen[nparts++] = n;
            mlen += (size_t)e;
        }
        off += n + 1;
    }
    size_t at = 0;
    for (size_t i = 0; i < nparts; i++) {
        struct tun_frame f;
        ssize_t used = tun_frame_parse(msg + at, mlen - at, &f);
        if (used <= 0 || f.type != TUN_CONTROL || f.stream != 0 || f.data_len != plen[i] ||
            memcmp(f.data, part[i], plen[i]) != 0)
            abort();
        at += (size_t)used;
        (void)interpret(f.data, f.data_len);
    }
    if (at != mlen)
        abort();
    return 0;
}
