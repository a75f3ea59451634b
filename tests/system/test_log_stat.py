"""`weir log stat` (issue 2, Build 7): per topic and partition, the segments,
first and last offset, bytes, first and last timestamp, matching what was
appended (the timestamps are the append-time wall clock)."""
import fcntl
import json
import os
import re
import time

from logformat import parse_read_line, parse_stat, segment_files


def now_ms():
    return time.time_ns() // 1_000_000


def append(run_weir, d, topic, lines, *extra):
    t0 = now_ms()
    run_weir(["log", "append", d, "--topic", topic] + [str(e) for e in extra],
             input=b"".join(l + b"\n" for l in lines), check=True)
    return t0, now_ms()


def records(run_weir, d, topic):
    rc, out, err = run_weir(["log", "read", d, "--topic", topic], text=False)
    assert rc == 0, err
    return [parse_read_line(l) for l in out.splitlines(keepends=True)]


def test_stat_matches_what_was_appended(run_weir, data_dir):
    d = data_dir
    windows = []
    # topic "big": 2 partitions, several segments, three appends at different times
    for k in range(3):
        windows.append(append(run_weir, d, "big", [b'{"k":%d,"i":%d,"pad":"%s"}' % (k, i, b"s" * 60)
                                                    for i in range(400)],
                              "--partitions", 2, "--segment-bytes", 8192, "--batch", 30))
        time.sleep(0.01)
    # topic "small": 3 partitions, 2 events: partition 2 stays empty
    windows.append(append(run_weir, d, "small", [b'{"a":1}', b'{"a":2}'], "--partitions", 3))
    # topic "aged": retention moved its start
    append(run_weir, d, "aged", [b'{"x":%d,"pad":"%s"}' % (i, b"z" * 80) for i in range(500)],
           "--segment-bytes", 4096, "--retention-bytes", 8000, "--batch", 10)

    rc, out, err = run_weir(["log", "stat", d])
    assert rc == 0, err
    rows = parse_stat(out)
    assert [(r["topic"], r["part"]) for r in rows] == [
        ("aged", 0), ("big", 0), ("big", 1), ("small", 0), ("small", 1), ("small", 2)]

    lo, hi = windows[0][0], max(w[1] for w in windows)
    for row in rows:
        topic, p = row["topic"], row["part"]
        ctx = "%s/%d: %s" % (topic, p, row)
        recs = [r for r in records(run_weir, d, topic) if r[0] == p]
        segs = segment_files(d, topic, p)
        assert row["segments"] == len(segs), ctx
        assert row["bytes"] == sum(os.path.getsize(s) for s in segs), ctx
        if not recs:
            assert row["last_offset"] is None and row["first_ts"] is None \
                and row["last_ts"] is None, ctx
            assert row["first_offset"] == 0, ctx
            continue
        assert row["first_offset"] == recs[0][1], ctx
        assert row["last_offset"] == recs[-1][1], ctx
        assert row["first_ts"] == recs[0][2], ctx
        assert row["last_ts"] == max(r[2] for r in recs), ctx
        if topic != "aged":
            assert lo <= row["first_ts"] <= row["last_ts"] <= hi, "%s: not append times (%d..%d)" % (
                ctx, lo, hi)

    big0 = [r for r in rows if r["topic"] == "big" and r["part"] == 0][0]
    assert big0["segments"] >= 3
    # three appends, three times: the first and last stamps come from different ones
    assert windows[0][0] <= big0["first_ts"] <= windows[0][1]
    assert windows[2][0] <= big0["last_ts"] <= windows[2][1]
    aged = rows[0]
    assert aged["first_offset"] > 0 and aged["last_offset"] == 499


def test_stat_and_check_of_a_dir_without_a_log(run_weir, data_dir):
    for sub in ("stat", "check"):
        rc, out, err = run_weir(["log", sub, data_dir])
        assert rc != 0, "%s of a directory without a log exited 0" % sub
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(data_dir) in lines[0], err


# --- read-only (a user from Kafka expects stat to change nothing) ------------
# `log stat` opened the log as a writer: after 50 bytes were cut off a
# segment it printed "recovery: ... truncated a torn tail of 18 bytes" and
# truncated the file, and beside a live writer it refused to run (the lock).

def tree(d):
    """Every file under d with its bytes (what a read-only command must keep)."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = fh.read()
    return out


def torn_log(run_weir, d):
    """A log whose partition 0 ends in a torn batch; returns (segment path,
    bytes of the valid part, bytes torn)."""
    append(run_weir, d, "t", [b'{"k":%d,"pad":"%s"}' % (i, b"q" * 40) for i in range(200)],
           "--batch", 20, "--segment-bytes", 4096)
    append(run_weir, d, "t", [b'{"k":%d,"tail":"%s"}' % (i, b"r" * 30) for i in range(3)])
    seg = segment_files(d, "t", 0)[-1]
    size = os.path.getsize(seg)
    with open(seg, "rb+") as f:
        f.truncate(size - 50)
    rc, out, err = run_weir(["log", "check", d])
    assert rc == 0, out + err
    m = re.search(r"byte offset (\d+): torn tail of (\d+) bytes", err)
    assert m, err
    return seg, int(m.group(1)), int(m.group(2))


def test_stat_reports_a_torn_tail_and_changes_nothing(run_weir, data_dir):
    d = data_dir
    seg, valid, torn = torn_log(run_weir, d)
    os.remove(segment_files(d, "t", 0)[0][:-4] + ".idx")  # a closed segment's index, gone
    before = tree(d)
    rc, out, err = run_weir(["log", "stat", d])
    assert rc == 0, err
    assert err.splitlines() == [
        "weir log stat: %s: torn tail of %d bytes at byte offset %d; the next writer cuts it "
        "(unless it is a write in progress)" % (seg, torn, valid),
        "weir log stat: partition 0: 1 index file(s) missing or stale; the next writer "
        "rebuilds them"], err
    assert tree(d) == before, "stat changed the data directory"
    row = parse_stat(out)[0]
    assert row["bytes"] == sum(os.path.getsize(s) for s in segment_files(d, "t", 0)) - torn
    # read, read-only too, prints what stat counted and changes nothing
    rc, out2, err = run_weir(["log", "read", d, "--topic", "t", "--partition", "0"])
    assert rc == 0 and "torn tail of %d bytes" % torn in err, err
    assert tree(d) == before, "read changed the data directory"
    # the next writer does cut it
    err = run_weir.reopen_log(d, "t")
    assert "truncated a torn tail of %d bytes" % torn in err, err
    assert os.path.getsize(seg) == valid
    assert parse_read_line(out2.splitlines(keepends=True)[-1].encode())[1] == row["last_offset"]


def test_stat_runs_beside_a_writer_holding_the_lock(run_weir, data_dir):
    append(run_weir, data_dir, "t", [b'{"a":1}', b'{"a":2}'])
    with open(data_dir / "log" / "LOCK", "rb+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, out, err = run_weir(["log", "stat", data_dir])
        assert rc == 0, err
        assert parse_stat(out)[0]["last_offset"] == 1
        # read too, as Kafka's console consumer reads a live topic
        rc, out, err = run_weir(["log", "read", data_dir, "--topic", "t"])
        assert rc == 0, err
        assert [json.loads(l)["value"] for l in out.splitlines()] == [{"a": 1}, {"a": 2}]
        # a writer is still kept out
        rc, _, err = run_weir(["log", "append", data_dir, "--topic", "t"], input=b'{"a":3}\n')
        assert rc == 1 and "in use by another weir process (pid %d)" % os.getpid() in err, err


def test_stat_creates_nothing(run_weir, data_dir):
    append(run_weir, data_dir, "t", [b'{"a":1}'], "--partitions", 2)
    os.remove(data_dir / "log" / "LOCK")
    for seg in segment_files(data_dir, "t", 1):  # partition 1 never got an event
        os.remove(seg)
    before = tree(data_dir)
    rc, out, err = run_weir(["log", "stat", data_dir])
    assert rc == 0 and err == "", err
    assert [r["last_offset"] for r in parse_stat(out)] == [0, None]
    assert tree(data_dir) == before
