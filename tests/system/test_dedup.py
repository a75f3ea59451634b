"""test_dedup.py — idempotent ingestion: a source's `id` and `dedup`.

A client that times out retries, and weir counted the retry as a second
payment (README, before: "weir keeps no idempotency key: an event sent twice
is two events"). With `id: txn`, an event whose
key applied the same id within `dedup` (of event time, past the watermark) is
a duplicate: logged, answered with its first's decision (as a second request
with an idempotency key gets the first's response), flagged, counted, never
applied, never emitted, no backfill row. The ids are keyed state: checkpointed and replayed,
so the retry is still a duplicate after kill -9 or a restart.

The oracle for "nothing counted twice": the same events without the retries,
ingested into another data directory, give the same features for every
event and the same closed windows."""
import json
import random

import httputil
from httputil import Server, metric

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

SPEC = """pipeline: pay
partitions: 3
checkpoint_interval: 0s
sources:
  pay:
    key: card
    time: ts
    lateness: 10s
{idlines}    fields:
      card: string
      txn: {idtype}
      amount: float
      merchant: string
      ts: time
features:
  n_1h: count() over 1h
  sum_24h: sum(amount) over 24h
  merchants_1h: distinct(merchant) over 1h
  prev_amount: last(amount)
  new_merchant: merchant != last(merchant)
decisions:
  - when: new_merchant and amount > 100
    then: review
    reason: a big payment at a new merchant
    emit: reviews
  - when: n_1h >= 3
    then: review
    emit: reviews
  - then: allow
    emit: allowed
aggregates:
  hourly:
    window: tumbling 1h
    select: {{total: sum(amount), n: count()}}
"""


def spec_file(tmp_path, name="pay.yaml", idlines="    id: txn\n    dedup: 1h\n", idtype="string"):
    path = tmp_path / name
    path.write_text(SPEC.format(idlines=idlines, idtype=idtype))
    return path


def ev(card, txn, ts, amount=10.0, merchant="m1"):
    return {"card": card, "txn": txn, "amount": amount, "merchant": merchant, "ts": ts}


def decisions(data_dir):
    """[(partition, key, record)] of the decision log, in log order."""
    return [(p, r.key, json.loads(r.value))
            for p, recs in httputil.log_records(data_dir, "pay", root="decisions").items() for r in recs]


def emitted_offsets(data_dir, name):
    path = data_dir / "outputs" / (name + ".ndjson")
    if not path.exists():
        return []
    return sorted((r["partition"], r["offset"]) for r in map(json.loads, path.read_text().splitlines()))


def windows(data_dir):
    path = data_dir / "outputs" / "hourly.ndjson"
    return sorted(path.read_text().splitlines()) if path.exists() else []


def test_a_retry_is_logged_scored_as_its_first_and_applied_once(weir_bin, data_dir, tmp_path):
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        status, first = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0, 10))
        assert status == 200 and first["duplicate"] is False, first
        status, retry = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0, 10))
        assert status == 200 and retry["duplicate"] is True, retry
        # what its first saw (nothing came between), and its own offset: it is logged
        assert retry["features"] == first["features"] and retry["decision"] == first["decision"]
        assert retry["offset"] == first["offset"] + 1 and retry["duplicate_of"] == first["offset"]
        status, second = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1000, 5, "m2"))
        assert second["duplicate"] is False
        assert second["features"]["n_1h"] == 2, second  # not 3: the retry was not applied
        assert second["features"]["sum_24h"] == 15.0 and second["features"]["prev_amount"] == 10.0
        status, feats = srv.json("GET", "/v1/features/pay/c1")
        assert feats["features"]["n_1h"] == 2, feats
        assert metric(srv.metrics(), "weir_events_duplicate_total", source="pay") == 1
        assert srv.stop() == 0
    part = first["partition"]
    logged = [r for recs in httputil.log_records(data_dir, "pay").values() for r in recs if r.type == 0]
    assert len(logged) == 3  # all three are in the log
    recs = {(p, d["offset"]): d for p, _, d in decisions(data_dir)}
    assert len(recs) == 3  # one decision per logged event
    assert recs[(part, retry["offset"])]["duplicate_of"] == first["offset"]
    assert "duplicate_of" not in recs[(part, first["offset"])]
    # the action was taken once: no emit for the retry
    assert emitted_offsets(data_dir, "allowed") == [(part, first["offset"]), (part, second["offset"])]


def test_a_retry_gets_its_firsts_decision_even_when_deciding_again_would_differ(
        weir_bin, data_dir, tmp_path):
    """Decided again, the retry would read last(merchant) = its first's own
    merchant: new_merchant false, and the big payment allowed. And after a
    reload that changes the rules, the first's decision still stands."""
    spec = spec_file(tmp_path)
    with Server(weir_bin, spec, data_dir) as srv:
        srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0, 10, "m1"))
        status, first = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))
        assert first["decision"] == "review" and first["features"]["new_merchant"] is True, first
        status, retry = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))
        assert retry["duplicate"] is True and retry["decision"] == "review", retry
        assert retry["features"] == first["features"] and retry["reason"] == first["reason"]
        assert retry["rule"] == first["rule"] and retry["spec"] == first["spec"] == 1
        # a reload that lets every payment through: a retry keeps its first's answer
        text = spec.read_text()
        spec.write_text(text.replace("  - when: new_merchant and amount > 100\n", "  - when: false\n"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec_version"] == 2, body
        status, again = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))
        assert again["decision"] == "review" and again["spec"] == 1, again
        # records hold no reason, and the running rule 0 is not the one that decided
        assert again["reason"] is None
        status, new = srv.json("POST", "/v1/score/pay", ev("c2", "t3", T0 + 2, 900, "m3"))
        assert new["decision"] == "allow" and new["spec"] == 2, new
        assert srv.stop() == 0
    assert emitted_offsets(data_dir, "reviews") == [(first["partition"], first["offset"])]


def test_events_batches_count_duplicates_within_and_across_requests(weir_bin, data_dir, tmp_path):
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        batch = [ev("c1", "a", T0), ev("c1", "a", T0), ev("c1", "b", T0 + 1), ev("c2", "a", T0)]
        status, body = srv.json("POST", "/v1/events/pay", batch)
        # accepted counts the duplicate: it is logged, the client is done with it
        assert status == 200 and body["accepted"] == 4 and body["duplicates"] == 1, body
        status, body = srv.json("POST", "/v1/events/pay", batch)  # the whole request again
        assert status == 200 and body["accepted"] == 4 and body["duplicates"] == 4, body
        # the same id under another key is another event: c2's "a" counted once
        assert srv.json("GET", "/v1/features/pay/c1")[1]["features"]["n_1h"] == 2
        assert srv.json("GET", "/v1/features/pay/c2")[1]["features"]["n_1h"] == 1
        assert srv.stop() == 0


def test_a_retry_after_kill_9_or_a_restart_is_still_a_duplicate(weir_bin, data_dir, tmp_path):
    spec = spec_file(tmp_path)
    firsts = {}
    with Server(weir_bin, spec, data_dir) as srv:
        firsts["t1"] = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))[1]
        srv.kill()  # no checkpoint: the ids come back by replaying the log
    with Server(weir_bin, spec, data_dir) as srv:
        status, body = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))
        assert body["duplicate"] is True, body
        firsts["t2"] = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1))[1]
        assert srv.stop() == 0  # a checkpoint at shutdown: the ids are in it
    assert any(d.is_dir() for d in (data_dir / "checkpoints").iterdir())
    with Server(weir_bin, spec, data_dir) as srv:
        for txn in ("t1", "t2"):
            status, body = srv.json("POST", "/v1/score/pay", ev("c1", txn, T0))
            assert body["duplicate"] is True, body
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        firsts["t3"] = srv.json("POST", "/v1/score/pay", ev("c1", "t3", T0 + 2))[1]
        srv.kill()  # after a checkpoint: restored from it, then the tail replayed
    with Server(weir_bin, spec, data_dir) as srv:
        for txn in ("t1", "t2", "t3"):
            status, body = srv.json("POST", "/v1/score/pay", ev("c1", txn, T0 + 3))
            assert body["duplicate"] is True, body
            assert body["features"] == firsts[txn]["features"], (body, firsts[txn])
        assert srv.json("GET", "/v1/features/pay/c1")[1]["features"]["n_1h"] == 3
        assert srv.stop() == 0
    recs = [d for _, _, d in decisions(data_dir)]
    assert sum(1 for d in recs if "duplicate_of" in d) == 6


def test_a_retry_behind_the_watermark_is_a_duplicate_not_a_late_event(weir_bin, data_dir, tmp_path):
    """A retry carries its first's time; other keys' events move the
    partition's watermark past it within seconds. It is still a duplicate,
    answered as its first (a late event would be decided again: allowed)."""
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0, 10, "m1"))
        first = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))[1]
        assert first["decision"] == "review", first
        # every partition's watermark past T0 + 1: a card in each, 30 s on
        cards = ["c%d" % i for i in range(2, 40)]
        srv.json("POST", "/v1/events/pay", [ev(c, "x" + c, T0 + 30_000) for c in cards])
        retry = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))[1]
        assert retry["duplicate"] is True and retry["late"] is False, retry
        assert retry["decision"] == "review" and retry["features"] == first["features"], retry
        # a new event at the same time is late, as before
        late = srv.json("POST", "/v1/score/pay", ev("c1", "t9", T0 + 1, 5, "m2"))[1]
        assert late["late"] is True and late["duplicate"] is False, late
        m = srv.metrics()
        assert metric(m, "weir_events_duplicate_total", source="pay") == 1
        assert metric(m, "weir_events_late_total", source="pay") == 1
        assert srv.stop() == 0
    assert emitted_offsets(data_dir, "reviews") == [(first["partition"], first["offset"])]


def test_a_first_whose_decision_a_crash_took_is_decided_then_its_retry_repeats_it(
        weir_bin, run_weir, data_dir, tmp_path):
    """Decisions are written in batches: a kill -9 takes the buffered ones.
    Recovery decides the first again, then its retry (found in the batch
    being written), in log order."""
    spec = spec_file(tmp_path)
    with Server(weir_bin, spec, data_dir, "--decision-flush", "60000") as srv:
        srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0, 10, "m1"))
        first = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))[1]
        retry = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))[1]
        assert retry["duplicate"] is True and retry["decision"] == first["decision"] == "review"
        srv.kill()
    assert decisions(data_dir) == []  # all three were in the batch the kill took
    with Server(weir_bin, spec, data_dir) as srv:
        again = srv.json("POST", "/v1/score/pay", ev("c1", "t2", T0 + 1, 900, "m2"))[1]
        assert again["duplicate"] is True and again["duplicate_of"] == first["offset"]
        assert again["decision"] == "review" and again["features"] == first["features"], again
        assert srv.stop() == 0
    recs = {d["offset"]: d for _, _, d in decisions(data_dir)}
    assert recs[retry["offset"]]["duplicate_of"] == first["offset"]
    assert recs[retry["offset"]]["decision"] == "review"
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc == 0 and ", 0 different" in out, out + err


def test_a_resent_batch_is_all_duplicates_answered_from_the_decision_log(
        weir_bin, run_weir, data_dir, tmp_path):
    spec = spec_file(tmp_path)
    batch = [ev("c%d" % (i % 50), "b%d" % i, T0 + i * 10, 1 + i % 7, "m%d" % (i % 5))
             for i in range(3000)]
    with Server(weir_bin, spec, data_dir) as srv:
        status, body = srv.json("POST", "/v1/events/pay", batch)
        assert status == 200 and body["duplicates"] == 0, body
        status, body = srv.json("POST", "/v1/events/pay", batch)
        assert status == 200 and body["accepted"] == 3000 and body["duplicates"] == 3000, body
        assert srv.stop() == 0
    recs = {}
    for p, _, d in decisions(data_dir):
        recs[(p, d["offset"])] = d
    dups = [d for d in recs.values() if "duplicate_of" in d]
    assert len(dups) == 3000
    for (p, off), d in recs.items():
        if "duplicate_of" in d:
            f = recs[(p, d["duplicate_of"])]
            assert all(f[k] == d[k] for k in ("decision", "rule", "score", "features")), (f, d)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc == 0 and ", 0 different" in out, out + err


def test_an_id_counts_for_dedup_past_the_watermark_then_is_new(weir_bin, data_dir, tmp_path):
    hour = 3_600_000
    with Server(weir_bin, spec_file(tmp_path), data_dir) as srv:
        srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))
        # the watermark (newest − 10 s) at T0 + 1h − 1 ms is before T0 + 1h: still remembered
        srv.json("POST", "/v1/score/pay", ev("c1", "x", T0 + hour + 10_000 - 1))
        assert srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0 + hour))[1]["duplicate"] is True
        # now it has passed T0 + dedup: forgotten, and t1 is a new event
        srv.json("POST", "/v1/score/pay", ev("c1", "y", T0 + hour + 10_000))
        status, body = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0 + hour + 10_000))
        assert body["duplicate"] is False, body
        assert srv.stop() == 0


def test_int_ids_and_null_ids(weir_bin, data_dir, tmp_path):
    with Server(weir_bin, spec_file(tmp_path, idtype="int"), data_dir) as srv:
        assert srv.json("POST", "/v1/score/pay", ev("c1", 7, T0))[1]["duplicate"] is False
        assert srv.json("POST", "/v1/score/pay", ev("c1", 7, T0))[1]["duplicate"] is True
        assert srv.json("POST", "/v1/score/pay", ev("c1", 8, T0))[1]["duplicate"] is False
        # an event without an id has no identity: never a duplicate
        for _ in range(2):
            status, body = srv.json("POST", "/v1/score/pay", ev("c1", None, T0))
            assert status == 200 and body["duplicate"] is False, body
        assert srv.json("GET", "/v1/features/pay/c1")[1]["features"]["n_1h"] == 4
        assert srv.stop() == 0


def events_with_retries(seed=7, cards=40, n=1500):
    """(events as sent, with retries — some at once, some later, some after a
    crash-like gap — and the same without them, in the same order)."""
    rnd = random.Random(seed)
    sent, unique = [], []
    t = T0
    for i in range(n):
        t += rnd.randrange(0, 6000)
        e = ev("c%d" % rnd.randrange(cards), "tx%d" % i, t - rnd.randrange(0, 8000),
               round(rnd.uniform(1, 500), 2), "m%d" % rnd.randrange(12))
        sent.append(e)
        unique.append(e)
        if rnd.random() < 0.15:
            sent.append(dict(e))  # retried at once
        if rnd.random() < 0.05 and len(unique) > 30:
            sent.append(dict(unique[-rnd.randrange(2, 30)]))  # retried later
    return sent, unique


def ndjson(evs):
    return "".join(json.dumps(e) + "\n" for e in evs)


def test_state_with_retries_equals_state_without_them(run_weir, tmp_path):
    """The oracle: retries change nothing any event's features or any window
    sees; backfill has a row per applied event only; verify agrees."""
    spec = spec_file(tmp_path)
    sent, unique = events_with_retries()
    with_dir, without_dir = tmp_path / "with", tmp_path / "without"
    out = run_weir(["ingest", spec, "--data", with_dir], input=ndjson(sent), check=True)[1]
    run_weir(["ingest", spec, "--data", without_dir], input=ndjson(unique), check=True)
    rows_with = httputil.backfill(run_weir, spec, with_dir, tmp_path)
    rows_without = httputil.backfill(run_weir, spec, without_dir, tmp_path)
    # no row for a duplicate: every logged event but them has one
    dups = len(sent) - len(rows_with)
    assert dups > 0.5 * (len(sent) - len(unique)) and "duplicates: %d " % dups in out, out

    def by_txn(rows, data_dir):
        """{txn: its first row's features}; a later row of the same txn can
        only be a retry of a first that was itself late (never applied, so
        its id was never held): late again."""
        evs = {(p, r.offset): json.loads(r.value)
               for p, recs in httputil.log_records(data_dir, "pay").items() for r in recs if r.type == 0}
        out = {}
        for k in sorted(rows, key=lambda k: (k[0], k[1])):
            row, txn = rows[k], evs[k]["txn"]
            if txn in out:
                assert row["late"] is True, (txn, row)
                continue
            out[txn] = {f: row[f] for f in ("n_1h", "sum_24h", "merchants_1h", "prev_amount",
                                            "new_merchant", "late")}
        return out

    a, b = by_txn(rows_with, with_dir), by_txn(rows_without, without_dir)
    assert a.keys() == b.keys() and len(a) == len(unique)
    for txn in a:
        assert all(httputil.same_value(a[txn][f], b[txn][f]) for f in a[txn]), (txn, a[txn], b[txn])
    assert windows(with_dir) == windows(without_dir) and windows(with_dir)
    # without ids every retry is applied: the oracle is not vacuous
    plain = spec_file(tmp_path, "plain.yaml", idlines="")
    plain_dir = tmp_path / "plain"
    run_weir(["ingest", plain, "--data", plain_dir], input=ndjson(sent), check=True)
    assert windows(plain_dir) != windows(without_dir)


def test_served_decisions_with_retries_verify_and_replay_the_same(weir_bin, run_weir, data_dir, tmp_path):
    spec = spec_file(tmp_path)
    sent, unique = events_with_retries(seed=3, n=400)
    answers = []
    with Server(weir_bin, spec, data_dir) as srv:
        for e in sent:
            status, body = srv.json("POST", "/v1/score/pay", e)
            assert status == 200, body
            answers.append(body)
        feats = {c: srv.json("GET", "/v1/features/pay/" + c)[1]["features"]
                 for c in sorted({e["card"] for e in sent})}
        assert srv.stop() == 0
    # a repeat of an applied event is a duplicate whatever its time, answered
    # as its first was; of a late one (never applied), late again
    firsts = {}
    for e, a in zip(sent, answers):
        f = firsts.get(e["txn"])
        if f is None:
            assert not a["duplicate"], (e, a)
            firsts[e["txn"]] = a
        elif f["late"]:
            assert a["late"] and not a["duplicate"], (e, a)
        else:
            assert a["duplicate"] and a["duplicate_of"] == f["offset"], (e, a)
            assert all(a[k] == f[k] for k in ("decision", "rule", "score", "features")), (a, f)
    assert sum(a["duplicate"] for a in answers) > 0.8 * (len(sent) - len(unique))
    rc, out, err = run_weir(["verify", spec, "--data", data_dir])
    assert rc == 0 and ", 0 different" in out, out + err
    # a full replay (no checkpoint) rebuilds the same state, ids included
    for d in (data_dir / "checkpoints").iterdir():
        if d.is_dir():
            for f in d.iterdir():
                f.unlink()
            d.rmdir()
    with Server(weir_bin, spec, data_dir) as srv:
        for c, f in feats.items():
            assert srv.json("GET", "/v1/features/pay/" + c)[1]["features"] == f, c
        status, body = srv.json("POST", "/v1/score/pay", sent[-1])
        assert body["duplicate"] is True, body
        assert srv.stop() == 0


def test_spec_errors_name_the_id_and_a_reload_may_not_change_it(weir_bin, run_weir, data_dir, tmp_path):
    cases = [
        ("    id: nope\n", "id field 'nope' is not declared in fields"),
        ("    id: card\n", "id field 'card' is the key"),
        ("    id: amount\n", "id field 'amount' must be a string or an int, not float"),
        ("    dedup: 1h\n", "dedup needs an id"),
        ("    id: txn\n    dedup: soon\n", "dedup"),
    ]
    # a retry's first has one decision only under exactly_once
    alo = tmp_path / "alo.yaml"
    alo.write_text("guarantee: at_least_once\n" + spec_file(tmp_path).read_text())
    rc, out, err = run_weir(["ingest", alo, "--data", data_dir], input="")
    assert rc != 0 and "id (idempotent ingestion) needs guarantee: exactly_once" in err, err
    for i, (lines, want) in enumerate(cases):
        path = spec_file(tmp_path, "bad%d.yaml" % i, idlines=lines)
        rc, out, err = run_weir(["ingest", path, "--data", data_dir], input="")
        assert rc != 0 and want in err and ".yaml:" in err, (lines, err)  # file:line:col
    spec = spec_file(tmp_path)
    with Server(weir_bin, spec, data_dir) as srv:
        srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))
        spec.write_text(SPEC.format(idlines="    id: txn\n    dedup: 2h\n", idtype="string"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and "restart" in body["error"]["message"], body
        assert "id or dedup changed" in body["error"]["message"], body
        # the running spec stays: the retry is a duplicate still
        assert srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))[1]["duplicate"] is True
        assert srv.stop() == 0


def test_a_source_without_id_answers_as_before(weir_bin, data_dir, tmp_path):
    with Server(weir_bin, spec_file(tmp_path, idlines=""), data_dir) as srv:
        status, body = srv.json("POST", "/v1/score/pay", ev("c1", "t1", T0))
        assert status == 200 and "duplicate" not in body, body
        status, body = srv.json("POST", "/v1/events/pay", [ev("c1", "t1", T0)])
        assert "duplicates" not in body, body
        assert srv.json("GET", "/v1/features/pay/c1")[1]["features"]["n_1h"] == 2
        assert srv.stop() == 0
