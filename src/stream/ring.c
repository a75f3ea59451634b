/* ring.c — growable ring buffer of fixed-size records (see ring.h). */
#include "stream/ring.h"

#include "base/alloc.h"
#include "base/error.h"

#define RING_MIN_CAP 4

void ring_init_inline(ring_t *r, uint32_t rsize, void *buf, uint32_t inl_cap)
{
    weir_assert(rsize > 0 && rsize % 8 == 0 && rsize <= UINT16_MAX && inl_cap <= UINT16_MAX);
    r->inl = inl_cap ? buf : NULL;
    r->inl_cap = r->inl ? (uint16_t)inl_cap : 0;
    r->data = r->inl;
    r->head = r->len = 0;
    r->cap = r->inl_cap;
    r->rsize = (uint16_t)rsize;
}

void ring_init(ring_t *r, uint32_t rsize)
{
    ring_init_inline(r, rsize, NULL, 0);
}

void ring_free(ring_t *r)
{
    if (r->data != r->inl) weir_free(r->data);
    r->data = r->inl;
    r->head = r->len = 0;
    r->cap = r->inl_cap;
}

void ring_clear(ring_t *r)
{
    ring_free(r);
}

/* Moves the records into a fresh buffer of cap slots, record 0 at slot 0. */
static void resize(ring_t *r, uint32_t cap)
{
    weir_assert(cap >= r->len);
    if (cap == 0 || (r->len == 0 && cap <= r->inl_cap)) {
        ring_free(r);
        return;
    }
    if (cap <= r->inl_cap) cap = r->inl_cap;
    if (r->data == r->inl && cap == r->inl_cap) return; /* already there */
    unsigned char *d = cap == r->inl_cap ? r->inl : weir_malloc((size_t)cap * r->rsize);
    if (r->len) {
        uint32_t first = r->cap - r->head; /* records before the wrap */
        if (first > r->len) first = r->len;
        memcpy(d, r->data + (size_t)r->head * r->rsize, (size_t)first * r->rsize);
        memcpy(d + (size_t)first * r->rsize, r->data, (size_t)(r->len - first) * r->rsize);
    }
    if (r->data != r->inl) weir_free(r->data);
    r->data = d;
    r->cap = cap;
    r->head = 0;
}

static void grow(ring_t *r)
{
    if (r->len < r->cap) return;
    weir_assert(r->cap < (1u << 30));
    uint32_t cap = r->cap + r->cap / 2;
    resize(r, cap < RING_MIN_CAP ? RING_MIN_CAP : cap);
}

static void maybe_shrink(ring_t *r)
{
    if (r->data == r->inl) return; /* inline (or nothing): no memory to give back */
    if (r->len == 0) {
        ring_free(r);
        return;
    }
    if (r->cap > RING_MIN_CAP && r->len <= r->cap / 4) resize(r, r->cap / 2);
}

void *ring_push_grow(ring_t *r)
{
    grow(r);
    r->len++;
    return ring_at(r, r->len - 1);
}

void *ring_insert(ring_t *r, uint32_t i)
{
    weir_assert(i <= r->len);
    grow(r);
    r->len++;
    for (uint32_t k = r->len - 1; k > i; k--) memcpy(ring_at(r, k), ring_at(r, k - 1), r->rsize);
    return ring_at(r, i);
}

void ring_erase(ring_t *r, uint32_t i, uint32_t k)
{
    weir_assert(i + k <= r->len);
    if (k == 0) return;
    for (uint32_t j = i; j + k < r->len; j++) memcpy(ring_at(r, j), ring_at(r, j + k), r->rsize);
    r->len -= k;
    maybe_shrink(r);
}

void ring_pop_front(ring_t *r, uint32_t k)
{
    weir_assert(k <= r->len);
    if (k == 0) return;
    r->head += k;
    if (r->head >= r->cap) r->head -= r->cap;
    r->len -= k;
    maybe_shrink(r);
}

void ring_truncate(ring_t *r, uint32_t n)
{
    weir_assert(n <= r->len);
    if (n == r->len) return;
    r->len = n;
    maybe_shrink(r);
}

/* ring_upper past its inline test (record `from` is <= key). */
uint32_t ring_upper_search(const ring_t *r, uint32_t from, int64_t key)
{
    uint32_t lo = from, hi = r->len;
    /* Most of the rest end at the other end (an in-order insert, the whole
     * run evicted): check it before searching; each check is one access to
     * a per-key buffer that is often cold. */
    if (ring_key(r, hi - 1) <= key) return hi;
    lo++;
    hi--; /* the answer is in [lo, hi]: key(lo - 1) <= key < key(hi) */
    /* GALLOP. Of the rest, most end a record or two past `from`: an event
     * evicts the one or two records its window's start moved past. The
     * records next to `from` share its cache line (win_prefetch asked for
     * it); a bisection's first probes land mid-ring, on lines nobody asked
     * for — at 100 k keys of 100 events a week, a tenth of a replay's time
     * went to those misses (perf). So probe from+1, +3, +7, ... first, then
     * bisect what is left. */
    for (uint32_t step = 1; lo < hi; step *= 2) {
        uint32_t probe = lo + step - 1;
        if (probe >= hi) break;
        if (ring_key(r, probe) > key) {
            hi = probe;
            break;
        }
        lo = probe + 1;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring_key(r, mid) <= key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t ring_lower(const ring_t *r, uint32_t from, int64_t key)
{
    uint32_t lo = from, hi = r->len;
    if (lo == hi || ring_key(r, lo) >= key) return lo;
    if (ring_key(r, hi - 1) < key) return hi;
    lo++;
    hi--;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring_key(r, mid) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
