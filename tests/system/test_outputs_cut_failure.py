"""The output files when a whole-log replay cannot cut them the fast way
(issue 6, runtime.c cut_outputs and outputs.c outputs_reopen), on a real
`weir run` with an LD_PRELOAD shim that makes one file operation fail:

  - the empty file that replaces a moved-aside output cannot be created:
    the old file is moved back and cut to empty in place; the replay
    rebuilds it, and it equals the oracle's (no window lost or twice), with
    no NAME.ndjson.cut left;
  - the output streams cannot be reopened on the new files: the recovery
    fails, weir exits non-zero and names the file, and nothing else is
    touched (the event log and the decision log are as they were, no
    checkpoint is written from the unfinished state); a restart without the
    fault replays the whole log again and its outputs and state equal the
    oracle's.

Every server runs with --tick-idle 0, so no tick moves time between runs."""
import shutil

import pytest

import ckptutil
import httputil
from ckptutil import check_exactly_one_decision, check_state
from httputil import SOURCE, Server, fraud_events

CARDS = 30
KEYS = ["card-%03d" % c for c in range(CARDS)]
EVENTS = fraud_events(600, seed=83, cards=CARDS)

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SHIM_CREATE_FAIL=SUFFIX: open() with O_CREAT of a path ending in SUFFIX
 * fails. SHIM_FOPEN_FAIL=SUFFIX, SHIM_FOPEN_NTH=N: the Nth fopen() of such
 * a path fails (the first is at start-up, the second the reopen). */
static int ends_with(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

static int create_fails(const char *path, int flags)
{
    const char *s = getenv("SHIM_CREATE_FAIL");
    return s && (flags & O_CREAT) && ends_with(path, s);
}

static int fopen_fails(const char *path)
{
    static int seen;
    const char *s = getenv("SHIM_FOPEN_FAIL"), *nth = getenv("SHIM_FOPEN_NTH");
    return s && nth && ends_with(path, s) && ++seen == atoi(nth);
}

#define OPEN_SHIM(name)                                                        \
    int name(const char *path, int flags, ...)                                 \
    {                                                                          \
        static int (*real)(const char *, int, ...);                            \
        if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        mode_t mode = 0;                                                       \
        if (flags & O_CREAT) {                                                 \
            va_list ap;                                                        \
            va_start(ap, flags);                                               \
            mode = (mode_t)va_arg(ap, int);                                    \
            va_end(ap);                                                        \
        }                                                                      \
        if (create_fails(path, flags)) {                                       \
            fprintf(stderr, "shim: failed creating %s\n", path);               \
            errno = ENOSPC;                                                    \
            return -1;                                                         \
        }                                                                      \
        return real(path, flags, mode);                                        \
    }
OPEN_SHIM(open)
OPEN_SHIM(open64)

#define FOPEN_SHIM(name)                                                       \
    FILE *name(const char *path, const char *mode)                             \
    {                                                                          \
        static FILE *(*real)(const char *, const char *);                      \
        if (!real) real = (FILE * (*)(const char *, const char *))dlsym(RTLD_NEXT, #name); \
        if (fopen_fails(path)) {                                               \
            errno = ENOSPC;                                                    \
            return NULL;                                                       \
        }                                                                      \
        return real(path, mode);                                               \
    }
FOPEN_SHIM(fopen)
FOPEN_SHIM(fopen64)
"""

OUTPUT = "/outputs/hourly_spend.ndjson"


@pytest.fixture(scope="module")
def base(weir_bin, tmp_path_factory):
    """A data directory with EVENTS logged and decided, its outputs written,
    and no checkpoint: the next start replays the whole log and cuts the
    outputs to empty first."""
    tmp = tmp_path_factory.mktemp("cut-base")
    spec = ckptutil.fraud_spec(tmp, interval="0s")
    data = tmp / "data"
    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        srv.post_events(EVENTS)
        assert srv.stop() == 0
    shutil.rmtree(ckptutil.ckpt_root(data))
    assert (data / "outputs" / "hourly_spend.ndjson").stat().st_size > 0
    return {"spec": spec, "data": data}


@pytest.fixture
def shim(tmp_path):
    return httputil.preload_shim(tmp_path, SHIM)


def files_of(data, sub):
    return {p.relative_to(data): p.read_bytes() for p in sorted((data / sub).rglob("*")) if p.is_file()}


def check_replayed_state(srv, data):
    """The server's features of every key and the output files equal the
    oracle's view of the log on disk (the outputs after the server stopped)."""
    looked = {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in KEYS}
    assert srv.stop() == 0
    check_state(data, looked)
    assert sorted(p.name for p in (data / "outputs").glob("*.cut")) == []
    check_exactly_one_decision(data)


def test_new_output_not_created_cuts_in_place(weir_bin, base, shim, tmp_path):
    """hourly_spend is cut in place; late.ndjson, given a line to cut, is
    moved aside and replaced as usual, so the streams are reopened too, on
    one file of each kind."""
    data = ckptutil.copy_data(base["data"], tmp_path / "data")
    with open(data / "outputs" / "late.ndjson", "a") as f:
        f.write('{"left":"by the previous run"}\n')
    env = {"LD_PRELOAD": str(shim), "SHIM_CREATE_FAIL": OUTPUT}
    with Server(weir_bin, base["spec"], data, "--tick-idle", 0, env=env) as srv:
        check_replayed_state(srv, data)
        err = srv.stderr()
    assert "no checkpoint; replaying the whole log" in err, err
    assert "shim: failed creating %s" % (data / "outputs" / "hourly_spend.ndjson") in err, err


def test_failed_reopen_fails_recovery_and_restart_rebuilds(weir_bin, base, shim, tmp_path):
    data = ckptutil.copy_data(base["data"], tmp_path / "data")
    log_before = files_of(data, "log")
    decisions_before = files_of(data, "decisions")
    env = {"LD_PRELOAD": str(shim), "SHIM_FOPEN_FAIL": OUTPUT, "SHIM_FOPEN_NTH": "2"}
    srv = Server(weir_bin, base["spec"], data, "--tick-idle", 0, env=env, wait_ready=False)
    try:
        rc = srv.proc.wait(30)
    finally:
        srv.kill()  # (a server that did not fail must not outlive the test)
    err = srv.stderr()
    assert rc != 0, err
    assert "replaying the log" in err and "cannot open" in err and "hourly_spend.ndjson" in err, err
    assert not srv.has_line("ready:", timeout=0)
    assert files_of(data, "log") == log_before
    assert files_of(data, "decisions") == decisions_before
    assert ckptutil.checkpoint_ids(data) == []
    with Server(weir_bin, base["spec"], data, "--tick-idle", 0) as srv:
        check_replayed_state(srv, data)
