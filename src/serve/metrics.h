/* metrics.h — the server's counters and latency histograms, and their
 * Prometheus text form (GET /metrics, text format 0.0.4).
 *
 * THREADS: every field is a C11 atomic updated with relaxed order by
 * whichever thread does the work (HTTP workers, the start-up replay, the
 * control thread); /metrics reads them without a lock. A scrape therefore
 * sees each counter exactly but not all counters at one instant, which is
 * what Prometheus expects from a live process.
 *
 * SHARDS. The counters every request touches (a score request adds to ~20)
 * live in METRICS_SHARDS copies, one per CPU (sched_getcpu() modulo), each
 * on its own cache lines, summed when rendered: two workers on two cores
 * then do not bounce the same lines on every request. A thread that moves
 * between CPUs mid-request only spreads its counts over two shards; the
 * sums are the same.
 *
 * Gauges that belong to other owners (log offsets, live keys, state bytes,
 * model version) are not stored here: the runtime appends them at scrape
 * time with metrics_gauge_*(), so that there is one source for each number. */
#ifndef WEIR_SERVE_METRICS_H
#define WEIR_SERVE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Stages of an event's path through the server (DESIGN.md data flow). */
typedef enum metrics_stage {
    METRICS_STAGE_DECODE,         /* JSON parse + schema decode of the request */
    METRICS_STAGE_LOG_APPEND,     /* event log append (write to the OS) */
    METRICS_STAGE_FEATURES,       /* state update + features (engine_part_event) */
    METRICS_STAGE_MODEL,          /* model score, top contributions and the decision
                                     rules (decide_event does all three in one call) */
    METRICS_STAGE_DECISION_LOG,   /* features text + decision record into its partition's batch */
    METRICS_STAGE_TOTAL,          /* request received → response ready */
    METRICS_STAGE_DECISION_FLUSH, /* one batch of decisions appended to the decision log */
    METRICS_NSTAGES
} metrics_stage_t;

/* Why an event was rejected (label reason="..."). */
typedef enum metrics_reason {
    METRICS_REJ_MALFORMED_JSON, /* not JSON */
    METRICS_REJ_NOT_OBJECT,     /* JSON, but not an object */
    METRICS_REJ_INVALID_EVENT,  /* missing key/time, a field of the wrong type */
    METRICS_REJ_PROCESSING,     /* logged, but the engine could not apply it */
    METRICS_REJ_MEMORY_FULL,    /* not logged: over the memory budget (runtime.h) */
    METRICS_NREASONS
} metrics_reason_t;

/* HTTP routes (label route="..."). */
typedef enum metrics_route {
    METRICS_ROUTE_SCORE,
    METRICS_ROUTE_EVENTS,
    METRICS_ROUTE_FEATURES,
    METRICS_ROUTE_RELOAD,
    METRICS_ROUTE_CHECKPOINT,
    METRICS_ROUTE_METRICS,
    METRICS_ROUTE_HEALTH,
    METRICS_ROUTE_DASHBOARD,
    METRICS_ROUTE_OTHER,
    METRICS_NROUTES
} metrics_route_t;

#define METRICS_NBUCKETS 20 /* finite upper bounds; +Inf is the count */
#define METRICS_NCODES   17 /* distinct status codes tracked (see metrics.c) */

/* The count is the sum of the buckets (the last one holds what is above
 * every bound), not a counter of its own: one atomic add less per
 * observation, and a scrape's +Inf bucket always equals the sum of the
 * others. */
typedef struct metrics_hist {
    _Atomic uint64_t bucket[METRICS_NBUCKETS + 1]; /* non-cumulative; summed when rendered */
    _Atomic uint64_t sum_ns;
} metrics_hist_t;

#define METRICS_SHARDS 8

/* The per-request counters, one copy per shard (see SHARDS). */
typedef struct metrics_shard {
    _Alignas(64) _Atomic uint64_t accepted;
    _Atomic uint64_t late;
    _Atomic uint64_t duplicates; /* events whose id was applied within dedup (engine.h) */
    _Atomic uint64_t rejected[METRICS_NREASONS];
    _Atomic uint64_t *decisions; /* [nrules + 1]: the last counts "no rule matched" */
    _Atomic uint64_t requests[METRICS_NROUTES][METRICS_NCODES];
    metrics_hist_t stage[METRICS_NSTAGES];
} metrics_shard_t;

typedef struct metrics {
    const char *source;    /* the spec's source name (owned by the spec) */
    const char **outcomes; /* rule index → decision name (owned by the spec) */
    uint32_t nrules;
    metrics_shard_t shard[METRICS_SHARDS];
    void *decisions_mem; /* backs the shards' decisions, a cache line apart */
    void **retired;      /* earlier rules' counters (metrics_set_rules), freed at the end */
    size_t nretired;
    _Alignas(64) _Atomic uint64_t replayed, redecided;
    _Atomic uint64_t reloads, reload_failures;
    _Alignas(64) _Atomic int64_t inflight; /* exact: the overload limit reads it */
} metrics_t;

/* Sets up m for a source and its decision rules (names borrowed: they must
 * outlive m). */
void metrics_init(metrics_t *m, const char *source, const char **outcomes, uint32_t nrules);
void metrics_free(metrics_t *m);
/* The decision rules changed (a spec reload): per-rule counters for the
 * new rules, each outcome's count carried over to the first new rule of
 * that name. The caller keeps metrics_decision and metrics_render from
 * running meanwhile (runtime.c: every partition lock and the reload lock);
 * the old counters stay allocated until metrics_free. */
void metrics_set_rules(metrics_t *m, const char **outcomes, uint32_t nrules);

/* The calling thread's shard (by the CPU it runs on). */
metrics_shard_t *metrics_shard(metrics_t *m);

/* Records a duration in nanoseconds in a stage's histogram. */
void metrics_observe(metrics_t *m, metrics_stage_t stage, uint64_t ns);
/* Counts a decision by the index of the rule that made it (-1: none). */
void metrics_decision(metrics_t *m, int rule);
/* Counts a finished HTTP request. */
void metrics_request(metrics_t *m, metrics_route_t route, int status);

static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Appends everything m holds in the Prometheus text format. */
void metrics_render(metrics_t *m, weir_buf_t *b);

/* Helpers for gauges rendered by their owners: a "# HELP/# TYPE" header,
 * then samples. labels is the text inside {} without the braces, or NULL. */
void metrics_header(weir_buf_t *b, const char *name, const char *type, const char *help);
void metrics_sample_u64(weir_buf_t *b, const char *name, const char *labels, uint64_t v);
void metrics_sample_f64(weir_buf_t *b, const char *name, const char *labels, double v);

#endif
