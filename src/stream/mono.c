/* mono.c — monotonic deque for sliding min/max (see mono.h). */
#include "stream/mono.h"

typedef mono_entry_t entry_t;

void mono_init(mono_t *m, int is_max)
{
    ring_init(&m->r, sizeof(entry_t));
    m->is_max = is_max;
}

void mono_free(mono_t *m)
{
    ring_free(&m->r);
}

static inline const entry_t *at(const mono_t *m, uint32_t i)
{
    return ring_at(&m->r, i);
}

/* a is at least as good as b */
static inline int covers(const mono_t *m, double a, double b)
{
    return m->is_max ? a >= b : a <= b;
}

void mono_update(mono_t *m, int64_t key, double x)
{
    ring_t *r = &m->r;
    uint32_t p = ring_upper(r, 0, key); /* first entry with a later key */
    if (p < r->len && covers(m, at(m, p)->val, x)) return; /* dominated */
    if (p > 0 && at(m, p - 1)->key == key && covers(m, at(m, p - 1)->val, x)) return;
    /* Entries in [0, p) that x dominates form a suffix of [0, p) because
     * values are strictly monotonic: find its start q by binary search. */
    uint32_t lo = 0, hi = p;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (covers(m, x, at(m, mid)->val))
            hi = mid;
        else
            lo = mid + 1;
    }
    uint32_t q = lo;
    entry_t e = {key, x};
    if (q == p) {
        if (p == r->len)
            *(entry_t *)ring_push(r) = e;
        else
            *(entry_t *)ring_insert(r, p) = e;
        return;
    }
    /* Replace [q, p) by the new entry. */
    *(entry_t *)ring_at(r, q) = e;
    if (p == r->len)
        ring_truncate(r, q + 1);
    else
        ring_erase(r, q + 1, p - q - 1);
}

void mono_evict(mono_t *m, int64_t key_max)
{
    ring_pop_front(&m->r, ring_upper(&m->r, 0, key_max));
}
