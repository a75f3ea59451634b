"""Corruption (issue 2, "It must show"): random single-bit flips in closed
segments are each detected by `weir log check` (file and byte offset named)
and by readers (an error naming file and offset; what was printed before it
is a prefix of the true content, never wrong data)."""
import bisect
import os
import random

import pytest

from logformat import read_batches, segment_files

TOPIC = "c"
NPARTS = 2
SEED = int(os.environ.get("WEIR_TEST_SEED", "1234567"))


@pytest.fixture(scope="module")
def corrupt_log(tmp_path_factory, weir_bin):
    import subprocess
    d = tmp_path_factory.mktemp("corrupt") / "data"
    lines = b"".join(b'{"user":"u%d","n":%d,"v":"%s"}\n' % (i % 13, i, b"q" * (i % 40))
                     for i in range(1500))
    for args in (["--batch", "9"], ["--batch", "1"], ["--batch", "50"]):
        subprocess.run([weir_bin, "log", "append", str(d), "--topic", TOPIC, "--partitions",
                        str(NPARTS), "--key", "user", "--segment-bytes", "4096"] + args,
                       input=lines, check=True, stdout=subprocess.DEVNULL)
    # closed segments (all but the last of each partition) and batch starts
    closed = []
    for p in range(NPARTS):
        segs = segment_files(d, TOPIC, p)
        assert len(segs) >= 10
        for path in segs[:-1]:
            starts = [b.start for b in read_batches(path)]
            assert starts and read_batches(path)[-1].end == os.path.getsize(path)
            closed.append((path, os.path.getsize(path), starts))
    return d, closed


def flip(path, pos, bit):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ (1 << bit)]))


def run_flips(run_weir, d, closed, n, seed, binary=None):
    rc, truth, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False)
    assert rc == 0, err
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, out + err
    total = sum(size for _, size, _ in closed)
    cum = []
    acc = 0
    for _, size, _ in closed:
        acc += size
        cum.append(acc)
    rng = random.Random(seed)
    for trial in range(n):
        x = rng.randrange(total)
        k = bisect.bisect_right(cum, x)
        path, size, starts = closed[k]
        pos = x - (cum[k - 1] if k else 0)
        bit = rng.randrange(8)
        batch_at = starts[bisect.bisect_right(starts, pos) - 1]
        name = os.path.basename(path)
        where = "byte offset %d" % batch_at
        ctx = ("seed %d trial %d: bit %d of byte %d of %s (batch at %d)"
               % (seed, trial, bit, pos, path, batch_at))
        flip(path, pos, bit)
        try:
            rc, out, err = run_weir(["log", "check", d], binary=binary)
            assert rc != 0, "%s: check found nothing: %s" % (ctx, out)
            errors = [l for l in out.splitlines() if l.startswith("error")]
            assert errors, "%s: no error line: %s" % (ctx, out)
            assert name in errors[0] and where in errors[0], \
                "%s: check names another place: %s" % (ctx, errors[0])
            # one fault, one error: not also "the next segment starts at the
            # wrong offset", a knock-on that read like a second fault
            assert len(errors) == 1, "%s: more than the one error: %s" % (ctx, errors)

            rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False,
                                    binary=binary)
            err = err.decode()
            assert rc != 0, "%s: read succeeded" % ctx
            last = [l for l in err.splitlines() if l.strip()][-1]
            assert name in last and where in last, "%s: read error names another place: %s" % (
                ctx, last)
            assert out == b"" or out.endswith(b"\n"), "%s: partial line printed" % ctx
            assert truth.startswith(out), "%s: read printed wrong data" % ctx
        finally:
            flip(path, pos, bit)
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, out + err


def test_thousand_bit_flips_in_closed_segments(run_weir, corrupt_log):
    d, closed = corrupt_log
    run_flips(run_weir, d, closed, 1000, SEED)


def test_bit_flips_under_asan(run_weir, weir_asan_bin, corrupt_log):
    d, closed = corrupt_log
    run_flips(run_weir, d, closed, 40, SEED + 1, binary=weir_asan_bin)
