/* expr_eval.c — the evaluator of compiled expressions (expr_prog.h): the part
 * of the expression language that runs per event, on the hot path.
 *
 * It is a switch loop over typed instructions with the value stack in a local
 * array; it reads the env's slot arrays, writes only its stack, *out and (for
 * lower()) the env's scratch area, and allocates nothing. The compiler
 * guarantees operand types and stack depth, so the only run-time checks are
 * for null, overflow, zero divisors and non-finite floats (expr.c states the
 * rules). Kept apart from the compiler so the hot loop reads on one screen. */
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "spec/expr_prog.h"

#define EARTH_RADIUS_KM 6371.0
#define MS_PER_HOUR     INT64_C(3600000)
#define MS_PER_DAY      INT64_C(86400000)

static const char *const opcode_names[I_COUNT_] = {
    [I_CONST] = "const",
    [I_FIELD] = "field",
    [I_FEATURE] = "feature",
    [I_AGG] = "agg",
    [I_EXTRA] = "extra",
    [I_TO_FLOAT] = "to_float",
    [I_NEG_I] = "neg_i",
    [I_NEG_F] = "neg_f",
    [I_ADD_I] = "add_i",
    [I_SUB_I] = "sub_i",
    [I_MUL_I] = "mul_i",
    [I_DIV_I] = "div_i",
    [I_MOD_I] = "mod_i",
    [I_ADD_F] = "add_f",
    [I_SUB_F] = "sub_f",
    [I_MUL_F] = "mul_f",
    [I_DIV_F] = "div_f",
    [I_MOD_F] = "mod_f",
    [I_CMP_I] = "cmp_i",
    [I_CMP_F] = "cmp_f",
    [I_CMP_S] = "cmp_s",
    [I_CMP_B] = "cmp_b",
    [I_NOT] = "not",
    [I_AND] = "and",
    [I_OR] = "or",
    [I_JMP] = "jmp",
    [I_JFALSE_KEEP] = "jfalse",
    [I_JTRUE_KEEP] = "jtrue",
    [I_JNOTTRUE_POP] = "jnottrue",
    [I_JNOTNULL_KEEP] = "jnotnull",
    [I_POP] = "pop",
    [I_IN_I] = "in_i",
    [I_IN_F] = "in_f",
    [I_IN_S] = "in_s",
    [I_IN_B] = "in_b",
    [I_IS_NULL] = "is_null",
    [I_ABS_I] = "abs_i",
    [I_ABS_F] = "abs_f",
    [I_LOG] = "log",
    [I_EXP] = "exp",
    [I_SQRT] = "sqrt",
    [I_ROUND] = "round",
    [I_ROUND_N] = "round_n",
    [I_MIN_I] = "min_i",
    [I_MAX_I] = "max_i",
    [I_MIN_F] = "min_f",
    [I_MAX_F] = "max_f",
    [I_MIN_S] = "min_s",
    [I_MAX_S] = "max_s",
    [I_LOWER] = "lower",
    [I_LEN] = "len",
    [I_SECONDS] = "seconds",
    [I_HOUR] = "hour_of_day",
    [I_DOW] = "day_of_week",
    [I_HAVERSINE] = "haversine",
};

const char *expr_opcode_name(expr_opcode_t op)
{
    return op < I_COUNT_ && opcode_names[op] ? opcode_names[op] : "?";
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static int string_cmp(weir_slice_t a, weir_slice_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (r) return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int test(expr_op_t op, int cmp)
{
    switch (op) {
    case OP_EQ:
        return cmp == 0;
    case OP_NE:
        return cmp != 0;
    case OP_LT:
        return cmp < 0;
    case OP_LE:
        return cmp <= 0;
    case OP_GT:
        return cmp > 0;
    default:
        return cmp >= 0;
    }
}

#define IS_NULL(v)  ((v)->type == EXPR_NULL)
#define IS_TRUE(v)  ((v)->type == EXPR_BOOL && (v)->as.b)
#define IS_FALSE(v) ((v)->type == EXPR_BOOL && !(v)->as.b)

/* Sets v to float f, or null if f is not finite. */
static inline void set_float(expr_value_t *v, double f)
{
    if (isfinite(f)) {
        v->type = EXPR_FLOAT;
        v->as.f = f;
    } else {
        v->type = EXPR_NULL;
    }
}

static double haversine(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1) a = 1;
    return 2 * EARTH_RADIUS_KM * asin(sqrt(a));
}

/* The interpreter proper. Kept out of line (see expr_eval): its frame (the
 * value stack, six saved registers) is paid only by real programs. */
__attribute__((noinline)) static int run(const expr_t *e, expr_env_t *env, expr_value_t *out)
{
    expr_value_t st[EXPR_STACK_MAX];
    int sp = -1; /* index of the top value */
    const expr_ins_t *code = e->code;
    uint32_t pc = 0, end = e->ncode;
    while (pc < end) {
        const expr_ins_t *in = &code[pc++];
        expr_value_t *a, *b;
        switch ((expr_opcode_t)in->op) {
        case I_CONST:
            st[++sp] = e->consts[in->arg];
            break;
        case I_FIELD:
            st[++sp] = env->fields[in->arg];
            break;
        case I_FEATURE:
            st[++sp] = env->features[in->arg];
            break;
        case I_AGG:
            st[++sp] = env->aggs[in->arg];
            break;
        case I_EXTRA:
            st[++sp] = env->extras[in->arg];
            break;
        case I_TO_FLOAT:
            a = &st[sp - (int)in->arg];
            if (a->type == EXPR_INT || a->type == EXPR_TIME || a->type == EXPR_DURATION) {
                a->as.f = (double)a->as.i;
                a->type = EXPR_FLOAT;
            }
            break;
        case I_NEG_I:
            a = &st[sp];
            if (!IS_NULL(a)) {
                if (a->as.i == INT64_MIN)
                    a->type = EXPR_NULL;
                else
                    a->as.i = -a->as.i;
            }
            break;
        case I_NEG_F:
            if (!IS_NULL(&st[sp])) st[sp].as.f = -st[sp].as.f;
            break;
        case I_ADD_I:
        case I_SUB_I:
        case I_MUL_I:
        case I_DIV_I:
        case I_MOD_I: {
            b = &st[sp--];
            a = &st[sp];
            if (IS_NULL(a) || IS_NULL(b)) {
                a->type = EXPR_NULL;
                break;
            }
            int64_t x = a->as.i, y = b->as.i, r = 0;
            int bad = 0;
            switch ((expr_opcode_t)in->op) {
            case I_ADD_I:
                bad = __builtin_add_overflow(x, y, &r);
                break;
            case I_SUB_I:
                bad = __builtin_sub_overflow(x, y, &r);
                break;
            case I_MUL_I:
                bad = __builtin_mul_overflow(x, y, &r);
                break;
            case I_DIV_I:
                bad = y == 0 || (x == INT64_MIN && y == -1);
                if (!bad) r = x / y;
                break;
            default:
                bad = y == 0;
                if (!bad) r = y == -1 ? 0 : x % y;
                break;
            }
            a->type = bad ? EXPR_NULL : in->type;
            a->as.i = r;
            break;
        }
        case I_ADD_F:
        case I_SUB_F:
        case I_MUL_F:
        case I_DIV_F:
        case I_MOD_F: {
            b = &st[sp--];
            a = &st[sp];
            if (IS_NULL(a) || IS_NULL(b)) {
                a->type = EXPR_NULL;
                break;
            }
            double x = a->as.f, y = b->as.f, r;
            switch ((expr_opcode_t)in->op) {
            case I_ADD_F:
                r = x + y;
                break;
            case I_SUB_F:
                r = x - y;
                break;
            case I_MUL_F:
                r = x * y;
                break;
            case I_DIV_F:
                r = x / y;
                break;
            default:
                r = fmod(x, y);
                break;
            }
            set_float(a, r);
            break;
        }
        case I_CMP_I:
        case I_CMP_F:
        case I_CMP_S:
        case I_CMP_B: {
            b = &st[sp--];
            a = &st[sp];
            int r = 0;
            if (!IS_NULL(a) && !IS_NULL(b)) {
                int cmp;
                switch ((expr_opcode_t)in->op) {
                case I_CMP_I:
                    cmp = (a->as.i > b->as.i) - (a->as.i < b->as.i);
                    break;
                case I_CMP_F:
                    cmp = (a->as.f > b->as.f) - (a->as.f < b->as.f);
                    break;
                case I_CMP_S:
                    cmp = string_cmp(a->as.s, b->as.s);
                    break;
                default:
                    cmp = (int)a->as.b - (int)b->as.b;
                    break;
                }
                r = test((expr_op_t)in->aux, cmp);
            }
            a->type = EXPR_BOOL;
            a->as.b = r;
            break;
        }
        case I_NOT:
            if (!IS_NULL(&st[sp])) st[sp].as.b = !st[sp].as.b;
            break;
        case I_AND:
            b = &st[sp--];
            a = &st[sp];
            if (IS_FALSE(a) || IS_FALSE(b))
                *a = expr_bool(false);
            else if (IS_NULL(a) || IS_NULL(b))
                a->type = EXPR_NULL;
            else
                *a = expr_bool(true);
            break;
        case I_OR:
            b = &st[sp--];
            a = &st[sp];
            if (IS_TRUE(a) || IS_TRUE(b))
                *a = expr_bool(true);
            else if (IS_NULL(a) || IS_NULL(b))
                a->type = EXPR_NULL;
            else
                *a = expr_bool(false);
            break;
        case I_JMP:
            pc = in->arg;
            break;
        case I_JFALSE_KEEP:
            if (IS_FALSE(&st[sp])) pc = in->arg;
            break;
        case I_JTRUE_KEEP:
            if (IS_TRUE(&st[sp])) pc = in->arg;
            break;
        case I_JNOTTRUE_POP:
            if (!IS_TRUE(&st[sp])) pc = in->arg;
            sp--;
            break;
        case I_JNOTNULL_KEEP:
            if (!IS_NULL(&st[sp])) pc = in->arg;
            break;
        case I_POP:
            sp--;
            break;
        case I_IN_I:
        case I_IN_F:
        case I_IN_S:
        case I_IN_B: {
            int n = (int)in->arg;
            a = &st[sp - n];
            int found = 0;
            if (!IS_NULL(a)) {
                for (int k = 1; k <= n && !found; k++) {
                    b = &st[sp - n + k];
                    if (IS_NULL(b)) continue;
                    switch ((expr_opcode_t)in->op) {
                    case I_IN_I:
                        found = a->as.i == b->as.i;
                        break;
                    case I_IN_F:
                        found = a->as.f == b->as.f;
                        break;
                    case I_IN_S:
                        found = string_cmp(a->as.s, b->as.s) == 0;
                        break;
                    default:
                        found = a->as.b == b->as.b;
                        break;
                    }
                }
                found = in->aux ? !found : found;
            }
            sp -= n;
            *a = expr_bool(found);
            break;
        }
        case I_IS_NULL:
            st[sp] = expr_bool(IS_NULL(&st[sp]));
            break;
        case I_ABS_I:
            a = &st[sp];
            if (!IS_NULL(a) && a->as.i < 0) {
                if (a->as.i == INT64_MIN)
                    a->type = EXPR_NULL;
                else
                    a->as.i = -a->as.i;
            }
            break;
        case I_ABS_F:
            if (!IS_NULL(&st[sp])) st[sp].as.f = fabs(st[sp].as.f);
            break;
        case I_LOG:
            if (!IS_NULL(&st[sp])) set_float(&st[sp], st[sp].as.f > 0 ? log(st[sp].as.f) : NAN);
            break;
        case I_EXP:
            if (!IS_NULL(&st[sp])) set_float(&st[sp], exp(st[sp].as.f));
            break;
        case I_SQRT:
            if (!IS_NULL(&st[sp])) set_float(&st[sp], st[sp].as.f >= 0 ? sqrt(st[sp].as.f) : NAN);
            break;
        case I_ROUND:
            a = &st[sp];
            if (!IS_NULL(a)) {
                double r = round(a->as.f);
                /* 2^63 is exactly representable; anything at or above it is not an int64. */
                if (r >= -9223372036854775808.0 && r < 9223372036854775808.0)
                    *a = expr_int((int64_t)r);
                else
                    a->type = EXPR_NULL;
            }
            break;
        case I_ROUND_N: {
            b = &st[sp--];
            a = &st[sp];
            if (IS_NULL(a) || IS_NULL(b) || b->as.i < -15 || b->as.i > 15) {
                a->type = EXPR_NULL;
                break;
            }
            double p = pow(10.0, (double)b->as.i);
            set_float(a, round(a->as.f * p) / p);
            break;
        }
        case I_MIN_I:
        case I_MAX_I:
        case I_MIN_F:
        case I_MAX_F:
        case I_MIN_S:
        case I_MAX_S: {
            int n = (int)in->arg;
            a = &st[sp - n + 1];
            int is_max = in->op == I_MAX_I || in->op == I_MAX_F || in->op == I_MAX_S;
            int null = 0;
            for (int k = 0; k < n; k++)
                null |= IS_NULL(&a[k]);
            if (null) {
                a->type = EXPR_NULL;
            } else {
                for (int k = 1; k < n; k++) {
                    b = &a[k];
                    int cmp = in->op == I_MIN_I || in->op == I_MAX_I
                                  ? (b->as.i > a->as.i) - (b->as.i < a->as.i)
                              : in->op == I_MIN_F || in->op == I_MAX_F
                                  ? (b->as.f > a->as.f) - (b->as.f < a->as.f)
                                  : string_cmp(b->as.s, a->as.s);
                    if (is_max ? cmp > 0 : cmp < 0) *a = *b;
                }
                a->type = in->type;
            }
            sp -= n - 1;
            break;
        }
        case I_LOWER: {
            a = &st[sp];
            if (IS_NULL(a)) break;
            size_t n = a->as.s.len;
            if (env->scratch_cap - env->scratch_used < n || (n && !env->scratch))
                return WEIR_ETOOBIG;
            char *d = env->scratch + env->scratch_used;
            const char *s = a->as.s.ptr;
            for (size_t k = 0; k < n; k++) {
                char ch = s[k];
                d[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + ('a' - 'A')) : ch;
            }
            env->scratch_used += n;
            a->as.s.ptr = n ? d : "";
            break;
        }
        case I_LEN: {
            a = &st[sp];
            if (IS_NULL(a)) break;
            int64_t n = 0;
            for (size_t k = 0; k < a->as.s.len; k++)
                n += ((unsigned char)a->as.s.ptr[k] & 0xC0) != 0x80;
            *a = expr_int(n);
            break;
        }
        case I_SECONDS:
            if (!IS_NULL(&st[sp])) st[sp] = expr_float((double)st[sp].as.i / 1000.0);
            break;
        case I_HOUR:
            if (!IS_NULL(&st[sp]))
                st[sp] = expr_int(floor_mod(st[sp].as.i, MS_PER_DAY) / MS_PER_HOUR);
            break;
        case I_DOW:
            if (!IS_NULL(&st[sp])) {
                /* Day 0 (1970-01-01) was a Thursday: Monday-based index 3. */
                int64_t day = (st[sp].as.i - floor_mod(st[sp].as.i, MS_PER_DAY)) / MS_PER_DAY;
                st[sp] = expr_int(floor_mod(day + 3, 7));
            }
            break;
        case I_HAVERSINE: {
            a = &st[sp - 3];
            int null = 0;
            for (int k = 0; k < 4; k++)
                null |= IS_NULL(&a[k]);
            if (null)
                a->type = EXPR_NULL;
            else
                set_float(a, haversine(a[0].as.f, a[1].as.f, a[2].as.f, a[3].as.f));
            sp -= 3;
            break;
        }
        case I_COUNT_:
            weir_assert(0);
        }
    }
    weir_assert(sp == 0);
    *out = st[0];
    return 0;
}

int expr_eval(const expr_t *e, expr_env_t *env, expr_value_t *out)
{
    /* Most features and aggregate arguments are one aggregate slot or one
     * field: copy it, in a leaf function that saves no registers. */
    if (e->ncode == 1) {
        const expr_ins_t *in = &e->code[0];
        switch ((expr_opcode_t)in->op) {
        case I_AGG:
            *out = env->aggs[in->arg];
            return 0;
        case I_FIELD:
            *out = env->fields[in->arg];
            return 0;
        case I_FEATURE:
            *out = env->features[in->arg];
            return 0;
        case I_CONST:
            *out = e->consts[in->arg];
            return 0;
        default:
            break;
        }
    }
    return run(e, env, out);
}

int expr_eval_bool(const expr_t *e, expr_env_t *env, bool *out)
{
    expr_value_t v;
    int rc = expr_eval(e, env, &v);
    *out = rc == 0 && IS_TRUE(&v);
    return rc;
}
