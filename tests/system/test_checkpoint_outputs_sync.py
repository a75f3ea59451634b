"""A checkpoint makes the output files durable before it becomes visible:
each DATA/outputs/*.ndjson is fdatasync'ed before the checkpoint's
directory is renamed into place. The checkpoint records where each output
ends and recovery cuts the files back there; a file not yet on disk at a
power loss could be shorter than that, its lines before the checkpoint
lost. An LD_PRELOAD shim logs the order of fdatasync and rename calls."""
import time

import httputil
from httputil import SPECS, Server, fraud_events

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void note(const char *what, const char *path)
{
    const char *log = getenv("SHIM_LOG");
    if (!log) return;
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return;
    char line[4200];
    int n = snprintf(line, sizeof line, "%s %s\n", what, path);
    (void)!write(fd, line, (size_t)n);
    close(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof path - 1);
    if (k > 0) {
        path[k] = 0;
        if (strstr(path, "/outputs/")) note("sync", path);
    }
    return real(fd);
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (strstr(to, "/checkpoints/")) note("rename", to);
    return real(from, to);
}
"""


def test_outputs_are_synced_before_the_checkpoint_is_visible(weir_bin, tmp_path):
    shim = httputil.preload_shim(tmp_path, SHIM)
    log = tmp_path / "calls.log"
    data = tmp_path / "data"
    with Server(weir_bin, SPECS / "fraud.yaml", data,
                env={"LD_PRELOAD": str(shim), "SHIM_LOG": str(log)}) as srv:
        srv.post_events(fraud_events(200, step_ms=120_000))
        time.sleep(0.3)
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        assert srv.stop() == 0
    calls = log.read_text().splitlines()
    renames = [i for i, c in enumerate(calls) if c.startswith("rename ")]
    assert renames, calls
    first = renames[0]
    synced = {c.split(" ", 1)[1].rsplit("/", 1)[1] for c in calls[:first] if c.startswith("sync ")}
    assert "hourly_spend.ndjson" in synced and "late.ndjson" in synced, calls[:first + 1]
