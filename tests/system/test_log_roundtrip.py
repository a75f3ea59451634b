"""Round trip (issue 2, "It must show"): NDJSON events appended with
`weir log append` come back from `weir log read` byte for byte, in
per-partition offset order, each in the partition XXH64(key) mod N says, and
every key's events in input order."""
import array
import json
import os
import shutil
import subprocess

import xxhash

from logformat import parse_read_line

SEED = 20240611


def event(i, seed=SEED, users=10000):
    """Line i of the generated stream (about 100 bytes, no newline); a pure
    function of i so that the test never holds the whole stream in memory."""
    h = xxhash.xxh64_intdigest(i.to_bytes(8, "little"), seed)
    user = h % users
    pad = "abcdefghijklmnopqrstuvwxyz0123456789"[h % 7:][: 14 + (h >> 20) % 20]
    return b'{"id":%d,"user":"u%d","amount":%d.%02d,"kind":"%s","note":"%s"}' % (
        i, user, (h >> 8) % 5000, (h >> 16) % 100, (b"card", b"bank", b"wallet")[h % 3],
        pad.encode())


def key_of(i, seed=SEED, users=10000):
    return b"u%d" % (xxhash.xxh64_intdigest(i.to_bytes(8, "little"), seed) % users)


def stream_records(weir_bin, args):
    """Yields parsed `weir log read` lines without holding them all; checks
    the exit status at the end."""
    p = subprocess.Popen([weir_bin] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, bufsize=1 << 20)
    try:
        for line in p.stdout:
            yield parse_read_line(line)
    finally:
        p.stdout.close()
        err = p.stderr.read()
        rc = p.wait()
    assert rc == 0, "weir %s: exit %d: %s" % (" ".join(map(str, args)), rc, err.decode())


def test_million_events_over_8_partitions(weir_bin, run_weir, tmp_path):
    n, nparts = 1_000_000, 8
    src = tmp_path / "events.ndjson"
    expected = [array.array("I") for _ in range(nparts)]  # input line numbers per partition
    with open(src, "wb") as f:
        chunk = []
        for i in range(n):
            chunk.append(event(i))
            expected[xxhash.xxh64_intdigest(key_of(i), 0) % nparts].append(i)
            if len(chunk) == 10000:
                f.write(b"\n".join(chunk) + b"\n")
                chunk = []
        f.write(b"\n".join(chunk) + b"\n" if chunk else b"")
    size = os.path.getsize(src)
    assert 90 * n <= size <= 110 * n  # events of about 100 bytes

    d = tmp_path / "data"
    with open(src, "rb") as f:
        rc, out, err = run_weir(["log", "append", d, "--topic", "ev", "--partitions", nparts,
                                 "--key", "user"], input=f)
    assert rc == 0, err
    assert "appended %d events" % n in out
    for p in range(nparts):
        assert "partition %d: last offset %d" % (p, len(expected[p]) - 1) in out
    os.unlink(src)

    last_id = {}
    counts = [0] * nparts
    prev_part = -1
    for part, off, ts, key, value in stream_records(weir_bin, ["log", "read", d, "--topic", "ev"]):
        assert part >= prev_part, "partitions out of order"
        prev_part = part
        assert off == counts[part], "partition %d: offset %d where %d was due" % (part, off, counts[part])
        counts[part] += 1
        assert off < len(expected[part]), "partition %d has more records than sent" % part
        i = expected[part][off]
        want = event(i)
        assert value == want, "partition %d offset %d: %r != input line %d %r" % (
            part, off, value[:200], i + 1, want)
        k = json.loads(key).encode()
        assert k == key_of(i)
        assert xxhash.xxh64_intdigest(k, 0) % nparts == part
        assert last_id.get(k, -1) < i, "key %r: events out of input order" % k
        last_id[k] = i
    assert counts == [len(e) for e in expected]
    assert sum(counts) == n
    shutil.rmtree(d)  # 160 MB: do not leave it to pytest's temp-dir rotation


def test_round_robin_without_key(run_weir, data_dir):
    n, nparts = 10007, 3
    lines = [b'{"i":%d,"k":"same"}' % i for i in range(n)]
    run_weir(["log", "append", data_dir, "--topic", "rr", "--partitions", nparts, "--batch", "100"],
             input=b"\n".join(lines) + b"\n", check=True)
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", "rr"], text=False)
    assert rc == 0, err
    recs = [parse_read_line(l) for l in out.splitlines(keepends=True)]
    assert len(recs) == n
    seen = set()
    for part, off, _, key, value in recs:
        i = json.loads(value)["i"]
        assert part == i % nparts and off == i // nparts, (part, off, i)
        assert key == b"null"
        assert value == lines[i]
        seen.add(i)
    assert len(seen) == n

    # a second append continues each partition's offsets (and starts again at 0)
    more = [b'{"i":%d}' % (n + j) for j in range(5)]
    run_weir(["log", "append", data_dir, "--topic", "rr"], input=b"\n".join(more) + b"\n",
             check=True)
    for p in range(nparts):
        rc, out, err = run_weir(["log", "read", data_dir, "--topic", "rr", "--partition", p],
                                text=False)
        recs = [parse_read_line(l) for l in out.splitlines(keepends=True)]
        assert [r[1] for r in recs] == list(range(len(recs)))
        tail = [r[4] for r in recs[len([i for i in range(n) if i % nparts == p]):]]
        assert tail == [more[j] for j in range(5) if j % nparts == p]


def test_exotic_values_are_byte_identical(run_weir, data_dir):
    values = [
        b'{"k":"a","s":"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}',
        b'{"k":"a","esc":"\\"quoted\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0001 \\u00e9"}',
        b'{"k":"a","nested":{"a":[1,2,{"b":null}],"c":{"d":{"e":[]}}},"n":-1.5e-300}',
        b'{"k":"a","big":"' + b"z" * 300000 + b'"}',
        b'{"k":"b"}',
        b'{}',
        b'{"k":"a","numbers":[0,-0,1E400,123456789012345678901234567890]}',
    ]
    run_weir(["log", "append", data_dir, "--topic", "x", "--partitions", "2"],
             input=b"\n".join(values) + b"\n", check=True)
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", "x"], text=False)
    assert rc == 0, err
    got = [parse_read_line(l)[4] for l in out.splitlines(keepends=True)]
    assert sorted(got) == sorted(values)
    for l in out.splitlines():
        json.loads(l)  # every printed line is JSON
