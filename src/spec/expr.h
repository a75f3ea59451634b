/* expr.h — the expression language: compile once, evaluate per event.
 *
 * An expression (a feature, a decision rule's `when`, an aggregate's select)
 * is parsed (ast.h), type-checked and compiled ONCE when the spec loads into
 * an expr_t: a flat array of typed stack-machine instructions whose names are
 * resolved to slots. expr_eval runs it with no parsing, no name lookup and no
 * heap allocation; its stack lives in the C stack and is bounded at compile
 * time. The rules (types, nulls, functions) are stated at the top of expr.c;
 * the short form:
 *
 *   - Types: bool, int, float, string, time (epoch ms), duration (ms).
 *     int and float mix (int widens to float); `/` on numbers is always float;
 *     time - time = duration; time ± duration = time; duration ± duration,
 *     duration * int, duration / int, duration % duration = duration;
 *     duration / duration = float.
 *   - Nulls: arithmetic and functions with a null argument give null (except
 *     if, coalesce, is_null); a comparison with null is false; and/or/not are
 *     three-valued (SQL): null and false = false, null or true = true, not
 *     null = null; where a condition is tested (if, decision rules) null
 *     counts as false. Division or modulo by zero, int overflow and float
 *     results that are NaN or infinite give null.
 *   - Strings are {ptr, len} slices; lower() writes into the caller's scratch
 *     area (expr_env_t), nothing else writes anywhere.
 *
 * Aggregate calls (`sum(amount) over 24h`, `last(country)`) are not computed
 * by the expression: the compiler turns each one into an aggregate slot,
 * described by an expr_agg_t in an expr_aggs_t, and the expression reads the
 * slot. The stream engine fills the slots (it owns windows and state) before
 * it evaluates the expression. */
#ifndef WEIR_SPEC_EXPR_H
#define WEIR_SPEC_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/ast.h"
#include "spec/value.h"

typedef struct expr expr_t;

/* ---- names ---- */

typedef enum expr_ref_kind {
    EXPR_REF_FIELD,   /* env->fields[slot]: a decoded event field */
    EXPR_REF_FEATURE, /* env->features[slot]: a feature computed earlier for this event */
    EXPR_REF_EXTRA,   /* env->extras[slot]: context values, e.g. `score` in decisions */
} expr_ref_kind_t;

typedef struct expr_ref {
    expr_ref_kind_t kind;
    uint32_t slot;
    expr_type_t type; /* the static type; the run-time value is this type or null */
} expr_ref_t;

/* Looks up a name for the compiler. Returns 0 and fills *ref; WEIR_ENOENT if
 * the name is unknown (the compiler then writes "unknown name 'x'", with a
 * suggestion); any other negative code with a sentence in err to refuse a
 * known name with a reason ("feature 'f' cannot be used inside an
 * aggregate"). */
typedef int (*expr_resolve_cb)(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                               size_t errlen);

/* Lists the names a scope knows, for "did you mean" suggestions: calls
 * emit(emit_ctx, name) for each. May be NULL. */
typedef void (*expr_names_cb)(void *ctx, void (*emit)(void *emit_ctx, const char *name),
                              void *emit_ctx);

/* ---- aggregate slots ---- */

typedef enum expr_agg_kind {
    EXPR_AGG_COUNT,           /* count() or count(x) (non-null x) → int; 0 when empty */
    EXPR_AGG_SUM,             /* int → int, float → float; 0 when empty */
    EXPR_AGG_AVG,             /* int|float → float; null when empty */
    EXPR_AGG_MIN,             /* int|float|time|duration → same type; null when empty */
    EXPR_AGG_MAX,             /* as min */
    EXPR_AGG_STDDEV,          /* int|float → float; sample (n − 1); null below 2 values */
    EXPR_AGG_VARIANCE,        /* as stddev */
    EXPR_AGG_FIRST,           /* any type → same type; null when empty */
    EXPR_AGG_LAST,            /* any type → same type; null when empty */
    EXPR_AGG_DISTINCT,        /* any type → int, exact; 0 when empty */
    EXPR_AGG_APPROX_DISTINCT, /* any type → int, HyperLogLog; 0 when empty */
    EXPR_AGG_APPROX_QUANTILE, /* int|float → float; q in [0, 1]; null when empty */
    EXPR_AGG_PREV,            /* last(x) without `over`: x of the key's previous event in
                                 log order (null values included), null if none */
    EXPR_AGG_MATCHES,         /* matches(P) over D: the key's matches of pattern P whose
                                 match time is in (t - D, t], counted once found → int */
} expr_agg_kind_t;

/* One aggregate slot. Contract for the engine that fills it:
 *   - `arg` is evaluated per event on the raw event fields only
 *     (env->fields; it never reads features, extras or other slots); NULL for
 *     count(). Windowed aggregates skip events whose argument is null (SQL);
 *     PREV keeps the previous event's value, null or not.
 *   - window_ms is D of `over D`: the window is (t − D, t] for an event at t.
 *     every_ms is H of `every H` (D is a multiple of H; 0 = exact window):
 *     the window is the D/H buckets [nH, (n+1)H) ending with t's bucket.
 *     For aggregates in an on-close aggregate's select both are 0: the window
 *     is the enclosing tumbling/hopping/session window. For PREV both are 0.
 *   - The slot's value must have type `type` or be null. */
typedef struct expr_agg {
    expr_agg_kind_t kind;
    expr_t *arg;          /* owned by the expr_aggs_t; NULL for count() */
    expr_type_t arg_type; /* EXPR_NULL when there is no argument */
    expr_type_t type;     /* result type, see expr_agg_kind_t */
    int64_t window_ms;
    int64_t every_ms;
    double q;   /* approx_quantile only */
    uint32_t pattern; /* matches() only: index in spec->patterns */
    char *text; /* canonical text, e.g. "sum(amount) over 1d": names the slot in output */
} expr_agg_t;

/* A growable set of aggregate slots shared by the expressions compiled into
 * it; identical calls (same canonical text) share one slot. Zero-initialize,
 * free with expr_aggs_free. v[i] is slot i (env->aggs[i]). */
typedef struct expr_aggs {
    expr_agg_t *v;
    uint32_t n, cap;
} expr_aggs_t;

void expr_aggs_free(expr_aggs_t *a);

const char *expr_agg_kind_name(expr_agg_kind_t k);

/* ---- compiling ---- */

typedef enum expr_agg_mode {
    EXPR_AGGS_NONE,    /* aggregate calls are an error */
    EXPR_AGGS_FEATURE, /* `agg(x) over D [every H]`, and `last(x)` = previous event */
    EXPR_AGGS_WINDOW,  /* `agg(x)` without `over`: the enclosing window (select) */
} expr_agg_mode_t;

typedef struct expr_scope {
    expr_resolve_cb resolve; /* names outside aggregate calls */
    expr_names_cb names;     /* optional, for suggestions */
    void *ctx;
    expr_agg_mode_t agg_mode;
    expr_aggs_t *aggs;           /* where aggregate slots go; required unless EXPR_AGGS_NONE */
    expr_resolve_cb arg_resolve; /* names inside an aggregate's argument (raw fields) */
    expr_names_cb arg_names;
    void *arg_ctx;
    const char *where; /* for messages: "a decision rule", "a feature", ... */
    /* matches(NAME): the index of pattern NAME, or -1 (NULL: no patterns here) */
    int (*pattern_index)(void *ctx, const char *name, size_t len);
} expr_scope_t;

/* Parses, checks and compiles text[0..len). On success returns 0 and sets
 * *out (free with expr_free); aggregate calls were added to scope->aggs. On
 * failure returns a negative code, sets *err_pos to the byte offset in text
 * where the problem is and writes a sentence (without position) to err;
 * scope->aggs may have gained slots, which stay valid. The text is copied. */
int expr_compile(const char *text, size_t len, const expr_scope_t *scope, expr_t **out,
                 uint32_t *err_pos, char *err, size_t errlen);

/* As expr_compile, from a tree parsed by expr_ast_parse from text. */
int expr_compile_ast(const expr_ast_t *root, const char *text, size_t len,
                     const expr_scope_t *scope, expr_t **out, uint32_t *err_pos, char *err,
                     size_t errlen);

void expr_free(expr_t *e);

/* The static type of the result: its value is this type or null. */
expr_type_t expr_type(const expr_t *e);

/* The source text (NUL-terminated, owned by e). */
const char *expr_text(const expr_t *e);

/* Number of lower() calls in e: bounds its scratch use (see expr_env_t). */
uint32_t expr_lower_calls(const expr_t *e);

/* Appends a listing of the compiled program, one instruction a line (tests,
 * debugging). */
void expr_disassemble(weir_buf_t *b, const expr_t *e);

/* Levenshtein distance of two short names (99 if either is over 64 bytes);
 * used for "did you mean" suggestions. */
int expr_edit_distance(const char *a, size_t na, const char *b, size_t nb);

/* ---- evaluating ---- */

/* What an expression reads. The arrays are indexed by slot (expr_ref_t.slot,
 * expr_aggs_t index); each may be NULL if the expression reads none of its
 * kind. Values are borrowed: string slices must stay valid while any result
 * that may point to them is used.
 *
 * scratch: lower() writes its result here (from scratch_used on) and returns
 * a slice into it, so a result stays valid until the caller resets
 * scratch_used (typically once per event, after all features and rules of
 * the event are evaluated). lower() of an n-byte string needs n bytes, so a
 * scratch of (lower calls of all expressions evaluated per event) × (largest
 * string an event or the state can hold) bytes is always enough. If the
 * scratch is too small, expr_eval fails with WEIR_ETOOBIG rather than give a
 * wrong or truncated value. */
typedef struct expr_env {
    const expr_value_t *fields;
    const expr_value_t *features;
    const expr_value_t *aggs;
    const expr_value_t *extras;
    char *scratch;
    size_t scratch_cap;
    size_t scratch_used;
} expr_env_t;

/* Evaluates e in env into *out (a value of expr_type(e), or null). Returns 0,
 * or WEIR_ETOOBIG when the scratch area is too small for lower(). Never
 * allocates; safe to call from several threads on one expr_t with separate
 * envs. */
int expr_eval(const expr_t *e, expr_env_t *env, expr_value_t *out);

/* Evaluates a condition: true only if the result is a true bool (null and
 * false are false). Returns 0 or WEIR_ETOOBIG as expr_eval. */
int expr_eval_bool(const expr_t *e, expr_env_t *env, bool *out);

#endif
