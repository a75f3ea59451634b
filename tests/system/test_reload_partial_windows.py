"""test_reload_partial_windows.py — a reload that adds an on-close aggregate
starts it empty (engine_migrate.h), so the window open across the reload
holds only the events after it. Its line passed for a whole window (a
per-minute count of 2 where 5 events fell in the minute), with no mark.
Now such a window's line says "partial": true; the windows after it do not;
the mark is state, so a kill -9 and a restart from the checkpoint mark the
same window; and a full replay of the log computes it whole, unmarked."""
import json
import shutil

from httputil import Server

T0 = 1_767_225_600_000  # a minute's start

SPEC_A = """pipeline: partial
partitions: 2
checkpoint_interval: 0s
sources:
  ev:
    key: k
    time: ts
    lateness: 5s
    fields: {k: string, ts: time}
features:
  n_1h: count() over 1h
"""
SPEC_B = SPEC_A + """aggregates:
  per_min:
    window: tumbling 1m
    select: {n: count()}
"""


def post(srv, evs):
    status, body = srv.json("POST", "/v1/events/ev", evs)
    assert status == 200 and body["accepted"] == len(evs), body


def windows(data_dir):
    path = data_dir / "outputs" / "per_min.ndjson"
    lines = [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []
    return sorted(((w["key"], w["start"]), (w["n"], w.get("partial", False))) for w in lines)


def test_the_window_open_across_a_reload_is_marked_partial_through_a_crash(weir_bin, data_dir, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC_A)
    keys = ["k1", "k2", "k3"]
    with Server(weir_bin, spec, data_dir) as srv:
        post(srv, [{"k": k, "ts": T0 + s * 1000} for s in (0, 20, 40) for k in keys])
        spec.write_text(SPEC_B)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec"] == "replaced", body
        post(srv, [{"k": k, "ts": T0 + 50_000} for k in keys])  # the same minute, after it
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        post(srv, [{"k": k, "ts": T0 + 55_000} for k in keys])
        srv.kill()  # the first minute still open: its mark must come back with the state
    with Server(weir_bin, spec, data_dir) as srv:
        # the next minute, then past it: both minutes close
        post(srv, [{"k": k, "ts": T0 + 70_000} for k in keys])
        post(srv, [{"k": k, "ts": T0 + 200_000} for k in keys])
        assert srv.stop() == 0
    got = windows(data_dir)
    assert [w for w in got if w[0][1] == T0] == [((k, T0), (2, True)) for k in keys], got
    assert [w for w in got if w[0][1] == T0 + 60_000] == [((k, T0 + 60_000), (1, False)) for k in keys]

    # A full replay of the log (no checkpoint) computes the first minute
    # whole, from every event: 5 each, unmarked.
    shutil.rmtree(data_dir / "checkpoints")
    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.stop() == 0
    got = windows(data_dir)
    assert [w for w in got if w[0][1] == T0] == [((k, T0), (5, False)) for k in keys], got
    assert not any(p for _, (_, p) in got), got


def test_a_window_that_starts_after_the_reload_is_whole(weir_bin, data_dir, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC_A)
    with Server(weir_bin, spec, data_dir) as srv:
        post(srv, [{"k": "k1", "ts": T0 + 10_000}])
        spec.write_text(SPEC_B)
        assert srv.json("POST", "/v1/admin/reload")[0] == 200
        # nothing of the first minute after the reload; the second minute whole
        post(srv, [{"k": "k1", "ts": T0 + 61_000}, {"k": "k1", "ts": T0 + 62_000},
                   {"k": "k1", "ts": T0 + 300_000}])
        assert srv.stop() == 0
    got = windows(data_dir)
    assert got == [(("k1", T0 + 60_000), (2, False))], got


def test_partial_is_not_a_select_name(run_weir, data_dir, tmp_path):
    """A select named partial would repeat the mark's member in the line
    ({"partial":true,...,"partial":3}: JSON readers differ on which counts)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC_B.replace("{n: count()}", "{n: count(), partial: count()}"))
    rc, _, err = run_weir(["ingest", spec, "--data", data_dir], input="")
    assert rc != 0 and "select 'partial' is written by weir itself" in err, err
