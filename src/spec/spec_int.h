/* spec_int.h — the spec loader's internals, shared by spec.c (pipeline,
 * sources, features, model, decisions, aggregates), spec_pattern.c
 * (patterns) and spec_online.c (online_store). Nothing outside src/spec includes this.
 *
 * Every ld_ helper that fails records the first error in L (code and
 * "FILE:LINE:COL: message") and returns its code; later failures keep the
 * first message. */
#ifndef WEIR_SPEC_SPEC_INT_H
#define WEIR_SPEC_SPEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/expr.h"
#include "spec/spec.h"
#include "spec/ydoc.h"

typedef struct loader {
    const char *file;
    const ydoc_t *doc;
    spec_t *spec;
    char *err;
    size_t errlen;
    int rc; /* first error code, 0 if none */
    /* features while they are being compiled */
    const ynode_t **feat_nodes; /* value nodes, declared order */
    expr_ast_tree_t **feat_asts;
    uint32_t **deps; /* deps[i]: features that feature i reads */
    uint32_t *ndeps;
    bool *compiled;
} loader_t;

/* Shortens a user-supplied name for messages. */
#define Q(n) (int)((n)->len > 60 ? 60 : (n)->len), (n)->value

/* An error at node n (line 1, column 1 if n is NULL). */
int ld_fail(loader_t *L, const ynode_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error at byte `offset` of scalar n's value. */
int ld_fail_at(loader_t *L, const ynode_t *n, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *ld_kind_name(const ynode_t *n);
int ld_want_scalar(loader_t *L, const ynode_t *n, const char *what);
int ld_want_map(loader_t *L, const ynode_t *n, const char *what);
int ld_is_empty(const ynode_t *n);
/* Every key of map m is one of the NULL-terminated words (else "did you mean"). */
int ld_check_keys(loader_t *L, const ynode_t *m, const char *const *words, const char *where,
                  const char *expected);
/* Key k is an identifier and not a keyword. */
int ld_check_name(loader_t *L, const ynode_t *k, const char *what);
/* Refuses key k if it is one of reserved (names weir writes beside it). */
int ld_check_reserved(loader_t *L, const ynode_t *k, const char *const *reserved, const char *what);
int ld_parse_duration_node(loader_t *L, const ynode_t *n, const char *what, int allow_zero,
                           int64_t *ms);
const spec_source_t *ld_main_source(const loader_t *L);
int ld_find_field(const spec_source_t *src, const char *name, size_t len);
int ld_find_feature(const spec_t *s, const char *name, size_t len);
/* A field of the main source as an expression reference; WEIR_ENOENT if none. */
int ld_resolve_field_ref(const loader_t *L, const char *name, size_t len, expr_ref_t *ref);
void ld_names_fields(void *ctx, void (*emit)(void *, const char *), void *ectx);
/* Compiles scalar n as an expression; error positions map into the file. */
int ld_compile_node(loader_t *L, const ynode_t *n, const expr_scope_t *scope, expr_t **out);

/* Patterns (spec_pattern.c). ld_load_patterns runs after the sources and
 * before the features (which may count matches) and the decisions (which
 * may read pattern.NAME); ld_pattern_rules then prepends one decision rule
 * per pattern with `then:`. */
int ld_load_patterns(loader_t *L, const ynode_t *root);
int ld_pattern_rules(loader_t *L);
/* pattern.NAME in a decision rule: a bool read from the features array at
 * slot nfeatures + pattern index (see spec.h). */
int ld_resolve_pattern_flag(loader_t *L, const char *name, size_t len, expr_ref_t *ref, char *err,
                            size_t errlen);
/* The index of pattern NAME, or -1. */
int ld_find_pattern(const spec_t *s, const char *name, size_t len);
/* Output names (DATA/outputs/NAME.ndjson) are unique across aggregates,
 * decision emits and pattern emits. */
int ld_check_outputs(loader_t *L);
void spec_patterns_free(spec_t *s);

/* online_store: (spec_online.c), after the pipeline and sources (its
 * default prefix names them). */
int ld_load_online_store(loader_t *L, const ynode_t *root);
/* "HOST:PORT" with a port from 1 to 65535, or an absolute path (spec_online.c). */
int ld_address_ok(const char *v, size_t len);

/* A source's kafka: (spec_kafka.c), from its map, once the pipeline's
 * name is known (the default group names it). */
int ld_load_kafka(loader_t *L, const ynode_t *source, spec_source_t *src);
/* The spec's sinks: (spec_kafka.c), once the pipeline's name is known. */
int ld_load_sinks(loader_t *L, const ynode_t *root);
void spec_kafka_free(spec_kafka_t *k);

#endif
