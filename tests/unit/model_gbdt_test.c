/* model_gbdt_test.c — the tree evaluator on hand-built trees: the builder's
 * structural checks, perfect (branch-free) and general layouts agreeing with
 * a reference walk, single row = batch, runs of every size summed in model
 * order, missing values and categorical splits, TreeSHAP and the
 * approximate contributions adding up to the margin, the approximate
 * contributions by leaf equal to the path walk, and input-name matching. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "model/gbdt.h"
#include "model/model.h"

static gbdt_src_node_t split(uint32_t feat, double thr, int32_t l, int32_t r, int missing_left)
{
    gbdt_src_node_t n = {.left = l, .right = r, .feat = feat, .kind = GBDT_NUM,
                         .missing_left = (uint8_t)missing_left, .thr = thr, .cover = 1};
    return n;
}

static gbdt_src_node_t leaf(double v, double cover)
{
    gbdt_src_node_t n = {.left = -1, .right = -1, .kind = GBDT_LEAF, .value = v, .cover = cover};
    return n;
}

static void builder_rejects_broken_trees(void **state)
{
    (void)state;
    char err[256];
    gbdt_builder_t *b = gbdt_builder_new(GBDT_F64, 2, 1);
    gbdt_src_node_t cyc[3] = {split(0, 1, 1, 2, 0), split(0, 1, 0, 2, 0), leaf(1, 1)};
    assert_int_not_equal(gbdt_builder_add_tree(b, 0, cyc, 3, 0, "t", err, sizeof err), 0);
    assert_non_null(strstr(err, "reached twice"));
    gbdt_src_node_t oor[3] = {split(0, 1, 1, 9, 0), leaf(1, 1), leaf(2, 1)};
    assert_int_not_equal(gbdt_builder_add_tree(b, 0, oor, 3, 0, "t", err, sizeof err), 0);
    assert_non_null(strstr(err, "out of range"));
    gbdt_src_node_t unreach[4] = {split(0, 1, 1, 2, 0), leaf(1, 1), leaf(2, 1), leaf(3, 1)};
    assert_int_not_equal(gbdt_builder_add_tree(b, 0, unreach, 4, 0, "t", err, sizeof err), 0);
    assert_non_null(strstr(err, "not reachable"));
    assert_int_equal(gbdt_builder_add_tree(b, 0, unreach, 4, 1, "t", err, sizeof err), 0);
    gbdt_src_node_t nanthr[3] = {split(0, NAN, 1, 2, 0), leaf(1, 1), leaf(2, 1)};
    assert_int_not_equal(gbdt_builder_add_tree(b, 0, nanthr, 3, 0, "t", err, sizeof err), 0);
    gbdt_src_node_t badfeat[3] = {split(5, 1, 1, 2, 0), leaf(1, 1), leaf(2, 1)};
    assert_int_not_equal(gbdt_builder_add_tree(b, 0, badfeat, 3, 0, "t", err, sizeof err), 0);
    gbdt_builder_free(b);
}

/* A random tree over 3 features: node i splits (or not) at random. */
static uint64_t rs = 88172645463325252ull;
static double urand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static uint32_t random_tree(gbdt_src_node_t *n, uint32_t *count, uint32_t depth, uint32_t maxd)
{
    uint32_t me = (*count)++;
    if (depth == maxd || (depth > 0 && urand() < 0.25)) {
        n[me] = leaf(urand() * 2 - 1, 1 + urand() * 10);
        return me;
    }
    n[me] = split((uint32_t)(urand() * 3), urand() * 2 - 1, 0, 0, urand() < 0.5);
    int32_t l = (int32_t)random_tree(n, count, depth + 1, maxd);
    int32_t r = (int32_t)random_tree(n, count, depth + 1, maxd);
    n[me].left = l;
    n[me].right = r;
    n[me].cover = n[l].cover + n[r].cover;
    return me;
}

static double ref_walk(const gbdt_src_node_t *n, const double *x)
{
    uint32_t i = 0;
    while (n[i].kind != GBDT_LEAF) {
        double v = x[n[i].feat];
        int right = isnan(v) ? !n[i].missing_left : !(v < n[i].thr);
        i = (uint32_t)(right ? n[i].right : n[i].left);
    }
    return n[i].value;
}

static void layouts_agree_with_reference(void **state)
{
    (void)state;
    for (int prec = 0; prec < 2; prec++) {
        enum { T = 40, MAXN = 4096 };
        static gbdt_src_node_t trees[T][MAXN];
        uint32_t counts[T];
        char err[256];
        gbdt_builder_t *b = gbdt_builder_new((gbdt_prec_t)prec, 3, 1);
        for (int t = 0; t < T; t++) {
            counts[t] = 0;
            random_tree(trees[t], &counts[t], 0, (uint32_t)(t % 11)); /* depths 0..10 */
            if (prec == GBDT_F32)
                for (uint32_t i = 0; i < counts[t]; i++) {
                    trees[t][i].thr = (float)trees[t][i].thr;
                    trees[t][i].value = (float)trees[t][i].value;
                }
            assert_int_equal(gbdt_builder_add_tree(b, 0, trees[t], counts[t], 0, "t", err, sizeof err), 0);
        }
        double base = 0.25;
        gbdt_t *g;
        assert_int_equal(gbdt_builder_finish(b, &base, 0, &g, err, sizeof err), 0);
        assert_true(gbdt_num_perfect(g) > 0);
        enum { R = 300 };
        static double x[R * 3], outb[R];
        for (int i = 0; i < R * 3; i++) x[i] = urand() < 0.1 ? NAN : (prec ? urand() * 2 - 1 : (float)(urand() * 2 - 1));
        gbdt_predict_batch(g, x, R, 3, outb);
        for (int r = 0; r < R; r++) {
            float accf = (float)base;
            double accd = base;
            for (int t = 0; t < T; t++) {
                double v = ref_walk(trees[t], x + r * 3);
                accf += (float)v;
                accd += v;
            }
            double want = prec == GBDT_F32 ? (double)accf : accd;
            double one;
            gbdt_predict_row(g, x + r * 3, &one);
            assert_true(one == want);
            assert_true(outb[r] == want);
            double phi[4];
            gbdt_contrib_row(g, x + r * 3, phi);
            assert_true(fabs(phi[0] + phi[1] + phi[2] + phi[3] - want) < 1e-5);
        }
        gbdt_free(g);
    }
}

/* A complete tree of depth d over nf features, node numbering breadth-first
 * from n[0]; leaves spread over many magnitudes so that a float sum in the
 * wrong order comes out different. */
static void full_tree(gbdt_src_node_t *n, uint32_t d, uint32_t nf)
{
    uint32_t inner = (1u << d) - 1, all = (1u << (d + 1)) - 1;
    for (uint32_t i = 0; i < all; i++) {
        if (i < inner)
            n[i] = split((uint32_t)(urand() * nf), urand() * 2 - 1, (int32_t)(2 * i + 1),
                         (int32_t)(2 * i + 2), urand() < 0.5);
        else
            n[i] = leaf((urand() * 2 - 1) * pow(10.0, urand() * 12 - 6), 1);
    }
}

/* Models whose trees all have one depth are walked in runs of 16, 8, 4, 2
 * and 1 trees and summed as they are walked: every run size, several output
 * groups, averaging, both precisions, NaN and infinite inputs, single row =
 * batch = a reference walk summed in model order. */
static void runs_sum_in_model_order(void **state)
{
    (void)state;
    enum { NF = 5, GMAX = 3, R = 131, D = 5 };
    static gbdt_src_node_t trees[64][(1 << (D + 1)) - 1];
    static double x[R * NF], outb[R * GMAX];
    const uint32_t sizes[] = {1, 2, 7, 27, 31, 64};
    for (int prec = 0; prec < 2; prec++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int G = 1; G <= GMAX; G += GMAX - 1)
            for (uint32_t avg = 0; avg <= 7; avg += 7) {
                uint32_t T = sizes[si], n = (1u << (D + 1)) - 1;
                char err[256];
                gbdt_builder_t *b = gbdt_builder_new((gbdt_prec_t)prec, NF, G);
                for (uint32_t t = 0; t < T; t++) {
                    full_tree(trees[t], D, NF);
                    if (prec == GBDT_F32)
                        for (uint32_t i = 0; i < n; i++) {
                            trees[t][i].thr = (float)trees[t][i].thr;
                            trees[t][i].value = (float)trees[t][i].value;
                        }
                    assert_int_equal(gbdt_builder_add_tree(b, t % (uint32_t)G, trees[t], n, 0, "t", err, sizeof err), 0);
                }
                double base[GMAX] = {0.5, -0.25, 3};
                gbdt_t *g;
                assert_int_equal(gbdt_builder_finish(b, base, avg, &g, err, sizeof err), 0);
                assert_int_equal(gbdt_num_perfect(g), T);
                for (int i = 0; i < R * NF; i++) {
                    double u = urand();
                    x[i] = u < 0.1 ? NAN : u < 0.12 ? INFINITY : u < 0.14 ? -INFINITY : urand() * 2 - 1;
                    if (prec == GBDT_F32) x[i] = (float)x[i];
                }
                gbdt_predict_batch(g, x, R, NF, outb);
                for (int r = 0; r < R; r++) {
                    float accf[GMAX];
                    double accd[GMAX];
                    for (int k = 0; k < G; k++) accf[k] = avg ? 0.0f : (float)base[k], accd[k] = avg ? 0 : base[k];
                    for (uint32_t t = 0; t < T; t++) {
                        double v = ref_walk(trees[t], x + r * NF);
                        accf[t % G] += (float)v;
                        accd[t % G] += v;
                    }
                    double one[GMAX];
                    gbdt_predict_row(g, x + r * NF, one);
                    for (int k = 0; k < G; k++) {
                        double want = prec == GBDT_F32
                                          ? (avg ? (double)(accf[k] / (float)avg + (float)base[k]) : accf[k])
                                          : (avg ? accd[k] / avg + base[k] : accd[k]);
                        if (one[k] != want || outb[r * G + k] != want)
                            fail_msg("prec %d, %u trees, row %d, group %d: row %.17g, batch %.17g, want %.17g",
                                     prec, T, r, k, one[k], outb[r * G + k], want);
                    }
                }
                gbdt_free(g);
            }
}

/* Trees of two depths alternating: the walk order (by depth) is not model
 * order, so leaves are collected per tree and summed after; with this many
 * trees the batch cuts its blocks smaller. Also a model over no features. */
static void mixed_depths_and_no_features(void **state)
{
    (void)state;
    enum { T = 700, NF = 4, R = 150 };
    static gbdt_src_node_t trees[T][7];
    static double x[R * NF], outb[R];
    char err[256];
    gbdt_builder_t *b = gbdt_builder_new(GBDT_F64, NF, 1);
    for (uint32_t t = 0; t < T; t++) {
        full_tree(trees[t], 1 + t % 2, NF);
        assert_int_equal(gbdt_builder_add_tree(b, 0, trees[t], t % 2 ? 7 : 3, 0, "t", err, sizeof err), 0);
    }
    double base = 0.125;
    gbdt_t *g;
    assert_int_equal(gbdt_builder_finish(b, &base, 0, &g, err, sizeof err), 0);
    for (int i = 0; i < R * NF; i++) x[i] = urand() < 0.1 ? NAN : urand() * 2 - 1;
    gbdt_predict_batch(g, x, R, NF, outb);
    for (int r = 0; r < R; r++) {
        double want = base, one;
        for (uint32_t t = 0; t < T; t++) want += ref_walk(trees[t], x + r * NF);
        gbdt_predict_row(g, x + r * NF, &one);
        if (one != want || outb[r] != want)
            fail_msg("row %d: row %.17g, batch %.17g, want %.17g", r, one, outb[r], want);
    }
    gbdt_free(g);

    for (int prec = 0; prec < 2; prec++) {
        b = gbdt_builder_new((gbdt_prec_t)prec, 0, 1);
        gbdt_src_node_t one_leaf = leaf(2.5, 1);
        assert_int_equal(gbdt_builder_add_tree(b, 0, &one_leaf, 1, 0, "t", err, sizeof err), 0);
        assert_int_equal(gbdt_builder_add_tree(b, 0, &one_leaf, 1, 0, "t", err, sizeof err), 0);
        assert_int_equal(gbdt_builder_finish(b, &base, 0, &g, err, sizeof err), 0);
        double out[3];
        gbdt_predict_row(g, x, out);
        assert_true(out[0] == 5.125);
        gbdt_predict_batch(g, x, 3, 0, out);
        for (int r = 0; r < 3; r++) assert_true(out[r] == 5.125);
        gbdt_free(g);
    }
}

static void categorical_splits(void **state)
{
    (void)state;
    char err[256];
    gbdt_builder_t *b = gbdt_builder_new(GBDT_F64, 1, 1);
    uint32_t words[2] = {(1u << 3) | (1u << 7), 1u << 1}; /* {3, 7, 33} */
    uint32_t off = gbdt_builder_add_cats(b, words, 2);
    gbdt_src_node_t xg[3] = {{.left = 1, .right = 2, .feat = 0, .kind = GBDT_CAT_XGB, .missing_left = 0,
                              .cat_off = off, .cat_words = 2, .cover = 2},
                             leaf(-1, 1), leaf(1, 1)};
    assert_int_equal(gbdt_builder_add_tree(b, 0, xg, 3, 0, "xgb", err, sizeof err), 0);
    gbdt_src_node_t lg[3] = {{.left = 1, .right = 2, .feat = 0, .kind = GBDT_CAT_LGBM,
                              .cat_off = off, .cat_words = 2, .cover = 2},
                             leaf(10, 1), leaf(20, 1)};
    assert_int_equal(gbdt_builder_add_tree(b, 0, lg, 3, 0, "lgbm", err, sizeof err), 0);
    double base = 0;
    gbdt_t *g;
    assert_int_equal(gbdt_builder_finish(b, &base, 0, &g, err, sizeof err), 0);
    /* XGBoost: in set -> right (+1), else left (-1), NaN -> missing (right here).
     * LightGBM: in set -> left (10), else right (20), NaN and negatives right. */
    struct { double x, want; } cases[] = {
        {3, 1 + 10}, {7, 1 + 10}, {33, 1 + 10}, {4, -1 + 20}, {-1, -1 + 20},
        {-0.5, -1 + 20}, {1e12, -1 + 20}, {NAN, 1 + 20}, {64, -1 + 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double out;
        gbdt_predict_row(g, &cases[i].x, &out);
        if (out != cases[i].want) fail_msg("x = %g: got %g, want %g", cases[i].x, out, cases[i].want);
    }
    gbdt_free(g);
}

/* Hand-computed path attributions: cover-weighted expectations, a feature
 * that splits twice on the path, a missing value, and a tree without covers
 * that falls back to the unweighted mean of its leaves. */
static void approx_contribs_by_hand(void **state)
{
    (void)state;
    /* E[1] = (1 * 1 + 4 * 2) / 3 = 3, E[0] = (3 * 3 - 2 * 1) / 4 = 1.75 */
    gbdt_src_node_t a[5] = {split(0, 0.5, 1, 2, 1), split(1, 0.5, 3, 4, 0), leaf(-2, 1), leaf(1, 1),
                            leaf(4, 2)};
    a[0].cover = 4, a[1].cover = 3;
    /* E[2] = 25, E[0] = 17.5; x0 = 2 passes two splits on feature 0 */
    gbdt_src_node_t tw[5] = {split(0, 0, 1, 2, 0), leaf(10, 1), split(0, 1, 3, 4, 0), leaf(20, 0.5),
                             leaf(30, 0.5)};
    tw[0].cover = 2;
    /* a's shape with no covers: E[1] = 2.5, E[0] = (1 + 4 - 2) / 3 = 1 */
    gbdt_src_node_t z[5] = {a[0], a[1], a[2], a[3], a[4]};
    for (int i = 0; i < 5; i++) z[i].cover = 0;
    struct { const gbdt_src_node_t *tree; double x[2], want[3]; } cases[] = {
        {a, {0, 0}, {3 - 1.75, 1 - 3, 1.75 + 0.5}},
        {a, {1, 0}, {-2 - 1.75, 0, 1.75 + 0.5}},
        {a, {NAN, 1}, {3 - 1.75, 4 - 3, 1.75 + 0.5}},
        {tw, {2, 0}, {25 - 17.5 + 30 - 25, 0, 17.5 + 0.5}},
        {tw, {-1, 0}, {10 - 17.5, 0, 17.5 + 0.5}},
        {z, {0, 0}, {2.5 - 1, 1 - 2.5, 1 + 0.5}},
        {z, {0, 1}, {2.5 - 1, 4 - 2.5, 1 + 0.5}},
    };
    for (int prec = 0; prec < 2; prec++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char err[256];
            gbdt_builder_t *b = gbdt_builder_new((gbdt_prec_t)prec, 2, 1);
            assert_int_equal(gbdt_builder_add_tree(b, 0, cases[i].tree, 5, 0, "t", err, sizeof err), 0);
            double base = 0.5, phi[3];
            gbdt_t *g;
            assert_int_equal(gbdt_builder_finish(b, &base, 0, &g, err, sizeof err), 0);
            gbdt_contrib_row_approx(g, cases[i].x, phi);
            for (int f = 0; f < 3; f++)
                if (phi[f] != cases[i].want[f])
                    fail_msg("prec %d, case %zu, value %d: got %.17g, want %.17g", prec, i, f, phi[f],
                             cases[i].want[f]);
            gbdt_free(g);
        }
}

/* Approximate contributions add up to the margin per group, and those by
 * leaf (per-leaf terms computed at build time) equal the walk of each path
 * bit for bit: both precisions, several groups, averaged forests, perfect
 * and general trees (LightGBM's zero-as-missing splits keep a tree
 * general), features split several times on one path, inputs on
 * thresholds, zeros and NaN; and a chain too deep for the tables, which
 * then walks. */
static void approx_contribs_add_up(void **state)
{
    (void)state;
    enum { T = 48, NF = 3, GMAX = 3, R = 400, MAXN = 4096 };
    static gbdt_src_node_t trees[T + 1][MAXN];
    static uint32_t counts[T + 1];
    static double x[R * NF];
    for (int prec = 0; prec < 2; prec++)
        for (uint32_t G = 1; G <= GMAX; G += GMAX - 1)
            for (uint32_t avg = 0; avg <= 5; avg += 5) {
                char err[256];
                gbdt_builder_t *b = gbdt_builder_new((gbdt_prec_t)prec, NF, G);
                for (uint32_t t = 0; t < T; t++) {
                    counts[t] = 0;
                    random_tree(trees[t], &counts[t], 0, t % 11);
                    for (uint32_t i = 0; i < counts[t]; i++) {
                        gbdt_src_node_t *n = &trees[t][i];
                        if (prec == GBDT_F32) {
                            n->thr = (float)n->thr;
                            n->value = (float)n->value;
                        } else if (t % 7 == 3 && n->kind == GBDT_NUM) {
                            n->kind = GBDT_NUM_ZERO;
                        }
                    }
                    assert_int_equal(gbdt_builder_add_tree(b, t % G, trees[t], counts[t], 0, "t",
                                                           err, sizeof err),
                                     0);
                }
                if (avg && G == GMAX) { /* a chain of depth 200: too deep for the tables */
                    uint32_t n = 0;
                    for (uint32_t d = 0; d < 200; d++, n += 2) {
                        trees[T][n] = split(d % NF, (float)(urand() * 2 - 1), (int32_t)n + 1,
                                            (int32_t)n + 2, d % 2);
                        trees[T][n + 1] = leaf((float)urand(), 1 + d);
                    }
                    trees[T][n++] = leaf(0.5, 1);
                    for (int32_t i = (int32_t)n - 2; i >= 0; i -= 2)
                        trees[T][i].cover = trees[T][i + 1].cover + trees[T][i + 2].cover;
                    assert_int_equal(gbdt_builder_add_tree(b, 0, trees[T], n, 0, "t", err, sizeof err),
                                     0);
                }
                double base[GMAX] = {0.5, -1.5, 2};
                gbdt_t *g;
                assert_int_equal(gbdt_builder_finish(b, base, avg, &g, err, sizeof err), 0);
                for (int i = 0; i < R * NF; i++) {
                    double u = urand();
                    const gbdt_src_node_t *n = &trees[i % T][(uint32_t)(urand() * counts[i % T])];
                    x[i] = u < 0.1 ? NAN : u < 0.15 ? 0 : u < 0.4 ? n->thr : urand() * 2 - 1;
                }
                for (int r = 0; r < R; r++) {
                    double margin[GMAX], phi[GMAX * (NF + 1)], walk[GMAX * (NF + 1)];
                    gbdt_predict_row(g, x + r * NF, margin);
                    gbdt_contrib_row_approx(g, x + r * NF, phi);
                    gbdt_contrib_row_approx_walk(g, x + r * NF, walk);
                    for (uint32_t i = 0; i < G * (NF + 1); i++)
                        if (memcmp(&phi[i], &walk[i], sizeof walk[i]))
                            fail_msg("prec %d, %u groups, avg %u, row %d, value %u: %.17g, walk %.17g",
                                     prec, G, avg, r, i, phi[i], walk[i]);
                    for (uint32_t k = 0; k < G; k++) {
                        double sum = 0, mag = 0;
                        for (uint32_t f = 0; f <= NF; f++) {
                            sum += phi[k * (NF + 1) + f];
                            mag += fabs(phi[k * (NF + 1) + f]);
                        }
                        if (fabs(sum - margin[k]) > 1e-6 * (1 + mag))
                            fail_msg("prec %d, %u groups, avg %u, row %d, group %u: sum %.17g, margin %.17g",
                                     prec, G, avg, r, k, sum, margin[k]);
                    }
                }
                gbdt_free(g);
            }
}

/* For linear models the approximate contributions are the exact ones. */
static void approx_contribs_linear(void **state)
{
    (void)state;
    const char *json = "{\"format\": \"weir-linear\", \"weights\": {\"a\": 1.5, \"b\": -2}, \"intercept\": 0.25}";
    weir_model_t *m;
    char err[512];
    assert_int_equal(model_load_mem(json, strlen(json), "lin", &m, err, sizeof err), 0);
    double x[2] = {2, 3}, exact[3], approx[3];
    model_contrib_row(m, x, exact);
    model_contrib_row_approx(m, x, approx);
    assert_memory_equal(exact, approx, sizeof exact);
    assert_true(approx[0] == 3 && approx[1] == -6);
    model_release(m);
}

static void input_names_are_matched(void **state)
{
    (void)state;
    const char *json = "{\"format\": \"weir-linear\", \"weights\": {\"a\": 1, \"b\": 2, \"c\": 3}}";
    weir_model_t *m;
    char err[512];
    assert_int_equal(model_load_mem(json, strlen(json), "lin", &m, err, sizeof err), 0);
    uint32_t col[3];
    const char *ok[] = {"c", "a", "b"};
    assert_int_equal(model_map_inputs(m, ok, 3, 0, col, err, sizeof err), 0);
    assert_int_equal(col[0], 1);
    assert_int_equal(col[1], 2);
    assert_int_equal(col[2], 0);
    const char *bad[] = {"a", "x", "y"};
    assert_int_not_equal(model_map_inputs(m, bad, 3, 0, col, err, sizeof err), 0);
    assert_non_null(strstr(err, "2 missing from the inputs (b, c)"));
    assert_non_null(strstr(err, "2 not in the model (x, y)"));
    const char *extra[] = {"a", "b", "c", "d"};
    assert_int_not_equal(model_map_inputs(m, extra, 4, 0, col, err, sizeof err), 0);
    assert_int_equal(model_map_inputs(m, extra, 4, 1, col, err, sizeof err), 0);
    const char *dup[] = {"a", "a", "b"};
    assert_int_not_equal(model_map_inputs(m, dup, 3, 0, col, err, sizeof err), 0);
    model_release(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builder_rejects_broken_trees),
        cmocka_unit_test(layouts_agree_with_reference),
        cmocka_unit_test(runs_sum_in_model_order),
        cmocka_unit_test(mixed_depths_and_no_features),
        cmocka_unit_test(categorical_splits),
        cmocka_unit_test(approx_contribs_add_up),
        cmocka_unit_test(approx_contribs_by_hand),
        cmocka_unit_test(approx_contribs_linear),
        cmocka_unit_test(input_names_are_matched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
