/* gbdt.h — compiled tree ensembles: the evaluator behind XGBoost and LightGBM
 * models (xgb.c and lgbm.c are loaders that feed it trees).
 *
 * A loader describes each tree as an array of gbdt_src_node_t in its own
 * numbering and hands it to a builder, which checks it (children in range,
 * every node reached exactly once from the root, no cycle, depth bounded,
 * features in range, no NaN threshold or leaf) and compiles the ensemble into
 * flat arrays made for the CPU (see gbdt.c). A gbdt_t is immutable once built
 * and may be scored from any number of threads at once.
 *
 * Precision follows the framework that trained the model: GBDT_F32 (XGBoost)
 * compares float(x) with float thresholds and adds float leaf values in
 * float, tree by tree in model order; GBDT_F64 (LightGBM) does all of it in
 * double. Both produce the margin (raw score) per output group; the link
 * function (sigmoid, softmax, exp) is applied by model.c. */
#ifndef WEIR_MODEL_GBDT_H
#define WEIR_MODEL_GBDT_H

#include <stddef.h>
#include <stdint.h>

typedef enum gbdt_prec { GBDT_F32 = 0, GBDT_F64 = 1 } gbdt_prec_t;

/* Node kinds of a source tree. */
enum {
    GBDT_LEAF = 0,
    GBDT_NUM = 1,      /* x < thr goes left; NaN goes to missing_left */
    GBDT_NUM_ZERO = 2, /* as NUM, but NaN and |x| <= 1e-35 go to missing_left (LightGBM "Zero") */
    GBDT_CAT_XGB = 3,  /* category in the set goes right, else left; NaN to missing_left */
    GBDT_CAT_LGBM = 4, /* (int)x in the set goes left, else (NaN, negative) right */
};

#define GBDT_MAX_DEPTH 256

typedef struct gbdt_src_node {
    int32_t left, right;  /* children, indices into the same array; -1 for a leaf */
    uint32_t feat;        /* feature index (splits) */
    uint8_t kind;         /* GBDT_LEAF, GBDT_NUM, ... */
    uint8_t missing_left; /* where a missing value goes (NUM, NUM_ZERO, CAT_XGB) */
    double thr;           /* NUM/NUM_ZERO: x < thr goes left */
    double value;         /* leaf: output, any tree weight already applied */
    double cover;         /* hessian sum or row count (explanations only) */
    uint32_t cat_off;     /* CAT_*: bitset of gbdt_builder_add_cats */
    uint32_t cat_words;   /*        length in 32-bit words */
} gbdt_src_node_t;

typedef struct gbdt gbdt_t;
typedef struct gbdt_builder gbdt_builder_t;

/* A builder for an ensemble over nfeat features with ngroups outputs
 * (classes). Free it with gbdt_builder_free unless gbdt_builder_finish
 * consumed it. */
gbdt_builder_t *gbdt_builder_new(gbdt_prec_t prec, uint32_t nfeat, uint32_t ngroups);
void gbdt_builder_free(gbdt_builder_t *b);

/* Stores a category bitset (bit c of words[c / 32] = category c is in the
 * set) and returns its offset for gbdt_src_node_t.cat_off. */
uint32_t gbdt_builder_add_cats(gbdt_builder_t *b, const uint32_t *words, uint32_t n);

/* Checks and copies one tree (n nodes, root at index 0) whose output adds
 * to group `group`. `what` names the tree in errors ("tree 12"). Nodes not
 * reachable from the root are an error unless allow_unreachable (XGBoost
 * keeps pruned nodes in its files), in which case they are dropped. Returns
 * 0, or WEIR_ECORRUPT with a sentence in err naming the tree and node. */
int gbdt_builder_add_tree(gbdt_builder_t *b, uint32_t group, const gbdt_src_node_t *nodes,
                          uint32_t n, int allow_unreachable, const char *what, char *err,
                          size_t errlen);

/* Compiles the ensemble. base[ngroups] is the starting margin per group;
 * with average_by > 0 the tree sum of each group is divided by it (LightGBM
 * random forests). Consumes the builder (also on error); *out owns the
 * result, freed by gbdt_free. */
int gbdt_builder_finish(gbdt_builder_t *b, const double *base, uint32_t average_by, gbdt_t **out,
                        char *err, size_t errlen);

void gbdt_free(gbdt_t *g);

uint32_t gbdt_num_trees(const gbdt_t *g);
uint32_t gbdt_num_features(const gbdt_t *g);
uint32_t gbdt_num_groups(const gbdt_t *g);
uint32_t gbdt_max_depth(const gbdt_t *g);
uint32_t gbdt_num_perfect(const gbdt_t *g); /* trees compiled to the branch-free layout */
gbdt_prec_t gbdt_precision(const gbdt_t *g);
size_t gbdt_memory(const gbdt_t *g);

/* Margins of one row: x[nfeat] (NaN = missing) → out[ngroups]. For
 * GBDT_F32 the caller has already rounded x to float (model.c does). */
void gbdt_predict_row(const gbdt_t *g, const double *x, double *out);

/* Margins of n rows, row i at x + i * stride, into out + i * ngroups, equal
 * to gbdt_predict_row's. Works over blocks of rows, a run of trees at a
 * time, so the run's nodes stay in cache while every row of the block walks
 * it. */
void gbdt_predict_batch(const gbdt_t *g, const double *x, size_t n, size_t stride, double *out);

/* Exact TreeSHAP contributions of one row: out[ngroups * (nfeat + 1)], for
 * each group nfeat feature contributions then the bias (expected value plus
 * base margin). Per group the values add up to the margin. */
void gbdt_contrib_row(const gbdt_t *g, const double *x, double *out);

/* Approximate contributions of one row (path attribution, XGBoost's
 * approx_contribs; see "Explanations" in gbdt.c), in gbdt_contrib_row's
 * layout: for each tree, each split on the row's path gives its feature the
 * change of the expected output, E[child taken] - E[node], and the bias gets
 * E[root] plus the base margin. Per group the values add up to the margin
 * (up to rounding). About two predictions' cost (per-leaf tables built with
 * the model). For GBDT_F32 the values are XGBoost's, computed in float as
 * it does. */
void gbdt_contrib_row_approx(const gbdt_t *g, const double *x, double *out);

/* The same values by walking each tree's path through the general layout
 * (what gbdt_contrib_row_approx does for models whose per-leaf tables
 * would be too large; gbdt.c, Explanations). Kept callable so that tests
 * can compare the two bit for bit. */
void gbdt_contrib_row_approx_walk(const gbdt_t *g, const double *x, double *out);

#endif
