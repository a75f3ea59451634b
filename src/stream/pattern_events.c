/* pattern_events.c — the events a key's pattern runs took, each held once
 * (see pattern_events.h). */
#include "stream/pattern_events.h"

#include <string.h>

#include "base/alloc.h"
#include "base/error.h"

struct pev_node {
    struct pev_node *prev; /* not owned, and only valid within a list's n nodes */
    uint64_t off;
    uint32_t refs;
};

size_t pev_node_bytes(void)
{
    return sizeof(pev_node_t);
}

/* ---- the map ------------------------------------------------------------------- */

static uint32_t map_hash(const pev_node_t *prev, uint64_t off)
{
    uint64_t h = ((uint64_t)(uintptr_t)prev ^ off * 0x9e3779b97f4a7c15u) * 0xff51afd7ed558ccdu;
    return (uint32_t)(h >> 32);
}

/* The node of (prev, off), or NULL. */
static pev_node_t *map_get(const pev_map_t *m, const pev_node_t *prev, uint64_t off)
{
    if (!m->n) return NULL;
    for (uint32_t i = map_hash(prev, off) & (m->cap - 1); m->v[i].node; i = (i + 1) & (m->cap - 1))
        if (m->v[i].prev == prev && m->v[i].off == off) return m->v[i].node;
    return NULL;
}

static void map_put(pev_map_t *m, const pev_node_t *prev, uint64_t off, pev_node_t *node);

/* Doubles the table (kept at most half full, so probes stay short and an
 * empty slot always ends them). */
static void map_grow(pev_map_t *m)
{
    pev_map_t g = {.cap = m->cap ? m->cap * 2 : 16};
    g.v = weir_calloc(g.cap, sizeof *g.v);
    g.used = weir_malloc(g.cap / 2 * sizeof *g.used);
    for (uint32_t i = 0; i < m->n; i++) {
        const pev_map_ent_t *x = &m->v[m->used[i]];
        map_put(&g, x->prev, x->off, x->node);
    }
    weir_free(m->v);
    weir_free(m->used);
    *m = g;
}

/* Adds (prev, off) -> node; (prev, off) is not in the map. */
static void map_put(pev_map_t *m, const pev_node_t *prev, uint64_t off, pev_node_t *node)
{
    if (m->n + 1 > m->cap / 2) map_grow(m);
    uint32_t i = map_hash(prev, off) & (m->cap - 1);
    while (m->v[i].node)
        i = (i + 1) & (m->cap - 1);
    m->v[i] = (pev_map_ent_t){prev, off, node};
    m->used[m->n++] = i;
}

static pev_node_t *map_at(const pev_map_t *m, uint32_t i)
{
    return m->v[m->used[i]].node;
}

void pev_map_clear(pev_map_t *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        m->v[m->used[i]].node = NULL;
    m->n = 0;
}

void pev_map_free(pev_map_t *m)
{
    weir_free(m->v);
    weir_free(m->used);
    memset(m, 0, sizeof *m);
}

size_t pev_map_bytes(const pev_map_t *m)
{
    return m->cap * sizeof *m->v + m->cap / 2 * sizeof *m->used;
}

/* ---- nodes and lists ------------------------------------------------------------ */

/* A node, with no ref yet. */
static pev_node_t *node_new(uint64_t *nodes, uint64_t off, pev_node_t *prev)
{
    pev_node_t *n = weir_malloc(sizeof *n);
    n->prev = prev;
    n->off = off;
    n->refs = 0;
    (*nodes)++;
    return n;
}

static void node_unref(uint64_t *nodes, pev_node_t *n)
{
    if (--n->refs) return;
    weir_free(n);
    (*nodes)--;
}

void pev_drop(uint64_t *nodes, pev_list_t *l)
{
    pev_node_t *n = l->tail;
    for (uint32_t i = 0; i < l->n; i++) {
        pev_node_t *prev = n->prev; /* (n may go now) */
        node_unref(nodes, n);
        n = prev;
    }
    l->tail = NULL;
    l->n = 0;
}

void pev_take(pev_map_t *share, uint64_t *nodes, pev_list_t *l, uint64_t off)
{
    pev_node_t *n;
    if (!l->n && share->n) {
        n = map_at(share, 0);
    } else if (!(n = map_get(share, l->tail, off))) {
        n = node_new(nodes, off, l->tail);
        if (l->n) {
            n->refs++; /* the map's */
            map_put(share, l->tail, off, n);
        }
    }
    weir_assert(n->off == off);
    n->refs++;
    l->tail = n;
    l->n++;
}

void pev_feed_end(pev_map_t *share, uint64_t *nodes)
{
    for (uint32_t i = 0; i < share->n; i++)
        node_unref(nodes, map_at(share, i));
    pev_map_clear(share);
}

const uint64_t *pev_offsets(const pev_list_t *l, uint64_t **buf, uint32_t *cap)
{
    if (l->n > *cap) {
        *cap = l->n;
        *buf = weir_realloc(*buf, *cap * sizeof **buf);
    }
    const pev_node_t *n = l->tail;
    for (uint32_t i = l->n; i > 0; i--, n = n->prev)
        (*buf)[i - 1] = n->off;
    return *buf;
}

/* ---- decoding ------------------------------------------------------------------- */

/* A key of the decoding map, never a node: (&any_prev, offset) names the
 * first node made of each event. */
static const pev_node_t any_prev;

/* Whether the n nodes from t back are offs[0 .. n), t's first. */
static int ends_with(const pev_node_t *t, const uint64_t *offs, uint32_t n)
{
    for (uint32_t i = n; i > 0; i--, t = t->prev)
        if (!t || t->off != offs[i - 1]) return 0;
    return 1;
}

void pev_decode(pev_map_t *made, uint64_t *nodes, pev_list_t *l, const uint64_t *offs, uint32_t n)
{
    pev_node_t *t = map_get(made, &any_prev, offs[n - 1]);
    l->n = n;
    if (t && ends_with(t, offs, n)) {
        l->tail = t;
        for (uint32_t i = 0; i < n; i++, t = t->prev)
            t->refs++;
        return;
    }
    pev_node_t *prev = NULL;
    for (uint32_t i = 0; i < n; i++) {
        pev_node_t *x = map_get(made, i ? prev : &any_prev, offs[i]);
        if (!x) {
            x = node_new(nodes, offs[i], prev);
            map_put(made, prev, offs[i], x);
            if (!map_get(made, &any_prev, offs[i])) map_put(made, &any_prev, offs[i], x);
        }
        x->refs++;
        prev = x;
    }
    l->tail = prev;
}
