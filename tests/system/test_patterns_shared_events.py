"""Memory of overlapping partial matches (the shared event list of
src/stream/pattern.c): one key, an event a second, every event opening a
partial match of a loop (`one_or_more`, or `times: n` never reached) that
every open partial match also extends, and none completing within the hour.
Each partial match used to keep its own list of the events it took, so the
key's state grew with the square of its events (74 MB for an hour of one
key); with each event held once per key, it grows linearly: twice the
events, about twice the bytes (the quadratic store gave 4x).

Then the lists are still whole: a closing event completes every partial
match that has its loop's count at once, and each match lists its own
events in order — with `one_or_more`, from its first on (the partial
matches started later share the earlier ones' nodes); with `times: 300`,
its 300 then the closing one (the lists part ways where each loop is full).
"""
import json
import re

import pytest

T0 = 1_767_225_600_000
N = 450  # (2N below `times`' 1000: never reached)

SPEC = """pipeline: patmem
partitions: 1
sources:
  ev:
    key: k
    time: ts
    lateness: 1s
    fields: {k: string, kind: string, v: int, ts: time}
patterns:
  grow:
    sequence:
      - a:
          when: kind == "a"
          %s: %s
      - b: kind == "b"
    within: 1h
    order: %s
    emit: {last_a: a.v}
"""

VARIANTS = {
    "one_or_more": ("one_or_more", "true", "time"),
    "times": ("times", "1000", "arrival"),
}


def ingest(run_weir, tmp_path, name, events, quantifier=None):
    spec = tmp_path / ("%s.yaml" % name)
    spec.write_text(SPEC % (quantifier or VARIANTS[name]))
    data = tmp_path / ("data-%s-%d" % (name, len(events)))
    lines = "".join(json.dumps(e) + "\n" for e in events)
    _, out, _ = run_weir(["ingest", spec, "--data", data], input=lines, check=True)
    st = re.search(r"^state: (\d+) keys, (\d+) bytes$", out, re.M)
    pat = re.search(r"^patterns: (\d+) matches .*?, (\d+) partial matches", out, re.M)
    assert st and pat, out
    return {"keys": int(st.group(1)), "bytes": int(st.group(2)), "matches": int(pat.group(1)),
            "partial": int(pat.group(2)), "data": data}


def opens(n):
    return [{"k": "u1", "kind": "a", "v": i, "ts": T0 + i * 1000} for i in range(n)]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_state_grows_linearly_with_overlapping_partial_matches(run_weir, tmp_path, name):
    small = ingest(run_weir, tmp_path, name, opens(N))
    big = ingest(run_weir, tmp_path, name, opens(2 * N))
    print("%s: %d events %s, %d events %s" % (name, N, small, 2 * N, big))
    for r, n in ((small, N), (big, 2 * N)):
        assert r["keys"] == 1 and r["matches"] == 0, r
        # every event opened one (time order: the newest waits for the
        # watermark, held, not yet a partial match)
        assert n - 1 <= r["partial"] <= n, r
    assert big["bytes"] / small["bytes"] < 2.6, (small, big)


@pytest.mark.parametrize("name,times", [("one_or_more", None), ("times", 300)])
def test_a_closing_event_completes_the_partial_matches_whole(run_weir, tmp_path, name, times):
    n = 600
    events = opens(n) + [{"k": "u1", "kind": "b", "v": -1, "ts": T0 + n * 1000},
                         {"k": "u1", "kind": "a", "v": -2, "ts": T0 + (n + 5) * 1000}]
    q = ("times", str(times), "arrival") if times else None
    r = ingest(run_weir, tmp_path, name, events, q)
    # partial match i took events i .. its last `a` (n - 1, or i + times - 1)
    # and the closing one (offset n); with times, only those that got all
    # of theirs complete
    last = [n - 1 if not times else i + times - 1 for i in range(n)]
    done = [i for i in range(n) if last[i] < n]
    assert r["matches"] == len(done), r
    found = [json.loads(l) for l in (r["data"] / "outputs" / "grow.ndjson").read_text().splitlines()]
    assert [m["events"] for m in found] == [list(range(i, last[i] + 1)) + [n] for i in done]
    assert [m["last_a"] for m in found] == [last[i] for i in done]  # a.v: its last `a`
    assert [m["start"] for m in found] == [T0 + i * 1000 for i in done]
