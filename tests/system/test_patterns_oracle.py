"""The pattern oracle test (issue 7, "It must show"): over 100,000 generated
events delivered out of order (within and beyond the lateness, with ties in
event time and a lull that only ticks move past), weir finds exactly the
matches an independent reference matcher (patternref.py, written from the
semantics in src/stream/pattern.h) finds — the same events in the same
order, the same match and start times, found at the same watermark — for
patterns that use every feature: STEP.field conditions (a step naming an
earlier one and itself), times: n, one_or_more, optional steps, strict and
relaxed contiguity, not steps in the middle and last, within and gap, time
and arrival order, then: (the pattern.NAME column of backfill), emit, and
matches() over D features.

The stream is ingested in three chunks (each `weir ingest` replays the log,
then appends a tick per partition), and the log is replayed by `weir
backfill --matches`: ingest's outputs, backfill's matches and the
reference's must all agree; backfill's matches() and pattern.NAME columns
must equal the reference's for every event.
"""
import csv
import json
import random

import pytest

import patternref as pr

EVENTS = 100_000
KEYS = 300
SEED = 20260707
LATENESS = 30_000
PARTITIONS = 2
M = 60_000
KINDS = "abcde"


def v_of(step):
    return None if step is None else step["v"]


def gt(a, b):
    return a is not None and b is not None and a > b


def patterns():
    """Every feature of item 1, each in at least one pattern."""
    S = pr.Step
    P = pr.Pattern

    def kind(k):
        return lambda e, s: e["kind"] == k

    return [
        # relaxed steps, a condition naming an earlier step, gap, time order
        P("rise", [
            S("lo", kind("a"), 'kind == "a"'),
            S("hi", lambda e, s: e["kind"] == "b" and gt(e["v"], v_of(s.get("lo"))),
              'kind == "b" and v > lo.v', gap=5 * M),
        ], within=20 * M, emit=[("lo_v", "lo.v", lambda s: s["lo"]["v"]),
                               ("hi_v", "hi.v", lambda s: s["hi"]["v"])]),
        # one_or_more with strict contiguity and a self-referencing condition
        P("climb", [
            S("start", kind("c"), 'kind == "c"'),
            S("up", lambda e, s: e["kind"] in ("a", "b") and
              (s.get("up") is None or gt(e["v"], v_of(s.get("up")))),
              'kind in ["a", "b"] and (is_null(up.v) or v > up.v)', one_or_more=True, strict=True),
            S("top", lambda e, s: e["kind"] == "d" and gt(e["v"], v_of(s.get("start"))),
              'kind == "d" and v > start.v'),
        ], within=10 * M, emit=[("start_v", "start.v", lambda s: s["start"]["v"]),
                               ("last_up", "up.v", lambda s: s["up"]["v"])]),
        # times: n, an optional step, arrival order, then:
        P("triple", [
            S("x", kind("c"), 'kind == "c"'),
            S("y", kind("d"), 'kind == "d"', times=2),
            S("z", kind("e"), 'kind == "e"', optional=True),
            S("w", lambda e, s: e["kind"] == "a" and gt(e["v"], v_of(s.get("x"))),
              'kind == "a" and v > x.v'),
        ], within=15 * M, order="arrival", then="review",
            emit=[("x_v", "x.v", lambda s: s["x"]["v"]),
                  ("z_v", "z.v", lambda s: s["z"]["v"] if "z" in s else None)]),
        # an optional times: 2 (none or both, never one), time order
        P("pair", [
            S("s", kind("b"), 'kind == "b"'),
            S("m", kind("e"), 'kind == "e"', times=2, optional=True),
            S("t", lambda e, s: e["kind"] == "a" and gt(e["v"], v_of(s.get("s"))),
              'kind == "a" and v > s.v'),
        ], within=12 * M, emit=[("s_v", "s.v", lambda s: s["s"]["v"]),
                               ("m_v", "m.v", lambda s: s["m"]["v"] if "m" in s else None)]),
        # a not step in the middle, with a gap
        P("gapped", [
            S("open", kind("b"), 'kind == "b"'),
            S("quiet", lambda e, s: e["kind"] == "e" and gt(e["v"], 50), 'kind == "e" and v > 50',
              negated=True, gap=3 * M),
            S("close", kind("c"), 'kind == "c"', gap=8 * M),
        ], within=10 * M, emit=[("open_v", "open.v", lambda s: s["open"]["v"])]),
        # a trailing not (deadline from its gap), time order
        P("silence", [
            S("d", kind("d"), 'kind == "d"'),
            S("a", lambda e, s: e["kind"] == "a" and e["v"] < 40, 'kind == "a" and v < 40',
              gap=2 * M),
            S("nob", kind("b"), 'kind == "b"', negated=True, gap=4 * M),
        ], within=10 * M, emit=[("d_v", "d.v", lambda s: s["d"]["v"]),
                               ("a_item", "a.item", lambda s: s["a"]["item"])]),
        # a trailing not in arrival order (deadline from within), strict next step
        P("lonely", [
            S("e1", lambda e, s: e["kind"] == "e" and e["v"] > 30, 'kind == "e" and v > 30'),
            S("e2", kind("e"), 'kind == "e"', strict=True),
            S("none", lambda e, s: e["kind"] == "e" and e["item"] == s["e1"]["item"],
              'kind == "e" and item == e1.item', negated=True),
        ], within=3 * M, order="arrival", emit=[("e1_item", "e1.item", lambda s: s["e1"]["item"])]),
    ]


FEATURES = [  # (name, pattern index, window)
    ("rises_30m", 0, 30 * M),
    ("triples_1h", 2, 60 * M),
    ("silences_1h", 4, 60 * M),
]


def spec_yaml(pats):
    out = ["pipeline: patterns_oracle", "partitions: %d" % PARTITIONS, "sources:", "  ev:",
           "    key: k", "    time: ts", "    lateness: %dms" % LATENESS, "    fields:",
           "      k: string", "      kind: string", "      v: int", "      item: string",
           "      ts: time", "features:", "  n_1h: count() over 1h"]
    for name, pi, d in FEATURES:
        out.append("  %s: matches(%s) over %dms" % (name, pats[pi].name, d))
    out.append("patterns:")
    return "\n".join(out) + "\n" + "".join(p.yaml() for p in pats)


def gen_events(n, seed):
    """Arrival order; event time lags arrival by up to 20 s (within the 30 s
    lateness), 0.5% by 60-300 s (late); a fifth of times on whole seconds
    (ties); a 25-minute lull in the middle that only a tick moves past."""
    rnd = random.Random(seed)
    now = 1767225600000
    out = []
    weights = [3, 3, 2, 2, 2]
    for i in range(n):
        now += rnd.randint(0, 500)
        if i == n // 2:
            now += 25 * M
        key = "k%04d" % min(int(rnd.paretovariate(1.2)) - 1, KEYS - 1) if rnd.random() < 0.3 \
            else "k%04d" % rnd.randrange(KEYS)
        r = rnd.random()
        if r < 0.005:
            t = now - rnd.randint(60_000, 300_000)
        else:
            t = now - rnd.randint(0, 20_000)
        if rnd.random() < 0.2:
            t -= t % 1000
        out.append({"k": key, "kind": rnd.choices(KINDS, weights)[0], "v": rnd.randint(1, 100),
                    "item": "i%d" % rnd.randrange(4), "ts": t})
    return out


def read_log(weir, data, topic):
    """Every record of the topic, per partition in offset order."""
    _, stdout, _ = weir(["log", "read", str(data), "--topic", topic], check=True)
    parts = {}
    for line in stdout.splitlines():
        r = json.loads(line)
        parts.setdefault(r["partition"], []).append(r)
    return parts


def canon(m):
    return json.dumps(m, sort_keys=True)


@pytest.fixture(scope="module")
def run(weir_bin, tmp_path_factory):
    from conftest import WeirRunner
    weir = WeirRunner(weir_bin)
    tmp = tmp_path_factory.mktemp("patterns")
    pats = patterns()
    spec = tmp / "patterns.yaml"
    spec.write_text(spec_yaml(pats))
    data = tmp / "data"
    events = gen_events(EVENTS, SEED)
    bounds = [0, EVENTS // 3, 2 * EVENTS // 3 + 7, EVENTS]
    for lo, hi in zip(bounds, bounds[1:]):
        chunk = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events[lo:hi])
        weir(["ingest", str(spec), "--data", str(data)], input=chunk, check=True)
    out = tmp / "rows.csv"
    matches = tmp / "matches.ndjson"
    weir(["backfill", str(spec), "--data", str(data), "--out", str(out), "--matches",
              str(matches)], check=True)

    # The reference, over the records as logged (events and ticks).
    ref_found, ref_rows = [], {}
    for part, recs in sorted(read_log(weir, data, "ev").items()):
        m = pr.Matcher(pats, LATENESS, part)
        for r in recs:
            if r.get("type") == "tick":
                m.tick(r["value"]["time"])
                continue
            ev = r["value"]
            flags = m.event(r["offset"], ev["k"], ev["ts"], ev)
            at = ev["ts"] if flags is not None else m.wm
            counts = {name: m.count(pi, ev["k"], at, d) for name, pi, d in FEATURES}
            ref_rows[(part, r["offset"])] = (counts, flags)
        ref_found.extend(m.found)
    ingested = []
    for p in pats:
        path = data / "outputs" / ("%s.ndjson" % p.name)
        ingested.extend(json.loads(l) for l in path.read_text().splitlines())
    replayed = [json.loads(l) for l in matches.read_text().splitlines()]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    return {"pats": pats, "ref": ref_found, "ingested": ingested, "replayed": replayed,
            "rows": rows, "ref_rows": ref_rows, "spec": spec, "data": data, "tmp": tmp}


def test_enough_matches_of_every_pattern(run):
    """A test that found nothing would prove nothing."""
    by = {}
    for m in run["ref"]:
        by[m["pattern"]] = by.get(m["pattern"], 0) + 1
    for p in run["pats"]:
        assert by.get(p.name, 0) >= 30, (p.name, by)


def test_ingest_matches_equal_the_reference(run):
    got = sorted(canon(m) for m in run["ingested"])
    want = sorted(canon(m) for m in run["ref"])
    assert len(got) == len(want)
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    assert got == want, "missing %s\nextra %s" % (missing, extra)


def test_backfill_matches_equal_ingest(run):
    assert sorted(canon(m) for m in run["replayed"]) == sorted(canon(m) for m in run["ingested"])


def test_backfill_matches_keep_to_the_time_range(run, run_weir):
    """--from/--to cut the matches by their match time as they cut the rows
    by event time (they used to be written whole)."""
    times = sorted(m["time"] for m in run["ingested"])
    lo, hi = times[len(times) // 3], times[2 * len(times) // 3]
    matches = run["tmp"] / "range-matches.ndjson"
    run_weir(["backfill", run["spec"], "--data", run["data"], "--out", run["tmp"] / "range.csv",
              "--from", lo, "--to", hi, "--matches", matches], check=True)
    got = [json.loads(l) for l in matches.read_text().splitlines()]
    want = [m for m in run["ingested"] if lo <= m["time"] < hi]
    assert 0 < len(want) < len(run["ingested"])
    assert sorted(canon(m) for m in got) == sorted(canon(m) for m in want)


def test_matches_are_written_in_watermark_order(run):
    """Per partition and pattern, a match found later is never written earlier."""
    last = {}
    for m in run["replayed"]:
        k = (m["partition"], m["pattern"])
        assert m["watermark"] >= last.get(k, m["watermark"])
        last[k] = m["watermark"]


def test_matches_features_and_flags_equal_the_reference(run):
    rows, ref = run["rows"], run["ref_rows"]
    assert len(rows) == EVENTS
    bad = []
    for row in rows:
        counts, flags = ref[(int(row["partition"]), int(row["offset"]))]
        for name, _, _ in FEATURES:
            if int(row[name]) != counts[name]:
                bad.append((row["partition"], row["offset"], name, row[name], counts[name]))
        want = int(bool(flags and flags.get("triple")))
        if int(row["pattern.triple"]) != want:
            bad.append((row["partition"], row["offset"], "pattern.triple", row["pattern.triple"], want))
    assert not bad, bad[:5]
    assert sum(int(r["pattern.triple"]) for r in rows) >= 30
