/* stream_win_test.c — sliding windows (src/stream/win.c) against a
 * brute-force oracle: every applied event is kept, and each query recomputes
 * its window from scratch (exactly rounded sums, two-pass corrected
 * variance, sorted quantiles). Randomized differential runs over exact and
 * bucketed windows with out-of-order and late events, adversarial numeric
 * sequences, encode/decode round trips that must answer bit-identically,
 * and decoding of truncated and corrupted states.
 *
 * WEIR_TEST_SCALE (a float, default 1; 0.25 under ASan) scales the event
 * counts. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "stream/win.h"

static double scale(void)
{
    const char *s = getenv("WEIR_TEST_SCALE");
    if (s) return atof(s);
#if defined(__SANITIZE_ADDRESS__)
    return 0.25;
#else
    return 1;
#endif
}

/* ---- deterministic RNG ------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}
static int64_t rint_(int64_t n) /* [0, n) */
{
    return n > 0 ? (int64_t)(rnd() % (uint64_t)n) : 0;
}

/* ---- oracle ----------------------------------------------------------- */

/* Shewchuk / Python math.fsum: exactly the sum, rounded once (near enough). */
static double fsum(const double *x, size_t n)
{
    double p[256];
    size_t np = 0;
    for (size_t k = 0; k < n; k++) {
        double v = x[k];
        size_t i = 0;
        for (size_t j = 0; j < np; j++) {
            double y = p[j];
            if (fabs(v) < fabs(y)) {
                double t = v;
                v = y;
                y = t;
            }
            double hi = v + y, lo = y - (hi - v);
            if (lo != 0) p[i++] = lo;
            v = hi;
        }
        assert_true(i < 256);
        p[i++] = v;
        np = i;
    }
    double s = 0;
    for (size_t j = np; j-- > 0;) s += p[j];
    return s;
}

typedef struct rev {
    int64_t t;
    uint64_t seq;
    double x;
    uint64_t bits;
} rev_t;

typedef struct ref {
    rev_t *e;
    size_t n, cap;
    uint64_t seq;
} ref_t;

static void ref_add(ref_t *r, int64_t t, double x, uint64_t bits)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
    }
    size_t p = r->n;
    while (p > 0 && r->e[p - 1].t > t) p--;
    memmove(r->e + p + 1, r->e + p, (r->n - p) * sizeof *r->e);
    r->e[p] = (rev_t){t, r->seq++, x, bits};
    r->n++;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int in_window(const win_conf_t *c, int64_t te, int64_t t)
{
    if (!c->every) return te > t - c->range && te <= t;
    int64_t b = floordiv(t, c->every), be = floordiv(te, c->every);
    return be > b - c->nbuckets && be <= b;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static int cmp_u(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct expect {
    int64_t n;
    double sum, abs_sum, mean, m2, sq_scale, mn, mx;
    uint64_t first, last;
    int64_t distinct;
    double *sorted;
} expect_t;

static void ref_eval(const ref_t *r, const win_conf_t *c, int64_t t, expect_t *x)
{
    memset(x, 0, sizeof *x);
    /* Events are sorted by time; only a window's worth is scanned. */
    size_t lo = 0, hi = r->n;
    int64_t tmin = c->every ? (floordiv(t, c->every) - c->nbuckets + 1) * c->every : t - c->range + 1;
    int64_t tmax = c->every ? (floordiv(t, c->every) + 1) * c->every - 1 : t;
    size_t a = lo, b = hi;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (r->e[m].t < tmin) a = m + 1; else b = m;
    }
    double *vals = malloc((r->n + 1) * sizeof(double));
    uint64_t *ids = malloc((r->n + 1) * sizeof(uint64_t));
    const rev_t *first = NULL, *last = NULL;
    for (size_t i = a; i < r->n && r->e[i].t <= tmax; i++) {
        const rev_t *e = &r->e[i];
        if (!in_window(c, e->t, t)) continue;
        vals[x->n] = e->x;
        ids[x->n] = c->ids ? e->bits : mset_id_of_double(e->x);
        x->n++;
        if (!first || e->t < first->t || (e->t == first->t && e->seq < first->seq)) first = e;
        if (!last || e->t > last->t || (e->t == last->t && e->seq > last->seq)) last = e;
    }
    if (x->n) {
        x->first = first->bits;
        x->last = last->bits;
        if (!c->ids) {
            x->sum = fsum(vals, (size_t)x->n);
            x->mean = x->sum / (double)x->n;
            double *d = malloc((size_t)x->n * sizeof(double)), *d2 = malloc((size_t)x->n * sizeof(double));
            for (int64_t i = 0; i < x->n; i++) {
                d[i] = vals[i] - x->mean;
                d2[i] = d[i] * d[i];
                x->abs_sum += fabs(vals[i]);
                x->sq_scale += vals[i] * vals[i];
            }
            double s1 = fsum(d, (size_t)x->n);
            x->m2 = fsum(d2, (size_t)x->n) - s1 * s1 / (double)x->n;
            free(d);
            free(d2);
            x->mn = x->mx = vals[0];
            for (int64_t i = 1; i < x->n; i++) {
                if (vals[i] < x->mn) x->mn = vals[i];
                if (vals[i] > x->mx) x->mx = vals[i];
            }
            qsort(vals, (size_t)x->n, sizeof(double), cmp_d);
        }
        qsort(ids, (size_t)x->n, sizeof(uint64_t), cmp_u);
        x->distinct = 1;
        for (int64_t i = 1; i < x->n; i++) x->distinct += ids[i] != ids[i - 1];
    }
    x->sorted = vals;
    free(ids);
}

static const double qs_probe[] = {0, 0.01, 0.25, 0.5, 0.9, 0.99, 1};

static void check_close(const char *what, double got, double want, double tol, int64_t t)
{
    if (fabs(got - want) <= tol) return;
    fail_msg("%s at t=%lld: got %.17g want %.17g (tol %.3g)", what, (long long)t, got, want, tol);
}

/* Every kind of the conf, checked against the oracle. */
static void check_all(win_t *w, const ref_t *r, int64_t t)
{
    const win_conf_t *c = w->conf;
    expect_t x;
    ref_eval(r, c, t, &x);
    win_ask_t asks[AGG_NKINDS + 8];
    size_t na = 0;
    for (int k = 0; k < AGG_NKINDS; k++) {
        if (!(c->kinds & AGG_BIT(k))) continue;
        if (k == AGG_APPROX_QUANTILE) {
            for (size_t i = 0; i < sizeof qs_probe / sizeof *qs_probe; i++)
                asks[na++] = (win_ask_t){AGG_APPROX_QUANTILE, qs_probe[i]};
        } else {
            asks[na++] = (win_ask_t){(agg_kind_t)k, 0};
        }
    }
    agg_result_t out[AGG_NKINDS + 8];
    assert_int_equal(win_query(w, t, asks, na, out), 0);
    for (size_t i = 0; i < na; i++) {
        agg_result_t *o = &out[i];
        switch (asks[i].kind) {
        case AGG_COUNT:
            assert_false(o->null);
            assert_true(o->num == (double)x.n);
            break;
        case AGG_SUM:
            assert_false(o->null);
            check_close("sum", o->num, x.sum, 1e-12 * fabs(x.sum) + 1e-20 * x.abs_sum, t);
            break;
        case AGG_AVG:
            assert_int_equal(o->null, x.n == 0);
            if (x.n)
                check_close("avg", o->num, x.mean,
                            1e-12 * fabs(x.mean) + 1e-20 * x.abs_sum / (double)x.n, t);
            break;
        case AGG_MIN:
            assert_int_equal(o->null, x.n == 0);
            if (x.n) assert_true(o->num == x.mn);
            break;
        case AGG_MAX:
            assert_int_equal(o->null, x.n == 0);
            if (x.n) assert_true(o->num == x.mx);
            break;
        case AGG_VARIANCE:
        case AGG_STDDEV: {
            assert_int_equal(o->null, x.n < 2);
            if (x.n < 2) break;
            double var = x.m2 / (double)(x.n - 1);
            double tol = 1e-11 * var + 1e-28 * x.sq_scale;
            if (asks[i].kind == AGG_VARIANCE)
                check_close("variance", o->num, var, tol, t);
            else
                check_close("stddev", o->num, sqrt(var), 1e-11 * sqrt(var) + sqrt(tol), t);
            break;
        }
        case AGG_FIRST:
        case AGG_LAST:
            assert_int_equal(o->null, x.n == 0);
            if (x.n) {
                uint64_t want = asks[i].kind == AGG_FIRST ? x.first : x.last;
                if (o->id != want)
                    fail_msg("%s at t=%lld: got %llx want %llx", agg_kind_name(asks[i].kind),
                             (long long)t, (unsigned long long)o->id, (unsigned long long)want);
            }
            break;
        case AGG_DISTINCT:
        case AGG_APPROX_DISTINCT:
            assert_false(o->null);
            assert_true(o->num == (double)x.distinct);
            break;
        case AGG_APPROX_QUANTILE: {
            assert_int_equal(o->null, x.n == 0);
            if (!x.n) break;
            double want = x.sorted[(int64_t)floor(asks[i].q * (double)(x.n - 1))];
            check_close("approx_quantile", o->num, want, c->alpha * fabs(want) * (1 + 1e-9), t);
            break;
        }
        default: fail();
        }
    }
    free(x.sorted);
}

/* ---- randomized differential runs ------------------------------------- */

typedef struct run {
    int64_t range, every, lateness, gap; /* gap: mean ms between events */
    uint32_t kinds;
    int ids;
    int values; /* 0 uniform, 1 few distinct, 2 wide magnitudes, 3 constant, 4 huge offset */
    int events;
} run_t;

static double gen_value(int mode)
{
    switch (mode) {
    case 0: return round((unif() * 2000 - 1000) * 100) / 100;
    case 1: return (double)rint_(12);
    case 2: return (rnd() & 1 ? -1 : 1) * pow(10, unif() * 24 - 6);
    case 3: return 42.5;
    default: return 1e9 + unif() * 1e-3;
    }
}

static void differential(const run_t *run, uint64_t seed)
{
    rng_state = seed;
    win_conf_t c;
    char err[200];
    assert_int_equal(win_conf_init(&c, run->range, run->every, run->kinds, run->ids, 0, err,
                                   sizeof err), 0);
    win_t w;
    win_init(&w, &c);
    ref_t r = {0};
    int64_t maxt = 1700000000000LL + rint_(1000000), wm = maxt - run->lateness;
    int events = (int)(run->events * scale());
    if (events < 500) events = 500;
    int late = 0, ooo = 0, extra = 0;
    for (int i = 0; i < events; i++) {
        if (rint_(100) < 4) { /* late: not applied, scored as of the watermark */
            late++;
            check_all(&w, &r, wm);
            continue;
        }
        int64_t gap = rint_(4) == 0 ? 0 : rint_(2 * run->gap + 1);
        int64_t t = maxt + gap;
        if (rint_(100) < 30) {
            t -= rint_(run->lateness + 1);
            if (t < wm) t = wm;
        }
        if (t < maxt) ooo++;
        double x = gen_value(run->values);
        uint64_t bits;
        win_val_t v;
        if (run->ids) {
            bits = (uint64_t)rint_(50) * 0x9e3779b97f4a7c15ULL;
            v = win_id(bits);
        } else {
            v = win_num(x);
            memcpy(&bits, &x, 8);
        }
        assert_int_equal(win_add(&w, t, v), 0);
        ref_add(&r, t, x, bits);
        if (t > maxt) maxt = t;
        wm = maxt - run->lateness;
        check_all(&w, &r, t);
        if (rint_(100) < 5) { /* a query at another allowed time */
            extra++;
            check_all(&w, &r, wm + rint_(maxt - wm + run->range / 2 + 1));
        }
        if (rint_(100) < 70) win_expire(&w, wm);
    }
    assert_true(ooo > 0 && late > 0);
    win_free(&w);
    free(r.e);
}

#define NUM_KINDS (AGG_ALL_KINDS)
#define ID_KINDS                                                                         \
    (AGG_BIT(AGG_COUNT) | AGG_BIT(AGG_DISTINCT) | AGG_BIT(AGG_APPROX_DISTINCT) |         \
     AGG_BIT(AGG_FIRST) | AGG_BIT(AGG_LAST))

static void test_exact_differential(void **state)
{
    (void)state;
    const run_t runs[] = {
        {60000, 0, 5000, 3000, NUM_KINDS, 0, 0, 20000},     /* ~40 in window */
        {60000, 0, 5000, 300, NUM_KINDS, 0, 1, 10000},      /* ~400 in window, dup values */
        {3600000, 0, 30000, 20000, NUM_KINDS, 0, 2, 10000}, /* wide magnitudes */
        {10000, 0, 30000, 1000, NUM_KINDS, 0, 0, 10000},    /* window shorter than lateness */
        {60000, 0, 5000, 1000, NUM_KINDS, 0, 3, 5000},      /* constant */
        {60000, 0, 5000, 1000, NUM_KINDS, 0, 4, 10000},     /* 1e9 + tiny noise */
        {60000, 0, 5000, 1000, AGG_BIT(AGG_COUNT), 0, 0, 5000},
        {60000, 0, 5000, 1000, ID_KINDS, 1, 0, 10000},
        /* A few values in the window (~10): records move between the inline
         * area and the heap, and distinct between counting the records and
         * the multiset (SMALL_IDS in win.c), both ways, many times. */
        {60000, 0, 5000, 8000, ID_KINDS, 1, 0, 10000},
        {60000, 0, 5000, 8000, NUM_KINDS, 0, 1, 10000},
        {60000, 0, 20000, 12000, NUM_KINDS, 0, 1, 10000},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) differential(&runs[i], 1000 + i);
}

static void test_bucketed_differential(void **state)
{
    (void)state;
    const run_t runs[] = {
        {60000, 10000, 5000, 1000, NUM_KINDS, 0, 0, 20000},
        {60000, 10000, 25000, 500, NUM_KINDS, 0, 1, 10000},  /* lateness > H */
        {3600000, 60000, 30000, 5000, NUM_KINDS, 0, 2, 10000},
        {60000, 60000, 5000, 1000, NUM_KINDS, 0, 0, 5000},   /* one bucket */
        {60000, 1000, 5000, 1000, NUM_KINDS, 0, 4, 10000},
        {20000, 5000, 60000, 1000, NUM_KINDS, 0, 0, 10000},  /* window shorter than lateness */
        {60000, 10000, 5000, 1000, AGG_BIT(AGG_COUNT), 0, 0, 5000},
        {60000, 10000, 5000, 500, ID_KINDS, 1, 0, 10000},
        {60000, 10000, 5000, 9000, AGG_BIT(AGG_AVG), 0, 0, 10000}, /* 0-6 buckets: inline and heap */
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) differential(&runs[i], 2000 + i);
}

/* ---- adversarial numerics --------------------------------------------- */

/* In-order values with a window of `keep` values: a huge value enters and
 * leaves while small ones stay; subtract-on-evict must not leave its
 * rounding behind. */
static void adversarial_run(int64_t every, const double *pattern, size_t np, int reps, int keep)
{
    win_conf_t c;
    uint32_t kinds = AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG) | AGG_BIT(AGG_VARIANCE) |
                     AGG_BIT(AGG_STDDEV) | AGG_BIT(AGG_COUNT);
    int64_t range = every ? every * keep : keep;
    assert_int_equal(win_conf_init(&c, range, every, kinds, 0, 0, NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    ref_t r = {0};
    int64_t step = every ? every : 1;
    for (int i = 0; i < reps * (int)np; i++) {
        double x = pattern[i % np];
        int64_t t = (int64_t)i * step;
        assert_int_equal(win_add(&w, t, win_num(x)), 0);
        uint64_t bits;
        memcpy(&bits, &x, 8);
        ref_add(&r, t, x, bits);
        check_all(&w, &r, t);
        win_expire(&w, t);
    }
    win_free(&w);
    free(r.e);
}

static void test_adversarial_numerics(void **state)
{
    (void)state;
    /* A huge value among ones: after it leaves, a naive running sum is off
     * by its rounding (1e16 + 1 - 1e16 = 0 in doubles). */
    const double p1[] = {1e16, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    adversarial_run(0, p1, 16, 50, 8);
    adversarial_run(1000, p1, 16, 50, 8);
    /* Magnitudes from 1e30 down to 1e-5 in one window. */
    const double p2[] = {1e30, -3, 2.5, 1e-5, 7, -1e30, 4, 1e20, 0.1, 0.2, 0.3, -1e20};
    adversarial_run(0, p2, 12, 100, 5);
    adversarial_run(10, p2, 12, 100, 5);
    /* Variance of 1e9-sized values differing by 1e-3: catastrophic for
     * sum(x^2) - sum(x)^2 / n, and a large value passing by. */
    double p3[40];
    for (int i = 0; i < 40; i++) p3[i] = 1e9 + (i % 7) * 1e-3;
    p3[13] = 1e15;
    adversarial_run(0, p3, 40, 50, 10);
    adversarial_run(100, p3, 40, 50, 10);
    /* Exact cancellation to zero, then small values. */
    const double p4[] = {1e300 / 1e150, -1e150, 1, 2, 3, 1e-300, -1e-300};
    adversarial_run(0, p4, 7, 100, 4);
}

/* The variance of 1e9 + {0, 1e-3, 2e-3} is exactly representable-ish:
 * check a known value to 1e-9 relative as the brief states it. */
static void test_variance_known(void **state)
{
    (void)state;
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 3, 0, AGG_BIT(AGG_VARIANCE), 0, 0, NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    /* push a huge value first, then slide it out */
    win_add(&w, 0, win_num(1e15));
    for (int i = 1; i <= 30; i++) win_add(&w, i, win_num(1e9 + (i % 3) * 1e-3 * 1024 / 1024));
    agg_result_t o;
    assert_int_equal(win_query1(&w, 30, AGG_VARIANCE, 0, &o), 0);
    /* values at t = 28, 29, 30: i % 3 = 1, 2, 0; the variance is that of
     * their exact differences from 1e9 (Sterbenz: a - z is exact). */
    double a = 1e9 + 1e-3, b = 1e9 + 2e-3, z = 1e9;
    double da = a - z, db = b - z, m = (da + db) / 3;
    double want = ((da - m) * (da - m) + (db - m) * (db - m) + m * m) / 2;
    assert_true(fabs(o.num - want) <= 1e-9 * want);
    win_free(&w);
}

/* ---- semantics details ------------------------------------------------ */

static void test_empty_and_nulls(void **state)
{
    (void)state;
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 1000, 0, AGG_ALL_KINDS, 0, 0, NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    agg_result_t o;
    for (int k = 0; k < AGG_NKINDS; k++) {
        assert_int_equal(win_query1(&w, 5000, (agg_kind_t)k, 0.5, &o), 0);
        int zero = k == AGG_COUNT || k == AGG_SUM || k == AGG_DISTINCT || k == AGG_APPROX_DISTINCT;
        assert_int_equal(o.null, !zero);
        if (zero) assert_true(o.num == 0);
    }
    win_add(&w, 6000, win_num(3));
    assert_int_equal(win_query1(&w, 6000, AGG_VARIANCE, 0, &o), 0);
    assert_true(o.null); /* one value: null */
    assert_int_equal(win_query1(&w, 6000, AGG_STDDEV, 0, &o), 0);
    assert_true(o.null);
    /* the value leaves: empty again */
    assert_int_equal(win_query1(&w, 7000, AGG_MIN, 0, &o), 0);
    assert_true(o.null);
    assert_int_equal(win_query1(&w, 7000, AGG_SUM, 0, &o), 0);
    assert_true(!o.null && o.num == 0);
    /* below the watermark: refused */
    win_expire(&w, 8000);
    assert_int_equal(win_add(&w, 7999, win_num(1)), WEIR_ERANGE);
    assert_int_equal(win_query1(&w, 7999, AGG_COUNT, 0, &o), WEIR_ERANGE);
    assert_int_equal(win_add(&w, 8000, win_num(NAN)), WEIR_EINVAL);
    assert_int_equal(win_add(&w, 8000, win_num(INFINITY)), WEIR_EINVAL);
    win_free(&w);

    /* conf errors */
    char err[200];
    assert_int_equal(win_conf_init(&c, 1000, 300, AGG_BIT(AGG_SUM), 0, 0, err, sizeof err),
                     WEIR_EINVAL);
    assert_non_null(strstr(err, "multiple"));
    assert_int_equal(win_conf_init(&c, 1000, 0, AGG_BIT(AGG_SUM), 1, 0, err, sizeof err),
                     WEIR_EINVAL);
    assert_non_null(strstr(err, "sum needs a numeric input"));
    assert_int_equal(win_conf_init(&c, 0, 0, AGG_BIT(AGG_SUM), 0, 0, err, sizeof err),
                     WEIR_EINVAL);
    assert_int_equal(win_conf_init(&c, 1000, 0, 0, 0, 0, err, sizeof err), WEIR_EINVAL);
    assert_int_equal(win_conf_init(&c, 1000, 0, AGG_BIT(AGG_COUNT), 0, 0.7, err, sizeof err),
                     WEIR_EINVAL);
    /* a kind not in the conf */
    assert_int_equal(win_conf_init(&c, 1000, 0, AGG_BIT(AGG_COUNT), 0, 0, err, sizeof err), 0);
    win_init(&w, &c);
    assert_int_equal(win_query1(&w, 0, AGG_SUM, 0, &o), WEIR_EINVAL);
    win_free(&w);
}

static void test_first_last_ties(void **state)
{
    (void)state;
    for (int every = 0; every <= 100; every += 100) {
        win_conf_t c;
        assert_int_equal(win_conf_init(&c, 1000, every,
                                       AGG_BIT(AGG_FIRST) | AGG_BIT(AGG_LAST), 0, 0, NULL, 0), 0);
        win_t w;
        win_init(&w, &c);
        win_add(&w, 500, win_num(1));
        win_add(&w, 500, win_num(2)); /* same time, later in log order */
        win_add(&w, 400, win_num(3)); /* late: earlier time, first */
        win_add(&w, 400, win_num(4));
        agg_result_t f, l;
        win_query1(&w, 500, AGG_FIRST, 0, &f);
        win_query1(&w, 500, AGG_LAST, 0, &l);
        assert_true(f.num == 3); /* earliest time, earliest in log order */
        assert_true(l.num == 2); /* latest time, latest in log order */
        win_free(&w);
    }
}

/* The bucketed window includes values later than t in t's bucket. */
static void test_bucket_semantics(void **state)
{
    (void)state;
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 3000, 1000, AGG_BIT(AGG_COUNT) | AGG_BIT(AGG_SUM), 0, 0,
                                   NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    win_add(&w, 500, win_num(1));   /* bucket 0 */
    win_add(&w, 2999, win_num(2));  /* bucket 2 */
    win_add(&w, 2100, win_num(4));  /* bucket 2, late */
    agg_result_t o;
    win_query1(&w, 2100, AGG_SUM, 0, &o);
    assert_true(o.num == 7); /* buckets 0..2, 2999 included */
    win_query1(&w, 3000, AGG_SUM, 0, &o);
    assert_true(o.num == 6); /* buckets 1..3 */
    win_query1(&w, 1999, AGG_SUM, 0, &o); /* slow path: buckets -1..1 */
    assert_true(o.num == 1);
    win_free(&w);
    /* negative times floor correctly */
    win_init(&w, &c);
    win_add(&w, -1, win_num(5)); /* bucket -1 */
    win_add(&w, 1999, win_num(6)); /* bucket 1: window -1..1 */
    win_query1(&w, 1999, AGG_SUM, 0, &o);
    assert_true(o.num == 11);
    win_query1(&w, 2000, AGG_SUM, 0, &o); /* window 0..2 */
    assert_true(o.num == 6);
    win_free(&w);
}

/* Memory is returned as values leave, and freed entirely by win_free. */
static void test_memory_returns(void **state)
{
    (void)state;
    size_t before = weir_alloc_used();
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 1000, 0, AGG_ALL_KINDS, 0, 0, NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    for (int i = 0; i < 100000; i++) win_add(&w, i / 10, win_num(i % 1000));
    size_t peak = win_bytes(&w);
    win_expire(&w, 1000000);
    assert_true(win_is_empty(&w));
    assert_true(win_bytes(&w) < peak / 10);
    win_free(&w);
    assert_int_equal(weir_alloc_used(), before);
    (void)peak;
}

/* ---- serialization ---------------------------------------------------- */

static int same_result(const agg_result_t *a, const agg_result_t *b)
{
    return a->null == b->null && a->id == b->id;
}

/* Restored windows answer bit-identically, through the rest of a run.
 * inl: restored into a window whose inline room holds inl records instead
 * (another build's layout: the state is written by value, so a checkpoint
 * outlives a change of the room). */
static void roundtrip_run(int64_t every, uint32_t kinds, int ids, uint64_t seed, uint16_t inl)
{
    rng_state = seed;
    win_conf_t c, cb;
    assert_int_equal(win_conf_init(&c, 60000, every, kinds, ids, 0, NULL, 0), 0);
    cb = c;
    if (inl) {
        cb.inl_cap = inl;
        cb.area_size = cb.area_inl + (uint32_t)inl * cb.rsize;
    }
    win_t a, b;
    win_init(&a, &c);
    int64_t maxt = 1000000, L = 5000;
    win_ask_t asks[AGG_NKINDS];
    size_t na = 0;
    for (int k = 0; k < AGG_NKINDS; k++)
        if (kinds & AGG_BIT(k)) asks[na++] = (win_ask_t){(agg_kind_t)k, 0.75};
    int n = (int)(4000 * scale());
    for (int i = 0; i < n; i++) {
        int64_t t = maxt + rint_(2000) - (rint_(3) ? 0 : rint_(L));
        if (t < maxt - L) t = maxt - L;
        win_val_t v = ids ? win_id(rnd() % 100) : win_num(gen_value((int)rint_(3)));
        assert_int_equal(win_add(&a, t, v), 0);
        if (t > maxt) maxt = t;
        win_expire(&a, maxt - L);
        if (i == n / 2) {
            weir_buf_t buf = WEIR_BUF_INIT;
            win_encode(&a, &buf);
            size_t used = 0;
            char err[200];
            assert_int_equal(win_decode(&b, &cb, buf.data, buf.len, &used, err, sizeof err), 0);
            assert_int_equal(used, buf.len);
            /* encode(decode(x)) == x */
            weir_buf_t buf2 = WEIR_BUF_INIT;
            win_encode(&b, &buf2);
            assert_int_equal(buf2.len, buf.len);
            assert_memory_equal(buf2.data, buf.data, buf.len);
            buf_free(&buf);
            buf_free(&buf2);
        }
        if (i > n / 2) {
            assert_int_equal(win_add(&b, t, v), 0);
            win_expire(&b, maxt - L);
            agg_result_t ra[AGG_NKINDS], rb[AGG_NKINDS];
            int64_t qt = rint_(4) ? t : maxt - L;
            assert_int_equal(win_query(&a, qt, asks, na, ra), 0);
            assert_int_equal(win_query(&b, qt, asks, na, rb), 0);
            for (size_t k = 0; k < na; k++) assert_true(same_result(&ra[k], &rb[k]));
        }
    }
    win_free(&a);
    win_free(&b);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip_run(0, AGG_ALL_KINDS, 0, 1, 0);
    roundtrip_run(10000, AGG_ALL_KINDS, 0, 2, 0);
    roundtrip_run(0, AGG_BIT(AGG_COUNT), 0, 3, 0);
    roundtrip_run(1000, AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG), 0, 4, 0);
    roundtrip_run(0, ID_KINDS, 1, 5, 0);
    roundtrip_run(5000, ID_KINDS, 1, 6, 0);
    /* Into a smaller and a larger inline room than the writer's. */
    roundtrip_run(1000, AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG), 0, 7, 2);
    roundtrip_run(1000, AGG_BIT(AGG_SUM) | AGG_BIT(AGG_AVG), 0, 8, 40);
    roundtrip_run(0, AGG_ALL_KINDS, 0, 9, 2);
    roundtrip_run(0, AGG_ALL_KINDS, 0, 10, 12);
}

/* Every prefix and many corruptions of valid states decode to an error or
 * to a window that works; never a crash (ASan checks the reads). */
static void garbage_run(int64_t every, uint32_t kinds, int ids)
{
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 60000, every, kinds, ids, 0, NULL, 0), 0);
    win_t a;
    win_init(&a, &c);
    rng_state = 77;
    for (int i = 0; i < 300; i++)
        win_add(&a, 1000 * i + rint_(900), ids ? win_id(rnd() % 20) : win_num(gen_value(0)));
    weir_buf_t buf = WEIR_BUF_INIT;
    win_encode(&a, &buf);
    win_free(&a);
    win_t b;
    size_t used;
    /* every prefix near the start, then a spread of them */
    size_t step = buf.len / (size_t)(1 + 1500 * scale());
    for (size_t cut = 0; cut < buf.len; cut += cut < 300 || step == 0 ? 1 : step) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf.data, cut);
        assert_int_equal(win_decode(&b, &c, copy, cut, &used, NULL, 0), WEIR_ECORRUPT);
        win_free(&b);
        free(copy);
    }
    int ok = 0;
    for (int k = 0; k < (int)(3000 * scale()); k++) {
        unsigned char *copy = malloc(buf.len);
        memcpy(copy, buf.data, buf.len);
        int flips = 1 + (int)rint_(4);
        for (int f = 0; f < flips; f++) copy[rint_((int64_t)buf.len)] ^= (unsigned char)(1 + rint_(255));
        if (win_decode(&b, &c, copy, buf.len, &used, NULL, 0) == 0) {
            ok++;
            agg_result_t o;
            win_ask_t asks[AGG_NKINDS];
            size_t na = 0;
            for (int kk = 0; kk < AGG_NKINDS; kk++)
                if (kinds & AGG_BIT(kk)) asks[na++] = (win_ask_t){(agg_kind_t)kk, 0.5};
            agg_result_t out[AGG_NKINDS];
            if (b.end != WIN_NONE) {
                win_query(&b, b.end, asks, na, out);
                win_add(&b, b.end, ids ? win_id(1) : win_num(1));
                win_expire(&b, b.end);
                win_query(&b, b.end + 100000, asks, na, out);
            }
            (void)o;
        }
        win_free(&b);
        free(copy);
    }
    (void)ok;
    /* other definitions are refused */
    win_conf_t c2;
    assert_int_equal(win_conf_init(&c2, 120000, every, kinds, ids, 0, NULL, 0), 0);
    char err[200];
    assert_int_equal(win_decode(&b, &c2, buf.data, buf.len, &used, err, sizeof err), WEIR_ECORRUPT);
    assert_non_null(strstr(err, "another window definition"));
    win_free(&b);
    buf_free(&buf);
}

static void test_decode_garbage(void **state)
{
    (void)state;
    garbage_run(0, AGG_ALL_KINDS, 0);
    garbage_run(5000, AGG_ALL_KINDS, 0);
    garbage_run(5000, ID_KINDS, 1);
}

/* ---- win_step ------------------------------------------------------------- */

/* a and b encode to the same bytes. */
static void assert_same_state(const win_t *a, const win_t *b)
{
    weir_buf_t ea = WEIR_BUF_INIT, eb = WEIR_BUF_INIT;
    win_encode(a, &ea);
    win_encode(b, &eb);
    assert_int_equal(ea.len, eb.len);
    assert_memory_equal(ea.data, eb.data, ea.len);
    buf_free(&ea);
    buf_free(&eb);
}

/* win_step must be exactly add + query + expire: two twins fed the same
 * events (in order, out of order within the lateness, nulls, values below
 * the watermark) answer bit-identically and encode to the same bytes. A
 * third twin stepped with no asks (a replay that needs no features) must
 * be left in the same state: it encodes to the same bytes throughout, and
 * answers as the others at the end. huge: values of 1e15 now and then, so
 * that evicting them leaves the moments untrusted and a read recomputes. */
static void step_run_values(int64_t every, uint32_t kinds, int ids, int huge)
{
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 60000, every, kinds, ids, 0, NULL, 0), 0);
    win_ask_t asks[AGG_NKINDS];
    size_t na = 0;
    for (int k = 0; k < AGG_NKINDS; k++)
        if (kinds & AGG_BIT(k)) asks[na++] = (win_ask_t){(agg_kind_t)k, 0.25 * (k % 4)};
    win_t a, b, z;
    win_init(&a, &c);
    win_init(&b, &c);
    win_init(&z, &c);
    rng_state = 77 + (uint64_t)every + kinds + (uint64_t)ids + (uint64_t)huge;
    int64_t maxt = 0;
    for (int i = 0; i < 4000; i++) {
        maxt += (int64_t)(rnd() % 3000);
        int64_t wm = maxt - 5000, t = maxt - (int64_t)(rnd() % 6000); /* some below wm */
        win_val_t v = ids ? win_id(rnd() % 7) : win_num((double)(rnd() % 1000) / 8 - 40);
        if (huge && rnd() % 50 == 0) v = win_num(1e15 + (double)(rnd() % 1000));
        int has = rnd() % 10 != 0;
        agg_result_t ra[AGG_NKINDS], rb[AGG_NKINDS];
        memset(ra, 0x5a, sizeof ra);
        memset(rb, 0x5a, sizeof rb);
        int rca = win_step(&a, t, has ? &v : NULL, asks, na, ra, wm);
        if (has) win_add(&b, t, v);
        int rcb = win_query(&b, t, asks, na, rb);
        win_expire(&b, wm);
        assert_int_equal(rca, rcb);
        assert_memory_equal(ra, rb, na * sizeof ra[0]);
        assert_int_equal(win_step(&z, t, has ? &v : NULL, asks, 0, NULL, wm), rca);
        if (i % 100 == 99) assert_same_state(&a, &z);
    }
    assert_same_state(&a, &b);
    agg_result_t ra[AGG_NKINDS], rz[AGG_NKINDS];
    memset(ra, 0x5a, sizeof ra);
    memset(rz, 0x5a, sizeof rz);
    assert_int_equal(win_query(&a, maxt, asks, na, ra), 0);
    assert_int_equal(win_query(&z, maxt, asks, na, rz), 0);
    assert_memory_equal(ra, rz, na * sizeof ra[0]);
    win_free(&a);
    win_free(&b);
    win_free(&z);
}

static void step_run(int64_t every, uint32_t kinds, int ids)
{
    step_run_values(every, kinds, ids, 0);
}

static void test_step_is_add_query_expire(void **state)
{
    (void)state;
    step_run(0, AGG_ALL_KINDS, 0);
    step_run(1000, AGG_ALL_KINDS, 0);
    step_run(0, AGG_BIT(AGG_COUNT), 0);
    step_run(0, ID_KINDS, 1);
    step_run(1000, ID_KINDS, 1);
    step_run_values(0, AGG_ALL_KINDS, 0, 1);
    step_run_values(1000, AGG_ALL_KINDS, 0, 1);
    step_run_values(0, AGG_BIT(AGG_SUM), 0, 1);
}

/* ---- costs (printed; see the report) ---------------------------------- */

static void bench_kind(const char *name, int64_t every, uint32_t kinds, int ooo_pct)
{
    win_conf_t c;
    assert_int_equal(win_conf_init(&c, 3600000, every, kinds, 0, 0, NULL, 0), 0);
    win_t w;
    win_init(&w, &c);
    rng_state = 9;
    win_ask_t asks[AGG_NKINDS];
    size_t na = 0;
    for (int k = 0; k < AGG_NKINDS; k++)
        if (kinds & AGG_BIT(k)) asks[na++] = (win_ask_t){(agg_kind_t)k, 0.5};
    agg_result_t out[AGG_NKINDS];
    int n = (int)(300000 * scale() * scale()); /* tiny under ASan: timings mean nothing there */
    int64_t t = 0;
    uint64_t t0 = weir_mono_ns();
    for (int i = 0; i < n; i++) {
        t += 36; /* 100 events/s: up to 100,000 values in a 1 h window */
        int64_t te = (ooo_pct && (int)rint_(100) < ooo_pct) ? t - rint_(5000) : t;
        win_add(&w, te, win_num((double)(rnd() % 100000) / 100));
        win_query(&w, te, asks, na, out);
        if ((i & 63) == 0) win_expire(&w, t - 5000);
    }
    uint64_t ns = weir_mono_ns() - t0;
    printf("  %-34s %8.1f ns/event (add + query), %zu bytes\n", name, (double)ns / n,
           win_bytes(&w));
    win_free(&w);
}

static void test_costs(void **state)
{
    (void)state;
    printf("window costs, 1 h window, ~100,000 values in it, in-order events:\n");
    bench_kind("count", 0, AGG_BIT(AGG_COUNT), 0);
    bench_kind("sum", 0, AGG_BIT(AGG_SUM), 0);
    bench_kind("avg", 0, AGG_BIT(AGG_AVG), 0);
    bench_kind("variance+stddev", 0, AGG_NEED_VAR, 0);
    bench_kind("min", 0, AGG_BIT(AGG_MIN), 0);
    bench_kind("max", 0, AGG_BIT(AGG_MAX), 0);
    bench_kind("first+last", 0, AGG_BIT(AGG_FIRST) | AGG_BIT(AGG_LAST), 0);
    bench_kind("distinct", 0, AGG_BIT(AGG_DISTINCT), 0);
    bench_kind("approx_quantile", 0, AGG_BIT(AGG_APPROX_QUANTILE), 0);
    bench_kind("all kinds", 0, AGG_ALL_KINDS, 0);
    bench_kind("all kinds, every 1m", 60000, AGG_ALL_KINDS, 0);
    bench_kind("sum, every 1m", 60000, AGG_BIT(AGG_SUM), 0);
    printf("with 1%% of events up to 5 s out of order (slow path for those):\n");
    bench_kind("sum+count", 0, AGG_BIT(AGG_SUM) | AGG_BIT(AGG_COUNT), 1);
    bench_kind("sum+count, every 1m", 60000, AGG_BIT(AGG_SUM) | AGG_BIT(AGG_COUNT), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_differential),
        cmocka_unit_test(test_bucketed_differential),
        cmocka_unit_test(test_adversarial_numerics),
        cmocka_unit_test(test_variance_known),
        cmocka_unit_test(test_empty_and_nulls),
        cmocka_unit_test(test_first_last_ties),
        cmocka_unit_test(test_bucket_semantics),
        cmocka_unit_test(test_memory_returns),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_step_is_add_query_expire),
        cmocka_unit_test(test_costs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
