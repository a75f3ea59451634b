/* runtime_int.h — the runtime's internal types, shared by runtime.c (the
 * per-event path, checkpoints), recovery.c (the start) and reload.c
 * (swapping in a new spec). Nothing outside src/serve includes this. The THREADS comment at
 * the top of runtime.c says who may touch what. */
#ifndef WEIR_SERVE_RUNTIME_INT_H
#define WEIR_SERVE_RUNTIME_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/ticker.h"

#include "decide/decision_log.h"
#include "decide/outputs.h"
#include "decide/pipeline.h"
#include "serve/checkpointer.h"
#include "serve/kafka_marks.h"
#include "serve/runtime.h"
#include "stream/engine_migrate.h"

#define DECISION_BATCH_MAX   1024      /* buffered decisions that force a write (runtime.c) */
#define DECISION_BATCH_BYTES (1 << 20) /* buffered bytes that force a write */

/* One buffered decision record: its value at dbuf[at, at + vlen), its key
 * right after (the request's memory is gone when the batch is written). */
typedef struct rt_pending {
    size_t at;
    uint32_t vlen, klen;
} rt_pending_t;

typedef struct rt_part {
    pthread_mutex_t lock;
    /* Requests waiting for lock (part_lock_request): a checkpoint's writer
     * holding it steps aside after the key it is encoding (runtime.c). */
    atomic_uint waiting;
    uint32_t id;
    engine_part_t *engine;
    log_part_t *log, *dlog;
    weir_buf_t scratch, dscratch; /* log encode buffers */
    weir_buf_t feat;              /* one event's features JSON */
    weir_buf_t duprec, dupdec;    /* a duplicate's first's record, its decision (duplicates.c) */
    decision_finder_t dfind;      /* finds those records in dlog */
    /* Output lines not written yet, all for one file (runtime.c, SINKS):
     * one line while serving, up to OUT_BATCH_BYTES while recovering. */
    weir_buf_t oline;
    outputs_span_t ospan;         /* the span of the last window line */
    uint64_t olines;
    const spec_aggregate_t *oagg; /* their file: this aggregate's, or late.ndjson if NULL */
    int obatch;                   /* recovering: gather lines */
    log_rec_t *recs;              /* one request's event records */
    size_t rcap;
    /* buffered decisions, oldest first (see DECISIONS ARE WRITTEN IN BATCHES) */
    weir_buf_t dbuf;
    rt_pending_t *dpend;
    log_rec_t *drecs;
    size_t ndpend, dcap;
    _Atomic size_t dpending; /* = ndpend, for the flusher's lock-free peek */
    int dfail;               /* a decision append failed: its code (then refuse) */
    char dfail_err[256];
    decide_scratch_t lower;   /* lower() scratch for the rules */
    _Atomic int64_t max_time; /* newest event time applied (INT64_MIN: none) */
    int tick_failing;         /* its last tick's append failed, and said so (under lock) */
    _Atomic int64_t last_ms;  /* wall clock of the last append */
    engine_stats_t stats;     /* the gauges thread's last walk, for /metrics */
    /* recovery */
    int64_t decided;    /* input offset of the last decision made (read from the decision
                           log at start, then kept by decision_record), -1: none */
    uint64_t from;      /* replay starts here: the restored checkpoint's offset, else 0 */
    uint64_t dfrom;     /* the decision log's position at the same moment, else 0 */
    /* a Kafka source's marks (kafka_marks.h) and its SOURCE records' values */
    kafka_marks_t kmarks;
    weir_buf_t krecs;
} rt_part_t;

/* A spec replaced by a reload, kept until close (reload.c says why). */
typedef struct rt_retired {
    spec_t *spec;
    const char **outcomes;
} rt_retired_t;

struct runtime {
    runtime_config_t cfg;
    pipeline_t pl;
    decide_t *decide;
    log_t *dlog;
    log_topic_t *dtopic;
    outputs_t *out;
    pthread_mutex_t out_lock;
    int out_said; /* the outputs' failure was said (once: it stays until a restart) */
    rt_part_t *parts;
    uint32_t nparts;
    metrics_t m;
    const char **outcomes;
    _Atomic int ready;
    weir_ticker_t flusher; /* the decision flusher (from ready to close) */
    weir_ticker_t gauges;  /* the state gauges' walk (STATE GAUGES in runtime.c) */
    weir_ticker_t closer;  /* emits the on-close windows events made due (CLOSER in runtime.c) */
    _Atomic int64_t gauges_asked_ms; /* wall clock of the last scrape (0: none yet) */
    _Atomic int64_t gauges_done_ms;  /* when the last walk began (0: none yet) */
    /* recovery */
    _Atomic uint32_t next_part;
    _Atomic int recover_rc;
    char recover_err[1024];
    pthread_mutex_t err_lock;
    /* the live model's version, for readers that hold no lock (/metrics): a
     * spec reload frees the decide_t they would read it from */
    _Atomic uint64_t model_version;
    _Atomic uint64_t spec_version; /* the live spec's (spec_ledger.h), read the same way */
    /* MEMORY BUDGET (runtime.h): the anonymous resident memory as last
     * sampled (sample_resident); the heap's peak since the last malloc_trim
     * and the rest (housekeeping's alone) */
    _Atomic uint64_t rss_anon;
    uint64_t trim_peak, trim_at_ns, trim_gap_ns;
    int mem_said;            /* the level last said (say_memory) */
    uint64_t mem_said_ns;    /* and when */
    const ckpt_t *restoring; /* the checkpoint being decoded by the recovery threads */
    const engine_t *restoring_plan; /* its plan, when not this spec's (moved to it), or NULL */
    engine_migrate_stats_t *moved;  /* per partition, when moved */
    uint64_t recovered_from;  /* its id, 0 = none */
    int replay_outputs;  /* replay writes the outputs again (OUTPUTS ACROSS CRASHES, outputs_dir.h)
                          */
    int outputs_foreign; /* the checkpoint restored is of other output files (restore_checkpoint) */
    double recovery_s;
    pthread_t cut_remover; /* deletes the outputs a replay retired (outputs_dir_remove_retired) */
    int cut_remover_on;
    /* checkpoints */
    checkpointer_t *ckptr;
    /* reloads (reload.c) */
    pthread_mutex_t reload_lock; /* one reload at a time; also keeps /metrics off metrics_set_rules */
    weir_buf_t spec_text;        /* the running spec's file, to tell a changed spec */
    rt_retired_t *retired;
    size_t nretired;
    _Atomic uint64_t spec_reloads;
    struct online_store *online; /* the spec's online_store (online_store.h), or NULL */
    /* the source's Kafka topic (kafka_source.h), or NULL; its consumer from ready on */
    char *ktopic;
    char kcluster[KAFKA_CLUSTER_MAX]; /* (the source's thread alone writes and reads it) */
    struct kafka_source *kafka;
    /* sinks: decisions: kafka: (kafka_sink.h), from ready on; or NULL */
    struct kafka_sink *ksink;
};

/* The engine sinks of every partition (outputs under out_lock). */
void runtime_sink_window(void *ctx, uint32_t part, const spec_aggregate_t *agg, weir_slice_t key,
                         int64_t start, int64_t end, int partial, const expr_value_t *vals);
void runtime_sink_late(void *ctx, uint32_t part, uint64_t offset, weir_slice_t key, int64_t time,
                       int64_t watermark, weir_slice_t event);
void runtime_sink_changed(void *ctx, uint32_t part, weir_slice_t key);

/* runtime.c's pieces recovery.c replays with: a partition's buffered
 * output lines written, an event scored and decided, its decision record
 * buffered, the buffered records appended; and what runs from ready on. */
void runtime_out_write_part(runtime_t *rt, rt_part_t *p);
/* Returns 1 when it also wrote the features JSON into p->feat: a
 * duplicate answered as its first (duplicates.c); 0: the caller writes them. */
int runtime_decide_one(runtime_t *rt, rt_part_t *p, const engine_result_t *res, size_t raw_len,
                       int contribs, decision_t *d);
/* A duplicate's decision: its first's (at input offset `first`), from its
 * record, into d and p->feat. 1, or 0 when that record cannot be had. */
int runtime_as_first(runtime_t *rt, rt_part_t *p, uint64_t first, decision_t *d);
/* After recovery: the memory its threads freed (decoded checkpoint
 * buffers, the replay's) back to the kernel (MEMORY BUDGET, runtime.h). */
void runtime_trim_after_recovery(runtime_t *rt);
void runtime_decision_record(rt_part_t *p, uint64_t offset, weir_slice_t key,
                             const engine_result_t *res, const decision_t *d,
                             weir_slice_t features_json);
int runtime_flush_decisions(runtime_t *rt, rt_part_t *p);
void runtime_start_tickers(runtime_t *rt);

/* reload.c: takes the spec's text at open; frees the replaced specs at close. */
int runtime_reload_init(runtime_t *rt, char *err, size_t errlen);
void runtime_reload_free(runtime_t *rt);

#endif
