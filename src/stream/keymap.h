/* keymap.h — the keyed state of one partition: a hash table from entity key
 * (bytes) to a fixed-size value the engine owns the meaning of (its per-key
 * windows, last values, ...), with per-key TTL and incremental resize.
 *
 * Layout. Open addressing with linear probing over slots {hash, fresh,
 * entry *} (16 bytes), load factor <= 3/4. Each key is one weir_malloc'd entry:
 * a 32-byte header (hash, newest event time, key length, snapshot epoch), the value (vsize
 * bytes, 8-aligned, zeroed at insert) and the key bytes — no NUL, no second
 * allocation. Entry and value addresses are stable until the key is deleted.
 *
 * Incremental resize (Redis dict-style, adapted to open addressing): when the
 * table reaches 3/4 it allocates a table twice the size and every later
 * operation moves KEYMAP_MIGRATE_STEP slots of the old table into the new
 * one; lookups search the new table, then the old; inserts go to the new.
 * Slots moved out of the old table become tombstones there, so probe chains
 * in the old table stay intact. No operation ever rehashes the whole table:
 * the worst single operation moves 64 slots (well under a microsecond),
 * where a stop-the-world rehash of 4M keys takes tens of milliseconds. The
 * new table comes from calloc, which for large sizes maps zero pages lazily.
 * The pages of the moved part of a large old table are given back to the OS
 * as the move goes (madvise), so freeing it at the end costs no unmap spike.
 * The table shrinks the same way when it falls under 1/8 full.
 * Deletion in the current table uses backward shift (no tombstones).
 *
 * TTL. Each entry carries the newest event time the engine reported with
 * keymap_touch. keymap_expire sweeps a bounded number of slots per call
 * (a cursor walks the table) and deletes entries whose newest time is below
 * a cutoff — the engine passes watermark - (longest window + lateness) — so
 * memory follows live keys. Reading an entry's newest time is a cache miss
 * at a million keys, so the sweep leaves in the slot what it read (`fresh`,
 * rounded down): newest times only grow (a reset clears `fresh`), so a slot
 * whose `fresh` is at or above the cutoff is live without a look at its
 * entry, and a pass over a table of live keys reads only the slots. Whether a sweep has reached a stale key yet must
 * not change results (principle 2): keymap_put takes the same cutoff and
 * treats a stale entry as absent (resets it through the callback), so a key
 * is "evicted" at exactly the same point in the log whatever the sweeps did.
 *
 * Memory goes through weir_malloc; keymap_bytes() is the exact heap size of
 * the table and entries (not of what values point to). Single owner. */
#ifndef WEIR_STREAM_KEYMAP_H
#define WEIR_STREAM_KEYMAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KEYMAP_MIGRATE_STEP 64
#define KEYMAP_MAX_KEY (1u << 20) /* bytes */

typedef struct keymap_entry keymap_entry_t;

typedef struct keymap_slot {
    uint32_t hash;     /* low 32 bits of the key's hash (home slot, quick reject) */
    uint32_t fresh;    /* 0, or newest >> KEYMAP_FRESH_SHIFT as the TTL sweep last saw it */
    keymap_entry_t *e; /* NULL: empty; KEYMAP_TOMB: moved (old table only) */
} keymap_slot_t;

#define KEYMAP_FRESH_SHIFT 12 /* ~4 s units: epoch milliseconds fit 32 bits for centuries */

typedef struct keymap_snap keymap_snap_t;

typedef struct keymap_table {
    keymap_slot_t *slots;
    uint32_t cap; /* 0 or a power of two */
    uint32_t used;
} keymap_table_t;

typedef struct keymap {
    keymap_table_t cur, old; /* old.slots != NULL while migrating */
    uint32_t migrate_at;     /* next old slot to move */
    uintptr_t released;      /* old-table pages below this were given back */
    uint32_t sweep_at;       /* next cur slot keymap_expire looks at */
    uint32_t vsize;          /* value bytes, rounded up to 8 */
    size_t count;            /* keys */
    size_t entry_bytes;      /* usable bytes of all entries */
    keymap_snap_t *snap;     /* the snapshot running, or NULL */
    uint32_t snap_epoch;     /* snapshots begun so far */
    uint64_t frees;          /* entries freed so far (keymap_frees) */
} keymap_t;

/* Entries freed so far. A value pointer is valid until its entry is freed,
 * and nothing else moves an entry: one kept across calls that change the
 * map may be used again while this count has not changed. */
static inline uint64_t keymap_frees(const keymap_t *km)
{
    return km->frees;
}

/* Releases what a value points to (not the value itself). */
typedef void (*keymap_free_cb)(void *value, void *arg);

void keymap_init(keymap_t *km, uint32_t vsize);
/* Frees everything; cb (may be NULL) is called on each value first. */
void keymap_free(keymap_t *km, keymap_free_cb cb, void *arg);

/* The value of key, or NULL. */
void *keymap_get(keymap_t *km, const void *key, size_t klen);
/* keymap_get for h = keymap_hash(key, klen). */
void *keymap_get_hashed(keymap_t *km, uint64_t h, const void *key, size_t klen);

/* The value of key, inserting a zeroed one if absent (*created = 1). An
 * existing entry whose newest time is below cutoff is stale: cb is called on
 * its value, which is then zeroed and treated as created (pass INT64_MIN to
 * disable). cb must accept a zeroed value (a key put but never touched has
 * newest = INT64_MIN and is stale for any cutoff). A late event (not applied)
 * should look its key up with keymap_get, not create it. Keys longer than KEYMAP_MAX_KEY are a caller bug (assert). */
void *keymap_put(keymap_t *km, const void *key, size_t klen, int64_t cutoff, keymap_free_cb cb,
                 void *arg, int *created);

/* The hash of key that lookups use (XXH64). */
uint64_t keymap_hash(const void *key, size_t klen);

/* Asks for the cache line where the lookup of a key with hash h starts. A
 * caller with other work to do before keymap_put_hashed (at a million keys
 * the slot is a cache miss) lets the two overlap. */
static inline void keymap_prefetch(const keymap_t *km, uint64_t h)
{
    if (km->cur.cap) __builtin_prefetch(&km->cur.slots[(uint32_t)h & (km->cur.cap - 1)]);
}

/* Asks for the entry of the key with hash h — its header, its value and
 * the first 32 bytes of its key — taking the first slot among the first
 * few of its probe whose stored hash matches, without comparing the key
 * (that would wait for the entry). A hint: it changes nothing, and
 * a wrong guess costs only memory traffic. For a caller that knows its keys
 * a few operations ahead (a replay reading its log ahead, closes in
 * batches: engine.c): keymap_prefetch first, then this once the slot has
 * had time to arrive. */
void keymap_prefetch_entry(const keymap_t *km, uint64_t h);

/* The value of the key with hash h, or NULL, changing nothing: no resize
 * step, and no snapshot capture (the value must not be written through
 * it). For hints only: what it returns may be gone after the next
 * get/put/del/expire. It does not ask for the entry's memory: a caller
 * has done that with keymap_prefetch_entry. */
const void *keymap_peek(const keymap_t *km, uint64_t h, const void *key, size_t klen);

/* keymap_put for h = keymap_hash(key, klen). */
void *keymap_put_hashed(keymap_t *km, uint64_t h, const void *key, size_t klen, int64_t cutoff,
                        keymap_free_cb cb, void *arg, int *created);

/* Deletes key (cb on its value first); returns 1 if it was there. */
int keymap_del(keymap_t *km, const void *key, size_t klen, keymap_free_cb cb, void *arg);

/* The entry of a value returned by get/put: its key and newest time. */
const void *keymap_key(const void *value, size_t *klen);
int64_t keymap_newest(const void *value);
/* Records an event at time t for the key of value (newest = max). */
void keymap_touch(void *value, int64_t t);

/* Looks at up to `budget` slots from the sweep cursor and deletes entries
 * whose newest time is below cutoff (cb on each value). Returns the number
 * deleted. Call it with a small budget per event or per batch: a full pass
 * costs one visit per slot. */
size_t keymap_expire(keymap_t *km, int64_t cutoff, uint32_t budget, keymap_free_cb cb, void *arg);

static inline size_t keymap_count(const keymap_t *km)
{
    return km->count;
}

/* Heap bytes: slots of both tables plus all entries (headers, values, keys). */
size_t keymap_bytes(const keymap_t *km);

/* Iteration over all keys: the map must not change meanwhile.
 *     keymap_iter_t it = KEYMAP_ITER_INIT; void *v;
 *     while ((v = keymap_next(km, &it))) ... keymap_key(v, &klen) ... */
typedef struct keymap_iter {
    int table; /* 0: old, 1: cur */
    uint32_t i;
} keymap_iter_t;
#define KEYMAP_ITER_INIT {0, 0}
void *keymap_next(const keymap_t *km, keymap_iter_t *it);

/* Serialization: the values are written by enc and read by dec (which gets
 * the zeroed value and the bytes left; returns bytes used or < 0). Entries
 * are written in key order, so equal maps encode to equal bytes; decoding
 * takes them in any order (a snapshot's, below). */
typedef void (*keymap_enc_cb)(const void *value, weir_buf_t *b, void *arg);
typedef int (*keymap_dec_cb)(void *value, const unsigned char *p, size_t len, size_t *used,
                             void *arg);
void keymap_encode(const keymap_t *km, weir_buf_t *b, keymap_enc_cb enc, void *arg);
/* SNAPSHOTS: the map as of one moment, written while it goes on changing
 * (checkpoints that do not stop the partition: engine_state.h).
 * keymap_snap_begin marks the moment and writes keymap_encode's head for
 * the map as it is then. From then on, the first time a key of that moment
 * is handed out (get, put), reset or deleted (del, expire), its entry as it
 * still is goes to s->out first (with s->enc), once; keymap_snap_step
 * writes up to `budget` of those not reached yet — fewer if *stop (may be
 * NULL) turns non-zero meanwhile: it is checked after each key — and
 * returns how many are left (keys moved behind its cursor by the map's
 * changes are found by another pass; after a few passes, a step takes all
 * the rest, so that a snapshot always ends). When none is left, head + everything written to s->out is
 * keymap_encode's encoding of the map as of the moment, the entries in
 * another order (keymap_decode takes any). Keys inserted after the moment
 * are not written. The cost outside a snapshot is a NULL test per access;
 * during one, a compare of the entry's epoch. keymap_snap_end stops it
 * (done or abandoned); one snapshot at a time per map. The caller owns s
 * and s->out and may drain s->out between calls. */
struct keymap_snap {
    keymap_enc_cb enc;
    void *arg;
    weir_buf_t *out;
    uint32_t epoch;       /* keymap_snap_begin sets it */
    size_t left;          /* keys of the moment not written yet */
    keymap_iter_t cursor; /* keymap_snap_step's walk */
    uint32_t passes;      /* walks restarted */
};
void keymap_snap_begin(keymap_t *km, keymap_snap_t *s, weir_buf_t *head);
size_t keymap_snap_step(keymap_t *km, uint32_t budget, const atomic_uint *stop);
void keymap_snap_end(keymap_t *km);

/* km is initialized here with vsize; on failure it is left empty and valid
 * (cb frees values decoded so far). */
int keymap_decode(keymap_t *km, uint32_t vsize, const void *data, size_t len, size_t *used,
                  keymap_dec_cb dec, keymap_free_cb cb, void *arg, char *err, size_t errlen);

#endif
