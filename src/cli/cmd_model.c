/* cmd_model.c — `weir model info|predict|bench MODEL ...`: load a model
 * file (XGBoost JSON, LightGBM text, weir linear JSON), describe it, score a
 * file of rows with it, or time it. The scoring is the same code the engine
 * runs (src/model); this verb only reads files and prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/intmath.h"
#include "cli/cli.h"
#include "model/model.h"
#include "model/model_data.h"

static const char *const info_usage =
    "usage: weir model info MODEL [--json]\n"
    "\n"
    "Loads MODEL and prints its kind, objective, trees, max depth, features and\n"
    "classes. MODEL is an XGBoost JSON model, a LightGBM text model or a weir\n"
    "linear JSON model; the format is recognized from the content.\n";

static const char *const predict_usage =
    "usage: weir model predict MODEL --input FILE [--raw] [--contrib | --contrib-approx]\n"
    "                          [--format auto|csv|tsv|libsvm] [--label-col N]\n"
    "\n"
    "Scores every row of FILE ('-' for stdin) and prints one line per row: the\n"
    "score (several classes tab-separated), printed with %.17g.\n"
    "  --raw          print margins (raw scores) instead of transformed scores\n"
    "  --contrib      print per-feature contributions to the margin and the bias\n"
    "                 (per class: one value per feature, then the bias), by exact\n"
    "                 TreeSHAP\n"
    "  --contrib-approx  the same by path attribution (XGBoost's approx_contribs,\n"
    "                 what 'weir run' serves): a few predictions' cost, where\n"
    "                 TreeSHAP's is hundreds\n"
    "  --format F     input format (default: recognized from the first line)\n"
    "  --label-col N  column N (0-based) of a CSV/TSV file is a label: it is not\n"
    "                 read, so it may be a word\n"
    "\n"
    "A CSV/TSV header is matched to the model's feature names when the model has\n"
    "them; other columns are never read, whatever they hold (the key and time of\n"
    "'weir backfill' rows, say). Otherwise columns are taken by position.\n"
    "Empty fields, NA and NaN are missing values. In libsvm files an absent\n"
    "feature is missing for XGBoost models and 0 for LightGBM, as in training.\n";

static const char *const bench_usage =
    "usage: weir model bench MODEL [--input FILE] [--rows N] [--calls N]\n"
    "\n"
    "Times single-row scoring (median and p99 over --calls calls) and batch\n"
    "scoring (--rows rows, default 10000) of MODEL on the rows of FILE, or on\n"
    "random rows. For weir beside XGBoost's own predictor, see 'weir bench model'.\n";

typedef struct opts {
    const char *model, *input;
    int raw, contrib, json; /* contrib: 1 exact, 2 approximate */
    model_rows_format_t fmt;
    long label_col;
    uint64_t rows, calls;
} opts_t;

static int parse_opts(const char *verb, int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->label_col = -1;
    o->rows = 10000;
    o->calls = 20000;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "weir model %s", verb);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--raw")) {
            o->raw = 1;
        } else if (!strcmp(a, "--contrib") || !strcmp(a, "--contrib-approx")) {
            int kind = !strcmp(a, "--contrib") ? 1 : 2;
            if (o->contrib && o->contrib != kind)
                return cli_fail(prefix, "--contrib and --contrib-approx exclude each other");
            o->contrib = kind;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--input") || !strcmp(a, "--format") || !strcmp(a, "--label-col") ||
                   !strcmp(a, "--rows") || !strcmp(a, "--calls")) {
            if (!val) return cli_fail(prefix, "%s needs a value", a);
            i++;
            uint64_t u;
            if (!strcmp(a, "--input")) {
                o->input = val;
            } else if (!strcmp(a, "--format")) {
                if (!strcmp(val, "auto")) o->fmt = MODEL_ROWS_AUTO;
                else if (!strcmp(val, "csv")) o->fmt = MODEL_ROWS_CSV;
                else if (!strcmp(val, "tsv")) o->fmt = MODEL_ROWS_TSV;
                else if (!strcmp(val, "libsvm")) o->fmt = MODEL_ROWS_LIBSVM;
                else return cli_fail(prefix, "--format must be auto, csv, tsv or libsvm, not '%s'", val);
            } else if (cli_parse_u64(val, &u) || (!strcmp(a, "--label-col") ? u > 1u << 24 : (u == 0 || u > 100000000))) {
                return cli_fail(prefix, "%s: '%s' is not a valid count", a, val);
            } else if (!strcmp(a, "--label-col")) {
                o->label_col = (long)u;
            } else if (!strcmp(a, "--rows")) {
                o->rows = u;
            } else {
                o->calls = u;
            }
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(prefix, "unknown option '%s' (see 'weir model %s --help')", a, verb);
        } else if (!o->model) {
            o->model = a;
        } else {
            return cli_fail(prefix, "unexpected argument '%s'", a);
        }
    }
    if (!o->model) return cli_fail(prefix, "no MODEL given (see 'weir model %s --help')", verb);
    return 0;
}

static int load(const char *prefix, const char *path, weir_model_t **m)
{
    char err[512];
    if (model_load_file(path, m, err, sizeof err)) return cli_fail(prefix, "%s", err);
    return 0;
}

static int model_info_cmd(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) return fputs(info_usage, stdout), 0;
    opts_t o;
    weir_model_t *m;
    if (parse_opts("info", argc, argv, &o) || load("weir model info", o.model, &m)) return 1;
    model_info_t in;
    model_get_info(m, &in);
    if (o.json) {
        printf("{\"kind\": \"%s\", \"objective\": \"%s\", \"trees\": %u, \"max_depth\": %u, "
               "\"features\": %u, \"classes\": %u, \"outputs\": %u, \"branch_free_trees\": %u, "
               "\"memory_bytes\": %zu, \"digest\": \"%s\", \"feature_names\": ",
               in.kind, in.objective, in.trees, in.max_depth, in.features, in.classes, in.groups,
               in.perfect, in.memory, model_digest(m));
        if (!model_feature_name(m, 0)) {
            fputs("null}\n", stdout);
        } else {
            weir_buf_t b = WEIR_BUF_INIT;
            buf_append_str(&b, "[");
            for (uint32_t i = 0; i < in.features; i++) {
                const char *nm = model_feature_name(m, i);
                if (i) buf_append_str(&b, ", ");
                buf_append_json_string(&b, nm, strlen(nm));
            }
            buf_append_str(&b, "]}\n");
            fwrite(b.data, 1, b.len, stdout);
            buf_free(&b);
        }
    } else {
        printf("kind:       %s\n", in.kind);
        printf("objective:  %s\n", in.objective);
        printf("trees:      %u\n", in.trees);
        printf("max depth:  %u\n", in.max_depth);
        printf("features:   %u%s", in.features, model_feature_name(m, 0) ? " (" : " (matched by position)\n");
        if (model_feature_name(m, 0)) {
            for (uint32_t i = 0; i < in.features && i < 50; i++)
                printf("%s%s", i ? ", " : "", model_feature_name(m, i));
            printf("%s)\n", in.features > 50 ? ", ..." : "");
        }
        printf("classes:    %u\n", in.classes);
        printf("outputs:    %u per row (raw)\n", in.groups);
        if (in.trees) printf("layout:     %u of %u trees branch-free, %zu bytes\n", in.perfect, in.trees, in.memory);
        /* (the key of a data directory's model ledger: DATA/models) */
        printf("digest:     %s\n", model_digest(m));
    }
    model_release(m);
    return 0;
}

/* Reads the input file and arranges it in the model's feature order:
 * *x gets nrows * nfeat doubles. */
static int load_rows(const char *prefix, const weir_model_t *m, const opts_t *o, double **x,
                     size_t *nrows)
{
    char err[512];
    model_info_t in;
    model_get_info(m, &in);
    double absent = !strncmp(in.kind, "lightgbm", 8) ? 0.0 : NAN;
    /* Only the model's inputs are read: a header's other columns (backfill's
     * key and time, a label) are never parsed, whatever they hold. */
    uint32_t F = model_num_features(m);
    const char **names = weir_calloc(F ? F : 1, sizeof *names);
    for (uint32_t f = 0; f < F; f++)
        names[f] = model_feature_name(m, f);
    /* libsvm indexes past the model's features (and a label's, and one
     * more: its "a label column?" hint below) are refused as read */
    model_rows_pick_t pick = {names[0] ? names : NULL, F, o->label_col,
                              (size_t)F + 1 + (o->label_col >= 0)};
    model_rows_t rows;
    int bad = model_rows_read_file(o->input, o->fmt, absent, &pick, &rows, err, sizeof err);
    weir_free(names);
    if (bad) return cli_fail(prefix, "%s", err);
    if (o->label_col >= 0 && (size_t)o->label_col >= rows.file_cols) {
        size_t cols = rows.file_cols;
        model_rows_free(&rows);
        return cli_fail(prefix, "--label-col %ld: the input has %zu columns", o->label_col, cols);
    }
    uint32_t *col = weir_malloc((F ? F : 1) * sizeof *col);
    int rc = 0;
    if (rows.names && model_feature_name(m, 0)) {
        if (model_map_inputs(m, (const char *const *)rows.names, rows.ncols, 1, col, err, sizeof err))
            rc = cli_fail(prefix, "%s: %s", o->input, err);
    } else if (rows.ncols == F) {
        for (uint32_t f = 0; f < F; f++) col[f] = f;
    } else if (rows.ncols < F && rows.fmt == MODEL_ROWS_LIBSVM) {
        /* (the format as read, not as asked: asked for none, a headerless
         * CSV one column short was scored with the last feature missing) */
        /* libsvm rows that never mention the last features */
        for (uint32_t f = 0; f < F; f++) col[f] = f < rows.ncols ? f : UINT32_MAX;
    } else {
        rc = cli_fail(prefix, "%s has %zu columns but the model has %u features%s", o->input, rows.ncols, F,
                      rows.ncols == (size_t)F + 1 ? " (a label column? see --label-col)" : "");
    }
    if (rc == 0) {
        *x = weir_malloc((rows.nrows ? rows.nrows : 1) * (F ? F : 1) * sizeof **x);
        for (size_t r = 0; r < rows.nrows; r++)
            for (uint32_t f = 0; f < F; f++)
                (*x)[r * F + f] = col[f] == UINT32_MAX ? absent : rows.x[r * rows.ncols + col[f]];
        *nrows = rows.nrows;
    }
    weir_free(col);
    model_rows_free(&rows);
    return rc;
}

static void print_values(weir_buf_t *b, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) buf_appendf(b, i ? "\t%.17g" : "%.17g", v[i]);
    buf_append(b, "\n", 1);
    if (b->len > (1 << 16)) {
        fwrite(b->data, 1, b->len, stdout);
        buf_reset(b);
    }
}

static int model_predict_cmd(int argc, char **argv)
{
    const char *prefix = "weir model predict";
    if (cli_wants_help(argc, argv)) return fputs(predict_usage, stdout), 0;
    opts_t o;
    weir_model_t *m;
    if (parse_opts("predict", argc, argv, &o)) return 1;
    if (!o.input) return cli_fail(prefix, "--input FILE is required");
    if (load(prefix, o.model, &m)) return 1;
    double *x = NULL;
    size_t n = 0;
    if (load_rows(prefix, m, &o, &x, &n)) {
        model_release(m);
        return 1;
    }
    uint32_t F = model_num_features(m);
    weir_buf_t b = WEIR_BUF_INIT;
    if (o.contrib) {
        uint32_t nc = model_num_contribs(m);
        double *c = weir_malloc(nc * sizeof *c);
        for (size_t r = 0; r < n; r++) {
            if (o.contrib == 1)
                model_contrib_row(m, x + r * F, c);
            else
                model_contrib_row_approx(m, x + r * F, c);
            print_values(&b, c, nc);
        }
        weir_free(c);
    } else {
        uint32_t no = model_num_outputs(m, o.raw);
        double *out = weir_malloc((n ? n : 1) * no * sizeof *out);
        model_predict_batch(m, x, n, F, out, o.raw);
        for (size_t r = 0; r < n; r++) print_values(&b, out + r * no, no);
        weir_free(out);
    }
    fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
    weir_free(x);
    model_release(m);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int model_bench_cmd(int argc, char **argv)
{
    const char *prefix = "weir model bench";
    if (cli_wants_help(argc, argv)) return fputs(bench_usage, stdout), 0;
    opts_t o;
    weir_model_t *m;
    if (parse_opts("bench", argc, argv, &o) || load(prefix, o.model, &m)) return 1;
    uint32_t F = model_num_features(m);
    double *src = NULL;
    size_t nsrc = 0;
    if (o.input) {
        if (load_rows(prefix, m, &o, &src, &nsrc)) {
            model_release(m);
            return 1;
        }
        if (nsrc == 0) {
            model_release(m);
            weir_free(src);
            return cli_fail(prefix, "%s has no rows", o.input);
        }
    } else {
        nsrc = 4096;
        src = weir_malloc(nsrc * F * sizeof *src);
        uint64_t s = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < nsrc * F; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            src[i] = (double)(s >> 11) / 9007199254740992.0 * 6.0 - 3.0;
        }
    }
    size_t n = o.rows;
    double *x = weir_malloc(n * F * sizeof *x);
    for (size_t r = 0; r < n; r++) memcpy(x + r * F, src + (r % nsrc) * F, F * sizeof *x);
    uint32_t no = model_num_outputs(m, 0);
    double *out = weir_malloc(n * no * sizeof *out);
    uint64_t *lat = weir_malloc(o.calls * sizeof *lat);
    volatile double sink = 0;
    for (uint64_t i = 0; i < o.calls / 10 + 1; i++) model_predict_row(m, x + (i % n) * F, out, 0);
    for (uint64_t i = 0; i < o.calls; i++) {
        uint64_t t0 = weir_mono_ns();
        model_predict_row(m, x + (i % n) * F, out, 0);
        lat[i] = weir_mono_ns() - t0;
        sink += out[0];
    }
    qsort(lat, o.calls, sizeof *lat, weir_cmp_u64);
    double best = 1e300;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = weir_mono_ns();
        model_predict_batch(m, x, n, F, out, 0);
        double dt = (double)(weir_mono_ns() - t0);
        if (dt < best) best = dt;
        sink += out[0];
    }
    model_info_t in;
    model_get_info(m, &in);
    double med = (double)lat[o.calls / 2], p99 = (double)lat[(size_t)(o.calls * 0.99)];
    printf("model:        %s (%s, %u trees, max depth %u, %u features)\n", o.model, in.kind, in.trees,
           in.max_depth, in.features);
    printf("single row:   median %.0f ns, p99 %.0f ns over %llu calls", med, p99, (unsigned long long)o.calls);
    if (in.trees) printf(" (%.2f ns per tree)", med / in.trees);
    printf("\nbatch:        %.1f ns per row over %zu rows (%.2f M rows/s)\n", best / (double)n, n,
           (double)n / best * 1e3);
    weir_free(lat);
    weir_free(out);
    weir_free(x);
    weir_free(src);
    model_release(m);
    (void)sink;
    return 0;
}

int cmd_model(int argc, char **argv)
{
    static const cli_verb_t verbs[] = {
        {"info", model_info_cmd, "kind, objective, trees, depth, features and classes of a model"},
        {"predict", model_predict_cmd, "score the rows of a CSV, TSV or libsvm file"},
        {"bench", model_bench_cmd, "time single-row and batch scoring of a model"},
    };
    return cli_dispatch("weir model", verbs, 3, argc - 1, argv + 1);
}
