"""test_ingest_limits.py — `weir ingest` at its size limits: a key over the
log's 64 KiB record-key limit is refused at the edge with its line and
field (and the other lines go in), and many near-1 MiB events of one
partition are appended in several batches rather than one batch over the
log's 64 MiB limit; --max-memory stops it at a line boundary, naming where
to resume."""
import json
import re

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


MANY_KEYS = """pipeline: memory
partitions: 2
sources:
  s:
    key: k
    time: ts
    ttl: 30d
    fields: {k: string, ts: time}
features:
  n: count() over 1h
"""


def test_the_memory_budget_stops_ingest_at_a_line_and_it_resumes_there(run_weir, tmp_path):
    """A log whose keys' state does not fit cannot be replayed by weir run
    either (replay is never refused: a crash loop). So --max-memory stops
    ingest as a stop signal does, at a line boundary, naming where to
    resume; resumed there with room, every event is in the log once."""
    spec = tmp_path / "memory.yaml"
    spec.write_text(MANY_KEYS)
    lines = [json.dumps({"k": "key%07d" % i, "ts": 1_767_225_600_000 + i}) + "\n"
             for i in range(200_000)]
    data = tmp_path / "d"
    rc, out, err = run_weir(["ingest", spec, "--data", data, "--max-memory", "16M"], input="".join(lines))
    assert rc == 1, (out, err)
    m = re.search(r"over --max-memory \(16\.0 MiB\): read (\d+) input lines \((\d+) events appended, "
                  r"0 rejected\) and stopped there.*resume with tail -n \+(\d+)", err)
    assert m, err
    read, appended, resume = map(int, m.groups())
    assert 0 < read == appended < len(lines) and resume == read + 1
    rc, out, err = run_weir(["ingest", spec, "--data", data, "--max-memory", "none"],
                            input="".join(lines[resume - 1:]))
    assert rc == 0, err
    rc, out, err = run_weir(["log", "read", data, "--topic", "s"])
    keys = [json.loads(l)["value"]["k"] for l in out.splitlines()
            if l.strip() and json.loads(l).get("type") != "tick"]
    assert sorted(keys) == ["key%07d" % i for i in range(200_000)]  # each once


def test_max_memory_names_a_missing_unit(run_weir, tmp_path):
    spec = tmp_path / "memory.yaml"
    spec.write_text(MANY_KEYS)
    rc, _, err = run_weir(["ingest", spec, "--data", tmp_path / "d", "--max-memory", "512"], input="")
    assert rc == 1 and "--max-memory 512 is 512 bytes, less than weir itself takes: a unit missing?" in err
