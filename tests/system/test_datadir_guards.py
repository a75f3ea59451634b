"""What a data directory refuses, so that it never silently loses data or
gives wrong features (src/decide/pipeline.c, ONE PIPELINE A DATA DIRECTORY
and KEYED LOGS).

- A writer (weir run, weir ingest) of another pipeline is refused before it
  touches anything: before, it skipped the first pipeline's checkpoints,
  replayed its own source and emptied every output file of the directory,
  the other pipeline's for good. A reader (backfill) is not refused.
- A log not partitioned by the spec's key (appended round-robin, or keyed
  by another field) is refused by replay, naming the first misplaced event:
  before, each partition built its own state for the same key and the
  features were wrong without a word.
"""
import subprocess

from conftest import REPO
from httputil import Server

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
MODEL = REPO / "examples" / "fraud" / "fraud.model.json"


def spec_variant(tmp_path, fname, **repl):
    """The fraud spec with the model path made absolute and each
    `old -> new` replacement of repl's values applied (exactly once)."""
    text = SPEC.read_text().replace("path: fraud.model.json", "path: %s" % MODEL)
    for old, new in repl.values():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    p = tmp_path / fname
    p.write_text(text)
    return p


def gen(weir_bin, n, keys=200):
    return subprocess.run([weir_bin, "gen", "fraud", "--events", str(n), "--keys", str(keys)],
                          capture_output=True, check=True, timeout=120).stdout


def outputs(data):
    return {p.name: p.read_bytes() for p in sorted((data / "outputs").glob("*.ndjson"))}


def test_a_writer_of_another_pipeline_is_refused(weir_bin, run_weir, tmp_path):
    data = tmp_path / "data"
    events = gen(weir_bin, 20000)
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    assert (data / "pipeline").read_text() == "fraud\n"
    # A checkpoint of 'fraud' too: a clean stop of weir run writes one.
    with Server(weir_bin, SPEC, data) as srv:
        srv.stop()
    assert srv.returncode == 0
    before = outputs(data)
    assert before.get("hourly_spend.ndjson"), "no window closed: the test would show nothing"

    other = spec_variant(tmp_path, "other.yaml", name=("pipeline: fraud", "pipeline: other"))
    for verb in (["ingest"], ["run", "--listen", "127.0.0.1:0"]):
        rc, _, err = run_weir(verb[:1] + [other, "--data", data] + verb[1:], input=events[:2000],
                              timeout=60)
        assert rc != 0, verb
        assert "data directory of pipeline 'fraud'" in err and "not of 'other'" in err, err
        assert "pipeline" in err and "--data" in err, err
        assert outputs(data) == before, verb
    assert not (data / "log" / "other").exists()

    # A directory written before the mark existed: its checkpoints say whose it is.
    (data / "pipeline").unlink()
    rc, _, err = run_weir(["ingest", other, "--data", data], input=b"", timeout=60)
    assert rc != 0 and "its checkpoints say so" in err, err
    assert outputs(data) == before

    # Handed over by naming the new pipeline in the file (a renamed pipeline):
    # its checkpoints are skipped, its outputs rebuilt from its own log.
    assert "write 'other' into %s/pipeline" % data in err, err
    (data / "pipeline").write_text("other\n")
    run_weir(["ingest", other, "--data", data], input=b"", check=True)
    assert outputs(data)["hourly_spend.ndjson"] == before["hourly_spend.ndjson"]  # same log
    (data / "pipeline").write_text("fraud\n")

    # Its own pipeline claims it again; a reader of another spec is welcome.
    run_weir(["ingest", SPEC, "--data", data], input=b"", check=True)
    assert (data / "pipeline").read_text() == "fraud\n"
    run_weir(["backfill", other, "--data", data, "--out", tmp_path / "rows.csv"], check=True)


def test_a_long_pipeline_name_keeps_its_directory(run_weir, tmp_path):
    name = "p" * 300
    spec = spec_variant(tmp_path, "long.yaml", name=("pipeline: fraud", "pipeline: " + name))
    data = tmp_path / "data"
    for _ in range(2):
        run_weir(["ingest", spec, "--data", data], input=b"", check=True)
    assert (data / "pipeline").read_text() == name + "\n"


def test_a_log_not_partitioned_by_the_key_is_refused(weir_bin, run_weir, tmp_path):
    events = gen(weir_bin, 5000)
    # Round-robin: no --key.
    rr = tmp_path / "rr"
    run_weir(["log", "append", rr, "--topic", "transactions", "--partitions", "8"], input=events,
             check=True)
    rc, _, err = run_weir(["backfill", SPEC, "--data", rr, "--out", tmp_path / "rr.csv"])
    assert rc != 0
    assert "is not partitioned by 'card_id'" in err and "offset" in err and "--key card_id" in err, err
    rc, _, err = run_weir(["run", SPEC, "--data", rr, "--listen", "127.0.0.1:0"], timeout=60)
    assert rc != 0 and "is not partitioned by 'card_id'" in err, err

    # Keyed by the spec's key: accepted, and equal to what ingest builds.
    keyed = tmp_path / "keyed"
    run_weir(["log", "append", keyed, "--topic", "transactions", "--partitions", "8", "--key",
              "card_id"], input=events, check=True)
    run_weir(["backfill", SPEC, "--data", keyed, "--out", tmp_path / "keyed.csv"], check=True)
    ing = tmp_path / "ing"
    run_weir(["ingest", SPEC, "--data", ing], input=events, check=True)
    run_weir(["backfill", SPEC, "--data", ing, "--out", tmp_path / "ing.csv"], check=True)
    assert (tmp_path / "keyed.csv").read_bytes() == (tmp_path / "ing.csv").read_bytes()

    # The spec's key changed since the log was written.
    by_merchant = spec_variant(tmp_path, "merchant.yaml",
                               key=("key: card_id", "key: merchant"))
    rc, _, err = run_weir(["backfill", by_merchant, "--data", keyed, "--out", tmp_path / "m.csv"])
    assert rc != 0 and "is not partitioned by 'merchant'" in err, err


def test_a_refused_start_changes_no_output(weir_bin, run_weir, tmp_path):
    """A start whose replay stops on the log (the spec's key or a field's
    type changed since the events were logged) is refused, naming the event,
    and leaves the outputs as they were; the right spec then starts as if
    nothing had happened. Before, the replay of the whole log emptied every
    output first, the refused start left them empty, and the next start
    restored a checkpoint that recorded them full and went on without them
    (the lines were gone for good); a changed type was worse: the events it
    could not read were skipped, and the server served without them."""
    data = tmp_path / "data"
    run_weir(["ingest", SPEC, "--data", data], input=gen(weir_bin, 20000), check=True)
    with Server(weir_bin, SPEC, data) as srv:  # a checkpoint, written at the clean stop
        features = srv.json("GET", "/v1/features/transactions/c0000042")
        srv.stop()
    assert srv.returncode == 0
    before = outputs(data)
    assert before.get("hourly_spend.ndjson") and before.get("late.ndjson")

    by_merchant = spec_variant(tmp_path, "merchant.yaml", key=("key: card_id", "key: merchant"))
    int_amount = spec_variant(tmp_path, "int.yaml", type=("amount: float", "amount: int"))
    for spec, want in ((by_merchant, "is not partitioned by 'merchant'"),
                       (int_amount, "field 'amount': expected an int")):
        for verb in (["run", "--listen", "127.0.0.1:0"], ["ingest"]):
            rc, _, err = run_weir(verb[:1] + [spec, "--data", data] + verb[1:], input=b"",
                                  timeout=120)
            assert rc != 0, (spec.name, verb, err)
            assert want in err and "offset" in err, err
            assert "(skipped)" not in err, err
            assert outputs(data) == before, (spec.name, verb)

    with Server(weir_bin, SPEC, data) as srv:
        assert srv.json("GET", "/v1/features/transactions/c0000042") == features
        srv.stop()
    assert srv.returncode == 0
    assert outputs(data) == before
    assert not list((data / "outputs").glob("*.cut")) and not list((data / "outputs").glob("*.old"))


def test_a_bad_event_appended_by_hand_is_skipped_only_when_asked(weir_bin, run_weir, tmp_path):
    """`weir log append` checks no schema: an event it appended that the
    spec cannot read stops run, ingest and verify, naming it and the way
    out; with --skip-bad-events each leaves it out, naming it (as backfill
    always does)."""
    data = tmp_path / "data"
    events = gen(weir_bin, 2000).splitlines()
    bad = b'{"card_id":"c0000001","amount":"12.50","merchant":"m1","country":"US","ts":1767225600000}'
    lines = b"\n".join(events[:1000] + [bad] + events[1000:]) + b"\n"
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", "8", "--key",
              "card_id"], input=lines, check=True)
    for verb in (["run", "--listen", "127.0.0.1:0"], ["ingest"]):
        rc, _, err = run_weir(verb[:1] + [SPEC, "--data", data] + verb[1:], timeout=60)
        assert rc != 0, (verb, err)
        assert "field 'amount'" in err and "--skip-bad-events" in err, err
    run_weir(["ingest", SPEC, "--data", data, "--skip-bad-events"], check=True)
    with Server(weir_bin, SPEC, data, "--skip-bad-events") as srv:
        assert srv.stop() == 0
        err = srv.stderr()
    assert err.count("(skipped: --skip-bad-events)") == 1, err
    rc, out, err = run_weir(["verify", SPEC, "--data", data])
    assert rc == 2 and "--skip-bad-events" in err, out + err
    rc, out, err = run_weir(["verify", SPEC, "--data", data, "--skip-bad-events"])
    assert rc == 0 and "2000 equal, 0 different" in out, out + err


def test_writers_say_what_their_open_cut(weir_bin, run_weir, tmp_path):
    """ingest and run cut a torn tail at open, as log append does, and say
    so (they did it in silence)."""
    data = tmp_path / "data"
    run_weir(["ingest", SPEC, "--data", data], input=gen(weir_bin, 2000), check=True)
    for verb in (["ingest"], ["run", "--listen", "127.0.0.1:0"]):
        seg = sorted((data / "log" / "transactions" / "0").glob("*.seg"))[-1]
        with open(seg, "ab") as f:
            f.write(b"\x07" * 150)
        if verb[0] == "ingest":
            rc, _, err = run_weir(["ingest", SPEC, "--data", data], input=b"")
        else:
            with Server(weir_bin, SPEC, data) as srv:
                rc = srv.stop()
                err = srv.stderr()
        assert rc == 0, err
        assert "recovery: %s: truncated a torn tail of 150 bytes" % seg in err, (verb, err)


def test_no_fitting_checkpoint_after_retention_is_refused(weir_bin, run_weir, tmp_path):
    """When retention has deleted the log's start and no checkpoint fits
    the spec nor can move to its plan (here the lateness changed, which
    needs a replay: test_plan_change_start.py has the changes that move),
    the state of the deleted events is nowhere: the start is refused,
    naming the way out, instead of serving features rebuilt without them
    (a crash harness found the server doing that, and verify checking
    nothing). The spec the checkpoints were written for starts;
    --allow-partial-state starts anyway."""
    data = tmp_path / "data"
    events = gen(weir_bin, 6000).splitlines(True)
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", "8", "--key",
              "card_id", "--segment-bytes", "4096"], input=b"".join(events[:4000]), check=True)
    with Server(weir_bin, SPEC, data) as srv:
        assert srv.stop() == 0  # a checkpoint of the fraud plan
    run_weir(["log", "append", data, "--topic", "transactions", "--key", "card_id",
              "--segment-bytes", "4096", "--retention-bytes", "8192"], input=b"".join(events[4000:]),
             check=True)
    other = spec_variant(tmp_path, "other.yaml", lateness=("lateness: 30s", "lateness: 45s"))
    rc, _, err = run_weir(["run", other, "--data", data, "--listen", "127.0.0.1:0"], timeout=60)
    assert rc != 0 and "retention deleted the start of the log" in err, err
    assert "its state cannot move to this spec's plan" in err and "lateness" in err, err
    assert "--allow-partial-state" in err, err
    with Server(weir_bin, other, data, "--allow-partial-state") as srv:
        assert srv.stop() == 0
    with Server(weir_bin, SPEC, data) as srv:
        assert srv.stop() == 0
        assert "replaying from offsets" in srv.stderr()


def test_a_changed_partition_count_names_the_spec_and_the_way_out(weir_bin, run_weir, tmp_path):
    """`topic 'transactions' has 8 partitions, not 16` named neither the spec
    nor what to do; the SIGHUP reload's message did."""
    data = tmp_path / "data"
    run_weir(["ingest", SPEC, "--data", data], input=gen(weir_bin, 100), check=True)
    wide = spec_variant(tmp_path, "wide.yaml", p=("partitions: 8", "partitions: 16"))
    for verb in (["ingest", wide, "--data", data], ["run", wide, "--data", data, "--listen", "127.0.0.1:0"]):
        rc, out, err = run_weir(verb, input=b"")
        assert rc != 0, err
        assert ("%s: topic 'transactions' has 8 partitions, not 16 in %s: a log's partitions cannot "
                "change" % (wide, data)) in err, err
        assert "set partitions back, or replay into a new data directory" in err
