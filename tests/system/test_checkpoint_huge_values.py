"""A checkpoint restores every state the windows can reach: finite amounts
still add up to infinity (1e308 twice) and then to NaN (infinity minus
infinity when one leaves the window), which the features answer as null.
Before, restore refused such running sums ("engine state: keymap state:
value ... (window)"): one client's event made every later checkpoint
unusable, and every restart a full replay."""
from httputil import SPECS, Server, fraud_events


def test_infinite_sums_restore(weir_bin, tmp_path):
    data = tmp_path / "data"
    others = fraud_events(300)
    t = max(e["ts"] for e in others) + 60_000  # after the others: not late
    huge = [dict(e, card_id="huge", amount=a, ts=t + 60_000 * i)
            for i, (e, a) in enumerate(zip(fraud_events(4), [1e308, 1e308, -1e308, 5.0]))]
    # the last one is a day later: the first three leave the 24 h sum (inf - inf)
    huge[-1]["ts"] = t + 25 * 3_600_000
    with Server(weir_bin, SPECS / "fraud.yaml", data) as srv:
        srv.post_events(others + huge)
        status, before = srv.json("GET", "/v1/features/transactions/huge")
        assert status == 200, before
        assert srv.stop() == 0  # a checkpoint at shutdown
        err = srv.stderr()
    assert "checkpoint 1 written at shutdown" in err, err[-2000:]
    with Server(weir_bin, SPECS / "fraud.yaml", data) as srv:
        status, after = srv.json("GET", "/v1/features/transactions/huge")
        assert srv.stop() == 0
        err = srv.stderr()
    assert "checkpoint 1: replaying from offsets" in err, err[-2000:]
    assert "skipped" not in err, err[-2000:]
    assert before["features"]["amount_avg_7d"] is None  # (inf + 5) / 4
    assert after == before, (before, after)
