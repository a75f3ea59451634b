"""`weir bench http` (bench/http_bench.sh) runs end to end and reports what
it claims to measure: both servers' figures (throughput, latency, their own
CPU time per request), the ratio, nginx's own p99 beside weir's, and a
workload of in-time events.

No timing is asserted (the machine is shared): only the shape of the JSON,
that every request got a 2xx, and that no event was late — the benchmark
once sent event times that ran 50 times faster than the clock, so every run
after the first measured the late-event path instead of the usual one.
Needs wrk and nginx (scripts/install-deps.sh); skipped, saying so, without.
"""
import json
import os
import shutil
import statistics
import subprocess

import pytest

from conftest import REPO

SCRIPT = REPO / "bench" / "http_bench.sh"


def bench(weir_bin, *args):
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.access("/usr/sbin/" + tool, os.X_OK):
            pytest.skip("%s is not installed (scripts/install-deps.sh installs it)" % tool)
    p = subprocess.run(["bash", str(SCRIPT), "--weir", weir_bin, "--json", "--duration", "1",
                        "--runs", "2", "--connections", "8", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def check(doc, pinned):
    assert doc["bench"] == "http" and doc["pinned"] is pinned
    assert doc["events_scored"] > 0
    assert doc["events_late"] == 0, "the benchmark sent late events: it measures the wrong path"
    (point,) = doc["runs"]
    assert point["connections"] == 8 and len(point["each_run"]) == 2
    for side in ("nginx", "weir", "weir_no_contributions"):
        s = point[side]
        assert s["rps"] > 0 and 0 < s["p50_us"] <= s["p99_us"]
        assert s["cpu_us_per_request"] > 0, "%s's CPU time was not measured" % side
        assert s["non_2xx"] == 0, "%s answered errors" % side
    assert point["ratio"] == pytest.approx(statistics.median(r["ratio"] for r in point["each_run"]))
    for r in point["each_run"]:
        assert r["ratio"] == pytest.approx(r["weir"]["rps"] / r["nginx"]["rps"])
    met = doc["targets_met"]
    for key in ("throughput_ratio", "p99_at_8", "server_p99_at_8", "nginx_p99_at_8"):
        assert met[key] in (True, False)
    assert met["nginx_p99_at_8"] == (point["nginx"]["p99_us"] <= 250.0)


def test_bench_http_shared(weir_bin):
    doc = bench(weir_bin)
    check(doc, False)
    assert doc["placement"].startswith("shared")


def test_bench_http_pinned(weir_bin):
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        pytest.skip("--pin needs 2 CPUs and taskset")
    doc = bench(weir_bin, "--pin")
    check(doc, True)
    assert "wrk on CPU 0" in doc["placement"]
