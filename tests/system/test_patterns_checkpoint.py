"""Pattern state survives a restart from a checkpoint (issue 7, item 3):
carts put before `weir run` stops (and writes its checkpoint at shutdown)
are still there after the next `weir run` recovers from that checkpoint —
which replays only the log after it — so the abandonments are found once
time passes, and they are the very matches `weir backfill` finds by
replaying the whole log. A's cart is a partial match in A's key state by
then (the watermark passed it); D's is still held for time order in the
partition's state: both kinds of pattern state go through the checkpoint.
"""
import json
import time

import httputil
import test_patterns_idle as idle

T, M = idle.T, idle.M


def test_partial_match_is_restored_from_the_checkpoint(weir_bin, run_weir, tmp_path):
    spec = tmp_path / "idle.yaml"
    spec.write_text(idle.SPEC)
    data = tmp_path / "data"
    a, b, c = idle.users()
    d = next("u%03d" % i for i in range(100, 300)
             if idle.part_of("u%03d" % i) == idle.part_of(a))
    out = data / "outputs" / "cart_abandoned.ndjson"

    def post(srv, *events):
        conn = srv.connection()
        for e in events:
            status, body = srv.json("POST", "/v1/events/clicks", json.dumps(e), conn=conn)
            assert status == 200, body

    with httputil.Server(weir_bin, spec, data, "--tick-idle", "50") as srv:
        post(srv, idle.ev(a, "add_to_cart", "i1", T), idle.ev(c, "add_to_cart", "i2", T + 1000),
             idle.ev(d, "add_to_cart", "i4", T + 28_000), idle.ev(c, "view", "x", T + 30_000),
             idle.ev(b, "view", "x", T + M))
        assert srv.stop() == 0
        first = srv.stderr()
    assert "checkpoint" in first and "written at shutdown" in first, first
    assert idle.read_matches(out) == []

    with httputil.Server(weir_bin, spec, data, "--tick-idle", "50") as srv:
        post(srv, idle.ev(c, "purchase", "i2", T + 3 * M), idle.ev(b, "view", "x", T + 11 * M))
        deadline = time.time() + 20
        while len(idle.read_matches(out)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        live = idle.read_matches(out)
        assert srv.stop() == 0
        second = srv.stderr()
    assert "recovery: checkpoint" in second, second
    assert len(live) == 2, live
    got = sorted((m["key"], m["events"], m["time"]) for m in map(json.loads, live))
    assert got == sorted([(a, [0], T + 10 * M), (d, [2], T + 28_000 + 10 * M)])

    replayed = tmp_path / "matches.ndjson"
    run_weir(["backfill", spec, "--data", data, "--out", tmp_path / "rows.csv", "--matches", replayed],
             check=True)
    assert idle.read_matches(replayed) == live
