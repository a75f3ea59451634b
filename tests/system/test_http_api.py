"""`weir run`: every endpoint of the HTTP API over real HTTP, online/offline
parity (the features /v1/score returns are the `weir backfill` rows of the
same events, value by value), and the decision log (one decision per logged
event, with the served features)."""
import concurrent.futures
import json
import math
import os
import shutil
import signal
import time

import pytest

from httputil import (FRAUD_SPEC, SOURCE, SPECS, Server, backfill, decisions, event_records, fraud_events,
                      metric, same_value)

FEATURES = ["txn_count_1h", "amount_sum_24h", "amount_avg_7d", "merchants_24h", "amount_ratio", "new_country",
            "secs_since"]
LINEAR = json.loads((SPECS / "fraud.linear.json").read_text())


def linear_score(amount, f):
    """The oracle for the linear model: logistic(intercept + sum w * x),
    a null input adding nothing."""
    x = dict(f, amount=amount)
    z = LINEAR["intercept"]
    for name, w in LINEAR["weights"].items():
        v = x[name]
        if v is not None:
            z += w * float(v)
    return 1 / (1 + math.exp(-z))


def expected_decision(score, amount, new_country):
    if score >= 0.9:
        return "block", 0, "high fraud risk"
    if score >= 0.5 or (amount > 5000 and new_country is True):
        return "review", 1, "elevated risk"
    return "allow", 2, None


@pytest.fixture
def spec_copy(tmp_path):
    """The fraud spec and its model in a folder of the test's own (reload
    tests rewrite the model file)."""
    d = tmp_path / "spec"
    d.mkdir()
    shutil.copy(FRAUD_SPEC, d / "fraud.yaml")
    shutil.copy(SPECS / "fraud.linear.json", d / "fraud.linear.json")
    return d / "fraud.yaml"


def test_score_response_and_parity_with_backfill(weir_bin, run_weir, data_dir, tmp_path):
    events = fraud_events(600, seed=7)
    served = {}
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        # Four client threads on keep-alive connections, at once: the server
        # interleaves partitions; parity is per logged offset.
        def post(chunk):
            conn = srv.connection()
            out = []
            for ev in chunk:
                status, body = srv.json("POST", "/v1/score/" + SOURCE, ev, conn=conn)
                assert status == 200, body
                out.append((ev, body))
            conn.close()
            return out

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for part in pool.map(post, [events[i::4] for i in range(4)]):
                for ev, body in part:
                    served[(body["partition"], body["offset"])] = (ev, body)
        assert srv.stop() == 0
    assert len(served) == len(events)

    rows = backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path)
    assert set(rows) == set(served)
    for pos, (ev, body) in served.items():
        row = rows[pos]
        assert set(body) >= {"decision", "score", "reason", "features", "contributions", "offset", "partition",
                             "model", "late", "latency_us", "key"}
        assert body["key"] == ev["card_id"] == row["key"]
        assert body["late"] == row["late"]
        assert list(body["features"]) == FEATURES
        for name in FEATURES:
            assert same_value(body["features"][name], row[name]), (pos, name, body["features"][name], row[name])
        # Score and rule from an independent computation of the model.
        score = linear_score(ev["amount"], body["features"])
        assert body["score"] == pytest.approx(score, rel=1e-12, abs=1e-15)
        decision, rule, reason = expected_decision(body["score"], ev["amount"], body["features"]["new_country"])
        assert (body["decision"], body["rule"], body["reason"]) == (decision, rule, reason)
        assert body["model"] == 1
        assert isinstance(body["latency_us"], int) and body["latency_us"] >= 0
        # Contributions: the top three inputs by |weight * x|.
        assert 1 <= len(body["contributions"]) <= 3
        mags = [abs(c["value"]) for c in body["contributions"]]
        assert mags == sorted(mags, reverse=True)
    assert any(b["decision"] == "block" for _, b in served.values())
    assert any(b["decision"] == "allow" for _, b in served.values())

    # The decision log: exactly one decision per logged event, same features.
    logged = event_records(data_dir)
    decided = {}
    for part, key, d in decisions(data_dir):
        pos = (part, d["offset"])
        assert pos not in decided, "two decisions for %s" % (pos,)
        decided[pos] = (key, d)
    assert set(decided) == set(logged) == set(served)
    for pos, (key, d) in decided.items():
        ev, body = served[pos]
        assert key == ev["card_id"].encode() == logged[pos].key
        assert json.loads(logged[pos].value) == ev
        assert (d["decision"], d["rule"], d["score"], d["model"], d["late"]) == \
            (body["decision"], body["rule"], body["score"], body["model"], body["late"])
        assert d["features"] == body["features"]


def test_events_object_array_ndjson(weir_bin, run_weir, data_dir, tmp_path):
    events = fraud_events(300, seed=11)
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        status, body = srv.json("POST", "/v1/events/" + SOURCE, events[0])
        assert status == 200 and body["accepted"] == 1 and body["rejected"] == []
        # An array, with spacing and nested unknown fields kept as sent.
        arr = events[1:100]
        arr[3] = dict(arr[3], extra={"a": [1, 2, {"b": "]"}]})
        text = "[\n  " + " ,\n  ".join(json.dumps(e) for e in arr) + "\n]"
        status, body = srv.json("POST", "/v1/events/" + SOURCE, text)
        assert status == 200 and body["accepted"] == 99, body
        ndjson = "\r\n".join(json.dumps(e) for e in events[100:]) + "\n\n"
        status, body = srv.json("POST", "/v1/events/" + SOURCE, ndjson,
                                headers={"Content-Type": "application/x-ndjson"})
        assert status == 200 and body["accepted"] == 200, body
        # the media type decides, not a parameter that mentions NDJSON
        one = dict(events[7], card_id="param-ct")
        status, body = srv.json("POST", "/v1/events/" + SOURCE, json.dumps([one]),
                                headers={"Content-Type": "application/json; note=ndjson"})
        assert status == 200 and body["accepted"] == 1, body
        # NDJSON recognized without a content type too.
        status, body = srv.json("POST", "/v1/events/" + SOURCE, json.dumps(events[5]) + "\n" + json.dumps(events[6]))
        assert status == 200 and body["accepted"] == 2
        m = srv.metrics()
        assert metric(m, "weir_events_accepted_total", source=SOURCE) == 303
        assert sum(v for (n, l), v in m.items() if n == "weir_decisions_total") == 303
        assert srv.stop() == 0
    logged = event_records(data_dir)
    assert len(logged) == 303
    texts = sorted(r.value for r in logged.values())
    # Each event is logged as the exact bytes of its element or line.
    assert json.dumps(arr[3]).encode() in texts
    key = lambda e: json.dumps(e, sort_keys=True)
    assert sorted(map(key, (json.loads(t) for t in texts))) == \
        sorted(map(key, [events[0]] + arr + events[100:] + [one] + events[5:7]))
    assert len(decisions(data_dir)) == 303
    rows = backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path)
    assert len(rows) == 303


def test_features_endpoint(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        evs = [{"card_id": "c/1 é", "amount": 10.0, "merchant": "a", "country": "US", "ts": 1_700_000_000_000},
               {"card_id": "c/1 é", "amount": 30.5, "merchant": "b", "country": "FR", "ts": 1_700_000_060_000}]
        for ev in evs:
            status, body = srv.json("POST", "/v1/score/" + SOURCE, ev)
            assert status == 200
        status, body = srv.json("GET", "/v1/features/%s/c%%2F1%%20%%C3%%A9" % SOURCE)
        assert status == 200, body
        assert body["key"] == "c/1 é" and body["found"] is True
        f = body["features"]
        assert f["txn_count_1h"] == 2 and f["amount_sum_24h"] == 40.5 and f["merchants_24h"] == 2
        assert f["amount_avg_7d"] == 20.25
        # No event: features that read the event's fields are null.
        assert f["amount_ratio"] is None and f["secs_since"] is None
        status, body = srv.json("GET", "/v1/features/%s/nobody" % SOURCE)
        assert status == 200 and body["found"] is False and body["features"]["txn_count_1h"] == 0
        status, body = srv.json("GET", "/v1/features/other/x")
        assert status == 404 and body["error"]["code"] == "unknown_source"


def test_health_ready_metrics_dashboard(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.json("GET", "/healthz") == (200, {"status": "ok"})
        assert srv.json("GET", "/readyz") == (200, {"ready": True})
        status, hdrs, page = srv.request("GET", "/")
        assert status == 200 and hdrs["content-type"].startswith("text/html") and b"/metrics" in page
        for ev in fraud_events(20, seed=3):
            assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        srv.json("POST", "/v1/score/" + SOURCE, "{")
        status, hdrs, text = srv.request("GET", "/metrics")
        assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
        m = srv.metrics()
        assert metric(m, "weir_events_accepted_total", source=SOURCE) == 20
        assert metric(m, "weir_events_rejected_total", source=SOURCE, reason="malformed_json") == 1
        assert metric(m, "weir_model_version") == 1
        assert metric(m, "weir_ready") == 1
        for stage in ("decode", "log_append", "features", "model", "decision_log", "total"):
            assert metric(m, "weir_stage_latency_seconds_count", stage=stage) >= 20
            assert metric(m, "weir_stage_latency_seconds_bucket", stage=stage, le="+Inf") == \
                metric(m, "weir_stage_latency_seconds_count", stage=stage)
        assert metric(m, "weir_http_requests_total", route="score", code="200") == 20
        assert metric(m, "weir_http_requests_total", route="score", code="400") == 1
        assert sum(v for (n, l), v in m.items() if n == "weir_log_next_offset" and ("log", "events") in l) == 20
        assert sum(v for (n, l), v in m.items() if n == "weir_log_next_offset" and ("log", "decisions") in l) == 20
        assert sum(v for (n, l), v in m.items() if n == "weir_log_bytes") > 0
        assert any(n == "weir_live_keys" for n, _ in m)
        assert any(n == "weir_state_bytes" for n, _ in m)
        # Wrong method, unknown route.
        status, hdrs, body = srv.request("GET", "/v1/score/" + SOURCE)
        assert status == 405 and hdrs["allow"] == "POST" and json.loads(body)["error"]["code"] == "method_not_allowed"
        status, body = srv.json("GET", "/nope")
        assert status == 404 and body["error"]["code"] == "not_found"


def _gauge_sum(m, name):
    return sum(v for (n, _), v in m.items() if n == name)


def _scrape_until(srv, cond, timeout=15):
    """Scrapes /metrics until cond(metrics) holds; the state gauges come from a
    walk that a scrape asks for and a later scrape reads."""
    deadline = time.time() + timeout
    while True:
        m = srv.metrics()
        if cond(m) or time.time() > deadline:
            return m
        time.sleep(0.2)


def test_state_gauges_follow_scrapes(weir_bin, data_dir):
    """weir_live_keys is read at each scrape; weir_state_bytes comes from a
    background walk over the keys that scrapes ask for (at most 2 s old), so
    it shows the state within seconds and follows it as it grows."""
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        evs = fraud_events(200, seed=5, cards=100)
        for ev in evs:
            assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        keys = len({e["card_id"] for e in evs})
        assert _gauge_sum(srv.metrics(), "weir_live_keys") == keys
        m = _scrape_until(srv, lambda m: _gauge_sum(m, "weir_state_bytes") > 0)
        before = _gauge_sum(m, "weir_state_bytes")
        assert before > 0
        more = fraud_events(300, seed=6, cards=300, start=evs[-1]["ts"])
        for ev in more:
            ev["card_id"] = "new-" + ev["card_id"]
            assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        keys += len({e["card_id"] for e in more})
        assert _gauge_sum(srv.metrics(), "weir_live_keys") == keys
        m = _scrape_until(srv, lambda m: _gauge_sum(m, "weir_state_bytes") > before)
        assert _gauge_sum(m, "weir_state_bytes") > before


def test_reload_endpoint_and_sighup(weir_bin, spec_copy, data_dir):
    model = spec_copy.parent / "fraud.linear.json"
    ev = {"card_id": "r1", "amount": 100.0, "merchant": "m", "country": "US", "ts": 1_700_000_000_000}
    with Server(weir_bin, spec_copy, data_dir) as srv:
        s1 = srv.json("POST", "/v1/score/" + SOURCE, ev)[1]
        assert s1["model"] == 1
        m = json.loads(model.read_text())
        m["intercept"] = 10.0
        model.write_text(json.dumps(m))
        assert srv.json("POST", "/v1/admin/reload") == (200, {"reloaded": True, "model": 2, "spec": "unchanged", "spec_version": 1})
        s2 = srv.json("POST", "/v1/score/" + SOURCE, dict(ev, ts=ev["ts"] + 1000))[1]
        assert s2["model"] == 2 and s2["decision"] == "block" and s2["score"] > 0.99
        # A broken file: the reload fails, the live model stays.
        model.write_text("{not json")
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and body["error"]["code"] == "bad_model"
        assert srv.json("POST", "/v1/score/" + SOURCE, dict(ev, ts=ev["ts"] + 2000))[1]["model"] == 2
        # SIGHUP reloads too.
        m["intercept"] = -10.0
        model.write_text(json.dumps(m))
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while metric(srv.metrics(), "weir_model_version") != 3 and time.time() < deadline:
            time.sleep(0.05)
        s3 = srv.json("POST", "/v1/score/" + SOURCE, dict(ev, ts=ev["ts"] + 3000))[1]
        assert s3["model"] == 3 and s3["decision"] == "allow"
        mm = srv.metrics()
        assert metric(mm, "weir_model_reloads_total", result="ok") == 2
        assert metric(mm, "weir_model_reloads_total", result="failed") == 1
        assert srv.stop() == 0
    # The decision log records which model decided each event.
    assert sorted(d["model"] for _, _, d in decisions(data_dir)) == [1, 2, 2, 3]


@pytest.mark.parametrize("from_checkpoint", [True, False])
def test_restart_rebuilds_state(weir_bin, run_weir, data_dir, tmp_path, from_checkpoint):
    """State after a restart is the checkpoint written at shutdown (nothing
    to replay) or, without it, the replayed log: features continue."""
    evs = fraud_events(200, seed=5, cards=5)
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.json("POST", "/v1/events/" + SOURCE, evs[:150])[1]["accepted"] == 150
        assert srv.stop() == 0
    if not from_checkpoint:
        shutil.rmtree(os.path.join(data_dir, "checkpoints"))
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        if from_checkpoint:
            assert srv.has_line("replayed 0 events"), srv.lines
            assert metric(srv.metrics(), "weir_recovery_checkpoint_id") > 0
        else:
            assert srv.has_line("replayed 150 events"), srv.lines
            assert metric(srv.metrics(), "weir_recovery_checkpoint_id") == 0
        served = {}
        for ev in evs[150:]:
            body = srv.json("POST", "/v1/score/" + SOURCE, ev)[1]
            served[(body["partition"], body["offset"])] = body
        assert srv.stop() == 0
    rows = backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path)
    assert len(rows) == 200
    for pos, body in served.items():
        for name in FEATURES:
            assert same_value(body["features"][name], rows[pos][name])
    assert len(decisions(data_dir)) == 200


def test_sigterm_drains_and_exits_zero(weir_bin, data_dir):
    srv = Server(weir_bin, FRAUD_SPEC, data_dir)
    for ev in fraud_events(10, seed=9):
        assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
    assert srv.stop() == 0
    assert any("stopped" in l for l in srv.lines)
    assert len(event_records(data_dir)) == 10 and len(decisions(data_dir)) == 10


def test_run_cli_errors(run_weir, data_dir, tmp_path):
    rc, out, _ = run_weir(["run", "--help"])
    assert rc == 0 and "usage: weir run" in out
    rc, _, err = run_weir(["run"])
    assert rc != 0 and err.startswith("weir run: ")
    rc, _, err = run_weir(["run", FRAUD_SPEC, "--data", data_dir, "--listen", "nohostport"])
    assert rc != 0 and "--listen" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run_weir(["run", FRAUD_SPEC, "--data", data_dir, "--max-body", "x"])
    assert rc != 0 and "--max-body" in err
    rc, _, err = run_weir(["run", tmp_path / "missing.yaml", "--data", data_dir])
    assert rc != 0 and err.startswith("weir run: ") and "missing.yaml" in err


def test_gets_keep_the_connection(weir_bin, data_dir):
    """GETs are answered on a kept-alive connection, as POSTs are, and
    pipelined ones each get their answer. Before, every GET came back with
    "Connection: close" (answered in libmicrohttpd's first call, an early
    response): each /v1/features lookup paid a new TCP connection, and of
    three pipelined GETs only the first was answered."""
    import socket
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        srv.post_events(fraud_events(20))
        conn = srv.connection()
        try:
            for path in ("/v1/features/%s/card-001" % SOURCE, "/healthz", "/metrics", "/readyz",
                         "/v1/features/%s/card-002" % SOURCE):
                status, hdrs, _ = srv.request("GET", path, conn=conn)
                assert status == 200, path
                assert hdrs.get("connection", "").lower() != "close", (path, hdrs)
            assert conn.sock is not None  # still the first connection
        finally:
            conn.close()
        s = socket.create_connection((srv.host, srv.port), timeout=10)
        s.sendall(b"".join(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" for _ in range(3)))
        got, deadline = b"", time.time() + 10
        while got.count(b"HTTP/1.1 200") < 3 and time.time() < deadline:
            got += s.recv(65536)
        s.close()
        assert got.count(b"HTTP/1.1 200") == 3, got


def test_a_rule_called_none_shares_the_no_match_count(weir_bin, spec_copy, data_dir):
    """weir_decisions_total{decision="none"} counts the events no rule
    matched; a rule whose decision is called none counts there too (the
    no-match events were dropped from the metric when a rule had that name)."""
    text = spec_copy.read_text()
    spec_copy.write_text(text.replace("  - then: allow\n", "  - when: amount > 100\n    then: none\n"))
    with Server(weir_bin, spec_copy, data_dir) as srv:
        evs = fraud_events(200, seed=3)
        out = [srv.json("POST", "/v1/score/" + SOURCE, e)[1] for e in evs]
        m = srv.metrics()
    named = sum(1 for o in out if o["decision"] == "none")
    unmatched = sum(1 for o in out if o["decision"] is None)
    assert named and unmatched, (named, unmatched)
    assert metric(m, "weir_decisions_total", source=SOURCE, decision="none") == named + unmatched


def test_features_of_an_int_key(weir_bin, data_dir, tmp_path):
    """An int-keyed source's state is found by the key's decimal text; a
    path key that no int event can have is 400 bad_key, not "not found"."""
    spec = tmp_path / "ints.yaml"
    spec.write_text("pipeline: ints\npartitions: 2\nsources:\n  s:\n    key: uid\n    time: ts\n"
                    "    lateness: 0s\n    fields: {uid: int, ts: time}\n"
                    "features:\n  n: count() over 1h\n")
    with Server(weir_bin, spec, data_dir) as srv:
        for uid in (42, -7, 0):
            assert srv.json("POST", "/v1/events/s", {"uid": uid, "ts": 1_700_000_000_000})[0] == 200
        for key in ("42", "-7", "0"):
            status, body = srv.json("GET", "/v1/features/s/" + key)
            assert status == 200 and body["found"] is True and body["features"] == {"n": 1}, (key, body)
            assert body["key"] == int(key), body  # a JSON int, as backfill rows write it
        status, body = srv.json("GET", "/v1/features/s/43")
        assert status == 200 and body["found"] is False and body["key"] == 43
        status, body = srv.json("POST", "/v1/score/s", {"uid": 42, "ts": 1_700_000_000_001})
        assert status == 200 and body["key"] == 42, body
        # 2^53 - 1 is the largest int an event can hold: 2^53 + 1 reads as 2^53
        status, body = srv.json("POST", "/v1/events/s", {"uid": 9007199254740993, "ts": 1_700_000_000_000})
        assert status == 400 and body["accepted"] == 0, body
        assert body["rejected"][0]["error"].startswith("field 'uid': expected an int"), body
        for key in ("042", "+42", "-0", "4x", "abc", "42.0", "99999999999999999", "9007199254740992"):
            status, body = srv.json("GET", "/v1/features/s/" + key)
            assert status == 400 and body["error"]["code"] == "bad_key", (key, body)
            assert "'uid' is an int" in body["error"]["message"]
        assert srv.stop() == 0


def test_a_percent_encoded_nul_names_no_key(weir_bin, data_dir):
    """/v1/features/SRC/a%00b answered for key "a": the NUL libmicrohttpd
    decoded ended the key. It is left encoded now, naming no key; other
    escapes still decode."""
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        ev = {"card_id": "a", "amount": 5.0, "merchant": "m", "country": "US", "ts": 1_700_000_000_000}
        assert srv.json("POST", "/v1/score/" + SOURCE, ev)[0] == 200
        assert srv.json("POST", "/v1/score/" + SOURCE, dict(ev, card_id="a b"))[0] == 200
        status, body = srv.json("GET", "/v1/features/%s/a%%00b" % SOURCE)
        assert status == 200 and body["found"] is False and body["key"] == "a%00b", body
        status, body = srv.json("GET", "/v1/features/%s/a%%20b" % SOURCE)
        assert status == 200 and body["found"] is True and body["key"] == "a b", body
        assert srv.stop() == 0
