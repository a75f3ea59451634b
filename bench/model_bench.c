/* model_bench.c — `weir bench model`: weir's tree evaluator next to
 * XGBoost's own predictor, on the same model and the same rows, in one run.
 *
 * For each configuration (100 trees of depth 6, 500 trees of depth 8 by
 * default) the benchmark trains a binary:logistic model with libxgboost on
 * synthetic data chosen so that the trees grow to full depth, saves it as
 * JSON into memory and loads that into weir (model_load_mem). Then, on
 * 10,000 held-out rows:
 *
 *   single row  one call per row, many calls, latency median and p99:
 *               weir model_predict_row (double row in, probability out) vs
 *               XGBoosterPredictFromDense on a 1 x F float matrix, nthread=1.
 *   batch       all rows in one call, best-of and median of --runs:
 *               weir model_predict_batch vs XGBoosterPredictFromDense on the
 *               10,000 x F matrix, nthread=1.
 *
 *   explain     one row's contributions, median over calls: weir's
 *               approximate ones (model_contrib_row_approx, what `weir run`
 *               serves) and exact TreeSHAP (model_contrib_row) next to
 *               XGBoost's (PredictFromDMatrix type 3 and 2, a DMatrix made per
 *               call as its C API needs), and the approximate
 *               cost in predictions (weir approx / weir single row).
 *
 * Ratios are XGBoost time / weir time (higher is better for weir). The
 * predictions of both are compared: the largest absolute difference is
 * printed and must be <= 1e-6, and so for the approximate contributions
 * against XGBoost's (computed in float in its order). Without libxgboost (WEIR_HAVE_XGBOOST unset)
 * the benchmark cannot build its model and says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "bench.h"
#include "model/model.h"

#ifdef WEIR_HAVE_XGBOOST
#include <xgboost/c_api.h>

#define NFEAT 32
#define NTRAIN 5000

typedef struct config {
    int trees, depth;
} config_t;

typedef struct result {
    config_t cfg;
    double weir_med, weir_p99, xgb_med, xgb_p99; /* single row, ns */
    double weir_batch, xgb_batch;                /* ns per row, median of runs */
    double max_diff;
    double approx_med, exact_med, xgb_approx_med, xgb_exact_med; /* explain, ns */
    double approx_diff;                                          /* vs XGBoost's approx */
    uint32_t perfect;
} result_t;

#define XGB_CHECK(call)                                                          \
    do {                                                                         \
        if ((call) != 0) {                                                       \
            fprintf(stderr, "weir bench model: %s: %s\n", #call, XGBGetLastError()); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Rows with a few missing values and a label that needs deep trees. */
static void make_rows(float *x, float *y, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        double s = 0;
        for (int f = 0; f < NFEAT; f++) {
            double v = rnd() * 2 - 1;
            x[r * NFEAT + f] = rnd() < 0.02 ? NAN : (float)v;
            s += sin(3 * v * (f % 5 + 1)) * (f < 12 ? 1.0 : 0.3);
        }
        if (y) y[r] = (float)(s + (rnd() - 0.5) > 0);
    }
}

static BoosterHandle train(const config_t *c, const float *x, const float *y)
{
    DMatrixHandle d;
    XGB_CHECK(XGDMatrixCreateFromMat(x, NTRAIN, NFEAT, NAN, &d));
    XGB_CHECK(XGDMatrixSetFloatInfo(d, "label", y, NTRAIN));
    BoosterHandle b;
    XGB_CHECK(XGBoosterCreate(&d, 1, &b));
    char depth[16];
    snprintf(depth, sizeof depth, "%d", c->depth);
    XGB_CHECK(XGBoosterSetParam(b, "objective", "binary:logistic"));
    XGB_CHECK(XGBoosterSetParam(b, "max_depth", depth));
    XGB_CHECK(XGBoosterSetParam(b, "tree_method", "hist"));
    XGB_CHECK(XGBoosterSetParam(b, "min_child_weight", "0"));
    XGB_CHECK(XGBoosterSetParam(b, "eta", "0.1"));
    XGB_CHECK(XGBoosterSetParam(b, "nthread", "2"));
    for (int i = 0; i < c->trees; i++) XGB_CHECK(XGBoosterUpdateOneIter(b, i, d));
    XGB_CHECK(XGBoosterSetParam(b, "nthread", "1"));
    XGB_CHECK(XGDMatrixFree(d));
    return b;
}

/* type: 0 prediction, 2 contributions (TreeSHAP), 3 approximate ones */
static const char *const predict_config[4] = {
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}",
    NULL,
    "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}",
    "{\"type\": 3, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}",
};

/* Contributions: XGBoost's inplace prediction has none, so a DMatrix per
 * call, as a caller of the C API has to make (its cost is in the timing). */
static const float *xgb_contribs(BoosterHandle b, const float *x, size_t n, int type)
{
    DMatrixHandle d;
    XGB_CHECK(XGDMatrixCreateFromMat(x, n, NFEAT, NAN, &d));
    const bst_ulong *shape;
    bst_ulong dim;
    const float *out;
    XGB_CHECK(XGBoosterPredictFromDMatrix(b, d, predict_config[type], &shape, &dim, &out));
    XGB_CHECK(XGDMatrixFree(d));
    return out;
}

static const float *xgb_predict_type(BoosterHandle b, const float *x, size_t n, int type)
{
    if (type) return xgb_contribs(b, x, n, type);
    char iface[256];
    snprintf(iface, sizeof iface,
             "{\"data\": [%llu, true], \"shape\": [%zu, %d], \"typestr\": \"<f4\", \"version\": 3}",
             (unsigned long long)(uintptr_t)x, n, NFEAT);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *out;
    XGB_CHECK(XGBoosterPredictFromDense(b, iface, predict_config[type], NULL, &shape, &dim, &out));
    return out;
}

static const float *xgb_predict(BoosterHandle b, const float *x, size_t n)
{
    return xgb_predict_type(b, x, n, 0);
}

/* Median ns of one row's contributions over `calls` rows: weir's (approx or
 * exact) when xgb_type is 0, else XGBoost's of that predict type. */
static double time_contribs(const weir_model_t *m, BoosterHandle b, int approx, int xgb_type,
                            const double *xd, const float *xf, size_t nrows, uint64_t calls,
                            double *lat, double *c)
{
    volatile double sink = 0;
    for (uint64_t i = 0; i < calls + calls / 10; i++) {
        size_t r = i % nrows;
        uint64_t t0 = weir_mono_ns();
        if (xgb_type)
            sink += xgb_predict_type(b, xf + r * NFEAT, 1, xgb_type)[0];
        else if (approx)
            model_contrib_row_approx(m, xd + r * NFEAT, c);
        else
            model_contrib_row(m, xd + r * NFEAT, c);
        if (i >= calls / 10) lat[i - calls / 10] = (double)(weir_mono_ns() - t0); /* after warm-up */
        sink += c[0];
    }
    (void)sink;
    return bench_median(lat, calls);
}

static void run_config(const config_t *c, size_t nrows, uint64_t calls, int runs, result_t *res)
{
    float *xtr = weir_malloc((size_t)NTRAIN * NFEAT * sizeof *xtr);
    float *ytr = weir_malloc((size_t)NTRAIN * sizeof *ytr);
    make_rows(xtr, ytr, NTRAIN);
    BoosterHandle b = train(c, xtr, ytr);
    weir_free(xtr);
    weir_free(ytr);

    bst_ulong len;
    const char *json;
    XGB_CHECK(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &json));
    weir_model_t *m;
    char err[512];
    if (model_load_mem(json, len, "benchmark model", &m, err, sizeof err)) {
        fprintf(stderr, "weir bench model: %s\n", err);
        exit(1);
    }
    model_info_t info;
    model_get_info(m, &info);

    float *xf = weir_malloc(nrows * NFEAT * sizeof *xf);
    double *xd = weir_malloc(nrows * NFEAT * sizeof *xd);
    make_rows(xf, NULL, nrows);
    for (size_t i = 0; i < nrows * NFEAT; i++) xd[i] = xf[i];
    double *wout = weir_malloc(nrows * sizeof *wout);
    double *lat = weir_malloc(calls * sizeof *lat);

    /* Correctness first: both predictors on all rows. */
    const float *xo = xgb_predict(b, xf, nrows);
    model_predict_batch(m, xd, nrows, NFEAT, wout, 0);
    res->max_diff = 0;
    for (size_t r = 0; r < nrows; r++) {
        double d = fabs(wout[r] - (double)xo[r]);
        if (d > res->max_diff) res->max_diff = d;
        double one;
        model_predict_row(m, xd + r * NFEAT, &one, 0);
        d = fabs(one - (double)xo[r]);
        if (d > res->max_diff) res->max_diff = d;
    }

    /* Single row: weir. */
    volatile double sink = 0;
    for (uint64_t i = 0; i < calls / 10; i++) model_predict_row(m, xd + (i % nrows) * NFEAT, wout, 0);
    for (uint64_t i = 0; i < calls; i++) {
        const double *row = xd + (i % nrows) * NFEAT;
        uint64_t t0 = weir_mono_ns();
        model_predict_row(m, row, wout, 0);
        lat[i] = (double)(weir_mono_ns() - t0);
        sink += wout[0];
    }
    res->weir_med = bench_median(lat, calls);
    res->weir_p99 = bench_quantile(lat, calls, 0.99);

    /* Single row: XGBoost (fewer calls: each is much slower). */
    uint64_t xcalls = calls / 4 > 2000 ? calls / 4 : (calls < 2000 ? calls : 2000);
    for (uint64_t i = 0; i < xcalls / 10; i++) sink += xgb_predict(b, xf + (i % nrows) * NFEAT, 1)[0];
    for (uint64_t i = 0; i < xcalls; i++) {
        const float *row = xf + (i % nrows) * NFEAT;
        uint64_t t0 = weir_mono_ns();
        const float *o = xgb_predict(b, row, 1);
        lat[i] = (double)(weir_mono_ns() - t0);
        sink += o[0];
    }
    res->xgb_med = bench_median(lat, xcalls);
    res->xgb_p99 = bench_quantile(lat, xcalls, 0.99);

    /* Explanations: the approximate contributions checked against
     * XGBoost's on every row, then each kind timed. Exact TreeSHAP costs
     * hundreds of times more: fewer calls. */
    uint32_t nc = model_num_contribs(m);
    double *phi = weir_malloc(nc * sizeof *phi);
    res->approx_diff = 0;
    const float *xa = xgb_predict_type(b, xf, nrows, 3);
    for (size_t r = 0; r < nrows; r++) {
        model_contrib_row_approx(m, xd + r * NFEAT, phi);
        for (uint32_t j = 0; j < nc; j++) {
            double d = fabs(phi[j] - (double)xa[r * nc + j]);
            if (d > res->approx_diff) res->approx_diff = d;
        }
    }
    uint64_t ecalls = calls / 20 > 200 ? calls / 20 : (calls < 200 ? calls : 200);
    res->approx_med = time_contribs(m, b, 1, 0, xd, xf, nrows, calls, lat, phi);
    res->exact_med = time_contribs(m, b, 0, 0, xd, xf, nrows, ecalls, lat, phi);
    res->xgb_approx_med = time_contribs(m, b, 1, 3, xd, xf, nrows, xcalls, lat, phi);
    res->xgb_exact_med = time_contribs(m, b, 0, 2, xd, xf, nrows, ecalls, lat, phi);
    weir_free(phi);

    /* Batch: alternate the two so that machine noise hits both alike. */
    double *wb = weir_malloc((size_t)runs * sizeof *wb), *xb = weir_malloc((size_t)runs * sizeof *xb);
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = weir_mono_ns();
        model_predict_batch(m, xd, nrows, NFEAT, wout, 0);
        wb[r] = (double)(weir_mono_ns() - t0) / (double)nrows;
        sink += wout[0];
        t0 = weir_mono_ns();
        sink += xgb_predict(b, xf, nrows)[0];
        xb[r] = (double)(weir_mono_ns() - t0) / (double)nrows;
    }
    res->weir_batch = bench_median(wb, (size_t)runs);
    res->xgb_batch = bench_median(xb, (size_t)runs);
    res->perfect = info.perfect;
    (void)sink;

    weir_free(wb);
    weir_free(xb);
    weir_free(lat);
    weir_free(wout);
    weir_free(xd);
    weir_free(xf);
    model_release(m);
    XGB_CHECK(XGBoosterFree(b));
}

int bench_model(int argc, char **argv)
{
    int json = 0, runs = 7;
    uint64_t calls = 20000, rows = 10000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: weir bench model [--json] [--calls N] [--rows N] [--runs N]\n\n"
                   "weir's evaluator next to XGBoosterPredictFromDense (nthread=1) on the same\n"
                   "models (100 trees x depth 6, 500 trees x depth 8) and rows: single-row\n"
                   "latency (median, p99 over --calls calls, default 20000) and batch time per row\n"
                   "(--rows rows per call, default 10000; median of --runs runs, default 7).\n");
            return 0;
        } else if (i + 1 < argc && (!strcmp(argv[i], "--calls") || !strcmp(argv[i], "--rows") ||
                                    !strcmp(argv[i], "--runs"))) {
            char *end;
            unsigned long long v = strtoull(argv[i + 1], &end, 10);
            if (*end || v == 0 || v > 100000000) {
                fprintf(stderr, "weir bench model: %s: '%s' is not a valid count\n", argv[i], argv[i + 1]);
                return 1;
            }
            if (!strcmp(argv[i], "--calls")) calls = v;
            else if (!strcmp(argv[i], "--rows")) rows = v;
            else runs = (int)v;
            i++;
        } else {
            fprintf(stderr, "weir bench model: unknown option '%s' (see --help)\n", argv[i]);
            return 1;
        }
    }
    static const config_t configs[] = {{100, 6}, {500, 8}};
    result_t res[2];
    for (int k = 0; k < 2; k++) {
        if (!json) fprintf(stderr, "training %d trees of depth %d with libxgboost...\n", configs[k].trees, configs[k].depth);
        res[k].cfg = configs[k];
        run_config(&configs[k], rows, calls, runs, &res[k]);
    }
    int ok = 1, vmaj = 0, vmin = 0, vpat = 0;
    for (int k = 0; k < 2; k++) ok &= res[k].max_diff <= 1e-6 && res[k].approx_diff <= 1e-6;
    XGBoostVersion(&vmaj, &vmin, &vpat);
    if (json) {
        printf("{\"benchmark\": \"model\", \"baseline\": \"XGBoosterPredictFromDense nthread=1 (XGBoost %d.%d.%d)\", "
               "\"rows\": %llu, \"calls\": %llu, \"runs\": %d, \"results\": [",
               vmaj, vmin, vpat, (unsigned long long)rows,
               (unsigned long long)calls, runs);
        for (int k = 0; k < 2; k++) {
            const result_t *r = &res[k];
            printf("%s{\"trees\": %d, \"depth\": %d, \"branch_free_trees\": %u, \"max_abs_diff\": %.3g, "
                   "\"single_row_ns\": {\"weir_median\": %.1f, \"weir_p99\": %.1f, \"xgboost_median\": %.1f, "
                   "\"xgboost_p99\": %.1f, \"ratio_median\": %.2f, \"ratio_p99\": %.2f, \"weir_ns_per_tree\": %.3f}, "
                   "\"batch_ns_per_row\": {\"weir\": %.2f, \"xgboost\": %.2f, \"ratio\": %.2f}, "
                   "\"contrib_ns\": {\"weir_approx\": %.1f, \"weir_exact\": %.1f, \"xgboost_approx\": %.1f, "
                   "\"xgboost_exact\": %.1f, \"approx_in_predictions\": %.2f, \"approx_max_abs_diff\": %.3g}}",
                   k ? ", " : "", r->cfg.trees, r->cfg.depth, r->perfect, r->max_diff, r->weir_med,
                   r->weir_p99, r->xgb_med, r->xgb_p99, r->xgb_med / r->weir_med, r->xgb_p99 / r->weir_p99,
                   r->weir_med / r->cfg.trees, r->weir_batch, r->xgb_batch, r->xgb_batch / r->weir_batch,
                   r->approx_med, r->exact_med, r->xgb_approx_med, r->xgb_exact_med,
                   r->approx_med / r->weir_med, r->approx_diff);
        }
        printf("], \"predictions_match\": %s}\n", ok ? "true" : "false");
    } else {
        printf("weir model evaluator vs XGBoosterPredictFromDense (XGBoost %d.%d.%d, nthread=1), same model and rows\n\n",
               vmaj, vmin, vpat);
        printf("%-16s %-12s %12s %12s %12s %9s %12s\n", "model", "metric", "weir", "xgboost", "ratio", "", "weir/tree");
        for (int k = 0; k < 2; k++) {
            const result_t *r = &res[k];
            char name[32];
            snprintf(name, sizeof name, "%d x depth %d", r->cfg.trees, r->cfg.depth);
            printf("%-16s %-12s %10.0f ns %10.0f ns %11.1fx %9s %9.2f ns\n", name, "1 row p50", r->weir_med,
                   r->xgb_med, r->xgb_med / r->weir_med, "", r->weir_med / r->cfg.trees);
            printf("%-16s %-12s %10.0f ns %10.0f ns %11.1fx\n", "", "1 row p99", r->weir_p99, r->xgb_p99,
                   r->xgb_p99 / r->weir_p99);
            printf("%-16s %-12s %7.1f ns/row %6.1f ns/row %8.1fx   (%llu rows)\n", "", "batch", r->weir_batch,
                   r->xgb_batch, r->xgb_batch / r->weir_batch, (unsigned long long)rows);
            printf("%-16s %-12s %10.0f ns %10.0f ns %11.1fx %9s %9.2f ns  (%.1f predictions)\n", "",
                   "contrib ~", r->approx_med, r->xgb_approx_med, r->xgb_approx_med / r->approx_med, "",
                   r->approx_med / r->cfg.trees, r->approx_med / r->weir_med);
            printf("%-16s %-12s %10.0f ns %10.0f ns %11.1fx %9s %9.2f ns\n", "", "contrib", r->exact_med,
                   r->xgb_exact_med, r->xgb_exact_med / r->exact_med, "", r->exact_med / r->cfg.trees);
            printf("%-16s %-12s %u of %d trees branch-free; max |weir - xgboost| = %.3g, "
                   "contrib ~ %.3g\n", "", "check", r->perfect, r->cfg.trees, r->max_diff, r->approx_diff);
        }
    }
    return ok ? 0 : 1;
}

#else

int bench_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "weir bench model: built without libxgboost (libxgboost-dev), the peer this "
                    "benchmark compares with\n");
    return 1;
}

#endif
