"""Output files rewritten whole are never cut by an older checkpoint
(src/decide/outputs.c, OUTPUTS GENERATION). A checkpoint records where each
output file ended, and recovery cuts the files back there: right only for
the files that checkpoint saw grow. A replay of the whole log, or an ingest
that rebuilds them, writes other files (partitions side by side, another
line order), so a checkpoint made before such a rewrite cut the new files
at the wrong places: lines went missing and others were doubled or torn.
Each case below ends with outputs equal (as multisets of lines) to those a
fresh server builds from the same log:

- a file found short skips a checkpoint (the whole log rebuilds it); a
  crash before the next checkpoint, then a start that finds it no longer
  short;
- a spec changed and changed back (its checkpoint fits again);
- a server checkpointed and killed, then `weir ingest` rebuilding the files;
- a `weir run` killed while it rebuilt the files (they are set aside as
  NAME.ndjson.cut), then `weir ingest`, whose completion mark must not be
  trusted then."""
import collections
import json
import os
import shutil
import subprocess

from conftest import REPO
from httputil import Server

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
MODEL = REPO / "examples" / "fraud" / "fraud.model.json"


def spec_copy(tmp_path, name="a.yaml", old=None, new=None):
    text = SPEC.read_text().replace("path: fraud.model.json", "path: %s" % MODEL)
    if old:
        assert text.count(old) == 1
        text = text.replace(old, new)
    p = tmp_path / name
    p.write_text(text)
    return p


def events(weir_bin, n):
    return subprocess.run([weir_bin, "gen", "fraud", "--events", str(n), "--keys", "200"],
                          capture_output=True, check=True, timeout=120).stdout.splitlines(True)


def outputs(data):
    return {p.name: collections.Counter(p.read_bytes().splitlines())
            for p in sorted((data / "outputs").glob("*.ndjson"))}


def reference(weir_bin, spec, data, tmp_path):
    """The outputs a fresh server builds from a copy of data's log."""
    ref = tmp_path / "ref"
    shutil.rmtree(ref, ignore_errors=True)
    ref.mkdir()
    shutil.copytree(data / "log", ref / "log")
    with Server(weir_bin, spec, ref) as srv:
        assert srv.stop() == 0
    return outputs(ref)


def served(weir_bin, spec, data, evs):
    """A checkpoint at half the events, the rest served, then kill -9."""
    half = len(evs) // 2
    with Server(weir_bin, spec, data) as srv:
        srv.post_events([json.loads(l) for l in evs[:half]], chunk=500)
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        srv.post_events([json.loads(l) for l in evs[half:]], chunk=500)
        srv.kill()


def start(weir_bin, spec, data, kill=False):
    with Server(weir_bin, spec, data) as srv:
        if kill:
            srv.kill()  # before any periodic checkpoint
        else:
            assert srv.stop() == 0
        return srv.stderr()


def test_a_short_file_then_a_crash(weir_bin, tmp_path):
    spec, data = spec_copy(tmp_path), tmp_path / "data"
    served(weir_bin, spec, data, events(weir_bin, 20000))
    out = data / "outputs" / "hourly_spend.ndjson"
    os.truncate(out, out.stat().st_size // 3)  # a disk that lost the file's tail
    err = start(weir_bin, spec, data, kill=True)
    assert "shorter than" in err and "replaying the whole log" in err, err[-2000:]
    err = start(weir_bin, spec, data)
    assert "rewritten whole since" in err, err[-2000:]  # the old checkpoint does not cut them
    assert outputs(data) == reference(weir_bin, spec, data, tmp_path)


def test_a_spec_changed_and_back(weir_bin, tmp_path):
    a = spec_copy(tmp_path)
    b = spec_copy(tmp_path, "b.yaml", "select: { total: sum(amount), n: count() }",
                  "select: { total: sum(amount), n: count(), top: max(amount) }")
    data = tmp_path / "data"
    with Server(weir_bin, a, data) as srv:
        srv.post_events([json.loads(l) for l in events(weir_bin, 10000)], chunk=500)
        assert srv.stop() == 0
    start(weir_bin, b, data)  # another plan: the whole log, B's files
    err = start(weir_bin, a, data)  # A's checkpoint fits again; B's files are not its own
    assert "rewritten whole since" in err, err[-2000:]
    assert outputs(data) == reference(weir_bin, a, data, tmp_path)


def test_a_killed_server_then_ingest(weir_bin, run_weir, tmp_path):
    spec, data = spec_copy(tmp_path), tmp_path / "data"
    served(weir_bin, spec, data, events(weir_bin, 20000))
    run_weir(["ingest", spec, "--data", data], input=b"", check=True)  # rebuilds the files
    start(weir_bin, spec, data)
    assert outputs(data) == reference(weir_bin, spec, data, tmp_path)


def test_ingest_after_a_run_stopped_rebuilding(weir_bin, run_weir, tmp_path):
    spec, data = spec_copy(tmp_path), tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], input=b"".join(events(weir_bin, 20000)), check=True)
    want = outputs(data)
    # What a weir run killed in its replay of the whole log leaves: each file
    # set aside whole, a part of it rebuilt, and ingest's mark still there.
    for p in (data / "outputs").glob("*.ndjson"):
        whole = p.read_bytes()
        p.rename(str(p) + ".cut")
        p.write_bytes(whole[: len(whole) // 3])
    assert (data / "outputs" / ".ingest-complete").exists()
    run_weir(["ingest", spec, "--data", data], input=b"", check=True)
    assert outputs(data) == want
    assert not list((data / "outputs").glob("*.cut"))


def test_a_run_killed_while_rebuilding_puts_the_files_back(weir_bin, run_weir, tmp_path):
    """What a weir run killed in its replay of the whole log leaves (each
    file set aside whole as NAME.ndjson.cut, a part of it rebuilt): the next
    start puts the set-aside files back, says so, and goes on from them."""
    spec, data = spec_copy(tmp_path), tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], input=b"".join(events(weir_bin, 20000)), check=True)
    start(weir_bin, spec, data)  # a checkpoint of these files
    want = outputs(data)
    for p in (data / "outputs").glob("*.ndjson"):
        whole = p.read_bytes()
        p.rename(str(p) + ".cut")
        p.write_bytes(whole[: len(whole) // 3])
    err = start(weir_bin, spec, data)
    assert "put back as it was before a replay that did not finish" in err, err[-2000:]
    assert outputs(data) == want
    assert not list((data / "outputs").glob("*.cut"))


def test_emits_of_events_decided_at_a_start_with_foreign_outputs(weir_bin, run_weir, tmp_path):
    """After an ingest rebuilt the files (a new generation) and retention cut
    the log, the checkpoint is restored without cutting the files, and the
    replay rewrites none of them; but the events it decides for the first
    time (appended after the checkpoint) still get their emits, as in a
    directory where no ingest ran. (They were lost: nobody else writes
    them.)"""
    import httputil
    from test_http_emit import emit_spec

    def ndjson(evs):
        return "".join(json.dumps(e) + "\n" for e in evs)

    def emits(d):  # (without offsets: the ingest's ticks moved those after it by one)
        return {k: collections.Counter(json.dumps(dict(json.loads(l), offset=None)) for l in v.elements())
                for k, v in outputs(d).items() if k in ("blocked.ndjson", "review_queue.ndjson")}

    spec = emit_spec(tmp_path)
    data, control = tmp_path / "data", tmp_path / "control"
    evs = httputil.fraud_events(1600, seed=5, cards=30)
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", 4, "--key",
              "card_id", "--segment-bytes", 2048, "--batch", 8], input=ndjson(evs[:600]), check=True)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[600:900])
        assert srv.stop() == 0
    shutil.copytree(data, control)
    run_weir(["ingest", spec, "--data", data], input=b"", check=True)  # a new generation
    for d in (data, control):
        run_weir(["log", "append", d, "--topic", "transactions", "--key", "card_id",
                  "--segment-bytes", 2048, "--retention-bytes", 1], input=ndjson(evs[900:]),
                 check=True)
        err = start(weir_bin, spec, d)
    assert all(recs[0].offset > 0 for recs in httputil.log_records(data).values())
    got, want = emits(data), emits(control)
    assert sum(sum(c.values()) for c in want.values()) > 0
    assert got == want


def test_ingest_after_retention_leaves_the_files(weir_bin, run_weir, tmp_path):
    """Ingest rebuilds the files only from a log that has every event: after
    retention it leaves them as they are and says so (it rebuilt them from
    what was left, losing what the deleted events had made)."""
    spec, data = spec_copy(tmp_path), tmp_path / "data"
    evs = events(weir_bin, 6000)
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", 8, "--key",
              "card_id", "--segment-bytes", 4096], input=b"".join(evs[:4000]), check=True)
    run_weir(["ingest", spec, "--data", data], input=b"", check=True)
    run_weir(["log", "append", data, "--topic", "transactions", "--key", "card_id",
              "--segment-bytes", 4096, "--retention-bytes", 8192], input=b"".join(evs[4000:]),
             check=True)
    before = outputs(data)
    rc, _, err = run_weir(["ingest", spec, "--data", data], input=b"")
    assert rc == 0 and "outputs are left as they are" in err, err
    after = outputs(data)
    for name, lines in before.items():
        assert not (lines - after[name]), name  # nothing lost, only added
