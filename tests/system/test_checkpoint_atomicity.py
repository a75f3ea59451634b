"""Checkpoint atomicity and recovery choices (issue 6), on a real `weir run`:

  - a crash injected right after each step of taking a checkpoint (every
    write, fsync, mkdir and rename of the checkpoint store, then the
    unlinks, renames and rmdir of pruning), with WEIR_CKPT_CRASH_AT=N for
    N = 1, 2, ... until a checkpoint completes without reaching N: after
    each crash `weir checkpoint --verify` passes for everything listed, the
    newest checkpoint is the old one before the commit rename and the new
    one from it on, the restart recovers from exactly that one (offsets never
    behind the old checkpoint's), its state equals the oracle's and a clean
    replay's, and the decision log holds one decision per event;
  - a flipped byte in the newest checkpoint (a part file, the manifest):
    recovery says it is skipped and names the file, uses the previous one,
    and the state and decisions are still right; both damaged: the whole
    log is replayed;
  - a SIGKILL while the shutdown checkpoint (SIGTERM) is being written
    leaves the previous checkpoint in force;
  - `guarantee`: after a kill -9 behind a checkpoint, exactly_once leaves
    exactly one decision per event; at_least_once leaves at least one, and
    the events after the checkpoint get a second, identical one; the same
    with decisions still buffered at the kill (none missing either way).

Every server runs with --tick-idle 0, so no tick moves time between the
runs being compared."""
import shutil
import signal
import subprocess
import time

import pytest

import ckptutil
from ckptutil import (check_exactly_one_decision, check_state, checkpoint_dir, copy_data, crash_step,
                      decision_counts, list_checkpoints, recovered_from)
from conftest import sanitizer_report
from httputil import SOURCE, Server, fraud_events

CARDS = 40
KEYS = ["card-%03d" % c for c in range(CARDS)] + ["nobody"]
EVENTS = fraud_events(900, seed=61, cards=CARDS)
E1, E2, E3 = EVENTS[:300], EVENTS[300:600], EVENTS[600:]


def features(srv):
    return {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in KEYS}


def clean_replay_features(weir_bin, spec, data, tmp):
    """GET /v1/features of every key from a server that replayed a copy of
    data with no checkpoint."""
    d = copy_data(data, tmp)
    shutil.rmtree(d / "checkpoints")
    with Server(weir_bin, spec, d, "--tick-idle", 0) as srv:
        looked = features(srv)
        srv.kill()  # no shutdown checkpoint: the copy is thrown away
    return looked


@pytest.fixture(scope="module")
def base(weir_bin, tmp_path_factory):
    """A data directory with E1 and E2 logged and two checkpoints: 1 (after
    E1, taken on request) and 2 (after E2, taken at shutdown)."""
    tmp = tmp_path_factory.mktemp("ckpt-base")
    spec = ckptutil.fraud_spec(tmp, interval="0s")
    data = tmp / "data"
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        srv.post_events(E1)
        status, c1 = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200 and c1["checkpoint"] == 1, c1
        assert sum(c1["offsets"]) == len(E1)
        srv.post_events(E2)
        rc = srv.stop()
        assert rc == 0, (rc, srv.stderr()[-3000:])
    assert ckptutil.checkpoint_ids(data) == [2, 1]
    from conftest import WeirRunner
    rc, listing, err = list_checkpoints(WeirRunner(weir_bin), data)
    assert rc == 0, err
    offsets = {c["id"]: [p["log_offset"] for p in c["parts"]] for c in listing["checkpoints"]}
    assert sum(offsets[2]) == len(E1) + len(E2)
    return {"spec": spec, "data": data, "offsets": offsets, "tmp": tmp}


def test_crash_after_every_checkpoint_step(weir_bin, run_weir, base, tmp_path):
    spec, old = base["spec"], base["offsets"][2]
    steps = []          # (step, kind, path) of each crash
    commit = None       # the step that renamed <3>.tmp to <3>
    for n in range(1, 200):
        data = copy_data(base["data"], tmp_path / ("crash%d" % n))
        srv = Server(weir_bin, spec, data, "--tick-idle", 0, env={"WEIR_CKPT_CRASH_AT": str(n)})
        srv.post_events(E3)
        try:
            status, body = srv.json("POST", "/v1/admin/checkpoint")
        except Exception:  # the connection died with the server
            status, body = None, None
        try:
            srv.proc.wait(2)  # pruning comes after the answer: give it time to crash
        except subprocess.TimeoutExpired:
            pass
        if srv.proc.poll() is None:
            # Step n is past this checkpoint and its pruning: all are covered.
            assert status == 200 and body["checkpoint"] == 3, body
            srv.kill()
            srv.stderr()
            break
        srv.returncode = srv.proc.returncode
        err = srv.stderr()
        assert not sanitizer_report(err), err[-4000:]
        assert srv.returncode in (-9, 137), (srv.returncode, err[-2000:])
        step = crash_step(err)
        assert step and step[0] == n, "no crash line for step %d:\n%s" % (n, err[-2000:])
        steps.append(step)
        if commit is None and step[1] == "rename" and "%020d" % 3 in step[2]:
            commit = n
        # Whatever is listed verifies: the old checkpoints, or the new one whole.
        rc, listing, lerr = list_checkpoints(run_weir, data)
        assert rc == 0, "step %d (%s %s): weir checkpoint --verify: %s" % (step + (lerr,))
        ids = [c["id"] for c in listing["checkpoints"]]
        want = 3 if commit is not None else 2
        assert ids and ids[0] == want and 2 in ids and set(ids) <= {1, 2, 3}, (step, ids)
        newest = listing["checkpoints"][0]
        want_offs = [p["log_offset"] for p in newest["parts"]]
        # The restart recovers from that one, never from something older.
        with Server(weir_bin, spec, data, "--tick-idle", 0) as srv2:
            looked = features(srv2)
            rc2 = srv2.stop()  # its outputs flushed (a shutdown checkpoint 4 too)
            err2 = srv2.stderr()
            assert rc2 == 0, (step, rc2, err2[-3000:])
        assert recovered_from(err2) == (want, want_offs), (step, err2[-2000:])
        assert all(a >= b for a, b in zip(want_offs, old))
        assert not [l for l in ckptutil.recovery_lines(err2) if l[0] == "skipped"], err2
        orc = check_state(data, looked)
        assert orc.events == len(EVENTS)
        assert looked == clean_replay_features(weir_bin, spec, data, tmp_path / ("clean%d" % n))
        check_exactly_one_decision(data)
        shutil.rmtree(data)
    else:
        pytest.fail("a checkpoint took 200 steps or more")
    kinds = [s[1] for s in steps]
    print("\ncheckpoint steps: %s" % ", ".join("%d %s %s" % (s[0], s[1], s[2].rsplit("/", 2)[-2:])
                                               for s in steps))
    # The run crashed after each kind of step the store takes, the commit
    # rename among them, and after pruning's steps too.
    for kind in ("mkdir", "write", "fsync", "rename", "unlink", "rmdir"):
        assert kind in kinds, "no crash after a %s step: %s" % (kind, kinds)
    assert commit is not None and 1 < commit < len(steps)


@pytest.mark.parametrize("what", ["part", "manifest"])
def test_flipped_byte_falls_back_to_previous_checkpoint(weir_bin, run_weir, base, tmp_path, what):
    spec, data = base["spec"], copy_data(base["data"], tmp_path / "data")
    d = checkpoint_dir(data, 2)
    f = d / ("part-00001" if what == "part" else "MANIFEST")
    b = bytearray(f.read_bytes())
    pos = len(b) // 2
    b[pos] ^= 0x01
    f.write_bytes(bytes(b))
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = features(srv)
        assert srv.stop() == 0
        err = srv.stderr()
    lines = ckptutil.recovery_lines(err)
    skipped = [l for l in lines if l[0] == "skipped"]
    assert len(skipped) == 1 and skipped[0][1] == 2, err
    assert str(f) in skipped[0][2] or f.name in skipped[0][2], skipped
    assert recovered_from(err) == (1, base["offsets"][1]), err
    # The longer replay (from checkpoint 1) counted nothing twice, and the
    # events it replayed, already decided, got no second decision.
    check_state(data, looked)
    assert any("replayed %d events" % len(E2) in l for l in srv.lines), srv.lines
    check_exactly_one_decision(data)


def kill_behind_checkpoint(weir_bin, tmp_path, guarantee, flush_ms):
    """E1, a checkpoint, E2, kill -9; then a restart, whose state is checked
    against the oracle, stopped cleanly. Returns (the checkpoint's answer,
    the restart's stderr, the decisions by event before the restart)."""
    spec = ckptutil.fraud_spec(tmp_path, interval="0s", guarantee=guarantee)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data, "--tick-idle", 0, "--decision-flush", flush_ms) as srv:
        srv.post_events(E1)
        status, c1 = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, c1
        srv.post_events(E2)
        srv.kill()
    before, logged = decision_counts(data)
    assert len(logged) == len(E1) + len(E2)
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = features(srv)
        assert srv.stop() == 0
        err = srv.stderr()
    check_state(data, looked)  # keyed state is exactly-once under both
    return c1, err, before


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_guarantee_after_kill_9(weir_bin, tmp_path, guarantee):
    """Decisions are written before each answer (--decision-flush 0), so at
    the kill every event has its decision; the restart recovers from the
    checkpoint taken after E1 and replays E2."""
    data = tmp_path / "data"
    c1, err, before = kill_behind_checkpoint(weir_bin, tmp_path, guarantee, 0)
    assert len(before) == len(E1) + len(E2)
    assert recovered_from(err) == (c1["checkpoint"], c1["offsets"]), err
    if guarantee == "exactly_once":
        check_exactly_one_decision(data)
        return
    by_pos, logged = decision_counts(data)
    missing = set(logged) - set(by_pos)
    assert not missing, "at_least_once lost decisions: %s" % sorted(missing)[:10]
    twice = {pos for pos, ds in by_pos.items() if len(ds) > 1}
    after = {(p, off) for p, off in logged if off >= c1["offsets"][p]}
    # The events after the checkpoint were decided again, the same way.
    assert twice == after and len(after) == len(E2), (len(twice), len(after))
    assert all(len(by_pos[pos]) == 2 for pos in twice)
    for pos in twice:
        a, b = by_pos[pos]
        assert (a["decision"], a["score"], a["features"]) == (b["decision"], b["score"], b["features"])


def test_both_checkpoints_damaged_replays_whole_log(weir_bin, base, tmp_path):
    """Neither checkpoint verifies: both are named as skipped, the whole log
    is replayed, outputs rebuilt, nothing decided twice. The outputs are
    cut to empty by moving them aside (NAME.ndjson.cut) and deleting them
    in the background: none is left after a shutdown, nor one a crash left
    behind; an output the spec no longer has is cut to empty too."""
    spec, data = base["spec"], copy_data(base["data"], tmp_path / "data")
    for cid in (1, 2):
        f = checkpoint_dir(data, cid) / "part-00002"
        b = bytearray(f.read_bytes())
        b[len(b) // 3] ^= 0x80
        f.write_bytes(bytes(b))
    outputs = data / "outputs"
    (outputs / "late.ndjson.cut").write_text("{\"left\":\"by a crash\"}\n")
    (outputs / "dropped_aggregate.ndjson").write_text("{\"from\":\"an older spec\"}\n")
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = features(srv)
        assert srv.stop() == 0
        err = srv.stderr()
    assert sorted(p.name for p in outputs.glob("*.cut")) == [], err
    assert (outputs / "dropped_aggregate.ndjson").read_bytes() == b""
    skipped = sorted((l[1], "part-00002" in l[2]) for l in ckptutil.recovery_lines(err)
                     if l[0] == "skipped")
    assert skipped == [(1, True), (2, True)], err
    assert recovered_from(err) == (0, None), err
    check_state(data, looked)
    check_exactly_one_decision(data)


def test_kill_9_during_shutdown_checkpoint(weir_bin, base, tmp_path):
    """SIGTERM starts the shutdown checkpoint; a SIGKILL while it is being
    written leaves the previous checkpoint in force, and the restart's state
    and decisions are right."""
    spec, data = base["spec"], copy_data(base["data"], tmp_path / "data")
    srv = Server(weir_bin, spec, data, "--tick-idle", 0, env={"WEIR_CKPT_STEP_DELAY_MS": "200"})
    srv.post_events(E3)
    srv.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while not ckptutil.checkpoint_in_progress(data) and time.monotonic() < deadline:
        time.sleep(0.005)
    if not ckptutil.checkpoint_in_progress(data):
        srv.kill()
        raise AssertionError("no shutdown checkpoint seen being written (exit status %s):\n%s"
                             % (srv.returncode, srv.stderr()[-3000:]))
    srv.kill()
    srv.stderr()
    assert ckptutil.checkpoint_ids(data)[0] == 2
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = features(srv)
        assert srv.stop() == 0
        err = srv.stderr()
    assert recovered_from(err) == (2, base["offsets"][2]), err
    orc = check_state(data, looked)
    assert orc.events == len(EVENTS)
    check_exactly_one_decision(data)


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_guarantee_with_buffered_decisions(weir_bin, tmp_path, guarantee):
    """Decisions stay buffered (--decision-flush 60000) when the server is
    killed. exactly_once: the checkpoint wrote E1's before it was taken, the
    kill took E2's, the restart decides E2 from the checkpoint on — one
    each. at_least_once: the checkpoint did not wait for them, so it does not
    cover E1's decisions; recovery may not use it (a checkpoint whose events
    were not all decided is skipped: they would never be) — whichever it
    uses, no event is left without a decision."""
    data = tmp_path / "data"
    c1, err, before = kill_behind_checkpoint(weir_bin, tmp_path, guarantee, 60000)
    assert len(before) == (len(E1) if guarantee == "exactly_once" else 0)
    used = recovered_from(err)
    print("\n%s: recovered from %s; %s" % (guarantee, used, ckptutil.recovery_lines(err)))
    if guarantee == "exactly_once":
        assert used == (c1["checkpoint"], c1["offsets"]), err
        check_exactly_one_decision(data)
    else:
        assert used in ((c1["checkpoint"], c1["offsets"]), (0, None)), err
        by_pos, logged = decision_counts(data)
        missing = set(logged) - set(by_pos)
        assert not missing, "at_least_once lost decisions: %s" % sorted(missing)[:10]
