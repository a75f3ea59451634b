#!/usr/bin/env bash
# Rebuilds fraud.model.json the way it was made: generate transactions (seed 7,
# not the demo's seed), ingest them, write point-in-time features with
# `weir backfill --with is_fraud`, and train XGBoost on them (train.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
WEIR=${WEIR:-"$here/../../build/weir"}
work=$(mktemp -d "${TMPDIR:-/tmp}/weir-train-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$WEIR" gen fraud --events "${EVENTS:-400000}" --seed 7 > "$work/events.ndjson"
"$WEIR" ingest "$here/fraud.yaml" --data "$work/data" < "$work/events.ndjson"
"$WEIR" backfill "$here/fraud.yaml" --data "$work/data" --out "$work/train.csv" --with is_fraud
/usr/bin/python3 "$here/train.py" "$work/train.csv" "$here/fraud.model.json"
