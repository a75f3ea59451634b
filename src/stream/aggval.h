/* aggval.h — the seam between the spec's typed values and the windows'
 * numbers: an aggregate argument (expr_value_t) becomes a window value (a
 * double, or a 64-bit id for strings), and a window result (agg_result_t)
 * becomes the slot's typed value. Shared by the feature windows (engine.c)
 * and the on-close aggregates (onclose.c) so both convert the same way. */
#ifndef WEIR_STREAM_AGGVAL_H
#define WEIR_STREAM_AGGVAL_H

#include "spec/expr.h"
#include "stream/agg.h"
#include "stream/win.h"

/* The window kind computing an aggregate slot kind (not PREV). */
agg_kind_t aggval_kind(expr_agg_kind_t k);

/* Whether arguments of type t go into an id window (strings: their XXH64). */
static inline int aggval_is_id(expr_type_t t)
{
    return t == EXPR_STRING;
}

/* Converts an argument to a window value: 1 and *out, or 0 for a null (not
 * added: aggregates skip nulls). Numbers, times, durations and bools
 * (0/1) become doubles, strings ids. */
int aggval_from_value(const expr_value_t *v, win_val_t *out);

/* A window result as the slot's value of type `type` (count, distinct and
 * sums of ints are ints, times stay times...). Empty count/sum/distinct
 * results are 0, per DESIGN.md's null rules. */
expr_value_t aggval_to_value(const agg_result_t *r, agg_kind_t kind, expr_type_t type);

/* aggval_to_value for the per-event path: counts and distinct counts (ints,
 * the commonest slots) are exact integers in a double, below 2^53, so a cast
 * gives what llround would, without the library call; the rest go the
 * general way. */
static inline expr_value_t aggval_to_value_fast(const agg_result_t *r, agg_kind_t kind,
                                                expr_type_t type)
{
    if ((kind == AGG_COUNT || kind == AGG_DISTINCT || kind == AGG_APPROX_DISTINCT) &&
        type == EXPR_INT)
        return expr_int(r->null ? 0 : (int64_t)r->num);
    return aggval_to_value(r, kind, type);
}

/* Refuses slots the windows cannot answer (first/last/min/max/quantile of
 * strings), with a sentence naming the slot. */
int aggval_check(const expr_agg_t *a, char *err, size_t errlen);

#endif
