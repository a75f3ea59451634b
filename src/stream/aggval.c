/* aggval.c — see aggval.h. */
#include "stream/aggval.h"

#include <math.h>
#include <string.h>

#include "base/error.h"
#include "base/hash.h"

agg_kind_t aggval_kind(expr_agg_kind_t k)
{
    /* The two enums order stddev and variance differently. A switch, not a
     * lookup by name: every window closed asks, once per select. */
    switch (k) {
    case EXPR_AGG_COUNT: return AGG_COUNT;
    case EXPR_AGG_SUM: return AGG_SUM;
    case EXPR_AGG_AVG: return AGG_AVG;
    case EXPR_AGG_MIN: return AGG_MIN;
    case EXPR_AGG_MAX: return AGG_MAX;
    case EXPR_AGG_STDDEV: return AGG_STDDEV;
    case EXPR_AGG_VARIANCE: return AGG_VARIANCE;
    case EXPR_AGG_FIRST: return AGG_FIRST;
    case EXPR_AGG_LAST: return AGG_LAST;
    case EXPR_AGG_DISTINCT: return AGG_DISTINCT;
    case EXPR_AGG_APPROX_DISTINCT: return AGG_APPROX_DISTINCT;
    case EXPR_AGG_APPROX_QUANTILE: return AGG_APPROX_QUANTILE;
    case EXPR_AGG_PREV:
    case EXPR_AGG_MATCHES: break;
    }
    weir_assert(!"not a window aggregate");
    return AGG_COUNT;
}

int aggval_from_value(const expr_value_t *v, win_val_t *out)
{
    switch ((expr_type_t)v->type) {
    case EXPR_NULL: return 0;
    case EXPR_BOOL: *out = win_num(v->as.b ? 1.0 : 0.0); return 1;
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION: *out = win_num((double)v->as.i); return 1;
    case EXPR_FLOAT: *out = win_num(v->as.f); return isfinite(v->as.f);
    case EXPR_STRING: *out = win_id(weir_hash64(v->as.s.ptr, v->as.s.len)); return 1;
    }
    return 0;
}

expr_value_t aggval_to_value(const agg_result_t *r, agg_kind_t kind, expr_type_t type)
{
    if (r->null) {
        if (kind == AGG_COUNT || kind == AGG_DISTINCT || kind == AGG_APPROX_DISTINCT)
            return expr_int(0);
        if (kind == AGG_SUM) return type == EXPR_INT ? expr_int(0) : expr_float(0.0);
        return expr_null();
    }
    double x = r->num;
    /* An int sum is exact below 2^53 (the bound decode puts on an int; the
     * windows' sums are rounded to a double here): one that reaches it may
     * be rounded (2^53 + 1 reads 2^53), and one past int64 gave INT64_MIN
     * (the conversion is undefined). It is an overflow, null as int
     * arithmetic's (expr.h), never a wrong number. The other kinds give
     * one of the values, exact. */
    if (kind == AGG_SUM && type != EXPR_FLOAT && !(fabs(x) < 9007199254740992.0))
        return expr_null();
    switch (type) {
    case EXPR_INT: return expr_int((int64_t)llround(x));
    case EXPR_TIME: return expr_time((int64_t)llround(x));
    case EXPR_DURATION: return expr_duration((int64_t)llround(x));
    case EXPR_BOOL: return expr_bool(x != 0.0);
    case EXPR_FLOAT: return isfinite(x) ? expr_float(x) : expr_null();
    default: return expr_null();
    }
}

int aggval_check(const expr_agg_t *a, char *err, size_t errlen)
{
    if (a->kind == EXPR_AGG_PREV || !aggval_is_id(a->arg_type)) return 0;
    switch (a->kind) {
    case EXPR_AGG_COUNT:
    case EXPR_AGG_DISTINCT:
    case EXPR_AGG_APPROX_DISTINCT: return 0;
    default:
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "%s: %s over a window of strings is not supported yet (count, distinct "
                         "and approx_distinct are)",
                         a->text, expr_agg_kind_name(a->kind));
    }
}
