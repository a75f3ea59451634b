/* http_bench.c — `weir bench http`: runs bench/http_bench.sh (wrk against
 * `weir run` beside nginx; see the script for what it measures) with the
 * weir binary built next to this weir-bench. The script is found through
 * this file's own path in the source tree, so it runs from any build
 * directory; arguments after `http` are passed on (--json, --duration S, --runs N,
 * --connections 1,8,64, --model FILE, --pin, --keep). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "benchweir.h"

int bench_http(int argc, char **argv)
{
    char weir[PATH_MAX + 8], script[PATH_MAX + 32];
    if (bench_weir_path(weir, sizeof weir, "weir bench http")) return 1;
    const char *src = __FILE__, *slash = strrchr(src, '/');
    snprintf(script, sizeof script, "%.*s/http_bench.sh", slash ? (int)(slash - src) : 1,
             slash ? src : ".");
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "weir bench http: cannot find %s: %s\n", script, strerror(errno));
        return 1;
    }
    char **args = calloc((size_t)argc + 5, sizeof *args);
    int k = 0;
    args[k++] = "bash";
    args[k++] = script;
    args[k++] = "--weir";
    args[k++] = weir;
    for (int i = 1; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    execv("/bin/bash", args);
    fprintf(stderr, "weir bench http: cannot run /bin/bash %s: %s\n", script, strerror(errno));
    free(args);
    return 1;
}
