#!/usr/bin/python3
"""Trains the fraud model from `weir backfill` output.

    weir gen fraud --events 400000 --seed 7 > events.ndjson
    weir ingest fraud.yaml --data DATA < events.ndjson
    weir backfill fraud.yaml --data DATA --out train.csv --with is_fraud
    /usr/bin/python3 train.py train.csv fraud.model.json

The columns the model takes are the spec's model inputs, read from the CSV
header by name, so the served model sees exactly the features it was trained
on (same code path, DESIGN.md principle 1). Rows are split by time: the model
trains on the earlier 70% and reports precision/recall on the later 30%, at
the thresholds the spec's decision rules use (review >= 0.5, block >= 0.9).
Needs Debian's python3-xgboost and python3-numpy (run with /usr/bin/python3).
"""
import csv
import sys

import numpy as np
import xgboost as xgb

INPUTS = ["amount", "txn_count_1h", "amount_sum_24h", "amount_ratio",
          "merchants_24h", "new_country", "secs_since", "small_txns_1h"]


def load(path):
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        missing = [c for c in INPUTS + ["is_fraud"] if c not in (rows.fieldnames or [])]
        if missing:
            # A missing column would train on NaN: the model would never
            # learn from it, and weir would serve it anyway.
            sys.exit("train.py: %s has no column %s" % (path, ", ".join(missing)))
        x, y, t = [], [], []
        for r in rows:
            if r["late"] == "1":
                continue  # late events were scored as of the watermark; train on the in-time view
            x.append([float(r[c]) if r[c] != "" else np.nan for c in INPUTS])
            y.append(int(r["is_fraud"]))
            t.append(int(r["time"]))
    order = np.argsort(np.array(t), kind="stable")
    return np.array(x, dtype=np.float64)[order], np.array(y)[order]


def report(name, y, p, thr):
    pred = p >= thr
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    print(f"{name}: threshold {thr}: precision {prec:.3f} recall {rec:.3f} (tp {tp}, fp {fp}, fn {fn})")
    return prec, rec


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: train.py BACKFILL.csv MODEL.json")
    x, y = load(sys.argv[1])
    if y.sum() == 0:
        sys.exit("train.py: no fraud labels in the data; generate more events")
    cut = int(len(y) * 0.7)
    params = {
        "objective": "binary:logistic",
        "max_depth": 6,
        "eta": 0.2,
        "subsample": 0.9,
        "eval_metric": "logloss",
        "scale_pos_weight": 5.0,
        "nthread": 2,
        "seed": 7,
    }
    dtrain = xgb.DMatrix(x[:cut], label=y[:cut], feature_names=INPUTS, missing=np.nan)
    dtest = xgb.DMatrix(x[cut:], label=y[cut:], feature_names=INPUTS, missing=np.nan)
    booster = xgb.train(params, dtrain, num_boost_round=100, evals=[(dtest, "test")], verbose_eval=False)
    p = booster.predict(dtest)
    print(f"trained on {cut} rows ({int(y[:cut].sum())} fraud), tested on {len(y) - cut} rows "
          f"({int(y[cut:].sum())} fraud)")
    report("review or block", y[cut:], p, 0.5)
    report("block", y[cut:], p, 0.9)
    booster.save_model(sys.argv[2])
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
