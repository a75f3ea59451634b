"""Inputs that used to abort `weir run` or `weir ingest`, found by an audit
of what outside input can reach; each now gets a clear error and the
process goes on (or refuses to start) without crashing:

  - a model reloaded live with more outputs than a decision holds (64): the
    reload was accepted and the next scored event hit an assertion;
  - an aggregate whose select makes more than 64 aggregate calls: loaded,
    then the first window to close hit an assertion — on every restart,
    since the events were logged;
  - a reload asked for while recovery restores and replays: a changed spec
    freed the partition state recovery was writing into (SIGSEGV);
  - a spec path that is not a regular file (/dev/zero, a FIFO): a reload
    read it without end, or hung holding the reload lock;
  - a hopping window with a tiny step (1h every 1ms: 3.6 M windows per
    event) and durations near int64's end (the key TTL overflowed).
"""
import json
import os
import shutil
import subprocess

from conftest import REPO
from httputil import Server, fraud_events

FRAUD = REPO / "examples" / "fraud"


def fraud_copy(tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    for name in ("fraud.yaml", "fraud.model.json"):
        shutil.copy(FRAUD / name, d / name)
    return d / "fraud.yaml", d / "fraud.model.json"


def score(srv, ev):
    return srv.json("POST", "/v1/score/transactions", json.dumps(ev))


def test_model_reload_with_too_many_outputs_is_refused(weir_bin, tmp_path):
    spec, model = fraud_copy(tmp_path)
    evs = fraud_events(20)
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        status, body = score(srv, evs[0])
        assert status == 200, body
        m = json.loads(model.read_text())
        m["learner"]["learner_model_param"]["num_target"] = "65"
        m["learner"]["objective"] = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}
        model.write_text(json.dumps(m))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and body["error"]["code"] == "bad_model", body
        assert "65 outputs; at most 64" in body["error"]["message"], body
        # the live model goes on scoring
        for ev in evs[1:]:
            status, body = score(srv, ev)
            assert status == 200 and body["model"] == 1, body
        assert srv.stop() == 0, srv.stderr()[-2000:]


def test_select_with_too_many_aggregate_calls_is_refused(weir_bin, tmp_path):
    calls = "\n".join("      s%d: sum(x + %d)" % (i, i) for i in range(65))
    spec = tmp_path / "s.yaml"
    spec.write_text("pipeline: t\npartitions: 1\nsources:\n  s:\n    key: k\n    time: ts\n"
                    "    fields: {k: string, x: float, ts: time}\nfeatures:\n  c: count() over 1h\n"
                    "aggregates:\n  h:\n    window: tumbling 1m\n    select:\n" + calls + "\n")
    p = subprocess.run([weir_bin, "ingest", str(spec), "--data", str(tmp_path / "d")],
                       input='{"k":"a","x":1,"ts":0}\n{"k":"a","x":1,"ts":120000}\n',
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "select of aggregate 'h' makes 65 aggregate calls; at most 64" in p.stderr, p.stderr


def test_reload_during_recovery_is_refused(weir_bin, tmp_path):
    spec, _ = fraud_copy(tmp_path)
    data = tmp_path / "data"
    gen = subprocess.run([weir_bin, "gen", "fraud", "--events", "300000"], capture_output=True,
                         check=True, timeout=120)
    subprocess.run([weir_bin, "ingest", str(spec), "--data", str(data)], input=gen.stdout,
                   capture_output=True, check=True, timeout=300)
    with Server(weir_bin, spec, data, wait_ready=False) as srv:
        # The server listens before it recovers: a reload asked for now
        # finds it replaying 300,000 events.
        status, body = srv.json("POST", "/v1/admin/reload")
        ready, _, _ = srv.request("GET", "/readyz")
        assert ready == 503, "the replay ended before the test could ask: make the log longer"
        assert status == 503 and body["error"]["code"] == "not_ready", body
        srv.wait_ready(120)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["reloaded"] is True, body
        assert srv.stop() == 0, srv.stderr()[-2000:]


def test_spec_path_that_is_not_a_regular_file(weir_bin, tmp_path):
    spec, _ = fraud_copy(tmp_path)
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        text = spec.read_text()
        spec.unlink()
        os.symlink("/dev/zero", spec)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and body["error"]["code"] == "bad_spec", body
        assert "not a regular file" in body["error"]["message"], body
        spec.unlink()
        os.mkfifo(spec)
        status, body = srv.json("POST", "/v1/admin/reload")  # would hang on the FIFO
        assert status == 422 and body["error"]["code"] == "bad_spec", body
        assert "not a regular file" in body["error"]["message"], body
        spec.unlink()
        spec.write_text(text)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200, body
        assert srv.stop() == 0, srv.stderr()[-2000:]


def test_spec_limits_on_hops_and_durations(weir_bin, tmp_path):
    base = ("pipeline: t\npartitions: 1\nsources:\n  s:\n    key: k\n    time: ts\n%s"
            "    fields: {k: string, x: float, ts: time}\nfeatures:\n  c: count() over 1h\n%s")
    cases = [
        (base % ("", "aggregates:\n  h:\n    window: hopping 1h every 1ms\n    select: {n: count()}\n"),
         "window 1h every 1ms puts each event in 3600000 windows; at most 10000"),
        (base % ("    lateness: 106751991167d\n", ""), "lateness '106751991167d' is longer than 100 years"),
    ]
    for i, (text, want) in enumerate(cases):
        spec = tmp_path / ("s%d.yaml" % i)
        spec.write_text(text)
        p = subprocess.run([weir_bin, "ingest", str(spec), "--data", str(tmp_path / ("d%d" % i))],
                           input='{"k":"a","x":1,"ts":0}\n', capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and want in p.stderr, (p.returncode, p.stderr)


def test_model_only_reload_keeps_what_the_rules_read(weir_bin, tmp_path):
    """A model-only reload whose scores would mean something else is
    refused, and every reload outcome is said on stderr: a margin model
    (binary:logitraw) in place of a probability (binary:logistic) would have
    the rules threshold margins; a model without feature names would be
    fed by position, unchecked."""
    spec, model = fraud_copy(tmp_path)
    good = model.read_text()
    evs = fraud_events(10)
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        assert score(srv, evs[0])[0] == 200
        m = json.loads(good)
        m["learner"]["objective"]["name"] = "binary:logitraw"
        model.write_text(json.dumps(m))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and body["error"]["code"] == "bad_model", body
        assert "otherwise than the live model" in body["error"]["message"], body
        assert "'binary:logitraw'" in body["error"]["message"], body
        m = json.loads(good)
        m["learner"]["feature_names"] = []
        m["learner"]["feature_types"] = []
        model.write_text(json.dumps(m))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and "carries no feature names" in body["error"]["message"], body
        m = json.loads(good)
        m["learner"]["learner_model_param"]["base_score"] = "2E-1"
        model.write_text(json.dumps(m))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["model"] == 2, body
        assert score(srv, evs[1])[1]["model"] == 2
        assert srv.stop() == 0
        err = srv.stderr()
    assert err.count("weir run: reload (POST /v1/admin/reload) failed; the running spec and model 1 stay live") == 2, err
    assert "weir run: reload (POST /v1/admin/reload): model reloaded; model 2 (xxh128:" in err, err

