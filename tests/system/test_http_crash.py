"""Exactly-once decisions across crashes: `weir run` killed with SIGKILL
under load, killed while its decisions wait in their per-partition batches,
and a crash between an event's append and its decision's (simulated by
cutting the decision log back by whole batches), restart with every logged
event holding exactly one decision — made with the features backfill
computes for it."""
import json
import os
import threading
import time

from httputil import FRAUD_SPEC, SOURCE, Server, backfill, decisions, event_records, fraud_events, same_value
import logformat


def check_one_decision_per_event(data_dir, after_kill=False):
    """No event has two decisions, and (unless the process was just killed,
    when the last events of a partition may still wait for theirs) every
    logged event has one."""
    logged = event_records(data_dir)
    seen = {}
    for part, key, d in decisions(data_dir):
        pos = (part, d["offset"])
        assert pos not in seen, "two decisions for partition %d offset %d" % pos
        assert pos in logged, "a decision for an event that is not logged: %s" % (pos,)
        assert key == logged[pos].key
        seen[pos] = d
    missing = set(logged) - set(seen)
    if after_kill:
        last = {}
        for part, off in seen:
            last[part] = max(last.get(part, -1), off)
        missing = {(p, o) for p, o in missing if o < last.get(p, -1)}
    assert not missing, "logged events without a decision: %s" % sorted(missing)[:10]
    return logged, seen


def check_decisions_match_backfill(run_weir, data_dir, tmp_path, seen):
    rows = backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path)
    assert set(rows) == set(seen)
    for pos, d in seen.items():
        assert d["late"] == rows[pos]["late"]
        for name, v in d["features"].items():
            assert same_value(v, rows[pos][name]), (pos, name, v, rows[pos][name])


def load(srv, events, stop):
    """Posts events (score and small batches) until stop is set or they run out."""
    conn = srv.connection(timeout=5)
    i = 0
    try:
        while i < len(events) and not stop.is_set():
            if i % 2:
                srv.request("POST", "/v1/score/" + SOURCE, json.dumps(events[i]), conn=conn)
                i += 1
            else:
                srv.request("POST", "/v1/events/" + SOURCE, json.dumps(events[i:i + 5]), conn=conn)
                i += 5
    except (OSError, ConnectionError):
        pass  # the server was killed under us
    finally:
        conn.close()


def test_kill_9_under_load_then_restart(weir_bin, run_weir, data_dir, tmp_path):
    total = 0
    for round_ in range(3):
        with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
            # Ready: what the previous kill left undecided is decided now.
            check_one_decision_per_event(data_dir)
            # Each round continues the previous one's cards and times.
            evs = fraud_events(20_000, seed=100 + round_, start=1_700_000_000_000 + round_ * 10**9)
            stop = threading.Event()
            lanes = [threading.Thread(target=load, args=(srv, evs[i::4], stop)) for i in range(4)]
            for t in lanes:
                t.start()
            time.sleep(0.4 + 0.3 * round_)
            srv.kill()
            stop.set()
            for t in lanes:
                t.join()
        logged, seen = check_one_decision_per_event(data_dir, after_kill=True)
        assert len(logged) > total, "no progress in round %d" % round_
        total = len(logged)
    # A clean start after the last kill decides what the kill left undecided.
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.stop() == 0
    logged, seen = check_one_decision_per_event(data_dir)
    check_decisions_match_backfill(run_weir, data_dir, tmp_path, seen)


def test_kill_9_takes_the_buffered_decisions(weir_bin, run_weir, data_dir, tmp_path):
    """Decisions wait in memory until their batch is written; a crash that
    takes them loses nothing: the next start decides exactly those events."""
    evs = fraud_events(300, seed=41)
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--decision-flush", 60000) as srv:
        for i in range(0, 200, 4):
            assert srv.json("POST", "/v1/events/" + SOURCE, evs[i:i + 4])[1]["accepted"] == 4
        served = {}
        for ev in evs[200:]:
            status, body = srv.json("POST", "/v1/score/" + SOURCE, ev)
            assert status == 200
            served[(body["partition"], body["offset"])] = body
        srv.kill()
    assert len(event_records(data_dir)) == 300
    assert len(decisions(data_dir)) == 0  # all of them were still buffered
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.has_line("decided 300 logged events"), srv.lines
        assert srv.stop() == 0
    logged, seen = check_one_decision_per_event(data_dir)
    assert len(logged) == len(seen) == 300
    check_decisions_match_backfill(run_weir, data_dir, tmp_path, seen)
    # The re-made decisions are the ones the clients were answered with.
    for pos, body in served.items():
        d = seen[pos]
        assert (d["decision"], d["rule"], d["score"], d["model"], d["late"]) == \
            (body["decision"], body["rule"], body["score"], body["model"], body["late"])


def test_crash_between_event_and_decision_appends(weir_bin, run_weir, data_dir, tmp_path):
    evs = fraud_events(400, seed=33)
    # --decision-flush 0: each request's decisions are one batch, so cutting
    # whole batches is a crash right after some requests' event appends.
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--decision-flush", 0) as srv:
        for i in range(0, len(evs), 4):
            status, body = srv.json("POST", "/v1/events/" + SOURCE, evs[i:i + 4])
            assert status == 200 and body["accepted"] == 4
        assert srv.stop() == 0
    # Cut each partition's decision log back by its last three batches: the
    # state a crash right after the event appends would have left.
    dropped = 0
    base = os.path.join(str(data_dir), "decisions", SOURCE)
    for part in sorted(os.listdir(base)):
        d = os.path.join(base, part)
        if not os.path.isdir(d):
            continue
        seg = sorted(f for f in os.listdir(d) if f.endswith(".seg"))[-1]
        path = os.path.join(d, seg)
        batches = logformat.read_batches(path)
        assert len(batches) > 3
        dropped += sum(b.count for b in batches[-3:])
        os.truncate(path, batches[-3].start)
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.has_line("decided %d logged events" % dropped), srv.lines
        assert srv.stop() == 0
    logged, seen = check_one_decision_per_event(data_dir)
    assert len(logged) == len(seen) == 400
    check_decisions_match_backfill(run_weir, data_dir, tmp_path, seen)
    # A second restart decides nothing more.
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.has_line("decided 0 logged events"), srv.lines
        assert srv.stop() == 0
    assert len(decisions(data_dir)) == 400
