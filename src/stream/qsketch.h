/* qsketch.h — a mergeable quantile sketch with relative error (DDSketch,
 * Masson, Rim, Lee, VLDB 2019), for approx_quantile(x, q).
 *
 * Guarantee: for values with |x| >= QSKETCH_MIN_ABS, qsketch_quantile(q)
 * returns a value within relative error alpha of the exact lower
 * q-quantile, the element of rank floor(q * (n - 1)) (0-based) of the
 * sorted values; values with |x| < QSKETCH_MIN_ABS count as 0. The default
 * alpha is 0.01 (1%). The guarantee holds while the values of each sign
 * span at most QSKETCH_MAX_BINS bins, a ratio of gamma^8192: about 1e71 at
 * alpha = 0.01, 1e7 at alpha = 0.001; beyond that the lowest bins of that sign collapse into one
 * and only quantiles that fall in the collapsed bin lose accuracy.
 *
 * Bin i of a sign counts the values with |x| in (gamma^(i-1), gamma^i],
 * gamma = (1 + alpha) / (1 - alpha); bins are a dense array of counts over
 * the index range present. Counts are exact integers, so unlike most
 * sketches this one supports removal (qsketch_remove, qsketch_sub) exactly —
 * which sliding windows need — and merge and subtract commute.
 *
 * Costs: add/remove O(1) (plus an occasional O(bins) range change);
 * quantile O(bins) (scanning from the nearer end); memory 4 bytes a bin over the occupied index range
 * (about 230 bins a decade of values at alpha = 0.01, fewer for narrower
 * data). Not thread-safe; single owner. */
#ifndef WEIR_STREAM_QSKETCH_H
#define WEIR_STREAM_QSKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define QSKETCH_DEFAULT_ALPHA 0.01
#define QSKETCH_MIN_ALPHA 1e-6
#define QSKETCH_MIN_ABS 1e-300
#define QSKETCH_MAX_BINS 8192

typedef struct qsketch_side {
    uint32_t *c;       /* counts of bins [off, off + len) */
    int32_t off;
    uint32_t len, alloc;
    int collapsed;     /* indexes below off are counted in bin off */
} qsketch_side_t;

typedef struct qsketch {
    double alpha, gamma, inv_ln_gamma;
    uint64_t n, zero;
    qsketch_side_t pos, neg; /* neg holds |x| of negative values */
} qsketch_t;

/* alpha in [QSKETCH_MIN_ALPHA, 0.5]; WEIR_EINVAL otherwise. */
int qsketch_init(qsketch_t *s, double alpha);
void qsketch_free(qsketch_t *s);
void qsketch_clear(qsketch_t *s); /* empty, same alpha */

void qsketch_add(qsketch_t *s, double x);
/* Removes one value previously added; WEIR_ENOENT if its bin is empty. */
int qsketch_remove(qsketch_t *s, double x);
/* s += o (sign 1) or s -= o (sign -1); same alpha required (WEIR_EINVAL);
 * subtracting more than s holds gives WEIR_ENOENT and leaves s unchanged. */
int qsketch_merge(qsketch_t *s, const qsketch_t *o, int sign);

static inline uint64_t qsketch_count(const qsketch_t *s)
{
    return s->n;
}

/* The approximate q-quantile (q in [0, 1]) into *out; returns 1, or 0 if
 * the sketch is empty. */
int qsketch_quantile(const qsketch_t *s, double q, double *out);

size_t qsketch_bytes(const qsketch_t *s); /* heap bytes (not the struct) */

void qsketch_encode(const qsketch_t *s, weir_buf_t *b);
struct codec_rd;
/* Decodes into s (uninitialized on entry; freed on failure). */
int qsketch_decode(qsketch_t *s, struct codec_rd *r);

#endif
