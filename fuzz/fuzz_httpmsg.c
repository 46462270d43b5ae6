/*
 * Fuzz target for common/httpmsg.c: an answer head followed by a body, fed
 * in pieces whose sizes come from the input itself, the way the kube proxy
 * sees a response arrive. Checks that the head tracker and the body counter
 * never claim more bytes than they were given and agree with a one-shot feed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/httpmsg.h"

static size_t feed_all(const uint8_t *p, size_t n, size_t step, bool head_req, bool *ok)
{
    struct httpmsg_head h = { 0 };
    struct httpmsg m;
    size_t off = 0, used = 0;
    int state = 0;
    *ok = true;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        size_t body_off = 0;
        if (state == 0) {
            int r = httpmsg_head_feed(&h, p + off, k, head_req, &m, &body_off);
            if (r < 0) {
                *ok = false;
                break;
            }
            if (body_off > k)
                abort();
            if (r == 1)
                state = 1;
        }
        if (state == 1 && body_off < k) {
            ssize_t b = httpmsg_feed(&m, p + off + body_off, k - body_off);
            if (b < 0) {
                *ok = false;
                break;
            }
            if ((size_t)b > k - body_off)
                abort();
            used += (size_t)b;
            if (m.done) {
                state = 2;
                break;
            }
        }
        off += k;
    }
    httpmsg_head_free(&h);
    return state == 2 ? used : (size_t)-1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    bool head_req = data[1] & 1;
    bool ok1, ok2;
    size_t a = feed_all(data + 2, size - 2, step, head_req, &ok1);
    size_t b = feed_all(data + 2, size - 2, size, head_req, &ok2);
    /* Splitting the input must not change where the message ends. */
    if (ok1 && ok2 && a != b)
        abort();
    return 0;
}
