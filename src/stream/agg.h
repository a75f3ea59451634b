/* agg.h — aggregate kinds, results, and the numerics of sums and variances
 * under add and subtract (the running part of sliding windows).
 *
 * Kinds and results. An aggregate is one of agg_kind_t; a window (win.h)
 * maintains a set of kinds (a bitmask of AGG_BIT(kind)) over one input. A
 * result is agg_result_t: null, or a number (count and distinct are exact
 * integers held in a double, exact below 2^53), or for first/last over an id
 * window the 64-bit id. Empty window: count, sum, distinct and
 * approx_distinct are 0, the others null; variance and stddev are null below
 * two values. Null inputs never reach a window (the engine skips them), so
 * every aggregate but count() skips nulls; count() is a window over an input
 * that is never null.
 *
 * Numerics (agg_moments_t). Sums and second moments are kept as
 * double-double numbers (about 106 bits) of values shifted by K, a value of
 * the window: s1 = sum(x - K), s2 = sum((x - K)^2). Each add or subtract
 * uses an accurate double-double addition, whose error is at most 3u^2 of
 * its result (u = 2^-53; Joldes, Muller, Popescu 2017), and the moments track
 * a running bound of their accumulated error (e1, e2, charging 2^-103 of the
 * magnitudes of each step). The danger of subtract-on-evict is a window that
 * once held huge values and now holds small ones: the bound then becomes
 * large relative to the result, and agg_moments_trusted() says so; the
 * window recomputes the moments from its contents (re-centring K on the
 * mean), which resets the bound. A recompute is O(window) but happens only
 * after the magnitudes in the window fall by roughly 2^59 / (steps since the
 * last recompute) — never on ordinary data, amortized O(1) on adversarial
 * data. A window whose own contents cancel (sum far below the sum of
 * magnitudes) cannot be computed better by anyone in floating point; there
 * the guarantee is error <= 2^-100 * cnt * sum|x - K|, and no recompute loop.
 * Net: sum, avg, variance and stddev agree with an exact recomputation to
 * about 1e-13 relative (tested against an exactly rounded reference with
 * adversarial magnitudes); variance's K-shift keeps it accurate for
 * mean/stddev up to about 2^40. Inputs must be finite; |x| up to ~1e150 for
 * variance (squares must not overflow). */
#ifndef WEIR_STREAM_AGG_H
#define WEIR_STREAM_AGG_H

#include <stddef.h>
#include <stdint.h>

typedef enum agg_kind {
    AGG_COUNT = 0,
    AGG_SUM,
    AGG_AVG,
    AGG_MIN,
    AGG_MAX,
    AGG_VARIANCE,
    AGG_STDDEV,
    AGG_FIRST,
    AGG_LAST,
    AGG_DISTINCT,
    AGG_APPROX_DISTINCT,
    AGG_APPROX_QUANTILE,
    AGG_NKINDS
} agg_kind_t;

#define AGG_BIT(k) (1u << (k))
#define AGG_ALL_KINDS ((1u << AGG_NKINDS) - 1)
/* Kinds that need the sums of agg_moments_t / the second moment. */
#define AGG_NEED_SUM (AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG) | AGG_NEED_VAR)
#define AGG_NEED_VAR (AGG_BIT(AGG_VARIANCE) | AGG_BIT(AGG_STDDEV))
#define AGG_NEED_IDS (AGG_BIT(AGG_DISTINCT) | AGG_BIT(AGG_APPROX_DISTINCT))
/* Kinds that need a numeric input (an id window supports the others). */
#define AGG_NUMERIC                                                                      \
    (AGG_NEED_SUM | AGG_BIT(AGG_MIN) | AGG_BIT(AGG_MAX) | AGG_BIT(AGG_APPROX_QUANTILE))

/* "count", "sum", ..., "approx_quantile" (the spec's function names). */
const char *agg_kind_name(agg_kind_t k);
/* Returns the kind named by s[0..n), or -1. */
int agg_kind_parse(const char *s, size_t n);

typedef struct agg_result {
    int null;    /* 1: the result is null */
    double num;  /* the value (count, sum, ..., first/last of a numeric window) */
    uint64_t id; /* first/last of an id window: the id; else the bits of num */
} agg_result_t;

/* ---- double-double ---------------------------------------------------- */

typedef struct agg_dd {
    double hi, lo; /* value = hi + lo, |lo| <= ulp(hi) / 2 */
} agg_dd_t;

/* ---- moments ---------------------------------------------------------- */

/* A partial: the moments of some values, shifted by its own K. Buckets of
 * bucketed windows store these (without the error bound: a bucket only
 * grows, and double-double addition without cancellation is exact to
 * ~2^-104 of its magnitude). When var is off, shift is 0 and s2 unused. */
typedef struct agg_part {
    int64_t n;
    double shift;
    agg_dd_t s1, s2;
} agg_part_t;

typedef struct agg_moments {
    int64_t n;      /* values in */
    double shift;   /* K */
    agg_dd_t s1;    /* sum (x - K) */
    double e1;      /* a bound on the accumulated error of s1 */
    double a1;      /* ~ sum |contribution to s1|: what a recompute would cost in error */
    uint8_t var;    /* maintain s2 */
    uint8_t fresh;  /* just recomputed: nothing better is possible */
    uint8_t pinned; /* shift chosen by agg_moments_reset (else: the first value) */
    /* Only when var (last, so that moments without it end here: see
     * agg_moments_size): */
    agg_dd_t s2;    /* sum (x - K)^2 */
    double e2;      /* a bound on the accumulated error of s2 */
} agg_moments_t;

/* The bytes of moments with or without the second moment: a window keeps
 * only these in its key's value (a sum window saves 24 of 80, and a key's
 * value is read from memory for every event; win.c). Functions given
 * moments without it (var 0) touch nothing past them. */
static inline size_t agg_moments_size(int var)
{
    return var ? sizeof(agg_moments_t) : offsetof(agg_moments_t, s2);
}

/* *to (a whole agg_moments_t) = *from (agg_moments_size(from->var) bytes). */
void agg_moments_copy(agg_moments_t *to, const agg_moments_t *from);

void agg_moments_init(agg_moments_t *m, int var);
/* Starts over with shift K (used by recomputes). */
void agg_moments_reset(agg_moments_t *m, double shift);
/* Adds (sign = +1) or removes (sign = -1) one value. */
void agg_moments_add(agg_moments_t *m, double x, int sign);
/* Adds or removes a partial. */
void agg_moments_add_part(agg_moments_t *m, const agg_part_t *p, int sign);

/* Adds one value to a partial (var: maintain s2; the partial's shift is its
 * first value then). */
void agg_part_add(agg_part_t *p, double x, int var);

double agg_moments_sum(const agg_moments_t *m);
double agg_moments_mean(const agg_moments_t *m); /* n > 0 */
/* Sum of squared deviations from the mean (n > 0), >= 0. */
double agg_moments_m2(const agg_moments_t *m);
/* The mean as the shift a recompute should use. */
double agg_moments_center(const agg_moments_t *m);

/* Whether the results needed by `kinds` can be returned as they are; 0 means
 * the caller should recompute from the window's contents. cnt is the number
 * of summands a recompute would add (values or bucket partials). */
int agg_moments_trusted(const agg_moments_t *m, uint32_t kinds, int64_t cnt);

#endif
