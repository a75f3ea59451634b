"""`weir bench recovery` (bench/recovery_bench.c) runs end to end at a small
scale and reports what it claims to measure: each of issue 6's figures, the
targets, and beside (a) and (b) their floors from the same run — the
checkpoint's files read from the device, and the same log read back and
counted per key.

No timing is asserted (the machine is shared): only that the figures are
there and that each counts what it says. The floor reads the log weir
replays, so it must count exactly the events weir says it replayed, and no
more keys than the benchmark spread them over.
"""
import json
import subprocess

EVENTS, KEYS = 20_000, 2_000


def test_recovery_bench_json(weir_bin, tmp_path):
    p = subprocess.run([weir_bin, "bench", "recovery", "--json", "--events", str(EVENTS),
                        "--keys", str(KEYS), "--runs", "1", "--rounds", "1", "--rate", "200",
                        "--conns", "2", "--dir", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["benchmark"] == "recovery"
    assert doc["events"] == EVENTS and doc["full_replay_events"] == EVENTS
    assert doc["full_replay_events_per_s"] > 0 and doc["ready_from_checkpoint_s"] > 0
    # weir's own clock starts later (after exec and the logs' open)
    assert 0 < doc["ready_from_checkpoint_own_s"] <= doc["ready_from_checkpoint_s"]
    assert 0 < doc["full_replay_own_s"] <= doc["full_replay_ready_s"]
    floors = doc["floors"]
    assert floors["replay_events"] == EVENTS, floors
    assert 0 < floors["replay_keys"] <= KEYS, floors
    assert floors["replay_events_per_s"] > 0 and floors["ready_s"] > 0
    # the ratios are the figures over the floors, as printed
    assert abs(floors["replay_ratio"] - doc["full_replay_events_per_s"]
               / floors["replay_events_per_s"]) < 1e-3 * max(1, floors["replay_ratio"])
    assert abs(floors["ready_ratio"] - doc["ready_from_checkpoint_s"] / floors["ready_s"]) \
        < 0.01 * max(1, floors["ready_ratio"])
    for side in ("periodic", "admin"):
        d = doc[side]
        assert d["p99_without_checkpoint_ms"] > 0 and d["p99_during_checkpoint_ms"] > 0, d
        assert d["checkpoint_bytes"] > 0
    assert set(doc["met"]) == {"ready", "replay", "p99_periodic", "p99_admin"}
