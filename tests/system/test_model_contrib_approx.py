"""Parity of `weir model predict --contrib-approx` with XGBoost's approximate
contributions (python3-xgboost as the oracle: predict(pred_contribs=True,
approx_contribs=True)), and their adding up to the margin.

Each XGBoost case trains a small model with /usr/bin/python3's xgboost,
saves it as JSON and compares weir's values with xgboost's on 1,000 rows
within 1e-5 absolute (weir computes them in float in XGBoost's order, so
gbtree models match to the bit). LightGBM has no approximate mode: for its
models (../shared/testdata/lightgbm) only the adding up is checked."""
import os
import zlib

import numpy as np
import pytest
import xgboost as xgb

from modelutil import N_FEAT, N_TEST, N_TRAIN, TESTDATA, labels, make_data, predict, write_csv

CASES = [
    # id, params, rounds, nan_frac, categorical columns
    ("binary-d6-t100-nan", {"objective": "binary:logistic", "max_depth": 6}, 100, 0.15, ()),
    ("binary-d1-t1", {"objective": "binary:logistic", "max_depth": 1}, 1, 0.0, ()),
    # depth 10 over 8 features: features split several times on one path
    ("regression-d10-t40-nan", {"objective": "reg:squarederror", "max_depth": 10}, 40, 0.1, ()),
    ("regression-d3-t300", {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.05}, 300, 0.05, ()),
    ("softprob-d4-t30-nan", {"objective": "multi:softprob", "num_class": 4, "max_depth": 4}, 30, 0.1, ()),
    ("softmax-d6-t20", {"objective": "multi:softmax", "num_class": 4, "max_depth": 6}, 20, 0.0, ()),
    ("poisson-d5-t50-nan", {"objective": "count:poisson", "max_depth": 5}, 50, 0.1, ()),
    ("categorical-d5-t40", {"objective": "binary:logistic", "max_depth": 5, "tree_method": "hist",
                            "max_cat_to_onehot": 1}, 40, 0.05, (3, 5)),
    # DART: weir holds leaves with the tree weight applied, XGBoost weights
    # each tree's contributions after: equal up to float rounding
    ("dart-d4-t30", {"objective": "binary:logistic", "booster": "dart", "max_depth": 4, "rate_drop": 0.3,
                     "skip_drop": 0.0, "normalize_type": "forest"}, 30, 0.05, ()),
    ("gblinear-softprob", {"objective": "multi:softprob", "num_class": 4, "booster": "gblinear"}, 20, 0.1, ()),
]


def add_up(contrib, margin):
    """Max over rows and groups of |sum - margin| / (1 + sum of |values|):
    the float rounding of the sums, scaled to their size."""
    n, groups = margin.shape
    c = contrib.reshape(n, groups, -1)
    return (np.abs(c.sum(axis=2) - margin) / (1 + np.abs(c).sum(axis=2))).max()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_xgboost_approx_contrib_parity(case, tmp_path):
    name, params, rounds, nan_frac, cats = case
    X, z, rng = make_data(zlib.crc32(name.encode()) % 1000, nan_frac, cat_cols=cats)
    y = labels(params["objective"], z, rng)
    ft = ["c" if i in cats else "q" for i in range(N_FEAT)] if cats else None
    dtrain = xgb.DMatrix(X[:N_TRAIN], y[:N_TRAIN], feature_types=ft, enable_categorical=bool(cats))
    dtest = xgb.DMatrix(X[N_TRAIN:], feature_types=ft, enable_categorical=bool(cats))
    bst = xgb.train({**params, "nthread": 2, "seed": 1}, dtrain, rounds)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    csv = tmp_path / "x.csv"
    write_csv(csv, X[N_TRAIN:])

    want = bst.predict(dtest, pred_contribs=True, approx_contribs=True).astype(np.float64).reshape(N_TEST, -1)
    got = predict(model, csv, "--contrib-approx")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    if params.get("booster", "gbtree") == "gbtree":
        assert np.array_equal(got, want), "gbtree values differ from XGBoost's in the last bits"

    margin = bst.predict(dtest, output_margin=True).astype(np.float64).reshape(N_TEST, -1)
    # float sums over up to 300 trees: a few float epsilons of their size
    assert add_up(got, margin) < 1e-5

    if params.get("booster") != "gblinear" and params["max_depth"] > 1:
        # a path attribution, not TreeSHAP: the two differ once splits
        # interact (on stumps they are the same)
        exact = predict(model, csv, "--contrib")
        assert np.abs(exact - got).max() > 1e-3


def test_contrib_flags_exclude_each_other(tmp_path):
    X, z, rng = make_data(3, 0.0)
    bst = xgb.train({"objective": "reg:squarederror", "max_depth": 2, "nthread": 2},
                    xgb.DMatrix(X[:N_TRAIN], z[:N_TRAIN]), 2)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    csv = tmp_path / "x.csv"
    write_csv(csv, X[N_TRAIN:N_TRAIN + 3])
    from modelutil import weir
    p = weir("model", "predict", model, "--input", csv, "--contrib", "--contrib-approx", check=False)
    assert p.returncode != 0 and "exclude" in p.stderr


LG = os.path.join(TESTDATA, "lightgbm")
LG_CASES = [
    ("lg_dart_breast_cancer.model", "breast_cancer_test.tsv", []),
    ("lg_kddcup99.model", "kddcup99_test.tsv", []),
    ("lg_rf_iris.model", "iris_test.libsvm", []),
    ("lgmulticlass.model", "multiclass_test.tsv", ["--label-col", "0"]),
]


@pytest.mark.skipif(not os.path.isdir(LG), reason=f"LightGBM test data not found in {LG} (set WEIR_TESTDATA)")
@pytest.mark.parametrize("model,data,flags", LG_CASES, ids=[c[0] for c in LG_CASES])
def test_lightgbm_approx_contribs_add_up(model, data, flags):
    """LightGBM has no approximate mode to compare with: the values add up
    to the raw score (in double), and are not TreeSHAP's."""
    model, data = os.path.join(LG, model), os.path.join(LG, data)
    raw = predict(model, data, "--raw", *flags)
    got = predict(model, data, "--contrib-approx", *flags)
    assert got.shape[0] == raw.shape[0] and got.shape[1] % raw.shape[1] == 0
    assert add_up(got, raw) < 1e-12
    exact = predict(model, data, "--contrib", *flags)
    assert exact.shape == got.shape
    assert np.abs(exact - got).max() > 1e-6


@pytest.mark.parametrize("objective", ["multi:softprob", "multi:softmax"])
def test_served_contributions_are_the_predicted_class(weir_bin, data_dir, tmp_path, objective):
    """/v1/score of a multiclass model: the score is the predicted class's
    probability, and the contributions shown are that class's (they were
    class 0's: reasons pointing away from the decision). The top three by
    |value| of XGBoost's approximate contributions for the argmax class."""
    from httputil import Server
    X, z, rng = make_data(21, 0.0)
    names = ["f%d" % i for i in range(N_FEAT)]
    bst = xgb.train({"objective": objective, "num_class": 4, "max_depth": 4, "nthread": 2, "seed": 1},
                    xgb.DMatrix(X[:N_TRAIN], labels(objective, z, rng)[:N_TRAIN], feature_names=names), 20)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    spec = tmp_path / "mc.yaml"
    spec.write_text("pipeline: mc\npartitions: 2\nsources:\n  s:\n    key: k\n    time: ts\n    fields:\n"
                    + "".join("      %s: float\n" % n for n in names) + "      k: string\n      ts: time\n"
                    "features:\n  n: count() over 1h\nmodel:\n  path: %s\n  inputs: [%s]\n"
                    "decisions:\n  - when: class == 3\n    then: review\n  - then: allow\n"
                    % (model, ", ".join(names)))
    rows = X[N_TRAIN:N_TRAIN + 40]
    probs = bst.predict(xgb.DMatrix(rows, feature_names=names))
    contribs = bst.predict(xgb.DMatrix(rows, feature_names=names), pred_contribs=True,
                           approx_contribs=True).reshape(len(rows), 4, N_FEAT + 1)
    classes = set()
    with Server(weir_bin, spec, data_dir) as srv:
        for i, row in enumerate(rows):
            ev = {n: float(v) for n, v in zip(names, row)}
            ev.update(k="k%d" % i, ts=1_700_000_000_000 + i)
            status, body = srv.json("POST", "/v1/score/s", ev)
            assert status == 200, body
            if objective == "multi:softprob":  # the score: the predicted class's probability
                best = int(np.argmax(probs[i]))
                assert body["score"] == pytest.approx(float(probs[i][best]), abs=1e-6)
            else:  # the score: the class itself
                best = int(probs[i])
                assert body["score"] == best
            classes.add(best)
            want = sorted(((names[f], float(contribs[i][best][f])) for f in range(N_FEAT)),
                          key=lambda c: -abs(c[1]))[:3]
            got = [(c["input"], c["value"]) for c in body["contributions"]]
            assert [g[0] for g in got] == [w[0] for w in want], (i, best, got, want)
            for (_, g), (_, w) in zip(got, want):
                assert g == pytest.approx(w, abs=1e-5)
        assert srv.stop() == 0
    assert len(classes) >= 2, "the rows must predict more than one class"
