"""`weir ingest` killed midway, then run again: the window and late lines
are whole — every line of the log's windows, none torn, none twice (found
by an audit: the next ingest replayed the existing log without writing its
outputs, trusting they were complete, and a killed run's buffered lines
were lost and its last line torn).

cmd_ingest.c, OUTPUTS OF THE EXISTING LOG: a clean ingest leaves a mark
with the log's end offsets; without it the outputs are written again from
the log. The reference is the same log, copied to a fresh directory and
ingested there with no new input: every line written from the log alone.
"""
import json
import shutil
import signal
import subprocess
import threading
import time

from conftest import REPO

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
OUTS = ("hourly_spend.ndjson", "late.ndjson")


def lines(data):
    out = {}
    for name in OUTS:
        p = data / "outputs" / name
        out[name] = sorted(p.read_bytes().splitlines()) if p.exists() else []
    return out


def ingest(weir_bin, data, text):
    return subprocess.run([weir_bin, "ingest", str(SPEC), "--data", str(data)], input=text,
                          capture_output=True, timeout=300)


def test_outputs_are_whole_after_a_killed_ingest(weir_bin, tmp_path):
    gen = subprocess.run([weir_bin, "gen", "fraud", "--events", "50000", "--keys", "300"],
                         capture_output=True, check=True, timeout=120).stdout.splitlines(True)
    data = tmp_path / "data"
    assert ingest(weir_bin, data, b"".join(gen[:10000])).returncode == 0
    # The rest through a pipe left open: batches reach the log and windows
    # close while the process waits for more input; then SIGKILL.
    p = subprocess.Popen([weir_bin, "ingest", str(SPEC), "--data", str(data)],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writer = threading.Thread(target=lambda: (p.stdin.write(b"".join(gen[10000:])), p.stdin.flush()))
    writer.start()
    writer.join(120)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert ingest(weir_bin, data, b"").returncode == 0
    got = lines(data)
    ref = tmp_path / "ref"
    shutil.copytree(data / "log", ref / "log")
    assert ingest(weir_bin, ref, b"").returncode == 0
    want = lines(ref)
    assert want["hourly_spend.ndjson"], "no window closed: the test would show nothing"
    for name in OUTS:
        for l in got[name]:
            json.loads(l)  # none torn
        assert got[name] == want[name], "%s: %d lines, %d from the log alone; missing %r" % (
            name, len(got[name]), len(want[name]), sorted(set(want[name]) - set(got[name]))[:2])
