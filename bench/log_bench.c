/* log_bench.c — `weir bench log`: append and read throughput of the log,
 * each next to its physical baseline in the same run.
 *
 *   append   1, 4 and 16 appender threads, each appending batches of
 *            BENCH_BATCH events of 100 B or 1 KiB to its own partition
 *            (16 partitions), ack `written` and `durable`. Baseline: the
 *            same threads doing a raw write() of the same bytes, in the same
 *            chunk sizes, to one file each, with the same durability:
 *            fdatasync per chunk (durable) or every 100 ms (written, as
 *            weir's background fsync). Ratio = weir MB/s / raw MB/s.
 *   latency  durable-ack p50/p99 per append call, next to the raw
 *            fdatasync's p50/p99 in the same run; with 4 and 16 appenders
 *            both on their own partitions and all on one partition, where
 *            group commit shares fdatasyncs between them.
 *   read     records/s reading everything back through log_reader (with CRC
 *            verification), next to a raw pread() of the same files.
 * The machine is shared and noisy: each figure is the median of --runs runs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "bench.h"
#include "benchweir.h"
#include "log/log.h"

#define BENCH_BATCH 100 /* events per append call */
#define MAX_THREADS 16

typedef struct job {
    /* set by the driver */
    log_part_t *part;    /* weir case */
    int fd;              /* raw case */
    int durable;
    size_t event_size;
    uint64_t batches;
    /* results */
    double *lat_us; /* per call, if not NULL */
    uint64_t bytes;
} job_t;

static void fill_event(char *e, size_t size, uint64_t i)
{
    int n = snprintf(e, size, "{\"card_id\":\"c%06" PRIu64 "\",\"amount\":%" PRIu64 ".25,\"pad\":\"", i % 100000, i % 5000);
    memset(e + n, 'x', size - (size_t)n - 2);
    e[size - 2] = '"';
    e[size - 1] = '}';
}

static void *weir_appender(void *arg)
{
    job_t *j = arg;
    char *events = weir_malloc(BENCH_BATCH * j->event_size);
    log_rec_t recs[BENCH_BATCH];
    weir_buf_t scratch = WEIR_BUF_INIT;
    for (int i = 0; i < BENCH_BATCH; i++) {
        fill_event(events + i * j->event_size, j->event_size, (uint64_t)i);
        recs[i] = (log_rec_t){0, 0, LOG_REC_EVENT, {events + i * j->event_size, 10},
                              {events + i * j->event_size, j->event_size}};
    }
    char err[256];
    for (uint64_t b = 0; b < j->batches; b++) {
        int64_t now = weir_wall_ms();
        for (int i = 0; i < BENCH_BATCH; i++) recs[i].ts = now;
        uint64_t t0 = weir_mono_ns();
        if (log_append(j->part, recs, BENCH_BATCH, j->durable ? LOG_ACK_DURABLE : LOG_ACK_WRITTEN,
                       &scratch, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "append: %s\n", err);
            exit(1);
        }
        if (j->lat_us) j->lat_us[b] = (double)(weir_mono_ns() - t0) / 1e3;
        j->bytes += (uint64_t)BENCH_BATCH * j->event_size;
    }
    buf_free(&scratch);
    weir_free(events);
    return NULL;
}

static void *raw_writer(void *arg)
{
    job_t *j = arg;
    size_t chunk = BENCH_BATCH * j->event_size;
    char *buf = weir_malloc(chunk);
    for (int i = 0; i < BENCH_BATCH; i++) fill_event(buf + i * j->event_size, j->event_size, (uint64_t)i);
    uint64_t last_sync = weir_mono_ns();
    for (uint64_t b = 0; b < j->batches; b++) {
        uint64_t t0 = weir_mono_ns();
        /* The same durability policy as the weir case: fdatasync per chunk
         * (durable), or every 100 ms like weir's background fsync (written). */
        int sync = j->durable || t0 - last_sync >= 100000000u;
        if (write(j->fd, buf, chunk) != (ssize_t)chunk || (sync && fdatasync(j->fd) != 0)) {
            perror("raw write");
            exit(1);
        }
        if (sync) last_sync = t0;
        if (j->lat_us) j->lat_us[b] = (double)(weir_mono_ns() - t0) / 1e3;
        j->bytes += chunk;
    }
    weir_free(buf);
    return NULL;
}

typedef struct result {
    double mbps, events_per_s, p50_us, p99_us;
} result_t;

static result_t run_threads(void *(*fn)(void *), job_t *jobs, int n, int want_lat)
{
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < n; i++) {
        jobs[i].bytes = 0;
        jobs[i].lat_us = want_lat ? weir_malloc(jobs[i].batches * sizeof(double)) : NULL;
    }
    uint64_t t0 = weir_mono_ns();
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, fn, &jobs[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    double secs = (double)(weir_mono_ns() - t0) / 1e9;
    result_t r = {0};
    uint64_t bytes = 0, events = 0, nlat = 0;
    for (int i = 0; i < n; i++) {
        bytes += jobs[i].bytes;
        events += jobs[i].bytes / jobs[i].event_size;
        nlat += jobs[i].batches;
    }
    r.mbps = (double)bytes / secs / 1e6;
    r.events_per_s = (double)events / secs;
    if (want_lat) {
        double *all = weir_malloc(nlat * sizeof(double));
        size_t k = 0;
        for (int i = 0; i < n; i++) {
            memcpy(all + k, jobs[i].lat_us, jobs[i].batches * sizeof(double));
            k += jobs[i].batches;
            weir_free(jobs[i].lat_us);
        }
        r.p50_us = bench_quantile(all, nlat, 0.50);
        r.p99_us = bench_quantile(all, nlat, 0.99);
        weir_free(all);
    }
    return r;
}

static char *make_tmpdir(const char *base)
{
    char *d = weir_malloc(4096);
    snprintf(d, 4096, "%s/weir-bench-log-XXXXXX", base);
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(1);
    }
    return d;
}

/* Bytes to write per case: enough to take ~0.2-1 s at the expected speed. */
static uint64_t batches_for(size_t event_size, int durable, int threads, double scale)
{
    double total_bytes = durable ? 8e6 * (threads > 1 ? 2 : 1) : 400e6;
    total_bytes *= scale;
    if (durable && event_size > 200) total_bytes *= 4;
    uint64_t per_thread = (uint64_t)(total_bytes / threads / (double)(BENCH_BATCH * event_size));
    return per_thread ? per_thread : 1;
}

typedef struct row {
    size_t size;
    int durable, threads;
    int shared; /* all appenders on one partition (one file for the raw loop) */
    result_t weir, raw;
} row_t;

static void run_append_case(const char *base, row_t *row, int runs, double scale)
{
    double w_mb[16], w_ev[16], r_mb[16], w50[16], w99[16], r50[16], r99[16];
    for (int k = 0; k < runs; k++) {
        char *dir = make_tmpdir(base);
        log_config_t cfg;
        log_config_defaults(&cfg);
        log_t *log;
        log_topic_t *topic;
        char err[256];
        if (log_open(dir, &cfg, &log, err, sizeof err) || log_topic_open(log, "bench", MAX_THREADS, &topic, err, sizeof err)) {
            fprintf(stderr, "open: %s\n", err);
            exit(1);
        }
        job_t jobs[MAX_THREADS];
        uint64_t nb = batches_for(row->size, row->durable, row->threads, scale);
        for (int i = 0; i < row->threads; i++)
            jobs[i] = (job_t){.part = log_topic_part(topic, row->shared ? 0 : (uint32_t)i),
                              .durable = row->durable, .event_size = row->size, .batches = nb};
        result_t w = run_threads(weir_appender, jobs, row->threads, row->durable);
        log_close(log);
        bench_rm_dir(dir, "weir bench log");
        weir_free(dir);

        dir = make_tmpdir(base);
        for (int i = 0; i < row->threads; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/raw%d", dir, row->shared ? 0 : i);
            jobs[i].fd = open(path, O_WRONLY | O_CREAT | O_APPEND | (row->shared ? 0 : O_TRUNC), 0644);
        }
        result_t r = run_threads(raw_writer, jobs, row->threads, row->durable);
        for (int i = 0; i < row->threads; i++) close(jobs[i].fd);
        bench_rm_dir(dir, "weir bench log");
        weir_free(dir);
        w_mb[k] = w.mbps, w_ev[k] = w.events_per_s, r_mb[k] = r.mbps;
        w50[k] = w.p50_us, w99[k] = w.p99_us, r50[k] = r.p50_us, r99[k] = r.p99_us;
    }
    row->weir.mbps = bench_median(w_mb, (size_t)runs);
    row->weir.events_per_s = bench_median(w_ev, (size_t)runs);
    row->raw.mbps = bench_median(r_mb, (size_t)runs);
    row->raw.events_per_s = row->raw.mbps * 1e6 / (double)row->size;
    row->weir.p50_us = bench_median(w50, (size_t)runs);
    row->weir.p99_us = bench_median(w99, (size_t)runs);
    row->raw.p50_us = bench_median(r50, (size_t)runs);
    row->raw.p99_us = bench_median(r99, (size_t)runs);
}

typedef struct read_result {
    double weir_events_per_s, weir_mbps, raw_mbps;
    uint64_t events;
} read_result_t;

static void run_read_case(const char *base, read_result_t *out, int runs, double scale)
{
    char *dir = make_tmpdir(base);
    log_config_t cfg;
    log_config_defaults(&cfg);
    log_t *log;
    log_topic_t *topic;
    char err[256];
    if (log_open(dir, &cfg, &log, err, sizeof err) || log_topic_open(log, "bench", 1, &topic, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    job_t j = {.part = log_topic_part(topic, 0), .event_size = 100,
               .batches = (uint64_t)(50000 * scale) + 1};
    run_threads(weir_appender, &j, 1, 0);
    log_part_stat_t st;
    log_part_stat(j.part, &st);
    double ev[16], mb[16], raw[16];
    for (int k = 0; k < runs; k++) {
        log_reader_t *r;
        log_reader_open(j.part, 0, &r, err, sizeof err);
        log_rec_t rec;
        uint64_t n = 0, bytes = 0, t0 = weir_mono_ns();
        while (log_reader_next(r, &rec, err, sizeof err) == 1) {
            n++;
            bytes += rec.value.len;
        }
        double secs = (double)(weir_mono_ns() - t0) / 1e9;
        log_reader_close(r);
        ev[k] = (double)n / secs;
        mb[k] = (double)st.bytes / secs / 1e6;
        out->events = n;
        /* Baseline: pread the same segment file in 1 MiB chunks, no parsing. */
        char path[4200];
        snprintf(path, sizeof path, "%s/log/bench/0/%020d.seg", dir, 0);
        int fd = open(path, O_RDONLY);
        char *buf = weir_malloc(1 << 20);
        uint64_t got = 0, t1 = weir_mono_ns();
        ssize_t m;
        while ((m = pread(fd, buf, 1 << 20, (off_t)got)) > 0) got += (uint64_t)m;
        raw[k] = (double)got / ((double)(weir_mono_ns() - t1) / 1e9) / 1e6;
        close(fd);
        weir_free(buf);
    }
    out->weir_events_per_s = bench_median(ev, (size_t)runs);
    out->weir_mbps = bench_median(mb, (size_t)runs);
    out->raw_mbps = bench_median(raw, (size_t)runs);
    log_close(log);
    bench_rm_dir(dir, "weir bench log");
    weir_free(dir);
}

int bench_log(int argc, char **argv)
{
    int json = 0, runs = 3;
    double scale = 1.0;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc) scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) base = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: weir bench log [--json] [--runs N (default 3, max 15)] [--scale F] [--dir TMP]\n");
            return 0;
        } else {
            fprintf(stderr, "weir bench log: unknown option '%s' (see --help)\n", argv[i]);
            return 1;
        }
    }
    if (runs < 1 || runs > 15) runs = 3;
    static const size_t sizes[] = {100, 1024};
    static const int threads[] = {1, 4, 16};
    /* Appenders each on their own partition; for durable acks also all on
     * one partition, where group commit lets concurrent appends share an
     * fdatasync (the raw loop: the same threads on one file, one
     * write+fdatasync each). */
    row_t rows[16];
    int nrows = 0;
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < 2; s++)
            for (int t = 0; t < 3; t++)
                for (int sh = 0; sh < (d && t ? 2 : 1); sh++) {
                    row_t *r = &rows[nrows++];
                    *r = (row_t){.size = sizes[s], .durable = d, .threads = threads[t], .shared = sh};
                    run_append_case(base, r, runs, scale);
                }
    read_result_t rd = {0};
    run_read_case(base, &rd, runs, scale);

    if (json) {
        printf("{\"benchmark\":\"log\",\"runs\":%d,\"batch_events\":%d,\"append\":[", runs, BENCH_BATCH);
        for (int i = 0; i < nrows; i++) {
            row_t *r = &rows[i];
            printf("%s{\"event_bytes\":%zu,\"ack\":\"%s\",\"appenders\":%d,\"partitions\":%d,\"weir_events_per_s\":%.0f,"
                   "\"weir_mb_per_s\":%.1f,\"raw_mb_per_s\":%.1f,\"ratio\":%.3f",
                   i ? "," : "", r->size, r->durable ? "durable" : "written", r->threads,
                   r->shared ? 1 : r->threads, r->weir.events_per_s, r->weir.mbps, r->raw.mbps, r->weir.mbps / r->raw.mbps);
            if (r->durable)
                printf(",\"weir_ack_p50_us\":%.1f,\"weir_ack_p99_us\":%.1f,\"raw_fdatasync_p50_us\":%.1f,"
                       "\"raw_fdatasync_p99_us\":%.1f",
                       r->weir.p50_us, r->weir.p99_us, r->raw.p50_us, r->raw.p99_us);
            printf("}");
        }
        printf("],\"read\":{\"events\":%" PRIu64 ",\"weir_events_per_s\":%.0f,\"weir_mb_per_s\":%.1f,"
               "\"raw_pread_mb_per_s\":%.1f,\"ratio\":%.3f}}\n",
               rd.events, rd.weir_events_per_s, rd.weir_mbps, rd.raw_mbps, rd.weir_mbps / rd.raw_mbps);
        return 0;
    }
    printf("weir bench log — median of %d runs, %d events per append call\n\n", runs, BENCH_BATCH);
    printf("%-6s %-8s %4s %5s | %14s %10s | %10s | %6s | %18s | %18s\n", "event", "ack", "thr", "parts", "weir events/s",
           "weir MB/s", "raw MB/s", "ratio", "weir ack p50/p99", "raw fsync p50/p99");
    for (int i = 0; i < nrows; i++) {
        row_t *r = &rows[i];
        printf("%-6zu %-8s %4d %5d | %14.0f %10.1f | %10.1f | %5.2fx |", r->size, r->durable ? "durable" : "written",
               r->threads, r->shared ? 1 : r->threads, r->weir.events_per_s, r->weir.mbps, r->raw.mbps, r->weir.mbps / r->raw.mbps);
        if (r->durable) printf(" %7.0f/%7.0f us | %7.0f/%7.0f us\n", r->weir.p50_us, r->weir.p99_us, r->raw.p50_us, r->raw.p99_us);
        else printf(" %18s | %18s\n", "-", "-");
    }
    printf("\nread (CRC-verified, 100 B events): weir %.0f events/s (%.0f MB/s); raw pread %.0f MB/s; ratio %.2fx\n",
           rd.weir_events_per_s, rd.weir_mbps, rd.raw_mbps, rd.weir_mbps / rd.raw_mbps);
    return 0;
}
