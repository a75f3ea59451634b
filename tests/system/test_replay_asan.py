"""A full replay by the sanitizer build (ASan, UBSan with float-cast-overflow,
and the WEIR_CHECKED checks, among them that the hash the replay hands the
engine is the key's): the replay's hot path — the
direct decoder's eight-byte scans, the prefetch stages, the output lines —
over a real fraud log, against the release build's full replay of the same
log: the same features, the same output lines, no sanitizer report."""
import shutil

from ckptutil import copy_data, fraud_spec
from conftest import sanitizer_report
from httputil import SOURCE, Server, fraud_events

CARDS = 300
EVENTS = fraud_events(6000, seed=29, cards=CARDS)
PROBE = sorted({e["card_id"] for e in EVENTS})[::7]


def features(srv):
    return {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in PROBE}


def window_lines(data):
    return sorted((data / "outputs" / "hourly_spend.ndjson").read_text().splitlines())


def full_replay(binary, spec, data, env=None):
    """Starts weir on data without checkpoints (a replay of the whole log),
    reads the probe keys' features, stops it cleanly; (features, stderr)."""
    shutil.rmtree(data / "checkpoints", ignore_errors=True)
    with Server(binary, spec, data, "--tick-idle", 0, env=env, timeout=120) as srv:
        assert srv.has_line("ready: replayed %d events" % len(EVENTS), timeout=120), srv.lines
        got = features(srv)
        assert srv.stop() == 0
        return got, srv.stderr()


def test_full_replay_under_sanitizers(weir_bin, weir_asan_bin, tmp_path):
    spec = fraud_spec(tmp_path, interval="0s")
    data = tmp_path / "data"
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        srv.post_events(EVENTS, chunk=500)
        srv.kill()  # no shutdown checkpoint: each start below replays the whole log

    asan_data = copy_data(data, tmp_path / "asan")
    want, _ = full_replay(weir_bin, spec, data)
    got, err = full_replay(weir_asan_bin, spec, asan_data, env={"ASAN_OPTIONS": "detect_leaks=1"})
    assert not sanitizer_report(err), err[-4000:]
    assert got == want
    lines = window_lines(asan_data)
    assert len(lines) > 1000, "too few windows closed: the test proves little"
    assert lines == window_lines(data)
