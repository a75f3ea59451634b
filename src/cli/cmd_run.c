/* cmd_run.c — `weir run SPEC [--data DIR] [--listen HOST:PORT]`: serves a
 * pipeline over HTTP (src/serve). The main thread is the control thread:
 * it starts the HTTP workers (so /healthz answers and /readyz says "not
 * yet" while the log is replayed), rebuilds state from the log, then waits
 * for signals — SIGHUP reloads the spec or the model, SIGTERM/SIGINT drain in-flight
 * requests, sync both logs and exit 0 — doing housekeeping (ticks for idle
 * partitions, outputs flushed) between them. Signals are blocked in every
 * thread and taken synchronously here with sigtimedwait, so no handler runs
 * inside a worker. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/memlimit.h"
#include "cli/cli.h"
#include "serve/api.h"
#include "serve/http.h"
#include "serve/runtime.h"
#include "spec/spec.h"

static const char run_usage[] =
    "usage: weir run SPEC [--data DIR] [--listen HOST:PORT] [options]\n"
    "\n"
    "Serves the pipeline of SPEC over HTTP: events are decoded by the source's\n"
    "schema, appended to the log in DIR, processed (features, model, decision rules)\n"
    "and their decisions appended to DIR/decisions, one per event. At start-up the\n"
    "log is replayed to rebuild state (/readyz answers 503 until then), and logged\n"
    "events without a decision (a crash) are decided.\n"
    "\n"
    "  POST /v1/score/{source}           one event -> decision, score, reason, features,\n"
    "                                    contributions, offset, model, late, latency_us\n"
    "  POST /v1/events/{source}          a JSON object, a JSON array or NDJSON\n"
    "  GET  /v1/features/{source}/{key}  a key's features as of now\n"
    "  POST /v1/admin/reload             reload the spec, or just the model if the spec\n"
    "                                    is unchanged (so does SIGHUP)\n"
    "  POST /v1/admin/checkpoint         take a checkpoint now; answers once it is committed\n"
    "  GET  /metrics  /healthz  /readyz  /  (Prometheus text; health; dashboard)\n"
    "\n"
    "options:\n"
    "  --data DIR             data directory (default ./data)\n"
    "  --listen HOST:PORT     IPv4 address and port (default 127.0.0.1:8080; port 0 = any)\n"
    "  --threads N            HTTP worker threads (default: online CPUs)\n"
    "  --max-body BYTES       request body limit, 413 above (default 1048576)\n"
    "  --max-batch N          events per request, 413 above (default 10000)\n"
    "  --max-headers N        header fields, 431 above (default 100)\n"
    "  --max-header-bytes B   bytes of all header fields, 431 above (default 16384)\n"
    "  --request-timeout MS   headers to complete body: 408 after; accept to complete\n"
    "                         headers (after a request: idle timeout plus this): closed\n"
    "                         after (default 10000)\n"
    "  --idle-timeout S       idle keep-alive connections close after (default 60)\n"
    "  --max-inflight N       requests in flight, 503 + Retry-After above (default 1024)\n"
    "  --max-connections N    open connections (default 4096); the open-file limit is\n"
    "                         raised to fit them and weir's own files, or they are\n"
    "                         lowered to fit it, saying so\n"
    "  --max-memory SIZE      memory budget (512M, 8G; none = no limit): over it (heap\n"
    "                         or resident memory), events of keys without state are\n"
    "                         refused (503 memory_full), and with the heap over it and\n"
    "                         an eighth more, every event; held keys are never evicted\n"
    "                         (default: 5/8 of the machine's RAM or the cgroup's limit)\n"
    "  --ack written|durable  log acknowledgement (default written: fsync every 100 ms)\n"
    "  --tick-idle MS         a partition idle this long gets a tick at the newest event\n"
    "                         time, so its windows close (default 1000; 0 = never)\n"
    "  --decision-flush MS    decisions are buffered per partition and written to\n"
    "                         DIR/decisions at least this often (default 2; 0 = before\n"
    "                         each response). A crash that takes the buffer loses\n"
    "                         nothing: start-up decides logged events without one.\n"
    "  --skip-bad-events      the replay leaves out a logged event this spec cannot\n"
    "                         read (one appended by weir log append, which checks no\n"
    "                         schema), naming it; without, it stops the start\n"
    "  --allow-partial-state  start even when no checkpoint fits and retention deleted\n"
    "                         the log's start: state is rebuilt from what is left\n"
    "                         (without, the start is refused: features would miss the\n"
    "                         deleted events)\n"
    "  --migrate-state        when no checkpoint fits the spec's feature plan (a window,\n"
    "                         aggregate or pattern changed), move the newest one's state\n"
    "                         to it as a live reload would (new state starts empty at\n"
    "                         the checkpoint) instead of replaying the whole log; done\n"
    "                         without asking when retention deleted the log's start\n"
    "\n"
    "Environment: WEIR_API_TOKEN, if set, is the bearer token every /v1/ route\n"
    "requires (\"Authorization: Bearer TOKEN\", else 401).\n"
    "SIGHUP reloads the spec live, keeping the state of what did not change (or only\n"
    "the model when the spec is unchanged); SIGTERM or SIGINT drains in-flight\n"
    "requests, writes a checkpoint, syncs the logs and exits 0.\n";

static int parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hostlen) return -1;
    uint64_t p;
    if (cli_parse_u64(colon + 1, &p) != 0 || p > 65535) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (!strcmp(host, "localhost")) snprintf(host, hostlen, "127.0.0.1");
    *port = (uint16_t)p;
    return 0;
}

/* FILES FOR CONNECTIONS. Each connection is a file descriptor, and so is
 * each log segment, index, output and checkpoint file weir opens. With
 * --max-connections above the open-file limit, a flood of connections took
 * the descriptors a segment roll or a checkpoint needed (an SRE's test at
 * `ulimit -n 1024`: the partition refused appends until a restart;
 * checkpoints failed with EMFILE). So, as Redis does for maxclients: before
 * the logs open, the soft limit is raised toward connections plus a first
 * guess of weir's own needs, as far as the hard limit allows; once they are
 * open, weir's own need is known — the descriptors open then, plus three
 * a partition (a checkpoint opens every partition's file before writing
 * any, and the event and decision logs each roll a segment), three a
 * worker thread (libmicrohttpd's epoll and wake-up pipe, a replay's
 * reader) and FD_SPARE (outputs reopened at a reload, the model, the
 * ledger) — and the connections are lowered to fit the rest,
 * saying so. A limit that leaves fewer than FD_MIN_CONNECTIONS is refused:
 * weir would fail later, partition by partition. */
#define FD_GUESS           512
#define FD_SPARE           128
#define FD_MIN_CONNECTIONS 16

static rlim_t raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return RLIM_INFINITY;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return FD_GUESS;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n ? n - 1 : 0; /* (the directory's own) */
}

/* Called twice: before the logs open (logs_open 0), counting
 * LOG_FDS_PER_PART more a partition for them (an event and a decision
 * log, each a segment and its index), only to refuse a limit they cannot
 * fit — 600 partitions at `ulimit -n 1024` failed the open with EMFILE and
 * no advice — and once they are open, exactly, to fit the connections. */
#define LOG_FDS_PER_PART 4

static int fit_connections(http_config_t *hc, uint32_t partitions, int logs_open)
{
    rlim_t per_part = 3 + (logs_open ? 0 : LOG_FDS_PER_PART);
    rlim_t reserve =
        (rlim_t)open_fds() + per_part * (rlim_t)partitions + 3 * (rlim_t)hc->threads + FD_SPARE;
    rlim_t limit = raise_nofile((rlim_t)hc->max_connections + reserve);
    if (limit == RLIM_INFINITY || limit >= (rlim_t)hc->max_connections + reserve) return 0;
    if (limit < reserve + FD_MIN_CONNECTIONS)
        return cli_fail("weir run",
                        "the open-file limit is %llu (hard limit too), and weir's own files need "
                        "about %llu with %u partitions: raise ulimit -n to at least %llu",
                        (unsigned long long)limit, (unsigned long long)reserve, partitions,
                        (unsigned long long)(reserve + FD_MIN_CONNECTIONS));
    if (!logs_open) return 0;
    unsigned fit = (unsigned)(limit - reserve);
    fprintf(stderr,
            "weir run: the open-file limit is %llu (hard limit too): --max-connections lowered "
            "from %u to %u, leaving %llu for the logs, outputs and checkpoints of %u partitions "
            "(raise ulimit -n to keep it)\n",
            (unsigned long long)limit, hc->max_connections, fit, (unsigned long long)reserve,
            partitions);
    hc->max_connections = fit;
    return 0;
}

/* The spec's partitions, or 0 if it does not load (runtime_open says why). */
static uint32_t spec_partitions(const char *path)
{
    weir_buf_t text = WEIR_BUF_INIT;
    spec_t *spec = NULL;
    char err[512];
    uint32_t n = 0;
    if (spec_read_file(path, &text, err, sizeof err) == 0 &&
        spec_load_string(text.data ? text.data : "", text.len, path, &spec, err, sizeof err) == 0)
        n = spec->partitions;
    spec_free(spec);
    buf_free(&text);
    return n;
}

int cmd_run(int argc, char **argv)
{
    const char *prefix = "weir run";
    if (cli_wants_help(argc, argv)) return fputs(run_usage, stdout), 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'},
        {"max-body", required_argument, 0, 'b'},
        {"max-batch", required_argument, 0, 'B'},
        {"max-headers", required_argument, 0, 'H'},
        {"max-header-bytes", required_argument, 0, 'X'},
        {"request-timeout", required_argument, 0, 'r'},
        {"idle-timeout", required_argument, 0, 'i'},
        {"max-inflight", required_argument, 0, 'f'},
        {"max-connections", required_argument, 0, 'c'},
        {"ack", required_argument, 0, 'a'},
        {"tick-idle", required_argument, 0, 'T'},
        {"decision-flush", required_argument, 0, 'D'},
        {"skip-bad-events", no_argument, 0, 'S'},
        {"allow-partial-state", no_argument, 0, 'P'},
        {"migrate-state", no_argument, 0, 'M'},
        {"max-memory", required_argument, 0, 'm'},
        {0, 0, 0, 0},
    };
    http_config_t hc;
    http_config_defaults(&hc);
    runtime_config_t rc_cfg = {
        .datadir = "./data", .ack = LOG_ACK_WRITTEN, .tick_idle_ms = 1000, .decision_flush_ms = 2};
    uint64_t max_batch = 10000, v;
    int max_memory_set = 0;
    char host[256] = "127.0.0.1";
    int c, li = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
        const char *name = c == '?' ? argv[optind - 1] : NULL;
        if (c != 'd' && c != 'l' && c != 'a' && c != 'S' && c != 'P' && c != 'M' && c != 'm' &&
            c != '?' && (cli_parse_u64(optarg, &v) != 0 || v > UINT32_MAX))
            return cli_fail(prefix, "bad number '%s' for --%s", optarg, opts[li].name);
        switch (c) {
        case 'd':
            rc_cfg.datadir = optarg;
            break;
        case 'S':
            rc_cfg.skip_bad = 1;
            break;
        case 'P':
            rc_cfg.partial_state = 1;
            break;
        case 'M':
            rc_cfg.migrate_state = 1;
            break;
        case 'm':
            if (cli_parse_memory(prefix, optarg, &rc_cfg.max_memory) != 0) return 1;
            max_memory_set = 1;
            break;
        case 'l':
            if (parse_listen(optarg, host, sizeof host, &hc.port) != 0)
                return cli_fail(
                    prefix, "--listen must be HOST:PORT (e.g. 127.0.0.1:8080), not '%s'", optarg);
            break;
        case 't':
            hc.threads = (unsigned)v;
            break;
        case 'b':
            hc.max_body = v;
            break;
        case 'B':
            max_batch = v;
            break;
        case 'H':
            hc.max_headers = (unsigned)v;
            break;
        case 'X':
            hc.max_header_bytes = v;
            break;
        case 'r':
            hc.request_timeout_ms = (int)v;
            break;
        case 'i':
            hc.idle_timeout_s = (unsigned)v;
            break;
        case 'f':
            hc.max_inflight = (unsigned)v;
            break;
        case 'c':
            hc.max_connections = (unsigned)v;
            break;
        case 'T':
            rc_cfg.tick_idle_ms = (int64_t)v;
            break;
        case 'D':
            if (v > 60000) return cli_fail(prefix, "--decision-flush must be at most 60000 ms");
            rc_cfg.decision_flush_ms = (int)v;
            break;
        case 'a':
            if (!strcmp(optarg, "written"))
                rc_cfg.ack = LOG_ACK_WRITTEN;
            else if (!strcmp(optarg, "durable"))
                rc_cfg.ack = LOG_ACK_DURABLE;
            else
                return cli_fail(prefix, "--ack must be 'written' or 'durable', not '%s'", optarg);
            break;
        default:
            return cli_fail(prefix, "unknown option or missing value '%s' (see --help)", name);
        }
    }
    if (optind != argc - 1) return cli_fail(prefix, "give one SPEC file (see --help)");
    if (hc.threads == 0 || hc.max_body == 0 || max_batch == 0 || hc.max_inflight == 0 ||
        hc.request_timeout_ms == 0 || hc.max_connections == 0)
        return cli_fail(prefix, "--threads, --max-body, --max-batch, --max-inflight, "
                                "--max-connections and --request-timeout must be > 0");
    if (hc.request_timeout_ms < 0 || hc.request_timeout_ms > 3600000)
        return cli_fail(prefix, "--request-timeout must be at most 3600000 ms");
    const char *mem_of = NULL, *limit_of = NULL;
    uint64_t limit = weir_memory_limit(&limit_of);
    if (!max_memory_set) { /* MEMORY BUDGET (runtime.h) */
        rc_cfg.max_memory = RUNTIME_MEMORY_DEFAULT(limit);
        mem_of = limit_of;
    } else if (rc_cfg.max_memory && limit && RUNTIME_MEMORY_HARD(rc_cfg.max_memory) > limit) {
        /* (held keys may take the heap an eighth past the budget) */
        fprintf(stderr,
                "weir run: --max-memory %" PRIu64 " and the eighth more that held keys may take "
                "are more than %s (%" PRIu64 "): the kernel may kill weir before it refuses "
                "anything\n",
                rc_cfg.max_memory, limit_of, limit);
    }
    raise_nofile((rlim_t)hc.max_connections + FD_GUESS);
    rc_cfg.spec_path = argv[optind];
    hc.host = host;
    const char *token = getenv("WEIR_API_TOKEN");
    if (token && *token) hc.token = token;
    if (mkdir(rc_cfg.datadir, 0755) != 0 && errno != EEXIST)
        return cli_fail(prefix, "cannot create %s: %s", rc_cfg.datadir, strerror(errno));

    /* Every thread created from here on inherits the blocked signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char err[1024];
    uint32_t partitions = spec_partitions(rc_cfg.spec_path);
    if (partitions && fit_connections(&hc, partitions, 0) != 0) return 1;
    runtime_t *rt;
    if (runtime_open(&rc_cfg, &rt, err, sizeof err) != 0) return cli_fail(prefix, "%s", err);
    if (fit_connections(&hc, runtime_partitions(rt), 1) != 0) {
        runtime_close(rt, NULL, 0);
        return 1;
    }
    api_t api;
    api_init(&api, rt, max_batch);
    http_t *h;
    if (http_start(&hc, api_handle, api_route, &api, runtime_metrics(rt), &h, err, sizeof err) !=
        0) {
        runtime_close(rt, NULL, 0);
        return cli_fail(prefix, "%s", err);
    }
    char mem[128] = "no memory budget";
    uint64_t mm = rc_cfg.max_memory;
    if (mm)
        snprintf(mem, sizeof mem, "memory budget %.1f %s%s%s",
                 (double)mm / (mm >= (1u << 30)   ? 1 << 30
                               : mm >= (1u << 20) ? 1 << 20
                                                  : 1),
                 mm >= (1u << 30)   ? "GiB"
                 : mm >= (1u << 20) ? "MiB"
                                    : "bytes",
                 mem_of ? ", 5/8 of " : "", mem_of ? mem_of : "");
    printf("weir run: listening on http://%s:%u (pipeline %s, source %s, %u partitions, %u "
           "threads, %s%s)\n",
           host, (unsigned)http_port(h), runtime_spec(rt)->pipeline, runtime_source(rt)->name,
           runtime_partitions(rt), hc.threads, mem, hc.token ? ", bearer token required" : "");
    fflush(stdout);
    uint64_t t0 = weir_mono_ns();
    if (runtime_recover(rt, hc.threads, err, sizeof err) != 0) {
        http_stop(h);
        runtime_close(rt, NULL, 0);
        return cli_fail(prefix, "replaying the log: %s", err);
    }
    metrics_t *m = runtime_metrics(rt);
    /* (decided: the events without a logged decision; under at_least_once
     * every event after the checkpoint, logged decision or not) */
    printf("weir run: ready: replayed %" PRIu64 " events, decided %" PRIu64
           " logged events (those not decided before%s), in %.3f s; model %" PRIu64
           "%s%s%s; spec %" PRIu64 "\n",
           atomic_load(&m->replayed), atomic_load(&m->redecided),
           runtime_spec(rt)->guarantee == SPEC_AT_LEAST_ONCE
               ? ", and at_least_once: all after the checkpoint"
               : "",
           (double)(weir_mono_ns() - t0) / 1e9, runtime_model_version(rt),
           runtime_spec(rt)->has_model ? " (" : "", runtime_model_digest(rt),
           runtime_spec(rt)->has_model ? ")" : "", runtime_spec_version(rt));
    fflush(stdout);
    /* (a state over the memory budget is said by housekeeping, from now on:
     * runtime_housekeep, MEMORY BUDGET) */

    int status = 0;
    for (;;) {
        struct timespec ts = {0, 250 * 1000000L};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGHUP) {
            uint64_t ver, spec_ver;
            int changed;
            runtime_reload(rt, "SIGHUP", &ver, &spec_ver, &changed, err,
                           sizeof err); /* (it says how it went) */
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
        runtime_housekeep(rt, weir_wall_ms());
    }
    http_quiesce(h);
    int64_t left = http_drain(h, 10000);
    http_stop(h);
    if (runtime_close(rt, err, sizeof err) != 0) status = cli_fail(prefix, "%s", err);
    printf("weir run: stopped%s; logs synced\n",
           left ? " (some requests were still in flight after 10 s)" : "");
    fflush(stdout);
    return status;
}
