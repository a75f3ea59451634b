/* expr.c — type checker and compiler of the expression language: a syntax
 * tree (ast.c) in, a flat typed program (expr_prog.h) out, once per spec load.
 *
 * TYPES. bool, int (int64), float (double), string, time (epoch ms, UTC),
 * duration (ms). Literals: 42, 4.2, 2e-3, "s" or 's', true, false, null, 500ms
 * 30s 10m 1h 7d. Names resolve to slots through the scope's callbacks.
 *
 *   a + b    int+int → int; number+number → float (int widens); time+duration
 *            and duration+time → time; duration+duration → duration
 *   a - b    as +, and time-time → duration, time-duration → time
 *   a * b    int*int → int; numbers → float; duration*int, int*duration →
 *            duration
 *   a / b    numbers → float, always (7 / 2 = 3.5); duration/int → duration
 *            (truncated toward zero); duration/duration → float
 *   a % b    int%int → int (sign of a, as C); with a float → float (fmod);
 *            duration%duration → duration
 *   -a       int, float, duration
 *   == !=    numbers (mixed allowed), strings, bools, times, durations
 *   < <= > >= numbers, strings (bytewise), times, durations
 *   and or not   bool operands
 *   x [not] in [a, b, ...]   items compare with x as ==; result bool
 *
 * NULLS. The run-time value of any expression may be null (a missing field,
 * an empty window, a previous event that does not exist).
 *   - Arithmetic and functions with a null operand give null; so do division
 *     and modulo by zero, int overflow (never wraps) and float results that
 *     would be NaN or ±infinity (log(0), sqrt(-1), exp(1000)).
 *   - A comparison with null is false, whatever the operator: null == null
 *     is false and `x != last(x)` is false when last(x) is null. `in` is
 *     false when x is null (for `not in` too); null items never match.
 *   - and/or/not are SQL's three-valued logic: false and null = false,
 *     true and null = null, true or null = true, false or null = null,
 *     not null = null. So a comparison with null stays false under and/or,
 *     but `not (x > 1)` is true when x is null (the comparison is false).
 *   - Where a condition decides (if's first argument, a decision's `when`)
 *     null counts as false.
 *   - if(c, a, b) → a when c is true, else b (c false or null).
 *     coalesce(a, b, ...) → the first non-null argument, else null.
 *     is_null(x) → true when x is null (never null itself).
 *   - The literal `null` is allowed only where it can matter: an argument of
 *     if, coalesce or is_null. Elsewhere (`x == null`, `x + null`) it is a
 *     compile error, because the result would be fixed (false or null).
 *
 * FUNCTIONS. abs(int|float|duration) same type; log, exp, sqrt (number) →
 * float; round(x) → int (half away from zero; null outside int64);
 * round(x, n) → float rounded to n decimals (null unless −15 ≤ n ≤ 15);
 * min(a, b, ...), max(a, b, ...) (2+ numbers, times, durations or strings) →
 * their common type; lower(string) → string (ASCII letters only; other bytes,
 * UTF-8 included, are kept; writes to the env's scratch area); len(string) →
 * int (UTF-8 code points: bytes that are not continuation bytes);
 * seconds(duration) → float; hour_of_day(time) → int 0-23 (UTC);
 * day_of_week(time) → int, 0 = Monday ... 6 = Sunday (UTC, ISO 8601 order,
 * Python's weekday()); haversine(lat1, lon1, lat2, lon2) → float, the great
 * circle distance in km on a sphere of radius 6371 km (degrees in).
 *
 * AGGREGATES (see expr.h for the slot contract and result types):
 * count() | count(x), sum, avg, min, max, stddev, variance, first, last,
 * distinct, approx_distinct (one argument) and approx_quantile(x, q) with q a
 * number literal in [0, 1], each followed by `over D [every H]` in features;
 * last(x) without `over` is the previous event's x. min and max with one
 * argument are aggregates, with two or more they are the scalar functions.
 * The argument reads raw event fields only. Identical calls share a slot. */
#include "spec/expr.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/expr_prog.h"

typedef struct comp {
    const expr_scope_t *scope;
    const char *text;
    size_t len;
    expr_ins_t *code;
    uint32_t ncode, capcode;
    expr_value_t *consts;
    uint32_t *const_off; /* string constants: offset of their bytes in pool */
    uint32_t nconsts, capconsts;
    weir_buf_t pool;
    uint32_t depth, max_depth;
    uint32_t lower_calls;
    uint32_t err_pos;
    char *err;
    size_t errlen;
    int failed;
} comp_t;

static int fail(comp_t *c, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(comp_t *c, uint32_t pos, const char *fmt, ...)
{
    if (c->failed) return -1;
    c->failed = 1;
    c->err_pos = pos;
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- emitting ---- */

static uint32_t emit(comp_t *c, expr_opcode_t op, expr_type_t type, uint8_t aux, uint32_t arg)
{
    if (c->ncode == c->capcode) {
        c->capcode = c->capcode ? c->capcode * 2 : 32;
        c->code = weir_realloc(c->code, sizeof *c->code * c->capcode);
    }
    expr_ins_t *i = &c->code[c->ncode];
    i->op = (uint8_t)op;
    i->type = (uint8_t)type;
    i->aux = aux;
    i->pad = 0;
    i->arg = arg;
    return c->ncode++;
}

/* Records a stack change of n values (positive: pushed). */
static int stack(comp_t *c, int n, uint32_t pos)
{
    c->depth = (uint32_t)((int)c->depth + n);
    if (c->depth > c->max_depth) c->max_depth = c->depth;
    if (c->max_depth > EXPR_STACK_MAX)
        return fail(c, pos, "expression is too large to evaluate (more than %d values at once)",
                    EXPR_STACK_MAX);
    return 0;
}

static uint32_t add_const(comp_t *c, expr_value_t v, const char *str, size_t len)
{
    if (c->nconsts == c->capconsts) {
        c->capconsts = c->capconsts ? c->capconsts * 2 : 8;
        c->consts = weir_realloc(c->consts, sizeof *c->consts * c->capconsts);
        c->const_off = weir_realloc(c->const_off, sizeof *c->const_off * c->capconsts);
    }
    c->const_off[c->nconsts] = (uint32_t)c->pool.len;
    if (v.type == EXPR_STRING) {
        /* buf_append(…, 0) on an empty buffer would memcpy to NULL (UBSan). */
        if (len) buf_append(&c->pool, str, len);
        v.as.s.len = len;
        v.as.s.ptr = NULL; /* fixed when the pool stops moving */
    }
    c->consts[c->nconsts] = v;
    return c->nconsts++;
}

static int push_const(comp_t *c, expr_value_t v, const char *str, size_t len, uint32_t pos)
{
    emit(c, I_CONST, (expr_type_t)v.type, 0, add_const(c, v, str, len));
    return stack(c, 1, pos);
}

/* ---- suggestions ---- */

int expr_edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    if (na > 64 || nb > 64) return 99;
    int row[65];
    for (size_t j = 0; j <= nb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[nb];
}

typedef struct suggest {
    const char *target;
    size_t len;
    char best[64];
    int bestd;
} suggest_t;

static void suggest_emit(void *ctx, const char *name)
{
    suggest_t *s = ctx;
    size_t n = strlen(name);
    int d = expr_edit_distance(s->target, s->len, name, n);
    int limit = s->len <= 3 ? 1 : 2;
    if (d <= limit && d < s->bestd && n < sizeof s->best) {
        s->bestd = d;
        memcpy(s->best, name, n + 1);
    }
}

/* Writes "; did you mean 'x'?" into out (or "") for the closest name. */
static void did_you_mean(expr_names_cb names, void *ctx, const char *name, size_t len, char *out,
                         size_t outlen)
{
    out[0] = '\0';
    if (!names) return;
    suggest_t s = {.target = name, .len = len, .bestd = 99};
    names(ctx, suggest_emit, &s);
    if (s.bestd < 99) snprintf(out, outlen, "; did you mean '%s'?", s.best);
}

/* ---- functions ---- */

typedef enum fn {
    FN_IF,
    FN_COALESCE,
    FN_IS_NULL,
    FN_ABS,
    FN_LOG,
    FN_EXP,
    FN_SQRT,
    FN_ROUND,
    FN_MIN,
    FN_MAX,
    FN_LOWER,
    FN_LEN,
    FN_SECONDS,
    FN_HOUR_OF_DAY,
    FN_DAY_OF_WEEK,
    FN_HAVERSINE,
} fn_t;

static const struct {
    const char *name;
    fn_t fn;
    uint8_t min, max;
} functions[] = {
    {"if", FN_IF, 3, 3},
    {"coalesce", FN_COALESCE, 1, EXPR_MAX_ARGS},
    {"is_null", FN_IS_NULL, 1, 1},
    {"abs", FN_ABS, 1, 1},
    {"log", FN_LOG, 1, 1},
    {"exp", FN_EXP, 1, 1},
    {"sqrt", FN_SQRT, 1, 1},
    {"round", FN_ROUND, 1, 2},
    {"min", FN_MIN, 2, EXPR_MAX_ARGS},
    {"max", FN_MAX, 2, EXPR_MAX_ARGS},
    {"lower", FN_LOWER, 1, 1},
    {"len", FN_LEN, 1, 1},
    {"seconds", FN_SECONDS, 1, 1},
    {"hour_of_day", FN_HOUR_OF_DAY, 1, 1},
    {"day_of_week", FN_DAY_OF_WEEK, 1, 1},
    {"haversine", FN_HAVERSINE, 4, 4},
};

static const struct {
    const char *name;
    expr_agg_kind_t kind;
    uint8_t min, max;
} aggregates[] = {
    {"count", EXPR_AGG_COUNT, 0, 1},
    {"sum", EXPR_AGG_SUM, 1, 1},
    {"avg", EXPR_AGG_AVG, 1, 1},
    {"min", EXPR_AGG_MIN, 1, 1},
    {"max", EXPR_AGG_MAX, 1, 1},
    {"stddev", EXPR_AGG_STDDEV, 1, 1},
    {"variance", EXPR_AGG_VARIANCE, 1, 1},
    {"first", EXPR_AGG_FIRST, 1, 1},
    {"last", EXPR_AGG_LAST, 1, 1},
    {"distinct", EXPR_AGG_DISTINCT, 1, 1},
    {"approx_distinct", EXPR_AGG_APPROX_DISTINCT, 1, 1},
    {"approx_quantile", EXPR_AGG_APPROX_QUANTILE, 2, 2},
    {"matches", EXPR_AGG_MATCHES, 1, 1},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

const char *expr_agg_kind_name(expr_agg_kind_t k)
{
    if (k == EXPR_AGG_PREV) return "prev";
    for (size_t i = 0; i < COUNT_OF(aggregates); i++)
        if (aggregates[i].kind == k) return aggregates[i].name;
    return "?";
}

static int name_is(weir_slice_t s, const char *name)
{
    return strlen(name) == s.len && memcmp(s.ptr, name, s.len) == 0;
}

static void emit_function_names(void *ctx, void (*fn)(void *, const char *), void *emit_ctx)
{
    (void)ctx;
    for (size_t i = 0; i < COUNT_OF(functions); i++)
        fn(emit_ctx, functions[i].name);
    for (size_t i = 0; i < COUNT_OF(aggregates); i++)
        fn(emit_ctx, aggregates[i].name);
}

/* ---- type helpers ---- */

static int is_num(expr_type_t t)
{
    return t == EXPR_INT || t == EXPR_FLOAT;
}

static const char *tn(expr_type_t t)
{
    return expr_type_name(t);
}

static int compile_node(comp_t *c, const expr_ast_t *n, expr_type_t *type);

/* Compiles n and refuses the literal null (see NULLS above). */
static int compile_value(comp_t *c, const expr_ast_t *n, expr_type_t *type, const char *what)
{
    if (compile_node(c, n, type)) return -1;
    if (*type == EXPR_NULL)
        return fail(c, n->pos,
                    "null here makes %s always null or false; null is only allowed in if(), "
                    "coalesce() and is_null()",
                    what);
    return 0;
}

/* Converts the value `depth` below the top of the stack to float if its
 * static type is int-like. */
static void widen(comp_t *c, expr_type_t t, uint32_t depth)
{
    if (t == EXPR_INT || t == EXPR_TIME || t == EXPR_DURATION)
        emit(c, I_TO_FLOAT, EXPR_FLOAT, 0, depth);
}

/* ---- operators ---- */

static int compile_arith(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_op_t op = (expr_op_t)n->op;
    expr_type_t a, b;
    const char *what = "the arithmetic";
    if (compile_value(c, n->args[0], &a, what) || compile_value(c, n->args[1], &b, what)) return -1;
    expr_opcode_t iop = I_ADD_I, fop = I_ADD_F;
    switch (op) {
    case OP_ADD:
        iop = I_ADD_I, fop = I_ADD_F;
        break;
    case OP_SUB:
        iop = I_SUB_I, fop = I_SUB_F;
        break;
    case OP_MUL:
        iop = I_MUL_I, fop = I_MUL_F;
        break;
    case OP_DIV:
        iop = I_DIV_I, fop = I_DIV_F;
        break;
    case OP_MOD:
        iop = I_MOD_I, fop = I_MOD_F;
        break;
    default:
        weir_assert(0);
    }
    expr_type_t r = EXPR_NULL;
    int as_float = 0;
    if (is_num(a) && is_num(b)) {
        if (a == EXPR_INT && b == EXPR_INT && op != OP_DIV)
            r = EXPR_INT;
        else
            as_float = 1;
    } else if (a == EXPR_DURATION && b == EXPR_DURATION) {
        if (op == OP_ADD || op == OP_SUB || op == OP_MOD)
            r = EXPR_DURATION;
        else if (op == OP_DIV)
            as_float = 1;
    } else if (a == EXPR_TIME && b == EXPR_DURATION && (op == OP_ADD || op == OP_SUB)) {
        r = EXPR_TIME;
    } else if (a == EXPR_DURATION && b == EXPR_TIME && op == OP_ADD) {
        r = EXPR_TIME;
    } else if (a == EXPR_TIME && b == EXPR_TIME && op == OP_SUB) {
        r = EXPR_DURATION;
    } else if (((a == EXPR_DURATION && b == EXPR_INT) || (a == EXPR_INT && b == EXPR_DURATION)) &&
               op == OP_MUL) {
        r = EXPR_DURATION;
    } else if (a == EXPR_DURATION && b == EXPR_INT && op == OP_DIV) {
        r = EXPR_DURATION;
    }
    if (as_float) {
        widen(c, a, 1);
        widen(c, b, 0);
        emit(c, fop, EXPR_FLOAT, 0, 0);
        r = EXPR_FLOAT;
    } else if (r != EXPR_NULL) {
        emit(c, iop, r, 0, 0);
    } else {
        if (a == EXPR_STRING && b == EXPR_STRING && op == OP_ADD)
            return fail(c, n->pos, "type error: strings cannot be added with '+'");
        return fail(c, n->pos, "type error: '%s' cannot take %s and %s", expr_op_name(op), tn(a),
                    tn(b));
    }
    *type = r;
    return stack(c, -1, n->pos);
}

/* Emits the comparison opcode for operands of types a (below) and b (top);
 * returns the opcode or -1 if they cannot be compared with op. */
static int compare_opcode(comp_t *c, expr_op_t op, expr_type_t a, expr_type_t b)
{
    int ordered = op != OP_EQ && op != OP_NE;
    if (is_num(a) && is_num(b)) {
        if (a == EXPR_INT && b == EXPR_INT) return I_CMP_I;
        widen(c, a, 1);
        widen(c, b, 0);
        return I_CMP_F;
    }
    if (a != b) return -1;
    switch (a) {
    case EXPR_STRING:
        return I_CMP_S;
    case EXPR_BOOL:
        return ordered ? -1 : I_CMP_B;
    case EXPR_TIME:
    case EXPR_DURATION:
        return I_CMP_I;
    default:
        return -1;
    }
}

static int compile_compare(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_op_t op = (expr_op_t)n->op;
    expr_type_t a, b;
    for (int k = 0; k < 2; k++) {
        if (n->args[k]->kind == AST_NULL)
            return fail(c, n->args[k]->pos,
                        "a comparison with null is always false; use is_null(x) to test for null");
    }
    if (compile_value(c, n->args[0], &a, "the comparison") ||
        compile_value(c, n->args[1], &b, "the comparison"))
        return -1;
    int iop = compare_opcode(c, op, a, b);
    if (iop < 0) {
        if ((a == EXPR_DURATION && is_num(b)) || (is_num(a) && b == EXPR_DURATION))
            return fail(c, n->pos,
                        "type error: cannot compare duration with %s; write a duration such as "
                        "30s, or use seconds(d)",
                        tn(a == EXPR_DURATION ? b : a));
        return fail(c, n->pos, "type error: '%s' cannot compare %s with %s", expr_op_name(op),
                    tn(a), tn(b));
    }
    emit(c, (expr_opcode_t)iop, EXPR_BOOL, (uint8_t)op, 0);
    *type = EXPR_BOOL;
    return stack(c, -1, n->pos);
}

static int compile_logic(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_op_t op = (expr_op_t)n->op;
    expr_type_t a, b;
    if (compile_value(c, n->args[0], &a, "the condition")) return -1;
    if (a != EXPR_BOOL)
        return fail(c, n->args[0]->pos, "type error: '%s' needs bool operands, got %s on its left",
                    expr_op_name(op), tn(a));
    /* Short circuit: false and _ = false, true or _ = true. */
    uint32_t j = emit(c, op == OP_AND ? I_JFALSE_KEEP : I_JTRUE_KEEP, EXPR_BOOL, 0, 0);
    if (compile_value(c, n->args[1], &b, "the condition")) return -1;
    if (b != EXPR_BOOL)
        return fail(c, n->args[1]->pos, "type error: '%s' needs bool operands, got %s on its right",
                    expr_op_name(op), tn(b));
    emit(c, op == OP_AND ? I_AND : I_OR, EXPR_BOOL, 0, 0);
    c->code[j].arg = c->ncode;
    *type = EXPR_BOOL;
    return stack(c, -1, n->pos);
}

static int compile_in(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_type_t x;
    expr_type_t items[EXPR_MAX_ARGS];
    if (compile_value(c, n->args[0], &x, "the 'in' test")) return -1;
    expr_type_t common = x;
    for (uint32_t i = 1; i < n->nargs; i++) {
        if (compile_value(c, n->args[i], &items[i], "the list item")) return -1;
        expr_type_t t = items[i];
        if (is_num(common) && is_num(t)) {
            if (t == EXPR_FLOAT) common = EXPR_FLOAT;
        } else if (t != common) {
            return fail(c, n->args[i]->pos, "type error: list item is %s but %s is %s", tn(t),
                        "the value tested", tn(x));
        }
    }
    expr_opcode_t op = I_IN_I;
    if (common == EXPR_FLOAT) {
        op = I_IN_F;
        widen(c, x, n->nargs - 1);
        for (uint32_t i = 1; i < n->nargs; i++)
            widen(c, items[i], n->nargs - 1 - i);
    } else if (common == EXPR_STRING) {
        op = I_IN_S;
    } else if (common == EXPR_BOOL) {
        op = I_IN_B;
    }
    emit(c, op, EXPR_BOOL, n->negated, n->nargs - 1);
    *type = EXPR_BOOL;
    return stack(c, -(int)(n->nargs - 1), n->pos);
}

/* ---- function calls ---- */

/* Unifies two branch types: equal, or int with float → float, null with
 * anything → the other. Returns EXPR_NULL with *ok = 0 if they clash. */
static expr_type_t unify(expr_type_t a, expr_type_t b, int *ok)
{
    *ok = 1;
    if (a == EXPR_NULL) return b;
    if (b == EXPR_NULL || a == b) return a;
    if (is_num(a) && is_num(b)) return EXPR_FLOAT;
    *ok = 0;
    return EXPR_NULL;
}

static int compile_if(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_type_t ct, a, b;
    if (compile_value(c, n->args[0], &ct, "the condition")) return -1;
    if (ct != EXPR_BOOL)
        return fail(c, n->args[0]->pos, "type error: if() needs a bool condition, got %s", tn(ct));
    uint32_t jelse = emit(c, I_JNOTTRUE_POP, EXPR_BOOL, 0, 0);
    stack(c, -1, n->pos);
    if (compile_node(c, n->args[1], &a)) return -1;
    uint32_t jend = emit(c, I_JMP, EXPR_NULL, 0, 0);
    stack(c, -1, n->pos);
    c->code[jelse].arg = c->ncode;
    if (compile_node(c, n->args[2], &b)) return -1;
    c->code[jend].arg = c->ncode;
    int ok;
    expr_type_t r = unify(a, b, &ok);
    if (!ok)
        return fail(c, n->args[2]->pos, "type error: if() branches differ: %s and %s", tn(a),
                    tn(b));
    /* Join point: a run-time widen, as only one branch ran. */
    if (r == EXPR_FLOAT && (a == EXPR_INT || b == EXPR_INT)) emit(c, I_TO_FLOAT, EXPR_FLOAT, 0, 0);
    *type = r;
    return 0;
}

static int compile_coalesce(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    uint32_t jumps[EXPR_MAX_ARGS];
    expr_type_t r = EXPR_NULL;
    int any_int = 0;
    for (uint32_t i = 0; i < n->nargs; i++) {
        expr_type_t t;
        if (compile_node(c, n->args[i], &t)) return -1;
        int ok;
        r = unify(r, t, &ok);
        if (!ok)
            return fail(c, n->args[i]->pos, "type error: coalesce() arguments differ: %s and %s",
                        tn(r), tn(t));
        any_int |= t == EXPR_INT;
        if (i + 1 < n->nargs) {
            jumps[i] = emit(c, I_JNOTNULL_KEEP, EXPR_NULL, 0, 0);
            emit(c, I_POP, EXPR_NULL, 0, 0);
            stack(c, -1, n->pos);
        }
    }
    for (uint32_t i = 0; i + 1 < n->nargs; i++)
        c->code[jumps[i]].arg = c->ncode;
    if (r == EXPR_FLOAT && any_int) emit(c, I_TO_FLOAT, EXPR_FLOAT, 0, 0);
    *type = r;
    return 0;
}

static int compile_minmax(comp_t *c, const expr_ast_t *n, int is_max, expr_type_t *type)
{
    expr_type_t ts[EXPR_MAX_ARGS];
    expr_type_t r = EXPR_NULL;
    const char *name = is_max ? "max" : "min";
    for (uint32_t i = 0; i < n->nargs; i++) {
        if (compile_value(c, n->args[i], &ts[i], "the call")) return -1;
        int ok;
        r = i == 0 ? ts[i] : unify(r, ts[i], &ok);
        if (i > 0 && !ok)
            return fail(c, n->args[i]->pos, "type error: %s() arguments differ: %s and %s", name,
                        tn(ts[0]), tn(ts[i]));
    }
    expr_opcode_t op;
    switch (r) {
    case EXPR_INT:
    case EXPR_TIME:
    case EXPR_DURATION:
        op = is_max ? I_MAX_I : I_MIN_I;
        break;
    case EXPR_FLOAT:
        op = is_max ? I_MAX_F : I_MIN_F;
        break;
    case EXPR_STRING:
        op = is_max ? I_MAX_S : I_MIN_S;
        break;
    default:
        return fail(c, n->pos,
                    "type error: %s() needs numbers, times, durations or strings, got %s", name,
                    tn(r));
    }
    if (r == EXPR_FLOAT)
        for (uint32_t i = 0; i < n->nargs; i++)
            widen(c, ts[i], n->nargs - 1 - i);
    emit(c, op, r, 0, n->nargs);
    *type = r;
    return stack(c, -(int)(n->nargs - 1), n->pos);
}

static int compile_function(comp_t *c, const expr_ast_t *n, fn_t fn, expr_type_t *type)
{
    switch (fn) {
    case FN_IF:
        return compile_if(c, n, type);
    case FN_COALESCE:
        return compile_coalesce(c, n, type);
    case FN_MIN:
        return compile_minmax(c, n, 0, type);
    case FN_MAX:
        return compile_minmax(c, n, 1, type);
    case FN_IS_NULL: {
        expr_type_t t;
        if (compile_node(c, n->args[0], &t)) return -1;
        emit(c, I_IS_NULL, EXPR_BOOL, 0, 0);
        *type = EXPR_BOOL;
        return 0;
    }
    default:
        break;
    }
    expr_type_t ts[4];
    char what[48];
    snprintf(what, sizeof what, "%.*s()", (int)n->name.len, n->name.ptr);
    for (uint32_t i = 0; i < n->nargs; i++)
        if (compile_value(c, n->args[i], &ts[i], what)) return -1;
    expr_type_t t = ts[0];
    const char *need = NULL;
    switch (fn) {
    case FN_ABS:
        if (t == EXPR_FLOAT)
            emit(c, I_ABS_F, EXPR_FLOAT, 0, 0);
        else if (t == EXPR_INT || t == EXPR_DURATION)
            emit(c, I_ABS_I, t, 0, 0);
        else
            need = "a number or a duration";
        *type = t;
        break;
    case FN_LOG:
    case FN_EXP:
    case FN_SQRT:
        if (!is_num(t)) {
            need = "a number";
            break;
        }
        widen(c, t, 0);
        emit(c, fn == FN_LOG ? I_LOG : fn == FN_EXP ? I_EXP : I_SQRT, EXPR_FLOAT, 0, 0);
        *type = EXPR_FLOAT;
        break;
    case FN_ROUND:
        if (!is_num(t)) {
            need = "a number";
            break;
        }
        if (n->nargs == 2) {
            if (ts[1] != EXPR_INT)
                return fail(
                    c, n->args[1]->pos,
                    "type error: round()'s second argument (decimals) must be an int, got %s",
                    tn(ts[1]));
            widen(c, t, 1);
            emit(c, I_ROUND_N, EXPR_FLOAT, 0, 0);
            *type = EXPR_FLOAT;
            return stack(c, -1, n->pos);
        }
        if (t == EXPR_FLOAT) emit(c, I_ROUND, EXPR_INT, 0, 0);
        *type = EXPR_INT;
        break;
    case FN_LOWER:
        if (t != EXPR_STRING) {
            need = "a string";
            break;
        }
        emit(c, I_LOWER, EXPR_STRING, 0, 0);
        c->lower_calls++;
        *type = EXPR_STRING;
        break;
    case FN_LEN:
        if (t != EXPR_STRING) {
            need = "a string";
            break;
        }
        emit(c, I_LEN, EXPR_INT, 0, 0);
        *type = EXPR_INT;
        break;
    case FN_SECONDS:
        if (t != EXPR_DURATION) {
            need = "a duration (such as ts - last(ts))";
            break;
        }
        emit(c, I_SECONDS, EXPR_FLOAT, 0, 0);
        *type = EXPR_FLOAT;
        break;
    case FN_HOUR_OF_DAY:
    case FN_DAY_OF_WEEK:
        if (t != EXPR_TIME) {
            need = "a time";
            break;
        }
        emit(c, fn == FN_HOUR_OF_DAY ? I_HOUR : I_DOW, EXPR_INT, 0, 0);
        *type = EXPR_INT;
        break;
    case FN_HAVERSINE:
        for (uint32_t i = 0; i < 4; i++) {
            if (!is_num(ts[i]))
                return fail(c, n->args[i]->pos,
                            "type error: haversine() takes numbers (degrees), got %s", tn(ts[i]));
            widen(c, ts[i], 3 - i);
        }
        emit(c, I_HAVERSINE, EXPR_FLOAT, 0, 0);
        *type = EXPR_FLOAT;
        return stack(c, -3, n->pos);
    default:
        weir_assert(0);
    }
    if (need) return fail(c, n->args[0]->pos, "type error: %s needs %s, got %s", what, need, tn(t));
    return 0;
}

/* ---- aggregate calls ---- */

static void agg_free_one(expr_agg_t *a)
{
    expr_free(a->arg);
    weir_free(a->text);
}

void expr_aggs_free(expr_aggs_t *a)
{
    for (uint32_t i = 0; i < a->n; i++)
        agg_free_one(&a->v[i]);
    weir_free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static int compile_aggregate(comp_t *c, const expr_ast_t *n, expr_agg_kind_t kind,
                             expr_type_t *type)
{
    const expr_scope_t *s = c->scope;
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)n->name.len, n->name.ptr);
    if (s->agg_mode == EXPR_AGGS_NONE)
        return fail(c, n->pos, "aggregate %s() is not allowed in %s", name,
                    s->where ? s->where : "this expression");
    if (s->agg_mode == EXPR_AGGS_WINDOW && n->has_over)
        return fail(c, n->over_pos,
                    "remove 'over': in an aggregate's select the window is the aggregate's own");
    if (s->agg_mode == EXPR_AGGS_FEATURE && !n->has_over) {
        if (kind == EXPR_AGG_LAST) {
            kind = EXPR_AGG_PREV;
        } else {
            return fail(c, n->pos, "%s() needs a window: write %s(...) over D, such as over 1h",
                        name, name);
        }
    }
    if (n->has_over) {
        if (n->over_ms <= 0)
            return fail(c, n->over_pos, "the window of %s() must be longer than 0", name);
        if (n->every_pos && n->every_ms <= 0)
            return fail(c, n->every_pos, "'every' must be longer than 0");
        if (n->every_ms > 0 && n->over_ms % n->every_ms != 0) {
            char d[32], h[32];
            expr_format_duration(n->over_ms, d, sizeof d);
            expr_format_duration(n->every_ms, h, sizeof h);
            return fail(c, n->every_pos, "window %s is not a multiple of its every %s", d, h);
        }
    }

    expr_agg_t a = {.kind = kind,
                    .window_ms = n->has_over ? n->over_ms : 0,
                    .every_ms = n->has_over ? n->every_ms : 0};
    if (kind == EXPR_AGG_MATCHES) {
        /* The argument names a pattern; it is not an expression. */
        const expr_ast_t *arg = n->args[0];
        int pi = arg->kind == AST_NAME && s->pattern_index
                     ? s->pattern_index(s->ctx, arg->name.ptr, arg->name.len)
                     : -1;
        if (pi < 0) return fail(c, arg->pos, "matches() takes the name of a pattern of this spec");
        if (s->agg_mode != EXPR_AGGS_FEATURE)
            return fail(c, n->pos, "matches() is a feature: write it in features");
        if (n->every_ms > 0)
            return fail(c, n->every_pos, "matches() counts exactly: remove 'every'");
        a.pattern = (uint32_t)pi;
    } else if (n->nargs >= 1) {
        expr_scope_t as = {.resolve = s->arg_resolve,
                           .names = s->arg_names,
                           .ctx = s->arg_ctx,
                           .agg_mode = EXPR_AGGS_NONE,
                           .where = "the argument of an aggregate"};
        if (!as.resolve) return fail(c, n->pos, "aggregate %s() is not allowed here", name);
        uint32_t pos;
        int rc =
            expr_compile_ast(n->args[0], c->text, c->len, &as, &a.arg, &pos, c->err, c->errlen);
        if (rc) {
            c->failed = 1;
            c->err_pos = pos;
            return -1;
        }
        /* The argument's own text, not the whole expression's. */
        weir_buf_t at = WEIR_BUF_INIT;
        expr_ast_print(&at, n->args[0]);
        buf_append(&at, "", 1);
        weir_free(a.arg->text);
        a.arg->text = at.data;
        a.arg_type = expr_type(a.arg);
        if (a.arg_type == EXPR_NULL) {
            expr_free(a.arg);
            return fail(c, n->args[0]->pos, "the argument of %s() is always null", name);
        }
    }
    const char *need = NULL;
    expr_type_t at = a.arg_type;
    switch (kind) {
    case EXPR_AGG_MATCHES:
    case EXPR_AGG_COUNT:
    case EXPR_AGG_DISTINCT:
    case EXPR_AGG_APPROX_DISTINCT:
        a.type = EXPR_INT;
        break;
    case EXPR_AGG_SUM:
        if (!is_num(at)) need = "a number";
        a.type = at;
        break;
    case EXPR_AGG_AVG:
    case EXPR_AGG_STDDEV:
    case EXPR_AGG_VARIANCE:
        if (!is_num(at)) need = "a number";
        a.type = EXPR_FLOAT;
        break;
    case EXPR_AGG_MIN:
    case EXPR_AGG_MAX:
        if (!is_num(at) && at != EXPR_TIME && at != EXPR_DURATION)
            need = "a number, a time or a duration";
        a.type = at;
        break;
    case EXPR_AGG_FIRST:
    case EXPR_AGG_LAST:
        /* Windows keep strings as 64-bit hashes (enough to count them
         * exactly); giving one back would need the string itself. */
        if (at == EXPR_STRING) {
            expr_free(a.arg);
            return fail(c, n->pos,
                        "%s over a window of strings is not supported yet (count, distinct and "
                        "approx_distinct are)",
                        name);
        }
        a.type = at;
        break;
    case EXPR_AGG_PREV:
        a.type = at;
        break;
    case EXPR_AGG_APPROX_QUANTILE: {
        if (!is_num(at)) need = "a number";
        a.type = EXPR_FLOAT;
        const expr_ast_t *q = n->args[1];
        double qv = q->kind == AST_FLOAT ? q->f : q->kind == AST_INT ? (double)q->i : -1;
        if ((q->kind != AST_FLOAT && q->kind != AST_INT) || !(qv >= 0 && qv <= 1)) {
            expr_free(a.arg);
            return fail(c, q->pos,
                        "approx_quantile()'s second argument must be a number from 0 to 1, "
                        "such as 0.99");
        }
        a.q = qv;
        break;
    }
    }
    if (need) {
        expr_free(a.arg);
        return fail(c, n->args[0]->pos, "type error: %s() needs %s, got %s", name, need, tn(at));
    }

    /* Canonical text: the call as printed, with `prev` spelled as written. */
    weir_buf_t t = WEIR_BUF_INIT;
    expr_ast_print(&t, n);
    buf_append(&t, "", 1);
    expr_aggs_t *set = s->aggs;
    weir_assert(set != NULL);
    uint32_t slot = set->n;
    for (uint32_t i = 0; i < set->n; i++) {
        if (strcmp(set->v[i].text, t.data) == 0) {
            slot = i;
            break;
        }
    }
    if (slot == set->n) {
        if (set->n == set->cap) {
            set->cap = set->cap ? set->cap * 2 : 8;
            set->v = weir_realloc(set->v, sizeof *set->v * set->cap);
        }
        a.text = t.data;
        set->v[set->n++] = a;
    } else {
        expr_free(a.arg);
        buf_free(&t);
    }
    emit(c, I_AGG, a.type, 0, slot);
    *type = a.type;
    return stack(c, 1, n->pos);
}

static int compile_call(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    char name[40];
    snprintf(name, sizeof name, "%.*s", (int)(n->name.len > 32 ? 32 : n->name.len), n->name.ptr);
    /* min/max: one argument (or `over`) is the aggregate, more the function. */
    int scalar_minmax =
        (name_is(n->name, "min") || name_is(n->name, "max")) && n->nargs >= 2 && !n->has_over;
    for (size_t i = 0; !scalar_minmax && i < COUNT_OF(aggregates); i++) {
        if (!name_is(n->name, aggregates[i].name)) continue;
        if (n->nargs < aggregates[i].min || n->nargs > aggregates[i].max) {
            if (aggregates[i].min == aggregates[i].max)
                return fail(c, n->pos, "aggregate %s() takes %d argument%s, got %u", name,
                            aggregates[i].min, aggregates[i].min == 1 ? "" : "s", n->nargs);
            return fail(c, n->pos, "aggregate %s() takes %d or %d arguments, got %u", name,
                        aggregates[i].min, aggregates[i].max, n->nargs);
        }
        return compile_aggregate(c, n, aggregates[i].kind, type);
    }
    for (size_t i = 0; i < COUNT_OF(functions); i++) {
        if (!name_is(n->name, functions[i].name)) continue;
        if (n->has_over)
            return fail(c, n->over_pos, "'over' only follows an aggregate call; %s() is not one",
                        name);
        if (n->nargs < functions[i].min || n->nargs > functions[i].max) {
            if (functions[i].min == functions[i].max)
                return fail(c, n->pos, "%s() takes %d argument%s, got %u", name, functions[i].min,
                            functions[i].min == 1 ? "" : "s", n->nargs);
            if (functions[i].max == EXPR_MAX_ARGS)
                return fail(c, n->pos, "%s() takes at least %d argument%s, got %u", name,
                            functions[i].min, functions[i].min == 1 ? "" : "s", n->nargs);
            return fail(c, n->pos, "%s() takes %d or %d arguments, got %u", name, functions[i].min,
                        functions[i].max, n->nargs);
        }
        return compile_function(c, n, functions[i].fn, type);
    }
    char hint[96];
    did_you_mean(emit_function_names, NULL, n->name.ptr, n->name.len, hint, sizeof hint);
    return fail(c, n->pos, "unknown function '%s'%s", name, hint);
}

static int compile_name(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    const expr_scope_t *s = c->scope;
    expr_ref_t ref;
    char err[256];
    err[0] = '\0';
    int rc = s->resolve ? s->resolve(s->ctx, n->name.ptr, n->name.len, &ref, err, sizeof err)
                        : WEIR_ENOENT;
    if (rc == WEIR_ENOENT) {
        char hint[96];
        did_you_mean(s->names, s->ctx, n->name.ptr, n->name.len, hint, sizeof hint);
        return fail(c, n->pos, "unknown name '%.*s'%s", (int)n->name.len, n->name.ptr, hint);
    }
    if (rc) return fail(c, n->pos, "%s", err);
    expr_opcode_t op = ref.kind == EXPR_REF_FIELD     ? I_FIELD
                       : ref.kind == EXPR_REF_FEATURE ? I_FEATURE
                                                      : I_EXTRA;
    emit(c, op, ref.type, 0, ref.slot);
    *type = ref.type;
    return stack(c, 1, n->pos);
}

static int compile_node(comp_t *c, const expr_ast_t *n, expr_type_t *type)
{
    expr_value_t v = expr_null();
    switch ((expr_ast_kind_t)n->kind) {
    case AST_INT:
        v = expr_int(n->i);
        break;
    case AST_FLOAT:
        v = expr_float(n->f);
        break;
    case AST_BOOL:
        v = expr_bool(n->b);
        break;
    case AST_DURATION:
        v = expr_duration(n->i);
        break;
    case AST_STRING:
        v = expr_string(NULL, 0);
        break;
    case AST_NULL:
        break;
    case AST_NAME:
        return compile_name(c, n, type);
    case AST_CALL:
        return compile_call(c, n, type);
    case AST_IN:
        return compile_in(c, n, type);
    case AST_UNARY: {
        expr_type_t t;
        const expr_ast_t *a = n->args[0];
        if (n->op == OP_NEG &&
            (a->kind == AST_INT || a->kind == AST_FLOAT || a->kind == AST_DURATION)) {
            /* Fold negative literals. */
            v = a->kind == AST_FLOAT ? expr_float(-a->f)
                : a->kind == AST_INT ? expr_int(-a->i)
                                     : expr_duration(-a->i);
            *type = (expr_type_t)v.type;
            return push_const(c, v, NULL, 0, n->pos);
        }
        if (compile_value(c, a, &t, n->op == OP_NOT ? "the condition" : "the arithmetic"))
            return -1;
        if (n->op == OP_NOT) {
            if (t != EXPR_BOOL)
                return fail(c, a->pos, "type error: 'not' needs a bool, got %s", tn(t));
            emit(c, I_NOT, EXPR_BOOL, 0, 0);
        } else if (t == EXPR_FLOAT) {
            emit(c, I_NEG_F, t, 0, 0);
        } else if (t == EXPR_INT || t == EXPR_DURATION) {
            emit(c, I_NEG_I, t, 0, 0);
        } else {
            return fail(c, n->pos, "type error: '-' cannot negate %s", tn(t));
        }
        *type = t;
        return 0;
    }
    case AST_BINARY:
        switch ((expr_op_t)n->op) {
        case OP_AND:
        case OP_OR:
            return compile_logic(c, n, type);
        case OP_EQ:
        case OP_NE:
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
            return compile_compare(c, n, type);
        default:
            return compile_arith(c, n, type);
        }
    }
    *type = (expr_type_t)v.type;
    return push_const(c, v, n->name.ptr, n->name.len, n->pos);
}

int expr_compile_ast(const expr_ast_t *root, const char *text, size_t len,
                     const expr_scope_t *scope, expr_t **out, uint32_t *err_pos, char *err,
                     size_t errlen)
{
    comp_t c = {.scope = scope, .text = text, .len = len, .err = err, .errlen = errlen};
    *out = NULL;
    *err_pos = 0;
    expr_type_t type = EXPR_NULL;
    weir_assert(scope->agg_mode == EXPR_AGGS_NONE || scope->aggs != NULL);
    int rc = compile_node(&c, root, &type);
    if (rc == 0) weir_assert(c.depth == 1);
    if (rc) {
        weir_free(c.code);
        weir_free(c.consts);
        weir_free(c.const_off);
        buf_free(&c.pool);
        *err_pos = c.err_pos;
        return WEIR_EINVAL;
    }
    expr_t *e = weir_calloc(1, sizeof *e);
    e->code = c.code;
    e->ncode = c.ncode;
    e->consts = c.consts;
    e->nconsts = c.nconsts;
    e->pool = c.pool.data; /* owned now */
    for (uint32_t i = 0; i < c.nconsts; i++)
        if (e->consts[i].type == EXPR_STRING)
            e->consts[i].as.s.ptr = e->consts[i].as.s.len ? e->pool + c.const_off[i] : "";
    weir_free(c.const_off);
    e->text = weir_strndup(text, len);
    e->max_stack = c.max_depth;
    e->lower_calls = c.lower_calls;
    e->type = type;
    *out = e;
    return 0;
}

int expr_compile(const char *text, size_t len, const expr_scope_t *scope, expr_t **out,
                 uint32_t *err_pos, char *err, size_t errlen)
{
    expr_ast_tree_t *tree;
    *out = NULL;
    int rc = expr_ast_parse(text, len, &tree, err_pos, err, errlen);
    if (rc) return rc;
    rc = expr_compile_ast(expr_ast_root(tree), text, len, scope, out, err_pos, err, errlen);
    expr_ast_free(tree);
    return rc;
}

void expr_free(expr_t *e)
{
    if (!e) return;
    weir_free(e->code);
    weir_free(e->consts);
    weir_free(e->pool);
    weir_free(e->text);
    weir_free(e);
}

expr_type_t expr_type(const expr_t *e)
{
    return e->type;
}

const char *expr_text(const expr_t *e)
{
    return e->text;
}

uint32_t expr_lower_calls(const expr_t *e)
{
    return e->lower_calls;
}

void expr_disassemble(weir_buf_t *b, const expr_t *e)
{
    for (uint32_t i = 0; i < e->ncode; i++) {
        const expr_ins_t *in = &e->code[i];
        buf_appendf(b, "%3u %-10s %-8s", i, expr_opcode_name((expr_opcode_t)in->op),
                    expr_type_name((expr_type_t)in->type));
        if (in->op == I_CONST) {
            buf_append_str(b, " ");
            expr_value_append(b, &e->consts[in->arg]);
        } else if (in->op >= I_CMP_I && in->op <= I_CMP_B) {
            buf_appendf(b, " %s", expr_op_name((expr_op_t)in->aux));
        } else {
            buf_appendf(b, " %u", in->arg);
        }
        buf_append_str(b, "\n");
    }
}
