/* spec_expr_test.c — the expression language: every operator, function, null
 * rule and type error, evaluated against hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/expr.h"

/* ---- a scope of typed names with fixed values ---- */

#define T_2024_05_01_134530 INT64_C(1714571130000) /* a Wednesday, 13:45:30 UTC */

typedef struct tname {
    const char *name;
    expr_ref_kind_t kind;
    expr_type_t type;
    expr_value_t value;
} tname_t;

static tname_t names[] = {
    {"i", EXPR_REF_FIELD, EXPR_INT, {.type = EXPR_INT, .as.i = 7}},
    {"j", EXPR_REF_FIELD, EXPR_INT, {.type = EXPR_INT, .as.i = 2}},
    {"f", EXPR_REF_FIELD, EXPR_FLOAT, {.type = EXPR_FLOAT, .as.f = 2.5}},
    {"s", EXPR_REF_FIELD, EXPR_STRING, {.type = EXPR_STRING, .as.s = {"Hello", 5}}},
    {"b", EXPR_REF_FIELD, EXPR_BOOL, {.type = EXPR_BOOL, .as.b = true}},
    {"t", EXPR_REF_FIELD, EXPR_TIME, {.type = EXPR_TIME, .as.i = T_2024_05_01_134530}},
    {"t0", EXPR_REF_FIELD, EXPR_TIME, {.type = EXPR_TIME, .as.i = 0}},
    {"tneg", EXPR_REF_FIELD, EXPR_TIME, {.type = EXPR_TIME, .as.i = -1}},
    {"d", EXPR_REF_FIELD, EXPR_DURATION, {.type = EXPR_DURATION, .as.i = 90000}},
    {"big", EXPR_REF_FIELD, EXPR_INT, {.type = EXPR_INT, .as.i = INT64_MAX}},
    {"small", EXPR_REF_FIELD, EXPR_INT, {.type = EXPR_INT, .as.i = INT64_MIN}},
    {"ni", EXPR_REF_FIELD, EXPR_INT, {.type = EXPR_NULL}},
    {"nf", EXPR_REF_FIELD, EXPR_FLOAT, {.type = EXPR_NULL}},
    {"ns", EXPR_REF_FIELD, EXPR_STRING, {.type = EXPR_NULL}},
    {"nb", EXPR_REF_FIELD, EXPR_BOOL, {.type = EXPR_NULL}},
    {"nt", EXPR_REF_FIELD, EXPR_TIME, {.type = EXPR_NULL}},
    {"feat", EXPR_REF_FEATURE, EXPR_FLOAT, {.type = EXPR_FLOAT, .as.f = 1.5}},
    {"score", EXPR_REF_EXTRA, EXPR_FLOAT, {.type = EXPR_FLOAT, .as.f = 0.75}},
};
#define NNAMES (sizeof names / sizeof names[0])

static int resolve(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                   size_t errlen)
{
    int fields_only = ctx != NULL;
    for (size_t k = 0; k < NNAMES; k++) {
        if (strlen(names[k].name) != len || memcmp(names[k].name, name, len) != 0) continue;
        if (fields_only && names[k].kind != EXPR_REF_FIELD)
            return weir_errf(err, errlen, WEIR_EINVAL, "'%s' is not a field", names[k].name);
        ref->kind = names[k].kind;
        ref->slot = (uint32_t)k; /* every kind indexes the same table */
        ref->type = names[k].type;
        return 0;
    }
    return WEIR_ENOENT;
}

static void list_names(void *ctx, void (*emit)(void *, const char *), void *ectx)
{
    (void)ctx;
    for (size_t k = 0; k < NNAMES; k++)
        emit(ectx, names[k].name);
}

static expr_aggs_t aggs;
static expr_value_t aggvals[16];
static expr_value_t slots[NNAMES];
static char scratch[64];

static expr_scope_t scope(void)
{
    expr_scope_t s = {.resolve = resolve,
                      .names = list_names,
                      .ctx = NULL,
                      .agg_mode = EXPR_AGGS_FEATURE,
                      .aggs = &aggs,
                      .arg_resolve = resolve,
                      .arg_names = list_names,
                      .arg_ctx = (void *)1,
                      .where = "a test"};
    return s;
}

static expr_env_t env(void)
{
    for (size_t k = 0; k < NNAMES; k++)
        slots[k] = names[k].value;
    expr_env_t e = {.fields = slots,
                    .features = slots,
                    .aggs = aggvals,
                    .extras = slots,
                    .scratch = scratch,
                    .scratch_cap = sizeof scratch};
    return e;
}

static expr_t *compile_ok(const char *text)
{
    expr_scope_t sc = scope();
    expr_t *e = NULL;
    char err[256];
    uint32_t pos;
    int rc = expr_compile(text, strlen(text), &sc, &e, &pos, err, sizeof err);
    if (rc) fail_msg("'%s' did not compile: %s (at %u)", text, err, pos);
    return e;
}

/* Evaluates text; checks the static type and hands the value to check(). */
#define EVAL(text, want_type, check)                                                               \
    do {                                                                                           \
        expr_t *e_ = compile_ok(text);                                                             \
        expr_env_t env_ = env();                                                                   \
        expr_value_t v;                                                                            \
        assert_int_equal(expr_eval(e_, &env_, &v), 0);                                             \
        if (expr_type(e_) != (want_type))                                                          \
            fail_msg("'%s': type %s, want %s", text, expr_type_name(expr_type(e_)),                \
                     expr_type_name(want_type));                                                   \
        check;                                                                                     \
        expr_free(e_);                                                                             \
    } while (0)

#define IS_INT(text, n)                                                                            \
    EVAL(text, EXPR_INT, {                                                                         \
        assert_int_equal(v.type, EXPR_INT);                                                        \
        assert_true(v.as.i == (n));                                                                \
    })
#define IS_DUR(text, n)                                                                            \
    EVAL(text, EXPR_DURATION, {                                                                    \
        assert_int_equal(v.type, EXPR_DURATION);                                                   \
        assert_true(v.as.i == (n));                                                                \
    })
#define IS_TIME(text, n)                                                                           \
    EVAL(text, EXPR_TIME, {                                                                        \
        assert_int_equal(v.type, EXPR_TIME);                                                       \
        assert_true(v.as.i == (n));                                                                \
    })
#define IS_FLOAT(text, x)                                                                          \
    EVAL(text, EXPR_FLOAT, {                                                                       \
        assert_int_equal(v.type, EXPR_FLOAT);                                                      \
        assert_float_equal(v.as.f, (x), 1e-12);                                                    \
    })
#define IS_BOOL(text, x)                                                                           \
    EVAL(text, EXPR_BOOL, {                                                                        \
        assert_int_equal(v.type, EXPR_BOOL);                                                       \
        assert_int_equal(v.as.b, (x));                                                             \
    })
#define IS_STR(text, x)                                                                            \
    EVAL(text, EXPR_STRING, {                                                                      \
        assert_int_equal(v.type, EXPR_STRING);                                                     \
        assert_int_equal(v.as.s.len, strlen(x));                                                   \
        assert_memory_equal(v.as.s.ptr, (x), strlen(x));                                           \
    })
#define IS_NULL(text, ty) EVAL(text, ty, { assert_int_equal(v.type, EXPR_NULL); })

/* Compiling text fails at byte pos with a message containing msg. */
static void is_error(const char *text, uint32_t want_pos, const char *msg)
{
    expr_scope_t sc = scope();
    expr_t *e = NULL;
    char err[256] = "";
    uint32_t pos = 9999;
    int rc = expr_compile(text, strlen(text), &sc, &e, &pos, err, sizeof err);
    if (rc == 0) {
        expr_free(e);
        fail_msg("'%s' compiled, want error '%s'", text, msg);
    }
    assert_null(e);
    if (!strstr(err, msg)) fail_msg("'%s': error '%s' does not contain '%s'", text, err, msg);
    if (pos != want_pos) fail_msg("'%s': error at %u, want %u (%s)", text, pos, want_pos, err);
}

static int teardown(void **state)
{
    (void)state;
    expr_aggs_free(&aggs);
    return 0;
}

/* ---- literals and names ---- */

static void test_literals(void **state)
{
    (void)state;
    IS_INT("42", 42);
    IS_INT("-42", -42);
    IS_INT("9223372036854775807", INT64_MAX);
    IS_FLOAT("4.5", 4.5);
    IS_FLOAT("2e3", 2000.0);
    IS_FLOAT(".5", 0.5);
    IS_FLOAT("-1.25e-2", -0.0125);
    IS_STR("\"a\\\"b\"", "a\"b");
    IS_STR("'it\\'s'", "it's");
    IS_STR("'tab\\there'", "tab\there");
    IS_STR("\"\"", "");
    IS_BOOL("true", 1);
    IS_BOOL("false", 0);
    IS_DUR("1500ms", 1500);
    IS_DUR("30s", 30000);
    IS_DUR("10m", 600000);
    IS_DUR("1h", 3600000);
    IS_DUR("7d", 7 * 86400000LL);
    IS_DUR("-1h", -3600000);
    IS_NULL("null", EXPR_NULL);
}

static void test_names(void **state)
{
    (void)state;
    IS_INT("i", 7);
    IS_FLOAT("f", 2.5);
    IS_STR("s", "Hello");
    IS_BOOL("b", 1);
    IS_TIME("t", T_2024_05_01_134530);
    IS_FLOAT("feat", 1.5);
    IS_FLOAT("score", 0.75);
    IS_NULL("ni", EXPR_INT);
    IS_NULL("ns", EXPR_STRING);
}

/* ---- arithmetic ---- */

static void test_int_arithmetic(void **state)
{
    (void)state;
    IS_INT("i + j", 9);
    IS_INT("i - j", 5);
    IS_INT("i * j", 14);
    IS_FLOAT("i / j", 3.5); /* `/` on numbers is always float */
    IS_FLOAT("8 / 2", 4.0);
    IS_INT("i % j", 1);
    IS_INT("-7 % 2", -1); /* sign of the dividend, as C */
    IS_INT("7 % -2", 1);
    IS_INT("1 + 2 * 3", 7);
    IS_INT("(1 + 2) * 3", 9);
    IS_INT("-2 * 3", -6);
    IS_INT("2 - 3 - 4", -5); /* left-associative */
    IS_FLOAT("8 / 2 / 2", 2.0);
    IS_INT("-i", -7);
    IS_INT("- -i", 7);
}

static void test_float_arithmetic(void **state)
{
    (void)state;
    IS_FLOAT("f * 2", 5.0);
    IS_FLOAT("f + i", 9.5);
    IS_FLOAT("i - f", 4.5);
    IS_FLOAT("f / 2", 1.25);
    IS_FLOAT("f % 2", 0.5);
    IS_FLOAT("i % 2.5", 2.0);
    IS_FLOAT("-f", -2.5);
    IS_FLOAT("feat * 2", 3.0);
}

static void test_arithmetic_nulls_and_errors(void **state)
{
    (void)state;
    IS_NULL("ni + 1", EXPR_INT);
    IS_NULL("1 - ni", EXPR_INT);
    IS_NULL("nf * 2", EXPR_FLOAT);
    IS_NULL("ni / 2", EXPR_FLOAT);
    IS_NULL("-ni", EXPR_INT);
    /* division and modulo by zero → null */
    IS_NULL("i / 0", EXPR_FLOAT);
    IS_NULL("f / 0", EXPR_FLOAT);
    IS_NULL("i % 0", EXPR_INT);
    IS_NULL("f % 0", EXPR_FLOAT);
    IS_NULL("1h / 0", EXPR_DURATION);
    IS_NULL("1h % 0s", EXPR_DURATION);
    /* int overflow → null, never wraps */
    IS_NULL("big + 1", EXPR_INT);
    IS_NULL("small - 1", EXPR_INT);
    IS_NULL("big * 2", EXPR_INT);
    IS_NULL("-small", EXPR_INT);
    IS_INT("small % -1", 0);
    /* non-finite floats → null */
    IS_NULL("1e308 * 10", EXPR_FLOAT);
}

static void test_time_and_duration(void **state)
{
    (void)state;
    IS_DUR("t - t", 0);
    IS_TIME("t + 1h", T_2024_05_01_134530 + 3600000);
    IS_TIME("1h + t", T_2024_05_01_134530 + 3600000);
    IS_TIME("t - 30s", T_2024_05_01_134530 - 30000);
    IS_DUR("t - (t - 1h)", 3600000);
    IS_DUR("1h + 30m", 5400000);
    IS_DUR("1h - 2h", -3600000);
    IS_DUR("1h * 2", 7200000);
    IS_DUR("3 * 1h", 10800000);
    IS_DUR("1h / 2", 1800000);
    IS_DUR("1s / 3", 333); /* truncated toward zero */
    IS_FLOAT("1h / 30m", 2.0);
    IS_DUR("90m % 1h", 1800000);
    IS_DUR("-d", -90000);
    IS_FLOAT("seconds(d)", 90.0);
    IS_FLOAT("seconds(1500ms)", 1.5);
    IS_FLOAT("seconds(t - t0)", 1714571130.0);
    IS_NULL("nt - t", EXPR_DURATION);
    IS_NULL("seconds(nt - t)", EXPR_FLOAT);
}

/* ---- comparisons and logic ---- */

static void test_comparisons(void **state)
{
    (void)state;
    IS_BOOL("1 < 2", 1);
    IS_BOOL("2 < 1", 0);
    IS_BOOL("1 <= 1", 1);
    IS_BOOL("1 > 1", 0);
    IS_BOOL("1 >= 1", 1);
    IS_BOOL("1 == 1", 1);
    IS_BOOL("1 != 1", 0);
    IS_BOOL("1 < 1.5", 1); /* int and float mix */
    IS_BOOL("i == 7.0", 1);
    IS_BOOL("f > i", 0);
    IS_BOOL("\"a\" < \"b\"", 1);
    IS_BOOL("\"ab\" < \"abc\"", 1);
    IS_BOOL("\"b\" > \"abc\"", 1);
    IS_BOOL("s == \"Hello\"", 1);
    IS_BOOL("s != \"hello\"", 1);
    IS_BOOL("b == true", 1);
    IS_BOOL("b != false", 1);
    IS_BOOL("t > t - 1s", 1);
    IS_BOOL("t == t", 1);
    IS_BOOL("1h > 30m", 1);
    IS_BOOL("t - t0 >= 1d", 1);
    IS_BOOL("score >= 0.5", 1);
}

static void test_comparison_with_null_is_false(void **state)
{
    (void)state;
    IS_BOOL("ni == ni", 0);
    IS_BOOL("ni != ni", 0);
    IS_BOOL("ni == 1", 0);
    IS_BOOL("ni != 1", 0);
    IS_BOOL("ni < 1", 0);
    IS_BOOL("ni >= 1", 0);
    IS_BOOL("ns == s", 0);
    IS_BOOL("ns != s", 0);
    IS_BOOL("nb == true", 0);
    IS_BOOL("nt < t", 0);
    /* the comparison is false, so its negation is true */
    IS_BOOL("not (ni > 1)", 1);
}

static void test_three_valued_logic(void **state)
{
    (void)state;
    IS_BOOL("true and true", 1);
    IS_BOOL("true and false", 0);
    IS_BOOL("false or true", 1);
    IS_BOOL("false or false", 0);
    IS_BOOL("not true", 0);
    IS_BOOL("not not true", 1);
    IS_BOOL("nb and false", 0);
    IS_BOOL("false and nb", 0);
    IS_NULL("nb and true", EXPR_BOOL);
    IS_NULL("true and nb", EXPR_BOOL);
    IS_BOOL("nb or true", 1);
    IS_BOOL("true or nb", 1);
    IS_NULL("nb or false", EXPR_BOOL);
    IS_NULL("false or nb", EXPR_BOOL);
    IS_NULL("not nb", EXPR_BOOL);
    IS_NULL("nb and nb", EXPR_BOOL);
    /* precedence: not > and > or */
    IS_BOOL("true or true and false", 1);
    IS_BOOL("not false and false", 0);
    IS_BOOL("i > 5 and s == \"Hello\" or false", 1);
    /* a comparison with null stays false under and/or */
    IS_BOOL("ni > 1 or false", 0);
}

static void test_in(void **state)
{
    (void)state;
    IS_BOOL("i in [1, 7]", 1);
    IS_BOOL("i in [1, 2]", 0);
    IS_BOOL("i not in [1, 2]", 1);
    IS_BOOL("i not in [7]", 0);
    IS_BOOL("ni in [1]", 0);
    IS_BOOL("ni not in [1]", 0); /* x null → false, for `not in` too */
    IS_BOOL("i in [ni, 7]", 1);  /* null items never match */
    IS_BOOL("f in [1, 2.5]", 1);
    IS_BOOL("i in [7.0]", 1);
    IS_BOOL("s in [\"x\", \"Hello\"]", 1);
    IS_BOOL("lower(s) in [\"hello\"]", 1);
    IS_BOOL("b in [false]", 0);
    IS_BOOL("t in [t0, t]", 1);
    IS_BOOL("d in [90s]", 1);
    IS_BOOL("i + 1 in [j * 4]", 1);
}

/* ---- functions ---- */

static void test_if_coalesce_is_null(void **state)
{
    (void)state;
    IS_INT("if(b, 1, 2)", 1);
    IS_INT("if(not b, 1, 2)", 2);
    IS_INT("if(nb, 1, 2)", 2); /* null condition counts as false */
    IS_FLOAT("if(true, 1, 2.5)", 1.0);
    IS_FLOAT("if(false, 1, 2.5)", 2.5);
    IS_NULL("if(true, null, 2)", EXPR_INT);
    IS_STR("if(i > 5, \"big\", \"small\")", "big");
    IS_INT("coalesce(ni, 3)", 3);
    IS_INT("coalesce(i, 3)", 7);
    IS_INT("coalesce(ni, ni, 4)", 4);
    IS_NULL("coalesce(ni, ni)", EXPR_INT);
    IS_FLOAT("coalesce(ni, 2.5)", 2.5);
    IS_FLOAT("coalesce(i, 2.5)", 7.0);
    IS_STR("coalesce(ns, \"none\")", "none");
    IS_INT("coalesce(ni, null, 5)", 5);
    IS_INT("coalesce(i)", 7);
    IS_BOOL("is_null(ni)", 1);
    IS_BOOL("is_null(i)", 0);
    IS_BOOL("is_null(ni + 1)", 1);
    IS_BOOL("is_null(i / 0)", 1);
}

static void test_math_functions(void **state)
{
    (void)state;
    IS_INT("abs(-3)", 3);
    IS_INT("abs(3)", 3);
    IS_FLOAT("abs(-2.5)", 2.5);
    IS_DUR("abs(-1h)", 3600000);
    IS_NULL("abs(small)", EXPR_INT);
    IS_NULL("abs(ni)", EXPR_INT);
    IS_FLOAT("log(1)", 0.0);
    IS_FLOAT("log(exp(2))", 2.0);
    IS_NULL("log(0)", EXPR_FLOAT);
    IS_NULL("log(-1)", EXPR_FLOAT);
    IS_FLOAT("exp(0)", 1.0);
    IS_NULL("exp(1000)", EXPR_FLOAT);
    IS_FLOAT("sqrt(16)", 4.0);
    IS_FLOAT("sqrt(f * 10)", 5.0);
    IS_NULL("sqrt(-1)", EXPR_FLOAT);
    IS_INT("round(2.5)", 3);
    IS_INT("round(-2.5)", -3);
    IS_INT("round(2.4)", 2);
    IS_INT("round(7)", 7);
    IS_NULL("round(1e30)", EXPR_INT);
    IS_NULL("round(nf)", EXPR_INT);
    IS_FLOAT("round(3.14159, 2)", 3.14);
    IS_FLOAT("round(1234.5, -2)", 1200.0);
    IS_FLOAT("round(i, 1)", 7.0);
    IS_NULL("round(1.5, 16)", EXPR_FLOAT);
    IS_INT("min(3, 1, 2)", 1);
    IS_INT("max(3, 1, 2)", 3);
    IS_FLOAT("max(3, 1.5)", 3.0);
    IS_FLOAT("min(i, f)", 2.5);
    IS_NULL("min(ni, 1)", EXPR_INT);
    IS_NULL("max(1, 2, ni)", EXPR_INT);
    IS_STR("min(\"b\", \"a\", \"c\")", "a");
    IS_STR("max(\"b\", \"a\", \"c\")", "c");
    IS_TIME("max(t, t + 1h)", T_2024_05_01_134530 + 3600000);
    IS_DUR("min(1h, 30m)", 1800000);
}

static void test_string_and_time_functions(void **state)
{
    (void)state;
    IS_STR("lower(s)", "hello");
    IS_STR("lower(\"MiXeD 123 \xc3\x89\")", "mixed 123 \xc3\x89"); /* ASCII only */
    IS_STR("lower(\"\")", "");
    IS_NULL("lower(ns)", EXPR_STRING);
    IS_INT("len(s)", 5);
    IS_INT("len(\"h\xc3\xa9llo\")", 5); /* code points, not bytes */
    IS_INT("len(\"\")", 0);
    IS_NULL("len(ns)", EXPR_INT);
    IS_INT("hour_of_day(t)", 13);
    IS_INT("day_of_week(t)", 2); /* Wednesday; 0 = Monday */
    IS_INT("hour_of_day(t0)", 0);
    IS_INT("day_of_week(t0)", 3);    /* 1970-01-01 was a Thursday */
    IS_INT("hour_of_day(tneg)", 23); /* 1969-12-31T23:59:59.999Z */
    IS_INT("day_of_week(tneg)", 2);
    IS_INT("day_of_week(t + 5d)", 0); /* Monday */
    IS_INT("day_of_week(t + 4d)", 6); /* Sunday */
    IS_NULL("hour_of_day(nt)", EXPR_INT);
    IS_FLOAT("haversine(0, 0, 0, 1)", 111.19492664455873);
    EVAL("haversine(48.8566, 2.3522, 51.5074, -0.1278)", EXPR_FLOAT,
         { assert_float_equal(v.as.f, 343.55606034104164, 1e-9); });
    IS_FLOAT("haversine(f, f, f, f)", 0.0);
    IS_NULL("haversine(nf, 0, 0, 0)", EXPR_FLOAT);
}

static void test_lower_scratch(void **state)
{
    (void)state;
    expr_t *e = compile_ok("lower(s)");
    assert_int_equal(expr_lower_calls(e), 1);
    expr_env_t en = env();
    expr_value_t v;
    /* Results stay valid until scratch_used is reset: two calls, two copies. */
    assert_int_equal(expr_eval(e, &en, &v), 0);
    assert_int_equal(en.scratch_used, 5);
    expr_value_t w;
    assert_int_equal(expr_eval(e, &en, &w), 0);
    assert_int_equal(en.scratch_used, 10);
    assert_memory_equal(v.as.s.ptr, "hello", 5);
    assert_ptr_not_equal(v.as.s.ptr, w.as.s.ptr);
    /* Too small a scratch: an error, not a truncated value. */
    en.scratch_cap = 12;
    assert_int_equal(expr_eval(e, &en, &v), WEIR_ETOOBIG);
    en.scratch = NULL;
    en.scratch_cap = 0;
    en.scratch_used = 0;
    assert_int_equal(expr_eval(e, &en, &v), WEIR_ETOOBIG);
    expr_free(e);
}

/* ---- aggregates ---- */

static void test_aggregate_slots(void **state)
{
    (void)state;
    expr_aggs_free(&aggs);
    expr_t *a = compile_ok("sum(i) over 1h + count() over 1h");
    expr_t *b = compile_ok("avg(f) over 7d every 1h / (sum(i) over 60m)");
    expr_t *c = compile_ok("last(s)");
    expr_t *q = compile_ok("approx_quantile(f * 2, 0.99) over 10m");
    assert_int_equal(aggs.n, 5); /* sum(i) over 1h shared, 60m == 1h */
    assert_int_equal(aggs.v[0].kind, EXPR_AGG_SUM);
    assert_int_equal(aggs.v[0].type, EXPR_INT);
    assert_int_equal(aggs.v[0].arg_type, EXPR_INT);
    assert_true(aggs.v[0].window_ms == 3600000 && aggs.v[0].every_ms == 0);
    assert_string_equal(aggs.v[0].text, "sum(i) over 1h");
    assert_string_equal(expr_text(aggs.v[0].arg), "i");
    assert_int_equal(aggs.v[1].kind, EXPR_AGG_COUNT);
    assert_null(aggs.v[1].arg);
    assert_int_equal(aggs.v[1].type, EXPR_INT);
    assert_int_equal(aggs.v[2].kind, EXPR_AGG_AVG);
    assert_int_equal(aggs.v[2].type, EXPR_FLOAT);
    assert_true(aggs.v[2].window_ms == 7 * 86400000LL && aggs.v[2].every_ms == 3600000);
    assert_int_equal(aggs.v[3].kind, EXPR_AGG_PREV);
    assert_int_equal(aggs.v[3].type, EXPR_STRING);
    assert_true(aggs.v[3].window_ms == 0);
    assert_int_equal(aggs.v[4].kind, EXPR_AGG_APPROX_QUANTILE);
    assert_float_equal(aggs.v[4].q, 0.99, 0);
    assert_string_equal(expr_text(aggs.v[4].arg), "(f * 2)");

    /* The argument evaluates on fields alone. */
    expr_env_t en = env();
    expr_value_t v;
    en.features = en.extras = en.aggs = NULL;
    assert_int_equal(expr_eval(aggs.v[4].arg, &en, &v), 0);
    assert_float_equal(v.as.f, 5.0, 0);

    /* The expression reads the slots the engine filled. */
    en = env();
    aggvals[0] = expr_int(40);
    aggvals[1] = expr_int(2);
    aggvals[2] = expr_float(10.0);
    aggvals[3] = expr_null();
    assert_int_equal(expr_eval(a, &en, &v), 0);
    assert_true(v.type == EXPR_INT && v.as.i == 42);
    assert_int_equal(expr_eval(b, &en, &v), 0);
    assert_float_equal(v.as.f, 0.25, 1e-15);
    assert_int_equal(expr_eval(c, &en, &v), 0);
    assert_int_equal(v.type, EXPR_NULL);
    expr_free(a);
    expr_free(b);
    expr_free(c);
    expr_free(q);
    expr_aggs_free(&aggs);
}

static void agg_type(const char *text, expr_type_t want)
{
    expr_aggs_free(&aggs);
    expr_t *e = compile_ok(text);
    assert_int_equal(aggs.n, 1);
    if (aggs.v[0].type != want)
        fail_msg("%s: type %s, want %s", text, expr_type_name(aggs.v[0].type),
                 expr_type_name(want));
    expr_free(e);
    expr_aggs_free(&aggs);
}

static void test_aggregate_types(void **state)
{
    (void)state;
    agg_type("count() over 1h", EXPR_INT);
    agg_type("count(ni) over 1h", EXPR_INT);
    agg_type("sum(i) over 1h", EXPR_INT);
    agg_type("sum(f) over 1h", EXPR_FLOAT);
    agg_type("avg(i) over 1h", EXPR_FLOAT);
    agg_type("min(i) over 1h", EXPR_INT);
    agg_type("max(f) over 1h", EXPR_FLOAT);
    agg_type("max(t) over 1h", EXPR_TIME);
    agg_type("stddev(i) over 1h", EXPR_FLOAT);
    agg_type("variance(f) over 1h", EXPR_FLOAT);
    agg_type("first(f) over 1h", EXPR_FLOAT);
    agg_type("last(b) over 1h", EXPR_BOOL);
    /* Windows keep strings as hashes: first/last of them cannot be answered. */
    is_error("first(s) over 1h", 0, "first over a window of strings is not supported yet");
    is_error("1 + len(last(s) over 1h)", 8, "last over a window of strings is not supported yet");
    agg_type("distinct(s) over 1d", EXPR_INT);
    agg_type("approx_distinct(s) over 1d", EXPR_INT);
    agg_type("approx_quantile(i, 1) over 1d", EXPR_FLOAT);
    agg_type("last(t)", EXPR_TIME);
    agg_type("distinct(lower(s)) over 1h", EXPR_INT);
}

static void test_aggregate_modes(void **state)
{
    (void)state;
    /* In an on-close select, aggregates take the enclosing window. */
    expr_aggs_t w = {0};
    expr_scope_t sc = {.resolve = NULL,
                       .agg_mode = EXPR_AGGS_WINDOW,
                       .aggs = &w,
                       .arg_resolve = resolve,
                       .arg_ctx = (void *)1,
                       .where = "a select"};
    expr_t *e = NULL;
    char err[256];
    uint32_t pos;
    const char *text = "sum(f) / count() + last(i)";
    assert_int_equal(expr_compile(text, strlen(text), &sc, &e, &pos, err, sizeof err), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.v[2].kind, EXPR_AGG_LAST); /* not PREV: last of the window */
    assert_true(w.v[0].window_ms == 0);
    expr_free(e);
    text = "sum(f) over 1h";
    assert_int_not_equal(expr_compile(text, strlen(text), &sc, &e, &pos, err, sizeof err), 0);
    assert_non_null(strstr(err, "remove 'over'"));
    assert_int_equal(pos, 12);
    expr_aggs_free(&w);
    /* No aggregates at all (decision rules). */
    sc.agg_mode = EXPR_AGGS_NONE;
    sc.resolve = resolve;
    sc.where = "a decision rule";
    text = "score > 0.5 and count() over 1h > 3";
    assert_int_not_equal(expr_compile(text, strlen(text), &sc, &e, &pos, err, sizeof err), 0);
    assert_string_equal(err, "aggregate count() is not allowed in a decision rule");
    assert_int_equal(pos, 16);
}

/* ---- errors ---- */

static void test_parse_errors(void **state)
{
    (void)state;
    is_error("", 0, "expression is empty");
    is_error("1 +", 3, "expected a value, a name or '('");
    is_error("(1 + 2", 6, "expected ')'");
    is_error("1 + 2)", 5, "unbalanced ')'");
    is_error("i = 1", 2, "use '==' to compare");
    is_error("!b", 0, "use 'not'");
    is_error("b && b", 2, "use 'and'");
    is_error("1 < 2 < 3", 6, "comparisons do not chain");
    is_error("1.5h", 0, "bad duration '1.5h'");
    is_error("10x", 0, "bad duration '10x'");
    is_error("\"abc", 0, "string is not closed");
    is_error("'a\\q'", 2, "unknown escape");
    is_error("i in []", 5, "the list after 'in' is empty");
    is_error("i in 1", 5, "expected '[' to start the list");
    is_error("i not 1", 6, "expected 'in' after 'not'");
    is_error("count() every 1h", 8, "'every' needs a window first");
    is_error("sum(i) over x", 12, "a duration after 'over'");
    is_error("over 1h", 0, "'over' must follow an aggregate call");
    is_error("99999999999999999999", 0, "too large");
    is_error("i @ 2", 2, "unexpected character '@'");
    is_error("1 2", 2, "unexpected '2' after a complete expression");
}

static void test_limits(void **state)
{
    (void)state;
    char text[2048];
    /* 70 nested parentheses */
    size_t n = 0;
    for (int k = 0; k < 70; k++)
        text[n++] = '(';
    text[n++] = '1';
    for (int k = 0; k < 70; k++)
        text[n++] = ')';
    text[n] = '\0';
    expr_scope_t sc = scope();
    expr_t *e = NULL;
    char err[256];
    uint32_t pos;
    assert_int_not_equal(expr_compile(text, n, &sc, &e, &pos, err, sizeof err), 0);
    assert_non_null(strstr(err, "nested too deeply"));
    /* a chain of 600 additions: too tall a tree */
    n = 0;
    for (int k = 0; k < 600; k++)
        n += (size_t)snprintf(text + n, sizeof text - n, "1+");
    text[n++] = '1';
    text[n] = '\0';
    assert_int_not_equal(expr_compile(text, n, &sc, &e, &pos, err, sizeof err), 0);
    assert_non_null(strstr(err, "chain of operators"));
    /* 300 additions are fine, and need only a stack of 2 */
    n = 0;
    for (int k = 0; k < 300; k++)
        n += (size_t)snprintf(text + n, sizeof text - n, "1+");
    text[n++] = '1';
    text[n] = '\0';
    assert_int_equal(expr_compile(text, n, &sc, &e, &pos, err, sizeof err), 0);
    expr_env_t en = env();
    expr_value_t v;
    assert_int_equal(expr_eval(e, &en, &v), 0);
    assert_true(v.as.i == 301);
    expr_free(e);
}

static void test_name_errors(void **state)
{
    (void)state;
    is_error("amount > 1", 0, "unknown name 'amount'");
    is_error("i + sx", 4, "unknown name 'sx'; did you mean 's'?");
    is_error("scor > 1", 0, "did you mean 'score'?");
    is_error("foo(1)", 0, "unknown function 'foo'");
    is_error("lowr(s)", 0, "unknown function 'lowr'; did you mean 'lower'?");
    is_error("sum(feat) over 1h", 4, "'feat' is not a field");
    is_error("sum(sum(i) over 1h) over 1h", 4, "not allowed in the argument of an aggregate");
}

static void test_arity_errors(void **state)
{
    (void)state;
    is_error("abs(1, 2)", 0, "abs() takes 1 argument, got 2");
    is_error("if(true, 1)", 0, "if() takes 3 arguments, got 2");
    is_error("haversine(1, 2, 3)", 0, "haversine() takes 4 arguments, got 3");
    is_error("round()", 0, "round() takes 1 or 2 arguments, got 0");
    is_error("coalesce()", 0, "coalesce() takes at least 1 argument, got 0");
    is_error("sum() over 1h", 0, "aggregate sum() takes 1 argument, got 0");
    is_error("count(i, j) over 1h", 0, "aggregate count() takes 0 or 1 arguments, got 2");
    is_error("min(i, j) over 1h", 0, "aggregate min() takes 1 argument, got 2");
    is_error("approx_quantile(i) over 1h", 0, "takes 2 arguments");
}

static void test_type_errors(void **state)
{
    (void)state;
    is_error("s + 1", 2, "'+' cannot take string and int");
    is_error("s + s", 2, "strings cannot be added");
    is_error("b * 2", 2, "'*' cannot take bool and int");
    is_error("t + t", 2, "'+' cannot take time and time");
    is_error("t + 1", 2, "'+' cannot take time and int");
    is_error("1h * 1.5", 3, "'*' cannot take duration and float");
    is_error("s < 1", 2, "'<' cannot compare string with int");
    is_error("b < true", 2, "'<' cannot compare bool with bool");
    is_error("d > 5", 2, "cannot compare duration with int; write a duration");
    is_error("i and b", 0, "'and' needs bool operands, got int on its left");
    is_error("b or 1", 5, "got int on its right");
    is_error("not i", 4, "'not' needs a bool, got int");
    is_error("-s", 0, "'-' cannot negate string");
    is_error("-b", 0, "'-' cannot negate bool");
    is_error("if(1, 2, 3)", 3, "if() needs a bool condition, got int");
    is_error("if(b, 1, \"x\")", 9, "if() branches differ: int and string");
    is_error("coalesce(i, s)", 12, "coalesce() arguments differ");
    is_error("min(i, s)", 7, "min() arguments differ");
    is_error("max(b, b)", 0, "max() needs numbers, times, durations or strings, got bool");
    is_error("abs(s)", 4, "abs() needs a number or a duration, got string");
    is_error("log(s)", 4, "log() needs a number");
    is_error("round(f, 1.5)", 9, "decimals) must be an int");
    is_error("lower(i)", 6, "lower() needs a string, got int");
    is_error("len(1)", 4, "len() needs a string");
    is_error("seconds(5)", 8, "seconds() needs a duration");
    is_error("hour_of_day(i)", 12, "hour_of_day() needs a time, got int");
    is_error("day_of_week(d)", 12, "needs a time, got duration");
    is_error("haversine(1, 2, s, 4)", 16, "haversine() takes numbers");
    is_error("i in [1, \"x\"]", 9, "list item is string but the value tested is int");
    is_error("ni == null", 6, "a comparison with null is always false; use is_null(x)");
    is_error("i + null", 4, "null here makes the arithmetic always null");
    is_error("abs(null)", 4, "null here makes abs() always null");
    is_error("sum(s) over 1h", 4, "sum() needs a number, got string");
    is_error("avg(b) over 1h", 4, "avg() needs a number, got bool");
    is_error("min(s) over 1h", 4, "min() needs a number, a time or a duration, got string");
    is_error("approx_quantile(i, 1.5) over 1h", 19, "from 0 to 1");
    is_error("approx_quantile(i, f) over 1h", 19, "from 0 to 1");
    is_error("sum(null) over 1h", 4, "is always null");
}

static void test_window_errors(void **state)
{
    (void)state;
    is_error("sum(i)", 0, "sum() needs a window: write sum(...) over D");
    is_error("first(i)", 0, "first() needs a window");
    is_error("min(i)", 0, "min() needs a window");
    is_error("avg(i) over 7d every 5h", 21, "window 7d is not a multiple of its every 5h");
    is_error("avg(i) over 1h every 2h", 21, "window 1h is not a multiple of its every 2h");
    is_error("count() over 0s", 13, "must be longer than 0");
    is_error("count() over 1h every 0s", 22, "'every' must be longer than 0");
    is_error("abs(i) over 1h", 12, "'over' only follows an aggregate call");
}

/* ---- compiled form ---- */

static void test_no_allocation_in_eval(void **state)
{
    (void)state;
    expr_t *e = compile_ok("if(lower(s) in [\"hello\", \"x\"] and not (ni > 1), "
                           "coalesce(ni, round(f * 3.7, 2) + i), max(1, 2.5)) + seconds(t - t0)");
    expr_env_t en = env();
    expr_value_t v;
    size_t before = weir_alloc_used();
    for (int k = 0; k < 1000; k++) {
        en.scratch_used = 0;
        assert_int_equal(expr_eval(e, &en, &v), 0);
    }
    assert_int_equal(weir_alloc_used(), before);
    assert_float_equal(v.as.f, 16.25 + 1714571130.0, 1e-6);
    expr_free(e);
}

static void test_disassemble(void **state)
{
    (void)state;
    expr_t *e = compile_ok("i + f > 2 and s == \"x\"");
    weir_buf_t b = WEIR_BUF_INIT;
    expr_disassemble(&b, e);
    buf_append(&b, "", 1);
    const char *want = "  0 field      int      0\n"
                       "  1 field      float    2\n"
                       "  2 to_float   float    1\n"
                       "  3 add_f      float    0\n"
                       "  4 const      int      2\n"
                       "  5 to_float   float    0\n"
                       "  6 cmp_f      bool     >\n"
                       "  7 jfalse     bool     12\n"
                       "  8 field      string   3\n"
                       "  9 const      string   \"x\"\n"
                       " 10 cmp_s      bool     ==\n"
                       " 11 and        bool     0\n";
    assert_string_equal(b.data, want);
    buf_free(&b);
    expr_free(e);
}

static void test_print_canonical(void **state)
{
    (void)state;
    const char *text = "not a in [1, 2.0, 'x'] or -b * (c - 90m) >= sum(x) over 24h every 1h";
    expr_ast_tree_t *t;
    uint32_t pos;
    char err[128];
    assert_int_equal(expr_ast_parse(text, strlen(text), &t, &pos, err, sizeof err), 0);
    weir_buf_t b = WEIR_BUF_INIT;
    expr_ast_print(&b, expr_ast_root(t));
    buf_append(&b, "", 1);
    assert_string_equal(b.data, "((not (a in [1, 2.0, \"x\"])) or (((-b) * (c - 90m)) >= "
                                "sum(x) over 1d every 1h))");
    buf_free(&b);
    expr_ast_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_int_arithmetic),
        cmocka_unit_test(test_float_arithmetic),
        cmocka_unit_test(test_arithmetic_nulls_and_errors),
        cmocka_unit_test(test_time_and_duration),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_comparison_with_null_is_false),
        cmocka_unit_test(test_three_valued_logic),
        cmocka_unit_test(test_in),
        cmocka_unit_test(test_if_coalesce_is_null),
        cmocka_unit_test(test_math_functions),
        cmocka_unit_test(test_string_and_time_functions),
        cmocka_unit_test(test_lower_scratch),
        cmocka_unit_test(test_aggregate_slots),
        cmocka_unit_test(test_aggregate_types),
        cmocka_unit_test(test_aggregate_modes),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_name_errors),
        cmocka_unit_test(test_arity_errors),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_window_errors),
        cmocka_unit_test(test_no_allocation_in_eval),
        cmocka_unit_test(test_disassemble),
        cmocka_unit_test(test_print_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
