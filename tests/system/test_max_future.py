"""test_max_future.py — the edge refuses an event whose time is more than the
source's max_future (default 5m; Kafka's message.timestamp.after.max.ms)
past this machine's clock. One such event (a year-2100 clock, microseconds
sent as milliseconds) was accepted, and the idle ticks carried its time into
every partition: every later event of every key was late, scored with empty
features, for good (the log replays it). Replay never reads the clock: a
logged far-future event is replayed whatever max_future says."""
import json
import shutil
import time

import httputil
from httputil import Server

SPEC = """pipeline: future
partitions: 4
sources:
  ev:
    key: k
    time: ts
    lateness: 10s
{extra}    fields: {{k: string, ts: time}}
features:
  n: count() over 1h
"""
Y2100 = 4102444800000  # 2100-01-01T00:00:00Z


def spec_file(tmp_path, extra=""):
    path = tmp_path / ("s%d.yaml" % len(list(tmp_path.glob("s*.yaml"))))
    path.write_text(SPEC.format(extra=extra))
    return path


def lines(*evs):
    return "".join(json.dumps(e) + "\n" for e in evs)


def test_ingest_refuses_a_time_past_max_future_naming_line_and_field(run_weir, data_dir, tmp_path):
    now = int(time.time() * 1000)
    evs = [{"k": "a", "ts": now - 60000}, {"k": "z", "ts": Y2100},
           {"k": "b", "ts": "2100-01-01T00:00:00Z"}, {"k": "c", "ts": now + 2 * 60000},
           {"k": "a", "ts": now - 30000}]
    rc, out, err = run_weir(["ingest", spec_file(tmp_path), "--data", data_dir], input=lines(*evs))
    assert rc == 1, err
    msgs = [m for m in err.splitlines() if m.strip()]
    assert len(msgs) == 2, err
    for no, m in zip((2, 3), msgs):
        assert m.startswith("weir ingest: line %d: field 'ts': 2100-01-01T00:00:00.000Z is more "
                            "than max_future (5m) past this machine's clock" % no), m
    logged = sorted(json.loads(r.value)["k"] for recs in httputil.log_records(data_dir, "ev").values()
                    for r in recs if r.type == 0)
    assert logged == ["a", "a", "c"]  # 2 minutes ahead is within the bound
    # the refused events moved no partition's time: a's second event is on time
    rows_path = tmp_path / "rows.ndjson"
    rc, _, err = run_weir(["backfill", spec_file(tmp_path), "--data", data_dir, "--out", rows_path,
                           "--format", "ndjson"])
    assert rc == 0, err
    rows = [json.loads(l) for l in rows_path.read_text().splitlines()]
    assert not any(r["late"] for r in rows), rows
    assert [r["n"] for r in rows if r["key"] == "a"] == [1, 2]


def test_http_refuses_it_and_none_lifts_the_bound_replay_keeps_it(weir_bin, data_dir, tmp_path):
    now = int(time.time() * 1000)
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        status, body = srv.json("POST", "/v1/score/ev", {"k": "z", "ts": Y2100})
        assert status == 400 and body["error"]["code"] == "invalid_event", body
        assert "max_future (5m)" in body["error"]["message"], body
        status, body = srv.json("POST", "/v1/events/ev", [{"k": "z", "ts": Y2100},
                                                         {"k": "a", "ts": now}])
        assert status == 200 and body["accepted"] == 1, body
        assert body["rejected"][0]["index"] == 0 and "max_future" in body["rejected"][0]["error"]
        assert srv.stop() == 0
    # max_future: none takes it (a user who means it)
    with Server(weir_bin, spec_file(tmp_path, "    max_future: none\n"), data_dir) as srv:
        status, body = srv.json("POST", "/v1/score/ev", {"k": "z", "ts": Y2100})
        assert status == 200 and body["late"] is False, body
        assert srv.stop() == 0
    # the default spec again, with no checkpoint: the logged 2100 event is
    # replayed, not refused
    for ck in (data_dir / "checkpoints").iterdir():
        if ck.is_dir():
            shutil.rmtree(ck)
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        status, body = srv.json("GET", "/v1/features/ev/z")
        assert status == 200 and body["found"] is True and body["features"]["n"] == 1, body
        assert srv.stop() == 0


def test_max_future_is_checked_at_load(run_weir, data_dir, tmp_path):
    for value, want in (("0s", "max_future must be longer than 0"),
                        ("soon", "bad duration 'soon' for max_future")):
        rc, _, err = run_weir(["ingest", spec_file(tmp_path, "    max_future: %s\n" % value),
                               "--data", data_dir], input="")
        assert rc != 0 and want in err, err
