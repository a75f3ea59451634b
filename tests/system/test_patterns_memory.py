"""Memory under partial matches that never complete (issue 7, "It must
show"): every event opens a partial match of three patterns (time order,
arrival order, and one waiting for a step that never comes after a loop),
none of which ever completes. A partial match lives at most `within` (5
minutes) past its first event and a key at most its TTL past its last, so
the state `weir ingest` reports at the end of a stream four times as long
must be about the same, not four times as big; and the partial matches
alive must not exceed what `within` and the TTL allow: at most one per
pattern and event of the last within + 2 x lateness.

The stream mixes 200 users who never stop (their partial matches only go
through `within`) with a crowd of one-off users (only the TTL removes them).
"""
import json
import random
import re

import pytest

LATENESS = 30_000
WITHIN = 5 * 60_000
STEP = 200  # ms between events

SPEC = """pipeline: mem
partitions: 2
sources:
  ev:
    key: k
    time: ts
    lateness: 30s
    fields: {k: string, kind: string, ts: time}
patterns:
  pair_time:
    sequence:
      - a: kind == "a"
      - never: kind == "z"
    within: 5m
  pair_arrival:
    sequence:
      - a: kind == "a"
      - never: kind == "z"
    within: 5m
    order: arrival
    then: review
  loop_then_never:
    sequence:
      - a:
          when: kind == "a"
          one_or_more: true
      - quiet:
          not: kind == "q"
      - never: kind == "z"
    within: 5m
"""


def stream(n, seed):
    rnd = random.Random(seed)
    t = 1_767_225_600_000
    for i in range(n):
        t += STEP
        k = "hot%03d" % rnd.randrange(200) if rnd.random() < 0.5 else "once%07d" % i
        yield {"k": k, "kind": "a", "ts": t - rnd.randint(0, 20_000)}


def ingest(run_weir, tmp_path, n):
    spec = tmp_path / "mem.yaml"
    spec.write_text(SPEC)
    data = tmp_path / ("data%d" % n)
    lines = "".join(json.dumps(e) + "\n" for e in stream(n, seed=5))
    _, out, _ = run_weir(["ingest", spec, "--data", data], input=lines, check=True)
    st = re.search(r"^state: (\d+) keys, (\d+) bytes$", out, re.M)
    pat = re.search(r"^patterns: (\d+) matches .*?, (\d+) partial matches, (\d+) events held", out, re.M)
    assert st and pat, out
    return {"keys": int(st.group(1)), "bytes": int(st.group(2)), "matches": int(pat.group(1)),
            "partial": int(pat.group(2)), "held": int(pat.group(3))}


@pytest.fixture(scope="module")
def runs(weir_bin, tmp_path_factory):
    from conftest import WeirRunner
    run_weir = WeirRunner(weir_bin)
    tmp = tmp_path_factory.mktemp("patmem")
    return ingest(run_weir, tmp, 30_000), ingest(run_weir, tmp, 120_000)


def test_nothing_completes(runs):
    for r in runs:
        assert r["matches"] == 0


def test_partial_matches_are_bounded_by_within(runs):
    # A key lives until W passes its newest event + TTL (within + lateness),
    # and W is the newest time - lateness: events of the last within + 2 x
    # lateness (+ the 20 s jitter) may hold partial matches, each at most
    # one per pattern.
    window_events = (WITHIN + 2 * LATENESS + 20_000) // STEP
    for r in runs:
        assert 0 < r["partial"] <= 3 * window_events, r


def test_state_does_not_grow_with_the_stream(runs):
    short, long = runs
    print("30,000 events: %s\n120,000 events: %s" % (short, long))
    assert long["partial"] <= short["partial"] * 1.25
    assert long["keys"] <= short["keys"] * 1.25
    assert long["bytes"] <= short["bytes"] * 1.25
