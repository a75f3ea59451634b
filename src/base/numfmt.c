/* numfmt.c — printf-exact number formatting without printf (see numfmt.h). */
#include "base/numfmt.h"

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

/* 10^k for 0 <= k <= 38 (10^38 < 2^127). */
static unsigned __int128 pow10_u128(int k)
{
    return k < 20 ? pow10_u64[k] : (unsigned __int128)pow10_u64[19] * pow10_u64[k - 19];
}

/* Bits [at, at + 64) of the 192-bit number p[2]:p[1]:p[0]. */
static uint64_t bits64(const uint64_t p[3], int at)
{
    int w = at / 64, b = at % 64;
    uint64_t lo = w < 3 ? p[w] >> b : 0;
    uint64_t hi = b && w + 1 < 3 ? p[w + 1] << (64 - b) : 0;
    return lo | hi;
}

/* round(m * 2^e * 10^k) to an integer, half to even: m < 2^53, -127 <= e
 * <= 0, 0 <= k <= 38 (the product is below 2^180, held in three 64-bit
 * limbs; the result is asked only where it is below 2^64). */
static uint64_t scaled(uint64_t m, int e, int k)
{
    unsigned __int128 t = pow10_u128(k);
    unsigned __int128 lo = (unsigned __int128)m * (uint64_t)t;
    unsigned __int128 hi = (unsigned __int128)m * (uint64_t)(t >> 64);
    unsigned __int128 mid = (lo >> 64) + (uint64_t)hi;
    const uint64_t p[3] = {(uint64_t)lo, (uint64_t)mid,
                           (uint64_t)(hi >> 64) + (uint64_t)(mid >> 64)};
    int sh = -e;
    uint64_t q = bits64(p, sh);
    if (sh == 0) return q;
    /* the first bit shifted out decides, the rest (sticky) breaks a tie */
    int rb = sh - 1;
    int round = (int)((p[rb / 64] >> (rb % 64)) & 1);
    int sticky = (p[rb / 64] & ((UINT64_C(1) << (rb % 64)) - 1)) != 0;
    for (int w = 0; w < rb / 64; w++)
        sticky |= p[w] != 0;
    if (round && (sticky || (q & 1))) q++;
    return q;
}

static size_t via_printf(char *out, double v)
{
    char tmp[40];
    int len = snprintf(tmp, sizeof tmp, "%.17g", v);
    memcpy(out, tmp, (size_t)len);
    return (size_t)len;
}

size_t numfmt_g17(char *out, double v)
{
    double a = fabs(v);
    size_t n = 0;
    if (a < 1e15 && a == (double)(uint64_t)a) { /* integers: digits, no point */
        if (signbit(v)) out[n++] = '-';
        return n + numfmt_u64(out + n, (uint64_t)a);
    }
    if (!(a >= 1e-21 && a < 9007199254740992.0)) return via_printf(out, v);
    /* a = m * 2^e exactly (a normal double: the implicit bit set) */
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int be = (int)(bits >> 52);
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int e = be - 1075; /* -122 <= e <= 0 in this range */
    /* The decimal exponent x of a: 2^(be - 1023) <= a < 2^(be - 1022), so
     * floor((be - 1023) * log10(2)) is x or x - 1 (78913 / 2^18 is log10(2)
     * to within 2e-7, exact for these exponents); the loop settles it on
     * the 17 digits after rounding. */
    int x = ((be - 1023) * 78913) >> 18;
    if (x < -21) x = -21;
    if (x > 15) x = 15;
    uint64_t q;
    for (;;) {
        q = scaled(m, e, 16 - x);
        if (q >= pow10_u64[17] && x < 15) {
            x++;
        } else if (q < pow10_u64[16] && x > -21) {
            x--;
        } else {
            break;
        }
    }
    if (q >= pow10_u64[17] || q < pow10_u64[16]) return via_printf(out, v); /* at the edges */
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
    } else if (x >= -4) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[n++] = '0';
        memcpy(out + n, d, (size_t)last + 1);
        n += (size_t)last + 1;
    } else { /* %g's exponent form below 1e-4: d.ddde-XX, at least two digits */
        out[n++] = d[0];
        if (last > 0) {
            out[n++] = '.';
            memcpy(out + n, d + 1, (size_t)last);
            n += (size_t)last;
        }
        out[n++] = 'e';
        out[n++] = '-';
        out[n++] = (char)('0' + -x / 10);
        out[n++] = (char)('0' + -x % 10);
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
