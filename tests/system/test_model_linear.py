"""weir's linear JSON models: scores computed as documented in
src/model/linear.c (standardization, logistic link, missing = no term),
feature names matched by header, contributions add up."""
import json

import numpy as np

from modelutil import predict, weir, write_csv


def test_linear_logistic(tmp_path):
    model = {"format": "weir-linear", "link": "logistic", "intercept": -0.5,
             "weights": {"amount": 0.002, "count": 0.3, "ratio": -1.25},
             "mean": {"amount": 100.0}, "scale": {"amount": 50.0, "ratio": 2.0},
             "_trained": "2026-11-27"}  # a key starting with _ is the user's
    path = tmp_path / "lin.json"
    path.write_text(json.dumps(model))
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 3)) * [80, 3, 1] + [100, 2, 0]
    X[::17, 1] = np.nan
    z = -0.5 + 0.002 * (X[:, 0] - 100) / 50 + 0.3 * np.nan_to_num(X[:, 1]) - 1.25 * X[:, 2] / 2
    csv = tmp_path / "x.csv"
    write_csv(csv, X[:, [2, 0, 1]], ["ratio", "amount", "count"])  # any column order
    np.testing.assert_allclose(predict(path, csv, "--raw")[:, 0], z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(predict(path, csv)[:, 0], 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-12)
    c = predict(path, csv, "--contrib")
    assert c.shape == (1000, 4)
    np.testing.assert_allclose(c.sum(axis=1), z, rtol=1e-12, atol=1e-12)
    info = weir("model", "info", path).stdout
    assert "linear" in info and "amount, count, ratio" in info
