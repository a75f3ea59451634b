/* hll.h — HyperLogLog distinct counter for approx_distinct (and for any
 * whole-window or on-close distinct estimate: sketches merge by register
 * max).
 *
 * m = 2^p registers of one byte each (dense; 16 KiB at the default p = 14).
 * A value enters as a 64-bit hash (weir_hash64 of its bytes, or a mixed
 * integer id: see hll_add_id): the top p bits pick a register, the rank of
 * the first 1 bit of the remaining 64 - p bits is kept as a max. The
 * estimate is Ertl's improved estimator ("New cardinality estimation
 * algorithms for HyperLogLog sketches", 2017), which needs no empirical bias
 * tables and is unbiased from 0 to beyond 2^(64-p) distinct values.
 *
 * Error: relative standard error 1.04 / sqrt(m): 0.81% at p = 14, 1.63% at
 * p = 12, 3.25% at p = 10. In tests, estimates stay within 4 standard
 * errors over cardinalities 1..2,000,000 (and are exact to +-1 below ~100
 * values, where the estimator reduces to linear counting).
 *
 * Costs: add O(1); merge O(m); estimate O(m + 64). */
#ifndef WEIR_STREAM_HLL_H
#define WEIR_STREAM_HLL_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define HLL_DEFAULT_P 14
#define HLL_MIN_P 4
#define HLL_MAX_P 18

typedef struct hll {
    uint8_t *reg; /* 2^p registers */
    uint8_t p;
} hll_t;

/* p in [HLL_MIN_P, HLL_MAX_P]; WEIR_EINVAL otherwise. */
int hll_init(hll_t *h, int p);
void hll_free(hll_t *h);
void hll_clear(hll_t *h);

/* Adds a value by its 64-bit hash (well mixed: XXH64). */
void hll_add_hash(hll_t *h, uint64_t hash);
/* Adds a value by a 64-bit id that may not be well mixed (an integer, a
 * double's bits): the id is mixed first. */
void hll_add_id(hll_t *h, uint64_t id);
/* h = union(h, o); same p required (WEIR_EINVAL). */
int hll_merge(hll_t *h, const hll_t *o);
double hll_estimate(const hll_t *h);
/* The relative standard error of this sketch, 1.04 / sqrt(m). */
double hll_std_error(const hll_t *h);

static inline size_t hll_bytes(const hll_t *h)
{
    return (size_t)1 << h->p;
}

void hll_encode(const hll_t *h, weir_buf_t *b);
struct codec_rd;
int hll_decode(hll_t *h, struct codec_rd *r);

#endif
