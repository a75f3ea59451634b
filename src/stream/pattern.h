/* pattern.h — pattern detection (CEP): the spec's `patterns:` (spec.h,
 * spec_pattern.c) run per key as automata inside the stream engine, on the
 * same deterministic path as the features, so replay and backfill find
 * every match live processing found, at the same point of the log.
 *
 * WHICH EVENTS, IN WHICH ORDER. A pattern sees the non-late events of one
 * key (late events change no state, DESIGN.md). With `order: time` (the
 * default, as FlinkCEP in event time) it sees them sorted by (event time,
 * log offset): an event is held in a per-partition buffer until the
 * watermark W reaches its time (time <= W), because until then an earlier
 * event of its key may still arrive (any event below W is late). Holding
 * costs a delay of at most the source's lateness; in exchange a match does
 * not depend on delivery order. With `order: arrival` it sees them in log
 * order as they come (FlinkCEP in processing time): no delay, so `then:`
 * can decide the very event that completes a match — at the price that
 * out-of-order delivery (within the lateness) is seen out of order.
 *
 * A PARTIAL MATCH (a run) is one deterministic path through the steps. Every
 * event that satisfies the first step starts a new run (each event may
 * start one and also extend others: FlinkCEP's no-skip strategy). For each
 * fed event, each run in creation order, then the possible new run:
 *   - candidates: the run's current step while it may take more (count <
 *     max), then — once the current step has its minimum (count >= min; an
 *     optional `times: n` has 0 or n: spec_step_t.full) and no `not` event
 *     blocked it — the next positive step, and the one after
 *     it while the steps passed are optional (min 0). The first candidate
 *     the event can fill takes it (the earliest step wins, so a loop keeps
 *     taking events that satisfy it). An event can fill step j if: its
 *     condition is true (STEP.field reads the last event that STEP took,
 *     null if none — a step naming itself reads its own previous event),
 *     |time − first event's time| <= within, |time − the run's previous
 *     event's time| <= j's gap (if any; both differences are negative only
 *     in arrival order, for an event stamped before), and, if j is strict,
 *     no event of the
 *     key was fed since the run's previous event.
 *   - an event no candidate takes: if the current step has its minimum and
 *     the step after it is a `not` step whose condition the event satisfies
 *     (within the not step's gap of the previous event, if it has one), the
 *     run is blocked: it can no longer move past the current step, only take
 *     more events there (which unblocks it: absence is required between the
 *     LAST event of the step before and the event of the step after). The
 *     run dies if no candidate is left or every candidate is strict (a strict
 *     step can no longer have the next event).
 *   - a run completes as soon as it can: when its current step has its
 *     minimum and every later positive step is optional. Then, without a
 *     trailing `not`, it is a match at once (match time = this event's
 *     time). With a trailing `not` it waits: any fed event satisfying the
 *     not condition with time <= the deadline kills it, where deadline =
 *     min(first time + within, previous event's time + the not step's gap);
 *     it is a match (match time = the deadline) once W > deadline — ticks
 *     move W on an idle partition, so absence is confirmed without events.
 *     Such a run is confirmed before the key could expire (TTL covers within).
 *   - a run that can no longer complete is dropped (first time + within <
 *     every time it could still see); memory per key is bounded by the
 *     key's events in `within`, and idle keys go with the TTL.
 * An event taken by a step is not tested against `not` steps. Match events
 * are in the order the run took them.
 *
 * WHEN. Per record (event or tick), after the watermark W moves: held
 * events with time <= W are fed in (time, offset) order, then waiting runs
 * whose deadline < W are confirmed by deadline (those of one key and
 * pattern together, in creation order), then the record's
 * own event is fed (arrival patterns, or time patterns if its time <= W)
 * or held. Matches come out in that order, each stamped with W.
 *
 * OUTPUTS of a match: flags[i] = true for the event that completes a match
 * of an arrival pattern i (decision rules read pattern.NAME); the match time
 * goes to the key's match times (matches(P) over D counts those in (t − D,
 * t] found so far); with emit:, io->match gets the emit values.
 *
 * Everything here is a function of the records and their order. Single
 * owner (the partition's), like the engine. */
#ifndef WEIR_STREAM_PATTERN_H
#define WEIR_STREAM_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "spec/spec.h"
#include "stream/codec.h"

typedef struct pattern_part pattern_part_t; /* per partition: buffered events, deadlines */
typedef struct pattern_key pattern_key_t;   /* per key: runs and match times (NULL: none) */

/* What the engine gives the pattern code while it runs. */
typedef struct pattern_io {
    /* The pattern state slot of key, or NULL if the key has no state (it
     * was evicted). */
    pattern_key_t **(*slot)(void *ctx, weir_slice_t key);
    /* A match of a pattern with emit:. vals[0 .. out.nselect) are the emit
     * fields, vals[nselect] a string with the match's event offsets as a
     * JSON array, vals[nselect + 1] the watermark when it was found (int).
     * start = the first event's time, time = the match time. */
    void (*match)(void *ctx, const spec_pattern_t *p, weir_slice_t key, int64_t start, int64_t time,
                  const expr_value_t *vals);
    void *ctx;
    /* Non-zero: a held event's key state is looked up again (slot) when
     * it is released, not taken from where it was when held — a snapshot
     * is running, and the lookup is what records a key before it changes
     * (stream/keymap.h, SNAPSHOTS). */
    int lookup_held;
    /* A match of the key (with or without emit:) of a pattern a matches()
     * feature counts, after its time is recorded. May be NULL. */
    void (*key_matched)(void *ctx, weir_slice_t key);
} pattern_io_t;

pattern_part_t *pattern_part_new(const spec_t *s);
void pattern_part_free(pattern_part_t *pp);

/* An event of a key, not late, W its partition's watermark after it.
 * Arrival patterns take it now; time patterns take it now if time <= W,
 * else it is held until pattern_watermark releases it. flags (npatterns)
 * gets 1 for each arrival pattern a match of which it completes. */
void pattern_event(pattern_part_t *pp, pattern_key_t **slot, weir_slice_t key, int64_t time,
                   uint64_t offset, const expr_value_t *fields, int64_t wm, uint8_t *flags,
                   const pattern_io_t *io);

/* The watermark is W: held events with time <= W go to their keys in
 * (time, offset) order, then waiting runs whose deadline < W are matches. */
void pattern_watermark(pattern_part_t *pp, int64_t wm, const pattern_io_t *io);

/* matches(pattern pi) over d as of time t (read-only). */
int64_t pattern_count(const pattern_key_t *k, uint32_t pi, int64_t t, int64_t d);
/* The newest match time recorded for k (patterns that matches() counts),
 * or INT64_MIN. */
int64_t pattern_newest_match(const pattern_key_t *k);

/* Frees a key's pattern state (NULL is fine). */
void pattern_key_free(const spec_t *s, pattern_key_t *k);
/* Heap bytes of a key's pattern state / of the partition's held events and deadlines. */
size_t pattern_key_bytes(const spec_t *s, const pattern_key_t *k);
size_t pattern_part_bytes(const pattern_part_t *pp);

typedef struct pattern_stats {
    uint64_t matches; /* found (emitted or not) */
    uint64_t held;    /* events held for time order now */
} pattern_stats_t;
void pattern_part_stats(const pattern_part_t *pp, pattern_stats_t *out);
/* Partial matches (runs) alive in a key's state. */
uint64_t pattern_key_runs(const pattern_key_t *k);

/* Checkpoint encoding (conventions of codec.h; for engine_state.c). A key's
 * state: pattern_key_encode appends it (NULL encodes as empty),
 * pattern_key_decode reads it back for the same spec (*out NULL if empty).
 * The partition's held events and deadlines: pattern_part_encode /
 * pattern_part_decode (into a partition that holds nothing). Decoders
 * check every count and index against the spec and return WEIR_ECORRUPT
 * with a sentence on bad bytes, leaving nothing allocated. */
void pattern_key_encode(const spec_t *s, const pattern_key_t *k, weir_buf_t *b);
int pattern_key_decode(const spec_t *s, codec_rd_t *r, pattern_key_t **out, char *err,
                       size_t errlen);
void pattern_part_encode(const pattern_part_t *pp, weir_buf_t *b);
/* Appends what the pattern state means (each pattern's steps, conditions,
 * order, within, binds and the longest matches() window): a checkpoint's
 * plan fingerprint covers it, so state is never restored into a changed
 * pattern. */
void pattern_plan_text(const spec_t *s, weir_buf_t *b);
int pattern_part_decode(pattern_part_t *pp, codec_rd_t *r, char *err, size_t errlen);

/* RELOAD (engine_migrate.h): moving pattern state to the patterns of
 * another spec. map[j], for each pattern j of the new spec, is the index
 * of the same pattern in the old spec — same name and pattern_def_text —
 * or PATTERN_NONE for a pattern that is new or changed, whose state then
 * starts empty: it sees the events that arrive after the move, not the
 * ones held for time order before it (as a changed job graph restarts the
 * state of its new operators in Flink). */
#define PATTERN_NONE UINT32_MAX

/* What decides whether a pattern's state can move: its steps (names,
 * negation, quantifiers, contiguity, gaps, conditions), binds, order,
 * within and name — not its emit or then (they read the binds at a match
 * only), nor the matches() windows over it. */
void pattern_def_text(const spec_t *s, uint32_t i, weir_buf_t *b);

/* The pattern state of one key, for the spec of `to` (a partition of the
 * new spec): the kept patterns' runs and match times (dropped when the new
 * spec has no matches() over the pattern). Consumes k, which belongs to
 * spec `from`; returns NULL when nothing is left. */
pattern_key_t *pattern_key_move(const pattern_part_t *to, const spec_t *from, pattern_key_t *k,
                                const uint32_t *map);

typedef struct pattern_move_stats {
    uint64_t held_kept, held_dropped; /* events held for time order */
    uint64_t due_kept, due_dropped;   /* trailing-not deadlines */
} pattern_move_stats_t;

/* Moves the partition's pattern state from `from` into `to` (new, holding
 * nothing): the watermark, the match count, the deadlines of kept
 * patterns, and the held events that a kept time-order pattern of the new
 * spec would hold (their cached condition results carried over; new
 * patterns skip them). `from` keeps its held events (freed with it) and
 * loses its deadlines; free it afterwards. Held events look their key up
 * when released (as after a checkpoint restore). */
void pattern_part_move(pattern_part_t *to, pattern_part_t *from, const uint32_t *map,
                       pattern_move_stats_t *st);

#endif
