/* kafka_source.h — a source's `kafka:` (spec.h): `weir run` takes the
 * source's events from a Kafka topic, beside HTTP (DESIGN.md's data flow:
 * "HTTP / NDJSON / Kafka ─► decode by schema ─► append to partition log").
 *
 * WHAT IT DOES. One consumer in the spec's group reads the topic's
 * partitions and hands each message's value, decoded by the source's
 * schema as POST /v1/events decodes a line (edge_decode.h), to
 * runtime_process: logged in the weir partition of its key, applied,
 * scored and decided like any event, its decision in the decision log.
 * A round is what one poll gathers (up to ROUND_MAX messages, or what
 * arrived in the first POLL_MS), logged with one append per weir
 * partition.
 *
 * EXACTLY ONCE INTO THE LOG. Kafka redelivers: after a crash between the
 * append and the offset commit, after a rebalance, after a retry. The log
 * is the truth (principle 1), so it says what it holds: each append of
 * Kafka messages carries, in the same log batch, one SOURCE record per
 * Kafka partition with its newest offset there (kafka_marks.h). Per weir
 * partition p and Kafka partition k, the mark m[p][k] is the newest offset
 * of k logged in p; marks are state (replay rebuilds them, checkpoints
 * keep them). A message (k, o) of a key in p is logged only if o >
 * m[p][k]; one read again is skipped, and counted. Messages of one Kafka
 * partition reach a weir partition in their order, so the mark is exact,
 * whatever the crash left half-appended across weir partitions. So every
 * message of the topic is logged once: none twice, and none lost, because
 *   - appends of Kafka messages are durable (LOG_ACK_DURABLE) before their
 *     offsets are stored for the commit (auto-commit every second, and at
 *     close): a committed offset is always in the log;
 *   - on assignment, partition k is read from max(committed(k), min over p
 *     of m[p][k] + 1) (a weir partition without a mark: 0, the earliest):
 *     everything before it is in the log;
 *   - a message refused (over the memory budget) or not logged (an append
 *     failed) is read again: the partition is sought back to it and the
 *     round's rest of that partition waits with it (runtime.c refuses the
 *     later messages of its Kafka partition in the same append, so no mark
 *     passes it); a seek that fails takes every partition again from the
 *     marks and the committed offsets;
 *   - marks name the topic and the cluster: at an assignment, marks of
 *     another cluster (its id) are dropped, and so are those at or past a
 *     partition's end (a topic deleted and made again: its offsets start
 *     over), the drop logged first in every weir partition (a reset
 *     record, kafka_marks.h) so that a replay drops them too. A topic made again and filled past weir's marks before weir
 *     reads it is not told from the old one (librdkafka 2.0 gives no topic
 *     ids).
 * Its decision follows from the log as for any event (exactly-once
 * decisions: runtime.h).
 *
 * BAD MESSAGES (not JSON, a missing key, a field of the wrong type, no
 * value) cannot be refused to a producer: each is said on stderr, naming
 * topic, partition, offset and what is wrong (the first BAD_SAID, then one
 * in BAD_EVERY), counted (weir_kafka_messages_total{outcome="bad"}) and
 * passed over. It stays in Kafka, where its offset finds it.
 *
 * LIMITS, said rather than half-done. One weir per group: the group splits
 * the topic's partitions among its members, and a second weir would hold
 * the state of the keys of its half only (DESIGN.md's scale-out, restoring
 * a partition's state where it moves, is not built); an assignment that is
 * not every partition of the topic is said on stderr. TLS goes through
 * config: (librdkafka's ssl.* properties, with key files); SASL with a
 * password does not (a secret does not go in a spec: spec_kafka.c). A
 * key's events are logged in their
 * Kafka order when the producer keys messages by it (one Kafka partition
 * per key: Kafka orders a partition only); otherwise in the order weir
 * reads them, which event time and the watermark then order as they do
 * HTTP's. */
#ifndef WEIR_SERVE_KAFKA_SOURCE_H
#define WEIR_SERVE_KAFKA_SOURCE_H

#include "base/buf.h"
#include "spec/spec.h"

typedef struct runtime runtime_t;
typedef struct kafka_source kafka_source_t;

/* For rt's source src (its kafka: set): the consumer, configured; nothing
 * read yet. NULL with err filled if librdkafka refuses the configuration. */
kafka_source_t *kafka_source_new(runtime_t *rt, const spec_source_t *src, char *err, size_t errlen);
/* Joins the group and consumes, on its own thread; at ready, once the
 * marks are rebuilt. */
void kafka_source_start(kafka_source_t *ks);
/* Stops: the round in hand is finished, the offsets stored are committed
 * (librdkafka's close: with the brokers gone it returns at once). NULL is
 * fine. */
void kafka_source_free(kafka_source_t *ks);
/* Appends its /metrics lines. */
void kafka_source_metrics(kafka_source_t *ks, weir_buf_t *b);

#endif
