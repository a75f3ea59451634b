"""Retention on a server's data directory (RETENTION ON A SERVER'S DATA
DIRECTORY in src/cli/cmd_log.c): `weir log append --retention-bytes` on the
data directory of a stopped `weir run` deletes the segments its recovery no
longer needs, and keeps every one holding an event after its oldest usable
checkpoint or not yet decided. The server then recovers from its checkpoint
with nothing missing: every card's features equal those of a copy that had
no retention. Before, the same command deleted the events after the
checkpoint and the restart rebuilt state from what was left."""
import json
import shutil
import subprocess

import httputil

CARDS = 30


def ndjson(events):
    return "".join(json.dumps(e) + "\n" for e in events)


def features_of(srv):
    out = {}
    for c in range(CARDS):
        status, body = srv.json("GET", "/v1/features/%s/card-%03d" % (httputil.SOURCE, c))
        assert status == 200, body
        out[c] = body["features"]
    return out


def test_retention_keeps_what_recovery_needs(weir_bin, run_weir, tmp_path):
    spec = httputil.FRAUD_SPEC
    data = tmp_path / "data"
    events = httputil.fraud_events(1200, seed=5, cards=CARDS)
    old, served, after, more = events[:600], events[600:900], events[900:1100], events[1100:]

    # Many small segments of older events, appended before the server ran.
    run_weir(["log", "append", data, "--topic", httputil.SOURCE, "--partitions", 4, "--key", "card_id",
              "--segment-bytes", 2048, "--batch", 8], input=ndjson(old), check=True)
    srv = httputil.Server(weir_bin, spec, data)
    try:
        srv.post_events(served)
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        srv.post_events(after)  # after the checkpoint: replayed at the next start
    finally:
        srv.kill()
    control = tmp_path / "control"
    shutil.copytree(data, control)

    rc, out, err = run_weir(["log", "append", data, "--topic", httputil.SOURCE, "--key", "card_id",
                             "--segment-bytes", 2048, "--retention-bytes", 1], input=ndjson(more))
    assert rc == 0, err
    assert err.count("retention keeps offsets from") == 4, err
    run_weir(["log", "append", control, "--topic", httputil.SOURCE, "--key", "card_id"],
             input=ndjson(more), check=True)

    # Retention did delete: every partition now starts later than 0 ...
    stat = httputil.log_records(data)
    assert all(recs[0].offset > 0 for recs in stat.values()), "retention deleted nothing"

    with httputil.Server(weir_bin, spec, data) as srv:
        got = features_of(srv)
        assert srv.stop() == 0
        err = srv.stderr()
    assert "retention deleted" not in err, err
    assert "recovery: checkpoint" in err, err
    with httputil.Server(weir_bin, spec, control) as srv2:
        want = features_of(srv2)
    # ... and nothing the recovery needed: the same state as without it.
    assert got == want
