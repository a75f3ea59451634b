"""Shared fixtures for weir's black-box system tests (pytest).

  weir_bin        path of the weir binary: $WEIR_BIN, else <repo>/build/weir
                  (tests using it are skipped, with the reason, if it is missing)
  weir_asan_bin   path of an ASan+UBSan build from $WEIR_ASAN_BIN (skips if unset)
  run_weir        run_weir(args, input=None, check=False, ...) -> (rc, stdout, stderr)
  data_dir        a fresh, empty data directory (a pathlib.Path)

run_weir runs the binary to completion. input is str, bytes, or an open file
given as stdin; stdout and stderr come back as str (bytes with text=False).
check=True fails the test unless the exit status is 0. Any sanitizer report
on stderr fails the test whatever the exit status.
"""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

_SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def _binary(env_name, default=None):
    path = os.environ.get(env_name) or default
    if not path:
        return None, "%s is not set" % env_name
    path = str(pathlib.Path(path).resolve())
    if not os.access(path, os.X_OK):
        return None, "weir binary %s not found (set %s or build: cmake -S . -B build && " \
                     "cmake --build build --target weir)" % (path, env_name)
    return path, None


@pytest.fixture(scope="session")
def weir_bin():
    path, why = _binary("WEIR_BIN", REPO / "build" / "weir")
    if not path:
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def weir_asan_bin():
    path, why = _binary("WEIR_ASAN_BIN")
    if not path:
        pytest.skip("no sanitizer build: " + why)
    return path


def sanitizer_report(stderr):
    """The first line of a sanitizer report in stderr, or None."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    for line in stderr.splitlines():
        if any(m in line for m in _SANITIZER_MARKS):
            return line
    return None


class WeirRunner:
    def __init__(self, binary):
        self.bin = binary

    def reopen_log(self, datadir, topic):
        """Opens the log in datadir as a writer does, by appending nothing to
        topic: the open cuts a torn tail and rebuilds stale indexes (`log
        read`, `stat` and `check` only look). Returns its stderr."""
        rc, _, err = self(["log", "append", datadir, "--topic", topic], input=b"")
        assert rc == 0, err
        return err

    def argv(self, args, binary=None):
        return [binary or self.bin] + [str(a) for a in args]

    def __call__(self, args, input=None, check=False, timeout=300, binary=None, env=None,
                 text=True, cwd=None):
        argv = self.argv(args, binary)
        kw = {}
        if hasattr(input, "fileno"):
            kw["stdin"] = input
        else:
            if isinstance(input, str):
                input = input.encode()
            kw["input"] = input if input is not None else b""
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=full_env, cwd=cwd, **kw)
        out, err = p.stdout, p.stderr
        report = sanitizer_report(err)
        if report:
            pytest.fail("sanitizer report from %s: %s\n%s" % (" ".join(argv), report,
                                                             err.decode("utf-8", "replace")[-4000:]))
        if text:
            out = out.decode("utf-8", "replace")
            err = err.decode("utf-8", "replace")
        if check and p.returncode != 0:
            pytest.fail("%s exited %d\nstderr: %s" % (" ".join(argv), p.returncode,
                                                       err if text else err.decode("utf-8", "replace")))
        return p.returncode, out, err


@pytest.fixture
def run_weir(weir_bin):
    return WeirRunner(weir_bin)


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d
