/* onclose.c — aggregates on window close (see onclose.h). */
#include "stream/onclose.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/intmath.h"
#include "stream/agg.h"
#include "stream/aggval.h"
#include "stream/codec.h"
#include "stream/mset.h"
#include "stream/qsketch.h"

/* An event kept for open windows: time, log order, null bits, then one
 * win_val_t per aggregate slot of the aggregate (its argument's value). */
typedef struct oc_event {
    int64_t t;
    uint64_t seq;
    uint64_t nulls; /* bit i: slot i's argument was null */
    win_val_t v[];
} oc_event_t;

typedef struct oc_win {
    int64_t start, end;
    uint64_t gen;
} oc_win_t;

/* INLINE ROOM. A key's state is one block: this header, then room for
 * OC_WINS_INLINE windows and OC_EV_INLINE events. An hourly tumbling window
 * of a card holds a window or two and a few events: one allocation, and one
 * wait for the block (its first lines are asked for together) where three
 * blocks, the second and third found through the first, were two waits one
 * after the other and three pages, for every add and every close. An array
 * that outgrows its room moves to the heap, and stays there. */
#define OC_WINS_INLINE 2
#define OC_EV_INLINE 4

struct oc_key {
    unsigned char *ev; /* nev records of rsize bytes, sorted by (t, seq) */
    uint32_t nev, capev, rsize;
    oc_win_t *wins;
    uint32_t nwins, capwins;
    uint64_t next_gen;
    uint32_t refs; /* timers pointing here (TIMERS KNOW THEIR STATE) */
    uint32_t dead; /* freed by its key: empty, waiting for refs to reach 0 */
    oc_win_t winl[OC_WINS_INLINE];
    _Alignas(8) unsigned char evl[]; /* OC_EV_INLINE records */
};

#define EV(k, i) ((oc_event_t *)((k)->ev + (size_t)(i) * (k)->rsize))

static oc_key_t *state_new(uint32_t rsize)
{
    oc_key_t *k = weir_calloc(1, sizeof *k + (size_t)OC_EV_INLINE * rsize);
    k->rsize = rsize;
    k->ev = k->evl;
    k->capev = OC_EV_INLINE;
    k->wins = k->winl;
    k->capwins = OC_WINS_INLINE;
    return k;
}

/* Room for at least `need` records of `size` bytes in *arr (cap of them
 * now), moving out of the inline room `inl` when it is outgrown. */
static void *grow(void *arr, uint32_t *cap, uint32_t need, size_t size, const void *inl)
{
    if (need <= *cap) return arr;
    uint32_t ncap = *cap * 2 > need ? *cap * 2 : need;
    void *na;
    if (arr == inl) {
        na = weir_malloc((size_t)ncap * size);
        memcpy(na, arr, (size_t)*cap * size);
    } else {
        na = weir_realloc(arr, (size_t)ncap * size);
    }
    *cap = ncap;
    return na;
}

/* Frees the arrays that moved to the heap; the state keeps its inline room. */
static void state_free_arrays(oc_key_t *k)
{
    if (k->ev != k->evl) weir_free(k->ev);
    if (k->wins != k->winl) weir_free(k->wins);
    k->ev = k->evl;
    k->capev = OC_EV_INLINE;
    k->wins = k->winl;
    k->capwins = OC_WINS_INLINE;
    k->nev = k->nwins = 0;
}

/* A timer per open window: a million of them at a million keys. A key of
 * up to TIMER_KEY_INLINE bytes (card and account ids, numbers) is kept in
 * the timer: no allocation per window opened, no free per window closed
 * (together a twentieth of a replay's CPU), and less memory than a pointer
 * to a malloc'd copy. */
#define TIMER_KEY_INLINE 16

/* TIMERS KNOW THEIR STATE. Closing a window by its key means a lookup: the
 * key's slot and its entry (the whole per-key block, 1.2 KB in the fraud
 * pipeline), then its on-close state, each a cache miss at a million keys
 * and one close per event in an hourly aggregate of sparse keys. A timer
 * pushed by oc_add points at the state instead, and counts as a reference:
 * a state freed with its key (reset, expired, dropped by a reload) while
 * timers point at it is emptied and marked dead, and the last timer to pop
 * or go frees it; a timer of a dead state is skipped, as a lookup would
 * have found no such window. The pointer is not part of the checkpoint
 * (states and timers are encoded by value): decoded timers carry NULL and
 * close through a lookup. */
typedef struct oc_timer {
    int64_t end, start;
    uint64_t gen;
    uint64_t kpre; /* the key's first 8 bytes, big-endian, zero-padded (timer_less) */
    uint32_t ai;
    uint32_t klen;
    union {
        char inl[TIMER_KEY_INLINE]; /* klen <= TIMER_KEY_INLINE */
        char *ptr;                  /* else: weir_malloc'd, owned */
    } key;
    oc_key_t *state; /* a reference, or NULL: found by key */
} oc_timer_t;

static const char *timer_key(const oc_timer_t *e)
{
    return e->klen <= TIMER_KEY_INLINE ? e->key.inl : e->key.ptr;
}

static void timer_set_key(oc_timer_t *e, const char *key, size_t klen)
{
    e->klen = (uint32_t)klen;
    if (klen <= TIMER_KEY_INLINE)
        memcpy(e->key.inl, key, klen);
    else
        e->key.ptr = weir_strndup(key, klen);
}

static void timer_free_key(oc_timer_t *e)
{
    if (e->klen > TIMER_KEY_INLINE) weir_free(e->key.ptr);
    e->klen = 0;
}

static void state_free(oc_key_t *k)
{
    state_free_arrays(k);
    weir_free(k);
}

/* Drops a reference to k (NULL: none); returns k if still live, else NULL
 * (and frees a dead state whose last reference this was). */
static oc_key_t *state_unref(oc_key_t *k)
{
    if (!k) return NULL;
    k->refs--;
    if (!k->dead) return k;
    if (k->refs == 0) state_free(k);
    return NULL;
}

/* A timer going away unpopped: its key and its reference. */
static void timer_drop(oc_timer_t *e)
{
    timer_free_key(e);
    state_unref(e->state);
    e->state = NULL;
}

/* ---- timers --------------------------------------------------------------- */

/* TIMERS BY END. The timers of a tumbling or hopping aggregate share their
 * ends: every key's hourly window ends on the hour. A binary heap of all of
 * them paid log2(n) comparisons and 64-byte moves per push and per pop
 * (a twelfth of a replay's CPU, at 7,500 open windows per partition). So
 * the timers are kept in one bucket per end: a push appends to its end's
 * bucket (found through a hash of the ends; the last one used first), and
 * a min-heap orders the buckets by end. A bucket is sorted once, when its
 * first timer pops (a radix sort on the key prefix; timer_less settles the
 * keys that share one), and then popped in order. Session windows, whose
 * ends are all different, get a bucket each: a heap of buckets then, which
 * costs about what the heap of timers did. A timer pushed into a bucket
 * already being popped (a checkpoint's timers, none from oc_add: a window
 * ends after the event that opens it, which is at or past the watermark)
 * is inserted in its place. */
typedef struct oc_bucket {
    int64_t end;
    oc_timer_t *v;
    uint32_t n, cap;
    uint32_t at;     /* v[at, n) are pending; [0, at) popped */
    uint32_t sorted; /* v[at, n) is in timer_less order */
} oc_bucket_t;

#define NO_BUCKET UINT32_MAX

struct oc_timers {
    oc_bucket_t *b;   /* every bucket slot; a free one has n == 0 */
    uint32_t nb, capb;
    uint32_t *free;   /* free slots */
    uint32_t nfree;
    uint32_t *heap;   /* the live slots, a min-heap by end */
    uint32_t nheap;
    uint32_t *map;    /* open addressing: end -> slot (NO_BUCKET: empty) */
    uint32_t mapcap;  /* a power of two, at least twice nheap */
    uint32_t last;    /* the slot pushed to last, while live (NO_BUCKET) */
    size_t n;         /* pending timers */
    oc_timer_t popped; /* the last popped timer: its key is the due's, until the next pop */
    uint64_t *scratch; /* sort_bucket's (prefix, index) pairs */
    size_t scratch_cap;
};

oc_timers_t *oc_timers_new(void)
{
    oc_timers_t *t = weir_calloc(1, sizeof(oc_timers_t));
    t->last = NO_BUCKET;
    return t;
}

void oc_timers_free(oc_timers_t *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->nb; i++) {
        oc_bucket_t *bk = &t->b[i];
        for (uint32_t j = bk->at; j < bk->n; j++) timer_drop(&bk->v[j]);
        weir_free(bk->v);
    }
    weir_free(t->b);
    weir_free(t->free);
    weir_free(t->heap);
    weir_free(t->map);
    weir_free(t->scratch);
    timer_free_key(&t->popped);
    weir_free(t);
}

int64_t oc_timers_next(const oc_timers_t *t)
{
    return t->nheap ? t->b[t->heap[0]].end : INT64_MAX;
}

size_t oc_timers_bytes(const oc_timers_t *t)
{
    size_t b = (size_t)t->capb * (sizeof *t->b + 2 * sizeof(uint32_t)) + (size_t)t->mapcap * sizeof *t->map +
               t->scratch_cap * sizeof *t->scratch;
    for (uint32_t i = 0; i < t->nb; i++) {
        const oc_bucket_t *bk = &t->b[i];
        b += (size_t)bk->cap * sizeof *bk->v;
        for (uint32_t j = bk->at; j < bk->n; j++)
            if (bk->v[j].klen > TIMER_KEY_INLINE) b += bk->v[j].klen + 1;
    }
    return b;
}

/* A timer's key prefix: its first 8 bytes as a big-endian number, missing
 * bytes as zeros. Two keys whose prefixes differ compare as their bytes do
 * (memcmp, then the shorter first): at the first differing byte either both
 * have a byte there, or the shorter key has ended (a zero against a byte
 * that, being different, is not zero). */
static uint64_t key_prefix(const char *key, uint32_t klen)
{
    uint64_t p = 0;
    if (klen >= 8) { /* one load (card ids have 8 bytes or more) */
        memcpy(&p, key, sizeof p);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        p = __builtin_bswap64(p);
#endif
        return p;
    }
    for (uint32_t i = 0; i < 8; i++) p = p << 8 | (i < klen ? (unsigned char)key[i] : 0);
    return p;
}

/* Order: end, key bytes, aggregate, start — a function of the log only.
 * Within a bucket (one end) the prefix settles most comparisons without
 * following the key pointers (a cache miss each, at a million keys). */
static int timer_less(const oc_timer_t *a, const oc_timer_t *b)
{
    if (a->end != b->end) return a->end < b->end;
    if (a->kpre != b->kpre) return a->kpre < b->kpre;
    uint32_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(timer_key(a), timer_key(b), n);
    if (c != 0) return c < 0;
    if (a->klen != b->klen) return a->klen < b->klen;
    if (a->ai != b->ai) return a->ai < b->ai;
    return a->start < b->start;
}

static int timer_cmp(const void *a, const void *b)
{
    return timer_less(a, b) ? -1 : timer_less(b, a) ? 1 : 0;
}

/* -- the heap of buckets, by end -- */

static void heap_up(oc_timers_t *t, uint32_t i)
{
    uint32_t slot = t->heap[i];
    int64_t end = t->b[slot].end;
    while (i && end < t->b[t->heap[(i - 1) / 2]].end) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = slot;
}

/* Removes the heap's top. */
static void heap_pop(oc_timers_t *t)
{
    uint32_t last = t->heap[--t->nheap], i = 0;
    int64_t end = t->b[last].end;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= t->nheap) break;
        if (c + 1 < t->nheap && t->b[t->heap[c + 1]].end < t->b[t->heap[c]].end) c++;
        if (t->b[t->heap[c]].end >= end) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->nheap) t->heap[i] = last;
}

/* -- the map of ends to buckets -- */

static inline uint32_t end_hash(const oc_timers_t *t, int64_t end)
{
    return (uint32_t)(((uint64_t)end * 0x9E3779B97F4A7C15ull) >> 32) & (t->mapcap - 1);
}

static uint32_t map_find(const oc_timers_t *t, int64_t end)
{
    if (!t->mapcap) return NO_BUCKET;
    for (uint32_t i = end_hash(t, end);; i = (i + 1) & (t->mapcap - 1)) {
        uint32_t slot = t->map[i];
        if (slot == NO_BUCKET || t->b[slot].end == end) return slot;
    }
}

static void map_put(oc_timers_t *t, uint32_t slot)
{
    uint32_t i = end_hash(t, t->b[slot].end);
    while (t->map[i] != NO_BUCKET) i = (i + 1) & (t->mapcap - 1);
    t->map[i] = slot;
}

static void map_grow(oc_timers_t *t)
{
    weir_free(t->map);
    t->mapcap = t->mapcap ? t->mapcap * 2 : 16;
    t->map = weir_malloc((size_t)t->mapcap * sizeof *t->map);
    memset(t->map, 0xff, (size_t)t->mapcap * sizeof *t->map);
    for (uint32_t i = 0; i < t->nheap; i++) map_put(t, t->heap[i]);
}

/* Linear probing's deletion: the entries after the hole that would not be
 * found past it move back into it. */
static void map_del(oc_timers_t *t, int64_t end)
{
    uint32_t mask = t->mapcap - 1, i = end_hash(t, end);
    while (t->b[t->map[i]].end != end) i = (i + 1) & mask;
    for (uint32_t j = (i + 1) & mask; t->map[j] != NO_BUCKET; j = (j + 1) & mask) {
        uint32_t home = end_hash(t, t->b[t->map[j]].end);
        /* j's entry may move to i unless its home lies cyclically in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->map[i] = t->map[j];
            i = j;
        }
    }
    t->map[i] = NO_BUCKET;
}

/* -- buckets -- */

static uint32_t bucket_of(oc_timers_t *t, int64_t end)
{
    if (t->last != NO_BUCKET && t->b[t->last].end == end) return t->last;
    uint32_t slot = map_find(t, end);
    if (slot != NO_BUCKET) return t->last = slot;
    if (t->nfree) {
        slot = t->free[--t->nfree];
    } else {
        if (t->nb == t->capb) {
            t->capb = t->capb ? t->capb * 2 : 16;
            t->b = weir_realloc(t->b, (size_t)t->capb * sizeof *t->b);
            t->free = weir_realloc(t->free, (size_t)t->capb * sizeof *t->free);
            t->heap = weir_realloc(t->heap, (size_t)t->capb * sizeof *t->heap);
        }
        slot = t->nb++;
        memset(&t->b[slot], 0, sizeof t->b[slot]);
    }
    oc_bucket_t *bk = &t->b[slot];
    bk->end = end;
    bk->n = bk->at = bk->sorted = 0;
    if (2 * (t->nheap + 1) > t->mapcap) map_grow(t);
    t->heap[t->nheap++] = slot;
    heap_up(t, t->nheap - 1);
    map_put(t, slot);
    return t->last = slot;
}

/* An emptied bucket's slot goes to the free list, with its array only if
 * small: a slot is reused for whatever end comes next, often a session's
 * single timer, and an hour's array of thousands kept in it would be
 * stranded there, one more every hour (the next hour's bucket exists before
 * this one empties, so it never gets the big array back). */
#define BUCKET_KEEP 16
static void bucket_release(oc_timers_t *t, uint32_t slot)
{
    oc_bucket_t *bk = &t->b[slot];
    bk->n = bk->at = 0;
    if (bk->cap > BUCKET_KEEP) {
        weir_free(bk->v);
        bk->v = NULL;
        bk->cap = 0;
    }
    t->free[t->nfree++] = slot;
    if (t->last == slot) t->last = NO_BUCKET;
}

static void timer_push(oc_timers_t *t, oc_timer_t e)
{
    e.kpre = key_prefix(timer_key(&e), e.klen);
    uint32_t slot = bucket_of(t, e.end); /* (may move t->b) */
    oc_bucket_t *bk = &t->b[slot];
    if (bk->n == bk->cap) {
        bk->cap = bk->cap ? bk->cap * 2 : 1; /* a session window's end has one timer */
        bk->v = weir_realloc(bk->v, (size_t)bk->cap * sizeof *bk->v);
    }
    uint32_t i = bk->n++;
    if (bk->sorted) /* being popped: keep the order */
        for (; i > bk->at && timer_less(&e, &bk->v[i - 1]); i--) bk->v[i] = bk->v[i - 1];
    bk->v[i] = e;
    t->n++;
}

/* Sorts v[at, n) of a bucket (one end) by timer_less: an LSD radix sort of
 * (prefix, index) pairs by the prefix bytes that differ (the histograms of
 * all eight bytes counted in one pass), then timer_less on each run of
 * equal prefixes, then the timers gathered in that order into a new array
 * that replaces the bucket's. */
static void sort_bucket(oc_timers_t *t, oc_bucket_t *bk)
{
    uint32_t n = bk->n - bk->at;
    oc_timer_t *v = bk->v + bk->at;
    bk->sorted = 1;
    if (n < 64) {
        qsort(v, n, sizeof *v, timer_cmp);
        return;
    }
    if (t->scratch_cap < 4 * (size_t)n) {
        t->scratch_cap = 4 * (size_t)n;
        weir_free(t->scratch);
        t->scratch = weir_malloc(t->scratch_cap * sizeof *t->scratch);
    }
    uint64_t *a = t->scratch, *b = t->scratch + 2 * (size_t)n; /* pairs: prefix, index */
    uint32_t count[8][257] = {{0}}; /* 8 KB of stack */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t p = v[i].kpre;
        a[2 * i] = p, a[2 * i + 1] = i;
        /* written out: a loop over k did not unroll (13 instructions a byte) */
        count[0][(p & 0xff) + 1]++;
        count[1][((p >> 8) & 0xff) + 1]++;
        count[2][((p >> 16) & 0xff) + 1]++;
        count[3][((p >> 24) & 0xff) + 1]++;
        count[4][((p >> 32) & 0xff) + 1]++;
        count[5][((p >> 40) & 0xff) + 1]++;
        count[6][((p >> 48) & 0xff) + 1]++;
        count[7][(p >> 56) + 1]++;
    }
    for (int k = 0; k < 8; k++) {
        uint32_t *c = count[k];
        int shift = 8 * k;
        if (c[((a[0] >> shift) & 0xff) + 1] == n) continue; /* one value: nothing to do */
        for (int x = 0; x < 256; x++) c[x + 1] += c[x];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t to = c[(a[2 * i] >> shift) & 0xff]++;
            b[2 * to] = a[2 * i], b[2 * to + 1] = a[2 * i + 1];
        }
        uint64_t *x = a;
        a = b, b = x;
    }
    oc_timer_t *sorted = weir_malloc((size_t)n * sizeof *sorted);
    for (uint32_t i = 0; i < n; i++) sorted[i] = v[a[2 * i + 1]];
    for (uint32_t i = 0, j; i < n; i = j) { /* runs sharing a prefix */
        j = i + 1;
        while (j < n && sorted[j].kpre == sorted[i].kpre) j++;
        if (j - i > 1) qsort(sorted + i, j - i, sizeof *sorted, timer_cmp);
    }
    /* The popped timers [0, at) are gone: the sorted array is the bucket's. */
    weir_free(bk->v);
    bk->v = sorted;
    bk->n = bk->cap = n;
    bk->at = 0;
}

int oc_timers_pop(oc_timers_t *t, int64_t watermark, oc_due_t *due)
{
    if (!t->nheap) return 0;
    uint32_t slot = t->heap[0];
    oc_bucket_t *bk = &t->b[slot];
    if (bk->end > watermark) return 0;
    if (!bk->sorted) sort_bucket(t, bk);
    oc_timer_t top = bk->v[bk->at++];
    t->n--;
    if (bk->at == bk->n) { /* the bucket is done */
        map_del(t, bk->end);
        heap_pop(t);
        bucket_release(t, slot);
    }
    /* The reference goes to the due, untouched: the state is a cache miss
     * the caller asks for before oc_due_state reads it. */
    oc_key_t *state = top.state;
    top.state = NULL;
    timer_free_key(&t->popped);
    t->popped = top;
    *due = (oc_due_t){{timer_key(&t->popped), top.klen}, top.ai, top.start, top.end, top.gen, state};
    return 1;
}

oc_key_t *oc_due_state(oc_due_t *due)
{
    oc_key_t *k = due->state;
    due->state = NULL;
    return state_unref(k);
}

size_t oc_timers_move(oc_timers_t *to, oc_timers_t *from, const uint32_t *ai_map)
{
    size_t moved = 0;
    for (uint32_t i = 0; i < from->nheap; i++) {
        oc_bucket_t *bk = &from->b[from->heap[i]];
        for (uint32_t j = bk->at; j < bk->n; j++) {
            oc_timer_t e = bk->v[j];
            if (ai_map[e.ai] == UINT32_MAX) {
                timer_drop(&e);
                continue;
            }
            e.ai = ai_map[e.ai];
            timer_push(to, e);
            moved++;
        }
        bucket_release(from, from->heap[i]);
    }
    from->nheap = 0;
    from->n = 0;
    if (from->mapcap) memset(from->map, 0xff, (size_t)from->mapcap * sizeof *from->map);
    return moved;
}

/* ---- per-key state --------------------------------------------------------- */

static void win_register(oc_key_t *k, int64_t start, int64_t end, weir_slice_t key, uint32_t ai,
                         oc_timers_t *timers)
{
    k->wins = grow(k->wins, &k->capwins, k->nwins + 1, sizeof *k->wins, k->winl);
    uint64_t gen = ++k->next_gen;
    k->wins[k->nwins++] = (oc_win_t){start, end, gen};
    oc_timer_t e = {.end = end, .start = start, .gen = gen, .ai = ai, .state = k};
    k->refs++;
    timer_set_key(&e, key.ptr, key.len);
    timer_push(timers, e);
}

static int win_open(const oc_key_t *k, int64_t start)
{
    for (uint32_t i = 0; i < k->nwins; i++)
        if (k->wins[i].start == start) return 1;
    return 0;
}

static void add_session(oc_key_t *k, int64_t t, int64_t gap, weir_slice_t key, uint32_t ai,
                        oc_timers_t *timers)
{
    /* Session [first, last + gap): t joins when t - last < gap and first - t < gap,
     * i.e. start - gap < t < end. Every session it touches merges into one. */
    int64_t start = t, end = t + gap;
    uint32_t w = 0;
    for (uint32_t i = 0; i < k->nwins; i++) {
        oc_win_t s = k->wins[i];
        if (s.start - gap < t && t < s.end) {
            if (s.start < start) start = s.start;
            if (s.end > end) end = s.end;
        } else {
            k->wins[w++] = s;
        }
    }
    k->nwins = w;
    win_register(k, start, end, key, ai, timers);
}

void oc_add(oc_key_t **state, const spec_aggregate_t *agg, uint32_t ai, weir_slice_t key,
            int64_t t, uint64_t seq, expr_env_t *argenv, oc_timers_t *timers)
{
    oc_key_t *k = *state;
    uint32_t nslots = agg->aggs.n;
    if (!k) k = *state = state_new((uint32_t)(sizeof(oc_event_t) + nslots * sizeof(win_val_t)));
    /* Insert in (t, seq) order: after every event not later than t. */
    k->ev = grow(k->ev, &k->capev, k->nev + 1, k->rsize, k->evl);
    uint32_t at = k->nev;
    while (at > 0 && EV(k, at - 1)->t > t) at--;
    memmove(k->ev + (size_t)(at + 1) * k->rsize, k->ev + (size_t)at * k->rsize,
            (size_t)(k->nev - at) * k->rsize);
    k->nev++;
    oc_event_t *e = EV(k, at);
    e->t = t;
    e->seq = seq;
    e->nulls = 0;
    for (uint32_t i = 0; i < nslots; i++) {
        const expr_agg_t *a = &agg->aggs.v[i];
        expr_value_t x = expr_int(0); /* count(): every event counts */
        if (a->arg && expr_eval(a->arg, argenv, &x) != 0) x = expr_null();
        if (!aggval_from_value(&x, &e->v[i])) {
            e->nulls |= 1ull << i;
            e->v[i].id = 0; /* defined bytes: the state encodes to the same bytes every run */
        }
    }

    switch (agg->window) {
    case SPEC_WINDOW_TUMBLING: {
        int64_t start = weir_floordiv(t, agg->size_ms) * agg->size_ms;
        if (!win_open(k, start)) win_register(k, start, start + agg->size_ms, key, ai, timers);
        break;
    }
    case SPEC_WINDOW_HOPPING: {
        for (int64_t n = weir_floordiv(t - agg->size_ms, agg->every_ms) + 1; n <= weir_floordiv(t, agg->every_ms); n++) {
            int64_t start = n * agg->every_ms;
            if (!win_open(k, start)) win_register(k, start, start + agg->size_ms, key, ai, timers);
        }
        break;
    }
    case SPEC_WINDOW_SESSION: add_session(k, t, agg->gap_ms, key, ai, timers); break;
    }
}

/* Computes slot i over events [lo, hi) of k. */
static agg_result_t compute_slot(const oc_key_t *k, uint32_t lo, uint32_t hi, uint32_t i,
                                 const expr_agg_t *a, agg_kind_t kind)
{
    agg_result_t r = {1, 0, 0};
    uint64_t bit = 1ull << i;
    int64_t n = 0;
    for (uint32_t j = lo; j < hi; j++) n += !(EV(k, j)->nulls & bit);
    switch (kind) {
    case AGG_COUNT:
        r.null = 0;
        r.num = (double)n;
        return r;
    case AGG_SUM:
    case AGG_AVG:
    case AGG_VARIANCE:
    case AGG_STDDEV: {
        if (kind == AGG_SUM && n == 1 && hi - lo == 1) {
            /* One value (an hourly window of a sparse key: most closes of a
             * replay): its sum is itself, plus 0.0 as the moments would
             * give it (they turn -0 into +0), without their 150 instructions. */
            r.null = 0;
            r.num = EV(k, lo)->v[i].num + 0.0;
            return r;
        }
        agg_moments_t m;
        agg_moments_init(&m, kind == AGG_VARIANCE || kind == AGG_STDDEV);
        for (uint32_t j = lo; j < hi; j++)
            if (!(EV(k, j)->nulls & bit)) agg_moments_add(&m, EV(k, j)->v[i].num, 1);
        if (kind == AGG_SUM) r.null = 0, r.num = n ? agg_moments_sum(&m) : 0.0;
        else if (kind == AGG_AVG && n > 0) r.null = 0, r.num = agg_moments_mean(&m);
        else if (n > 1) {
            double var = agg_moments_m2(&m) / (double)(n - 1);
            r.null = 0;
            r.num = kind == AGG_VARIANCE ? var : sqrt(var);
        }
        return r;
    }
    case AGG_MIN:
    case AGG_MAX:
        for (uint32_t j = lo; j < hi; j++) {
            if (EV(k, j)->nulls & bit) continue;
            double x = EV(k, j)->v[i].num;
            if (r.null || (kind == AGG_MIN ? x < r.num : x > r.num)) r.num = x;
            r.null = 0;
        }
        return r;
    case AGG_FIRST:
        for (uint32_t j = lo; j < hi; j++)
            if (!(EV(k, j)->nulls & bit)) {
                r.null = 0, r.num = EV(k, j)->v[i].num, r.id = EV(k, j)->v[i].id;
                break;
            }
        return r;
    case AGG_LAST:
        for (uint32_t j = hi; j > lo; j--)
            if (!(EV(k, j - 1)->nulls & bit)) {
                r.null = 0, r.num = EV(k, j - 1)->v[i].num, r.id = EV(k, j - 1)->v[i].id;
                break;
            }
        return r;
    case AGG_DISTINCT:
    case AGG_APPROX_DISTINCT: {
        uint64_t *ids = weir_malloc((size_t)(n ? n : 1) * sizeof *ids);
        size_t m = 0;
        int is_id = aggval_is_id(a->arg_type);
        for (uint32_t j = lo; j < hi; j++)
            if (!(EV(k, j)->nulls & bit))
                ids[m++] = is_id ? EV(k, j)->v[i].id : mset_id_of_double(EV(k, j)->v[i].num);
        qsort(ids, m, sizeof *ids, weir_cmp_u64);
        size_t u = 0;
        for (size_t j = 0; j < m; j++) u += j == 0 || ids[j] != ids[j - 1];
        weir_free(ids);
        r.null = 0;
        r.num = (double)u;
        return r;
    }
    case AGG_APPROX_QUANTILE: {
        qsketch_t qs;
        qsketch_init(&qs, QSKETCH_DEFAULT_ALPHA);
        for (uint32_t j = lo; j < hi; j++)
            if (!(EV(k, j)->nulls & bit)) qsketch_add(&qs, EV(k, j)->v[i].num);
        r.null = !qsketch_quantile(&qs, a->q, &r.num);
        qsketch_free(&qs);
        return r;
    }
    default: return r;
    }
}

int oc_key_take_due(const oc_key_t *k, uint32_t ai, weir_slice_t key, int64_t watermark,
                    oc_due_t *due)
{
    const oc_win_t *best = NULL;
    for (uint32_t i = 0; k && i < k->nwins; i++) {
        const oc_win_t *w = &k->wins[i];
        if (w->end > watermark) continue;
        if (!best || w->end < best->end || (w->end == best->end && w->start < best->start)) best = w;
    }
    if (!best) return 0;
    *due = (oc_due_t){key, ai, best->start, best->end, best->gen, NULL};
    return 1;
}

int oc_close(oc_key_t *k, const spec_aggregate_t *agg, const oc_due_t *due, expr_value_t *vals,
             weir_buf_t *scratch)
{
    if (!k) return 0;
    uint32_t w = 0;
    while (w < k->nwins && !(k->wins[w].start == due->start && k->wins[w].gen == due->gen)) w++;
    if (w == k->nwins) return 0;
    uint32_t lo = 0, hi;
    while (lo < k->nev && EV(k, lo)->t < due->start) lo++;
    hi = lo;
    while (hi < k->nev && EV(k, hi)->t < due->end) hi++;

    expr_value_t slots[SPEC_MAX_SELECT_AGGS];
    uint32_t nslots = agg->aggs.n;
    weir_assert(nslots <= SPEC_MAX_SELECT_AGGS); /* the spec's loader refuses more */
    for (uint32_t i = 0; i < nslots; i++) {
        const expr_agg_t *a = &agg->aggs.v[i];
        agg_kind_t kind = aggval_kind(a->kind);
        agg_result_t r = compute_slot(k, lo, hi, i, a, kind);
        slots[i] = aggval_to_value(&r, kind, a->type);
    }
    expr_env_t env = {.aggs = slots, .scratch = scratch->data, .scratch_cap = scratch->cap};
    for (uint32_t i = 0; i < agg->nselect; i++)
        if (expr_eval(agg->select[i].expr, &env, &vals[i]) != 0) vals[i] = expr_null();

    /* The window is done; keep only the events some open window still needs. */
    k->wins[w] = k->wins[--k->nwins];
    int64_t keep = INT64_MAX;
    for (uint32_t i = 0; i < k->nwins; i++)
        if (k->wins[i].start < keep) keep = k->wins[i].start;
    uint32_t drop = 0;
    while (drop < k->nev && EV(k, drop)->t < keep) drop++;
    memmove(k->ev, k->ev + (size_t)drop * k->rsize, (size_t)(k->nev - drop) * k->rsize);
    k->nev -= drop;
    return 1;
}

void oc_key_prefetch(const oc_key_t *k, int deep)
{
    if (!k) return;
    if (!deep) {
        /* the header, the inline windows and the first inline events */
        for (size_t at = 0; at < sizeof *k + 2 * sizeof(oc_event_t); at += 64)
            __builtin_prefetch((const char *)k + at, 1);
        return;
    }
    /* An add looks at the last events (inserting in time order), a close
     * at the first ones and the windows: what is not in the lines above. */
    if (k->nev) {
        if (k->ev != k->evl) __builtin_prefetch(k->ev, 1);
        __builtin_prefetch(EV(k, k->nev - 1), 1);
    }
    if (k->wins != k->winl) __builtin_prefetch(k->wins, 1);
}

void oc_key_free(oc_key_t *k)
{
    if (!k) return;
    if (k->refs == 0) {
        state_free(k);
        return;
    }
    state_free_arrays(k);
    k->dead = 1;
}

size_t oc_key_bytes(const oc_key_t *k)
{
    if (!k) return 0;
    size_t b = sizeof *k + (size_t)OC_EV_INLINE * k->rsize;
    if (k->ev != k->evl) b += (size_t)k->capev * k->rsize;
    if (k->wins != k->winl) b += k->capwins * sizeof *k->wins;
    return b;
}

int oc_key_idle(const oc_key_t *k)
{
    return !k || k->nwins == 0;
}

/* ---- checkpoint encoding ------------------------------------------------------ */

#define OC_MAX_KEY 65536 /* keys are bounded by the decoder (SPEC_MAX_KEY) */

void oc_key_encode(const oc_key_t *k, weir_buf_t *b)
{
    if (!k) {
        codec_put_u(b, 0);
        return;
    }
    uint32_t nslots = (uint32_t)((k->rsize - sizeof(oc_event_t)) / sizeof(win_val_t));
    codec_put_u(b, 1);
    codec_put_u(b, nslots);
    codec_put_u(b, k->next_gen);
    codec_put_u(b, k->nev);
    for (uint32_t i = 0; i < k->nev; i++) {
        const oc_event_t *e = EV(k, i);
        codec_put_i(b, e->t);
        codec_put_u(b, e->seq);
        codec_put_u(b, e->nulls);
        for (uint32_t j = 0; j < nslots; j++) codec_put_u64(b, e->v[j].id);
    }
    codec_put_u(b, k->nwins);
    for (uint32_t i = 0; i < k->nwins; i++) {
        codec_put_i(b, k->wins[i].start);
        codec_put_i(b, k->wins[i].end);
        codec_put_u(b, k->wins[i].gen);
    }
}

int oc_key_decode(oc_key_t **state, const spec_aggregate_t *agg, codec_rd_t *r, const char **why)
{
    *state = NULL;
    uint64_t present = codec_get_u(r);
    if (r->bad) goto trunc;
    if (present == 0) return 0;
    uint64_t nslots = codec_get_u(r), next_gen = codec_get_u(r), nev = codec_get_u(r);
    if (r->bad) goto trunc;
    if (present != 1 || nslots != agg->aggs.n) {
        *why = "on-close state written for another aggregate";
        return -1;
    }
    /* Each event takes at least 3 bytes plus 8 per slot: a count the bytes
     * left cannot hold is corrupt, and must not size an allocation. */
    if (nev > codec_left(r) / (3 + 8 * nslots)) goto trunc;
    oc_key_t *k = state_new((uint32_t)(sizeof(oc_event_t) + nslots * sizeof(win_val_t)));
    k->next_gen = next_gen;
    k->ev = grow(k->ev, &k->capev, (uint32_t)nev, k->rsize, k->evl);
    k->nev = (uint32_t)nev;
    for (uint64_t i = 0; i < nev; i++) {
        oc_event_t *e = EV(k, i);
        e->t = codec_get_i(r);
        e->seq = codec_get_u(r);
        e->nulls = codec_get_u(r);
        for (uint32_t j = 0; j < nslots; j++) e->v[j].id = codec_get_u64(r);
        if (r->bad) goto bad_trunc;
        if (i > 0 && (e->t < EV(k, i - 1)->t ||
                      (e->t == EV(k, i - 1)->t && e->seq <= EV(k, i - 1)->seq))) {
            *why = "on-close events out of order";
            goto bad;
        }
    }
    uint64_t nwins = codec_get_u(r);
    if (r->bad || nwins > codec_left(r) / 3) goto bad_trunc;
    k->wins = grow(k->wins, &k->capwins, (uint32_t)nwins, sizeof *k->wins, k->winl);
    k->nwins = (uint32_t)nwins;
    for (uint64_t i = 0; i < nwins; i++) {
        oc_win_t *w = &k->wins[i];
        w->start = codec_get_i(r);
        w->end = codec_get_i(r);
        w->gen = codec_get_u(r);
        if (r->bad) goto bad_trunc;
        if (w->end <= w->start || w->gen > next_gen) {
            *why = "on-close window out of range";
            goto bad;
        }
    }
    *state = k;
    return 0;
bad_trunc:
    *why = "truncated on-close state";
bad:
    oc_key_free(k);
    return -1;
trunc:
    *why = "truncated on-close state";
    return -1;
}

static void put_timer(weir_buf_t *b, int64_t end, int64_t start, uint64_t gen, uint32_t ai,
                      const char *key, uint32_t klen)
{
    codec_put_i(b, end);
    codec_put_i(b, start);
    codec_put_u(b, gen);
    codec_put_u(b, ai);
    codec_put_u(b, klen);
    buf_append(b, key, klen);
}

void oc_timers_encode(const oc_timers_t *t, weir_buf_t *b)
{
    codec_put_u(b, t->n);
    for (uint32_t i = 0; i < t->nheap; i++) {
        const oc_bucket_t *bk = &t->b[t->heap[i]];
        for (uint32_t j = bk->at; j < bk->n; j++) {
            const oc_timer_t *e = &bk->v[j];
            put_timer(b, e->end, e->start, e->gen, e->ai, timer_key(e), e->klen);
        }
    }
}

size_t oc_key_timers_encode(const oc_key_t *k, uint32_t ai, weir_slice_t key, weir_buf_t *b)
{
    if (!k) return 0;
    for (uint32_t i = 0; i < k->nwins; i++)
        put_timer(b, k->wins[i].end, k->wins[i].start, k->wins[i].gen, ai, key.ptr,
                  (uint32_t)key.len);
    return k->nwins;
}

int oc_timers_decode(oc_timers_t *t, uint32_t naggregates, codec_rd_t *r, const char **why)
{
    uint64_t n = codec_get_u(r);
    if (r->bad || n > codec_left(r) / 5) {
        *why = "truncated timers";
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        oc_timer_t e;
        e.end = codec_get_i(r);
        e.start = codec_get_i(r);
        e.gen = codec_get_u(r);
        uint64_t ai = codec_get_u(r), klen = codec_get_u(r);
        if (r->bad || klen > codec_left(r)) {
            *why = "truncated timers";
            return -1;
        }
        if (ai >= naggregates || klen > OC_MAX_KEY || e.end <= e.start) {
            *why = "timer out of range";
            return -1;
        }
        e.ai = (uint32_t)ai;
        e.state = NULL; /* found by key when it pops */
        timer_set_key(&e, (const char *)r->p, klen);
        r->p += klen;
        /* Re-pushed in the encoded order: the queue pops in the same order
         * (timer_less is a total order on what a log can produce). */
        timer_push(t, e);
    }
    return 0;
}
