"""Checkpoint part files are written with O_DIRECT (src/log/checkpoint.c,
WHY O_DIRECT). A write the kernel refuses with EINVAL part-way — after a
short write, as a filesystem may — must be redone through the page cache
from where the buffer starts, not appended again: an LD_PRELOAD shim makes
the writer's first large O_DIRECT write short and the next one fail. The
checkpoint must verify, and a restart must recover from it to the state a
replay of the whole log gives. Run with the release build and with the
ASan+UBSan build (no sanitizer report allowed)."""
import shutil

import pytest

import ckptutil
from ckptutil import copy_data, list_checkpoints, recovered_from
from conftest import sanitizer_report
from httputil import SOURCE, Server, fraud_events, preload_shim

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
static int state;
ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_DIRECT) && n > 8192 && state < 2) {
        if (state++ == 0) return real(fd, buf, 4096); /* short */
        int m = open(getenv("SHIM_MARK"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (m >= 0) close(m);
        errno = EINVAL; /* then refused */
        return -1;
    }
    return real(fd, buf, n);
}
"""

CARDS = 16000  # ~4 MB of state over 4 partitions: every part file has full 1 MiB buffers
EVENTS = fraud_events(CARDS, seed=71, cards=CARDS, step_ms=200)
PROBE = sorted({e["card_id"] for e in EVENTS})[::400]


def features(srv):
    return {k: srv.json("GET", "/v1/features/%s/%s" % (SOURCE, k))[1] for k in PROBE}


@pytest.fixture
def shim(tmp_path):
    return preload_shim(tmp_path, SHIM)


@pytest.fixture(params=["release", "asan"])
def binary(request, weir_bin):
    if request.param == "release":
        return weir_bin, {}
    # the shim comes before the ASan runtime in the preload order: allowed
    return request.getfixturevalue("weir_asan_bin"), {"ASAN_OPTIONS": "verify_asan_link_order=0"}


def test_refused_direct_write_is_redone_through_the_cache(binary, weir_bin, run_weir, shim, tmp_path):
    wbin, extra = binary
    spec = ckptutil.fraud_spec(tmp_path, interval="0s")
    data = tmp_path / "data"
    mark = tmp_path / "refused"
    env = {"LD_PRELOAD": str(shim), "SHIM_MARK": str(mark), "WEIR_THP": "0", **extra}
    with Server(wbin, spec, data, "--tick-idle", 0, env=env) as srv:
        srv.post_events(EVENTS, chunk=500)
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200 and body["checkpoint"] == 1, body
        srv.kill()  # no shutdown checkpoint: recovery must use checkpoint 1
        err = srv.stderr()
    assert not sanitizer_report(err), err[-4000:]
    assert mark.exists(), "the shim never refused an O_DIRECT write: the test proves nothing"
    rc, listing, err = list_checkpoints(run_weir, data)
    assert rc == 0, err
    assert [c["id"] for c in listing["checkpoints"]] == [1]

    with Server(weir_bin, spec, data, "--tick-idle", 0) as srv:
        looked = features(srv)
        srv.kill()
        assert recovered_from(srv.stderr())[0] == 1
    clean = copy_data(data, tmp_path / "clean")
    shutil.rmtree(clean / "checkpoints")
    with Server(weir_bin, spec, clean, "--tick-idle", 0) as srv:
        assert features(srv) == looked
        srv.kill()
