/* keyset.h — a set of byte strings that remembers the order they came in:
 * a partition's keys waiting to be written to the online store
 * (src/serve/online_store.c). Adding a key already there does nothing, so
 * a set holds each key once however often it changes before it is
 * written. The keys are copied into one arena (a length, then the bytes),
 * indexed by an open-addressing table of (hash, arena offset); both grow by
 * doubling. There is no removal: a reader takes the whole set by
 * keyset_swap and walks it with keyset_next, then keyset_clear keeps the
 * memory for the next round. Single owner (the caller locks). */
#ifndef WEIR_BASE_KEYSET_H
#define WEIR_BASE_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct keyset_slot {
    uint64_t hash; /* 0 marks an empty slot (a key hashing to 0 is stored as 1) */
    size_t at;     /* its entry's offset in arena */
} keyset_slot_t;

typedef struct keyset {
    weir_buf_t arena; /* entries: a uint32_t length, then the key's bytes */
    keyset_slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
} keyset_t;

#define KEYSET_INIT                                                                                \
    {                                                                                              \
        WEIR_BUF_INIT, NULL, 0, 0                                                                  \
    }

/* Adds key (len bytes, at most UINT32_MAX) unless it is there; returns 1
 * if it was added, 0 if it was there. */
int keyset_add(keyset_t *s, const void *key, size_t len);
/* Adds key for hash h = keyset_hash(key, len) (XXH64, as weir hashes keys
 * everywhere), which a caller may have already. */
int keyset_add_hashed(keyset_t *s, uint64_t h, const void *key, size_t len);
uint64_t keyset_hash(const void *key, size_t len);

static inline size_t keyset_count(const keyset_t *s)
{
    return s->count;
}

/* Walks the keys in the order they were added:
 *     size_t at = 0; weir_slice_t k;
 *     while (keyset_next(s, &at, &k)) ...
 * The slice points into the arena: valid until the set changes. */
int keyset_next(const keyset_t *s, size_t *at, weir_slice_t *key);

/* Empties the set, keeping its memory. */
void keyset_clear(keyset_t *s);
/* Exchanges two sets (O(1)). */
void keyset_swap(keyset_t *a, keyset_t *b);
/* Heap bytes (arena and table). */
size_t keyset_bytes(const keyset_t *s);
void keyset_free(keyset_t *s);

#endif
