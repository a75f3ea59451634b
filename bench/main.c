/* main.c — weir-bench: the benchmark program behind `weir bench <what>`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct {
    const char *name;
    bench_fn fn;
    const char *summary;
} benches[] = {
    {"log", bench_log, "log append and read throughput beside a raw write()+fdatasync loop"},
    {"model", bench_model, "tree-ensemble scoring beside XGBoosterPredictFromDense (nthread=1)"},
    {"http", bench_http,
     "wrk against weir run's /v1/score beside nginx serving a fixed small JSON"},
    {"pipeline", bench_pipeline,
     "the fraud feature set on one core beside a plain hash-map count per key"},
    {"recovery", bench_recovery,
     "weir run: ready after a crash from a checkpoint, full-replay events/s, p99 during a "
     "checkpoint"},
    {"online", bench_online,
     "the online store (Redis): full sync beside pipelined SETs, /v1/score with and without, "
     "reads"},
    {"kafka", bench_kafka,
     "weir run reading a Kafka topic beside a librdkafka consumer that only polls, messages/s"},
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_quantile(double *v, size_t n, double q)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)n);
    if (i >= n) i = n - 1;
    return v[i];
}

double bench_median(double *v, size_t n)
{
    return bench_quantile(v, n, 0.5);
}

int main(int argc, char **argv)
{
    size_t n = sizeof benches / sizeof benches[0];
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: weir bench <what> [--json] [options]\n\n");
        for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], benches[i].name)) return benches[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weir bench: unknown benchmark '%s' (see 'weir bench --help')\n", argv[1]);
    return 1;
}
