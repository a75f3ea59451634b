/* model.h — the model layer's public face: load a model file of any
 * supported kind, score rows, explain scores, match input names, and swap a
 * live model atomically.
 *
 * Kinds: XGBoost JSON (gbtree, dart, gblinear; schema 1.x and 2.x),
 * LightGBM text (gbdt, dart, rf; v2 to v4), and weir's linear JSON
 * (linear.c). The format is sniffed from the content.
 *
 * A weir_model_t is immutable after loading and reference counted: any
 * number of threads may score with it at once. A model_slot_t holds the live
 * model of a pipeline; model_slot_swap replaces it and frees the old one only
 * after the scorings that were using it have finished.
 *
 * Inputs are rows of doubles in the model's feature order, NaN = missing
 * (model_map_inputs turns other orders into this one). Outputs are doubles:
 * the transformed score (probability, class, expected count) per output, or
 * with raw = 1 the margin per output group. */
#ifndef WEIR_MODEL_MODEL_H
#define WEIR_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/gbdt.h"
#include "model/linear.h"

typedef enum model_link {
    MODEL_LINK_IDENTITY = 0,
    MODEL_LINK_SIGMOID,        /* 1 / (1 + exp(-scale * x)), per group */
    MODEL_LINK_SOFTMAX,        /* probabilities over groups */
    MODEL_LINK_SOFTMAX_ARGMAX, /* index of the largest margin (XGBoost multi:softmax) */
    MODEL_LINK_EXP,            /* exp(x): poisson, gamma, tweedie */
    MODEL_LINK_LOG1PEXP,       /* log(1 + exp(x)): LightGBM cross_entropy_lambda */
    MODEL_LINK_SIGNED_SQUARE,  /* sign(x) x^2: LightGBM regression with sqrt */
    MODEL_LINK_HINGE,          /* x > 0 ? 1 : 0 */
} model_link_t;

/* What a loader produces; model.c wraps it into a weir_model_t. Exactly one
 * of gbdt and linear is set. Strings and arrays are weir_malloc'ed and owned
 * by the descriptor until it is handed over. */
typedef struct model_desc {
    char *kind;      /* "xgboost gbtree", "lightgbm rf", "linear", ... */
    char *objective; /* as the framework names it */
    model_link_t link;
    double sigmoid;  /* scale for MODEL_LINK_SIGMOID (1 unless LightGBM says otherwise) */
    int f32_link;    /* apply the link in float (XGBoost) */
    uint32_t nfeat;
    char **names;    /* [nfeat] or NULL when the file carries no names */
    gbdt_t *gbdt;
    linear_t *linear;
} model_desc_t;

void model_desc_clear(model_desc_t *d);

typedef struct weir_model weir_model_t;

typedef struct model_info {
    const char *kind;
    const char *objective;
    uint32_t trees;      /* 0 for linear models */
    uint32_t max_depth;
    uint32_t features;
    uint32_t classes;    /* 1 for regression and binary models */
    uint32_t groups;     /* margins per row */
    uint32_t perfect;    /* trees compiled to the branch-free layout */
    size_t memory;       /* bytes of the compiled model */
    model_link_t link;   /* what turns margins into outputs */
} model_info_t;

/* Loads a model from a file / from memory (what names it in errors). On
 * success *out holds one reference. Errors fill err with one sentence naming
 * the file and what is wrong. */
int model_load_file(const char *path, weir_model_t **out, char *err, size_t errlen);
int model_load_mem(const char *data, size_t len, const char *what, weir_model_t **out, char *err,
                   size_t errlen);

weir_model_t *model_retain(weir_model_t *m);
void model_release(weir_model_t *m); /* frees on the last reference */

void model_get_info(const weir_model_t *m, model_info_t *info);
uint32_t model_num_features(const weir_model_t *m);
/* The model's name for feature i, or NULL when the model matches by position. */
const char *model_feature_name(const weir_model_t *m, uint32_t i);
/* Values per row: transformed (raw = 0) or margins (raw = 1). */
uint32_t model_num_outputs(const weir_model_t *m, int raw);
/* Values per row of model_contrib_row: groups * (features + 1). */
uint32_t model_num_contribs(const weir_model_t *m);

void model_predict_row(const weir_model_t *m, const double *x, double *out, int raw);
/* n rows, row i at x + i * stride (stride >= features), into
 * out + i * model_num_outputs(m, raw). */
void model_predict_batch(const weir_model_t *m, const double *x, size_t n, size_t stride,
                         double *out, int raw);
/* Per group: the contribution of each feature to the margin, then the bias;
 * they add up to the margin (exact TreeSHAP for trees, w * x for linear). */
void model_contrib_row(const weir_model_t *m, const double *x, double *out);
/* The same layout from the approximate contributions (path attribution, as
 * XGBoost's approx_contribs): one walk of each tree, a few predictions'
 * cost where exact TreeSHAP's is hundreds; also adds up to the margin. For
 * linear models it equals model_contrib_row. */
void model_contrib_row_approx(const weir_model_t *m, const double *x, double *out);

/* Matches the caller's input names to the model's features. On success
 * col[f] (f < model_num_features) is the input index that feeds feature f.
 * When the model carries names, they are matched by name; otherwise by
 * position, and n must equal the feature count. With allow_extra, inputs
 * the model does not use are ignored; without, they are an error. On a
 * mismatch, err lists the missing and the unexpected names. */
int model_map_inputs(const weir_model_t *m, const char *const *names, size_t n, int allow_extra,
                     uint32_t *col, char *err, size_t errlen);

/* ---- the live model of a pipeline ---------------------------------------- */

typedef struct model_slot model_slot_t;

/* A slot holding m (takes over the caller's reference; m may be NULL). */
model_slot_t *model_slot_new(weir_model_t *m);
/* Frees the slot and releases its model; no scoring may be in flight. */
void model_slot_free(model_slot_t *s);

/* Marks a scoring in flight and returns the live model (NULL if none) and a
 * ticket for model_slot_exit. Between enter and exit the model stays valid
 * even if another thread swaps it out. Cheap: two atomic operations. */
const weir_model_t *model_slot_enter(model_slot_t *s, uint32_t *ticket);
void model_slot_exit(model_slot_t *s, uint32_t ticket);

/* Installs m (takes over the caller's reference), then waits for the
 * scorings that may use the old model to exit and releases it. Concurrent
 * swaps are serialized. */
void model_slot_swap(model_slot_t *s, weir_model_t *m);

/* m's version: the one model_set_version gave it, or else the one a slot
 * gave it, 1 for the slot's first model, then 2, 3, ... per swap (0 for a
 * model never put in a slot). */
uint64_t model_version(const weir_model_t *m);
/* Names m's version (decide.c: the data directory's model ledger, which
 * gives a model the same version at every start); before m is published. */
void model_set_version(weir_model_t *m, uint64_t version);
/* The version of the live model (0 if none). */
uint64_t model_slot_live_version(model_slot_t *s);

/* "xxh128:" and 32 hex digits: XXH3's 128-bit hash of the bytes m was
 * loaded from. It names a model file's content (not a defence against a
 * forged file: the ledger trusts whoever can write the data directory). */
#define MODEL_DIGEST_LEN 39
const char *model_digest(const weir_model_t *m);

/* Number of completed swaps (tests, metrics). */
uint64_t model_slot_version(const model_slot_t *s);

#endif
