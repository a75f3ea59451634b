/* agg.c — aggregate kinds and double-double moments (see agg.h for the
 * numerical argument). */
#include "stream/agg.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[AGG_NKINDS] = {
    "count", "sum",   "avg",      "min",             "max",
    "variance", "stddev", "first", "last", "distinct", "approx_distinct",
    "approx_quantile",
};

const char *agg_kind_name(agg_kind_t k)
{
    return (unsigned)k < AGG_NKINDS ? kind_names[k] : "?";
}

int agg_kind_parse(const char *s, size_t n)
{
    for (int k = 0; k < AGG_NKINDS; k++)
        if (strlen(kind_names[k]) == n && memcmp(kind_names[k], s, n) == 0) return k;
    return -1;
}

/* ---- double-double (Dekker, Knuth; accurate addition per JMP 2017) ------ */

static inline agg_dd_t two_sum(double a, double b)
{
    double s = a + b, bb = s - a;
    return (agg_dd_t){s, (a - (s - bb)) + (b - bb)};
}

static inline agg_dd_t fast_two_sum(double a, double b)
{
    double s = a + b;
    return (agg_dd_t){s, b - (s - a)};
}

static inline agg_dd_t two_prod(double a, double b)
{
    double p = a * b;
    return (agg_dd_t){p, fma(a, b, -p)};
}

/* Inline: every value added to or dropped from a sum window is one (a
 * call was most of agg_moments_add's cost besides). */
static inline agg_dd_t dd_add(agg_dd_t a, agg_dd_t b)
{
    agg_dd_t s = two_sum(a.hi, b.hi), t = two_sum(a.lo, b.lo);
    s.lo += t.hi;
    s = fast_two_sum(s.hi, s.lo);
    s.lo += t.lo;
    return fast_two_sum(s.hi, s.lo);
}

static inline agg_dd_t dd_neg(agg_dd_t a)
{
    return (agg_dd_t){-a.hi, -a.lo};
}

static inline agg_dd_t dd_mul_d(agg_dd_t a, double b)
{
    agg_dd_t p = two_prod(a.hi, b);
    p.lo = fma(a.lo, b, p.lo);
    return fast_two_sum(p.hi, p.lo);
}

static inline agg_dd_t dd_mul(agg_dd_t a, agg_dd_t b)
{
    agg_dd_t p = two_prod(a.hi, b.hi);
    p.lo += a.hi * b.lo + a.lo * b.hi;
    return fast_two_sum(p.hi, p.lo);
}

static inline agg_dd_t dd_div_d(agg_dd_t a, double b)
{
    double q1 = a.hi / b;
    agg_dd_t r = dd_add(a, dd_neg(two_prod(q1, b)));
    double q2 = r.hi / b;
    return fast_two_sum(q1, q2);
}

/* ---- moments ---------------------------------------------------------- */

/* Error charged per double-double step, relative to the magnitudes it
 * touched: 8u^2, above the 3u^2 of accurate addition plus the products. */
#define EPS 0x1p-103
/* Relative error we accept before recomputing: ~5.7e-14, far inside 1e-9. */
#define TOL 0x1p-44

void agg_moments_init(agg_moments_t *m, int var)
{
    memset(m, 0, agg_moments_size(var));
    m->var = var != 0;
}

void agg_moments_copy(agg_moments_t *to, const agg_moments_t *from)
{
    memset(to, 0, sizeof *to);
    memcpy(to, from, agg_moments_size(from->var));
}

void agg_moments_reset(agg_moments_t *m, double shift)
{
    int var = m->var;
    agg_moments_init(m, var);
    m->shift = shift;
    m->pinned = 1;
}

static void maybe_clear(agg_moments_t *m)
{
    if (m->n == 0) agg_moments_init(m, m->var); /* empty: exact zero, no error */
}

void agg_moments_add(agg_moments_t *m, double x, int sign)
{
    if (m->n == 0 && !m->pinned) m->shift = x;
    agg_dd_t d = two_sum(x, -m->shift);
    agg_dd_t sd = sign > 0 ? d : dd_neg(d);
    m->s1 = dd_add(m->s1, sd);
    m->e1 += EPS * (fabs(m->s1.hi) + fabs(d.hi));
    m->a1 += sign * fabs(d.hi);
    if (m->a1 < 0) m->a1 = 0;
    if (m->var) {
        agg_dd_t d2 = dd_mul(d, d);
        m->s2 = dd_add(m->s2, sign > 0 ? d2 : dd_neg(d2));
        m->e2 += EPS * (fabs(m->s2.hi) + d2.hi);
    }
    m->n += sign;
    m->fresh = 0;
    maybe_clear(m);
}

void agg_moments_add_part(agg_moments_t *m, const agg_part_t *p, int sign)
{
    if (p->n == 0) return;
    if (m->n == 0 && !m->pinned)
        m->shift = dd_add((agg_dd_t){p->shift, 0}, dd_div_d(p->s1, (double)p->n)).hi;
    double pn = (double)p->n;
    agg_dd_t delta = two_sum(p->shift, -m->shift);
    agg_dd_t c1 = dd_add(p->s1, dd_mul_d(delta, pn));
    m->s1 = dd_add(m->s1, sign > 0 ? c1 : dd_neg(c1));
    m->e1 += EPS * (fabs(m->s1.hi) + fabs(c1.hi) + pn * (fabs(p->s1.hi) + fabs(delta.hi)));
    m->a1 += sign * fabs(c1.hi);
    if (m->a1 < 0) m->a1 = 0;
    if (m->var) {
        /* sum (x - K)^2 = s2p + 2 delta s1p + n delta^2, delta = Kp - K */
        agg_dd_t c2 = dd_add(p->s2, dd_mul_d(dd_mul(delta, p->s1), 2.0));
        agg_dd_t dsq = dd_mul(delta, delta);
        c2 = dd_add(c2, dd_mul_d(dsq, pn));
        m->s2 = dd_add(m->s2, sign > 0 ? c2 : dd_neg(c2));
        m->e2 += EPS * (fabs(m->s2.hi) + fabs(c2.hi) + pn * (fabs(p->s2.hi) + dsq.hi) +
                        2 * fabs(delta.hi * p->s1.hi));
    }
    m->n += sign * p->n;
    m->fresh = 0;
    maybe_clear(m);
}

void agg_part_add(agg_part_t *p, double x, int var)
{
    if (var) {
        if (p->n == 0) {
            p->shift = x;
            p->s1 = p->s2 = (agg_dd_t){0, 0};
        }
        agg_dd_t d = two_sum(x, -p->shift);
        p->s1 = dd_add(p->s1, d);
        p->s2 = dd_add(p->s2, dd_mul(d, d));
    } else {
        p->s1 = dd_add(p->s1, (agg_dd_t){x, 0});
    }
    p->n++;
}

static agg_dd_t sum_dd(const agg_moments_t *m)
{
    return dd_add(two_prod((double)m->n, m->shift), m->s1);
}

double agg_moments_sum(const agg_moments_t *m)
{
    return m->n ? sum_dd(m).hi : 0.0;
}

double agg_moments_mean(const agg_moments_t *m)
{
    if (m->n == 0) return 0;
    return dd_add((agg_dd_t){m->shift, 0}, dd_div_d(m->s1, (double)m->n)).hi;
}

double agg_moments_center(const agg_moments_t *m)
{
    return agg_moments_mean(m);
}

static agg_dd_t m2_dd(const agg_moments_t *m)
{
    agg_dd_t q = dd_div_d(dd_mul(m->s1, m->s1), (double)m->n);
    return dd_add(m->s2, dd_neg(q));
}

double agg_moments_m2(const agg_moments_t *m)
{
    if (m->n == 0) return 0;
    double v = m2_dd(m).hi;
    /* (rounding can leave a tiny negative: 0; a NaN from sums that
     * overflowed stays NaN, which the features read as null, not 0) */
    return v > 0 || isnan(v) ? v : 0;
}

int agg_moments_trusted(const agg_moments_t *m, uint32_t kinds, int64_t cnt)
{
    if (m->fresh || m->n == 0) return 1;
    if (kinds & (AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG))) {
        /* Recomputing cannot beat ~EPS * cnt * a1 (the window's own
         * cancellation), so a bound below that is as good as it gets. That
         * test is the cheap one (the usual answer on every query): first. */
        if (m->e1 > 4 * EPS * (double)cnt * m->a1 && m->e1 > TOL * fabs(sum_dd(m).hi)) return 0;
    }
    if (m->var && (kinds & AGG_NEED_VAR) && m->n >= 2) {
        double m2 = agg_moments_m2(m);
        double mean_dev = fabs(m->s1.hi) / (double)m->n;
        double err = m->e2 + 2 * mean_dev * m->e1 + EPS * fabs(m->s2.hi);
        if (err > TOL * m2) return 0;
    }
    return 1;
}
