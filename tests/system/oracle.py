"""An independent reference implementation (oracle) of weir's feature
semantics (DESIGN.md "Pipeline spec (YAML)" and "Semantics", and the
contract of `weir ingest` / `weir backfill`), in plain Python.

It does not parse weir's expression language: a spec is described here in
Python (Spec, Feature, Agg, OnClose), which writes the YAML weir loads, and
every derived feature carries its expression text (for weir) and a Python
function (for the oracle) written by hand with the null and type rules of
src/spec/expr.c (the helpers below). The oracle then runs the stream the way
the contract says: partition = xxh64(key) % N, per partition in log order,
watermark = max event time - lateness, late events scored as of the
watermark without being applied, ticks at the end of each ingest, state TTL,
windows exact and bucketed, aggregates on close, the late output.

Per key it keeps a time-sorted list of the applied events (ties in log
order), so every window is a contiguous slice found by bisection; windows in
the tests are small, so recomputing each aggregate from its slice is cheap
and obviously right.
"""
import bisect
import functools
import heapq
import json
import math
import operator
import re

import xxhash

MS, S, M, H, D = 1, 1000, 60000, 3600000, 86400000
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
MAX_LINE = 1 << 20


def fmt_duration(ms):
    for unit, size in (("d", D), ("h", H), ("m", M), ("s", S)):
        if ms % size == 0:
            return "%d%s" % (ms // size, unit)
    return "%dms" % ms


# ---------------------------------------------------------------- values --
# null is None; bool, int, float, str as in Python; time and duration are
# ints of milliseconds (the feature's declared type tells them apart).

def _i(v):
    """An int result: null outside int64 (int overflow never wraps)."""
    return v if v is not None and INT_MIN <= v <= INT_MAX else None


def _f(v):
    """A float result: null if NaN or infinite."""
    return v if v is not None and math.isfinite(v) else None


def iadd(a, b):
    return None if a is None or b is None else _i(a + b)


def isub(a, b):
    return None if a is None or b is None else _i(a - b)


def imul(a, b):
    return None if a is None or b is None else _i(a * b)


def idiv(a, b):
    """int-like / int truncated toward zero (duration / int)."""
    if a is None or b is None or b == 0 or (a == INT_MIN and b == -1):
        return None
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def imod(a, b):
    """int % int with the sign of a, as C."""
    if a is None or b is None or b == 0:
        return None
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def fop(a, b, op):
    """float arithmetic (ints widen): + - * / %; null rules of expr.c."""
    if a is None or b is None:
        return None
    x, y = float(a), float(b)
    try:
        if op == "+":
            r = x + y
        elif op == "-":
            r = x - y
        elif op == "*":
            r = x * y
        elif op == "/":
            if y == 0.0:
                return None  # ±inf or NaN
            r = x / y
        else:
            if y == 0.0:
                return None
            r = math.fmod(x, y)
    except (OverflowError, ValueError):
        return None
    return _f(r)


def fneg(a):
    return None if a is None else -a


def cmp(a, op, b):
    """A comparison: false when either side is null. Numbers compare by
    value (int with float widens the int to float, as C does)."""
    if a is None or b is None:
        return False
    if isinstance(a, int) and isinstance(b, float) and not isinstance(a, bool):
        a = float(a)
    if isinstance(b, int) and isinstance(a, float) and not isinstance(b, bool):
        b = float(b)
    if isinstance(a, str):
        a, b = a.encode(), b.encode()  # bytewise
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def and3(a, b):
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a, b):
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def not3(a):
    return None if a is None else (not a)


def if_(c, a, b):
    return a if c is True else b


def coalesce(*xs):
    for x in xs:
        if x is not None:
            return x
    return None


def in_(x, items, negated=False):
    if x is None:
        return False
    found = False
    for it in items:
        if it is not None and cmp(x, "==", it):
            found = True
            break
    return (not found) if negated else found


def to_float(x):
    return None if x is None else float(x)


def fabs_(x):
    return None if x is None else abs(x)


def iabs(x):
    return None if x is None else _i(abs(x))


def log_(x):
    return None if x is None or x <= 0 else _f(math.log(x))


def exp_(x):
    if x is None:
        return None
    try:
        return _f(math.exp(x))
    except OverflowError:
        return None


def sqrt_(x):
    return None if x is None or x < 0 else _f(math.sqrt(x))


def c_round(x):
    """C round(): half away from zero, exact on doubles."""
    ax = abs(x)
    f = math.floor(ax)
    r = f + 1.0 if ax - f >= 0.5 else f
    return math.copysign(r, x)


def round1(x):
    """round(x) -> int; null outside int64."""
    if x is None:
        return None
    if isinstance(x, int):
        return x
    r = c_round(x)
    if not (-9223372036854775808.0 <= r < 9223372036854775808.0):
        return None
    return int(r)


def round2(x, n):
    if x is None or n is None or n < -15 or n > 15:
        return None
    p = math.pow(10.0, n)
    try:
        return _f(c_round(float(x) * p) / p)
    except OverflowError:
        return None


def smin(*xs):
    if any(x is None for x in xs):
        return None
    if any(isinstance(x, float) for x in xs):
        xs = [float(x) for x in xs]
    if isinstance(xs[0], str):
        return min(xs, key=lambda s: s.encode())
    return min(xs)


def smax(*xs):
    if any(x is None for x in xs):
        return None
    if any(isinstance(x, float) for x in xs):
        xs = [float(x) for x in xs]
    if isinstance(xs[0], str):
        return max(xs, key=lambda s: s.encode())
    return max(xs)


def lower_(s):
    if s is None:
        return None
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def len_(s):
    return None if s is None else len(s)  # code points


def seconds_(d):
    return None if d is None else d / 1000.0


def hour_of_day(t):
    return None if t is None else (t % D) // H


def day_of_week(t):
    if t is None:
        return None
    day = (t - t % D) // D
    return (day + 3) % 7


def haversine(lat1, lon1, lat2, lon2):
    if None in (lat1, lon1, lat2, lon2):
        return None
    rad = math.pi / 180.0
    dlat = (lat2 - lat1) * rad
    dlon = (lon2 - lon1) * rad
    a = math.sin(dlat / 2) * math.sin(dlat / 2) + \
        math.cos(lat1 * rad) * math.cos(lat2 * rad) * math.sin(dlon / 2) * math.sin(dlon / 2)
    if a > 1:
        a = 1
    return _f(2 * 6371.0 * math.asin(math.sqrt(a)))


# ------------------------------------------------------------------ spec --

AGG_TYPES = {"count": "int", "distinct": "int", "approx_distinct": "int", "avg": "float",
             "stddev": "float", "variance": "float", "approx_quantile": "float"}


class Agg:
    """An aggregate call. arg: a field name, or None for count(); argfn: a
    Python function of the event's fields when arg is an expression text.
    over/every in ms (over=None: `last(x)` without a window, or an on-close
    select's aggregate)."""

    def __init__(self, kind, arg=None, over=None, every=0, q=None, argfn=None, argtype=None):
        self.kind, self.arg, self.over, self.every, self.q = kind, arg, over, every, q
        self.argfn, self.argtype = argfn, argtype
        self.ck = (kind, arg, over, every, q)
        self.is_int = argtype in ("int", "time")  # set from the schema by Spec
        assert over is None or every == 0 or over % every == 0

    def _id(self):
        return (self.kind, self.arg, self.over, self.every, self.q)

    def __eq__(self, other):
        return isinstance(other, Agg) and self._id() == other._id()

    def __hash__(self):
        return hash(self._id())

    @property
    def prev(self):
        return self.over is None and self.kind == "last"

    def call_text(self):
        args = [] if self.arg is None else [self.arg]
        if self.q is not None:
            args.append(repr(self.q))
        return "%s(%s)" % (self.kind, ", ".join(args))

    def text(self):
        t = self.call_text()
        if self.over is not None:
            t += " over " + fmt_duration(self.over)
            if self.every:
                t += " every " + fmt_duration(self.every)
        return t

    def result_type(self, field_types):
        if self.kind in AGG_TYPES:
            return AGG_TYPES[self.kind]
        return self.argtype or field_types[self.arg]


class Feature:
    """name: expression text (for weir) and impl(env) -> value (oracle).
    type: 'int' 'float' 'bool' 'string' 'time' 'duration'. approx=alpha:
    compare with that relative tolerance (approx_quantile)."""

    def __init__(self, name, text, impl, type, approx=None, aggs=(), deps=()):
        self.name, self.text, self.impl, self.type, self.approx = name, text, impl, type, approx
        self.aggs = list(aggs)  # aggregate calls inside (windows: state TTL)
        self.deps = list(deps)  # features it reads (evaluation order)


def agg_feature(name, agg, field_types, approx=None):
    return Feature(name, agg.text(), lambda e, a=agg: e.agg(a), agg.result_type(field_types),
                   approx=approx, aggs=[agg])


class Select:
    def __init__(self, name, text, impl, type, aggs):
        self.name, self.text, self.impl, self.type, self.aggs = name, text, impl, type, aggs


class OnClose:
    """An aggregate on close. kind: 'tumbling' (size), 'hopping' (size,
    every), 'session' (gap). selects: [Select]; a Select's impl gets a dict
    {Agg: value} of its aggregate calls over the window's events."""

    def __init__(self, name, kind, size=0, every=0, gap=0, selects=()):
        self.name, self.kind, self.size, self.every, self.gap = name, kind, size, every, gap
        self.selects = list(selects)

    def window_text(self):
        if self.kind == "tumbling":
            return "tumbling " + fmt_duration(self.size)
        if self.kind == "hopping":
            return "hopping %s every %s" % (fmt_duration(self.size), fmt_duration(self.every))
        return "session gap " + fmt_duration(self.gap)

    def horizon(self):
        return self.gap if self.kind == "session" else self.size


def select_agg(name, agg, field_types):
    return Select(name, agg.call_text(), lambda v, a=agg: v[a], agg.result_type(field_types), [agg])


def _yaml_scalar(s):
    plain_ok = (s and s == s.strip() and s[0] not in "[]{}'\"!&*#|>%@,-?:`"
                and ": " not in s and " #" not in s and not s.endswith(":"))
    if plain_ok:
        return s
    return "'" + s.replace("'", "''") + "'"


class Spec:
    def __init__(self, pipeline, partitions, source, key, time, lateness, fields, features,
                 aggregates=()):
        self.pipeline, self.partitions = pipeline, partitions
        self.source, self.key, self.time, self.lateness = source, key, time, lateness
        self.fields = dict(fields)  # name -> type, declared order
        self.features = list(features)
        self.aggregates = list(aggregates)
        # every windowed aggregate call, by canonical text (their argument
        # values are computed once per event)
        self.args = {}
        for f in self.features:
            for a in f.aggs:
                if a.argfn is not None:
                    self.args[a.arg] = a.argfn
        for oc in self.aggregates:
            for s in oc.selects:
                for a in s.aggs:
                    if a.argfn is not None:
                        self.args[a.arg] = a.argfn
        for f in self.features:
            for a in f.aggs:
                a.is_int = (a.argtype or self.fields.get(a.arg)) in ("int", "time")
        for oc in self.aggregates:
            for sl in oc.selects:
                for a in sl.aggs:
                    a.is_int = (a.argtype or self.fields.get(a.arg)) in ("int", "time")
        byname = {f.name: f for f in self.features}
        self.order, state = [], {}

        def visit(f):
            if state.get(f.name) == 2:
                return
            assert state.get(f.name) != 1, "cycle at " + f.name
            state[f.name] = 1
            for d in f.deps:
                visit(byname[d])
            state[f.name] = 2
            self.order.append(f)

        for f in self.features:
            visit(f)
        horizons = [a.over for f in self.features for a in f.aggs if a.over is not None]
        horizons += [oc.horizon() for oc in self.aggregates]
        self.longest = max(horizons) if horizons else 0

    def yaml(self):
        out = ["pipeline: %s" % self.pipeline, "partitions: %d" % self.partitions, "",
               "sources:", "  %s:" % self.source, "    key: %s" % self.key,
               "    time: %s" % self.time, "    lateness: %s" % fmt_duration(self.lateness),
               "    fields:"]
        for n, t in self.fields.items():
            out.append("      %s: %s" % (n, t))
        out += ["", "features:"]
        for f in self.features:
            out.append("  %s: %s" % (f.name, _yaml_scalar(f.text)))
        if self.aggregates:
            out += ["", "aggregates:"]
            for oc in self.aggregates:
                out += ["  %s:" % oc.name, "    window: %s" % oc.window_text(), "    select:"]
                for s in oc.selects:
                    out.append("      %s: %s" % (s.name, _yaml_scalar(s.text)))
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- decode --

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339(s):
    m = _RFC3339.match(s)
    if not m:
        return None
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    if not 1 <= mo <= 12:
        return None
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    mdays = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    if not 1 <= d <= mdays or hh > 23 or mi > 59 or ss > 60:
        return None
    frac = m.group(7) or ""
    ms = int((frac + "000")[:3]) if frac else 0
    off = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        off = (oh * 60 + om) * (-1 if m.group(9) == "-" else 1)
    secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off * 60
    return secs * 1000 + ms


def _json_kind(v):
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return "a null"


class BadEvent(Exception):
    """field: the name of the field at fault, or None (not JSON, not an
    object, too long)."""

    def __init__(self, reason, field=None):
        Exception.__init__(self, reason)
        self.field = field


def decode_value(name, ftype, v):
    if v is None:
        return None
    if ftype == "string":
        if isinstance(v, str):
            return v
    elif ftype == "int":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not (abs(v) <= 2 ** 53 - 1 and float(v) == math.floor(v)):
                raise BadEvent("field %r: not a whole number" % name, name)
            return int(v)
    elif ftype == "float":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            f = float(v)
            if not math.isfinite(f):
                raise BadEvent("field %r: out of range" % name, name)
            return f
    elif ftype == "bool":
        if isinstance(v, bool):
            return v
    elif ftype == "time":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not (abs(v) <= 2 ** 53 - 1 and float(v) == math.floor(v)):
                raise BadEvent("field %r: not whole milliseconds" % name, name)
            return int(v)
        if isinstance(v, str):
            t = parse_rfc3339(v)
            if t is None:
                raise BadEvent("field %r: not an RFC 3339 time" % name, name)
            return t
    raise BadEvent("field %r: expected %s, got %s" % (name, ftype, _json_kind(v)), name)


def decode_line(spec, line):
    """(raw object, fields dict) for one NDJSON line (str without its
    newline), or raises BadEvent."""
    if len(line.encode()) > MAX_LINE:
        raise BadEvent("line longer than 1 MiB")
    pairs = []  # each object's members, in the order its parse ends
    try:
        obj = json.loads(line, object_pairs_hook=lambda p: pairs.append(p) or dict(p))
    except ValueError:
        raise BadEvent("not JSON")
    if not isinstance(obj, dict):
        raise BadEvent("not a JSON object")
    # A declared field named twice is refused (json.loads would keep the
    # last, weir's decoder the first: src/spec/decode.h). The outermost
    # object's parse ends last.
    names = [k for k, _ in pairs[-1]]
    for name in spec.fields:
        if names.count(name) > 1:
            raise BadEvent("field %r appears twice" % name, name)
    fields = {}
    for name, ftype in spec.fields.items():
        fields[name] = decode_value(name, ftype, obj.get(name))
    if fields[spec.key] is None:
        raise BadEvent("missing key field %r" % spec.key, spec.key)
    if fields[spec.time] is None:
        raise BadEvent("missing time field %r" % spec.time, spec.time)
    for text, fn in spec.args.items():
        fields[text] = fn(fields)
    return obj, fields


def key_bytes(k):
    return k.encode() if isinstance(k, str) else str(k).encode()


def partition_of(k, n):
    return xxhash.xxh64(key_bytes(k), seed=0).intdigest() % n


# -------------------------------------------------------------- windows --

def quantile_rank(q, n):
    """The 0-based rank of the lower q-quantile (qsketch.h)."""
    return int(math.floor(q * (n - 1)))


def _variance(vals, is_int):
    n = len(vals)
    if n < 2:
        return None
    if is_int:
        s1, s2 = sum(vals), sum(map(operator.mul, vals, vals))
        return (n * s2 - s1 * s1) / (n * (n - 1))  # exact rational, rounded once
    mean = math.fsum(vals) / n
    d = [v - mean for v in vals]
    return math.fsum(map(operator.mul, d, d)) / (n - 1)


def _stddev(vals, is_int):
    v = _variance(vals, is_int)
    return None if v is None else math.sqrt(v)


def _sum(vals, is_int):
    if is_int:
        return _i(sum(vals))
    return math.fsum(vals) if vals else 0.0


_AGG = {
    "count": lambda v, i: len(v),
    "sum": _sum,
    "distinct": lambda v, i: len(set(v)),
    "approx_distinct": lambda v, i: len(set(v)),
    "avg": lambda v, i: math.fsum(v) / len(v) if v else None,
    "min": lambda v, i: min(v) if v else None,
    "max": lambda v, i: max(v) if v else None,
    "first": lambda v, i: v[0] if v else None,
    "last": lambda v, i: v[-1] if v else None,
    "variance": _variance,
    "stddev": _stddev,
}


def aggregate(kind, vals, q=None, is_int=False):
    """One aggregate over the non-null values vals (in time order, ties in
    log order); count() gets one entry per event. Empty: count, sum and
    distinct 0, the others null; variance and stddev null below 2 values."""
    if kind == "approx_quantile":
        return float(sorted(vals)[quantile_rank(q, len(vals))]) if vals else None
    return _AGG[kind](vals, is_int)


class KeyState:
    """One key's state: its applied events in time order (ties in log
    order) as columns: times, and one list per aggregate argument."""
    __slots__ = ("times", "cols", "newest", "prev", "closing")

    def __init__(self, args):
        self.times = []
        self.cols = {a: [] for a in args}
        self.newest = None
        self.prev = None
        self.closing = {}  # on-close aggregate name -> its windows of this key


class Env(dict):
    """What a feature reads: the event's fields and the features computed so
    far (one namespace), plus prev(x) and agg(Agg) over the key's state."""

    __slots__ = ("st", "qt", "cache", "ftypes", "vcache")

    def prev(self, name):
        p = self.st.prev if self.st is not None else None
        return None if p is None else p[name]

    def agg(self, a):
        if a.prev:
            return self.prev(a.arg)
        ck = a.ck
        c = self.cache
        if ck in c:
            return c[ck]
        st, qt = self.st, self.qt
        if st is None or not st.times:
            lo = hi = 0
        elif a.every:
            b = qt // a.every
            lo = bisect.bisect_left(st.times, (b - a.over // a.every + 1) * a.every)
            hi = bisect.bisect_left(st.times, (b + 1) * a.every)
        else:
            lo = bisect.bisect_right(st.times, qt - a.over)
            hi = bisect.bisect_right(st.times, qt)
        if a.arg is None:
            vals = range(hi - lo)
        elif hi == lo:
            vals = []
        else:
            vk = (a.arg, lo, hi)
            vals = self.vcache.get(vk)
            if vals is None:
                vals = self.vcache[vk] = list(filter(_not_none, st.cols[a.arg][lo:hi]))
        if a.kind == "approx_quantile":
            r = float(sorted(vals)[quantile_rank(a.q, len(vals))]) if vals else None
        else:
            r = _AGG[a.kind](vals, a.is_int)
        c[ck] = r
        return r


_not_none = functools.partial(operator.is_not, None)


def _window_aggs(oc):
    seen = {}
    for s in oc.selects:
        for a in s.aggs:
            seen[(a.kind, a.arg, a.q)] = a
    return list(seen.values())


class Oracle:
    """Runs a spec over chunks of NDJSON lines, as `weir ingest` once per
    chunk (each followed by a tick per partition), then reports what
    `weir backfill` must print (rows), the late output and the aggregates on
    close.

    late_stale_is_empty: a late event whose key is past its TTL (newest
    applied time < watermark - (longest window + lateness)) sees an empty
    state: a key's state is gone at the same point of the log whether or not
    a sweep reached it yet (principle 2)."""

    def __init__(self, spec, with_fields=(), tick_offsets=True, late_stale_is_empty=True):
        self.spec = spec
        self.with_fields = list(with_fields)
        self.tick_offsets = tick_offsets
        self.late_stale_is_empty = late_stale_is_empty
        n = spec.partitions
        self.parts = [{"max": None, "offset": 0, "keys": {}, "heap": [], "seq": 0}
                      for _ in range(n)]
        self.rows = []          # per event, in processing order
        self.late = []          # late output lines (dicts)
        self.closed = []        # aggregate-on-close lines (dicts)
        self.rejected = []      # (line number in its chunk, chunk index, BadEvent)
        self.accepted = []      # raw objects of the good events, in input order
        self.max_seen = None
        self.ftypes = dict(spec.fields)
        for f in spec.features:
            for a in f.aggs:
                if a.argfn is not None:
                    self.ftypes[a.arg] = a.argtype
        self.window_aggs = {oc.name: _window_aggs(oc) for oc in spec.aggregates}
        self.cols = sorted({a.arg for f in spec.features for a in f.aggs
                            if a.arg is not None and a.over is not None})
        self.chunks = 0
        self.stats = {"late_on_expired_key": 0, "ttl_resets": 0, "session_merges": 0}

    # -- input --

    def ingest(self, lines):
        """One `weir ingest` run over lines (str, without newlines)."""
        spec = self.spec
        for no, line in enumerate(lines, 1):
            try:
                obj, fields = decode_line(spec, line)
            except BadEvent as e:
                self.rejected.append((no, self.chunks, e))
                continue
            self.accepted.append(obj)
            t = fields[spec.time]
            if self.max_seen is None or t > self.max_seen:
                self.max_seen = t
            self._event(partition_of(fields[spec.key], spec.partitions), obj, fields)
        if self.max_seen is not None:
            for p in range(spec.partitions):
                self._tick(p, self.max_seen)
        self.chunks += 1

    # -- per partition --

    def _watermark(self, part):
        return None if part["max"] is None else part["max"] - self.spec.lateness

    def _tick(self, p, T):
        part = self.parts[p]
        if part["max"] is None or T > part["max"]:
            part["max"] = T
        if self.tick_offsets:
            part["offset"] += 1
        self._close(p)

    def _event(self, p, obj, fields):
        spec = self.spec
        part = self.parts[p]
        off = part["offset"]
        part["offset"] += 1
        key, t = fields[spec.key], fields[spec.time]
        W = self._watermark(part)
        keys = part["keys"]
        st = keys.get(key)
        if W is not None and t < W:
            if st is not None and st.newest is not None and \
                    st.newest < W - (spec.longest + spec.lateness):
                self.stats["late_on_expired_key"] += 1
                if self.late_stale_is_empty:
                    st = None
            feats = self._features(fields, st, W)
            self.rows.append(self._row(p, off, key, t, True, feats, obj))
            self.late.append({"partition": p, "offset": off, "key": key, "time": t,
                              "watermark": W, "event": obj})
            return
        if part["max"] is None or t > part["max"]:
            part["max"] = t
        W = self._watermark(part)
        # windows the new watermark closes are emitted before a TTL reset
        # could drop them (a key is only reset once all its windows closed)
        self._close(p)
        cutoff = W - (spec.longest + spec.lateness)
        if st is not None and st.newest is not None and st.newest < cutoff:
            for name, wins in st.closing.items():
                assert not wins, "on-close window of %r still open at TTL reset" % key
            self.stats["ttl_resets"] += 1
            st = None
        if st is None:
            st = keys[key] = KeyState(self.cols)
        i = bisect.bisect_right(st.times, t)
        st.times.insert(i, t)
        for a, col in st.cols.items():
            col.insert(i, fields[a])
        if st.newest is None or t > st.newest:
            st.newest = t
        feats = self._features(fields, st, t)
        st.prev = fields
        self.rows.append(self._row(p, off, key, t, False, feats, obj))
        for oc in spec.aggregates:
            self._closing_add(p, part, key, st, oc, t, off, fields)
        self._close(p)

    def _features(self, fields, st, qt):
        env = Env(fields)
        env.st, env.qt, env.cache, env.ftypes, env.vcache = st, qt, {}, self.ftypes, {}
        for f in self.spec.order:
            env[f.name] = f.impl(env)
        return [env[f.name] for f in self.spec.features]

    def _row(self, p, off, key, t, late, feats, obj):
        return {"partition": p, "offset": off, "key": key, "time": t, "late": late,
                "features": feats, "with": [obj.get(w) for w in self.with_fields]}

    # -- aggregates on close --

    def _closing_add(self, p, part, key, st, oc, t, off, fields):
        """Adds an applied event to key's windows of aggregate oc. A window is
        (sort keys [(time, offset)], events, last time, version): events in
        time order, ties in log order."""
        wins = st.closing.setdefault(oc.name, {})
        heap = part["heap"]
        pos = (t, off)
        if oc.kind in ("tumbling", "hopping"):
            step = oc.size if oc.kind == "tumbling" else oc.every
            n = t // step
            starts = [n * step]
            if oc.kind == "hopping":
                starts = [k * step for k in range(n - oc.size // step + 1, n + 1)]
            for s in starts:
                w = wins.get(s)
                if w is None:
                    w = wins[s] = ([], [], None, 0)
                    part["seq"] += 1
                    heapq.heappush(heap, (s + oc.size, part["seq"], key, oc.name, s, 0))
                i = bisect.bisect_right(w[0], pos)
                w[0].insert(i, pos)
                w[1].insert(i, fields)
            return
        # sessions: windows [first, last + gap) of the key; an event's
        # [t, t + gap) that overlaps sessions merges them
        merged = [s for s, w in wins.items() if t < w[2] + oc.gap and s < t + oc.gap]
        part["seq"] += 1
        if len(merged) == 1:
            s = merged[0]
            w = wins.pop(s)
            i = bisect.bisect_right(w[0], pos)
            w[0].insert(i, pos)
            w[1].insert(i, fields)
            w = (w[0], w[1], max(w[2], t), part["seq"])
            start = min(s, t)
        else:
            if merged:
                self.stats["session_merges"] += 1
            items = [(pos, fields)]
            start, last = t, t
            for s in merged:
                w = wins.pop(s)
                items.extend(zip(w[0], w[1]))
                start = min(start, s)
                last = max(last, w[2])
            items.sort(key=lambda x: x[0])
            w = ([x[0] for x in items], [x[1] for x in items], last, part["seq"])
        wins[start] = w
        heapq.heappush(heap, (w[2] + oc.gap, part["seq"], key, oc.name, start, part["seq"]))

    def _close(self, p):
        part = self.parts[p]
        W = self._watermark(part)
        heap = part["heap"]
        spec = self.spec
        while heap and W is not None and heap[0][0] <= W:
            end, _, key, name, start, version = heapq.heappop(heap)
            st = part["keys"].get(key)
            wins = st.closing.get(name) if st else None
            w = wins.get(start) if wins else None
            if w is None:
                continue
            oc = next(o for o in spec.aggregates if o.name == name)
            if oc.kind == "session" and (w[3] != version or w[2] + oc.gap != end):
                continue  # superseded by a merge
            del wins[start]
            vals = {}
            for a in self.window_aggs[name]:
                if a.arg is None:
                    vs = range(len(w[1]))
                else:
                    vs = [v for v in (ev[a.arg] for ev in w[1]) if v is not None]
                is_int = (a.argtype or self.ftypes.get(a.arg)) in ("int", "time")
                vals[a] = aggregate(a.kind, vs, a.q, is_int)
            line = {"aggregate": name, "key": key, "start": start, "end": end}
            for s in oc.selects:
                line[s.name] = s.impl(vals)
            self.closed.append(line)


# ------------------------------------------------------------ comparing --

def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


def same_value(ftype, exp, got, approx=None):
    """Whether weir's got (from NDJSON) equals the oracle's exp."""
    if exp is None or got is None:
        return exp is None and got is None
    if ftype == "float":
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        if approx is not None:
            return abs(got - exp) <= approx * (1 + 1e-9) * abs(exp) + 1e-300
        return close(float(exp), float(got))
    if ftype == "bool":
        return isinstance(got, bool) and got == exp
    if ftype in ("int", "time", "duration"):
        return not isinstance(got, bool) and isinstance(got, int) and got == exp
    return got == exp


def compare_rows(spec, oracle_rows, got_rows, with_fields=(), limit=3):
    """Mismatches (a list of strings) between the oracle's rows and weir's
    backfill NDJSON rows (dicts), matched by (partition, offset): per
    column, the number of rows that differ and the first `limit` of them."""
    by_col, first = {}, {}

    def bad(col, msg):
        by_col[col] = by_col.get(col, 0) + 1
        if by_col[col] <= limit:
            first.setdefault(col, []).append(msg)

    by_pos = {(r["partition"], r["offset"]): r for r in got_rows}
    head = []
    if len(got_rows) != len(oracle_rows):
        head.append("row count: weir %d, oracle %d" % (len(got_rows), len(oracle_rows)))
    for r in oracle_rows:
        g = by_pos.get((r["partition"], r["offset"]))
        if g is None:
            bad("(row)", "no row for partition %d offset %d (key %r, time %d)"
                % (r["partition"], r["offset"], r["key"], r["time"]))
            continue
        where = "p%d/o%d key=%r t=%d%s" % (r["partition"], r["offset"], r["key"], r["time"],
                                           " LATE" if r["late"] else "")
        for col, ftype in (("key", "string"), ("time", "time"), ("late", "bool")):
            if not same_value(ftype, r[col], g.get(col)) or \
                    (col == "key" and type(g.get(col)) is not type(r[col])):
                bad(col, "%s: column %s: expected %r, weir %r" % (where, col, r[col], g.get(col)))
        for f, v in zip(spec.features, r["features"]):
            if f.name not in g:
                bad(f.name, "%s: no column %s" % (where, f.name))
            elif not same_value(f.type, v, g[f.name], f.approx):
                bad(f.name, "%s: %s = %s: expected %r, weir %r"
                    % (where, f.name, f.text, v, g[f.name]))
        for w, v in zip(with_fields, r["with"]):
            if g.get(w, "<absent>") != v:
                bad(w, "%s: --with %s: expected %r, weir %r" % (where, w, v, g.get(w, "<absent>")))
    out = head
    for col, n in by_col.items():
        out.append("%s: %d of %d rows differ, e.g.:" % (col, n, len(oracle_rows)))
        out += ["    " + m for m in first[col]]
    return out


def read_ndjson(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


def _as_ms(v):
    if isinstance(v, str):
        t = parse_rfc3339(v)
        return t if t is not None else v
    return v


def compare_closed(spec, expected, got, limit=3):
    """Mismatches between the oracle's aggregate-on-close lines and weir's
    DATA/outputs/<name>.ndjson lines (order free: matched by aggregate, key,
    start, end; a duplicate is an error): per column, how many windows
    differ and the first `limit` of them."""
    by_col, first = {}, {}

    def bad(col, msg):
        by_col[col] = by_col.get(col, 0) + 1
        if by_col[col] <= limit:
            first.setdefault(col, []).append(msg)

    sel = {oc.name: {s.name: s for s in oc.selects} for oc in spec.aggregates}
    idx = {}
    for g in got:
        k = (g.get("aggregate"), g.get("key"), _as_ms(g.get("start")), _as_ms(g.get("end")))
        if k in idx:
            bad("(duplicate)", "window emitted twice: %r" % (k,))
        idx[k] = g
    seen = set()
    for e in expected:
        k = (e["aggregate"], e["key"], e["start"], e["end"])
        seen.add(k)
        g = idx.get(k)
        if g is None:
            bad("(missing)", "window %r not emitted: expected %r" % (k, e))
            continue
        for name, s in sel[e["aggregate"]].items():
            v = _as_ms(g.get(name)) if s.type == "time" else g.get(name)
            if name not in g:
                bad(e["aggregate"] + "." + name, "window %r: no column %s" % (k, name))
            elif not same_value(s.type, e[name], v):
                bad(e["aggregate"] + "." + name, "window %r: %s = %s: expected %r, weir %r"
                    % (k, name, s.text, e[name], g[name]))
    for k in idx:
        if k not in seen:
            bad("(extra)", "window the oracle does not close: %r" % (idx[k],))
    out = []
    if len(got) != len(expected):
        out.append("window count: weir %d, oracle %d" % (len(got), len(expected)))
    for col, n in by_col.items():
        out.append("%s: %d of %d windows differ, e.g.:" % (col, n, len(expected)))
        out += ["    " + m for m in first[col]]
    return out


def compare_late(expected, got, limit=15):
    """Mismatches between the oracle's late output and weir's
    DATA/outputs/late.ndjson (matched by partition and offset)."""
    errs = []
    idx = {(g.get("partition"), g.get("offset")): g for g in got}
    for e in expected:
        if len(errs) >= limit:
            break
        g = idx.pop((e["partition"], e["offset"]), None)
        if g is None:
            errs.append("late event missing from the late output: %r" % (e,))
            continue
        for col in ("key", "time", "watermark", "event"):
            v = _as_ms(g.get(col)) if col in ("time", "watermark") else g.get(col)
            if v != e[col] or type(v) is not type(e[col]):
                errs.append("late p%d/o%d: %s: expected %r, weir %r"
                            % (e["partition"], e["offset"], col, e[col], g.get(col)))
    if idx and len(errs) < limit:
        errs.append("%d lines in the late output that the oracle does not have, e.g. %r"
                    % (len(idx), list(idx.values())[:3]))
    return errs[:limit]
