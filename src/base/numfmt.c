/* numfmt.c — printf-exact number formatting without printf (see numfmt.h). */
#include "base/numfmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* v < 10^8 as its eight digits (leading zeros included), the first in the
 * lowest byte: a store writes them in order. Halves of four digits, then
 * pairs, then digits, each lane split by a multiply and a shift that divide
 * exactly in its range (y * 10486 >> 20 is y / 100 for y < 10^4, y * 103 >>
 * 10 is y / 10 for y < 100) and no product carries into the next lane. */
static inline uint64_t eight_digits_ascii(uint32_t v)
{
    uint64_t x = v / 10000 | (uint64_t)(v % 10000) << 32;
    uint64_t q = ((x * 10486) >> 20) & 0x0000007f0000007full;
    x = q | (x - q * 100) << 16;
    q = ((x * 103) >> 10) & 0x000f000f000f000full;
    x = q | (x - q * 10) << 8;
    return x | 0x3030303030303030ull;
}

/* The first n (1 to 8) digits of the number, v < 10^n: eight bytes are
 * stored at out, the digits first (the rest is overwritten by the caller,
 * or lies past the text within NUMFMT_MAX). */
static inline void head_digits(char *out, uint32_t v, size_t n)
{
    uint64_t x = eight_digits_ascii(v) >> (8 * (8 - n));
    memcpy(out, &x, 8);
}
#else
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

/* Writes the last n digits of v (n even) ending at end, two at a time, in
 * 32-bit arithmetic; returns what is left of v above them. */
static uint32_t write_pairs(char *end, uint32_t v, size_t n)
{
    for (; n > 0; n -= 2) {
        uint32_t r = v % 100;
        v /= 100;
        memcpy(end -= 2, digit_pairs + 2 * r, 2);
    }
    return v;
}
#endif

size_t numfmt_u64(char *out, uint64_t v)
{
    /* Counted first, then written: times in milliseconds have 13 digits,
     * and every output line has two. */
    int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12; /* bits * log10(2): n or n - 1 */
    size_t n = (size_t)t + (v >= pow10_u64[t]);
    if (n == 0) n = 1;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight digits a store, from the first: the head (1 to 8 digits), then
     * groups of eight, each stored over the bytes past the one before. The
     * divisions are by constants (multiplies). */
    if (n <= 8) {
        head_digits(out, (uint32_t)v, n);
    } else if (n <= 16) {
        head_digits(out, (uint32_t)(v / 100000000), n - 8);
        uint64_t lo = eight_digits_ascii((uint32_t)(v % 100000000));
        memcpy(out + n - 8, &lo, 8);
    } else {
        head_digits(out, (uint32_t)(v / 10000000000000000ull), n - 16);
        uint64_t mid = eight_digits_ascii((uint32_t)(v / 100000000 % 100000000));
        uint64_t lo = eight_digits_ascii((uint32_t)(v % 100000000));
        memcpy(out + n - 16, &mid, 8);
        memcpy(out + n - 8, &lo, 8);
    }
#else
    char *end = out + n;
    while (v >= 100000000) { /* eight digits at a time, the rest in 32 bits */
        write_pairs(end, (uint32_t)(v % 100000000), 8);
        v /= 100000000;
        end -= 8;
    }
    size_t left = (size_t)(end - out); /* 1 to 8 */
    uint32_t first = write_pairs(end, (uint32_t)v, left & ~(size_t)1);
    if (left & 1) out[0] = (char)('0' + first);
#endif
    return n;
}

size_t numfmt_i64(char *out, int64_t v)
{
    if (v >= 0) return numfmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + numfmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

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

/* m * 10^k in three 64-bit limbs, low first: m < 2^54, 0 <= k <= 38 (the
 * product is below 2^181). */
static void mul_pow10(uint64_t m, int k, uint64_t p[3])
{
    unsigned __int128 t = pow10_u128(k);
    unsigned __int128 lo = (unsigned __int128)m * (uint64_t)t;
    unsigned __int128 hi = (unsigned __int128)m * (uint64_t)(t >> 64);
    unsigned __int128 mid = (lo >> 64) + (uint64_t)hi;
    p[0] = (uint64_t)lo;
    p[1] = (uint64_t)mid;
    p[2] = (uint64_t)(hi >> 64) + (uint64_t)(mid >> 64);
}

/* round(m * 2^e * 10^k) to an integer, half to even: m < 2^53, -127 <= e
 * <= 0, 0 <= k <= 38 (the result is asked only where it is below 2^64). */
static uint64_t scaled(uint64_t m, int e, int k)
{
    uint64_t p[3];
    mul_pow10(m, k, p);
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

/* a (finite, 1e-21 <= a < 2^53) as m * 2^e exactly: a normal double, the
 * implicit bit set; -122 <= e <= 0 in this range. be is the biased
 * exponent. */
typedef struct {
    uint64_t m;
    int e, be;
} binary_t;

static binary_t binary_of(double a)
{
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    binary_t b;
    b.be = (int)(bits >> 52);
    b.m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    b.e = b.be - 1075;
    return b;
}

/* The p significant digits of a, rounded half to even, as q (10^(p-1) <= q
 * < 10^p) and the decimal exponent x of the first (a ~ q * 10^(x-p+1)).
 * -1 where that is outside what scaled() computes (then the caller goes
 * another way). */
static int digits_of(const binary_t *b, int p, uint64_t *q, int *x)
{
    /* The decimal exponent: 2^(be - 1023) <= a < 2^(be - 1022), so
     * floor((be - 1023) * log10(2)) is x or x - 1 (78913 / 2^18 is log10(2)
     * to within 2e-7, exact for these exponents); the loop settles it on
     * the p digits after rounding. */
    int dx = ((b->be - 1023) * 78913) >> 18;
    if (dx < -21) dx = -21;
    if (dx > 15) dx = 15;
    for (;;) {
        if (p - 1 - dx < 0) return -1; /* a >= 10^p: no room below the point */
        *q = scaled(b->m, b->e, p - 1 - dx);
        if (*q >= pow10_u64[p] && dx < 15) {
            dx++;
        } else if (*q < pow10_u64[p - 1] && dx > -21) {
            dx--;
        } else {
            break;
        }
    }
    *x = dx;
    return *q >= pow10_u64[p] || *q < pow10_u64[p - 1] ? -1 : 0;
}

/* Copies n <= 17 bytes with fixed-size moves (overlapping where n is not a
 * multiple): a call to memcpy for a few digits cost more than the copy. */
static inline void copy_digits(char *dst, const char *src, size_t n)
{
    if (n > 16) {
        memcpy(dst, src, 16);
        dst[16] = src[16];
    } else if (n >= 8) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        if (n > 0) dst[0] = src[0];
        if (n > 1) dst[1] = src[1];
        if (n > 2) dst[2] = src[2];
    }
}

/* Writes q * 10^e (q < 10^17) as %g does: fixed notation from 1e-4 up,
 * below that d.ddde-XX (at least two exponent digits); trailing zeros
 * dropped. */
static size_t emit_digits(char *out, int neg, uint64_t q, int e)
{
    char d[20];
    int p = (int)numfmt_u64(d, q);
    int x = p - 1 + e; /* the decimal exponent of the first digit */
    int last = p - 1; /* the last significant digit kept (trailing zeros go) */
    while (last > 0 && d[last] == '0')
        last--;
    size_t n = 0;
    if (neg) out[n++] = '-';
    if (x >= 0) {
        copy_digits(out + n, d, (size_t)x + 1);
        n += (size_t)x + 1;
        if (last > x) {
            out[n++] = '.';
            copy_digits(out + n, d + x + 1, (size_t)(last - x));
            n += (size_t)(last - x);
        }
    } else if (x >= -4) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[n++] = '0';
        copy_digits(out + n, d, (size_t)last + 1);
        n += (size_t)last + 1;
    } else {
        out[n++] = d[0];
        if (last > 0) {
            out[n++] = '.';
            copy_digits(out + n, d + 1, (size_t)last);
            n += (size_t)last;
        }
        out[n++] = 'e';
        out[n++] = '-';
        out[n++] = (char)('0' + -x / 10);
        out[n++] = (char)('0' + -x % 10);
    }
    return n;
}

static size_t via_printf(char *out, const char *fmt, int prec, double v)
{
    char tmp[40];
    int len = snprintf(tmp, sizeof tmp, fmt, prec, v);
    memcpy(out, tmp, (size_t)len);
    return (size_t)len;
}

/* Integers below 1e15: digits, no point (what %g writes for them). */
static int small_integer(double a)
{
    return a < 1e15 && a == (double)(uint64_t)a;
}

static size_t write_integer(char *out, double v, double a)
{
    size_t n = 0;
    if (signbit(v)) out[n++] = '-';
    return n + numfmt_u64(out + n, (uint64_t)a);
}

#define FAST_RANGE(a) ((a) >= 1e-21 && (a) < 9007199254740992.0)

size_t numfmt_g17(char *out, double v)
{
    double a = fabs(v);
    if (small_integer(a)) return write_integer(out, v, a);
    if (!FAST_RANGE(a)) return via_printf(out, "%.*g", 17, v);
    binary_t b = binary_of(a);
    uint64_t q;
    int x;
    if (digits_of(&b, 17, &q, &x) != 0) return via_printf(out, "%.*g", 17, v); /* at the edges */
    return emit_digits(out, v < 0, q, x - 16);
}

/* Whether q * 10^k reads back as a = m * 2^e (strtod rounds to nearest,
 * ties to even): whether it lies within half an ulp of a — a quarter
 * below a power of two, where the ulp under a is half the one above.
 * Exact, in integers: both sides times 2^-e * 10^-k. q < 2^54, e <= 0,
 * -36 <= k <= 0 (digits_of gives no candidate with digits left of the
 * point unwritten). */
static int reads_back(const binary_t *b, uint64_t q, int k)
{
    int low_edge = b->m == UINT64_C(1) << 52;
    uint64_t A[3], B[3] = {0, 0, 0}, d[3];
    mul_pow10(b->m, -k, A); /* a */
    int sh = -b->e;         /* q * 10^k, below 2^176 */
    B[sh / 64] = q << (sh % 64);
    if (sh % 64 && sh / 64 < 2) B[sh / 64 + 1] = q >> (64 - sh % 64);
    int below = 0; /* q * 10^k < a */
    for (int w = 2; w >= 0; w--)
        if (A[w] != B[w]) {
            below = A[w] > B[w];
            break;
        }
    const uint64_t *hi = below ? A : B, *lo = below ? B : A;
    unsigned __int128 borrow = 0;
    for (int w = 0; w < 3; w++) {
        unsigned __int128 t = (unsigned __int128)hi[w] - lo[w] - borrow;
        d[w] = (uint64_t)t;
        borrow = (t >> 64) != 0;
    }
    /* |difference| * 2 (or * 4 at the low edge, below) against 10^-k: the
     * difference is below 2^176, so the doubled value fits. */
    int times = low_edge && below ? 2 : 1;
    for (int i = 0; i < times; i++) {
        d[2] = (d[2] << 1) | (d[1] >> 63);
        d[1] = (d[1] << 1) | (d[0] >> 63);
        d[0] <<= 1;
    }
    unsigned __int128 t = pow10_u128(-k);
    uint64_t T[3] = {(uint64_t)t, (uint64_t)(t >> 64), 0};
    for (int w = 2; w >= 0; w--)
        if (d[w] != T[w]) return d[w] < T[w];
    /* A tie goes to the even mantissa. (None can happen for the 15 and 16
     * digits asked here: a midpoint between two doubles of this range has
     * at least 17 significant digits.) */
    return (b->m & 1) == 0;
}

static const double exact_pow10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* FEW DECIMALS. Most doubles weir writes are amounts and their sums, with a
 * few decimals: 11.81 is 1181 / 10^2. The least k (1..15) for which a * 10^k
 * is within rounding of an integer q < 10^15 that reads back — q / 10^k
 * divided in doubles (both exact) is the correctly rounded value of the
 * decimal, which is what strtod gives — is the shortest form: at most 15
 * digits, and two decimals of at most 15 digits never read back as the same
 * double (DBL_DIG), so it is the one the exact search would find. a * 10^k
 * lies within 0.2 of such a q (half an ulp of a, times 10^k, is below
 * q * 2^-53, plus the product's own rounding), so rounding it finds q. 1 with
 * *q and *k set, else 0 (the exact search decides). */
static int few_decimals(double a, uint64_t *q, int *k)
{
    for (int j = 1; j <= 15; j++) {
        double p = a * exact_pow10[j];
        if (!(p < 1e15)) return 0; /* (NaN too: it is never converted) */
        uint64_t r = (uint64_t)(p + 0.5); /* exact: p's ulp is at most 1/8 */
        if (fabs(p - (double)r) < 0.25 && (double)r / exact_pow10[j] == a) {
            *q = r;
            *k = j;
            return 1;
        }
    }
    return 0;
}

size_t numfmt_shortest(char *out, double v)
{
    double a = fabs(v);
    if (small_integer(a)) return write_integer(out, v, a);
    uint64_t q;
    int k;
    if (few_decimals(a, &q, &k)) return emit_digits(out, v < 0, q, -k);
    if (FAST_RANGE(a)) {
        /* A value with a representation of at most 15 digits has exactly
         * one, and its 15-digit rounding is it padded with zeros (half an
         * ulp is far below half a unit of the 15th digit); a value that
         * needs 16 reads back from its 16-digit rounding if from any 16
         * digits. Else 17, which always reads back. */
        binary_t b = binary_of(a);
        for (int p = 15; p <= 16; p++) {
            uint64_t q;
            int x;
            if (digits_of(&b, p, &q, &x) == 0 && reads_back(&b, q, x - (p - 1)))
                return emit_digits(out, v < 0, q, x - (p - 1));
        }
        return numfmt_g17(out, v);
    }
    if (!isfinite(v)) return via_printf(out, "%.*g", 17, v);
    /* Huge and tiny values (rare): printf's digits, fewest that read back. */
    for (int p = 1; p < 17; p++) {
        char tmp[40];
        int len = snprintf(tmp, sizeof tmp, "%.*g", p, v);
        if (strtod(tmp, NULL) == v) {
            memcpy(out, tmp, (size_t)len);
            return (size_t)len;
        }
    }
    return via_printf(out, "%.*g", 17, v);
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

void numfmt_append_shortest(weir_buf_t *b, double v)
{
    buf_reserve(b, NUMFMT_MAX);
    b->len += numfmt_shortest(b->data + b->len, v);
}

void numfmt_append_json(weir_buf_t *b, double v)
{
    if (isfinite(v))
        numfmt_append_shortest(b, v);
    else
        buf_append(b, "null", 4);
}
