"""A checkpoint taken right after a live spec reload keeps every window line
the reload's closes wrote (found by an audit; issue 6's outputs across
crashes).

A reload closes the windows already due under the old spec and writes their
lines through the old output streams, then releases the checkpointer. It
used to close those streams only after the release: a checkpoint waiting
for it recorded the files' ends before the streams' buffered lines reached
them, and recovery cut the files there — the lines were gone for good (27
of 80 in the audit's run). An LD_PRELOAD shim holds the reload's flush of
the old streams for 2 s so that the checkpoint is certain to wait there.
"""
import shutil
import threading
import time

import httputil
from httputil import Server, fraud_events

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Off a main thread, once armed (the file SHIM_ARM exists, and is taken),
 * an fflush waits 2 s first: the reload's flush of the old outputs. */
int fflush(FILE *f)
{
    static int (*real)(FILE *);
    if (!real) real = (int (*)(FILE *))dlsym(RTLD_NEXT, "fflush");
    const char *arm = getenv("SHIM_ARM"), *hit = getenv("SHIM_HIT");
    if (f && arm && hit && syscall(SYS_gettid) != getpid() && unlink(arm) == 0) {
        int fd = open(hit, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) close(fd);
        sleep(2);
    }
    return real(f);
}
"""


def window_lines(data):
    p = data / "outputs" / "hourly_spend.ndjson"
    return p.read_bytes().splitlines() if p.exists() else []


def test_checkpoint_right_after_a_reload_keeps_the_reloads_window_lines(weir_bin, tmp_path):
    shim = httputil.preload_shim(tmp_path, SHIM)
    specdir = tmp_path / "spec"
    shutil.copytree(httputil.SPECS, specdir)
    spec = specdir / "fraud.yaml"
    text = spec.read_text().replace("partitions: 4", "partitions: 2\ncheckpoint_interval: 1h")
    spec.write_text(text)
    data = tmp_path / "data"
    arm, hit = tmp_path / "arm", tmp_path / "hit"
    evs = fraud_events(200, seed=7, cards=30, step_ms=120_000, jitter_ms=1000)
    env = {"LD_PRELOAD": str(shim), "SHIM_ARM": str(arm), "SHIM_HIT": str(hit)}
    with Server(weir_bin, spec, data, "--tick-idle", "0", env=env) as srv:
        srv.post_events(evs[:150], chunk=10)
        # more events: the windows they make due are closed by the reload
        spec.write_text(text.replace("reason: elevated risk", "reason: elevated risk v2"))
        srv.post_events(evs[150:], chunk=50)
        arm.touch()
        got = {}
        t = threading.Thread(target=lambda: got.update(r=srv.json("POST", "/v1/admin/reload")))
        t.start()
        deadline = time.monotonic() + 10
        while not hit.exists():
            assert time.monotonic() < deadline, "the reload never flushed its old outputs"
            time.sleep(0.01)
        status, body = srv.json("POST", "/v1/admin/checkpoint")  # waits for the reload
        assert status == 200, body
        t.join(30)
        assert got["r"][0] == 200 and got["r"][1]["spec"] == "replaced", got
        time.sleep(0.5)
        before = window_lines(data)
        assert before, "no window closed: the test would show nothing"
        srv.kill()
    with Server(weir_bin, spec, data, "--tick-idle", "0") as srv:
        time.sleep(0.5)
        assert srv.stop() == 0
    after = window_lines(data)
    lost = set(before) - set(after)
    assert not lost, "%d of %d window lines lost across the crash, e.g. %r" % (
        len(lost), len(before), sorted(lost)[:2])
    assert len(after) == len(set(after)), "duplicated window lines"
