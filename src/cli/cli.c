/* cli.c — helpers shared by the verbs (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prefix);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
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
