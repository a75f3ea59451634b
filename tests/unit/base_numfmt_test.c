/* base_numfmt_test.c — numfmt against snprintf: the same bytes for
 * integers, for %.17g, and for the shortest form (the fewest %g digits
 * that strtod reads back as the same double), over every kind of double
 * (random bit patterns, money-like decimals, ratios, integers, small
 * values in the exponent form, exact ties at the 17th digit, powers of
 * two, neighbours of short decimals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/numfmt.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(void)
{
    return (double)(next_u64() >> 11) / 9007199254740992.0;
}

static void check_g17(double v)
{
    char want[64], got[NUMFMT_MAX + 1];
    snprintf(want, sizeof want, "%.17g", v);
    size_t n = numfmt_g17(got, v);
    got[n] = '\0';
    if (strcmp(want, got) != 0) fail_msg("%%.17g of %a: printf %s, numfmt %s", v, want, got);
}

/* What numfmt_shortest must write: an integer below 2^53 as its digits
 * (as %.17g does: 4021160, not 4.02116e+06), anything else as %.{p}g for
 * the least p whose text reads back as v (%.17g always does; NaN and the
 * infinities are %.17g). */
static void check_shortest(double v)
{
    char want[400], got[NUMFMT_MAX + 1]; /* (room for any %.*g, as the compiler cannot bound it) */
    if (isfinite(v) && v == trunc(v) && fabs(v) < 9007199254740992.0) {
        snprintf(want, sizeof want, "%.0f", v);
    } else {
        /* If p digits read back, so do p + 1 (their rounding is at least
         * as close): a binary search finds the least. */
        int lo = 1, hi = 17;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            snprintf(want, sizeof want, "%.*g", mid, v);
            if (strtod(want, NULL) == v)
                hi = mid;
            else
                lo = mid + 1;
        }
        snprintf(want, sizeof want, "%.*g", lo, v);
    }
    size_t n = numfmt_shortest(got, v);
    got[n] = '\0';
    if (strcmp(want, got) != 0) fail_msg("shortest of %a: printf+strtod %s, numfmt %s", v, want, got);
}

/* Both forms of v; the shortest (a search through printf and strtod) for
 * one value in four, to keep the test quick under the sanitizers. */
static void check(double v)
{
    static unsigned calls;
    check_g17(v);
    if (calls++ % 4 == 0) check_shortest(v);
}

static void g17_matches_printf(void **state)
{
    (void)state;
    static const double fixed[] = {
        0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e-4, 9.9999999999999995e-05, 1e-5, 0.00012345, 1e15,
        1e15 + 0.5, 1e16, 1e17, 9007199254740991.0, 9007199254740992.0, 9007199254740993.0,
        123456789012345.67, 0.30000000000000004, 2.5, 99999999999999.99, 9.999999999999999,
        1.7976931348623157e308, 4.9e-324, 2.2250738585072014e-308,
        /* the exponent form and its edges */
        3.3164117212436395e-06, 9.99999999999999912e-05, 9.9999999999999999e-05, 1e-21,
        9.9999999999999991e-22, 1.0000000000000001e-21, 1e-10, 1.5e-7, 1e-20};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        check_g17(fixed[i]);
        check_g17(-fixed[i]);
        check_shortest(fixed[i]); /* every edge value, not one in four */
        check_shortest(-fixed[i]);
    }
    check(NAN);
    check(-NAN);
    check(INFINITY);
    check(-INFINITY);
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = next_u64();
        double v;
        memcpy(&v, &bits, sizeof v);
        check(v);                           /* any pattern: mostly the printf fallback */
        v = pow(10.0, -6.0 + 23.0 * uniform()); /* 1e-6 .. 1e17, log-uniform */
        check(v);
        check(-v);
        check(round(v * 100.0) / 100.0);            /* amounts */
        check((double)(next_u64() % 100000) / 7.0); /* ratios */
        check((double)(next_u64() >> (next_u64() % 64)));
        v = pow(10.0, -23.0 + 20.0 * uniform()); /* 1e-23 .. 1e-3: the exponent form */
        check(v);
        check(-v);
        check(round(v * 1e6) / 1e6);
    }
    /* Exact ties below 1e-4: m * 2^-j is m * 5^j / 10^j, 18 significant
     * digits ending in 5 when 10^17 <= m * 5^j < 10^18 (m odd) — possible
     * up to j = 25, and in the exponent form from j = 21. */
    for (int j = 21; j <= 25; j++) {
        uint64_t p5 = 1;
        for (int i = 0; i < j; i++)
            p5 *= 5;
        for (uint64_t m = (100000000000000000ull / p5) | 1; m * p5 < 1000000000000000000ull; m += 2)
            if (m * p5 >= 100000000000000000ull) check(ldexp((double)m, -j));
    }
    /* Exact ties at the 18th significant digit: n + 1/4 and n + 3/4 between
     * 2^50 and 2^51 (representable, 16 integer digits). */
    for (int i = 0; i < 100000; i++) {
        double n = 1125899906842624.0 + (double)(next_u64() % 1000000000000000ull);
        if (n >= 2251799813685248.0) continue;
        check(n + 0.25);
        check(n + 0.75);
        check(n + 0.5);
    }
}

/* Values next to short decimals (one ulp either way need 16 or 17
 * digits), powers of two (the ulp below is half the one above: the
 * quarter-ulp edge of the read-back check) and their neighbours. */
static void shortest_at_the_edges(void **state)
{
    (void)state;
    for (int i = 0; i < 100000; i++) {
        double d = (double)(next_u64() % 100000000) / pow(10.0, (double)(next_u64() % 12));
        check_shortest(d);
        check_shortest(nextafter(d, 0.0));
        check_shortest(nextafter(d, INFINITY));
        check_shortest(-nextafter(d, INFINITY));
    }
    for (int j = -75; j <= 60; j++) {
        double t = ldexp(1.0, j);
        check_shortest(t);
        check_shortest(nextafter(t, 0.0));
        check_shortest(nextafter(t, INFINITY));
        check_shortest(nextafter(nextafter(t, 0.0), 0.0));
    }
    /* Sums of amounts as a window computes them (plain doubles, so
     * rounding leaves 16- and 17-digit values). */
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        sum += (double)(next_u64() % 100000) / 100.0;
        check_shortest(sum);
        if (i % 1000 == 999) sum = 0;
    }
}

static void integers_match_printf(void **state)
{
    (void)state;
    char want[32], got[NUMFMT_MAX + 1];
    static const int64_t fixed[] = {0, 1, -1, 9, 10, 99, 100, 12345, INT64_MAX, INT64_MIN, -10};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        snprintf(want, sizeof want, "%" PRId64, fixed[i]);
        got[numfmt_i64(got, fixed[i])] = '\0';
        assert_string_equal(got, want);
    }
    for (int i = 0; i < 200000; i++) {
        uint64_t u = next_u64() >> (next_u64() % 64);
        snprintf(want, sizeof want, "%" PRIu64, u);
        got[numfmt_u64(got, u)] = '\0';
        assert_string_equal(got, want);
        int64_t s = (int64_t)next_u64() >> (next_u64() % 63);
        snprintf(want, sizeof want, "%" PRId64, s);
        got[numfmt_i64(got, s)] = '\0';
        assert_string_equal(got, want);
    }
    snprintf(want, sizeof want, "%" PRIu64, UINT64_MAX);
    got[numfmt_u64(got, UINT64_MAX)] = '\0';
    assert_string_equal(got, want);
    /* Every four-digit group, in each place of the eight-digit stores
     * (numfmt_u64 writes eight digits from lanes of four, then two, then
     * one), the digits around it random. */
    for (uint64_t p = 1; p <= 10000000000000000ull; p *= 10) {
        for (uint64_t g = 0; g < 10000 && g < UINT64_MAX / p; g++) {
            uint64_t u = g * p + next_u64() % p;
            if (p <= UINT64_MAX / 100000 && next_u64() % 2) u += (next_u64() % 9 + 1) * p * 10000;
            snprintf(want, sizeof want, "%" PRIu64, u);
            got[numfmt_u64(got, u)] = '\0';
            assert_string_equal(got, want);
        }
    }
    /* Every digit count's edges: numfmt_u64 counts the digits first. */
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        uint64_t edges[] = {p - 1, p, p + 1, p * 10 - 1};
        for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
            snprintf(want, sizeof want, "%" PRIu64, edges[i]);
            got[numfmt_u64(got, edges[i])] = '\0';
            assert_string_equal(got, want);
        }
    }
}

static void appends_to_buffers(void **state)
{
    (void)state;
    weir_buf_t b = WEIR_BUF_INIT;
    numfmt_append_u64(&b, 42);
    buf_append(&b, ",", 1);
    numfmt_append_i64(&b, -7);
    buf_append(&b, ",", 1);
    numfmt_append_g17(&b, 0.1);
    buf_append(&b, ",", 1);
    numfmt_append_shortest(&b, 0.1);
    buf_append(&b, ",", 1);
    numfmt_append_shortest(&b, 389.23);
    buf_append(&b, ",", 1);
    numfmt_append_shortest(&b, 0.1 + 0.2);
    /* JSON's: no numbers for NaN and the infinities */
    buf_append(&b, ",", 1);
    numfmt_append_json(&b, 2.5);
    buf_append(&b, ",", 1);
    numfmt_append_json(&b, NAN);
    buf_append(&b, ",", 1);
    numfmt_append_json(&b, -INFINITY);
    const char *want = "42,-7,0.10000000000000001,0.1,389.23,0.30000000000000004,2.5,null,null";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(g17_matches_printf),
        cmocka_unit_test(shortest_at_the_edges),
        cmocka_unit_test(integers_match_printf),
        cmocka_unit_test(appends_to_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
