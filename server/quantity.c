/*
 * quantity: Kubernetes quantities. See quantity.h.
 *
 * The digits are read into an exact rational (integer part, fraction digits
 * and a power of ten), scaled by the suffix in 128-bit arithmetic, and only
 * then rounded, so "1.5Ti" and "0.1" come out exact where they can.
 */
#include "server/quantity.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIGITS 30   /* more precision than any capacity needs */

typedef unsigned __int128 u128;

struct suffix {
    const char *text;
    int64_t mult;       /* value = number * mult / div */
    int64_t div;
};

/* Matched against the whole rest of the text, so order does not matter. */
static const struct suffix suffixes[] = {
    { "Ki", INT64_C(1) << 10, 1 }, { "Mi", INT64_C(1) << 20, 1 },
    { "Gi", INT64_C(1) << 30, 1 }, { "Ti", INT64_C(1) << 40, 1 },
    { "Pi", INT64_C(1) << 50, 1 }, { "Ei", INT64_C(1) << 60, 1 },
    { "m", 1, 1000 }, { "k", INT64_C(1000), 1 }, { "M", INT64_C(1000000), 1 },
    { "G", INT64_C(1000000000), 1 }, { "T", INT64_C(1000000000000), 1 },
    { "P", INT64_C(1000000000000000), 1 }, { "E", INT64_C(1000000000000000000), 1 },
    { "", 1, 1 },
};

/* 10^n into *out; -1 if it does not fit. */
static int pow10_u128(int n, u128 *out)
{
    u128 v = 1;
    while (n-- > 0)
        if (__builtin_mul_overflow(v, (u128)10, &v))
            return -1;
    *out = v;
    return 0;
}

/* Reads "[+]digits[.digits]" into num / 10^scale; returns the rest of s or
 * NULL. */
static const char *read_number(const char *s, u128 *num, int *scale)
{
    int digits = 0;
    bool any = false, dot = false;
    *num = 0;
    *scale = 0;
    if (*s == '+')
        s++;
    for (;; s++) {
        if (*s == '.' && !dot) {
            dot = true;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        any = true;
        if (*num == 0 && *s == '0' && !dot)
            continue;   /* leading zeros cost nothing */
        if (++digits > MAX_DIGITS)
            return NULL;
        *num = *num * 10 + (u128)(*s - '0');
        if (dot)
            (*scale)++;
    }
    return any ? s : NULL;
}

/* An exponent suffix "e3", "E-2": 0 with *exp, or -1. */
static int read_exponent(const char *s, int *exp)
{
    if ((*s != 'e' && *s != 'E') || !s[1])
        return -1;
    s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    int v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 18)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v > 18)
        return -1;
    *exp = neg ? -v : v;
    return 0;
}

/* num * mult * unit / (div * 10^scale), rounded up, into *out. Every step
 * is checked: a quantity too large for 128 bits is refused, not wrapped. */
static int scale_out(u128 num, int scale, u128 mult, u128 div, enum qty_unit unit,
                     int64_t *out)
{
    u128 n, d, p;
    if (__builtin_mul_overflow(num, mult, &n) || __builtin_mul_overflow(n, (u128)unit, &n) ||
        pow10_u128(scale, &p) < 0 || __builtin_mul_overflow(div, p, &d))
        return -1;
    u128 q = n / d + (n % d != 0);
    if (q > (u128)INT64_MAX)
        return -1;
    *out = (int64_t)q;
    return 0;
}

int qty_parse(const char *s, enum qty_unit unit, int64_t *out)
{
    u128 num;
    int scale, exp = 0;
    if (!s || strnlen(s, QTY_MAX_TEXT + 1) > QTY_MAX_TEXT)
        return -1;
    const char *rest = read_number(s, &num, &scale);
    if (!rest)
        return -1;
    if (read_exponent(rest, &exp) == 0) {
        u128 mult;
        if (exp >= 0)
            return pow10_u128(exp, &mult) < 0 ? -1 : scale_out(num, scale, mult, 1, unit, out);
        return scale_out(num, scale + -exp, 1, 1, unit, out);
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(rest, suffixes[i].text) == 0)
            return scale_out(num, scale, (u128)suffixes[i].mult, (u128)suffixes[i].div,
                             unit, out);
    }
    return -1;
}

int qty_add(int64_t *sum, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(*sum, b, &r))
        return -1;
    *sum = r;
    return 0;
}

static int fit(int n, size_t cap)
{
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int qty_format_cpu(int64_t milli, char *buf, size_t cap)
{
    if (milli % 1000 == 0)
        return fit(snprintf(buf, cap, "%lld", (long long)(milli / 1000)), cap);
    return fit(snprintf(buf, cap, "%lldm", (long long)milli), cap);
}

int qty_format_bytes(int64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = { "Ei", "Pi", "Ti", "Gi", "Mi", "Ki" };
    for (int i = 0; bytes != 0 && i < 6; i++) {
        int64_t m = INT64_C(1) << (10 * (6 - i));
        if (bytes % m == 0)
            return fit(snprintf(buf, cap, "%lld%s", (long long)(bytes / m), units[i]), cap);
    }
    return fit(snprintf(buf, cap, "%lld", (long long)bytes), cap);
}

int qty_format_count(int64_t n, char *buf, size_t cap)
{
    return fit(snprintf(buf, cap, "%lld", (long long)n), cap);
}
