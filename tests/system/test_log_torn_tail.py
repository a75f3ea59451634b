"""Torn tail (issue 2, "It must show"; recovery rules in src/log/log.h):
cutting the active segment at every byte offset inside its last batch makes
the next open drop exactly that batch and report the bytes dropped, with
everything before it intact (`log stat`, read-only, reports it and leaves
it for the next writer); a bad-CRC last batch is a torn tail too; but
damage followed by valid batches is corruption, an error naming the file and
byte offset, and nothing is dropped."""
import os
import random
import re

import pytest

from logformat import parse_stat, read_batches, segment_files

TOPIC = "t"


def lines(prefix, n):
    return b"".join(b'{"user":"u%d","tag":"%s","n":%d,"pad":"%s"}\n' % (i % 3, prefix, i, b"p" * (i % 20))
                    for i in range(n))


def read_all(run_weir, d, binary=None):
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False, binary=binary)
    return rc, out, err.decode()


def recovery_lines(err):
    return [l for l in err.splitlines() if "torn tail" in l]


def partition_of_u1(run_weir, d):
    rc, out, _ = read_all(run_weir, d)
    for l in out.splitlines():
        if b'"tag":"b"' in l:
            return int(re.match(rb'\{"partition":(\d+)', l)[1])
    raise AssertionError("no tag b record")


@pytest.mark.parametrize("layout", ["single-segment", "after-closed-segments", "alone-in-segment"])
def test_cut_at_every_byte_of_the_last_batch(run_weir, data_dir, layout):
    d = data_dir / "d"
    extra = []
    if layout == "after-closed-segments":
        extra = ["--segment-bytes", "4096"]
    run_weir(["log", "append", d, "--topic", TOPIC, "--partitions", 2, "--batch", "25"] + extra,
             input=lines(b"a", 300), check=True)
    if layout == "alone-in-segment":
        # the next batch does not fit: it rolls and starts a segment of its own
        size0 = os.path.getsize(segment_files(d, TOPIC, 1)[-1])
        extra = ["--segment-bytes", str(max(1024, size0 + 10))]
    # aim two records at one partition with --key; find which one it is
    two = b'{"user":"u1","tag":"b","n":0}\n{"user":"u1","tag":"b","n":1}\n'
    run_weir(["log", "append", d, "--topic", TOPIC, "--key", "user"] + extra, input=two, check=True)
    p = partition_of_u1(run_weir, d)
    segs = segment_files(d, TOPIC, p)
    path_p = segs[-1]
    if layout == "after-closed-segments":
        assert len(segs) >= 3
    if layout == "alone-in-segment":
        assert len(segs) == 2
    pristine = open(path_p, "rb").read()
    batches = read_batches(path_p)
    last = batches[-1]
    assert last.end == len(pristine) and last.count == 2
    if layout == "alone-in-segment":
        assert last.start == 0

    rc, full, err = read_all(run_weir, d)
    assert rc == 0, err
    full_lines = full.splitlines(keepends=True)
    before = [l for l in full_lines if b'"tag":"b"' not in l]
    assert len(before) == len(full_lines) - 2
    next_offset = last.base  # offset the next append must get after the drop
    seg_name = os.path.basename(path_p)

    for cut in range(last.start, last.end):
        with open(path_p, "wb") as f:
            f.write(pristine[:cut])
        dropped = cut - last.start
        ctx = "cut at byte %d (batch %d..%d), %d bytes torn" % (cut, last.start, last.end, dropped)

        rc, out, err = run_weir(["log", "check", d])
        assert rc == 0, "%s: check failed: %s%s" % (ctx, out, err)
        notes = recovery_lines(err)
        if dropped:
            assert len(notes) == 1, "%s: %s" % (ctx, err)
            assert seg_name in notes[0] and "byte offset %d" % last.start in notes[0], notes[0]
            assert "%d bytes" % dropped in notes[0], notes[0]
        else:
            assert notes == [], ctx
        assert os.path.getsize(path_p) == cut, "check must not change anything"

        # stat and read, read-only like check, report the bytes torn and
        # leave them for the next writer; read prints the records before
        use_stat = cut % 4 == 1
        if use_stat:
            rc, out, err = run_weir(["log", "stat", d])
        else:
            rc, out, err = read_all(run_weir, d)
        assert rc == 0, "%s: %s" % (ctx, err)
        notes = recovery_lines(err)
        if dropped:
            assert len(notes) == 1, "%s: %s" % (ctx, err)
            assert seg_name in notes[0], notes[0]
            assert "of %d bytes at byte offset %d" % (dropped, last.start) in notes[0], notes[0]
            assert "the next writer cuts it" in notes[0], notes[0]
        else:
            assert notes == [], "%s: nothing was torn, yet: %s" % (ctx, err)
        if use_stat:
            row = [r for r in parse_stat(out) if r["part"] == p][0]
            assert row["last_offset"] == next_offset - 1, ctx
        else:
            assert out.splitlines(keepends=True) == before, "%s: records differ" % ctx
        assert os.path.getsize(path_p) == cut, "%s: a read-only look changed the file" % ctx

        # appending continues at the right offset; the writer cuts the tail
        # the looks left, and nothing cut before is reported again
        rc, out, err = run_weir(["log", "append", d, "--topic", TOPIC, "--key", "user"],
                                input=b'{"user":"u1","tag":"c"}\n')
        assert rc == 0, "%s: %s" % (ctx, err)
        notes = recovery_lines(err)
        if dropped:
            assert len(notes) == 1 and "truncated a torn tail of %d bytes" % dropped in notes[0], \
                "%s: %s" % (ctx, err)
        else:
            assert notes == [], ctx
        assert "partition %d: last offset %d" % (p, next_offset) in out, "%s: %s" % (ctx, out)
        rc, out, err = read_all(run_weir, d)
        assert rc == 0 and recovery_lines(err) == [], ctx
        got = out.splitlines(keepends=True)
        assert [l for l in got if b'"tag":"c"' not in l] == before, ctx
        new = [l for l in got if b'"tag":"c"' in l]
        assert len(new) == 1 and b'"offset":%d,' % next_offset in new[0], ctx
        rc, out, err = run_weir(["log", "check", d])
        assert rc == 0 and "torn" not in err, ctx
        # the next cut rewrites the active file, the only one that changed
        assert segment_files(d, TOPIC, p)[-1] == path_p


def test_bad_crc_in_last_batch_is_a_torn_tail(run_weir, data_dir):
    """A single-bit flip anywhere in the last batch makes it a torn tail that
    the next open drops whole."""
    d = data_dir / "d"
    run_weir(["log", "append", d, "--topic", TOPIC, "--batch", "10"], input=lines(b"a", 55),
             check=True)
    run_weir(["log", "append", d, "--topic", TOPIC], input=lines(b"b", 2), check=True)
    path = segment_files(d, TOPIC, 0)[-1]
    pristine = open(path, "rb").read()
    last = read_batches(path)[-1]
    rc, full, _ = read_all(run_weir, d)
    before = full.splitlines(keepends=True)[:-2]
    rng = random.Random(7)
    for pos in range(last.start, last.end):
        bit = rng.randrange(8)
        data = bytearray(pristine)
        data[pos] ^= 1 << bit
        open(path, "wb").write(data)
        ctx = "bit %d of byte %d flipped (last batch %d..%d)" % (bit, pos, last.start, last.end)
        rc, out, err = run_weir(["log", "check", d])
        assert rc == 0, "%s: %s%s" % (ctx, out, err)
        assert len(recovery_lines(err)) == 1, "%s: %s" % (ctx, err)
        rc, out, err = read_all(run_weir, d)
        assert rc == 0, "%s: %s" % (ctx, err)
        notes = recovery_lines(err)
        assert len(notes) == 1 and "of %d bytes at byte offset %d" % (last.end - last.start,
                                                                      last.start) in notes[0], \
            "%s: %s" % (ctx, err)
        assert out.splitlines(keepends=True) == before, ctx
        assert "the next writer cuts it" in notes[0], notes[0]
        assert os.path.getsize(path) == len(pristine), "%s: read changed the file" % ctx
        err = run_weir.reopen_log(d, TOPIC)
        assert "truncated a torn tail of %d bytes" % (last.end - last.start) in err, err
        assert os.path.getsize(path) == last.start


def test_bad_crc_before_valid_batches_is_an_error(run_weir, data_dir):
    """Damage in the middle of the active segment, with valid batches after
    it, is corruption: every open refuses naming the file and byte offset,
    check reports it, and nothing is truncated."""
    d = data_dir / "d"
    run_weir(["log", "append", d, "--topic", TOPIC, "--batch", "10"], input=lines(b"a", 60),
             check=True)
    run_weir(["log", "append", d, "--topic", TOPIC], input=lines(b"b", 2), check=True)
    path = segment_files(d, TOPIC, 0)[-1]
    name = os.path.basename(path)
    pristine = open(path, "rb").read()
    batches = read_batches(path)
    assert len(batches) == 7
    rng = random.Random(11)
    for b in batches[:-1]:
        for where in ("header", "payload", "payload"):
            pos = rng.randrange(b.start + 12, b.start + 40) if where == "header" else \
                rng.randrange(b.start + 40, b.end)
            data = bytearray(pristine)
            data[pos] ^= 1 << rng.randrange(8)
            open(path, "wb").write(data)
            ctx = "byte %d of batch at %d flipped" % (pos, b.start)
            want = "byte offset %d" % b.start

            rc, out, err = run_weir(["log", "check", d])
            assert rc != 0, "%s: check passed: %s" % (ctx, out)
            errs = [l for l in out.splitlines() if l.startswith("error")]
            assert len(errs) == 1 and name in errs[0] and want in errs[0], "%s: %s" % (ctx, out)

            for args, inp in ((["log", "read", d, "--topic", TOPIC], None),
                              (["log", "stat", d], None),
                              (["log", "append", d, "--topic", TOPIC], b'{"x":1}\n')):
                rc, out, err = run_weir(args, input=inp)
                assert rc != 0, "%s: %s succeeded" % (ctx, args[1])
                assert name in err and want in err, "%s: %s: %s" % (ctx, args[1], err)
                assert "torn" not in err.replace("not a torn tail", "")
                assert open(path, "rb").read() == bytes(data), "%s: %s changed the file" % (
                    ctx, args[1])
    open(path, "wb").write(pristine)
    rc, out, err = read_all(run_weir, d)
    assert rc == 0 and out.count(b"\n") == 62


def test_torn_tail_under_asan(run_weir, weir_asan_bin, data_dir):
    d = data_dir / "d"
    run_weir(["log", "append", d, "--topic", TOPIC, "--batch", "10"], input=lines(b"a", 30),
             check=True)
    run_weir(["log", "append", d, "--topic", TOPIC], input=lines(b"b", 2), check=True)
    path = segment_files(d, TOPIC, 0)[-1]
    pristine = open(path, "rb").read()
    last = read_batches(path)[-1]
    for cut in range(last.start, last.end, 7):
        open(path, "wb").write(pristine[:cut])
        rc, _, err = run_weir(["log", "check", d], binary=weir_asan_bin)
        assert rc == 0, err
        rc, out, err = read_all(run_weir, d, binary=weir_asan_bin)
        assert rc == 0 and out.count(b"\n") == 30, err
