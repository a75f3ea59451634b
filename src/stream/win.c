/* win.c — sliding event-time windows, exact and bucketed (see win.h for the
 * semantics, the calling protocol and the costs).
 *
 * State and invariants (checked by win_decode on untrusted bytes):
 *   - items are sorted: exact windows by (time, add order) — a late value is
 *     inserted after every value with time <= its own; bucketed windows by
 *     bucket index, one record per non-empty bucket, each with n >= 1.
 *     Every stored time is <= end.
 *   - The running window is (end - D, end] (exact) or the buckets
 *     (B(end) - D/H, B(end)] (bucketed). items [lo, len) are exactly the
 *     records in it; items [0, lo) are older ones kept for queries below end
 *     (they are dropped by win_expire once below the watermark's horizon).
 *   - n, mom, mm, ids and qs describe exactly the values of items [lo, len),
 *     except that an exact window keeps ids only while ids_on: it turns on
 *     when n exceeds SMALL_IDS and off when n falls to SMALL_IDS / 2; in
 *     between, distinct is counted from the few running records, so a small
 *     window allocates no table and touches no second cache line;
 *     mm holds the monotonic deques keyed by time (exact) or bucket index;
 *     ids counts, per id, the running values (exact) or the running buckets
 *     that contain it (bucketed); qs is the sketch of the running values.
 *   - floor is the last watermark: no add or query below it is accepted, so
 *     a query never needs a value older than floor - D.
 *
 * Bucket record layout (offsets derived in win_conf_init; absent fields
 * take no space): int64 index, int64 n, [double shift, dd s1, dd s2]
 * (agg_part_t: shift and s2 only when variance is asked), [double min],
 * [double max], [int64 first time, uint64 first value], [int64 last time,
 * uint64 last value], [mset_t ids of the bucket], [qsketch_t *].
 */
#include "stream/win.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/intmath.h"
#include "stream/codec.h"

#define F(r, off, type) ((type *)((unsigned char *)(r) + (off)))
#define KINDS(w) ((w)->conf->kinds)
#define HAS(w, k) (KINDS(w) & AGG_BIT(k))

/* The window's area: its inline records are at area_inl in it. */
static inline unsigned char *w_area(const win_t *w)
{
    return w->items.inl - w->conf->area_inl;
}

/* The running structures in the window's area (NULL when not needed). */
static inline agg_moments_t *w_mom(const win_t *w)
{
    return (w->conf->kinds & AGG_NEED_SUM) ? (agg_moments_t *)(w_area(w) + w->conf->area_mom) : NULL;
}

static inline mono_t *w_mm(const win_t *w)
{
    return (w->conf->kinds & (AGG_BIT(AGG_MIN) | AGG_BIT(AGG_MAX)))
               ? (mono_t *)(w_area(w) + w->conf->area_mm)
               : NULL;
}

static inline mset_t *w_ids(const win_t *w)
{
    return (w->conf->kinds & AGG_NEED_IDS) ? (mset_t *)(w_area(w) + w->conf->area_ids) : NULL;
}

static inline qsketch_t *w_qs(const win_t *w)
{
    return (w->conf->kinds & AGG_BIT(AGG_APPROX_QUANTILE)) ? (qsketch_t *)(w_area(w) + w->conf->area_qs)
                                                           : NULL;
}

static inline double num_of(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static inline uint64_t id_of(const win_conf_t *c, uint64_t bits)
{
    return c->ids ? bits : mset_id_of_double(num_of(bits));
}

static inline int64_t bucket_of(const win_conf_t *c, int64_t t)
{
    return weir_floordiv(t, c->every);
}

/* ---- configuration ---------------------------------------------------- */

#define WIN_INLINE_BYTES 48 /* inline records: at least 2, else as many as fit here */

static void area_layout(win_conf_t *c)
{
    uint32_t off = 0;
    if (c->kinds & AGG_NEED_SUM) {
        c->area_mom = (uint16_t)off;
        off += (uint32_t)agg_moments_size((c->kinds & AGG_NEED_VAR) != 0); /* a multiple of 8 */
    }
    if (c->kinds & (AGG_BIT(AGG_MIN) | AGG_BIT(AGG_MAX))) {
        c->area_mm = (uint16_t)off;
        off += 2 * (uint32_t)sizeof(mono_t);
    }
    if (c->kinds & AGG_NEED_IDS) {
        c->area_ids = (uint16_t)off;
        off += (uint32_t)sizeof(mset_t);
    }
    if (c->kinds & AGG_BIT(AGG_APPROX_QUANTILE)) {
        c->area_qs = (uint16_t)off;
        off += ((uint32_t)sizeof(qsketch_t) + 7) & ~7u;
    }
    c->area_inl = (uint16_t)off;
    c->inl_cap = (uint16_t)(WIN_INLINE_BYTES / c->rsize < 2 ? 2 : WIN_INLINE_BYTES / c->rsize);
    /* A bucketed window holds a record per non-empty bucket of its whole
     * (long) range: give small records more room. Eight, not four: a 7-day
     * hourly average of a key with a few events a day otherwise moves to a
     * heap ring, one more dependent cache miss per event, and the heap ring
     * costs about as much memory as the inline room it would have needed
     * (four took 8% more time on a full replay of 10 M events over 1 M
     * keys). Sixteen took 4-6% less there, where keys have ten events a
     * week, but 256 more bytes a key where they have three, and more where
     * they have fifty: over the state budgets of test_features_memory.py.
     * (The room is not part of a checkpoint: states are written by value.) */
    if (c->every && c->rsize <= 32) c->inl_cap = 8;
    c->area_size = off + c->inl_cap * c->rsize;
}

int win_conf_init(win_conf_t *c, int64_t range, int64_t every, uint32_t kinds, int ids,
                  double alpha, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (range <= 0 || range > WIN_TIME_LIMIT / 4)
        return weir_errf(err, errlen, WEIR_EINVAL, "window range %lld ms must be positive",
                         (long long)range);
    if (every < 0 || (every > 0 && range % every != 0))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "window range %lld ms is not a multiple of every %lld ms",
                         (long long)range, (long long)every);
    if (kinds == 0 || (kinds & ~AGG_ALL_KINDS))
        return weir_errf(err, errlen, WEIR_EINVAL, "no valid aggregate kind in 0x%x", kinds);
    if (ids && (kinds & AGG_NUMERIC)) {
        for (int k = 0; k < AGG_NKINDS; k++)
            if ((kinds & AGG_NUMERIC) & AGG_BIT(k))
                return weir_errf(err, errlen, WEIR_EINVAL, "%s needs a numeric input",
                                 agg_kind_name((agg_kind_t)k));
    }
    if (alpha == 0) alpha = QSKETCH_DEFAULT_ALPHA;
    if (!(alpha >= QSKETCH_MIN_ALPHA && alpha <= 0.5))
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "approx_quantile accuracy %g is not in [1e-6, 0.5]", alpha);
    c->range = range;
    c->every = every;
    c->kinds = kinds;
    c->ids = ids ? 1 : 0;
    c->alpha = alpha;
    if (every == 0) {
        c->nbuckets = 0;
        c->rsize = (kinds & ~AGG_BIT(AGG_COUNT)) ? 16 : 8;
        area_layout(c);
        return 0;
    }
    c->nbuckets = range / every;
    uint32_t off = 16;
    int var = (kinds & AGG_NEED_VAR) != 0;
    if (var) {
        c->off_shift = (uint16_t)off;
        off += 8;
    }
    if (kinds & AGG_NEED_SUM) {
        c->off_s1 = (uint16_t)off;
        off += 16;
    }
    if (var) {
        c->off_s2 = (uint16_t)off;
        off += 16;
    }
    if (kinds & AGG_BIT(AGG_MIN)) {
        c->off_min = (uint16_t)off;
        off += 8;
    }
    if (kinds & AGG_BIT(AGG_MAX)) {
        c->off_max = (uint16_t)off;
        off += 8;
    }
    if (kinds & AGG_BIT(AGG_FIRST)) {
        c->off_first = (uint16_t)off;
        off += 16;
    }
    if (kinds & AGG_BIT(AGG_LAST)) {
        c->off_last = (uint16_t)off;
        off += 16;
    }
    if (kinds & AGG_NEED_IDS) {
        c->off_ids = (uint16_t)off;
        off += (uint32_t)sizeof(mset_t);
    }
    if (kinds & AGG_BIT(AGG_APPROX_QUANTILE)) {
        c->off_qs = (uint16_t)off;
        off += (uint32_t)sizeof(qsketch_t *);
    }
    c->rsize = (off + 7) & ~7u;
    area_layout(c);
    return 0;
}

/* ---- lifecycle -------------------------------------------------------- */

void win_init_in(win_t *w, const win_conf_t *c, void *area)
{
    memset(w, 0, sizeof *w);
    w->conf = c;
    w->end = w->floor = WIN_NONE;
    ring_init_inline(&w->items, c->rsize, (unsigned char *)area + c->area_inl, c->inl_cap);
    if (c->kinds & AGG_NEED_SUM) agg_moments_init(w_mom(w), (c->kinds & AGG_NEED_VAR) != 0);
    if (c->kinds & (AGG_BIT(AGG_MIN) | AGG_BIT(AGG_MAX))) {
        mono_init(&w_mm(w)[0], 0);
        mono_init(&w_mm(w)[1], 1);
    }
    if (c->kinds & AGG_NEED_IDS) mset_init(w_ids(w));
    if (c->kinds & AGG_BIT(AGG_APPROX_QUANTILE)) qsketch_init(w_qs(w), c->alpha);
}

void win_init(win_t *w, const win_conf_t *c)
{
    win_init_in(w, c, weir_malloc(c->area_size));
    w->own_area = 1;
}

static void bucket_free(const win_conf_t *c, void *r)
{
    if (c->off_ids) mset_free(F(r, c->off_ids, mset_t));
    if (c->off_qs) {
        qsketch_t *q = *F(r, c->off_qs, qsketch_t *);
        if (q) qsketch_free(q);
        weir_free(q);
    }
}

void win_prefetch(const win_t *w)
{
    const ring_t *r = &w->items;
    /* A step searches from the running window's first record and appends
     * after the last (ring_upper): those lines, and the next record's, the
     * search's first probe when it evicts (ring.c, GALLOP; a line of its
     * own when the first record ends one). */
    if (r->len && r->data != r->inl) {
        __builtin_prefetch(ring_at(r, w->lo < r->len ? w->lo : 0));
        if (w->lo + 1 < r->len) __builtin_prefetch(ring_at(r, w->lo + 1));
        __builtin_prefetch(ring_at(r, r->len - 1), 1);
    }
    const mset_t *s = w_ids(w);
    if (s && s->ids) {
        /* An add and a removal each probe an id's line and its count's, at
         * random: a small set is asked for whole (up to 64 ids and counts,
         * twelve lines); a big one only where it starts. */
        const char *at = (const char *)s->ids, *end = at + (s->cap <= 64 ? mset_bytes(s) : 64);
        for (; at < end; at += 64) __builtin_prefetch(at, 1);
    }
}

void win_free(win_t *w)
{
    if (!w->conf) return;
    if (w->conf->every)
        for (uint32_t i = 0; i < w->items.len; i++) bucket_free(w->conf, ring_at(&w->items, i));
    ring_free(&w->items);
    if (w_mm(w)) {
        mono_free(&w_mm(w)[0]);
        mono_free(&w_mm(w)[1]);
    }
    if (w_ids(w)) mset_free(w_ids(w));
    if (w_qs(w)) qsketch_free(w_qs(w));
    if (w->own_area) weir_free(w_area(w));
    memset(w, 0, sizeof *w); /* freeing again is a no-op */
}

size_t win_bytes(const win_t *w)
{
    const win_conf_t *c = w->conf;
    if (!c) return 0;
    size_t b = ring_bytes(&w->items);
    if (w->own_area) b += c->area_size;
    if (w_mm(w)) b += ring_bytes(&w_mm(w)[0].r) + ring_bytes(&w_mm(w)[1].r);
    if (w_ids(w)) b += mset_bytes(w_ids(w));
    if (w_qs(w)) b += qsketch_bytes(w_qs(w));
    if (c->every && (c->off_ids || c->off_qs)) {
        for (uint32_t i = 0; i < w->items.len; i++) {
            void *r = ring_at(&w->items, i);
            if (c->off_ids) b += mset_bytes(F(r, c->off_ids, mset_t));
            if (c->off_qs) b += sizeof(qsketch_t) + qsketch_bytes(*F(r, c->off_qs, qsketch_t *));
        }
    }
    return b;
}

/* ---- exact windows ---------------------------------------------------- */

static inline uint64_t ev_bits(const win_t *w, uint32_t i)
{
    return w->items.rsize == 16 ? F(ring_at(&w->items, i), 8, uint64_t)[0] : 0;
}

#define SMALL_IDS 8

/* Builds the running multiset of an exact window from items [lo, len). */
static void ids_materialize(win_t *w)
{
    mset_t *s = w_ids(w);
    for (uint32_t i = w->lo; i < w->items.len; i++) mset_add(s, id_of(w->conf, ev_bits(w, i)));
    w->ids_on = 1;
}

/* Distinct ids of items [lo, len) of an exact window without its multiset
 * (at most SMALL_IDS of them). */
static uint32_t ids_count_small(const win_t *w)
{
    uint64_t seen[SMALL_IDS];
    uint32_t d = 0;
    for (uint32_t i = w->lo; i < w->items.len; i++) {
        uint64_t id = id_of(w->conf, ev_bits(w, i));
        uint32_t j = 0;
        while (j < d && seen[j] != id) j++;
        if (j == d) {
            weir_assert(d < SMALL_IDS);
            seen[d++] = id;
        }
    }
    return d;
}

static void ex_run_add(win_t *w, int64_t t, uint64_t bits)
{
    double x = num_of(bits);
    w->n++;
    if (w_mom(w)) agg_moments_add(w_mom(w), x, 1);
    if (w_mm(w)) {
        if (HAS(w, AGG_MIN)) mono_update(&w_mm(w)[0], t, x);
        if (HAS(w, AGG_MAX)) mono_update(&w_mm(w)[1], t, x);
    }
    if (w_ids(w)) {
        /* The record is already in items [lo, len). */
        if (w->ids_on)
            mset_add(w_ids(w), id_of(w->conf, bits));
        else if (w->n > SMALL_IDS)
            ids_materialize(w);
    }
    if (w_qs(w)) qsketch_add(w_qs(w), x);
}

static void ex_run_sub(win_t *w, uint64_t bits)
{
    double x = num_of(bits);
    w->n--;
    if (w_mom(w)) agg_moments_add(w_mom(w), x, -1);
    if (w_ids(w) && w->ids_on) {
        int rc = mset_remove(w_ids(w), id_of(w->conf, bits));
        weir_assert(rc >= 0);
        if (w->n <= SMALL_IDS / 2) {
            mset_free(w_ids(w));
            w->ids_on = 0;
        }
    }
    if (w_qs(w)) {
        int rc = qsketch_remove(w_qs(w), x);
        weir_assert(rc == 0);
    }
}

static void ex_advance(win_t *w, int64_t t)
{
    w->end = t;
    int64_t limit = t - w->conf->range;
    uint32_t hi = ring_upper(&w->items, w->lo, limit);
    for (uint32_t i = w->lo; i < hi; i++) ex_run_sub(w, ev_bits(w, i));
    w->lo = hi;
    if (w_mm(w)) {
        mono_evict(&w_mm(w)[0], limit);
        mono_evict(&w_mm(w)[1], limit);
    }
}

static void ex_add(win_t *w, int64_t t, uint64_t bits)
{
    void *r;
    int in_run = 1;
    if (w->end == WIN_NONE || t >= w->end) {
        if (w->end == WIN_NONE || t > w->end) ex_advance(w, t);
        r = ring_push(&w->items);
    } else {
        uint32_t p = ring_upper(&w->items, 0, t);
        r = ring_insert(&w->items, p);
        if (t <= w->end - w->conf->range) {
            weir_assert(p <= w->lo);
            w->lo++;
            in_run = 0;
        }
    }
    F(r, 0, int64_t)[0] = t;
    if (w->items.rsize == 16) F(r, 8, uint64_t)[0] = bits;
    if (in_run) ex_run_add(w, t, bits);
}

/* ---- bucketed windows ------------------------------------------------- */

static agg_part_t bucket_part(const win_conf_t *c, const void *r)
{
    agg_part_t p;
    memset(&p, 0, sizeof p);
    p.n = F(r, 8, int64_t)[0];
    if (c->off_shift) p.shift = *F(r, c->off_shift, double);
    if (c->off_s1) p.s1 = *F(r, c->off_s1, agg_dd_t);
    if (c->off_s2) p.s2 = *F(r, c->off_s2, agg_dd_t);
    return p;
}

static void bucket_init(const win_conf_t *c, void *r, int64_t idx)
{
    memset(r, 0, c->rsize);
    F(r, 0, int64_t)[0] = idx;
    if (c->off_ids) mset_init(F(r, c->off_ids, mset_t));
    if (c->off_qs) {
        qsketch_t *q = weir_malloc(sizeof *q);
        qsketch_init(q, c->alpha);
        *F(r, c->off_qs, qsketch_t *) = q;
    }
}

/* Adds a value to a bucket; returns 1 if its id is new to the bucket. */
static int bucket_add(const win_conf_t *c, void *r, int64_t t, uint64_t bits)
{
    double x = num_of(bits);
    int64_t *n = F(r, 8, int64_t);
    int first = *n == 0;
    if (c->off_s1) {
        agg_part_t p = bucket_part(c, r);
        agg_part_add(&p, x, c->off_s2 != 0);
        if (c->off_shift) *F(r, c->off_shift, double) = p.shift;
        *F(r, c->off_s1, agg_dd_t) = p.s1;
        if (c->off_s2) *F(r, c->off_s2, agg_dd_t) = p.s2;
    }
    if (c->off_min && (first || x < *F(r, c->off_min, double))) *F(r, c->off_min, double) = x;
    if (c->off_max && (first || x > *F(r, c->off_max, double))) *F(r, c->off_max, double) = x;
    if (c->off_first) {
        int64_t *f = F(r, c->off_first, int64_t);
        if (first || t < f[0]) { /* ties: the earlier add stays first */
            f[0] = t;
            F(r, c->off_first + 8, uint64_t)[0] = bits;
        }
    }
    if (c->off_last) {
        int64_t *l = F(r, c->off_last, int64_t);
        if (first || t >= l[0]) { /* ties: the later add becomes last */
            l[0] = t;
            F(r, c->off_last + 8, uint64_t)[0] = bits;
        }
    }
    (*n)++;
    int new_id = 0;
    if (c->off_ids) new_id = mset_add(F(r, c->off_ids, mset_t), id_of(c, bits));
    if (c->off_qs) qsketch_add(*F(r, c->off_qs, qsketch_t *), x);
    return new_id;
}

/* Removes a bucket from the running state; returns 1 if the running sketch
 * must be rebuilt (see below). */
static int bk_run_sub(win_t *w, void *r)
{
    const win_conf_t *c = w->conf;
    agg_part_t p = bucket_part(c, r);
    w->n -= p.n;
    if (w_mom(w)) agg_moments_add_part(w_mom(w), &p, -1);
    if (w_ids(w)) {
        uint64_t id;
        mset_t *s = F(r, c->off_ids, mset_t);
        for (uint32_t it = 0; mset_next(s, &it, &id, NULL);) {
            int rc = mset_remove(w_ids(w), id);
            weir_assert(rc >= 0);
        }
    }
    if (w_qs(w) && qsketch_merge(w_qs(w), *F(r, c->off_qs, qsketch_t *), -1) != 0) {
        /* Only reachable from a decoded state whose bucket sketches collapsed
         * differently from the running one (a checkpoint that passed the
         * checks but was not written by us): rebuild after the evictions. */
        return 1;
    }
    return 0;
}

/* Rebuilds the running sketch from the running buckets (see bk_run_sub). */
static void rebuild_qs(win_t *w)
{
    const win_conf_t *c = w->conf;
    qsketch_free(w_qs(w));
    qsketch_init(w_qs(w), c->alpha);
    for (uint32_t i = w->lo; i < w->items.len; i++)
        qsketch_merge(w_qs(w), *F(ring_at(&w->items, i), c->off_qs, qsketch_t *), 1);
}

static void bk_advance(win_t *w, int64_t t)
{
    const win_conf_t *c = w->conf;
    int64_t ob = w->end == WIN_NONE ? INT64_MIN : bucket_of(c, w->end);
    w->end = t;
    int64_t nb = bucket_of(c, t);
    if (nb == ob) return;
    int64_t limit = nb - c->nbuckets;
    uint32_t hi = ring_upper(&w->items, w->lo, limit);
    int dirty = 0;
    for (uint32_t i = w->lo; i < hi; i++) dirty |= bk_run_sub(w, ring_at(&w->items, i));
    w->lo = hi;
    if (dirty) rebuild_qs(w);
    if (w_mm(w)) {
        mono_evict(&w_mm(w)[0], limit);
        mono_evict(&w_mm(w)[1], limit);
    }
}

static void bk_add(win_t *w, int64_t t, uint64_t bits)
{
    const win_conf_t *c = w->conf;
    if (w->end == WIN_NONE || t > w->end) bk_advance(w, t);
    int64_t b = bucket_of(c, t), run_lo = bucket_of(c, w->end) - c->nbuckets;
    ring_t *it = &w->items;
    void *r;
    if (it->len && ring_key(it, it->len - 1) == b) {
        r = ring_at(it, it->len - 1);
    } else if (!it->len || ring_key(it, it->len - 1) < b) {
        r = ring_push(it);
        bucket_init(c, r, b);
    } else {
        uint32_t p = ring_lower(it, 0, b);
        if (p < it->len && ring_key(it, p) == b) {
            r = ring_at(it, p);
        } else {
            r = ring_insert(it, p);
            bucket_init(c, r, b);
            if (b <= run_lo) {
                weir_assert(p <= w->lo);
                w->lo++;
            }
        }
    }
    int new_id = bucket_add(c, r, t, bits);
    if (b <= run_lo) return;
    double x = num_of(bits);
    w->n++;
    if (w_mom(w)) agg_moments_add(w_mom(w), x, 1);
    if (w_mm(w)) {
        if (HAS(w, AGG_MIN)) mono_update(&w_mm(w)[0], b, x);
        if (HAS(w, AGG_MAX)) mono_update(&w_mm(w)[1], b, x);
    }
    if (w_ids(w) && new_id) mset_add(w_ids(w), id_of(c, bits));
    if (w_qs(w)) qsketch_add(w_qs(w), x);
}

/* ---- adds ------------------------------------------------------------- */

int win_add(win_t *w, int64_t t, win_val_t v)
{
    if (t < -WIN_TIME_LIMIT || t > WIN_TIME_LIMIT) return WEIR_ERANGE;
    if (w->floor != WIN_NONE && t < w->floor) return WEIR_ERANGE;
    if (!w->conf->ids && !isfinite(v.num)) return WEIR_EINVAL;
    uint64_t bits = w->conf->ids ? v.id : bits_of(v.num);
    if (w->conf->every)
        bk_add(w, t, bits);
    else
        ex_add(w, t, bits);
    return 0;
}

/* ---- expiry ----------------------------------------------------------- */

/* win_expire's body, inline in win_step: every event expires each of its
 * key's windows, and the call was a fifth of the expiry's cost. */
__attribute__((always_inline)) static inline void expire(win_t *w, int64_t wm)
{
    const win_conf_t *c = w->conf;
    if (wm > WIN_TIME_LIMIT) wm = WIN_TIME_LIMIT;
    if (wm < -WIN_TIME_LIMIT) wm = -WIN_TIME_LIMIT;
    if (w->floor != WIN_NONE && wm <= w->floor) return;
    w->floor = wm;
    if (w->end == WIN_NONE) return;
    if (wm > w->end) {
        if (c->every)
            bk_advance(w, wm);
        else
            ex_advance(w, wm);
    }
    int64_t limit = c->every ? bucket_of(c, wm) - c->nbuckets : wm - c->range;
    uint32_t k = ring_upper(&w->items, 0, limit); /* (0 at once, inline: the usual case) */
    if (k == 0) return;
    weir_assert(k <= w->lo);
    if (c->every)
        for (uint32_t i = 0; i < k; i++) bucket_free(c, ring_at(&w->items, i));
    ring_pop_front(&w->items, k);
    w->lo -= k;
}

void win_expire(win_t *w, int64_t wm)
{
    expire(w, wm);
}

int win_rebuildable(const win_conf_t *from, const win_conf_t *to)
{
    /* (values stored: records of 16 bytes; count-only ones keep times) */
    return !from->every && !to->every && from->range == to->range && from->ids == to->ids &&
           (from->rsize == 16 || to->kinds == AGG_BIT(AGG_COUNT));
}

void win_rebuild(win_t *to, const win_t *from)
{
    weir_assert(win_rebuildable(from->conf, to->conf) && to->items.len == 0);
    /* Stored in (time, add) order, so each goes after the ones before it,
     * as it went into `from`: the same records in the same order. */
    for (uint32_t i = 0; i < from->items.len; i++)
        ex_add(to, ring_key(&from->items, i), from->items.rsize == 16 ? ev_bits(from, i) : 0);
    if (from->end != WIN_NONE && (to->end == WIN_NONE || from->end > to->end))
        ex_advance(to, from->end);
    if (from->floor != WIN_NONE) expire(to, from->floor);
}

/* ---- queries ---------------------------------------------------------- */

/* What the answers are made of, from the running state or a recomputation. */
typedef struct view {
    int64_t n;
    const agg_moments_t *mom;
    int has_min, has_max;
    double mn, mx;
    uint64_t first, last; /* value bits; valid when n > 0 */
    uint32_t distinct;
    const qsketch_t *qs;
} view_t;

static void answer(const win_conf_t *c, const view_t *v, const win_ask_t *a, agg_result_t *o)
{
    o->null = 0;
    o->num = 0;
    o->id = 0;
    switch (a->kind) {
    case AGG_COUNT: o->num = (double)v->n; break;
    case AGG_SUM: o->num = v->n ? agg_moments_sum(v->mom) : 0; break;
    case AGG_AVG:
        if (v->n)
            o->num = agg_moments_mean(v->mom);
        else
            o->null = 1;
        break;
    case AGG_MIN:
        o->null = !v->has_min;
        o->num = v->mn;
        break;
    case AGG_MAX:
        o->null = !v->has_max;
        o->num = v->mx;
        break;
    case AGG_VARIANCE:
    case AGG_STDDEV:
        if (v->n < 2) {
            o->null = 1;
        } else {
            double var = agg_moments_m2(v->mom) / (double)(v->n - 1);
            o->num = a->kind == AGG_STDDEV ? sqrt(var) : var;
        }
        break;
    case AGG_FIRST:
    case AGG_LAST:
        if (!v->n) {
            o->null = 1;
        } else {
            o->id = a->kind == AGG_FIRST ? v->first : v->last;
            o->num = c->ids ? 0 : num_of(o->id);
        }
        break;
    case AGG_DISTINCT:
    case AGG_APPROX_DISTINCT: o->num = v->distinct; break;
    case AGG_APPROX_QUANTILE: o->null = !qsketch_quantile(v->qs, a->q, &o->num); break;
    default: o->null = 1; break;
    }
    if (o->null) o->num = 0;
    if (!o->null && !(c->ids && (a->kind == AGG_FIRST || a->kind == AGG_LAST)))
        o->id = bits_of(o->num);
}

/* Rebuilds the running moments from the running items, centred on their
 * mean (see agg.h: only when the error bound says so). */
static void recompute_moments(win_t *w)
{
    const win_conf_t *c = w->conf;
    agg_moments_t *m = w_mom(w);
    agg_moments_reset(m, agg_moments_center(m));
    for (uint32_t i = w->lo; i < w->items.len; i++) {
        if (c->every) {
            agg_part_t p = bucket_part(c, ring_at(&w->items, i));
            agg_moments_add_part(m, &p, 1);
        } else {
            agg_moments_add(m, num_of(ev_bits(w, i)), 1);
        }
    }
    m->fresh = 1;
}

/* first/last of a view over the non-empty items [a, b): by time, ties by
 * add order, which is the items' order. */
static void view_ends(win_t *w, uint32_t a, uint32_t b, view_t *v)
{
    const win_conf_t *c = w->conf;
    if (c->every) {
        void *f = ring_at(&w->items, a), *l = ring_at(&w->items, b - 1);
        if (c->off_first) v->first = F(f, c->off_first + 8, uint64_t)[0];
        if (c->off_last) v->last = F(l, c->off_last + 8, uint64_t)[0];
    } else {
        v->first = ev_bits(w, a);
        v->last = ev_bits(w, b - 1);
    }
}

/* What reading the running state changes in it: moments whose error bound
 * no longer holds are recomputed from the stored values. A read of any
 * kinds, or none, does this alike (it looks at the conf's kinds), so the
 * state a step leaves does not depend on what was asked. */
static void settle_running(win_t *w)
{
    const win_conf_t *c = w->conf;
    if (!w_mom(w)) return;
    int64_t cnt = c->every ? (int64_t)(w->items.len - w->lo) : w->n;
    if (!agg_moments_trusted(w_mom(w), c->kinds, cnt)) recompute_moments(w);
}

static void view_running(win_t *w, view_t *v)
{
    const win_conf_t *c = w->conf;
    memset(v, 0, sizeof *v);
    v->n = w->n;
    settle_running(w);
    v->mom = w_mom(w);
    if (w_mm(w)) {
        v->has_min = mono_best(&w_mm(w)[0], &v->mn);
        v->has_max = mono_best(&w_mm(w)[1], &v->mx);
    }
    if (w->n && (c->kinds & (AGG_BIT(AGG_FIRST) | AGG_BIT(AGG_LAST)))) view_ends(w, w->lo, w->items.len, v);
    if (w_ids(w)) v->distinct = c->every || w->ids_on ? mset_size(w_ids(w)) : ids_count_small(w);
    v->qs = w_qs(w);
}

/* Scratch of a slow-path view: the structures it owns. */
typedef struct scratch {
    agg_moments_t mom;
    mset_t ids;
    qsketch_t qs;
} scratch_t;

/* Recomputes the view of items [a, b) from scratch. */
static void view_range(win_t *w, uint32_t a, uint32_t b, view_t *v, scratch_t *s)
{
    const win_conf_t *c = w->conf;
    memset(v, 0, sizeof *v);
    agg_moments_init(&s->mom, (c->kinds & AGG_NEED_VAR) != 0);
    mset_init(&s->ids);
    qsketch_init(&s->qs, c->alpha);
    int want_min = HAS(w, AGG_MIN), want_max = HAS(w, AGG_MAX);
    for (uint32_t i = a; i < b; i++) {
        void *r = ring_at(&w->items, i);
        if (c->every) {
            agg_part_t p = bucket_part(c, r);
            v->n += p.n;
            if (w_mom(w)) agg_moments_add_part(&s->mom, &p, 1);
            if (want_min) {
                double x = *F(r, c->off_min, double);
                if (!v->has_min || x < v->mn) v->mn = x;
                v->has_min = 1;
            }
            if (want_max) {
                double x = *F(r, c->off_max, double);
                if (!v->has_max || x > v->mx) v->mx = x;
                v->has_max = 1;
            }
            if (w_ids(w)) {
                uint64_t id;
                mset_t *bs = F(r, c->off_ids, mset_t);
                for (uint32_t it = 0; mset_next(bs, &it, &id, NULL);) mset_add(&s->ids, id);
            }
            if (w_qs(w)) qsketch_merge(&s->qs, *F(r, c->off_qs, qsketch_t *), 1);
        } else {
            uint64_t bits = ev_bits(w, i);
            double x = num_of(bits);
            v->n++;
            if (w_mom(w)) agg_moments_add(&s->mom, x, 1);
            if (want_min && (!v->has_min || x < v->mn)) v->mn = x, v->has_min = 1;
            if (want_max && (!v->has_max || x > v->mx)) v->mx = x, v->has_max = 1;
            if (w_ids(w)) mset_add(&s->ids, id_of(c, bits));
            if (w_qs(w)) qsketch_add(&s->qs, x);
        }
    }
    if (v->n) view_ends(w, a, b, v);
    v->mom = &s->mom;
    v->distinct = mset_size(&s->ids);
    v->qs = &s->qs;
}

/* The view of items [a, b) as the running view minus items [b, len) plus
 * items [a, lo): for a query a little below end this touches only the values
 * within the lateness, not the window. Only for count, sums and first/last
 * (asked = the kinds asked); returns 0 when it does not apply or would not
 * be cheaper, or when the moments it yields are not trusted. */
static int view_delta(win_t *w, uint32_t a, uint32_t b, uint32_t asked, view_t *v, scratch_t *s)
{
    const win_conf_t *c = w->conf;
    mset_init(&s->ids);
    qsketch_init(&s->qs, c->alpha);
    uint32_t scan_kinds = AGG_BIT(AGG_MIN) | AGG_BIT(AGG_MAX) | AGG_NEED_IDS |
                          AGG_BIT(AGG_APPROX_QUANTILE);
    if ((asked & scan_kinds) || b < w->lo || a > w->lo) return 0;
    uint32_t len = w->items.len;
    if ((uint64_t)(len - b) + (w->lo - a) >= (uint64_t)(b - a)) return 0;
    memset(v, 0, sizeof *v);
    v->n = w->n;
    if (w_mom(w)) agg_moments_copy(&s->mom, w_mom(w));
    for (int pass = 0; pass < 2; pass++) {
        uint32_t from = pass ? a : b, to = pass ? w->lo : len;
        int sign = pass ? 1 : -1;
        for (uint32_t i = from; i < to; i++) {
            if (c->every) {
                agg_part_t p = bucket_part(c, ring_at(&w->items, i));
                v->n += sign * p.n;
                if (w_mom(w)) agg_moments_add_part(&s->mom, &p, sign);
            } else {
                v->n += sign;
                if (w_mom(w)) agg_moments_add(&s->mom, num_of(ev_bits(w, i)), sign);
            }
        }
    }
    if (w_mom(w) && !agg_moments_trusted(&s->mom, asked, c->every ? (int64_t)(b - a) : v->n))
        return 0;
    if (v->n) view_ends(w, a, b, v);
    v->mom = &s->mom;
    v->qs = &s->qs;
    return 1;
}

static void scratch_free(scratch_t *s)
{
    mset_free(&s->ids);
    qsketch_free(&s->qs);
}

/* The checks every query makes: a time the window can answer, kinds it keeps. */
static int query_ok(const win_t *w, int64_t t, const win_ask_t *asks, size_t nasks)
{
    if (t < -WIN_TIME_LIMIT || t > WIN_TIME_LIMIT) return WEIR_ERANGE;
    if (w->floor != WIN_NONE && t < w->floor) return WEIR_ERANGE;
    for (size_t i = 0; i < nasks; i++)
        if ((unsigned)asks[i].kind >= AGG_NKINDS || !(w->conf->kinds & AGG_BIT(asks[i].kind)))
            return WEIR_EINVAL;
    return 0;
}

/* The stored items [*a, *b) that make up the window as of t. */
static void query_range(win_t *w, int64_t t, uint32_t *a, uint32_t *b)
{
    const win_conf_t *c = w->conf;
    if (c->every) {
        int64_t bt = bucket_of(c, t);
        *a = ring_upper(&w->items, 0, bt - c->nbuckets);
        *b = ring_upper(&w->items, *a, bt);
    } else {
        *a = ring_upper(&w->items, 0, t - c->range);
        *b = ring_upper(&w->items, *a, t);
    }
}

int win_query(win_t *w, int64_t t, const win_ask_t *asks, size_t nasks, agg_result_t *out)
{
    const win_conf_t *c = w->conf;
    int rc = query_ok(w, t, asks, nasks);
    if (rc) return rc;
    if (w->end == WIN_NONE || t > w->end) {
        if (c->every)
            bk_advance(w, t);
        else
            ex_advance(w, t);
    }
    view_t v;
    int fast = t == w->end || (c->every && bucket_of(c, t) == bucket_of(c, w->end));
    if (fast) {
        view_running(w, &v);
        for (size_t i = 0; i < nasks; i++) answer(c, &v, &asks[i], &out[i]);
        return 0;
    }
    uint32_t a, b;
    query_range(w, t, &a, &b);
    scratch_t s;
    uint32_t asked = 0;
    for (size_t i = 0; i < nasks; i++) asked |= AGG_BIT(asks[i].kind);
    if (!view_delta(w, a, b, asked, &v, &s)) {
        scratch_free(&s);
        view_range(w, a, b, &v, &s);
    }
    for (size_t i = 0; i < nasks; i++) answer(c, &v, &asks[i], &out[i]);
    scratch_free(&s);
    return 0;
}

int win_step(win_t *w, int64_t t, const win_val_t *v, const win_ask_t *asks, size_t nasks,
             agg_result_t *out, int64_t wm)
{
    const win_conf_t *c = w->conf;
    int rc = 0;
    if (t < -WIN_TIME_LIMIT || t > WIN_TIME_LIMIT || (w->floor != WIN_NONE && t < w->floor)) {
        rc = WEIR_ERANGE; /* what win_add and win_query say; nothing added */
    } else {
        if (v && (c->ids || isfinite(v->num))) {
            uint64_t bits = c->ids ? v->id : bits_of(v->num);
            if (c->every)
                bk_add(w, t, bits);
            else
                ex_add(w, t, bits);
        }
        if (w->end == WIN_NONE || t > w->end) {
            if (c->every)
                bk_advance(w, t);
            else
                ex_advance(w, t);
        }
        if (t == w->end || (c->every && bucket_of(c, t) == bucket_of(c, w->end))) {
            if (nasks) {
                view_t vw;
                view_running(w, &vw);
                for (size_t i = 0; i < nasks; i++) answer(c, &vw, &asks[i], &out[i]);
            } else {
                settle_running(w); /* what the read would have changed */
            }
        } else if (nasks) {
            rc = win_query(w, t, asks, nasks, out); /* below end: the general path */
        } /* (below end, a read changes nothing: see win_query) */
    }
    expire(w, wm);
    return rc;
}

int win_peek(win_t *w, int64_t t, const win_ask_t *asks, size_t nasks, agg_result_t *out)
{
    const win_conf_t *c = w->conf;
    int rc = query_ok(w, t, asks, nasks);
    if (rc) return rc;
    /* Always the recompute from the stored items: the running state (and
     * its occasional recompute) is only ever moved by logged events. */
    uint32_t a, b;
    query_range(w, t, &a, &b);
    view_t v;
    scratch_t s;
    view_range(w, a, b, &v, &s);
    for (size_t i = 0; i < nasks; i++) answer(c, &v, &asks[i], &out[i]);
    scratch_free(&s);
    return 0;
}

int win_query1(win_t *w, int64_t t, agg_kind_t kind, double q, agg_result_t *out)
{
    win_ask_t a = {kind, q};
    return win_query(w, t, &a, 1, out);
}

/* ---- serialization ---------------------------------------------------- */

#define WIN_MAGIC 0x57 /* 'W' */
#define WIN_VERSION 1

static void put_dd(weir_buf_t *b, agg_dd_t d)
{
    codec_put_f64(b, d.hi);
    codec_put_f64(b, d.lo);
}

static agg_dd_t get_dd(codec_rd_t *r)
{
    agg_dd_t d;
    d.hi = codec_get_f64(r);
    d.lo = codec_get_f64(r);
    return d;
}

void win_encode(const win_t *w, weir_buf_t *b)
{
    const win_conf_t *c = w->conf;
    unsigned char head[2] = {WIN_MAGIC, WIN_VERSION};
    buf_append(b, head, 2);
    codec_put_u(b, (uint64_t)c->range);
    codec_put_u(b, (uint64_t)c->every);
    codec_put_u(b, c->kinds);
    codec_put_u(b, (uint64_t)c->ids);
    codec_put_u(b, w->end != WIN_NONE);
    if (w->end != WIN_NONE) codec_put_i(b, w->end);
    codec_put_u(b, w->floor != WIN_NONE);
    if (w->floor != WIN_NONE) codec_put_i(b, w->floor);
    codec_put_u(b, w->items.len);
    codec_put_u(b, w->lo);
    int64_t prev = 0;
    for (uint32_t i = 0; i < w->items.len; i++) {
        void *r = ring_at(&w->items, i);
        int64_t key = F(r, 0, int64_t)[0];
        if (i == 0)
            codec_put_i(b, key);
        else
            codec_put_u(b, (uint64_t)key - (uint64_t)prev); /* sorted: >= 0 */
        prev = key;
        if (!c->every) {
            if (w->items.rsize == 16) codec_put_u64(b, F(r, 8, uint64_t)[0]);
            continue;
        }
        codec_put_u(b, (uint64_t)F(r, 8, int64_t)[0]);
        if (c->off_shift) codec_put_f64(b, *F(r, c->off_shift, double));
        if (c->off_s1) put_dd(b, *F(r, c->off_s1, agg_dd_t));
        if (c->off_s2) put_dd(b, *F(r, c->off_s2, agg_dd_t));
        if (c->off_min) codec_put_f64(b, *F(r, c->off_min, double));
        if (c->off_max) codec_put_f64(b, *F(r, c->off_max, double));
        if (c->off_first) {
            codec_put_i(b, F(r, c->off_first, int64_t)[0]);
            codec_put_u64(b, F(r, c->off_first + 8, uint64_t)[0]);
        }
        if (c->off_last) {
            codec_put_i(b, F(r, c->off_last, int64_t)[0]);
            codec_put_u64(b, F(r, c->off_last + 8, uint64_t)[0]);
        }
        if (c->off_ids) mset_encode(F(r, c->off_ids, mset_t), b);
        if (c->off_qs) qsketch_encode(*F(r, c->off_qs, qsketch_t *), b);
    }
    if (w_mom(w)) {
        const agg_moments_t *m = w_mom(w);
        codec_put_i(b, m->n);
        codec_put_f64(b, m->shift);
        put_dd(b, m->s1);
        put_dd(b, m->var ? m->s2 : (agg_dd_t){0, 0}); /* (not stored without var) */
        codec_put_f64(b, m->e1);
        codec_put_f64(b, m->var ? m->e2 : 0);
        codec_put_f64(b, m->a1);
        codec_put_u(b, (uint64_t)(m->fresh | (m->pinned << 1)));
    }
}

/* What a running sum or error bound may hold: finite inputs still add up
 * to infinity (1e308 twice) and then NaN (inf - inf, when one leaves), and
 * the window answers null for them; a restore must take every state the
 * window can reach, or one event makes every checkpoint unusable. */
static int sumsq_ok(agg_dd_t d)
{
    return d.hi >= 0 || isnan(d.hi);
}

static int bound_ok(double x)
{
    return x >= 0 || isnan(x);
}

/* Reads and checks one bucket record into r (already bucket_init'ed). */
static int bucket_decode(const win_conf_t *c, void *r, int64_t idx, int64_t end,
                         codec_rd_t *rd, const char **why)
{
    uint64_t n = codec_get_u(rd);
    if (rd->bad || n == 0 || n > ((uint64_t)1 << 40)) return *why = "bucket count", -1;
    F(r, 8, int64_t)[0] = (int64_t)n;
    if (c->off_shift) {
        double s = codec_get_f64(rd);
        if (!isfinite(s)) return *why = "bucket shift", -1;
        *F(r, c->off_shift, double) = s;
    }
    if (c->off_s1) {
        agg_dd_t d = get_dd(rd);
        *F(r, c->off_s1, agg_dd_t) = d; /* (any: sumsq_ok) */
    }
    if (c->off_s2) {
        agg_dd_t d = get_dd(rd);
        if (!sumsq_ok(d)) return *why = "bucket sum of squares", -1;
        *F(r, c->off_s2, agg_dd_t) = d;
    }
    if (c->off_min) {
        double x = codec_get_f64(rd);
        if (!isfinite(x)) return *why = "bucket min", -1;
        *F(r, c->off_min, double) = x;
    }
    if (c->off_max) {
        double x = codec_get_f64(rd);
        if (!isfinite(x) || (c->off_min && x < *F(r, c->off_min, double)))
            return *why = "bucket max", -1;
        *F(r, c->off_max, double) = x;
    }
    int64_t t0 = idx * c->every, t1 = t0 + c->every; /* the bucket's [t0, t1) */
    uint16_t offs[2] = {c->off_first, c->off_last};
    for (int k = 0; k < 2; k++) {
        if (!offs[k]) continue;
        int64_t t = codec_get_i(rd);
        uint64_t v = codec_get_u64(rd);
        if (rd->bad || t < t0 || t >= t1 || t > end || (!c->ids && !isfinite(num_of(v))))
            return *why = "bucket first/last", -1;
        F(r, offs[k], int64_t)[0] = t;
        F(r, offs[k] + 8, uint64_t)[0] = v;
    }
    if (c->off_first && c->off_last &&
        F(r, c->off_last, int64_t)[0] < F(r, c->off_first, int64_t)[0])
        return *why = "bucket last before first", -1;
    if (c->off_ids) {
        mset_t *s = F(r, c->off_ids, mset_t);
        if (mset_decode(s, rd, (uint32_t)(n < UINT32_MAX ? n : UINT32_MAX)) != 0)
            return *why = "bucket ids", -1;
        uint64_t tot = 0, id;
        uint32_t cnt;
        for (uint32_t it = 0; mset_next(s, &it, &id, &cnt);) tot += cnt;
        if (tot != n) return *why = "bucket ids do not match its count", -1;
    }
    if (c->off_qs) {
        qsketch_t **qp = F(r, c->off_qs, qsketch_t *);
        qsketch_free(*qp);
        if (qsketch_decode(*qp, rd) != 0 || (*qp)->gamma != (1 + c->alpha) / (1 - c->alpha) ||
            qsketch_count(*qp) != n) {
            qsketch_free(*qp);
            qsketch_init(*qp, c->alpha);
            return *why = "bucket quantile sketch", -1;
        }
    }
    return 0;
}

/* Rebuilds n, the deques, the id counts and the sketch of the running
 * window from items [lo, len). */
static void rebuild_running(win_t *w)
{
    const win_conf_t *c = w->conf;
    for (uint32_t i = w->lo; i < w->items.len; i++) {
        void *r = ring_at(&w->items, i);
        int64_t key = F(r, 0, int64_t)[0];
        if (!c->every) {
            uint64_t bits = ev_bits(w, i);
            double x = num_of(bits);
            w->n++;
            if (w_mm(w)) {
                if (HAS(w, AGG_MIN)) mono_update(&w_mm(w)[0], key, x);
                if (HAS(w, AGG_MAX)) mono_update(&w_mm(w)[1], key, x);
            }
            if (w_qs(w)) qsketch_add(w_qs(w), x);
            continue;
        }
        w->n += F(r, 8, int64_t)[0];
        if (c->off_min) mono_update(&w_mm(w)[0], key, *F(r, c->off_min, double));
        if (c->off_max) mono_update(&w_mm(w)[1], key, *F(r, c->off_max, double));
        if (w_ids(w)) {
            uint64_t id;
            mset_t *s = F(r, c->off_ids, mset_t);
            for (uint32_t it = 0; mset_next(s, &it, &id, NULL);) mset_add(w_ids(w), id);
        }
        if (w_qs(w)) qsketch_merge(w_qs(w), *F(r, c->off_qs, qsketch_t *), 1);
    }
    if (!c->every && w_ids(w) && w->n > SMALL_IDS) ids_materialize(w);
}

/* win_init, or win_init_in when the caller gives the area. */
static void init_either(win_t *w, const win_conf_t *c, void *area)
{
    if (area)
        win_init_in(w, c, area);
    else
        win_init(w, c);
}

int win_decode(win_t *w, const win_conf_t *c, const void *data, size_t len, size_t *used,
               char *err, size_t errlen)
{
    return win_decode_in(w, c, NULL, data, len, used, err, errlen);
}

int win_decode_in(win_t *w, const win_conf_t *c, void *area, const void *data, size_t len,
                  size_t *used, char *err, size_t errlen)
{
    codec_rd_t rd = {data, (const unsigned char *)data + len, 0};
    const char *why = NULL;
    init_either(w, c, area);
    if (len < 2 || rd.p[0] != WIN_MAGIC || rd.p[1] != WIN_VERSION) {
        why = "bad magic or version";
        goto bad;
    }
    rd.p += 2;
    uint64_t range = codec_get_u(&rd), every = codec_get_u(&rd), kinds = codec_get_u(&rd),
             ids = codec_get_u(&rd);
    if (rd.bad) goto trunc;
    if (range != (uint64_t)c->range || every != (uint64_t)c->every || kinds != c->kinds ||
        ids != (uint64_t)c->ids) {
        why = "the state was written for another window definition";
        goto bad;
    }
    int64_t end = WIN_NONE, floor = WIN_NONE;
    if (codec_get_u(&rd)) end = codec_get_i(&rd);
    if (codec_get_u(&rd)) floor = codec_get_i(&rd);
    uint64_t n = codec_get_u(&rd), lo = codec_get_u(&rd);
    if (rd.bad) goto trunc;
    if ((end != WIN_NONE && (end < -WIN_TIME_LIMIT || end > WIN_TIME_LIMIT)) ||
        (floor != WIN_NONE && (floor < -WIN_TIME_LIMIT || floor > WIN_TIME_LIMIT)) ||
        (end != WIN_NONE && floor != WIN_NONE && end < floor)) {
        why = "times out of range";
        goto bad;
    }
    if (lo > n || n > codec_left(&rd) || (end == WIN_NONE && n > 0)) {
        why = "record count";
        goto bad;
    }
    w->end = end;
    w->floor = floor;
    int64_t prev = 0, split = 0; /* no records without an end */
    if (end != WIN_NONE) split = c->every ? bucket_of(c, end) - c->nbuckets : end - c->range;
    int64_t min_idx = c->every ? weir_floordiv(-WIN_TIME_LIMIT, c->every) : 0;
    for (uint64_t i = 0; i < n; i++) {
        int64_t key;
        if (i == 0) {
            key = codec_get_i(&rd);
        } else {
            uint64_t delta = codec_get_u(&rd);
            if (delta > (uint64_t)2 * WIN_TIME_LIMIT || (c->every && delta == 0)) {
                why = "records out of order";
                goto bad;
            }
            key = (int64_t)((uint64_t)prev + delta);
        }
        if (rd.bad) goto trunc;
        if (key < -WIN_TIME_LIMIT || (i > 0 && key < prev)) {
            why = "records out of order";
            goto bad;
        }
        prev = key;
        if (c->every ? (key < min_idx || key > bucket_of(c, end)) : key > end) {
            why = "record after the window end";
            goto bad;
        }
        if ((i < lo) != (key <= split)) {
            why = "running window boundary";
            goto bad;
        }
        void *r = ring_push(&w->items);
        if (!c->every) {
            F(r, 0, int64_t)[0] = key;
            if (w->items.rsize == 16) {
                uint64_t v = codec_get_u64(&rd);
                if (rd.bad) goto trunc;
                if (!c->ids && !isfinite(num_of(v))) {
                    why = "value not finite";
                    goto bad;
                }
                F(r, 8, uint64_t)[0] = v;
            }
            continue;
        }
        bucket_init(c, r, key);
        if (bucket_decode(c, r, key, end, &rd, &why) != 0) goto bad;
    }
    w->lo = (uint32_t)lo;
    rebuild_running(w);
    if (w_mom(w)) {
        agg_moments_t m;
        agg_moments_init(&m, (c->kinds & AGG_NEED_VAR) != 0);
        m.n = codec_get_i(&rd);
        m.shift = codec_get_f64(&rd);
        m.s1 = get_dd(&rd);
        m.s2 = get_dd(&rd);
        m.e1 = codec_get_f64(&rd);
        m.e2 = codec_get_f64(&rd);
        m.a1 = codec_get_f64(&rd);
        uint64_t flags = codec_get_u(&rd);
        if (rd.bad) goto trunc;
        if (m.n != w->n || !isfinite(m.shift) || !sumsq_ok(m.s2) || !bound_ok(m.e1) ||
            !bound_ok(m.e2) || !bound_ok(m.a1) || flags > 3) {
            why = "running sums";
            goto bad;
        }
        m.fresh = (uint8_t)(flags & 1);
        m.pinned = (uint8_t)(flags >> 1);
        memcpy(w_mom(w), &m, agg_moments_size(m.var));
    }
    if (used) *used = (size_t)(rd.p - (const unsigned char *)data);
    return 0;
trunc:
    why = "truncated";
bad:
    {
        size_t off = rd.bad ? len : (size_t)(rd.p - (const unsigned char *)data);
        win_free(w);
        init_either(w, c, area);
        return weir_errf(err, errlen, WEIR_ECORRUPT, "window state: %s (at byte %zu of %zu)",
                         why, off, len);
    }
}
