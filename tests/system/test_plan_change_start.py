"""A start under a spec whose feature plan changed since the checkpoints
(runtime.c, PLAN CHANGED SINCE THE CHECKPOINT): the newest checkpoint's
state moves to the new plan as a live reload moves it — when retention
deleted the log's start (such a start used to be refused), or when asked
with --migrate-state — and otherwise the whole log is replayed, as before.

The oracle for a moved start is the same directory started with the old
spec and reloaded live to the new one: every feature the change left alone
is equal, key for key."""
import shutil

from httputil import Server
from test_datadir_guards import SPEC, gen, spec_variant

KEPT = ("amount_sum_24h", "amount_avg_7d", "merchants_24h", "amount_ratio", "new_country",
        "secs_since", "small_txns_1h")


def served_dir(weir_bin, run_weir, tmp_path, retention):
    """A directory with a checkpoint of the fraud plan after 4,000 events,
    then 2,000 more in the log only (with retention: the log's start gone)."""
    data = tmp_path / "data"
    events = gen(weir_bin, 6000).splitlines(True)
    seg = ["--segment-bytes", "4096"] if retention else []
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", "8", "--key",
              "card_id"] + seg, input=b"".join(events[:4000]), check=True)
    with Server(weir_bin, SPEC, data) as srv:
        assert srv.stop() == 0  # a checkpoint of the fraud plan, at offsets of 4,000 events
    keep = ["--retention-bytes", "8192"] if retention else []
    run_weir(["log", "append", data, "--topic", "transactions", "--key", "card_id"] + seg + keep,
             input=b"".join(events[4000:]), check=True)
    keys = sorted({line.split(b'"card_id":"')[1].split(b'"')[0].decode() for line in events})
    return data, keys


def features(srv, keys):
    out = {}
    for k in keys:
        status, body = srv.json("GET", "/v1/features/transactions/" + k)
        assert status == 200 and body["found"], (k, body)
        out[k] = body["features"]
    return out


def start_read_stop(weir_bin, spec, data, keys, *args):
    """(features of keys, stderr) of one start of weir run."""
    with Server(weir_bin, spec, data, *args) as srv:
        got = features(srv, keys)
        assert srv.stop() == 0
        return got, srv.stderr()


def other_spec(tmp_path):
    return spec_variant(tmp_path, "other.yaml",
                        window=("txn_count_1h:   count() over 1h", "txn_count_1h:   count() over 30d"))


def test_after_retention_the_state_moves_as_a_live_reload_moves_it(weir_bin, run_weir, tmp_path):
    data, keys = served_dir(weir_bin, run_weir, tmp_path, retention=True)
    oracle = tmp_path / "oracle"
    shutil.copytree(data, oracle)
    other = other_spec(tmp_path)

    moved, err = start_read_stop(weir_bin, other, data, keys)
    assert "was written for another plan: its state moved to this spec's" in err, err
    assert "window groups 4 kept (0 rebuilt from their values for other aggregates), 1 new, 1 dropped" in err, err
    assert "of this spec's plan written" in err, err
    assert "retention deleted the start of the log" not in err, err

    # The oracle: the old spec, then the new one reloaded live.
    live = tmp_path / "live.yaml"
    shutil.copy(spec_variant(tmp_path, "old.yaml"), live)
    with Server(weir_bin, live, oracle) as srv:
        shutil.copy(other, live)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec"] == "replaced", body
        reloaded = features(srv, keys)
        assert srv.stop() == 0
    for k in keys:
        assert {f: moved[k][f] for f in KEPT} == {f: reloaded[k][f] for f in KEPT}, k
    # The changed window starts empty at the checkpoint: the moved start
    # counted the 2,000 events after it, the live reload none.
    assert sum(v["txn_count_1h"] for v in moved.values()) > 0

    # The next start finds the moved state's own checkpoint.
    again, err = start_read_stop(weir_bin, other, data, keys)
    assert again == moved
    assert "another plan" not in err and "replaying from offsets" in err, err


def test_with_the_whole_log_it_is_replayed_unless_asked(weir_bin, run_weir, tmp_path):
    data, keys = served_dir(weir_bin, run_weir, tmp_path, retention=False)
    asked = tmp_path / "asked"
    shutil.copytree(data, asked)
    other = other_spec(tmp_path)
    replayed, err = start_read_stop(weir_bin, other, data, keys)
    assert "its state could move to it: --migrate-state" in err, err
    assert "replaying the whole log" in err and "state moved" not in err, err
    moved, err = start_read_stop(weir_bin, other, asked, keys, "--migrate-state")
    assert "its state moved to this spec's" in err, err
    for k in keys:
        assert {f: moved[k][f] for f in KEPT} == {f: replayed[k][f] for f in KEPT}, k
    # The full replay's 30-day count covers every event; the moved one only
    # those after the checkpoint.
    assert sum(v["txn_count_1h"] for v in replayed.values()) > sum(v["txn_count_1h"] for v in moved.values())



def test_a_spec_switched_back_and_forth_across_a_crash_keeps_the_outputs(weir_bin, run_weir, tmp_path):
    """A; then B moved (its checkpoint written before ready), kill -9; then A
    again, which restores A's older checkpoint and rewrites the outputs
    after it; then B again. B's checkpoint from before the crash recorded
    output ends the rewrite replaced; restored, it cut the files there, and
    lines were doubled and lost (a reviewer's repro). Now the restore of an
    older checkpoint deletes the newer ones first. Events arrive between
    the starts, as they would."""
    data = tmp_path / "data"
    events = gen(weir_bin, 10000).splitlines(True)
    keys = sorted({line.split(b'"card_id":"')[1].split(b'"')[0].decode() for line in events})

    def append(part):
        run_weir(["log", "append", data, "--topic", "transactions", "--partitions", "8", "--key",
                  "card_id"], input=b"".join(part), check=True)

    append(events[:4000])
    start_read_stop(weir_bin, SPEC, data, keys[:1], "--tick-idle", 0)
    other = other_spec(tmp_path)
    append(events[4000:6000])
    with Server(weir_bin, other, data, "--migrate-state", "--tick-idle", 0) as srv:
        srv.kill()
    append(events[6000:8000])
    _, err = start_read_stop(weir_bin, SPEC, data, keys[:1], "--tick-idle", 0)
    assert "deleted: newer than checkpoint" in err, err
    append(events[8000:])
    start_read_stop(weir_bin, other, data, keys[:1], "--migrate-state", "--tick-idle", 0)
    # The oracle: the same log replayed whole, in a directory of its own.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copytree(data / "log", fresh / "log")
    start_read_stop(weir_bin, other, fresh, keys[:1], "--tick-idle", 0)
    for name in ("hourly_spend.ndjson", "late.ndjson"):
        got = sorted((data / "outputs" / name).read_text().splitlines())
        want = sorted((fresh / "outputs" / name).read_text().splitlines())
        assert got == want, (name, len(got), len(want))


def test_a_spec_over_a_checkpoints_limit_is_not_carried(weir_bin, run_weir, tmp_path):
    """A spec over the 1 MiB a checkpoint's meta value may hold (the loader
    takes 16 MiB) made every checkpoint fail once checkpoints carried their
    spec (a reviewer's find): it is left out, saying what that costs."""
    data = tmp_path / "data"
    big = spec_variant(tmp_path, "big.yaml")
    big.write_text(big.read_text() + ("# " + "x" * 1000 + "\n") * 1100)
    run_weir(["log", "append", data, "--topic", "transactions", "--partitions", "8", "--key",
              "card_id"], input=gen(weir_bin, 500), check=True)
    with Server(weir_bin, big, data) as srv:
        assert srv.stop() == 0
        err = srv.stderr()
    assert "over the 1048576 a checkpoint carries" in err and "written at shutdown" in err, err
