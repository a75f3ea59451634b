/* mset.c — counting multiset of 64-bit ids (see mset.h). */
#include "stream/mset.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/intmath.h"
#include "stream/codec.h"

static inline uint32_t *counts(const mset_t *s)
{
    return s->ids ? (uint32_t *)(s->ids + s->cap) : NULL; /* no arithmetic on NULL */
}

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void mset_init(mset_t *s)
{
    s->ids = NULL;
    s->cap = s->size = 0;
}

void mset_free(mset_t *s)
{
    weir_free(s->ids);
    mset_init(s);
}

static void rehash(mset_t *s, uint32_t cap)
{
    mset_t n = {NULL, cap, 0};
    if (cap) {
        n.ids = weir_malloc((size_t)cap * (sizeof(uint64_t) + sizeof(uint32_t)));
        memset(counts(&n), 0, (size_t)cap * sizeof(uint32_t));
    }
    uint32_t *oc = counts(s);
    for (uint32_t i = 0; i < s->cap; i++) {
        if (!oc[i]) continue;
        uint32_t j = (uint32_t)mix(s->ids[i]) & (cap - 1);
        while (counts(&n)[j]) j = (j + 1) & (cap - 1);
        n.ids[j] = s->ids[i];
        counts(&n)[j] = oc[i];
        n.size++;
    }
    weir_free(s->ids);
    *s = n;
}

/* Slot holding id, or the empty slot where it would go. */
static inline uint32_t find(const mset_t *s, uint64_t id)
{
    uint32_t mask = s->cap - 1, j = (uint32_t)mix(id) & mask;
    const uint32_t *c = counts(s);
    while (c[j] && s->ids[j] != id) j = (j + 1) & mask;
    return j;
}

int mset_add(mset_t *s, uint64_t id)
{
    if ((uint64_t)(s->size + 1) * 4 > (uint64_t)s->cap * 3) rehash(s, s->cap ? s->cap * 2 : 8);
    uint32_t j = find(s, id);
    uint32_t *c = counts(s);
    if (c[j]) {
        weir_assert(c[j] < UINT32_MAX);
        c[j]++;
        return 0;
    }
    s->ids[j] = id;
    c[j] = 1;
    s->size++;
    return 1;
}

uint32_t mset_count(const mset_t *s, uint64_t id)
{
    if (!s->cap) return 0;
    return counts(s)[find(s, id)];
}

int mset_remove(mset_t *s, uint64_t id)
{
    if (!s->cap) return -1;
    uint32_t mask = s->cap - 1, j = find(s, id);
    uint32_t *c = counts(s);
    if (!c[j]) return -1;
    if (--c[j]) return 0;
    /* Backward-shift deletion: pull later members of the probe chain into
     * the hole when their home slot does not lie in (hole, their slot]. */
    uint32_t hole = j, k = j;
    for (;;) {
        k = (k + 1) & mask;
        if (!c[k]) break;
        uint32_t home = (uint32_t)mix(s->ids[k]) & mask;
        int in_range = hole <= k ? (hole < home && home <= k) : (hole < home || home <= k);
        if (in_range) continue;
        s->ids[hole] = s->ids[k];
        c[hole] = c[k];
        c[k] = 0;
        hole = k;
    }
    s->size--;
    if (s->size == 0)
        mset_free(s);
    else if (s->cap > 8 && s->size * 8 < s->cap)
        rehash(s, s->cap / 2);
    return 1;
}

int mset_next(const mset_t *s, uint32_t *iter, uint64_t *id, uint32_t *count)
{
    const uint32_t *c = counts(s);
    for (uint32_t i = *iter; i < s->cap; i++) {
        if (c[i]) {
            *id = s->ids[i];
            if (count) *count = c[i];
            *iter = i + 1;
            return 1;
        }
    }
    *iter = s->cap;
    return 0;
}

uint64_t mset_id_of_double(double d)
{
    if (d == 0) d = 0; /* folds -0 */
    uint64_t v;
    memcpy(&v, &d, 8);
    return v;
}

/* In id order, so that equal sets encode to equal bytes whatever their
 * table's history (checkpoints are then deterministic). */
void mset_encode(const mset_t *s, weir_buf_t *b)
{
    codec_put_u(b, s->size);
    if (!s->size) return;
    uint64_t *pairs = weir_malloc((size_t)s->size * 2 * sizeof(uint64_t));
    uint64_t id;
    uint32_t n, k = 0;
    for (uint32_t i = 0; mset_next(s, &i, &id, &n); k++) {
        pairs[2 * k] = id;
        pairs[2 * k + 1] = n;
    }
    qsort(pairs, s->size, 2 * sizeof(uint64_t), weir_cmp_u64);
    for (k = 0; k < s->size; k++) {
        codec_put_u64(b, pairs[2 * k]);
        codec_put_u(b, pairs[2 * k + 1]);
    }
    weir_free(pairs);
}

int mset_decode(mset_t *s, codec_rd_t *r, uint32_t max_size)
{
    mset_init(s);
    uint64_t size = codec_get_u(r);
    if (r->bad || size > max_size || size > codec_left(r) / 9) return WEIR_ECORRUPT;
    for (uint64_t i = 0; i < size; i++) {
        uint64_t id = codec_get_u64(r);
        uint64_t n = codec_get_u(r);
        if (r->bad || n == 0 || n > UINT32_MAX || mset_count(s, id) != 0) {
            mset_free(s);
            return WEIR_ECORRUPT;
        }
        mset_add(s, id);
        counts(s)[find(s, id)] = (uint32_t)n;
    }
    return 0;
}
