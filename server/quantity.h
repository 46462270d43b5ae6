/*
 * quantity: Kubernetes resource quantities ("500m", "4", "16Gi", "1.5Ti",
 * "100k", "1e3"), as the node objects' capacity carries them, parsed into
 * integers so a cluster's capacity can be summed, and formatted back.
 *
 * Pure: no I/O, no allocation. Accepted: an optional '+', decimal digits
 * with an optional fraction, then one suffix: binary Ki Mi Gi Ti Pi Ei,
 * decimal m k M G T P E, or a decimal exponent e<N> / E<N> (|N| <= 18).
 * Negative quantities are refused: capacity never is. Results that do not
 * fit int64 are refused rather than wrapped. A result that is not a whole
 * number of the unit asked for is rounded up, as Kubernetes does.
 */
#ifndef DROVER_SERVER_QUANTITY_H
#define DROVER_SERVER_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#define QTY_MAX_TEXT 64     /* longer text is refused */
#define QTY_FMT_MAX  32     /* room for any formatted quantity */

enum qty_unit {
    QTY_UNITS = 1,          /* whole units: bytes, pods */
    QTY_MILLI = 1000,       /* thousandths: cpu */
};

/* Parses s (NUL-terminated) into *out counted in unit. 0, or -1 if s is not
 * a quantity or does not fit. */
int qty_parse(const char *s, enum qty_unit unit, int64_t *out);

/* Adds b to *sum; -1 (sum unchanged) on overflow. */
int qty_add(int64_t *sum, int64_t b);

/* Millicores as Kubernetes writes cpu: "4" for whole cores, else "500m".
 * Returns the length, or -1 if it does not fit cap. */
int qty_format_cpu(int64_t milli, char *buf, size_t cap);
/* Bytes in the largest binary unit that holds them exactly ("48Gi",
 * "1536Mi"), or plain bytes. Length or -1. */
int qty_format_bytes(int64_t bytes, char *buf, size_t cap);
/* A plain count ("330"). Length or -1. */
int qty_format_count(int64_t n, char *buf, size_t cap);

#endif
