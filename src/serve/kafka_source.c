/* kafka_source.c — a source's Kafka consumer (kafka_source.h). */
#include "serve/kafka_source.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "serve/edge_decode.h"
#include "serve/kafka_conf.h"
#include "serve/kafka_marks.h"
#include "serve/metrics.h"
#include "serve/runtime.h"
#include "stream/engine.h"

#define ROUND_MAX 4096 /* messages a round logs at most */
#define ROUND_BYTES                                                                                \
    (32 << 20)                /* and bytes: a weir partition's share stays under a log batch's     \
                                 64 MiB */
#define MESSAGE_MAX (1 << 20) /* an event's bytes, as a line of weir ingest */
#define POLL_MS     100       /* the first poll of a round waits this long */
/* A round gathers messages for this long after its first one (or until
 * ROUND_MAX): its appends are durable, an fdatasync per weir partition it
 * touches, which rounds of a few messages would pay for every few. */
#define LINGER_MS 10
#define RETRY_MS  1000 /* a round refused or failed is read again after this */
#define ASK_MS    5000 /* a question to the brokers at an assignment, at most */
#define BAD_SAID  10   /* bad messages said one by one, then... */
#define BAD_EVERY 1000 /* ...one in this many */

struct kafka_source {
    runtime_t *rt;
    const spec_source_t *src; /* the spec's at start (a reload changing kafka: is refused) */
    char *topic;
    rd_kafka_t *rk;
    pthread_t thread;
    int started;
    atomic_int stop; /* kafka_source_free, or a fatal error */
    /* one round's buffers */
    runtime_event_t *evs;
    expr_value_t *fields;
    cJSON **docs;
    char (*keytmp)[32];
    /* for /metrics */
    atomic_uint_fast64_t logged, logged_before, bad, refused, errors;
    atomic_uint_fast64_t assigned, lag;
    uint64_t bad_seen;
    /* per Kafka partition: the newest offset a round took (bad ones are
     * said once), and where its assignment began (-1: the earliest) */
    kafka_marks_t seen, start;
    rd_kafka_resp_err_t said_err; /* the last error said (an outage is said once) */
};

/* ---- assignment: where each partition is read from ---- */

/* kafka_source.h, EXACTLY ONCE INTO THE LOG: max(committed, min over weir
 * partitions of mark + 1). */
static int64_t resume_at(kafka_source_t *ks, int32_t k, int64_t committed)
{
    int64_t lo, hi;
    runtime_kafka_span(ks->rt, k, &lo, &hi);
    lo++; /* (KAFKA_MARKS_NONE + 1 = 0: read from the earliest) */
    return committed > lo ? committed : lo;
}

static uint32_t topic_partitions(kafka_source_t *ks)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(ks->rk, ks->topic, NULL);
    uint32_t n = 0;
    if (t && rd_kafka_metadata(ks->rk, 0, t, &md, ASK_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == 0) n = (uint32_t)md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    if (t) rd_kafka_topic_destroy(t);
    return n;
}

/* Whose offsets the marks are (kafka_marks.h): this cluster's, or none. */
static void check_cluster(kafka_source_t *ks)
{
    char *id = rd_kafka_clusterid(ks->rk, ASK_MS);
    uint32_t dropped = runtime_kafka_cluster(ks->rt, id);
    if (dropped) {
        kafka_marks_clear(&ks->seen);
        fprintf(stderr,
                "weir run: kafka: %u partitions of weir's log hold marks of another Kafka "
                "cluster than this one (id %s): they are dropped, and '%s' is read from the "
                "group's committed offsets, or its earliest\n",
                dropped, id, ks->topic);
    }
    if (id) rd_kafka_mem_free(ks->rk, id);
}

/* A mark at or past partition k's end cannot be of this topic: one
 * deleted and made again under its name (its offsets start over). */
static void check_end(kafka_source_t *ks, int32_t k)
{
    int64_t lo, hi, least, top;
    if (rd_kafka_query_watermark_offsets(ks->rk, ks->topic, k, &lo, &hi, ASK_MS)) return;
    runtime_kafka_span(ks->rt, k, &least, &top);
    if (top < hi) return;
    fprintf(stderr,
            "weir run: kafka: partition %" PRId32 " of '%s' ends at offset %" PRId64
            ", but weir logged its offset %" PRId64 ": the topic was made again under its name; "
            "its marks are dropped\n",
            k, ks->topic, hi, top);
    char err[512];
    if (runtime_kafka_forget(ks->rt, k, err, sizeof err))
        fprintf(stderr, "weir run: kafka: partition %" PRId32 ": %s\n", k, err);
    kafka_marks_set(&ks->seen, k, KAFKA_MARKS_NONE);
}

/* Sets where each of parts is read from, and takes them. 0, or -1 (said). */
static int assign_from_marks(kafka_source_t *ks, rd_kafka_topic_partition_list_t *parts)
{
    check_cluster(ks);
    /* (each a question to the brokers: a shutdown meanwhile cuts them short) */
    for (int i = 0; i < parts->cnt && !atomic_load(&ks->stop); i++)
        check_end(ks, parts->elems[i].partition);
    /* committed offsets (INVALID where none), then the marks over them */
    rd_kafka_resp_err_t ce = rd_kafka_committed(ks->rk, parts, ASK_MS);
    if (ce)
        fprintf(stderr,
                "weir run: kafka: the group's committed offsets cannot be read (%s): each "
                "partition is read from its marks in weir's log\n",
                rd_kafka_err2str(ce));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t committed = ce == 0 && tp->err == 0 && tp->offset >= 0 ? tp->offset : -1;
        int64_t at = resume_at(ks, tp->partition, committed);
        /* 0: the earliest (retention may have deleted offset 0) */
        tp->offset = at > 0 ? at : RD_KAFKA_OFFSET_BEGINNING;
        tp->err = 0;
        kafka_marks_set(&ks->start, tp->partition, at > 0 ? at : KAFKA_MARKS_NONE);
    }
    rd_kafka_resp_err_t ae = rd_kafka_assign(ks->rk, parts);
    if (ae) {
        atomic_fetch_add(&ks->errors, 1);
        atomic_store(&ks->assigned, 0);
        fprintf(stderr, "weir run: kafka: cannot take the %d partitions of '%s' assigned: %s\n",
                parts->cnt, ks->topic, rd_kafka_err2str(ae));
        return -1;
    }
    atomic_store(&ks->assigned, (uint64_t)parts->cnt);
    return 0;
}

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
                      void *opaque)
{
    kafka_source_t *ks = opaque;
    if (e != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fprintf(stderr, "weir run: kafka: %d partitions of '%s' revoked\n", parts->cnt, ks->topic);
        rd_kafka_assign(rk, NULL);
        atomic_store(&ks->assigned, 0);
        return;
    }
    if (assign_from_marks(ks, parts)) return;
    uint32_t all = topic_partitions(ks);
    fprintf(stderr, "weir run: kafka: reading %d partitions of '%s' in group '%s'\n", parts->cnt,
            ks->topic, ks->src->kafka.group);
    if (all && (uint32_t)parts->cnt < all)
        fprintf(stderr,
                "weir run: kafka: only %d of the %u partitions of '%s' are this weir's: another "
                "member of group '%s' reads the others, and holds their keys' state (one weir "
                "per group: kafka_source.h)\n",
                parts->cnt, all, ks->topic, ks->src->kafka.group);
}

/* librdkafka's errors (a broker down, all of them down, an unknown topic):
 * it reconnects by itself; an outage is said once, not at every retry. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_source_t *ks = opaque;
    atomic_fetch_add(&ks->errors, 1);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* the consumer is done for (e.g. FENCED_INSTANCE_ID: another weir
         * took this group's membership, kafka_source.h) */
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        fprintf(stderr, "weir run: kafka: %s: this weir reads the topic no more (restart it)\n",
                why);
        atomic_store(&ks->stop, 1);
        return;
    }
    if ((rd_kafka_resp_err_t)err == ks->said_err) return;
    ks->said_err = (rd_kafka_resp_err_t)err;
    fprintf(stderr, "weir run: kafka: %s (retrying)\n", reason);
}

/* ---- a round ---- */

/* A Kafka partition's messages in a round. */
typedef struct round_part {
    int32_t k;
    int64_t first, last; /* offsets */
    int64_t redo;        /* the first to read again (refused), or -1 */
} round_part_t;

typedef struct round {
    kafka_source_t *ks;
    round_part_t *parts;
    uint32_t n;
} round_t;

/* Kafka partition k's slot in the round (one the round has). */
static round_part_t *round_find(const round_t *r, int32_t k)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->parts[i].k == k) return &r->parts[i];
    return NULL;
}

/* Notes message (k, o), read in order. */
static void round_add(round_t *r, int32_t k, int64_t o)
{
    round_part_t *rp = round_find(r, k);
    if (rp) {
        rp->last = o;
        return;
    }
    r->parts = weir_realloc(r->parts, (r->n + 1) * sizeof *r->parts);
    r->parts[r->n++] = (round_part_t){k, o, o, -1};
}

static void outcome(void *ctx, const runtime_outcome_t *o)
{
    round_t *r = ctx;
    kafka_source_t *ks = r->ks;
    if (o->logged_before) {
        atomic_fetch_add(&ks->logged_before, 1);
    } else if (o->refused) {
        atomic_fetch_add(&ks->refused, 1);
        round_part_t *rp = round_find(r, o->ev->kpart);
        if (rp->redo < 0 || o->ev->koff < rp->redo) rp->redo = o->ev->koff;
    } else {
        atomic_fetch_add(&ks->logged, 1); /* (one not applied is logged: as over HTTP) */
    }
}

static void say_bad(kafka_source_t *ks, const rd_kafka_message_t *m, const char *why)
{
    if (m->offset <= kafka_marks_get(&ks->seen, m->partition)) return; /* read again: said */
    atomic_fetch_add(&ks->bad, 1);
    uint64_t n = ++ks->bad_seen;
    if (n > BAD_SAID && n % BAD_EVERY != 0) return;
    char more[64] = "";
    if (n == BAD_SAID) snprintf(more, sizeof more, "; from now on one in %d is said", BAD_EVERY);
    fprintf(stderr,
            "weir run: kafka: topic '%s' partition %" PRId32 " offset %" PRId64
            ": %s; passed over (%" PRIu64 " so far%s)\n",
            ks->topic, m->partition, m->offset, why, n, more);
}

/* Seeks partition k back to offset o: its messages from o are read again
 * (those logged meanwhile are skipped by their marks). If the seek fails,
 * every partition is taken again from the marks and the committed offsets
 * (no offset past o was stored, and no mark passed o: runtime.c). */
static void seek_back(kafka_source_t *ks, int32_t k, int64_t o)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ks->topic, k)->offset = o;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ks->rk, l, ASK_MS);
    rd_kafka_resp_err_t pe = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (!e && !pe) return;
    fprintf(stderr,
            "weir run: kafka: partition %" PRId32 ": cannot seek back to %" PRId64
            " (%s): every partition is taken again from its marks\n",
            k, o, e ? rd_kafka_error_string(e) : rd_kafka_err2str(pe));
    if (e) rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_t *all;
    if (rd_kafka_assignment(ks->rk, &all) == 0) {
        assign_from_marks(ks, all);
        rd_kafka_topic_partition_list_destroy(all);
    }
}

static void nap_ms(kafka_source_t *ks, int ms)
{
    for (int i = 0; i < ms / 10 && !atomic_load(&ks->stop); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
}

/* Logs msgs[0..n) (runtime_process), then stores the offsets that are in
 * the log for the next commit, and seeks back where some are not. */
static void run_round(kafka_source_t *ks, rd_kafka_message_t **msgs, size_t n)
{
    const spec_source_t *src = ks->src;
    size_t nf = src->nfields + 1, ngood = 0;
    round_t r = {.ks = ks};
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        round_add(&r, m->partition, m->offset);
        char why[512];
        if (!m->payload) {
            say_bad(ks, m, "a message without a value");
            continue;
        }
        if (m->len > MESSAGE_MAX) {
            snprintf(why, sizeof why, "a value of %zu bytes, over the %d an event may be", m->len,
                     MESSAGE_MAX);
            say_bad(ks, m, why);
            continue;
        }
        expr_value_t *f = ks->fields + i * nf;
        ks->docs[i] = NULL;
        if (edge_decode(src, (weir_slice_t){m->payload, m->len}, NULL, &ks->docs[i], f, why,
                        sizeof why) >= 0) {
            say_bad(ks, m, why);
            continue;
        }
        runtime_event_t *ev = &ks->evs[ngood++];
        *ev = (runtime_event_t){.raw = {m->payload, m->len},
                                .fields = f,
                                .index = (uint32_t)i,
                                .from_kafka = 1,
                                .kpart = m->partition,
                                .koff = m->offset};
        ev->key = engine_event_key(src, f, ks->keytmp[i]);
        ev->part = runtime_partition_of(ks->rt, ev->key);
    }
    char err[512];
    int rc = ngood ? runtime_process(ks->rt, ks->evs, ngood, 0, outcome, &r, err, sizeof err) : 0;
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(ks->docs[i]);
        ks->docs[i] = NULL;
        kafka_marks_raise(&ks->seen, msgs[i]->partition, msgs[i]->offset);
    }
    if (rc) {
        /* Some weir partitions took their messages, the rest did not: the
         * whole round is read again, and the marks skip what is logged. */
        fprintf(stderr, "weir run: kafka: %s; the round is read again in %d ms\n", err, RETRY_MS);
        for (uint32_t i = 0; i < r.n; i++)
            r.parts[i].redo = r.parts[i].first;
    }
    rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_new((int)r.n);
    int again = 0;
    for (uint32_t i = 0; i < r.n; i++) {
        const round_part_t *rp = &r.parts[i];
        /* the next offset to read is committed: all before it is in the log */
        int64_t next = rp->redo >= 0 ? rp->redo : rp->last + 1;
        if (next > rp->first)
            rd_kafka_topic_partition_list_add(done, ks->topic, rp->k)->offset = next;
        if (rp->redo >= 0) {
            seek_back(ks, rp->k, rp->redo);
            again = 1;
        }
    }
    if (done->cnt)
        rd_kafka_offsets_store(ks->rk, done); /* (a partition revoked meanwhile: refused) */
    rd_kafka_topic_partition_list_destroy(done);
    weir_free(r.parts);
    if (again) nap_ms(ks, RETRY_MS);
}

/* The assigned partitions' lag: high watermark minus position, summed
 * (librdkafka's cached figures: no request to the brokers). A partition
 * read nothing since its assignment has no position: it is where the
 * assignment began (not its earliest, which counted a partition weir had
 * logged whole as all to read). */
static void update_lag(kafka_source_t *ks)
{
    rd_kafka_topic_partition_list_t *l;
    if (rd_kafka_assignment(ks->rk, &l) != 0) return;
    rd_kafka_position(ks->rk, l);
    uint64_t lag = 0;
    for (int i = 0; i < l->cnt; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(ks->rk, ks->topic, l->elems[i].partition, &lo, &hi))
            continue;
        int32_t k = l->elems[i].partition;
        int64_t began = kafka_marks_get(&ks->start, k);
        int64_t at = l->elems[i].offset >= 0 ? l->elems[i].offset : began >= 0 ? began : lo;
        if (hi > at) lag += (uint64_t)(hi - at);
    }
    rd_kafka_topic_partition_list_destroy(l);
    atomic_store(&ks->lag, lag);
}

static void *consume_main(void *arg)
{
    kafka_source_t *ks = arg;
    rd_kafka_message_t **msgs = weir_malloc(ROUND_MAX * sizeof *msgs);
    uint64_t lag_at = 0;
    while (!atomic_load(&ks->stop)) {
        size_t n = 0, bytes = 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->rk, POLL_MS);
        uint64_t until = weir_mono_ns() + LINGER_MS * 1000000ull;
        while (m) {
            if (m->err) {
                /* the end of a partition is no error; the rest go to on_error's words */
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    on_error(ks->rk, m->err, rd_kafka_message_errstr(m), ks);
                rd_kafka_message_destroy(m);
            } else {
                msgs[n++] = m;
                bytes += m->len;
                if (ks->said_err) {
                    fprintf(stderr, "weir run: kafka: reading again\n");
                    ks->said_err = 0;
                }
            }
            uint64_t now = weir_mono_ns();
            int left_ms = now < until ? (int)((until - now + 999999) / 1000000) : 0;
            m = n < ROUND_MAX && bytes < ROUND_BYTES && left_ms > 0 && !atomic_load(&ks->stop)
                    ? rd_kafka_consumer_poll(ks->rk, left_ms)
                    : NULL;
        }
        if (n) run_round(ks, msgs, n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        uint64_t now = weir_mono_ns();
        if (now - lag_at > 500000000ull) {
            update_lag(ks);
            lag_at = now;
        }
    }
    weir_free(msgs);
    return NULL;
}

/* ---- life ---- */

/* The consumer's configuration. Offsets are stored by run_round once
 * their messages are in the log (durably), and committed from there every
 * second and at close. group.instance.id: static membership (KIP-345): a
 * weir restarted within the session timeout takes its partitions back
 * without a rebalance, and a second weir in the group is fenced, said,
 * rather than splitting the keys (one weir per group: kafka_source.h). */
static rd_kafka_conf_t *configure(const spec_kafka_t *k, char *err, size_t errlen)
{
    const char *const props[] = {"group.id",
                                 k->group,
                                 "enable.auto.offset.store",
                                 "false",
                                 "enable.auto.commit",
                                 "true",
                                 "auto.commit.interval.ms",
                                 "1000",
                                 "auto.offset.reset",
                                 "earliest",
                                 "group.instance.id",
                                 "weir",
                                 NULL};
    return kafka_conf_new(k, props, err, errlen);
}

kafka_source_t *kafka_source_new(runtime_t *rt, const spec_source_t *src, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = configure(&src->kafka, err, errlen);
    if (!c) return NULL;
    kafka_source_t *ks = weir_calloc(1, sizeof *ks);
    ks->rt = rt;
    ks->src = src;
    ks->topic = weir_strdup(src->kafka.topic);
    rd_kafka_conf_set_opaque(c, ks);
    rd_kafka_conf_set_rebalance_cb(c, rebalance);
    rd_kafka_conf_set_error_cb(c, on_error);
    char why[512];
    ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, why, sizeof why);
    if (!ks->rk) {
        snprintf(err, errlen, "kafka: %s", why);
        rd_kafka_conf_destroy(c);
        kafka_source_free(ks);
        return NULL;
    }
    rd_kafka_poll_set_consumer(ks->rk);
    size_t nf = src->nfields + 1;
    ks->evs = weir_malloc(ROUND_MAX * sizeof *ks->evs);
    ks->fields = weir_malloc(ROUND_MAX * nf * sizeof *ks->fields);
    ks->docs = weir_calloc(ROUND_MAX, sizeof *ks->docs);
    ks->keytmp = weir_malloc(ROUND_MAX * sizeof *ks->keytmp);
    return ks;
}

void kafka_source_start(kafka_source_t *ks)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, ks->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ks->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fprintf(stderr, "weir run: kafka: cannot subscribe to '%s': %s\n", ks->topic,
                rd_kafka_err2str(e));
    pthread_create(&ks->thread, NULL, consume_main, ks);
    ks->started = 1;
}

void kafka_source_free(kafka_source_t *ks)
{
    if (!ks) return;
    if (ks->started) {
        atomic_store(&ks->stop, 1);
        pthread_join(ks->thread, NULL);
    }
    if (ks->rk) {
        /* commits what run_round stored and leaves the group */
        rd_kafka_consumer_close(ks->rk);
        rd_kafka_destroy(ks->rk);
    }
    weir_free(ks->evs);
    weir_free(ks->fields);
    weir_free(ks->docs);
    weir_free(ks->keytmp);
    kafka_marks_free(&ks->seen);
    kafka_marks_free(&ks->start);
    weir_free(ks->topic);
    weir_free(ks);
}

void kafka_source_metrics(kafka_source_t *ks, weir_buf_t *b)
{
    metrics_header(b, "weir_kafka_messages_total", "counter",
                   "Messages read from the source's Kafka topic, by outcome: logged, "
                   "logged_before (read again, in the log already: skipped), bad (passed over, "
                   "said on stderr), refused (over the memory budget: read again later).");
    metrics_sample_u64(b, "weir_kafka_messages_total", "outcome=\"logged\"",
                       atomic_load(&ks->logged));
    metrics_sample_u64(b, "weir_kafka_messages_total", "outcome=\"logged_before\"",
                       atomic_load(&ks->logged_before));
    metrics_sample_u64(b, "weir_kafka_messages_total", "outcome=\"bad\"", atomic_load(&ks->bad));
    metrics_sample_u64(b, "weir_kafka_messages_total", "outcome=\"refused\"",
                       atomic_load(&ks->refused));
    metrics_header(b, "weir_kafka_errors_total", "counter",
                   "Errors librdkafka reported (brokers down, an unknown topic); it retries.");
    metrics_sample_u64(b, "weir_kafka_errors_total", NULL, atomic_load(&ks->errors));
    metrics_header(b, "weir_kafka_assigned_partitions", "gauge",
                   "Partitions of the topic this weir reads (the group's assignment).");
    metrics_sample_u64(b, "weir_kafka_assigned_partitions", NULL, atomic_load(&ks->assigned));
    metrics_header(b, "weir_kafka_lag", "gauge",
                   "Messages in the assigned partitions not read yet (high watermark minus "
                   "position, summed; as of the last half second).");
    metrics_sample_u64(b, "weir_kafka_lag", NULL, atomic_load(&ks->lag));
}
