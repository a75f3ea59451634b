/* main.c — the `weir` binary: dispatches `weir <verb> ...` to cmd_<verb>.
 * The verb table is the one place that lists what the binary can do. */
#include <signal.h>

#include "cli/cli.h"

static const cli_verb_t verbs[] = {
    {"log", cmd_log, "append to, read, check and inspect the partitioned event log"},
    {"ingest", cmd_ingest, "decode NDJSON by a spec's schema, append to the log and process it"},
    {"backfill", cmd_backfill, "replay the log through the engine: point-in-time features per event"},
    {"verify", cmd_verify, "recompute the logged decisions offline; report any difference"},
    {"demo", cmd_demo, "the fraud example end to end: generate, serve, score over HTTP, summarise"},
    {"gen", cmd_gen, "realistic synthetic events (fraud, clicks) as NDJSON, with labels"},
    {"bench", cmd_bench, "benchmarks beside their baselines (log, model, pipeline, http)"},
    {"run", cmd_run, "serve a pipeline over HTTP: score, events, features, metrics, dashboard"},
    {"model", cmd_model, "load a model, describe it, score a file of rows with it, time it"},
    {"checkpoint", cmd_checkpoint, "list the checkpoints of a data directory with offsets and sizes; verify them"},
};

int main(int argc, char **argv)
{
    /* A closed stdout (weir log read | head) must end the process quietly
     * through write errors, not kill it mid-append. */
    signal(SIGPIPE, SIG_IGN);
    return cli_dispatch("weir", verbs, (int)(sizeof verbs / sizeof verbs[0]), argc - 1, argv + 1);
}
