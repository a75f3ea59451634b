/* win.h — one key's sliding event-time window over one input, maintaining
 * a set of aggregates (count, sum, avg, min, max, variance, stddev, first,
 * last, distinct, approx_distinct, approx_quantile) as DESIGN.md "Semantics"
 * defines them. The engine keeps one win_t per (key, window group), where a
 * group is the aggregates that share an input, a range D and an `every` H.
 *
 * Semantics. A query at time t covers, exact window (H = 0): the values added
 * with time in (t - D, t]; bucketed window (H > 0, D a multiple of H): the
 * values whose bucket floor(time / H) is one of the D/H buckets ending with
 * t's bucket — values later than t in t's bucket included, as DESIGN.md says.
 * first/last: the value with the smallest/largest event time in the window;
 * ties go to the earlier/later in add order (log order). Values are added in
 * log order with any times (a late one is inserted in time order); the
 * engine never adds below the watermark.
 *
 * How the engine calls it, per event e of key k at time t with input x:
 *     if (x is not null) win_add(w, t, x);       // count(): x is any value
 *     win_query(w, t, asks, nasks, results);     // the features as of t
 *     win_expire(w, watermark);                  // optional per event; O(1) if nothing to drop
 * and for a late event (t < watermark: not applied), only
 *     win_query(w, watermark, asks, nasks, results);
 * Nulls: an event whose x is null is not added (aggregates skip nulls);
 * count() is a window whose input is never null, e.g. a constant 0.
 *
 * Costs. The window keeps a running state for the window ending at `end`
 * (the largest time added or queried): a query at t = end (every in-order
 * event) is O(1) — count/sum/avg/variance/stddev from double-double moments
 * (agg.h), min/max from monotonic deques (mono.h), first/last from the ends
 * of the sorted store, distinct from a counting multiset (mset.h),
 * approx_quantile from a DDSketch with exact removal (qsketch.h, O(bins)).
 * Adding an in-order value is O(1) amortized plus the evictions it causes
 * (each value is evicted once); min/max add O(log n) worst case, no
 * O(window) spike. A late value (t < end) is inserted after the values newer
 * than it (O(those), few: they are within the lateness) and updates the
 * running state when it falls in the running window. A query below end
 * (an out-of-order event, a late event's query at the watermark) takes the
 * slow path: it recomputes from the stored values of (t - D, t] — O(values
 * in the window), or O(D/H buckets) for a bucketed window — except that a
 * bucketed query in end's bucket is the fast path. Storage: an exact window
 * stores every value of the last D + lateness (16 bytes each, 8 for a
 * count-only window); a bucketed window stores one partial per non-empty
 * bucket, at most D/H + lateness/H + 1, whatever the event rate.
 *
 * approx_distinct: over these windows it is computed exactly (the ids are
 * stored for eviction anyway), which is within any stated error; the HLL of
 * hll.h is for the unbounded and on-close cases. Its memory is that of
 * distinct. (A sliding HLL with per-register max-lists is the known way to
 * bound it; not done.)
 *
 * Ids. A numeric window takes doubles (finite); distinct uses their bit
 * patterns (-0 = 0). An id window (conf.ids) takes 64-bit ids (for strings,
 * weir_hash64 of the bytes) and supports count, distinct, approx_distinct,
 * first and last (which return the id; mapping it back to a string is the
 * engine's, e.g. through a per-partition string table).
 *
 * Memory comes from weir_malloc; win_bytes() reports it. Determinism: every
 * result is a function of the sequence of calls, and win_encode/win_decode
 * keep the running sums bit-exact, so a restored window answers
 * bit-identically to the original. Times are milliseconds in +-2^62.
 * Single owner, no locking. */
#ifndef WEIR_STREAM_WIN_H
#define WEIR_STREAM_WIN_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "stream/agg.h"
#include "stream/mono.h"
#include "stream/mset.h"
#include "stream/qsketch.h"
#include "stream/ring.h"

#define WIN_TIME_LIMIT ((int64_t)1 << 62)
#define WIN_NONE INT64_MIN

/* Shared by every key's window of one group; owned by the engine and must
 * outlive the windows. Fill it with win_conf_init. */
typedef struct win_conf {
    int64_t range; /* D, ms, > 0 */
    int64_t every; /* H, ms; 0 = exact window */
    uint32_t kinds; /* AGG_BIT(kind) mask */
    int ids;        /* values are ids, not numbers */
    double alpha;   /* relative accuracy of approx_quantile */
    /* derived by win_conf_init */
    int64_t nbuckets; /* D / H */
    uint32_t rsize;   /* bytes per stored record */
    uint16_t off_shift, off_s1, off_s2, off_min, off_max, off_first, off_last, off_ids, off_qs;
    /* The window's area (see win_init_in): what the kinds need, then the
     * inline records. */
    uint32_t area_size;
    uint16_t area_mom, area_mm, area_ids, area_qs, area_inl, inl_cap;
} win_conf_t;

/* Validates and derives. kinds must be non-empty; an id window takes no
 * numeric kinds; every must be 0 or divide range; alpha 0 means
 * QSKETCH_DEFAULT_ALPHA. Fills err with a sentence on failure. */
int win_conf_init(win_conf_t *c, int64_t range, int64_t every, uint32_t kinds, int ids,
                  double alpha, char *err, size_t errlen);

typedef union win_val {
    double num;
    uint64_t id;
} win_val_t;

static inline win_val_t win_num(double x)
{
    win_val_t v;
    v.num = x;
    return v;
}

static inline win_val_t win_id(uint64_t id)
{
    win_val_t v;
    v.id = id;
    return v;
}

/* Layout. A window is this header plus an AREA of conf->area_size bytes:
 * the running structures its kinds need (moments for sum/avg/variance/
 * stddev, the min/max deques, the distinct multiset, the quantile sketch)
 * and room for the first conf->inl_cap records inline. A window whose values
 * fit there allocates nothing. win_init allocates the area; win_init_in takes
 * the caller's (the engine puts it right after the header, in the key's one
 * state block), which must stay at the same address while the window lives. */
typedef struct win {
    const win_conf_t *conf;
    int64_t end;   /* end of the running window; WIN_NONE before anything */
    int64_t floor; /* the largest watermark given to win_expire; WIN_NONE */
    int64_t n;     /* values in the running window */
    ring_t items;  /* exact: {time, value} sorted by (time, add order);
                      bucketed: bucket partials sorted by bucket index */
    uint32_t lo;   /* items [0, lo) are older than the running window */
    uint16_t own_area; /* the area is ours (win_init) */
    uint16_t ids_on;   /* exact id windows: the running multiset is kept (see win.c) */
    /* (the area is found from the ring's inline buffer, which lies in it:
     * no pointer of its own, 8 of a window's bytes read for every event) */
} win_t;

/* What to compute: a kind of the window's conf, and q for approx_quantile. */
typedef struct win_ask {
    agg_kind_t kind;
    double q;
} win_ask_t;

void win_init(win_t *w, const win_conf_t *c);
/* As win_init, in the caller's area of c->area_size bytes (8-aligned; the
 * caller frees it after win_free). */
void win_init_in(win_t *w, const win_conf_t *c, void *area);
void win_free(win_t *w);

/* Adds a value at time t. WEIR_ERANGE if t is below the last watermark given
 * to win_expire (it could not be answered right) or outside +-2^62;
 * WEIR_EINVAL for a non-finite number. */
int win_add(win_t *w, int64_t t, win_val_t v);

/* Computes asks[i] as of time t into out[i]. May advance the running window
 * when t > end (that changes no answer of any allowed later call).
 * WEIR_ERANGE if t is below the last watermark; WEIR_EINVAL if a kind is not
 * in the conf. */
int win_query(win_t *w, int64_t t, const win_ask_t *asks, size_t nasks, agg_result_t *out);

/* The engine's whole per-event step on one window, in one call: exactly
 *     if (v) win_add(w, t, *v);  rc = win_query(w, t, asks, nasks, out);  win_expire(w, wm);
 * (v NULL: nothing to add), returning rc, for asks the caller has checked
 * against the conf (every kind in conf->kinds: not re-checked). An in-order
 * event (t at or past end) takes the running state's answers without the
 * separate calls' repeated checks. nasks 0 computes no answer and leaves
 * exactly the state any asks would have left (a replay that needs no
 * features skips their cost). */
int win_step(win_t *w, int64_t t, const win_val_t *v, const win_ask_t *asks, size_t nasks,
             agg_result_t *out, int64_t wm);

/* As win_query, but changes nothing in the window (not even the running
 * state a query may advance): for reads that are not in the log, such as
 * GET /v1/features, which must not make later results depend on them. */
int win_peek(win_t *w, int64_t t, const win_ask_t *asks, size_t nasks, agg_result_t *out);

/* One aggregate (convenience over win_query). */
int win_query1(win_t *w, int64_t t, agg_kind_t kind, double q, agg_result_t *out);

/* The partition's watermark moved to wm: drops what no query at or after wm
 * can see (values at or before wm - D; buckets at or before
 * floor(wm / H) - D/H), and refuses adds and queries below wm from now on. */
void win_expire(win_t *w, int64_t wm);

/* Asks for the memory a step on this window reads outside its header and
 * area: the ends of a ring that moved to the heap, the distinct multiset.
 * A hint (changes nothing) for a caller that knows its next keys. */
void win_prefetch(const win_t *w);

/* A RELOAD THAT CHANGES AN EXACT WINDOW'S AGGREGATES (engine_migrate.c):
 * adding max(x) over 1h beside sum(x) over 1h changes the window the two
 * share. An exact window stores its values, so the new one is rebuilt from
 * them rather than started empty: win_rebuildable says whether `to` can be
 * made from a window of `from` (both exact, the same range and value kind,
 * and the values kept: a count-only window keeps times alone), and
 * win_rebuild fills `to` (empty) with from's values in their order, its
 * end and its floor. What both confs compute is recomputed from the
 * values: equal to from's answers up to the last bits of a sum (a running
 * sum carries its own rounding history). */
int win_rebuildable(const win_conf_t *from, const win_conf_t *to);
void win_rebuild(win_t *to, const win_t *from);

/* Nothing stored (a key whose windows are all empty can be evicted). */
static inline int win_is_empty(const win_t *w)
{
    return w->items.len == 0;
}

/* Heap bytes held by this window (not counting the win_t itself, nor a
 * caller's area). */
size_t win_bytes(const win_t *w);

/* Appends the window's state. */
void win_encode(const win_t *w, weir_buf_t *b);
/* Decodes a state written by win_encode for the same conf into w
 * (uninitialized on entry; on failure w is left empty and valid). Checks
 * every structural invariant of untrusted bytes; *used gets the bytes read. */
int win_decode(win_t *w, const win_conf_t *c, const void *data, size_t len, size_t *used,
               char *err, size_t errlen);
/* As win_decode, in the caller's area (win_init_in). */
int win_decode_in(win_t *w, const win_conf_t *c, void *area, const void *data, size_t len,
                  size_t *used, char *err, size_t errlen);

#endif
