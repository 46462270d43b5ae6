/*
 * libFuzzer target for proto/frame: parses frames back to back over the
 * input, as the tunnel does over one websocket message.
 *
 * The oracle is the encoder: the wire format has exactly one encoding for
 * each frame, so every frame the parser accepts must re-encode to the very
 * bytes it was parsed from. Beyond that, every proper prefix of an accepted
 * frame must be "need more", and a rejection must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

static uint8_t out[TUN_MAX_FRAME];

static void check_frame(const uint8_t *in, size_t n, const struct tun_frame *f)
{
    struct tun_frame g;

    if (tun_frame_encode(out, sizeof(out), f) != (ssize_t)n)
        abort();
    if (memcmp(out, in, n) != 0)
        abort();
    /* Encode must refuse a buffer one byte short. */
    if (tun_frame_encode(out, n - 1, f) != -1)
        abort();
    /* A few prefixes, not all: a 64 KiB frame would make that quadratic. */
    for (size_t k = 0; k < n && k <= TUN_HDR_LEN + 2; k++)
        if (tun_frame_parse(in, k, &g) != -2)
            abort();
    if (tun_frame_parse(in, n - 1, &g) != -2)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tun_frame f;
    size_t off = 0;

    for (;;) {
        ssize_t n = tun_frame_parse(data + off, size - off, &f);
        if (n == -2) {
            if (f.error)
                abort();
            break;
        }
        if (n == -1) {
            if (!f.error || !f.error[0])
                abort();
            break;
        }
        if (n < TUN_HDR_LEN || (size_t)n > size - off || f.error)
            abort();
        check_frame(data + off, (size_t)n, &f);
        off += (size_t)n;
    }
    return 0;
}
