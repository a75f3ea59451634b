/* numfmt.h — numbers to text for weir's JSON, byte for byte what printf
 * writes ("%" PRIu64, "%" PRId64, "%.17g"), without printf.
 *
 * Why: a scored event's response and decision record carry a dozen numbers
 * (features, score, contributions, offsets), and a replay writes an output
 * line per window closed; through vsnprintf — which formats a double with
 * multi-precision arithmetic — they cost more CPU than the model
 * (bench/http_bench.sh, perf) and a tenth of a replay. The output must stay exactly
 * printf's because `weir backfill` writes the same values with printf and
 * the parity tests compare them.
 *
 * numfmt_g17 computes the 17 significant digits exactly (the double times
 * a power of ten in 192-bit integers, rounded half to even as glibc does)
 * for 1e-21 <= |v| < 2^53 — fixed notation, and below 1e-4 the exponent
 * form (a model's small probabilities: 3.3164117212436395e-06) — and
 * calls snprintf for the rest (larger exponents, NaN, inf).
 * tests/unit/base_numfmt_test.c compares it with snprintf. */
#ifndef WEIR_BASE_NUMFMT_H
#define WEIR_BASE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define NUMFMT_MAX 32 /* bytes any of these writes, at most (no NUL) */

/* Each writes the text to out (no NUL) and returns its length. */
size_t numfmt_u64(char *out, uint64_t v);
size_t numfmt_i64(char *out, int64_t v);
size_t numfmt_g17(char *out, double v);

/* Appends the same text to a buffer. */
void numfmt_append_u64(weir_buf_t *b, uint64_t v);
void numfmt_append_i64(weir_buf_t *b, int64_t v);
void numfmt_append_g17(weir_buf_t *b, double v);

#endif
