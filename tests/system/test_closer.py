"""test_closer.py — `weir run` writes the on-close windows a watermark step
makes due from its closer thread, not inside the request that made the
step (src/serve/runtime.c, CLOSER): the windows still reach
DATA/outputs/hourly_spend.ndjson while the server runs and no further
request comes, each exactly once, with the values of its events, and
nothing is written twice by shutdown."""
import json
import time

import httputil

HOUR = 3_600_000


def read_windows(path):
    """The complete lines of an output file being written."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the last is partial, or empty
    return [json.loads(l) for l in lines if l.strip()]


def test_due_windows_are_written_while_the_server_runs(weir_bin, tmp_path):
    data = tmp_path / "data"
    h0 = (httputil.T0 // HOUR + 1) * HOUR
    cards = 300
    events = []
    for c in range(cards):
        for k in range(1 + c % 3):
            events.append({"card_id": "card-%04d" % c, "amount": round(1.5 + c + k * 0.25, 2),
                           "merchant": "m%d" % k, "country": "FR",
                           "ts": h0 + (c * 7 + k * 60) * 1000})
    events.sort(key=lambda e: e["ts"])  # in time order: none late
    want = {}
    for ev in events:
        n, total = want.get(ev["card_id"], (0, 0.0))
        want[ev["card_id"]] = (n + 1, total + ev["amount"])
    out = data / "outputs" / "hourly_spend.ndjson"
    with httputil.Server(weir_bin, httputil.FRAUD_SPEC, data) as srv:
        srv.post_events(events)
        # One event three hours on: its partition's watermark passes hour
        # 0's end; the idle partitions' ticks (--tick-idle, 1 s) follow.
        srv.post_events([{"card_id": "card-late", "amount": 1.0, "merchant": "m0",
                          "country": "FR", "ts": h0 + 3 * HOUR}])
        deadline = time.monotonic() + 30
        got = []
        while time.monotonic() < deadline:
            got = [w for w in read_windows(out) if w["start"] == h0]
            if len(got) >= cards:
                break
            time.sleep(0.1)
        assert len(got) == cards, "only %d of %d hour-0 windows written while running" % (len(got), cards)
        srv.stop()
    final = [w for w in read_windows(out) if w["start"] == h0]
    assert len(final) == cards, "shutdown wrote some windows again"
    for w in final:
        n, total = want[w["key"]]
        assert w["end"] == h0 + HOUR
        assert w["n"] == n
        assert abs(w["total"] - total) < 1e-9
    assert sorted(w["key"] for w in final) == sorted(want)
