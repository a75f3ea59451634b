"""`weir verify SPEC --data DIR` (DESIGN.md: "recompute online decisions
offline; report any difference"): every decision a server logged is
recomputed from a replay of the event log and compared field by field.

- After real HTTP traffic, every decision is equal (exit 0), and the count
  checked is the count of events sent.
- Verified against a spec whose rule or feature changed, it reports the
  differences, naming the rule's decision or the feature and both values
  (exit 1).
- A data directory without a decision log is an error naming it (exit 2).
"""
import json
import re
import shutil
import subprocess
import threading
import time

from conftest import REPO
from httputil import Server, decisions

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
MODEL = REPO / "examples" / "fraud" / "fraud.model.json"


def variant(tmp_path, name, old, new):
    text = SPEC.read_text().replace("path: fraud.model.json", "path: %s" % MODEL)
    assert text.count(old) == 1, old
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return p


def served(weir_bin, tmp_path, n=12000):
    lines = subprocess.run([weir_bin, "gen", "fraud", "--events", str(n), "--keys", "300"],
                           capture_output=True, check=True, timeout=120).stdout.splitlines(True)
    data = tmp_path / "data"
    with Server(weir_bin, SPEC, data) as srv:
        for i in range(0, len(lines), 2000):
            status, _, body = srv.request("POST", "/v1/events/transactions", b"".join(lines[i:i + 2000]))
            assert status == 200, body
        srv.stop()
    assert srv.returncode == 0
    return data, len(lines)


def test_verify_after_traffic_then_against_changed_specs(weir_bin, run_weir, tmp_path):
    data, n = served(weir_bin, tmp_path)
    rc, out, err = run_weir(["verify", SPEC, "--data", data])
    assert rc == 0, err
    assert "%d events, %d decisions checked: %d equal, 0 different" % (n, n, n) in out, out

    # A rule's threshold lowered: some events the server reviewed are blocked now.
    rules = variant(tmp_path, "rules.yaml", "score >= 0.9", "score >= 0.5")
    rc, out, err = run_weir(["verify", rules, "--data", data, "--show", "1000"])
    assert rc == 1, (out, err)
    diffs = [l for l in out.splitlines() if l.startswith("partition ")]
    assert diffs, out
    assert all("decision review online, block offline; rule 1 online, 0 offline" in l for l in diffs), diffs
    assert "differences between the decision log and a replay" in err

    # A feature's window changed: the feature is named, with both values.
    feat = variant(tmp_path, "feat.yaml", "count() over 1h", "count() over 6h")
    rc, out, _ = run_weir(["verify", feat, "--data", data, "--show", "3"])
    assert rc == 1
    shown = [l for l in out.splitlines() if l.startswith("partition ")]
    assert len(shown) == 3 and all("feature txn_count_1h: " in l for l in shown), out


def test_backfill_decisions_equal_the_decision_log(weir_bin, run_weir, tmp_path):
    """backfill --decisions (DESIGN.md: "point-in-time features (+ decisions)
    per event"): each row's score, decision and rule equal the server's
    record of that event, read independently of weir (logformat.py)."""
    data, n = served(weir_bin, tmp_path, n=5000)
    out = tmp_path / "rows.ndjson"
    run_weir(["backfill", SPEC, "--data", data, "--out", out, "--format", "ndjson", "--decisions"],
             check=True)
    rows = {(r["partition"], r["offset"]): r for r in map(json.loads, out.read_text().splitlines())}
    recs = decisions(data)
    assert len(rows) == len(recs) == n
    kinds = set()
    for p, _, rec in recs:
        row = rows[(p, rec["offset"])]
        assert (row["score"], row["decision"], row["rule"]) == \
            (rec["score"], rec["decision"], rec["rule"]), (p, rec, row)
        kinds.add(rec["decision"])
    assert len(kinds) >= 2, kinds  # more than one rule was exercised
    csv = tmp_path / "rows.csv"
    run_weir(["backfill", SPEC, "--data", data, "--out", csv, "--decisions", "--with", "is_fraud"],
             check=True)
    header = csv.read_text().splitlines()[0].split(",")
    assert header[-4:] == ["score", "decision", "rule", "is_fraud"], header


def test_verify_beside_a_running_server(weir_bin, run_weir, tmp_path):
    """Decisions the server writes after verify opened the event log are of
    events verify does not replay: they are not differences."""
    lines = subprocess.run([weir_bin, "gen", "fraud", "--events", "8000", "--keys", "300"],
                           capture_output=True, check=True).stdout.splitlines(True)
    data = tmp_path / "data"
    with Server(weir_bin, SPEC, data) as srv:
        srv.request("POST", "/v1/events/transactions", b"".join(lines[:3000]))
        stop = threading.Event()

        def feed():
            for i in range(3000, len(lines), 50):
                if stop.is_set():
                    return
                srv.request("POST", "/v1/events/transactions", b"".join(lines[i:i + 50]))

        t = threading.Thread(target=feed)
        t.start()
        try:
            for _ in range(3):
                rc, out, err = run_weir(["verify", SPEC, "--data", data])
                assert rc == 0 and " 0 different" in out, out + err
        finally:
            stop.set()
            t.join(60)


def test_verify_at_least_once_after_a_crash(weir_bin, run_weir, tmp_path):
    """at_least_once: a restart decides the events after the checkpoint again
    and appends their records after the others (offsets fall back): each is
    compared with the replay, none is taken for a decision of no event."""
    spec = variant(tmp_path, "alo.yaml", "partitions: 8", "partitions: 8\nguarantee: at_least_once")
    lines = subprocess.run([weir_bin, "gen", "fraud", "--events", "6000", "--keys", "300"],
                           capture_output=True, check=True).stdout.splitlines(True)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data) as srv:
        srv.request("POST", "/v1/events/transactions", b"".join(lines[:4000]))
        status, _ = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200
        srv.request("POST", "/v1/events/transactions", b"".join(lines[4000:]))
        time.sleep(0.5)  # the decisions' batches written (--decision-flush 2 ms)
        srv.kill()
    with Server(weir_bin, spec, data) as srv:
        srv.stop()
    rc, out, err = run_weir(["verify", spec, "--data", data])
    assert rc == 0, out + err
    m = re.search(r"6000 events, (\d+) decisions checked: (\d+) equal, 0 different", out)
    assert m and int(m.group(1)) == int(m.group(2)) > 6000, out  # some decided twice


def test_verify_after_retention_starts_at_a_checkpoint(weir_bin, run_weir, tmp_path):
    data, n = served(weir_bin, tmp_path, n=6000)
    more = subprocess.run([weir_bin, "gen", "fraud", "--events", "3000", "--keys", "300",
                           "--seed", "9"], capture_output=True, check=True).stdout
    run_weir(["log", "append", data, "--topic", "transactions", "--key", "card_id",
              "--segment-bytes", "4096", "--retention-bytes", "4096"], input=more, check=True)
    with Server(weir_bin, SPEC, data) as srv:  # decides the appended events at recovery
        time.sleep(0.3)
        srv.kill()  # no checkpoint after them: the newest is the first server's, at its stop
    rc, out, err = run_weir(["verify", SPEC, "--data", data])
    assert rc == 0, out + err
    assert re.search(r"after checkpoint \d+ \(retention deleted the log's start\)", out), out
    assert "3000 events, 3000 decisions checked: 3000 equal, 0 different" in out, out
    # A clean stop now writes a checkpoint at the log's end; verify still
    # starts at the oldest one it can (the newest would leave nothing to check).
    with Server(weir_bin, SPEC, data) as srv:
        assert srv.stop() == 0
    rc, out2, err = run_weir(["verify", SPEC, "--data", data])
    assert rc == 0 and out2 == out, out2 + err


def test_backfill_after_retention_starts_at_a_checkpoint(weir_bin, run_weir, tmp_path):
    """After retention, backfill restores the oldest checkpoint the log
    still covers (as verify does) and writes the rows from there: their
    features equal those of a backfill over the whole history. Before, it
    rebuilt state from the first retained event, and the windows and last()
    of the rows missed everything retention had deleted."""
    data, n = served(weir_bin, tmp_path, n=6000)
    more = subprocess.run([weir_bin, "gen", "fraud", "--events", "3000", "--keys", "300",
                           "--seed", "9"], capture_output=True, check=True).stdout
    whole = tmp_path / "whole"
    shutil.copytree(data, whole)
    for d, extra in ((whole, []), (data, ["--retention-bytes", "4096"])):
        run_weir(["log", "append", d, "--topic", "transactions", "--key", "card_id",
                  "--segment-bytes", "4096"] + extra, input=more, check=True)

    def rows(d, name):
        out = tmp_path / name
        rc, _, err = run_weir(["backfill", SPEC, "--data", d, "--out", out, "--format", "ndjson"])
        assert rc == 0, err
        return {(r["partition"], r["offset"]): r for r in map(json.loads, out.read_text().splitlines())}, err

    full, _ = rows(whole, "full.ndjson")
    cut, err = rows(data, "cut.ndjson")
    assert "rows from checkpoint" in err, err
    assert len(cut) == 3000 and all(cut[k] == full[k] for k in cut)


LOWER_SPEC = """pipeline: low
partitions: 1
sources:
  ev:
    key: k
    time: ts
    lateness: 1s
    fields: {k: string, m: string, ts: time}
features:
  prev_m: last(m)
decisions:
  - when: lower(prev_m) == "ab"
    then: nope
  - when: prev_m != "" and lower(prev_m) != ""
    then: seen
  - then: allow
"""


def test_a_decision_does_not_depend_on_the_rows_decided_before(run_weir, tmp_path):
    """The rules' lower() works in a scratch sized by the events decided so
    far; a string in the state from an event not decided here (a row before
    --from, or an event before a restored checkpoint) may be longer. The
    decision must not change: the scratch grows and the rules run again."""
    spec = tmp_path / "low.yaml"
    spec.write_text(LOWER_SPEC)
    events = '{"k":"a","m":"%s","ts":1000}\n{"k":"a","m":"x","ts":2000}\n' % ("X" * 600)
    data = tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], input=events, check=True)
    for extra in ([], ["--from", "1500"]):
        out = tmp_path / "rows.ndjson"
        run_weir(["backfill", spec, "--data", data, "--out", out, "--format", "ndjson",
                  "--decisions"] + extra, check=True)
        last = json.loads(out.read_text().splitlines()[-1])
        assert (last["offset"], last["decision"]) == (1, "seen"), (extra, last)


def test_verify_without_a_decision_log(weir_bin, run_weir, tmp_path):
    data = tmp_path / "data"
    events = subprocess.run([weir_bin, "gen", "fraud", "--events", "100"], capture_output=True,
                            check=True).stdout
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    rc, _, err = run_weir(["verify", SPEC, "--data", data])
    assert rc == 2 and "has no decision log of source 'transactions'" in err, err
