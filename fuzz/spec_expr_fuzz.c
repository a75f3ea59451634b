/* spec_expr_fuzz.c — fuzz target for the expression language: any bytes are
 * parsed, type-checked and compiled in the three scopes (feature, select,
 * decision); whatever compiles is evaluated over values that include nulls,
 * extremes and empty strings, with a scratch area that is sometimes too small.
 * Nothing may crash, leak, read out of bounds or trip UBSan. */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/expr.h"

typedef struct fname {
    const char *name;
    expr_type_t type;
} fname_t;

static const fname_t fields[] = {
    {"i", EXPR_INT},      {"f", EXPR_FLOAT}, {"s", EXPR_STRING}, {"b", EXPR_BOOL},
    {"t", EXPR_TIME},     {"ni", EXPR_INT},  {"nf", EXPR_FLOAT}, {"ns", EXPR_STRING},
    {"nb", EXPR_BOOL},    {"nt", EXPR_TIME}, {"big", EXPR_INT},  {"small", EXPR_INT},
    {"d", EXPR_DURATION},
};
#define NF (sizeof fields / sizeof fields[0])

static int resolve(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                   size_t errlen)
{
    (void)err;
    (void)errlen;
    for (size_t k = 0; k < NF; k++) {
        if (strlen(fields[k].name) != len || memcmp(fields[k].name, name, len)) continue;
        ref->kind = ctx ? EXPR_REF_FEATURE : EXPR_REF_FIELD;
        ref->slot = (uint32_t)k;
        ref->type = fields[k].type;
        return 0;
    }
    if (len == 5 && memcmp(name, "score", 5) == 0) {
        ref->kind = EXPR_REF_EXTRA;
        ref->slot = 0;
        ref->type = EXPR_FLOAT;
        return 0;
    }
    return WEIR_ENOENT;
}

/* An aggregate's argument reads the event's fields only (expr.h; the spec
 * loader's resolve_arg): evaluated with nothing but fields, as the engine
 * does, it must not compile a reference to anything else. */
static int resolve_arg(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                       size_t errlen)
{
    (void)ctx;
    if (len == 5 && memcmp(name, "score", 5) == 0) return WEIR_ENOENT;
    return resolve(NULL, name, len, ref, err, errlen);
}

static void names(void *ctx, void (*emit)(void *, const char *), void *ectx)
{
    (void)ctx;
    for (size_t k = 0; k < NF; k++)
        emit(ectx, fields[k].name);
}

static expr_value_t slot_value(expr_type_t t, size_t k)
{
    switch (t) {
    case EXPR_INT:
        return k == 10 ? expr_int(INT64_MAX) : k == 11 ? expr_int(INT64_MIN) : expr_int(7);
    case EXPR_FLOAT:
        return expr_float(-2.5);
    case EXPR_STRING:
        return expr_string("MiXed \xc3\x89", 8);
    case EXPR_BOOL:
        return expr_bool(true);
    case EXPR_TIME:
        return expr_time(INT64_C(1714571130000));
    case EXPR_DURATION:
        return expr_duration(-90000);
    default:
        return expr_null();
    }
}

static void run(const char *text, size_t len, expr_agg_mode_t mode)
{
    expr_aggs_t aggs = {0};
    expr_scope_t sc = {.resolve = resolve,
                       .names = names,
                       .ctx = NULL,
                       .agg_mode = mode,
                       .aggs = &aggs,
                       .arg_resolve = resolve_arg,
                       .arg_names = names,
                       .where = "fuzz"};
    expr_t *e = NULL;
    uint32_t pos;
    char err[256];
    if (expr_compile(text, len, &sc, &e, &pos, err, sizeof err) == 0) {
        weir_assert(pos == 0);
        expr_value_t vals[NF], aggvals[64], extras[1] = {expr_float(0.5)};
        for (size_t k = 0; k < NF; k++)
            vals[k] = fields[k].name[0] == 'n' ? expr_null() : slot_value(fields[k].type, k);
        for (uint32_t k = 0; k < aggs.n && k < 64; k++) {
            aggvals[k] = k % 3 == 0 ? expr_null() : slot_value(aggs.v[k].type, k);
            if (aggs.v[k].arg) {
                expr_env_t ae = {.fields = vals};
                expr_value_t v;
                char scratch[64];
                ae.scratch = scratch;
                ae.scratch_cap = sizeof scratch;
                (void)expr_eval(aggs.v[k].arg, &ae, &v);
            }
        }
        if (aggs.n <= 64) {
            char scratch[24]; /* small on purpose: lower() may run out */
            expr_env_t env = {.fields = vals,
                              .features = vals,
                              .aggs = aggvals,
                              .extras = extras,
                              .scratch = scratch,
                              .scratch_cap = sizeof scratch};
            expr_value_t v;
            int rc = expr_eval(e, &env, &v);
            weir_assert(rc == 0 || rc == WEIR_ETOOBIG);
            weir_assert(rc != 0 || v.type == EXPR_NULL || v.type == expr_type(e));
            weir_buf_t b = WEIR_BUF_INIT;
            if (rc == 0) expr_value_append(&b, &v);
            expr_disassemble(&b, e);
            buf_free(&b);
        }
        expr_free(e);
    } else {
        weir_assert(e == NULL && pos <= len);
    }
    expr_aggs_free(&aggs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    run(text, size, EXPR_AGGS_FEATURE);
    run(text, size, EXPR_AGGS_WINDOW);
    run(text, size, EXPR_AGGS_NONE);
    expr_ast_tree_t *t;
    uint32_t pos;
    char err[128];
    if (expr_ast_parse(text, size, &t, &pos, err, sizeof err) == 0) {
        weir_buf_t b = WEIR_BUF_INIT;
        expr_ast_print(&b, expr_ast_root(t));
        buf_free(&b);
        expr_ast_free(t);
    }
    return 0;
}
