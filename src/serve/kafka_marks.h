/* kafka_marks.h — per weir partition, the newest offset of each Kafka
 * partition whose message was logged in it: what makes a Kafka source's
 * messages enter the log exactly once (EXACTLY ONCE INTO THE LOG,
 * kafka_source.h).
 *
 * Marks are state, and follow its rules: a batch of Kafka messages is
 * appended with one SOURCE record (log/batch.h) per Kafka partition it
 * holds, in the same log batch, so that marks and events are logged
 * together or not at all; replay rebuilds the marks from those records;
 * a checkpoint keeps them as its part's "kafka" pair. Both forms name the
 * topic and the Kafka cluster (its id, "" where the brokers give none):
 * marks of another topic (a spec that changed its topic) are not read, and
 * marks of another cluster are dropped (an offset there says nothing about
 * this one's; the newest record's cluster is the marks' cluster).
 *
 *   SOURCE record   {"kafka":"TOPIC","cluster":"ID","partition":K,"offset":O}
 *                   O = -1: K's mark is void from here on (the topic there was
 *                   made again: its offsets start over), logged so that a
 *                   replay drops it too
 *   checkpoint      {"kafka":"TOPIC","cluster":"ID","offsets":[O0,O1,...]}   (-1: none) */
#ifndef WEIR_SERVE_KAFKA_MARKS_H
#define WEIR_SERVE_KAFKA_MARKS_H

#include <stdint.h>

#include "base/buf.h"

/* Kafka partitions a mark may name: a record naming more is refused (the
 * marks are an array by partition). Kafka's own practical limit is far
 * below. */
#define KAFKA_MARKS_MAX_PARTITIONS 65536

#define KAFKA_CLUSTER_MAX 64 /* bytes of a cluster id, NUL included (Kafka's are 22) */

typedef struct kafka_marks {
    int64_t *off; /* by Kafka partition; -1: nothing of it logged here */
    uint32_t n;
    char cluster[KAFKA_CLUSTER_MAX]; /* whose offsets these are */
} kafka_marks_t;

#define KAFKA_MARKS_NONE (-1)

int64_t kafka_marks_get(const kafka_marks_t *m, int32_t k);
/* off[k] = o, and off[k] = max(off[k], o); k within [0,
 * KAFKA_MARKS_MAX_PARTITIONS), others ignored. */
void kafka_marks_set(kafka_marks_t *m, int32_t k, int64_t o);
void kafka_marks_raise(kafka_marks_t *m, int32_t k, int64_t o);
/* No marks, of no cluster. */
void kafka_marks_clear(kafka_marks_t *m);
/* Makes cluster the marks' cluster; marks of another are cleared (returns
 * 1 if some were). "" (an id not known) on either side proves nothing:
 * the marks stay. */
int kafka_marks_adopt(kafka_marks_t *m, const char *cluster);
void kafka_marks_free(kafka_marks_t *m);

/* The SOURCE record's value for message offset o of topic's partition k
 * in cluster (o = KAFKA_MARKS_NONE: the reset above). */
void kafka_marks_record(weir_buf_t *b, const char *topic, const char *cluster, int32_t k,
                        int64_t o);
/* Raises m by a SOURCE record's value, if it is of topic. 0; -1 (why
 * filled) for a value that is not such a record. */
int kafka_marks_apply(kafka_marks_t *m, const char *topic, weir_slice_t value, char *why,
                      size_t whylen);

/* The checkpoint form, and back (marks of another topic: none). */
void kafka_marks_encode(const kafka_marks_t *m, const char *topic, weir_buf_t *b);
int kafka_marks_decode(kafka_marks_t *m, const char *topic, weir_slice_t text, char *why,
                       size_t whylen);

#endif
