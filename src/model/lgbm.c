/* lgbm.c — loads LightGBM text models into the gbdt evaluator.
 *
 * The format (LightGBM's GBDT::SaveModelToString), the parts read here:
 *
 *   tree
 *   version=v3
 *   num_class=1
 *   num_tree_per_iteration=1            trees per iteration = output groups
 *   max_feature_idx=29                  features = max_feature_idx + 1
 *   objective=binary sigmoid:1          name, then key:value options
 *   average_output                      present for rf: outputs are averaged
 *   feature_names=a b c ...
 *   <blank>
 *   Tree=0
 *   num_leaves=4                        L leaves, L - 1 internal nodes
 *   num_cat=0                           categorical splits in this tree
 *   split_feature=12 4 0                per internal node ...
 *   threshold=1e-35 4772.0 349.0        numerical: x <= t goes left;
 *                                       categorical: index into cat_boundaries
 *   decision_type=2 2 2                 bit 0 categorical, bit 1 default left,
 *                                       bits 2-3 missing type (0 None, 1 Zero, 2 NaN)
 *   left_child=-1 2 -2                  >= 0 internal node, < 0 leaf ~c
 *   right_child=1 -3 -4
 *   leaf_value=...                      per leaf, shrinkage applied
 *   leaf_count=... internal_count=...   covers, used for explanations
 *   cat_boundaries=0 1 3                num_cat + 1 offsets into cat_threshold
 *   cat_threshold=...                   32-bit words of category bitsets
 *   is_linear=0                         v4; linear trees are refused
 *   <blank>
 *   end of trees
 *
 * Semantics (LightGBM's Tree::NumericalDecision / CategoricalDecision):
 * missing type None turns NaN into 0 before comparing; Zero sends NaN and
 * |x| <= 1e-35 to the default side; NaN sends NaN to the default side. A
 * categorical split sends (int)x left when its bit is set, NaN and negatives
 * right. The evaluator compares x < t', so x <= t becomes x < nextafter(t,
 * +inf), which is the same test on doubles. The sum over trees is in double
 * in model order; rf divides it by the number of iterations (and, for the v2
 * format of LightGBM 2.x, whose rf leaves are already probabilities, applies
 * no link afterwards). */
#include "model/lgbm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

#define LGBM_MAX_FEATURES (1u << 24)
#define LGBM_MAX_GROUPS 65536u

/* A line of the model: [p, p + len), and its 1-based number. */
typedef struct line {
    const char *p;
    size_t len;
    size_t no;
} line_t;

typedef struct reader {
    const char *s;
    size_t len, pos, no;
} reader_t;

static int next_line(reader_t *r, line_t *l)
{
    if (r->pos >= r->len) return 0;
    const char *start = r->s + r->pos;
    const char *nl = memchr(start, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - start) : r->len - r->pos;
    r->pos += n + (nl ? 1 : 0);
    if (n && start[n - 1] == '\r') n--;
    l->p = start;
    l->len = n;
    l->no = ++r->no;
    return 1;
}

/* "key=value": the value of l if its key is `key`. */
static int value_of(const line_t *l, const char *key, line_t *v)
{
    size_t k = strlen(key);
    if (l->len < k + 1 || memcmp(l->p, key, k) || l->p[k] != '=') return 0;
    v->p = l->p + k + 1;
    v->len = l->len - k - 1;
    v->no = l->no;
    return 1;
}

static size_t count_tokens(const line_t *v)
{
    size_t n = 0, i = 0;
    while (i < v->len) {
        while (i < v->len && v->p[i] == ' ') i++;
        if (i >= v->len) break;
        n++;
        while (i < v->len && v->p[i] != ' ') i++;
    }
    return n;
}

/* Parses exactly n space-separated numbers of v into out. */
static int parse_doubles(const line_t *v, const char *key, size_t n, double *out, const char *what,
                         char *err, size_t errlen)
{
    size_t got = count_tokens(v);
    if (got != n)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: \"%s\" has %zu values, expected %zu",
                         v->no, what, key, got, n);
    size_t i = 0, k = 0;
    char tok[64];
    while (k < n) {
        while (v->p[i] == ' ') i++;
        size_t j = i;
        while (j < v->len && v->p[j] != ' ') j++;
        if (j - i >= sizeof tok)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: \"%s\" value %zu is too long",
                             v->no, what, key, k);
        memcpy(tok, v->p + i, j - i);
        tok[j - i] = '\0';
        char *end;
        errno = 0;
        double d = strtod(tok, &end);
        if (end == tok || *end)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: \"%s\" value %zu \"%s\" is not a number",
                             v->no, what, key, k, tok);
        out[k++] = d;
        i = j;
    }
    return 0;
}

static int parse_uint(const line_t *v, const char *key, uint64_t max, uint64_t *out, char *err,
                      size_t errlen)
{
    char tok[32];
    if (v->len == 0 || v->len >= sizeof tok)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: \"%s\" is not an integer", v->no, key);
    memcpy(tok, v->p, v->len);
    tok[v->len] = '\0';
    char *end;
    errno = 0;
    unsigned long long u = strtoull(tok, &end, 10);
    if (errno || *end || tok[0] == '-' || u > max)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: \"%s\" = \"%s\" is not an integer in [0, %llu]",
                         v->no, key, tok, (unsigned long long)max);
    *out = u;
    return 0;
}

static int is_index(double v, double max)
{
    return v >= 0 && v <= max && v == floor(v);
}

/* Fields of one tree block. */
enum {
    F_NUM_LEAVES, F_NUM_CAT, F_SPLIT_FEATURE, F_THRESHOLD, F_DECISION_TYPE, F_LEFT, F_RIGHT,
    F_LEAF_VALUE, F_LEAF_COUNT, F_INTERNAL_COUNT, F_CAT_BOUNDARIES, F_CAT_THRESHOLD, F_IS_LINEAR,
    F_COUNT
};
static const char *const tree_keys[F_COUNT] = {
    "num_leaves", "num_cat", "split_feature", "threshold", "decision_type", "left_child",
    "right_child", "leaf_value", "leaf_count", "internal_count", "cat_boundaries", "cat_threshold",
    "is_linear",
};

static int build_tree(const line_t *f, const int *have, uint32_t idx, uint32_t group, uint32_t nfeat,
                      gbdt_builder_t *b, char *err, size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "tree %u", idx);
    uint64_t L, ncat = 0, linear = 0;
    int rc;
    if (!have[F_NUM_LEAVES])
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"num_leaves\" is missing", what);
    if ((rc = parse_uint(&f[F_NUM_LEAVES], "num_leaves", INT32_MAX / 2, &L, err, errlen))) return rc;
    if (L == 0) return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: num_leaves is 0", f[F_NUM_LEAVES].no, what);
    if (have[F_NUM_CAT] && (rc = parse_uint(&f[F_NUM_CAT], "num_cat", INT32_MAX, &ncat, err, errlen))) return rc;
    if (have[F_IS_LINEAR] && (rc = parse_uint(&f[F_IS_LINEAR], "is_linear", 1, &linear, err, errlen))) return rc;
    if (linear)
        return weir_errf(err, errlen, WEIR_EINVAL, "line %zu: %s: linear trees (linear_tree=true) are not supported",
                         f[F_IS_LINEAR].no, what);
    if (!have[F_LEAF_VALUE])
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"leaf_value\" is missing", what);
    /* Counts are checked against the text before anything of that size is
     * allocated, so a huge num_leaves costs nothing. */
    if (count_tokens(&f[F_LEAF_VALUE]) != L)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: \"leaf_value\" has %zu values, num_leaves is %llu",
                         f[F_LEAF_VALUE].no, what, count_tokens(&f[F_LEAF_VALUE]), (unsigned long long)L);
    uint32_t ni = (uint32_t)L - 1, n = (uint32_t)(2 * L - 1);
    double *a = weir_malloc(((size_t)ni * 6 + (size_t)L * 2 + 1) * sizeof *a);
    double *sf = a, *th = a + ni, *dt = a + 2 * (size_t)ni, *lc = a + 3 * (size_t)ni, *rcn = a + 4 * (size_t)ni;
    double *ic = a + 5 * (size_t)ni, *lv = a + 6 * (size_t)ni, *lcnt = lv + L;
    double *cb = NULL, *ct = NULL;
    uint32_t *words = NULL;
    gbdt_src_node_t *nodes = weir_calloc(n, sizeof *nodes);
    static const int need[] = {F_SPLIT_FEATURE, F_THRESHOLD, F_DECISION_TYPE, F_LEFT, F_RIGHT};
    double *dst[] = {sf, th, dt, lc, rcn};
    if ((rc = parse_doubles(&f[F_LEAF_VALUE], "leaf_value", L, lv, what, err, errlen))) goto out;
    for (int k = 0; ni > 0 && k < 5; k++) {
        if (!have[need[k]]) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\" is missing", what, tree_keys[need[k]]);
            goto out;
        }
        if ((rc = parse_doubles(&f[need[k]], tree_keys[need[k]], ni, dst[k], what, err, errlen))) goto out;
    }
    if (have[F_LEAF_COUNT] && ni > 0) {
        if ((rc = parse_doubles(&f[F_LEAF_COUNT], "leaf_count", L, lcnt, what, err, errlen))) goto out;
    } else {
        for (uint64_t j = 0; j < L; j++) lcnt[j] = 1;
    }
    if (have[F_INTERNAL_COUNT] && ni > 0) {
        if ((rc = parse_doubles(&f[F_INTERNAL_COUNT], "internal_count", ni, ic, what, err, errlen))) goto out;
    } else {
        for (uint32_t i = 0; i < ni; i++) ic[i] = 0;
    }
    size_t nct = 0;
    if (ncat > 0) {
        if (!have[F_CAT_BOUNDARIES] || !have[F_CAT_THRESHOLD]) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s: num_cat is %llu but cat_boundaries or cat_threshold is missing",
                           what, (unsigned long long)ncat);
            goto out;
        }
        if (count_tokens(&f[F_CAT_BOUNDARIES]) != ncat + 1) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: cat_boundaries has %zu values, expected num_cat + 1 = %llu",
                           f[F_CAT_BOUNDARIES].no, what, count_tokens(&f[F_CAT_BOUNDARIES]), (unsigned long long)ncat + 1);
            goto out;
        }
        nct = count_tokens(&f[F_CAT_THRESHOLD]);
        cb = weir_malloc((size_t)(ncat + 1) * sizeof *cb);
        ct = weir_malloc((nct ? nct : 1) * sizeof *ct);
        words = weir_malloc((nct ? nct : 1) * sizeof *words);
        if ((rc = parse_doubles(&f[F_CAT_BOUNDARIES], "cat_boundaries", ncat + 1, cb, what, err, errlen)) ||
            (rc = parse_doubles(&f[F_CAT_THRESHOLD], "cat_threshold", nct, ct, what, err, errlen)))
            goto out;
        for (uint64_t k = 0; k <= ncat; k++)
            if (!is_index(cb[k], (double)nct) || (k > 0 && cb[k] < cb[k - 1])) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: cat_boundaries[%llu] = %g is out of order or beyond cat_threshold (%zu words)",
                               f[F_CAT_BOUNDARIES].no, what, (unsigned long long)k, cb[k], nct);
                goto out;
            }
        for (size_t k = 0; k < nct; k++) {
            if (!is_index(ct[k], 4294967295.0)) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: cat_threshold[%zu] is not a 32-bit word",
                               f[F_CAT_THRESHOLD].no, what, k);
                goto out;
            }
            words[k] = (uint32_t)ct[k];
        }
    }
    /* Internal node i is src node i; leaf j is src node ni + j. */
    for (uint32_t j = 0; j < L; j++) {
        gbdt_src_node_t *s = &nodes[ni + j];
        s->kind = GBDT_LEAF;
        s->left = s->right = -1;
        s->value = lv[j];
        s->cover = lcnt[j];
        if (!isfinite(lv[j])) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: %s: leaf_value[%u] is not finite",
                           f[F_LEAF_VALUE].no, what, j);
            goto out;
        }
    }
    for (uint32_t i = 0; i < ni; i++) {
        gbdt_src_node_t *s = &nodes[i];
        double kids[2] = {lc[i], rcn[i]};
        int32_t *out_kid[2] = {&s->left, &s->right};
        for (int k = 0; k < 2; k++) {
            double c = kids[k];
            if (c != floor(c) || c < -(double)L || c >= (double)ni) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: %s child %g out of range (%u internal nodes, %llu leaves)",
                               what, i, k ? "right" : "left", c, ni, (unsigned long long)L);
                goto out;
            }
            *out_kid[k] = c >= 0 ? (int32_t)c : (int32_t)(ni + (uint32_t)(-c - 1));
        }
        if (!is_index(sf[i], nfeat - 1.0)) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: split_feature %g out of range (%u features)",
                           what, i, sf[i], nfeat);
            goto out;
        }
        s->feat = (uint32_t)sf[i];
        s->cover = ic[i];
        if (!is_index(dt[i], 255)) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: decision_type %g is invalid", what, i, dt[i]);
            goto out;
        }
        unsigned d = (unsigned)dt[i];
        unsigned missing = (d >> 2) & 3;
        int default_left = (d >> 1) & 1;
        if (d & 1) {
            if (!is_index(th[i], (double)ncat - 1.0)) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: categorical threshold %g is not a category set index (num_cat %llu)",
                               what, i, th[i], (unsigned long long)ncat);
                goto out;
            }
            uint32_t ci = (uint32_t)th[i];
            uint32_t lo = (uint32_t)cb[ci], hi = (uint32_t)cb[ci + 1];
            s->kind = GBDT_CAT_LGBM;
            s->cat_off = gbdt_builder_add_cats(b, words + lo, hi - lo);
            s->cat_words = hi - lo;
            s->missing_left = 0;
            continue;
        }
        if (missing == 3) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: decision_type %u has an unknown missing type", what, i, d);
            goto out;
        }
        if (isnan(th[i])) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: threshold is NaN", what, i);
            goto out;
        }
        s->thr = nextafter(th[i], INFINITY);
        if (missing == 0) { /* None: NaN is compared as 0 */
            s->kind = GBDT_NUM;
            s->missing_left = 0.0 <= th[i];
        } else {
            s->kind = missing == 1 ? GBDT_NUM_ZERO : GBDT_NUM;
            s->missing_left = (uint8_t)default_left;
        }
    }
    /* With a single leaf the root is that leaf: put it first. */
    rc = ni == 0 ? gbdt_builder_add_tree(b, group, nodes + ni, 1, 0, what, err, errlen)
                 : gbdt_builder_add_tree(b, group, nodes, n, 0, what, err, errlen);
out:
    weir_free(a);
    weir_free(cb);
    weir_free(ct);
    weir_free(words);
    weir_free(nodes);
    return rc;
}

typedef struct lgbm_objective {
    const char *name;
    model_link_t link;
} lgbm_objective_t;

static const lgbm_objective_t lgbm_objectives[] = {
    {"binary", MODEL_LINK_SIGMOID},         {"multiclass", MODEL_LINK_SOFTMAX},
    {"softmax", MODEL_LINK_SOFTMAX},        {"multiclassova", MODEL_LINK_SIGMOID},
    {"multiclass_ova", MODEL_LINK_SIGMOID}, {"ova", MODEL_LINK_SIGMOID},
    {"ovr", MODEL_LINK_SIGMOID},            {"regression", MODEL_LINK_IDENTITY},
    {"regression_l2", MODEL_LINK_IDENTITY}, {"l2", MODEL_LINK_IDENTITY},
    {"regression_l1", MODEL_LINK_IDENTITY}, {"l1", MODEL_LINK_IDENTITY},
    {"huber", MODEL_LINK_IDENTITY},         {"fair", MODEL_LINK_IDENTITY},
    {"quantile", MODEL_LINK_IDENTITY},      {"mape", MODEL_LINK_IDENTITY},
    {"poisson", MODEL_LINK_EXP},            {"gamma", MODEL_LINK_EXP},
    {"tweedie", MODEL_LINK_EXP},            {"cross_entropy", MODEL_LINK_SIGMOID},
    {"xentropy", MODEL_LINK_SIGMOID},       {"cross_entropy_lambda", MODEL_LINK_LOG1PEXP},
    {"xentlambda", MODEL_LINK_LOG1PEXP},    {"lambdarank", MODEL_LINK_IDENTITY},
    {"rank_xendcg", MODEL_LINK_IDENTITY},   {"custom", MODEL_LINK_IDENTITY},
};

static int parse_objective(const line_t *v, model_desc_t *d, char *err, size_t errlen)
{
    char buf[256];
    if (v->len == 0 || v->len >= sizeof buf)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: \"objective\" is empty or too long", v->no);
    memcpy(buf, v->p, v->len);
    buf[v->len] = '\0';
    char *save = NULL;
    char *name = strtok_r(buf, " ", &save);
    const lgbm_objective_t *ob = NULL;
    for (size_t i = 0; name && i < sizeof lgbm_objectives / sizeof lgbm_objectives[0]; i++)
        if (!strcmp(lgbm_objectives[i].name, name)) ob = &lgbm_objectives[i];
    if (!ob)
        return weir_errf(err, errlen, WEIR_EINVAL, "line %zu: objective \"%.60s\" is not supported", v->no,
                         name ? name : "");
    d->objective = weir_strdup(v->len ? buf : "");
    d->link = ob->link;
    d->sigmoid = 1.0;
    for (char *opt; (opt = strtok_r(NULL, " ", &save));) {
        if (!strncmp(opt, "sigmoid:", 8)) {
            char *end;
            d->sigmoid = strtod(opt + 8, &end);
            if (*end || !isfinite(d->sigmoid) || d->sigmoid <= 0)
                return weir_errf(err, errlen, WEIR_ECORRUPT, "line %zu: objective option \"%s\" is invalid", v->no, opt);
        } else if (!strcmp(opt, "sqrt") && d->link == MODEL_LINK_IDENTITY) {
            d->link = MODEL_LINK_SIGNED_SQUARE;
        }
    }
    /* Keep the full objective line for display (name and options). */
    weir_free(d->objective);
    d->objective = weir_strndup(v->p, v->len);
    return 0;
}

/* Feature names LightGBM invents (Column_0, Column_1, ...) mean "no names". */
static int names_are_generated(char **names, uint32_t n)
{
    char want[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(want, sizeof want, "Column_%u", i);
        if (strcmp(names[i], want)) return 0;
    }
    return 1;
}

int lgbm_load(const char *text, size_t len, model_desc_t *d, char *err, size_t errlen)
{
    reader_t r = {text, len, 0, 0};
    line_t l, v;
    uint64_t num_class = 1, ntpi = 1, max_feat = 0;
    int have_max_feat = 0, average = 0, have_objective = 0, rc = 0, version = 2;
    line_t names_line = {0};
    int have_names = 0;
    if (!next_line(&r, &l) || l.len != 4 || memcmp(l.p, "tree", 4))
        return weir_errf(err, errlen, WEIR_EPARSE, "LightGBM model: line 1 is not \"tree\"");
    /* Header: key=value lines up to the first Tree=. */
    while ((rc = next_line(&r, &l)) == 1) {
        if (l.len >= 5 && !memcmp(l.p, "Tree=", 5)) break;
        if (value_of(&l, "num_class", &v)) {
            if ((rc = parse_uint(&v, "num_class", LGBM_MAX_GROUPS, &num_class, err, errlen))) return rc;
        } else if (value_of(&l, "num_tree_per_iteration", &v)) {
            if ((rc = parse_uint(&v, "num_tree_per_iteration", LGBM_MAX_GROUPS, &ntpi, err, errlen))) return rc;
        } else if (value_of(&l, "max_feature_idx", &v)) {
            if ((rc = parse_uint(&v, "max_feature_idx", LGBM_MAX_FEATURES - 1, &max_feat, err, errlen))) return rc;
            have_max_feat = 1;
        } else if (value_of(&l, "objective", &v)) {
            if (have_objective) /* (parsing it again would leak the first one's text) */
                return weir_errf(err, errlen, WEIR_ECORRUPT,
                                 "LightGBM model: line %zu: a second objective line", l.no);
            if ((rc = parse_objective(&v, d, err, errlen))) return rc;
            have_objective = 1;
        } else if (value_of(&l, "feature_names", &v)) {
            names_line = v;
            have_names = 1;
        } else if (l.len == 14 && !memcmp(l.p, "average_output", 14)) {
            average = 1;
        } else if (value_of(&l, "version", &v)) {
            if (!(v.len == 2 && v.p[0] == 'v' && v.p[1] >= '2' && v.p[1] <= '4'))
                return weir_errf(err, errlen, WEIR_EINVAL, "LightGBM model: line %zu: version \"%.*s\" is not v2, v3 or v4",
                                 l.no, (int)(v.len > 20 ? 20 : v.len), v.p);
            version = v.p[1] - '0';
        }
    }
    if (rc != 1) return weir_errf(err, errlen, WEIR_EPARSE, "LightGBM model: no trees (no \"Tree=\" line)");
    rc = 0;
    if (!have_max_feat) return weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: \"max_feature_idx\" is missing");
    if (ntpi == 0) return weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: num_tree_per_iteration is 0");
    if (num_class > 1 && ntpi != num_class)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: num_class %llu but %llu trees per iteration",
                         (unsigned long long)num_class, (unsigned long long)ntpi);
    if (!have_objective) {
        d->objective = weir_strdup("custom");
        d->link = MODEL_LINK_IDENTITY;
        d->sigmoid = 1.0;
    }
    uint32_t nfeat = (uint32_t)max_feat + 1, G = (uint32_t)ntpi;
    d->nfeat = nfeat;
    if (have_names) {
        if (count_tokens(&names_line) != nfeat)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: line %zu: %zu feature_names for %u features",
                             names_line.no, count_tokens(&names_line), nfeat);
        d->names = weir_calloc(nfeat, sizeof *d->names);
        size_t i = 0;
        for (uint32_t k = 0; k < nfeat; k++) {
            while (names_line.p[i] == ' ') i++;
            size_t j = i;
            while (j < names_line.len && names_line.p[j] != ' ') j++;
            d->names[k] = weir_strndup(names_line.p + i, j - i);
            i = j;
        }
        if (names_are_generated(d->names, nfeat)) {
            for (uint32_t k = 0; k < nfeat; k++) weir_free(d->names[k]);
            weir_free(d->names);
            d->names = NULL;
        }
    }
    /* Trees: "Tree=i" then key=value lines to a blank line; "end of trees". */
    gbdt_builder_t *b = gbdt_builder_new(GBDT_F64, nfeat, G);
    uint32_t ntrees = 0;
    int ended = 0;
    for (;;) {
        if (!(l.len >= 5 && !memcmp(l.p, "Tree=", 5))) {
            if (l.len == 12 && !memcmp(l.p, "end of trees", 12)) {
                ended = 1;
                break;
            }
            if (l.len != 0) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: line %zu: expected \"Tree=\" or \"end of trees\"", l.no);
                break;
            }
            if (!next_line(&r, &l)) break;
            continue;
        }
        size_t tree_line = l.no;
        line_t fields[F_COUNT];
        int have[F_COUNT] = {0};
        int more;
        while ((more = next_line(&r, &l)) && l.len > 0 && !(l.len >= 5 && !memcmp(l.p, "Tree=", 5)) &&
               !(l.len == 12 && !memcmp(l.p, "end of trees", 12)))
            for (int k = 0; k < F_COUNT; k++)
                if (value_of(&l, tree_keys[k], &fields[k])) have[k] = 1;
        char inner[384];
        if ((rc = build_tree(fields, have, ntrees, ntrees % G, nfeat, b, inner, sizeof inner))) {
            rc = weir_errf(err, errlen, rc, "LightGBM model: %s (tree starting at line %zu)", inner, tree_line);
            break;
        }
        ntrees++;
        if (!more) break;
    }
    if (rc == 0 && !ended)
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: truncated (no \"end of trees\" after %u trees)", ntrees);
    if (rc == 0 && (ntrees == 0 || ntrees % G))
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "LightGBM model: %u trees is not a multiple of %u trees per iteration",
                       ntrees, G);
    if (rc) {
        gbdt_builder_free(b);
        return rc;
    }
    /* Random forests written in the v2 format (LightGBM 2.x) stored leaves
     * already in output space and predicted their plain average; later
     * versions average margins and then apply the objective's link. */
    if (average && version == 2) d->link = MODEL_LINK_IDENTITY;
    double *base = weir_calloc(G, sizeof *base);
    rc = gbdt_builder_finish(b, base, average ? ntrees / G : 0, &d->gbdt, err, errlen);
    weir_free(base);
    if (rc) return rc;
    char kind[64];
    /* The boosting type is only in the parameters section after the trees. */
    const char *boosting = average ? "rf" : memmem(text, len, "[boosting: dart]", 16) ? "dart" : "gbdt";
    snprintf(kind, sizeof kind, "lightgbm %s", boosting);
    d->kind = weir_strdup(kind);
    return 0;
}
