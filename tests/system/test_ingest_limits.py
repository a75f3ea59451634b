"""test_ingest_limits.py — `weir ingest` at its size limits: a key over the
log's 64 KiB record-key limit is refused at the edge with its line and
field (and the other lines go in), and many near-1 MiB events of one
partition are appended in several batches rather than one batch over the
log's 64 MiB limit."""
import json

SPEC = """pipeline: limits
partitions: 1
sources:
  s:
    key: k
    time: ts
    lateness: 1s
    fields: {k: string, ts: time, pad: string}
features:
  n: count() over 1h
"""


def test_oversize_key_is_refused_at_the_edge(run_weir, tmp_path):
    spec = tmp_path / "limits.yaml"
    spec.write_text(SPEC)
    lines = [json.dumps({"k": "a", "ts": 1000}), json.dumps({"k": "x" * 70000, "ts": 2000}),
             json.dumps({"k": "b", "ts": 3000})]
    rc, out, err = run_weir(["ingest", spec, "--data", tmp_path / "d"], input="\n".join(lines) + "\n")
    assert rc == 1
    assert "line 2: key field 'k' is longer than 65536 bytes" in err
    assert "ingested 2 events" in out


def test_many_large_events_of_one_partition(run_weir, tmp_path):
    spec = tmp_path / "limits.yaml"
    spec.write_text(SPEC)
    pad = "p" * 900_000
    lines = [json.dumps({"k": "a", "ts": 1000 + i, "pad": pad}) for i in range(90)]  # ~81 MB
    rc, out, err = run_weir(["ingest", spec, "--data", tmp_path / "d"], input="\n".join(lines) + "\n")
    assert rc == 0, err
    assert "ingested 90 events" in out
    rc, out, err = run_weir(["backfill", spec, "--data", tmp_path / "d", "--out", tmp_path / "f.csv"])
    assert rc == 0, err
    rows = (tmp_path / "f.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[-1]) for r in rows] == list(range(1, 91))
