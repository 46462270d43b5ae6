/*
 * frame: the tunnel wire format (docs/PROTOCOL.md), as a pure codec.
 *
 * A websocket binary message carries one or more frames back to back. Each
 * frame is a 10-byte header (version, type, stream id, payload length) and a
 * payload whose layout depends on the type. Nothing here does I/O or
 * allocates: the parser points into the caller's buffer.
 */
#ifndef DROVER_PROTO_FRAME_H
#define DROVER_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TUN_VERSION      1
#define TUN_HDR_LEN      10
#define TUN_MAX_DATA     65536u   /* DATA payload */
#define TUN_MAX_CONTROL  65536u   /* CONTROL payload (JSON text) */
#define TUN_MAX_SERVICE  64u      /* OPEN service name */
#define TUN_MAX_META     4096u    /* OPEN metadata */
#define TUN_MAX_REASON   256u     /* RESET reason text */
#define TUN_MAX_PAYLOAD  TUN_MAX_CONTROL
#define TUN_MAX_FRAME    (TUN_HDR_LEN + TUN_MAX_PAYLOAD)

enum tun_frame_type {
    TUN_OPEN = 1,     /* stream, window, service, meta */
    TUN_OPEN_OK = 2,  /* stream, window */
    TUN_DATA = 3,     /* stream, data (1..TUN_MAX_DATA bytes) */
    TUN_WINDOW = 4,   /* stream, window = credit increment (>= 1) */
    TUN_CLOSE = 5,    /* stream: sender will send no more DATA */
    TUN_RESET = 6,    /* stream, code, data = reason text */
    TUN_CONTROL = 7,  /* stream 0, data = JSON text */
};

enum tun_reset_code {
    TUN_RESET_REFUSED = 1,      /* service or address not allowed */
    TUN_RESET_UNREACHABLE = 2,  /* the agent could not dial the target */
    TUN_RESET_PROTOCOL = 3,     /* peer broke the protocol on this stream */
    TUN_RESET_FLOW = 4,         /* peer sent beyond its window */
    TUN_RESET_CANCEL = 5,       /* the local end gave up */
    TUN_RESET_INTERNAL = 6,     /* out of memory, internal error */
    TUN_RESET_LIMIT = 7,        /* too many streams on this tunnel */
    TUN_RESET_UNAVAILABLE = 8,  /* the service exists but cannot serve now */
};

struct tun_frame {
    uint8_t type;
    uint32_t stream;
    uint32_t window;          /* OPEN, OPEN_OK: initial window; WINDOW: increment */
    uint16_t code;            /* RESET */
    const char *service;      /* OPEN: not NUL-terminated */
    size_t service_len;
    const uint8_t *meta;      /* OPEN */
    size_t meta_len;
    const uint8_t *data;      /* DATA payload, CONTROL JSON, RESET reason */
    size_t data_len;
    const char *error;        /* set when the parser returns -1: why */
};

/*
 * Parses one frame at buf. Returns the bytes it used (header + payload),
 * -2 if buf holds only part of a frame, or -1 if the frame is invalid (unknown
 * version or type, a length over its limit, a stream id that the type forbids,
 * a payload whose inner lengths do not add up, an empty DATA or CONTROL, a
 * zero WINDOW increment, a service name outside [a-z0-9.-]); out->error then
 * says why. On success out's pointers point into buf.
 */
ssize_t tun_frame_parse(const uint8_t *buf, size_t len, struct tun_frame *out);

/*
 * Encodes f (the fields its type uses) into buf. Returns the bytes written, or
 * -1 if f is not a valid frame or cap is too small. Round-trips with parse.
 */
ssize_t tun_frame_encode(uint8_t *buf, size_t cap, const struct tun_frame *f);

/* Writes just the 10-byte header, for callers that fill the payload in place
 * (DATA read straight from a socket). Returns TUN_HDR_LEN. */
size_t tun_frame_put_header(uint8_t *buf, uint8_t type, uint32_t stream,
                            uint32_t payload_len);

/* "refused", "unreachable", ...; "unknown" for codes outside the enum. */
const char *tun_reset_code_name(uint16_t code);
/* "open", "data", ...; "unknown" otherwise. */
const char *tun_frame_type_name(uint8_t type);

#endif
