/* keyset.c — see keyset.h. */
#include "base/keyset.h"

#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/hash.h"

uint64_t keyset_hash(const void *key, size_t len)
{
    return weir_hash64(key, len);
}

static weir_slice_t entry_at(const keyset_t *s, size_t at)
{
    uint32_t len;
    memcpy(&len, s->arena.data + at, sizeof len);
    return (weir_slice_t){s->arena.data + at + sizeof len, len};
}

/* The slot of key, or of the empty slot where it would go. */
static keyset_slot_t *find(const keyset_t *s, uint64_t h, const void *key, size_t len)
{
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        keyset_slot_t *sl = &s->slots[i];
        if (sl->hash == 0) return sl;
        if (sl->hash != h) continue;
        weir_slice_t k = entry_at(s, sl->at);
        if (k.len == len && memcmp(k.ptr, key, len) == 0) return sl;
    }
}

static void grow(keyset_t *s)
{
    size_t cap = s->cap ? 2 * s->cap : 64;
    keyset_slot_t *old = s->slots;
    size_t oldcap = s->cap;
    s->slots = weir_calloc(cap, sizeof *s->slots);
    s->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].hash) continue;
        size_t mask = cap - 1, j = (size_t)old[i].hash & mask;
        while (s->slots[j].hash)
            j = (j + 1) & mask;
        s->slots[j] = old[i];
    }
    weir_free(old);
}

int keyset_add_hashed(keyset_t *s, uint64_t h, const void *key, size_t len)
{
    weir_assert(len <= UINT32_MAX);
    if (h == 0) h = 1;                            /* 0 marks an empty slot */
    if ((s->count + 1) * 4 > s->cap * 3) grow(s); /* load factor <= 3/4 */
    keyset_slot_t *sl = find(s, h, key, len);
    if (sl->hash) return 0;
    uint32_t l = (uint32_t)len;
    sl->hash = h;
    sl->at = s->arena.len;
    buf_append(&s->arena, &l, sizeof l);
    buf_append(&s->arena, key, len);
    s->count++;
    return 1;
}

int keyset_add(keyset_t *s, const void *key, size_t len)
{
    return keyset_add_hashed(s, keyset_hash(key, len), key, len);
}

int keyset_next(const keyset_t *s, size_t *at, weir_slice_t *key)
{
    if (*at >= s->arena.len) return 0;
    *key = entry_at(s, *at);
    *at += sizeof(uint32_t) + key->len;
    return 1;
}

void keyset_clear(keyset_t *s)
{
    if (s->count) memset(s->slots, 0, s->cap * sizeof *s->slots);
    buf_reset(&s->arena);
    s->count = 0;
}

void keyset_swap(keyset_t *a, keyset_t *b)
{
    keyset_t t = *a;
    *a = *b;
    *b = t;
}

size_t keyset_bytes(const keyset_t *s)
{
    return s->arena.cap + s->cap * sizeof *s->slots;
}

void keyset_free(keyset_t *s)
{
    buf_free(&s->arena);
    weir_free(s->slots);
    *s = (keyset_t)KEYSET_INIT;
}
