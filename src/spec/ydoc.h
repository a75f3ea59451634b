/* ydoc.h — a YAML document as a small tree whose every node knows its line
 * and column: the input of the spec loader (spec.c).
 *
 * Built from libyaml's event parser (not its document API) so that this code
 * decides what is accepted: one document; mappings, sequences and scalars;
 * mapping keys that are scalars and unique (a duplicate key is an error
 * naming both lines, where YAML libraries usually keep the last silently);
 * no aliases (a spec has no use for them and they make a small file expand
 * into a large tree); nesting at most YDOC_MAX_DEPTH. */
#ifndef WEIR_SPEC_YDOC_H
#define WEIR_SPEC_YDOC_H

#include <stddef.h>
#include <stdint.h>

#define YDOC_MAX_DEPTH 64
#define YDOC_MAX_BYTES (16u << 20) /* a spec larger than this is refused */

typedef enum ynode_kind {
    YNODE_SCALAR,
    YNODE_SEQ,
    YNODE_MAP,
} ynode_kind_t;

typedef enum ynode_style {
    YSTYLE_PLAIN,
    YSTYLE_SINGLE, /* 'quoted' */
    YSTYLE_DOUBLE, /* "quoted" */
    YSTYLE_BLOCK,  /* | or > */
    YSTYLE_FLOW,   /* a [...] or {...} collection */
    YSTYLE_BLOCKC, /* a block collection */
} ynode_style_t;

typedef struct ynode {
    ynode_kind_t kind;
    ynode_style_t style;
    uint32_t line, col;   /* 1-based, of the node's first character */
    size_t index;         /* character index of the first character (libyaml's mark) */
    size_t end_index;     /* character index just past the node */
    char *value;          /* scalar: NUL-terminated (may also contain NULs) */
    size_t len;           /* scalar: bytes of value */
    struct ynode **items; /* seq: n items; map: n keys then... see pairs */
    uint32_t n;           /* seq: items; map: pairs */
} ynode_t;

/* Map pair i: key items[2i] (a scalar), value items[2i+1]. */
static inline ynode_t *ynode_key(const ynode_t *m, uint32_t i)
{
    return m->items[2 * i];
}
static inline ynode_t *ynode_val(const ynode_t *m, uint32_t i)
{
    return m->items[2 * i + 1];
}

typedef struct ydoc ydoc_t;

/* Parses src[0..len) (UTF-8). On success returns 0 and sets *out; *root may be
 * NULL for an empty document. On failure returns WEIR_EPARSE and sets *line,
 * *col (1-based) and err (a sentence without position). src must outlive the
 * document (positions are computed from it). */
int ydoc_parse(const char *src, size_t len, ydoc_t **out, uint32_t *line, uint32_t *col, char *err,
               size_t errlen);

const ynode_t *ydoc_root(const ydoc_t *d);

void ydoc_free(ydoc_t *d);

/* The line and column (1-based) in the source of byte `offset` of a scalar's
 * value: exact for plain and quoted scalars without escapes and for block
 * scalars, best effort otherwise (then the scalar's own position). */
void ydoc_scalar_pos(const ydoc_t *d, const ynode_t *n, size_t offset, uint32_t *line,
                     uint32_t *col);

/* Looks up key in map m; NULL if absent. */
const ynode_t *ynode_get(const ynode_t *m, const char *key);

#endif
