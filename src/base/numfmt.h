/* numfmt.h — numbers to text for weir's JSON, without printf.
 *
 * Why: a scored event's response and decision record carry a dozen numbers
 * (features, score, contributions, offsets), and a replay writes an output
 * line per window closed; through vsnprintf — which formats a double with
 * multi-precision arithmetic — they cost more CPU than the model
 * (bench/http_bench.sh, perf) and a tenth of a replay.
 *
 * Integers: byte for byte what printf writes ("%" PRIu64, "%" PRId64).
 *
 * Doubles, numfmt_shortest (weir's JSON, every writer: outputs, decision
 * log, responses, backfill, so that they agree byte for byte): the fewest
 * significant digits that read back (strtod) as the same double, the
 * closest such to it where several have that many — what Python's repr,
 * JavaScript and Java print: 389.23, not 389.23000000000002. Written as %g
 * writes them with that many digits (fixed notation from 1e-4 up, below it
 * d.ddde-XX). A value with a few decimals (amounts, their sums) is found
 * first, by one multiply and one exact division per decimal tried (FEW
 * DECIMALS, numfmt.c); the others' 15- and 16-digit candidates are computed
 * exactly (the double times a power of ten in 192-bit integers) and checked
 * exactly (within half an ulp, ties to even); otherwise 17 digits. Outside
 * 1e-21 <= |v| < 2^53 (rare) it asks snprintf and strtod.
 *
 * numfmt_g17 is printf's "%.17g" exactly (rounded half to even as glibc
 * does), the 17-digit case of the above; it calls snprintf outside that
 * range. tests/unit/base_numfmt_test.c compares both with snprintf. */
#ifndef WEIR_BASE_NUMFMT_H
#define WEIR_BASE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define NUMFMT_MAX 32 /* bytes any of these writes, at most (no NUL) */

/* Each writes the text to out (no NUL) and returns its length. out has
 * NUMFMT_MAX bytes of room: the digits go eight to a store, so bytes past
 * the text within it may be written too. */
size_t numfmt_u64(char *out, uint64_t v);
size_t numfmt_i64(char *out, int64_t v);
size_t numfmt_g17(char *out, double v);
size_t numfmt_shortest(char *out, double v);

/* Appends the same text to a buffer. */
void numfmt_append_u64(weir_buf_t *b, uint64_t v);
void numfmt_append_i64(weir_buf_t *b, int64_t v);
void numfmt_append_g17(weir_buf_t *b, double v);
void numfmt_append_shortest(weir_buf_t *b, double v);
/* As numfmt_append_shortest, or null for NaN and the infinities, which JSON
 * has no numbers for (a response or line holding "nan" is not JSON). */
void numfmt_append_json(weir_buf_t *b, double v);

#endif
