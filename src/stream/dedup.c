/* dedup.c — one key's recent event ids (see dedup.h). */
#include "stream/dedup.h"

#include <string.h>

#include "base/alloc.h"
#include "stream/codec.h"
#include "stream/mset.h"

/* Linear scan up to this many ids (24 bytes each); the multiset past it. */
#define DEDUP_SCAN 16

typedef struct dedup_entry {
    int64_t t;
    uint64_t id;
    uint64_t off;
} dedup_entry_t;

struct dedup {
    dedup_entry_t *e; /* e[at .. at + n), sorted by time */
    uint32_t at, n, cap;
    uint32_t indexed; /* ids holds exactly the ids of e[at .. at + n) */
    mset_t ids;
};

uint32_t dedup_count(const dedup_t *d)
{
    return d ? d->n : 0;
}

size_t dedup_bytes(const dedup_t *d)
{
    if (!d) return 0;
    return sizeof *d + (size_t)d->cap * sizeof *d->e + (d->indexed ? mset_bytes(&d->ids) : 0);
}

void dedup_free(dedup_t *d)
{
    if (!d) return;
    if (d->indexed) mset_free(&d->ids);
    weir_free(d->e);
    weir_free(d);
}

/* The multiset on (past DEDUP_SCAN ids) or off (back under half of it: not
 * at every crossing, which would rebuild it again and again). */
static void index_follow(dedup_t *d)
{
    if (!d->indexed && d->n > DEDUP_SCAN) {
        mset_init(&d->ids);
        for (uint32_t i = 0; i < d->n; i++)
            mset_add(&d->ids, d->e[d->at + i].id);
        d->indexed = 1;
    } else if (d->indexed && d->n < DEDUP_SCAN / 2) {
        mset_free(&d->ids);
        d->indexed = 0;
    }
}

int64_t dedup_seen(dedup_t **dp, uint64_t id, int64_t cutoff)
{
    dedup_t *d = *dp;
    if (!d) return -1;
    while (d->n && d->e[d->at].t <= cutoff) {
        if (d->indexed) mset_remove(&d->ids, d->e[d->at].id);
        d->at++, d->n--;
    }
    if (!d->n) {
        dedup_free(d);
        *dp = NULL;
        return -1;
    }
    index_follow(d);
    /* the multiset answers "not here" (nearly every event) without a scan */
    if (d->indexed && !mset_count(&d->ids, id)) return -1;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->e[d->at + i].id == id) return (int64_t)d->e[d->at + i].off;
    return -1;
}

void dedup_add(dedup_t **dp, uint64_t id, int64_t t, uint64_t offset)
{
    dedup_t *d = *dp;
    if (!d) d = *dp = weir_calloc(1, sizeof *d);
    if (d->at + d->n == d->cap) {
        if (d->at) { /* room at the front (expired ids): slide down first */
            memmove(d->e, d->e + d->at, (size_t)d->n * sizeof *d->e);
            d->at = 0;
        }
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 2;
            d->e = weir_realloc(d->e, (size_t)d->cap * sizeof *d->e);
        }
    }
    /* In time order; ties keep add order. An out-of-order id is within the
     * lateness of the newest: it moves past a few at most. */
    uint32_t i = d->at + d->n;
    while (i > d->at && d->e[i - 1].t > t) {
        d->e[i] = d->e[i - 1];
        i--;
    }
    d->e[i] = (dedup_entry_t){t, id, offset};
    d->n++;
    if (d->indexed) mset_add(&d->ids, id);
    index_follow(d);
}

void dedup_encode(const dedup_t *d, weir_buf_t *b)
{
    uint32_t n = dedup_count(d);
    codec_put_u(b, n);
    int64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        const dedup_entry_t *x = &d->e[d->at + i];
        codec_put_i(b, i ? x->t - prev : x->t);
        codec_put_u64(b, x->id);
        codec_put_u(b, x->off);
        prev = x->t;
    }
}

int dedup_decode(dedup_t **dp, struct codec_rd *r, uint32_t max_count)
{
    *dp = NULL;
    uint64_t n = codec_get_u(r);
    /* each entry is at least 10 bytes: a bound before allocating */
    if (r->bad || n > max_count || n > codec_left(r) / 10) return -1;
    if (n == 0) return 0;
    dedup_t *d = weir_calloc(1, sizeof *d);
    d->cap = (uint32_t)n;
    d->e = weir_malloc((size_t)n * sizeof *d->e);
    mset_t seen;
    mset_init(&seen);
    int64_t t = 0;
    int bad = 0;
    for (uint32_t i = 0; i < n && !bad; i++) {
        int64_t dt = codec_get_i(r);
        if (!i)
            t = dt;
        else if (dt < 0 || __builtin_add_overflow(t, dt, &t))
            bad = 1; /* out of order, or past any time */
        uint64_t id = codec_get_u64(r);
        uint64_t off = codec_get_u(r);
        if (r->bad || off > INT64_MAX || !mset_add(&seen, id))
            bad = 1; /* truncated, an offset past any log, or an id twice */
        d->e[i] = (dedup_entry_t){t, id, off};
        d->n = i + 1;
    }
    if (bad || r->bad) {
        mset_free(&seen);
        dedup_free(d);
        return -1;
    }
    if (d->n > DEDUP_SCAN) { /* the set built for the check is the index */
        d->ids = seen;
        d->indexed = 1;
    } else {
        mset_free(&seen);
    }
    *dp = d;
    return 0;
}
