/* spec.c — loads a pipeline spec: YAML tree (ydoc.c) → checked, compiled
 * spec_t (spec.h).
 *
 * The loader runs in passes, each of which may stop with the first error it
 * finds, written as "FILE:LINE:COL: message":
 *
 *   1. top-level keys: known, required ones present;
 *   2. pipeline, partitions, sources (fields, key, time, lateness), patterns
 *      (spec_pattern.c: steps and their conditions, before the features,
 *      which may count matches, and the decisions, which may read
 *      pattern.NAME);
 *   3. features: every expression parsed; feature → feature references form
 *      a graph; a cycle is an error that names it (a -> b -> a); otherwise a
 *      depth-first post-order gives the evaluation order, and features are
 *      type-checked and compiled in that order, so each one sees the types of
 *      those it reads;
 *   4. model (inputs must be fields or features), decisions (conditions over
 *      fields, features and `score`), aggregates (windows and selects).
 *
 * Names: fields and features share one namespace (a feature may not have a
 * field's name); names are identifiers and not keywords; `score` is reserved
 * when the spec has a model. */
#include "spec/spec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/fileio.h"
#include "spec/spec_int.h"
#include "spec/ydoc.h"

#define SPEC_MAX_FEATURES 10000

static int fail_pos(loader_t *L, int code, uint32_t line, uint32_t col, const char *fmt, va_list ap)
{
    if (L->rc) return L->rc;
    L->rc = code;
    if (L->err && L->errlen) {
        int n = snprintf(L->err, L->errlen, "%s:%u:%u: ", L->file, line, col);
        if (n >= 0 && (size_t)n < L->errlen) vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
    }
    return code;
}

/* An error at node n. */
int ld_fail(loader_t *L, const ynode_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_pos(L, WEIR_EINVAL, n ? n->line : 1, n ? n->col : 1, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error at byte `offset` of scalar n's value. */
int ld_fail_at(loader_t *L, const ynode_t *n, size_t offset, const char *fmt, ...)
{
    uint32_t line, col;
    ydoc_scalar_pos(L->doc, n, offset, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_pos(L, WEIR_EINVAL, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

const char *ld_kind_name(const ynode_t *n)
{
    return n->kind == YNODE_MAP ? "a mapping" : n->kind == YNODE_SEQ ? "a list" : "a text";
}

int ld_want_scalar(loader_t *L, const ynode_t *n, const char *what)
{
    if (n->kind != YNODE_SCALAR)
        return ld_fail(L, n, "%s must be a text, not %s", what, ld_kind_name(n));
    return 0;
}

int ld_want_map(loader_t *L, const ynode_t *n, const char *what)
{
    if (n->kind != YNODE_MAP) {
        if (n->kind == YNODE_SCALAR && n->len == 0 && n->style == YSTYLE_PLAIN)
            return ld_fail(L, n, "%s is empty; it must be a mapping", what);
        return ld_fail(L, n, "%s must be a mapping (name: value lines), not %s", what,
                       ld_kind_name(n));
    }
    return 0;
}

int ld_is_empty(const ynode_t *n)
{
    return n->kind == YNODE_SCALAR && n->len == 0 && n->style == YSTYLE_PLAIN;
}

/* Closest of a NULL-terminated list of words, for "did you mean". */
static const char *closest(const char *s, size_t len, const char *const *words)
{
    const char *best = NULL;
    int bestd = len <= 3 ? 2 : 3;
    for (size_t i = 0; words[i]; i++) {
        int d = expr_edit_distance(s, len, words[i], strlen(words[i]));
        if (d < bestd) {
            bestd = d;
            best = words[i];
        }
    }
    return best;
}

/* Checks that every key of map m is in words; `where` names the map. */
int ld_check_keys(loader_t *L, const ynode_t *m, const char *const *words, const char *where,
                  const char *expected)
{
    for (uint32_t i = 0; i < m->n; i++) {
        const ynode_t *k = ynode_key(m, i);
        int known = 0;
        for (size_t w = 0; words[w] && !known; w++)
            known = strlen(words[w]) == k->len && memcmp(words[w], k->value, k->len) == 0;
        if (known) continue;
        const char *hint = closest(k->value, k->len, words);
        if (hint)
            return ld_fail(L, k, "unknown key '%.*s' in %s; did you mean '%s'?", Q(k), where, hint);
        return ld_fail(L, k, "unknown key '%.*s' in %s; expected %s", Q(k), where, expected);
    }
    return 0;
}

int ld_check_name(loader_t *L, const ynode_t *k, const char *what)
{
    if (!expr_is_identifier(k->value, k->len)) {
        if (expr_is_keyword(k->value, k->len))
            return ld_fail(L, k, "%s name '%.*s' is a keyword of the expression language", what,
                           Q(k));
        return ld_fail(
            L, k,
            "%s name '%.*s' is not a valid name: use letters, digits and '_', not starting "
            "with a digit",
            what, Q(k));
    }
    return 0;
}

int spec_row_column(const char *name, size_t len)
{
    static const char *const cols[] = {"partition", "offset", "key", "time", "late"};
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        if (strlen(cols[i]) == len && !memcmp(cols[i], name, len)) return 1;
    return 0;
}

int ld_check_reserved(loader_t *L, const ynode_t *k, const char *const *reserved, const char *what)
{
    for (size_t r = 0; reserved[r]; r++)
        if (strlen(reserved[r]) == k->len && !memcmp(reserved[r], k->value, k->len))
            return ld_fail(L, k, "%s '%.*s' is written by weir itself; choose another name", what,
                           Q(k));
    return 0;
}

int ld_parse_duration_node(loader_t *L, const ynode_t *n, const char *what, int allow_zero,
                           int64_t *ms)
{
    if (ld_want_scalar(L, n, what)) return L->rc;
    int rc = expr_parse_duration(n->value, n->len, ms);
    if (rc == WEIR_ERANGE) return ld_fail(L, n, "%s '%.*s' is too large", what, Q(n));
    if (rc)
        return ld_fail(
            L, n,
            "bad duration '%.*s' for %s: expected an integer followed by ms, s, m, h or d "
            "(500ms, 30s, 10m, 1h, 7d)",
            Q(n), what);
    if (*ms == 0 && !allow_zero) return ld_fail(L, n, "%s must be longer than 0", what);
    if (*ms > SPEC_MAX_DURATION_MS)
        return ld_fail(L, n, "%s '%.*s' is longer than 100 years", what, Q(n));
    return 0;
}

/* ---- scopes for expressions ---- */

const spec_source_t *ld_main_source(const loader_t *L)
{
    return L->spec->nsources ? &L->spec->sources[0] : NULL;
}

int ld_find_field(const spec_source_t *src, const char *name, size_t len)
{
    if (!src) return -1;
    for (uint32_t i = 0; i < src->nfields; i++)
        if (strlen(src->fields[i].name) == len && memcmp(src->fields[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int ld_find_feature(const spec_t *s, const char *name, size_t len)
{
    for (uint32_t i = 0; i < s->nfeatures; i++)
        if (s->features[i].name && strlen(s->features[i].name) == len &&
            memcmp(s->features[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int ld_resolve_field_ref(const loader_t *L, const char *name, size_t len, expr_ref_t *ref)
{
    int f = ld_find_field(ld_main_source(L), name, len);
    if (f < 0) return WEIR_ENOENT;
    ref->kind = EXPR_REF_FIELD;
    ref->slot = (uint32_t)f;
    ref->type = ld_main_source(L)->fields[f].type;
    return 0;
}

/* Inside an aggregate's argument: raw event fields only. */
static int resolve_arg(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                       size_t errlen)
{
    loader_t *L = ctx;
    if (ld_resolve_field_ref(L, name, len, ref) == 0) return 0;
    if (ld_find_feature(L->spec, name, len) >= 0)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "feature '%.*s' cannot be used inside an aggregate: aggregates read the "
                         "event's fields",
                         (int)len, name);
    return WEIR_ENOENT;
}

void ld_names_fields(void *ctx, void (*emit)(void *, const char *), void *ectx)
{
    const loader_t *L = ctx;
    const spec_source_t *src = ld_main_source(L);
    for (uint32_t i = 0; src && i < src->nfields; i++)
        emit(ectx, src->fields[i].name);
}

static void names_all(void *ctx, void (*emit)(void *, const char *), void *ectx)
{
    const loader_t *L = ctx;
    ld_names_fields(ctx, emit, ectx);
    for (uint32_t i = 0; i < L->spec->nfeatures; i++)
        if (L->spec->features[i].name) emit(ectx, L->spec->features[i].name);
    if (L->spec->has_model) {
        emit(ectx, "score");
        emit(ectx, "class");
    }
}

/* In features: fields and (already compiled) features. */
static int resolve_feature_scope(void *ctx, const char *name, size_t len, expr_ref_t *ref,
                                 char *err, size_t errlen)
{
    loader_t *L = ctx;
    (void)err;
    (void)errlen;
    if (ld_resolve_field_ref(L, name, len, ref) == 0) return 0;
    int f = ld_find_feature(L->spec, name, len);
    if (f < 0) return WEIR_ENOENT;
    weir_assert(L->compiled[f]); /* the evaluation order puts dependencies first */
    ref->kind = EXPR_REF_FEATURE;
    ref->slot = (uint32_t)f;
    ref->type = L->spec->features[f].type;
    return 0;
}

/* In decisions: fields, features, and the model's `score`, `scores[i]`
 * and `class` (a field or feature named class wins over the model's). */
static int resolve_decision_scope(void *ctx, const char *name, size_t len, expr_ref_t *ref,
                                  char *err, size_t errlen)
{
    loader_t *L = ctx;
    int is_score = len == 5 && memcmp(name, "score", 5) == 0;
    int is_scores = len > 7 && memcmp(name, "scores[", 7) == 0;
    if ((is_score || is_scores) && !L->spec->has_model)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "'%.*s' is the model's score, and this spec has no model", (int)len, name);
    if (is_score) {
        ref->kind = EXPR_REF_EXTRA;
        ref->slot = SPEC_EXTRA_SCORE;
        ref->type = EXPR_FLOAT;
        return 0;
    }
    if (is_scores) {
        unsigned idx = (unsigned)strtoul(name + 7, NULL, 10);
        if (idx >= SPEC_MAX_SCORES)
            return weir_errf(err, errlen, WEIR_EINVAL, "scores[%u]: at most %d outputs", idx,
                             SPEC_MAX_SCORES);
        ref->kind = EXPR_REF_EXTRA;
        ref->slot = SPEC_EXTRA_SCORES + idx;
        ref->type = EXPR_FLOAT;
        if (idx + 1 > L->spec->max_score_index) L->spec->max_score_index = idx + 1;
        return 0;
    }
    if (ld_resolve_field_ref(L, name, len, ref) == 0) return 0;
    int rc = ld_resolve_pattern_flag(L, name, len, ref, err, errlen);
    if (rc != WEIR_ENOENT) return rc;
    int f = ld_find_feature(L->spec, name, len);
    if (f >= 0) {
        ref->kind = EXPR_REF_FEATURE;
        ref->slot = (uint32_t)f;
        ref->type = L->spec->features[f].type;
        return 0;
    }
    if (len == 5 && memcmp(name, "class", 5) == 0 && L->spec->has_model) {
        ref->kind = EXPR_REF_EXTRA;
        ref->slot = SPEC_EXTRA_CLASS;
        ref->type = EXPR_INT;
        return 0;
    }
    return WEIR_ENOENT;
}

/* In an aggregate's select, outside aggregate calls: nothing per event. */
static int resolve_select_scope(void *ctx, const char *name, size_t len, expr_ref_t *ref, char *err,
                                size_t errlen)
{
    loader_t *L = ctx;
    if (ld_resolve_field_ref(L, name, len, ref) == 0)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "field '%.*s' must be inside an aggregate call here, such as sum(%.*s) or "
                         "last(%.*s): select runs when the window closes",
                         (int)len, name, (int)len, name, (int)len, name);
    if (ld_find_feature(L->spec, name, len) >= 0)
        return weir_errf(err, errlen, WEIR_EINVAL,
                         "feature '%.*s' cannot be used in an aggregate's select: select runs when "
                         "the window closes, not per event",
                         (int)len, name);
    return WEIR_ENOENT;
}

/* Compiles scalar n as an expression; positions of errors map into the file. */
int ld_compile_node(loader_t *L, const ynode_t *n, const expr_scope_t *scope, expr_t **out)
{
    char msg[512];
    uint32_t pos;
    int rc = expr_compile(n->value, n->len, scope, out, &pos, msg, sizeof msg);
    if (rc) return ld_fail_at(L, n, pos, "%s", msg);
    return 0;
}

/* ---- top level ---- */

static const char *const top_keys[] = {"pipeline",  "partitions",   "sources",
                                       "features",  "aggregates",   "model",
                                       "decisions", "patterns",     "checkpoint_interval",
                                       "guarantee", "online_store", "sinks",
                                       NULL};

static int load_pipeline(loader_t *L, const ynode_t *root)
{
    const ynode_t *n = ynode_get(root, "pipeline");
    if (ld_want_scalar(L, n, "pipeline")) return L->rc;
    if (n->len == 0) return ld_fail(L, n, "pipeline needs a name");
    for (size_t i = 0; i < n->len; i++) {
        char c = n->value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return ld_fail(
                L, n, "pipeline name '%.*s' may hold only letters, digits, '_', '-' and '.'", Q(n));
    }
    L->spec->pipeline = weir_strndup(n->value, n->len);

    L->spec->partitions = 1;
    n = ynode_get(root, "partitions");
    if (!n) return 0;
    const char *bad = "partitions must be an integer from 1 to %d, got '%.*s'";
    if (n->kind != YNODE_SCALAR)
        return ld_fail(L, n, "partitions must be an integer, not %s", ld_kind_name(n));
    if (n->len == 0 || n->len > 9) return ld_fail(L, n, bad, SPEC_MAX_PARTITIONS, Q(n));
    long v = 0;
    for (size_t i = 0; i < n->len; i++) {
        if (n->value[i] < '0' || n->value[i] > '9')
            return ld_fail(L, n, bad, SPEC_MAX_PARTITIONS, Q(n));
        v = v * 10 + (n->value[i] - '0');
    }
    if (v < 1 || v > SPEC_MAX_PARTITIONS) return ld_fail(L, n, bad, SPEC_MAX_PARTITIONS, Q(n));
    L->spec->partitions = (uint32_t)v;
    return 0;
}

/* checkpoint_interval (default 10 s) and guarantee (default exactly_once):
 * what DESIGN.md "Guarantees" promises for each is in spec.h. */
static int load_recovery(loader_t *L, const ynode_t *root)
{
    L->spec->checkpoint_interval_ms = SPEC_CHECKPOINT_INTERVAL_DEFAULT_MS;
    L->spec->guarantee = SPEC_EXACTLY_ONCE;
    const ynode_t *n = ynode_get(root, "checkpoint_interval");
    if (n &&
        ld_parse_duration_node(L, n, "checkpoint_interval", 1, &L->spec->checkpoint_interval_ms))
        return L->rc;
    n = ynode_get(root, "guarantee");
    if (!n) return 0;
    if (ld_want_scalar(L, n, "guarantee")) return L->rc;
    if (n->len == 12 && memcmp(n->value, "exactly_once", 12) == 0)
        L->spec->guarantee = SPEC_EXACTLY_ONCE;
    else if (n->len == 13 && memcmp(n->value, "at_least_once", 13) == 0)
        L->spec->guarantee = SPEC_AT_LEAST_ONCE;
    else
        return ld_fail(L, n, "guarantee must be exactly_once or at_least_once, got '%.*s'", Q(n));
    return 0;
}

/* f->quoted and f->quoted_mask (spec.h), from its name: bytes, not words,
 * so that they compare with the text's bytes on any host. */
static void quote_name(spec_field_t *f)
{
    unsigned char q[16] = {0}, m[16] = {0};
    if (f->name_len + 2 <= sizeof q) {
        q[0] = '"';
        memcpy(q + 1, f->name, f->name_len);
        q[f->name_len + 1] = '"';
        memset(m, 0xff, f->name_len + 2);
    }
    memcpy(f->quoted, q, sizeof q);
    memcpy(f->quoted_mask, m, sizeof m);
}

/* id and dedup: idempotent ingestion (spec.h). */
static int load_source_id(loader_t *L, const ynode_t *m, spec_source_t *src)
{
    const ynode_t *id = ynode_get(m, "id"), *dd = ynode_get(m, "dedup");
    if (!id) {
        if (dd) return ld_fail(L, dd, "dedup needs an id: the field that names an event");
        return 0;
    }
    if (ld_want_scalar(L, id, "id")) return L->rc;
    int f = ld_find_field(src, id->value, id->len);
    if (f < 0) return ld_fail(L, id, "id field '%.*s' is not declared in fields", Q(id));
    if (src->fields[f].type != EXPR_STRING && src->fields[f].type != EXPR_INT)
        return ld_fail(L, id, "id field '%.*s' must be a string or an int, not %s", Q(id),
                       expr_type_name(src->fields[f].type));
    if ((uint32_t)f == src->key_slot)
        return ld_fail(L, id, "id field '%.*s' is the key; the id names one event of a key", Q(id));
    /* (load_recovery ran first) A duplicate is answered with its first's
     * decision record; under at_least_once a restart appends the events
     * after the checkpoint's decisions again, so a first may have two. */
    if (L->spec->guarantee == SPEC_AT_LEAST_ONCE)
        return ld_fail(L, id,
                       "id (idempotent ingestion) needs guarantee: exactly_once; under "
                       "at_least_once a restart decides events again, and a retry would have two "
                       "decisions of its first to answer with");
    src->has_id = 1;
    src->id_slot = (uint32_t)f;
    src->dedup_ms = SPEC_DEDUP_DEFAULT_MS;
    if (dd && ld_parse_duration_node(L, dd, "dedup", 0, &src->dedup_ms)) return L->rc;
    return 0;
}

static int load_source(loader_t *L, const ynode_t *k, const ynode_t *m, spec_source_t *src)
{
    static const char *const keys[] = {"key",        "time", "lateness", "fields", "ttl",
                                       "max_future", "id",   "dedup",    "kafka",  NULL};
    char where[96];
    snprintf(where, sizeof where, "source '%.*s'", Q(k));
    src->name = weir_strndup(k->value, k->len);
    src->pos = (spec_pos_t){k->line, k->col};
    if (ld_want_map(L, m, where) ||
        ld_check_keys(L, m, keys, where,
                      "key, time, lateness, fields, ttl, max_future, id, dedup or kafka"))
        return L->rc;
    for (size_t i = 0; i < 4; i++) {
        if (i == 2) continue; /* lateness is optional (and ttl and max_future) */
        if (!ynode_get(m, keys[i]))
            return ld_fail(L, k, "source '%.*s' is missing required key '%s'", Q(k), keys[i]);
    }
    const ynode_t *fields = ynode_get(m, "fields");
    if (ld_want_map(L, fields, "fields")) return L->rc;
    if (fields->n == 0) return ld_fail(L, fields, "fields of source '%.*s' is empty", Q(k));
    src->fields = weir_calloc(fields->n, sizeof *src->fields);
    for (uint32_t i = 0; i < fields->n; i++) {
        const ynode_t *fk = ynode_key(fields, i), *fv = ynode_val(fields, i);
        if (ld_check_name(L, fk, "field")) return L->rc;
        if (ld_want_scalar(L, fv, "a field's type")) return L->rc;
        spec_field_t *f = &src->fields[src->nfields++];
        f->name = weir_strndup(fk->value, fk->len);
        f->name_len = (uint32_t)strlen(f->name);
        quote_name(f);
        f->slot = i;
        f->pos = (spec_pos_t){fk->line, fk->col};
        if (expr_type_parse(fv->value, fv->len, &f->type))
            return ld_fail(L, fv,
                           "unknown type '%.*s' for field '%s'; expected string, int, float, "
                           "bool or time",
                           Q(fv), f->name);
    }
    const ynode_t *key = ynode_get(m, "key"), *time = ynode_get(m, "time");
    if (ld_want_scalar(L, key, "key") || ld_want_scalar(L, time, "time")) return L->rc;
    int f = ld_find_field(src, key->value, key->len);
    if (f < 0) return ld_fail(L, key, "key field '%.*s' is not declared in fields", Q(key));
    if (src->fields[f].type != EXPR_STRING && src->fields[f].type != EXPR_INT)
        return ld_fail(L, key, "key field '%.*s' must be a string or an int, not %s", Q(key),
                       expr_type_name(src->fields[f].type));
    src->key_slot = (uint32_t)f;
    f = ld_find_field(src, time->value, time->len);
    if (f < 0) return ld_fail(L, time, "time field '%.*s' is not declared in fields", Q(time));
    if (src->fields[f].type != EXPR_TIME)
        return ld_fail(L, time, "time field '%.*s' must have type time, not %s", Q(time),
                       expr_type_name(src->fields[f].type));
    src->time_slot = (uint32_t)f;
    const ynode_t *late = ynode_get(m, "lateness");
    if (late && ld_parse_duration_node(L, late, "lateness", 1, &src->lateness_ms)) return L->rc;
    const ynode_t *ttl = ynode_get(m, "ttl");
    if (ttl && ld_parse_duration_node(L, ttl, "ttl", 0, &src->ttl_ms)) return L->rc;
    const ynode_t *mf = ynode_get(m, "max_future");
    src->max_future_ms = SPEC_MAX_FUTURE_DEFAULT_MS;
    if (mf && mf->kind == YNODE_SCALAR && mf->len == 4 && memcmp(mf->value, "none", 4) == 0)
        src->max_future_ms = 0;
    else if (mf && ld_parse_duration_node(L, mf, "max_future", 0, &src->max_future_ms))
        return L->rc;
    return load_source_id(L, m, src) || ld_load_kafka(L, m, src);
}

static int load_sources(loader_t *L, const ynode_t *root)
{
    const ynode_t *m = ynode_get(root, "sources");
    if (ld_want_map(L, m, "sources")) return L->rc;
    if (m->n == 0) return ld_fail(L, m, "sources is empty; a pipeline needs one source");
    if (m->n > 1)
        return ld_fail(L, ynode_key(m, 1),
                       "only one source per pipeline is supported yet; found a second, '%.*s'",
                       Q(ynode_key(m, 1)));
    L->spec->sources = weir_calloc(m->n, sizeof *L->spec->sources);
    for (uint32_t i = 0; i < m->n; i++) {
        const ynode_t *k = ynode_key(m, i);
        if (ld_check_name(L, k, "source")) return L->rc;
        L->spec->nsources++;
        if (load_source(L, k, ynode_val(m, i), &L->spec->sources[i])) return L->rc;
    }
    return 0;
}

/* ---- features ---- */

static int is_aggregate_call(const expr_ast_t *n)
{
    static const char *const aggs[] = {"count",
                                       "sum",
                                       "avg",
                                       "min",
                                       "max",
                                       "stddev",
                                       "variance",
                                       "first",
                                       "last",
                                       "distinct",
                                       "approx_distinct",
                                       "approx_quantile",
                                       NULL};
    for (size_t i = 0; aggs[i]; i++) {
        if (strlen(aggs[i]) != n->name.len || memcmp(aggs[i], n->name.ptr, n->name.len)) continue;
        if (i == 3 || i == 4) return n->nargs < 2 || n->has_over; /* min/max */
        return 1;
    }
    return 0;
}

/* Collects the features that n reads outside aggregate arguments. */
static void collect_deps(loader_t *L, uint32_t self, const expr_ast_t *n, uint32_t *cap)
{
    if (n->kind == AST_NAME) {
        int f = ld_find_feature(L->spec, n->name.ptr, n->name.len);
        if (f < 0 || ld_find_field(ld_main_source(L), n->name.ptr, n->name.len) >= 0) return;
        for (uint32_t i = 0; i < L->ndeps[self]; i++)
            if (L->deps[self][i] == (uint32_t)f) return;
        if (L->ndeps[self] == *cap) {
            *cap = *cap ? *cap * 2 : 4;
            L->deps[self] = weir_realloc(L->deps[self], sizeof(uint32_t) * *cap);
        }
        L->deps[self][L->ndeps[self]++] = (uint32_t)f;
        return;
    }
    if (n->kind == AST_CALL && is_aggregate_call(n)) return;
    for (uint32_t i = 0; i < n->nargs; i++)
        collect_deps(L, self, n->args[i], cap);
}

/* Depth-first post-order over the dependency graph, iterative (a long chain
 * of features must not exhaust the C stack). Fails on a cycle, naming it. */
static int order_features(loader_t *L)
{
    spec_t *s = L->spec;
    uint32_t n = s->nfeatures;
    uint8_t *color = weir_calloc(n ? n : 1, 1); /* 0 new, 1 on the path, 2 done */
    uint32_t *path = weir_malloc(sizeof(uint32_t) * (n ? n : 1));
    uint32_t *edge = weir_malloc(sizeof(uint32_t) * (n ? n : 1));
    uint32_t norder = 0;
    s->feature_order = weir_calloc(n ? n : 1, sizeof(uint32_t));
    for (uint32_t r = 0; r < n && !L->rc; r++) {
        if (color[r]) continue;
        uint32_t depth = 0;
        path[depth] = r;
        edge[depth++] = 0;
        color[r] = 1;
        while (depth && !L->rc) {
            uint32_t u = path[depth - 1];
            if (edge[depth - 1] < L->ndeps[u]) {
                uint32_t v = L->deps[u][edge[depth - 1]++];
                if (color[v] == 0) {
                    color[v] = 1;
                    path[depth] = v;
                    edge[depth++] = 0;
                } else if (color[v] == 1) {
                    /* The cycle is the path from v to u, then back to v. */
                    weir_buf_t b = WEIR_BUF_INIT;
                    uint32_t start = 0;
                    while (path[start] != v)
                        start++;
                    for (uint32_t i = start; i < depth; i++) {
                        buf_append_str(&b, s->features[path[i]].name);
                        buf_append_str(&b, " -> ");
                    }
                    buf_append_str(&b, s->features[v].name);
                    buf_append(&b, "", 1);
                    /* Point at the name of the feature the cycle starts from. */
                    ynode_t at = {.line = s->features[v].pos.line, .col = s->features[v].pos.col};
                    ld_fail(L, &at, "cycle between derived features: %s", b.data);
                    buf_free(&b);
                }
            } else {
                color[u] = 2;
                s->feature_order[norder++] = u;
                depth--;
            }
        }
    }
    weir_free(color);
    weir_free(path);
    weir_free(edge);
    return L->rc;
}

static int pattern_index(void *ctx, const char *name, size_t len)
{
    const loader_t *L = ctx;
    return ld_find_pattern(L->spec, name, len);
}

static int load_features(loader_t *L, const ynode_t *root)
{
    spec_t *s = L->spec;
    const ynode_t *m = ynode_get(root, "features");
    if (!m) return 0;
    if (ld_is_empty(m)) return 0;
    if (ld_want_map(L, m, "features")) return L->rc;
    if (m->n > SPEC_MAX_FEATURES) return ld_fail(L, m, "more than %d features", SPEC_MAX_FEATURES);
    uint32_t n = m->n;
    s->features = weir_calloc(n ? n : 1, sizeof *s->features);
    L->feat_nodes = weir_calloc(n ? n : 1, sizeof *L->feat_nodes);
    L->feat_asts = weir_calloc(n ? n : 1, sizeof *L->feat_asts);
    L->deps = weir_calloc(n ? n : 1, sizeof *L->deps);
    L->ndeps = weir_calloc(n ? n : 1, sizeof *L->ndeps);
    L->compiled = weir_calloc(n ? n : 1, sizeof *L->compiled);
    const spec_source_t *src = ld_main_source(L);
    /* Names first, so that references to later features resolve. */
    for (uint32_t i = 0; i < n; i++) {
        const ynode_t *k = ynode_key(m, i), *v = ynode_val(m, i);
        /* A feature named like a training row's leading column served fine
         * and was refused only when training data was written (weir
         * backfill), after serving. */
        if (ld_check_name(L, k, "feature")) return L->rc;
        if (spec_row_column(k->value, k->len))
            return ld_fail(L, k,
                           "feature '%.*s' is named like a column every training row starts with "
                           "(partition, offset, key, time, late: weir backfill); choose another "
                           "name",
                           Q(k));
        if (ld_find_field(src, k->value, k->len) >= 0)
            return ld_fail(L, k, "feature '%.*s' has the name of a field of source '%s'", Q(k),
                           src->name);
        if (ld_is_empty(v)) return ld_fail(L, k, "feature '%.*s' has no expression", Q(k));
        if (v->kind != YNODE_SCALAR)
            return ld_fail(L, v, "feature '%.*s' must be an expression, not %s", Q(k),
                           ld_kind_name(v));
        s->features[i].name = weir_strndup(k->value, k->len);
        s->features[i].pos = (spec_pos_t){k->line, k->col};
        s->nfeatures = i + 1;
        L->feat_nodes[i] = v;
    }
    for (uint32_t i = 0; i < n; i++) {
        const ynode_t *v = L->feat_nodes[i];
        char msg[512];
        uint32_t pos;
        if (expr_ast_parse(v->value, v->len, &L->feat_asts[i], &pos, msg, sizeof msg))
            return ld_fail_at(L, v, pos, "%s", msg);
        uint32_t cap = 0;
        collect_deps(L, i, expr_ast_root(L->feat_asts[i]), &cap);
    }
    if (order_features(L)) return L->rc;
    expr_scope_t scope = {
        .resolve = resolve_feature_scope,
        .names = names_all,
        .ctx = L,
        .agg_mode = EXPR_AGGS_FEATURE,
        .aggs = &s->aggs,
        .arg_resolve = resolve_arg,
        .arg_names = ld_names_fields,
        .arg_ctx = L,
        .where = "a feature",
        .pattern_index = pattern_index,
    };
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = s->feature_order[k];
        const ynode_t *v = L->feat_nodes[i];
        char msg[512];
        uint32_t pos;
        if (expr_compile_ast(expr_ast_root(L->feat_asts[i]), v->value, v->len, &scope,
                             &s->features[i].expr, &pos, msg, sizeof msg))
            return ld_fail_at(L, v, pos, "%s", msg);
        s->features[i].type = expr_type(s->features[i].expr);
        if (s->features[i].type == EXPR_NULL)
            return ld_fail(L, v, "feature '%s' is always null", s->features[i].name);
        L->compiled[i] = true;
        s->lower_calls += expr_lower_calls(s->features[i].expr);
    }
    for (uint32_t i = 0; i < s->aggs.n; i++) {
        if (s->aggs.v[i].window_ms > s->max_window_ms) s->max_window_ms = s->aggs.v[i].window_ms;
        if (s->aggs.v[i].arg) s->lower_calls += expr_lower_calls(s->aggs.v[i].arg);
    }
    return 0;
}

/* ---- model and decisions ---- */

static int check_score_name(loader_t *L)
{
    const spec_source_t *src = ld_main_source(L);
    int f = ld_find_field(src, "score", 5);
    if (f >= 0) {
        ynode_t at = {.line = src->fields[f].pos.line, .col = src->fields[f].pos.col};
        return ld_fail(L, &at,
                       "the name 'score' is reserved for the model's score; rename this field");
    }
    f = ld_find_feature(L->spec, "score", 5);
    if (f >= 0) {
        ynode_t at = {.line = L->spec->features[f].pos.line, .col = L->spec->features[f].pos.col};
        return ld_fail(L, &at,
                       "the name 'score' is reserved for the model's score; rename this feature");
    }
    return 0;
}

static void dirname_join(const char *file, const char *path, size_t len, char **out)
{
    const char *slash = strrchr(file, '/');
    if (len > 0 && path[0] == '/') {
        *out = weir_strndup(path, len);
        return;
    }
    size_t dl = slash ? (size_t)(slash - file) + 1 : 0;
    char *r = weir_malloc(dl + len + 1);
    memcpy(r, file, dl);
    memcpy(r + dl, path, len);
    r[dl + len] = '\0';
    *out = r;
}

static int load_model(loader_t *L, const ynode_t *root)
{
    static const char *const keys[] = {"path", "inputs", NULL};
    spec_t *s = L->spec;
    const ynode_t *m = ynode_get(root, "model");
    if (!m) return 0;
    if (ld_want_map(L, m, "model") || ld_check_keys(L, m, keys, "model", "path or inputs"))
        return L->rc;
    const ynode_t *path = ynode_get(m, "path"), *inputs = ynode_get(m, "inputs");
    const ynode_t *mk = NULL;
    for (uint32_t i = 0; i < root->n; i++)
        if (ynode_val(root, i) == m) mk = ynode_key(root, i);
    if (!path) return ld_fail(L, mk, "model is missing required key 'path'");
    if (!inputs) return ld_fail(L, mk, "model is missing required key 'inputs'");
    if (ld_want_scalar(L, path, "model path")) return L->rc;
    if (path->len == 0) return ld_fail(L, path, "model path is empty");
    s->has_model = true;
    s->model.path = weir_strndup(path->value, path->len);
    dirname_join(s->file, path->value, path->len, &s->model.resolved);
    if (check_score_name(L)) return L->rc;
    if (inputs->kind != YNODE_SEQ)
        return ld_fail(L, inputs, "model inputs must be a list of field and feature names, not %s",
                       ld_kind_name(inputs));
    if (inputs->n == 0) return ld_fail(L, inputs, "model inputs is empty");
    s->model.inputs = weir_calloc(inputs->n, sizeof *s->model.inputs);
    for (uint32_t i = 0; i < inputs->n; i++) {
        const ynode_t *in = inputs->items[i];
        if (ld_want_scalar(L, in, "a model input")) return L->rc;
        for (uint32_t j = 0; j < i; j++)
            if (strlen(s->model.inputs[j].name) == in->len &&
                memcmp(s->model.inputs[j].name, in->value, in->len) == 0)
                return ld_fail(L, in, "model input '%.*s' is listed twice", Q(in));
        spec_input_t *inp = &s->model.inputs[s->model.ninputs++];
        inp->name = weir_strndup(in->value, in->len);
        int f = ld_find_field(ld_main_source(L), in->value, in->len);
        if (f >= 0) {
            inp->kind = SPEC_INPUT_FIELD;
            inp->slot = (uint32_t)f;
            inp->type = ld_main_source(L)->fields[f].type;
        } else if ((f = ld_find_feature(s, in->value, in->len)) >= 0) {
            inp->kind = SPEC_INPUT_FEATURE;
            inp->slot = (uint32_t)f;
            inp->type = s->features[f].type;
        } else {
            char hint[96] = "";
            struct {
                const char *t;
                size_t len;
                const char *best;
                int d;
            } c = {in->value, in->len, NULL, in->len <= 3 ? 2 : 3};
            const spec_source_t *src = ld_main_source(L);
            for (uint32_t j = 0; j < src->nfields + s->nfeatures; j++) {
                const char *nm =
                    j < src->nfields ? src->fields[j].name : s->features[j - src->nfields].name;
                int d = expr_edit_distance(c.t, c.len, nm, strlen(nm));
                if (d < c.d) {
                    c.d = d;
                    c.best = nm;
                }
            }
            if (c.best) snprintf(hint, sizeof hint, "; did you mean '%s'?", c.best);
            return ld_fail(L, in, "model input '%.*s' is not a field or a feature%s", Q(in), hint);
        }
        if (inp->type == EXPR_STRING)
            return ld_fail(L, in,
                           "model input '%.*s' is a string; model inputs must be numbers, bools, "
                           "times or durations",
                           Q(in));
    }
    return 0;
}

static int load_decisions(loader_t *L, const ynode_t *root)
{
    static const char *const keys[] = {"when", "then", "reason", "emit", NULL};
    spec_t *s = L->spec;
    const ynode_t *d = ynode_get(root, "decisions");
    if (!d) return 0;
    if (ld_is_empty(d)) return ld_fail(L, d, "decisions is empty");
    if (d->kind != YNODE_SEQ)
        return ld_fail(L, d, "decisions must be a list of rules (- when: ... then: ...), not %s",
                       ld_kind_name(d));
    if (d->n == 0) return ld_fail(L, d, "decisions is empty");
    s->decisions = weir_calloc(d->n, sizeof *s->decisions);
    expr_scope_t scope = {
        .resolve = resolve_decision_scope,
        .names = names_all,
        .ctx = L,
        .agg_mode = EXPR_AGGS_NONE,
        .where = "a decision rule (define a feature for it)",
    };
    for (uint32_t i = 0; i < d->n; i++) {
        const ynode_t *r = d->items[i];
        if (ld_want_map(L, r, "a decision rule") ||
            ld_check_keys(L, r, keys, "a decision rule", "when, then, reason or emit"))
            return L->rc;
        spec_decision_t *dec = &s->decisions[s->ndecisions++];
        dec->pos = (spec_pos_t){r->line, r->col};
        const ynode_t *when = ynode_get(r, "when"), *then = ynode_get(r, "then"),
                      *reason = ynode_get(r, "reason");
        if (!then) return ld_fail(L, r, "decision rule is missing required key 'then'");
        if (ld_want_scalar(L, then, "then")) return L->rc;
        if (then->len == 0) return ld_fail(L, then, "then needs a decision name, such as block");
        dec->then = weir_strndup(then->value, then->len);
        if (reason) {
            if (ld_want_scalar(L, reason, "reason")) return L->rc;
            dec->reason = weir_strndup(reason->value, reason->len);
        }
        const ynode_t *emit = ynode_get(r, "emit");
        if (emit) {
            /* The output is a file name under DATA/outputs/: a plain name. */
            if (ld_want_scalar(L, emit, "emit")) return L->rc;
            if (!spec_output_name_ok(emit->value, emit->len))
                return ld_fail(L, emit,
                               "emit needs an output name (letters, digits, '_', '-'; not 'late'), "
                               "such as review_queue");
            dec->emit = weir_strndup(emit->value, emit->len);
        }
        if (!when) {
            if (i + 1 < d->n)
                return ld_fail(L, r,
                               "only the last decision rule may omit 'when'; later rules "
                               "would never run");
            continue;
        }
        if (ld_want_scalar(L, when, "when")) return L->rc;
        if (ld_is_empty(when)) return ld_fail(L, when, "when has no condition");
        if (ld_compile_node(L, when, &scope, &dec->when)) return L->rc;
        if (expr_type(dec->when) != EXPR_BOOL)
            return ld_fail(L, when, "when must be a condition (bool), got %s",
                           expr_type_name(expr_type(dec->when)));
        s->lower_calls += expr_lower_calls(dec->when);
    }
    return 0;
}

/* ---- aggregates on close ---- */

/* Splits scalar n's words: up to 4, with their byte offsets. */
static int words(const ynode_t *n, weir_slice_t *w, size_t *off, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n->len) {
        while (i < n->len && (n->value[i] == ' ' || n->value[i] == '\t'))
            i++;
        if (i == n->len) break;
        size_t st = i;
        while (i < n->len && n->value[i] != ' ' && n->value[i] != '\t')
            i++;
        if (k == max) return max + 1;
        w[k].ptr = n->value + st;
        w[k].len = i - st;
        off[k++] = st;
    }
    return k;
}

static int word_duration(loader_t *L, const ynode_t *n, weir_slice_t w, size_t off, int64_t *ms)
{
    int rc = expr_parse_duration(w.ptr, w.len, ms);
    if (rc == WEIR_ERANGE)
        return ld_fail_at(L, n, off, "duration '%.*s' is too large", (int)w.len, w.ptr);
    if (rc)
        return ld_fail_at(L, n, off,
                          "bad duration '%.*s': expected an integer followed by ms, s, m, h or d",
                          (int)(w.len > 40 ? 40 : w.len), w.ptr);
    if (*ms == 0) return ld_fail_at(L, n, off, "a window must be longer than 0");
    if (*ms > SPEC_MAX_DURATION_MS)
        return ld_fail_at(L, n, off, "duration '%.*s' is longer than 100 years", (int)w.len, w.ptr);
    return 0;
}

static int word_is(weir_slice_t w, const char *s)
{
    return strlen(s) == w.len && memcmp(w.ptr, s, w.len) == 0;
}

static int load_window(loader_t *L, const ynode_t *n, spec_aggregate_t *a)
{
    if (ld_want_scalar(L, n, "window")) return L->rc;
    weir_slice_t w[4];
    size_t off[4];
    int k = words(n, w, off, 4);
    const char *usage = "bad window '%.*s': expected 'tumbling D', 'hopping D every S' or "
                        "'session gap D'";
    if (k >= 1 && word_is(w[0], "tumbling")) {
        if (k != 2) return ld_fail(L, n, usage, Q(n));
        a->window = SPEC_WINDOW_TUMBLING;
        return word_duration(L, n, w[1], off[1], &a->size_ms);
    }
    if (k >= 1 && word_is(w[0], "hopping")) {
        if (k != 4 || !word_is(w[2], "every")) return ld_fail(L, n, usage, Q(n));
        a->window = SPEC_WINDOW_HOPPING;
        if (word_duration(L, n, w[1], off[1], &a->size_ms) ||
            word_duration(L, n, w[3], off[3], &a->every_ms))
            return L->rc;
        if (a->size_ms % a->every_ms != 0) {
            char d[32], h[32];
            expr_format_duration(a->size_ms, d, sizeof d);
            expr_format_duration(a->every_ms, h, sizeof h);
            return ld_fail_at(L, n, off[3], "window %s is not a multiple of its every %s", d, h);
        }
        if (a->size_ms / a->every_ms > SPEC_MAX_HOPS) {
            char d[32], h[32];
            expr_format_duration(a->size_ms, d, sizeof d);
            expr_format_duration(a->every_ms, h, sizeof h);
            return ld_fail_at(L, n, off[3],
                              "window %s every %s puts each event in %" PRId64
                              " windows; at most %d (a longer every)",
                              d, h, a->size_ms / a->every_ms, SPEC_MAX_HOPS);
        }
        return 0;
    }
    if (k >= 1 && word_is(w[0], "session")) {
        if (k != 3 || !word_is(w[1], "gap")) return ld_fail(L, n, usage, Q(n));
        a->window = SPEC_WINDOW_SESSION;
        return word_duration(L, n, w[2], off[2], &a->gap_ms);
    }
    return ld_fail(L, n, usage, Q(n));
}

static int load_aggregates(loader_t *L, const ynode_t *root)
{
    static const char *const keys[] = {"window", "select", NULL};
    spec_t *s = L->spec;
    const ynode_t *m = ynode_get(root, "aggregates");
    if (!m || ld_is_empty(m)) return 0;
    if (ld_want_map(L, m, "aggregates")) return L->rc;
    s->aggregates = weir_calloc(m->n ? m->n : 1, sizeof *s->aggregates);
    for (uint32_t i = 0; i < m->n; i++) {
        const ynode_t *k = ynode_key(m, i), *v = ynode_val(m, i);
        char where[96];
        snprintf(where, sizeof where, "aggregate '%.*s'", Q(k));
        if (ld_check_name(L, k, "aggregate")) return L->rc;
        spec_aggregate_t *a = &s->aggregates[s->naggregates++];
        a->name = weir_strndup(k->value, k->len);
        a->pos = (spec_pos_t){k->line, k->col};
        if (ld_want_map(L, v, where) || ld_check_keys(L, v, keys, where, "window or select"))
            return L->rc;
        const ynode_t *win = ynode_get(v, "window"), *sel = ynode_get(v, "select");
        if (!win) return ld_fail(L, k, "aggregate '%.*s' is missing required key 'window'", Q(k));
        if (!sel) return ld_fail(L, k, "aggregate '%.*s' is missing required key 'select'", Q(k));
        if (load_window(L, win, a)) return L->rc;
        if (ld_want_map(L, sel, "select")) return L->rc;
        if (sel->n == 0) return ld_fail(L, sel, "select of aggregate '%.*s' is empty", Q(k));
        a->select = weir_calloc(sel->n, sizeof *a->select);
        expr_scope_t scope = {
            .resolve = resolve_select_scope,
            .ctx = L,
            .agg_mode = EXPR_AGGS_WINDOW,
            .aggs = &a->aggs,
            .arg_resolve = resolve_arg,
            .arg_names = ld_names_fields,
            .arg_ctx = L,
            .where = "a select",
        };
        for (uint32_t j = 0; j < sel->n; j++) {
            const ynode_t *sk = ynode_key(sel, j), *sv = ynode_val(sel, j);
            /* (the members every window line has — and "partial", which a
             * window a reload left partial has: engine.c — a select of that
             * name would repeat one, and JSON readers differ on which counts) */
            static const char *const reserved[] = {"aggregate", "key",     "start",
                                                   "end",       "partial", NULL};
            if (ld_check_name(L, sk, "select") || ld_check_reserved(L, sk, reserved, "select"))
                return L->rc;
            if (ld_is_empty(sv)) return ld_fail(L, sk, "select '%.*s' has no expression", Q(sk));
            if (ld_want_scalar(L, sv, "a select expression")) return L->rc;
            spec_select_t *se = &a->select[a->nselect++];
            se->name = weir_strndup(sk->value, sk->len);
            if (ld_compile_node(L, sv, &scope, &se->expr)) return L->rc;
            se->type = expr_type(se->expr);
            if (se->type == EXPR_NULL)
                return ld_fail(L, sv, "select '%s' is always null", se->name);
        }
        if (a->aggs.n > SPEC_MAX_SELECT_AGGS)
            return ld_fail(L, sel,
                           "select of aggregate '%.*s' makes %u aggregate calls; at most %d", Q(k),
                           a->aggs.n, SPEC_MAX_SELECT_AGGS);
        /* Aggregate arguments run per event; selects once per window. */
        for (uint32_t j = 0; j < a->aggs.n; j++)
            if (a->aggs.v[j].arg) s->lower_calls += expr_lower_calls(a->aggs.v[j].arg);
    }
    return 0;
}

/* ---- entry points ---- */

static void loader_cleanup(loader_t *L)
{
    uint32_t n = L->spec ? L->spec->nfeatures : 0;
    for (uint32_t i = 0; L->feat_asts && i < n; i++)
        expr_ast_free(L->feat_asts[i]);
    for (uint32_t i = 0; L->deps && i < n; i++)
        weir_free(L->deps[i]);
    weir_free(L->feat_asts);
    weir_free(L->feat_nodes);
    weir_free(L->deps);
    weir_free(L->ndeps);
    weir_free(L->compiled);
}

static int load_root(loader_t *L, const ynode_t *root)
{
    if (!root || ld_is_empty(root)) {
        ynode_t at = {.line = 1, .col = 1};
        return ld_fail(L, &at, "spec is empty");
    }
    if (root->kind != YNODE_MAP)
        return ld_fail(L, root,
                       "a spec must be a mapping with keys such as pipeline and sources, "
                       "not %s",
                       ld_kind_name(root));
    if (ld_check_keys(L, root, top_keys, "the spec",
                      "pipeline, partitions, sources, features, aggregates, model, decisions, "
                      "patterns, checkpoint_interval, guarantee, online_store or sinks"))
        return L->rc;
    static const char *const required[] = {"pipeline", "sources"};
    for (size_t i = 0; i < 2; i++)
        if (!ynode_get(root, required[i]))
            return ld_fail(L, root, "missing required key '%s'", required[i]);
    if (load_pipeline(L, root) || load_recovery(L, root) || load_sources(L, root) ||
        ld_load_patterns(L, root) || load_features(L, root) || load_model(L, root) ||
        load_decisions(L, root) || ld_pattern_rules(L) || load_aggregates(L, root) ||
        ld_check_outputs(L) || ld_load_online_store(L, root) || ld_load_sinks(L, root))
        return L->rc;
    return 0;
}

int spec_load_string(const char *text, size_t len, const char *name, spec_t **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    loader_t L = {.file = name, .err = err, .errlen = errlen};
    ydoc_t *doc;
    uint32_t line, col;
    char msg[512];
    int rc = ydoc_parse(text, len, &doc, &line, &col, msg, sizeof msg);
    if (rc) return weir_errf(err, errlen, rc, "%s:%u:%u: %s", name, line, col, msg);
    L.doc = doc;
    L.spec = weir_calloc(1, sizeof *L.spec);
    L.spec->file = weir_strdup(name);
    rc = load_root(&L, ydoc_root(doc));
    loader_cleanup(&L);
    ydoc_free(doc);
    if (rc) {
        spec_free(L.spec);
        return rc;
    }
    *out = L.spec;
    return 0;
}

int spec_read_file(const char *path, weir_buf_t *b, char *err, size_t errlen)
{
    /* Only a regular file, and no more of it than a spec may be: a FIFO put
     * where the spec was must not hang a reload (which holds the reload
     * lock meanwhile), nor /dev/zero fill memory. */
    return weir_read_file(path, YDOC_MAX_BYTES, b, err, errlen);
}

int spec_load(const char *path, spec_t **out, char *err, size_t errlen)
{
    *out = NULL;
    weir_buf_t b = WEIR_BUF_INIT;
    int rc = spec_read_file(path, &b, err, errlen);
    if (rc == 0) rc = spec_load_string(b.data ? b.data : "", b.len, path, out, err, errlen);
    buf_free(&b);
    return rc;
}

void spec_free(spec_t *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->nsources; i++) {
        spec_source_t *src = &s->sources[i];
        for (uint32_t j = 0; j < src->nfields; j++)
            weir_free(src->fields[j].name);
        weir_free(src->fields);
        weir_free(src->name);
        spec_kafka_free(&src->kafka);
    }
    weir_free(s->sources);
    for (uint32_t i = 0; i < s->nfeatures; i++) {
        weir_free(s->features[i].name);
        expr_free(s->features[i].expr);
    }
    weir_free(s->features);
    weir_free(s->feature_order);
    expr_aggs_free(&s->aggs);
    weir_free(s->model.path);
    weir_free(s->model.resolved);
    for (uint32_t i = 0; i < s->model.ninputs; i++)
        weir_free(s->model.inputs[i].name);
    weir_free(s->model.inputs);
    for (uint32_t i = 0; i < s->ndecisions; i++) {
        expr_free(s->decisions[i].when);
        weir_free(s->decisions[i].then);
        weir_free(s->decisions[i].reason);
        weir_free(s->decisions[i].emit);
    }
    weir_free(s->decisions);
    for (uint32_t i = 0; i < s->naggregates; i++) {
        spec_aggregate_t *a = &s->aggregates[i];
        weir_free(a->name);
        expr_aggs_free(&a->aggs);
        for (uint32_t j = 0; j < a->nselect; j++) {
            weir_free(a->select[j].name);
            expr_free(a->select[j].expr);
        }
        weir_free(a->select);
    }
    weir_free(s->aggregates);
    spec_patterns_free(s);
    weir_free(s->online.redis);
    weir_free(s->online.prefix);
    weir_free(s->online.username);
    weir_free(s->online.password_env);
    spec_kafka_free(&s->decisions_kafka);
    weir_free(s->pipeline);
    weir_free(s->file);
    weir_free(s);
}

const spec_source_t *spec_source(const spec_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->nsources; i++)
        if (strcmp(s->sources[i].name, name) == 0) return &s->sources[i];
    return NULL;
}

const spec_field_t *spec_field(const spec_source_t *src, const char *name)
{
    int f = ld_find_field(src, name, strlen(name));
    return f < 0 ? NULL : &src->fields[f];
}

bool spec_output_name_ok(const char *name, size_t len)
{
    bool ok = len > 0 && len <= 100 && !(len == 4 && memcmp(name, "late", 4) == 0);
    for (size_t k = 0; ok && k < len; k++) {
        char c = name[k];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    return ok;
}

int spec_feature_index(const spec_t *s, const char *name)
{
    return ld_find_feature(s, name, strlen(name));
}
