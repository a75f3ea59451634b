/* ring.h — a growable ring buffer of fixed-size records, the storage under
 * the sliding windows (events, buckets) and the monotonic deques of src/stream.
 *
 * Records are `rsize` bytes (a multiple of 8, so any int64/double field is
 * aligned); index i maps to slot head + i, minus cap if that wraps, so
 * pushing at the back or popping at the front is O(1). Growth is by half
 * (amortized O(1) per push; one O(len) copy at growth) rather than doubling:
 * per-key windows are many and small, and the slack is memory per key (about
 * 1/6 wasted on average instead of 1/3). The buffer halves when it falls to
 * a quarter full, so a key whose window shrinks after a burst gives memory
 * back.
 *
 * Inline storage. A ring may be given a small buffer it does not own
 * (ring_init_inline: e.g. a few records inside a key's state block). While
 * the records fit there, they live there: no allocation, and no cache line
 * of its own to miss. The ring moves to the heap when it outgrows the buffer
 * and back into it when a shrink would fit (len <= inl_cap / 2 at that
 * point, so it does not flip back and forth). Records ordered by a leading int64
 * (event time, bucket index) can be binary-searched. Insertion in the middle
 * shifts the records after the insertion point, which for late events is the
 * (few) records newer than the late one.
 *
 * This is engine-independent and could move to src/base. Memory comes from
 * weir_malloc. Single owner, no locking. */
#ifndef WEIR_STREAM_RING_H
#define WEIR_STREAM_RING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ring {
    unsigned char *data; /* cap * rsize bytes: inl, the heap, or NULL when cap == 0 */
    unsigned char *inl;  /* the inline buffer (not owned), or NULL */
    uint32_t head;       /* slot of record 0 */
    uint32_t len;        /* records stored */
    uint32_t cap;        /* slots */
    uint16_t rsize;      /* bytes per record, a multiple of 8 */
    uint16_t inl_cap;    /* records the inline buffer holds */
} ring_t;

void ring_init(ring_t *r, uint32_t rsize);
/* As ring_init, with buf (inl_cap * rsize bytes, 8-aligned, owned by the
 * caller and outliving the ring's use of it) as the storage while the
 * records fit. inl_cap 0: no inline storage. */
void ring_init_inline(ring_t *r, uint32_t rsize, void *buf, uint32_t inl_cap);
/* Frees the heap storage (the ring is then empty, back on its inline buffer). */
void ring_free(ring_t *r);
void ring_clear(ring_t *r); /* drops all records, frees storage */

static inline void *ring_at(const ring_t *r, uint32_t i)
{
    uint32_t j = r->head + i;
    if (j >= r->cap) j -= r->cap;
    return r->data + (size_t)j * r->rsize;
}

/* The int64 at offset 0 of record i (its ordering key). */
static inline int64_t ring_key(const ring_t *r, uint32_t i)
{
    int64_t k;
    memcpy(&k, ring_at(r, i), sizeof k);
    return k;
}

void *ring_push_grow(ring_t *r);

/* Appends an uninitialized record and returns it. Inline while there is
 * room (every window add pushes: the call was a tenth of an add). */
static inline void *ring_push(ring_t *r)
{
    if (r->len == r->cap) return ring_push_grow(r);
    r->len++;
    return ring_at(r, r->len - 1);
}
/* Opens an uninitialized record at index i (0 <= i <= len), moving records
 * [i, len) one place back; returns it. O(len - i). */
void *ring_insert(ring_t *r, uint32_t i);
/* Removes records [i, i + k), moving the records after them forward. */
void ring_erase(ring_t *r, uint32_t i, uint32_t k);
/* Removes the first k records. O(1) (plus an occasional shrink). */
void ring_pop_front(ring_t *r, uint32_t k);
/* Keeps the first n records. */
void ring_truncate(ring_t *r, uint32_t n);

/* For records sorted by key: the first index in [from, len) whose key is
 * > key (upper) or >= key (lower), len if none. O(log len); upper is
 * O(log d) for an answer d records past `from`. */
uint32_t ring_upper_search(const ring_t *r, uint32_t from, int64_t key);
static inline uint32_t ring_upper(const ring_t *r, uint32_t from, int64_t key)
{
    /* Most searches end at once (nothing to evict): that test is inline. */
    if (from == r->len || ring_key(r, from) > key) return from;
    return ring_upper_search(r, from, key);
}
uint32_t ring_lower(const ring_t *r, uint32_t from, int64_t key);

/* Heap bytes held (capacity, not length; the inline buffer is the caller's). */
static inline size_t ring_bytes(const ring_t *r)
{
    return r->data == r->inl ? 0 : (size_t)r->cap * r->rsize;
}

#endif
