/* online_bench.c — `weir bench online`: the online store (a spec's
 * online_store:, src/serve/online_store.h) beside Redis itself, in one run,
 * on a redis-server this program starts on a free loopback port.
 *
 *   (1) write: a full sync of K keys (weir's restart: its first connection
 *       writes every key), keys/s from ready to nothing pending, beside
 *       the floor: the same SETs (the same keys, values and expiry, read
 *       back from Redis) pipelined by this program over one hiredis
 *       connection, 128 a round trip as weir's writer sends them.
 *   (2) the decision path: POST /v1/score latency (p50, p99) of weir with
 *       the online store beside the same weir without one, their requests
 *       interleaved one by one (each server over a keep-alive connection),
 *       each to a key the load created (so each marks a key for a write);
 *       medians of the rounds' figures. (2b) saturated: POST /v1/events
 *       of 500 events back to back for 2 s, each server in turn, events/s
 *       with and without; then how long the writer takes to catch up.
 *       Redis and the writer take CPU from the same two cores: this is
 *       where the online store costs.
 *   (3) a reader's read of a key's features: GET from Redis (hiredis) beside
 *       GET /v1/features from weir (keep-alive), p50 and p99.
 *   (4) freshness: from an answered POST /v1/score to its key's value with
 *       the event's time in Redis (a reader polling GET), p50 and p99; no
 *       baseline: an idle writer is woken by the request (WAKING THE WRITER
 *       in src/serve/online_store.c), so it is a wake-up and a write.
 * (1)'s clock starts when /readyz answers (polled every 2 ms): the writer
 * may have begun up to then, a few ms of a sync that takes about half a
 * second at 100,000 keys.
 *
 * The machine is shared and noisy: figures are medians over rounds, and
 * ratios of figures taken in the same run. Options: --keys K (100000),
 * --rounds R (5), --requests N (per server per round, 2000), --json. */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "bench.h"
#include "benchweir.h"

#define PREFIX     "weir bench online"
#define SOURCE     "transactions"
#define T0_MS      1767225600000LL /* 2026-01-01 */
#define LOAD_BATCH 1000            /* events a POST /v1/events while loading */
#define PIPELINE   128             /* SETs a round trip for the floor, as weir's writer */
#define READS      20000
#define FRESHNESS  200
#define THROUGHPUT_BATCH 500 /* events a POST in (2b) */
#define THROUGHPUT_S     2.0 /* seconds a server a round in (2b) */

typedef struct opts {
    uint64_t keys;
    unsigned rounds, requests;
    int json;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.keys = 100000, .rounds = 5, .requests = 2000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--keys") && v)
            o->keys = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rounds") && v)
            o->rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--requests") && v)
            o->requests = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: weir bench online [--json] [--keys K] [--rounds R] [--requests N]\n"
                   "The online store (a spec's online_store: Redis) beside Redis itself: a full\n"
                   "sync's keys/s beside pipelined SETs, /v1/score latency with and without it,\n"
                   "a read from Redis beside GET /v1/features (see bench/online_bench.c).\n");
            return 1;
        } else {
            fprintf(stderr, PREFIX ": unknown option or missing value '%s' (see --help)\n", a);
            return -1;
        }
    }
    if (!o->keys || !o->rounds || !o->requests) {
        fprintf(stderr, PREFIX ": --keys, --rounds and --requests must be positive\n");
        return -1;
    }
    return 0;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static redisContext *redis_connect(uint16_t port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && c->err) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

/* redis-server on port, no persistence; its pid, or -1. */
static pid_t redis_start(const char *dir, uint16_t port)
{
    char p[16];
    snprintf(p, sizeof p, "%u", port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; pid > 0 && i < 1000; i++) {
        redisContext *c = redis_connect(port);
        if (c) {
            redisFree(c);
            return pid;
        }
        bench_sleep_s(0.01);
    }
    fprintf(stderr,
            PREFIX ": redis-server did not start (is it installed? scripts/install-deps.sh)\n");
    return -1;
}

/* Keys 0..K-1 into the server at port, one event each, at times from
 * *ts on (moved past them). */
static int load(uint16_t port, uint64_t keys, int64_t *ts)
{
    int fd = bench_http_connect(port);
    weir_buf_t body = WEIR_BUF_INIT, resp = WEIR_BUF_INIT;
    int rc = fd < 0 ? -1 : 0;
    for (uint64_t k = 0; rc == 0 && k < keys; k += LOAD_BATCH) {
        buf_reset(&body);
        for (uint64_t i = k; i < keys && i < k + LOAD_BATCH; i++) {
            bench_fraud_event(&body, i, (*ts)++);
            buf_append(&body, "\n", 1);
        }
        if (bench_http_roundtrip(fd, "POST", "/v1/events/" SOURCE, body.data, body.len, &resp) !=
            200) {
            fprintf(stderr, PREFIX ": loading: %s\n", resp.data ? resp.data : "(no answer)");
            rc = -1;
        }
    }
    if (fd >= 0) close(fd);
    buf_free(&body);
    buf_free(&resp);
    return rc;
}

/* Until the online store has nothing pending; its seconds, or -1. */
static double wait_written(uint16_t port, uint64_t t0)
{
    for (;;) {
        double pending = bench_metric(port, "weir_online_store_pending"),
               syncs = bench_metric(port, "weir_online_store_full_syncs_total");
        if (pending == 0 && syncs >= 1) return bench_secs_since(t0);
        if (pending < 0 || bench_secs_since(t0) > 600) {
            fprintf(stderr, PREFIX ": the online store did not catch up (pending %.0f)\n", pending);
            return -1;
        }
        bench_sleep_s(0.005);
    }
}

static void redis_key(char *out, size_t n, uint64_t card)
{
    snprintf(out, n, "fraud:" SOURCE ":c%07" PRIu64, card);
}

/* The floor of (1): every key's value and expiry read from Redis, then
 * SET again, PIPELINE a round trip; keys/s of the SETs, or -1. */
static double set_floor(uint16_t port, uint64_t keys)
{
    redisContext *c = redis_connect(port);
    if (!c) return -1;
    char **vals = weir_calloc(keys, sizeof *vals);
    size_t *lens = weir_calloc(keys, sizeof *lens);
    long long pttl = 0;
    double rate = -1;
    char k[64];
    for (uint64_t i = 0; i < keys; i++) {
        redis_key(k, sizeof k, i);
        redisAppendCommand(c, "GET %s", k);
    }
    for (uint64_t i = 0; i < keys; i++) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) goto out;
        if (r->type == REDIS_REPLY_STRING) {
            vals[i] = weir_malloc(r->len);
            memcpy(vals[i], r->str, r->len);
            lens[i] = r->len;
        }
        freeReplyObject(r);
    }
    redis_key(k, sizeof k, 0);
    redisReply *t = redisCommand(c, "PTTL %s", k);
    if (t && t->type == REDIS_REPLY_INTEGER) pttl = t->integer;
    if (t) freeReplyObject(t);
    uint64_t t0 = weir_mono_ns();
    for (uint64_t i = 0; i < keys; i += PIPELINE) {
        uint64_t n = keys - i < PIPELINE ? keys - i : PIPELINE;
        for (uint64_t j = i; j < i + n; j++) {
            redis_key(k, sizeof k, j);
            if (pttl > 0)
                redisAppendCommand(c, "SET %s %b PX %lld", k, vals[j] ? vals[j] : "", lens[j],
                                   pttl);
            else
                redisAppendCommand(c, "SET %s %b", k, vals[j] ? vals[j] : "", lens[j]);
        }
        for (uint64_t j = 0; j < n; j++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) goto out;
            freeReplyObject(r);
        }
    }
    rate = (double)keys / bench_secs_since(t0);
out:
    if (rate < 0) fprintf(stderr, PREFIX ": the floor's SETs failed: %s\n", c->errstr);
    for (uint64_t i = 0; i < keys; i++)
        weir_free(vals[i]);
    weir_free(vals);
    weir_free(lens);
    redisFree(c);
    return rate;
}

/* n POST /v1/score to each of the two servers, one to A then one to B
 * (each over its keep-alive connection), so that both see the machine in
 * the same state (a VM's idle CPUs wake at very different speeds); each
 * an event of a random loaded key at the server's *ts (moved on);
 * latencies (us) into la and lb. 0, or -1. */
static int score_round(const uint16_t port[2], uint64_t keys, unsigned n, int64_t *ts[2],
                       double *lat[2])
{
    int fd[2] = {bench_http_connect(port[0]), bench_http_connect(port[1])};
    weir_buf_t body = WEIR_BUF_INIT, resp = WEIR_BUF_INIT;
    int rc = fd[0] < 0 || fd[1] < 0 ? -1 : 0;
    for (unsigned i = 0; i < n && rc == 0; i++)
        for (int s = 0; s < 2 && rc == 0; s++) {
            buf_reset(&body);
            bench_fraud_event(&body, bench_rnd() % keys, (*ts[s])++);
            uint64_t t0 = weir_mono_ns();
            if (bench_http_roundtrip(fd[s], "POST", "/v1/score/" SOURCE, body.data, body.len,
                                     &resp) != 200)
                rc = -1;
            lat[s][i] = (double)(weir_mono_ns() - t0) / 1e3;
        }
    for (int s = 0; s < 2; s++)
        if (fd[s] >= 0) close(fd[s]);
    buf_free(&body);
    buf_free(&resp);
    return rc;
}

/* Events/s of POST /v1/events, THROUGHPUT_BATCH random loaded keys a
 * request, back to back over one connection for seconds s; -1 on failure. */
static double throughput(uint16_t port, uint64_t keys, double secs, int64_t *ts)
{
    int fd = bench_http_connect(port);
    if (fd < 0) return -1;
    weir_buf_t body = WEIR_BUF_INIT, resp = WEIR_BUF_INIT;
    uint64_t events = 0, t0 = weir_mono_ns();
    double rate = -1;
    while (bench_secs_since(t0) < secs) {
        buf_reset(&body);
        for (unsigned i = 0; i < THROUGHPUT_BATCH; i++) {
            bench_fraud_event(&body, bench_rnd() % keys, (*ts)++);
            buf_append(&body, "\n", 1);
        }
        if (bench_http_roundtrip(fd, "POST", "/v1/events/" SOURCE, body.data, body.len, &resp) !=
            200)
            goto out;
        events += THROUGHPUT_BATCH;
    }
    rate = (double)events / bench_secs_since(t0);
out:
    close(fd);
    buf_free(&body);
    buf_free(&resp);
    return rate;
}

typedef struct lat2 {
    double p50, p99;
} lat2_t;

static lat2_t quantiles(double *v, size_t n)
{
    return (lat2_t){bench_quantile(v, n, 0.5), bench_quantile(v, n, 0.99)};
}

/* (3): READS random keys read from Redis and from weir; 0, or -1. */
static int reads(uint16_t rport, uint16_t wport, uint64_t keys, lat2_t *redis, lat2_t *weir)
{
    redisContext *c = redis_connect(rport);
    int fd = bench_http_connect(wport);
    double *a = weir_calloc(READS, sizeof *a), *b = weir_calloc(READS, sizeof *b);
    weir_buf_t resp = WEIR_BUF_INIT;
    int rc = c && fd >= 0 ? 0 : -1;
    char k[64], path[128];
    for (unsigned i = 0; i < READS && rc == 0; i++) {
        uint64_t card = bench_rnd() % keys;
        redis_key(k, sizeof k, card);
        uint64_t t0 = weir_mono_ns();
        redisReply *r = redisCommand(c, "GET %s", k);
        a[i] = (double)(weir_mono_ns() - t0) / 1e3;
        if (!r || r->type != REDIS_REPLY_STRING) rc = -1;
        if (r) freeReplyObject(r);
        snprintf(path, sizeof path, "/v1/features/" SOURCE "/c%07" PRIu64, card);
        t0 = weir_mono_ns();
        if (bench_http_roundtrip(fd, "GET", path, "", 0, &resp) != 200) rc = -1;
        b[i] = (double)(weir_mono_ns() - t0) / 1e3;
    }
    if (rc == 0) {
        *redis = quantiles(a, READS);
        *weir = quantiles(b, READS);
    }
    if (c) redisFree(c);
    if (fd >= 0) close(fd);
    weir_free(a);
    weir_free(b);
    buf_free(&resp);
    return rc;
}

/* (4): FRESHNESS events scored, each waited for in Redis; 0, or -1. */
static int freshness(uint16_t rport, uint16_t wport, uint64_t keys, int64_t *ts, lat2_t *out)
{
    redisContext *c = redis_connect(rport);
    int fd = bench_http_connect(wport);
    double *lag = weir_calloc(FRESHNESS, sizeof *lag);
    weir_buf_t body = WEIR_BUF_INIT, resp = WEIR_BUF_INIT;
    int rc = c && fd >= 0 ? 0 : -1;
    char k[64], want[64];
    for (unsigned i = 0; i < FRESHNESS && rc == 0; i++) {
        uint64_t card = bench_rnd() % keys;
        int64_t t = (*ts)++;
        buf_reset(&body);
        bench_fraud_event(&body, card, t);
        if (bench_http_roundtrip(fd, "POST", "/v1/score/" SOURCE, body.data, body.len, &resp) !=
            200) {
            rc = -1;
            break;
        }
        uint64_t t0 = weir_mono_ns();
        redis_key(k, sizeof k, card);
        snprintf(want, sizeof want, "\"as_of\":%" PRId64 ",", t);
        for (;;) {
            redisReply *r = redisCommand(c, "GET %s", k);
            int seen = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want);
            if (r) freeReplyObject(r);
            if (seen) break;
            if (bench_secs_since(t0) > 10) {
                fprintf(stderr, PREFIX ": key %s never got its new value\n", k);
                rc = -1;
                break;
            }
        }
        lag[i] = (double)(weir_mono_ns() - t0) / 1e3;
    }
    if (rc == 0) *out = quantiles(lag, FRESHNESS);
    if (c) redisFree(c);
    if (fd >= 0) close(fd);
    weir_free(lag);
    buf_free(&body);
    buf_free(&resp);
    return rc;
}

int bench_online(int argc, char **argv)
{
    opts_t o;
    int prc = parse_opts(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 1;
    bench_quiet = o.json;
    char weir[PATH_MAX + 8], dir[] = "/tmp/weir-bench-online.XXXXXX";
    if (bench_weir_path(weir, sizeof weir, PREFIX)) return 1;
    if (!mkdtemp(dir)) return fprintf(stderr, PREFIX ": mkdtemp: %s\n", strerror(errno)), 1;
    int rc = 1;
    pid_t redis = 0, pa = 0, pb = 0;
    uint16_t rport = free_port(), porta = 0, portb = 0;
    char spec_a[PATH_MAX], spec_b[PATH_MAX], tail[128], out[PATH_MAX + 64], err[PATH_MAX + 64];
    snprintf(tail, sizeof tail, "\nonline_store:\n  redis: 127.0.0.1:%u\n", rport);
    double *la = weir_calloc(o.requests, sizeof *la), *lb = weir_calloc(o.requests, sizeof *lb);
    double *a50 = weir_calloc(o.rounds, sizeof *a50), *a99 = weir_calloc(o.rounds, sizeof *a99);
    double *b50 = weir_calloc(o.rounds, sizeof *b50), *b99 = weir_calloc(o.rounds, sizeof *b99);
    if ((redis = redis_start(dir, rport)) < 0 ||
        bench_fraud_spec(dir, "plain.yaml", "0s", spec_a, sizeof spec_a, NULL, PREFIX) ||
        bench_fraud_spec(dir, "online.yaml", "0s", spec_b, sizeof spec_b, tail, PREFIX))
        goto done;
    char data_a[PATH_MAX + 8], data_b[PATH_MAX + 8];
    snprintf(data_a, sizeof data_a, "%s/a", dir);
    snprintf(data_b, sizeof data_b, "%s/b", dir);
    const char *args_a[] = {"run", spec_a, "--data", data_a, "--listen", "127.0.0.1:0", NULL};
    const char *args_b[] = {"run", spec_b, "--data", data_b, "--listen", "127.0.0.1:0", NULL};
    snprintf(out, sizeof out, "%s/a.out", dir);
    snprintf(err, sizeof err, "%s/a.err", dir);
    if (bench_weir_start(weir, args_a, out, err, PREFIX, &pa, &porta)) goto done;
    snprintf(out, sizeof out, "%s/b.out", dir);
    snprintf(err, sizeof err, "%s/b.err", dir);
    if (bench_weir_start(weir, args_b, out, err, PREFIX, &pb, &portb)) goto done;
    int64_t ts = T0_MS, ts_b;
    bench_progress(PREFIX ": loading %" PRIu64 " keys into weir with and without the online store",
                   o.keys);
    if (load(porta, o.keys, &ts)) goto done;
    ts_b = T0_MS;
    if (load(portb, o.keys, &ts_b) || wait_written(portb, weir_mono_ns()) < 0) goto done;

    /* (1) a full sync: weir restarted (its first connection), then the floor */
    bench_reap(&pb, SIGKILL);
    uint64_t t0 = weir_mono_ns();
    if (bench_weir_start(weir, args_b, out, err, PREFIX, &pb, &portb)) goto done;
    double ready = bench_secs_since(t0);
    t0 = weir_mono_ns();
    double sync_s = wait_written(portb, t0);
    double sets = bench_metric(portb, "weir_online_store_writes_total{op=\"set\"}");
    if (sync_s <= 0 || sets < (double)o.keys) {
        fprintf(stderr, PREFIX ": the full sync did not write every key (%.0f of %" PRIu64 ")\n",
                sets, o.keys);
        goto done;
    }
    double sync_rate = sets / sync_s, floor_rate = set_floor(rport, o.keys);
    if (floor_rate <= 0) goto done;
    bench_progress(
        "  (1) full sync of %.0f keys in %.2f s (after ready in %.1f s); floor %.0f keys/s", sets,
        sync_s, ready, floor_rate);

    /* (2) the decision path, alternating rounds */
    for (unsigned r = 0; r < o.rounds; r++) {
        uint16_t ports[2] = {porta, portb};
        int64_t *tss[2] = {&ts, &ts_b};
        double *lats[2] = {la, lb};
        if (score_round(ports, o.keys, o.requests, tss, lats)) goto done;
        lat2_t qa = quantiles(la, o.requests), qb = quantiles(lb, o.requests);
        a50[r] = qa.p50, a99[r] = qa.p99, b50[r] = qb.p50, b99[r] = qb.p99;
        bench_progress("  (2) round %u: p50 %.0f / %.0f us, p99 %.0f / %.0f us (without / with)",
                       r + 1, qa.p50, qb.p50, qa.p99, qb.p99);
    }
    double ma50 = bench_median(a50, o.rounds), ma99 = bench_median(a99, o.rounds),
           mb50 = bench_median(b50, o.rounds), mb99 = bench_median(b99, o.rounds);
    if (wait_written(portb, weir_mono_ns()) < 0) goto done;

    /* (2b) saturated: events/s, the servers in turn (which first alternates);
     * then how long the writer takes to catch up with what B took in */
    double *ta = weir_calloc(o.rounds, sizeof *ta), *tb = weir_calloc(o.rounds, sizeof *tb),
           *catchup = weir_calloc(o.rounds, sizeof *catchup);
    int tput_ok = 1;
    for (unsigned r = 0; r < o.rounds && tput_ok; r++)
        for (int s = 0; s < 2 && tput_ok; s++) {
            int is_b = (s + (int)r) % 2;
            double eps = throughput(is_b ? portb : porta, o.keys, THROUGHPUT_S, is_b ? &ts_b : &ts);
            if (is_b) {
                uint64_t t1 = weir_mono_ns();
                catchup[r] = wait_written(portb, t1);
                tb[r] = eps;
            } else {
                ta[r] = eps;
            }
            tput_ok = eps > 0 && (!is_b || catchup[r] >= 0);
        }
    double mta = bench_median(ta, o.rounds), mtb = bench_median(tb, o.rounds),
           mcatch = bench_median(catchup, o.rounds);
    weir_free(ta);
    weir_free(tb);
    weir_free(catchup);
    if (!tput_ok) goto done;
    bench_progress(
        "  (2b) saturated: %.0f events/s with, %.0f without; the writer caught up %.3f s after",
        mtb, mta, mcatch);

    /* (3) reads, (4) freshness */
    lat2_t rr, rw, fr;
    if (reads(rport, portb, o.keys, &rr, &rw) || freshness(rport, portb, o.keys, &ts_b, &fr))
        goto done;

    if (o.json) {
        printf(
            "{\"keys\":%" PRIu64 ",\"full_sync_keys_per_s\":%.0f,\"floor_set_keys_per_s\":%.0f,"
            "\"full_sync_ratio\":%.3f,\"score_p50_us_without\":%.1f,\"score_p50_us_with\":%.1f,"
            "\"score_p99_us_without\":%.1f,\"score_p99_us_with\":%.1f,\"score_p99_ratio\":%.3f,"
            "\"events_per_s_without\":%.0f,\"events_per_s_with\":%.0f,\"events_per_s_ratio\":%.3f,"
            "\"writer_catchup_s\":%.3f,"
            "\"read_redis_p50_us\":%.1f,\"read_redis_p99_us\":%.1f,\"read_weir_p50_us\":%.1f,"
            "\"read_weir_p99_us\":%.1f,\"freshness_p50_us\":%.1f,\"freshness_p99_us\":%.1f}\n",
            o.keys, sync_rate, floor_rate, sync_rate / floor_rate, ma50, mb50, ma99, mb99,
            mb99 / ma99, mta, mtb, mtb / mta, mcatch, rr.p50, rr.p99, rw.p50, rw.p99, fr.p50,
            fr.p99);
    } else {
        printf("weir bench online: %" PRIu64 " keys, the fraud spec, redis-server on loopback\n\n",
               o.keys);
        printf("  %-52s %12s %12s %8s\n", "", "weir", "baseline", "ratio");
        printf("  %-52s %12.0f %12.0f %7.2fx\n", "(1) full sync, keys/s (baseline: pipelined SETs)",
               sync_rate, floor_rate, sync_rate / floor_rate);
        printf("  %-52s %12.0f %12.0f %7.2fx\n",
               "(2) POST /v1/score p50 us (baseline: no online store)", mb50, ma50, mb50 / ma50);
        printf("  %-52s %12.0f %12.0f %7.2fx\n", "    p99 us (median of the rounds)", mb99, ma99,
               mb99 / ma99);
        printf("  %-52s %12.0f %12.0f %7.2fx\n",
               "(2b) saturated events/s (baseline: no online store)", mtb, mta, mtb / mta);
        printf("  %-52s %12.3f %12s\n", "     then the writer caught up after, s", mcatch, "-");
        printf("  %-52s %12.0f %12.0f %7.2fx\n",
               "(3) read a key's features p50 us: weir HTTP / Redis GET", rw.p50, rr.p50,
               rw.p50 / rr.p50);
        printf("  %-52s %12.0f %12.0f %7.2fx\n", "    p99 us", rw.p99, rr.p99, rw.p99 / rr.p99);
        printf("  %-52s %12.0f %12s\n", "(4) event answered -> value in Redis, p50 us", fr.p50,
               "-");
        printf("  %-52s %12.0f %12s\n", "    p99 us", fr.p99, "-");
        printf("\n  (2): %u rounds of %u requests per server, the two servers' interleaved;\n"
               "  weir, its writer, Redis and this client share the machine's cores.\n",
               o.rounds, o.requests);
    }
    rc = 0;
done:
    bench_reap(&pa, SIGKILL);
    bench_reap(&pb, SIGKILL);
    bench_reap(&redis, SIGKILL);
    weir_free(la);
    weir_free(lb);
    weir_free(a50);
    weir_free(a99);
    weir_free(b50);
    weir_free(b99);
    bench_rm_dir(dir, PREFIX);
    return rc;
}
