/*
 * ws: the websocket framing of RFC 6455 as a pure codec, for both ends.
 *
 * The header parser is strict about what a peer must not send (reserved bits,
 * unknown opcodes, fragmented or oversized control frames, a mask from a
 * server or none from a client, non-minimal lengths). Payload handling
 * (unmasking, message assembly) is the caller's; ws_mask() does the XOR.
 */
#ifndef DROVER_PROTO_WS_H
#define DROVER_PROTO_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_opcode {
    WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002, WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_INVALID = 1007, WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009, WS_CLOSE_INTERNAL = 1011,
};

#define WS_MAX_HDR 14
#define WS_MAX_CONTROL_PAYLOAD 125

struct ws_hdr {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    const char *error;      /* set when the parser returns -1 */
};

/*
 * Parses a frame header at buf. expect_masked: true on a server (client
 * frames must be masked), false on a client. Returns the header length, -2 if
 * more bytes are needed, or -1 if the header is invalid or the payload is over
 * max_payload (out->error says which).
 */
ssize_t ws_hdr_parse(const uint8_t *buf, size_t len, bool expect_masked,
                     uint64_t max_payload, struct ws_hdr *out);

/* Writes a header into buf (>= WS_MAX_HDR bytes); mask NULL for unmasked.
 * Returns its length. */
size_t ws_hdr_build(uint8_t *buf, bool fin, uint8_t opcode, uint64_t payload_len,
                    const uint8_t mask[4]);

/* XORs len bytes of data with mask, starting at mask position offset % 4
 * (so a payload can be unmasked in pieces). */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)).
 * out gets 28 characters and a NUL. */
void ws_accept_key(const char *key, size_t key_len, char out[29]);

/* A valid Sec-WebSocket-Key is base64 of 16 bytes (24 characters). */
bool ws_key_valid(const char *key, size_t key_len);

/* Parses a CLOSE payload: 0 bytes (no code: *code = 1005) or a code and UTF-8
 * reason. Returns 0, or -1 if the code is not one a peer may send. */
int ws_close_parse(const uint8_t *p, size_t len, uint16_t *code,
                   const char **reason, size_t *reason_len);

#endif
