/* cmd_bench.c — `weir bench <what>`: runs the benchmark program weir-bench,
 * which is built from bench/ next to the weir binary. The benchmarks live in
 * their own program because they link peers (libxgboost) that weir itself
 * must not depend on. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_bench(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return cli_fail("weir bench", "cannot find own executable: %s", strerror(errno));
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    char prog[PATH_MAX + 16];
    snprintf(prog, sizeof prog, "%.*s/weir-bench", (int)(slash - self), self);
    (void)argc;
    argv[0] = prog; /* weir-bench sees the same arguments: <what> [options] */
    execv(prog, argv);
    return cli_fail("weir bench", "cannot run %s: %s", prog, strerror(errno));
}
