/* engine_state.h — one partition's engine state as bytes, for checkpoints
 * (src/log/checkpoint.h stores them; src/serve/checkpointer.c takes them).
 *
 * WHAT IS SAVED: the partition's max time and watermark, its log-order
 * counter and statistics, every key (bytes, newest time for TTL) with its
 * windows, last(x) values and on-close state, and the pending on-close
 * timers; with patterns, each key's runs and match times and the
 * partition's held events and deadlines (stream/pattern.h). Restoring it and then processing the
 * log from the checkpoint's offset gives bit-identical features, scores and window outputs to
 * processing the whole log (tests/unit/stream_engine_state_test.c checks
 * this on random streams).
 *
 * THE PLAN FINGERPRINT. State is only meaningful for the plan that wrote
 * it: the same windows over the same arguments, the same on-close
 * aggregates, lateness, key field and partition count. The fingerprint is
 * a hash of exactly those; a changed model, rules or a new feature that
 * only combines existing aggregates keeps it, anything that changes what a
 * key stores changes it — and a checkpoint with another fingerprint is not
 * used (recovery replays from the log start instead, and says why).
 *
 * FORMAT (varints and raw 64-bit values as src/stream/codec.h):
 *   "WENG" u8 version (2), u64 fingerprint, max time, watermark, seq,
 *   events, late, ticks, windows emitted, evicted, [duplicates: a plan with
 *   a source id], per on-close aggregate its PARTIAL WINDOWS mark (engine.c;
 *   not in version 1, which is read as none), the keymap (keymap_encode;
 *   per key: per window group win_encode, per last(x) slot its type and
 *   value, per on-close aggregate oc_key_encode, [its patterns' runs], [its
 *   ids: dedup_encode]), the timers (oc_timers_encode), [the patterns'
 *   partition state]. Decoding checks every length and invariant: corrupt
 *   bytes give an error naming the byte offset, never a crash. A weir
 *   before version 2 refuses a version 2 state (bad version): its recovery
 *   replays the log instead. */
#ifndef WEIR_STREAM_ENGINE_STATE_H
#define WEIR_STREAM_ENGINE_STATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "stream/engine.h"

/* The feature plan's fingerprint, written with every state and checkpoint:
 * a state is restored only into the plan it was built by. */
uint64_t engine_fingerprint(const engine_t *e);
/* Whether a state or checkpoint of fingerprint fp fits e's plan. */
int engine_fingerprint_fits(const engine_t *e, uint64_t fp);

/* Appends p's state to b. When flush is not NULL it is called whenever b
 * holds more than ENGINE_STATE_CHUNK bytes (and not at the end: the caller
 * takes the rest), so a partition of any size streams through a bounded
 * buffer; the first non-zero return of flush stops further calls and is
 * returned. Read-only on p. */
#define ENGINE_STATE_CHUNK (4u << 20)
typedef int (*engine_state_flush_cb)(void *ctx, weir_buf_t *b);
int engine_part_encode(const engine_part_t *p, weir_buf_t *b, engine_state_flush_cb flush,
                       void *ctx);

/* SNAPSHOTS: engine_part_encode's bytes for p as of one moment, taken
 * while p goes on processing events (checkpoints that do not stop the
 * partition: serve/checkpointer.h). engine_part_snap_begin marks the
 * moment: it encodes what is small (counters, watermark, pattern state)
 * and starts a keymap snapshot (keymap.h), so that each key of the moment
 * is encoded as it was, the first time anything would change it, or by
 * engine_part_snap_step (up to budget keys, fewer once *stop is non-zero:
 * keymap_snap_step), which also appends what has been encoded so far to
 * out. Each step returns 0 while keys are left, and 1 when the snapshot is
 * complete: then out has received, over the steps, an encoding that
 * engine_part_decode reads as p's state at the moment (keys in another
 * order than engine_part_encode's, and the on-close timers derived from
 * the keys' open windows: see oc_key_timers_encode), and the snapshot is
 * freed. engine_part_snap_abort abandons one. All three run under what
 * serializes calls on p (the partition's lock); in between, p may be
 * used as usual. Memory: keys written by requests wait in the snapshot
 * until the next step; at worst the encoded size of p. */
typedef struct engine_snap engine_snap_t;
engine_snap_t *engine_part_snap_begin(engine_part_t *p);
int engine_part_snap_step(engine_part_t *p, engine_snap_t *s, uint32_t budget,
                          const atomic_uint *stop, weir_buf_t *out);
void engine_part_snap_abort(engine_part_t *p, engine_snap_t *s);

/* Replaces the state of p — a partition that has processed nothing — with
 * the one in data[0..len). On failure p is left empty and err says what is
 * wrong (WEIR_ECORRUPT, or WEIR_EINVAL for another plan's fingerprint). */
int engine_part_decode(engine_part_t *p, const void *data, size_t len, char *err, size_t errlen);

/* The partition's watermark (INT64_MIN before its first event), without
 * engine_part_stats' walk over every key. */
int64_t engine_part_watermark(const engine_part_t *p);

#endif
