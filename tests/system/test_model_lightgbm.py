"""Parity of `weir model predict` with LightGBM: every model under
../shared/testdata/lightgbm matches LightGBM's own predictions (saved next
to it) within 1e-9 relative. LightGBM itself is not installed; the expected
values were written by LightGBM when the models were trained (see the .py
scripts in that folder)."""
import os

import numpy as np
import pytest

from modelutil import TESTDATA, predict, weir

LG = os.path.join(TESTDATA, "lightgbm")
# The parity data is not part of the repository (it is LightGBM's output,
# read from ../shared/testdata): without it there is nothing to compare.
pytestmark = pytest.mark.skipif(not os.path.isdir(LG), reason=f"LightGBM test data not found in {LG} (set WEIR_TESTDATA)")

# model, input, extra flags, expected predictions
CASES = [
    ("lg_dart_breast_cancer.model", "breast_cancer_test.tsv", [], "lg_dart_breast_cancer_true_predictions.txt"),
    ("lg_kddcup99.model", "kddcup99_test.tsv", ["--raw"], "lg_kddcup99_true_predictions.txt"),
    ("lg_rf_iris.model", "iris_test.libsvm", [], "lg_rf_iris_true_predictions.txt"),
    ("lgmulticlass.model", "multiclass_test.tsv", ["--label-col", "0"], "lgmulticlass_true_predictions.txt"),
    ("lgmulticlass.model", "multiclass_test.tsv", ["--label-col", "0", "--raw"], "lgmulticlass_true_raw_predictions.txt"),
]


def test_every_model_is_covered():
    models = {f for f in os.listdir(LG) if f.endswith(".model")}
    assert models == {c[0] for c in CASES}


@pytest.mark.parametrize("model,data,flags,truth", CASES, ids=[c[3] for c in CASES])
def test_lightgbm_parity(model, data, flags, truth):
    want = np.loadtxt(os.path.join(LG, truth), ndmin=2)
    if want.shape[0] == 1:
        want = want.T
    got = predict(os.path.join(LG, model), os.path.join(LG, data), *flags)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


def test_lightgbm_contributions_add_up(tmp_path):
    """TreeSHAP contributions of a LightGBM model add up to its raw score."""
    model = os.path.join(LG, "lg_kddcup99.model")
    data = os.path.join(LG, "kddcup99_test.tsv")
    raw = predict(model, data, "--raw")
    contrib = predict(model, data, "--contrib")
    nclass, nfeat = raw.shape[1], 41
    assert contrib.shape == (raw.shape[0], nclass * (nfeat + 1))
    sums = contrib.reshape(-1, nclass, nfeat + 1).sum(axis=2)
    np.testing.assert_allclose(sums, raw, rtol=1e-9, atol=1e-9)


def test_lightgbm_info():
    out = weir("model", "info", os.path.join(LG, "lg_kddcup99.model")).stdout
    assert "lightgbm gbdt" in out and "classes:    13" in out and "trees:      130" in out
    out = weir("model", "info", os.path.join(LG, "lg_rf_iris.model")).stdout
    assert "lightgbm rf" in out
    out = weir("model", "info", os.path.join(LG, "lg_dart_breast_cancer.model")).stdout
    assert "lightgbm dart" in out


def test_label_column_hint():
    p = weir("model", "predict", os.path.join(LG, "lgmulticlass.model"), "--input",
             os.path.join(LG, "multiclass_test.tsv"), check=False)
    assert p.returncode == 1 and "--label-col" in p.stderr
