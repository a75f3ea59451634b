/* benchweir.h — for the benchmarks that run `weir run` and talk to it:
 * starting it on a free port, one HTTP/1.1 request at a time over a
 * keep-alive connection (enough for latency, where a client library's own
 * cost would blur the figure), and its /metrics. */
#ifndef WEIR_BENCH_BENCHWEIR_H
#define WEIR_BENCH_BENCHWEIR_H

#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

/* A progress line on stderr, unless bench_quiet (--json: stdout holds the
 * JSON alone, and stderr stays quiet too). */
extern int bench_quiet;
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double bench_secs_since(uint64_t t0_ns);
void bench_sleep_s(double s);
/* A whole file, NUL-terminated (weir_free), or NULL. */
char *bench_read_file(const char *path);

/* Sends sig to *pid and reaps it (nothing if *pid <= 0); *pid = 0. */
void bench_reap(pid_t *pid, int sig);
/* Removes dir and all in it; says so with prefix if it cannot. */
void bench_rm_dir(const char *dir, const char *prefix);

/* The weir binary beside this one (weir-bench is built next to it), in
 * out[n]. 0, or -1 (said with prefix). */
int bench_weir_path(char *out, size_t n, const char *prefix);

/* A TCP connection to 127.0.0.1:port (TCP_NODELAY), or -1. */
int bench_http_connect(uint16_t port);
/* Sends one request on fd and reads the response; returns the status (the
 * body in *resp), or -1 if the connection failed. */
int bench_http_roundtrip(int fd, const char *method, const char *path, const char *body,
                         size_t blen, weir_buf_t *resp);
/* One request on a fresh connection. */
int bench_http_once(uint16_t port, const char *method, const char *path, weir_buf_t *resp);
/* A sample of GET /metrics whose line starts with `name ` (labels
 * included in name if any), or -1. */
double bench_metric(uint16_t port, const char *name);

/* Starts `weir ARGS...` (args: NULL-terminated, from the verb on, with
 * --listen 127.0.0.1:0) with stdout and stderr into the files out and
 * errf; waits for its port and for /readyz 200. 0, or -1 (said on stderr
 * with prefix, the process reaped). */
int bench_weir_start(const char *weir, const char *const *args, const char *out, const char *errf,
                     const char *prefix, pid_t *pid, uint16_t *port);

/* The benchmarks' random numbers (splitmix64), per thread: seed
 * bench_rng_state. */
extern _Thread_local uint64_t bench_rng_state;
uint64_t bench_rnd(void);
/* Appends one fraud-like event of card `card` at ts, ~100 bytes: the
 * card's home country mostly, amounts log-normal-ish. */
void bench_fraud_event(weir_buf_t *b, uint64_t card, int64_t ts);
/* Writes DIR/NAME (its path into spec_path): examples/fraud/fraud.yaml
 * with the model's absolute path, `checkpoint_interval: interval`, and
 * `tail` (NULL: none) appended. 0, or -1 (said with prefix). */
int bench_fraud_spec(const char *dir, const char *name, const char *interval, char *spec_path,
                     size_t n, const char *tail, const char *prefix);

#endif
