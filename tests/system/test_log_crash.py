"""kill -9 (issue 2, "It must show"): `weir log append` killed with SIGKILL
at random moments of a large append, in both ack modes. After each kill,
`weir log check` succeeds and each partition holds exactly a prefix of what
was sent to it: no gap, no duplicate, no damaged record. Some trials append
again into the same directory after the kill: recovery, then appending
continues cleanly."""
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import pytest
import xxhash

from logformat import parse_read_line

TOPIC = "crash"
NPARTS = 4
SEED = int(os.environ.get("WEIR_TEST_SEED", "424242"))
FEED_SECONDS = 1.3  # the stream is paced to last about this long


def make_stream(tag, n, rng):
    lines = [b'{"user":"k%d","s":"%s","i":%d,"pad":"%s"}' % (rng.randrange(500), tag, i,
                                                           b"x" * rng.randrange(40, 90))
             for i in range(n)]
    per_part = [[] for _ in range(NPARTS)]
    for l in lines:
        key = l[9:l.index(b'"', 9)]
        per_part[xxhash.xxh64_intdigest(key, 0) % NPARTS].append(l)
    return lines, per_part


def feed(proc, lines, seconds, killed):
    """Writes lines to proc's stdin, paced over `seconds`, then keeps stdin
    open until `killed` is set, so that the append is always still running
    when the kill comes. Stops quietly when the process dies."""
    chunks = 60
    step = max(1, len(lines) // chunks)
    t0 = time.monotonic()
    try:
        for c, i in enumerate(range(0, len(lines), step)):
            if killed.is_set():
                break
            proc.stdin.write(b"\n".join(lines[i:i + step]) + b"\n")
            proc.stdin.flush()
            delay = t0 + seconds * (c + 1) / chunks - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except (BrokenPipeError, ValueError, OSError):
        pass
    killed.wait()
    try:
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def append_and_kill(weir_bin, d, lines, args, kill_after, ctx):
    """Starts an append of `lines` and SIGKILLs it `kill_after` seconds into
    the stream (and never before its topic exists)."""
    proc = subprocess.Popen([weir_bin, "log", "append", str(d), "--topic", TOPIC, "--partitions",
                             str(NPARTS), "--key", "user"] + args, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = threading.Event()
    feeder = threading.Thread(target=feed, args=(proc, lines, FEED_SECONDS, killed))
    t0 = time.monotonic()
    feeder.start()
    meta = os.path.join(str(d), "log", TOPIC, "topic.meta")
    deadline = t0 + 30
    while not os.path.exists(meta) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    delay = t0 + kill_after - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed.set()
    feeder.join()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert running, "%s: append ended by itself: rc %s: %s" % (ctx, proc.returncode, err)
    assert proc.returncode == -signal.SIGKILL, "%s: rc %s: %s" % (ctx, proc.returncode, err)


def partition_values(run_weir, d, ctx):
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False)
    assert rc == 0, "%s: read after the kill failed: %s" % (ctx, err.decode())
    vals = [[] for _ in range(NPARTS)]
    for line in out.splitlines(keepends=True):
        p, off, _, _, v = parse_read_line(line)
        assert off == len(vals[p]), "%s: partition %d: offset %d after %d records (gap)" % (
            ctx, p, off, len(vals[p]))
        vals[p].append(v)
    return vals, err.decode()


def check_log(run_weir, d, ctx, clean):
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, "%s: check failed after the kill:\n%s%s" % (ctx, out, err)
    if clean:
        assert err.strip() == "", "%s: notes left after recovery: %s" % (ctx, err)
    return err


def assert_prefix(got, want, ctx, p):
    n = len(got)
    assert n <= len(want), "%s: partition %d holds %d records, only %d were sent" % (
        ctx, p, n, len(want))
    if got != want[:n]:
        i = next(j for j in range(n) if got[j] != want[j])
        raise AssertionError("%s: partition %d differs at offset %d: %r, sent %r" % (
            ctx, p, i, got[i][:120], want[i][:120]))


def trial_args(rng):
    args = ["--batch", str(rng.choice([1, 3, 17, 100, 1024]))]
    if rng.random() < 0.5:
        args += ["--segment-bytes", str(rng.choice([4096, 16384, 65536]))]
    return args


@pytest.mark.parametrize("ack", ["written", "durable"])
def test_kill_9_leaves_a_prefix(weir_bin, run_weir, tmp_path, ack):
    trials = 22
    rng = random.Random("%d-%s" % (SEED, ack))
    torn_notes = nonempty = 0
    for t in range(trials):
        d = tmp_path / ("t%d" % t)
        lines, per_part = make_stream(b"t%d" % t, 40000, rng)
        args = ["--ack", ack] + trial_args(rng)
        kill_after = rng.uniform(0.02, FEED_SECONDS)
        ctx = "seed %d ack %s trial %d (%s, kill after %.3fs)" % (SEED, ack, t, " ".join(args),
                                                                 kill_after)
        append_and_kill(weir_bin, d, lines, args, kill_after, ctx)
        if "torn tail" in check_log(run_weir, d, ctx, clean=False):
            torn_notes += 1
        vals, _ = partition_values(run_weir, d, ctx)
        for p in range(NPARTS):
            assert_prefix(vals[p], per_part[p], ctx, p)
        nonempty += any(vals)
        run_weir.reopen_log(d, TOPIC)  # a writer's open (log read only looks)
        check_log(run_weir, d, ctx + " (after recovery)", clean=True)
        shutil.rmtree(d)  # keep the disk footprint small
    print("ack %s: %d trials, %d with records, %d left a torn tail" % (ack, trials, nonempty,
                                                                      torn_notes))
    # the kills must land during the append, not before anything was written
    assert nonempty >= trials // 2, "only %d of %d trials had appended anything" % (nonempty, trials)


@pytest.mark.parametrize("ack", ["written", "durable"])
def test_kill_9_then_append_again(weir_bin, run_weir, tmp_path, ack):
    """Kill, kill again into the same directory, then append to the end: each
    partition is prefix(stream 1) + prefix(stream 2) + all of stream 3."""
    rng = random.Random("%d-again-%s" % (SEED, ack))
    for t in range(3):
        d = tmp_path / ("again%d" % t)
        have = [[] for _ in range(NPARTS)]
        for s in range(2):
            lines, per_part = make_stream(b"a%d-%d" % (t, s), 40000, rng)
            args = ["--ack", ack] + trial_args(rng)
            kill_after = rng.uniform(0.05, FEED_SECONDS)
            ctx = "seed %d ack %s chain %d stream %d (%s, kill after %.3fs)" % (
                SEED, ack, t, s, " ".join(args), kill_after)
            append_and_kill(weir_bin, d, lines, args, kill_after, ctx)
            check_log(run_weir, d, ctx, clean=False)
            vals, _ = partition_values(run_weir, d, ctx)
            for p in range(NPARTS):
                assert vals[p][:len(have[p])] == have[p], "%s: partition %d lost or changed " \
                    "records of the earlier append" % (ctx, p)
                assert_prefix(vals[p][len(have[p]):], per_part[p], ctx, p)
                have[p] = vals[p]
        lines, per_part = make_stream(b"a%d-end" % t, 3000, rng)
        ctx = "seed %d ack %s chain %d final append" % (SEED, ack, t)
        rc, out, err = run_weir(["log", "append", d, "--topic", TOPIC, "--key", "user", "--ack",
                                 ack, "--batch", "64"], input=b"\n".join(lines) + b"\n")
        assert rc == 0, "%s: %s" % (ctx, err)
        assert "appended 3000 events" in out
        vals, err = partition_values(run_weir, d, ctx)
        assert "torn tail" not in err
        for p in range(NPARTS):
            assert vals[p] == have[p] + per_part[p], "%s: partition %d" % (ctx, p)
        check_log(run_weir, d, ctx, clean=True)
        shutil.rmtree(d)
