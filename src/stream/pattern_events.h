/* pattern_events.h — the events a key's pattern runs took, each held once
 * (pattern.c's runs keep a pev_list_t each).
 *
 * SHARED EVENTS (FlinkCEP's SharedBuffer, simplified by our runs never
 * branching). Runs overlap: each event may start a run and extend all the
 * open ones, so a list of offsets per run made a key's memory quadratic in
 * its events within `within` (74 MB for one key at an event a second over
 * an hour). Instead the events a key's pattern holds are nodes (offset,
 * prev) and a run is (tail, n): the events it took are its tail node and
 * the n - 1 nodes before it, newest first. Nodes are immutable, so a run
 * shares every node with any run whose list walks through the same ones:
 *   - take: the node (offset, prev = the run's tail); runs with the same
 *     tail taking the same event share one (a map, tail -> node, lives for
 *     one event's feed: pev_take, pev_feed_end);
 *   - start: any node made for this event (n = 1 ignores its prev), else
 *     a new node (offset, NULL).
 * A run started at a later event is then the same list cut shorter: when
 * every open run takes every event (a one_or_more), one node per event
 * serves them all, and memory is linear in the events held plus the runs.
 * Runs that took different events still part ways, node by node (never
 * worse than a list each, as before, but for the node's bigger size).
 *
 * A node's refs count the runs whose n nodes include it (+1 while the
 * feed's map holds it): a run takes one ref on its new tail and gives back
 * one on each of its n nodes when it ends, so a node goes as soon as no
 * run's events include it. prev is NOT a reference: it may point at a
 * freed node once no run reaches past this one. Walks therefore never go
 * further than a run's n nodes, where every node is alive (each carries
 * that run's ref). The checkpoint still stores every run's offsets, as
 * before (encoded by value); decoding shares nodes again (pev_decode).
 *
 * The nodes of one key's pattern are counted in a uint64_t its owner keeps
 * (`nodes` below), for its memory figure. */
#ifndef WEIR_STREAM_PATTERN_EVENTS_H
#define WEIR_STREAM_PATTERN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pev_node pev_node_t;

/* A run's events: its tail node and the n - 1 nodes before it. */
typedef struct pev_list {
    pev_node_t *tail;
    uint32_t n;
} pev_list_t;

/* A map (prev, offset) -> node, open addressing: during one event's feed
 * of a key's pattern, a run's tail -> the node it made for the event
 * (pev_take); while decoding, the nodes made so far (pev_decode). It
 * empties only the slots it used, so a feed pays for its own runs, not
 * for the biggest feed the partition ever saw. Zero-initialise. */
typedef struct pev_map_ent {
    const pev_node_t *prev;
    uint64_t off;
    pev_node_t *node; /* NULL: a free slot */
} pev_map_ent_t;

typedef struct pev_map {
    pev_map_ent_t *v;
    uint32_t *used; /* the slots filled, in the order they were */
    uint32_t cap, n;
} pev_map_t;

void pev_map_clear(pev_map_t *m);
void pev_map_free(pev_map_t *m);
size_t pev_map_bytes(const pev_map_t *m);

/* The bytes of one node, for memory figures. */
size_t pev_node_bytes(void);

/* List l takes event off during a feed whose map is share. A list that
 * took events before needs the node (off, prev = its tail): the one a list
 * with the same tail made for this event, else a new one, which the map
 * keeps alive until pev_feed_end so that lists after it find it even if
 * its maker ends. A new list (no events) takes any node of this event: the
 * first the feed made, else a new one. */
void pev_take(pev_map_t *share, uint64_t *nodes, pev_list_t *l, uint64_t off);
/* After one event's feed of a key's pattern: the map lets go of the nodes
 * it made (those whose lists ended go). */
void pev_feed_end(pev_map_t *share, uint64_t *nodes);

/* Gives back l's ref on each of its n nodes; l is then empty. */
void pev_drop(uint64_t *nodes, pev_list_t *l);

/* l's offsets in the order it took them, in *buf, grown to fit (*cap its
 * size). */
const uint64_t *pev_offsets(const pev_list_t *l, uint64_t **buf, uint32_t *cap);

/* l (empty) gets offs[0..n), n >= 1, from a checkpoint, as nodes shared
 * with the lists of the same key's pattern decoded before it (made: the
 * map they were decoded with), as feeding them had shared them in the
 * common cases: a list whose events end the list of the first node made
 * of its last event (a run started later, when every run takes every
 * event) takes that node; else each event is the node already made after
 * the one before, or a new one, from the first node made of its first
 * event. Every node made while decoding stays alive until the decoding
 * ends, so the walks may follow prev beyond a list's events. */
void pev_decode(pev_map_t *made, uint64_t *nodes, pev_list_t *l, const uint64_t *offs, uint32_t n);

#endif
