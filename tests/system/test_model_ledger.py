"""The model ledger, DATA/models: a decision's "model" names one model file
for good. The same file is the same version at every start, reload and spec
reload; a new file gets the next version; `weir verify` speaks of versions
in the same numbers; a damaged ledger is refused, never rewritten."""
import json
import re
import shutil

from httputil import FRAUD_SPEC, SOURCE, SPECS, Server, decisions

EV = {"card_id": "L1", "amount": 100.0, "merchant": "m", "country": "US", "ts": 1_700_000_000_000}


def spec_and_model(tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    shutil.copy(FRAUD_SPEC, d / "fraud.yaml")
    shutil.copy(SPECS / "fraud.linear.json", d / "fraud.linear.json")
    return d / "fraud.yaml", d / "fraud.linear.json"


def write_model(path, intercept):
    m = json.loads((SPECS / "fraud.linear.json").read_text())
    m["intercept"] = intercept
    path.write_text(json.dumps(m))


def digest(run_weir, model):
    _, out, _ = run_weir(["model", "info", "--json", model], check=True)
    return json.loads(out)["digest"]


def ledger(data_dir):
    """[(version, digest, path)] of DATA/models."""
    rows = []
    for line in (data_dir / "models").read_text().splitlines():
        if line.startswith("#"):
            continue
        v, d, when, path = line.split(" ", 3)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when), line
        rows.append((int(v), d, path))
    return rows


def score_model(srv, n):
    status, body = srv.json("POST", "/v1/score/" + SOURCE, dict(EV, ts=EV["ts"] + 1000 * n))
    assert status == 200, body
    return body["model"]


def test_versions_survive_restarts_and_name_one_file(weir_bin, run_weir, data_dir, tmp_path):
    spec, model = spec_and_model(tmp_path)
    write_model(model, -4.0)
    d1 = digest(run_weir, model)
    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.has_line("; model 1 (%s)" % d1)
        assert score_model(srv, 1) == 1
        write_model(model, 10.0)
        assert srv.json("POST", "/v1/admin/reload") == (200, {"reloaded": True, "model": 2, "spec": "unchanged", "spec_version": 1})
        assert score_model(srv, 2) == 2
        assert srv.stop() == 0
    d2 = digest(run_weir, model)
    assert ledger(data_dir) == [(1, d1, str(model)), (2, d2, str(model))]

    # A restart keeps the number: the process used to start again at 1.
    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.has_line("; model 2 (%s)" % d2)
        assert score_model(srv, 3) == 2
        # The first file back: its own number, not a third.
        write_model(model, -4.0)
        assert srv.json("POST", "/v1/admin/reload")[1]["model"] == 1
        assert score_model(srv, 4) == 1
        # A spec reload with the same model file keeps its number too.
        spec.write_text(spec.read_text().replace("reason: elevated risk", "reason: elevated risk (v2)"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["model"] == 1 and body["spec"] != "unchanged", body
        assert score_model(srv, 5) == 1
        assert srv.stop() == 0
    assert len(ledger(data_dir)) == 2
    assert [d["model"] for _, _, d in sorted(decisions(data_dir), key=lambda x: x[2]["offset"])] \
        == [1, 2, 2, 1, 1]


def test_verify_names_versions_of_the_ledger(weir_bin, run_weir, data_dir, tmp_path):
    spec, model = spec_and_model(tmp_path)
    write_model(model, 10.0)  # everything blocked
    with Server(weir_bin, spec, data_dir) as srv:
        assert score_model(srv, 1) == 1
        write_model(model, -10.0)  # everything allowed
        assert srv.json("POST", "/v1/admin/reload")[1]["model"] == 2
        assert score_model(srv, 2) == 2
        assert srv.stop() == 0
    # Offline with version 2: the event version 1 decided differs, named so.
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc != 0
    assert "(decided by model version 1; offline is version 2)" in out + err, out + err
    # Offline with a file that never decided here.
    write_model(model, 0.5)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc != 0
    assert "the offline model never decided here: it is not in %s/models" % data_dir in out + err, out + err
    assert len(ledger(data_dir)) == 2  # verify reads the ledger, never adds to it


def test_damaged_ledger_is_refused_and_kept(weir_bin, run_weir, data_dir, tmp_path):
    spec, model = spec_and_model(tmp_path)
    with Server(weir_bin, spec, data_dir) as srv:
        assert score_model(srv, 1) == 1
        assert srv.stop() == 0
    path = data_dir / "models"
    for bad, what in (("1 xxh128:zz 2026-01-01T00:00:00Z /m\n", "line 2: not 'VERSION DIGEST TIME PATH'"),
                      (path.read_text().splitlines()[1].replace("1 ", "0 ", 1) + "\n", "line 2: not"),
                      (path.read_text() + path.read_text().splitlines()[1] + "\n", "version 1 after version 1")):
        text = path.read_text().splitlines()[0] + "\n" + bad if what.startswith("line 2") else bad
        path.write_text(text)
        rc, out, err = run_weir(["run", spec, "--data", data_dir, "--listen", "127.0.0.1:0"], timeout=60)
        assert rc != 0 and what in err and str(path) in err, err
        assert path.read_text() == text  # not rewritten


def test_verify_recomputes_with_the_model_that_decided(weir_bin, run_weir, data_dir, tmp_path):
    """Models kept one file each (a model.json symlink re-pointed at each
    release): the ledger names each version's own file, and verify checks
    every record with the model that decided it, so a reload is not a
    difference; a decision that is not what its model gives still is."""
    spec, model = spec_and_model(tmp_path)
    m1, m2 = model.parent / "m1.json", model.parent / "m2.json"
    write_model(m1, 10.0)
    write_model(m2, -10.0)
    model.unlink()
    model.symlink_to(m1)
    with Server(weir_bin, spec, data_dir) as srv:
        assert score_model(srv, 1) == 1
        model.unlink()
        model.symlink_to(m2)
        assert srv.json("POST", "/v1/admin/reload")[1]["model"] == 2
        assert score_model(srv, 2) == 2
        assert srv.stop() == 0
    assert [p for _, _, p in ledger(data_dir)] == [str(m1), str(m2)]
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc == 0, out + err
    assert "2 decisions checked: 2 equal, 0 different" in out, out
    assert "1 of them decided by another model version than the spec's file (2), recomputed with " \
           "the model that decided them" in out, out
    # m1 changed since it decided: its record is checked against the
    # spec's file (version 2), and differs, saying so.
    write_model(m1, 3.0)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc == 1 and "(decided by model version 1; offline is version 2)" in out + err, out + err


def test_a_first_ledger_numbers_above_the_decisions_before_it(weir_bin, data_dir, tmp_path):
    """A directory whose decisions were numbered without a ledger (a weir
    before it numbered 1, 2, ... in each process; or the ledger deleted):
    the first ledger starts above the largest version in the decision log,
    so that no number names two models."""
    spec, model = spec_and_model(tmp_path)
    write_model(model, -4.0)
    with Server(weir_bin, spec, data_dir) as srv:
        assert score_model(srv, 1) == 1
        write_model(model, 1.0)
        assert srv.json("POST", "/v1/admin/reload")[1]["model"] == 2
        assert score_model(srv, 2) == 2
        assert srv.stop() == 0
    (data_dir / "models").unlink()
    write_model(model, 2.0)
    with Server(weir_bin, spec, data_dir) as srv:
        assert score_model(srv, 3) == 3
        assert srv.stop() == 0
        err = srv.stderr()
    assert "model ledger: none yet beside 2 decisions" in err and "the largest is 2" in err, err
    text = (data_dir / "models").read_text()
    assert "# versions up to 2 are in decisions made before this ledger" in text, text
    assert [v for v, _, _ in ledger(data_dir)] == [3]
