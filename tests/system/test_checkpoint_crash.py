"""The crash test of issue 6: the fraud pipeline with a checkpoint every
half second under HTTP load of 7,000 events/s offered (client threads
posting /v1/events batches and /v1/score events, each event carrying a
unique "id"; the rate reached is printed), killed with SIGKILL at
30 random moments — a third of them aimed at a checkpoint being written
(WEIR_CKPT_STEP_DELAY_MS stretches each step of the checkpoint store, and a
kill counts as "inside a checkpoint" when a <id>.tmp directory is left
behind) — and restarted after each. At the end:

  - every acknowledged event (a 200 answer) is in the log exactly once, and
    the log holds nothing that was not posted;
  - the state equals an oracle's (oracle.py run over the logged events and
    ticks alone, ckptutil.LogOracle): `weir backfill`'s rows, the features
    each decision recorded, GET /v1/features for a sample of keys on the
    final server (and again after it restarts from its shutdown checkpoint),
    and the outputs (hourly_spend aggregates on close, late events) —
    nothing counted or written twice, nothing missing;
  - the decision log holds exactly one decision per logged event;
  - every restart recovered from the newest checkpoint on disk, and the
    checkpoints recovery used never went backwards (ids and offsets); the
    final server's /metrics and POST /v1/admin/checkpoint agree with it.

The logs write a recovery point every 64 KiB (WEIR_LOG_POINT_BYTES), so
the restarts open them from one, with a tail to scan after it.

WEIR_SOAK=1 runs 150 kills instead of 30."""
import json
import os
import random
import struct
import threading
import time

import ckptutil
import oracle as o
from ckptutil import (check_exactly_one_decision, checkpoint_ids, checkpoint_in_progress,
                      compare_lookup, recovered_from)
from conftest import sanitizer_report
from httputil import SOURCE, Server, backfill, log_records, metric

SOAK = os.environ.get("WEIR_SOAK") == "1"
KILLS = 150 if SOAK else 30
INTERVAL = "500ms"   # checkpoint_interval
AIMED_EVERY = 3      # every third kill waits for a checkpoint being written
STEP_DELAY_MS = 10   # each checkpoint-store step sleeps this long in the writer
THREADS = 4          # client threads
BATCH = 50           # events per /v1/events request
RATE = 7000          # events/s offered by all threads together (issue 6: >= 5,000)
MIN_INSIDE = 5       # kills inside a checkpoint the run must have made ("several")
CARDS = 3000
SPEED = 200          # event-time ms per wall-clock ms (so windows open and close)
T0 = 1_700_000_000_000
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE"]


class Clients:
    """THREADS client threads posting fresh events to srv until stop():
    every fourth request a /v1/score of one event, else a /v1/events batch,
    RATE events/s in all.
    Events' times follow the wall clock (SPEED times faster, with jitter
    inside the 30 s lateness), so the log is nearly in time order whatever
    the threads' interleaving. Records which ids were acknowledged (200),
    refused (another status) or left in doubt (the connection broke: the
    server was killed while the request was in flight)."""

    def __init__(self, srv, rng, round_, clock0, home):
        self.srv, self.round, self.clock0, self.home = srv, round_, clock0, home
        self.seeds = [rng.randrange(1 << 30) for _ in range(THREADS)]
        self.acked, self.refused, self.doubt = [], [], []
        self.statuses = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(THREADS)]
        self.t_start = time.monotonic()
        for t in self.threads:
            t.start()

    def _event(self, rng, tid, n):
        c = rng.randrange(CARDS)
        now = T0 + int((time.monotonic() - self.clock0) * 1000 * SPEED)
        amount = round(rng.lognormvariate(3, 1.2), 2) if rng.random() > 0.02 else \
            round(rng.uniform(5000, 9000), 2)
        country = self.home[c] if rng.random() > 0.05 else rng.choice(COUNTRIES)
        return {"card_id": "card-%04d" % c, "amount": amount, "merchant": "m%d" % rng.randrange(300),
                "country": country, "ts": now - rng.randrange(5000),
                "id": "r%d-t%d-%d" % (self.round, tid, n)}

    def _run(self, tid):
        rng = random.Random(self.seeds[tid])
        conn = self.srv.connection(timeout=15)
        n = req = 0
        per_thread = RATE / THREADS
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                ahead = n / per_thread - (time.monotonic() - t0)
                if ahead > 0:
                    self._stop.wait(ahead)
                    continue
                if req % 4 == 3:
                    evs = [self._event(rng, tid, n)]
                    path, body = "/v1/score/" + SOURCE, json.dumps(evs[0])
                else:
                    evs = [self._event(rng, tid, n + i) for i in range(BATCH)]
                    path, body = "/v1/events/" + SOURCE, json.dumps(evs)
                n += len(evs)
                req += 1
                ids = [e["id"] for e in evs]
                try:
                    status, _, _ = self.srv.request("POST", path, body, conn=conn)
                except (OSError, ConnectionError, Exception):
                    with self._lock:
                        self.doubt.extend(ids)
                    return
                with self._lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    (self.acked if status == 200 else self.refused).extend(ids)
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(30)
        return time.monotonic() - self.t_start


def past_a_point(data):
    """Whether some partition of either log has a recovery point (its active
    segment's .idx) that ends before the segment does: the next open reads
    only from there."""
    for root in ("log", "decisions"):
        for pdir in (data / root / SOURCE).iterdir():
            segs = sorted(pdir.glob("*.seg"))
            if not segs:
                continue
            idx = segs[-1].with_suffix(".idx")
            if idx.exists():
                raw = idx.read_bytes()
                n = (len(raw) - 16) // 16
                end = struct.unpack_from("<I", raw, (n - 1) * 16 + 4)[0] if n >= 2 else None
                if end is not None and end < segs[-1].stat().st_size:
                    return 1
    return 0


def test_kill_9_under_load_with_checkpoints(weir_bin, run_weir, tmp_path):
    spec = ckptutil.fraud_spec(tmp_path, interval=INTERVAL)
    data = tmp_path / "data"
    data.mkdir()
    rng = random.Random(20260606)
    home = {i: rng.choice(COUNTRIES) for i in range(CARDS)}
    clock0 = time.monotonic()
    acked, refused, doubt = set(), set(), set()
    acked_n, load_secs = 0, 0.0
    kills_inside, kills_past_point, used, skipped = 0, 0, [], []
    # Recovery points every 64 KiB (not 16 MiB): the kills land between
    # them, and every restart opens the logs from one (src/log/log.h).
    env = {"WEIR_CKPT_STEP_DELAY_MS": str(STEP_DELAY_MS), "WEIR_LOG_POINT_BYTES": "65536"}
    for round_ in range(KILLS):
        newest_before = (checkpoint_ids(data) or [0])[0]
        srv = Server(weir_bin, spec, data, env=env)
        clients = Clients(srv, rng, round_, clock0, home)
        if round_ % AIMED_EVERY == 1:
            # Aimed: after some load, wait for a checkpoint to be written and
            # kill at a random moment inside it.
            time.sleep(rng.uniform(0.2, 0.8))
            deadline = time.monotonic() + 3
            while not checkpoint_in_progress(data) and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.15))
        else:
            time.sleep(rng.uniform(0.3, 2.0))
        srv.kill()
        load_secs += clients.stop()
        kills_inside += checkpoint_in_progress(data)
        kills_past_point += past_a_point(data)
        err = srv.stderr()
        assert not sanitizer_report(err), err[-4000:]
        cid, offs = recovered_from(err)
        skipped += [l for l in ckptutil.recovery_lines(err) if l[0] == "skipped"]
        # Recovery took the newest checkpoint there was, never an older one.
        assert cid == newest_before, "round %d: recovered from %d, newest on disk was %d:\n%s" \
            % (round_, cid, newest_before, err[-2000:])
        if used and cid:
            pcid, poffs = used[-1]
            assert cid >= pcid
            if poffs is not None:
                assert all(a >= b for a, b in zip(offs, poffs)), \
                    "round %d: offsets went back: %s after %s" % (round_, offs, poffs)
        used.append((cid, offs))
        acked.update(clients.acked)
        refused.update(clients.refused)
        doubt.update(clients.doubt)
        acked_n += len(clients.acked)
    rate = acked_n / load_secs
    from_ckpt = sum(1 for cid, _ in used if cid)
    print("\ncrash test: %d kills, %d inside a checkpoint, %d restarts from a checkpoint, "
          "%d events acknowledged at %.0f events/s, %d in doubt, %d refused"
          % (KILLS, kills_inside, from_ckpt, len(acked), rate, len(doubt), len(refused)))
    print("recoveries: %s" % [cid for cid, _ in used])
    print("kills with a recovery point before an active segment's end: %d" % kills_past_point)
    assert kills_past_point >= KILLS // 2, "the restarts did not meet recovery points"
    assert not skipped, "a checkpoint failed to verify after a crash: %s" % skipped[:3]
    assert kills_inside >= MIN_INSIDE, "only %d kills landed inside a checkpoint" % kills_inside
    assert from_ckpt >= MIN_INSIDE, "only %d restarts recovered from a checkpoint" % from_ckpt

    # The final server: recovers, decides what the last kill left
    # undecided, answers GET /v1/features; no ticks, so the log stays put.
    keys = ["card-%04d" % c for c in rng.sample(range(CARDS), 300)] + ["nobody"]
    newest_before = (checkpoint_ids(data) or [0])[0]
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in keys}
        m = srv.metrics()
        assert metric(m, "weir_recovery_checkpoint_id") == newest_before
        # A checkpoint on request covers the whole log (nothing comes in now).
        status, ck = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200 and ck["checkpoint"] > newest_before, ck
        m = srv.metrics()
        assert metric(m, "weir_checkpoint_last_id") == ck["checkpoint"]
        assert metric(m, "weir_checkpoints_total", result="ok") >= 1
        assert srv.stop() == 0
        err = srv.stderr()
    assert recovered_from(err)[0] == newest_before
    orc = ckptutil.LogOracle(data)
    ends = [recs[-1].offset + 1 if recs else 0 for _, recs in sorted(log_records(data).items())]
    assert ck["offsets"] == ends, (ck["offsets"], ends)

    # Every acknowledged event is logged exactly once; nothing else is.
    twice = [i for i, pos in orc.ids.items() if len(pos) > 1]
    assert not twice, "events logged more than once: %s" % twice[:10]
    missing = acked - set(orc.ids)
    assert not missing, "%d acknowledged events are not in the log, e.g. %s" \
        % (len(missing), sorted(missing)[:10])
    assert orc.events == len(orc.ids), "logged events without an id"
    stray = set(orc.ids) - acked - doubt
    assert not stray, "logged events that were never acknowledged nor in flight: %s" \
        % sorted(stray)[:10]

    # One decision per logged event, made with the oracle's features.
    seen, logged = check_exactly_one_decision(data)
    assert len(logged) == orc.events
    errs = []
    for pos, d in seen.items():
        errs += orc.compare_features(pos, d["features"], "decision")
        if len(errs) > 10:
            break
    assert not errs, "decisions' features differ from the oracle's:\n" + "\n".join(errs[:10])

    # weir backfill (a clean replay of the log) equals the oracle.
    rows = backfill(run_weir, spec, data, tmp_path)
    errs = o.compare_rows(orc.spec, orc.orc.rows, list(rows.values()))
    assert not errs, "weir backfill differs from the oracle:\n" + "\n".join(errs)

    # The final server's features (state recovered from a checkpoint plus
    # replay) equal the oracle's, key by key.
    errs = []
    for k, body in looked.items():
        errs += compare_lookup(orc, k, body)
    assert not errs, "GET /v1/features differs from the oracle:\n" + "\n".join(errs[:20])
    assert sum(b["found"] for b in looked.values()) > 200

    # Aggregates on close and late events: each once, as the oracle has them.
    windows, late = ckptutil.check_outputs(data, orc)
    assert windows > 100

    # A restart from the shutdown checkpoint replays nothing and answers the
    # same features.
    newest = checkpoint_ids(data)[0]
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        again = {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in keys}
        assert srv.stop() == 0
        err = srv.stderr()
    assert recovered_from(err) == (newest, ends), err
    assert again == looked
    check_exactly_one_decision(data)
