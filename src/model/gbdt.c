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
 * split whose two subtrees both end in copies of that leaf), stored as an
 * implicit heap (children of i at 2i+1 and 2i+2) of 8-byte nodes (float
 * threshold, feature index with the missing-goes-right bit on top) for
 * float models, 16-byte ones for double models; the last level is stored
 * apart as "fat" nodes that hold the split and both leaf values, so the
 * final step reads one cache line. A walk is exactly D steps with no
 * data-dependent branch:
 *
 *     i = 2i + 1 + ((x >= thr) | (isnan(x) & missing_right))
 *
 * (rows without a missing value use the plain x >= thr). Single row: the
 * perfect trees are grouped by depth into runs of 16 walked level by level
 * together, 16 independent chains of loads in flight instead of one; the
 * leaf values land in a per-tree array that is then summed in model order.
 * Batch: tree-major over blocks of 64 rows, each tree walked by 64
 * independent chains while its nodes are in cache. Padding costs memory, so
 * a tree is made perfect only while 2^D <= 8 * leaves and D <= 12.
 *
 * Numerics. GBDT_F32 rounds inputs to float and adds float leaves to a float
 * accumulator in model tree order, as XGBoost's predictor does; GBDT_F64 does
 * the same in double, as LightGBM. Comparing a float-rounded input held in a
 * double with a float threshold widened to double gives the same answer as
 * the float comparison, so the general layout stores doubles for both.
 *
 * Invariants after gbdt_builder_add_tree: every split has two children in
 * range, every node is reached exactly once from the root, depth <=
 * GBDT_MAX_DEPTH, features < nfeat, no NaN threshold or leaf value, category
 * bitsets inside the pool. Scoring trusts them and never checks again. */
#include "model/gbdt.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

#define PERFECT_MAX_DEPTH 12
#define BLOCK_ROWS 64
#define INTERLEAVE 16
#define FEAT_MASK 0x7fffffffu
#define NAN_RIGHT 0x80000000u

typedef struct gnode {
    double thr;       /* split threshold, or the leaf value */
    uint32_t feat;
    int32_t left;     /* index of the left child within the tree; -1 for a leaf */
    uint8_t kind;
    uint8_t missing_left;
    uint32_t cat_off, cat_words;
} gnode_t;

typedef struct pnode32 {
    float thr;
    uint32_t fb; /* feature | NAN_RIGHT */
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

typedef struct tree {
    uint32_t group;
    uint32_t depth;
    uint32_t nnodes;
    uint32_t goff;    /* first general node */
    int32_t poff;     /* first perfect node, -1 if not perfect */
    uint32_t loff;    /* first last-level (fat) node */
    uint32_t pdepth;  /* levels of the perfect form: max(depth, 1) */
} tree_t;

struct gbdt {
    gbdt_prec_t prec;
    uint32_t nfeat, ngroups, ntrees, max_depth, nperfect;
    uint32_t average_by;
    double *base;     /* [ngroups] */
    double *bias;     /* [ngroups] base + expected tree output (explanations) */
    tree_t *trees;
    gnode_t *gnodes;
    double *cover;    /* per general node */
    double *mean;     /* per general node: expected output below it */
    uint32_t ngnodes;
    uint32_t *cats;
    uint32_t ncats;
    void *pnodes;     /* pnode32_t or pnode64_t: levels 0 .. pdepth - 2 */
    void *leaves;     /* pfat32_t or pfat64_t: level pdepth - 1 with the leaves */
    size_t npnodes, nleaves;
    /* Single-row schedule: the perfect trees sorted by depth (stable) and
     * cut into runs of up to INTERLEAVE trees of equal depth, walked level by
     * level together; the other trees are walked one by one. */
    uint32_t *sched;  /* tree ids: perfect ones by depth, then the others */
    uint32_t *runs;   /* start of each run in sched; nruns + 1 entries */
    uint32_t nruns;
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
    if (b->ncats + n > b->cap_cats) {
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
        if (isnan(s->value))
            return weir_errf(err, errlen, WEIR_ECORRUPT, "%s, node %u: leaf value is NaN", what, i);
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
        t->poff = all_num ? 0 : -1; /* eligibility; placed in finish */
        t->loff = 0;
        b->ngnodes += n;
    }
    weir_free(order);
    weir_free(newid);
    weir_free(depth);
    return rc;
}

/* Fills the perfect heap of P levels below general node gi (a leaf above
 * the last level is copied into both sides of a split that tests nothing). */
static void fill_perfect(const gnode_t *g, uint32_t gi, uint32_t pi, uint32_t d, uint32_t P,
                         gbdt_prec_t prec, void *pn, void *fat)
{
    uint32_t fb = 0, l = gi, r = gi;
    double thr = 0;
    if (g[gi].left >= 0) {
        fb = g[gi].feat | (g[gi].missing_left ? 0 : NAN_RIGHT);
        thr = g[gi].thr;
        l = (uint32_t)g[gi].left;
        r = l + 1;
    }
    if (d == P - 1) {
        weir_assert(g[l].left < 0 && g[r].left < 0);
        uint32_t j = pi - ((1u << (P - 1)) - 1);
        if (prec == GBDT_F32) {
            pfat32_t *f = (pfat32_t *)fat + j;
            f->thr = (float)thr;
            f->fb = fb;
            f->leaf[0] = (float)g[l].thr;
            f->leaf[1] = (float)g[r].thr;
        } else {
            pfat64_t *f = (pfat64_t *)fat + j;
            f->thr = thr;
            f->fb = fb;
            f->pad = 0;
            f->leaf[0] = g[l].thr;
            f->leaf[1] = g[r].thr;
        }
        return;
    }
    if (prec == GBDT_F32) {
        ((pnode32_t *)pn)[pi].thr = (float)thr;
        ((pnode32_t *)pn)[pi].fb = fb;
    } else {
        ((pnode64_t *)pn)[pi].thr = thr;
        ((pnode64_t *)pn)[pi].fb = fb;
        ((pnode64_t *)pn)[pi].pad = 0;
    }
    fill_perfect(g, l, 2 * pi + 1, d + 1, P, prec, pn, fat);
    fill_perfect(g, r, 2 * pi + 2, d + 1, P, prec, pn, fat);
}

static double fill_mean(const gnode_t *g, const double *cover, double *mean, uint32_t i)
{
    if (g[i].left < 0) return mean[i] = g[i].thr;
    uint32_t l = (uint32_t)g[i].left;
    double v = fill_mean(g, cover, mean, l) * cover[l] + fill_mean(g, cover, mean, l + 1) * cover[l + 1];
    return mean[i] = cover[i] != 0 ? v / cover[i] : 0.0;
}

static void build_schedule(gbdt_t *g)
{
    g->sched = weir_malloc((g->ntrees ? g->ntrees : 1) * sizeof *g->sched);
    g->runs = weir_malloc((g->ntrees + 2) * sizeof *g->runs);
    uint32_t k = 0;
    g->nruns = 0;
    for (uint32_t d = 0; d <= PERFECT_MAX_DEPTH; d++) {
        uint32_t in_run = 0;
        for (uint32_t t = 0; t < g->ntrees; t++) {
            if (g->trees[t].poff < 0 || g->trees[t].pdepth != d) continue;
            if (in_run == 0) g->runs[g->nruns++] = k;
            g->sched[k++] = t;
            if (++in_run == INTERLEAVE) in_run = 0;
        }
    }
    g->runs[g->nruns] = k;
    for (uint32_t t = 0; t < g->ntrees; t++)
        if (g->trees[t].poff < 0) g->sched[k++] = t;
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

    /* Decide which trees get the perfect layout and size the pools. */
    size_t np = 0, nl = 0;
    for (uint32_t t = 0; t < g->ntrees; t++) {
        tree_t *tr = &g->trees[t];
        if (tr->depth > g->max_depth) g->max_depth = tr->depth;
        uint32_t leaves = (tr->nnodes + 1) / 2;
        if (tr->poff == 0 && tr->depth <= PERFECT_MAX_DEPTH &&
            (1u << tr->depth) <= 8u * leaves) {
            tr->pdepth = tr->depth ? tr->depth : 1;
            tr->poff = (int32_t)np;
            tr->loff = (uint32_t)nl;
            np += (1u << (tr->pdepth - 1)) - 1;
            nl += 1u << (tr->pdepth - 1);
            g->nperfect++;
        } else {
            tr->poff = -1;
        }
    }
    size_t psz = g->prec == GBDT_F32 ? sizeof(pnode32_t) : sizeof(pnode64_t);
    size_t lsz = g->prec == GBDT_F32 ? sizeof(pfat32_t) : sizeof(pfat64_t);
    g->pnodes = weir_calloc(np ? np : 1, psz);
    g->leaves = weir_calloc(nl ? nl : 1, lsz);
    g->npnodes = np;
    g->nleaves = nl;
    g->mean = weir_calloc(g->ngnodes ? g->ngnodes : 1, sizeof *g->mean);
    for (uint32_t k = 0; k < g->ngroups; k++) g->bias[k] = 0;
    for (uint32_t t = 0; t < g->ntrees; t++) {
        tree_t *tr = &g->trees[t];
        const gnode_t *gn = g->gnodes + tr->goff;
        if (tr->poff >= 0) {
            char *pn = (char *)g->pnodes + (size_t)tr->poff * psz;
            char *lv = (char *)g->leaves + (size_t)tr->loff * lsz;
            fill_perfect(gn, 0, 0, 0, tr->pdepth, g->prec, pn, lv);
        }
        g->bias[tr->group] += fill_mean(gn, g->cover + tr->goff, g->mean + tr->goff, 0);
    }
    for (uint32_t k = 0; k < g->ngroups; k++) {
        if (g->average_by) g->bias[k] /= g->average_by;
        g->bias[k] += g->base[k];
    }
    build_schedule(g);
    *out = g;
    return 0;
}

void gbdt_free(gbdt_t *g)
{
    if (!g) return;
    weir_free(g->base);
    weir_free(g->bias);
    weir_free(g->trees);
    weir_free(g->gnodes);
    weir_free(g->cover);
    weir_free(g->mean);
    weir_free(g->cats);
    weir_free(g->pnodes);
    weir_free(g->leaves);
    weir_free(g->sched);
    weir_free(g->runs);
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
    return sizeof *g + g->ntrees * sizeof(tree_t) + g->ngnodes * (sizeof(gnode_t) + 2 * sizeof(double)) +
           g->ncats * sizeof(uint32_t) + g->npnodes * psz + g->nleaves * lsz;
}

/* ---- general layout ---------------------------------------------------- */

static inline int cat_member(const uint32_t *w, uint32_t nwords, uint32_t c)
{
    return c / 32 < nwords && ((w[c / 32] >> (c % 32)) & 1u);
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
        return cat_member(g->cats + n->cat_off, n->cat_words, (uint32_t)x);
    default: /* GBDT_CAT_LGBM */
        if (isnan(x) || x <= -1.0 || x >= 2147483648.0) return 1;
        return !cat_member(g->cats + n->cat_off, n->cat_words, (uint32_t)(int32_t)x);
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

/* One step of a perfect walk: i = 2i + 1 + (x goes right). STEP_FAST is
 * for rows without a missing value (checked once per row), where the
 * missing-value term cannot matter. The row has the threshold's type, so
 * the comparison needs no conversion. */
#define STEP(n, x) \
    ((uint32_t)((x)[(n)->fb & FEAT_MASK] >= (n)->thr) | \
     ((uint32_t)((x)[(n)->fb & FEAT_MASK] != (x)[(n)->fb & FEAT_MASK]) & ((n)->fb >> 31)))
#define STEP_FAST(n, x) ((uint32_t)((x)[(n)->fb & FEAT_MASK] >= (n)->thr))

/* Leaf values of all trees for one row, val[t] for tree t. Runs of trees of
 * equal depth are walked level by level together: INTERLEAVE independent
 * chains of loads keep the memory system busy where one tree at a time
 * would wait for each level's load in turn. */
#define ROW_LEAVES(NAME, PNODE, PFAT, LEAF, STEP)                                             \
    static void NAME(const gbdt_t *g, const LEAF *x, LEAF *val)                               \
    {                                                                                         \
        const PNODE *pn = g->pnodes;                                                          \
        const PFAT *pf = g->leaves;                                                           \
        for (uint32_t r = 0; r < g->nruns; r++) {                                             \
            uint32_t s0 = g->runs[r], cnt = g->runs[r + 1] - s0;                              \
            const uint32_t *ids = g->sched + s0;                                              \
            uint32_t P = g->trees[ids[0]].pdepth;                                             \
            const PNODE *base[INTERLEAVE];                                                    \
            uint32_t idx[INTERLEAVE];                                                         \
            for (uint32_t k = 0; k < cnt; k++) {                                              \
                base[k] = pn + g->trees[ids[k]].poff;                                         \
                idx[k] = 0;                                                                   \
            }                                                                                 \
            if (cnt == INTERLEAVE) {                                                          \
                for (uint32_t d = 0; d + 1 < P; d++)                                          \
                    for (uint32_t k = 0; k < INTERLEAVE; k++)                                 \
                        idx[k] = 2 * idx[k] + 1 + STEP(base[k] + idx[k], x);                  \
            } else {                                                                          \
                for (uint32_t d = 0; d + 1 < P; d++)                                          \
                    for (uint32_t k = 0; k < cnt; k++)                                        \
                        idx[k] = 2 * idx[k] + 1 + STEP(base[k] + idx[k], x);                  \
            }                                                                                 \
            uint32_t first = (1u << (P - 1)) - 1;                                             \
            for (uint32_t k = 0; k < cnt; k++) {                                              \
                const PFAT *f = pf + g->trees[ids[k]].loff + (idx[k] - first);                \
                val[ids[k]] = f->leaf[STEP(f, x)];                                            \
            }                                                                                 \
        }                                                                                     \
    }

ROW_LEAVES(row_leaves32, pnode32_t, pfat32_t, float, STEP)
ROW_LEAVES(row_leaves32_fast, pnode32_t, pfat32_t, float, STEP_FAST)
ROW_LEAVES(row_leaves64, pnode64_t, pfat64_t, double, STEP)
ROW_LEAVES(row_leaves64_fast, pnode64_t, pfat64_t, double, STEP_FAST)

/* The trees that are not perfect, one by one. */
static void row_leaves_general(const gbdt_t *g, const double *x, void *val)
{
    for (uint32_t k = g->runs[g->nruns]; k < g->ntrees; k++) {
        uint32_t t = g->sched[k];
        double v = walk_general(g, &g->trees[t], x);
        if (g->prec == GBDT_F32)
            ((float *)val)[t] = (float)v;
        else
            ((double *)val)[t] = v;
    }
}

#define ROW_STACK 512

void gbdt_predict_row(const gbdt_t *g, const double *x, double *out)
{
    /* The walks above may visit trees in any order; the sums below add the
     * leaves in model order, so the result is bit-identical to a plain loop. */
    if (g->prec == GBDT_F32) {
        double stackbuf[ROW_STACK];
        double *xr = g->nfeat <= ROW_STACK ? stackbuf : weir_malloc(g->nfeat * sizeof *xr);
        float fstack[ROW_STACK];
        float *xf = g->nfeat <= ROW_STACK ? fstack : weir_malloc(g->nfeat * sizeof *xf);
        int nan = 0;
        for (uint32_t f = 0; f < g->nfeat; f++) {
            xf[f] = (float)x[f];
            xr[f] = xf[f];
            nan |= isnan(xf[f]);
        }
        float valbuf[1024];
        float *val = g->ntrees <= 1024 ? valbuf : weir_malloc(g->ntrees * sizeof *val);
        if (nan)
            row_leaves32(g, xf, val);
        else
            row_leaves32_fast(g, xf, val);
        row_leaves_general(g, xr, val);
        if (xf != fstack) weir_free(xf);
        float accbuf[64];
        float *acc = g->ngroups <= 64 ? accbuf : weir_malloc(g->ngroups * sizeof *acc);
        for (uint32_t k = 0; k < g->ngroups; k++) acc[k] = g->average_by ? 0.0f : (float)g->base[k];
        if (g->ngroups == 1)
            for (uint32_t t = 0; t < g->ntrees; t++) acc[0] += val[t];
        else
            for (uint32_t t = 0; t < g->ntrees; t++) acc[g->trees[t].group] += val[t];
        for (uint32_t k = 0; k < g->ngroups; k++)
            out[k] = g->average_by ? (double)(acc[k] / (float)g->average_by + (float)g->base[k]) : acc[k];
        if (acc != accbuf) weir_free(acc);
        if (val != valbuf) weir_free(val);
        if (xr != stackbuf) weir_free(xr);
        return;
    }
    double valbuf[1024];
    double *val = g->ntrees <= 1024 ? valbuf : weir_malloc(g->ntrees * sizeof *val);
    int nan = 0;
    for (uint32_t f = 0; f < g->nfeat; f++) nan |= isnan(x[f]);
    if (nan)
        row_leaves64(g, x, val);
    else
        row_leaves64_fast(g, x, val);
    row_leaves_general(g, x, val);
    double accbuf[64];
    double *acc = g->ngroups <= 64 ? accbuf : weir_malloc(g->ngroups * sizeof *acc);
    for (uint32_t k = 0; k < g->ngroups; k++) acc[k] = g->average_by ? 0.0 : g->base[k];
    for (uint32_t t = 0; t < g->ntrees; t++) acc[g->trees[t].group] += val[t];
    for (uint32_t k = 0; k < g->ngroups; k++)
        out[k] = g->average_by ? acc[k] / g->average_by + g->base[k] : acc[k];
    if (acc != accbuf) weir_free(acc);
    if (val != valbuf) weir_free(val);
}

/* One block of nb <= BLOCK_ROWS rows (row r at rows[r]), tree-major: each
 * tree is walked by all rows of the block level by level, nb independent
 * chains at a time. */
#define BLOCK(NAME, PNODE, PFAT, LEAF, STEP)                                                  \
    static void NAME(const gbdt_t *g, const LEAF *const *rows, const double *const *drows,    \
                     uint32_t nb, LEAF *acc)                                                  \
    {                                                                                         \
        const PNODE *pn = g->pnodes;                                                          \
        const PFAT *pf = g->leaves;                                                           \
        uint32_t idx[BLOCK_ROWS];                                                             \
        uint32_t G = g->ngroups;                                                              \
        for (uint32_t t = 0; t < g->ntrees; t++) {                                            \
            const tree_t *tr = &g->trees[t];                                                  \
            LEAF *a = acc + tr->group;                                                        \
            if (tr->poff < 0) {                                                               \
                for (uint32_t r = 0; r < nb; r++) a[r * G] += (LEAF)walk_general(g, tr, drows[r]); \
                continue;                                                                     \
            }                                                                                 \
            const PNODE *p = pn + tr->poff;                                                   \
            for (uint32_t r = 0; r < nb; r++) idx[r] = 0;                                     \
            for (uint32_t d = 0; d + 1 < tr->pdepth; d++)                                     \
                for (uint32_t r = 0; r < nb; r++) idx[r] = 2 * idx[r] + 1 + STEP(p + idx[r], rows[r]); \
            const PFAT *f0 = pf + tr->loff - ((1u << (tr->pdepth - 1)) - 1);                  \
            for (uint32_t r = 0; r < nb; r++) {                                               \
                const PFAT *f = f0 + idx[r];                                                  \
                a[r * G] += f->leaf[STEP(f, rows[r])];                                        \
            }                                                                                 \
        }                                                                                     \
    }

BLOCK(block32, pnode32_t, pfat32_t, float, STEP)
BLOCK(block32_fast, pnode32_t, pfat32_t, float, STEP_FAST)
BLOCK(block64, pnode64_t, pfat64_t, double, STEP)
BLOCK(block64_fast, pnode64_t, pfat64_t, double, STEP_FAST)

void gbdt_predict_batch(const gbdt_t *g, const double *x, size_t n, size_t stride, double *out)
{
    uint32_t G = g->ngroups;
    const double *rows[BLOCK_ROWS];
    const float *frows[BLOCK_ROWS];
    double *scratch = NULL;
    float *fscratch = NULL;
    if (g->prec == GBDT_F32) {
        scratch = weir_malloc((size_t)BLOCK_ROWS * g->nfeat * sizeof *scratch + 1);
        fscratch = weir_malloc((size_t)BLOCK_ROWS * g->nfeat * sizeof *fscratch + 1);
    }
    void *acc = weir_malloc((size_t)BLOCK_ROWS * G * sizeof(double));
    for (size_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
        uint32_t nb = (uint32_t)(n - r0 < BLOCK_ROWS ? n - r0 : BLOCK_ROWS);
        int nan = 0;
        for (uint32_t r = 0; r < nb; r++) {
            const double *src = x + (r0 + r) * stride;
            if (scratch) {
                double *dst = scratch + (size_t)r * g->nfeat;
                float *fdst = fscratch + (size_t)r * g->nfeat;
                for (uint32_t f = 0; f < g->nfeat; f++) {
                    fdst[f] = (float)src[f];
                    dst[f] = fdst[f];
                    nan |= isnan(fdst[f]);
                }
                rows[r] = dst;
                frows[r] = fdst;
            } else {
                rows[r] = src;
                for (uint32_t f = 0; f < g->nfeat; f++) nan |= isnan(src[f]);
            }
        }
        double *o = out + r0 * G;
        if (g->prec == GBDT_F32) {
            float *a = acc;
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) a[r * G + k] = g->average_by ? 0.0f : (float)g->base[k];
            if (nan)
                block32(g, frows, rows, nb, a);
            else
                block32_fast(g, frows, rows, nb, a);
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) {
                    float v = a[r * G + k];
                    o[r * G + k] = g->average_by ? (double)(v / (float)g->average_by + (float)g->base[k]) : v;
                }
        } else {
            double *a = acc;
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) a[r * G + k] = g->average_by ? 0.0 : g->base[k];
            if (nan)
                block64(g, rows, rows, nb, a);
            else
                block64_fast(g, rows, rows, nb, a);
            for (uint32_t r = 0; r < nb; r++)
                for (uint32_t k = 0; k < G; k++) {
                    double v = a[r * G + k];
                    o[r * G + k] = g->average_by ? v / g->average_by + g->base[k] : v;
                }
        }
    }
    weir_free(acc);
    weir_free(scratch);
    weir_free(fscratch);
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
