"""Bad events (issue 3): a line that is not JSON, not an object, misses the
key or the time, has a field of the wrong type, a bad RFC 3339 time, names
a field twice or is over 1 MiB is reported on stderr as `weir ingest: line
N: <reason>` naming the field, never reaches the log or the state, and the
other lines are processed: every good event's features equal the oracle's
computed without the bad lines, and the log holds exactly the good events.
Exit status 1.
"""
import json
import random
import re

import eventgen
import oracle

GOOD = 6000
TS = 1767225600000

# (line, field named in the message or None)
BAD = [
    ("this is not JSON", None),
    ('{"user": "u00001", "ts": 1767225600000', None),  # truncated
    ("[1, 2, 3]", None),
    ('"just a string"', None),
    ("42", None),
    ("null", None),
    ('{"ts": 1767225600000, "amount": 3.5}', "user"),
    ('{"user": null, "ts": 1767225600000}', "user"),
    ("{}", "user"),
    ('{"user": "u00001", "amount": 3.5}', "ts"),
    ('{"user": "u00001", "ts": null}', "ts"),
    ('{"user": 12, "ts": 1767225600000}', "user"),
    ('{"user": ["u1"], "ts": 1767225600000}', "user"),
    ('{"user": "u00001", "ts": 1767225600000, "amount": "12.5"}', "amount"),
    ('{"user": "u00001", "ts": 1767225600000, "amount": true}', "amount"),
    ('{"user": "u00001", "ts": 1767225600000, "qty": 1.5}', "qty"),
    ('{"user": "u00001", "ts": 1767225600000, "qty": "3"}', "qty"),
    ('{"user": "u00001", "ts": 1767225600000, "qty": 1152921504606846976}', "qty"),  # > 2^53
    # 2^53 + 1 reads as 2^53: neither is an int (two ids there would be one key)
    ('{"user": "u00001", "ts": 1767225600000, "qty": 9007199254740993}', "qty"),
    ('{"user": "u00001", "ts": 1767225600000, "qty": 9007199254740992}', "qty"),
    ('{"user": "u00001", "ts": 1767225600000, "flag": "yes"}', "flag"),
    ('{"user": "u00001", "ts": 1767225600000, "flag": 1}', "flag"),
    ('{"user": "u00001", "ts": 1767225600000, "merchant": 5}', "merchant"),
    ('{"user": "u00001", "ts": 1767225600000, "country": {"a": 1}}', "country"),
    ('{"user": "u00001", "ts": 1767225600000, "lat": [1, 2]}', "lat"),
    ('{"user": "u00001", "ts": "2026-13-01T00:00:00Z"}', "ts"),
    ('{"user": "u00001", "ts": "2026-02-30T00:00:00Z"}', "ts"),
    ('{"user": "u00001", "ts": "2026-01-01 00:00:00"}', "ts"),  # no zone
    ('{"user": "u00001", "ts": "2026-01-01T25:00:00Z"}', "ts"),
    ('{"user": "u00001", "ts": "yesterday"}', "ts"),
    ('{"user": "u00001", "ts": 1767225600000.5}', "ts"),
    ('{"user": "u00001", "ts": true}', "ts"),
    ('{"user": "u00001", "user": "u00002", "ts": 1767225600000}', "user"),  # a field twice
    ('{"user": "u00001", "ts": 1767225600000, "amount": 1.5, "amount": 2.5}', "amount"),
    ('{"ts": 1767225600000, "user": "u00001", "ts": 1767225600001}', "ts"),
    ('{"user": "u00001", "ts": 1767225600000, "note": "%s"}' % ("x" * (3 << 19)), None),  # 1.5 MiB
]


def _mixed_input(seed=11):
    """Good generated events with the bad lines spread among them, in two
    chunks; also the same chunks without the bad lines."""
    rng = random.Random(seed)
    good = [l.rstrip("\n") for l in eventgen.to_lines(
        eventgen.gen_events(GOOD, keys=150, seed=seed, mean_gap_ms=3000))]
    # a good line just under 1 MiB: the limit is 1 MiB, not less
    big = json.dumps({"user": "u00003", "ts": TS + 5000, "amount": 1.0,
                      "note": "y" * ((1 << 20) - 100)})
    assert len(big) < (1 << 20)
    good.insert(GOOD // 4, big)
    chunks_good = eventgen.chunks(good, 2)
    mixed = []
    for c, chunk in enumerate(chunks_good):
        lines = list(chunk)
        for bad, _ in BAD[c::2]:
            lines.insert(rng.randrange(len(lines) + 1), bad)
        mixed.append(lines)
    return mixed, chunks_good


def test_bad_lines_are_reported_and_change_nothing(run_weir, data_dir, tmp_path):
    spec = eventgen.full_spec(partitions=3, with_aggregates=True, pipeline="badevents")
    path = tmp_path / "spec.yaml"
    path.write_text(spec.yaml())
    mixed, clean = _mixed_input()
    field_of = dict(BAD)
    orc = oracle.Oracle(spec)
    for c, lines in enumerate(mixed):
        rc, out, err = run_weir(["ingest", path, "--data", data_dir],
                                input="".join(l + "\n" for l in lines))
        orc.ingest(lines)
        assert rc == 1, "exit status %d with bad lines (want 1): %s" % (rc, err[-500:])
        bad_nos = {no: field_of[lines[no - 1]] for no, ch, _ in orc.rejected if ch == c}
        assert len(bad_nos) == len(BAD[c::2]), "the oracle must reject exactly the bad lines"
        msgs = [m for m in err.splitlines() if m.strip()]
        problems = []
        by_no = {}
        for m in msgs:
            mm = re.match(r"weir ingest: line (\d+): (.+)$", m)
            if not mm:
                problems.append("stderr line not of the form 'weir ingest: line N: reason': %r"
                                % m[:200])
                continue
            no = int(mm.group(1))
            if no in by_no:
                problems.append("two messages for line %d" % no)
            by_no[no] = mm.group(2)
        for no, field in sorted(bad_nos.items()):
            if no not in by_no:
                problems.append("line %d (%s) rejected without a message"
                                % (no, lines[no - 1][:80]))
            elif field and not re.search(r"\b%s\b" % field, by_no[no]):
                problems.append("line %d (%s): message %r does not name field '%s'"
                                % (no, lines[no - 1][:80], by_no[no], field))
        for no in by_no:
            if no not in bad_nos:
                problems.append("good line %d reported: %r" % (no, by_no[no]))
        assert not problems, "chunk %d:\n%s" % (c, "\n".join(problems))
        # the reason is short: the over-1 MiB line is not echoed back
        assert all(len(m) < 400 for m in msgs)

    # the oracle over the input without the bad lines computes the same rows
    clean_orc = oracle.Oracle(spec)
    for lines in clean:
        clean_orc.ingest(lines)
    assert clean_orc.rows == orc.rows and clean_orc.closed == orc.closed

    failures = []
    out = tmp_path / "rows.ndjson"
    rc, _, err = run_weir(["backfill", path, "--data", data_dir, "--out", out, "--format", "ndjson"])
    assert rc == 0, err
    errs = oracle.compare_rows(spec, clean_orc.rows, oracle.read_ndjson(out))
    if errs:
        failures.append("features after bad lines differ from the oracle without them:\n" +
                        "\n".join(errs))
    got = []
    for oc in spec.aggregates:
        p = data_dir / "outputs" / (oc.name + ".ndjson")
        got += oracle.read_ndjson(p) if p.exists() else []
    errs = oracle.compare_closed(spec, clean_orc.closed, got)
    if errs:
        failures.append("aggregates on close differ:\n" + "\n".join(errs))
    p = data_dir / "outputs" / "late.ndjson"
    errs = oracle.compare_late(clean_orc.late, oracle.read_ndjson(p) if p.exists() else [])
    if errs:
        failures.append("late output differs:\n" + "\n".join(errs))

    # the log holds exactly the good events, in input order per partition
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", spec.source])
    assert rc == 0, err
    recs = [json.loads(l) for l in out.splitlines() if l.strip()]
    events = [r for r in recs if r.get("type") != "tick"]
    want = {}
    for obj in clean_orc.accepted:
        want.setdefault(oracle.partition_of(obj["user"], spec.partitions), []).append(obj)
    got_by_part = {}
    for r in events:
        got_by_part.setdefault(r["partition"], []).append(r["value"])
    if got_by_part != want:
        failures.append("the log does not hold exactly the good events: %d events logged, %d "
                        "good" % (len(events), sum(len(c) for c in clean)))
    assert not failures, "\n".join(failures)


def test_all_lines_bad_exit_1_and_nothing_logged(run_weir, data_dir, tmp_path):
    spec = eventgen.full_spec(partitions=2, with_aggregates=False, pipeline="allbad")
    path = tmp_path / "spec.yaml"
    path.write_text(spec.yaml())
    lines = [b for b, _ in BAD[:12]]
    rc, out, err = run_weir(["ingest", path, "--data", data_dir],
                            input="".join(l + "\n" for l in lines))
    assert rc == 1
    nos = sorted(int(m) for m in re.findall(r"^weir ingest: line (\d+):", err, re.M))
    assert nos == list(range(1, len(lines) + 1)), err
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", spec.source])
    events = [l for l in out.splitlines() if l.strip() and '"type":"tick"' not in l]
    assert events == []


def test_a_logged_int_of_2_53_is_still_replayed(run_weir, tmp_path):
    """The edge takes ints up to 2^53 - 1 (2^53 + 1 reads as 2^53), but an
    older weir logged 2^53 itself: replay reads it as before (it stopped
    run and ingest at that event, and backfill skipped its row)."""
    spec = tmp_path / "ints.yaml"
    spec.write_text("pipeline: ints\npartitions: 1\nsources:\n  s:\n    key: uid\n    time: ts\n"
                    "    fields: {uid: int, ts: time}\nfeatures:\n  n: count() over 1h\n")
    data = tmp_path / "data"
    big = 2 ** 53
    lines = "".join('{"uid": %d, "ts": %d}\n' % (u, 1000 + i) for i, u in enumerate((big, 7, big)))
    # (one partition: weir log append keys by ints below 9e15 only)
    run_weir(["log", "append", data, "--topic", "s", "--partitions", 1], input=lines, check=True)
    out = tmp_path / "rows.ndjson"
    rc, _, err = run_weir(["backfill", spec, "--data", data, "--out", out, "--format", "ndjson"])
    assert rc == 0, err
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert sorted((r["key"], r["n"]) for r in rows) == [(7, 1), (big, 1), (big, 2)], rows
    # and the edge refuses it now
    rc, _, err = run_weir(["ingest", spec, "--data", data], input='{"uid": %d, "ts": 5000}\n' % big)
    assert rc == 1 and "field 'uid': expected an int (a whole number of at most 2^53 - 1)" in err, err
