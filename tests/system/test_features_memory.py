"""Memory of keyed state (issue 3): the bytes of state per key for the fraud
feature set of DESIGN.md (specs/fraud_features.yaml), read from
`weir ingest`'s `state: K keys, B bytes` line, stay under a stated bound;
and TTL eviction returns idle keys' memory: once the watermark of every
partition is past their longest window (7d) + lateness, keys that saw no
event since are dropped and their bytes given back.

The bounds come from the first measurement (weir at commit time, 8
partitions, `weir gen fraud` events over 7 days):
  300,000 events over ~95,000 cards (~3 events a card):  1,103 bytes/key
  500,000 events over 10,000 cards (50 events a card):  2,968 bytes/key
and allow about 15% of headroom.
"""
import json
import pathlib
import re

import pytest

import oracle

SPEC = pathlib.Path(__file__).resolve().parent / "specs" / "fraud_features.yaml"
PARTITIONS = 8
LONGEST = 7 * oracle.D
LATENESS = 30 * oracle.S


def state_line(out):
    m = re.search(r"^state: (\d+) keys, (\d+) bytes$", out, re.M)
    assert m, "no 'state: K keys, B bytes' line in weir ingest's output:\n" + out
    return int(m.group(1)), int(m.group(2))


def gen(run_weir, tmp_path, events, keys, seed):
    rc, out, err = run_weir(["gen", "fraud", "--events", events, "--keys", keys, "--seed", seed],
                            text=False)
    assert rc == 0, err
    path = tmp_path / "events.ndjson"
    path.write_bytes(out)
    return path


def live_and_distinct(path):
    """(keys whose newest applied event is not past the TTL cutoff of its
    partition at the end, all keys with an applied event): K must lie
    between them (an expired key may stay until the sweep reaches it). Late
    events (below their partition's watermark) are not applied."""
    newest, maxt = {}, [None] * PARTITIONS
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            k, t = e["card_id"], e["ts"]
            p = oracle.partition_of(k, PARTITIONS)
            if maxt[p] is not None and t < maxt[p] - LATENESS:
                continue
            if maxt[p] is None or t > maxt[p]:
                maxt[p] = t
            if k not in newest or t > newest[k]:
                newest[k] = t
    # every partition ends with a tick at the largest time seen
    cutoff = max(maxt) - LATENESS - (LONGEST + LATENESS)
    live = sum(1 for t in newest.values() if t >= cutoff)
    return live, len(newest)


@pytest.mark.parametrize("events,keys,bound", [(300_000, 100_000, 1_300), (500_000, 10_000, 3_400)])
def test_state_bytes_per_key(run_weir, data_dir, tmp_path, events, keys, bound):
    path = gen(run_weir, tmp_path, events, keys, 1)
    with open(path, "rb") as f:
        rc, out, err = run_weir(["ingest", SPEC, "--data", data_dir], input=f)
    assert rc == 0, err
    k, b = state_line(out)
    live, distinct = live_and_distinct(path)
    assert live <= k <= distinct, (live, k, distinct)
    per_key = b / k
    print("fraud feature set: %d events, %d keys, %d bytes, %.0f bytes/key"
          % (events, k, b, per_key))
    assert per_key <= bound, "state is %.0f bytes/key, over the bound %d" % (per_key, bound)


def test_ttl_returns_idle_keys_memory(run_weir, data_dir, tmp_path):
    path = gen(run_weir, tmp_path, 300_000, 100_000, 2)
    with open(path, "rb") as f:
        rc, out, err = run_weir(["ingest", SPEC, "--data", data_dir], input=f)
    assert rc == 0, err
    k0, b0 = state_line(out)
    assert k0 > 90_000
    maxt = max(json.loads(l)["ts"] for l in open(path))
    # a few cards, two per partition, come back long after everyone else
    # went quiet: past the longest window (7d) + lateness
    cards, per_part = [], {}
    for i in range(10_000):
        c = "c%07d" % i
        p = oracle.partition_of(c, PARTITIONS)
        if per_part.get(p, 0) < 2:
            per_part[p] = per_part.get(p, 0) + 1
            cards.append(c)
    assert len(cards) == 2 * PARTITIONS
    later = maxt + LONGEST + LATENESS + 3_600_000
    lines = [json.dumps({"card_id": cards[i % len(cards)], "amount": 12.5, "merchant": "m1",
                         "country": "FR", "ts": later + 1000 * i}) for i in range(400)]
    rc, out, err = run_weir(["ingest", SPEC, "--data", data_dir],
                            input="".join(l + "\n" for l in lines))
    assert rc == 0, err
    k1, b1 = state_line(out)
    print("TTL: %d keys, %d bytes -> %d keys, %d bytes" % (k0, b0, k1, b1))
    # only the returning cards are live; everyone else's state is gone
    assert k1 <= len(cards), "idle keys were not evicted: %d keys before, %d after (%d live)" \
        % (k0, k1, len(cards))
    assert b1 < b0 / 10, "idle keys' memory was not returned: %d bytes before, %d after" % (b0, b1)
