#!/usr/bin/env bash
# The demo of what weir does today (run by `make demo`): generate a day of
# synthetic card transactions, append them to the durable partitioned log
# keyed by card, look at the log, read a card's events back, and verify
# every batch. Uses a fresh folder under ${TMPDIR:-/tmp}.
set -euo pipefail
WEIR=${WEIR:-"$(dirname "$0")/../build/weir"}
work=$(mktemp -d "${TMPDIR:-/tmp}/weir-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT
events=${EVENTS:-500000}

step() { printf '\n== %s\n' "$*"; }

step "weir gen fraud --events $events  (synthetic transactions with fraud labels)"
"$WEIR" gen fraud --events "$events" --seed 42 > "$work/events.ndjson"
head -n 3 "$work/events.ndjson"
echo "... $(wc -l < "$work/events.ndjson") events, $(grep -c '"is_fraud":1' "$work/events.ndjson") labelled fraud"

step "weir log append  (8 partitions by card_id, durable acks)"
time "$WEIR" log append "$work/data" --topic transactions --partitions 8 --key card_id \
  --ack durable < "$work/events.ndjson"

step "weir log stat"
"$WEIR" log stat "$work/data"

card=$(grep -m1 '"is_fraud":1' "$work/events.ndjson" | sed 's/.*"card_id":"\([^"]*\)".*/\1/')
step "all events of card $card, read back from its partition in order"
# (head closes the pipe early: that is not a failure of the demo)
{ "$WEIR" log read "$work/data" --topic transactions | grep "\"key\":\"$card\"" | head -n 12; } || true

step "weir log check  (every batch's CRC32C, offsets and indexes)"
"$WEIR" log check "$work/data"
