/* stream_sketch_test.c — the building blocks under the windows:
 * HyperLogLog (error within its stated bound on large inputs, merge,
 * encode/decode), DDSketch (every quantile within alpha, exact removal,
 * merge and subtract, collapse, encode/decode), the counting multiset and
 * the monotonic deque (against brute force, in and out of order).
 * WEIR_TEST_SCALE scales the sizes (0.25 under ASan). */
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
#include "base/error.h"
#include "base/hash.h"
#include "stream/codec.h"
#include "stream/hll.h"
#include "stream/mono.h"
#include "stream/mset.h"
#include "stream/qsketch.h"

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

static uint64_t rs = 1;
static uint64_t rnd(void)
{
    uint64_t z = (rs += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

/* ---- HyperLogLog ------------------------------------------------------ */

static void test_hll_error(void **state)
{
    (void)state;
    const int ps[] = {10, 12, 14};
    uint64_t maxn = (uint64_t)(2000000 * scale());
    for (size_t k = 0; k < 3; k++) {
        hll_t h;
        assert_int_equal(hll_init(&h, ps[k]), 0);
        double se = hll_std_error(&h), worst = 0;
        uint64_t next = 1;
        for (uint64_t i = 1; i <= maxn; i++) {
            uint64_t v = i * 7919;
            hll_add_hash(&h, weir_hash64(&v, sizeof v));
            if (i % 3 == 0) hll_add_hash(&h, weir_hash64(&v, sizeof v)); /* repeats */
            if (i == next) {
                double est = hll_estimate(&h), rel = fabs(est - (double)i) / (double)i;
                /* 4 standard errors, plus 1 for the smallest counts */
                if (fabs(est - (double)i) > 4 * se * (double)i + 1)
                    fail_msg("p=%d n=%llu estimate %.1f (error %.4f > 4 * %.4f)", ps[k],
                             (unsigned long long)i, est, rel, se);
                if (rel > worst) worst = rel;
                next = next < 100 ? next + 1 : next + next / 3;
            }
        }
        printf("  hll p=%d: std error %.4f, worst relative error seen %.4f (n up to %llu)\n",
               ps[k], se, worst, (unsigned long long)maxn);
        hll_free(&h);
    }
    hll_t bad;
    assert_int_equal(hll_init(&bad, 3), WEIR_EINVAL);
    assert_int_equal(hll_init(&bad, 19), WEIR_EINVAL);
}

static void test_hll_merge_encode(void **state)
{
    (void)state;
    hll_t a, b, c;
    hll_init(&a, 12);
    hll_init(&b, 12);
    hll_init(&c, 10);
    for (uint64_t i = 0; i < 60000; i++) hll_add_id(&a, i);
    for (uint64_t i = 30000; i < 90000; i++) hll_add_id(&b, i);
    assert_int_equal(hll_merge(&a, &b), 0);
    double est = hll_estimate(&a);
    assert_true(fabs(est - 90000) < 4 * hll_std_error(&a) * 90000);
    assert_int_equal(hll_merge(&a, &c), WEIR_EINVAL);
    weir_buf_t buf = WEIR_BUF_INIT;
    hll_encode(&a, &buf);
    hll_t d;
    codec_rd_t r = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + buf.len, 0};
    assert_int_equal(hll_decode(&d, &r), 0);
    assert_true(hll_estimate(&d) == est);
    hll_free(&d);
    for (size_t cut = 0; cut < buf.len; cut += 97) {
        codec_rd_t t = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + cut, 0};
        assert_int_equal(hll_decode(&d, &t), WEIR_ECORRUPT);
    }
    buf.data[5] = 100; /* register above 64 - p + 1 */
    codec_rd_t t = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + buf.len, 0};
    assert_int_equal(hll_decode(&d, &t), WEIR_ECORRUPT);
    buf_free(&buf);
    hll_free(&a);
    hll_free(&b);
    hll_free(&c);
}

/* ---- DDSketch --------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void check_quantiles(const qsketch_t *s, double *vals, size_t n)
{
    qsort(vals, n, sizeof *vals, cmp_d);
    for (int i = 0; i <= 100; i++) {
        double q = i / 100.0, got;
        assert_int_equal(qsketch_quantile(s, q, &got), 1);
        double want = vals[(size_t)floor(q * (double)(n - 1))];
        if (fabs(got - want) > s->alpha * fabs(want) * (1 + 1e-9))
            fail_msg("q=%.2f: got %.17g want %.17g", q, got, want);
    }
}

static void test_qsketch_accuracy(void **state)
{
    (void)state;
    size_t n = (size_t)(1000000 * scale());
    double *v = malloc(n * sizeof *v);
    const double alphas[] = {0.01, 0.001, 0.05};
    for (size_t a = 0; a < 3; a++) {
        qsketch_t s;
        assert_int_equal(qsketch_init(&s, alphas[a]), 0);
        /* Within QSKETCH_MAX_BINS for this alpha (beyond it the lowest bins
         * collapse, tested below): e^20 at 1%, e^8 at 0.1%. */
        double width = alphas[a] < 0.005 ? 8 : 20;
        for (size_t i = 0; i < n; i++) {
            double x;
            switch (i % 4) {
            case 0: x = exp(unif() * width - width / 4); break; /* log-uniform, wide */
            case 1: x = -exp(unif() * 10); break;                /* negatives */
            case 2: x = (double)(rnd() % 1000); break;           /* integers, zeros */
            default: x = 100 + unif(); break;                    /* narrow cluster */
            }
            v[i] = x;
            qsketch_add(&s, x);
        }
        check_quantiles(&s, v, n);
        /* remove half (the even ones): still exact per bin */
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (i % 2 == 0)
                assert_int_equal(qsketch_remove(&s, v[i]), 0);
            else
                v[m++] = v[i];
        }
        assert_int_equal(qsketch_count(&s), m);
        check_quantiles(&s, v, m);
        printf("  qsketch alpha=%.3f: %zu values, %zu bytes of bins\n", alphas[a], m,
               qsketch_bytes(&s));
        qsketch_free(&s);
    }
    free(v);
    qsketch_t s;
    assert_int_equal(qsketch_init(&s, 0), WEIR_EINVAL);
    assert_int_equal(qsketch_init(&s, 0.6), WEIR_EINVAL);
    qsketch_init(&s, 0.01);
    double out;
    assert_int_equal(qsketch_quantile(&s, 0.5, &out), 0);
    assert_int_equal(qsketch_remove(&s, 1.0), WEIR_ENOENT);
    qsketch_free(&s);
}

static void test_qsketch_merge_collapse(void **state)
{
    (void)state;
    qsketch_t a, b, c, d;
    qsketch_init(&a, 0.01);
    qsketch_init(&b, 0.01);
    qsketch_init(&d, 0.02);
    size_t n = 20000;
    double *v = malloc(2 * n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = exp(unif() * 10);
        v[n + i] = -exp(unif() * 3);
        qsketch_add(&a, v[i]);
        qsketch_add(&b, v[n + i]);
    }
    assert_int_equal(qsketch_merge(&a, &b, 1), 0);
    check_quantiles(&a, v, 2 * n);
    assert_int_equal(qsketch_merge(&a, &b, -1), 0);
    assert_int_equal(qsketch_merge(&a, &b, -1), WEIR_ENOENT); /* not there any more */
    assert_int_equal(qsketch_merge(&a, &d, 1), WEIR_EINVAL);
    assert_int_equal(qsketch_count(&a), n);
    /* Collapse: values over ~300 decades exceed QSKETCH_MAX_BINS; the top
     * quantiles stay within alpha, removal stays consistent. */
    qsketch_init(&c, 0.01);
    for (int e = -150; e <= 150; e++) qsketch_add(&c, pow(10, e));
    double hi;
    assert_int_equal(qsketch_quantile(&c, 1, &hi), 1);
    assert_true(fabs(hi - 1e150) <= 0.01 * 1e150 * (1 + 1e-9));
    assert_int_equal(qsketch_quantile(&c, 0.9, &hi), 1);
    double want = pow(10, -150 + 270);
    assert_true(fabs(hi - want) <= 0.01 * want * (1 + 1e-9));
    for (int e = -150; e <= 150; e++) assert_int_equal(qsketch_remove(&c, pow(10, e)), 0);
    assert_int_equal(qsketch_count(&c), 0);
    assert_int_equal(qsketch_bytes(&c), 0);
    /* encode / decode */
    weir_buf_t buf = WEIR_BUF_INIT;
    qsketch_encode(&a, &buf);
    qsketch_t e;
    codec_rd_t r = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + buf.len, 0};
    assert_int_equal(qsketch_decode(&e, &r), 0);
    for (int i = 0; i <= 20; i++) {
        double x, y;
        qsketch_quantile(&a, i / 20.0, &x);
        qsketch_quantile(&e, i / 20.0, &y);
        assert_true(x == y);
    }
    qsketch_free(&e);
    for (size_t cut = 0; cut < buf.len; cut++) {
        codec_rd_t t = {(const unsigned char *)buf.data, (const unsigned char *)buf.data + cut, 0};
        assert_int_equal(qsketch_decode(&e, &t), WEIR_ECORRUPT);
    }
    buf_free(&buf);
    free(v);
    qsketch_free(&a);
    qsketch_free(&b);
    qsketch_free(&c);
    qsketch_free(&d);
}

/* ---- multiset and monotonic deque ------------------------------------- */

static void test_mset(void **state)
{
    (void)state;
    mset_t s;
    mset_init(&s);
    enum { U = 5000 };
    static uint32_t cnt[U];
    memset(cnt, 0, sizeof cnt);
    uint32_t distinct = 0;
    for (int i = 0; i < (int)(400000 * scale()); i++) {
        uint64_t id = rnd() % U;
        if (rnd() % 2) {
            assert_int_equal(mset_add(&s, id), cnt[id] == 0);
            distinct += cnt[id]++ == 0;
        } else {
            int rc = mset_remove(&s, id);
            assert_int_equal(rc, cnt[id] == 0 ? -1 : cnt[id] == 1);
            if (cnt[id]) distinct -= --cnt[id] == 0;
        }
        assert_int_equal(mset_size(&s), distinct);
        if (i % 1000 == 0)
            for (uint64_t k = 0; k < U; k++) assert_int_equal(mset_count(&s, k), cnt[k]);
    }
    assert_true(mset_id_of_double(-0.0) == mset_id_of_double(0.0));
    mset_free(&s);
}

static void test_mono(void **state)
{
    (void)state;
    /* Elements (key, value) added with keys mostly increasing, some late;
     * the window is keys > end - D. The deque's best must equal a scan. */
    for (int is_max = 0; is_max < 2; is_max++) {
        mono_t m;
        mono_init(&m, is_max);
        enum { N = 20000 };
        static int64_t keys[N];
        static double vals[N];
        int n = 0;
        int64_t end = 0, D = 500;
        for (int i = 0; i < N; i++) {
            int64_t k = end + (int64_t)(rnd() % 20) - (rnd() % 4 == 0 ? (int64_t)(rnd() % 50) : 0);
            if (k <= end - D) k = end - D + 1;
            double x = (double)(rnd() % 1000);
            keys[n] = k;
            vals[n++] = x;
            if (k > end) {
                end = k;
                mono_evict(&m, end - D);
            }
            mono_update(&m, k, x);
            double best = 0, got;
            int has = 0;
            for (int j = 0; j < n; j++) {
                if (keys[j] <= end - D) continue;
                if (!has || (is_max ? vals[j] > best : vals[j] < best)) best = vals[j];
                has = 1;
            }
            assert_int_equal(mono_best(&m, &got), has);
            if (has) assert_true(got == best);
        }
        mono_free(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hll_error),
        cmocka_unit_test(test_hll_merge_encode),
        cmocka_unit_test(test_qsketch_accuracy),
        cmocka_unit_test(test_qsketch_merge_collapse),
        cmocka_unit_test(test_mset),
        cmocka_unit_test(test_mono),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
