/* onclose.h — aggregates emitted when their window closes (spec
 * `aggregates:`): tumbling, hopping and session windows per key, emitted
 * once the partition's watermark reaches the window's end.
 *
 * Per key and aggregate, the state keeps the applied events still inside
 * some open window — (time, log order, argument values) sorted by time —
 * and the list of open windows. At close, each select's aggregate slots are
 * computed exactly from the window's events (first/last by event time, ties
 * by log order; variance sample n−1; approx_quantile with the same DDSketch
 * as feature windows; approx_distinct exactly). Events are dropped once no
 * open window can hold them, so memory is bounded by the events of a
 * window's span plus the lateness — for tumbling and hopping windows their
 * size; a session has no bound of its own: one that never pauses for its
 * gap keeps every event (about 70 bytes each; README).
 *
 * Sessions: two events of a key at a <= b share a session when b − a < gap;
 * a session is [first time, last time + gap) and merges with its neighbours
 * when an event bridges them.
 *
 * Closing is driven by a per-partition timer queue ordered by (end, key,
 * aggregate, start), so the emission order is a function of the log (a
 * priority queue of timers grouped by end: onclose.c, TIMERS BY END). A
 * timer whose window was merged away or whose key was reset is skipped.
 *
 * A timer pushed by oc_add points at the key's state (TIMERS KNOW THEIR
 * STATE, onclose.c), so closing its window needs no lookup of the key; a
 * state freed while timers point at it is emptied, and its last timer frees
 * it. Timers decoded from a checkpoint know only their key. */
#ifndef WEIR_STREAM_ONCLOSE_H
#define WEIR_STREAM_ONCLOSE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "spec/spec.h"

typedef struct oc_key oc_key_t; /* one key's state for one aggregate */
typedef struct oc_timers oc_timers_t;

/* The queue of pending window ends of one partition ("the heap" below). */
oc_timers_t *oc_timers_new(void);
void oc_timers_free(oc_timers_t *t);
/* The smallest pending end (INT64_MAX if none). */
int64_t oc_timers_next(const oc_timers_t *t);
size_t oc_timers_bytes(const oc_timers_t *t);

/* Adds an applied event at time t (seq: its log order) to *state (created
 * on first use) for aggregate `agg` (index ai in the spec) of the key `key`,
 * registering new windows in timers. argenv holds the decoded event's
 * fields and the scratch its arguments' lower() calls may use. */
void oc_add(oc_key_t **state, const spec_aggregate_t *agg, uint32_t ai, weir_slice_t key,
            int64_t t, uint64_t seq, expr_env_t *argenv, oc_timers_t *timers);

/* Pops the next due timer (end <= watermark): fills key (owned by the heap
 * until the next call), ai and the window. Returns 0 when none is due.
 * state: the timer's reference to the key's on-close state for aggregate
 * ai, or NULL when the timer knows only the key (look it up). A due with a
 * state must be given to oc_due_state once, which drops the reference
 * (the pop does not read the state: the caller may ask for its memory
 * first). oc_key_take_due's dues have no state. */
typedef struct oc_due {
    weir_slice_t key;
    uint32_t ai;
    int64_t start, end;
    uint64_t gen;
    oc_key_t *state;
} oc_due_t;
int oc_timers_pop(oc_timers_t *t, int64_t watermark, oc_due_t *due);
/* Takes due->state's reference (due->state becomes NULL): the state, live
 * until its key is released, or NULL if the key was released since the
 * timer was pushed (no window of it is open: nothing to close). */
oc_key_t *oc_due_state(oc_due_t *due);

/* The due of the key's open window (aggregate ai) that ends first, if it
 * ends at or before watermark (ties: the earlier start): 1 with *due filled
 * (its key is `key`), else 0. For closing a key's due windows without their
 * timers (engine.c, a key reset while closes are deferred). */
int oc_key_take_due(const oc_key_t *state, uint32_t ai, weir_slice_t key, int64_t watermark,
                    oc_due_t *due);

/* Closes the window of `due` in the key's state if it is still open there:
 * computes the select values into vals (spec order) and returns 1; 0 if the
 * window is gone (merged or reset). Drops events no open window needs.
 * scratch backs lower() in select expressions. */
int oc_close(oc_key_t *state, const spec_aggregate_t *agg, const oc_due_t *due, expr_value_t *vals,
             weir_buf_t *scratch);

/* Checkpoint encoding (engine_state.c). A key's state: its events (time,
 * log order, null bits, one raw 64-bit value per slot) and its open
 * windows in their array order, so that a decoded state closes windows
 * exactly as the original would. NULL encodes as "no state". The timer
 * heap: every pending timer, stale ones included (oc_close skips those, as
 * it would have). Decoders check what they read against the aggregate
 * (slot count) and return 0, or -1 with *why set; on failure nothing is
 * left allocated. */
struct codec_rd;
void oc_key_encode(const oc_key_t *state, weir_buf_t *b);
/* The timers of the key's open windows (aggregate ai), as oc_timers_encode
 * writes each one, without the count; returns how many. Every open window
 * has exactly one timer in the heap and every other timer there is stale
 * (skipped when it pops), so the timers of all keys' windows, in any order,
 * decode to a heap that closes the same windows in the same order
 * (timer_less is a total order). A snapshot written while the partition
 * runs (engine_state.h) takes them this way. */
size_t oc_key_timers_encode(const oc_key_t *state, uint32_t ai, weir_slice_t key, weir_buf_t *b);
int oc_key_decode(oc_key_t **state, const spec_aggregate_t *agg, struct codec_rd *r,
                  const char **why);
void oc_timers_encode(const oc_timers_t *t, weir_buf_t *b);
int oc_timers_decode(oc_timers_t *t, uint32_t naggregates, struct codec_rd *r, const char **why);

/* For a reload (engine_migrate.c): moves every pending timer of `from`
 * into `to` with its aggregate index ai replaced by ai_map[ai]; a timer
 * whose ai_map[ai] is UINT32_MAX (an aggregate the new spec dropped or
 * changed) is freed. The heap order follows the new indexes, as if the
 * new spec had registered them. from is left empty. Returns the number
 * moved. */
size_t oc_timers_move(oc_timers_t *to, oc_timers_t *from, const uint32_t *ai_map);

/* Asks for a key's on-close state (deep 0), or, once that has arrived,
 * for the arrays an add or a close reads (deep 1): hints that change
 * nothing, for a caller that knows its next keys. */
void oc_key_prefetch(const oc_key_t *state, int deep);

/* Frees the state; one that timers still point at is emptied (it holds no
 * window any more) and freed by the last of them, when it pops or goes. */
void oc_key_free(oc_key_t *state);
size_t oc_key_bytes(const oc_key_t *state);
/* Nothing open: the state can go. */
int oc_key_idle(const oc_key_t *state);

#endif
