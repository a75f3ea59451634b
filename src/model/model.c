/* model.c — loading by format, scoring with the link function, input name
 * matching, and the live-model slot (see model.h).
 *
 * The slot's swap protocol (an epoch scheme with two reader counters, a
 * small cousin of RCU). Shared fields: cur (the live model), epoch, and
 * readers[2]; all seq_cst atomics.
 *
 *   enter: e = epoch; readers[e & 1]++; if epoch != e, undo and retry;
 *          then read cur.
 *   exit:  readers[e & 1]--.
 *   swap:  old = exchange(cur, new); epoch = e + 1;
 *          wait until readers[e & 1] == 0; release old.
 *
 * Why it is safe: a scorer that can hold `old` read cur before the exchange,
 * so it confirmed epoch == e before the swapper advanced it, so its count is
 * in readers[e & 1] before the swapper starts waiting. Scorers entering after
 * the advance count in the other counter and can only read the new model.
 * A scorer that read a stale epoch sees the change at its re-check and moves
 * over. The swapper waits (yielding), which is what "free the old model
 * after in-flight scorings" asks; scorers never wait and never lock. */
#include "model/model.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/fileio.h"
#include "model/lgbm.h"
#include "model/xgb.h"

#define MODEL_MAX_FILE (1u << 30) /* 1 GiB: larger files are refused, not read */

struct weir_model {
    atomic_uint refs;
    model_desc_t d;
    uint32_t groups;
    uint64_t version; /* set once before the model is published (model_set_version, or the slot) */
    char digest[MODEL_DIGEST_LEN + 1];
};

void model_desc_clear(model_desc_t *d)
{
    weir_free(d->kind);
    weir_free(d->objective);
    if (d->names) {
        for (uint32_t i = 0; i < d->nfeat; i++) weir_free(d->names[i]);
        weir_free(d->names);
    }
    gbdt_free(d->gbdt);
    linear_free(d->linear);
    memset(d, 0, sizeof *d);
}

/* ---- loading ------------------------------------------------------------- */

static int load_weir_linear(const char *data, size_t len, model_desc_t *d, char *err, size_t errlen)
{
    int logistic = 0;
    char **names = NULL;
    int rc = linear_parse_json(data, len, &d->linear, &names, &logistic, err, errlen);
    if (rc) return rc;
    d->kind = weir_strdup("linear");
    d->objective = weir_strdup(logistic ? "logistic" : "identity");
    d->link = logistic ? MODEL_LINK_SIGMOID : MODEL_LINK_IDENTITY;
    d->sigmoid = 1.0;
    d->nfeat = linear_num_features(d->linear);
    d->names = names;
    return 0;
}

int model_load_mem(const char *data, size_t len, const char *what, weir_model_t **out, char *err,
                   size_t errlen)
{
    char inner[480];
    model_desc_t d;
    memset(&d, 0, sizeof d);
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
    int rc;
    if (i + 1 < len && data[i] == '{' && memchr("iUIlL$#", data[i + 1], 7)) {
        /* UBJSON: an object whose first key is length-prefixed by an int
         * marker (or an optimized container's $ or #), where JSON text has
         * white space, a quote or '}'. XGBoost writes it for a name that
         * does not end in .json (its default since 2.1). */
        rc =
            weir_errf(inner, sizeof inner, WEIR_EINVAL,
                      "an XGBoost UBJSON (binary JSON) model, which weir does not read: save it "
                      "as JSON text, with a name ending in .json (booster.save_model(\"m.json\"))");
    } else if (i < len && data[i] == '{') {
        /* JSON: XGBoost has a "learner"; weir's linear format says so. */
        if (memmem(data, len, "\"learner\"", 9))
            rc = xgb_load(data, len, &d, inner, sizeof inner);
        else if (memmem(data, len, "\"weir-linear\"", 13))
            rc = load_weir_linear(data, len, &d, inner, sizeof inner);
        else
            rc = weir_errf(inner, sizeof inner, WEIR_EINVAL,
                           "JSON model is neither XGBoost (no \"learner\") nor weir linear "
                           "(no \"format\": \"weir-linear\")");
    } else if (len - i >= 4 && !memcmp(data + i, "tree", 4)) {
        rc = lgbm_load(data, len, &d, inner, sizeof inner);
    } else {
        rc = weir_errf(inner, sizeof inner, WEIR_EINVAL,
                       "unrecognized model format (expected XGBoost JSON, LightGBM text or "
                       "weir linear JSON)");
    }
    if (rc) {
        model_desc_clear(&d);
        return weir_errf(err, errlen, rc, "%s: %s", what, inner);
    }
    weir_model_t *m = weir_calloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    m->d = d;
    /* Of the bytes parsed, not of the file read again: the file may be
     * replaced in between, and the digest must name what scores. */
    XXH128_hash_t h = XXH3_128bits(data, len);
    snprintf(m->digest, sizeof m->digest, "xxh128:%016" PRIx64 "%016" PRIx64, (uint64_t)h.high64,
             (uint64_t)h.low64);
    m->groups = d.gbdt ? gbdt_num_groups(d.gbdt) : linear_num_groups(d.linear);
    *out = m;
    return 0;
}

int model_load_file(const char *path, weir_model_t **out, char *err, size_t errlen)
{
    weir_buf_t b = WEIR_BUF_INIT;
    int rc = weir_read_file(path, MODEL_MAX_FILE, &b, err, errlen);
    if (rc == 0 && b.len == 0) rc = weir_errf(err, errlen, WEIR_EINVAL, "%s: empty file", path);
    if (rc == 0) rc = model_load_mem(b.data, b.len, path, out, err, errlen);
    buf_free(&b);
    return rc;
}

weir_model_t *model_retain(weir_model_t *m)
{
    if (m) atomic_fetch_add(&m->refs, 1);
    return m;
}

void model_release(weir_model_t *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    model_desc_clear(&m->d);
    weir_free(m);
}

/* ---- queries ------------------------------------------------------------- */

void model_get_info(const weir_model_t *m, model_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->kind = m->d.kind;
    info->objective = m->d.objective;
    info->features = m->d.nfeat;
    info->groups = m->groups;
    info->link = m->d.link;
    info->classes = (m->d.link == MODEL_LINK_SOFTMAX || m->d.link == MODEL_LINK_SOFTMAX_ARGMAX ||
                     m->groups > 1)
                        ? m->groups
                        : 1;
    if (m->d.gbdt) {
        info->trees = gbdt_num_trees(m->d.gbdt);
        info->max_depth = gbdt_max_depth(m->d.gbdt);
        info->perfect = gbdt_num_perfect(m->d.gbdt);
        info->memory = gbdt_memory(m->d.gbdt);
    } else {
        info->memory = (size_t)m->d.nfeat * m->groups * sizeof(double);
    }
}

uint32_t model_num_features(const weir_model_t *m) { return m->d.nfeat; }

const char *model_feature_name(const weir_model_t *m, uint32_t i)
{
    return m->d.names && i < m->d.nfeat ? m->d.names[i] : NULL;
}

uint32_t model_num_outputs(const weir_model_t *m, int raw)
{
    if (!raw && m->d.link == MODEL_LINK_SOFTMAX_ARGMAX) return 1;
    return m->groups;
}

uint32_t model_num_contribs(const weir_model_t *m) { return m->groups * (m->d.nfeat + 1); }

/* ---- scoring ------------------------------------------------------------- */

static float sigmoid_f32(float x)
{
    /* XGBoost's common::Sigmoid, in float. */
    float t = -x < 88.7f ? -x : 88.7f;
    return 1.0f / (expf(t) + 1.0f + 1e-16f);
}

/* margins[G] → out[model_num_outputs(m, 0)] */
static void apply_link(const weir_model_t *m, const double *mg, double *out)
{
    uint32_t G = m->groups;
    int f32 = m->d.f32_link;
    switch (m->d.link) {
    case MODEL_LINK_IDENTITY:
        for (uint32_t k = 0; k < G; k++) out[k] = mg[k];
        break;
    case MODEL_LINK_SIGMOID:
        for (uint32_t k = 0; k < G; k++)
            out[k] = f32 ? (double)sigmoid_f32((float)mg[k]) : 1.0 / (1.0 + exp(-m->d.sigmoid * mg[k]));
        break;
    case MODEL_LINK_EXP:
        for (uint32_t k = 0; k < G; k++) out[k] = f32 ? (double)expf((float)mg[k]) : exp(mg[k]);
        break;
    case MODEL_LINK_LOG1PEXP:
        for (uint32_t k = 0; k < G; k++) out[k] = log1p(exp(mg[k]));
        break;
    case MODEL_LINK_SIGNED_SQUARE:
        for (uint32_t k = 0; k < G; k++) out[k] = (mg[k] < 0 ? -1.0 : 1.0) * mg[k] * mg[k];
        break;
    case MODEL_LINK_HINGE:
        for (uint32_t k = 0; k < G; k++) out[k] = mg[k] > 0 ? 1.0 : 0.0;
        break;
    case MODEL_LINK_SOFTMAX_ARGMAX: {
        uint32_t best = 0;
        for (uint32_t k = 1; k < G; k++)
            if (mg[k] > mg[best]) best = k;
        out[0] = best;
        break;
    }
    case MODEL_LINK_SOFTMAX:
        if (f32) {
            /* XGBoost's common::Softmax: float max and exp, double sum. */
            float wmax = (float)mg[0];
            for (uint32_t k = 1; k < G; k++) wmax = fmaxf((float)mg[k], wmax);
            double wsum = 0;
            for (uint32_t k = 0; k < G; k++) {
                float e = expf((float)mg[k] - wmax);
                out[k] = e;
                wsum += e;
            }
            for (uint32_t k = 0; k < G; k++) out[k] = (double)((float)out[k] / (float)wsum);
        } else {
            double wmax = mg[0], wsum = 0;
            for (uint32_t k = 1; k < G; k++) wmax = mg[k] > wmax ? mg[k] : wmax;
            for (uint32_t k = 0; k < G; k++) {
                out[k] = exp(mg[k] - wmax);
                wsum += out[k];
            }
            for (uint32_t k = 0; k < G; k++) out[k] /= wsum;
        }
        break;
    }
}

void model_predict_row(const weir_model_t *m, const double *x, double *out, int raw)
{
    double buf[64];
    double *mg = raw ? out : (m->groups <= 64 ? buf : weir_malloc(m->groups * sizeof *mg));
    if (m->d.gbdt)
        gbdt_predict_row(m->d.gbdt, x, mg);
    else
        linear_predict_row(m->d.linear, x, mg);
    if (!raw) {
        apply_link(m, mg, out);
        if (mg != buf) weir_free(mg);
    }
}

void model_predict_batch(const weir_model_t *m, const double *x, size_t n, size_t stride,
                         double *out, int raw)
{
    uint32_t G = m->groups;
    if (m->d.linear) {
        uint32_t no = model_num_outputs(m, raw);
        for (size_t r = 0; r < n; r++) model_predict_row(m, x + r * stride, out + r * no, raw);
        return;
    }
    if (raw) {
        gbdt_predict_batch(m->d.gbdt, x, n, stride, out);
        return;
    }
    /* Margins of a chunk into scratch, then the link into out. */
    enum { CHUNK = 256 };
    double *mg = weir_malloc((size_t)CHUNK * G * sizeof *mg);
    uint32_t no = model_num_outputs(m, 0);
    for (size_t r0 = 0; r0 < n; r0 += CHUNK) {
        size_t nb = n - r0 < CHUNK ? n - r0 : CHUNK;
        gbdt_predict_batch(m->d.gbdt, x + r0 * stride, nb, stride, mg);
        for (size_t r = 0; r < nb; r++) apply_link(m, mg + r * G, out + (r0 + r) * no);
    }
    weir_free(mg);
}

void model_contrib_row(const weir_model_t *m, const double *x, double *out)
{
    if (m->d.gbdt)
        gbdt_contrib_row(m->d.gbdt, x, out);
    else
        linear_contrib_row(m->d.linear, x, out);
}

void model_contrib_row_approx(const weir_model_t *m, const double *x, double *out)
{
    if (m->d.gbdt)
        gbdt_contrib_row_approx(m->d.gbdt, x, out);
    else
        linear_contrib_row(m->d.linear, x, out);
}

/* ---- input names --------------------------------------------------------- */

int model_map_inputs(const weir_model_t *m, const char *const *names, size_t n, int allow_extra,
                     uint32_t *col, char *err, size_t errlen)
{
    uint32_t F = m->d.nfeat;
    if (!m->d.names) {
        if (n == F || (allow_extra && n > F)) {
            for (uint32_t f = 0; f < F; f++) col[f] = f;
            return 0;
        }
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "the model has %u unnamed features, matched by position, but %zu inputs "
                         "were given",
                         F, n);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return weir_errf(err, errlen, WEIR_EINVAL, "input \"%s\" is given twice", names[i]);
    char missing[256] = "", extra[256] = "";
    size_t nmiss = 0, nextra = 0;
    for (uint32_t f = 0; f < F; f++) {
        size_t i = 0;
        while (i < n && strcmp(names[i], m->d.names[f])) i++;
        if (i < n) {
            col[f] = (uint32_t)i;
            continue;
        }
        size_t l = strlen(missing);
        snprintf(missing + l, sizeof missing - l, "%s%s", nmiss++ ? ", " : "", m->d.names[f]);
    }
    if (!allow_extra)
        for (size_t i = 0; i < n; i++) {
            uint32_t f = 0;
            while (f < F && strcmp(names[i], m->d.names[f])) f++;
            if (f < F) continue;
            size_t l = strlen(extra);
            snprintf(extra + l, sizeof extra - l, "%s%s", nextra++ ? ", " : "", names[i]);
        }
    if (!nmiss && !nextra) return 0;
    return weir_errf(err, errlen, WEIR_EINVAL,
                     "the inputs do not match the model's features: %zu missing from the inputs%s%s%s; "
                     "%zu not in the model%s%s%s",
                     nmiss, nmiss ? " (" : "", nmiss ? missing : "", nmiss ? ")" : "", nextra,
                     nextra ? " (" : "", nextra ? extra : "", nextra ? ")" : "");
}

/* ---- the slot ------------------------------------------------------------ */

struct model_slot {
    _Atomic(weir_model_t *) cur;
    atomic_uint_fast64_t epoch;
    atomic_uint_fast64_t readers[2];
    atomic_uint_fast64_t version;
    pthread_mutex_t swap_lock; /* serializes swappers only */
};

model_slot_t *model_slot_new(weir_model_t *m)
{
    model_slot_t *s = weir_calloc(1, sizeof *s);
    if (m && !m->version) m->version = 1;
    atomic_init(&s->cur, m);
    atomic_init(&s->epoch, 0);
    atomic_init(&s->readers[0], 0);
    atomic_init(&s->readers[1], 0);
    atomic_init(&s->version, 0);
    pthread_mutex_init(&s->swap_lock, NULL);
    return s;
}

void model_slot_free(model_slot_t *s)
{
    if (!s) return;
    weir_assert(atomic_load(&s->readers[0]) == 0 && atomic_load(&s->readers[1]) == 0);
    model_release(atomic_load(&s->cur));
    pthread_mutex_destroy(&s->swap_lock);
    weir_free(s);
}

const weir_model_t *model_slot_enter(model_slot_t *s, uint32_t *ticket)
{
    for (;;) {
        uint64_t e = atomic_load(&s->epoch);
        atomic_fetch_add(&s->readers[e & 1], 1);
        if (atomic_load(&s->epoch) == e) {
            *ticket = (uint32_t)(e & 1);
            return atomic_load(&s->cur);
        }
        atomic_fetch_sub(&s->readers[e & 1], 1);
    }
}

void model_slot_exit(model_slot_t *s, uint32_t ticket)
{
    atomic_fetch_sub(&s->readers[ticket & 1], 1);
}

void model_slot_swap(model_slot_t *s, weir_model_t *m)
{
    pthread_mutex_lock(&s->swap_lock);
    /* The version travels with the model, so a scoring that got the new
     * model reports the new version even while the swap still waits. */
    if (m && !m->version) m->version = atomic_load(&s->version) + 2;
    weir_model_t *old = atomic_exchange(&s->cur, m);
    uint64_t e = atomic_load(&s->epoch);
    atomic_store(&s->epoch, e + 1);
    while (atomic_load(&s->readers[e & 1]) != 0) sched_yield();
    atomic_fetch_add(&s->version, 1);
    pthread_mutex_unlock(&s->swap_lock);
    model_release(old);
}

uint64_t model_version(const weir_model_t *m)
{
    return m->version;
}

void model_set_version(weir_model_t *m, uint64_t version)
{
    m->version = version;
}

const char *model_digest(const weir_model_t *m)
{
    return m->digest;
}

uint64_t model_slot_live_version(model_slot_t *s)
{
    uint32_t ticket;
    const weir_model_t *m = model_slot_enter(s, &ticket);
    uint64_t v = m ? m->version : 0;
    model_slot_exit(s, ticket);
    return v;
}

uint64_t model_slot_version(const model_slot_t *s)
{
    return atomic_load(&((model_slot_t *)s)->version);
}
