"""Hostile and broken model files (tests/system/models/, listed with their
expected errors in expected_errors.tsv): each must fail to load with a
one-line error naming what is wrong, exit non-zero, and never crash. The
good files next to them must load and score."""
import os

import pytest

from modelutil import ROOT, weir

MODELS = os.path.join(ROOT, "tests", "system", "models")


def cases():
    with open(os.path.join(MODELS, "expected_errors.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, _, expect = line.rstrip("\n").partition("\t")
            yield name, expect


BROKEN = [c for c in cases() if c[1]]
GOOD = [c[0] for c in cases() if not c[1]]


def test_enough_broken_files():
    assert len(BROKEN) >= 20


@pytest.mark.parametrize("name,expect", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_model_gives_its_error(name, expect):
    p = weir("model", "info", os.path.join(MODELS, name), check=False)
    assert p.returncode == 1, p.stderr  # a clean failure, not a signal
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("weir model info: ") and name in lines[0]
    assert expect in lines[0], f"expected {expect!r} in {lines[0]!r}"


@pytest.mark.parametrize("name", GOOD)
def test_good_model_loads_and_scores(name, tmp_path):
    path = os.path.join(MODELS, name)
    weir("model", "info", path)
    rows = tmp_path / "rows.csv"
    # the good models have 2 features
    rows.write_text("0.1,0.9\n0.7,0.1\n,0.5\n")
    out = weir("model", "predict", path, "--input", rows).stdout.split()
    assert len(out) == 3 and all(0 < float(v) < 1 for v in out)


def test_sparse_rows_that_would_not_fit_dense_are_refused(tmp_path):
    """libsvm rows are made dense: 13 KB naming index 16,000,000 on 1,000
    lines asked for 128 GB and the allocation ended the process (SIGABRT).
    It was an error naming the sizes (a cap of 2^28 values, which still
    stands); an index past the model's features is now refused as the file
    is read, at its first line, before anything is made dense (twelve such
    lines, under the cap, took 1.7 GB)."""
    rows = tmp_path / "dense.svm"
    rows.write_text("0 16000000:1\n" * 1000)
    model = os.path.join(ROOT, "examples", "fraud", "fraud.model.json")
    p = weir("model", "predict", model, "--input", rows, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "dense.svm: line 1: index 16000000 is out of range: the model's rows have indexes below 9" in p.stderr, p.stderr


def test_xgboost_ubjson_is_named(tmp_path):
    """XGBoost writes UBJSON (binary JSON) for a name not ending in .json:
    weir said "JSON model is neither XGBoost (no "learner") ...", of a file
    whose first key is "learner". It says what the file is and what to do."""
    import numpy as np
    import xgboost as xgb
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                    xgb.DMatrix(X, (X[:, 0] > 0).astype(float)), 3)
    ubj = tmp_path / "m.ubj"
    bst.save_model(str(ubj))
    assert ubj.read_bytes()[:1] == b"{" and b"learner" in ubj.read_bytes()
    p = weir("model", "info", ubj, check=False)
    assert p.returncode == 1, p.stderr
    assert "an XGBoost UBJSON (binary JSON) model, which weir does not read" in p.stderr, p.stderr
    assert "name ending in .json" in p.stderr
    bst.save_model(str(tmp_path / "m.json"))
    assert weir("model", "info", tmp_path / "m.json", check=False).returncode == 0
