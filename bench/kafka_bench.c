/* kafka_bench.c — `weir bench kafka`: a source's Kafka topic read by
 * `weir run` (src/serve/kafka_source.h) beside librdkafka's own consumer
 * reading the same messages, in one run, from librdkafka's mock cluster
 * (its brokers on loopback, in this process).
 *
 *   floor: a plain librdkafka consumer in a new group polls every message
 *          and does nothing with it: what the client and the brokers
 *          deliver on this machine;
 *   weir:  `weir run` with the fraud spec reading the topic in a new group
 *          and a new DATA: each message decoded, logged durably with its
 *          marks, applied, scored and decided, its decision logged.
 * Both are timed from their first message to their last (weir's through
 * /metrics, polled every 2 ms: group joins and start-up are left out);
 * messages/s, medians over rounds, and their ratio.
 *
 * Then the decision sink (src/serve/kafka_sink.h): that weir is stopped
 * once every message is decided and started again with the sink added to
 * its spec, so the sink finds the whole decision log to send, and it is
 * timed from its first record in the topic to its last
 * (weir_kafka_sink_messages_total):
 *   floor: a librdkafka transactional producer sending as many records of
 *          the decision records' mean size, 10,000 a transaction (the
 *          sink's batch), to a topic of its own;
 *   weir:  reading the decision log, sending each record with its key and
 *          headers, committing each batch, saving its positions.
 * The two share the machine's two cores with the brokers. Options:
 * --messages N (200000), --cards K (N/10), --rounds R (3), --json. */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "bench.h"
#include "benchweir.h"

#define PREFIX     "weir bench kafka"
#define TOPIC      "payments"
#define SINK_TOPIC "decisions" /* made per round: decisions-R */
#define SINK_BATCH 10000       /* records per transaction, as the sink's BATCH_MAX */
#define PARTITIONS 4
#define T0_MS      1767225600000LL /* 2026-01-01 */

typedef struct opts {
    uint64_t messages, cards;
    unsigned rounds;
    int json;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.messages = 200000, .rounds = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--messages") && v)
            o->messages = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--cards") && v)
            o->cards = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rounds") && v)
            o->rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--help")) {
            printf("usage: weir bench kafka [--messages N] [--cards K] [--rounds R] [--json]\n");
            return 1;
        } else {
            fprintf(stderr, PREFIX ": unknown option '%s' (see --help)\n", a);
            return -1;
        }
    }
    if (!o->cards) o->cards = o->messages / 10 ? o->messages / 10 : 1;
    /* fewer are logged before the first look at /metrics: no time to take */
    if (o->messages < 10000 || !o->rounds)
        return fprintf(stderr, PREFIX ": --messages must be 10000 or more, --rounds 1 or more\n"),
               -1;
    return 0;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    if (group && type == RD_KAFKA_PRODUCER) { /* a transactional id, as the sink's */
        rd_kafka_conf_set(c, "transactional.id", group, err, sizeof err);
        rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof err);
        group = NULL;
    }
    if (bootstrap) rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    if (group) {
        rd_kafka_conf_set(c, "group.id", group, err, sizeof err);
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err);
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err);
    } else if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(c, "linger.ms", "20", err, sizeof err);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk) fprintf(stderr, PREFIX ": %s\n", err);
    return rk;
}

/* The messages: fraud events, each keyed by its card, as a payment service
 * would send them. Returns how many the topic holds then (the mock cluster
 * keeps a partition's newest ~45,000 messages, as retention would), or
 * 0 on failure. */
static uint64_t produce(const char *bootstrap, const opts_t *o)
{
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (!p) return -1;
    weir_buf_t ev = WEIR_BUF_INIT;
    char key[32];
    bench_rng_state = 42;
    for (uint64_t i = 0; i < o->messages; i++) {
        uint64_t card = bench_rnd() % o->cards;
        buf_reset(&ev);
        bench_fraud_event(&ev, card, T0_MS + (int64_t)i * 60);
        int klen = snprintf(key, sizeof key, "c%07" PRIu64, card);
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, (size_t)klen),
                                 RD_KAFKA_V_VALUE(ev.data, ev.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        rd_kafka_poll(p, 0);
    }
    uint64_t held = 0;
    int left = rd_kafka_flush(p, 60000) != 0;
    for (int32_t k = 0; k < PARTITIONS && !left; k++) {
        int64_t lo, hi;
        left = rd_kafka_query_watermark_offsets(p, TOPIC, k, &lo, &hi, 10000) != 0;
        held += left ? 0 : (uint64_t)(hi - lo);
    }
    buf_free(&ev);
    rd_kafka_destroy(p);
    if (left) fprintf(stderr, PREFIX ": the messages were not all produced\n");
    return left ? 0 : held;
}

/* The floor: messages/s of a consumer that only polls them. */
static double floor_rate(const char *bootstrap, unsigned round, uint64_t n)
{
    char group[32];
    snprintf(group, sizeof group, "floor-%u", round);
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, bootstrap, group);
    if (!c) return -1;
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    uint64_t got = 0, t0 = 0, deadline = weir_mono_ns() + 120ull * 1000000000ull;
    while (got < n && weir_mono_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        if (!m->err && got++ == 0) t0 = weir_mono_ns();
        rd_kafka_message_destroy(m);
    }
    double s = bench_secs_since(t0);
    if (got < n)
        fprintf(stderr, PREFIX ": the floor's consumer read %" PRIu64 " of %" PRIu64 "\n", got, n);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return got == n && s > 0 ? (double)(n - 1) / s : -1;
}

/* The sink's floor: records/s of a transactional producer sending n records
 * of `size` bytes, SINK_BATCH a transaction, to topic (made here). */
static double sink_floor_rate(rd_kafka_mock_cluster_t *mc, const char *bootstrap, unsigned round,
                              uint64_t n, size_t size)
{
    char topic[32], txid[32];
    snprintf(topic, sizeof topic, "floor-%u", round);
    snprintf(txid, sizeof txid, "floor-tx-%u", round);
    rd_kafka_t *p = rd_kafka_mock_topic_create(mc, topic, PARTITIONS, 1)
                        ? NULL
                        : client(RD_KAFKA_PRODUCER, bootstrap, txid);
    if (!p) return -1;
    char *value = weir_malloc(size);
    memset(value, 'x', size);
    rd_kafka_error_t *e = rd_kafka_init_transactions(p, 30000);
    /* the topic's partitions known first, as the sink knows them when it
     * starts sending (a first send would wait for them: a second here) */
    rd_kafka_topic_t *t = rd_kafka_topic_new(p, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    for (int i = 0; !e && i < 100; i++, bench_sleep_s(0.05)) {
        int known = rd_kafka_metadata(p, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && md->topics[0].partition_cnt == PARTITIONS;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        if (known) break;
    }
    rd_kafka_topic_destroy(t);
    uint64_t t0 = weir_mono_ns(), sent = 0;
    while (!e && sent < n) {
        e = rd_kafka_begin_transaction(p);
        for (uint64_t i = 0; !e && i < SINK_BATCH && sent < n; i++, sent++) {
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
                                     RD_KAFKA_V_PARTITION((int32_t)(sent % PARTITIONS)),
                                     RD_KAFKA_V_KEY("c0000001", 8), RD_KAFKA_V_VALUE(value, size),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 10);
        }
        if (!e) e = rd_kafka_commit_transaction(p, 30000);
    }
    double s = bench_secs_since(t0);
    if (e) {
        fprintf(stderr, PREFIX ": the sink's floor: %s\n", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    weir_free(value);
    rd_kafka_destroy(p);
    return !e && s > 0 ? (double)n / s : -1;
}

/* The fraud spec with the topic as its source's kafka: (the line goes in
 * the source, before its fields), and with sink, the decision sink to
 * SINK_TOPIC-R. */
static int kafka_spec(const char *dir, const char *bootstrap, unsigned round, int sink, char *spec,
                      size_t n)
{
    char name[32], tail[512];
    snprintf(name, sizeof name, "kafka-%u.yaml", round);
    snprintf(tail, sizeof tail,
             "\nsinks:\n  decisions:\n    kafka: {brokers: \"%s\", topic: %s-%u}\n", bootstrap,
             SINK_TOPIC, round);
    if (bench_fraud_spec(dir, name, "0s", spec, n, sink ? tail : NULL, PREFIX)) return -1;
    char *text = bench_read_file(spec), *at = text ? strstr(text, "    fields:") : NULL;
    FILE *f = at ? fopen(spec, "w") : NULL;
    if (f) {
        fprintf(f, "%.*s    kafka: {brokers: \"%s\", topic: %s, group: weir-%u}\n%s",
                (int)(at - text), text, bootstrap, TOPIC, round, at);
        fclose(f);
    }
    weir_free(text);
    if (!f) fprintf(stderr, PREFIX ": cannot write %s\n", spec);
    return f ? 0 : -1;
}

/* Polls weir's metric `name` until it reaches n (or 300 s): the seconds
 * from its first non-zero value to then, and that value in *first; -1 if it
 * did not get there. */
static double time_metric(uint16_t port, const char *name, uint64_t n, double *first)
{
    double v = 0;
    uint64_t t0 = 0, deadline = weir_mono_ns() + 300ull * 1000000000ull;
    while (v < (double)n && weir_mono_ns() < deadline) {
        v = bench_metric(port, name);
        if (v > 0 && !t0) {
            t0 = weir_mono_ns();
            *first = v;
        }
        if (v < (double)n) bench_sleep_s(0.002);
    }
    return v >= (double)n && t0 ? bench_secs_since(t0) : -1;
}

/* weir's messages/s, from its first message logged to its last; then its
 * decision sink's records/s (*sink_rate) and their mean size (*size). */
static double weir_rate(const char *weir, const char *dir, rd_kafka_mock_cluster_t *mc,
                        const char *bootstrap, unsigned round, uint64_t n, double *sink_rate,
                        double *size)
{
    char spec[PATH_MAX], data[PATH_MAX + 16], out[PATH_MAX + 16], err[PATH_MAX + 16];
    if (kafka_spec(dir, bootstrap, round, 0, spec, sizeof spec)) return -1;
    snprintf(data, sizeof data, "%s/data-%u", dir, round);
    snprintf(out, sizeof out, "%s/weir-%u.out", dir, round);
    snprintf(err, sizeof err, "%s/weir-%u.err", dir, round);
    const char *args[] = {"run", spec, "--data", data, "--listen", "127.0.0.1:0", NULL};
    pid_t pid = 0;
    uint16_t port;
    if (bench_weir_start(weir, args, out, err, PREFIX, &pid, &port)) return -1;
    double first = 0, sfirst = 0;
    double s = time_metric(port, "weir_kafka_messages_total{outcome=\"logged\"}", n, &first);
    bench_reap(&pid, SIGTERM);
    /* every message is decided: again with the sink, the whole decision
     * log to send */
    char topic[32];
    snprintf(topic, sizeof topic, "%s-%u", SINK_TOPIC, round);
    double ss = -1;
    if (s > 0 && !rd_kafka_mock_topic_create(mc, topic, PARTITIONS, 1) &&
        !kafka_spec(dir, bootstrap, round, 1, spec, sizeof spec) &&
        !bench_weir_start(weir, args, out, err, PREFIX, &pid, &port))
        ss = time_metric(port, "weir_kafka_sink_messages_total", n, &sfirst);
    /* the decision log's bytes, over every partition of the spec's */
    double dbytes = 0, v;
    char name[96];
    for (unsigned p = 0;; p++) {
        snprintf(name, sizeof name, "weir_log_bytes{log=\"decisions\",partition=\"%u\"}", p);
        if ((v = bench_metric(port, name)) < 0) break;
        dbytes += v;
    }
    bench_reap(&pid, SIGTERM);
    if (s <= 0 || ss <= 0) {
        fprintf(stderr, PREFIX ": weir did not %s all %" PRIu64 " messages (see %s)\n",
                s <= 0 ? "log" : "send the decisions of", n, err);
        return -1;
    }
    *sink_rate = ((double)n - sfirst) / ss;
    *size = dbytes / (double)n; /* (the log's framing included: a little over) */
    return ((double)n - first) / s;
}

int bench_kafka(int argc, char **argv)
{
    opts_t o;
    int prc = parse_opts(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 1;
    bench_quiet = o.json;
    char weir[PATH_MAX + 8], dir[] = "/tmp/weir-bench-kafka.XXXXXX";
    if (bench_weir_path(weir, sizeof weir, PREFIX)) return 1;
    if (!mkdtemp(dir)) return fprintf(stderr, PREFIX ": mkdtemp: %s\n", strerror(errno)), 1;
    /* the cluster lives in a client's threads, in this process */
    rd_kafka_t *host = client(RD_KAFKA_PRODUCER, NULL, NULL);
    rd_kafka_mock_cluster_t *mc = host ? rd_kafka_mock_cluster_new(host, 1) : NULL;
    if (!mc || rd_kafka_mock_topic_create(mc, TOPIC, PARTITIONS, 1)) {
        fprintf(stderr, PREFIX ": cannot start librdkafka's mock cluster\n");
        if (host) rd_kafka_destroy(host);
        return 1;
    }
    char *bootstrap = weir_strdup(rd_kafka_mock_cluster_bootstraps(mc));
    int rc = 1;
    double *fl = weir_calloc(o.rounds, sizeof *fl), *wr = weir_calloc(o.rounds, sizeof *wr);
    double *sfl = weir_calloc(o.rounds, sizeof *sfl), *swr = weir_calloc(o.rounds, sizeof *swr);
    bench_progress(PREFIX ": producing %" PRIu64 " fraud events of %" PRIu64 " cards to %s",
                   o.messages, o.cards, bootstrap);
    uint64_t held = produce(bootstrap, &o);
    if (!held) goto done;
    if (held < o.messages)
        bench_progress(PREFIX ": the topic holds the newest %" PRIu64 " (the mock's retention)",
                       held);
    for (unsigned r = 0; r < o.rounds; r++) {
        if ((fl[r] = floor_rate(bootstrap, r, held)) <= 0) {
            fprintf(stderr, PREFIX ": the floor's consumer did not read every message\n");
            goto done;
        }
        double size = 0;
        if ((wr[r] = weir_rate(weir, dir, mc, bootstrap, r, held, &swr[r], &size)) <= 0) goto done;
        if ((sfl[r] = sink_floor_rate(mc, bootstrap, r, held, (size_t)size)) <= 0) goto done;
        bench_progress("  round %u: weir %.0f messages/s, floor %.0f; sink %.0f records/s, floor "
                       "%.0f (%.0f bytes)",
                       r + 1, wr[r], fl[r], swr[r], sfl[r], size);
    }
    double mf = bench_median(fl, o.rounds), mw = bench_median(wr, o.rounds);
    double msf = bench_median(sfl, o.rounds), msw = bench_median(swr, o.rounds);
    if (o.json) {
        printf("{\"messages\":%" PRIu64 ",\"cards\":%" PRIu64 ",\"rounds\":%u,"
               "\"weir_messages_per_s\":%.0f,\"floor_messages_per_s\":%.0f,\"ratio\":%.3f,"
               "\"sink_records_per_s\":%.0f,\"sink_floor_records_per_s\":%.0f,"
               "\"sink_ratio\":%.3f}\n",
               held, o.cards, o.rounds, mw, mf, mw / mf, msw, msf, msw / msf);
    } else {
        printf("weir bench kafka: %" PRIu64 " messages (%" PRIu64
               " cards), %d partitions, librdkafka's mock cluster on loopback\n\n",
               held, o.cards, PARTITIONS);
        printf("  %-50s %12s %12s %8s\n", "", "weir", "floor", "ratio");
        printf("  %-50s %12.0f %12.0f %7.2fx\n",
               "messages/s (floor: a consumer that only polls)", mw, mf, mw / mf);
        printf("  %-50s %12.0f %12.0f %7.2fx\n", "decision sink records/s (floor: a txn producer)",
               msw, msf, msw / msf);
        printf("\n  medians of %u rounds; weir decodes, logs durably, applies, scores and\n"
               "  decides each message (the fraud spec); both timed first message to last.\n",
               o.rounds);
    }
    rc = 0;
done:
    weir_free(fl);
    weir_free(wr);
    weir_free(sfl);
    weir_free(swr);
    weir_free(bootstrap);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    bench_rm_dir(dir, PREFIX);
    return rc;
}
