/* dedup.h — one key's recent event ids, for a source with `id:` (the
 * spec's idempotent ingestion: an event whose id its key applied within
 * `dedup` is a duplicate, logged but not applied; engine.h step 4).
 *
 * What is kept: (time, id, offset) for each applied event that had an id
 * (the offset is the event's in the log: a duplicate's answer is its
 * first's decision, found by it), sorted by time (an out-of-order event is
 * inserted in its place: it is within the lateness of the newest, so a few
 * moves at most). An id is forgotten once the watermark passes its time
 * plus `dedup` — exactly then, whatever order the events came in: the
 * engine gives dedup_seen the cutoff (W - dedup) and everything at or
 * before it is dropped first (in memory, at the key's next event with an
 * id; the answer never depends on when).
 *
 * Lookup: up to DEDUP_SCAN ids a linear scan (a card's ids of a day are a
 * few cache lines); past that a counting multiset (mset.h) of the same ids,
 * so a busy key (a merchant's thousands of events a day) costs O(1) per
 * event, not O(ids).
 *
 * Ids are 64-bit: an int field's value, or XXH64 of a string's bytes (two
 * different strings of one key within `dedup` collide with probability
 * about n^2 / 2^65). One owner, no locking; memory from weir_malloc. A NULL
 * dedup_t * is the empty set: a key pays for ids only once it has one. */
#ifndef WEIR_STREAM_DEDUP_H
#define WEIR_STREAM_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct dedup dedup_t;
struct codec_rd;

/* Drops the ids at or before `cutoff`, then: the log offset of the event
 * that brought id, if it is among those left, else -1. (*d may be freed and
 * set to NULL when nothing is left.) */
int64_t dedup_seen(dedup_t **d, uint64_t id, int64_t cutoff);

/* Remembers id at time t, brought by the event at `offset` (an id the
 * caller found not seen). */
void dedup_add(dedup_t **d, uint64_t id, int64_t t, uint64_t offset);

void dedup_free(dedup_t *d);

/* Ids held, and heap bytes. */
uint32_t dedup_count(const dedup_t *d);
size_t dedup_bytes(const dedup_t *d);

/* Serialization: the count, then each (time as a delta from the one before,
 * id, offset). Decoding checks the order and that no id repeats; `max_count` bounds
 * what untrusted bytes may make us allocate. Returns 0, or -1 with *d NULL. */
void dedup_encode(const dedup_t *d, weir_buf_t *b);
int dedup_decode(dedup_t **d, struct codec_rd *r, uint32_t max_count);

#endif
