"""modelutil.py — helpers shared by the model system tests (test_model_*.py):
where the weir binary is, running `weir model ...`, writing rows as CSV and
reading weir's predictions back."""
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIR = os.environ.get("WEIR_BIN", os.path.join(ROOT, "build", "weir"))
if not os.path.isabs(WEIR):
    WEIR = os.path.join(ROOT, WEIR)
# Outside data (LightGBM's own predictions) lives beside the repository, in
# ../shared/testdata; WEIR_TESTDATA points elsewhere when it does not.
TESTDATA = os.environ.get("WEIR_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata"))


def weir(*args, check=True):
    """Runs the weir binary; returns the CompletedProcess (text mode)."""
    p = subprocess.run([WEIR, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"weir {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def write_csv(path, X, names=None):
    """Writes X with %.17g so that every double reads back exactly."""
    with open(path, "w") as f:
        if names is not None:
            f.write(",".join(names) + "\n")
        for row in X:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def predict(model, input_path, *flags):
    """weir model predict → 2-D float array (rows × outputs)."""
    out = weir("model", "predict", model, "--input", input_path, *flags).stdout
    rows = [list(map(float, line.split("\t"))) for line in out.splitlines()]
    return np.array(rows, dtype=np.float64)


# Synthetic training data shared by the XGBoost parity tests: a known
# function of a few features, noise, optional NaNs and categorical columns.
N_TRAIN, N_TEST, N_FEAT = 1500, 1000, 8


def make_data(seed, nan_frac=0.0, n=N_TRAIN + N_TEST, nfeat=N_FEAT, cat_cols=()):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, nfeat)) * rng.uniform(0.5, 100, size=nfeat)
    for c in cat_cols:
        X[:, c] = rng.integers(0, 12, size=n)
    if nan_frac:
        X[rng.random(X.shape) < nan_frac] = np.nan
    z = np.nan_to_num(X[:, 0] / 50) + np.nan_to_num(X[:, 1] / 100) ** 2 - np.nan_to_num(X[:, 2] / 80)
    for c in cat_cols:
        z += np.isin(X[:, c], [1, 4, 7, 9]) * 1.5
    return X, z, rng


def labels(objective, z, rng):
    if objective.startswith("binary") or objective == "reg:logistic":
        return (z + rng.normal(scale=0.5, size=z.shape) > 0).astype(float)
    if objective.startswith("multi"):
        return np.digitize(z + rng.normal(scale=0.3, size=z.shape), [-1, 0, 1]).astype(float)
    if objective == "count:poisson":
        return rng.poisson(np.exp(np.clip(z, -3, 3)))
    return 50 * z + rng.normal(size=z.shape)
