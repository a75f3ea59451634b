/* cli.c — helpers shared by the verbs (see cli.h). */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "prefix: lead message\n" on stderr. */
static void say(const char *prefix, const char *lead, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", prefix, lead);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_fail(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(prefix, "", fmt, ap);
    va_end(ap);
    return 1;
}

/* The shutdown flag (a global STYLE.md allows): a signal handler has
 * nowhere else to write. */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
    stop_sig = sig;
}

static void stop_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void cli_stop_hold(void)
{
    static const int sigs[] = {SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop;
        sigemptyset(&sa.sa_mask);
        /* No SA_RESTART: a read waiting on stdin returns EINTR, so that an
         * idle pipe cannot keep the verb from stopping. SA_RESETHAND: the
         * second signal takes the default action, ending the process. */
        sa.sa_flags = SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
    }
    sigset_t set;
    stop_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void cli_stop_listen(void)
{
    sigset_t set;
    stop_set(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int cli_stop_signal(void)
{
    return stop_sig;
}

int cli_stopped(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(prefix, stop_sig == SIGINT ? "stopped by SIGINT: " : "stopped by SIGTERM: ", fmt, ap);
    va_end(ap);
    return 128 + (stop_sig ? stop_sig : SIGTERM);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

static void dispatch_usage(FILE *f, const char *prefix, const cli_verb_t *table, int n)
{
    fprintf(f, "usage: %s <command> [options]\n\ncommands:\n", prefix);
    for (int i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", table[i].name, table[i].summary);
    fprintf(f, "\n'%s <command> --help' describes a command.\n", prefix);
}

int cli_dispatch(const char *prefix, const cli_verb_t *table, int n, int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") ||
        !strcmp(argv[0], "help")) {
        dispatch_usage(argc < 1 ? stderr : stdout, prefix, table, n);
        return argc < 1 ? 1 : 0;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(argv[0], table[i].name)) return table[i].fn(argc, argv);
    return cli_fail(prefix, "unknown command '%s' (see '%s --help')", argv[0], prefix);
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_parse_memory(const char *prefix, const char *s, uint64_t *out)
{
    *out = 0;
    if (strcmp(s, "none") != 0 && (cli_parse_size(s, out) != 0 || *out == 0))
        return cli_fail(prefix,
                        "--max-memory must be a size (bytes, or with K, M, G or T: 512M, 8G) or "
                        "'none', not '%s'",
                        s);
    /* weir alone takes more: "512" meant 512M, and refused every event */
    if (*out && *out < (1u << 20))
        return cli_fail(prefix,
                        "--max-memory %s is %" PRIu64 " bytes, less than weir itself takes: a "
                        "unit missing? (512M, 8G)",
                        s, *out);
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    static const char units[] = "KMGT";
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    unsigned shift = 0;
    if (u) {
        shift = 10 * (unsigned)(u - units + 1);
        end++;
        if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b')) end++;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end || (shift && v > (UINT64_MAX >> shift))) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}
