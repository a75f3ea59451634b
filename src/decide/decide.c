/* decide.c — model scoring and decision rules (see decide.h). */
#include "decide/decide.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "decide/model_ledger.h"
#include "decide/spec_ledger.h"

#define MAX_INPUTS 4096

struct decide {
    const spec_t *spec;
    model_slot_t *slot; /* NULL without a model */
    uint32_t nfeat;     /* model features */
    uint32_t *col;      /* model feature f is fed by spec input col[f] */
    char *ledger;       /* the data directory whose model ledger versions models, or NULL */
    int ledger_add;
    uint64_t ledger_floor;
    char digest[MODEL_DIGEST_LEN + 1]; /* the live model's (reload_lock of runtime.c) */
    uint64_t spec_version;             /* spec_ledger.h */
};

/* Gives m its version from the ledger, before m is published: a model is
 * never seen scoring under a number the ledger does not hold for it. */
static int version_model(decide_t *d, weir_model_t *m, const char *path, char *err, size_t errlen)
{
    if (!d->ledger) return 0;
    uint64_t v;
    int rc = model_ledger_version(d->ledger, model_digest(m), path, d->ledger_add, d->ledger_floor,
                                  &v, err, errlen);
    if (rc == 0) model_set_version(m, v ? v : UINT64_MAX); /* (UINT64_MAX: unknown, shown as 0) */
    return rc;
}

static int load_mapped(const spec_t *spec, const char *path, weir_model_t **m, uint32_t **col,
                       char *err, size_t errlen)
{
    char why[1024];
    if (model_load_file(path, m, why, sizeof why) != 0)
        return weir_errf(err, errlen, WEIR_EINVAL, "model: %s", why);
    uint32_t n = spec->model.ninputs;
    const char **names = weir_malloc((n ? n : 1) * sizeof *names);
    for (uint32_t i = 0; i < n; i++) names[i] = spec->model.inputs[i].name;
    uint32_t nf = model_num_features(*m);
    *col = weir_malloc((nf ? nf : 1) * sizeof **col);
    int rc = model_map_inputs(*m, names, n, 0, *col, why, sizeof why);
    weir_free(names);
    if (rc) {
        weir_free(*col);
        model_release(*m);
        return weir_errf(err, errlen, WEIR_EINVAL, "model %s does not fit the spec's inputs: %s", path, why);
    }
    return 0;
}

/* What the rules can read of model m's outputs: at most SPEC_MAX_SCORES
 * (the decision's score array), and every scores[i] the rules name. The
 * same check for a model loaded at start and one reloaded live. */
static int check_outputs(const spec_t *spec, const weir_model_t *m, const char *path, char *err,
                         size_t errlen)
{
    uint32_t nout = model_num_outputs(m, 0);
    if (nout > SPEC_MAX_SCORES)
        return weir_errf(err, errlen, WEIR_EINVAL, "model %s has %u outputs; at most %d are supported",
                         path, nout, SPEC_MAX_SCORES);
    if (spec->max_score_index > nout)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "the decision rules read scores[%u]; model %s has %u outputs",
                         spec->max_score_index - 1, path, nout);
    return 0;
}

int decide_new(const spec_t *spec, const decide_ledger_t *ledger, decide_t **out, char *err,
               size_t errlen)
{
    decide_t *d = weir_calloc(1, sizeof *d);
    d->spec = spec;
    if (ledger) {
        d->ledger = weir_strdup(ledger->datadir);
        d->ledger_add = ledger->add;
        d->ledger_floor = ledger->floor;
    }
    if (spec->has_model) {
        for (uint32_t i = 0; i < spec->model.ninputs; i++) {
            const spec_input_t *in = &spec->model.inputs[i];
            if (in->type == EXPR_STRING) {
                decide_free(d);
                return weir_errf(err, errlen, WEIR_EINVAL,
                                 "model input '%s' is a string; a model takes numbers, bools and times",
                                 in->name);
            }
        }
        weir_model_t *m;
        int rc = load_mapped(spec, spec->model.resolved, &m, &d->col, err, errlen);
        if (rc) {
            d->col = NULL; /* (freed by load_mapped) */
            decide_free(d);
            return rc;
        }
        d->nfeat = model_num_features(m);
        if ((rc = check_outputs(spec, m, spec->model.resolved, err, errlen)) != 0 ||
            (rc = version_model(d, m, spec->model.resolved, err, errlen)) != 0) {
            model_release(m);
            decide_free(d);
            return rc;
        }
        memcpy(d->digest, model_digest(m), sizeof d->digest);
        d->slot = model_slot_new(m);
    }
    /* The spec's version last: a spec whose model does not load never
     * decides, and gets none. */
    if (ledger && ledger->spec_text) {
        int rc = spec_ledger_version(ledger->datadir, ledger->spec_text, ledger->spec_len,
                                     ledger->spec_path, ledger->add, &d->spec_version, err, errlen);
        if (rc) {
            decide_free(d);
            return rc;
        }
    }
    *out = d;
    return 0;
}

void decide_free(decide_t *d)
{
    if (!d) return;
    if (d->slot) model_slot_free(d->slot);
    weir_free(d->col);
    weir_free(d->ledger);
    weir_free(d);
}

/* A model-only reload keeps what the rules read: as many outputs, turned
 * from margins the same way (a probability stays one: a binary:logitraw
 * model in place of a binary:logistic one would hand the rules' 0.9
 * threshold margins), and inputs matched by name if the live model's were
 * (one matched by position could feed any column). Changing those is a
 * spec change: its model path. */
static int same_outputs(decide_t *d, const weir_model_t *m, const char *path, char *err,
                        size_t errlen)
{
    uint32_t ticket;
    const weir_model_t *live = model_slot_enter(d->slot, &ticket);
    model_info_t a, b;
    model_get_info(live, &a);
    model_get_info(m, &b);
    int named = model_feature_name(live, 0) != NULL, now_named = model_feature_name(m, 0) != NULL;
    uint32_t na = model_num_outputs(live, 0), nb = model_num_outputs(m, 0);
    model_slot_exit(d->slot, ticket);
    const char *fix = "a model-only reload keeps what the rules read; to change it, change the "
                      "spec's model path";
    if (na != nb)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "model %s has %u outputs, the live model %u (%s)", path, nb, na, fix);
    if (a.link != b.link)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "model %s turns margins into outputs otherwise than the live model "
                         "(objective '%s', the live model's '%s'), so its scores mean something "
                         "else (%s)",
                         path, b.objective, a.objective, fix);
    if (named && !now_named)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "model %s carries no feature names, the live model does: its inputs "
                         "would be matched by position, unchecked (%s)",
                         path, fix);
    return 0;
}

int decide_reload(decide_t *d, const char *path, char *err, size_t errlen)
{
    if (!d->slot) return weir_errf(err, errlen, WEIR_EINVAL, "this spec has no model to reload");
    weir_model_t *m;
    uint32_t *col;
    int rc = load_mapped(d->spec, path, &m, &col, err, errlen);
    if (rc) return rc;
    /* The input mapping is part of the pipeline's contract: a reloaded model
     * must take the same inputs in the same model order. */
    if (model_num_features(m) != d->nfeat || memcmp(col, d->col, d->nfeat * sizeof *col) != 0) {
        weir_free(col);
        model_release(m);
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "model %s takes other inputs than the live model, or the same in another "
                         "order (a model-only reload keeps the live input mapping: change the "
                         "spec's model path to load it with its own)",
                         path);
    }
    weir_free(col);
    /* Its outputs too: a reloaded model with more outputs than a decision
     * holds passed here once, and the next scored event aborted. */
    if ((rc = check_outputs(d->spec, m, path, err, errlen)) != 0 ||
        (rc = same_outputs(d, m, path, err, errlen)) != 0 ||
        (rc = version_model(d, m, path, err, errlen)) != 0) {
        model_release(m);
        return rc;
    }
    memcpy(d->digest, model_digest(m), sizeof d->digest);
    model_slot_swap(d->slot, m);
    return 0;
}

static uint64_t shown_version(uint64_t v)
{
    return v == UINT64_MAX ? 0 : v;
}

uint64_t decide_spec_version(const decide_t *d)
{
    return d->spec_version;
}

uint64_t decide_model_version(const decide_t *d)
{
    return d->slot ? shown_version(model_slot_live_version(d->slot)) : 0;
}

const char *decide_model_digest(const decide_t *d)
{
    return d->digest;
}

static double input_value(const expr_value_t *v)
{
    switch ((expr_type_t)v->type) {
    case EXPR_BOOL: return v->as.b ? 1.0 : 0.0;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: return (double)v->as.i;
    case EXPR_FLOAT: return v->as.f;
    default: return NAN; /* null: a missing value, as the model's framework treats it */
    }
}

static void top_contribs(decide_t *d, const weir_model_t *m, const double *x, decision_t *out)
{
    uint32_t nc = model_num_contribs(m);
    double cs[512], *c = nc <= 512 ? cs : weir_malloc(nc * sizeof *c);
    /* Approximate (path attribution), not exact TreeSHAP: this runs for
     * every scored event online, where TreeSHAP costs ~30x the rest of the
     * request and the approximation a few predictions. The exact values
     * stay a `weir model predict --contrib` away. */
    model_contrib_row_approx(m, x, c);
    /* The group of the predicted class (scores_of) when there are several
     * (multi:softprob's probabilities, multi:softmax's class index): group 0
     * was shown, reasons for another class than the one that decided. */
    const double *g = c;
    uint32_t groups = nc / (d->nfeat + 1);
    if (groups > 1 && out->klass >= 0 && out->klass < (int64_t)groups)
        g = c + (size_t)out->klass * (d->nfeat + 1);
    out->ncontribs = 0;
    for (uint32_t f = 0; f < d->nfeat; f++) { /* the bias (g[nfeat]) is not an input */
        decide_contrib_t cand = {d->col[f], g[f]};
        uint32_t k = out->ncontribs;
        if (k < DECIDE_TOP_CONTRIBS) out->ncontribs++;
        else if (fabs(cand.value) <= fabs(out->contribs[k - 1].value)) continue;
        else k--;
        while (k > 0 && fabs(out->contribs[k - 1].value) < fabs(cand.value)) {
            out->contribs[k] = out->contribs[k - 1];
            k--;
        }
        out->contribs[k] = cand;
    }
    if (c != cs) weir_free(c);
}

/* score, class and scores[] from the model's outputs (see spec.h): a
 * multiclass model's score is the predicted class's probability. */
static void scores_of(const weir_model_t *m, const double *outs, uint32_t n, decision_t *out)
{
    out->nscores = n;
    memcpy(out->scores, outs, n * sizeof *outs);
    if (n > 1) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
            if (outs[i] > outs[best]) best = i;
        out->klass = best;
        out->score = outs[best];
        return;
    }
    out->score = outs[0];
    model_info_t info;
    model_get_info(m, &info);
    /* multi:softmax already outputs the class; otherwise a probability. */
    out->klass = info.classes > 1 ? (int64_t)outs[0] : outs[0] >= 0.5;
}

int decide_event(decide_t *d, const expr_value_t *fields, const expr_value_t *features,
                 int want_contribs, decision_t *out, char *scratch, size_t scratch_cap)
{
    const spec_t *s = d->spec;
    memset(out, 0, sizeof *out);
    out->score = NAN;
    out->rule = -1;
    out->spec_version = d->spec_version;
    if (d->slot) {
        uint32_t ticket;
        const weir_model_t *m = model_slot_enter(d->slot, &ticket);
        double xs[256], *x = d->nfeat <= 256 ? xs : weir_malloc(d->nfeat * sizeof *x);
        for (uint32_t f = 0; f < d->nfeat; f++) {
            const spec_input_t *in = &s->model.inputs[d->col[f]];
            x[f] = input_value(in->kind == SPEC_INPUT_FIELD ? &fields[in->slot] : &features[in->slot]);
        }
        double outs[SPEC_MAX_SCORES];
        uint32_t nout = model_num_outputs(m, 0);
        weir_assert(nout <= SPEC_MAX_SCORES); /* checked when the model was loaded */
        model_predict_row(m, x, outs, 0);
        scores_of(m, outs, nout, out);
        out->model_version = shown_version(model_version(m));
        if (want_contribs) top_contribs(d, m, x, out);
        if (x != xs) weir_free(x);
        model_slot_exit(d->slot, ticket);
    }
    expr_value_t extras[SPEC_NEXTRAS];
    extras[SPEC_EXTRA_SCORE] = isnan(out->score) ? expr_null() : expr_float(out->score);
    extras[SPEC_EXTRA_CLASS] = out->nscores ? expr_int(out->klass) : expr_null();
    for (uint32_t i = 0; i < SPEC_MAX_SCORES; i++)
        extras[SPEC_EXTRA_SCORES + i] = i < out->nscores ? expr_float(out->scores[i]) : expr_null();
    expr_env_t env = {.fields = fields, .features = features, .extras = extras, .scratch = scratch,
                      .scratch_cap = scratch_cap};
    for (uint32_t r = 0; r < s->ndecisions; r++) {
        bool yes = true;
        int rc = s->decisions[r].when ? expr_eval_bool(s->decisions[r].when, &env, &yes) : 0;
        /* A scratch too small must not change the decision (it would
         * depend on what the caller saw before): the caller's to grow. */
        if (rc == WEIR_ETOOBIG) return rc;
        if (rc != 0) yes = false;
        if (yes) {
            out->rule = (int)r;
            out->decision = s->decisions[r].then;
            out->reason = s->decisions[r].reason;
            out->emit = s->decisions[r].emit;
            break;
        }
    }
    return 0;
}

int decide_event_in(decide_t *d, decide_scratch_t *s, size_t raw_len, const expr_value_t *fields,
                    const expr_value_t *features, int want_contribs, decision_t *out)
{
    if (raw_len > s->max_raw) s->max_raw = raw_len;
    size_t need = (size_t)d->spec->lower_calls * (s->max_raw + 64);
    for (;;) {
        if (need > s->cap) {
            s->p = weir_realloc(s->p, need);
            s->cap = need;
        }
        int rc = decide_event(d, fields, features, want_contribs, out, s->p, s->cap);
        /* Strings in the state can be longer than any event this scratch
         * has seen (after a restore, or rows a backfill filtered out): then
         * again, with room for them. */
        if (rc != WEIR_ETOOBIG) return rc;
        need = 2 * s->cap + 64;
    }
}

void decide_scratch_free(decide_scratch_t *s)
{
    weir_free(s->p);
    memset(s, 0, sizeof *s);
}
