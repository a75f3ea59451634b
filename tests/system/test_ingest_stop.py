"""`weir ingest` stopped by SIGTERM or SIGINT. It used to die with status 143
and no message, so a user could not tell how many input lines were
consumed. Now it stops at a line boundary, ends as at the end of its input
(pending batches appended, ticks, outputs and their mark, the log synced),
says on stderr how many lines it read and appended and where to resume, and
exits 128 + the signal. Resuming with `tail -n +K` then gives every event
once."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import REPO

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
EVENTS = 200000  # an ingest of about two seconds: long enough to be stopped in
STOPPED = re.compile(r"^weir ingest: stopped by (SIGTERM|SIGINT): read (\d+) input lines "
                     r"\((\d+) events appended, (\d+) rejected\) and stopped there; "
                     r"resume with tail -n \+(\d+)$")


@pytest.fixture(scope="module")
def events(weir_bin, tmp_path_factory):
    path = tmp_path_factory.mktemp("ingest") / "events.ndjson"
    with open(path, "wb") as f:
        subprocess.run([weir_bin, "gen", "fraud", "--events", str(EVENTS), "--seed", "9"],
                       stdout=f, check=True, timeout=120)
    return path


def stop_line(err):
    lines = err.strip().splitlines()
    m = STOPPED.match(lines[-1]) if lines else None
    assert m, err
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5))


def log_bytes(data):
    total = 0
    for root, _, files in os.walk(data / "log"):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".seg"))
    return total


def backfill_events(run_weir, data, tmp_path):
    out = tmp_path / "rows.ndjson"
    run_weir(["backfill", SPEC, "--data", data, "--out", out, "--format", "ndjson"], check=True)
    return sorted((r["key"], r["time"]) for r in map(json.loads, out.read_text().splitlines()))


@pytest.mark.parametrize("sig,status,name", [(signal.SIGTERM, 143, "SIGTERM"),
                                             (signal.SIGINT, 130, "SIGINT")])
def test_stop_then_resume_gives_every_event_once(weir_bin, run_weir, events, tmp_path, sig, status,
                                                 name):
    data = tmp_path / "data"
    with open(events, "rb") as f:
        p = subprocess.Popen([weir_bin, "ingest", str(SPEC), "--data", str(data)], stdin=f,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline and log_bytes(data) < (1 << 20):
            time.sleep(0.002)
        assert p.poll() is None, "ingest ended before it could be stopped"
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
    err = err.decode()
    assert p.returncode == status, err
    signame, read, appended, rejected, resume = stop_line(err)
    assert signame == name and 0 < read < EVENTS and appended == read and rejected == 0, err
    assert resume == read + 1
    assert ("ingested %d events into" % appended) in out.decode()
    # ended as at the end of input: the outputs' mark is written, the log is whole
    assert (data / "outputs" / ".ingest-complete").exists()
    rc, _, cerr = run_weir(["log", "check", data])
    assert rc == 0 and "torn" not in cerr, cerr

    rest = b"".join(open(events, "rb").readlines()[resume - 1:])
    rc, out, err = run_weir(["ingest", SPEC, "--data", data], input=rest)
    assert rc == 0, err
    assert "ingested %d events" % (EVENTS - appended) in out
    want = sorted((e["card_id"], e["ts"]) for e in map(json.loads, open(events, "rb")))
    assert backfill_events(run_weir, data, tmp_path) == want


def test_stop_while_waiting_on_an_idle_pipe(weir_bin, events, tmp_path):
    """The producer wrote 1,000 lines and half of the next, then went quiet:
    the signal must end the wait on stdin, and the half line is not read
    (nor rejected)."""
    lines = open(events, "rb").readlines()[:1001]
    data = tmp_path / "data"
    p = subprocess.Popen([weir_bin, "ingest", str(SPEC), "--data", str(data)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"".join(lines[:1000]) + lines[1000][:40])
    p.stdin.flush()
    deadline = time.time() + 30
    while time.time() < deadline and not (data / "log").exists():
        time.sleep(0.01)
    time.sleep(0.5)  # the lines are read; weir now waits for the rest
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)  # stdin stays open (communicate would close it): only the signal ends it
    finally:
        p.kill()
    err = p.stderr.read().decode()
    p.stdin.close()
    assert p.returncode == 143, err
    assert "not a JSON object" not in err, err
    assert stop_line(err) == ("SIGTERM", 1000, 1000, 0, 1001)
