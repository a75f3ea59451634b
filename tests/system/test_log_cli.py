"""The weir CLI as a user meets it: --help everywhere, and a one-line reason
on stderr with a non-zero exit for every mistake (DESIGN.md "Interfaces")."""
import pytest

SUBVERBS = ["append", "read", "check", "stat"]


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %d:\n%s" % (len(lines), err)
    return lines[0]


@pytest.mark.parametrize("args", [["--help"], ["-h"]])
def test_top_level_help(run_weir, args):
    rc, out, err = run_weir(args)
    assert rc == 0, err
    assert "usage: weir" in out
    assert "log" in out and "bench" in out


def test_log_help_lists_every_subverb(run_weir):
    rc, out, err = run_weir(["log", "--help"])
    assert rc == 0, err
    for sub in SUBVERBS:
        assert sub in out


@pytest.mark.parametrize("sub", SUBVERBS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_log_subverb_help(run_weir, sub, flag):
    rc, out, err = run_weir(["log", sub, flag])
    assert rc == 0, err
    assert out.startswith("usage: weir log " + sub), out
    assert err == ""


def test_help_wins_over_other_arguments(run_weir, data_dir):
    # --help anywhere prints help and touches nothing.
    rc, out, _ = run_weir(["log", "append", str(data_dir / "d"), "--topic", "t", "--help"])
    assert rc == 0 and out.startswith("usage: weir log append")
    assert not (data_dir / "d").exists()


def test_bench_help(run_weir):
    rc, out, err = run_weir(["bench", "--help"])
    assert rc == 0, err
    assert "log" in out
    rc, out, err = run_weir(["bench", "log", "--help"])
    assert rc == 0, err
    assert "usage: weir bench log" in out


MISTAKES = [
    ("unknown-verb", ["frobnicate"], ["frobnicate"]),
    ("unknown-top-option", ["--frobnicate"], ["--frobnicate"]),
    ("log-unknown-subverb", ["log", "frobnicate"], ["frobnicate"]),
    ("bench-unknown", ["bench", "frobnicate"], ["frobnicate"]),
    ("append-unknown-option", ["log", "append", "{d}", "--topic", "t", "--frobnicate"],
     ["--frobnicate"]),
    ("read-unknown-option", ["log", "read", "{d}", "--topic", "t", "--frobnicate"], ["--frobnicate"]),
    ("check-unknown-option", ["log", "check", "{d}", "--frobnicate"], ["--frobnicate"]),
    ("stat-unknown-option", ["log", "stat", "{d}", "--frobnicate"], ["--frobnicate"]),
    # an option of another sub-verb is unknown here
    ("check-foreign-option", ["log", "check", "{d}", "--topic", "t"], ["--topic"]),
    ("append-foreign-option", ["log", "append", "{d}", "--topic", "t", "--from-offset", "3"],
     ["--from-offset"]),
    ("append-bad-ack", ["log", "append", "{d}", "--topic", "t", "--ack", "sometimes"],
     ["--ack", "sometimes"]),
    ("append-zero-partitions", ["log", "append", "{d}", "--topic", "t", "--partitions", "0"],
     ["--partitions", "0"]),
    ("append-negative-batch", ["log", "append", "{d}", "--topic", "t", "--batch", "-5"],
     ["--batch", "-5"]),
    ("read-bad-limit", ["log", "read", "{d}", "--topic", "t", "--limit", "many"],
     ["--limit", "many"]),
    ("read-bad-offset", ["log", "read", "{d}", "--topic", "t", "--from-offset", "x1"],
     ["--from-offset", "x1"]),
    ("read-offset-and-time",
     ["log", "read", "{d}", "--topic", "t", "--from-offset", "1", "--from-time", "2"],
     ["--from-offset", "--from-time"]),
    ("read-without-topic", ["log", "read", "{d}"], ["--topic"]),
    ("read-without-dir", ["log", "read"], ["DIR"]),
    ("read-surplus-argument", ["log", "read", "{d}", "--topic", "t", "surplus"], ["surplus"]),
    ("append-bad-topic-name", ["log", "append", "{d}", "--topic", "no/slash"], ["no/slash"]),
    ("bench-log-unknown-option", ["bench", "log", "--frobnicate"], ["--frobnicate"]),
]


@pytest.mark.parametrize("args,names", [pytest.param(a, n, id=i) for i, a, n in MISTAKES])
def test_mistakes_give_one_line_naming_the_problem(run_weir, data_dir, args, names):
    args = [a.format(d=data_dir / "d") for a in args]
    rc, out, err = run_weir(args, input=b"")
    assert rc != 0, "weir %s exited 0" % " ".join(args)
    line = one_line(err)
    for name in names:
        assert name in line, "stderr line does not name %r: %s" % (name, line)


def test_reading_a_missing_topic_names_it(run_weir, data_dir):
    run_weir(["log", "append", data_dir, "--topic", "here"], input=b'{"a":1}\n', check=True)
    rc, _, err = run_weir(["log", "read", data_dir, "--topic", "elsewhere"])
    assert rc != 0
    assert "elsewhere" in one_line(err)


def test_partition_out_of_range_and_count_mismatch(run_weir, data_dir):
    run_weir(["log", "append", data_dir, "--topic", "t", "--partitions", "3"],
             input=b'{"a":1}\n', check=True)
    rc, _, err = run_weir(["log", "read", data_dir, "--topic", "t", "--partition", "3"])
    assert rc != 0
    assert "3" in one_line(err)
    rc, _, err = run_weir(["log", "append", data_dir, "--topic", "t", "--partitions", "5"],
                          input=b'{"a":2}\n')
    assert rc != 0
    line = one_line(err)
    assert "3" in line and "5" in line
    # nothing was appended by the refused command
    _, out, _ = run_weir(["log", "read", data_dir, "--topic", "t"], check=True)
    assert out.count("\n") == 1


def test_append_reports_counts_and_last_offsets(run_weir, data_dir):
    lines = b"".join(b'{"n":%d}\n' % i for i in range(7))
    rc, out, err = run_weir(["log", "append", data_dir, "--topic", "t", "--partitions", "3"],
                            input=lines)
    assert rc == 0, err
    assert "appended 7 events" in out
    # round-robin: partitions get 3, 2, 2 events
    assert "partition 0: last offset 2" in out
    assert "partition 1: last offset 1" in out
    assert "partition 2: last offset 1" in out
    rc, out, err = run_weir(["log", "append", data_dir, "--topic", "t"], input=b"\n\n")
    assert rc == 0, err
    assert "appended 0 events" in out


def test_check_of_a_healthy_log_exits_zero(run_weir, data_dir):
    run_weir(["log", "append", data_dir, "--topic", "a", "--partitions", "2"],
             input=b'{"x":1}\n{"x":2}\n{"x":3}\n', check=True)
    rc, out, err = run_weir(["log", "check", data_dir])
    assert rc == 0, out + err
    assert "3 records" in out and "ok" in out
