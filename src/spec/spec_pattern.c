/* spec_pattern.c — loads a spec's `patterns:` (CEP) into spec_pattern_t
 * (spec.h); what a loaded pattern means at run time is stated in
 * src/stream/pattern.h. Part of the spec loader (spec_int.h): errors are
 * "FILE:LINE:COL: message" like every other part of a spec.
 *
 *   patterns:
 *     NAME:
 *       sequence:                       # steps in order, one key each
 *         - STEP: CONDITION             # short form: a step that must match
 *         - STEP:
 *             when: CONDITION           # a step that must match ...
 *             not: CONDITION            # ... or a step that must NOT (one of the two)
 *             times: N                  # exactly N events (N >= 1)
 *             one_or_more: true         # 1 or more events
 *             optional: true            # the step may take no event (with times: N,
 *                                       # none or all N)
 *             contiguity: strict        # strict (the key's next event) | relaxed (default)
 *             gap: D                    # at most D after the previous step's event
 *       within: D                       # first event to the last (required)
 *       order: time                     # time (default) | arrival
 *       then: DECISION                  # needs order: arrival
 *       emit: {FIELD: EXPRESSION, ...}  # to DATA/outputs/NAME.ndjson
 *
 * Conditions read the event's fields by name and earlier steps' fields as
 * STEP.FIELD (a loop — times: N > 1 or one_or_more — may name itself: its
 * previous event; a step taking one event has none, so naming itself is
 * refused); emit expressions read STEP.FIELD only. The checks below refuse
 * what has no clear meaning (a pattern starting with `not` or an optional
 * step, `not` next to an optional step, two `not` steps in a row) with a
 * sentence saying what to write instead. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "spec/spec_int.h"

#define MAX_STEPS 64
#define MAX_TIMES 1000

int ld_find_pattern(const spec_t *s, const char *name, size_t len)
{
    for (uint32_t i = 0; i < s->npatterns; i++)
        if (s->patterns[i].name && strlen(s->patterns[i].name) == len &&
            memcmp(s->patterns[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int find_step(const spec_pattern_t *p, const char *name, size_t len)
{
    for (uint32_t i = 0; i < p->nsteps; i++)
        if (p->steps[i].name && strlen(p->steps[i].name) == len &&
            memcmp(p->steps[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* ---- the scope of conditions and emit expressions ---- */

typedef struct pscope {
    loader_t *L;
    spec_pattern_t *p;
    uint32_t step; /* the step whose condition this is */
    int emit;      /* an emit expression: every step is done, bare names mean nothing */
    int refs;      /* set when the expression names a step */
} pscope_t;

/* Features load after patterns (they may count matches), so a feature's
 * name is recognized from the YAML, for a better message. */
static int is_feature_name(const loader_t *L, const char *name, size_t len)
{
    const ynode_t *root = ydoc_root(L->doc), *m = root ? ynode_get(root, "features") : NULL;
    for (uint32_t i = 0; m && m->kind == YNODE_MAP && i < m->n; i++)
        if (ynode_key(m, i)->len == len && !memcmp(ynode_key(m, i)->value, name, len)) return 1;
    return 0;
}

static uint32_t bind_slot(spec_pattern_t *p, uint32_t step, uint32_t field)
{
    for (uint32_t i = 0; i < p->nbinds; i++)
        if (p->binds[i].step == step && p->binds[i].field == field) return i;
    p->binds = weir_realloc(p->binds, (p->nbinds + 1) * sizeof *p->binds);
    p->binds[p->nbinds] = (spec_bind_t){step, field};
    return p->nbinds++;
}

/* "earlier steps: a, b" (or "no step comes before it") — the steps before step `si` that bind an
 * event (not steps bind none), for a message saying what a condition may read. */
static void earlier_steps(const spec_pattern_t *p, uint32_t si, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "earlier steps: ");
    const char *sep = "";
    for (uint32_t i = 0; i < si && n < outlen; i++) {
        if (p->steps[i].negated) continue;
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", sep, p->steps[i].name);
        sep = ", ";
    }
    if (!*sep) snprintf(out, outlen, "no step comes before it");
}

static int resolve_pattern_scope(void *ctx, const char *name, size_t len, expr_ref_t *ref,
                                 char *err, size_t errlen)
{
    pscope_t *ps = ctx;
    const spec_source_t *src = ld_main_source(ps->L);
    const char *dot = memchr(name, '.', len);
    if (!dot) {
        if (ps->emit)
            return weir_errf(err, errlen, WEIR_EINVAL,
                             "an emit expression reads the match's steps: write STEP.%.*s",
                             (int)len, name);
        if (ld_resolve_field_ref(ps->L, name, len, ref) == 0) return 0;
        if (is_feature_name(ps->L, name, len))
            return weir_errf(
                err, errlen, WEIR_EINVAL,
                "feature '%.*s' cannot be used in a pattern: conditions read the event's "
                "fields and earlier steps (STEP.field)",
                (int)len, name);
        return WEIR_ENOENT;
    }
    size_t sl = (size_t)(dot - name);
    int st = find_step(ps->p, name, sl);
    if (st < 0) return WEIR_ENOENT;
    const spec_step_t *step = &ps->p->steps[st];
    if (step->negated)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "step '%.*s' is a not step: it binds no event to read", (int)sl, name);
    if (!ps->emit && (uint32_t)st > ps->step)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "step '%.*s' comes after this one; a condition reads earlier steps",
                         (int)sl, name);
    int f = ld_find_field(src, dot + 1, len - sl - 1);
    if (f < 0)
        return weir_errf(err, errlen, WEIR_EINVAL, "source '%s' has no field '%.*s'", src->name,
                         (int)(len - sl - 1), dot + 1);
    /* Only a loop has a previous event of its own to read (pattern.h); in a
     * step that takes one event STEP.field is always null, so a comparison
     * with it is never true and the step silently never matches — nearly
     * always a typo for an earlier step (big.price for small.price). */
    if (!ps->emit && (uint32_t)st == ps->step && step->max == 1) {
        char earlier[256];
        earlier_steps(ps->p, ps->step, earlier, sizeof earlier);
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "step '%s' reads its own field %.*s, but it takes one event, so it has "
                         "no previous event to read: a condition reads the event's own fields by "
                         "name (%.*s) and earlier steps' fields as STEP.field (%s)",
                         step->name, (int)len, name, (int)(len - sl - 1), dot + 1, earlier);
    }
    ps->refs = 1;
    ref->kind = EXPR_REF_EXTRA;
    ref->slot = bind_slot(ps->p, (uint32_t)st, (uint32_t)f);
    ref->type = src->fields[f].type;
    return 0;
}

static void names_pattern_scope(void *ctx, void (*emit)(void *, const char *), void *ectx)
{
    pscope_t *ps = ctx;
    if (!ps->emit) ld_names_fields(ps->L, emit, ectx);
}

static int compile_cond(loader_t *L, spec_pattern_t *p, uint32_t si, const ynode_t *n, expr_t **out)
{
    if (ld_want_scalar(L, n, "a step's condition")) return L->rc;
    if (ld_is_empty(n)) return ld_fail(L, n, "step '%s' has no condition", p->steps[si].name);
    pscope_t ps = {L, p, si, 0, 0};
    expr_scope_t scope = {.resolve = resolve_pattern_scope,
                          .names = names_pattern_scope,
                          .ctx = &ps,
                          .agg_mode = EXPR_AGGS_NONE,
                          .where = "a pattern step (define a feature for it)"};
    if (ld_compile_node(L, n, &scope, out)) return L->rc;
    if (expr_type(*out) != EXPR_BOOL)
        return ld_fail(L, n, "a step's condition must be a condition (bool), got %s",
                       expr_type_name(expr_type(*out)));
    /* A condition that names a step depends on the partial match: it is
     * evaluated per partial match, the others once per event. */
    p->steps[si].refs = ps.refs;
    L->spec->pattern_lower_calls += expr_lower_calls(*out);
    return 0;
}

/* ---- one step ---- */

/* Which of two words scalar n is: 0 or 1; -1 (an error saying `why`) otherwise. */
static int pick(loader_t *L, const ynode_t *n, const char *what, const char *a, const char *b,
                const char *why)
{
    if (ld_want_scalar(L, n, what)) return -1;
    if (n->len == strlen(a) && !memcmp(n->value, a, n->len)) return 0;
    if (n->len == strlen(b) && !memcmp(n->value, b, n->len)) return 1;
    ld_fail(L, n, "%s, got '%.*s'", why, Q(n));
    return -1;
}

static int parse_bool(loader_t *L, const ynode_t *n, const char *what, bool *out)
{
    char why[64];
    snprintf(why, sizeof why, "%s must be true or false", what);
    int k = pick(L, n, what, "true", "false", why);
    if (k < 0) return L->rc;
    *out = k == 0;
    return 0;
}

static int load_step(loader_t *L, spec_pattern_t *p, uint32_t si, const ynode_t *item)
{
    static const char *const keys[] = {"when",     "not",        "times", "one_or_more",
                                       "optional", "contiguity", "gap",   NULL};
    spec_step_t *st = &p->steps[si];
    st->min = st->max = 1;
    const ynode_t *k = ynode_key(item, 0), *v = ynode_val(item, 0);
    if (v->kind == YNODE_SCALAR) return compile_cond(L, p, si, v, &st->cond);
    char where[96];
    snprintf(where, sizeof where, "step '%s'", st->name);
    if (ld_want_map(L, v, where) ||
        ld_check_keys(L, v, keys, where,
                      "when, not, times, one_or_more, optional, contiguity or gap"))
        return L->rc;
    const ynode_t *when = ynode_get(v, "when"), *not = ynode_get(v, "not"),
                  *times = ynode_get(v, "times"), *more = ynode_get(v, "one_or_more"),
                  *opt = ynode_get(v, "optional"), *cont = ynode_get(v, "contiguity"),
                  *gap = ynode_get(v, "gap");
    if (when && not )
        return ld_fail(L, not,
                       "step '%s' has both when and not; a step either must match or must not",
                       st->name);
    if (!when && !not )
        return ld_fail(L, k, "step '%s' needs when: CONDITION or not: CONDITION", st->name);
    st->negated = not != NULL;
    if (st->negated) {
        const ynode_t *bad = times ? times : more ? more : opt ? opt : cont;
        if (bad)
            return ld_fail(L, bad,
                           "a not step takes no times, one_or_more, optional or contiguity: it "
                           "says that no event matches between its neighbours");
    }
    if (times && more)
        return ld_fail(L, more, "step '%s' has both times and one_or_more", st->name);
    if (times) {
        if (ld_want_scalar(L, times, "times")) return L->rc;
        long n = 0;
        int ok = times->len > 0 && times->len <= 4;
        for (size_t i = 0; ok && i < times->len; i++) {
            ok = times->value[i] >= '0' && times->value[i] <= '9';
            n = n * 10 + (times->value[i] - '0');
        }
        if (!ok || n < 1 || n > MAX_TIMES)
            return ld_fail(L, times, "times must be an integer from 1 to %d, got '%.*s'", MAX_TIMES,
                           Q(times));
        st->min = st->max = (uint32_t)n;
    }
    bool b = false;
    if (more) {
        if (parse_bool(L, more, "one_or_more", &b)) return L->rc;
        if (b) st->max = SPEC_STEP_MANY;
    }
    if (opt) {
        if (parse_bool(L, opt, "optional", &b)) return L->rc;
        if (b && st->max > 1 && st->max != SPEC_STEP_MANY) st->full = st->max;
        if (b) st->min = 0;
    }
    if (cont) {
        int k =
            pick(L, cont, "contiguity", "strict", "relaxed",
                 "contiguity must be strict (the key's very next event) or relaxed (skip events "
                 "till one matches)");
        if (k < 0) return L->rc;
        st->strict = k == 0;
    }
    if (gap && ld_parse_duration_node(L, gap, "gap", 0, &st->gap_ms)) return L->rc;
    if (gap && si == 0)
        return ld_fail(L, gap, "the first step has no previous event to keep a gap to");
    return compile_cond(L, p, si, st->negated ? not : when, &st->cond);
}

/* The rules that keep a sequence's meaning clear (see the file comment). */
static int check_sequence(loader_t *L, spec_pattern_t *p, const ynode_t *seq)
{
    for (uint32_t i = 0; i < p->nsteps; i++) {
        const spec_step_t *st = &p->steps[i];
        const ynode_t *at = seq->items[i];
        if (i == 0 && st->negated)
            return ld_fail(L, at,
                           "a pattern cannot start with a not step: absence before the first event "
                           "has no start; put it after a step");
        if (i == 0 && st->min == 0)
            return ld_fail(L, at,
                           "the first step cannot be optional: a match starts with its event");
        if (i == 0 && st->strict)
            return ld_fail(L, at,
                           "the first step cannot be strict: contiguity is with the event before "
                           "a step, and the first has none");
        if (i + 1 == p->nsteps && !st->negated && st->min == 0)
            return ld_fail(L, at,
                           "the last step cannot be optional: a match completes as soon as it can, "
                           "so it would never take an event");
        if (st->negated && i > 0 && p->steps[i - 1].negated)
            return ld_fail(L, at,
                           "two not steps in a row: combine their conditions with 'or' in one not "
                           "step");
        if (st->negated && p->steps[i - 1].min == 0)
            return ld_fail(L, at,
                           "a not step cannot follow an optional step (between which events?)");
        if (st->negated && i + 1 < p->nsteps && p->steps[i + 1].min == 0)
            return ld_fail(L, at,
                           "a not step cannot precede an optional step (between which events?)");
    }
    return 0;
}

static int load_emit(loader_t *L, spec_pattern_t *p, const ynode_t *em)
{
    if (ld_want_map(L, em, "emit")) return L->rc;
    if (em->n == 0) return ld_fail(L, em, "emit of pattern '%s' is empty", p->name);
    spec_aggregate_t *o = &p->out;
    o->select = weir_calloc(em->n, sizeof *o->select);
    pscope_t ps = {L, p, 0, 1, 0};
    expr_scope_t scope = {.resolve = resolve_pattern_scope,
                          .names = names_pattern_scope,
                          .ctx = &ps,
                          .agg_mode = EXPR_AGGS_NONE,
                          .where = "an emit expression"};
    for (uint32_t j = 0; j < em->n; j++) {
        const ynode_t *k = ynode_key(em, j), *v = ynode_val(em, j);
        if (ld_check_name(L, k, "emit field")) return L->rc;
        static const char *const reserved[] = {"pattern", "partition", "key",    "start",
                                               "time",    "watermark", "events", NULL};
        if (ld_check_reserved(L, k, reserved, "emit field")) return L->rc;
        if (ld_is_empty(v)) return ld_fail(L, k, "emit field '%.*s' has no expression", Q(k));
        if (ld_want_scalar(L, v, "an emit expression")) return L->rc;
        spec_select_t *se = &o->select[o->nselect++];
        se->name = weir_strndup(k->value, k->len);
        if (ld_compile_node(L, v, &scope, &se->expr)) return L->rc;
        se->type = expr_type(se->expr);
        L->spec->pattern_lower_calls += expr_lower_calls(se->expr);
    }
    p->has_emit = true;
    return 0;
}

static int load_pattern(loader_t *L, spec_pattern_t *p, const ynode_t *k, const ynode_t *v)
{
    static const char *const keys[] = {"sequence", "within", "order", "then", "emit", NULL};
    char where[96];
    snprintf(where, sizeof where, "pattern '%.*s'", Q(k));
    p->name = weir_strndup(k->value, k->len);
    p->pos = (spec_pos_t){k->line, k->col};
    p->out.name = weir_strdup(p->name);
    p->out.pos = p->pos;
    if (ld_want_map(L, v, where) ||
        ld_check_keys(L, v, keys, where, "sequence, within, order, then or emit"))
        return L->rc;
    const ynode_t *seq = ynode_get(v, "sequence"), *within = ynode_get(v, "within"),
                  *order = ynode_get(v, "order"), *then = ynode_get(v, "then"),
                  *emit = ynode_get(v, "emit");
    if (!seq) return ld_fail(L, k, "pattern '%s' is missing required key 'sequence'", p->name);
    if (seq->kind != YNODE_SEQ)
        return ld_fail(L, seq, "sequence must be a list of steps (- NAME: condition), not %s",
                       ld_kind_name(seq));
    if (seq->n == 0) return ld_fail(L, seq, "sequence of pattern '%s' is empty", p->name);
    if (seq->n > MAX_STEPS) return ld_fail(L, seq, "a pattern has at most %d steps", MAX_STEPS);
    if (!within)
        return ld_fail(L, k,
                       "pattern '%s' is missing required key 'within': it bounds how long a "
                       "partial match is kept",
                       p->name);
    if (ld_parse_duration_node(L, within, "within", 0, &p->within_ms)) return L->rc;
    if (p->within_ms > L->spec->max_within_ms) L->spec->max_within_ms = p->within_ms;
    p->steps = weir_calloc(seq->n, sizeof *p->steps);
    /* Names first, so a condition naming a later step is told so. */
    for (uint32_t i = 0; i < seq->n; i++) {
        const ynode_t *item = seq->items[i];
        if (item->kind != YNODE_MAP || item->n != 1)
            return ld_fail(L, item,
                           "a step is one 'NAME: condition' (or 'NAME:' with when/not and options) "
                           "per list item");
        const ynode_t *sk = ynode_key(item, 0);
        if (ld_check_name(L, sk, "step")) return L->rc;
        if (find_step(p, sk->value, sk->len) >= 0)
            return ld_fail(L, sk, "step '%.*s' is named twice in pattern '%s'", Q(sk), p->name);
        p->nsteps = i + 1;
        p->steps[i].name = weir_strndup(sk->value, sk->len);
        p->steps[i].pos = (spec_pos_t){sk->line, sk->col};
    }
    for (uint32_t i = 0; i < seq->n; i++)
        if (load_step(L, p, i, seq->items[i])) return L->rc;
    if (check_sequence(L, p, seq)) return L->rc;
    if (order) {
        int k = pick(L, order, "order", "time", "arrival",
                     "order must be time (the key's events by event time, once the watermark "
                     "passes them) or arrival (in log order, at once)");
        if (k < 0) return L->rc;
        p->order = k == 0 ? SPEC_ORDER_TIME : SPEC_ORDER_ARRIVAL;
    }
    if (then) {
        if (ld_want_scalar(L, then, "then")) return L->rc;
        if (then->len == 0) return ld_fail(L, then, "then needs a decision name, such as block");
        if (p->order != SPEC_ORDER_ARRIVAL)
            return ld_fail(L, then,
                           "then: decides the event that completes a match, so pattern '%s' needs "
                           "order: arrival (in time order a match is found once the watermark "
                           "passes it, after that event was decided); or use emit: or matches()",
                           p->name);
        if (p->steps[p->nsteps - 1].negated)
            return ld_fail(L, then,
                           "then: needs an event that completes the match; pattern '%s' ends with "
                           "a not step, which completes on the watermark: use emit:",
                           p->name);
        p->then = weir_strndup(then->value, then->len);
    }
    if (emit && load_emit(L, p, emit)) return L->rc;
    return 0;
}

int ld_load_patterns(loader_t *L, const ynode_t *root)
{
    spec_t *s = L->spec;
    const ynode_t *m = ynode_get(root, "patterns");
    if (!m || ld_is_empty(m)) return 0;
    if (ld_want_map(L, m, "patterns")) return L->rc;
    s->patterns = weir_calloc(m->n ? m->n : 1, sizeof *s->patterns);
    for (uint32_t i = 0; i < m->n; i++) {
        const ynode_t *k = ynode_key(m, i);
        if (ld_check_name(L, k, "pattern")) return L->rc;
        s->npatterns = i + 1;
        if (load_pattern(L, &s->patterns[i], k, ynode_val(m, i))) return L->rc;
    }
    return 0;
}

int ld_resolve_pattern_flag(loader_t *L, const char *name, size_t len, expr_ref_t *ref, char *err,
                            size_t errlen)
{
    if (len < 8 || memcmp(name, "pattern.", 8) != 0) return WEIR_ENOENT;
    int pi = ld_find_pattern(L->spec, name + 8, len - 8);
    if (pi < 0)
        return weir_errf(err, errlen, WEIR_EINVAL, "no pattern named '%.*s' in this spec",
                         (int)(len - 8), name + 8);
    if (L->spec->patterns[pi].order != SPEC_ORDER_ARRIVAL)
        return weir_errf(
            err, errlen, WEIR_EINVAL,
            "pattern.%.*s is true for the event that completes a match, so the "
            "pattern needs order: arrival; count its matches with matches(%.*s) over D",
            (int)(len - 8), name + 8, (int)(len - 8), name + 8);
    if (L->spec->patterns[pi].steps[L->spec->patterns[pi].nsteps - 1].negated)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "pattern '%.*s' ends with a not step: no event completes it; count its "
                         "matches with matches(%.*s) over D",
                         (int)(len - 8), name + 8, (int)(len - 8), name + 8);
    ref->kind = EXPR_REF_FEATURE;
    ref->slot = L->spec->nfeatures + (uint32_t)pi;
    ref->type = EXPR_BOOL;
    return 0;
}

static int resolve_flag_only(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                             size_t errlen)
{
    return ld_resolve_pattern_flag(ctx, name, len, ref, err, errlen);
}

int ld_pattern_rules(loader_t *L)
{
    spec_t *s = L->spec;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->npatterns; i++)
        n += s->patterns[i].then != NULL;
    if (!n) return 0;
    spec_decision_t *d = weir_calloc(n + s->ndecisions, sizeof *d);
    uint32_t k = 0;
    expr_scope_t scope = {.resolve = resolve_flag_only, .ctx = L, .agg_mode = EXPR_AGGS_NONE};
    for (uint32_t i = 0; i < s->npatterns; i++) {
        const spec_pattern_t *p = &s->patterns[i];
        if (!p->then) continue;
        char text[160], msg[256];
        snprintf(text, sizeof text, "pattern.%s", p->name);
        uint32_t pos;
        int rc = expr_compile(text, strlen(text), &scope, &d[k].when, &pos, msg, sizeof msg);
        weir_assert(rc == 0); /* the name was checked when the pattern loaded */
        d[k].then = weir_strdup(p->then);
        snprintf(msg, sizeof msg, "pattern %s", p->name);
        d[k].reason = weir_strdup(msg);
        d[k].pos = p->pos;
        k++;
    }
    if (s->ndecisions) memcpy(d + k, s->decisions, s->ndecisions * sizeof *d);
    weir_free(s->decisions);
    s->decisions = d;
    s->ndecisions += n;
    return 0;
}

int ld_check_outputs(loader_t *L)
{
    const spec_t *s = L->spec;
    for (uint32_t i = 0; i < s->npatterns; i++) {
        const spec_pattern_t *p = &s->patterns[i];
        if (!p->has_emit) continue;
        ynode_t at = {.line = p->pos.line, .col = p->pos.col};
        const char *clash = strcmp(p->name, "late") == 0 ? "the late events' output" : NULL;
        for (uint32_t a = 0; !clash && a < s->naggregates; a++)
            if (!strcmp(s->aggregates[a].name, p->name)) clash = "an aggregate's output";
        for (uint32_t d = 0; !clash && d < s->ndecisions; d++)
            if (s->decisions[d].emit && !strcmp(s->decisions[d].emit, p->name))
                clash = "a decision rule's emit";
        if (clash)
            return ld_fail(L, &at, "pattern '%s' emits to DATA/outputs/%s.ndjson, which is also %s",
                           p->name, p->name, clash);
    }
    return 0;
}

void spec_patterns_free(spec_t *s)
{
    for (uint32_t i = 0; i < s->npatterns; i++) {
        spec_pattern_t *p = &s->patterns[i];
        for (uint32_t j = 0; j < p->nsteps; j++) {
            weir_free(p->steps[j].name);
            expr_free(p->steps[j].cond);
        }
        weir_free(p->steps);
        weir_free(p->binds);
        weir_free(p->then);
        weir_free(p->name);
        weir_free(p->out.name);
        for (uint32_t j = 0; j < p->out.nselect; j++) {
            weir_free(p->out.select[j].name);
            expr_free(p->out.select[j].expr);
        }
        weir_free(p->out.select);
    }
    weir_free(s->patterns);
}

const spec_pattern_t *spec_pattern_of(const spec_t *s, const spec_aggregate_t *agg)
{
    for (uint32_t i = 0; i < s->npatterns; i++)
        if (agg == &s->patterns[i].out) return &s->patterns[i];
    return NULL;
}
