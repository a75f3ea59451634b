/* runtime.h — what `weir run` serves: one pipeline (spec, engine, event
 * log), its decision layer (model + rules) and decision log, its outputs,
 * and the locks that let many HTTP worker threads share them.
 *
 * PER EVENT, holding its partition's lock for the whole chain so that the
 * event log's order is the processing order (what replay reproduces):
 *   event log append → engine_part_event (state, features) → decide_event
 *   (score, contributions, rules) → decision log append → the caller's
 *   callback (which formats its response while the results are valid).
 * Events of one request that fall in one partition share one append to
 * each log.
 *
 * THE DECISION LOG is a second log rooted at DATA/decisions (topic = the
 * source, same partitions): per event one record, key = the entity key,
 * value = {"offset": input offset, "decision", "rule", "score", "model",
 * "late", "features": {...}}. Decisions are buffered per partition and
 * written in batches (every decision_flush_ms; runtime.c says why that
 * weakens nothing). Start-up (runtime_recover) reads each partition's last
 * decided input offset, replays the event log through the engine to
 * rebuild state, and decides and appends only the events after it: a crash
 * between the two appends, or one that takes a buffered batch, leaves no
 * event without a decision and none with two (exactly-once decisions,
 * DESIGN.md "Guarantees"). */
#ifndef WEIR_SERVE_RUNTIME_H
#define WEIR_SERVE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "decide/decide.h"
#include "log/log.h"
#include "serve/metrics.h"
#include "spec/spec.h"
#include "stream/engine.h"

typedef struct runtime_config {
    const char *spec_path;
    const char *datadir;
    log_ack_t ack;        /* for the event log (decision batches: always written) */
    int64_t tick_idle_ms; /* a partition idle this long gets a tick at the newest time; 0 = never */
    int decision_flush_ms; /* buffered decisions are written after at most this; 0 = per request */
    int skip_bad;          /* --skip-bad-events: replay skips logged events the spec cannot read */
    int partial_state; /* --allow-partial-state: no checkpoint fits and retention cut the log: start
                          anyway */
    int migrate_state; /* --migrate-state: no checkpoint fits the plan: move the newest one's state
                          to it (runtime.c PLAN CHANGED SINCE THE CHECKPOINT) rather than replay */
    uint64_t max_memory; /* --max-memory: the memory budget in bytes (MEMORY BUDGET); 0 = none */
} runtime_config_t;

/* MEMORY BUDGET. Keyed state grows with the keys, and a process the kernel
 * kills for memory replays the same log into the same memory at restart:
 * a crash loop, not a slowdown. So, as Redis's maxmemory with its
 * noeviction policy: once the memory used (runtime_memory_used) is over
 * max_memory, an event of a key the partition holds no state for is
 * refused before it is logged (HTTP 503 memory_full); the keys held go on
 * being scored, and their state is freed as they expire (ttl). With the
 * heap itself over max_memory and an eighth more — the held keys' own
 * state grew: sessions, patterns, distinct sets — every event is refused
 * (the heap alone: memory malloc keeps beyond it would otherwise refuse
 * the events whose time lets keys expire, and never let go). Nothing is
 * evicted: a fraud feature that forgot a card would answer wrong, not
 * slow. A replay is never refused (the log is what happened); a state it
 * rebuilds over the budget is said (housekeeping says each change of
 * level, on stderr). A request's events of one partition are admitted
 * together, against the memory used before they are applied: one request
 * may carry weir past the budget by what its new keys take.
 *
 * What is counted is the larger of the heap (weir_alloc_used: every
 * allocation weir makes) and the anonymous resident memory (memlimit.h),
 * because the kernel kills on the second: malloc's overhead and the free
 * memory its arenas keep, huge pages collapsed, a checkpoint's buffers
 * made it 3% to 28% more than the heap in a platform engineer's cgroup
 * runs, and a budget on the heap alone was OOM-killed six times at 192 MiB.
 * The default budget is five eighths of what memlimit.h finds: with the
 * eighth more that refuses everything, 70%, leaving the rest for a
 * checkpoint's passing buffers, the page cache of the logs, the kernel's
 * own. Freed memory goes back to the kernel (malloc_trim) after
 * recovery, when the heap falls by an eighth from its peak, and every few
 * seconds while the resident figure alone is over the budget: memory
 * freed in the recovery threads' arenas stayed resident, and new keys
 * then grew other arenas past the limit. */
#define RUNTIME_MEMORY_HARD(max) ((max) + (max) / 8)
#define RUNTIME_MEMORY_DEFAULT(limit) ((limit) / 8 * 5)

typedef struct runtime runtime_t;

/* Opens the pipeline (creating the event log topic if needed), loads the
 * model, opens the decision log and the outputs. Nothing is replayed yet. */
int runtime_open(const runtime_config_t *cfg, runtime_t **out, char *err, size_t errlen);
/* Writes the buffered decisions, syncs and closes both logs and the
 * outputs, frees rt. Returns 0 or the first error (err filled). */
int runtime_close(runtime_t *rt, char *err, size_t errlen);

const spec_t *runtime_spec(const runtime_t *rt);
const spec_source_t *runtime_source(const runtime_t *rt);
uint32_t runtime_partitions(const runtime_t *rt);
/* Partition p's decision log (read by the Kafka sink: kafka_sink.h). */
struct log_part *runtime_decision_log(runtime_t *rt, uint32_t p);
/* Partition p's event log. */
struct log_part *runtime_event_log(runtime_t *rt, uint32_t p);
metrics_t *runtime_metrics(runtime_t *rt);

/* Rebuilds state from the event log and decides the logged events that
 * have no decision yet; partitions in parallel on `threads` threads. Then
 * the runtime is ready and its decision flusher thread runs. */
int runtime_recover(runtime_t *rt, unsigned threads, char *err, size_t errlen);
int runtime_ready(const runtime_t *rt);
/* Non-zero, with why, if a partition's event or decision log refuses
 * appends (a failed write or fsync): events of that partition are refused
 * until a restart, so the server is not ready for traffic. */
int runtime_failed(runtime_t *rt, char *why, size_t whylen);

/* An event decoded at the edge, ready to be logged. */
typedef struct runtime_event {
    weir_slice_t raw;           /* the event's JSON text, as logged */
    const expr_value_t *fields; /* by the source's slots; borrowed */
    weir_slice_t key;           /* the entity key's bytes (engine_event_key) */
    uint32_t part;              /* partition: weir_hash64(key) % partitions */
    uint32_t index;             /* the caller's number for it */
    /* A message of the source's Kafka topic (kafka_source.h): its
     * partition and offset. Logged only if newer than the partition's mark
     * (kafka_marks.h), with a SOURCE record, and durably (LOG_ACK_DURABLE:
     * the consumer commits the offset once runtime_process returns). */
    int from_kafka;
    int32_t kpart;
    int64_t koff;
} runtime_event_t;

/* The least and the greatest over weir's partitions of their mark of Kafka
 * partition k (kafka_marks.h: the newest offset of k logged there,
 * KAFKA_MARKS_NONE if none), each read under its partition's lock. */
void runtime_kafka_span(runtime_t *rt, int32_t k, int64_t *lo, int64_t *hi);
/* The Kafka cluster the source reads (its id): the SOURCE records name
 * it, and every partition's marks of another cluster are dropped. Returns
 * how many partitions had some. NULL or "" (not known: brokers that give
 * none, a question that timed out): the records name the marks' cluster,
 * and nothing is dropped. */
uint32_t runtime_kafka_cluster(runtime_t *rt, const char *cluster);
/* Drops every partition's mark of Kafka partition k (the topic there is
 * not the one they were of), logging the reset (kafka_marks.h) in each
 * first. 0, or an append's error (err filled; the partitions after it keep
 * their marks). */
int runtime_kafka_forget(runtime_t *rt, int32_t k, char *err, size_t errlen);

/* Where the partition of a key is. */
uint32_t runtime_partition_of(const runtime_t *rt, weir_slice_t key);

/* What processing one event gave; valid during the callback only. */
typedef struct runtime_outcome {
    const runtime_event_t *ev;
    uint64_t offset;
    const engine_result_t *res; /* NULL if the engine could not apply it */
    const decision_t *decision;
    weir_slice_t features_json; /* {"name": value, ...} in declared order */
    const char *why;            /* the engine's reason when res is NULL */
    int refused;                /* not logged, over the memory budget (MEMORY BUDGET): why says
                                   so, offset and decision are unset */
    int logged_before;          /* a Kafka message logged already (its mark is past it): nothing
                                   was done, offset and decision are unset */
} runtime_outcome_t;
typedef void (*runtime_outcome_cb)(void *ctx, const runtime_outcome_t *o);

/* Logs and processes evs[0..n) (reordered by partition in place), calling
 * cb for each under its partition's lock. want_contribs: compute the top
 * contributions. Returns 0, or an error from a log append (err filled):
 * then events of the failing partition and after it were not processed. */
int runtime_process(runtime_t *rt, runtime_event_t *evs, size_t n, int want_contribs,
                    runtime_outcome_cb cb, void *ctx, char *err, size_t errlen);

/* Takes a checkpoint now (checkpointer.h) and appends {"checkpoint": id,
 * "offsets": [...], "bytes", "ms", "pause_ms"}; periodic ones run by
 * themselves every checkpoint_interval once ready, and one at close. */
int runtime_checkpoint(runtime_t *rt, weir_buf_t *json, char *err, size_t errlen);

/* Appends {"key", "partition", "found", "watermark", "features"} for key as
 * of now (engine_part_lookup). */
void runtime_features(runtime_t *rt, weir_slice_t key, weir_buf_t *out);

/* SIGHUP and POST /v1/admin/reload (reload.c): reads the spec file again.
 * Unchanged: reloads the model file (in-flight decisions finish on the old
 * model). Changed: replaces the spec live, moving the state of what did
 * not change (reload.c). *spec_changed says which; on failure the running
 * spec and model stay. Sets *version to the live model version. Says the
 * outcome on stderr, naming `via` (what asked: "SIGHUP", ...). */
int runtime_reload(runtime_t *rt, const char *via, uint64_t *version, uint64_t *spec_version,
                   int *spec_changed, char *err, size_t errlen);
uint64_t runtime_model_version(runtime_t *rt);
/* The live spec's version (spec_ledger.h). */
uint64_t runtime_spec_version(runtime_t *rt);
/* The memory the budget holds against (MEMORY BUDGET): max(heap,
 * anonymous resident), the resident figure as housekeeping last read it
 * from /proc (every 250 ms, and at ready). */
uint64_t runtime_memory_used(runtime_t *rt);
/* The live model's digest (model_digest; "" without a model); not during a reload. */
const char *runtime_model_digest(const runtime_t *rt);

/* Periodic work of the control thread: ticks for idle partitions, outputs
 * flushed to the OS. now_ms: wall clock. */
void runtime_housekeep(runtime_t *rt, int64_t now_ms);

/* Appends /metrics: the counters and the gauges of logs, state and model.
 * Writes the buffered decisions first, so the decision log's gauges count
 * every decision made. */
void runtime_render_metrics(runtime_t *rt, weir_buf_t *b);

/* Appends a JSON value (outputs_json_value) and the features object. */
void runtime_features_json(const spec_t *spec, const expr_value_t *features, weir_buf_t *b);

#endif
