"""test_memory_budget.py — `weir run --max-memory` (serve/runtime.h, MEMORY
BUDGET). Keyed state grew until the kernel killed weir, and the restart
replayed the same log into the same memory: a crash loop (an SRE's
walkthrough). Over the budget, an event of a key weir holds no state for is
refused before it is logged (503 memory_full), while held keys go on being
scored; over the budget and an eighth more, every event is refused. A
replay is never refused: the log is what happened."""
import json
import os
import shutil
import time

import httputil
from httputil import Server

SPEC = """pipeline: budget
partitions: 2
sources:
  ev:
    key: k
    time: ts
    lateness: 10s
    fields: {k: string, ts: time, v: float, m: string}
features:
  n_1h: count() over 1h
  v_24h: sum(v) over 24h
  m_24h: distinct(m) over 24h
"""
SOURCE = "ev"


def event(key, i=0):
    return {"k": key, "ts": int(time.time() * 1000) - 60000 + i, "v": 1.5, "m": "m%d" % (i % 7)}


def score(srv, ev):
    return srv.json("POST", "/v1/score/" + SOURCE, ev)


def used(srv):
    """What the budget holds against: max(heap, anonymous resident)."""
    return int(httputil.metric(srv.metrics(), "weir_memory_used_bytes"))


# No huge-page collapse after ready: it makes a partly used 2 MiB range
# resident, and the resident figure the budget counts would move under
# the test by more than its margins.
ENV = {"WEIR_THP": "0"}


def logged_keys(data_dir):
    return sorted(json.loads(r.value)["k"]
                  for recs in httputil.log_records(data_dir, SOURCE).values()
                  for r in recs if r.type == 0)


def test_new_keys_are_refused_over_the_budget_held_keys_scored_and_replay_never_refused(
        weir_bin, data_dir, tmp_path):
    spec = tmp_path / "budget.yaml"
    spec.write_text(SPEC)
    # The memory of this spec with no state, to set a budget some thousands
    # of keys above it (well above the noise of the resident figure, which
    # moves by some 100 KB as requests touch pages).
    with Server(weir_bin, spec, tmp_path / "probe", "--max-memory", "none", env=ENV) as srv:
        assert srv.has_line("no memory budget")
        base = used(srv)

    # Keys, 250 a request, until one is refused. (Memory is not monotonic:
    # a key map resizing holds its old table until the move is done, so a
    # key refused at that moment may be taken later. What is refused is
    # never logged.)
    budget = base + 6 * 2**20
    accepted = []
    with Server(weir_bin, spec, data_dir, "--max-memory", str(budget), env=ENV) as srv:
        assert srv.has_line("memory budget %.1f MiB" % (budget / 2**20))
        refused = None
        for b in range(0, 100000, 250):
            keys = ["k%05d" % i for i in range(b, b + 250)]
            status, body = srv.json("POST", "/v1/events/" + SOURCE, [event(k, i) for i, k in enumerate(keys)])
            assert status in (200, 503), body
            out = {r["index"] for r in body["rejected"]}
            accepted += [k for i, k in enumerate(keys) if i not in out]
            if out:
                refused = body
                break
        assert refused, "100,000 keys fit a budget of %d bytes over %d" % (budget, base)
        first = refused["rejected"][0]["error"]
        assert "over --max-memory" in first and "keys it holds no state for" in first, first
        assert "nothing was logged" in first, first
        assert len(accepted) > 1000, len(accepted)  # the budget held some thousands of keys
        assert httputil.metric(srv.metrics(), "weir_events_rejected_total", source=SOURCE,
                               reason="memory_full") == refused["rejected_count"]
    assert logged_keys(data_dir) == sorted(accepted)
    held = list(accepted)

    # The memory of that state, at rest, without a budget ...
    with Server(weir_bin, spec, data_dir, "--max-memory", "none", env=ENV) as srv:
        full = used(srv)
    # ... and a budget under it, but not by an eighth: new keys are refused,
    # held keys scored.
    budget = int(full / 1.0625)  # (the window is budget .. budget * 1.125)
    with Server(weir_bin, spec, data_dir, "--max-memory", str(budget), env=ENV) as srv:
        n_refused = 0
        status, hdrs, data = srv.request("POST", "/v1/score/" + SOURCE, json.dumps(event("new")))
        assert status == 503 and hdrs.get("retry-after") == "10", (status, hdrs, data)
        n_refused += 1
        for i in range(10):
            status, body = score(srv, event("new%d" % i))
            assert status == 503 and body["error"]["code"] == "memory_full", body
            n_refused += 1
            status, body = score(srv, event(held[i], 100 + i))
            assert status == 200 and body["features"]["n_1h"] == 2, body
            accepted.append(held[i])
        # A batch: the held key's event is accepted, the new key's listed as refused.
        status, body = srv.json("POST", "/v1/events/" + SOURCE, [event(held[20], 200), event("x")])
        assert status == 200 and body["accepted"] == 1 and body["rejected_count"] == 1, body
        assert body["rejected"][0]["index"] == 1, body
        assert "over --max-memory" in body["rejected"][0]["error"], body
        accepted.append(held[20])
        n_refused += 1
        # Only new keys: none accepted, and the answer is a 503 to retry later.
        status, body = srv.json("POST", "/v1/events/" + SOURCE, [event("y"), event("z")])
        assert status == 503 and body["error"]["code"] == "memory_full", body
        assert body["accepted"] == 0 and [r["index"] for r in body["rejected"]] == [0, 1], body
        n_refused += 2
        # New keys and an invalid event: a 400, since a retry mends nothing.
        status, body = srv.json("POST", "/v1/events/" + SOURCE, [event("w"), {"k": "v"}])
        assert status == 400 and body["error"]["code"] == "invalid_events", body
        assert body["accepted"] == 0 and body["rejected_count"] == 2, body
        n_refused += 1
        m = srv.metrics()
        assert httputil.metric(m, "weir_events_rejected_total", source=SOURCE,
                               reason="memory_full") == n_refused
        assert httputil.metric(m, "weir_memory_budget_bytes") == budget
        assert httputil.metric(m, "weir_memory_refusing") == 1
        assert httputil.metric(m, "process_resident_memory_bytes") >= httputil.metric(m, "weir_memory_used_bytes") > budget
        # a key's features can still be read
        status, body = srv.json("GET", "/v1/features/%s/%s" % (SOURCE, held[0]))
        assert status == 200 and body["found"], body
    # Refused events never reached the log; every accepted one did, once.
    assert logged_keys(data_dir) == sorted(accepted)

    # A restart with a budget the state is far over, from no checkpoint (the
    # clean stop wrote one): the replay rebuilds it all (never refused),
    # says so, and then every event is refused.
    shutil.rmtree(data_dir / "checkpoints")
    with Server(weir_bin, spec, data_dir, "--max-memory", "1M", env=ENV) as srv:
        assert srv.has_line("replayed %d events" % len(accepted))
        status, body = score(srv, event(held[0], 300))
        assert status == 503 and body["error"]["code"] == "memory_full", body
        assert "every event is refused" in body["error"]["message"], body
        assert httputil.metric(srv.metrics(), "weir_memory_refusing") == 2
        status, body = srv.json("GET", "/v1/features/%s/%s" % (SOURCE, held[0]))
        assert status == 200 and body["found"] and body["features"]["n_1h"] == 2, body
        time.sleep(1)  # (housekeeping, every 250 ms, says the level once it changes)
        assert srv.stop() == 0
        err = srv.stderr()
        assert "weir run: memory: the heap holds" in err and "every event is refused" in err, err
    assert logged_keys(data_dir) == sorted(accepted)

    # Without a budget the same state takes new keys again.
    with Server(weir_bin, spec, data_dir, "--max-memory", "none", env=ENV) as srv:
        status, body = score(srv, event("fresh"))
        assert status == 200 and body["features"]["n_1h"] == 1, body


def test_max_memory_must_be_a_size(run_weir, tmp_path):
    spec = tmp_path / "budget.yaml"
    spec.write_text(SPEC)
    rc, _, err = run_weir(["run", spec, "--data", tmp_path / "d", "--max-memory", "512"])
    assert rc == 1 and "--max-memory 512 is 512 bytes, less than weir itself takes: a unit missing?" in err, err
    for bad in ["0", "5X", "-1", "1.5G", "G", "99999999999T"]:
        rc, _, err = run_weir(["run", spec, "--data", tmp_path / "d", "--max-memory", bad])
        assert rc == 1, (bad, err)
        assert err.startswith("weir run: --max-memory must be a size") and repr(bad)[1:-1] in err, err


def test_default_budget_is_five_eighths_of_the_memory_weir_may_have(weir_bin, data_dir, tmp_path):
    spec = tmp_path / "budget.yaml"
    spec.write_text(SPEC)
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.has_line(", 5/8 of the "), srv.lines
        budget = httputil.metric(srv.metrics(), "weir_memory_budget_bytes")
        assert 0 < budget <= ram // 8 * 5, (budget, ram)
        if srv.has_line("5/8 of the machine's RAM", timeout=0):
            assert budget == ram // 8 * 5
        status, body = score(srv, event("a"))
        assert status == 200, body
