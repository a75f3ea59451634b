/* mono.h — monotonic deque: the sliding max (or min) of a window whose
 * elements are ordered by an int64 key (event time, or bucket index) and
 * leave it oldest first.
 *
 * Invariant: the entries are the elements not dominated by a later one — an
 * element is dominated when some element with a larger key (or the same key,
 * added later) is at least as good (>= for max, <= for min) — kept in key
 * order, so their values strictly decrease (max) from front to back and the
 * front is the best of the window. A dominated element can never be the best
 * of any window that ends at or after its dominator, which is why it can be
 * dropped for the running window.
 *
 * Costs, n = entries: mono_update O(log n + m) where m is the number of
 * entries with a key greater than the update's (0 for in-order events, the
 * few events within the lateness for late ones); the dominated entries are
 * cut with a binary search, not popped one by one, so there is no O(window)
 * spike. mono_evict O(log n). mono_best O(1). */
#ifndef WEIR_STREAM_MONO_H
#define WEIR_STREAM_MONO_H

#include <stdint.h>

#include "stream/ring.h"

typedef struct mono_entry {
    int64_t key;
    double val;
} mono_entry_t;

typedef struct mono {
    ring_t r;   /* records mono_entry_t */
    int is_max; /* 1: tracks the max, 0: the min */
} mono_t;

void mono_init(mono_t *m, int is_max);
void mono_free(mono_t *m);

/* The element at `key` now includes value x: a new event (exact windows),
 * or a value added to bucket `key` (bucketed windows, where the bucket's
 * best only improves). Keys may arrive out of order. */
void mono_update(mono_t *m, int64_t key, double x);

/* Drops the entries with key <= key_max (they left the window). */
void mono_evict(mono_t *m, int64_t key_max);

/* Stores the best value in *out and returns 1, or returns 0 if empty. */
static inline int mono_best(const mono_t *m, double *out)
{
    if (m->r.len == 0) return 0;
    *out = ((const mono_entry_t *)ring_at(&m->r, 0))->val;
    return 1;
}

#endif
