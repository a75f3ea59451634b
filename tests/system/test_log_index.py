"""Indexes (issue 2, Build 4 and 6): reads from an offset or a time start at
the right record, with indexes present, rebuilt, or across segments; a
closed segment's index that is missing or does not match is rebuilt at the
next open (stderr says so) and reads stay correct."""
import os
import random
import shutil
import struct
import time

import pytest

from logformat import parse_index, parse_read_line, read_batches, segment_files

TOPIC = "ix"
APPENDS = 12


@pytest.fixture(scope="module")
def indexed_log(tmp_path_factory, weir_bin):
    """One partition, several closed segments of 64 KiB with many index
    entries each; records appended by 12 separate commands so that they
    carry 12 different timestamps. Returns (pristine dir, records)."""
    import subprocess
    d = tmp_path_factory.mktemp("index") / "data"
    rng = random.Random(99)
    n = 0
    for a in range(APPENDS):
        lines = []
        for _ in range(250):
            lines.append(b'{"n":%d,"a":%d,"pad":"%s"}' % (n, a, b"i" * rng.randrange(40, 100)))
            n += 1
        subprocess.run([weir_bin, "log", "append", str(d), "--topic", TOPIC, "--batch", "25",
                        "--segment-bytes", "65536"], input=b"\n".join(lines) + b"\n", check=True,
                       stdout=subprocess.DEVNULL)
        time.sleep(0.015)  # the next command's records get a later timestamp
    out = subprocess.run([weir_bin, "log", "read", str(d), "--topic", TOPIC], check=True,
                         stdout=subprocess.PIPE).stdout
    recs = [parse_read_line(l) for l in out.splitlines(keepends=True)]
    assert [r[1] for r in recs] == list(range(n))
    assert len({r[2] for r in recs}) >= 2
    segs = segment_files(d, TOPIC, 0)
    assert len(segs) >= 4
    for s in segs[:-1]:
        assert len(parse_index(open(s[:-4] + ".idx", "rb").read())) >= 4
    return d, out.splitlines(keepends=True), recs


def queries(recs, rng):
    """(args, expected lines' indexes) for reads from offsets and times."""
    n = len(recs)
    offsets = {0, 1, n - 1, n, n + 5} | {rng.randrange(n) for _ in range(8)}
    qs = [(["--from-offset", o], list(range(min(o, n), n))) for o in sorted(offsets)]
    stamps = sorted({r[2] for r in recs})
    times = set(stamps) | {t - 1 for t in stamps} | {t + 1 for t in stamps} | {0, stamps[-1] + 10**6}
    for t in sorted(times):
        first = next((i for i, r in enumerate(recs) if r[2] >= t), n)
        qs.append((["--from-time", t], list(range(first, n))))
    o = rng.randrange(n)
    qs.append((["--from-offset", o, "--limit", 7], list(range(o, min(n, o + 7)))))
    return qs


def check_queries(run_weir, d, lines, recs, ctx, seed=5):
    for args, want in queries(recs, random.Random(seed)):
        rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC] + args, text=False)
        assert rc == 0, "%s: read %s: %s" % (ctx, args, err.decode())
        got = out.splitlines(keepends=True)
        if got != [lines[i] for i in want]:
            first = parse_read_line(got[0])[1] if got else None
            raise AssertionError("%s: read %s gave %d records starting at offset %s; expected %d "
                                 "starting at %s" % (ctx, args, len(got), first, len(want),
                                                     want[0] if want else None))


def fresh_copy(src, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(src, d)
    return d


def test_reads_from_offset_and_time(run_weir, indexed_log, tmp_path):
    src, lines, recs = indexed_log
    d = fresh_copy(src, tmp_path)
    check_queries(run_weir, d, lines, recs, "indexes present")
    # the timestamps printed are the append times: one per command, increasing
    stamps = [r[2] for r in recs]
    assert stamps == sorted(stamps)


def test_deleted_indexes_are_rebuilt(run_weir, indexed_log, tmp_path):
    src, lines, recs = indexed_log
    d = fresh_copy(src, tmp_path)
    segs = segment_files(d, TOPIC, 0)
    idx = {s: open(s[:-4] + ".idx", "rb").read() for s in segs[:-1]}
    for s in idx:
        os.unlink(s[:-4] + ".idx")
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, out + err  # a missing index is a note, not damage
    notes = [l for l in err.splitlines() if "index" in l]
    assert len(notes) == len(idx), err
    for s in idx:
        assert any(os.path.basename(s)[:20] in l for l in notes), err
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC, "--from-offset", "1"],
                            text=False)
    assert rc == 0
    assert out.splitlines(keepends=True) == lines[1:]
    assert b"%d index file(s) missing or stale" % len(idx) in err, err
    assert not any(os.path.exists(s[:-4] + ".idx") for s in idx), "read (read-only) wrote an index"
    err = run_weir.reopen_log(d, TOPIC)
    assert "rebuilt %d index file" % len(idx) in err, err
    for s, data in idx.items():
        assert open(s[:-4] + ".idx", "rb").read() == data, "rebuilt index of %s differs" % s
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0 and err == "", err
    check_queries(run_weir, d, lines, recs, "indexes rebuilt")


def _entries(data):
    return [list(e) for e in parse_index(data)]


def _pack(entries):
    return b"".join(struct.pack("<IIq", *e) for e in entries)


def corrupt(kind, data, other, rng):
    e = _entries(data)
    if kind == "empty":
        return b""
    if kind == "torn":
        return data[:-8]
    if kind == "no-end-entry":
        return data[:-16]
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in data)
    if kind == "zeros":
        return bytes(len(data))
    if kind == "end-duplicated":
        return data + data[-16:]
    if kind == "other-segment":
        return other
    if kind == "end-offset-plus-1":
        e[-1][0] += 1
    elif kind == "end-offset-minus-1":
        e[-1][0] -= 1
    elif kind == "end-timestamp-lowered":
        e[-1][2] = e[-2][2]  # still not below the entry before it
    elif kind == "middle-position":
        m = len(e) // 2
        e[m][1] += 1
    elif kind == "middle-offset":
        m = len(e) // 2
        e[m][0] += 1
    elif kind == "middle-timestamp-lowered":
        # the first entry whose "max before" is above the one before it
        m = next(i for i in range(2, len(e) - 1) if e[i][2] > e[i - 1][2])
        e[m][2] = e[m - 1][2]
    else:
        raise ValueError(kind)
    return _pack(e)


KINDS = ["empty", "torn", "no-end-entry", "garbage", "zeros", "end-duplicated", "other-segment",
         "end-offset-plus-1", "end-offset-minus-1", "end-timestamp-lowered", "middle-position",
         "middle-offset", "middle-timestamp-lowered"]


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_index_is_rebuilt(run_weir, indexed_log, tmp_path, kind):
    src, lines, recs = indexed_log
    d = fresh_copy(src, tmp_path)
    segs = segment_files(d, TOPIC, 0)
    # a closed segment in the middle whose records span more than one timestamp
    target = next(s for s in segs[1:-1]
                  if len({r.ts for b in read_batches(s) for r in b.records}) > 1)
    ipath = target[:-4] + ".idx"
    pristine = open(ipath, "rb").read()
    other = open(segs[0][:-4] + ".idx", "rb").read()
    bad = corrupt(kind, pristine, other, random.Random(kind))
    assert bad != pristine
    open(ipath, "wb").write(bad)
    name = os.path.basename(ipath)[:20]  # the segment's name, with .seg or .idx

    # check: not damage (the data is intact), but it notes the index
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, "check calls a bad index damage: %s%s" % (out, err)
    assert any(name in l and "index" in l for l in err.splitlines()), \
        "check does not note the bad index %s: %s" % (name, err)

    # read, read-only, is right and leaves it; the next writer rebuilds it
    # and says so; reads are then right
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False)
    err = err.decode()
    assert rc == 0, "open fails on an index problem instead of rebuilding it: %s" % err
    assert out.splitlines(keepends=True) == lines
    assert "1 index file(s) missing or stale" in err, err
    assert open(ipath, "rb").read() == bad, "read (read-only) rewrote the index"
    err = run_weir.reopen_log(d, TOPIC)
    assert "rebuilt 1 index file" in err, "check said the next open rebuilds %s; it did not: %r" % (
        name, err)
    assert open(ipath, "rb").read() == pristine
    check_queries(run_weir, d, lines, recs, "index '%s' rebuilt" % kind)


@pytest.mark.parametrize("kind", KINDS)
def test_reads_with_a_corrupt_index_are_right(run_weir, indexed_log, tmp_path, kind):
    """Before anything rebuilds the index, every read from an offset or a time
    through it is right: an index is derived data, and a bad one must neither
    hide records nor make intact data unreadable."""
    src, lines, recs = indexed_log
    d = fresh_copy(src, tmp_path)
    segs = segment_files(d, TOPIC, 0)
    target = next(s for s in segs[1:-1]
                  if len({r.ts for b in read_batches(s) for r in b.records}) > 1)
    ipath = target[:-4] + ".idx"
    pristine = open(ipath, "rb").read()
    other = open(segs[0][:-4] + ".idx", "rb").read()
    for args, want in queries(recs, random.Random(3)):
        open(ipath, "wb").write(corrupt(kind, pristine, other, random.Random(kind)))
        rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC] + args, text=False)
        got = out.splitlines(keepends=True)
        expect = [lines[i] for i in want]
        assert got == expect[:len(got)], "index '%s': read %s printed wrong records" % (kind, args)
        assert rc == 0 and len(got) == len(expect), "index '%s': read %s failed: %s" % (
            kind, args, err.decode())
