/* kafka_sink.c — the decision log to a Kafka topic, once (kafka_sink.h). */
#include "serve/kafka_sink.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fileio.h"
#include "decide/decision_log.h"
#include "log/log.h"
#include "serve/kafka_conf.h"
#include "serve/metrics.h"
#include "serve/runtime.h"

#define BATCH_MAX   10000     /* records a transaction sends at most... */
#define BATCH_BYTES (8 << 20) /* ...and bytes */
#define IDLE_MS     10        /* nothing new: look again after this */
#define RETRY_MS    1000      /* a start or a transaction that failed: again after this */
#define ASK_MS      2000      /* a question to the brokers, at most (then asked again later) */
#define SLICE_MS    500       /* a transactional call waits this long, then is resumed */
#define SCAN_WINDOW 1000      /* messages the tail scan reads first, doubled going back */
#define SCAN_MS     60000     /* a tail scan that takes longer fails (and is tried again) */
#define POS_MAGIC   "weir decisions sink 1"
#define FROM_START  UINT64_MAX /* a decision log read from its start */

struct kafka_sink {
    runtime_t *rt;
    uint32_t n; /* weir partitions */
    char *topic, *posfile;
    char id[17];            /* DATA/sinks/id: this data directory's, on every message (weir.log) */
    int said_foreign;       /* messages of another data directory seen in a tail */
    int fresh;              /* the id was made now: no message of it can be in the topic */
    rd_kafka_conf_t *pconf; /* the producer's, copied for each producer made */
    rd_kafka_conf_t *cconf; /* the tail scan's consumer's */
    rd_kafka_t *rk;         /* the producer; NULL until started (and after a fatal error) */
    int32_t kparts;         /* the topic's partitions, at the start */
    int64_t *published;     /* per p: the newest event offset in the topic (-1: none) */
    int64_t *sent;          /* per p: the newest sent in the open transaction */
    uint64_t *next;         /* per p: the decision log offset its reader is at */
    /* per p: where next was at the last commit (read by /metrics: the lag) */
    atomic_uint_fast64_t *done;
    log_reader_t **r;
    pthread_t thread;
    int started;
    atomic_int stop;
    atomic_uint_fast64_t messages, commits, aborts, errors, skipped;
    uint32_t first; /* the partition a round starts with (fill) */
    char said[256]; /* the last trouble said (an outage is said once)... */
    int said_err;   /* ...and librdkafka's error code of it */
};

static void nap_ms(kafka_sink_t *s, int ms)
{
    for (int i = 0; i < ms / 10 && !atomic_load(&s->stop); i++)
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
}

/* Says it once (not at every retry of an outage), an error or a note. */
static void tell(kafka_sink_t *s, const char *why)
{
    if (strncmp(s->said, why, sizeof s->said - 1) == 0) return;
    snprintf(s->said, sizeof s->said, "%s", why);
    fprintf(stderr, "weir run: kafka sink: %s\n", why);
}

/* Says why, once per kind of trouble, and counts it. */
static void say(kafka_sink_t *s, const char *why)
{
    atomic_fetch_add(&s->errors, 1);
    tell(s, why);
}

/* Whether rk's fatal error (if any) is a fence: another producer took the
 * transactional id (a copy of this data directory running). Taking it
 * back would fence that one in turn, for ever: this one stops, said. */
static int fenced(kafka_sink_t *s, rd_kafka_t *rk)
{
    char why[512];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof why);
    if (e != RD_KAFKA_RESP_ERR__FENCED && e != RD_KAFKA_RESP_ERR_PRODUCER_FENCED) return 0;
    if (!atomic_exchange(&s->stop, 1))
        fprintf(stderr,
                "weir run: kafka sink: %s: another weir sends this data directory's decisions "
                "(a copy of it?); this one sends no more (restart it)\n",
                why);
    atomic_fetch_add(&s->errors, 1);
    return 1;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_sink_t *s = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL && fenced(s, rk)) return;
    /* an outage is said once (each reconnect words it anew) */
    if (err == s->said_err) {
        atomic_fetch_add(&s->errors, 1);
        return;
    }
    s->said_err = err;
    say(s, reason);
}

/* ---- where each weir partition stands: DATA/sinks/decisions.kafka ---- */

/* After each commit: the topic, and per p its published offset and the
 * decision log offset past its record. A lower bound (kafka_sink.h): an
 * older one is one still; synced, so that a power loss does not leave an
 * empty one where retention took the topic's tail. */
static void pos_save(kafka_sink_t *s)
{
    weir_outfile_t o;
    char why[512];
    int rc = weir_outfile_open(&o, s->posfile, why, sizeof why);
    if (rc == 0) {
        fprintf(o.f, POS_MAGIC "\ntopic %s\n", s->topic);
        for (uint32_t p = 0; p < s->n; p++)
            fprintf(o.f, "%u %" PRId64 " %" PRIu64 "\n", p, s->published[p],
                    (uint64_t)atomic_load(&s->done[p]));
        rc = weir_outfile_commit(&o, why, sizeof why);
    }
    if (rc) say(s, why);
}

/* The saved positions of this topic: 1 with published/dlog filled (-1 and
 * 0 where the file says nothing of p), 0 if there are none. */
static int pos_load(const kafka_sink_t *s, int64_t *published, uint64_t *dlog)
{
    for (uint32_t p = 0; p < s->n; p++)
        published[p] = -1, dlog[p] = 0;
    FILE *f = fopen(s->posfile, "r");
    if (!f) return 0;
    char line[512];
    int ok = fgets(line, sizeof line, f) && strcmp(line, POS_MAGIC "\n") == 0 &&
             fgets(line, sizeof line, f) && strncmp(line, "topic ", 6) == 0 &&
             strlen(line) == strlen(s->topic) + 7 &&
             strncmp(line + 6, s->topic, strlen(s->topic)) == 0;
    unsigned p;
    int64_t x;
    uint64_t d;
    while (ok && fscanf(f, "%u %" SCNd64 " %" SCNu64, &p, &x, &d) == 3)
        if (p < s->n) published[p] = x, dlog[p] = d;
    fclose(f);
    return ok;
}

/* This data directory's id (DATA/sinks/id, made at the first start of a
 * sink: 64 random bits in hex). Event offsets start again at 0 in a new
 * data directory, so (partition, offset) names a decision only with it. */
static int load_id(const char *dir, char *id, int *made, char *err, size_t errlen)
{
    *made = 0;
    char path[4096 + 8];
    snprintf(path, sizeof path, "%s/id", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%16[0-9a-f]", id) == 1 && strlen(id) == 16;
        fclose(f);
        if (ok) return 0;
        return weir_errf(err, errlen, WEIR_ECORRUPT,
                         "%s is not 16 hex digits: the sink's messages could not be told from "
                         "another data directory's (restore it, or remove it to send the whole "
                         "decision log again)",
                         path);
    }
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        return weir_errf(err, errlen, WEIR_EIO, "getrandom: %s", strerror(errno));
    snprintf(id, 17, "%016" PRIx64, r);
    weir_outfile_t o;
    int rc = weir_outfile_open(&o, path, err, errlen);
    if (rc) return rc;
    fprintf(o.f, "%s\n", id);
    if ((rc = weir_outfile_commit(&o, err, errlen)) == 0) *made = 1;
    return rc;
}

/* ---- the start: a producer, and the topic's tail ---- */

/* A client of kind type from a copy of conf, its errors to on_error; NULL
 * (said) if librdkafka refuses. */
static rd_kafka_t *client_new(kafka_sink_t *s, rd_kafka_type_t type, const rd_kafka_conf_t *conf)
{
    char why[512];
    rd_kafka_conf_t *c = rd_kafka_conf_dup(conf);
    rd_kafka_conf_set_opaque(c, s);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_t *rk = rd_kafka_new(type, c, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        say(s, why);
    }
    return rk;
}

/* Header name of h as a decimal number: 1 with *out set, else 0. */
static int header_num(rd_kafka_headers_t *h, const char *name, int64_t *out)
{
    const void *v;
    size_t len;
    char tmp[24];
    if (rd_kafka_header_get_last(h, name, &v, &len) || !len || len >= sizeof tmp) return 0;
    memcpy(tmp, v, len), tmp[len] = 0;
    *out = strtoll(tmp, NULL, 10);
    return 1;
}

/* The weir.partition and weir.offset headers of m: 1 with them read, if
 * its weir.log is this data directory's. */
static int headers_of(kafka_sink_t *s, const rd_kafka_message_t *m, uint32_t *p, int64_t *offset)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;
    int64_t part;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    if (rd_kafka_header_get_last(h, "weir.log", &v, &len) || len != strlen(s->id) ||
        memcmp(v, s->id, len) != 0) {
        if (!s->said_foreign++) {
            char why[256];
            snprintf(why, sizeof why,
                     "'%s' holds decisions of another data directory (not weir.log %s): they are "
                     "not this one's",
                     s->topic, s->id);
            tell(s, why);
        }
        return 0;
    }
    if (!header_num(h, "weir.partition", &part) || part < 0 || part > UINT32_MAX ||
        !header_num(h, "weir.offset", offset))
        return 0;
    *p = (uint32_t)part;
    return 1;
}

/* Reads Kafka partition q's committed messages [from, end) into newest[p]
 * (the largest weir.offset of each p mapped to q). A consumer of its own:
 * the end of partition a previous window's consumer reported, read here,
 * would end this one early. 0, or -1 (why said). */
static int scan_window(kafka_sink_t *s, int32_t q, int64_t from, int64_t end, int64_t *newest,
                       int64_t deadline_ms)
{
    rd_kafka_t *c = client_new(s, RD_KAFKA_CONSUMER, s->cconf);
    if (!c) return -1;
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->topic, q)->offset = from;
    rd_kafka_resp_err_t e = rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    int rc = -1;
    if (e) {
        say(s, rd_kafka_err2str(e));
        deadline_ms = 0;
    }
    uint64_t t0 = weir_mono_ns();
    while (weir_mono_ns() - t0 < (uint64_t)deadline_ms * 1000000 && !atomic_load(&s->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        int past = m->partition == q && m->offset >= end;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->partition == q)
            past = 1;
        else if (m->err) {
            say(s, rd_kafka_message_errstr(m));
            past = 0;
        } else if (m->partition == q && m->offset >= from && m->offset < end) {
            uint32_t p;
            int64_t o;
            if (headers_of(s, m, &p, &o) && p < s->n && (int32_t)(p % (uint32_t)s->kparts) == q &&
                o > newest[p])
                newest[p] = o;
        }
        rd_kafka_message_destroy(m);
        if (past) {
            rc = 0;
            break;
        }
    }
    if (rc && !e) say(s, "reading the topic's tail took too long");
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return rc;
}

/* published[p] for every p, from the topic's tails (kafka_sink.h), where
 * the saved positions (pos_load) cannot be bettered; positions[p]: the
 * decision log offset to read p from. 0, or -1 (why said). */
static int scan_tails(kafka_sink_t *s, uint64_t *positions)
{
    char why[512];
    int64_t *saved = weir_malloc(s->n * sizeof *saved);
    uint64_t *saved_at = weir_malloc(s->n * sizeof *saved_at);
    int have_saved = pos_load(s, saved, saved_at);
    int64_t *newest = weir_malloc(s->n * sizeof *newest);
    int rc = 0;
    for (int32_t q = 0; rc == 0 && q < s->kparts; q++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(s->rk, s->topic, q, &lo, &hi, ASK_MS);
        if (e) {
            say(s, rd_kafka_err2str(e));
            rc = -1;
            break;
        }
        for (uint32_t p = 0; p < s->n; p++)
            newest[p] = -1;
        uint32_t missing = 0;
        for (uint32_t p = (uint32_t)q; p < s->n; p += (uint32_t)s->kparts)
            missing++;
        /* newest windows first: a p found in one is done (its later
         * messages would be in a later window) */
        for (int64_t end = hi, win = SCAN_WINDOW; rc == 0 && missing && end > lo; win *= 2) {
            int64_t from = end - win > lo ? end - win : lo;
            rc = scan_window(s, q, from, end, newest, SCAN_MS);
            for (uint32_t p = (uint32_t)q; rc == 0 && p < s->n; p += (uint32_t)s->kparts)
                if (newest[p] >= 0 && s->published[p] == -2) s->published[p] = newest[p], missing--;
            end = from;
        }
        for (uint32_t p = (uint32_t)q; rc == 0 && p < s->n; p += (uint32_t)s->kparts) {
            if (s->published[p] == -2 && lo > 0 && have_saved && saved[p] >= 0) {
                /* retention deleted p's messages: its last commit's word */
                s->published[p] = saved[p];
            } else if (s->published[p] == -2) {
                s->published[p] = -1;
                if (lo == 0 && have_saved && saved[p] >= 0) {
                    snprintf(why, sizeof why,
                             "partition %u: its saved position (event offset %" PRId64 ") is not "
                             "in '%s' (made again? its partition count changed?): its decisions "
                             "go out from the decision log's start",
                             p, saved[p], s->topic);
                    say(s, why);
                } else if (lo > 0) {
                    snprintf(why, sizeof why,
                             "partition %u: no message of it in '%s' partition %d (its start was "
                             "deleted) and no position saved: its decisions go out from the "
                             "decision log's start",
                             p, s->topic, q);
                    say(s, why);
                }
            }
            /* read p's decision log from the saved position when it is not
             * past what the topic holds (a lower bound), else from its start */
            positions[p] = have_saved && saved[p] <= s->published[p] ? saved_at[p] : FROM_START;
        }
    }
    weir_free(newest);
    weir_free(saved);
    weir_free(saved_at);
    return rc;
}

/* The topic's partition count (0: unknown, said). */
static int32_t topic_partitions(kafka_sink_t *s)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(s->rk, s->topic, NULL);
    int32_t k = 0;
    if (t && rd_kafka_metadata(s->rk, 0, t, &md, ASK_MS) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && !md->topics[0].err)
            k = md->topics[0].partition_cnt;
        else if (md->topic_cnt == 1) {
            char why[512];
            snprintf(why, sizeof why, "topic '%s': %s (make it: weir does not)", s->topic,
                     rd_kafka_err2str(md->topics[0].err));
            say(s, why);
        }
        rd_kafka_metadata_destroy(md);
    } else {
        say(s, "the brokers do not answer");
    }
    if (t) rd_kafka_topic_destroy(t);
    return k;
}

/* Opens p's decision log reader at offset at (FROM_START: its start; the
 * start too if retention deleted at, said). */
static int open_reader(kafka_sink_t *s, uint32_t p, uint64_t at)
{
    char why[512];
    log_part_t *dlog = runtime_decision_log(s->rt, p);
    log_part_stat_t st;
    log_part_stat(dlog, &st);
    if (at == FROM_START) {
        at = st.start_offset;
    } else if (at < st.start_offset) {
        snprintf(why, sizeof why,
                 "partition %u: decision log records %" PRIu64 "..%" PRIu64
                 " were deleted (retention) before they were sent",
                 p, at, st.start_offset - 1);
        say(s, why);
        at = st.start_offset;
    }
    if (at > st.next_offset) at = st.next_offset;
    if (s->r[p]) log_reader_close(s->r[p]);
    s->r[p] = NULL;
    if (log_reader_open(dlog, at, &s->r[p], why, sizeof why) != 0) {
        say(s, why);
        return -1;
    }
    s->next[p] = at;
    atomic_store(&s->done[p], at);
    s->sent[p] = s->published[p];
    return 0;
}

/* A transactional call (init, commit, abort: librdkafka resumes one called
 * again after it timed out) in slices of SLICE_MS, so that a stop is seen
 * while the brokers are away: NULL, or its error (the timeout, on a stop). */
static rd_kafka_error_t *txn_call(kafka_sink_t *s, rd_kafka_error_t *(*call)(rd_kafka_t *, int))
{
    for (;;) {
        rd_kafka_error_t *e = call(s->rk, SLICE_MS);
        if (!e || rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR__TIMED_OUT || atomic_load(&s->stop))
            return e;
        rd_kafka_error_destroy(e);
    }
}

static void drop_producer(kafka_sink_t *s)
{
    if (s->rk) rd_kafka_destroy(s->rk);
    s->rk = NULL;
}

/* A producer that fenced its predecessors, and every p's position. 0, or
 * -1 (said; tried again later). */
static int start(kafka_sink_t *s)
{
    if (!(s->rk = client_new(s, RD_KAFKA_PRODUCER, s->pconf))) return -1;
    if (!(s->kparts = topic_partitions(s))) return drop_producer(s), -1;
    /* fences an older producer of this id and aborts its open transaction:
     * the tail read next is then all there will be */
    rd_kafka_error_t *e = txn_call(s, rd_kafka_init_transactions);
    if (e) {
        say(s, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return drop_producer(s), -1;
    }
    uint64_t *at = weir_malloc(s->n * sizeof *at);
    for (uint32_t p = 0; p < s->n; p++) {
        s->published[p] = s->fresh ? -1 : -2; /* -2: not found yet */
        at[p] = FROM_START;
    }
    /* (a new id: nothing of it to find in the topic, however long) */
    int rc = s->fresh ? 0 : scan_tails(s, at);
    for (uint32_t p = 0; rc == 0 && p < s->n; p++)
        rc = open_reader(s, p, at[p]);
    weir_free(at);
    if (rc) return drop_producer(s), -1;
    s->said[0] = 0; /* going again: the next trouble is said */
    s->said_err = 0;
    return 0;
}

/* ---- sending ---- */

/* Sends one record of p in the open transaction: 0; 1 refused for good
 * (too large for the brokers: said, counted, passed over, so that one
 * record does not hold back every other); -1 not sent. */
static int send_one(kafka_sink_t *s, uint32_t p, const log_rec_t *rec, int64_t input)
{
    char ph[12], oh[24];
    int phl = snprintf(ph, sizeof ph, "%u", p), ohl = snprintf(oh, sizeof oh, "%" PRId64, input);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(s->topic),
            RD_KAFKA_V_PARTITION((int32_t)(p % (uint32_t)s->kparts)),
            RD_KAFKA_V_KEY(rec->key.ptr, rec->key.len),
            RD_KAFKA_V_VALUE((void *)rec->value.ptr, rec->value.len),
            RD_KAFKA_V_HEADER("weir.partition", ph, phl), RD_KAFKA_V_HEADER("weir.offset", oh, ohl),
            RD_KAFKA_V_HEADER("weir.log", s->id, (ssize_t)strlen(s->id)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            char why[256];
            snprintf(why, sizeof why,
                     "partition %u offset %" PRId64 ": its decision record (%zu bytes of key and "
                     "value, and headers) is over message.max.bytes: not sent",
                     p, input, rec->value.len + rec->key.len);
            say(s, why);
            atomic_fetch_add(&s->skipped, 1);
            return 1;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e) say(s, rd_kafka_err2str(e));
            return e ? -1 : 0;
        }
        rd_kafka_poll(s->rk, 10); /* the queue drains as the brokers take it */
    }
}

/* Sends the records the decision logs hold past where each p is, up to a
 * batch, in the open transaction, the partitions taken in turn from
 * s->first (a backlog of one does not starve the others): how many (-1: a
 * send failed; *stalled: a record could not be read). Records passed over
 * count a tenth of one sent, so that a long run of them (a start without
 * saved positions) ends a round too. */
static long fill(kafka_sink_t *s, int *stalled)
{
    long n = 0, passed = 0;
    size_t bytes = 0;
    char why[512];
    *stalled = 0;
    s->first = (s->first + 1) % s->n;
    for (uint32_t i = 0; i < s->n && n + passed / 10 < BATCH_MAX && bytes < BATCH_BYTES; i++) {
        uint32_t p = (s->first + i) % s->n;
        log_rec_t rec;
        int k = 0;
        while (n + passed / 10 < BATCH_MAX && bytes < BATCH_BYTES && !atomic_load(&s->stop) &&
               (k = log_reader_next(s->r[p], &rec, why, sizeof why)) == 1) {
            s->next[p] = rec.offset + 1;
            int64_t input = decision_record_input(rec.value.ptr, rec.value.len);
            if (input <= s->sent[p]) { /* in the topic already (kafka_sink.h) */
                passed++;
                continue;
            }
            int rc = send_one(s, p, &rec, input);
            if (rc < 0) return -1;
            if (rc == 1) continue; /* refused for good, said: the reader passes it */
            s->sent[p] = input;
            n++;
            bytes += rec.value.len + rec.key.len;
        }
        if (k < 0) {
            /* a damaged record: what follows waits (weir log check) */
            say(s, why);
            *stalled = 1;
        }
    }
    return n;
}

/* The events of the records about to be committed made durable first: a
 * decision in the topic is of an event the log keeps (kafka_sink.h). */
static int sync_events(kafka_sink_t *s)
{
    char why[512];
    for (uint32_t p = 0; p < s->n; p++) {
        if (s->sent[p] == s->published[p]) continue; /* none of p in it */
        if (log_part_sync(runtime_event_log(s->rt, p), why, sizeof why) != 0) {
            say(s, why);
            return -1;
        }
    }
    return 0;
}

/* Aborts the open transaction: 0, or -1 (said: the producer is done for). */
static int abort_txn(kafka_sink_t *s)
{
    rd_kafka_error_t *e = txn_call(s, rd_kafka_abort_transaction);
    if (!e) return 0;
    say(s, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return -1;
}

/* Commits the open transaction (retrying what may be retried): 0; 1: it
 * was aborted (the records go again); -1: the producer is done for. */
static int commit(kafka_sink_t *s)
{
    for (;;) {
        rd_kafka_error_t *e = txn_call(s, rd_kafka_commit_transaction);
        if (!e) return 0;
        say(s, rd_kafka_error_string(e));
        int retry = rd_kafka_error_is_retriable(e), abort = rd_kafka_error_txn_requires_abort(e);
        rd_kafka_error_destroy(e);
        if (retry && !atomic_load(&s->stop)) continue;
        if (!abort || abort_txn(s) != 0) return -1;
        atomic_fetch_add(&s->aborts, 1);
        return 1;
    }
}

/* Whether some decision log holds records past its reader. */
static int something_new(kafka_sink_t *s)
{
    for (uint32_t p = 0; p < s->n; p++) {
        log_part_stat_t st;
        log_part_stat(runtime_decision_log(s->rt, p), &st);
        if (st.next_offset > s->next[p]) return 1;
    }
    return 0;
}

/* One transaction: 1 sent, 0 nothing to send, 2 aborted or stalled (the
 * records go again later), -1 the producer is done for. */
static int round_once(kafka_sink_t *s)
{
    if (!something_new(s)) return 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(s->rk);
    if (e) {
        say(s, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    int stalled;
    long n = fill(s, &stalled);
    int rc = n < 0 || sync_events(s) != 0 ? 1 : 0;
    if (n == 0) {
        /* all passed over: an empty transaction ends at once */
        if (abort_txn(s) != 0) return -1;
        for (uint32_t p = 0; p < s->n; p++)
            atomic_store(&s->done[p], s->next[p]);
        if (!stalled) pos_save(s);
        return stalled ? 2 : 0;
    }
    if (rc == 0) {
        rc = commit(s);
    } else {
        if (abort_txn(s) != 0) return -1;
        atomic_fetch_add(&s->aborts, 1);
    }
    if (rc < 0) return -1;
    if (rc == 1) {
        /* aborted: back to the last commit's positions */
        for (uint32_t p = 0; p < s->n; p++)
            if (open_reader(s, p, atomic_load(&s->done[p])) != 0) return -1;
        return 2;
    }
    for (uint32_t p = 0; p < s->n; p++) {
        s->published[p] = s->sent[p];
        atomic_store(&s->done[p], s->next[p]);
    }
    atomic_fetch_add(&s->messages, (uint64_t)n);
    atomic_fetch_add(&s->commits, 1);
    s->fresh = 0; /* its messages are in the topic now: later starts read the tails */
    pos_save(s);
    return 1;
}

static void *sink_main(void *arg)
{
    kafka_sink_t *s = arg;
    while (!atomic_load(&s->stop)) {
        if (!s->rk && start(s) != 0) {
            nap_ms(s, RETRY_MS);
            continue;
        }
        int rc = round_once(s);
        if (rc < 0 && fenced(s, s->rk)) break; /* (under load the callback may not have run) */
        if (rc < 0) {
            drop_producer(s); /* a new one, and the tails read again */
            nap_ms(s, RETRY_MS);
        } else if (rc == 2) {
            nap_ms(s, RETRY_MS); /* not at once: what failed would fail again */
        } else if (rc == 0) {
            rd_kafka_poll(s->rk, 0);
            nap_ms(s, IDLE_MS);
        }
    }
    return NULL;
}

/* ---- life ---- */

kafka_sink_t *kafka_sink_new(runtime_t *rt, const spec_kafka_t *k, const char *datadir, char *err,
                             size_t errlen)
{
    char dir[4096], id[17], txid[SPEC_KAFKA_GROUP_MAX + 32];
    snprintf(dir, sizeof dir, "%s/sinks", datadir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        weir_errf(err, errlen, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    int made;
    if (load_id(dir, id, &made, err, errlen) != 0) return NULL;
    /* the spec's weir.PIPELINE.decisions and this data directory's id: a
     * restarted weir fences what its killed self left, and two data
     * directories sending to one topic do not fence each other */
    snprintf(txid, sizeof txid, "%s.%s", k->group, id);
    /* The idempotent producer keeps a partition's messages in order (and
     * without gaps) across retries; acks=all, which it implies, keeps
     * them through a broker's loss. */
    const char *const pprops[] = {
        "transactional.id", txid, "enable.idempotence", "true", "linger.ms", "5", NULL};
    const char *const cprops[] = {"group.id", txid, "isolation.level", "read_committed",
                                  "enable.auto.commit", "false", "enable.partition.eof", "true",
                                  "auto.offset.reset", "earliest",
                                  /* a window's end is known when a fetch
                                   * returns: sooner than its default 500 */
                                  "fetch.wait.max.ms", "50", NULL};
    rd_kafka_conf_t *pc = kafka_conf_new(k, pprops, err, errlen);
    if (!pc) return NULL;
    rd_kafka_conf_t *cc = kafka_conf_new(k, cprops, err, errlen);
    if (!cc) {
        rd_kafka_conf_destroy(pc);
        return NULL;
    }
    kafka_sink_t *s = weir_calloc(1, sizeof *s);
    memcpy(s->id, id, sizeof id);
    s->fresh = made;
    s->rt = rt;
    s->n = runtime_partitions(rt);
    s->topic = weir_strdup(k->topic);
    size_t n = strlen(dir) + 32;
    s->posfile = weir_malloc(n);
    snprintf(s->posfile, n, "%s/decisions.kafka", dir);
    s->pconf = pc;
    s->cconf = cc;
    s->published = weir_calloc(s->n, sizeof *s->published);
    s->sent = weir_calloc(s->n, sizeof *s->sent);
    s->next = weir_calloc(s->n, sizeof *s->next);
    s->done = weir_calloc(s->n, sizeof *s->done);
    s->r = weir_calloc(s->n, sizeof *s->r);
    return s;
}

void kafka_sink_start(kafka_sink_t *s)
{
    if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
        fprintf(stderr, "weir run: kafka sink: cannot start its thread: nothing is sent\n");
        return;
    }
    s->started = 1;
}

void kafka_sink_free(kafka_sink_t *s)
{
    if (!s) return;
    if (s->started) {
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
    }
    drop_producer(s);
    for (uint32_t p = 0; p < s->n; p++)
        if (s->r[p]) log_reader_close(s->r[p]);
    rd_kafka_conf_destroy(s->pconf);
    rd_kafka_conf_destroy(s->cconf);
    weir_free(s->r);
    weir_free(s->published);
    weir_free(s->sent);
    weir_free(s->next);
    weir_free(s->done);
    weir_free(s->topic);
    weir_free(s->posfile);
    weir_free(s);
}

void kafka_sink_metrics(kafka_sink_t *s, weir_buf_t *b)
{
    metrics_header(b, "weir_kafka_sink_messages_total", "counter",
                   "Decision records sent to the sink's Kafka topic (committed transactions).");
    metrics_sample_u64(b, "weir_kafka_sink_messages_total", NULL, atomic_load(&s->messages));
    metrics_header(b, "weir_kafka_sink_skipped_total", "counter",
                   "Decision records not sent: over the brokers' message.max.bytes (each said).");
    metrics_sample_u64(b, "weir_kafka_sink_skipped_total", NULL, atomic_load(&s->skipped));
    metrics_header(b, "weir_kafka_sink_transactions_total", "counter",
                   "The sink's transactions, by outcome: committed, aborted (their records "
                   "sent again).");
    metrics_sample_u64(b, "weir_kafka_sink_transactions_total", "outcome=\"committed\"",
                       atomic_load(&s->commits));
    metrics_sample_u64(b, "weir_kafka_sink_transactions_total", "outcome=\"aborted\"",
                       atomic_load(&s->aborts));
    metrics_header(b, "weir_kafka_sink_errors_total", "counter",
                   "Errors of the sink (brokers down, a missing topic); it retries.");
    metrics_sample_u64(b, "weir_kafka_sink_errors_total", NULL, atomic_load(&s->errors));
    metrics_header(b, "weir_kafka_sink_lag", "gauge",
                   "Decision records not yet in the topic (decision log end minus the last "
                   "commit's position, summed over partitions).");
    /* (from the last commit's positions; before the topic's tail is read,
     * from the start: the whole log) */
    uint64_t lag = 0;
    for (uint32_t p = 0; p < s->n; p++) {
        log_part_stat_t st;
        log_part_stat(runtime_decision_log(s->rt, p), &st);
        uint64_t done = atomic_load(&s->done[p]);
        if (st.next_offset > done) lag += st.next_offset - done;
    }
    metrics_sample_u64(b, "weir_kafka_sink_lag", NULL, lag);
}
