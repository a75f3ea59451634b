/* xgb.c — loads XGBoost JSON models into the gbdt/linear evaluators.
 *
 * The schema (XGBoost 1.0+, doc/json-schema.rst), the parts read here:
 *
 *   {"version": [1, 7, 4],
 *    "learner": {
 *      "feature_names": ["a", ...] (may be empty), "feature_types": [...],
 *      "learner_model_param": {"num_feature": "4", "num_class": "0",
 *                              "num_target": "1", "base_score": "5E-1"},
 *      "objective": {"name": "binary:logistic", ...},
 *      "gradient_booster": one of
 *        {"name": "gbtree", "model": GBTREE}
 *        {"name": "dart", "gbtree": {"model": GBTREE}, "weight_drop": [w per tree]}
 *        {"name": "gblinear", "model": {"weights": [(num_feature + 1) * groups]}}}}
 *   GBTREE = {"gbtree_model_param": {"num_trees": "2", ...},
 *             "tree_info": [group per tree], "trees": [TREE, ...]}
 *   TREE   = {"tree_param": {"num_nodes": "3", "size_leaf_vector": "0"},
 *             "left_children", "right_children" (-1 at leaves), "split_indices",
 *             "split_conditions" (threshold; the leaf value at leaves),
 *             "default_left" (0/1 or booleans), "split_type" (0 numerical,
 *             1 categorical), "sum_hessian" (cover), "categories_nodes",
 *             "categories_segments", "categories_sizes", "categories"}
 *
 * Differences across versions handled here: parameters are strings in 1.x
 * and may be numbers; base_score is "5E-1" in 1.x/2.x and may be a vector
 * "[5E-1]" (3.x) or a JSON number or array; size_leaf_vector is "0" in 1.x
 * and "1" in 2.x for scalar leaves (> 1 is a multi-output tree, refused);
 * default_left may be integers or booleans; 2.x adds fields we ignore
 * (iteration_indptr, multi_strategy). XGBoost writes NaN and Infinity as
 * bare words, which are not JSON: a pre-pass turns them into null and
 * +-1e999 outside strings before cJSON sees the text.
 *
 * Semantics (XGBoost's predictor): the base margin is base_score through the
 * objective's ProbToMargin (logit for logistic objectives, log for count and
 * gamma ones), in float; a numerical split sends x < threshold left and a
 * missing value to default_left; a categorical split sends the listed
 * categories right and everything else (negative, unlisted) left; DART
 * multiplies each tree's leaves by its weight in float. */
#include "model/xgb.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

#define XGB_MAX_FEATURES (1u << 24)
#define XGB_MAX_GROUPS 65536u
#define XGB_MAX_CATEGORY (1u << 24)

/* Copies text, replacing the bare words NaN, Infinity and -Infinity outside
 * strings by JSON that cJSON reads (null, 1e999, -1e999). */
static char *sanitize_json(const char *s, size_t len, size_t *outlen)
{
    char *o = weir_malloc(len * 2 + 8);
    size_t j = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            o[j++] = c;
            if (c == '\\' && i + 1 < len)
                o[j++] = s[++i];
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == 'N' && len - i >= 3 && !memcmp(s + i, "NaN", 3)) {
            memcpy(o + j, "null", 4);
            j += 4;
            i += 2;
            continue;
        } else if (c == 'I' && len - i >= 8 && !memcmp(s + i, "Infinity", 8)) {
            memcpy(o + j, "1e999", 5);
            j += 5;
            i += 7;
            continue;
        }
        o[j++] = c;
    }
    o[j] = '\0';
    *outlen = j;
    return o;
}

/* A parameter that XGBoost stores as a string ("4") or a number. */
static int get_uint(const cJSON *obj, const char *key, uint64_t dflt, uint64_t max, uint64_t *out,
                    char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (!(v->valuedouble >= 0 && v->valuedouble <= (double)max) || v->valuedouble != floor(v->valuedouble))
            return weir_errf(err, errlen, WEIR_ECORRUPT, "\"%s\" is %g, expected an integer in [0, %llu]",
                             key, v->valuedouble, (unsigned long long)max);
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v->valuestring, &end, 10);
        if (errno || end == v->valuestring || *end || v->valuestring[0] == '-' || u > max)
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "\"%s\" is \"%.40s\", expected an integer in [0, %llu]", key,
                             v->valuestring, (unsigned long long)max);
        *out = u;
        return 0;
    }
    return weir_errf(err, errlen, WEIR_ECORRUPT, "\"%s\" has the wrong type (expected an integer)",
                     key);
}

/* Reads array key of obj, which must have exactly n elements, into out[n].
 * Numbers as they are, null as NaN, booleans as 0/1. Returns 1 if the key is
 * absent and !required. */
static int get_array(const cJSON *obj, const char *key, uint32_t n, int required, const char *what,
                     double *out, char *err, size_t errlen)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!a) {
        if (!required) return 1;
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\" is missing", what, key);
    }
    if (!cJSON_IsArray(a))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\" is not an array", what, key);
    uint32_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (i >= n)
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\" has more than %u elements", what,
                             key, n);
        if (cJSON_IsNumber(it))
            out[i] = it->valuedouble;
        else if (cJSON_IsNull(it))
            out[i] = NAN;
        else if (cJSON_IsBool(it))
            out[i] = cJSON_IsTrue(it) ? 1.0 : 0.0;
        else
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\"[%u] is not a number", what, key,
                             i);
        i++;
    }
    if (i != n)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"%s\" has %u elements, expected %u", what,
                         key, i, n);
    return 0;
}

static int count_array(const cJSON *obj, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
}

static int is_index(double v, double max)
{
    return v >= 0 && v <= max && v == floor(v);
}

typedef struct objective {
    const char *name;
    model_link_t link;
    int base; /* 0 identity, 1 logit, 2 log */
} objective_t;

static const objective_t objectives[] = {
    {"binary:logistic", MODEL_LINK_SIGMOID, 1},
    {"reg:logistic", MODEL_LINK_SIGMOID, 1},
    {"binary:logitraw", MODEL_LINK_IDENTITY, 0}, /* base_score is already a margin */
    {"binary:hinge", MODEL_LINK_HINGE, 0},
    {"reg:squarederror", MODEL_LINK_IDENTITY, 0},
    {"reg:linear", MODEL_LINK_IDENTITY, 0},
    {"reg:squaredlogerror", MODEL_LINK_IDENTITY, 0},
    {"reg:pseudohubererror", MODEL_LINK_IDENTITY, 0},
    {"reg:absoluteerror", MODEL_LINK_IDENTITY, 0},
    {"reg:quantileerror", MODEL_LINK_IDENTITY, 0},
    {"count:poisson", MODEL_LINK_EXP, 2},
    {"reg:gamma", MODEL_LINK_EXP, 2},
    {"reg:tweedie", MODEL_LINK_EXP, 2},
    {"survival:cox", MODEL_LINK_EXP, 2},
    {"survival:aft", MODEL_LINK_EXP, 2},
    {"multi:softprob", MODEL_LINK_SOFTMAX, 0},
    {"multi:softmax", MODEL_LINK_SOFTMAX_ARGMAX, 0},
    {"rank:pairwise", MODEL_LINK_IDENTITY, 0},
    {"rank:ndcg", MODEL_LINK_IDENTITY, 0},
    {"rank:map", MODEL_LINK_IDENTITY, 0},
};

/* base_score: "5E-1", "[5E-1]", "[1E-1,2E-1]", a number or an array. */
static int read_base_score(const cJSON *lmp, uint32_t G, double *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(lmp, "base_score");
    for (uint32_t k = 0; k < G; k++) out[k] = 0.5;
    if (!v) return 0;
    double vals[1024];
    uint32_t n = 0;
    if (cJSON_IsNumber(v)) {
        vals[n++] = v->valuedouble;
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (!cJSON_IsNumber(it) || n == 1024)
                return weir_errf(err, errlen, WEIR_ECORRUPT, "\"base_score\" is not a list of numbers");
            vals[n++] = it->valuedouble;
        }
    } else if (cJSON_IsString(v)) {
        const char *p = v->valuestring;
        while (*p == ' ' || *p == '[') p++;
        while (*p && *p != ']') {
            char *end;
            errno = 0;
            double d = strtod(p, &end);
            if (end == p || n == 1024)
                return weir_errf(err, errlen, WEIR_ECORRUPT, "\"base_score\" \"%.40s\" is not a number",
                                 v->valuestring);
            vals[n++] = d;
            p = end;
            while (*p == ' ' || *p == ',') p++;
        }
    } else {
        return weir_errf(err, errlen, WEIR_ECORRUPT, "\"base_score\" has the wrong type");
    }
    if (n != 1 && n != G)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "\"base_score\" has %u values for %u outputs", n, G);
    for (uint32_t k = 0; k < G; k++) {
        out[k] = vals[n == 1 ? 0 : k];
        if (!isfinite(out[k]))
            return weir_errf(err, errlen, WEIR_ECORRUPT, "\"base_score\" is not finite");
    }
    return 0;
}

/* ProbToMargin, in float as XGBoost. */
static int base_margin(int kind, double b, double *out, char *err, size_t errlen)
{
    float f = (float)b;
    if (kind == 1) {
        if (!(f > 0.0f && f < 1.0f))
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "\"base_score\" %g must be in (0, 1) for a logistic objective", b);
        *out = -logf(1.0f / f - 1.0f);
    } else if (kind == 2) {
        if (!(f > 0.0f))
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "\"base_score\" %g must be positive for a log-link objective", b);
        *out = logf(f);
    } else {
        *out = f;
    }
    return 0;
}

/* The category sets of a tree: node -> bitset in the builder. */
static int read_categories(const cJSON *tree, uint32_t n, const double *split_type,
                           gbdt_builder_t *b, gbdt_src_node_t *nodes, const char *what, char *err,
                           size_t errlen)
{
    int nn = count_array(tree, "categories_nodes");
    if (nn <= 0) return 0;
    int nseg = count_array(tree, "categories_segments"), nsz = count_array(tree, "categories_sizes");
    int ncat = count_array(tree, "categories");
    if (nseg != nn || nsz != nn || ncat < 0)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: categories_nodes, categories_segments and categories_sizes differ in "
                         "length or \"categories\" is missing",
                         what);
    double *cn = weir_malloc((size_t)nn * sizeof *cn), *cs = weir_malloc((size_t)nn * sizeof *cs);
    double *cz = weir_malloc((size_t)nn * sizeof *cz);
    double *cv = weir_malloc((size_t)(ncat ? ncat : 1) * sizeof *cv);
    uint32_t *words = NULL;
    int rc;
    if ((rc = get_array(tree, "categories_nodes", (uint32_t)nn, 1, what, cn, err, errlen)) ||
        (rc = get_array(tree, "categories_segments", (uint32_t)nn, 1, what, cs, err, errlen)) ||
        (rc = get_array(tree, "categories_sizes", (uint32_t)nn, 1, what, cz, err, errlen)) ||
        (rc = get_array(tree, "categories", (uint32_t)ncat, 1, what, cv, err, errlen)))
        goto out;
    for (int i = 0; i < nn; i++) {
        if (!is_index(cn[i], n - 1.0) || split_type[(uint32_t)cn[i]] != 1) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                           "%s: categories_nodes[%d] = %g is not a categorical split node", what, i, cn[i]);
            goto out;
        }
        if (!is_index(cs[i], ncat) || !is_index(cz[i], ncat) || cs[i] + cz[i] > ncat) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                           "%s: category segment %d (offset %g, size %g) is outside \"categories\" "
                           "(%d values)",
                           what, i, cs[i], cz[i], ncat);
            goto out;
        }
        uint32_t off = (uint32_t)cs[i], sz = (uint32_t)cz[i];
        uint32_t maxc = 0;
        for (uint32_t k = 0; k < sz; k++) {
            double c = cv[off + k];
            if (!is_index(c, XGB_MAX_CATEGORY - 1.0)) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "%s, node %g: category %g is not an integer in [0, %u)", what, cn[i], c,
                               XGB_MAX_CATEGORY);
                goto out;
            }
            if ((uint32_t)c > maxc) maxc = (uint32_t)c;
        }
        uint32_t nw = sz ? maxc / 32 + 1 : 0;
        words = weir_realloc(words, (nw ? nw : 1) * sizeof *words);
        memset(words, 0, (nw ? nw : 1) * sizeof *words);
        for (uint32_t k = 0; k < sz; k++) {
            uint32_t c = (uint32_t)cv[off + k];
            words[c / 32] |= 1u << (c % 32);
        }
        gbdt_src_node_t *nd = &nodes[(uint32_t)cn[i]];
        nd->cat_off = gbdt_builder_add_cats(b, words, nw);
        nd->cat_words = nw;
    }
out:
    weir_free(cn);
    weir_free(cs);
    weir_free(cz);
    weir_free(cv);
    weir_free(words);
    return rc;
}

static int read_tree(const cJSON *tree, uint32_t idx, uint32_t group, float weight, gbdt_builder_t *b,
                     char *err, size_t errlen)
{
    char what[48];
    snprintf(what, sizeof what, "tree %u", idx);
    if (!cJSON_IsObject(tree)) return weir_errf(err, errlen, WEIR_ECORRUPT, "%s is not an object", what);
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(tree, "tree_param");
    if (!cJSON_IsObject(tp))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: \"tree_param\" is missing", what);
    char inner[256];
    uint64_t nn, slv, ndel;
    int rc;
    if ((rc = get_uint(tp, "num_nodes", 0, INT32_MAX, &nn, inner, sizeof inner)) ||
        (rc = get_uint(tp, "size_leaf_vector", 0, UINT32_MAX, &slv, inner, sizeof inner)) ||
        (rc = get_uint(tp, "num_deleted", 0, INT32_MAX, &ndel, inner, sizeof inner)))
        return weir_errf(err, errlen, rc, "%s: %s", what, inner);
    if (slv > 1)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "%s: multi-output trees (size_leaf_vector %llu) are not supported", what,
                         (unsigned long long)slv);
    if (nn == 0) return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: num_nodes is 0", what);
    int have = count_array(tree, "left_children");
    if (have < 0 || (uint64_t)have != nn)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s: num_nodes is %llu but \"left_children\" has %d elements", what,
                         (unsigned long long)nn, have);
    uint32_t n = (uint32_t)nn;
    double *a = weir_malloc((size_t)n * 7 * sizeof *a);
    double *lc = a, *rcn = a + n, *si = a + 2 * (size_t)n, *sc = a + 3 * (size_t)n;
    double *dl = a + 4 * (size_t)n, *st = a + 5 * (size_t)n, *sh = a + 6 * (size_t)n;
    gbdt_src_node_t *nodes = weir_calloc(n, sizeof *nodes);
    if ((rc = get_array(tree, "left_children", n, 1, what, lc, err, errlen)) ||
        (rc = get_array(tree, "right_children", n, 1, what, rcn, err, errlen)) ||
        (rc = get_array(tree, "split_indices", n, 1, what, si, err, errlen)) ||
        (rc = get_array(tree, "split_conditions", n, 1, what, sc, err, errlen)) ||
        (rc = get_array(tree, "default_left", n, 1, what, dl, err, errlen)))
        goto out;
    if ((rc = get_array(tree, "split_type", n, 0, what, st, err, errlen)) < 0) goto out;
    if (rc == 1)
        for (uint32_t i = 0; i < n; i++) st[i] = 0;
    if ((rc = get_array(tree, "sum_hessian", n, 0, what, sh, err, errlen)) < 0) goto out;
    if (rc == 1)
        for (uint32_t i = 0; i < n; i++) sh[i] = 1;
    rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        gbdt_src_node_t *s = &nodes[i];
        s->cover = sh[i];
        if (lc[i] == -1) {
            s->kind = GBDT_LEAF;
            s->left = s->right = -1;
            s->value = (double)((float)sc[i] * weight);
            /* (after the conversion: past float's range a leaf is infinite,
             * and an infinite leaf makes NaN scores — +inf and -inf in one
             * sum — that XGBoost keeps and the links must not hide; LightGBM's
             * loader refuses them too) */
            if (!isfinite(s->value)) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "%s, node %u: leaf value %g is not finite", what, i, sc[i]);
                goto out;
            }
            continue;
        }
        /* Range checks on the raw numbers; structure is checked by the builder
         * (only for reachable nodes: XGBoost keeps pruned nodes around). */
        s->left = is_index(lc[i], INT32_MAX) ? (int32_t)lc[i] : INT32_MAX;
        s->right = is_index(rcn[i], INT32_MAX) ? (int32_t)rcn[i] : INT32_MAX;
        s->feat = is_index(si[i], UINT32_MAX) ? (uint32_t)si[i] : UINT32_MAX;
        s->missing_left = dl[i] != 0;
        if (st[i] == 1) {
            s->kind = GBDT_CAT_XGB;
        } else if (st[i] == 0) {
            s->kind = GBDT_NUM;
            s->thr = sc[i];
            if (!isnan(sc[i])) s->thr = (float)sc[i];
        } else {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: split_type %g is not 0 or 1", what,
                           i, st[i]);
            goto out;
        }
    }
    if ((rc = read_categories(tree, n, st, b, nodes, what, err, errlen))) goto out;
    /* Pruned nodes stay in XGBoost's arrays, unreachable: drop them. */
    rc = gbdt_builder_add_tree(b, group, nodes, n, 1, what, err, errlen);
out:
    weir_free(a);
    weir_free(nodes);
    return rc < 0 ? rc : 0;
}

static int load_gbtree(const cJSON *gbm, const cJSON *weights, const char *name, uint32_t nfeat,
                       uint32_t G, const double *base, model_desc_t *d, char *err, size_t errlen)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(gbm, "model");
    if (!cJSON_IsObject(model))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s booster has no \"model\" object", name);
    const cJSON *trees = cJSON_GetObjectItemCaseSensitive(model, "trees");
    if (!cJSON_IsArray(trees)) return weir_errf(err, errlen, WEIR_ECORRUPT, "\"trees\" is not an array");
    int nt = cJSON_GetArraySize(trees);
    const cJSON *gmp = cJSON_GetObjectItemCaseSensitive(model, "gbtree_model_param");
    uint64_t declared;
    char inner[256];
    int rc;
    if (cJSON_IsObject(gmp)) {
        if ((rc = get_uint(gmp, "num_trees", (uint64_t)nt, INT32_MAX, &declared, inner, sizeof inner)))
            return weir_errf(err, errlen, rc, "gbtree_model_param: %s", inner);
        if (declared != (uint64_t)nt)
            return weir_errf(err, errlen, WEIR_ECORRUPT,
                             "gbtree_model_param says %llu trees but \"trees\" has %d",
                             (unsigned long long)declared, nt);
    }
    double *info = weir_malloc((size_t)(nt ? nt : 1) * sizeof *info);
    double *wd = weir_malloc((size_t)(nt ? nt : 1) * sizeof *wd);
    if ((rc = get_array(model, "tree_info", (uint32_t)nt, 1, "gbtree model", info, err, errlen))) goto out;
    if (weights) {
        if ((rc = get_array(weights, "weight_drop", (uint32_t)nt, 1, "dart booster", wd, err, errlen)))
            goto out;
    } else {
        for (int i = 0; i < nt; i++) wd[i] = 1;
    }
    gbdt_builder_t *b = gbdt_builder_new(GBDT_F32, nfeat, G);
    const cJSON *t = trees->child;
    for (int i = 0; i < nt; i++, t = t->next) {
        if (!is_index(info[i], G - 1.0)) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "tree_info[%d] = %g is not an output group < %u",
                           i, info[i], G);
            break;
        }
        if (!isfinite(wd[i])) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT, "weight_drop[%d] is not finite", i);
            break;
        }
        if ((rc = read_tree(t, (uint32_t)i, (uint32_t)info[i], (float)wd[i], b, err, errlen)))
            break;
    }
    if (rc) {
        gbdt_builder_free(b);
        goto out;
    }
    rc = gbdt_builder_finish(b, base, 0, &d->gbdt, err, errlen);
out:
    weir_free(info);
    weir_free(wd);
    return rc;
}

static int load_gblinear(const cJSON *gbm, uint32_t nfeat, uint32_t G, const double *base,
                         model_desc_t *d, char *err, size_t errlen)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(gbm, "model");
    if (!cJSON_IsObject(model))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "gblinear booster has no \"model\" object");
    size_t nw = ((size_t)nfeat + 1) * G;
    int have = count_array(model, "weights");
    if (have < 0 || (size_t)have != nw)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "gblinear \"weights\" has %d values, expected (num_feature + 1) * groups = %zu",
                         have, nw);
    double *w = weir_malloc(nw * sizeof *w);
    double *bv = weir_malloc((size_t)G * sizeof *bv);
    int rc = get_array(model, "weights", (uint32_t)nw, 1, "gblinear", w, err, errlen);
    for (size_t i = 0; rc == 0 && i < nw; i++)
        if (!isfinite(w[i])) rc = weir_errf(err, errlen, WEIR_ECORRUPT, "gblinear weights[%zu] is not finite", i);
    if (rc == 0) {
        for (uint32_t g = 0; g < G; g++) bv[g] = (double)((float)w[(size_t)nfeat * G + g] + (float)base[g]);
        d->linear = linear_new(GBDT_F32, nfeat, G, w, bv, NULL, NULL);
    }
    weir_free(w);
    weir_free(bv);
    return rc;
}

int xgb_load(const char *text, size_t len, model_desc_t *d, char *err, size_t errlen)
{
    size_t clen;
    char *clean = sanitize_json(text, len, &clen);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(clean, clen, &end, 0);
    if (!root) {
        size_t at = end && end >= clean ? (size_t)(end - clean) : 0;
        weir_free(clean);
        return weir_errf(err, errlen, WEIR_EPARSE, "XGBoost JSON: invalid JSON near byte %zu%s", at,
                         at >= clen ? " (truncated?)" : "");
    }
    weir_free(clean);
    int rc = 0;
    char inner[256];
    double *base = NULL;
    const cJSON *learner = cJSON_GetObjectItemCaseSensitive(root, "learner");
    const cJSON *lmp = cJSON_GetObjectItemCaseSensitive(learner, "learner_model_param");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(learner, "objective");
    const cJSON *objname = cJSON_GetObjectItemCaseSensitive(obj, "name");
    const cJSON *gbm = cJSON_GetObjectItemCaseSensitive(learner, "gradient_booster");
    const cJSON *gbname = cJSON_GetObjectItemCaseSensitive(gbm, "name");
    if (!cJSON_IsObject(learner) || !cJSON_IsObject(lmp)) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "XGBoost JSON: \"learner\".\"learner_model_param\" is missing");
        goto out;
    }
    if (!cJSON_IsString(objname)) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "XGBoost JSON: \"objective\".\"name\" is missing");
        goto out;
    }
    if (!cJSON_IsString(gbname)) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "XGBoost JSON: \"gradient_booster\".\"name\" is missing");
        goto out;
    }
    const objective_t *ob = NULL;
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
        if (!strcmp(objectives[i].name, objname->valuestring)) ob = &objectives[i];
    if (!ob) {
        rc = weir_errf(err, errlen, WEIR_EINVAL, "XGBoost JSON: objective \"%.60s\" is not supported",
                       objname->valuestring);
        goto out;
    }
    uint64_t nfeat, ncls, ntgt;
    if ((rc = get_uint(lmp, "num_feature", 0, XGB_MAX_FEATURES, &nfeat, inner, sizeof inner)) ||
        (rc = get_uint(lmp, "num_class", 0, XGB_MAX_GROUPS, &ncls, inner, sizeof inner)) ||
        (rc = get_uint(lmp, "num_target", 1, XGB_MAX_GROUPS, &ntgt, inner, sizeof inner))) {
        rc = weir_errf(err, errlen, rc, "XGBoost JSON: learner_model_param: %s", inner);
        goto out;
    }
    if (nfeat == 0) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "XGBoost JSON: num_feature is 0");
        goto out;
    }
    uint32_t G = (uint32_t)(ncls > 0 ? ncls : (ntgt ? ntgt : 1));
    if ((ob->link == MODEL_LINK_SOFTMAX || ob->link == MODEL_LINK_SOFTMAX_ARGMAX) && ncls < 2) {
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "XGBoost JSON: %s needs num_class >= 2",
                       ob->name);
        goto out;
    }
    base = weir_malloc((size_t)G * sizeof *base);
    if ((rc = read_base_score(lmp, G, base, inner, sizeof inner))) {
        rc = weir_errf(err, errlen, rc, "XGBoost JSON: %s", inner);
        goto out;
    }
    for (uint32_t k = 0; k < G; k++)
        if ((rc = base_margin(ob->base, base[k], &base[k], inner, sizeof inner))) {
            rc = weir_errf(err, errlen, rc, "XGBoost JSON: %s", inner);
            goto out;
        }
    /* Feature names: all or none. */
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(learner, "feature_names");
    int nnames = cJSON_IsArray(fn) ? cJSON_GetArraySize(fn) : 0;
    d->nfeat = (uint32_t)nfeat;
    if (nnames > 0) {
        if ((uint64_t)nnames != nfeat) {
            rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                           "XGBoost JSON: %d feature_names for num_feature %llu", nnames,
                           (unsigned long long)nfeat);
            goto out;
        }
        d->names = weir_calloc((size_t)nnames, sizeof *d->names);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, fn)
        {
            if (!cJSON_IsString(it) || !it->valuestring[0]) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "XGBoost JSON: feature_names[%d] is not a non-empty string", i);
                goto out;
            }
            d->names[i++] = weir_strdup(it->valuestring);
        }
    }
    char inner2[400];
    const char *bn = gbname->valuestring;
    if (!strcmp(bn, "gbtree")) {
        rc = load_gbtree(gbm, NULL, bn, d->nfeat, G, base, d, inner2, sizeof inner2);
    } else if (!strcmp(bn, "dart")) {
        const cJSON *inner_gb = cJSON_GetObjectItemCaseSensitive(gbm, "gbtree");
        if (!cJSON_IsObject(inner_gb))
            rc = weir_errf(inner2, sizeof inner2, WEIR_ECORRUPT, "dart booster has no \"gbtree\" object");
        else
            rc = load_gbtree(inner_gb, gbm, bn, d->nfeat, G, base, d, inner2, sizeof inner2);
    } else if (!strcmp(bn, "gblinear")) {
        rc = load_gblinear(gbm, d->nfeat, G, base, d, inner2, sizeof inner2);
    } else {
        rc = weir_errf(inner2, sizeof inner2, WEIR_EINVAL, "booster \"%.40s\" is not supported", bn);
    }
    if (rc) {
        rc = weir_errf(err, errlen, rc, "XGBoost JSON: %s", inner2);
        goto out;
    }
    char kind[64];
    snprintf(kind, sizeof kind, "xgboost %s", bn);
    d->kind = weir_strdup(kind);
    d->objective = weir_strdup(ob->name);
    d->link = ob->link;
    d->sigmoid = 1.0;
    d->f32_link = 1;
out:
    weir_free(base);
    cJSON_Delete(root);
    return rc;
}
