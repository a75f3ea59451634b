/* recovery_bench.c — `weir bench recovery`: how fast `weir run` comes back
 * after a crash, and what taking a checkpoint costs the requests it serves
 * meanwhile (issue 6). Everything runs against the real binary (the weir
 * next to this weir-bench) as a subprocess, on examples/fraud's pipeline
 * (its features, XGBoost model, rules and hourly aggregate), in a fresh data
 * directory:
 *
 *   build     --events fraud-like events of ~100 bytes over --keys cards,
 *             times spread over 7 days, appended straight into the event
 *             log with the log API (partition = XXH64(card) mod N, as weir
 *             run routes them; ~1 GB at the default 10,000,000 events);
 *             then a first `weir run` replays and decides them all (the
 *             decision log is written) and is killed with SIGKILL: the
 *             state a server leaves when it dies with no checkpoint.
 *   (b) full  --runs times: start `weir run` with no checkpoint and time
 *             start -> /readyz 200; replay events/s = events replayed (its
 *             "ready" line) / that time. Killed with SIGKILL after each but
 *             the last. Before each, its floor: this program reads the same
 *             log through the log API (CRCs checked) on as many threads and
 *             counts the events per key in a plain hash table — read, hash,
 *             one lookup an event, the least any replay that keeps state by
 *             key does on this machine.
 *   (c) p99   on that last server: a paced client (--rate requests/s of
 *             POST /v1/score over --conns keep-alive connections, a fresh
 *             event each, latency counted from the request's scheduled
 *             send time so a stall is not hidden) runs throughout; after
 *             5 s to settle, --rounds rounds of: 3 s without a checkpoint,
 *             then POST
 *             /v1/admin/checkpoint, which answers once the checkpoint is
 *             committed and older ones pruned. p99 of the requests
 *             scheduled while a checkpoint was in progress (request sent ..
 *             answer received) next to p99 of those in the 3 s before it,
 *             in the same run. The client goes on for 1 s after the last
 *             checkpoint (those events are replayed by (a)); then SIGKILL.
 *             Then the same on a server with periodic checkpoints, after
 *             (a) (see periodic_rounds).
 *   (a) ready --runs times: start `weir run`, which recovers from that
 *             checkpoint (taken at the end of the log) and replays what came
 *             after it; time start -> /readyz 200, and the events replayed.
 *             SIGKILL after each. The checkpoint's files are evicted from
 *             the page cache before each run (weir writes them with
 *             O_DIRECT: after a real crash they are on the device only, and
 *             without this the second run would read the first's cache).
 *             Before each, its floor: the files read from the device with
 *             O_DIRECT, a file per thread.
 * Each (a) and (b) run's progress line also gives weir's own figure from
 * its "ready" line: from the start of its recovery (after exec, the spec,
 * the model and the logs' open) to ready.
 * Medians over the runs are printed with each target: ready <= 3 s; replay
 * >= 3,000,000 events/s; p99 during a checkpoint <= 2x p99 without. The exit
 * status is 0 whether or not the targets are met (the JSON says), non-zero
 * only if the benchmark could not run.
 *
 * Options: --events N, --keys K (scale down for a quick run), --runs R
 * (default 3), --rounds N (checkpoints measured in each (c); default R),
 * --rate R (default 2000), --conns C (default 4), --dir DIR (work here
 * instead of a fresh /tmp directory), --keep, --json. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "bench.h"
#include "benchweir.h"
#include "log/log.h"

#define PREFIX     "weir bench recovery"
#define SOURCE     "transactions"
#define T0_MS      1767225600000LL /* 2026-01-01 */
#define SPAN_MS    (7LL * 86400000)
#define BASELINE_S 3.0 /* no-checkpoint window before each checkpoint */
#define TAIL_S     1.0 /* load after the last checkpoint: replayed by (a) */
#define SETTLE_S   5.0 /* load before the first admin round and periodic baseline (see (c)) */
#define BATCH      512 /* records per log_append while building */

typedef struct opts {
    uint64_t events, keys;
    unsigned runs, rounds, conns; /* rounds: checkpoints measured in (c) */
    double rate;
    const char *dir;
    int keep, json;
} opts_t;

/* ---- small helpers ---- */

static uint32_t spec_partitions(const char *spec_path)
{
    char *text = bench_read_file(spec_path);
    const char *p = text ? strstr(text, "\npartitions:") : NULL;
    uint32_t n = p ? (uint32_t)strtoul(p + 12, NULL, 10) : 1;
    weir_free(text);
    return n ? n : 1;
}

typedef struct build_result {
    double secs;
    uint64_t bytes;
} build_result_t;

static int build_log(const opts_t *o, const char *data, uint32_t nparts, build_result_t *out)
{
    char err[512];
    log_config_t cfg;
    log_config_defaults(&cfg);
    log_t *log;
    log_topic_t *topic;
    if (log_open(data, &cfg, &log, err, sizeof err) ||
        log_topic_open(log, SOURCE, nparts, &topic, err, sizeof err)) {
        fprintf(stderr, PREFIX ": %s\n", err);
        return -1;
    }
    typedef struct pend {
        weir_buf_t vals;
        size_t ends[BATCH], kends[BATCH];
        size_t n;
        log_rec_t recs[BATCH];
    } pend_t;
    pend_t *pend = weir_calloc(nparts, sizeof *pend);
    weir_buf_t scratch = WEIR_BUF_INIT;
    int64_t now = weir_wall_ms();
    uint64_t t0 = weir_mono_ns();
    int rc = 0;
    for (uint64_t i = 0; i < o->events && rc == 0; i++) {
        uint64_t card = bench_rnd() % o->keys;
        char key[16];
        int klen = snprintf(key, sizeof key, "c%07" PRIu64, card);
        uint32_t p = (uint32_t)(weir_hash64(key, (size_t)klen) % nparts);
        pend_t *q = &pend[p];
        buf_append(&q->vals, key, (size_t)klen);
        q->kends[q->n] = q->vals.len;
        int64_t ts = T0_MS + (int64_t)((double)i / (double)o->events * (double)SPAN_MS) -
                     (int64_t)(bench_rnd() % 20000);
        bench_fraud_event(&q->vals, card, ts);
        q->ends[q->n++] = q->vals.len;
        if (q->n < BATCH && i + 1 < o->events) continue;
        for (uint32_t pi = 0; pi < nparts && rc == 0; pi++) {
            pend_t *r = &pend[pi];
            if (r->n == 0 || (r->n < BATCH && i + 1 < o->events)) continue;
            for (size_t k = 0; k < r->n; k++) {
                size_t ks = k ? r->ends[k - 1] : 0;
                r->recs[k] = (log_rec_t){0,
                                         now,
                                         LOG_REC_EVENT,
                                         {r->vals.data + ks, r->kends[k] - ks},
                                         {r->vals.data + r->kends[k], r->ends[k] - r->kends[k]}};
            }
            rc = log_append(log_topic_part(topic, pi), r->recs, r->n, LOG_ACK_WRITTEN, &scratch,
                            NULL, err, sizeof err);
            r->n = 0;
            buf_reset(&r->vals);
        }
    }
    out->bytes = 0;
    for (uint32_t pi = 0; pi < nparts; pi++) {
        log_part_stat_t st;
        log_part_stat(log_topic_part(topic, pi), &st);
        out->bytes += st.bytes;
        buf_free(&pend[pi].vals);
    }
    log_close(log);
    out->secs = bench_secs_since(t0);
    buf_free(&scratch);
    weir_free(pend);
    if (rc) fprintf(stderr, PREFIX ": appending: %s\n", err);
    return rc;
}

/* ---- the floors: the same work's least cost on this machine, this run ---- */

/* Runs fn(arg) on as many threads as weir replays and restores with (its
 * default, one per online CPU; each thread takes the next partition or
 * file) and waits for them. */
static void floor_run(void *(*fn)(void *), void *arg)
{
    long nt = sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    pthread_t *th = weir_calloc((size_t)nt, sizeof *th);
    long started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, fn, arg) != 0) break;
    if (started == 0) fn(arg);
    for (long i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    weir_free(th);
}

/* (b)'s floor, the least a replay that keeps state per key does: the same
 * log read back through the log API (each batch's CRC checked, as weir's
 * replay reads it), each event's key hashed (XXH64, as the engine hashes
 * it) and counted in a plain open-addressing table of its partition. No
 * decoding, no windows, no outputs. */
typedef struct count_slot {
    uint64_t hash;
    uint32_t koff, klen; /* the key's bytes in the partition's arena */
    uint64_t count;
} count_slot_t;

typedef struct count_table {
    count_slot_t *slots;
    size_t cap, used;
    weir_buf_t keys;
} count_table_t;

static void count_grow(count_table_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    count_slot_t *ns = weir_calloc(ncap, sizeof *ns);
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].count) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].count)
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    weir_free(t->slots);
    t->slots = ns;
    t->cap = ncap;
}

static void count_add(count_table_t *t, const void *key, size_t klen)
{
    if (2 * (t->used + 1) > t->cap) count_grow(t);
    uint64_t h = weir_hash64(key, klen);
    size_t j = h & (t->cap - 1);
    for (;; j = (j + 1) & (t->cap - 1)) {
        count_slot_t *s = &t->slots[j];
        if (!s->count) {
            *s = (count_slot_t){h, (uint32_t)t->keys.len, (uint32_t)klen, 1};
            buf_append(&t->keys, key, klen);
            t->used++;
            return;
        }
        if (s->hash == h && s->klen == klen && memcmp(t->keys.data + s->koff, key, klen) == 0) {
            s->count++;
            return;
        }
    }
}

typedef struct replay_floor {
    log_topic_t *topic;
    uint32_t nparts;
    atomic_uint next;
    atomic_uint_fast64_t events, keys;
    atomic_int failed;
} replay_floor_t;

static void *replay_floor_main(void *arg)
{
    replay_floor_t *f = arg;
    char err[512];
    for (uint32_t p; (p = atomic_fetch_add(&f->next, 1)) < f->nparts;) {
        log_reader_t *r;
        if (log_reader_open(log_topic_part(f->topic, p), 0, &r, err, sizeof err) != 0) {
            fprintf(stderr, PREFIX ": floor: %s\n", err);
            atomic_store(&f->failed, 1);
            break;
        }
        count_table_t t = {0};
        log_rec_t rec;
        uint64_t n = 0;
        int rc;
        while ((rc = log_reader_next(r, &rec, err, sizeof err)) == 1) {
            if (rec.type != LOG_REC_EVENT) continue;
            count_add(&t, rec.key.ptr, rec.key.len);
            n++;
        }
        if (rc < 0) {
            fprintf(stderr, PREFIX ": floor: %s\n", err);
            atomic_store(&f->failed, 1);
        }
        log_reader_close(r);
        atomic_fetch_add(&f->events, n);
        atomic_fetch_add(&f->keys, t.used);
        weir_free(t.slots);
        buf_free(&t.keys);
    }
    return NULL;
}

/* Seconds from opening the log to the last partition counted (the log's
 * open, which checks its tail, included: weir's replay pays it too), or -1.
 * *events and *keys: what was counted, for the reader to compare. */
static double replay_floor(const char *data, uint64_t *events, uint64_t *keys)
{
    char err[512];
    log_config_t cfg;
    log_config_defaults(&cfg);
    uint64_t t0 = weir_mono_ns();
    log_t *log;
    replay_floor_t f = {0};
    if (log_open(data, &cfg, &log, err, sizeof err) != 0) {
        fprintf(stderr, PREFIX ": floor: %s\n", err);
        return -1;
    }
    if (log_topic_open(log, SOURCE, 0, &f.topic, err, sizeof err) != 0) {
        fprintf(stderr, PREFIX ": floor: %s\n", err);
        log_close(log);
        return -1;
    }
    f.nparts = log_topic_partitions(f.topic);
    floor_run(replay_floor_main, &f);
    double s = bench_secs_since(t0);
    log_close(log);
    *events = atomic_load(&f.events);
    *keys = atomic_load(&f.keys);
    return atomic_load(&f.failed) ? -1 : s;
}

/* A checkpoint's files, and (a)'s floor: the least a restore does, reading
 * them from the device. */
typedef struct ckpt_files {
    char (*paths)[PATH_MAX + 256];
    size_t n;
} ckpt_files_t;

static int ckpt_files(const char *data, uint64_t id, ckpt_files_t *out)
{
    char dir[PATH_MAX];
    memset(out, 0, sizeof *out);
    if (snprintf(dir, sizeof dir, "%s/checkpoints/%020" PRIu64, data, id) >= (int)sizeof dir) {
        fprintf(stderr, PREFIX ": %s: path too long\n", data);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, PREFIX ": %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        out->paths = weir_realloc(out->paths, (out->n + 1) * sizeof *out->paths);
        snprintf(out->paths[out->n++], sizeof *out->paths, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    return 0;
}

/* A checkpoint is written with O_DIRECT (checkpoint.c), so after a crash
 * its bytes are on the device, not in the page cache; a restart that finds
 * them cached (the previous (a) run read them) would be measured faster
 * than a real one. Each (a) run starts with them evicted. */
static void ckpt_evict(const ckpt_files_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        int fd = open(f->paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

typedef struct read_floor {
    const ckpt_files_t *files;
    atomic_size_t next;
    atomic_uint_fast64_t bytes;
    atomic_int failed;
    atomic_int cached; /* files the filesystem would not open with O_DIRECT */
} read_floor_t;

#define FLOOR_READ (1u << 20)

static void *read_floor_main(void *arg)
{
    read_floor_t *f = arg;
    void *buf = weir_aligned_alloc(4096, FLOOR_READ);
    for (size_t i; (i = atomic_fetch_add(&f->next, 1)) < f->files->n;) {
        int fd = open(f->files->paths[i], O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (fd < 0 && errno == EINVAL) { /* tmpfs: no device to read from */
            atomic_fetch_add(&f->cached, 1);
            fd = open(f->files->paths[i], O_RDONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            atomic_store(&f->failed, 1);
            continue;
        }
        ssize_t n;
        uint64_t got = 0;
        while ((n = read(fd, buf, FLOOR_READ)) > 0)
            got += (uint64_t)n;
        if (n < 0) atomic_store(&f->failed, 1);
        atomic_fetch_add(&f->bytes, got);
        close(fd);
    }
    weir_free(buf);
    return NULL;
}

/* Seconds to read every file of the checkpoint from the device (O_DIRECT,
 * 1 MiB reads, a file per thread of floor_run), or -1. *direct: 0 if the
 * filesystem refused O_DIRECT (then the figure is the page cache's). */
static double restore_floor(const ckpt_files_t *files, uint64_t *bytes, int *direct)
{
    read_floor_t f = {.files = files};
    uint64_t t0 = weir_mono_ns();
    floor_run(read_floor_main, &f);
    double s = bench_secs_since(t0);
    *bytes = atomic_load(&f.bytes);
    *direct = atomic_load(&f.cached) == 0;
    return atomic_load(&f.failed) ? -1 : s;
}

/* ---- weir run as a subprocess ---- */

typedef struct server {
    pid_t pid;
    uint16_t port;
    char out[PATH_MAX], errf[PATH_MAX];
    uint64_t t_start;
    double ready_s;     /* start -> /readyz 200 */
    uint64_t replayed;  /* from its "ready" line */
    double recover_s;   /* the same line: recovery's start -> ready, its own clock */
    uint64_t ckpt_used; /* from its recovery line; 0 = none */
} server_t;

static int server_start(const char *weir, const char *spec, const char *data, const char *dir,
                        int n, server_t *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->out, sizeof s->out, "%s/run%d.out", dir, n);
    snprintf(s->errf, sizeof s->errf, "%s/run%d.err", dir, n);
    s->t_start = weir_mono_ns();
    const char *args[] = {"run", spec, "--data", data, "--listen", "127.0.0.1:0", NULL};
    if (bench_weir_start(weir, args, s->out, s->errf, PREFIX, &s->pid, &s->port) != 0) return -1;
    s->ready_s = bench_secs_since(s->t_start);
    /* What it says it did. */
    char *text = NULL;
    const char *r = NULL;
    for (int tries = 0; tries < 500 && !r; tries++) {
        weir_free(text);
        text = bench_read_file(s->out);
        r = text ? strstr(text, "ready: replayed ") : NULL;
        if (!r) bench_sleep_s(0.002);
    }
    if (r) s->replayed = strtoull(r + strlen("ready: replayed "), NULL, 10);
    /* its own time, from the recovery's start (after the process started
     * and opened its logs) to ready */
    /* ("... decided N logged events (those ...), in S s; model V") */
    const char *in = r ? strstr(r, "), in ") : NULL;
    if (in) s->recover_s = strtod(in + strlen("), in "), NULL);
    weir_free(text);
    text = bench_read_file(s->errf);
    r = text ? strstr(text, "recovery: checkpoint ") : NULL;
    if (r && strstr(r, ": replaying"))
        s->ckpt_used = strtoull(r + strlen("recovery: checkpoint "), NULL, 10);
    weir_free(text);
    return 0;
}

static void server_kill(server_t *s)
{
    if (s->pid <= 0) return;
    kill(s->pid, SIGKILL);
    int status;
    waitpid(s->pid, &status, 0);
    s->pid = 0;
}

/* ---- the paced client ---- */

typedef struct sample {
    uint64_t sched_ns, lat_ns;
} sample_t;

typedef struct client {
    uint16_t port;
    double interval_s; /* between this connection's requests */
    uint64_t t0, keys;
    int64_t ts0;
    _Atomic int stop;
    sample_t *samples;
    size_t n, cap;
    uint64_t errors;
    pthread_t th;
    uint64_t seed;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    weir_buf_t body = WEIR_BUF_INIT, resp = WEIR_BUF_INIT;
    int fd = bench_http_connect(c->port);
    bench_rng_state = c->seed;
    for (uint64_t k = 0; !atomic_load(&c->stop); k++) {
        uint64_t sched = c->t0 + (uint64_t)((double)k * c->interval_s * 1e9);
        uint64_t now = weir_mono_ns();
        if (sched > now) bench_sleep_s((double)(sched - now) / 1e9);
        if (atomic_load(&c->stop)) break;
        buf_reset(&body);
        /* Event times go on from the end of the built log, with real time. */
        int64_t ts = c->ts0 + (int64_t)((weir_mono_ns() - c->t0) / 1000000) * 60;
        uint64_t h = c->seed ^ (k * 0x9e3779b97f4a7c15ull);
        h ^= h >> 29;
        bench_fraud_event(&body, (h * 0xbf58476d1ce4e5b9ull >> 11) % c->keys, ts);
        int st = fd < 0 ? -1
                        : bench_http_roundtrip(fd, "POST", "/v1/score/" SOURCE, body.data, body.len,
                                               &resp);
        if (st != 200) {
            c->errors++;
            if (st < 0) {
                if (fd >= 0) close(fd);
                fd = bench_http_connect(c->port);
            }
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 4096;
            c->samples = realloc(c->samples, c->cap * sizeof *c->samples);
        }
        c->samples[c->n++] = (sample_t){sched, weir_mono_ns() - sched};
    }
    if (fd >= 0) close(fd);
    buf_free(&body);
    buf_free(&resp);
    return NULL;
}

/* p-quantile (ms) of the latencies of samples scheduled in [from, to). */
static double window_quantile(client_t *cs, unsigned n, uint64_t from, uint64_t to, double q,
                              size_t *count)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        for (size_t j = 0; j < cs[i].n; j++)
            total += cs[i].samples[j].sched_ns >= from && cs[i].samples[j].sched_ns < to;
    double *v = weir_malloc((total ? total : 1) * sizeof *v);
    size_t k = 0;
    for (unsigned i = 0; i < n; i++)
        for (size_t j = 0; j < cs[i].n; j++)
            if (cs[i].samples[j].sched_ns >= from && cs[i].samples[j].sched_ns < to)
                v[k++] = (double)cs[i].samples[j].lat_ns / 1e6;
    double r = bench_quantile(v, k, q);
    weir_free(v);
    if (count) *count = k;
    return r;
}

/* ---- the run ---- */

typedef struct ckpt_round {
    uint64_t base_from, base_to, ck_from, ck_to; /* windows of scheduled send times */
    double base_p50, base_p99, ck_p50, ck_p99, ck_ms, pause_ms;
    size_t base_n, ck_n;
    uint64_t id, bytes;
} ckpt_round_t;

/* The rounds' latency figures, once the clients have stopped. */
static void rounds_latency(client_t *cs, unsigned conns, ckpt_round_t *rounds, unsigned n)
{
    if (getenv("EXP_DUMP")) {
        FILE *f = fopen(getenv("EXP_DUMP"), "a");
        for (unsigned c = 0; c < conns; c++)
            for (size_t i = 0; i < cs[c].n; i++)
                fprintf(f, "S %lu %lu\n", cs[c].samples[i].sched_ns, cs[c].samples[i].lat_ns);
        fclose(f);
    }
    for (unsigned i = 0; i < n; i++) {
        ckpt_round_t *r = &rounds[i];
        r->base_p50 = window_quantile(cs, conns, r->base_from, r->base_to, 0.5, NULL);
        r->base_p99 = window_quantile(cs, conns, r->base_from, r->base_to, 0.99, &r->base_n);
        r->ck_p50 = window_quantile(cs, conns, r->ck_from, r->ck_to, 0.5, NULL);
        r->ck_p99 = window_quantile(cs, conns, r->ck_from, r->ck_to, 0.99, &r->ck_n);
    }
}

static void rounds_print(const char *what, const ckpt_round_t *rounds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        const ckpt_round_t *r = &rounds[i];
        bench_progress("  (c) %s checkpoint %" PRIu64
                       ": %.0f ms (pause %.1f ms), %.2f GB; p99 %.2f ms "
                       "during (%zu requests) vs %.2f ms without (%zu)",
                       what, r->id, r->ck_ms, r->pause_ms, (double)r->bytes / 1e9, r->ck_p99,
                       r->ck_n, r->base_p99, r->base_n);
    }
}

static int take_checkpoint(uint16_t port, ckpt_round_t *r, uint64_t *t_from, uint64_t *t_to)
{
    weir_buf_t resp = WEIR_BUF_INIT;
    *t_from = weir_mono_ns();
    int st = bench_http_once(port, "POST", "/v1/admin/checkpoint", &resp);
    *t_to = weir_mono_ns();
    cJSON *j = st == 200 ? cJSON_Parse(resp.data) : NULL;
    if (!j) {
        fprintf(stderr, PREFIX ": POST /v1/admin/checkpoint answered %d: %s\n", st,
                resp.data ? resp.data : "");
        buf_free(&resp);
        return -1;
    }
    const cJSON *x;
    if ((x = cJSON_GetObjectItem(j, "checkpoint")) && cJSON_IsNumber(x))
        r->id = (uint64_t)x->valuedouble;
    if ((x = cJSON_GetObjectItem(j, "bytes")) && cJSON_IsNumber(x))
        r->bytes = (uint64_t)x->valuedouble;
    if ((x = cJSON_GetObjectItem(j, "ms")) && cJSON_IsNumber(x)) r->ck_ms = x->valuedouble;
    if ((x = cJSON_GetObjectItem(j, "pause_ms")) && cJSON_IsNumber(x)) r->pause_ms = x->valuedouble;
    cJSON_Delete(j);
    buf_free(&resp);
    return 0;
}

static double median_of(const double *v, size_t n)
{
    double *c = weir_malloc((n ? n : 1) * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    double m = bench_median(c, n);
    weir_free(c);
    return m;
}

static void clients_start(client_t *cs, const opts_t *o, uint16_t port)
{
    uint64_t t0 = weir_mono_ns();
    for (unsigned i = 0; i < o->conns; i++) {
        free(cs[i].samples);
        memset(&cs[i], 0, sizeof cs[i]);
        cs[i].port = port;
        cs[i].interval_s = (double)o->conns / o->rate;
        cs[i].t0 = t0 + (uint64_t)((double)i / o->rate * 1e9);
        cs[i].keys = o->keys;
        cs[i].ts0 = T0_MS + SPAN_MS;
        cs[i].seed = 0x1234567ull * (i + 1) + t0;
        pthread_create(&cs[i].th, NULL, client_main, &cs[i]);
    }
}

static uint64_t clients_stop(client_t *cs, const opts_t *o)
{
    uint64_t errors = 0;
    for (unsigned i = 0; i < o->conns; i++) {
        atomic_store(&cs[i].stop, 1);
        pthread_join(cs[i].th, NULL);
        errors += cs[i].errors;
    }
    return errors;
}

/* Periodic checkpoints on a server under load: waits for `want` of them,
 * each seen as weir_checkpoint_last_id going up (asked every POLL_S: a
 * light probe, the same in and out of checkpoints), and takes its window
 * as [seen - weir_checkpoint_last_seconds, seen] — the freeze, the
 * writing and the pruning of older ones, plus up to POLL_S after — and the gap before it (0.5 s
 * after the previous one .. 0.1 s before) as its baseline. */
#define POLL_S 0.010
static int periodic_rounds(uint16_t port, unsigned want, double timeout_s, ckpt_round_t *rounds)
{
    uint64_t t0 = weir_mono_ns(), prev_end = t0;
    double prev_id = bench_metric(port, "weir_checkpoint_last_id");
    unsigned got = 0;
    while (got < want && bench_secs_since(t0) < timeout_s) {
        bench_sleep_s(POLL_S);
        double id = bench_metric(port, "weir_checkpoint_last_id");
        if (!(id > prev_id)) continue;
        uint64_t end = weir_mono_ns();
        double secs = bench_metric(port, "weir_checkpoint_last_seconds");
        ckpt_round_t *r = &rounds[got];
        r->id = (uint64_t)id;
        r->ck_ms = secs * 1e3;
        r->pause_ms = bench_metric(port, "weir_checkpoint_pause_seconds") * 1e3;
        r->bytes = (uint64_t)bench_metric(port, "weir_checkpoint_last_bytes");
        r->ck_from = end - (uint64_t)(secs * 1e9);
        r->ck_to = end;
        r->base_from = prev_end + 500000000ull;
        /* The first baseline starts SETTLE_S after ready, as in the admin
         * rounds: what start-up leaves running (the heap's collapse into
         * huge pages, the outputs' writeback) is no checkpoint's, nor is
         * it the steady state a checkpoint is compared with. */
        uint64_t settled = t0 + (uint64_t)(SETTLE_S * 1e9);
        if (r->base_from < settled) r->base_from = settled;
        r->base_to = r->ck_from - 100000000ull;
        prev_id = id;
        prev_end = end;
        /* a round needs a baseline: a checkpoint less than 1.6 s after
         * the start or the previous one does not count */
        if (r->base_to > r->base_from + 1000000000ull) got++;
    }
    if (got < want) {
        fprintf(stderr, PREFIX ": saw %u periodic checkpoints in %.0f s, wanted %u\n", got,
                timeout_s, want);
        return -1;
    }
    return 0;
}

typedef struct summary {
    double p99_base, p99_ck, ratio, ck_ms, pause_ms;
    uint64_t bytes;
} summary_t;

static summary_t summarize(const ckpt_round_t *rounds, unsigned n)
{
    summary_t m = {0};
    double *v = weir_malloc(n * sizeof *v);
#define MED(field, expr)                                                                           \
    do {                                                                                           \
        for (unsigned r = 0; r < n; r++)                                                           \
            v[r] = (expr);                                                                         \
        m.field = median_of(v, n);                                                                 \
    } while (0)
    MED(p99_base, rounds[r].base_p99);
    MED(p99_ck, rounds[r].ck_p99);
    MED(ratio, rounds[r].base_p99 > 0 ? rounds[r].ck_p99 / rounds[r].base_p99 : 0);
    MED(ck_ms, rounds[r].ck_ms);
    MED(pause_ms, rounds[r].pause_ms);
#undef MED
    m.bytes = rounds[n - 1].bytes;
    weir_free(v);
    return m;
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.events = 10000000, .keys = 1000000, .runs = 3, .conns = 4, .rate = 2000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--keep"))
            o->keep = 1;
        else if (!strcmp(a, "--events") && v)
            o->events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--keys") && v)
            o->keys = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--runs") && v)
            o->runs = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rounds") && v)
            o->rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--conns") && v)
            o->conns = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--rate") && v)
            o->rate = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--dir") && v)
            o->dir = argv[++i];
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: weir bench recovery [--json] [--events N] [--keys K] [--runs R]\n"
                   "                           [--rounds N] [--rate REQ_PER_S] [--conns C] [--dir "
                   "DIR] [--keep]\n"
                   "Recovery time from a checkpoint, full-replay events/s, and /v1/score p99\n"
                   "during a checkpoint beside p99 without one (see bench/recovery_bench.c).\n");
            return 1;
        } else {
            fprintf(stderr, PREFIX ": unknown option or missing value '%s' (see --help)\n", a);
            return -1;
        }
    }
    if (!o->rounds) o->rounds = o->runs;
    if (!o->events || !o->keys || !o->runs || !o->conns || !(o->rate > 0)) {
        fprintf(stderr, PREFIX ": --events, --keys, --runs, --conns and --rate must be positive\n");
        return -1;
    }
    return 0;
}

int bench_recovery(int argc, char **argv)
{
    opts_t o;
    int prc = parse_opts(argc, argv, &o);
    if (prc) return prc < 0 ? 1 : 0;
    bench_quiet = o.json;
    signal(SIGPIPE, SIG_IGN);

    char weir[PATH_MAX + 8];
    if (bench_weir_path(weir, sizeof weir, PREFIX)) return 1;

    char dir[PATH_MAX], data[PATH_MAX + 8], spec[PATH_MAX + 32], pspec[PATH_MAX + 32];
    if (o.dir) {
        snprintf(dir, sizeof dir, "%s", o.dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return fprintf(stderr, PREFIX ": cannot create %s: %s\n", dir, strerror(errno)), 1;
    } else {
        snprintf(dir, sizeof dir, "/tmp/weir-bench-recovery.XXXXXX");
        if (!mkdtemp(dir)) return fprintf(stderr, PREFIX ": mkdtemp: %s\n", strerror(errno)), 1;
    }
    snprintf(data, sizeof data, "%s/data", dir);
    struct stat sb;
    if (stat(data, &sb) == 0) {
        fprintf(stderr, PREFIX ": %s exists; give an empty --dir\n", data);
        return 1;
    }
    if (bench_fraud_spec(dir, "fraud.yaml", "0s", spec, sizeof spec, NULL, PREFIX) != 0) return 1;
    uint32_t nparts = spec_partitions(spec);
    int rc = 1, nrun = 0;
    server_t s = {0};
    client_t *cs = weir_calloc(o.conns, sizeof *cs);
    double *ready_full = weir_calloc(o.runs, sizeof(double)),
           *eps_full = weir_calloc(o.runs, sizeof(double));
    double *ready_ck = weir_calloc(o.runs, sizeof(double)),
           *replayed_ck = weir_calloc(o.runs, sizeof(double));
    double *eps_floor = weir_calloc(o.runs, sizeof(double)),
           *ready_floor = weir_calloc(o.runs, sizeof(double));
    /* weir's own clock (its ready line): recovery's start -> ready */
    double *own_full = weir_calloc(o.runs, sizeof(double)),
           *own_ck = weir_calloc(o.runs, sizeof(double));
    uint64_t ckpt_id = 0, full_replayed = 0, floor_events = 0, floor_keys = 0;
    ckpt_files_t cf = {0};
    int floor_direct = 1;
    ckpt_round_t *admin = weir_calloc(o.rounds, sizeof *admin),
                 *periodic = weir_calloc(o.rounds, sizeof *periodic);
    double first_s = 0;
    int clients_on = 0;

    /* build */
    bench_progress(PREFIX ": building %" PRIu64 " events over %" PRIu64 " keys in %s ...", o.events,
                   o.keys, data);
    build_result_t br;
    if (build_log(&o, data, nparts, &br) != 0) goto out;
    bench_progress("  log: %.2f GB in %.1f s", (double)br.bytes / 1e9, br.secs);
    bench_progress(PREFIX ": first start: replay and decide every event ...");
    if (server_start(weir, spec, data, dir, nrun++, &s) != 0) goto out;
    first_s = s.ready_s;
    bench_progress("  ready in %.1f s (%" PRIu64 " events replayed and decided)", first_s,
                   s.replayed);
    server_kill(&s);

    /* (b) full replay, each run after one of its floor */
    for (unsigned r = 0; r < o.runs; r++) {
        uint64_t fev = 0, fkeys = 0;
        double fs = replay_floor(data, &fev, &fkeys);
        if (fs <= 0 || fev == 0) goto out;
        eps_floor[r] = (double)fev / fs;
        floor_events = fev;
        floor_keys = fkeys;
        bench_progress("  (b) floor %u: read the log, count per key: %.2f s, %" PRIu64
                       " events, %" PRIu64 " keys, %.0f events/s",
                       r + 1, fs, fev, fkeys, eps_floor[r]);
        if (server_start(weir, spec, data, dir, nrun++, &s) != 0) goto out;
        if (s.ckpt_used) {
            fprintf(stderr, PREFIX ": full replay run recovered from checkpoint %" PRIu64 "\n",
                    s.ckpt_used);
            goto out;
        }
        ready_full[r] = s.ready_s;
        own_full[r] = s.recover_s;
        full_replayed = s.replayed;
        eps_full[r] = (double)s.replayed / s.ready_s;
        bench_progress(
            "  (b) full replay %u: ready in %.2f s (%.2f s by weir's clock, from the start of "
            "its recovery), %" PRIu64 " events, %.0f events/s",
            r + 1, s.ready_s, s.recover_s, s.replayed, eps_full[r]);
        if (r + 1 < o.runs) server_kill(&s);
    }

    /* (c) on the last of them: checkpoints taken with POST
     * /v1/admin/checkpoint, each after BASELINE_S without one, once the
     * server has settled for SETTLE_S under the load (right after a full
     * replay the kernel is still writing back the outputs it rewrote: the
     * first baselines had p99s of 1-50 ms, no checkpoint involved). */
    clients_start(cs, &o, s.port);
    clients_on = 1;
    bench_sleep_s(SETTLE_S);
    for (unsigned r = 0; r < o.rounds; r++) {
        uint64_t b0 = weir_mono_ns();
        bench_sleep_s(BASELINE_S);
        uint64_t c0, c1;
        if (take_checkpoint(s.port, &admin[r], &c0, &c1) != 0) goto out;
        ckpt_id = admin[r].id;
        admin[r].base_from = b0 + 500000000ull; /* settled after the previous one */
        admin[r].base_to = c0;
        admin[r].ck_from = c0;
        admin[r].ck_to = c1;
    }
    bench_sleep_s(TAIL_S); /* events after the last checkpoint: (a) replays them */
    clients_on = 0;
    uint64_t errors = clients_stop(cs, &o);
    rounds_latency(cs, o.conns, admin, o.rounds);
    rounds_print("POST /v1/admin/checkpoint:", admin, o.rounds);
    if (errors) bench_progress("  (c) %" PRIu64 " requests failed", errors);
    server_kill(&s);

    /* (a) ready after a crash, from the checkpoint near the end; each run
     * after its floor, with the checkpoint's files out of the page cache */
    if (ckpt_files(data, ckpt_id, &cf) != 0) goto out;
    for (unsigned r = 0; r < o.runs; r++) {
        uint64_t fbytes = 0;
        ckpt_evict(&cf);
        ready_floor[r] = restore_floor(&cf, &fbytes, &floor_direct);
        if (ready_floor[r] <= 0) goto out;
        bench_progress("  (a) floor %u: read the checkpoint's %.2f GB %s: %.3f s", r + 1,
                       (double)fbytes / 1e9,
                       floor_direct ? "from the device" : "(no O_DIRECT here: from the page cache)",
                       ready_floor[r]);
        ckpt_evict(&cf);
        if (server_start(weir, spec, data, dir, nrun++, &s) != 0) goto out;
        if (s.ckpt_used != ckpt_id) {
            fprintf(stderr,
                    PREFIX ": recovered from checkpoint %" PRIu64 ", expected %" PRIu64 "\n",
                    s.ckpt_used, ckpt_id);
            goto out;
        }
        ready_ck[r] = s.ready_s;
        own_ck[r] = s.recover_s;
        replayed_ck[r] = (double)s.replayed;
        bench_progress(
            "  (a) recovery %u: ready in %.3f s (%.3f s by weir's clock, from the start of "
            "its recovery), %" PRIu64 " events replayed after checkpoint %" PRIu64,
            r + 1, s.ready_s, s.recover_s, s.replayed, s.ckpt_used);
        server_kill(&s);
    }

    /* (c) again with the spec's periodic checkpoints (no HTTP request
     * involved), every 3x the time one takes (at least 3 s) so that each
     * has a baseline before it. */
    summary_t sa = summarize(admin, o.rounds);
    double interval_s = 3 * sa.ck_ms / 1e3;
    if (interval_s < 3) interval_s = 3;
    char ival[32];
    snprintf(ival, sizeof ival, "%.0fms", interval_s * 1e3);
    if (bench_fraud_spec(dir, "fraud-periodic.yaml", ival, pspec, sizeof pspec, NULL, PREFIX) != 0)
        goto out;
    if (server_start(weir, pspec, data, dir, nrun++, &s) != 0) goto out;
    clients_start(cs, &o, s.port);
    clients_on = 1;
    if (periodic_rounds(s.port, o.rounds, (o.rounds + 3) * (interval_s + 2 * sa.ck_ms / 1e3) + 30,
                        periodic) != 0)
        goto out;
    clients_on = 0;
    errors = clients_stop(cs, &o);
    rounds_latency(cs, o.conns, periodic, o.rounds);
    rounds_print("periodic", periodic, o.rounds);
    if (errors) bench_progress("  (c) %" PRIu64 " requests failed", errors);
    server_kill(&s);
    rc = 0;

    {
        double a = median_of(ready_ck, o.runs), b = median_of(eps_full, o.runs),
               bready = median_of(ready_full, o.runs), replayed = median_of(replayed_ck, o.runs);
        double fa = median_of(ready_floor, o.runs), fb = median_of(eps_floor, o.runs);
        double oa = median_of(own_ck, o.runs), ob = median_of(own_full, o.runs);
        summary_t sp = summarize(periodic, o.rounds);
        if (o.json) {
            printf("{\"benchmark\":\"recovery\",\"events\":%" PRIu64 ",\"keys\":%" PRIu64
                   ",\"partitions\":%u,\"log_bytes\":%" PRIu64
                   ",\"runs\":%u,\"rounds\":%u,\"rate\":%.0f,\"conns\":%u,"
                   "\"first_start_s\":%.3f,"
                   "\"ready_from_checkpoint_s\":%.6f,\"replayed_after_checkpoint\":%.0f,"
                   "\"ready_from_checkpoint_own_s\":%.6f,\"full_replay_own_s\":%.6f,"
                   "\"full_replay_ready_s\":%.3f,\"full_replay_events\":%" PRIu64
                   ",\"full_replay_events_per_s\":%.0f,"
                   "\"floors\":{\"ready_s\":%.6f,\"ready_ratio\":%.3f,\"replay_events_per_s\":%.0f,"
                   "\"replay_ratio\":%.3f,\"replay_events\":%" PRIu64 ",\"replay_keys\":%" PRIu64
                   ",\"ready_direct_io\":%s},"
                   "\"periodic\":{\"interval_ms\":%.0f,\"p99_without_checkpoint_ms\":%.3f,"
                   "\"p99_during_checkpoint_ms\":%.3f,\"p99_ratio\":%.3f,\"checkpoint_ms\":%.1f,"
                   "\"checkpoint_pause_ms\":%.2f,\"checkpoint_bytes\":%" PRIu64 "},"
                   "\"admin\":{\"p99_without_checkpoint_ms\":%.3f,"
                   "\"p99_during_checkpoint_ms\":%.3f,\"p99_ratio\":%.3f,\"checkpoint_ms\":%.1f,"
                   "\"checkpoint_pause_ms\":%.2f,\"checkpoint_bytes\":%" PRIu64 "},"
                   "\"targets\":{\"ready_s\":3,\"replay_events_per_s\":3000000,\"p99_ratio\":2},"
                   "\"met\":{\"ready\":%s,\"replay\":%s,\"p99_periodic\":%s,\"p99_admin\":%s}}\n",
                   o.events, o.keys, nparts, br.bytes, o.runs, o.rounds, o.rate, o.conns, first_s,
                   a, replayed, oa, ob, bready, full_replayed, b, fa, a / fa, fb, b / fb,
                   floor_events, floor_keys, floor_direct ? "true" : "false", interval_s * 1e3,
                   sp.p99_base, sp.p99_ck, sp.ratio, sp.ck_ms, sp.pause_ms, sp.bytes, sa.p99_base,
                   sa.p99_ck, sa.ratio, sa.ck_ms, sa.pause_ms, sa.bytes, a <= 3 ? "true" : "false",
                   b >= 3e6 ? "true" : "false", sp.ratio <= 2 ? "true" : "false",
                   sa.ratio <= 2 ? "true" : "false");
        } else {
            printf("\nweir bench recovery — examples/fraud, %" PRIu64
                   " events (%.2f GB log) over %" PRIu64
                   " keys, %u partitions; medians of %u runs\n\n",
                   o.events, (double)br.bytes / 1e9, o.keys, nparts, o.runs);
            printf("  %-54s %14s %14s  %s\n", "", "weir", "target", "met");
            printf("  %-54s %12.3f s %12.1f s  %s\n",
                   "(a) start -> ready, from a checkpoint at the end", a, 3.0,
                   a <= 3 ? "yes" : "NO");
            printf("  %-54s %14.0f\n", "    events replayed after the checkpoint", replayed);
            printf("  %-54s %12.3f s\n", "    by weir's clock (its recovery's start -> ready)", oa);
            printf("  %-54s %12.3f s   (weir takes %.1fx that)\n",
                   floor_direct ? "    floor: read its files from the device (O_DIRECT)"
                                : "    floor: read its files (page cache: no O_DIRECT here)",
                   fa, a / fa);
            printf("  %-54s %9.0f ev/s %9.0f ev/s  %s\n", "(b) full replay, no checkpoint", b, 3e6,
                   b >= 3e6 ? "yes" : "NO");
            printf("  %-54s %12.3f s\n", "    start -> ready", bready);
            printf("  %-54s %12.3f s\n", "    by weir's clock (its recovery's start -> ready)", ob);
            printf("  %-54s %9.0f ev/s   (weir %.2fx that)\n",
                   "    floor: read the log, count per key", fb, b / fb);
            printf("  %-54s %11.2f ms\n", "(c) /v1/score p99 without a checkpoint", sp.p99_base);
            printf("  %-54s %11.2f ms\n", "    p99 during a periodic checkpoint", sp.p99_ck);
            printf("  %-54s %13.2fx %13.1fx  %s\n", "    ratio (median of the rounds' ratios)",
                   sp.ratio, 2.0, sp.ratio <= 2 ? "yes" : "NO");
            printf("  %-54s %11.0f ms   (pause %.2f ms, %.2f GB, every %.1f s)\n",
                   "    checkpoint duration", sp.ck_ms, sp.pause_ms, (double)sp.bytes / 1e9,
                   interval_s);
            printf("  %-54s %11.2f ms\n", "(c') p99 without, same server as (b)", sa.p99_base);
            printf("  %-54s %11.2f ms\n", "     p99 during POST /v1/admin/checkpoint", sa.p99_ck);
            printf("  %-54s %13.2fx %13.1fx  %s\n", "     ratio", sa.ratio, 2.0,
                   sa.ratio <= 2 ? "yes" : "NO");
            printf("  %-54s %11.0f ms   (pause %.2f ms)\n", "     checkpoint duration", sa.ck_ms,
                   sa.pause_ms);
            printf("  %-54s %12.1f s\n", "first start (replay + decide every event)", first_s);
            printf(
                "\n  load during (c): %.0f POST /v1/score per s over %u connections, latency from\n"
                "  each request's scheduled send time; weir, the client and the checkpoint\n"
                "  writer share this machine's %ld cores.\n",
                o.rate, o.conns, sysconf(_SC_NPROCESSORS_ONLN));
        }
    }

out:
    if (clients_on) clients_stop(cs, &o);
    if (s.pid > 0) server_kill(&s);
    for (unsigned i = 0; i < o.conns; i++)
        free(cs[i].samples);
    weir_free(cs);
    weir_free(ready_full);
    weir_free(eps_full);
    weir_free(ready_ck);
    weir_free(replayed_ck);
    weir_free(eps_floor);
    weir_free(own_full);
    weir_free(own_ck);
    weir_free(ready_floor);
    weir_free(cf.paths);
    weir_free(admin);
    weir_free(periodic);
    if (!o.keep && !o.dir) {
        bench_rm_dir(dir, PREFIX);
    } else {
        bench_progress(PREFIX ": kept %s", dir);
    }
    return rc;
}
