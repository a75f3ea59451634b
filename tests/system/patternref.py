"""A reference matcher for weir's patterns (CEP), written from the semantics
stated in src/stream/pattern.h and DESIGN.md — not from the C code.

A pattern is described in Python (Pattern, Step): each condition is a
Python function cond(event, steps) where event is the event's fields (a
dict) and steps maps a step name to the fields of the last event that step
took (absent if none), with the text of the same condition for the YAML
weir loads. The matcher replays a partition's log records (events and
ticks, as `weir log read` prints them) the way the contract says:

  * watermark W = max time of applied events and ticks - lateness; an event
    below W is late and invisible to patterns;
  * per record, first the watermark's work: events held for time order with
    time <= W are fed in (time, offset) order, then runs waiting on a
    trailing `not` whose deadline < W are matches (match time = deadline);
  * then the record's own event: arrival patterns take it now; time patterns
    take it now if its time <= W, else hold it;
  * feeding an event to a key: every run in creation order, then a new run
    if the event satisfies the first step.

Matches are reported as dicts with the fields weir writes to
DATA/outputs/<pattern>.ndjson (pattern, partition, key, start, time,
watermark, events, then the emit fields).
"""

MANY = None  # max of one_or_more


class Step:
    def __init__(self, name, cond, text, negated=False, times=None, one_or_more=False,
                 optional=False, strict=False, gap=0):
        self.name, self.cond, self.text = name, cond, text
        self.negated = negated
        self.lo = 0 if optional else (times or 1)
        self.hi = MANY if one_or_more else (times or 1)
        # an optional times: n takes none or all n
        self.full = times if optional and times and times > 1 and not one_or_more else 0
        self.times, self.one_or_more, self.optional = times, one_or_more, optional
        self.strict, self.gap = strict, gap

    def done(self, n):
        """Whether a step that took n events may be left."""
        return n >= self.lo and (n == 0 or n >= self.full)

    def yaml(self):
        opts = []
        if self.times:
            opts.append("times: %d" % self.times)
        if self.one_or_more:
            opts.append("one_or_more: true")
        if self.optional:
            opts.append("optional: true")
        if self.strict:
            opts.append("contiguity: strict")
        if self.gap:
            opts.append("gap: %dms" % self.gap)
        if not opts and not self.negated:
            return "      - %s: %s\n" % (self.name, quote(self.text))
        out = "      - %s:\n          %s: %s\n" % (self.name, "not" if self.negated else "when",
                                                   quote(self.text))
        return out + "".join("          %s\n" % o for o in opts)


def quote(text):
    return "'" + text.replace("'", "''") + "'"


class Pattern:
    def __init__(self, name, steps, within, order="time", then=None, emit=()):
        self.name, self.steps, self.within, self.order = name, steps, within, order
        self.then = then
        self.emit = list(emit)  # (field, text, fn(steps) -> value)

    def yaml(self):
        out = "  %s:\n    sequence:\n" % self.name
        out += "".join(s.yaml() for s in self.steps)
        out += "    within: %dms\n    order: %s\n" % (self.within, self.order)
        if self.then:
            out += "    then: %s\n" % self.then
        if self.emit:
            out += "    emit:\n" + "".join("      %s: %s\n" % (f, quote(t)) for f, t, _ in self.emit)
        return out

    def positive_after(self, i):
        """Index of the next positive step after i (len(steps) if none)."""
        j = i + 1
        while j < len(self.steps) and self.steps[j].negated:
            j += 1
        return j


class Run:
    def __init__(self, first):
        self.at = 0          # index of the current step
        self.n = 0           # events taken at it
        self.first = first   # time of the first event
        self.last = first    # time of the previous event taken
        self.blocked = False
        self.missed = False  # an event went by since the previous take
        self.deadline = None  # set while waiting on a trailing not
        self.events = []
        self.bound = {}      # step name -> fields of its last event


class Matcher:
    """One partition's patterns."""

    def __init__(self, patterns, lateness, partition):
        self.patterns = patterns
        self.lateness = lateness
        self.partition = partition
        self.maxt = None
        self.wm = None
        self.held = []          # (time, offset, key, fields), time patterns
        self.runs = {}          # (pattern index, key) -> [Run]
        self.found = []         # matches, in the order found
        self.times = {}         # (pattern index, key) -> match times

    # -- records ---------------------------------------------------------
    def tick(self, t):
        self._advance(t)
        self._watermark_work()

    def event(self, offset, key, t, fields):
        """Returns None for a late event, else {pattern name: completed?}
        for arrival patterns."""
        if self.wm is not None and t < self.wm:
            return None
        self._advance(t)
        self._watermark_work()
        flags = {}
        hold = False
        for pi, p in enumerate(self.patterns):
            if p.order == "arrival":
                flags[p.name] = self._feed(pi, key, offset, t, fields, bound=self.wm)
            elif t <= self.wm:
                self._feed(pi, key, offset, t, fields, bound=t)
            else:
                hold = True
        if hold:
            self.held.append((t, offset, key, fields))
        return flags

    def count(self, pi, key, t, d):
        return sum(1 for m in self.times.get((pi, key), ()) if t - d < m <= t)

    # -- internals ---------------------------------------------------------
    def _advance(self, t):
        if self.maxt is None or t > self.maxt:
            self.maxt = t
            self.wm = t - self.lateness

    def _watermark_work(self):
        ready = sorted(h for h in self.held if h[0] <= self.wm)
        if ready:
            self.held = [h for h in self.held if h[0] > self.wm]
            for t, offset, key, fields in ready:
                for pi, p in enumerate(self.patterns):
                    if p.order == "time":
                        self._feed(pi, key, offset, t, fields, bound=t)
        due = []
        for (pi, key), runs in self.runs.items():
            for r in runs:
                if r.deadline is not None and r.deadline < self.wm:
                    due.append((r.deadline, pi, key, r))
        for d, pi, key, r in sorted(due, key=lambda x: (x[0], x[1], x[2])):
            self.runs[(pi, key)].remove(r)
            self._match(pi, key, r, d)

    def _match(self, pi, key, r, time):
        p = self.patterns[pi]
        self.times.setdefault((pi, key), []).append(time)
        m = {"pattern": p.name, "partition": self.partition, "key": key, "start": r.first,
             "time": time, "watermark": self.wm, "events": list(r.events)}
        for field, _, fn in p.emit:
            m[field] = fn(r.bound)
        self.found.append(m)

    def _choices(self, p, r):
        """The steps that may take the run's next event, in the order they try."""
        out = []
        cur = p.steps[r.at]
        if cur.hi is MANY or r.n < cur.hi:
            out.append(r.at)
        if cur.done(r.n) and not r.blocked:
            j = p.positive_after(r.at)
            while j < len(p.steps):
                out.append(j)
                if p.steps[j].lo > 0:
                    break
                j = p.positive_after(j)
        return out

    def _fits(self, p, r, j, t, fields):
        s = p.steps[j]
        # in arrival order an event may be earlier than the first: either side
        if abs(t - r.first) > p.within:
            return False
        if s.strict and r.missed:
            return False
        if s.gap and abs(t - r.last) > s.gap:
            return False
        return s.cond(fields, r.bound)

    def _take(self, p, r, j, offset, t, fields):
        if j == r.at:
            r.n += 1
        else:
            r.at, r.n = j, 1
        r.last = t
        r.missed = r.blocked = False
        r.events.append(offset)
        r.bound[p.steps[j].name] = fields

    def _settle(self, p, r):
        """After a take: 'match', 'wait' (trailing not) or 'go on'."""
        if not p.steps[r.at].done(r.n):
            return "go on"
        j = p.positive_after(r.at)
        while j < len(p.steps):
            if p.steps[j].lo > 0:
                return "go on"
            j = p.positive_after(j)
        last = p.steps[-1]
        if not last.negated:
            return "match"
        r.deadline = r.first + p.within
        if last.gap:
            r.deadline = min(r.deadline, r.last + last.gap)
        return "wait"

    def _step(self, p, r, offset, t, fields):
        if r.deadline is not None:
            last = p.steps[-1]
            if (t <= r.deadline and abs(t - r.first) <= p.within
                    and (not last.gap or abs(t - r.last) <= last.gap)
                    and last.cond(fields, r.bound)):
                return "dead"
            return "go on"
        for j in self._choices(p, r):
            if self._fits(p, r, j, t, fields):
                self._take(p, r, j, offset, t, fields)
                return self._settle(p, r)
        r.missed = True
        cur = p.steps[r.at]
        nxt = r.at + 1
        if cur.done(r.n) and nxt + 1 < len(p.steps) and p.steps[nxt].negated:
            ns = p.steps[nxt]
            if (not ns.gap or abs(t - r.last) <= ns.gap) and ns.cond(fields, r.bound):
                r.blocked = True
        choices = self._choices(p, r)
        if any(not p.steps[j].strict for j in choices):
            return "go on"
        return "dead"

    def _feed(self, pi, key, offset, t, fields, bound):
        p = self.patterns[pi]
        runs = self.runs.setdefault((pi, key), [])
        done = False
        keep = []
        for r in runs:
            if r.deadline is None and r.first + p.within < bound:
                continue  # can take nothing fed from now on
            res = self._step(p, r, offset, t, fields)
            if res == "match":
                self._match(pi, key, r, t)
                done = True
            elif res != "dead":
                keep.append(r)
        if p.steps[0].cond(fields, {}):
            r = Run(t)
            self._take(p, r, 0, offset, t, fields)
            res = self._settle(p, r)
            if res == "match":
                self._match(pi, key, r, t)
                done = True
            else:
                keep.append(r)
        self.runs[(pi, key)] = keep
        return done
