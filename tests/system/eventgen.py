"""Seeded generators of NDJSON events for the feature system tests.

Everything is a function of the seed (random.Random), so a failing test
reproduces exactly. Events come out in arrival order; event time is a global
arrival clock minus a delay: within the lateness for most events, beyond it
for a few (`late_frac`), so the stream is out of order within the lateness
and has some late events (whether an event is really late is decided by the
oracle, per partition, from the events before it).
"""
import datetime
import json
import math
import random

import oracle as o
from oracle import H, M, Agg, Feature, OnClose, Select, agg_feature, select_agg

EPOCH_2026 = 1767225600000  # 2026-01-01T00:00:00Z in epoch ms

MERCHANTS = ["m%03d" % i for i in range(300)]
COUNTRIES = ["FR", "DE", "US", "GB", "ES", "IT", "fr", "Jp", "BR", "NL"]


def rfc3339(ms, rng):
    """ms as an RFC 3339 string in one of several equivalent forms (offsets,
    lower-case separators, 3 or 6 fraction digits, none when whole)."""
    form = rng.randrange(5)
    offset_min = 0
    if form == 1:
        offset_min = rng.choice([60, 120, -300, 330, -90])
    sec, milli = divmod(ms, 1000)
    dt = datetime.datetime.fromtimestamp(sec, tz=datetime.timezone.utc) + \
        datetime.timedelta(minutes=offset_min)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if form == 2:
        s = s.replace("T", "t")
    if milli or form == 3:
        s += ".%03d" % milli
        if form == 3:
            s += "000"  # microseconds: digits past the third are dropped
    if offset_min == 0:
        s += "z" if form == 4 else "Z"
    else:
        sign = "+" if offset_min > 0 else "-"
        s += "%s%02d:%02d" % (sign, abs(offset_min) // 60, abs(offset_min) % 60)
    return s


class KeyProfile:
    __slots__ = ("name", "home", "merchants", "mu", "fixed_amount", "lat", "lon", "last_time")

    def __init__(self, name, rng):
        self.name = name
        self.home = rng.choice(COUNTRIES)
        self.merchants = rng.sample(MERCHANTS, 4)
        self.mu = rng.uniform(2.0, 5.0)
        # some keys always pay the same amount: windows of equal values
        # (variance exactly 0, min = max, one distinct value)
        self.fixed_amount = round(rng.uniform(5, 50), 2) if rng.random() < 0.05 else None
        self.lat = rng.uniform(-60, 60)
        self.lon = rng.uniform(-170, 170)
        self.last_time = None


def zipf_weights(n, s):
    return [1.0 / math.pow(i + 1, s) for i in range(n)]


def gen_events(n, keys=1200, seed=1, lateness_ms=30000, late_frac=0.005, mean_gap_ms=1500,
               int_keys=False, start_ms=EPOCH_2026, idle_frac=0.02):
    """n events as a list of dicts (arrival order), for the schema
    {user: string|int, ts: time, amount: float, qty: int, merchant: string,
    country: string, flag: bool, lat: float, lon: float} plus raw extras
    (label, note) that are not declared. Some fields are missing or null."""
    rng = random.Random(seed)
    if int_keys:
        names = [rng.choice([1, -1]) * rng.randrange(0, 10 ** rng.randrange(1, 12))
                 for _ in range(keys)]
        names = list(dict.fromkeys(names))
        while len(names) < keys:
            names.append(10 ** 12 + len(names))
    else:
        names = ["u%05d" % i for i in range(keys)]
    profiles = [KeyProfile(k, rng) for k in names]
    weights = zipf_weights(len(profiles), 0.8)
    # idle keys: silent for a long stretch in the middle (state TTL)
    idle = set(rng.sample(range(len(profiles)), max(1, int(len(profiles) * idle_frac))))
    clock = start_ms
    out = []
    span = n * mean_gap_ms
    chosen = rng.choices(range(len(profiles)), weights=weights, k=n)
    for i in range(n):
        clock += int(rng.expovariate(1.0 / mean_gap_ms))
        ki = chosen[i]
        force_late = False
        if ki in idle and 0.3 * span < clock - start_ms < 0.6 * span:
            # an idle key: silent, but for a rare late event (its state is
            # past its TTL by then)
            if rng.random() < 0.1:
                force_late = True
            else:
                ki = rng.randrange(len(profiles))
        p = profiles[ki]
        r = rng.random()
        if r < late_frac or force_late:
            t = clock - lateness_ms - rng.randrange(1000, 300000)
        elif r < late_frac + 0.01 and p.last_time is not None and p.last_time >= clock - lateness_ms // 2:
            t = p.last_time  # a tie with the key's previous event
        elif r < 0.3:
            t = clock  # in order
        else:
            t = clock - rng.randrange(0, int(lateness_ms * 0.97))
        p.last_time = t
        ev = {}
        ev["user"] = p.name
        ev["ts"] = rfc3339(t, rng) if rng.random() < 0.3 else t
        r = rng.random()
        if r < 0.03:
            pass  # missing
        elif r < 0.04:
            ev["amount"] = None
        elif p.fixed_amount is not None:
            ev["amount"] = p.fixed_amount
        elif r < 0.08:
            ev["amount"] = rng.randrange(1, 300)  # a JSON int for a float field
        elif r < 0.085:
            ev["amount"] = 0.0
        else:
            ev["amount"] = round(math.exp(rng.gauss(p.mu, 1.0)), 2)
        r = rng.random()
        if r < 0.05:
            pass
        elif r < 0.06:
            ev["qty"] = None
        else:
            ev["qty"] = rng.choice([1, 1, 1, 2, 2, 3, 5, 10, 0, -1, -2, 7, 20])
        r = rng.random()
        if r >= 0.02:
            ev["merchant"] = rng.choice(p.merchants) if rng.random() < 0.8 else rng.choice(MERCHANTS)
        r = rng.random()
        if r >= 0.02:
            ev["country"] = p.home if rng.random() < 0.85 else rng.choice(COUNTRIES)
        r = rng.random()
        if r < 0.05:
            pass
        else:
            ev["flag"] = rng.random() < 0.3
        if rng.random() < 0.97:
            ev["lat"] = round(p.lat + rng.gauss(0, 1), 4)
            ev["lon"] = round(p.lon + rng.gauss(0, 1), 4)
        ev["label"] = 1 if rng.random() < 0.02 else 0
        if rng.random() < 0.1:
            ev["note"] = rng.choice(["a", "b,c", 'say "hi"', "é"])
        # shuffle member order a little: order in the object must not matter
        if rng.random() < 0.2:
            items = list(ev.items())
            rng.shuffle(items)
            ev = dict(items)
        out.append(ev)
    return out


def to_lines(events):
    """Events as NDJSON lines (str, each ending with a newline); dicts are
    dumped compactly, strs are taken as already-encoded lines."""
    lines = []
    for e in events:
        if isinstance(e, str):
            lines.append(e if e.endswith("\n") else e + "\n")
        else:
            lines.append(json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n")
    return lines


def chunks(seq, k):
    """seq cut into k consecutive parts of near-equal size."""
    n = len(seq)
    return [seq[i * n // k:(i + 1) * n // k] for i in range(k)]


# ------------------------------------------------------------------ specs --
# Specs over the schema of gen_events, described for the oracle (oracle.py):
# each feature's expression text is what weir loads, its lambda what the
# oracle computes, by the rules of src/spec/expr.c.

FIELDS = {"user": "string", "ts": "time", "amount": "float", "qty": "int", "merchant": "string",
          "country": "string", "flag": "bool", "lat": "float", "lon": "float"}


def full_spec(partitions=4, lateness_ms=30000, int_keys=False, with_aggregates=True,
              pipeline="oracle"):
    """Every aggregate kind, exact and bucketed windows, last(x), derived
    features of every kind of expression, and aggregates on close."""
    fields = dict(FIELDS)
    if int_keys:
        fields["user"] = "int"
    ft = fields
    F = []

    def A(name, kind, arg=None, over=None, every=0, q=None, argfn=None, argtype=None,
          approx=None):
        F.append(agg_feature(name, Agg(kind, arg, over, every, q, argfn, argtype), ft, approx))

    def X(name, text, impl, type, deps=(), aggs=()):
        F.append(Feature(name, text, impl, type, deps=deps, aggs=aggs))

    A("n_1h", "count", None, H)
    A("nq_1h", "count", "qty", H)
    A("nflag_1h", "count", "flag", H)
    A("nbig_1h", "count", "if(amount > 100, amount, null)", H,
      argfn=lambda f: o.if_(o.cmp(f["amount"], ">", 100), f["amount"], None), argtype="float")
    A("amt_sum_1h", "sum", "amount", H)
    A("qty_sum_6h", "sum", "qty", 6 * H, 10 * M)
    A("amtq_sum_2h", "sum", "amount * qty", 2 * H,
      argfn=lambda f: o.fop(f["amount"], f["qty"], "*"), argtype="float")
    A("amt_avg_6h", "avg", "amount", 6 * H, 30 * M)
    A("qty_avg_2h", "avg", "qty", 2 * H)
    A("amt_min_1h", "min", "amount", H)
    A("amt_max_6h", "max", "amount", 6 * H, H)
    A("qty_min_2h", "min", "qty", 2 * H, 15 * M)
    A("qty_max_6h", "max", "qty", 6 * H)
    A("ts_min_1h", "min", "ts", H)
    A("ts_max_2h", "max", "ts", 2 * H, 20 * M)
    A("amt_std_1h", "stddev", "amount", H)
    A("amt_var_2h", "variance", "amount", 2 * H, 20 * M)
    A("qty_std_6h", "stddev", "qty", 6 * H, H)
    A("qty_var_1h", "variance", "qty", H)
    A("amt_first_1h", "first", "amount", H)
    A("amt_last_1h", "last", "amount", H)
    A("qty_first_6h", "first", "qty", 6 * H, H)
    A("qty_last_2h", "last", "qty", 2 * H, 15 * M)
    A("ts_last_2h", "last", "ts", 2 * H)
    A("merchants_1h", "distinct", "merchant", H)
    A("merchants_6h", "approx_distinct", "merchant", 6 * H, 30 * M)
    A("countries_2h", "distinct", "lower(country)", 2 * H,
      argfn=lambda f: o.lower_(f["country"]), argtype="string")
    A("qty_nd_2h", "distinct", "qty", 2 * H)
    A("amt_nd_6h", "approx_distinct", "amount", 6 * H)
    A("amt_p50_1h", "approx_quantile", "amount", H, q=0.5, approx=0.01)
    A("amt_p90_6h", "approx_quantile", "amount", 6 * H, H, q=0.9, approx=0.01)
    A("qty_p0_2h", "approx_quantile", "qty", 2 * H, q=0, approx=0.01)
    A("amt_p100_1h", "approx_quantile", "amount", H, q=1, approx=0.01)
    A("prev_amount", "last", "amount")
    A("prev_country", "last", "country")
    A("prev_flag", "last", "flag")
    A("prev_qty", "last", "qty")
    A("prev_lower", "last", "lower(country)", argfn=lambda f: o.lower_(f["country"]),
      argtype="string")

    # derived features (one reads a feature declared after it)
    X("score_x", "amt_ratio * 10 + if(big, 1, 0)",
      lambda e: o.fop(o.fop(e["amt_ratio"], 10, "*"), o.if_(e["big"], 1, 0), "+"), "float",
      deps=["amt_ratio", "big"])
    X("secs_since", "seconds(ts - last(ts))",
      lambda e: o.seconds_(o.isub(e["ts"], e.prev("ts"))), "float")
    X("new_country", "country != last(country)",
      lambda e: o.cmp(e["country"], "!=", e.prev("country")), "bool")
    X("amt_ratio", "amount / (amt_avg_6h + 1)",
      lambda e: o.fop(e["amount"], o.fop(e["amt_avg_6h"], 1, "+"), "/"), "float",
      deps=["amt_avg_6h"])
    X("big", "amount > 100 and not flag",
      lambda e: o.and3(o.cmp(e["amount"], ">", 100), o.not3(e["flag"])), "bool")
    X("risky", "if(flag, amount * 2, coalesce(amount, 0.0))",
      lambda e: o.if_(e["flag"], o.fop(e["amount"], 2, "*"), o.coalesce(e["amount"], 0.0)),
      "float")
    X("qty_expr", "qty * 3 - qty_sum_6h % 7",
      lambda e: o.isub(o.imul(e["qty"], 3), o.imod(e["qty_sum_6h"], 7)), "int",
      deps=["qty_sum_6h"])
    X("qty_div", "qty / 4", lambda e: o.fop(e["qty"], 4, "/"), "float")
    X("huge", "qty * 9223372036854775807", lambda e: o.imul(e["qty"], o.INT_MAX), "int")
    X("div0", "amount / (qty - 2)", lambda e: o.fop(e["amount"], o.isub(e["qty"], 2), "/"),
      "float")
    X("log_amt", "log(amount)", lambda e: o.log_(e["amount"]), "float")
    X("sqrt_qty", "sqrt(qty)", lambda e: o.sqrt_(e["qty"]), "float")
    X("exp_q", "exp(qty)", lambda e: o.exp_(e["qty"]), "float")
    X("rnd", "round(amount)", lambda e: o.round1(e["amount"]), "int")
    X("rnd1", "round(amount * 1.37, 1)", lambda e: o.round2(o.fop(e["amount"], 1.37, "*"), 1),
      "float")
    X("hour", "hour_of_day(ts)", lambda e: o.hour_of_day(e["ts"]), "int")
    X("dow", "day_of_week(ts)", lambda e: o.day_of_week(e["ts"]), "int")
    X("mlen", "len(lower(merchant))", lambda e: o.len_(o.lower_(e["merchant"])), "int")
    X("home", 'lower(country) in ["fr", "de"]',
      lambda e: o.in_(o.lower_(e["country"]), ["fr", "de"]), "bool")
    X("not_us", "country not in ['US', 'GB']",
      lambda e: o.in_(e["country"], ["US", "GB"], negated=True), "bool")
    X("dist", "haversine(lat, lon, 48.8566, 2.3522)",
      lambda e: o.haversine(e["lat"], e["lon"], 48.8566, 2.3522), "float")
    X("mx", "max(amount, qty, 5)", lambda e: o.smax(e["amount"], e["qty"], 5), "float")
    X("mn", "min(qty, 10)", lambda e: o.smin(e["qty"], 10), "int")
    X("coal", "coalesce(last(amount), amount, -1.0)",
      lambda e: o.coalesce(e.prev("amount"), e["amount"], -1.0), "float")
    X("first_ev", "is_null(last(ts))", lambda e: e.prev("ts") is None, "bool")
    X("gap", "ts - ts_min_1h", lambda e: o.isub(e["ts"], e["ts_min_1h"]), "duration",
      deps=["ts_min_1h"])
    X("age", "(ts - ts_min_1h) / 1h", lambda e: o.fop(o.isub(e["ts"], e["ts_min_1h"]), H, "/"),
      "float", deps=["ts_min_1h"])
    X("ts_plus", "ts + 30m", lambda e: o.iadd(e["ts"], 30 * M), "time")
    X("big_or_home", "big or home", lambda e: o.or3(e["big"], e["home"]), "bool",
      deps=["big", "home"])
    X("neg_amt", "-amount", lambda e: o.fneg(e["amount"]), "float")
    X("absq", "abs(qty)", lambda e: o.iabs(e["qty"]), "int")
    X("mod_f", "amount % 7", lambda e: o.fop(e["amount"], 7, "%"), "float")
    X("ratio_cnt", "amt_sum_1h / n_1h", lambda e: o.fop(e["amt_sum_1h"], e["n_1h"], "/"),
      "float", deps=["amt_sum_1h", "n_1h"])
    X("flag_eq", "flag == last(flag)", lambda e: o.cmp(e["flag"], "==", e.prev("flag")), "bool")
    X("win_span", "seconds(ts_last_2h - ts_min_1h)",
      lambda e: o.seconds_(o.isub(e["ts_last_2h"], e["ts_min_1h"])), "float",
      deps=["ts_last_2h", "ts_min_1h"])
    X("std_ok", "coalesce(amt_std_1h, 0.0) >= 0",
      lambda e: o.cmp(o.coalesce(e["amt_std_1h"], 0.0), ">=", 0), "bool", deps=["amt_std_1h"])
    X("dur_cmp", "ts - last(ts) < 1m", lambda e: o.cmp(o.isub(e["ts"], e.prev("ts")), "<", M),
      "bool")
    X("inline", "sum(qty) over 30m - count() over 30m every 5m",
      lambda e: o.isub(e.agg(Agg("sum", "qty", 30 * M)), e.agg(Agg("count", None, 30 * M, 5 * M))),
      "int", aggs=[Agg("sum", "qty", 30 * M), Agg("count", None, 30 * M, 5 * M)])

    aggs = []
    if with_aggregates:
        aggs = on_close_aggregates(ft)
    return o.Spec(pipeline, partitions, "tx", "user", "ts", lateness_ms, fields, F, aggs)


def on_close_aggregates(ft):
    def sel(name, kind, arg=None, q=None):
        return select_agg(name, Agg(kind, arg, q=q), ft)

    hourly = OnClose("hourly", "tumbling", size=H, selects=[
        sel("n", "count"), sel("total", "sum", "amount"), sel("nq", "count", "qty"),
        sel("qty_sum", "sum", "qty"), sel("avg_amt", "avg", "amount"),
        sel("lo", "min", "amount"), sel("hi", "max", "qty"),
        sel("first_amt", "first", "amount"), sel("last_amt", "last", "amount"),
        sel("merchants", "distinct", "merchant"), sel("sd", "stddev", "amount"),
        sel("var_q", "variance", "qty"), sel("t0", "min", "ts"), sel("t1", "max", "ts"),
        select_agg("countries", Agg("distinct", "lower(country)", argfn=lambda f: o.lower_(
            f["country"]), argtype="string"), ft),
        Select("mean", "sum(amount) / count()",
               lambda v: o.fop(v[A_SUM_AMOUNT], v[A_COUNT], "/"), "float",
               [A_SUM_AMOUNT, A_COUNT]),
    ])
    hopping = OnClose("hop", "hopping", size=2 * H, every=30 * M, selects=[
        sel("n", "count"), sel("total", "sum", "amount"), sel("top", "max", "amount"),
        sel("last_q", "last", "qty"),
    ])
    session = OnClose("visits", "session", gap=20 * M, selects=[
        sel("n", "count"), sel("total", "sum", "amount"), sel("first_q", "first", "qty"),
        sel("start_ts", "min", "ts"), sel("end_ts", "max", "ts"),
        Select("span_s", "seconds(max(ts) - min(ts))",
               lambda v: o.seconds_(o.isub(v[A_MAX_TS], v[A_MIN_TS])), "float",
               [A_MAX_TS, A_MIN_TS]),
    ])
    # a short gap: out-of-order events (within the 30s lateness) often
    # bridge two sessions of a busy key
    bursts = OnClose("bursts", "session", gap=1 * M, selects=[
        sel("n", "count"), sel("total", "sum", "amount"), sel("last_amt", "last", "amount")])
    return [hourly, hopping, session, bursts]


A_SUM_AMOUNT, A_COUNT, A_MAX_TS, A_MIN_TS = (Agg("sum", "amount"), Agg("count"), Agg("max", "ts"),
                                             Agg("min", "ts"))
