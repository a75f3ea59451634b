/* bench.h — shared by the benchmarks of weir-bench (`weir bench <what>`).
 * Every benchmark runs weir beside a peer or a physical baseline in the same
 * run and prints both figures and their ratio: a table for people, or one
 * JSON object with --json. */
#ifndef WEIR_BENCH_BENCH_H
#define WEIR_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef int (*bench_fn)(int argc, char **argv);

int bench_log(int argc, char **argv);
int bench_model(int argc, char **argv);
int bench_pipeline(int argc, char **argv);
int bench_http(int argc, char **argv);
int bench_recovery(int argc, char **argv);
int bench_online(int argc, char **argv);
int bench_kafka(int argc, char **argv);

/* Sorts v (n doubles) and returns the q-quantile (0..1), nearest rank. */
double bench_quantile(double *v, size_t n, double q);
double bench_median(double *v, size_t n);

#endif
