/*
 * spdy: the SPDY/3.1 framing that kubectl's exec and port-forward speak, as
 * a pure codec for the server end, in the kube-standin test stand-in.
 *
 * The frame parser takes whole frames from a buffer (bytes used, -2 for
 * "need more", -1 for "invalid") and never touches a socket. Header blocks
 * are zlib streams primed with the SPDY/3 dictionary, one stream per
 * direction for the whole connection, each block ending in a sync flush:
 * struct spdy_zin and spdy_zout hold that per-connection state.
 */
#ifndef KUBE_STANDIN_SPDY_H
#define KUBE_STANDIN_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum spdy_type {
    SPDY_DATA = 0, SPDY_SYN_STREAM = 1, SPDY_SYN_REPLY = 2, SPDY_RST_STREAM = 3,
    SPDY_SETTINGS = 4, SPDY_PING = 6, SPDY_GOAWAY = 7, SPDY_HEADERS = 8,
    SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN 0x01
#define SPDY_HDR_LEN 8
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_CANCEL 5

struct spdy_frame {
    uint16_t type;              /* SPDY_DATA for data frames */
    uint8_t flags;
    uint32_t stream_id;         /* frames about a stream */
    uint32_t value;             /* RST status, PING id, GOAWAY status, window delta */
    const uint8_t *payload;     /* DATA: the data; SYN_*, HEADERS: the header block */
    size_t payload_len;
    const char *error;          /* set when -1 is returned */
};

/* One whole frame at buf. max: the largest frame length accepted. Control
 * frames of unknown types parse (type kept) so callers can skip them. */
ssize_t spdy_frame_parse(const uint8_t *buf, size_t len, size_t max, struct spdy_frame *out);

/* Frame builders: each writes into out and returns the length. */
size_t spdy_data_head(uint8_t out[SPDY_HDR_LEN], uint32_t stream, uint8_t flags, size_t len);
size_t spdy_ctrl_head(uint8_t out[SPDY_HDR_LEN], uint16_t type, uint8_t flags, size_t len);
size_t spdy_rst(uint8_t out[16], uint32_t stream, uint32_t status);
size_t spdy_ping(uint8_t out[12], uint32_t id);
size_t spdy_goaway(uint8_t out[16], uint32_t last_stream, uint32_t status);

struct spdy_zin;
struct spdy_zout;
/* NULL on ENOMEM. *_free(NULL) is a no-op. */
struct spdy_zin *spdy_zin_new(void);
void spdy_zin_free(struct spdy_zin *z);
struct spdy_zout *spdy_zout_new(void);
void spdy_zout_free(struct spdy_zout *z);

/*
 * Inflates one header block (the next piece of the connection's stream) and
 * calls fn for each name/value pair (not NUL-terminated; a value holding
 * several values has them separated by NULs). At most max bytes inflated.
 * 0, or -1 for a corrupt block, a pair list that does not add up, or fn
 * returning nonzero.
 */
int spdy_headers_decode(struct spdy_zin *z, const uint8_t *p, size_t n, size_t max,
                        int (*fn)(void *ud, const char *name, size_t nl, const char *val,
                                  size_t vl),
                        void *ud);

/* Deflates a block of n pairs into a malloc'd buffer (caller frees).
 * 0, or -1 on ENOMEM or a zlib failure. */
int spdy_headers_encode(struct spdy_zout *z, const char *const *names,
                        const char *const *values, size_t n, uint8_t **out, size_t *out_len);

#endif
