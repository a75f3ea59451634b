/* keymap.c — per-partition keyed state: open addressing, incremental
 * resize, TTL sweep (see keymap.h for the design and its costs).
 *
 * Invariants: every key is in exactly one of cur and old. While migrating,
 * old slots below migrate_at are empty or tombstones; a key in old is never
 * also inserted in cur (put looks in old first and moves the key over).
 * cur.used counts live entries of cur; old.used live entries of old. */
#include "stream/keymap.h"

#include <malloc.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/hash.h"
#include "stream/codec.h"

struct keymap_entry {
    uint64_t hash;
    int64_t newest;
    uint32_t klen;
    uint32_t voff; /* value bytes: the key starts this far after the value */
    uint32_t snap; /* the snapshot epoch this entry was written in or created during */
    uint32_t pad;
    /* value (vsize bytes), then klen key bytes */
};

#define TOMB ((keymap_entry_t *)(uintptr_t)1)
#define SWEEP_AHEAD 16 /* slots: see keymap_expire */
#define MIN_CAP 16

static inline void *value_of(keymap_entry_t *e)
{
    return (unsigned char *)e + sizeof *e;
}

static inline keymap_entry_t *entry_of(const void *value)
{
    return (keymap_entry_t *)((unsigned char *)value - sizeof(keymap_entry_t));
}

static inline const unsigned char *key_of(const keymap_t *km, const keymap_entry_t *e)
{
    return (const unsigned char *)e + sizeof *e + km->vsize;
}

static void snap_write(keymap_t *km, keymap_entry_t *e);

/* Before an entry is handed out, reset or freed while a snapshot runs: the
 * snapshot gets it as it is now, once (keymap.h, SNAPSHOTS). The test is
 * one compare on a header the caller is about to read anyway. */
static inline void snap_touch(keymap_t *km, keymap_entry_t *e)
{
    if (km->snap && e->snap != km->snap->epoch) snap_write(km, e);
}

void keymap_init(keymap_t *km, uint32_t vsize)
{
    memset(km, 0, sizeof *km);
    km->vsize = (vsize + 7) & ~7u;
}

static void free_entry(keymap_t *km, keymap_entry_t *e, keymap_free_cb cb, void *arg)
{
    if (cb) cb(value_of(e), arg);
    km->entry_bytes -= malloc_usable_size(e);
    weir_free(e);
    km->count--;
    km->frees++;
}

void keymap_free(keymap_t *km, keymap_free_cb cb, void *arg)
{
    keymap_table_t *ts[2] = {&km->old, &km->cur};
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < ts[k]->cap; i++) {
            keymap_entry_t *e = ts[k]->slots[i].e;
            if (e && e != TOMB) free_entry(km, e, cb, arg);
        }
        weir_free(ts[k]->slots);
    }
    uint64_t frees = km->frees;
    keymap_init(km, km->vsize);
    km->frees = frees; /* a value kept from before is gone: the count goes on */
}

/* Asks for every cache line of an entry at once. A hash match is almost
 * always the key, whose whole state the caller is about to use: the key
 * compare reads the header and the key (at the entry's end), the caller the
 * value between them. Issued together, these misses overlap instead of
 * following one another (at a million keys nearly every entry is cold). */
static inline void prefetch_entry(const keymap_t *km, const keymap_entry_t *e)
{
    /* (klen would be a wait for the header: cover a short key instead) */
    const char *p = (const char *)e, *end = p + sizeof *e + km->vsize + 32;
    for (p = (const char *)((uintptr_t)p & ~(uintptr_t)63); p < end; p += 64)
        __builtin_prefetch(p, 1);
}

static inline int same_key(const keymap_t *km, const keymap_slot_t *s, uint64_t h,
                           const void *key, size_t klen, int fetch)
{
    if (s->hash != (uint32_t)h || s->e == TOMB) return 0;
    if (fetch) prefetch_entry(km, s->e);
    return s->e->klen == klen && memcmp(key_of(km, s->e), key, klen) == 0;
}

/* Slot index of key in t, or -1. Slots below `skip` are not read: in the
 * old table they have all been moved (tombstones) and their pages may have
 * been given back to the OS (see release_moved), so the probe jumps over
 * them, which is what walking through tombstones would do. fetch: ask for
 * the whole entry of a matching hash (prefetch_entry) — not for a caller
 * whose entry is on its way already (keymap_peek, after
 * keymap_prefetch_entry: a replay's prefetch stages asked for it twice more,
 * about twenty prefetches each time, 1.5% of the replay's instructions). */
static int64_t table_find(const keymap_t *km, const keymap_table_t *t, uint64_t h,
                          const void *key, size_t klen, uint32_t skip, int fetch)
{
    if (!t->cap || skip >= t->cap) return -1;
    uint32_t mask = t->cap - 1, i = (uint32_t)h & mask;
    if (i < skip) i = skip;
    for (uint32_t n = t->cap - skip; n--;) {
        const keymap_slot_t *s = &t->slots[i];
        if (!s->e) return -1;
        if (same_key(km, s, h, key, klen, fetch)) return i;
        i = (i + 1) & mask;
        if (i < skip) i = skip;
    }
    return -1;
}

#define RELEASE_CHUNK ((size_t)256 << 10)

/* Gives the pages of the moved part of a large old table back to the OS as
 * the move goes, so that freeing it at the end does not unmap tens of
 * megabytes at once (measured: 4.6 ms for a 64 MiB table). The memory stays
 * ours (madvise on our own allocation; it reads as zeros afterwards). */
static void release_moved(keymap_t *km)
{
    size_t bytes = (size_t)km->old.cap * sizeof(keymap_slot_t);
    if (bytes < 4 * RELEASE_CHUNK) return;
    uintptr_t base = (uintptr_t)km->old.slots;
    uintptr_t from = (base + RELEASE_CHUNK - 1) & ~(uintptr_t)(RELEASE_CHUNK - 1);
    if (km->released > from) from = km->released;
    uintptr_t to = (base + (size_t)km->migrate_at * sizeof(keymap_slot_t)) &
                   ~(uintptr_t)(RELEASE_CHUNK - 1);
    if (to >= from + RELEASE_CHUNK) {
        madvise((void *)from, to - from, MADV_DONTNEED);
        km->released = to;
    }
}

/* Places an entry known to be absent; cur has room. */
static void table_place(keymap_table_t *t, uint64_t h, uint32_t fresh, keymap_entry_t *e)
{
    uint32_t mask = t->cap - 1, i = (uint32_t)h & mask;
    while (t->slots[i].e) i = (i + 1) & mask;
    t->slots[i].hash = (uint32_t)h;
    t->slots[i].fresh = fresh;
    t->slots[i].e = e;
    t->used++;
}

/* Backward-shift deletion of slot j in a table without tombstones. */
static void table_remove_at(keymap_table_t *t, uint32_t j)
{
    uint32_t mask = t->cap - 1, hole = j, k = j;
    for (;;) {
        k = (k + 1) & mask;
        keymap_slot_t *s = &t->slots[k];
        if (!s->e) break;
        uint32_t home = (uint32_t)s->hash & mask;
        int stays = hole <= k ? (hole < home && home <= k) : (hole < home || home <= k);
        if (stays) continue;
        t->slots[hole] = *s;
        hole = k;
    }
    t->slots[hole].e = NULL;
    t->slots[hole].hash = 0;
    t->slots[hole].fresh = 0;
    t->used--;
}

static void migrate(keymap_t *km, uint32_t steps)
{
    if (!km->old.slots) return;
    while (steps-- && km->migrate_at < km->old.cap) {
        keymap_slot_t *s = &km->old.slots[km->migrate_at++];
        if (s->e && s->e != TOMB) {
            table_place(&km->cur, s->hash, s->fresh, s->e);
            km->old.used--;
            s->e = TOMB;
        }
    }
    if (km->migrate_at == km->old.cap) {
        weir_assert(km->old.used == 0);
        weir_free(km->old.slots);
        memset(&km->old, 0, sizeof km->old);
        km->migrate_at = 0;
        km->released = 0;
    } else {
        release_moved(km);
    }
}

/* A slot table; a large one asks for transparent huge pages. Lookups and
 * the TTL sweep touch random slots of tens of megabytes: with 4 KiB pages
 * nearly every one is a TLB miss and a page walk before the cache miss, and
 * 2 MiB pages cover the table with a few TLB entries. Only whole 2 MiB pages
 * inside the block are advised (calloc's large blocks are fresh mappings:
 * nothing else is affected); it is a hint, which a kernel without THP
 * ignores. */
static keymap_slot_t *slots_alloc(uint32_t cap)
{
    const size_t huge = (size_t)2 << 20;
    keymap_slot_t *s = weir_calloc(cap, sizeof(keymap_slot_t));
    size_t bytes = (size_t)cap * sizeof(keymap_slot_t);
    if (bytes >= 2 * huge) {
        uintptr_t from = ((uintptr_t)s + huge - 1) & ~(uintptr_t)(huge - 1);
        uintptr_t to = ((uintptr_t)s + bytes) & ~(uintptr_t)(huge - 1);
        if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
    }
    return s;
}

/* Starts moving everything to a table of cap slots (finishing any earlier
 * move first: it is bounded, a move is done long before the next one). */
static void start_resize(keymap_t *km, uint32_t cap)
{
    if (km->old.slots) migrate(km, UINT32_MAX);
    km->old = km->cur;
    km->cur.slots = slots_alloc(cap);
    km->cur.cap = cap;
    km->cur.used = 0;
    km->migrate_at = 0;
    km->released = 0;
    km->sweep_at = 0;
    if (km->old.used == 0) migrate(km, UINT32_MAX);
}

/* A few slots: a probe is short at load <= 3/4, and a hint need not be
 * complete. The old table (during a resize) is not looked at. */
#define PREFETCH_PROBE 4

void keymap_prefetch_entry(const keymap_t *km, uint64_t h)
{
    if (!km->cur.cap) return;
    uint32_t mask = km->cur.cap - 1, i = (uint32_t)h & mask;
    for (int n = 0; n < PREFETCH_PROBE; n++, i = (i + 1) & mask) {
        const keymap_slot_t *s = &km->cur.slots[i];
        if (!s->e) return;
        if (s->hash == (uint32_t)h && s->e != TOMB) {
            prefetch_entry(km, s->e);
            return;
        }
    }
}

/* The entry of key (hash h) in either table, or NULL; changes nothing. */
static keymap_entry_t *find_entry(const keymap_t *km, uint64_t h, const void *key, size_t klen,
                                  int fetch)
{
    int64_t i = table_find(km, &km->cur, h, key, klen, 0, fetch);
    if (i >= 0) return km->cur.slots[i].e;
    i = table_find(km, &km->old, h, key, klen, km->migrate_at, fetch);
    return i >= 0 ? km->old.slots[i].e : NULL;
}

const void *keymap_peek(const keymap_t *km, uint64_t h, const void *key, size_t klen)
{
    keymap_entry_t *e = find_entry(km, h, key, klen, 0);
    return e ? value_of(e) : NULL;
}

void *keymap_get_hashed(keymap_t *km, uint64_t h, const void *key, size_t klen)
{
    migrate(km, KEYMAP_MIGRATE_STEP);
    keymap_entry_t *e = find_entry(km, h, key, klen, 1);
    if (!e) return NULL;
    snap_touch(km, e);
    return value_of(e);
}

void *keymap_get(keymap_t *km, const void *key, size_t klen)
{
    return keymap_get_hashed(km, weir_hash64(key, klen), key, klen);
}

static void reset_value(keymap_t *km, keymap_entry_t *e, keymap_free_cb cb, void *arg)
{
    if (cb) cb(value_of(e), arg);
    memset(value_of(e), 0, km->vsize);
    e->newest = INT64_MIN;
}

uint64_t keymap_hash(const void *key, size_t klen)
{
    return weir_hash64(key, klen);
}

void *keymap_put(keymap_t *km, const void *key, size_t klen, int64_t cutoff, keymap_free_cb cb,
                 void *arg, int *created)
{
    return keymap_put_hashed(km, weir_hash64(key, klen), key, klen, cutoff, cb, arg, created);
}

void *keymap_put_hashed(keymap_t *km, uint64_t h, const void *key, size_t klen, int64_t cutoff,
                        keymap_free_cb cb, void *arg, int *created)
{
    weir_assert(klen <= KEYMAP_MAX_KEY);
    migrate(km, KEYMAP_MIGRATE_STEP);
    keymap_entry_t *e = NULL;
    keymap_slot_t *slot = NULL;
    int64_t i = table_find(km, &km->cur, h, key, klen, 0, 1);
    if (i >= 0) {
        slot = &km->cur.slots[i];
    } else if ((i = table_find(km, &km->old, h, key, klen, km->migrate_at, 1)) >= 0) {
        slot = &km->old.slots[i];
    }
    if (slot) {
        e = slot->e;
        snap_touch(km, e);
        if (e->newest < cutoff) {
            slot->fresh = 0; /* newest goes back to INT64_MIN */
            reset_value(km, e, cb, arg);
            *created = 1;
        } else {
            *created = 0;
        }
        return value_of(e);
    }
    if (!km->cur.cap) {
        km->cur.slots = weir_calloc(MIN_CAP, sizeof(keymap_slot_t));
        km->cur.cap = MIN_CAP;
    } else if ((uint64_t)(km->cur.used + km->old.used + 1) * 4 > (uint64_t)km->cur.cap * 3) {
        weir_assert(km->cur.cap < (1u << 31));
        start_resize(km, km->cur.cap * 2);
    }
    e = weir_malloc(sizeof *e + km->vsize + klen);
    km->entry_bytes += malloc_usable_size(e);
    e->hash = h;
    e->newest = INT64_MIN;
    e->klen = (uint32_t)klen;
    e->voff = km->vsize;
    e->snap = km->snap ? km->snap->epoch : 0; /* not in a running snapshot: it began before */
    e->pad = 0;
    memset(value_of(e), 0, km->vsize);
    memcpy((unsigned char *)value_of(e) + km->vsize, key, klen);
    table_place(&km->cur, h, 0, e);
    km->count++;
    *created = 1;
    return value_of(e);
}

static void maybe_shrink(keymap_t *km)
{
    if (!km->old.slots && km->cur.cap > 1024 && (uint64_t)km->cur.used * 8 < km->cur.cap)
        start_resize(km, km->cur.cap / 2);
}

int keymap_del(keymap_t *km, const void *key, size_t klen, keymap_free_cb cb, void *arg)
{
    migrate(km, KEYMAP_MIGRATE_STEP);
    uint64_t h = weir_hash64(key, klen);
    int64_t i = table_find(km, &km->cur, h, key, klen, 0, 1);
    if (i >= 0) {
        keymap_entry_t *e = km->cur.slots[i].e;
        snap_touch(km, e);
        table_remove_at(&km->cur, (uint32_t)i);
        free_entry(km, e, cb, arg);
        maybe_shrink(km);
        return 1;
    }
    i = table_find(km, &km->old, h, key, klen, km->migrate_at, 1);
    if (i >= 0) {
        keymap_entry_t *e = km->old.slots[i].e;
        snap_touch(km, e);
        km->old.slots[i].e = TOMB;
        km->old.used--;
        free_entry(km, e, cb, arg);
        return 1;
    }
    return 0;
}

const void *keymap_key(const void *value, size_t *klen)
{
    const keymap_entry_t *e = entry_of(value);
    *klen = e->klen;
    return (const unsigned char *)value + e->voff;
}

int64_t keymap_newest(const void *value)
{
    return entry_of(value)->newest;
}

void keymap_touch(void *value, int64_t t)
{
    keymap_entry_t *e = entry_of(value);
    if (e->newest == INT64_MIN || t > e->newest) e->newest = t;
}

/* newest rounded down to KEYMAP_FRESH_SHIFT units, or 0 (unknown) if that
 * does not fit 32 bits. */
static inline uint32_t fresh_of(int64_t newest)
{
    int64_t f = newest >> KEYMAP_FRESH_SHIFT; /* arithmetic shift: rounds down */
    return f > 0 && f < (int64_t)UINT32_MAX ? (uint32_t)f : 0;
}

/* Whether the slot's `fresh` proves its entry is not below cutoff: fresh
 * was newest rounded down when the sweep read it, and newest only grows. */
static inline int slot_live(const keymap_slot_t *s, int64_t cutoff)
{
    return s->fresh && ((int64_t)s->fresh << KEYMAP_FRESH_SHIFT) >= cutoff;
}

size_t keymap_expire(keymap_t *km, int64_t cutoff, uint32_t budget, keymap_free_cb cb, void *arg)
{
    migrate(km, budget);
    if (km->old.slots || !km->cur.cap) return 0; /* sweep once the move is done */
    size_t dropped = 0;
    keymap_table_t *t = &km->cur;
    /* A slot whose `fresh` clears the cutoff is live (see keymap.h). Any
     * other slot looked at reads its entry's newest time: a cold line at a
     * million keys. The cursor moves a few slots per event, so asking for
     * those entries SWEEP_AHEAD slots ahead gives them many events to arrive. */
    for (uint32_t k = 0; k < budget && k < 8; k++) {
        const keymap_slot_t *a = &t->slots[(km->sweep_at + SWEEP_AHEAD + k) & (t->cap - 1)];
        if (a->e && a->e != TOMB && !slot_live(a, cutoff)) __builtin_prefetch(&a->e->newest);
    }
    while (budget--) {
        if (km->sweep_at >= t->cap) km->sweep_at = 0;
        keymap_slot_t *s = &t->slots[km->sweep_at];
        if (!s->e || slot_live(s, cutoff)) {
            km->sweep_at++;
        } else if (s->e->newest < cutoff) {
            keymap_entry_t *e = s->e;
            snap_touch(km, e);
            table_remove_at(t, km->sweep_at); /* a later entry may shift here: look again */
            free_entry(km, e, cb, arg);
            dropped++;
            if (t->used == 0) break;
        } else {
            s->fresh = fresh_of(s->e->newest);
            km->sweep_at++;
        }
    }
    maybe_shrink(km);
    return dropped;
}

size_t keymap_bytes(const keymap_t *km)
{
    return ((size_t)km->cur.cap + km->old.cap) * sizeof(keymap_slot_t) + km->entry_bytes;
}

/* One slot of a walk over the old table, then the current one: 1 with *e
 * its entry (NULL, TOMB or an entry), the walk moved on; 0 past the end.
 * Old slots below migrate_at are skipped: all moved (see the invariants
 * at the top), and their pages may have been given back. */
static inline int iter_slot(const keymap_t *km, keymap_iter_t *it, keymap_entry_t **e)
{
    for (; it->table < 2; it->table++, it->i = 0) {
        const keymap_table_t *t = it->table == 0 ? &km->old : &km->cur;
        if (it->table == 0 && it->i < km->migrate_at) it->i = km->migrate_at;
        if (it->i < t->cap) {
            *e = t->slots[it->i++].e;
            return 1;
        }
    }
    return 0;
}

void *keymap_next(const keymap_t *km, keymap_iter_t *it)
{
    keymap_entry_t *e;
    while (iter_slot(km, it, &e))
        if (e && e != TOMB) return value_of(e);
    return NULL;
}

/* ---- serialization ---------------------------------------------------- */

#define KEYMAP_MAGIC 0x4b /* 'K' */
#define KEYMAP_VERSION 1

static int cmp_entry(const void *a, const void *b, void *arg)
{
    const keymap_t *km = arg;
    const keymap_entry_t *x = *(keymap_entry_t *const *)a, *y = *(keymap_entry_t *const *)b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(key_of(km, x), key_of(km, y), n);
    if (c) return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static void encode_head(const keymap_t *km, weir_buf_t *b)
{
    unsigned char head[2] = {KEYMAP_MAGIC, KEYMAP_VERSION};
    buf_append(b, head, 2);
    codec_put_u(b, km->vsize);
    codec_put_u(b, km->count);
}

static void encode_entry(const keymap_t *km, const keymap_entry_t *e, weir_buf_t *b,
                         keymap_enc_cb enc, void *arg)
{
    codec_put_u(b, e->klen);
    buf_append(b, key_of(km, e), e->klen);
    codec_put_u(b, e->newest != INT64_MIN);
    if (e->newest != INT64_MIN) codec_put_i(b, e->newest);
    enc(value_of((keymap_entry_t *)e), b, arg);
}

void keymap_encode(const keymap_t *km, weir_buf_t *b, keymap_enc_cb enc, void *arg)
{
    encode_head(km, b);
    if (!km->count) return;
    keymap_entry_t **all = weir_malloc(km->count * sizeof *all);
    size_t n = 0;
    keymap_iter_t it = KEYMAP_ITER_INIT;
    void *v;
    while ((v = keymap_next(km, &it))) all[n++] = entry_of(v);
    weir_assert(n == km->count);
    qsort_r(all, n, sizeof *all, cmp_entry, (void *)km); /* glibc (_GNU_SOURCE) */
    for (size_t i = 0; i < n; i++) encode_entry(km, all[i], b, enc, arg);
    weir_free(all);
}

/* ---- snapshots (keymap.h) --------------------------------------------- */

static void snap_write(keymap_t *km, keymap_entry_t *e)
{
    keymap_snap_t *s = km->snap;
    e->snap = s->epoch;
    encode_entry(km, e, s->out, s->enc, s->arg);
    weir_assert(s->left > 0);
    s->left--;
}

void keymap_snap_begin(keymap_t *km, keymap_snap_t *s, weir_buf_t *head)
{
    weir_assert(!km->snap);
    s->epoch = ++km->snap_epoch;
    s->left = km->count;
    s->cursor = (keymap_iter_t)KEYMAP_ITER_INIT;
    s->passes = 0;
    encode_head(km, head);
    km->snap = s;
}

/* Passes of the cursor in paced steps; then the rest in one step. */
#define SNAP_PACED_PASSES 4

size_t keymap_snap_step(keymap_t *km, uint32_t budget, const atomic_uint *stop)
{
    keymap_snap_t *s = km->snap;
    /* Slots looked at are bounded too: a pass over a table whose keys were
     * mostly written already (by requests) reads slots and headers only. */
    uint64_t looks = (uint64_t)budget * 16;
    keymap_entry_t *e;
    while (s->left && budget && looks) {
        if (!iter_slot(km, &s->cursor, &e)) {
            /* A key not written yet can move behind the cursor between
             * steps (a resize moves it to the other table; a backward-shift
             * delete moves it back a slot), and another pass finds it.
             * Should keys keep escaping, after a few passes the rest is
             * taken in this step — a pass during which nothing moves — so
             * a snapshot always ends. Every unwritten key of the moment is
             * in one of the tables (deleting one writes it first): a whole
             * pass that left one behind is a bug. */
            weir_assert(s->passes < SNAP_PACED_PASSES);
            if (++s->passes == SNAP_PACED_PASSES) budget = UINT32_MAX, looks = UINT64_MAX, stop = NULL;
            s->cursor = (keymap_iter_t)KEYMAP_ITER_INIT;
            continue;
        }
        looks--;
        if (e && e != TOMB && e->snap != s->epoch) {
            snap_write(km, e);
            budget--;
            if (stop && atomic_load_explicit(stop, memory_order_relaxed)) break;
        }
    }
    return s->left;
}

void keymap_snap_end(keymap_t *km)
{
    km->snap = NULL;
}

int keymap_decode(keymap_t *km, uint32_t vsize, const void *data, size_t len, size_t *used,
                  keymap_dec_cb dec, keymap_free_cb cb, void *arg, char *err, size_t errlen)
{
    codec_rd_t r = {data, (const unsigned char *)data + len, 0};
    const char *why = "truncated";
    keymap_init(km, vsize);
    if (len < 2 || r.p[0] != KEYMAP_MAGIC || r.p[1] != KEYMAP_VERSION) {
        why = "bad magic or version";
        goto bad;
    }
    r.p += 2;
    /* The writer's value size is not compared with ours: values are
     * written by value (enc) and rebuilt by dec into a value of our size, so
     * a state outlives a change of the value's layout (a window's inline
     * room, win.c). It stays in the header, which keeps its format. */
    (void)codec_get_u(&r);
    uint64_t count = codec_get_u(&r);
    if (r.bad) goto bad;
    if (count > codec_left(&r)) {
        why = "key count";
        goto bad;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint64_t klen = codec_get_u(&r);
        if (r.bad) goto bad;
        if (klen > KEYMAP_MAX_KEY || klen > codec_left(&r)) {
            why = "key length";
            goto bad;
        }
        const unsigned char *key = r.p;
        r.p += klen;
        int64_t newest = INT64_MIN;
        if (codec_get_u(&r)) newest = codec_get_i(&r);
        if (r.bad) goto bad;
        int created;
        void *v = keymap_put(km, key, klen, INT64_MIN, NULL, NULL, &created);
        if (!created) {
            why = "duplicate key";
            goto bad;
        }
        entry_of(v)->newest = newest;
        size_t n = 0;
        if (dec(v, r.p, codec_left(&r), &n, arg) < 0 || n > codec_left(&r)) {
            /* dec left the value valid (zeroed or freeable) */
            why = "value";
            goto bad;
        }
        r.p += n;
    }
    if (used) *used = (size_t)(r.p - (const unsigned char *)data);
    return 0;
bad:
    keymap_free(km, cb, arg);
    return weir_errf(err, errlen, WEIR_ECORRUPT, "keymap state: %s (at byte %zu of %zu)", why,
                     r.bad ? len : (size_t)(r.p - (const unsigned char *)data), len);
}
