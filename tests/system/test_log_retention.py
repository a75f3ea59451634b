"""Retention (issue 2, "It must show"; log.h): whole closed segments are
deleted, oldest first, by size (--retention-bytes: while the partition holds
more than the limit) and by age (--retention-ms: the newest record is
older); the active segment never. Reads then start at the new log start and
--from-offset below it is an error naming the start."""
import os
import subprocess
import time

import pytest

from logformat import parse_read_line, parse_stat, segment_base, segment_files

TOPIC = "r"


def stream(tag, n):
    return b"".join(b'{"tag":"%s","n":%d,"pad":"%s"}\n' % (tag, i, b"r" * (i % 50))
                    for i in range(n))


def append(run_weir, d, data, *extra, check=True):
    return run_weir(["log", "append", d, "--topic", TOPIC, "--batch", "20", "--segment-bytes",
                     "4096"] + [str(e) for e in extra], input=data, check=check)


def read(run_weir, d, *extra):
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC] + list(extra), text=False)
    assert rc == 0, err
    return [parse_read_line(l) for l in out.splitlines(keepends=True)]


def layout(d, p=0):
    """[(base, size)] of a partition's segments, oldest first."""
    return [(segment_base(s), os.path.getsize(s)) for s in segment_files(d, TOPIC, p)]


def check_start(run_weir, d, start, full, p=0):
    """Reads begin at `start` with the right records; below it is an error
    naming the start; stat agrees."""
    got = read(run_weir, d, "--partition", p)
    want = [r for r in full if r[0] == p and r[1] >= start]
    assert [(r[1], r[4]) for r in got] == [(r[1], r[4]) for r in want]
    if start > 0:
        rc, _, err = run_weir(["log", "read", d, "--topic", TOPIC, "--partition", p,
                               "--from-offset", start - 1])
        assert rc != 0, "reading below the log start succeeded"
        assert str(start) in err and len(err.strip().splitlines()) == 1, err
    rc, out, _ = run_weir(["log", "stat", d], check=True)
    row = [r for r in parse_stat(out) if r["part"] == p][0]
    assert row["first_offset"] == start
    # no index is left behind for a deleted segment
    pdir = os.path.dirname(segment_files(d, TOPIC, p)[0])
    for name in os.listdir(pdir):
        if name.endswith(".idx"):
            assert int(name[:20]) >= start, "index of deleted segment %s left behind" % name


def expected_by_size(ref, limit):
    """The segments left when, at each roll, the oldest closed segments are
    deleted while the partition holds more than `limit` bytes, and once more
    as weir log append exits (the active segment's bytes counted too)."""
    kept = []
    for i, seg in enumerate(ref[:-1]):
        kept.append(seg)  # segment i closes; the new active one is empty
        while kept and sum(s for _, s in kept) > limit:
            kept.pop(0)
    while kept and sum(s for _, s in kept) + ref[-1][1] > limit:
        kept.pop(0)
    return kept + [ref[-1]]


@pytest.mark.parametrize("limit", [100, 10000, 20000, 10**9])
def test_retention_by_size(run_weir, tmp_path, limit):
    data = stream(b"s", 2500)
    ref_dir, d = tmp_path / "ref", tmp_path / "d"
    append(run_weir, ref_dir, data)
    ref = layout(ref_dir)
    assert len(ref) >= 15
    full = read(run_weir, ref_dir)

    rc, out, _ = append(run_weir, d, data, "--retention-bytes", limit)
    got = layout(d)
    # what it says it deleted, at its rolls and at its exit
    gone = ref[:len(ref) - len(got)]
    assert "retention deleted %d segments (%d bytes)" % (len(gone), sum(s for _, s in gone)) in out, out
    # invariants: the active segment is kept, only the oldest ones went, whole
    assert got[-1] == ref[-1], "the active segment was deleted or changed"
    assert got == ref[len(ref) - len(got):], "not a suffix of the segments: %s" % got
    # within the limit, and no more deleted than needed
    want = expected_by_size(ref, limit)
    closed = sum(s for _, s in got[:-1])
    assert got == want, ("limit %d: kept %d segments (%d bytes closed + %d active); expected %d "
                         "(%d bytes closed)" % (limit, len(got), closed, got[-1][1], len(want),
                                                sum(s for _, s in want[:-1])))
    check_start(run_weir, d, got[0][0], full)


def test_retention_by_size_per_partition(run_weir, tmp_path):
    """Each partition is held to the limit on its own."""
    data = stream(b"p", 4000)
    ref_dir, d = tmp_path / "ref", tmp_path / "d"
    append(run_weir, ref_dir, data, "--partitions", 2)
    append(run_weir, d, data, "--partitions", 2, "--retention-bytes", 12000)
    full = read(run_weir, ref_dir)
    for p in range(2):
        ref, got = layout(ref_dir, p), layout(d, p)
        assert got == expected_by_size(ref, 12000), "partition %d: %s" % (p, got)
        check_start(run_weir, d, got[0][0], full, p)


def test_retention_by_age(run_weir, tmp_path):
    """Segments whose newest record is older than --retention-ms go at the
    next roll; segments holding new records stay."""
    old, new = stream(b"old", 600), stream(b"new", 600)
    ref_dir, d = tmp_path / "ref", tmp_path / "d"
    append(run_weir, ref_dir, old)
    append(run_weir, d, old)
    before = layout(d)
    assert len(before) >= 4
    time.sleep(1.5)
    append(run_weir, ref_dir, new)
    append(run_weir, d, new, "--retention-ms", 1000)
    ref = layout(ref_dir)
    full = read(run_weir, ref_dir)
    first_new = min(r[1] for r in full if b'"tag":"new"' in r[4])
    # the first segment holding a new record, and all after it, stay
    start = max(b for b, _ in ref if b <= first_new)
    got = layout(d)
    assert got == [s for s in ref if s[0] >= start], "kept %s; expected from %d on" % (got, start)
    check_start(run_weir, d, start, full)


def test_age_never_deletes_the_active_segment(weir_bin, run_weir, tmp_path):
    """With every record old, retention (run by the background thread while
    an append waits for input) deletes every closed segment but keeps each
    partition's active one, old as it is."""
    d = tmp_path / "d"
    append(run_weir, d, stream(b"old", 900), "--partitions", 2)
    before = [layout(d, p) for p in range(2)]
    assert all(len(b) >= 3 for b in before)
    full_old = read(run_weir, d)
    time.sleep(1.2)
    proc = subprocess.Popen([weir_bin, "log", "append", str(d), "--topic", TOPIC, "--segment-bytes",
                             "4096", "--retention-ms", "1000"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.6)  # several runs of the background thread, no input yet
    out, err = proc.communicate(stream(b"new", 4))
    assert proc.returncode == 0, err
    full = read(run_weir, d)
    for p in range(2):
        active_base = before[p][-1][0]
        got = layout(d, p)
        assert [b for b, _ in got] == [active_base], "partition %d kept %s" % (p, got)
        old_tail = [r[4] for r in full_old if r[0] == p and r[1] >= active_base]
        now = [r for r in full if r[0] == p]
        assert now[0][1] == active_base
        assert [r[4] for r in now][:len(old_tail)] == old_tail
        assert sum(1 for r in now if b'"tag":"new"' in r[4]) == 2
        check_start(run_weir, d, active_base, full_old + [r for r in full if b"new" in r[4]], p)


def test_retention_with_no_input_is_applied_and_said(run_weir, tmp_path):
    """`weir log append DIR --topic T --retention-bytes B < /dev/null` (the
    offline way to apply retention) deleted nothing: the log applied it at a
    segment roll and on a flusher round the short run never reached. It is
    applied before exit and what it deleted is printed."""
    d = tmp_path / "data"
    append(run_weir, d, stream(b"a", 2000))
    segs = layout(d)
    assert len(segs) >= 5
    keep = sum(size for _, size in segs[-2:])
    rc, out, err = append(run_weir, d, b"", "--retention-bytes", keep)
    assert rc == 0, err
    assert layout(d) == segs[-2:]
    gone = segs[:-2]
    assert "retention deleted %d segments (%d bytes)" % (len(gone), sum(s for _, s in gone)) in out, out
    check_start(run_weir, d, segs[-2][0], read(run_weir, d))
