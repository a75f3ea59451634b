/* cli.h — what the verbs of the `weir` binary share: the verb signature and
 * a few helpers for their argument handling. Each verb lives in its own
 * cmd_<verb>.c and is listed in main.c's table. Convention for all verbs:
 * `--help` prints usage to stdout and exits 0; an error prints one line
 * "weir <verb>: <reason>" to stderr and returns non-zero. */
#ifndef WEIR_CLI_CLI_H
#define WEIR_CLI_CLI_H

#include <stdint.h>

typedef int (*cli_verb_fn)(int argc, char **argv);

typedef struct cli_verb {
    const char *name;
    cli_verb_fn fn;
    const char *summary;
} cli_verb_t;

/* Runs the sub-verb argv[0] from table (n entries); prints usage listing the
 * table for --help or when the sub-verb is missing or unknown. `prefix` is
 * the command path shown in messages, e.g. "weir log". */
int cli_dispatch(const char *prefix, const cli_verb_t *table, int n, int argc, char **argv);

/* Prints "prefix: message\n" to stderr and returns 1 (the exit status). */
int cli_fail(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True if any argument is -h or --help. */
int cli_wants_help(int argc, char **argv);

/* Parses a non-negative decimal integer; returns 0 on success. */
int cli_parse_u64(const char *s, uint64_t *out);
/* Parses a signed decimal integer; returns 0 on success. */
int cli_parse_i64(const char *s, int64_t *out);
/* Parses a size in bytes: digits, then optionally K, M, G or T (powers of
 * 1024, as free(1) and Redis read them), with or without a trailing "B" or
 * "iB" ("512M", "8GiB", "1gb"); returns 0 on success. */
int cli_parse_size(const char *s, uint64_t *out);
/* --max-memory's value (weir run, weir ingest): a size of at least 1 MiB, or
 * "none" (0). 0 with *out set, or cli_fail's status, the message naming
 * what is wrong ("512" was 512 bytes: a unit forgotten). */
int cli_parse_memory(const char *prefix, const char *s, uint64_t *out);

/* STOP SIGNALS. `weir ingest` and `weir backfill` stop at a clean point on
 * SIGTERM or SIGINT instead of dying mid-write: the handler only notes the
 * signal, and the verb looks at cli_stop_signal() where it can stop. The
 * signal must reach the main thread (a read of stdin waiting there must
 * return), so cli_stop_hold, called before any thread is started, blocks
 * them (threads inherit the block) and cli_stop_listen unblocks them in the
 * main thread once the threads are running. A second signal ends the
 * process at once, as without a handler: a user who presses ^C twice means
 * it. A signal ignored at start (nohup, a background job) stays ignored. */
void cli_stop_hold(void);
void cli_stop_listen(void);
/* The signal that asked to stop (SIGTERM or SIGINT), or 0. */
int cli_stop_signal(void);
/* Prints "prefix: stopped by SIGTERM: message\n" to stderr and returns the
 * exit status for it, 128 + the signal (143, 130), as a shell reports a
 * process killed by it. */
int cli_stopped(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_log(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_backfill(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);

#endif
