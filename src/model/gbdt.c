/* gbdt.c — the tree-ensemble evaluator: checks trees, compiles them into a
 * flat layout, scores rows one at a time or in blocks, and explains scores.
 *
 * Layouts. Every tree is kept in the *general* layout: its nodes in
 * breadth-first order in one pool shared by all trees, the two children of a
 * node adjacent (right = left + 1), so a walk is `i = left + go_right`. This
 * layout handles everything (categorical splits, LightGBM's zero-as-missing,
 * any depth) and is the one explanations walk.
 *
 * Trees of only numerical splits and of small depth D are also compiled into
 * the *perfect* layout, which is what scoring uses for them: the tree is
 * padded to a complete binary tree of depth D (a leaf above depth D becomes a
 * split whose two subtrees both end in copies of that leaf), numbered as an
 * implicit heap (children of h at 2h+1 and 2h+2), 8-byte nodes (float
 * threshold, feature index) for float models, 16-byte ones for double
 * models; the last level is stored apart as "fat" nodes that hold the split
 * and both leaf values, so the final step reads one cache line. A walk is
 * exactly D steps with no data-dependent branch and no test for NaN:
 *
 *     h = 2h + 1 + (xw[fb] >= thr)
 *
 * where xw is the row widened to 2 * nfeat values: x, then x with NaN
 * replaced by +inf. A node whose missing values go right has fb = nfeat +
 * feature, where a missing value compares as +inf >= thr (true, right); one
 * whose missing values go left has fb = feature, where NaN >= thr is false
 * (left). Present values are equal in both halves.
 *
 * Runs. The perfect trees are sorted by depth (stable) and cut into runs of
 * 16 trees of equal depth (the rest of a depth into runs of 8, 4, 2, 1),
 * stored interleaved: node h of the k-th tree of a run of K is at
 * run + h * K + k. A run is walked level by level by code unrolled over its K
 * lanes: the K heap indices stay in registers, a step is two loads, a
 * compare and an add, and the K independent chains of loads overlap their
 * cache misses. One row walks every run in turn; a batch is cut into blocks
 * of 64 rows and every run is walked by all rows of the block while its
 * nodes are in cache. When the walk order is model order (all trees perfect
 * and of one depth, the usual case) leaves are summed as they come;
 * otherwise they are collected per tree and summed in model order after.
 * Padding costs memory, so a tree is made perfect only while 2^D <= 8 *
 * leaves and D <= 12.
 *
 * Numerics. GBDT_F32 rounds inputs to float and adds float leaves to a float
 * accumulator in model tree order, as XGBoost's predictor does; GBDT_F64 does
 * the same in double, as LightGBM. Comparing a float-rounded input held in a
 * double with a float threshold widened to double gives the same answer as
 * the float comparison, so the general layout stores doubles for both.
 *
 * Explanations. Two kinds, both per output group nfeat contributions and a
 * bias that add up to the margin. Exact TreeSHAP (Lundberg et al.) walks
 * every path of every tree: about depth^2 times the leaves of work per tree,
 * some 200 us for 100 trees of depth 6. The approximate contributions
 * (Saabas path attribution, XGBoost's approx_contribs) walk only the row's
 * path: E[n] is the expected output below node n, the cover-weighted mean of
 * its leaves, computed once at build time (mean[]); the bias gets E[root] of
 * every tree, and each split on the path gives its feature E[child taken] -
 * E[node]. The sum telescopes to the leaf. For GBDT_F32 both E[] and the sums are
 * float and in XGBoost's order (FillNodeMeanValues: E = (E_l * cover_l +
 * E_r * cover_r) / cover, each step rounded to float; per tree the
 * contributions are summed apart, then added to the row's), so the values
 * are XGBoost's to the last bit. What a tree adds depends only on the leaf
 * the row reaches, so it is computed at build time, per leaf, as terms
 * (feature, value): for GBDT_F32 the per-feature float sums of the path,
 * for GBDT_F64 its steps (aterm_leaves, with the operations of the walk).
 * A row then finds its leaves the way a prediction does (the perfect runs,
 * branch-free) and adds the terms in model order: about two predictions'
 * cost (~7 ns per tree of depth 6), against ~18 ns per tree for walking
 * the general layout with the arithmetic at each step. The tables hold
 * about depth terms per leaf; where that would exceed four times the
 * general layout (deep, unbalanced trees) the paths are walked instead
 * (gbdt_contrib_row_approx_walk, eight trees side by side), with the same
 * values to the bit (model_gbdt_test). A tree whose covers cannot weight (a
 * split of cover 0, a negative, NaN or infinite cover: models written
 * without statistics) uses the unweighted mean of the leaves instead, where
 * XGBoost would divide by zero.
 *
 * Invariants after gbdt_builder_add_tree: every split has two children in
 * range, every node is reached exactly once from the root, depth <=
 * GBDT_MAX_DEPTH, features < nfeat, no NaN threshold or leaf value, category
 * bitsets inside the pool. Scoring trusts them and never checks again. */
#include "model/gbdt.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/alloc.h"
#include "base/error.h"

#define PERFECT_MAX_DEPTH 12
#define BLOCK_ROWS 64
#define INTERLEAVE 16

typedef struct gnode {
    double thr;       /* split threshold, or the leaf value */
    uint32_t feat;
    int32_t left;     /* index of the left child within the tree; -1 for a leaf */
    uint8_t kind;
    uint8_t missing_left;
    uint32_t cat_off, cat_words;
    float amean;      /* GBDT_F32: mean[] of the node, in the padding, so that the
                       * approximate contributions read one line per step */
} gnode_t;

_Static_assert(sizeof(gnode_t) == 32, "a general node is half a cache line");

/* fb indexes the row widened to 2 * nfeat values (see widen32): the
 * feature itself when a missing value goes left, nfeat + feature when it
 * goes right. */
typedef struct pnode32 {
    float thr;
    uint32_t fb;
} pnode32_t;

typedef struct pnode64 {
    double thr;
    uint32_t fb;
    uint32_t pad;
} pnode64_t;

/* The last level of a perfect tree: the split and both leaves in one place,
 * so the final step costs one cache line, not two. */
typedef struct pfat32 {
    float thr;
    uint32_t fb;
    float leaf[2];
} pfat32_t;

typedef struct pfat64 {
    double thr;
    uint32_t fb;
    uint32_t pad;
    double leaf[2];
} pfat64_t;

/* The terms of a leaf: aterms[off, off + n). */
typedef struct apath {
    uint32_t off, n;
} apath_t;

/* GBDT_F32: per feature on the path, the float sum of its steps' changes. */
typedef struct aterm32 {
    uint32_t feat;
    float v;
} aterm32_t;

/* GBDT_F64: per step of the path, its change, scaled. */
typedef struct aterm64 {
    uint32_t feat;
    uint32_t pad;
    double v;
} aterm64_t;

typedef struct tree {
    uint32_t group;
    uint32_t depth;
    uint32_t nnodes;
    uint32_t goff;    /* first general node */
    int32_t poff;     /* 0 if it may be made perfect, then its run; -1: general layout */
    uint32_t pdepth;  /* levels of the perfect form: max(depth, 1) */
} tree_t;

/* Up to INTERLEAVE perfect trees of equal depth, stored interleaved so that
 * one base and one stride address them all: node h (heap numbering) of the
 * k-th tree of the run is pnodes[noff + h * cnt + k], its last-level node
 * j is leaves[loff + j * cnt + k]. */
typedef struct run {
    uint32_t first;   /* index of its first tree in sched */
    uint32_t cnt;     /* trees in the run, the stride */
    uint32_t pdepth;  /* their levels */
    size_t noff, loff;
} run_t;

struct gbdt {
    gbdt_prec_t prec;
    uint32_t nfeat, ngroups, ntrees, max_depth, nperfect;
    uint32_t average_by;
    double *base;     /* [ngroups] */
    double *bias;     /* [ngroups] base + expected tree output (exact TreeSHAP) */
    double *abias;    /* [ngroups] the same for the approximate contributions, summed
                       * in the model's precision and order (see Explanations) */
    tree_t *trees;
    gnode_t *gnodes;
    double *cover;    /* per general node */
    double *mean;     /* per general node: expected output below it, in the model's
                       * precision (approximate contributions) */
    uint32_t ngnodes;
    uint32_t *cats;
    uint32_t ncats;
    void *pnodes;     /* pnode32_t or pnode64_t: levels 0 .. pdepth - 2 of every run */
    void *leaves;     /* pfat32_t or pfat64_t: level pdepth - 1 with the leaves */
    size_t npnodes, nleaves;
    /* Schedule: the perfect trees sorted by depth (stable) and cut into runs
     * of up to INTERLEAVE trees of equal depth, walked level by level
     * together; the other trees after them, walked one by one. */
    uint32_t *sched;  /* tree ids in walk order */
    run_t *runs;
    uint32_t nruns;
    uint32_t nsched_perfect; /* sched[0 .. nsched_perfect) are the runs' trees */
    int in_order;     /* all trees perfect and sched[t] == t: leaves can be summed as walked */
    uint32_t *pleaf;  /* [2 * nleaves]: the general node (global index) of the leaf that
                       * side s of last-level perfect node j ends in, at 2j + s */
    /* Approximate contributions by leaf (see Explanations): what each leaf's
     * path adds, as (feature, value) terms; NULL when the tables would be
     * too large for the model, and then the paths are walked. */
    void *aterms;     /* aterm32_t or aterm64_t */
    size_t naterms;
    apath_t *apath;   /* [ngnodes]: a leaf's terms in aterms */
};

struct gbdt_builder {
    gbdt_prec_t prec;
    uint32_t nfeat, ngroups;
    tree_t *trees;
    uint32_t ntrees, cap_trees;
    gnode_t *gnodes;
    double *cover;
    uint32_t ngnodes, cap_gnodes;
    uint32_t *cats;
    uint32_t ncats, cap_cats;
};

gbdt_builder_t *gbdt_builder_new(gbdt_prec_t prec, uint32_t nfeat, uint32_t ngroups)
{
    gbdt_builder_t *b = weir_calloc(1, sizeof *b);
    b->prec = prec;
    b->nfeat = nfeat;
    b->ngroups = ngroups ? ngroups : 1;
    return b;
}

void gbdt_builder_free(gbdt_builder_t *b)
{
    if (!b) return;
    weir_free(b->trees);
    weir_free(b->gnodes);
    weir_free(b->cover);
    weir_free(b->cats);
    weir_free(b);
}

uint32_t gbdt_builder_add_cats(gbdt_builder_t *b, const uint32_t *words, uint32_t n)
{
    /* An array even for no words (a categorical split with an empty set,
     * which the loaders accept). go_right indexes g->cats rather than
     * forming g->cats + cat_off, so a categorical node given no set at all
     * is safe too when no node added one (g->cats NULL). */
    if (b->ncats + n > b->cap_cats || !b->cats) {
        uint32_t cap = b->cap_cats ? b->cap_cats : 64;
        while (cap < b->ncats + n) cap *= 2;
        b->cats = weir_realloc(b->cats, cap * sizeof *b->cats);
        b->cap_cats = cap;
    }
    uint32_t off = b->ncats;
    if (n) memcpy(b->cats + off, words, n * sizeof *words);
    b->ncats += n;
    return off;
}

/* The checks of one reachable node on its own. */
static int check_node(const gbdt_builder_t *b, const gbdt_src_node_t *s, uint32_t i, uint32_t n,
                      const char *what, char *err, size_t errlen)
{
    if (s->kind == GBDT_LEAF) {
        if (!isfinite(s->value))
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: leaf value is not finite",
                             what, i);
        return 0;
    }
    if (s->kind > GBDT_CAT_LGBM)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: unknown split kind %u", what, i,
                         s->kind);
    if (s->left < 0 || (uint32_t)s->left >= n || s->right < 0 || (uint32_t)s->right >= n)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s, node %u: child index out of range (left %d, right %d, %u nodes)", what,
                         i, s->left, s->right, n);
    if (s->feat >= b->nfeat)
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s, node %u: feature index %u out of range (%u features)", what, i, s->feat,
                         b->nfeat);
    if ((s->kind == GBDT_NUM || s->kind == GBDT_NUM_ZERO) && isnan(s->thr))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: split threshold is NaN", what, i);
    if ((s->kind == GBDT_CAT_XGB || s->kind == GBDT_CAT_LGBM) &&
        ((uint64_t)s->cat_off + s->cat_words > b->ncats))
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: category set out of range", what,
                         i);
    return 0;
}

int gbdt_builder_add_tree(gbdt_builder_t *b, uint32_t group, const gbdt_src_node_t *nodes,
                          uint32_t n, int allow_unreachable, const char *what, char *err,
                          size_t errlen)
{
    if (n == 0) return weir_errf(err, errlen, WEIR_ECORRUPT, "%s has no nodes", what);
    if (group >= b->ngroups)
        return weir_errf(err, errlen, WEIR_ECORRUPT, "%s: output group %u out of range (%u groups)",
                         what, group, b->ngroups);
    if (b->ngnodes > UINT32_MAX / 2 - n)
        return weir_errf(err, errlen, WEIR_ETOOBIG, "%s: too many nodes in the model", what);
    /* Breadth-first walk from the root: each node must be reached exactly
     * once (no cycle, no shared child, nothing unreachable). The walk order
     * is the compiled order, so children land side by side. */
    uint32_t *order = weir_malloc((size_t)n * sizeof *order);
    uint32_t *newid = weir_malloc((size_t)n * sizeof *newid);
    uint32_t *depth = weir_malloc((size_t)n * sizeof *depth);
    for (uint32_t i = 0; i < n; i++) newid[i] = UINT32_MAX;
    uint32_t head = 0, tail = 0, maxd = 0;
    int rc = 0;
    order[tail++] = 0;
    newid[0] = 0;
    depth[0] = 0;
    while (head < tail && rc == 0) {
        uint32_t u = order[head++];
        const gbdt_src_node_t *s = &nodes[u];
        if ((rc = check_node(b, s, u, n, what, err, errlen))) break;
        if (s->kind == GBDT_LEAF) continue;
        int32_t kids[2] = {s->left, s->right};
        for (int k = 0; k < 2; k++) {
            uint32_t c = (uint32_t)kids[k];
            if (newid[c] != UINT32_MAX) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT,
                               "%s, node %u: child %u is reached twice (a cycle or a shared node)",
                               what, u, c);
                break;
            }
            newid[c] = tail;
            depth[c] = depth[u] + 1;
            if (depth[c] > GBDT_MAX_DEPTH) {
                rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s: deeper than %d levels", what,
                               GBDT_MAX_DEPTH);
                break;
            }
            if (depth[c] > maxd) maxd = depth[c];
            order[tail++] = c;
        }
    }
    if (rc == 0 && tail != n && !allow_unreachable) {
        uint32_t lost = 0;
        while (lost < n && newid[lost] != UINT32_MAX) lost++;
        rc = weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: not reachable from the root", what,
                       lost);
    }
    if (rc == 0) {
        if (b->ngnodes + n > b->cap_gnodes) {
            uint32_t cap = b->cap_gnodes ? b->cap_gnodes : 1024;
            while (cap < b->ngnodes + n) cap *= 2;
            b->gnodes = weir_realloc(b->gnodes, (size_t)cap * sizeof *b->gnodes);
            b->cover = weir_realloc(b->cover, (size_t)cap * sizeof *b->cover);
            b->cap_gnodes = cap;
        }
        if (b->ntrees == b->cap_trees) {
            b->cap_trees = b->cap_trees ? 2 * b->cap_trees : 64;
            b->trees = weir_realloc(b->trees, b->cap_trees * sizeof *b->trees);
        }
        gnode_t *g = b->gnodes + b->ngnodes;
        double *cov = b->cover + b->ngnodes;
        int all_num = 1;
        n = tail; /* the reachable nodes, in breadth-first order */
        for (uint32_t k = 0; k < n; k++) {
            const gbdt_src_node_t *s = &nodes[order[k]];
            gnode_t *d = &g[k];
            memset(d, 0, sizeof *d);
            d->kind = s->kind;
            cov[k] = s->cover;
            if (s->kind == GBDT_LEAF) {
                d->left = -1;
                d->thr = b->prec == GBDT_F32 ? (double)(float)s->value : s->value;
                continue;
            }
            d->left = (int32_t)newid[s->left];
            weir_assert(newid[s->right] == newid[s->left] + 1);
            d->feat = s->feat;
            d->missing_left = s->missing_left ? 1 : 0;
            d->thr = b->prec == GBDT_F32 ? (double)(float)s->thr : s->thr;
            d->cat_off = s->cat_off;
            d->cat_words = s->cat_words;
            if (s->kind != GBDT_NUM) all_num = 0;
        }
        tree_t *t = &b->trees[b->ntrees++];
        t->group = group;
        t->depth = maxd;
        t->nnodes = n;
        t->goff = b->ngnodes;
        t->poff = all_num ? 0 : -1; /* eligibility; decided in finish */
        b->ngnodes += n;
    }
    weir_free(order);
    weir_free(newid);
    weir_free(depth);
    return rc;
}

/* Fills the perfect heap of P levels below general node gi (a leaf above
 * the last level is copied into both sides of a split that tests nothing). */
typedef struct fill_ctx {
    const gnode_t *g;
    uint32_t P, nfeat, cnt, lane; /* levels; stride and lane of the tree in its run */
    gbdt_prec_t prec;
    void *pn, *fat;               /* the run's first node and first fat node */
    uint32_t *pleaf, goff;        /* the run's first pleaf entry; the tree's first node */
} fill_ctx_t;

static void fill_perfect(const fill_ctx_t *c, uint32_t gi, uint32_t pi, uint32_t d)
{
    const gnode_t *g = c->g;
    uint32_t P = c->P;
    uint32_t fb = 0, l = gi, r = gi;
    double thr = 0;
    if (g[gi].left >= 0) {
        fb = g[gi].feat + (g[gi].missing_left ? 0 : c->nfeat);
        thr = g[gi].thr;
        l = (uint32_t)g[gi].left;
        r = l + 1;
    }
    if (d == P - 1) {
        weir_assert(g[l].left < 0 && g[r].left < 0);
        size_t j = (size_t)(pi - ((1u << (P - 1)) - 1)) * c->cnt + c->lane;
        c->pleaf[2 * j] = c->goff + l;
        c->pleaf[2 * j + 1] = c->goff + r;
        if (c->prec == GBDT_F32) {
            pfat32_t *f = (pfat32_t *)c->fat + j;
            f->thr = (float)thr;
            f->fb = fb;
            f->leaf[0] = (float)g[l].thr;
            f->leaf[1] = (float)g[r].thr;
        } else {
            pfat64_t *f = (pfat64_t *)c->fat + j;
            f->thr = thr;
            f->fb = fb;
            f->pad = 0;
            f->leaf[0] = g[l].thr;
            f->leaf[1] = g[r].thr;
        }
        return;
    }
    size_t h = (size_t)pi * c->cnt + c->lane;
    if (c->prec == GBDT_F32) {
        ((pnode32_t *)c->pn)[h].thr = (float)thr;
        ((pnode32_t *)c->pn)[h].fb = fb;
    } else {
        ((pnode64_t *)c->pn)[h].thr = thr;
        ((pnode64_t *)c->pn)[h].fb = fb;
        ((pnode64_t *)c->pn)[h].pad = 0;
    }
    fill_perfect(c, l, 2 * pi + 1, d + 1);
    fill_perfect(c, r, 2 * pi + 2, d + 1);
}

static double fill_mean(const gnode_t *g, const double *cover, double *mean, uint32_t i)
{
    if (g[i].left < 0) return mean[i] = g[i].thr;
    uint32_t l = (uint32_t)g[i].left;
    double v = fill_mean(g, cover, mean, l) * cover[l] + fill_mean(g, cover, mean, l + 1) * cover[l + 1];
    return mean[i] = cover[i] != 0 ? v / cover[i] : 0.0;
}

/* 1 if the covers of a tree (n nodes) can weight its means: all finite and
 * not negative, splits above zero. For GBDT_F32 as floats, as XGBoost
 * holds them. */
static int covers_weigh(const gnode_t *nd, const double *cover, uint32_t n, gbdt_prec_t prec)
{
    for (uint32_t i = 0; i < n; i++) {
        double c = prec == GBDT_F32 ? (double)(float)cover[i] : cover[i];
        if (!(c >= 0) || isinf(c) || (nd[i].left >= 0 && !(c > 0))) return 0;
    }
    return 1;
}

/* E[node] for the approximate contributions below node i: mean[i] = the
 * mean of its children weighted by cover (by_count: by their leaf counts,
 * returned in *w), in float for GBDT_F32 with XGBoost's rounding steps. */
static double fill_amean(const gnode_t *nd, const double *cover, int by_count, gbdt_prec_t prec,
                         double *mean, uint32_t i, double *w)
{
    if (nd[i].left < 0) {
        *w = by_count ? 1.0 : cover[i];
        return mean[i] = nd[i].thr;
    }
    uint32_t l = (uint32_t)nd[i].left;
    double wl, wr;
    double ml = fill_amean(nd, cover, by_count, prec, mean, l, &wl);
    double mr = fill_amean(nd, cover, by_count, prec, mean, l + 1, &wr);
    double wn = by_count ? wl + wr : cover[i];
    *w = wn;
    if (prec == GBDT_F32) {
        float r = (float)ml * (float)wl;
        r += (float)mr * (float)wr;
        r /= (float)wn;
        return mean[i] = r;
    }
    return mean[i] = (ml * wl + mr * wr) / wn;
}

/* Cuts the perfect trees into runs (see run_t), sizes the pools and fills
 * them; the other trees go to the end of the schedule. */
static void build_perfect(gbdt_t *g)
{
    g->sched = weir_malloc((g->ntrees ? g->ntrees : 1) * sizeof *g->sched);
    g->runs = weir_malloc((g->ntrees ? g->ntrees : 1) * sizeof *g->runs);
    uint32_t k = 0;
    size_t np = 0, nl = 0;
    g->nruns = 0;
    for (uint32_t d = 1; d <= PERFECT_MAX_DEPTH; d++) {
        run_t *run = NULL;
        uint32_t left = 0; /* trees of depth d not yet placed */
        for (uint32_t t = 0; t < g->ntrees; t++) left += g->trees[t].poff >= 0 && g->trees[t].pdepth == d;
        uint32_t size = 0; /* size of the current run */
        for (uint32_t t = 0; t < g->ntrees; t++) {
            tree_t *tr = &g->trees[t];
            if (tr->poff < 0 || tr->pdepth != d) continue;
            if (!run || run->cnt == size) {
                /* runs of INTERLEAVE, then of the powers of two that make up the rest */
                size = INTERLEAVE;
                while (size > left) size /= 2;
                if (run) {
                    np += (size_t)run->cnt * ((1u << (d - 1)) - 1);
                    nl += (size_t)run->cnt << (d - 1);
                }
                run = &g->runs[g->nruns++];
                run->first = k;
                run->cnt = 0;
                run->pdepth = d;
                run->noff = np;
                run->loff = nl;
            }
            tr->poff = (int32_t)(run - g->runs);
            run->cnt++;
            left--;
            g->sched[k++] = t;
        }
        if (run) {
            np += (size_t)run->cnt * ((1u << (d - 1)) - 1);
            nl += (size_t)run->cnt << (d - 1);
        }
    }
    g->nsched_perfect = k;
    for (uint32_t t = 0; t < g->ntrees; t++)
        if (g->trees[t].poff < 0) g->sched[k++] = t;
    g->in_order = g->nsched_perfect == g->ntrees;
    for (uint32_t t = 0; t < g->ntrees; t++) g->in_order &= g->sched[t] == t;

    size_t psz = g->prec == GBDT_F32 ? sizeof(pnode32_t) : sizeof(pnode64_t);
    size_t lsz = g->prec == GBDT_F32 ? sizeof(pfat32_t) : sizeof(pfat64_t);
    g->pnodes = weir_calloc(np ? np : 1, psz);
    g->leaves = weir_calloc(nl ? nl : 1, lsz);
    g->pleaf = weir_calloc(nl ? 2 * nl : 1, sizeof *g->pleaf);
    g->npnodes = np;
    g->nleaves = nl;
    for (uint32_t r = 0; r < g->nruns; r++) {
        const run_t *run = &g->runs[r];
        for (uint32_t j = 0; j < run->cnt; j++) {
            const tree_t *tr = &g->trees[g->sched[run->first + j]];
            fill_ctx_t c = {g->gnodes + tr->goff,
                            run->pdepth,
                            g->nfeat,
                            run->cnt,
                            j,
                            g->prec,
                            (char *)g->pnodes + run->noff * psz,
                            (char *)g->leaves + run->loff * lsz,
                            g->pleaf + 2 * run->loff,
                            tr->goff};
            fill_perfect(&c, 0, 0, 0);
        }
    }
}

/* The terms of every leaf for the approximate contributions (see
 * Explanations), computed with the very operations the walk would do at
 * each step, in the same order. */
typedef struct aterm_ctx {
    gbdt_t *g;
    const tree_t *tr;
    double scale;   /* GBDT_F64: 1 / average_by, or 1 */
    uint32_t *feat; /* [depth] the features split on along the path so far */
    double *d64;    /* [depth] GBDT_F64: each step's scaled change */
    float *d32;     /* [depth] GBDT_F32: each step's change */
    size_t cap;     /* terms allocated */
    size_t limit;   /* terms allowed (see build_aterms); past it, building stops */
} aterm_ctx_t;

static void *aterm_slot(aterm_ctx_t *c, size_t tsz)
{
    gbdt_t *g = c->g;
    if (g->naterms == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        g->aterms = weir_realloc(g->aterms, c->cap * tsz);
    }
    return (char *)g->aterms + g->naterms++ * tsz;
}

static void aterm_leaves(aterm_ctx_t *c, uint32_t i, uint32_t depth)
{
    gbdt_t *g = c->g;
    const gnode_t *nd = g->gnodes + c->tr->goff;
    if (g->naterms > c->limit) return;
    if (nd[i].left >= 0) {
        c->feat[depth] = nd[i].feat;
        for (uint32_t side = 0; side < 2; side++) {
            uint32_t ch = (uint32_t)nd[i].left + side;
            /* approx_trees32's tmp[f] += nv - mv; approx_tree64's
             * (mean[i] - mv) * scale. */
            c->d32[depth] = nd[ch].amean - nd[i].amean;
            c->d64[depth] = (g->mean[c->tr->goff + ch] - g->mean[c->tr->goff + i]) * c->scale;
            aterm_leaves(c, ch, depth + 1);
        }
        return;
    }
    apath_t *p = &g->apath[c->tr->goff + i];
    p->off = (uint32_t)g->naterms;
    if (g->prec == GBDT_F64) {
        for (uint32_t k = 0; k < depth; k++) {
            aterm64_t *t = aterm_slot(c, sizeof *t);
            *t = (aterm64_t){c->feat[k], 0, c->d64[k]};
        }
    } else {
        /* One term per feature, in the order of first appearance, its steps
         * summed from +0 in path order — as tmp[] holds them. */
        for (uint32_t k = 0; k < depth; k++) {
            size_t j = p->off;
            while (j < g->naterms && ((aterm32_t *)g->aterms)[j].feat != c->feat[k])
                j++;
            if (j == g->naterms)
                *(aterm32_t *)aterm_slot(c, sizeof(aterm32_t)) = (aterm32_t){c->feat[k], 0.0f};
            ((aterm32_t *)g->aterms)[j].v += c->d32[k];
        }
    }
    p->n = (uint32_t)(g->naterms - p->off);
}

static size_t aterm_size(const gbdt_t *g)
{
    return g->prec == GBDT_F32 ? sizeof(aterm32_t) : sizeof(aterm64_t);
}

static size_t aterms_memory(const gbdt_t *g)
{
    return g->apath ? g->naterms * aterm_size(g) + g->ngnodes * sizeof(apath_t) : 0;
}

/* Builds the tables unless they would take more than four times the
 * general layout (deep, unbalanced trees: a leaf's terms grow with its
 * depth), in which case the contributions walk the paths instead. */
static void build_aterms(gbdt_t *g)
{
    aterm_ctx_t c = {.g = g, .scale = g->average_by ? 1.0 / g->average_by : 1.0};
    c.limit = (4 * (size_t)g->ngnodes * sizeof(gnode_t) + 65536) / aterm_size(g);
    if (c.limit > UINT32_MAX) c.limit = UINT32_MAX;
    c.feat = weir_malloc((g->max_depth + 1) * sizeof *c.feat);
    c.d64 = weir_malloc((g->max_depth + 1) * sizeof *c.d64);
    c.d32 = weir_malloc((g->max_depth + 1) * sizeof *c.d32);
    g->apath = weir_calloc(g->ngnodes ? g->ngnodes : 1, sizeof *g->apath);
    for (uint32_t t = 0; t < g->ntrees; t++) {
        c.tr = &g->trees[t];
        aterm_leaves(&c, 0, 0);
    }
    weir_free(c.feat);
    weir_free(c.d64);
    weir_free(c.d32);
    if (g->naterms > c.limit) { /* stopped early: too large */
        weir_free(g->aterms);
        weir_free(g->apath);
        g->aterms = NULL;
        g->apath = NULL;
        g->naterms = 0;
    }
}

int gbdt_builder_finish(gbdt_builder_t *b, const double *base, uint32_t average_by, gbdt_t **out,
                        char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    gbdt_t *g = weir_calloc(1, sizeof *g);
    g->prec = b->prec;
    g->nfeat = b->nfeat;
    g->ngroups = b->ngroups;
    g->ntrees = b->ntrees;
    g->average_by = average_by;
    g->trees = b->trees;
    g->gnodes = b->gnodes;
    g->cover = b->cover;
    g->ngnodes = b->ngnodes;
    g->cats = b->cats;
    g->ncats = b->ncats;
    b->trees = NULL;
    b->gnodes = NULL;
    b->cover = NULL;
    b->cats = NULL;
    gbdt_builder_free(b);

    g->base = weir_calloc(g->ngroups, sizeof *g->base);
    g->bias = weir_calloc(g->ngroups, sizeof *g->bias);
    for (uint32_t k = 0; k < g->ngroups; k++)
        g->base[k] = g->prec == GBDT_F32 ? (double)(float)base[k] : base[k];

    /* Decide which trees get the perfect layout. */
    for (uint32_t t = 0; t < g->ntrees; t++) {
        tree_t *tr = &g->trees[t];
        if (tr->depth > g->max_depth) g->max_depth = tr->depth;
        uint32_t leaves = (tr->nnodes + 1) / 2;
        if (tr->poff == 0 && tr->depth <= PERFECT_MAX_DEPTH &&
            (1u << tr->depth) <= 8u * leaves) {
            tr->pdepth = tr->depth ? tr->depth : 1;
            g->nperfect++;
        } else {
            tr->poff = -1;
        }
    }
    g->mean = weir_calloc(g->ngnodes ? g->ngnodes : 1, sizeof *g->mean);
    for (uint32_t k = 0; k < g->ngroups; k++) g->bias[k] = 0;
    for (uint32_t t = 0; t < g->ntrees; t++) {
        tree_t *tr = &g->trees[t];
        const gnode_t *gn = g->gnodes + tr->goff;
        g->bias[tr->group] += fill_mean(gn, g->cover + tr->goff, g->mean + tr->goff, 0);
    }
    for (uint32_t k = 0; k < g->ngroups; k++) {
        if (g->average_by) g->bias[k] /= g->average_by;
        g->bias[k] += g->base[k];
    }
    /* The approximate contributions' E[] replaces the exact path's, used
     * above for its bias only. Bias: per group, the root means in model
     * order, then the base (XGBoost adds base_score last). */
    g->abias = weir_calloc(g->ngroups, sizeof *g->abias);
    float *abias32 = weir_calloc(g->ngroups, sizeof *abias32);
    for (uint32_t t = 0; t < g->ntrees; t++) {
        const tree_t *tr = &g->trees[t];
        const gnode_t *gn = g->gnodes + tr->goff;
        const double *cov = g->cover + tr->goff;
        int by_count = !covers_weigh(gn, cov, tr->nnodes, g->prec);
        double w, root = fill_amean(gn, cov, by_count, g->prec, g->mean + tr->goff, 0, &w);
        for (uint32_t i = 0; i < tr->nnodes; i++)
            g->gnodes[tr->goff + i].amean = (float)g->mean[tr->goff + i];
        abias32[tr->group] += (float)root;
        g->abias[tr->group] += root;
    }
    for (uint32_t k = 0; k < g->ngroups; k++) {
        if (g->prec == GBDT_F32) {
            float a = abias32[k];
            g->abias[k] = g->average_by ? (double)(a / (float)g->average_by + (float)g->base[k])
                                        : (double)(a + (float)g->base[k]);
        } else {
            if (g->average_by) g->abias[k] /= g->average_by;
            g->abias[k] += g->base[k];
        }
    }
    weir_free(abias32);
    build_perfect(g);
    build_aterms(g);
    *out = g;
    return 0;
}

void gbdt_free(gbdt_t *g)
{
    if (!g) return;
    weir_free(g->base);
    weir_free(g->bias);
    weir_free(g->abias);
    weir_free(g->trees);
    weir_free(g->gnodes);
    weir_free(g->cover);
    weir_free(g->mean);
    weir_free(g->cats);
    weir_free(g->pnodes);
    weir_free(g->leaves);
    weir_free(g->sched);
    weir_free(g->runs);
    weir_free(g->pleaf);
    weir_free(g->aterms);
    weir_free(g->apath);
    weir_free(g);
}

uint32_t gbdt_num_trees(const gbdt_t *g) { return g->ntrees; }
uint32_t gbdt_num_features(const gbdt_t *g) { return g->nfeat; }
uint32_t gbdt_num_groups(const gbdt_t *g) { return g->ngroups; }
uint32_t gbdt_max_depth(const gbdt_t *g) { return g->max_depth; }
uint32_t gbdt_num_perfect(const gbdt_t *g) { return g->nperfect; }
gbdt_prec_t gbdt_precision(const gbdt_t *g) { return g->prec; }

size_t gbdt_memory(const gbdt_t *g)
{
    size_t psz = g->prec == GBDT_F32 ? sizeof(pnode32_t) : sizeof(pnode64_t);
    size_t lsz = g->prec == GBDT_F32 ? sizeof(pfat32_t) : sizeof(pfat64_t);
    return sizeof *g + g->ntrees * sizeof(tree_t) +
           g->ngnodes * (sizeof(gnode_t) + 2 * sizeof(double)) + g->ncats * sizeof(uint32_t) +
           g->npnodes * psz + g->nleaves * (lsz + 2 * sizeof(uint32_t)) +
           g->ntrees * sizeof(uint32_t) + g->nruns * sizeof(run_t) + aterms_memory(g);
}

/* ---- general layout ---------------------------------------------------- */

/* Indexes the model's one category array rather than taking a pointer to the
 * node's set first: a categorical node the loader gave no set (an XGBoost
 * split_type 1 node missing from categories_nodes) has cat_words 0 in a
 * model whose g->cats may be NULL, and NULL + 0 is undefined in C. */
static inline int cat_member(const uint32_t *cats, uint32_t off, uint32_t nwords, uint32_t c)
{
    return c / 32 < nwords && ((cats[off + c / 32] >> (c % 32)) & 1u);
}

/* 1 if x goes right at split node n. */
static inline int go_right(const gbdt_t *g, const gnode_t *n, double x)
{
    switch (n->kind) {
    case GBDT_NUM:
        if (isnan(x)) return !n->missing_left;
        return !(x < n->thr);
    case GBDT_NUM_ZERO:
        if (isnan(x) || fabs(x) <= 1e-35) return !n->missing_left;
        return !(x < n->thr);
    case GBDT_CAT_XGB:
        if (isnan(x)) return !n->missing_left;
        if (x < 0 || x >= 4294967296.0) return 0;
        return cat_member(g->cats, n->cat_off, n->cat_words, (uint32_t)x);
    default: /* GBDT_CAT_LGBM */
        if (isnan(x) || x <= -1.0 || x >= 2147483648.0) return 1;
        return !cat_member(g->cats, n->cat_off, n->cat_words, (uint32_t)(int32_t)x);
    }
}

static inline double walk_general(const gbdt_t *g, const tree_t *t, const double *x)
{
    const gnode_t *nodes = g->gnodes + t->goff;
    uint32_t i = 0;
    while (nodes[i].left >= 0) i = (uint32_t)nodes[i].left + (uint32_t)go_right(g, &nodes[i], x[nodes[i].feat]);
    return nodes[i].thr;
}

/* ---- scoring ----------------------------------------------------------- */

/* The row a perfect walk reads: nfeat values, then the same values with a
 * missing one replaced by +inf. A node whose missing values go right reads
 * the second half, where x >= thr holds for a missing value (+inf >= any
 * threshold), a node whose missing values go left reads the first, where
 * NaN >= thr is false; present values are the same in both halves. So one
 * comparison decides every step, with no test for NaN. */
static inline void widen32(const double *restrict x, uint32_t F, float *restrict xa,
                           double *restrict xr)
{
    uint32_t f = 0;
#ifdef __SSE2__
    const __m128 inf = _mm_set1_ps(INFINITY);
    for (; f + 4 <= F; f += 4) {
        __m128 lo = _mm_cvtpd_ps(_mm_loadu_pd(x + f)), hi = _mm_cvtpd_ps(_mm_loadu_pd(x + f + 2));
        __m128 v = _mm_movelh_ps(lo, hi);
        __m128 nan = _mm_cmpunord_ps(v, v);
        _mm_storeu_ps(xa + f, v);
        _mm_storeu_ps(xa + F + f, _mm_or_ps(_mm_andnot_ps(nan, v), _mm_and_ps(nan, inf)));
    }
#endif
    for (; f < F; f++) {
        xa[f] = (float)x[f];
        xa[F + f] = isnan(xa[f]) ? INFINITY : xa[f];
    }
    if (F == 0) xa[0] = xa[1] = 0; /* read by a padding node that tests nothing */
    if (xr)
        for (f = 0; f < F; f++) xr[f] = xa[f];
}

static inline void widen64(const double *restrict x, uint32_t F, double *restrict xa)
{
    uint32_t f = 0;
#ifdef __SSE2__
    const __m128d inf = _mm_set1_pd(INFINITY);
    for (; f + 2 <= F; f += 2) {
        __m128d v = _mm_loadu_pd(x + f);
        __m128d nan = _mm_cmpunord_pd(v, v);
        _mm_storeu_pd(xa + f, v);
        _mm_storeu_pd(xa + F + f, _mm_or_pd(_mm_andnot_pd(nan, v), _mm_and_pd(nan, inf)));
    }
#endif
    for (; f < F; f++) {
        xa[f] = x[f];
        xa[F + f] = isnan(x[f]) ? INFINITY : x[f];
    }
    if (F == 0) xa[0] = xa[1] = 0;
}

/* Values in a widened row: 2 * nfeat, at least 2 (see widen32). */
static inline size_t wide_len(const gbdt_t *g) { return 2 * (size_t)(g->nfeat ? g->nfeat : 1); }

/* One step of a perfect walk: 1 if the row goes right at node n. */
#define STEP(n, x) ((uint32_t)((x)[(n)->fb] >= (n)->thr))

/* Walks the K trees of one run (K = its cnt, a power of two) for the
 * widened row x: leaf[k] = the leaf of its k-th tree, or with sum set, the
 * leaves added to *sum in lane order (one group, walk order = model order),
 * or with slot set, slot[k] = where its k-th tree ends: 2j + side for the
 * run's last-level node j (pleaf's numbering).
 *
 * The lanes are unrolled with K a constant, so the K walks are independent
 * chains of loads that the CPU overlaps, and each keeps its position as a
 * byte offset o = h * K * sizeof(node) into the run, so that a step is
 *
 *     load fb; load x[fb]; compare with thr; o = 2o + 2S - (x < thr ? S : 0)
 *
 * (S = K * sizeof(node); "x < thr" here is !(x >= thr), true for NaN), six
 * instructions with both loads addressed straight from o. The thresholds
 * and the feature indices are read through two bases (the same array, 4 or
 * 8 bytes apart) passed in from outside: a compiler that sees one base
 * computes the node address into a register first, one more instruction
 * per step. noinline keeps it from seeing through. */
#define RUN_WALK(NAME, PNODE, PFAT, LEAF, K)                                                  \
    __attribute__((noinline)) static void NAME(const char *thr_base, const char *fb_base,    \
                                               const PFAT *pf, uint32_t P, const LEAF *x,     \
                                               LEAF *leaf, LEAF *sum, uint32_t *slot)         \
    {                                                                                         \
        const size_t S = K * sizeof(PNODE);                                                   \
        size_t o[K];                                                                          \
        _Pragma("GCC unroll 16") for (uint32_t k = 0; k < K; k++) o[k] = 0;                   \
        for (uint32_t d = 1; d < P; d++) {                                                    \
            _Pragma("GCC unroll 16") for (uint32_t k = 0; k < K; k++) {                       \
                size_t at = o[k] + k * sizeof(PNODE);                                         \
                uint32_t fb = *(const uint32_t *)(fb_base + at);                              \
                LEAF thr = *(const LEAF *)(thr_base + at);                                    \
                size_t lt = !(x[fb] >= thr);                                                  \
                o[k] = 2 * o[k] + 2 * S + (-lt & -S);                                         \
            }                                                                                 \
        }                                                                                     \
        /* The last level: fat node j = h - first of lane k is at byte                      \
         * (j * K + k) * 2 * sizeof(node) = 2o - 2S * first + k * sizeof(fat). */            \
        const char *fat = (const char *)pf;                                                   \
        size_t skip = 2 * S * (((size_t)1 << (P - 1)) - 1);                                   \
        if (sum) {                                                                            \
            LEAF a = *sum;                                                                    \
            _Pragma("GCC unroll 16") for (uint32_t k = 0; k < K; k++) {                       \
                const PFAT *f = (const PFAT *)(fat + (2 * o[k] - skip) + k * sizeof(PFAT));   \
                a += f->leaf[STEP(f, x)];                                                     \
            }                                                                                 \
            *sum = a;                                                                         \
            return;                                                                           \
        }                                                                                     \
        if (slot) {                                                                           \
            _Pragma("GCC unroll 16") for (uint32_t k = 0; k < K; k++) {                       \
                size_t j = (2 * o[k] - skip) / sizeof(PFAT) + k;                              \
                slot[k] = (uint32_t)(2 * j + STEP((const PFAT *)fat + j, x));                 \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        _Pragma("GCC unroll 16") for (uint32_t k = 0; k < K; k++) {                           \
            const PFAT *f = (const PFAT *)(fat + (2 * o[k] - skip) + k * sizeof(PFAT));       \
            leaf[k] = f->leaf[STEP(f, x)];                                                    \
        }                                                                                     \
    }

_Static_assert(sizeof(pfat32_t) == 2 * sizeof(pnode32_t), "fat nodes are two nodes wide");
_Static_assert(sizeof(pfat64_t) == 2 * sizeof(pnode64_t), "fat nodes are two nodes wide");

RUN_WALK(walk32_16, pnode32_t, pfat32_t, float, 16)
RUN_WALK(walk32_8, pnode32_t, pfat32_t, float, 8)
RUN_WALK(walk32_4, pnode32_t, pfat32_t, float, 4)
RUN_WALK(walk32_2, pnode32_t, pfat32_t, float, 2)
RUN_WALK(walk32_1, pnode32_t, pfat32_t, float, 1)
RUN_WALK(walk64_16, pnode64_t, pfat64_t, double, 16)
RUN_WALK(walk64_8, pnode64_t, pfat64_t, double, 8)
RUN_WALK(walk64_4, pnode64_t, pfat64_t, double, 4)
RUN_WALK(walk64_2, pnode64_t, pfat64_t, double, 2)
RUN_WALK(walk64_1, pnode64_t, pfat64_t, double, 1)

#define RUN_DISPATCH(NAME, PNODE, PFAT, LEAF, W)                                              \
    static inline void NAME(const gbdt_t *g, const run_t *run, const LEAF *x, LEAF *leaf,    \
                            LEAF *sum, uint32_t *slot)                                        \
    {                                                                                         \
        const char *tb = (const char *)((const PNODE *)g->pnodes + run->noff);                \
        const char *fb = tb + offsetof(PNODE, fb);                                            \
        const PFAT *pf = (const PFAT *)g->leaves + run->loff;                                 \
        switch (run->cnt) {                                                                   \
        case 16: W##_16(tb, fb, pf, run->pdepth, x, leaf, sum, slot); break;                  \
        case 8: W##_8(tb, fb, pf, run->pdepth, x, leaf, sum, slot); break;                    \
        case 4: W##_4(tb, fb, pf, run->pdepth, x, leaf, sum, slot); break;                    \
        case 2: W##_2(tb, fb, pf, run->pdepth, x, leaf, sum, slot); break;                    \
        default: W##_1(tb, fb, pf, run->pdepth, x, leaf, sum, slot); break;                   \
        }                                                                                     \
    }

RUN_DISPATCH(run_walk32, pnode32_t, pfat32_t, float, walk32)
RUN_DISPATCH(run_walk64, pnode64_t, pfat64_t, double, walk64)

/* The margins of one row. xa is the widened row, xr the row for the general
 * layout; acc[ngroups] holds the starting margins and receives the tree
 * sums. When the walk order is model order the leaves are added as they
 * come, else they land in val[ntrees] and are added afterwards in model
 * order: either way the float sum is the one of a plain tree loop. */
#define ROW_SUM(NAME, LEAF, RUN_WALK)                                                         \
    static void NAME(const gbdt_t *g, const LEAF *xa, const double *xr, LEAF *acc, LEAF *val) \
    {                                                                                         \
        LEAF leaf[INTERLEAVE];                                                                \
        for (uint32_t r = 0; r < g->nruns; r++) {                                             \
            const run_t *run = &g->runs[r];                                                   \
            const uint32_t *ids = g->sched + run->first;                                      \
            int one = g->in_order && g->ngroups == 1;                                         \
            RUN_WALK(g, run, xa, leaf, one ? acc : NULL, NULL);                               \
            if (one)                                                                          \
                continue;                                                                     \
            else if (!g->in_order)                                                            \
                for (uint32_t k = 0; k < run->cnt; k++) val[ids[k]] = leaf[k];                \
            else                                                                              \
                for (uint32_t k = 0; k < run->cnt; k++) acc[g->trees[ids[k]].group] += leaf[k]; \
        }                                                                                     \
        if (g->in_order) return;                                                              \
        for (uint32_t k = g->nsched_perfect; k < g->ntrees; k++) {                            \
            uint32_t t = g->sched[k];                                                         \
            val[t] = (LEAF)walk_general(g, &g->trees[t], xr);                                 \
        }                                                                                     \
        if (g->ngroups == 1) {                                                                \
            LEAF a = acc[0];                                                                  \
            for (uint32_t t = 0; t < g->ntrees; t++) a += val[t];                             \
            acc[0] = a;                                                                       \
        } else {                                                                              \
            for (uint32_t t = 0; t < g->ntrees; t++) acc[g->trees[t].group] += val[t];        \
        }                                                                                     \
    }

ROW_SUM(row_sum32, float, run_walk32)
ROW_SUM(row_sum64, double, run_walk64)

#define ROW_STACK 256

void gbdt_predict_row(const gbdt_t *g, const double *x, double *out)
{
    uint32_t F = g->nfeat, G = g->ngroups, T = g->ntrees;
    int small = F <= ROW_STACK && G <= 64 && T <= 1024;
    if (g->prec == GBDT_F32) {
        /* F32: the row rounded to float, widened; as doubles for the
         * general layout (a float widened to double compares the same). */
        float xa_s[2 * ROW_STACK], acc_s[64], val_s[1024];
        double xr_s[ROW_STACK];
        float *xa = small ? xa_s : weir_malloc(wide_len(g) * sizeof *xa);
        double *xr = small ? xr_s : weir_malloc((size_t)F * sizeof *xr + 1);
        float *acc = small ? acc_s : weir_malloc((size_t)G * sizeof *acc);
        float *val = small ? val_s : weir_malloc((size_t)T * sizeof *val + 1);
        widen32(x, F, xa, g->in_order ? NULL : xr);
        for (uint32_t k = 0; k < G; k++) acc[k] = g->average_by ? 0.0f : (float)g->base[k];
        row_sum32(g, xa, xr, acc, val);
        for (uint32_t k = 0; k < G; k++)
            out[k] = g->average_by ? (double)(acc[k] / (float)g->average_by + (float)g->base[k])
                                   : acc[k];
        if (!small) {
            weir_free(xa);
            weir_free(xr);
            weir_free(acc);
            weir_free(val);
        }
        return;
    }
    double xa_s[2 * ROW_STACK], acc_s[64], val_s[1024];
    double *xa = small ? xa_s : weir_malloc(wide_len(g) * sizeof *xa);
    double *acc = small ? acc_s : weir_malloc((size_t)G * sizeof *acc);
    double *val = small ? val_s : weir_malloc((size_t)T * sizeof *val + 1);
    widen64(x, F, xa);
    for (uint32_t k = 0; k < G; k++) acc[k] = g->average_by ? 0.0 : g->base[k];
    row_sum64(g, xa, x, acc, val);
    for (uint32_t k = 0; k < G; k++)
        out[k] = g->average_by ? acc[k] / g->average_by + g->base[k] : acc[k];
    if (!small) {
        weir_free(xa);
        weir_free(acc);
        weir_free(val);
    }
}

/* One block of nb <= BLOCK_ROWS widened rows (row r at xa + r * wide_len, for the
 * general layout at xr[r]), margins added into acc[r * G + group]. Run by
 * run, each run walked by every row of the block while its nodes are in
 * cache. As for one row, the leaves are added as they come when the walk
 * order is model order, else collected in val[r * T + tree] and added in
 * model order at the end. */
#define BLOCK(NAME, LEAF, RUN_WALK)                                                           \
    static void NAME(const gbdt_t *g, const LEAF *xa, const double *const *xr, uint32_t nb,   \
                     LEAF *acc, LEAF *val)                                                    \
    {                                                                                         \
        uint32_t G = g->ngroups, T = g->ntrees;                                               \
        size_t F2 = wide_len(g);                                                              \
        LEAF leaf[INTERLEAVE];                                                                \
        for (uint32_t i = 0; i < g->nruns; i++) {                                             \
            const run_t *run = &g->runs[i];                                                   \
            const uint32_t *ids = g->sched + run->first;                                      \
            for (uint32_t r = 0; r < nb; r++) {                                               \
                int one = g->in_order && G == 1;                                              \
                RUN_WALK(g, run, xa + r * F2, leaf, one ? acc + r : NULL, NULL);              \
                if (one) {                                                                    \
                    continue;                                                                 \
                } else if (!g->in_order) {                                                    \
                    for (uint32_t k = 0; k < run->cnt; k++) val[(size_t)r * T + ids[k]] = leaf[k]; \
                } else {                                                                      \
                    for (uint32_t k = 0; k < run->cnt; k++)                                   \
                        acc[(size_t)r * G + g->trees[ids[k]].group] += leaf[k];               \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        if (g->in_order) return;                                                              \
        for (uint32_t k = g->nsched_perfect; k < T; k++) {                                    \
            uint32_t t = g->sched[k];                                                         \
            for (uint32_t r = 0; r < nb; r++)                                                 \
                val[(size_t)r * T + t] = (LEAF)walk_general(g, &g->trees[t], xr[r]);          \
        }                                                                                     \
        for (uint32_t r = 0; r < nb; r++) {                                                   \
            const LEAF *v = val + (size_t)r * T;                                              \
            if (G == 1) {                                                                     \
                LEAF a = acc[r];                                                              \
                for (uint32_t t = 0; t < T; t++) a += v[t];                                   \
                acc[r] = a;                                                                   \
            } else {                                                                          \
                for (uint32_t t = 0; t < T; t++) acc[(size_t)r * G + g->trees[t].group] += v[t]; \
            }                                                                                 \
        }                                                                                     \
    }

BLOCK(block32, float, run_walk32)
BLOCK(block64, double, run_walk64)

void gbdt_predict_batch(const gbdt_t *g, const double *x, size_t n, size_t stride, double *out)
{
    uint32_t F = g->nfeat, G = g->ngroups, T = g->ntrees;
    size_t lsz = g->prec == GBDT_F32 ? sizeof(float) : sizeof(double), W = wide_len(g);
    /* Rows per block: BLOCK_ROWS, fewer when leaves are collected per tree
     * so that the collection stays within about 256 KiB. */
    size_t rows = BLOCK_ROWS;
    if (!g->in_order)
        while (rows > 4 && rows * T * lsz > 256 * 1024) rows /= 2;
    const double *xr[BLOCK_ROWS];
    double *rscratch = NULL; /* F32: rows rounded to float, as doubles, for the general layout */
    if (g->prec == GBDT_F32 && !g->in_order)
        rscratch = weir_malloc(rows * F * sizeof *rscratch + 1);
    void *xa = weir_malloc(rows * W * lsz);
    void *acc = weir_malloc(rows * G * lsz);
    void *val = g->in_order ? NULL : weir_malloc(rows * T * lsz + 1);
    for (size_t r0 = 0; r0 < n; r0 += rows) {
        uint32_t nb = (uint32_t)(n - r0 < rows ? n - r0 : rows);
        double *o = out + r0 * G;
        if (g->prec == GBDT_F32) {
            float *a = acc;
            for (uint32_t r = 0; r < nb; r++) {
                const double *src = x + (r0 + r) * stride;
                double *dst = rscratch ? rscratch + (size_t)r * F : NULL;
                widen32(src, F, (float *)xa + r * W, dst);
                xr[r] = dst;
                for (uint32_t k = 0; k < G; k++) a[r * G + k] = g->average_by ? 0.0f : (float)g->base[k];
            }
            block32(g, xa, xr, nb, a, val);
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) {
                    float v = a[r * G + k];
                    o[r * G + k] = g->average_by ? (double)(v / (float)g->average_by + (float)g->base[k]) : v;
                }
        } else {
            double *a = acc;
            for (uint32_t r = 0; r < nb; r++) {
                const double *src = x + (r0 + r) * stride;
                widen64(src, F, (double *)xa + r * W);
                xr[r] = src;
                for (uint32_t k = 0; k < G; k++) a[r * G + k] = g->average_by ? 0.0 : g->base[k];
            }
            block64(g, xa, xr, nb, a, val);
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) {
                    double v = a[r * G + k];
                    o[r * G + k] = g->average_by ? v / g->average_by + g->base[k] : v;
                }
        }
    }
    weir_free(acc);
    weir_free(val);
    weir_free(xa);
    weir_free(rscratch);
}

/* ---- explanations: exact TreeSHAP (Lundberg et al., Algorithm 2) -------- */

typedef struct path_el {
    int64_t feat;
    double zero, one, w;
} path_el_t;

static void path_extend(path_el_t *p, uint32_t depth, double zero, double one, int64_t feat)
{
    p[depth].feat = feat;
    p[depth].zero = zero;
    p[depth].one = one;
    p[depth].w = depth == 0 ? 1.0 : 0.0;
    for (int64_t i = (int64_t)depth - 1; i >= 0; i--) {
        p[i + 1].w += one * p[i].w * (double)(i + 1) / (double)(depth + 1);
        p[i].w = zero * p[i].w * (double)(depth - i) / (double)(depth + 1);
    }
}

static void path_unwind(path_el_t *p, uint32_t depth, uint32_t pi)
{
    double one = p[pi].one, zero = p[pi].zero, next = p[depth].w;
    for (int64_t i = (int64_t)depth - 1; i >= 0; i--) {
        if (one != 0) {
            double tmp = p[i].w;
            p[i].w = next * (double)(depth + 1) / ((double)(i + 1) * one);
            next = tmp - p[i].w * zero * (double)(depth - i) / (double)(depth + 1);
        } else if (zero != 0) {
            p[i].w = p[i].w * (double)(depth + 1) / (zero * (double)(depth - i));
        }
    }
    for (uint32_t i = pi; i < depth; i++) {
        p[i].feat = p[i + 1].feat;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

static double path_unwound_sum(const path_el_t *p, uint32_t depth, uint32_t pi)
{
    double one = p[pi].one, zero = p[pi].zero, next = p[depth].w, total = 0;
    for (int64_t i = (int64_t)depth - 1; i >= 0; i--) {
        if (one != 0) {
            double tmp = next * (double)(depth + 1) / ((double)(i + 1) * one);
            total += tmp;
            next = p[i].w - tmp * zero * (double)(depth - i) / (double)(depth + 1);
        } else if (zero != 0) {
            total += p[i].w / zero / ((double)(depth - i) / (double)(depth + 1));
        }
    }
    return total;
}

typedef struct shap_ctx {
    const gbdt_t *g;
    const gnode_t *nodes;
    const double *cover;
    const double *x;
    double *phi;
    double scale;
} shap_ctx_t;

static void shap_recurse(const shap_ctx_t *c, uint32_t ni, path_el_t *parent, uint32_t depth,
                         double pzero, double pone, int64_t pfeat)
{
    path_el_t *p = parent + depth + 1;
    if (depth + 1 > 0) memcpy(p, parent, (depth + 1) * sizeof *p);
    path_extend(p, depth, pzero, pone, pfeat);
    const gnode_t *n = &c->nodes[ni];
    if (n->left < 0) {
        for (uint32_t i = 1; i <= depth; i++) {
            double w = path_unwound_sum(p, depth, i);
            c->phi[p[i].feat] += w * (p[i].one - p[i].zero) * n->thr * c->scale;
        }
        return;
    }
    uint32_t l = (uint32_t)n->left;
    uint32_t hot = l + (uint32_t)go_right(c->g, n, c->x[n->feat]);
    uint32_t cold = hot == l ? l + 1 : l;
    double w = c->cover[ni];
    double hot_zero = w != 0 ? c->cover[hot] / w : 0;
    double cold_zero = w != 0 ? c->cover[cold] / w : 0;
    double in_zero = 1, in_one = 1;
    uint32_t k = 1;
    while (k <= depth && p[k].feat != (int64_t)n->feat) k++;
    if (k <= depth) {
        in_zero = p[k].zero;
        in_one = p[k].one;
        path_unwind(p, depth, k);
        depth--;
    }
    shap_recurse(c, hot, p, depth + 1, hot_zero * in_zero, in_one, n->feat);
    shap_recurse(c, cold, p, depth + 1, cold_zero * in_zero, 0, n->feat);
}

void gbdt_contrib_row(const gbdt_t *g, const double *x, double *out)
{
    uint32_t F = g->nfeat, G = g->ngroups;
    double *xr = weir_malloc((F ? F : 1) * sizeof *xr);
    for (uint32_t f = 0; f < F; f++) xr[f] = g->prec == GBDT_F32 ? (double)(float)x[f] : x[f];
    memset(out, 0, (size_t)G * (F + 1) * sizeof *out);
    size_t D = g->max_depth + 2;
    path_el_t *path = weir_malloc((D * (D + 1) / 2 + D + 1) * sizeof *path);
    for (uint32_t t = 0; t < g->ntrees; t++) {
        const tree_t *tr = &g->trees[t];
        shap_ctx_t c = {g, g->gnodes + tr->goff, g->cover + tr->goff, xr,
                        out + (size_t)tr->group * (F + 1), g->average_by ? 1.0 / g->average_by : 1.0};
        shap_recurse(&c, 0, path, 0, 1, 1, -1);
    }
    for (uint32_t k = 0; k < G; k++) out[(size_t)k * (F + 1) + F] = g->bias[k];
    weir_free(path);
    weir_free(xr);
}

/* ---- explanations: approximate contributions (path attribution) -------- */

/* The contributions of LANES trees from t for row xr (rounded to float):
 * walks each tree's path, gives each split's feature E[child] - E[node],
 * summed per feature for the tree alone (a feature may split twice on the
 * path) and then added to acc in model order, as XGBoost's
 * CalculateContributionsApprox and PredictContribution do. The trees are
 * walked side by side so that their chains of loads overlap. tmp[LANES *
 * nfeat] is zero on entry and on return; fs[k] holds the features of lane
 * k's path (repeats included: the second time tmp[f] is 0 and adds
 * nothing), so a step has no branch of its own. */
#define LANES 8
static void approx_trees32(const gbdt_t *g, uint32_t t, uint32_t nl, const double *xr,
                           float *acc, float *tmp, uint32_t (*fs)[GBDT_MAX_DEPTH])
{
    uint32_t F = g->nfeat;
    const gnode_t *nodes[LANES];
    uint32_t i[LANES], np[LANES];
    float mv[LANES];
    for (uint32_t k = 0; k < nl; k++) {
        nodes[k] = g->gnodes + g->trees[t + k].goff;
        i[k] = 0;
        np[k] = 0;
        mv[k] = nodes[k][0].amean;
    }
    for (int more = 1; more;) {
        more = 0;
        for (uint32_t k = 0; k < nl; k++) {
            const gnode_t *n = &nodes[k][i[k]];
            if (n->left < 0) continue;
            uint32_t f = n->feat;
            i[k] = (uint32_t)n->left + (uint32_t)go_right(g, n, xr[f]);
            float nv = nodes[k][i[k]].amean;
            tmp[k * F + f] += nv - mv[k];
            fs[k][np[k]++] = f;
            mv[k] = nv;
            more = 1;
        }
    }
    for (uint32_t k = 0; k < nl; k++) {
        float *a = acc + (size_t)g->trees[t + k].group * (F + 1), *tk = tmp + k * F;
        for (uint32_t j = 0; j < np[k]; j++) {
            a[fs[k][j]] += tk[fs[k][j]];
            tk[fs[k][j]] = 0;
        }
    }
}

/* The same in double (LightGBM has no approximate mode to follow: sums go
 * straight into the row's, scaled for averaged forests). */
static void approx_tree64(const gbdt_t *g, const tree_t *tr, const double *x, double *acc,
                          double scale)
{
    const gnode_t *nodes = g->gnodes + tr->goff;
    const double *mean = g->mean + tr->goff;
    uint32_t i = 0;
    double mv = mean[0];
    while (nodes[i].left >= 0) {
        uint32_t f = nodes[i].feat;
        i = (uint32_t)nodes[i].left + (uint32_t)go_right(g, &nodes[i], x[f]);
        acc[f] += (mean[i] - mv) * scale;
        mv = mean[i];
    }
}

#define APPROX_STACK 1024

void gbdt_contrib_row_approx_walk(const gbdt_t *g, const double *x, double *out)
{
    uint32_t F = g->nfeat, G = g->ngroups;
    size_t n = (size_t)G * (F + 1);
    if (g->prec == GBDT_F64) {
        memset(out, 0, n * sizeof *out);
        double scale = g->average_by ? 1.0 / g->average_by : 1.0;
        for (uint32_t t = 0; t < g->ntrees; t++) {
            const tree_t *tr = &g->trees[t];
            approx_tree64(g, tr, x, out + (size_t)tr->group * (F + 1), scale);
        }
        for (uint32_t k = 0; k < G; k++) out[(size_t)k * (F + 1) + F] = g->abias[k];
        return;
    }
    /* Stack scratch for the usual sizes: this runs once per served event. */
    float acc_s[APPROX_STACK], tmp_s[LANES * ROW_STACK];
    double xr_s[ROW_STACK];
    uint32_t fs[LANES][GBDT_MAX_DEPTH];
    float *acc = n <= APPROX_STACK ? acc_s : weir_malloc(n * sizeof *acc);
    double *xr = F <= ROW_STACK ? xr_s : weir_malloc((size_t)F * sizeof *xr);
    float *tmp = F <= ROW_STACK ? tmp_s : weir_malloc((size_t)LANES * F * sizeof *tmp);
    for (uint32_t f = 0; f < F; f++) xr[f] = (double)(float)x[f];
    memset(tmp, 0, (size_t)LANES * F * sizeof *tmp);
    memset(acc, 0, n * sizeof *acc);
    for (uint32_t t = 0; t < g->ntrees; t += LANES)
        approx_trees32(g, t, g->ntrees - t < LANES ? g->ntrees - t : LANES, xr, acc, tmp, fs);
    if (g->average_by) /* not an XGBoost model: no order to follow */
        for (size_t i = 0; i < n; i++) acc[i] /= (float)g->average_by;
    for (size_t i = 0; i < n; i++) out[i] = acc[i];
    for (uint32_t k = 0; k < G; k++) out[(size_t)k * (F + 1) + F] = g->abias[k];
    if (acc != acc_s) weir_free(acc);
    if (xr != xr_s) weir_free(xr);
    if (tmp != tmp_s) weir_free(tmp);
}

/* By leaf: each tree's leaf is found the way predictions find it (runs of
 * perfect trees walked side by side without a branch, the rest through the
 * general layout), then the trees' terms are added in model order. The
 * terms are the walk's own per-tree sums (F32) or steps (F64), computed
 * once at build time by the same operations (aterm_leaves), and are added
 * in the walk's order, so the values are the walk's to the bit: within a
 * tree each feature gets one addition either way (the walk's repeats add
 * its tmp[f], then 0: +0 leaves a sum unchanged, and sums that start from
 * +0 never become -0). */
void gbdt_contrib_row_approx(const gbdt_t *g, const double *x, double *out)
{
    if (!g->apath) {
        gbdt_contrib_row_approx_walk(g, x, out);
        return;
    }
    uint32_t F = g->nfeat, G = g->ngroups, T = g->ntrees;
    size_t n = (size_t)G * (F + 1);
    int small = F <= ROW_STACK && T <= 1024 && n <= APPROX_STACK;
    uint32_t leaf_s[1024], slot[INTERLEAVE];
    double xa_s[2 * ROW_STACK], xr_s[ROW_STACK];
    float acc_s[APPROX_STACK];
    uint32_t *leaf = small ? leaf_s : weir_malloc((T ? T : 1) * sizeof *leaf);
    void *xa = small ? xa_s : weir_malloc(wide_len(g) * sizeof(double));
    double *xr = small ? xr_s : weir_malloc((F ? F : 1) * sizeof *xr);
    if (g->prec == GBDT_F32)
        widen32(x, F, xa, xr);
    else
        widen64(x, F, xa);
    const double *xg = g->prec == GBDT_F32 ? xr : x; /* the row the general layout reads */
    for (uint32_t r = 0; r < g->nruns; r++) {
        const run_t *run = &g->runs[r];
        if (g->prec == GBDT_F32)
            run_walk32(g, run, xa, NULL, NULL, slot);
        else
            run_walk64(g, run, xa, NULL, NULL, slot);
        for (uint32_t k = 0; k < run->cnt; k++)
            leaf[g->sched[run->first + k]] = g->pleaf[2 * run->loff + slot[k]];
    }
    for (uint32_t k = g->nsched_perfect; k < T; k++) {
        const tree_t *tr = &g->trees[g->sched[k]];
        const gnode_t *nodes = g->gnodes + tr->goff;
        uint32_t i = 0;
        while (nodes[i].left >= 0)
            i = (uint32_t)nodes[i].left + (uint32_t)go_right(g, &nodes[i], xg[nodes[i].feat]);
        leaf[g->sched[k]] = tr->goff + i;
    }
    if (g->prec == GBDT_F32) {
        float *acc = small ? acc_s : weir_malloc(n * sizeof *acc);
        memset(acc, 0, n * sizeof *acc);
        const aterm32_t *terms = g->aterms;
        for (uint32_t t = 0; t < T; t++) {
            float *a = acc + (size_t)g->trees[t].group * (F + 1);
            apath_t p = g->apath[leaf[t]];
            for (const aterm32_t *e = terms + p.off, *end = e + p.n; e < end; e++)
                a[e->feat] += e->v;
        }
        if (g->average_by) /* as the walk: not an XGBoost model, no order to follow */
            for (size_t i = 0; i < n; i++)
                acc[i] /= (float)g->average_by;
        for (size_t i = 0; i < n; i++)
            out[i] = acc[i];
        if (acc != acc_s) weir_free(acc);
    } else {
        memset(out, 0, n * sizeof *out);
        const aterm64_t *terms = g->aterms;
        for (uint32_t t = 0; t < T; t++) {
            double *a = out + (size_t)g->trees[t].group * (F + 1);
            apath_t p = g->apath[leaf[t]];
            for (const aterm64_t *e = terms + p.off, *end = e + p.n; e < end; e++)
                a[e->feat] += e->v;
        }
    }
    for (uint32_t k = 0; k < G; k++)
        out[(size_t)k * (F + 1) + F] = g->abias[k];
    if (!small) {
        weir_free(leaf);
        weir_free(xa);
        weir_free(xr);
    }
}
