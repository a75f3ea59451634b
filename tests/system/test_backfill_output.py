"""`weir backfill --out FILE` writes FILE whole or not at all. Killed by
SIGTERM, it used to leave a truncated FILE at the final path, ending in a
partial row, with no message; an error (an unwritable --matches) had
already emptied an existing FILE. Now rows go to .FILE.tmp.PID beside it,
renamed over FILE only on success; SIGTERM/SIGINT removes the temporary
file, says FILE was not written and exits 128 + the signal."""
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import REPO

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
EVENTS = 200000  # a backfill of about a second: long enough to be stopped in


@pytest.fixture(scope="module")
def data(weir_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("backfill") / "data"
    gen = subprocess.run([weir_bin, "gen", "fraud", "--events", str(EVENTS), "--seed", "5"],
                         capture_output=True, check=True, timeout=120)
    subprocess.run([weir_bin, "ingest", str(SPEC), "--data", str(d)], input=gen.stdout,
                   capture_output=True, check=True, timeout=300)
    return d


def temporaries(folder):
    return [n for n in os.listdir(folder) if ".tmp." in n]


def stop_midway(weir_bin, data, out, sig):
    """Starts a backfill into out, sends sig once its temporary file has
    rows, and returns (exit status, stderr)."""
    p = subprocess.Popen([weir_bin, "backfill", str(SPEC), "--data", str(data), "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tmp = out.parent / (".%s.tmp.%d" % (out.name, p.pid))
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if tmp.exists() and tmp.stat().st_size >= 64 << 10:
            break
        time.sleep(0.001)
    assert p.poll() is None, "backfill ended before it could be stopped: %s" % p.stderr.read()
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    return p.returncode, err.decode()


@pytest.mark.parametrize("sig,status,name", [(signal.SIGTERM, 143, "SIGTERM"),
                                             (signal.SIGINT, 130, "SIGINT")])
def test_stopped_backfill_leaves_the_target_as_it_was(weir_bin, data, tmp_path, sig, status, name):
    out = tmp_path / "kp.csv"
    out.write_text("old content\n")
    rc, err = stop_midway(weir_bin, data, out, sig)
    assert rc == status, err
    assert err.strip() == "weir backfill: stopped by %s: %s was not written" % (name, out), err
    assert out.read_text() == "old content\n"
    assert temporaries(tmp_path) == []
    # a target that did not exist does not appear
    new = tmp_path / "new.csv"
    rc, err = stop_midway(weir_bin, data, new, sig)
    assert rc == status, err
    assert not new.exists() and temporaries(tmp_path) == []


def test_an_error_leaves_the_target_as_it_was(run_weir, data, tmp_path):
    out = tmp_path / "kp.csv"
    out.write_text("old content\n")
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out,
                           "--matches", tmp_path / "no" / "such" / "dir.ndjson"])
    assert rc == 1 and "cannot write" in err, err
    assert out.read_text() == "old content\n"
    assert temporaries(tmp_path) == []


def test_a_complete_backfill_replaces_the_target(run_weir, data, tmp_path):
    out = tmp_path / "kp.csv"
    out.write_text("old content\n")
    os.chmod(out, 0o640)
    link = tmp_path / "link.csv"
    os.symlink(out.name, link)
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", link])
    assert rc == 0, err
    assert err.strip() == "weir backfill: wrote %d rows to %s" % (EVENTS, link)
    assert os.path.islink(link), "the symlink was replaced, not the file it names"
    lines = out.read_text().splitlines()
    assert lines[0].startswith("partition,offset,key,time,late,") and len(lines) == EVENTS + 1
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640
    assert temporaries(tmp_path) == []


def test_a_killed_backfills_temporary_file_is_removed_by_the_next(run_weir, data, tmp_path):
    """kill -9 leaves no chance to remove the temporary file: the next
    backfill to the same target removes those of processes gone (not those
    of a live one, which may be another weir writing it)."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "kp.csv"
    stale, live = tmp_path / (".kp.csv.tmp.%d" % dead.pid), tmp_path / ".kp.csv.tmp.1"
    stale.write_text("half a file")
    live.write_text("pid 1 runs")
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out])
    assert rc == 0, err
    assert not stale.exists() and live.exists()


def test_stdout_and_devices_are_written_in_place(run_weir, data):
    rc, out, err = run_weir(["backfill", SPEC, "--data", data, "--out", "-"])
    assert rc == 0, err
    assert len(out.splitlines()) == EVENTS + 1
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", "/dev/null"])
    assert rc == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
