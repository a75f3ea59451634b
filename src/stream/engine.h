/* engine.h — the stream engine: a loaded spec turned into a plan, and one
 * partition's state run through it event by event. This is the ONE code
 * path that computes features: `weir ingest` (live), `weir backfill`
 * (replay, training data) and, later, the server call the same
 * engine_part_event, so online and offline features cannot drift apart.
 *
 * PER EVENT of partition p, in log order (DESIGN.md "Semantics"):
 *   1. t = event time. W = the partition's watermark = max time applied − lateness.
 *   2. t < W: the event is LATE. Nothing is applied; features are computed
 *      as of W (windows queried at W, last(x) from the key's state), the
 *      event goes to the late sink and is counted.
 *   3. Otherwise: max time and W advance; the key's state is looked up (a
 *      key whose newest event is older than W − ttl is stale and starts
 *      empty: ttl = longest window + lateness); windows expire below W; the
 *      event's aggregate arguments are added to the key's windows; features
 *      are evaluated as of t (every aggregate slot, then the features in
 *      dependency order); the event is added to the key's on-close
 *      aggregates; windows whose end W has passed are emitted to the sink
 *      (or only made due: DEFERRED CLOSES below).
 *   4. With a source `id:`, between the lookup and the windows: an event
 *      whose id its key applied at a time after W − dedup is a DUPLICATE
 *      (a client's retry). Its time has moved W (step 3) but nothing of the
 *      key changes: features are computed as of t, read-only, as for a late
 *      event; the result names the first's offset; it is counted. Otherwise
 *      its id is remembered (dedup.h). An event behind W is looked for in
 *      its key's ids before it is taken as late: a retry carries its first's
 *      time, which other keys' events move W past — a duplicate all the
 *      same, read as of W.
 * A TICK record carries a time T: max time = max(max time, T), W follows,
 * closing windows — time that advances without events (principle 2).
 *
 * Everything is a function of the records and their order: no clock, no
 * thread timing. Memory comes from weir_malloc and is reported per
 * partition (engine_part_stats). A partition is single-owner. */
#ifndef WEIR_STREAM_ENGINE_H
#define WEIR_STREAM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "spec/spec.h"
#include "stream/keymap.h"

struct cJSON;
typedef struct engine engine_t;
typedef struct engine_part engine_part_t;

/* Builds the plan for spec (which must outlive the engine): groups the
 * aggregate slots into per-key windows. Refuses, with a sentence, what the
 * engine cannot compute (e.g. first/last/min/max over a window of strings). */
int engine_new(const spec_t *spec, engine_t **out, char *err, size_t errlen);
void engine_free(engine_t *e);
const spec_t *engine_spec(const engine_t *e);

/* Where a partition's outputs go. Any callback may be NULL (not wanted,
 * e.g. while replaying what was already emitted). Slices and values are
 * valid during the call only. */
typedef struct engine_sink {
    /* An on-close aggregate's window closed: vals[i] is select[i]. Also a
     * pattern's match with emit: (agg = &pattern->out, see
     * spec_pattern_of; start/end = first event's time/match time; vals as
     * pattern_io_t.match in stream/pattern.h). partial: the window may miss
     * events applied before its aggregate began (PARTIAL WINDOWS, engine.c:
     * a reload added or changed it); 0 for a match. */
    void (*window)(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                   int64_t start, int64_t end, int partial, const expr_value_t *vals);
    /* A late event: not applied, scored as of the watermark. */
    void (*late)(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                 int64_t watermark, weir_slice_t event);
    void *ctx;
    /* A key's features changed other than by an event of its own applied:
     * its state expired (TTL: the sweep, its next event finding it stale, a
     * reload moving only live keys), or a pattern matched at the watermark
     * (held events released in time order, a `not` confirmed at its
     * deadline; a match on the key's own event calls it too). May be NULL. */
    void (*changed)(void *ctx, uint32_t part, weir_slice_t key);
} engine_sink_t;

/* One partition's state. The engine must outlive it; sink is copied. */
engine_part_t *engine_part_new(const engine_t *e, uint32_t part, const engine_sink_t *sink);
void engine_part_free(engine_part_t *p);
void engine_part_set_sink(engine_part_t *p, const engine_sink_t *sink);

/* DEFERRED CLOSES. By default the on-close windows a watermark step closes
 * are emitted inside the event or tick that made the step. A server turns
 * that off (defer = 1): the step then only makes them due, and the server
 * emits them with engine_part_close_due, a bounded number per call, outside
 * any request — at a million keys one step of a tumbling hour closes a
 * hundred thousand windows, and emitting them inside one request held its
 * partition for up to 100 ms (src/serve/runtime.c, CLOSER). What is emitted
 * is the same either way: a due window's contents are final (an event that
 * could still fall in it would be late), so only when, and where in the
 * output file, it is written differs. A key that is reset or expired while
 * windows of its are due emits them first. Patterns are not deferred. */
void engine_part_defer_closes(engine_part_t *p, int defer);
/* Emits due windows (end <= watermark) in timer order, up to max of them;
 * returns how many timers it took (stale ones included); 0 if none is due. */
size_t engine_part_close_due(engine_part_t *p, size_t max);
/* 1 if an on-close window is due. */
int engine_part_has_due(const engine_part_t *p);

/* What processing an event gave. Arrays belong to the partition and are
 * valid until its next call. */
typedef struct engine_result {
    int late;
    int duplicate;         /* its id was applied within dedup: nothing applied (step 4) */
    uint64_t duplicate_of; /* then: the log offset of the event that brought the id */
    int64_t time;
    int64_t watermark;          /* after this event */
    weir_slice_t key;
    uint64_t key_hash;          /* keymap_hash(key), for a caller that keys by it too */
    const expr_value_t *fields; /* the decoded event, by field slot */
    const expr_value_t *features; /* by feature index (declared order); NULL below
                                     engine_part_features_from's offset */
    const struct cJSON *json;     /* the event's JSON (record path), else NULL */
    weir_slice_t raw;             /* the event as logged */
} engine_result_t;

/* Processes one decoded event (fields by the source's slots; key and time
 * not null) at log offset `offset`. `raw` is the event as logged (for the
 * late sink). Returns 0, or WEIR_ETOOBIG if a lower() result does not fit
 * the scratch (see expr.h) — the event is then not applied. */
int engine_part_event(engine_part_t *p, uint64_t offset, const expr_value_t *fields,
                      weir_slice_t raw, engine_result_t *res, char *err, size_t errlen);
/* As engine_part_event, for a caller that has the key's hash already
 * (h = engine_event_hash(p, fields): a replay's prefetch needed it). */
int engine_part_event_hashed(engine_part_t *p, uint64_t offset, const expr_value_t *fields,
                             uint64_t h, weir_slice_t raw, engine_result_t *res, char *err,
                             size_t errlen);

/* Events applied at offsets below `from` get no features (res->features is
 * NULL; nothing else changes: the state they leave is the same to the
 * byte): for a replay whose rows do not read them (events decided before
 * a crash), which spares their evaluation, 5% of such a replay's CPU.
 * A late event's features are computed whatever its offset. 0, the
 * default: every event's features are computed. */
void engine_part_features_from(engine_part_t *p, uint64_t from);

/* Hints for a caller that knows its events ahead (a replay reading its log
 * ahead, pipeline.c): they change nothing. At a million keys nearly every
 * event's key state is cold; asking for it a few events before it is used
 * lets the waits overlap. Each stage asks for what the one before brought
 * in points to, so a caller spaces them a few events apart: for a decoded
 * event with h = engine_event_hash, stage 0 asks for its key's slot, 1 for
 * its key's entry, 2 for the blocks the entry points to (windows' heap
 * storage, on-close state), 3 for the on-close state's arrays. */
uint64_t engine_event_hash(const engine_part_t *p, const expr_value_t *fields);
/* What stage 2 found, for stage 3: the key's value (NULL: none yet) and the
 * map's keymap_frees() then. A caller keeps one per event, zeroed when the
 * event is read. */
typedef struct engine_hint {
    const void *value;
    uint64_t frees;
} engine_hint_t;
void engine_part_prefetch(const engine_part_t *p, const expr_value_t *fields, uint64_t h, int stage,
                          engine_hint_t *hint);

/* The features of `key` as of the partition's newest time, without an
 * event: fields are null (features reading them are null), aggregates and
 * last(x) come from the key's state (empty if it has none or is stale).
 * Read-only. Returns 1 if the key has state, 0 if not. */
int engine_part_lookup(engine_part_t *p, weir_slice_t key, engine_result_t *res);
/* As engine_part_lookup, as of the key's own time (res->time) instead of
 * the partition's: the latest of its newest event's time, its newest
 * recorded pattern match's (a `not` confirmed at a deadline after its last
 * event) and the watermark a late event of the key read its windows at
 * (they answer nothing below it). What the key's own history made of its
 * features, whatever other keys did to the partition's time since: for the
 * online store (src/serve/online_store.h), a value that depends on the log
 * alone. */
int engine_part_lookup_newest(engine_part_t *p, weir_slice_t key, engine_result_t *res);

/* How long a key's state outlives its newest event (TTL in engine.c). */
int64_t engine_ttl(const engine_t *e);

/* Calls cb with every key the partition holds an entry for (live, or
 * expired and not yet swept), in one pass that must not be interleaved
 * with anything that changes the partition. Read-only. */
void engine_part_each_key(const engine_part_t *p, void (*cb)(void *ctx, weir_slice_t key),
                          void *ctx);

/* Whether the partition holds an entry for `key` (live or expired but not
 * yet swept: either way its memory is there already). Read-only. */
int engine_part_holds(const engine_part_t *p, weir_slice_t key);

/* A tick at time T (see above). */
void engine_part_tick(engine_part_t *p, int64_t time);

/* Processes a log record: decodes the event JSON by the source schema and
 * calls engine_part_event (returns 1, res filled), or applies a tick
 * (returns 0). A record that does not decode is WEIR_EINVAL with the reason
 * (it could only have been written by something other than ingest). */
int engine_part_record(engine_part_t *p, uint64_t offset, int tick, weir_slice_t value,
                       engine_result_t *res, char *err, size_t errlen);

/* The tick record value for time T ("{"time":T}"), and its parser. */
void engine_tick_value(weir_buf_t *b, int64_t time);
int engine_tick_parse(weir_slice_t value, int64_t *time);

/* The entity key of a decoded event: a string's bytes, or an int's decimal
 * digits (tmp, at least 24 bytes, holds them) — the bytes partitioning hashes. */
weir_slice_t engine_event_key(const spec_source_t *src, const expr_value_t *fields, char *tmp);

typedef struct engine_stats {
    uint64_t events, late, ticks, windows_emitted, evicted;
    uint64_t duplicates; /* events not applied for their id (engine.h step 4) */
    uint64_t keys;
    uint64_t state_bytes; /* heap bytes of keyed state (table, entries, windows) */
    int64_t watermark;    /* INT64_MIN before the first event */
    uint64_t matches;     /* pattern matches found */
    uint64_t partial;     /* pattern runs (partial matches) alive */
    uint64_t held;        /* events held for patterns' time order */
} engine_stats_t;
void engine_part_stats(const engine_part_t *p, engine_stats_t *out);
/* The figures that need no walk over the keys: all but state_bytes and the
 * partial matches' count (left at what the partition-wide counters hold). */
void engine_part_counters(const engine_part_t *p, engine_stats_t *out);

/* The same figures gathered a slice at a time, so that a caller who holds
 * the partition's lock only per slice does not stall its events for the
 * whole walk (a million keys are a cache miss each: ~100 ms). Start with
 * ENGINE_STATS_WALK_INIT and call until it returns 1, which fills *out.
 * The partition may change between calls (the caller unlocks): keys
 * inserted, moved or deleted meanwhile may be missed or counted twice, so
 * the sums are then approximate; the walk itself stays in bounds. */
typedef struct engine_stats_walk {
    keymap_iter_t it;
    uint64_t bytes, partial;
} engine_stats_walk_t;
#define ENGINE_STATS_WALK_INIT {KEYMAP_ITER_INIT, 0, 0}
int engine_part_stats_step(const engine_part_t *p, engine_stats_walk_t *w, uint32_t budget,
                           engine_stats_t *out);

#endif
