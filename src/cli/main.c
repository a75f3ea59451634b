/* main.c — the `weir` binary: dispatches `weir <verb> ...` to cmd_<verb>.
 * The verb table is the one place that lists what the binary can do. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const cli_verb_t verbs[] = {
    {"log", cmd_log, "append to, read, check and inspect the partitioned event log"},
    {"ingest", cmd_ingest, "decode NDJSON by a spec's schema, append to the log and process it"},
    {"backfill", cmd_backfill, "replay the log through the engine: point-in-time features per event"},
    {"demo", cmd_demo, "the fraud example end to end: generate, serve, score over HTTP, summarise"},
    {"gen", cmd_gen, "realistic synthetic events (fraud, clicks) as NDJSON, with labels"},
    {"bench", cmd_bench, "benchmarks beside their baselines (log, model, pipeline, http)"},
    {"run", cmd_run, "serve a pipeline over HTTP: score, events, features, metrics, dashboard"},
    {"model", cmd_model, "load a model, describe it, score a file of rows with it, time it"},
    {"checkpoint", cmd_checkpoint, "list the checkpoints of a data directory with offsets and sizes; verify them"},
};

/* `weir run` keeps gigabytes of keyed state in small malloc'd blocks and
 * checkpoints it by fork() (src/serve/checkpointer.h), whose pause is the
 * copy of the page tables: ~60-120 ms for 1.6 GB of state in 4 KiB pages,
 * 5-7 ms when malloc's memory is in transparent huge pages (measured here,
 * a million keys). glibc puts malloc's memory in huge pages only when told
 * at start-up (the tunable glibc.malloc.hugetlb=1, read before main), so
 * `weir run` executes itself once more with it set. After fork the kernel
 * copies a written huge page 4 KiB at a time, as for small pages, so
 * copy-on-write costs no more. WEIR_THP=0 turns this off. */
static void reexec_with_huge_pages(char **argv)
{
    const char *opt = getenv("WEIR_THP");
    const char *tun = getenv("GLIBC_TUNABLES");
    if ((opt && strcmp(opt, "0") == 0) || getenv("WEIR_THP_SET") ||
        (tun && strstr(tun, "glibc.malloc.hugetlb")))
        return;
    char set[2048];
    if (snprintf(set, sizeof set, "%s%sglibc.malloc.hugetlb=1", tun ? tun : "",
                 tun && *tun ? ":" : "") >= (int)sizeof set)
        return;
    setenv("GLIBC_TUNABLES", set, 1);
    setenv("WEIR_THP_SET", "1", 1); /* once: never a loop */
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): go on with small pages. */
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "run") == 0) reexec_with_huge_pages(argv);
    /* A closed stdout (weir log read | head) must end the process quietly
     * through write errors, not kill it mid-append. */
    signal(SIGPIPE, SIG_IGN);
    return cli_dispatch("weir", verbs, (int)(sizeof verbs / sizeof verbs[0]), argc - 1, argv + 1);
}
