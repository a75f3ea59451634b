"""test_online_store.py — a spec's `online_store:`: every key's features in a
real redis-server, for readers outside weir (src/serve/online_store.h).

What must hold, checked against what weir logged (each key's last decision
record: the features its newest event was served with):
- once events stop and Redis answers, every key weir holds is in Redis
  under PREFIX + key, its value its features as of its own time, with the
  expiry asked for; nothing else is there; an expired key is deleted;
- requests never wait on Redis: with no Redis, a Redis that never answers,
  one that asks for a password, or one killed mid-stream, every event is
  accepted and decided, and the keys wait (weir_online_store_pending)
  until Redis is back;
- a Redis restarted empty is filled again (a full sync on its new run_id),
  also while no event comes;
- a weir killed with -9 before it wrote its last changes writes them after
  its restart (the full sync of a first connection);
- a late event's key, and keys whose pattern matches are found later (at
  the watermark), get the right value;
- a reload that changes the features writes every key again; one that
  changes the online store is refused.
Time is never asserted: waits poll until a condition holds or time out."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import httputil
from httputil import Server, metric

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (scripts/install-deps.sh)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server on a loopback port, no persistence: a restart
    comes back empty, with a new run_id."""

    def __init__(self, tmp_path, port=None, args=()):
        self.port = port or free_port()
        self.dir = tmp_path
        self.args = list(args)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                Redis(self.port).cmd("PING")
                return
            except AssertionError:  # an error reply (NOAUTH): up
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start on port %d" % self.port)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def client(self):
        return Redis(self.port)


@pytest.fixture
def redis_server(tmp_path):
    """Starts RedisServer(tmp_path, port=None); every one started is killed
    at the end, whatever the test's outcome."""
    started = []

    def start(port=None, args=()):
        started.append(RedisServer(tmp_path, port, args))
        return started[-1]

    yield start
    for r in started:
        r.kill()


class Redis:
    """A RESP client, enough for the commands these tests send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")

    def cmd(self, *args):
        enc = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(enc) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in enc))
        return self._read()

    def _read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise AssertionError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise AssertionError("redis: unexpected reply %r" % line)

    def keys(self, pattern="*"):
        out, cursor = set(), "0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            out.update(k.decode() for k in batch)
            cursor = cursor.decode()
            if cursor == "0":
                return out


def spec_file(tmp_path, redis_line, extra=""):
    text = (httputil.SPECS / "fraud.yaml").read_text()
    text = text.replace("path: fraud.linear.json", "path: %s" % (httputil.SPECS / "fraud.linear.json"))
    text += "\nonline_store:\n  redis: %s\n%s" % (redis_line, extra)
    p = tmp_path / "fraud.yaml"
    p.write_text(text)
    return p


def cards_of(evs):
    return sorted({e["card_id"] for e in evs})


def wait_written(srv, timeout=60):
    """Until Redis has every change: connected, nothing pending."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = srv.metrics()
        if metric(m, "weir_online_store_connected") == 1 and metric(m, "weir_online_store_pending") == 0:
            return m
        time.sleep(0.05)
    raise AssertionError("the online store did not catch up: %r" %
                         {k: v for k, v in srv.metrics().items() if "online_store" in k[0]})


# A key's value is its features as of its newest event with the event's
# fields null (online_store.h): these three read the event's fields.
FIELD_FEATURES = {"amount_ratio": None, "secs_since": None, "new_country": False}


def expected_values(data_dir, extra=None):
    """{key: value} from what weir logged: each key's last decision record
    (its features as that event was served), the fields' features as a
    lookup gives them, as_of the event's time. The events of these tests
    move forward per key (no jitter), so a key's last event is its newest."""
    events = httputil.event_records(data_dir)
    last = {}
    for p, key, rec in httputil.decisions(data_dir):
        if not rec.get("late") and rec.get("duplicate_of") is None:
            last[key.decode()] = (p, rec)
    out = {}
    for k, (p, rec) in last.items():
        feats = dict(rec["features"], **FIELD_FEATURES, **(extra or {}))
        ts = json.loads(events[(p, rec["offset"])].value)["ts"]
        out[k] = {"key": k, "partition": p, "as_of": ts, "features": feats}
    return out


def assert_redis_matches(srv, r, cards, prefix="fraud:transactions:", extra=None):
    """Every card's Redis value is its features as of its newest event, as
    the decision log has them; nothing else is under the prefix."""
    assert r.keys(prefix + "*") == {prefix + c for c in cards}
    want = expected_values(srv.data_dir, extra)
    for c in cards:
        got = r.cmd("GET", prefix + c)
        assert got is not None, c
        got = json.loads(got)
        assert got == want[c], (c, got, want[c])
        for name, v in got["features"].items():  # floats bit for bit
            assert httputil.same_value(v, want[c]["features"][name]), (c, name, v)


def fraud_events(n, seed, cards):
    """Card transactions moving forward in time for each card (a jitter of
    under a millisecond: none)."""
    return httputil.fraud_events(n, seed=seed, cards=cards, jitter_ms=1)


def test_every_key_is_its_features(tmp_path, weir_bin, redis_server):
    """The plain case: 2,000 events of 80 cards, each card's value in Redis
    is its features as the decision log has them, with the state's TTL as
    its expiry."""
    redis = redis_server()
    evs = fraud_events(2000, seed=3, cards=80)
    with Server(weir_bin, spec_file(tmp_path, "127.0.0.1:%d" % redis.port), tmp_path / "data") as srv:
        srv.post_events(evs, chunk=100)
        m = wait_written(srv)
        r = redis.client()
        assert_redis_matches(srv, r, cards_of(evs))
        # each card written at least once, a card changed many times between
        # two passes written once: never more writes than events + the sync
        sets = metric(m, "weir_online_store_writes_total", op="set")
        assert len(cards_of(evs)) <= sets <= len(evs)
        # the default expiry: the key's state TTL, 7 days and the lateness
        ttl = r.cmd("PTTL", "fraud:transactions:" + evs[0]["card_id"])
        assert 7 * 86400_000 - 60_000 < ttl <= 7 * 86400_000 + 30_000


def test_prefix_and_ttl(tmp_path, weir_bin, redis_server):
    redis = redis_server()
    evs = fraud_events(200, seed=4, cards=10)
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port, "  prefix: 'feat/'\n  ttl: 1h\n")
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        srv.post_events(evs)
        wait_written(srv)
        r = redis.client()
        assert_redis_matches(srv, r, cards_of(evs), prefix="feat/")
        assert 0 < r.cmd("PTTL", "feat/" + evs[0]["card_id"]) <= 3600_000
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port, "  prefix: 'never/'\n  ttl: 0s\n")
    with Server(weir_bin, spec, tmp_path / "data2") as srv:
        srv.post_events(evs[:20])
        wait_written(srv)
        assert redis.client().cmd("PTTL", "never/" + evs[0]["card_id"]) == -1  # no expiry


def test_no_redis_then_redis(tmp_path, weir_asan_bin, redis_server):
    """weir starts with nothing on the port: it serves, decides, counts the
    failures and keeps the keys pending; once redis-server starts there,
    every key is written."""
    port = free_port()
    evs = fraud_events(600, seed=5, cards=40)
    with Server(weir_asan_bin, spec_file(tmp_path, "127.0.0.1:%d" % port), tmp_path / "data") as srv:
        srv.post_events(evs[:300])
        status, body = srv.json("POST", "/v1/score/" + httputil.SOURCE, evs[300])
        assert status == 200 and body["decision"] in ("allow", "review", "block"), body
        srv.post_events(evs[301:])
        m = srv.metrics()
        assert metric(m, "weir_online_store_connected") == 0
        assert metric(m, "weir_online_store_pending") == len(cards_of(evs))
        assert metric(m, "weir_online_store_failures_total") >= 1
        redis = redis_server(port)
        wait_written(srv)
        assert_redis_matches(srv, redis.client(), cards_of(evs))
        assert srv.stop() == 0
        err = srv.stderr()
        assert "weir run: online store: redis 127.0.0.1:%d: connecting:" % port in err, err
        assert "connected to redis 127.0.0.1:%d (a full sync: every key is written)" % port in err
        assert "AddressSanitizer" not in err and "runtime error:" not in err, err


def test_redis_killed_and_restarted_empty(tmp_path, weir_bin, redis_server):
    """Redis dies mid-stream (SIGKILL) and comes back empty: the events sent
    meanwhile are accepted, and the new Redis gets every key (a full sync:
    its run_id is new), not only those changed while it was away."""
    redis = redis_server()
    evs = fraud_events(1500, seed=6, cards=60)
    with Server(weir_bin, spec_file(tmp_path, "127.0.0.1:%d" % redis.port), tmp_path / "data") as srv:
        srv.post_events(evs[:500])
        wait_written(srv)
        redis.kill()
        srv.post_events(evs[500:520])  # a few cards change while Redis is away
        redis.start()
        assert redis.client().keys() == set()
        m = wait_written(srv)
        assert metric(m, "weir_online_store_full_syncs_total") == 2
        assert_redis_matches(srv, redis.client(), cards_of(evs[:520]))
        srv.post_events(evs[520:])
        wait_written(srv)
        assert_redis_matches(srv, redis.client(), cards_of(evs))


def test_stalled_redis_does_not_hold_requests(tmp_path, weir_bin):
    """A "Redis" that accepts connections and never answers: each attempt
    times out and is counted, and every request is answered meanwhile
    (one writer thread waits on it, no request does)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])  # read nothing, answer nothing
            except socket.timeout:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    evs = fraud_events(400, seed=7, cards=30)
    port = lsock.getsockname()[1]
    try:
        with Server(weir_bin, spec_file(tmp_path, "127.0.0.1:%d" % port), tmp_path / "data") as srv:
            for e in evs[:40]:
                status, body = srv.json("POST", "/v1/score/" + httputil.SOURCE, e)
                assert status == 200 and "decision" in body
            srv.post_events(evs[40:])
            deadline = time.time() + 30
            while metric(srv.metrics(), "weir_online_store_failures_total") < 1:
                assert time.time() < deadline, "the stalled Redis was never given up on"
                time.sleep(0.1)
            m = srv.metrics()
            assert metric(m, "weir_online_store_connected") == 0
            assert metric(m, "weir_online_store_pending") == len(cards_of(evs))
            assert metric(m, "weir_events_accepted_total", source=httputil.SOURCE) == len(evs)
        assert srv.returncode == 0  # the shutdown did not hang on it either
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        lsock.close()


def test_kill9_then_restart_writes_what_was_lost(tmp_path, weir_bin, redis_server):
    """kill -9 right after the last events, before the writer could write
    them (Redis is stopped with SIGSTOP, so nothing gets through): at
    restart the first connection's full sync writes every key as the
    replayed state has it."""
    redis = redis_server()
    evs = fraud_events(1200, seed=8, cards=50)
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port)
    srv = Server(weir_bin, spec, tmp_path / "data")
    try:
        srv.post_events(evs[:600])
        wait_written(srv)
        redis.proc.send_signal(signal.SIGSTOP)
        srv.post_events(evs[600:])
        srv.kill()
    finally:
        redis.proc.send_signal(signal.SIGCONT)
        if srv.proc.poll() is None:
            srv.kill()
    r = redis.client()
    before = {c: r.cmd("GET", "fraud:transactions:" + c) for c in cards_of(evs)}
    with Server(weir_bin, spec, tmp_path / "data") as srv2:
        wait_written(srv2)
        assert_redis_matches(srv2, r, cards_of(evs))
        changed = [c for c in before if before[c] != r.cmd("GET", "fraud:transactions:" + c)]
        assert changed, "Redis had every card's last value before the restart: the test proves nothing"


def test_reload(tmp_path, weir_bin, redis_server):
    """A reload that adds a feature writes every key again (their values
    now hold it, cards without new events too); one that changes the
    online store is refused and the running spec goes on."""
    redis = redis_server()
    evs = fraud_events(500, seed=9, cards=30)
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port)
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        srv.post_events(evs)
        wait_written(srv)
        text = spec.read_text()
        spec.write_text(text.replace("features:\n", "features:\n  big_1h: max(amount) over 1h\n", 1))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200, body
        m = wait_written(srv)
        assert metric(m, "weir_online_store_full_syncs_total") == 2
        r = redis.client()
        # the new window started empty at the reload (README: reloading)
        assert_redis_matches(srv, r, cards_of(evs), extra={"big_1h": None})
        spec.write_text(spec.read_text().replace("online_store:\n", "online_store:\n  prefix: 'other:'\n"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422, body
        assert "the online_store changed: that needs a restart" in body["error"]["message"]


def test_expired_key_is_deleted(tmp_path, weir_bin, redis_server):
    """A key whose state expires in weir (7 days and the lateness after its
    newest event, in event time) is deleted from Redis; the others stay."""
    redis = redis_server()
    early = fraud_events(100, seed=10, cards=20)
    later = [dict(e, card_id="new-" + e["card_id"], ts=e["ts"] + 8 * 86400_000)
             for e in fraud_events(400, seed=11, cards=40)]
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port)
    # ticks (an idle partition's time moves to the newest) sweep every key
    with Server(weir_bin, spec, tmp_path / "data", "--tick-idle", "50") as srv:
        srv.post_events(early)
        wait_written(srv)
        r = redis.client()
        assert r.keys("fraud:transactions:*") == {"fraud:transactions:" + c for c in cards_of(early)}
        srv.post_events(later)
        deadline = time.time() + 30
        while sum(v for (name, _), v in srv.metrics().items() if name == "weir_live_keys") > len(cards_of(later)):
            assert time.time() < deadline, "the early cards were never swept"
            time.sleep(0.05)
        m = wait_written(srv)
        assert metric(m, "weir_online_store_writes_total", op="del") == len(cards_of(early))
        assert_redis_matches(srv, r, cards_of(later))  # and none of the early ones


def test_redis_with_a_password(tmp_path, weir_bin, redis_server, run_weir):
    """AUTH with the password in the variable password_env names (the spec,
    kept in DATA/specs.d and in checkpoints, never holds it): the right one
    writes every key; a wrong one is refused by Redis, said with Redis's
    words and counted while weir serves on; a variable that is not set
    stops `weir run` at start, naming it."""
    redis = redis_server(args=["--requirepass", "s3cret"])
    evs = fraud_events(60, seed=12, cards=6)
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port, "  password_env: WEIR_TEST_REDIS_PW\n")
    with Server(weir_bin, spec, tmp_path / "data", env={"WEIR_TEST_REDIS_PW": "s3cret"}) as srv:
        srv.post_events(evs)
        wait_written(srv)
        r = redis.client()
        assert r.cmd("AUTH", "s3cret") == "OK"
        assert_redis_matches(srv, r, cards_of(evs))
    for f in (tmp_path / "data").rglob("*"):  # not in the spec ledger, checkpoints, logs
        assert not f.is_file() or b"s3cret" not in f.read_bytes(), f
    with Server(weir_bin, spec, tmp_path / "data2", env={"WEIR_TEST_REDIS_PW": "wrong"}) as srv:
        srv.post_events(evs)
        deadline = time.time() + 30
        while metric(srv.metrics(), "weir_online_store_failures_total") < 1:
            assert time.time() < deadline
            time.sleep(0.05)
        assert metric(srv.metrics(), "weir_online_store_connected") == 0
        assert srv.stop() == 0
        err = srv.stderr()
        assert ("online store: redis 127.0.0.1:%d: AUTH with the password in $WEIR_TEST_REDIS_PW "
                "refused: WRONGPASS" % redis.port) in err, err
        assert "wrong" not in err.replace("WRONGPASS", "")  # the password is never said
    assert "WEIR_TEST_REDIS_PW" not in os.environ
    rc, _, err = run_weir(["run", spec, "--data", tmp_path / "data3", "--listen", "127.0.0.1:0"], timeout=60)
    assert rc == 1
    assert ("online_store: password_env names WEIR_TEST_REDIS_PW, which is not set in weir run's "
            "environment") in err, err

def same_partition_keys(n, partitions=4, prefix="k"):
    """n keys of one partition (weir's: XXH64 of the key, seed 0, mod N)."""
    import xxhash
    out, i = [], 0
    while len(out) < n:
        k = "%s%d" % (prefix, i)
        if not out or xxhash.xxh64_intdigest(k.encode()) % partitions == xxhash.xxh64_intdigest(out[0].encode()) % partitions:
            out.append(k)
        i += 1
    return out


def test_a_late_event_then_a_full_sync(tmp_path, weir_bin, redis_server):
    """A late event of a key reads its windows as of the watermark, which
    they then refuse to answer below: the key's value is as of that
    watermark (what the late event was scored with), not whatever the
    partition computed last. A full sync (Redis restarted) writes it."""
    redis = redis_server()
    a, b, c = same_partition_keys(3)
    T0 = httputil.T0
    ev = lambda k, ts, amount: {"card_id": k, "amount": amount, "merchant": "m1", "country": "FR", "ts": ts}
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port)
    with Server(weir_bin, spec, tmp_path / "data", "--tick-idle", "0") as srv:
        srv.post_events([ev(a, T0, 10.0), ev(a, T0 + 1000, 20.0), ev(b, T0 + 7200_000, 5.0)])
        status, late = srv.json("POST", "/v1/score/" + httputil.SOURCE, ev(a, T0 + 5000, 7.0))
        assert status == 200 and late["late"] is True, late
        wait_written(srv)
        redis.kill()
        redis.start()
        srv.post_events([ev(c, T0 + 7200_000, 1.0)])  # the partition computes another key last
        m = wait_written(srv)
        assert metric(m, "weir_online_store_full_syncs_total") == 2
        got = json.loads(redis.client().cmd("GET", "fraud:transactions:" + a))
        want = dict(late["features"], **FIELD_FEATURES)
        assert got["as_of"] == T0 + 7200_000 - 30_000  # the watermark the late event read at
        assert got["features"] == want, (got, want)
        assert got["features"]["amount_sum_24h"] == 30.0  # a's own two events, not c's


PATTERN_SPEC = """pipeline: shop
partitions: 2
sources:
  clicks:
    key: user
    time: ts
    lateness: 10s
    fields: {user: string, action: string, price: float, ts: time}
patterns:
  abandoned:
    sequence:
      - cart: action == "cart"
      - no_buy:
          not: action == "buy"
          gap: 10m
    within: 1h
  probe:
    sequence:
      - small: price < 2
      - big: price > 500
    within: 10m
features:
  carts_1h: count() over 1h
  abandoned_24h: matches(abandoned) over 24h
  probes_1h: matches(probe) over 1h
online_store:
  redis: 127.0.0.1:%d
"""


def click(user, ts, action, price=1.0):
    return {"user": user, "action": action, "price": price, "ts": ts}


def shop_spec(tmp_path, redis):
    spec = tmp_path / "shop.yaml"
    spec.write_text(PATTERN_SPEC % redis.port)
    return spec


def test_pattern_matches_found_later_are_written(tmp_path, weir_bin, redis_server):
    """Matches found when the watermark moves (events held for time order,
    a `not` confirmed at its deadline) change a key's matches() features
    without an event of that key: the key is written again, as of the
    match (a trailing `not` is stamped at its deadline, after the key's
    last event)."""
    redis = redis_server()
    spec = shop_spec(tmp_path, redis)
    a, b, other = same_partition_keys(3, partitions=2, prefix="u")
    T0 = httputil.T0
    ev = click
    with Server(weir_bin, spec, tmp_path / "data", "--tick-idle", "0") as srv:
        post = lambda evs: srv.json("POST", "/v1/events/clicks", evs)[0] == 200
        assert post([ev(a, T0, "view", 1.0), ev(a, T0 + 1000, "view", 900.0),  # a probe
                     ev(b, T0 + 2000, "cart")])                                # b's cart
        wait_written(srv)
        r = redis.client()
        assert json.loads(r.cmd("GET", "shop:clicks:" + a))["features"]["probes_1h"] == 0  # held
        # another key moves the watermark past a's events and b's deadline
        assert post([ev(other, T0 + 2000 + 600_000 + 20_000, "view")])
        wait_written(srv)
        got_a = json.loads(r.cmd("GET", "shop:clicks:" + a))
        got_b = json.loads(r.cmd("GET", "shop:clicks:" + b))
        assert got_a["features"]["probes_1h"] == 1, got_a
        assert got_a["as_of"] == T0 + 1000
        assert got_b["features"]["abandoned_24h"] == 1, got_b
        assert got_b["as_of"] == T0 + 2000 + 600_000  # the deadline, after b's last event
        assert got_b["features"]["carts_1h"] == 1


def test_redis_restarted_while_idle(tmp_path, weir_bin, redis_server):
    """A Redis restarted empty while no event comes is noticed (an idle
    writer asks for its run_id every second) and filled again."""
    redis = redis_server()
    evs = fraud_events(300, seed=13, cards=25)
    with Server(weir_bin, spec_file(tmp_path, "127.0.0.1:%d" % redis.port), tmp_path / "data") as srv:
        srv.post_events(evs)
        wait_written(srv)
        redis.kill()
        redis.start()
        deadline = time.time() + 30
        while metric(srv.metrics(), "weir_online_store_full_syncs_total") < 2:
            assert time.time() < deadline, "the restarted Redis was never noticed"
            time.sleep(0.05)
        wait_written(srv)
        assert_redis_matches(srv, redis.client(), cards_of(evs))


def restarted_values(weir_bin, spec, data, read):
    """read() after a SIGTERM restart (from the shutdown checkpoint) and
    after a kill -9 restart (replay), each once its full sync is written."""
    out = []
    for how in ("stop", "kill"):
        with Server(weir_bin, spec, data, "--tick-idle", "0") as srv:
            wait_written(srv)
            out.append(read())
            if how == "kill":
                srv.kill()
    return out


def test_late_and_duplicate_events_move_the_value_now(tmp_path, weir_bin, redis_server):
    """A late event, or a retry behind the watermark, applies nothing but
    reads its key's windows at the watermark: the key's value moves to that
    time at once (not only at the next full sync), and restarts write the
    same bytes."""
    redis = redis_server()
    a, b = same_partition_keys(2)
    T0 = httputil.T0
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port)
    text = spec.read_text().replace("      ts: time\n", "      ts: time\n      txn_id: string\n", 1)
    spec.write_text(text.replace("    lateness: 30s\n", "    lateness: 30s\n    id: txn_id\n", 1))
    ev = lambda k, ts, amount, i: {"card_id": k, "amount": amount, "merchant": "m1", "country": "FR",
                                   "ts": ts, "txn_id": i}
    r = redis.client()
    read = lambda: r.cmd("GET", "fraud:transactions:" + a)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data, "--tick-idle", "0") as srv:
        srv.post_events([ev(a, T0, 10.0, "x1"), ev(a, T0 + 1000, 20.0, "x2"), ev(b, T0 + 7200_000, 5.0, "y1")])
        wait_written(srv)
        assert json.loads(read())["as_of"] == T0 + 1000
        status, dup = srv.json("POST", "/v1/score/" + httputil.SOURCE, ev(a, T0 + 1000, 20.0, "x2"))
        assert status == 200 and dup["duplicate"] is True, dup
        wait_written(srv)
        after_dup = read()
        assert json.loads(after_dup)["as_of"] == T0 + 7200_000 - 30_000
        status, late = srv.json("POST", "/v1/score/" + httputil.SOURCE, ev(a, T0 + 5000, 7.0, "x3"))
        assert status == 200 and late["late"] is True, late
        wait_written(srv)
        after_late = read()
        assert json.loads(after_late)["features"] == dict(late["features"], **FIELD_FEATURES)
        assert srv.stop() == 0
    assert restarted_values(weir_bin, spec, data, read) == [after_late, after_late]


def pattern_counts(tmp_path, weir_bin, redis_server, jump):
    """b's abandoned carts at T0 and T0+23h read after the watermark moves
    to T0+24h20m, in one jump or two."""
    redis = redis_server()
    spec = shop_spec(tmp_path, redis)
    b, other = same_partition_keys(2, partitions=2, prefix="u")
    T0, H = httputil.T0, 3600_000
    ev = click
    with Server(weir_bin, spec, tmp_path / "data", "--tick-idle", "0") as srv:
        post = lambda evs: srv.json("POST", "/v1/events/clicks", evs)[0] == 200
        assert post([ev(b, T0, "cart")])
        assert post([ev(other, T0 + 600_000 + 20_000, "view")])  # confirms the first at T0+10m
        assert post([ev(b, T0 + 23 * H, "cart")])                # the second's deadline: T0+23h10m
        if not jump:
            assert post([ev(other, T0 + 23 * H + 600_000 + 20_000, "view")])
        assert post([ev(other, T0 + 24 * H + 20 * 60_000, "view")])
        wait_written(srv)
        return json.loads(redis.client().cmd("GET", "shop:clicks:" + b))


def test_pattern_counts_do_not_depend_on_how_the_watermark_moved(tmp_path, weir_bin, redis_server):
    """A match found at the watermark is read at its own time, below the
    watermark: the match times it counts must still be there, however far
    the watermark jumped."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    steps = pattern_counts(tmp_path / "a", weir_bin, redis_server, jump=False)
    jump = pattern_counts(tmp_path / "b", weir_bin, redis_server, jump=True)
    assert steps == jump
    assert steps["features"]["abandoned_24h"] == 2 and steps["as_of"] == httputil.T0 + 23 * 3600_000 + 600_000


def test_pattern_values_survive_restarts(tmp_path, weir_bin, redis_server):
    """Keys with matches found at the watermark, and one with a deadline
    still pending at shutdown, have the same bytes after restarts."""
    redis = redis_server()
    spec = shop_spec(tmp_path, redis)
    a, b, other = same_partition_keys(3, partitions=2, prefix="u")
    T0 = httputil.T0
    ev = click
    data = tmp_path / "data"
    r = redis.client()
    read = lambda: {k: r.cmd("GET", "shop:clicks:" + k) for k in (a, b, other)}
    with Server(weir_bin, spec, data, "--tick-idle", "0") as srv:
        post = lambda evs: srv.json("POST", "/v1/events/clicks", evs)[0] == 200
        assert post([ev(a, T0, "view", 1.0), ev(a, T0 + 1000, "view", 900.0), ev(b, T0 + 2000, "cart")])
        assert post([ev(other, T0 + 2000 + 600_000 + 20_000, "view")])
        assert post([ev(b, T0 + 700_000, "cart")])  # its deadline is pending at shutdown
        wait_written(srv)
        before = read()
        assert srv.stop() == 0
    assert restarted_values(weir_bin, spec, data, read) == [before, before]


def test_verify_checks_the_online_store(tmp_path, weir_bin, redis_server, run_weir):
    """weir verify replays the log and compares every key's value with
    Redis's: all equal after a clean stop; then a value changed, a key
    turned into a hash, one deleted and a key weir never held are found.
    A missing key is a difference only where Redis keeps keys (ttl: 0s):
    with a ttl, Redis drops keys by the wall clock. --no-online-store
    checks the decisions alone (no Redis needed)."""
    redis = redis_server()
    evs = fraud_events(500, seed=14, cards=40)
    cards = cards_of(evs)
    n = len(cards)
    for ttl in ("", "  ttl: 0s\n"):
        spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port, ttl)
        data = tmp_path / ("data" + str(len(ttl)))
        redis.client().cmd("FLUSHALL")
        with Server(weir_bin, spec, data) as srv:
            srv.post_events(evs)
            wait_written(srv)
        rc, out, err = run_weir(["verify", spec, "--data", data])
        assert rc == 0, (out, err)
        assert ("online store redis 127.0.0.1:%d: %d keys checked: %d equal, 0 different, 0 missing; "
                "0 keys there hold no state here" % (redis.port, n, n)) in out, out
        r = redis.client()
        r.cmd("SET", "fraud:transactions:" + cards[0], "{}")
        r.cmd("DEL", "fraud:transactions:" + cards[1])
        r.cmd("DEL", "fraud:transactions:" + cards[2])
        r.cmd("HSET", "fraud:transactions:" + cards[2], "f", "1")
        r.cmd("DEL", "fraud:transactions:" + cards[3])
        r.cmd("SET", "fraud:transactions:ghost", "{}")
        rc, out, err = run_weir(["verify", spec, "--data", data])
        assert rc == 1, (out, err)
        assert ("%d keys checked: %d equal, 2 different, 2 missing" % (n, n - 4)) in out, out
        assert "; 1 keys there hold no state here" in out, out
        assert ("online store: key \"%s\" differs: Redis holds {}, the replay gives {\"key\":\"%s\""
                % (cards[0], cards[0])) in out, out
        assert "online store: key \"%s\" differs: Redis holds another type there" % cards[2] in out
        assert "online store: key \"%s\" missing in Redis: the replay gives {" % cards[1] in out
        want = 4 if ttl else 2  # the missing ones count only without a ttl
        assert "%d online store values differ from a replay" % want in err, err
        assert ("(not counted as differences" in out) == (not ttl)
    redis.kill()
    rc, out, err = run_weir(["verify", spec, "--data", data])
    assert rc == 2 and "the online store: redis 127.0.0.1:%d: connecting:" % redis.port in err, err
    rc, out, err = run_weir(["verify", spec, "--data", data, "--no-online-store"])
    assert rc == 0 and "online store" not in out, (out, err)


def test_verify_says_what_redis_refused(tmp_path, weir_bin, redis_server, run_weir):
    """An error reply to a GET (here NOPERM: an ACL user without GET) is an
    error naming Redis's words (exit 2), not a key counted missing."""
    redis = redis_server()
    evs = fraud_events(50, seed=15, cards=5)
    data = tmp_path / "data"
    with Server(weir_bin, spec_file(tmp_path, "127.0.0.1:%d" % redis.port), data) as srv:
        srv.post_events(evs)
        wait_written(srv)
    assert redis.client().cmd("ACL", "SETUSER", "nosy", "on", ">pw", "~*", "+scan", "+info") == "OK"
    spec = spec_file(tmp_path, "127.0.0.1:%d" % redis.port,
                     "  password_env: WEIR_TEST_REDIS_PW\n  username: nosy\n")
    rc, out, err = run_weir(["verify", spec, "--data", data], env={"WEIR_TEST_REDIS_PW": "pw"})
    assert rc == 2, (out, err)
    assert "the online store: redis 127.0.0.1:%d: GET refused: NOPERM" % redis.port in err, err
    assert "missing" not in out
