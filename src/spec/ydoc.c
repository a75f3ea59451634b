/* ydoc.c — YAML text to a position-carrying tree, through libyaml's event
 * parser (see ydoc.h for what is accepted and why). */
#include "spec/ydoc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/error.h"

struct ydoc {
    ynode_t *root;
    const char *src;
    size_t len;
};

typedef struct builder {
    yaml_parser_t parser;
    uint32_t line, col;
    char *err;
    size_t errlen;
    int failed;
} builder_t;

static int fail_at(builder_t *b, size_t line0, size_t col0, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(builder_t *b, size_t line0, size_t col0, const char *fmt, ...)
{
    if (b->failed) return -1;
    b->failed = 1;
    b->line = (uint32_t)line0 + 1;
    b->col = (uint32_t)col0 + 1;
    if (b->err && b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err, b->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void node_free(ynode_t *n)
{
    if (!n) return;
    if (n->kind == YNODE_SCALAR) {
        weir_free(n->value);
    } else {
        uint32_t count = n->kind == YNODE_MAP ? 2 * n->n : n->n;
        for (uint32_t i = 0; i < count; i++)
            node_free(n->items[i]);
        weir_free(n->items);
    }
    weir_free(n);
}

static int next_event(builder_t *b, yaml_event_t *e)
{
    if (!yaml_parser_parse(&b->parser, e)) {
        const yaml_parser_t *p = &b->parser;
        const char *problem = p->problem ? p->problem : "malformed YAML";
        if (p->context)
            return fail_at(b, p->problem_mark.line, p->problem_mark.column, "YAML: %s %s", problem,
                           p->context);
        return fail_at(b, p->problem_mark.line, p->problem_mark.column, "YAML: %s", problem);
    }
    return 0;
}

static ynode_t *new_node(ynode_kind_t kind, const yaml_mark_t *m)
{
    ynode_t *n = weir_calloc(1, sizeof *n);
    n->kind = kind;
    n->line = (uint32_t)m->line + 1;
    n->col = (uint32_t)m->column + 1;
    n->index = m->index;
    return n;
}

static void add_item(ynode_t *n, ynode_t *item, uint32_t *count, uint32_t *cap)
{
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        n->items = weir_realloc(n->items, sizeof *n->items * *cap);
    }
    n->items[(*count)++] = item;
}

static int key_cmp(const void *x, const void *y)
{
    const ynode_t *a = *(ynode_t *const *)x, *b = *(ynode_t *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->value, b->value, n);
    if (r) return r;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Finds a duplicate key: the second occurrence that comes first in the file. */
static int check_duplicates(builder_t *b, const ynode_t *m)
{
    if (m->n < 2) return 0;
    ynode_t **keys = weir_malloc(sizeof *keys * m->n);
    for (uint32_t i = 0; i < m->n; i++)
        keys[i] = ynode_key(m, i);
    qsort(keys, m->n, sizeof *keys, key_cmp);
    /* Sorted by (key, position): a run of equal keys starts with the first
     * occurrence, and its second member is that key's first duplicate. */
    const ynode_t *dup = NULL, *first = NULL;
    for (uint32_t g = 0; g < m->n;) {
        uint32_t e = g + 1;
        while (e < m->n && keys[e]->len == keys[g]->len &&
               memcmp(keys[e]->value, keys[g]->value, keys[g]->len) == 0)
            e++;
        if (e - g >= 2 && (!dup || keys[g + 1]->index < dup->index)) {
            dup = keys[g + 1];
            first = keys[g];
        }
        g = e;
    }
    int rc = 0;
    if (dup)
        rc = fail_at(b, dup->line - 1, dup->col - 1, "duplicate key '%.*s' (first at line %u)",
                     (int)(dup->len > 64 ? 64 : dup->len), dup->value, first->line);
    weir_free(keys);
    return rc;
}

/* Builds the node that starts with event e (already read); consumes through
 * its end event. */
static ynode_t *build(builder_t *b, yaml_event_t *e, int depth)
{
    if (depth > YDOC_MAX_DEPTH) {
        fail_at(b, e->start_mark.line, e->start_mark.column,
                "YAML nesting is deeper than %d levels", YDOC_MAX_DEPTH);
        return NULL;
    }
    ynode_t *n;
    switch (e->type) {
    case YAML_SCALAR_EVENT: {
        n = new_node(YNODE_SCALAR, &e->start_mark);
        n->end_index = e->end_mark.index;
        n->len = e->data.scalar.length;
        n->value = weir_malloc(n->len + 1);
        memcpy(n->value, e->data.scalar.value, n->len);
        n->value[n->len] = '\0';
        switch (e->data.scalar.style) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE:
            n->style = YSTYLE_SINGLE;
            break;
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
            n->style = YSTYLE_DOUBLE;
            break;
        case YAML_LITERAL_SCALAR_STYLE:
        case YAML_FOLDED_SCALAR_STYLE:
            n->style = YSTYLE_BLOCK;
            break;
        default:
            n->style = YSTYLE_PLAIN;
            break;
        }
        return n;
    }
    case YAML_ALIAS_EVENT:
        fail_at(b, e->start_mark.line, e->start_mark.column,
                "YAML aliases (*name) are not supported in specs");
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = e->type == YAML_MAPPING_START_EVENT;
        n = new_node(is_map ? YNODE_MAP : YNODE_SEQ, &e->start_mark);
        int flow = is_map ? e->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                          : e->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
        n->style = flow ? YSTYLE_FLOW : YSTYLE_BLOCKC;
        uint32_t count = 0, cap = 0;
        for (;;) {
            yaml_event_t c;
            if (next_event(b, &c)) break;
            if (c.type == YAML_SEQUENCE_END_EVENT || c.type == YAML_MAPPING_END_EVENT) {
                n->end_index = c.end_mark.index;
                yaml_event_delete(&c);
                n->n = is_map ? count / 2 : count;
                if (is_map && check_duplicates(b, n)) break;
                return n;
            }
            if (is_map && count % 2 == 0 && c.type != YAML_SCALAR_EVENT) {
                fail_at(b, c.start_mark.line, c.start_mark.column,
                        "mapping keys must be plain names, not lists or mappings");
                yaml_event_delete(&c);
                break;
            }
            ynode_t *item = build(b, &c, depth + 1);
            yaml_event_delete(&c);
            if (!item) break;
            add_item(n, item, &count, &cap);
        }
        n->n = is_map ? count / 2 : count;
        if (is_map && count % 2) node_free(n->items[count - 1]);
        node_free(n);
        return NULL;
    }
    default:
        fail_at(b, e->start_mark.line, e->start_mark.column, "unexpected YAML event");
        return NULL;
    }
}

int ydoc_parse(const char *src, size_t len, ydoc_t **out, uint32_t *line, uint32_t *col, char *err,
               size_t errlen)
{
    builder_t b = {.err = err, .errlen = errlen};
    *out = NULL;
    *line = *col = 1;
    if (len > YDOC_MAX_BYTES)
        return weir_errf(err, errlen, WEIR_EPARSE, "spec is larger than %u bytes", YDOC_MAX_BYTES);
    if (!yaml_parser_initialize(&b.parser))
        return weir_errf(err, errlen, WEIR_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)src, len);
    yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);
    ynode_t *root = NULL;
    int docs = 0, done = 0;
    while (!done && !b.failed) {
        yaml_event_t e;
        if (next_event(&b, &e)) break;
        switch (e.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                fail_at(&b, e.start_mark.line, e.start_mark.column,
                        "a spec is one YAML document; found a second one");
            break;
        default:
            root = build(&b, &e, 1);
            break;
        }
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&b.parser);
    if (b.failed) {
        node_free(root);
        *line = b.line;
        *col = b.col;
        return WEIR_EPARSE;
    }
    ydoc_t *d = weir_calloc(1, sizeof *d);
    d->root = root;
    d->src = src;
    d->len = len;
    *out = d;
    return 0;
}

const ynode_t *ydoc_root(const ydoc_t *d)
{
    return d->root;
}

void ydoc_free(ydoc_t *d)
{
    if (!d) return;
    node_free(d->root);
    weir_free(d);
}

const ynode_t *ynode_get(const ynode_t *m, const char *key)
{
    if (!m || m->kind != YNODE_MAP) return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->n; i++) {
        const ynode_t *k = ynode_key(m, i);
        if (k->len == n && memcmp(k->value, key, n) == 0) return ynode_val(m, i);
    }
    return NULL;
}

/* Byte offset in src of character index ci (libyaml counts characters). */
static size_t byte_of_char(const char *src, size_t len, size_t ci)
{
    size_t chars = 0, i = 0;
    for (; i < len; i++) {
        if (((unsigned char)src[i] & 0xC0) == 0x80) continue;
        if (chars == ci) return i;
        chars++;
    }
    return i;
}

void ydoc_scalar_pos(const ydoc_t *d, const ynode_t *n, size_t offset, uint32_t *line,
                     uint32_t *col)
{
    *line = n->line;
    *col = n->col;
    if (n->kind != YNODE_SCALAR || offset > n->len) return;
    const char *s = d->src;
    size_t start = byte_of_char(s, d->len, n->index);
    size_t end = byte_of_char(s, d->len, n->end_index);
    if (end > d->len) end = d->len;
    size_t j = start;
    if (n->style == YSTYLE_SINGLE || n->style == YSTYLE_DOUBLE) {
        j++;
    } else if (n->style == YSTYLE_BLOCK) {
        while (j < end && s[j] != '\n')
            j++;
        while (j < end && (s[j] == '\n' || s[j] == '\r' || s[j] == ' '))
            j++;
    }
    /* Just past the end: one column after the last byte. */
    int past = 0;
    if (offset >= n->len) {
        if (n->len == 0) return;
        offset = n->len - 1;
        past = 1;
    }
    /* Walk the value and the source together: every value byte appears in
     * the source in order (folding turns a line break into a space). */
    for (size_t k = 0; k <= offset; k++) {
        char want = n->value[k];
        size_t step = 1; /* source bytes that produce this value byte */
        for (;; j++) {
            if (j >= end) return; /* lost: keep the scalar's own position */
            if (n->style == YSTYLE_DOUBLE && s[j] == '\\' && j + 1 < end) {
                /* A one-letter escape stands for one value byte; longer ones
                 * (\x, \u, folded lines) are not followed. */
                if (s[j + 1] == '\0' || strchr("0abtnvfre \"/\\", s[j + 1]) == NULL) return;
                step = 2;
                break;
            }
            if (n->style == YSTYLE_SINGLE && s[j] == '\'' && j + 1 < end && s[j + 1] == '\'') {
                step = 2;
                break;
            }
            if (s[j] == want || (want == ' ' && (s[j] == '\n' || s[j] == '\r'))) break;
        }
        if (k == offset) break;
        j += step;
    }
    j += past;
    /* Line and column of byte j, counted from the node's start. */
    uint32_t l = n->line, c = n->col;
    for (size_t i = start; i < j; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}
