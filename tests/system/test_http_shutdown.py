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
import re
import signal
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


def read_response(sock):
    """One whole HTTP response (headers and Content-Length bytes of body)."""
    got = b""
    while b"\r\n\r\n" not in got:
        b = sock.recv(65536)
        assert b, "connection closed in the headers: %r" % got
        got += b
    head, body = got.split(b"\r\n\r\n", 1)
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert m, head
    while len(body) < int(m.group(1)):
        b = sock.recv(65536)
        assert b, "connection closed in the body"
        body += b
    return head.decode(), body


def wait_until(what, cond, timeout=10):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


def test_shutdown_finishes_in_flight_and_refuses_new(weir_bin, data_dir):
    ev = json.dumps({"card_id": "card-1", "amount": 12.5, "merchant": "m1", "country": "US",
                     "ts": httputil.T0})
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        # In flight: headers and part of the body sent; counted by the
        # server (the metrics request itself is the other one) before SIGTERM.
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        slow.sendall(("POST /v1/score/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s" % (SOURCE, len(ev), ev[:10])).encode())
        wait_until("the request in flight", lambda: httputil.metric(
            srv.metrics(), "weir_http_inflight_requests") >= 2)
        srv.proc.send_signal(signal.SIGTERM)
        # Meanwhile, new requests are refused, and told so (the drain holds
        # while the slow request is in flight; refused ones do not count).
        probes = []
        wait_until("a refusal", lambda: probes.append(
            raw_request(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) or
            probes[-1].startswith("HTTP/1.1 503"))
        resp = probes[-1]
        assert "shutting_down" in resp and "Retry-After: 1" in resp, resp
        assert "Connection: close" in resp, resp
        # The request in flight is answered in full.
        slow.sendall(ev[10:].encode())
        head, body = read_response(slow)
        slow.close()
        assert head.startswith("HTTP/1.1 200"), head
        assert "decision" in json.loads(body)
        assert srv.proc.wait(30) == 0, srv.stderr()[-2000:]
    # The event answered during the drain is logged, with its decision.
    assert len(httputil.event_records(data_dir)) == 1
    assert len(httputil.decisions(data_dir)) == 1


def test_shutdown_survives_the_listen_socket_race(weir_bin, tmp_path):
    """Only a guard against calling MHD_quiesce_daemon again: without it,
    nothing removes the listening socket from an epoll set early, and the
    shim has nothing to delay."""
    shim = httputil.preload_shim(tmp_path, SHIM)
    for run in range(2):
        with Server(weir_bin, FRAUD_SPEC, tmp_path / ("data%d" % run), "--threads", "2",
                    env={"LD_PRELOAD": str(shim)}) as srv:
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.05)
            for _ in range(15):  # a request ending wakes a pool worker
                raw_request(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
                time.sleep(0.04)
            rc = srv.proc.wait(30)
            assert rc == 0, "run %d: exit status %d: %s" % (run, rc, srv.stderr()[-2000:])
