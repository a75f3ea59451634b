"""httputil.py — helpers for the HTTP system tests (test_http_*.py): run
`weir run` on a free loopback port, talk to it over real HTTP (keep-alive
connections and raw sockets), generate realistic card transactions, and read
back what the server left on disk: the event log, the decision log (parsed
with logformat.py, independently of weir's code) and `weir backfill` rows;
compile LD_PRELOAD shims for fault injection."""
import http.client
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

import logformat

HERE = pathlib.Path(__file__).resolve().parent
SPECS = HERE / "specs_http"
FRAUD_SPEC = SPECS / "fraud.yaml"
SOURCE = "transactions"

_LISTEN = re.compile(r"listening on http://([0-9.]+):(\d+)")


class Server:
    """A running `weir run`. Use as a context manager; stop() sends SIGTERM
    and waits (the exit status is kept in .returncode), kill() sends
    SIGKILL."""

    def __init__(self, weir_bin, spec, data_dir, *args, env=None, wait_ready=True, timeout=30):
        self.spec, self.data_dir = str(spec), str(data_dir)
        full_env = dict(os.environ)
        full_env.pop("WEIR_API_TOKEN", None)
        if env:
            full_env.update(env)
        self.argv = [weir_bin, "run", self.spec, "--data", self.data_dir, "--listen", "127.0.0.1:0",
                     *map(str, args)]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.lines = []
        self.returncode = None
        line = self._readline(timeout)
        m = _LISTEN.search(line or "")
        if not m:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("weir run did not start: %r %r %r" % (line, out, err))
        self.host, self.port = m.group(1), int(m.group(2))
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if wait_ready:
            self.wait_ready(timeout)

    def _readline(self, timeout):
        line = self.proc.stdout.readline().decode()
        self.lines.append(line)
        return line

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode())

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status, _, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError("weir run exited %d: %s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        raise AssertionError("weir run not ready after %ss" % timeout)

    def has_line(self, text, timeout=10):
        """Whether weir run printed a line containing text (waiting for it:
        /readyz can answer before the reader thread has the "ready" line)."""
        deadline = time.time() + timeout
        while True:
            if any(text in l for l in list(self.lines)):
                return True
            if time.time() >= deadline:
                return False
            time.sleep(0.01)

    def connection(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """(status, headers dict with lower-case names, body bytes)."""
        own = conn is None
        c = conn or self.connection()
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def json(self, method, path, body=None, headers=None, conn=None):
        status, hdrs, data = self.request(method, path, body, headers, conn)
        return status, json.loads(data)

    def post_events(self, evs, chunk=50):
        """POST /v1/events of evs, chunk events per request; each must be
        accepted whole."""
        for i in range(0, len(evs), chunk):
            status, body = self.json("POST", "/v1/events/" + SOURCE, evs[i:i + chunk])
            assert status == 200 and body["accepted"] == len(evs[i:i + chunk]), body

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        return parse_metrics(data.decode())

    def stderr(self):
        return self.proc.stderr.read().decode() if self.proc.stderr else ""

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.returncode = self.proc.wait(timeout)
        self._reader.join(5)
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.returncode = self.proc.wait(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
        err = self.stderr()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert mark not in err, err[-4000:]


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        assert m, "bad metrics line %r" % line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


# ---- events ----

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE"]
T0 = 1_700_000_000_000


def fraud_events(n, seed=1, cards=50, start=T0, step_ms=20_000, jitter_ms=5_000):
    """n realistic card transactions as dicts: a card's home country, mostly
    small amounts with a few large ones, times moving forward with jitter
    (some out of order, within the spec's 30 s lateness)."""
    rng = random.Random(seed)
    home = {i: rng.choice(COUNTRIES) for i in range(cards)}
    out = []
    t = start
    for i in range(n):
        c = rng.randrange(cards)
        t += rng.randrange(step_ms)
        amount = round(rng.lognormvariate(3, 1.2), 2) if rng.random() > 0.02 else round(rng.uniform(5000, 9000), 2)
        country = home[c] if rng.random() > 0.05 else rng.choice(COUNTRIES)
        out.append({"card_id": "card-%03d" % c, "amount": amount, "merchant": "m%d" % rng.randrange(40),
                    "country": country, "ts": t - rng.randrange(jitter_ms)})
    return out


# ---- fault injection ----

def preload_shim(tmp_path, source):
    """Compiles source (C) into tmp_path/shim.so for LD_PRELOAD; skips the
    test where there is no C compiler."""
    if not shutil.which("cc"):
        pytest.skip("no C compiler for the LD_PRELOAD shim")
    src = tmp_path / "shim.c"
    src.write_text(source)
    so = tmp_path / "shim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"], check=True)
    return so


# ---- what is on disk ----

def log_records(data_dir, topic=SOURCE, root="log"):
    """{partition: [Record, ...]} of a log under DATA/<root>/<topic>."""
    base = pathlib.Path(data_dir) / root / topic
    out = {}
    if not base.exists():
        return out
    for d in sorted(base.iterdir(), key=lambda p: p.name):
        if not d.is_dir():
            continue
        recs = []
        for seg in sorted(d.glob("*.seg")):
            for b in logformat.read_batches(seg):
                recs.extend(b.records)
        out[int(d.name)] = recs
    return out


def event_records(data_dir):
    """{(partition, offset): record} of the event log's events (ticks left out)."""
    return {(p, r.offset): r for p, recs in log_records(data_dir).items() for r in recs if r.type == 0}


def decisions(data_dir):
    """[(partition, key bytes, decoded value)] of the decision log, in log order."""
    out = []
    for p, recs in log_records(data_dir, root="decisions").items():
        for r in recs:
            out.append((p, r.key, json.loads(r.value)))
    return out


def backfill(run_weir, spec, data_dir, tmp_path):
    """{(partition, offset): row} from `weir backfill --format ndjson`."""
    out = pathlib.Path(tmp_path) / ("backfill-%d.ndjson" % time.monotonic_ns())
    run_weir(["backfill", spec, "--data", data_dir, "--out", out, "--format", "ndjson"], check=True)
    rows = {}
    for line in out.read_text().splitlines():
        row = json.loads(line)
        rows[(row["partition"], row["offset"])] = row
    return rows


def same_value(a, b):
    """Exact equality of two JSON values (floats bit for bit; 1 == 1.0 is
    not enough for a float feature, so types must match too)."""
    return type(a) is type(b) and a == b
