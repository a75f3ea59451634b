"""Recovery points (src/log/log.h, RECOVERY POINTS): a `weir log append`
large enough to write points in the middle of its active segment (one every
16 MiB) is killed with SIGKILL after one is on disk. The next open starts
from that point: the partition holds exactly a prefix of what was sent, a
torn tail after the point is cut, `weir log check` finds the point true to
its segment, and appending continues cleanly."""
import os
import signal
import struct
import subprocess
import time

from logformat import parse_read_line

TOPIC = "rp"
POINT_BYTES = 16 << 20


def make_lines(tag, n):
    return [b'{"user":"k%d","s":"%s","i":%d,"pad":"%s"}' % (i % 97, tag.encode(), i, b"x" * (60 + i % 40))
            for i in range(n)]


def point_end(idx_path):
    """The END entry's byte position of an index file, or None."""
    try:
        raw = open(idx_path, "rb").read()
    except FileNotFoundError:
        return None
    n = (len(raw) - 16) // 16
    if n < 2:
        return None
    rel, pos = struct.unpack_from("<II", raw, (n - 1) * 16)
    return pos


def read_values(run_weir, d):
    rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC], text=False)
    assert rc == 0, err
    recs = [parse_read_line(l) for l in out.splitlines()]
    assert [r[1] for r in recs] == list(range(len(recs))), "offsets not contiguous"
    return [r[4] for r in recs], err.decode()


def test_kill_after_a_recovery_point(weir_bin, run_weir, data_dir):
    d = data_dir / "d"
    lines = make_lines("a", 400_000)  # about 50 MB: points at 16 and 32 MiB
    seg = d / "log" / TOPIC / "0" / ("%020d.seg" % 0)
    idx = d / "log" / TOPIC / "0" / ("%020d.idx" % 0)
    p = subprocess.Popen([weir_bin, "log", "append", str(d), "--topic", TOPIC, "--batch", "256",
                          "--segment-bytes", str(1 << 30)],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        step = 2000
        killed_at = None
        for i in range(0, len(lines), step):
            p.stdin.write(b"\n".join(lines[i:i + step]) + b"\n")
            p.stdin.flush()
            end = point_end(idx)
            # Kill once a point is on disk and more has been written after it.
            if end is not None and os.path.getsize(seg) > end + (1 << 20):
                killed_at = (end, os.path.getsize(seg))
                break
            time.sleep(0.01)
        assert killed_at is not None, "no recovery point was written during the append"
        assert killed_at[0] >= POINT_BYTES
        p.send_signal(signal.SIGKILL)
    finally:
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.wait()
    assert p.returncode == -signal.SIGKILL

    # The point is true to the segment it was written for.
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, out + err
    assert "recovery point" not in out + err, out + err

    # A torn tail after the point (the kill may have left one already): the
    # start of a batch copied to the end.
    with open(seg, "rb") as f:
        head = f.read(300)
    with open(seg, "ab") as f:
        f.write(head)
    size_before = os.path.getsize(seg)

    values, err = read_values(run_weir, d)
    assert os.path.getsize(seg) == size_before, "read changed the segment"
    err = run_weir.reopen_log(d, TOPIC)
    cut = size_before - os.path.getsize(seg)
    assert cut >= 300 and "truncated a torn tail of %d bytes" % cut in err, err
    assert os.path.getsize(seg) >= killed_at[0], "cut before the point"
    assert len(values) > 0 and values == lines[:len(values)], "not a prefix of what was sent"

    # Appending goes on from there; everything reads back in order.
    more = make_lines("b", 1000)
    run_weir(["log", "append", d, "--topic", TOPIC], input=b"\n".join(more) + b"\n", check=True)
    values2, _ = read_values(run_weir, d)
    assert values2 == values + more
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0 and "recovery point" not in out + err, out + err
