/* mset.h — a counting multiset of 64-bit ids: the exact `distinct` of a
 * window (id -> occurrences; the distinct count is the number of ids).
 *
 * Open addressing with linear probing over parallel arrays (ids, counts;
 * 12 bytes a slot), load factor kept in [1/8, 3/4] so memory follows the
 * window; deletion by backward shift, so there are no tombstones and probe
 * chains never degrade. Ids are mixed with a 64-bit finalizer before probing,
 * so raw integers and XXH64 hashes both spread. Add/remove O(1) expected;
 * growth and shrink rehash everything (O(size), amortized O(1)): a window's
 * set is per key and small, so this is not a latency concern; the large
 * table of this layer (keymap) resizes incrementally instead.
 *
 * What an id is, is the caller's choice: a value itself for integers,
 * booleans and times; the bit pattern for floats (see mset_id_of_double);
 * XXH64 of the bytes for strings, in which case `distinct` is exact up to a
 * 64-bit hash collision (probability < n^2 / 2^65 for n distinct values in a
 * window, about 3e-8 for a million). Engine-independent (could move to
 * src/base). */
#ifndef WEIR_STREAM_MSET_H
#define WEIR_STREAM_MSET_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct mset {
    uint64_t *ids;   /* cap ids, then cap uint32 counts, one allocation */
    uint32_t cap;    /* 0 or a power of two */
    uint32_t size;   /* distinct ids present */
} mset_t;

#define MSET_INIT {NULL, 0, 0}

void mset_init(mset_t *s);
void mset_free(mset_t *s);

/* Adds one occurrence of id; returns 1 if id was not present before. */
int mset_add(mset_t *s, uint64_t id);
/* Removes one occurrence; returns 1 if that was the last one, 0 if others
 * remain, -1 if id is not present (a caller bug; nothing changes). */
int mset_remove(mset_t *s, uint64_t id);
/* Occurrences of id (0 if absent). */
uint32_t mset_count(const mset_t *s, uint64_t id);

static inline uint32_t mset_size(const mset_t *s)
{
    return s->size;
}

/* Iteration: for (uint32_t i = 0; mset_next(s, &i, &id, &n);) ... — visits
 * each id once, in slot order; the set must not change meanwhile. */
int mset_next(const mset_t *s, uint32_t *iter, uint64_t *id, uint32_t *count);

/* Heap bytes: the one block of ids and counts (inline: win_prefetch asks
 * for a small set whole, for every event). */
static inline size_t mset_bytes(const mset_t *s)
{
    return (size_t)s->cap * (sizeof(uint64_t) + sizeof(uint32_t));
}

/* The id of a double for `distinct`: its bit pattern, with -0 folded into 0
 * (they compare equal). NaN never reaches a window (inputs are finite). */
uint64_t mset_id_of_double(double d);

/* Serialization: size, then (id, count) pairs. Decoding checks that every
 * count is >= 1 and that no id repeats; `max_size` bounds what untrusted
 * input may make us allocate. */
void mset_encode(const mset_t *s, weir_buf_t *b);
struct codec_rd;
int mset_decode(mset_t *s, struct codec_rd *r, uint32_t max_size);

#endif
