"""`weir log append` on bad input (issue 2, Build 8): a line that is not a
JSON object, lacks the key field or has a key of the wrong type gets an
error naming its line number; the lines before it are appended and
reported, nothing after it is, and the exit status is non-zero."""
import json

import pytest
import xxhash

from logformat import parse_read_line

NPARTS = 3
MAX_LINE = 1 << 20


def good(i):
    return b'{"user":"u%d","i":%d}' % (i % 5, i)


# (id, bad line, needs --key)
BAD_LINES = [
    ("garbage", b"this is not json", False),
    ("array", b'[{"user":"u1"}]', False),
    ("number", b"42", False),
    ("string", b'"a string"', False),
    ("null", b"null", False),
    ("true", b"true", False),
    ("truncated", b'{"user":"u1","i":', False),
    ("unclosed-string", b'{"user":"u1', False),
    ("trailing-garbage", b'{"user":"u1","i":1} and more', False),
    ("two-objects", b'{"user":"u1"}{"user":"u2"}', False),
    ("missing-key", b'{"name":"u1","i":1}', True),
    ("null-key", b'{"user":null}', True),
    ("float-key", b'{"user":1.5}', True),
    ("bool-key", b'{"user":true}', True),
    ("object-key", b'{"user":{"id":1}}', True),
    ("array-key", b'{"user":["u1"]}', True),
    ("over-1-MiB", b'{"user":"u1","pad":"' + b"x" * MAX_LINE + b'"}', False),
]


def read_values(run_weir, d, topic="t"):
    rc, out, err = run_weir(["log", "read", d, "--topic", topic], text=False)
    assert rc == 0, err
    return [parse_read_line(l) for l in out.splitlines(keepends=True)]


def check_stops_at(run_weir, data_dir, bad, keyed, before=5, after=4, blank_at=None,
                   extra=()):
    """Appends `before` good lines, (optionally an empty line), the bad line
    and `after` good lines; checks the error and what was appended."""
    lines = [good(i) for i in range(before)]
    if blank_at is not None:
        lines.insert(blank_at, b"")
    bad_lineno = len(lines) + 1
    lines.append(bad)
    lines += [good(100 + i) for i in range(after)]
    args = ["log", "append", data_dir, "--topic", "t", "--partitions", NPARTS]
    if keyed:
        args += ["--key", "user"]
    rc, out, err = run_weir(args + list(extra), input=b"\n".join(lines) + b"\n")
    assert rc != 0, "bad line was accepted: %r" % bad[:80]
    errlines = [l for l in err.splitlines() if l.strip()]
    assert len(errlines) == 1, err
    assert "line %d" % bad_lineno in errlines[0], errlines[0]
    assert "appended %d events" % before in out, out

    got = read_values(run_weir, data_dir)
    assert len(got) == before, "expected the %d lines before the bad one, read %d" % (before, len(got))
    values = sorted(v for _, _, _, _, v in got)
    assert values == sorted(good(i) for i in range(before))
    # the report of last offsets matches the log
    for p in range(NPARTS):
        n = sum(1 for r in got if r[0] == p)
        want = "partition %d: last offset %d" % (p, n - 1) if n else "partition %d: empty" % p
        assert want in out, out


@pytest.mark.parametrize("bad,keyed", [pytest.param(b, k, id=i) for i, b, k in BAD_LINES])
def test_bad_line_stops_append(run_weir, data_dir, bad, keyed):
    check_stops_at(run_weir, data_dir, bad, keyed=True)
    if not keyed:
        # the same line is bad without --key too (fresh directory)
        d2 = data_dir / "nokey"
        check_stops_at(run_weir, d2, bad, keyed=False)


def test_line_numbers_count_empty_lines(run_weir, data_dir):
    check_stops_at(run_weir, data_dir, b"[]", keyed=True, before=4, blank_at=2)


def test_bad_first_line_appends_nothing(run_weir, data_dir):
    rc, out, err = run_weir(["log", "append", data_dir, "--topic", "t", "--key", "user"],
                            input=b"{oops\n" + good(1) + b"\n")
    assert rc != 0
    assert "line 1" in err
    assert "appended 0 events" in out
    assert read_values(run_weir, data_dir) == []


def test_bad_line_after_several_batches(run_weir, data_dir):
    # with --batch 7 most of the good lines are already flushed when the bad line
    # comes; the rest must still be flushed, and nothing after it.
    check_stops_at(run_weir, data_dir / "b", b'{"user":', keyed=True, before=50, after=30,
                   extra=["--batch", "7"])


def test_line_of_exactly_1_mib_is_accepted(run_weir, data_dir):
    head = b'{"user":"u1","pad":"'
    line = head + b"y" * (MAX_LINE - len(head) - 2) + b'"}'
    assert len(line) == MAX_LINE
    rc, out, err = run_weir(["log", "append", data_dir, "--topic", "t", "--key", "user"],
                            input=good(0) + b"\n" + line + b"\n")
    assert rc == 0, err
    got = read_values(run_weir, data_dir)
    assert [g[4] for g in got] == [good(0), line]


def test_key_types(run_weir, data_dir):
    """A string key hashes its (UTF-8) bytes, an integer its decimal digits."""
    events = [
        (b'{"user":"plain"}', b"plain"),
        (b'{"user":"caf\\u00e9 \\"q\\""}', 'café "q"'.encode()),
        (b'{"user":12345}', b"12345"),
        (b'{"user":-7}', b"-7"),
        (b'{"user":0}', b"0"),
        (b'{"user":""}', b""),
    ]
    n = 8
    rc, out, err = run_weir(["log", "append", data_dir, "--topic", "t", "--partitions", n,
                             "--key", "user"], input=b"\n".join(e for e, _ in events) + b"\n")
    assert rc == 0, err
    got = {v: (p, k) for p, _, _, k, v in read_values(run_weir, data_dir)}
    assert len(got) == len(events)
    for line, key in events:
        p, printed_key = got[line]
        assert p == xxhash.xxh64(key, seed=0).intdigest() % n, line
        if key:
            assert json.loads(printed_key).encode() == key


@pytest.mark.parametrize("line", [
    pytest.param(b'  {"user":"u1","v":1}', id="leading-spaces"),
    pytest.param(b'\t{"user":"u1","v":2}', id="leading-tab"),
    pytest.param(b'{"user":"u1","v":3}   ', id="trailing-spaces"),
    pytest.param(b'{ "user" : "u1" , "v" : [1, 2] }', id="inner-spaces"),
])
def test_value_is_the_event_as_appended(run_weir, data_dir, line):
    """Whatever whitespace surrounds a valid object, read prints valid JSON
    whose value is that object."""
    rc, _, err = run_weir(["log", "append", data_dir, "--topic", "t", "--key", "user"],
                          input=line + b"\n")
    assert rc == 0, err
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", "t"], text=False)
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["value"] == json.loads(line), "read printed %r" % out


def test_bad_input_under_asan(run_weir, weir_asan_bin, data_dir):
    """Every bad line through the sanitizer build: no report, a clean exit 1,
    and a readable log (run_weir fails the test on any sanitizer report)."""
    for i, (name, bad, keyed) in enumerate(BAD_LINES):
        d = data_dir / str(i)
        rc, _, err = run_weir(["log", "append", d, "--topic", "t", "--partitions", NPARTS,
                               "--key", "user", "--batch", "2"],
                              input=b"\n".join([good(0), good(1), good(2), bad, good(3)]) + b"\n",
                              binary=weir_asan_bin)
        assert rc in (0, 1), (name, err)
        rc, _, err = run_weir(["log", "read", d, "--topic", "t"], binary=weir_asan_bin)
        assert rc == 0, (name, err)
