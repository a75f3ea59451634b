"""A live reload that adds an aggregate beside one that exists over the same
argument and window (max(amount) over 24h beside sum(amount) over 24h):
the window the two share is rebuilt from the values it holds
(engine_migrate.h, A GROUP WHOSE AGGREGATES CHANGED). Before, it started
empty: amount_sum_24h, a model input, read 0 for a day after an unrelated
feature was added, and the decisions made meanwhile differed from every
replay. Now both features equal what a replay of the whole log under the
new spec computes (backfill), the sum up to its last bits."""
import math
import shutil

from httputil import FRAUD_SPEC, SOURCE, SPECS, Server, backfill, decisions, fraud_events


def test_a_new_aggregate_beside_an_old_one_keeps_its_window(weir_bin, run_weir, data_dir, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    spec = d / "fraud.yaml"
    shutil.copy(FRAUD_SPEC, spec)
    shutil.copy(SPECS / "fraud.linear.json", d / "fraud.linear.json")
    evs = fraud_events(900, seed=11, cards=15)
    cards = sorted({e["card_id"] for e in evs})
    with Server(weir_bin, spec, data_dir) as srv:
        srv.post_events(evs[:600])
        before = {c: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, c))[1]["features"] for c in cards}
        text = spec.read_text()
        spec.write_text(text.replace("  amount_sum_24h: sum(amount) over 24h\n",
                                     "  amount_sum_24h: sum(amount) over 24h\n"
                                     "  amount_max_24h: max(amount) over 24h\n", 1))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec"] == "replaced", body
        after = {c: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, c))[1]["features"] for c in cards}
        for c in cards:
            assert math.isclose(after[c]["amount_sum_24h"], before[c]["amount_sum_24h"], rel_tol=1e-12), c
            assert after[c]["amount_max_24h"] is not None, c
        for ev in evs[600:750]:
            assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        # The same for a window of ids (strings): distinct beside approx_distinct.
        spec.write_text(spec.read_text().replace("  merchants_24h:  distinct(merchant) over 24h\n",
                                                 "  merchants_24h:  distinct(merchant) over 24h\n"
                                                 "  merchants_approx_24h: approx_distinct(merchant) over 24h\n", 1))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec"] == "replaced", body
        for ev in evs[750:]:
            assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        assert srv.stop() == 0
        err = srv.stderr()
    assert err.count("window groups 4 kept (1 rebuilt from their values for other aggregates), 0 new, 0 dropped") == 2, err

    # Every decision after the reload, against a replay of the whole log
    # under the new spec.
    rows = backfill(run_weir, spec, data_dir, tmp_path)
    checked = checked_ids = 0
    for part, _, rec in decisions(data_dir):
        f = rec["features"]
        if "amount_max_24h" not in f:
            continue  # decided before the reload
        row = rows[(part, rec["offset"])]
        assert f["amount_max_24h"] == row["amount_max_24h"], (part, rec["offset"])
        assert math.isclose(f["amount_sum_24h"], row["amount_sum_24h"], rel_tol=1e-12), (part, rec["offset"])
        assert f["merchants_24h"] == row["merchants_24h"], (part, rec["offset"])
        if "merchants_approx_24h" in f:
            assert f["merchants_approx_24h"] == row["merchants_approx_24h"], (part, rec["offset"])
            checked_ids += 1
        checked += 1
    assert checked == 300 and checked_ids == 150
