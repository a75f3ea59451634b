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
