"""Parity of `weir model predict` with XGBoost (python3-xgboost as the oracle).

Each case trains a small model with /usr/bin/python3's xgboost, saves it as
JSON, scores ≥ 1,000 rows with weir and with xgboost, and requires equality
within 1e-6 absolute, for margins (--raw) and transformed scores. Cases cover
binary, regression, multiclass and Poisson objectives, depths 1 to 10, 1 to
500 trees, NaN inputs, categorical features, DART and gblinear."""
import zlib

import numpy as np
import pytest
import xgboost as xgb

from modelutil import N_FEAT, N_TEST, N_TRAIN, labels, make_data, predict, weir, write_csv

CASES = [
    # id, params, rounds, nan_frac, categorical columns
    ("binary-d1-t1", {"objective": "binary:logistic", "max_depth": 1}, 1, 0.0, ()),
    ("binary-d6-t100-nan", {"objective": "binary:logistic", "max_depth": 6}, 100, 0.15, ()),
    ("logitraw-d4-t20", {"objective": "binary:logitraw", "max_depth": 4}, 20, 0.05, ()),
    ("reglogistic-d3-t10", {"objective": "reg:logistic", "max_depth": 3}, 10, 0.0, ()),
    ("regression-d10-t40", {"objective": "reg:squarederror", "max_depth": 10}, 40, 0.1, ()),
    ("pseudohuber-d5-t30", {"objective": "reg:pseudohubererror", "max_depth": 5}, 30, 0.0, ()),
    ("regression-d3-t500", {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.05}, 500, 0.05, ()),
    ("poisson-d5-t50", {"objective": "count:poisson", "max_depth": 5}, 50, 0.1, ()),
    ("softprob-d4-t30", {"objective": "multi:softprob", "num_class": 4, "max_depth": 4}, 30, 0.1, ()),
    ("softmax-d6-t20", {"objective": "multi:softmax", "num_class": 4, "max_depth": 6}, 20, 0.0, ()),
    ("categorical-d5-t40", {"objective": "binary:logistic", "max_depth": 5, "tree_method": "hist",
                            "max_cat_to_onehot": 1}, 40, 0.05, (3, 5)),
    ("categorical-onehot-d4-t20", {"objective": "reg:squarederror", "max_depth": 4, "tree_method": "hist",
                                   "max_cat_to_onehot": 16}, 20, 0.0, (3,)),
    ("dart-d4-t30", {"objective": "binary:logistic", "booster": "dart", "max_depth": 4, "rate_drop": 0.3,
                     "skip_drop": 0.0, "normalize_type": "forest"}, 30, 0.05, ()),
    ("dart-regression-d6-t20", {"objective": "reg:squarederror", "booster": "dart", "max_depth": 6,
                                "rate_drop": 0.2}, 20, 0.0, ()),
    ("gblinear-binary", {"objective": "binary:logistic", "booster": "gblinear"}, 30, 0.1, ()),
    ("gblinear-softprob", {"objective": "multi:softprob", "num_class": 4, "booster": "gblinear"}, 20, 0.0, ()),
    ("gblinear-regression", {"objective": "reg:squarederror", "booster": "gblinear"}, 30, 0.0, ()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_xgboost_parity(case, tmp_path):
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

    margin = bst.predict(dtest, output_margin=True).astype(np.float64).reshape(N_TEST, -1)
    got_margin = predict(model, csv, "--raw")
    assert got_margin.shape == margin.shape
    np.testing.assert_allclose(got_margin, margin, rtol=0, atol=1e-6)

    pred = bst.predict(dtest).astype(np.float64).reshape(N_TEST, -1)
    got = predict(model, csv)
    assert got.shape == pred.shape
    np.testing.assert_allclose(got, pred, rtol=0, atol=1e-6)


def test_xgboost_contributions_match_treeshap(tmp_path):
    """--contrib gives exact TreeSHAP values: they add up to the margin and
    match xgboost's pred_contribs."""
    X, z, rng = make_data(7, 0.1)
    y = labels("binary:logistic", z, rng)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 5, "nthread": 2}, xgb.DMatrix(X[:N_TRAIN], y[:N_TRAIN]), 30)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    csv = tmp_path / "x.csv"
    write_csv(csv, X[N_TRAIN:])
    dtest = xgb.DMatrix(X[N_TRAIN:])
    want = bst.predict(dtest, pred_contribs=True).astype(np.float64)
    got = predict(model, csv, "--contrib")
    assert got.shape == want.shape == (N_TEST, N_FEAT + 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    margin = bst.predict(dtest, output_margin=True)
    np.testing.assert_allclose(got.sum(axis=1), margin, rtol=0, atol=1e-5)


def test_xgboost_feature_names_match_header(tmp_path):
    """A model with feature names reads a CSV by its header, in any column
    order, ignoring extra columns; a missing column is an error naming it."""
    names = [f"feat_{i}" for i in range(N_FEAT)]
    X, z, rng = make_data(11, 0.05)
    y = labels("reg:squarederror", z, rng)
    bst = xgb.train({"objective": "reg:squarederror", "max_depth": 4, "nthread": 2},
                    xgb.DMatrix(X[:N_TRAIN], y[:N_TRAIN], feature_names=names), 20)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    perm = np.random.default_rng(0).permutation(N_FEAT)
    Xt = np.column_stack([X[N_TRAIN:][:, perm], np.ones(N_TEST)])
    csv = tmp_path / "x.csv"
    write_csv(csv, Xt, [names[i] for i in perm] + ["label"])
    want = bst.predict(xgb.DMatrix(X[N_TRAIN:], feature_names=names)).astype(np.float64)
    np.testing.assert_allclose(predict(model, csv)[:, 0], want, rtol=0, atol=1e-6)

    info = weir("model", "info", model).stdout
    assert "feat_0" in info and "features:   8" in info

    write_csv(csv, Xt[:, 1:], [names[i] for i in perm[1:]] + ["label"])
    p = weir("model", "predict", model, "--input", csv, check=False)
    assert p.returncode != 0
    assert names[perm[0]] in p.stderr and "missing" in p.stderr


def test_xgboost_2x_schema_variants(tmp_path):
    """XGBoost 2.x/3.x write base_score as "[5E-1]", size_leaf_vector "1",
    default_left as booleans and parameters as numbers: same predictions."""
    import json
    X, z, rng = make_data(5, 0.1)
    y = labels("binary:logistic", z, rng)
    bst = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 2, "base_score": 0.3},
                    xgb.DMatrix(X[:N_TRAIN], y[:N_TRAIN]), 15)
    model = tmp_path / "m.json"
    bst.save_model(str(model))
    m = json.load(open(model))
    lmp = m["learner"]["learner_model_param"]
    lmp["base_score"] = "[" + lmp["base_score"] + "]"
    lmp["num_feature"] = int(lmp["num_feature"])
    m["version"] = [2, 1, 0]
    gb = m["learner"]["gradient_booster"]["model"]
    gb["iteration_indptr"] = list(range(len(gb["trees"]) + 1))
    for t in gb["trees"]:
        t["tree_param"]["size_leaf_vector"] = "1"
        t["default_left"] = [bool(v) for v in t["default_left"]]
    model2 = tmp_path / "m2.json"
    json.dump(m, open(model2, "w"))
    csv = tmp_path / "x.csv"
    write_csv(csv, X[N_TRAIN:])
    want = bst.predict(xgb.DMatrix(X[N_TRAIN:])).astype(np.float64)
    np.testing.assert_allclose(predict(model2, csv)[:, 0], want, rtol=0, atol=1e-6)
