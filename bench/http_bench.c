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

int bench_http(int argc, char **argv)
{
    char self[PATH_MAX], weir[PATH_MAX + 8], script[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "weir bench http: cannot find own executable: %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(weir, sizeof weir, "%s/weir", self);
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
