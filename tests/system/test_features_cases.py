"""Small hand-computed cases of the feature semantics, each value worked out
by hand from DESIGN.md and the contract of `weir ingest`/`weir backfill`,
checked against weir AND against the oracle (so the oracle is itself
checked on the corner cases the big random test may hit only by chance):

  - exact windows exclude out-of-order events later than t; bucketed
    windows include the later events of t's bucket;
  - a late event is scored as of the watermark, not applied, and written to
    the late output; an event at exactly the watermark is not late;
  - first/last ties in event time go by log order;
  - state TTL: a key idle past its longest window + lateness starts over
    (last(x) is null), one exactly at the cutoff does not; a late event of an
    expired key sees no state; a watermark jump that closes a key's window
    and expires the key still emits the window;
  - ticks at the end of an ingest advance every partition (an idle
    partition's windows close, its next event can be late); a second ingest
    rebuilds state from the log and re-emits nothing;
  - sessions merge when an event bridges them; hopping windows;
  - int keys: partition = xxh64(decimal digits) % N, the key printed as an
    int.
"""
import json


import oracle
from oracle import Agg, Feature, M, OnClose, Spec, agg_feature, select_agg

FT = {"k": "string", "t": "time", "x": "int"}


def spec_a(partitions=2):
    A = lambda n, a: agg_feature(n, a, FT)  # noqa: E731
    feats = [
        A("n_exact", Agg("count", None, 10 * M)),
        A("n_bucket", Agg("count", None, 10 * M, 5 * M)),
        A("s_exact", Agg("sum", "x", 10 * M)),
        A("first_x", Agg("first", "x", 10 * M)),
        A("last_x", Agg("last", "x", 10 * M)),
        A("prev_x", Agg("last", "x")),
        Feature("own", "x * 10", lambda e: oracle.imul(e["x"], 10), "int"),
    ]
    tumble = OnClose("tumble", "tumbling", size=10 * M, selects=[
        select_agg("n", Agg("count"), FT), select_agg("s", Agg("sum", "x"), FT)])
    return Spec("cases_a", partitions, "ev", "k", "t", 1 * M, FT, feats, [tumble])


def spec_b():
    feats = [agg_feature("n", Agg("count", None, 30 * M), FT)]
    sess = OnClose("sess", "session", gap=20 * M, selects=[
        select_agg("n", Agg("count"), FT), select_agg("s", Agg("sum", "x"), FT),
        select_agg("lo", Agg("min", "t"), FT), select_agg("hi", Agg("max", "t"), FT)])
    hop = OnClose("hop", "hopping", size=10 * M, every=5 * M, selects=[
        select_agg("n", Agg("count"), FT), select_agg("s", Agg("sum", "x"), FT)])
    return Spec("cases_b", 1, "ev", "k", "t", 15 * M, FT, feats, [sess, hop])


def ev(k, t, x):
    return json.dumps({"k": k, "t": t, "x": x})


class Case:
    """Runs chunks of events through weir (one ingest each) and the oracle."""

    def __init__(self, run_weir, data_dir, spec):
        self.run_weir, self.data, self.spec = run_weir, data_dir, spec
        self.path = data_dir.parent / (spec.pipeline + ".yaml")
        self.path.write_text(spec.yaml())
        self.oracle = oracle.Oracle(spec)

    def ingest(self, lines):
        rc, out, err = self.run_weir(["ingest", self.path, "--data", self.data],
                                     input="".join(l + "\n" for l in lines))
        assert rc == 0, err
        self.oracle.ingest(lines)
        return out

    def rows(self):
        out = self.data.parent / "rows.ndjson"
        rc, _, err = self.run_weir(["backfill", self.path, "--data", self.data, "--out", out,
                                    "--format", "ndjson"])
        assert rc == 0, err
        return oracle.read_ndjson(out)

    def outputs(self, name):
        p = self.data / "outputs" / (name + ".ndjson")
        return oracle.read_ndjson(p) if p.exists() else []


def check_rows(case, expected):
    """expected: list of (partition, offset, {column: value}) in any order;
    weir's and the oracle's rows must both match, and there must be no other
    rows."""
    got = {(r["partition"], r["offset"]): r for r in case.rows()}
    orc = {(r["partition"], r["offset"]): r for r in case.oracle.rows}
    names = [f.name for f in case.spec.features]
    assert sorted(got) == sorted((p, o) for p, o, _ in expected), sorted(got)
    assert sorted(orc) == sorted(got)
    errs = []
    for p, o, cols in expected:
        g, r = got[(p, o)], orc[(p, o)]
        rv = dict(zip(names, r["features"]), late=r["late"], key=r["key"], time=r["time"])
        for c, v in cols.items():
            if rv[c] != v or type(rv[c]) is not type(v):
                errs.append("ORACLE p%d/o%d %s: expected %r, oracle %r" % (p, o, c, v, rv[c]))
            if g.get(c, "<absent>") != v or type(g.get(c)) is not type(v):
                errs.append("WEIR p%d/o%d %s: expected %r, weir %r" % (p, o, c, v, g.get(c, "<absent>")))
    assert not errs, "\n".join(errs)


def windows(lines, *cols):
    return sorted(tuple(l[c] for c in ("key", "start", "end") + cols) for l in lines)


def test_windows_late_ties_and_ttl(run_weir, data_dir):
    spec = spec_a()
    for k in "abcf":
        assert oracle.partition_of(k, 2) == 1
    case = Case(run_weir, data_dir, spec)
    case.ingest([
        ev("a", 300000, 1), ev("a", 360000, 2), ev("a", 330000, 4), ev("a", 200000, 8),
        ev("a", 300000, 16), ev("b", 400000, 1), ev("a", 1200000, 32), ev("c", 1180000, 3),
        ev("b", 1190000, 5), ev("f", 1200100, 9), ev("a", 1900000, 64), ev("c", 1850000, 7),
        ev("a", 3000000, 128), ev("f", 2000000, 11), ev("c", 2950000, 1),
    ])
    N = None
    check_rows(case, [
        (1, 0, dict(late=False, n_exact=1, n_bucket=1, s_exact=1, first_x=1, last_x=1, prev_x=N,
                    own=10)),
        (1, 1, dict(late=False, n_exact=2, n_bucket=2, s_exact=3, first_x=1, last_x=2, prev_x=1)),
        # out of order (330000 < 360000, within the 1m lateness): the exact
        # window (−270000, 330000] leaves out 360000; the bucket [300000,
        # 600000) of t=330000 takes it in
        (1, 2, dict(late=False, n_exact=2, n_bucket=3, s_exact=5, first_x=1, last_x=4, prev_x=2)),
        # late (200000 < W = 300000): as of W, not applied; its own x
        (1, 3, dict(late=True, n_exact=1, n_bucket=3, s_exact=1, first_x=1, last_x=1, prev_x=4,
                    own=80)),
        # exactly at the watermark: not late; ties at 300000 by log order
        (1, 4, dict(late=False, n_exact=2, n_bucket=4, s_exact=17, first_x=1, last_x=16,
                    prev_x=4)),
        (1, 5, dict(late=False, n_exact=1, prev_x=N)),
        # W jumps to 1140000, cutoff 1140000 − (10m + 1m) = 480000 > 360000:
        # a starts over
        (1, 6, dict(late=False, n_exact=1, n_bucket=1, s_exact=32, first_x=32, prev_x=N)),
        (1, 7, dict(late=False, n_exact=1, n_bucket=1, prev_x=N)),
        (1, 8, dict(late=False, n_exact=1, s_exact=5, prev_x=N)),  # b expired
        (1, 9, dict(late=False, n_exact=1, prev_x=N)),
        (1, 10, dict(late=False, n_exact=1, n_bucket=1, first_x=64, prev_x=32)),
        # W = 1840000, cutoff 1180000 = c's newest: not below, c is kept
        (1, 11, dict(late=False, n_exact=1, s_exact=7, prev_x=3)),
        # W = 2940000, cutoff 2280000 > 1900000: a expires again (after its
        # [30m, 40m) window is emitted)
        (1, 12, dict(late=False, prev_x=N)),
        # late, and f (newest 1200100 < cutoff 2280000) has expired: no state
        (1, 13, dict(late=True, n_exact=0, n_bucket=0, s_exact=0, first_x=N, last_x=N, prev_x=N,
                     own=110)),
        (1, 14, dict(late=False, n_exact=1, prev_x=N)),  # c expired since
    ])
    late = case.outputs("late")
    want = [{"partition": 1, "offset": 3, "key": "a", "time": 200000, "watermark": 300000,
             "event": {"k": "a", "t": 200000, "x": 8}},
            {"partition": 1, "offset": 13, "key": "f", "time": 2000000, "watermark": 2940000,
             "event": {"k": "f", "t": 2000000, "x": 11}}]
    assert sorted(case.oracle.late, key=lambda l: l["offset"]) == want
    assert sorted(late, key=lambda l: l["offset"]) == want
    # windows whose end the final watermark (2940000) passed; a's [0, 10m)
    # is emitted although the same watermark step expires a
    tumble = [("a", 0, 600000, 4, 23), ("a", 1200000, 1800000, 1, 32),
              ("a", 1800000, 2400000, 1, 64), ("b", 0, 600000, 1, 1),
              ("b", 600000, 1200000, 1, 5), ("c", 600000, 1200000, 1, 3),
              ("c", 1800000, 2400000, 1, 7), ("f", 1200000, 1800000, 1, 9)]
    assert windows(case.oracle.closed, "n", "s") == sorted(tumble)
    assert windows(case.outputs("tumble"), "n", "s") == sorted(tumble)


def test_ticks_and_second_ingest(run_weir, data_dir):
    spec = spec_a()
    assert oracle.partition_of("d", 2) == 0 and oracle.partition_of("a", 2) == 1
    case = Case(run_weir, data_dir, spec)
    case.ingest([ev("a", 1000000, 1), ev("d", 400000, 2)])
    # the tick (T = 1000000) moved partition 0's watermark to 940000: d's
    # [0, 10m) closed although partition 0 saw no later event
    assert windows(case.outputs("tumble"), "n", "s") == [("d", 0, 600000, 1, 2)]
    assert windows(case.oracle.closed, "n", "s") == [("d", 0, 600000, 1, 2)]
    case.ingest([ev("d", 500000, 4), ev("d", 950000, 8), ev("a", 1100000, 16)])
    check_rows(case, [
        (1, 0, dict(late=False, n_exact=1, prev_x=None)),
        (0, 0, dict(late=False, n_exact=1, prev_x=None)),
        # offset 1 of each partition is the tick; 500000 < 940000: late
        (0, 2, dict(late=True, n_exact=1, s_exact=2, prev_x=2, own=40)),
        # state rebuilt by the second ingest's replay
        (0, 3, dict(late=False, n_exact=2, s_exact=10, prev_x=2)),
        (1, 2, dict(late=False, n_exact=2, s_exact=17, prev_x=1)),
    ])
    want = [{"partition": 0, "offset": 2, "key": "d", "time": 500000, "watermark": 940000,
             "event": {"k": "d", "t": 500000, "x": 4}}]
    assert case.outputs("late") == want and case.oracle.late == want
    # nothing emitted twice by the replay, nothing else closed yet
    assert windows(case.outputs("tumble"), "n", "s") == [("d", 0, 600000, 1, 2)]
    assert windows(case.oracle.closed, "n", "s") == [("d", 0, 600000, 1, 2)]


def test_sessions_merge_and_hopping(run_weir, data_dir):
    T0 = 36000000
    case = Case(run_weir, data_dir, spec_b())
    case.ingest([ev("e", T0, 1), ev("e", T0 + 25 * M, 2), ev("e", T0 + 12 * M, 4),
                 ev("g", T0 + 26 * M, 8), ev("g", T0 + 46 * M, 16), ev("f", T0 + 180 * M, 32)])
    # e: [T0, T0+20m) and [T0+25m, T0+45m), bridged by T0+12m into one;
    # g: T0+46m is exactly last + gap: outside [T0+26m, T0+46m), a new session
    sess = [("e", T0, T0 + 45 * M, 3, 7, T0, T0 + 25 * M),
            ("g", T0 + 26 * M, T0 + 46 * M, 1, 8, T0 + 26 * M, T0 + 26 * M),
            ("g", T0 + 46 * M, T0 + 66 * M, 1, 16, T0 + 46 * M, T0 + 46 * M)]
    assert windows([l for l in case.oracle.closed if l["aggregate"] == "sess"],
                   "n", "s", "lo", "hi") == sorted(sess)
    got = [dict(l, lo=oracle._as_ms(l["lo"]), hi=oracle._as_ms(l["hi"]))
           for l in case.outputs("sess")]
    assert windows(got, "n", "s", "lo", "hi") == sorted(sess)
    hop = []
    for k, t, x in (("e", T0, 1), ("e", T0 + 25 * M, 2), ("e", T0 + 12 * M, 4),
                    ("g", T0 + 26 * M, 8), ("g", T0 + 46 * M, 16)):
        s = t - t % (5 * M)
        hop += [(k, s - 5 * M, s + 5 * M, 1, x), (k, s, s + 10 * M, 1, x)]
    assert windows([l for l in case.oracle.closed if l["aggregate"] == "hop"], "n", "s") == \
        sorted(hop)
    assert windows(case.outputs("hop"), "n", "s") == sorted(hop)


def test_int_keys_partition_by_decimal_digits(run_weir, data_dir):
    """An int key: partition = xxh64 of its decimal digits (with the sign)
    % N; it prints as a JSON int in backfill rows, the late output and the
    aggregates on close."""
    ft = {"k": "int", "t": "time", "x": "int"}
    spec = Spec("intkeys", 3, "ev", "k", "t", 1 * M, ft,
                [agg_feature("n", Agg("count", None, 10 * M), ft),
                 agg_feature("prev_x", Agg("last", "x"), ft)],
                [OnClose("tum", "tumbling", size=1 * M, selects=[select_agg("n", Agg("count"), ft)])])
    case = Case(run_weir, data_dir, spec)
    keys = [0, 7, -5, 123456789012, 42, 9007199254740991, -9007199254740991, 7]
    lines = [json.dumps({"k": k, "t": "1970-01-01T00:00:%02d.5+00:00" % i, "x": i})
             for i, k in enumerate(keys)]
    # then every partition moves past 1m + lateness, and a late event
    for k in (0, 7, 123456789012, 9007199254740991):
        lines.append(json.dumps({"k": k, "t": 200000, "x": 0}))
    lines.append(json.dumps({"k": 7, "t": 1000, "x": 99}))
    case.ingest(lines)
    rows = case.rows()
    assert len(rows) == len(lines)
    assert {oracle.partition_of(k, 3) for k in keys} == {0, 1, 2}
    problems = []
    by_key = {}
    for r in rows:
        if not isinstance(r["key"], int):
            problems.append("backfill key %r is not a JSON int" % (r["key"],))
        k = int(r["key"])
        if r["partition"] != oracle.partition_of(k, 3):
            problems.append("key %d in partition %d, want %d"
                            % (k, r["partition"], oracle.partition_of(k, 3)))
        by_key.setdefault(k, []).append(r)
    assert sorted(by_key) == sorted(set(keys))
    assert [r["time"] for r in by_key[7]] == [1500, 7500, 200000, 1000]
    assert [r["prev_x"] for r in by_key[7]] == [None, 1, 7, 0]
    assert [r["late"] for r in by_key[7]] == [False, False, False, True]
    late = case.outputs("late")
    assert len(late) == 1 and int(late[0]["key"]) == 7
    if not isinstance(late[0]["key"], int):
        problems.append("late output key %r is not a JSON int" % (late[0]["key"],))
    tum = case.outputs("tum")
    assert len(tum) == len(set(keys))
    for w in tum:
        if not isinstance(w["key"], int):
            problems.append("aggregate output key %r is not a JSON int" % (w["key"],))
            break
    assert not problems, "\n".join(problems)
    errs = oracle.compare_rows(spec, case.oracle.rows, rows)
    assert not errs, "\n".join(errs)


def test_int_sum_past_2_53_is_null(run_weir, data_dir):
    """An int sum is exact below 2^53 (an int field holds at most 2^53 - 1);
    from there on (2^53 + 1 rounds to 2^53), as past int64, it is an
    overflow: null, as int arithmetic's, never a rounded or wrapped number
    (it was: 3 x (2^53 - 1) gave ...976, and 1030 x 2^53 gave -2^63, a
    negative sum). A single value of 2^53 - 1 is still itself for last()
    and first()."""
    case = Case(run_weir, data_dir, spec_a(partitions=1))
    big = 2 ** 53
    case.ingest([ev("a", 60000, big - 1), ev("a", 61000, 1), ev("a", 62000, 1)]
                + [ev("b", 60000 + i, big - 1) for i in range(1030)])
    rows = {(r["key"], r["offset"]): r for r in case.rows()}
    assert rows[("a", 0)]["s_exact"] == big - 1
    assert rows[("a", 1)]["s_exact"] is None and rows[("a", 2)]["s_exact"] is None
    assert rows[("b", 3)]["s_exact"] == big - 1 and rows[("b", 3)]["last_x"] == big - 1
    assert rows[("b", 4)]["s_exact"] is None
    assert all(rows[("b", 3 + i)]["s_exact"] is None for i in range(2, 1030))


def test_a_sources_ttl_keeps_last_across_an_idle_spell(run_weir, data_dir):
    """State TTL is the longest window plus the lateness (DESIGN.md), so
    last(x) forgets a key idle for longer: with no window and no lateness,
    at once. `ttl: D` on the source keeps an idle key at least D."""
    base = ("pipeline: t%d\npartitions: 1\nsources:\n  ev:\n    key: k\n    time: ts\n"
            "    lateness: 0s\n%s    fields: {k: string, v: int, ts: time}\n"
            "features:\n  lv: last(v)\n  gap: seconds(ts - last(ts))\n")
    rows = {}
    for i, ttl in enumerate(("", "    ttl: 30d\n")):
        spec = data_dir.parent / ("ttl%d.yaml" % i)
        spec.write_text(base % (i, ttl))
        data = data_dir.parent / ("d%d" % i)
        run_weir(["ingest", spec, "--data", data],
                 input='{"k":"a","ts":20000,"v":1}\n{"k":"a","ts":864020000,"v":2}\n', check=True)
        out = data_dir.parent / ("r%d.ndjson" % i)
        run_weir(["backfill", spec, "--data", data, "--out", out, "--format", "ndjson"], check=True)
        rows[i] = [json.loads(l) for l in out.read_text().splitlines()]
    assert rows[0][1]["lv"] is None and rows[0][1]["gap"] is None  # forgotten, as documented
    assert rows[1][1]["lv"] == 1 and rows[1][1]["gap"] == 864000.0  # ten days later, kept


def test_a_variance_that_overflows_is_null(run_weir, data_dir):
    """A variance past the doubles (1e308, 1e308, -1e308) is null, as the
    sum of the same values is; it read 0."""
    spec = data_dir.parent / "var.yaml"
    spec.write_text("pipeline: v\npartitions: 1\nsources:\n  ev:\n    key: k\n    time: ts\n"
                    "    fields: {k: string, f: float, ts: time}\n"
                    "features:\n  sd: stddev(f) over 1h\n  vr: variance(f) over 1h\n")
    run_weir(["ingest", spec, "--data", data_dir],
             input="".join('{"k":"a","f":%s,"ts":%d}\n' % (f, t)
                           for f, t in (("1e308", 1000), ("1e308", 2000), ("-1e308", 3000))),
             check=True)
    out = data_dir.parent / "v.ndjson"
    run_weir(["backfill", spec, "--data", data_dir, "--out", out, "--format", "ndjson"], check=True)
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert (rows[1]["sd"], rows[1]["vr"]) == (0, 0)  # two equal values: exactly 0
    assert (rows[2]["sd"], rows[2]["vr"]) == (None, None)
