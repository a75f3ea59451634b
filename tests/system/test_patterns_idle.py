"""A trailing `not` on an idle partition (issue 7, "It must show"): a cart
whose purchase never comes is a match once the watermark passes its
deadline, although its partition sees no event after the cart — in live
mode the tick `weir run` writes for an idle partition moves that
partition's time, and `weir backfill` replays the same logged tick to the
same match, line for line.

Two users in different partitions: A puts item i1 in the cart at T and goes
quiet; C (A's partition) does the same with i2 but buys it within the 10
minutes; B (the other partition) keeps browsing until T + 11 min. Only the
idle partition's tick can confirm A's abandonment.
"""
import json
import time

import xxhash

import httputil

PARTITIONS = 2
LATENESS_MS = 5_000
T = 1_767_225_600_000
M = 60_000

SPEC = """pipeline: idle
partitions: %d
sources:
  clicks:
    key: user_id
    time: ts
    lateness: 5s
    fields:
      user_id: string
      action: string
      item: string
      ts: time
patterns:
  cart_abandoned:
    sequence:
      - cart: action == "add_to_cart"
      - no_purchase:
          not: action == "purchase" and item == cart.item
          gap: 10m
    within: 1h
    emit:
      item: cart.item
""" % PARTITIONS


def part_of(key):
    return xxhash.xxh64(key.encode(), seed=0).intdigest() % PARTITIONS


def users():
    """A and C in one partition, B in the other."""
    names = ["u%03d" % i for i in range(100)]
    a = names[0]
    c = next(n for n in names[1:] if part_of(n) == part_of(a))
    b = next(n for n in names[1:] if part_of(n) != part_of(a))
    return a, b, c


def ev(user, action, item, t):
    return {"user_id": user, "action": action, "item": item, "ts": t}


def read_matches(path):
    return path.read_text().splitlines() if path.exists() else []


def test_idle_partition_confirms_the_absence_live_and_in_backfill(weir_bin, run_weir, tmp_path):
    spec = tmp_path / "idle.yaml"
    spec.write_text(SPEC)
    data = tmp_path / "data"
    a, b, c = users()
    out = data / "outputs" / "cart_abandoned.ndjson"
    with httputil.Server(weir_bin, spec, data, "--tick-idle", "50") as srv:
        conn = srv.connection()

        def post(*events):
            for e in events:
                status, body = srv.json("POST", "/v1/events/clicks", json.dumps(e), conn=conn)
                assert status == 200, body

        post(ev(a, "add_to_cart", "i1", T), ev(c, "add_to_cart", "i2", T + 1000),
             ev(c, "purchase", "i2", T + 2 * M))
        post(ev(b, "view", "x", T + M), ev(b, "view", "x", T + 3 * M))
        # Partition A is idle; its ticks reach T + 3 min only: nothing is due.
        time.sleep(0.5)
        assert read_matches(out) == []
        post(ev(b, "view", "x", T + 11 * M))
        deadline = time.time() + 20
        while not read_matches(out) and time.time() < deadline:
            time.sleep(0.05)
        live = read_matches(out)
        assert srv.stop() == 0
    assert len(live) == 1, live
    m = json.loads(live[0])
    assert m["key"] == a and m["item"] == "i1"
    assert m["partition"] == part_of(a) and m["events"] == [0]
    assert m["start"] == T and m["time"] == T + 10 * M
    assert m["watermark"] == T + 11 * M - LATENESS_MS  # the tick's time, not an event's

    # The tick that did it is in A's partition's log, and replay finds the
    # very same match there.
    replayed = tmp_path / "matches.ndjson"
    run_weir(["backfill", spec, "--data", data, "--out", tmp_path / "rows.csv", "--matches", replayed],
             check=True)
    assert read_matches(replayed) == live
