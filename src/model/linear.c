/* linear.c — linear and logistic models (see linear.h).
 *
 * weir's linear JSON format, for models trained anywhere (scikit-learn's
 * LogisticRegression, a spreadsheet, ...):
 *
 *   {
 *     "format": "weir-linear",          required, identifies the file
 *     "link": "logistic",               "logistic" or "identity" (default)
 *     "intercept": -2.5,                number (default 0)
 *     "weights": {"amount": 0.002,      feature name -> weight; the order of
 *                 "txn_count_1h": 0.3},   the keys is the positional order
 *     "mean":  {"amount": 120.0},       optional, per feature (default 0)
 *     "scale": {"amount": 300.0}        optional, per feature (default 1)
 *   }
 *
 * score = link(intercept + sum_f weight_f * (x_f - mean_f) / scale_f); a
 * missing x_f adds nothing. Names in "mean" or "scale" that are not in
 * "weights", non-finite numbers, a zero scale, and another key (a typo;
 * keys starting with '_' are the user's, e.g. "_trained") or one given
 * twice are load errors. Computed in
 * double. */
#include "model/linear.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

struct linear {
    gbdt_prec_t prec;
    uint32_t nfeat, ngroups;
    double *w;     /* [nfeat * ngroups] */
    double *bias;  /* [ngroups] */
    double *mean;  /* [nfeat] or NULL */
    double *scale; /* [nfeat] or NULL */
};

static double *dup_doubles(const double *v, size_t n)
{
    if (!v) return NULL;
    double *d = weir_malloc((n ? n : 1) * sizeof *d);
    if (n) memcpy(d, v, n * sizeof *d);
    return d;
}

linear_t *linear_new(gbdt_prec_t prec, uint32_t nfeat, uint32_t ngroups, const double *w,
                     const double *bias, const double *mean, const double *scale)
{
    linear_t *l = weir_calloc(1, sizeof *l);
    l->prec = prec;
    l->nfeat = nfeat;
    l->ngroups = ngroups ? ngroups : 1;
    l->w = dup_doubles(w, (size_t)nfeat * l->ngroups);
    l->bias = dup_doubles(bias, l->ngroups);
    l->mean = dup_doubles(mean, nfeat);
    l->scale = dup_doubles(scale, nfeat);
    if (prec == GBDT_F32) {
        for (size_t i = 0; i < (size_t)nfeat * l->ngroups; i++) l->w[i] = (float)l->w[i];
        for (uint32_t g = 0; g < l->ngroups; g++) l->bias[g] = (float)l->bias[g];
    }
    return l;
}

void linear_free(linear_t *l)
{
    if (!l) return;
    weir_free(l->w);
    weir_free(l->bias);
    weir_free(l->mean);
    weir_free(l->scale);
    weir_free(l);
}

uint32_t linear_num_features(const linear_t *l) { return l->nfeat; }
uint32_t linear_num_groups(const linear_t *l) { return l->ngroups; }

static inline double term(const linear_t *l, uint32_t f, double x)
{
    if (l->mean) x -= l->mean[f];
    if (l->scale) x /= l->scale[f];
    return x;
}

void linear_predict_row(const linear_t *l, const double *x, double *out)
{
    uint32_t G = l->ngroups;
    for (uint32_t g = 0; g < G; g++) {
        if (l->prec == GBDT_F32) {
            /* XGBoost: psum = bias + base; psum += fvalue * w, all float. */
            float s = (float)l->bias[g];
            for (uint32_t f = 0; f < l->nfeat; f++)
                if (!isnan(x[f])) s += (float)x[f] * (float)l->w[(size_t)f * G + g];
            out[g] = s;
        } else {
            double s = l->bias[g];
            for (uint32_t f = 0; f < l->nfeat; f++)
                if (!isnan(x[f])) s += term(l, f, x[f]) * l->w[(size_t)f * G + g];
            out[g] = s;
        }
    }
}

void linear_contrib_row(const linear_t *l, const double *x, double *out)
{
    uint32_t G = l->ngroups, F = l->nfeat;
    for (uint32_t g = 0; g < G; g++) {
        double *o = out + (size_t)g * (F + 1);
        for (uint32_t f = 0; f < F; f++) {
            if (isnan(x[f]))
                o[f] = 0;
            else if (l->prec == GBDT_F32)
                o[f] = (float)x[f] * (float)l->w[(size_t)f * G + g];
            else
                o[f] = term(l, f, x[f]) * l->w[(size_t)f * G + g];
        }
        o[F] = l->bias[g];
    }
}

/* ---- weir's linear JSON -------------------------------------------------- */

static int finite_number(const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return 0;
    *out = v->valuedouble;
    return 1;
}

/* Reads an optional {name: number} object onto the features' order. */
static int read_per_feature(const cJSON *root, const char *key, char **names, uint32_t n,
                            double dflt, double **out, char *err, size_t errlen)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!obj || cJSON_IsNull(obj)) return 0;
    if (!cJSON_IsObject(obj))
        return weir_errf(err, errlen, WEIR_EINVAL, "linear model: \"%s\" must be an object of numbers",
                         key);
    double *v = weir_malloc((n ? n : 1) * sizeof *v);
    for (uint32_t i = 0; i < n; i++) v[i] = dflt;
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        uint32_t i = 0;
        while (i < n && strcmp(names[i], it->string)) i++;
        double d;
        if (i == n) {
            weir_free(v);
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "linear model: \"%s\" names feature \"%s\" that has no weight", key,
                             it->string);
        }
        if (!finite_number(it, &d) || (!strcmp(key, "scale") && d == 0)) {
            weir_free(v);
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "linear model: %s of \"%s\" must be a finite%s number", key, it->string,
                             strcmp(key, "scale") ? "" : ", non-zero");
        }
        v[i] = d;
    }
    *out = v;
    return 0;
}

int linear_parse_json(const char *text, size_t len, linear_t **out, char ***names_out,
                      int *logistic, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        return weir_errf(err, errlen, WEIR_EPARSE, "linear model: invalid JSON near byte %zu",
                         end ? (size_t)(end - text) : (size_t)0);
    int rc = 0;
    char **names = NULL;
    uint32_t n = 0;
    double *w = NULL, *mean = NULL, *scale = NULL;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "weir-linear")) {
        rc = weir_errf(err, errlen, WEIR_EINVAL, "linear model: \"format\" must be \"weir-linear\"");
        goto out;
    }
    /* A misspelt key ("intercpt") would score with its default: refused,
     * as the spec refuses one; a key starting with '_' is the user's (a
     * comment, a version). Two of a key: cJSON would read the first. */
    static const char *const known[] = {"format", "link", "intercept", "weights", "mean", "scale"};
    unsigned seen = 0; /* a bit per known key (the '_' keys nobody reads: not checked) */
    for (const cJSON *it = root->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof known / sizeof *known && strcmp(it->string, known[k]))
            k++;
        if (k == sizeof known / sizeof *known && it->string[0] != '_') {
            rc =
                weir_errf(err, errlen, WEIR_EINVAL,
                          "linear model: unknown key \"%s\" (the keys are format, link, intercept, "
                          "weights, mean and scale; keys starting with _ are free)",
                          it->string);
            goto out;
        }
        if (k < sizeof known / sizeof *known && (seen & (1u << k))) {
            rc = weir_errf(err, errlen, WEIR_EINVAL, "linear model: key \"%s\" given twice",
                           it->string);
            goto out;
        }
        if (k < sizeof known / sizeof *known) seen |= 1u << k;
    }
    const cJSON *link = cJSON_GetObjectItemCaseSensitive(root, "link");
    *logistic = 0;
    if (link) {
        if (cJSON_IsString(link) && !strcmp(link->valuestring, "logistic"))
            *logistic = 1;
        else if (!cJSON_IsString(link) || strcmp(link->valuestring, "identity")) {
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "linear model: \"link\" must be \"identity\" or \"logistic\"");
            goto out;
        }
    }
    double intercept = 0;
    const cJSON *ic = cJSON_GetObjectItemCaseSensitive(root, "intercept");
    if (ic && !finite_number(ic, &intercept)) {
        rc = weir_errf(err, errlen, WEIR_EINVAL, "linear model: \"intercept\" must be a finite number");
        goto out;
    }
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(root, "weights");
    if (!cJSON_IsObject(ws) || !ws->child) {
        rc = weir_errf(err, errlen, WEIR_EINVAL,
                       "linear model: \"weights\" must be a non-empty object {feature: weight}");
        goto out;
    }
    int count = cJSON_GetArraySize(ws);
    names = weir_calloc((size_t)count, sizeof *names);
    w = weir_malloc((size_t)count * sizeof *w);
    const cJSON *it;
    cJSON_ArrayForEach(it, ws)
    {
        for (uint32_t j = 0; j < n; j++)
            if (!strcmp(names[j], it->string)) {
                rc = weir_errf(err, errlen, WEIR_EINVAL, "linear model: feature \"%s\" appears twice",
                               it->string);
                goto out;
            }
        if (!it->string[0]) {
            rc = weir_errf(err, errlen, WEIR_EINVAL, "linear model: a feature name is empty");
            goto out;
        }
        if (!finite_number(it, &w[n])) {
            rc = weir_errf(err, errlen, WEIR_EINVAL,
                           "linear model: weight of \"%s\" must be a finite number", it->string);
            goto out;
        }
        names[n++] = weir_strdup(it->string);
    }
    if ((rc = read_per_feature(root, "mean", names, n, 0.0, &mean, err, errlen))) goto out;
    if ((rc = read_per_feature(root, "scale", names, n, 1.0, &scale, err, errlen))) goto out;
    *out = linear_new(GBDT_F64, n, 1, w, &intercept, mean, scale);
    *names_out = names;
    names = NULL;
out:
    if (names) {
        for (uint32_t j = 0; j < n; j++) weir_free(names[j]);
        weir_free(names);
    }
    weir_free(w);
    weir_free(mean);
    weir_free(scale);
    cJSON_Delete(root);
    return rc;
}
