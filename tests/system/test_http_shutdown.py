"""Graceful shutdown of `weir run` (SIGTERM): requests in flight finish,
requests that arrive meanwhile are refused with 503 shutting_down and their
connection closed, and the process exits 0 — even when a pool worker and
the main thread race for the listening socket.

The race: libmicrohttpd 0.9.75's MHD_quiesce_daemon, which weir called at
SIGTERM, takes the listening socket out of each worker's epoll set from the
main thread while the worker may take it out itself; the loser's epoll_ctl
fails and libmicrohttpd aborts. It struck about one shutdown in a few
hundred in the test suite (a connection closing just before the signal). An
LD_PRELOAD shim widens the window: the main thread sleeps before any
EPOLL_CTL_DEL of a listening socket, and requests keep waking the workers.
With MHD_quiesce_daemon called, every run of the second test aborted.
"""
import json
import socket
import time

import httputil
from httputil import FRAUD_SPEC, SOURCE, Server

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The main thread waits 300 ms before taking a listening socket out of an
 * epoll set: a worker woken meanwhile gets there first. */
int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    static int (*real)(int, int, int, struct epoll_event *);
    if (!real) real = (int (*)(int, int, int, struct epoll_event *))dlsym(RTLD_NEXT, "epoll_ctl");
    int acc = 0;
    socklen_t l = sizeof acc;
    if (op == EPOLL_CTL_DEL && syscall(SYS_gettid) == getpid() &&
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc)
        usleep(300000);
    return real(epfd, op, fd, ev);
}
"""


def raw_request(port, text, timeout=5):
    """Sends text on a fresh connection; returns everything read until the
    server closes it ('' if the connection was refused)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return ""
    try:
        s.sendall(text.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()
    except OSError:
        return ""
    finally:
        s.close()


def test_shutdown_finishes_in_flight_and_refuses_new(weir_bin, data_dir):
    ev = json.dumps({"card_id": "card-1", "amount": 12.5, "merchant": "m1", "country": "US",
                     "ts": httputil.T0})
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        # In flight: headers and half the body sent, then SIGTERM.
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        slow.sendall(("POST /v1/score/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s" % (SOURCE, len(ev), ev[:10])).encode())
        time.sleep(0.3)
        srv.proc.send_signal(15)
        time.sleep(0.3)
        # Meanwhile, a new request is refused, and told so.
        resp = raw_request(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert resp.startswith("HTTP/1.1 503"), resp
        assert "shutting_down" in resp and "Retry-After: 1" in resp, resp
        assert "Connection: close" in resp, resp
        # The request in flight is answered in full.
        slow.sendall(ev[10:].encode())
        got = b""
        while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) == 0:
            b = slow.recv(65536)
            if not b:
                break
            got += b
        slow.close()
        assert got.startswith(b"HTTP/1.1 200"), got[:300]
        assert b'"decision"' in got
        assert srv.proc.wait(30) == 0, srv.stderr()[-2000:]
    # The event answered during the drain is logged, with its decision.
    assert len(httputil.event_records(data_dir)) == 1
    assert len(httputil.decisions(data_dir)) == 1


def test_shutdown_survives_the_listen_socket_race(weir_bin, data_dir, tmp_path):
    shim = httputil.preload_shim(tmp_path, SHIM)
    for run in range(2):
        d = tmp_path / ("data%d" % run)
        srv = Server(weir_bin, FRAUD_SPEC, d, "--threads", "2", env={"LD_PRELOAD": str(shim)})
        srv.proc.send_signal(15)
        time.sleep(0.05)
        for _ in range(15):  # a request ending wakes a pool worker
            raw_request(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
            time.sleep(0.04)
        rc = srv.proc.wait(30)
        err = srv.stderr()
        assert rc == 0, "run %d: exit status %d: %s" % (run, rc, err[-2000:])
        assert "libmicrohttpd" not in err or "Fatal" not in err, err[-2000:]
