"""test_events_log_failure.py — POST /v1/events when the event log refuses
an append half-way through a request. Partitions are logged one after
another, so the events of the partitions before the failing one are logged
and applied; the answer (500, log_failed) lists by index exactly the events
that were not ("not_logged"), and a client that retries those, and only
those, after a restart leaves every event in the log exactly once. An
LD_PRELOAD shim makes write(2) to partition 2's event log segments fail
with ENOSPC once the test arms it."""
import collections
import json
import re
import time

import pytest

import httputil

# Armed (SHIM_ARM exists): whether fd is a segment of the partition named
# by SHIM_FAIL ("/log/transactions/2/").
ARMED = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int armed_segment(int fd)
{
    const char *arm = getenv("SHIM_ARM"), *part = getenv("SHIM_FAIL");
    if (!arm || !part || access(arm, F_OK) != 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof path - 1);
    if (k <= 0) return 0;
    path[k] = 0;
    return strstr(path, part) && strstr(path, ".seg");
}
"""

SHIM = ARMED + r"""
ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (armed_segment(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, n);
}
"""


@pytest.fixture
def shim(tmp_path):
    return httputil.preload_shim(tmp_path, SHIM)


def ident(ev):
    return (ev["card_id"], ev["ts"], ev["amount"])


def logged_events(data):
    """{(partition, offset): identity} of the events in the event log."""
    return {po: ident(json.loads(r.value)) for po, r in httputil.event_records(data).items()}


def test_failed_append_lists_exactly_the_events_not_logged(weir_bin, shim, tmp_path):
    data = tmp_path / "data"
    arm = tmp_path / "arm"
    events = httputil.fraud_events(200, seed=5, cards=60)
    env = {"LD_PRELOAD": str(shim), "SHIM_ARM": str(arm), "SHIM_FAIL": "/log/transactions/2/"}
    with httputil.Server(weir_bin, httputil.FRAUD_SPEC, data, env=env) as srv:
        arm.touch()
        status, body = srv.json("POST", "/v1/events/transactions", events)
        assert status == 500, body
        assert body["error"]["code"] == "log_failed" and "not_logged" in body["error"]["message"]
        assert body["numbering"] == "index" and body["rejected"] == []
        not_logged = body["not_logged"]
        assert 0 < len(not_logged) < len(events), body
        assert body["logged"] + len(not_logged) == len(events)
        # Not ready any more (partition 2 refuses its events until a
        # restart), though alive.
        status, body = srv.json("GET", "/readyz")
        assert status == 503 and body["error"]["code"] == "log_failed", body
        assert "partition 2's event log refuses appends" in body["error"]["message"], body
        assert srv.json("GET", "/healthz")[0] == 200
        time.sleep(2.5)  # idle ticks (every --tick-idle, 1 s) fail on partition 2: said once
        srv.kill()
        err = srv.stderr()
    assert err.count("tick for partition 2") == 1, err
    logged = logged_events(data)
    # partitions 0 and 1 went first and were logged; 2 failed, 3 never came
    assert logged and all(p < 2 for p, _ in logged)
    missing = set(not_logged)
    assert sorted(logged.values()) == sorted(ident(e) for i, e in enumerate(events) if i not in missing)

    # A restart without the shim; the client retries exactly what was not logged.
    with httputil.Server(weir_bin, httputil.FRAUD_SPEC, data) as srv:
        srv.post_events([events[i] for i in not_logged])
    counts = collections.Counter(logged_events(data).values())
    assert counts == collections.Counter(ident(e) for e in events)


def test_ingest_says_what_a_failed_append_left(weir_bin, run_weir, shim, tmp_path):
    """weir ingest stopped by a failed append (a full disk) says up to which
    input line everything is in the log, and that some later lines are too:
    the claim is checked against the log."""
    data = tmp_path / "data"
    arm = tmp_path / "arm"
    arm.touch()
    events = httputil.fraud_events(3000, seed=6, cards=60)
    env = {"LD_PRELOAD": str(shim), "SHIM_ARM": str(arm), "SHIM_FAIL": "/log/transactions/2/"}
    rc, _, err = run_weir(["ingest", httputil.FRAUD_SPEC, "--data", data],
                          input="".join(json.dumps(e) + "\n" for e in events), env=env)
    assert rc != 0, err
    m = re.search(r"input lines 1\.\.(\d+) are in the log or were rejected; of the lines from "
                  r"(\d+) to (\d+), some are in the log too", err)
    assert m, err
    k = int(m.group(2))
    assert int(m.group(1)) == k - 1 and k <= int(m.group(3)) <= len(events)
    logged = collections.Counter(logged_events(data).values())
    assert all(logged[ident(e)] == 1 for e in events[:k - 1]), "a line before the resume point is missing"
    assert logged[ident(events[k - 1])] == 0, "the resume line is in the log"


SYNC_SHIM = ARMED + r"""
int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (armed_segment(fd)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
"""


def test_a_failed_background_sync_is_said(weir_bin, tmp_path):
    """With ack written, events are acknowledged before the background
    flusher syncs them. A sync that failed there marked the partition failed
    but said nothing: the acknowledged events it could not keep went
    unmentioned (an SRE found 58 missing after an I/O error). It is said
    once, naming the partition's log and what may be lost."""
    shim = httputil.preload_shim(tmp_path, SYNC_SHIM)
    data = tmp_path / "data"
    arm = tmp_path / "arm"
    env = {"LD_PRELOAD": str(shim), "SHIM_ARM": str(arm), "SHIM_FAIL": "/log/transactions/2/"}
    events = httputil.fraud_events(200, seed=7, cards=60)
    with httputil.Server(weir_bin, httputil.FRAUD_SPEC, data, env=env) as srv:
        arm.touch()
        status, body = srv.json("POST", "/v1/events/transactions", events)
        assert status == 200 and body["accepted"] == len(events), body
        for _ in range(100):  # the flusher runs every 100 ms
            if srv.json("GET", "/readyz")[0] == 503:
                break
            time.sleep(0.05)
        status, body = srv.json("GET", "/readyz")
        assert status == 503 and body["error"]["code"] == "log_failed", body
        # the metrics say it too (weir_ready stayed 1)
        m = srv.metrics()
        assert httputil.metric(m, "weir_ready") == 0 and httputil.metric(m, "weir_log_failed_partitions") == 1
        time.sleep(0.5)  # more flusher rounds: still said once
        srv.kill()
        err = srv.stderr()
    said = [l for l in err.splitlines() if "fdatasync partition 2" in l]
    assert len(said) == 1, err
    assert "log/transactions" in said[0] and "may not be on disk" in said[0], said
