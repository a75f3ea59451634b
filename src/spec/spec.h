/* spec.h — a pipeline spec (DESIGN.md, "Pipeline spec (YAML)") loaded,
 * checked and compiled: the one description of a pipeline that the stream
 * engine, the model and the decision layer run.
 *
 * spec_load reads the YAML, checks every name, type, window and duration, and
 * compiles every expression once; after it succeeds nothing in the spec can
 * fail to resolve at run time. A loaded spec is immutable and may be read by
 * any number of threads.
 *
 * HOW THE ENGINE RUNS IT, per event of a source (one source for now):
 *
 *   1. Decode: the NDJSON object → src->nfields typed values, slot i holding
 *      field src->fields[i] (spec_decode_event does it from a cJSON object;
 *      missing fields are null, unknown fields are ignored here and kept by
 *      the log). The key is fields[src->key_slot], the event time
 *      fields[src->time_slot].as.i.
 *   2. Aggregates: for each slot i of spec->aggs (expr.h, expr_agg_t): evaluate
 *      aggs.v[i].arg on env {fields} (NULL arg for count()), apply the value
 *      to the key's window state, then read the slot's current value into
 *      aggvals[i]. PREV slots read the previous event's value first, then
 *      store this event's.
 *   3. Features: for each i in spec->feature_order[0 .. nfeatures):
 *      expr_eval(spec->features[i].expr, &env, &featvals[i]) with env
 *      {fields, features = featvals, aggs = aggvals}. The order is
 *      topological, so a feature reads only features computed before it.
 *   4. Model: inputs in spec->model.inputs order, each a field or a feature
 *      slot (null → missing value).
 *   5. Decisions: env.extras = {score, class, scores[0..]} (SPEC_EXTRA_*); the first rule
 *      whose `when` is true (expr_eval_bool; null is false) or that has no
 *      `when` decides.
 *   6. Reset env.scratch_used for the next event.
 *
 * On-close aggregates (spec->aggregates) work the same way with their own
 * slot set and select expressions, evaluated once per closing window with
 * env {aggs} only. */
#ifndef WEIR_SPEC_SPEC_H
#define WEIR_SPEC_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "spec/expr.h"
#include "spec/value.h"

#define SPEC_MAX_PARTITIONS 4096
/* env.extras in decision rules: the model's outputs. score is the first
 * output (a binary model's probability, a regression's value) or, for a
 * multiclass model, the probability of the predicted class; class is the
 * predicted class (argmax; for a binary model score >= 0.5); scores[i] is
 * output i. */
#define SPEC_EXTRA_SCORE 0
#define SPEC_EXTRA_CLASS 1
#define SPEC_EXTRA_SCORES 2
#define SPEC_MAX_SCORES 64
/* Aggregate calls in one aggregate's select (sum(x), count(), ...): an
 * open window keeps, per event, a bit per call for a null argument in one
 * 64-bit word (stream/onclose.c). */
#define SPEC_MAX_SELECT_AGGS 64
/* Durations in a spec (lateness, windows, gaps, intervals): sums of them
 * (a key's time to live) stay far inside int64 milliseconds. */
#define SPEC_MAX_DURATION_MS (36500LL * 86400 * 1000) /* 100 years */

/* Whether name[len] is one of the columns every training row starts with
 * (weir backfill: partition, offset, key, time, late), which no feature may
 * be named (the loader refuses it) and no other column may repeat. */
int spec_row_column(const char *name, size_t len);
/* A source's max_future when the spec names none (decode.h,
 * spec_edge_refuses): 5 minutes. Kafka's message.timestamp.after.max.ms
 * takes an hour, but a broker's only risk is retention; here an event
 * accepted D ahead makes the events of every other client late for about
 * D (the ticks carry it to every partition): an hour of blind features
 * from one client's fast clock. Clocks that NTP keeps are milliseconds
 * apart; 5 minutes refuses, loudly, only what is wrong. */
#define SPEC_MAX_FUTURE_DEFAULT_MS (5LL * 60 * 1000)
/* A hopping window's windows per event (its size over its every): each
 * event is added to every one of them. 24h every 10s is 8,640. */
#define SPEC_MAX_HOPS 10000
#define SPEC_NEXTRAS (SPEC_EXTRA_SCORES + SPEC_MAX_SCORES)

typedef struct spec_pos {
    uint32_t line, col; /* 1-based position in the spec file */
} spec_pos_t;

typedef struct spec_field {
    char *name;
    uint32_t name_len;
    expr_type_t type; /* string, int, float, bool or time */
    uint32_t slot;    /* index in the decoded event (= index in fields) */
    spec_pos_t pos;
    /* The name in quotes ("name"), its first 16 bytes as two words, and a
     * mask of the bytes it has (all zero if it is longer): the direct
     * decoder compares it with the text a word at a time (decode.c). */
    uint64_t quoted[2], quoted_mask[2];
} spec_field_t;

/* A source's `kafka:` (spec_kafka.c): `weir run` also takes the source's
 * events from this topic, in this consumer group (serve/kafka_source.h). */
typedef struct spec_kafka {
    char *brokers; /* "HOST:PORT[,HOST:PORT...]"; NULL: no Kafka */
    char *topic;   /* default: the source's name (the sink's: PIPELINE.decisions) */
    char *group;   /* default: weir.PIPELINE.SOURCE (the sink's transactional id:
                      weir.PIPELINE.decisions) */
    char **config; /* librdkafka properties: name, value, name, value..., NULL */
    uint32_t nconfig;
    spec_pos_t pos;
} spec_kafka_t;

#define SPEC_KAFKA_TOPIC_MAX 249 /* Kafka's own limit */
#define SPEC_KAFKA_GROUP_MAX 255

typedef struct spec_source {
    char *name;
    spec_field_t *fields; /* declared order */
    uint32_t nfields;
    uint32_t key_slot;  /* a string or int field */
    uint32_t time_slot; /* a time field */
    int64_t lateness_ms;
    /* ttl: the least time an idle key's state is kept (0: none given; the
     * engine keeps it for its longest window plus the lateness anyway) */
    int64_t ttl_ms;
    /* max_future: how far past this machine's clock an event's time may be
     * when it enters (HTTP, weir ingest): spec_edge_refuses, decode.h. 0: no
     * bound ("none"). Not part of the plan: the log's events are replayed
     * whatever it says. */
    int64_t max_future_ms;
    /* id: the field naming an event (a payment's id), for idempotent
     * ingestion: an event whose key applied one with the same id at a time
     * after the watermark - dedup_ms is a duplicate, logged but not applied
     * (stream/engine.h step 4). has_id 0: none (dedup_ms 0). */
    int has_id;
    uint32_t id_slot; /* a string or int field other than the key and time */
    int64_t dedup_ms; /* > 0 with an id; SPEC_DEDUP_DEFAULT_MS unless given */
    spec_kafka_t kafka; /* kafka.brokers NULL: none */
    spec_pos_t pos;
} spec_source_t;

#define SPEC_DEDUP_DEFAULT_MS (24 * 3600 * 1000LL) /* as long as a client may retry: a day */

typedef struct spec_feature {
    char *name;
    expr_t *expr;
    expr_type_t type; /* = expr_type(expr) */
    spec_pos_t pos;
} spec_feature_t;

typedef enum spec_input_kind {
    SPEC_INPUT_FIELD,
    SPEC_INPUT_FEATURE,
} spec_input_kind_t;

typedef struct spec_input {
    char *name;
    spec_input_kind_t kind;
    uint32_t slot; /* field slot or feature index */
    expr_type_t type;
} spec_input_t;

typedef struct spec_model {
    char *path;     /* as written */
    char *resolved; /* relative paths resolved against the spec file's folder */
    spec_input_t *inputs;
    uint32_t ninputs;
} spec_model_t;

typedef struct spec_decision {
    expr_t *when; /* NULL: always (only the last rule may omit `when`) */
    char *then;
    char *reason; /* NULL if none given */
    char *emit;   /* output name (DATA/outputs/<emit>.ndjson) or NULL */
    spec_pos_t pos;
} spec_decision_t;

typedef enum spec_window_kind {
    SPEC_WINDOW_TUMBLING, /* `tumbling D`: [nD, (n+1)D) */
    SPEC_WINDOW_HOPPING,  /* `hopping D every S`: [nS, nS + D), D a multiple of S */
    SPEC_WINDOW_SESSION,  /* `session gap D`: events closer than D merge */
} spec_window_kind_t;

typedef struct spec_select {
    char *name;
    expr_t *expr; /* reads env.aggs only (aggregate calls of its aggregate) */
    expr_type_t type;
} spec_select_t;

typedef struct spec_aggregate {
    char *name;
    spec_window_kind_t window;
    int64_t size_ms;  /* D (tumbling, hopping) */
    int64_t every_ms; /* S (hopping) */
    int64_t gap_ms;   /* session gap */
    expr_aggs_t aggs; /* slots of its select expressions; window_ms = every_ms = 0 */
    spec_select_t *select;
    uint32_t nselect;
    spec_pos_t pos;
} spec_aggregate_t;

/* ---- patterns (CEP); the semantics are stated in src/stream/pattern.h ---- */

typedef enum spec_order {
    SPEC_ORDER_TIME = 0,    /* the key's events sorted by time, released by the watermark */
    SPEC_ORDER_ARRIVAL = 1, /* the key's non-late events in log order, at once */
} spec_order_t;

#define SPEC_STEP_MANY UINT32_MAX /* max of one_or_more */

typedef struct spec_step {
    char *name;
    bool negated;      /* a `not:` step: no event may match it (never binds one) */
    bool strict;       /* contiguity: strict (the key's next event) vs relaxed (skip till next) */
    bool refs;         /* the condition reads steps (step.field): evaluated per partial match */
    uint32_t min, max; /* quantifier: 1,1 / times n: n,n / one_or_more: 1,MANY; optional: min 0 */
    uint32_t full;     /* optional times n (n > 1): n — a step that took any event needs all n
                          (FlinkCEP's times(n).optional(): 0 or n); else 0 */
    int64_t gap_ms;    /* 0: none; else at most this long after the previous step's event */
    expr_t *cond;      /* env: fields = the event, extras = the pattern's binds */
    spec_pos_t pos;
} spec_step_t;

/* A `step.field` that a condition or an emit reads: extras[i] of the
 * pattern's expressions is field `field` of the last event step `step`
 * took (null if it took none). */
typedef struct spec_bind {
    uint32_t step, field;
} spec_bind_t;

typedef struct spec_pattern {
    char *name;
    spec_step_t *steps;
    uint32_t nsteps;
    spec_bind_t *binds;
    uint32_t nbinds;
    int64_t within_ms; /* first to last event (to the deadline for a trailing not) */
    spec_order_t order;
    char *then; /* the decision for the event that completes a match, or NULL */
    /* emit: {field: expr}: DATA/outputs/<name>.ndjson. A match reaches the
     * outputs through the engine sink's window callback with agg = &out
     * (spec_pattern_of tells it from an aggregate; out.select are the emit
     * fields, env extras = binds), so every holder of a sink forwards it
     * unchanged.
     * out.nselect = 0 and has_emit false without emit:. */
    bool has_emit;
    spec_aggregate_t out;
    spec_pos_t pos;
} spec_pattern_t;

/* DESIGN.md "Guarantees". Under both, keyed state is exactly-once: it is
 * restored from a checkpoint and the log after its offsets is replayed
 * through the same engine, so every logged event is applied once.
 *   exactly_once (default): a checkpoint first writes the buffered
 *     decisions, so the decision log covers every event before its
 *     offsets; recovery decides only the events after the last decision
 *     in the decision log — each logged event gets exactly one decision,
 *     and outputs (windows, late events, matches, emits) are cut back to
 *     the checkpoint and rewritten once.
 *   at_least_once: a checkpoint does not wait for the decision log (one
 *     less write under the partitions' locks), and recovery decides every
 *     event after the checkpoint again, whether or not its decision was
 *     logged before the crash: a decision may appear twice, none is
 *     missing. A checkpoint whose events' decisions were lost with the
 *     crash is not used (an older one, or the whole log, is replayed). */
typedef enum spec_guarantee { SPEC_EXACTLY_ONCE = 0, SPEC_AT_LEAST_ONCE = 1 } spec_guarantee_t;
#define SPEC_CHECKPOINT_INTERVAL_DEFAULT_MS 10000

/* An online store: every key's features written to Redis for readers
 * outside weir (the design's "Redis can hold online features"), by
 * `weir run` only (src/serve/online_store.c says when and how). */
typedef struct spec_online_store {
    char *redis;    /* "HOST:PORT", or a unix socket's absolute path; NULL: no online store */
    char *prefix;   /* of every Redis key (then the entity key): default "PIPELINE:SOURCE:" */
    int64_t ttl_ms; /* each written key's Redis expiry: SPEC_ONLINE_TTL_STATE (the default:
                       the key's state TTL), 0 (never), or a duration */
    char *username; /* AUTH's user (Redis 6 ACLs), or NULL */
    char *password_env; /* the environment variable holding AUTH's password, or NULL: a
                           spec is kept in DATA/specs.d and in checkpoints, a secret is not */
    spec_pos_t pos; /* of online_store:, for messages */
} spec_online_store_t;
#define SPEC_ONLINE_TTL_STATE  (-1)
#define SPEC_ONLINE_PREFIX_MAX 200

typedef struct spec {
    char *file; /* the path given to spec_load, for messages */
    char *pipeline;
    uint32_t partitions; /* default 1 */
    int64_t checkpoint_interval_ms; /* 0: only at shutdown */
    spec_guarantee_t guarantee;
    spec_source_t *sources;
    uint32_t nsources;        /* exactly 1 for now */
    spec_feature_t *features; /* declared order: the order of output columns */
    uint32_t nfeatures;
    uint32_t *feature_order; /* evaluation order: dependencies first */
    expr_aggs_t aggs;        /* aggregate slots of all features */
    bool has_model;
    spec_model_t model;
    spec_decision_t *decisions; /* first match wins */
    uint32_t ndecisions;
    uint32_t max_score_index; /* 1 + the largest i of scores[i] in the rules, 0 if none */
    spec_aggregate_t *aggregates;
    uint32_t naggregates;
    /* lower() calls in everything evaluated per event (features, aggregate
     * arguments, decisions): a scratch of lower_calls × the largest string
     * of an event or of the state is always enough (expr_env_t). */
    uint32_t lower_calls;
    int64_t max_window_ms; /* longest `over D` of the features (state TTL); on-close
                              aggregates have their own sizes */
    /* Patterns. Decision rules read pattern.NAME as features[nfeatures + i]
     * (a bool the engine writes after the declared features: true when
     * this event completed a match of pattern i), so the decision layer
     * needs nothing new; rules for `then:` come first in decisions. */
    spec_pattern_t *patterns;
    uint32_t npatterns;
    int64_t max_within_ms;        /* longest `within` (state TTL) */
    uint32_t pattern_lower_calls; /* lower() calls of all step conditions */
    spec_online_store_t online;   /* online.redis NULL: none */
    /* sinks: decisions: kafka: (spec_kafka.c): every decision record goes
     * to this topic (serve/kafka_sink.h). brokers NULL: none. */
    spec_kafka_t decisions_kafka;
} spec_t;

/* Loads the spec at path. On success returns 0 and sets *out (free with
 * spec_free). On failure returns a negative weir_err_t and writes
 * "PATH:LINE:COL: message" to err (just "PATH: message" when there is no
 * position, e.g. the file cannot be read). */
int spec_load(const char *path, spec_t **out, char *err, size_t errlen);
/* The bytes of the spec file at path into b (reset first): a regular file
 * of at most YDOC_MAX_BYTES, else an error naming the path. */
int spec_read_file(const char *path, weir_buf_t *b, char *err, size_t errlen);

/* As spec_load, from text in memory; `name` stands for the file in messages
 * and relative model paths resolve against its folder. */
int spec_load_string(const char *text, size_t len, const char *name, spec_t **out, char *err,
                     size_t errlen);

void spec_free(spec_t *s);

/* Lookups by name; NULL / -1 if absent. */
const spec_source_t *spec_source(const spec_t *s, const char *name);
const spec_field_t *spec_field(const spec_source_t *src, const char *name);
int spec_feature_index(const spec_t *s, const char *name);
/* Whether name (len bytes) is one a rule's `emit:` may give: a plain file
 * name under DATA/outputs/ (letters, digits, '_', '-'; at most 100; not
 * "late", the late events' file). */
bool spec_output_name_ok(const char *name, size_t len);
/* The pattern whose emit descriptor (spec_pattern_t.out) agg is, or NULL
 * when agg is an on-close aggregate. */
const spec_pattern_t *spec_pattern_of(const spec_t *s, const spec_aggregate_t *agg);

#endif
