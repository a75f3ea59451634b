/* kafka_sink.h — the spec's `sinks: decisions: kafka:` (spec.h): every
 * record of the decision log goes to a Kafka topic, once (DESIGN.md's data
 * flow: "decision log (+ Kafka / stdout sinks)").
 *
 * WHAT GOES OUT. One message per decision record, in the decision log's
 * order per weir partition p: key the event's key, value the record as
 * logged ({"offset":...,"decision":...,"features":...}), headers
 * weir.partition (p), weir.offset (the event's offset in p's event log,
 * the record's "offset") and weir.log (DATA/sinks/id: a new data directory
 * numbers events from 0 again), to the topic's partition p mod K (K its
 * partition count): a key's decisions stay in one Kafka partition, in
 * order. The topic is not created by weir: make it beforehand (a topic of
 * at least the pipeline's partitions keeps them apart).
 *
 * EXACTLY ONCE INTO THE TOPIC. The decision log is the truth, and what the
 * topic holds says how far it got: the identity of a message is (weir.log,
 * p, its event offset), which a decision keeps across crashes and replays
 * (an event decided again after a crash is the same event).
 *   - A transactional producer (transactional.id
 *     weir.PIPELINE.decisions.ID, ID the data directory's) sends a batch of
 *     records per transaction. Its start fences an older producer of the
 *     same id (a weir killed with -9) and aborts its open transaction.
 *   - Before a commit, the event logs of its records' partitions are
 *     synced: an event whose decision is in the topic survives a power
 *     loss, so its offset is never another event's.
 *   - Then, and after every error that loses track, weir reads the tail
 *     of each Kafka partition (read_committed) back until it has found
 *     the newest message of this weir.log of each weir partition mapped
 *     there: published[p] is its weir.offset (-1: none). Messages of p reach their Kafka
 *     partition in p's order (one producer, idempotent, in order), so
 *     every record of p up to published[p] is in the topic and none after.
 *   - Each p's decision log is read from the position saved at the last
 *     commit when it is not past published[p] (else from its start), and a
 *     record whose offset is not past published[p] is passed over (after a
 *     power loss cut the decision log, its events are decided again: same
 *     offsets).
 *   - A transaction that fails is aborted and its records sent again from
 *     the positions of the last commit, a second later; a fatal error makes
 *     a new producer and reads the tails again. A record over the
 *     producer's message.max.bytes is said, counted and passed over (one
 *     the brokers refuse all the same is tried again every second). A new
 *     id (DATA/sinks/id made now) has nothing in the topic: no tail read.
 *   - Retention in the topic: when the scan reaches a partition's start
 *     without finding p and messages were deleted before it, the position
 *     of p's last commit (DATA/sinks/decisions.kafka, written after each
 *     commit: a lower bound) is taken.
 * Consumers read with isolation.level=read_committed (the Kafka default
 * of librdkafka; Java's is read_uncommitted): a transaction that weir
 * aborted leaves its messages in the log, marked aborted, and
 * read_uncommitted shows them.
 *
 * LIMITS, said rather than half-done. The topic is weir's alone: another
 * producer's open transaction would hold the tail scan. A topic whose
 * partition count changes while weir has sent to it maps p elsewhere: the
 * tail scan looks there, and p's decisions since the decision log's start
 * go out again (said). A decision log segment deleted by retention before
 * weir sent it is said and skipped. Under guarantee: at_least_once, a
 * decision logged again after a restart is not sent again (the topic has
 * its offset).
 *
 * Metrics: weir_kafka_sink_messages_total, _skipped_total, _transactions_total{outcome},
 * _errors_total, _lag (records in the decision log not in the topic). */
#ifndef WEIR_SERVE_KAFKA_SINK_H
#define WEIR_SERVE_KAFKA_SINK_H

#include "base/buf.h"
#include "spec/spec.h"

typedef struct runtime runtime_t;
typedef struct kafka_sink kafka_sink_t;

/* The producer for rt's decision log, configured from k (the spec's
 * sinks.decisions.kafka; copied); nothing sent yet. NULL with err filled
 * if librdkafka refuses the configuration. */
kafka_sink_t *kafka_sink_new(runtime_t *rt, const spec_kafka_t *k, const char *datadir, char *err,
                             size_t errlen);
/* Sends, on its own thread: from ready on. */
void kafka_sink_start(kafka_sink_t *s);
/* Stops after the transaction in hand (what is left goes at the next
 * start). NULL is fine. */
void kafka_sink_free(kafka_sink_t *s);
/* Appends its /metrics lines. */
void kafka_sink_metrics(kafka_sink_t *s, weir_buf_t *b);

#endif
