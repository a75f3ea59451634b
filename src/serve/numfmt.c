/* numfmt.c — printf-exact number formatting without printf (see numfmt.h). */
#include "serve/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

size_t numfmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        *--p = digit_pairs[2 * r + 1];
        *--p = digit_pairs[2 * r];
    }
    if (v >= 10) {
        *--p = digit_pairs[2 * v + 1];
        *--p = digit_pairs[2 * v];
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    return n;
}

size_t numfmt_i64(char *out, int64_t v)
{
    if (v >= 0) return numfmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + numfmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

static const uint64_t pow10_u64[20] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

/* round(m * 2^e * 10^k) to an integer, half to even; m < 2^53, -66 <= e <= 0,
 * 0 <= k <= 20 (so the product is below 2^120). */
static uint64_t scaled(uint64_t m, int e, int k)
{
    unsigned __int128 pr = (unsigned __int128)m * (k < 20 ? pow10_u64[k] : pow10_u64[19]);
    if (k == 20) pr *= 10;
    int sh = -e;
    if (sh == 0) return (uint64_t)pr;
    unsigned __int128 q = pr >> sh, r = pr - (q << sh), half = (unsigned __int128)1 << (sh - 1);
    if (r > half || (r == half && (q & 1))) q++;
    return (uint64_t)q;
}

size_t numfmt_g17(char *out, double v)
{
    double a = fabs(v);
    size_t n = 0;
    if (a < 1e15 && a == (double)(uint64_t)a) { /* integers: digits, no point */
        if (signbit(v)) out[n++] = '-';
        return n + numfmt_u64(out + n, (uint64_t)a);
    }
    if (!(a >= 1e-4 && a < 9007199254740992.0)) {
        char tmp[40];
        int len = snprintf(tmp, sizeof tmp, "%.17g", v);
        memcpy(out, tmp, (size_t)len);
        return (size_t)len;
    }
    int e2;
    double f = frexp(a, &e2); /* a = f * 2^e2, 0.5 <= f < 1 */
    uint64_t m = (uint64_t)ldexp(f, 53);
    int e = e2 - 53;              /* -66 <= e <= 0 for 1e-4 <= a < 2^53 */
    int x = (int)floor(log10(a)); /* decimal exponent, maybe off by one */
    if (x < -4) x = -4;
    if (x > 15) x = 15;
    uint64_t q;
    for (;;) {
        q = scaled(m, e, 16 - x);
        if (q >= pow10_u64[17] && x < 15) {
            x++;
        } else if (q < pow10_u64[16] && x > -4) {
            x--;
        } else {
            break;
        }
    }
    if (q >= pow10_u64[17] || q < pow10_u64[16]) { /* at the range's edges: leave it to printf */
        char tmp[40];
        int len = snprintf(tmp, sizeof tmp, "%.17g", v);
        memcpy(out, tmp, (size_t)len);
        return (size_t)len;
    }
    char d[17];
    for (int i = 16; i >= 0; i--) {
        d[i] = (char)('0' + q % 10);
        q /= 10;
    }
    int last = 16; /* the last significant digit kept (trailing zeros go) */
    while (last > 0 && d[last] == '0')
        last--;
    if (v < 0) out[n++] = '-';
    if (x >= 0) {
        memcpy(out + n, d, (size_t)x + 1);
        n += (size_t)x + 1;
        if (last > x) {
            out[n++] = '.';
            memcpy(out + n, d + x + 1, (size_t)(last - x));
            n += (size_t)(last - x);
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[n++] = '0';
        memcpy(out + n, d, (size_t)last + 1);
        n += (size_t)last + 1;
    }
    return n;
}

void numfmt_append_u64(weir_buf_t *b, uint64_t v)
{
    buf_reserve(b, NUMFMT_MAX);
    b->len += numfmt_u64(b->data + b->len, v);
}

void numfmt_append_i64(weir_buf_t *b, int64_t v)
{
    buf_reserve(b, NUMFMT_MAX);
    b->len += numfmt_i64(b->data + b->len, v);
}

void numfmt_append_g17(weir_buf_t *b, double v)
{
    buf_reserve(b, NUMFMT_MAX);
    b->len += numfmt_g17(b->data + b->len, v);
}
