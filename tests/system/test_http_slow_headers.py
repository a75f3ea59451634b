"""Slowloris: a client that trickles a request's headers a line at a time
(each within the idle timeout) had a connection of --max-connections for
as long as it kept trickling. Now a connection has --request-timeout from
accept for its first request's headers, and --idle-timeout plus
--request-timeout after each request for the next one's; past that it is
closed without an answer (no request was read to answer) and counted as a
408. A keep-alive connection idle between requests within the idle timeout
is not cut. A request whose connection the watchdog closed is not
processed (a reviewer found one answered 408 and logged anyway)."""
import json
import re
import shutil
import signal
import socket
import subprocess
import time

from httputil import FRAUD_SPEC, Server, metric


def trickle_until_closed(sock, line, every, limit):
    """Sends line every `every` s until the server closes the connection
    (returns what it sent back and how long it took) or `limit` s pass
    (returns None)."""
    got, t0 = b"", time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            return got, time.monotonic() - t0
        sock.settimeout(every)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got, time.monotonic() - t0
        if not chunk:
            return got, time.monotonic() - t0
        got += chunk
    return None


def read_until_closed(sock, limit):
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return data


def kept_gets(srv, n, idle):
    """n GET /healthz on one kept connection, idle `idle` s after each; each answered 200."""
    s = socket.create_connection((srv.host, srv.port))
    for _ in range(n):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(10)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(idle)
    s.close()


def test_trickled_headers_are_cut_off(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--request-timeout", 1000, "--idle-timeout", 2) as srv:
        # The first request's headers, trickled: closed, unanswered.
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        r = trickle_until_closed(s, b"X-Slow: a\r\n", 0.3, 30)
        s.close()
        assert r is not None, "a trickling first request kept its connection 30 s"
        assert r[0] == b"", r

        # A connection that says nothing: the same.
        s = socket.create_connection((srv.host, srv.port))
        assert read_until_closed(s, 30) == b""
        s.close()

        # One quick request, then the next one's headers trickled, each line
        # within the 2 s idle timeout: cut off too (after 2 + 1 s).
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(10)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        r = trickle_until_closed(s, b"X-Slow: a\r\n", 0.5, 30)
        s.close()
        assert r is not None, "a trickling second request kept its connection 30 s"

        # Keep-alive: idle between requests, within the idle timeout, is fine.
        kept_gets(srv, 3, 1.5)

        m = srv.metrics()
        assert metric(m, "weir_http_requests_total", route="other", code="408") == 3
        assert srv.stop() == 0


def test_a_request_of_a_connection_cut_off_is_not_processed(weir_bin, data_dir):
    """Requests that arrive while the server is stopped (SIGSTOP) past
    their connections' deadline: after SIGCONT the watchdog and the
    workers race; each request is either answered (and its event logged)
    or its connection closed unanswered (and nothing logged) — never
    closed and logged, which a client would retry into a duplicate."""
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--request-timeout", 300, "--threads", 1) as srv:
        socks = [socket.create_connection((srv.host, srv.port)) for _ in range(60)]
        time.sleep(0.1)
        srv.proc.send_signal(signal.SIGSTOP)
        for i, s in enumerate(socks):
            body = json.dumps({"card_id": "race-%d" % i, "amount": 1.0, "merchant": "m", "country": "US",
                               "ts": 1_700_000_000_000 + i}).encode()
            s.sendall(b"POST /v1/events/transactions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(1.0)
        srv.proc.send_signal(signal.SIGCONT)
        answered = 0
        for s in socks:
            s.settimeout(10)
            try:
                data = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                data = b""
            if data.startswith(b"HTTP/1.1 200"):
                answered += 1
            else:
                assert data == b"", data
            s.close()
        m = srv.metrics()
        accepted = metric(m, "weir_events_accepted_total", source="transactions") or 0
        assert accepted == answered, (accepted, answered)
        assert srv.stop() == 0


def test_a_get_body_is_timed_and_not_kept(weir_bin, data_dir):
    """A GET that declares a body had no deadline (only other methods were
    watched) and its bytes were kept up to --max-body: ten such, trickling,
    held every /v1/score off (503) and pinned memory. Now its body has the
    same deadline as any (408), and its bytes are counted, not kept."""
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--request-timeout", 1000) as srv:
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        r = trickle_until_closed(s, b"x", 0.3, 30)
        s.close()
        assert r is not None, "a GET trickling its body kept its connection 30 s"
        assert r[0].startswith(b"HTTP/1.1 408") and b"request_timeout" in r[0], r
        # A GET with a whole body is answered.
        status, _, _ = srv.request("GET", "/healthz", body=b"{}" * 100)
        assert status == 200
        assert srv.stop() == 0


def test_connections_fit_the_open_file_limit(weir_bin, data_dir, tmp_path):
    """Under an open-file limit below --max-connections plus weir's own
    files, the connections are lowered to fit, saying so (a flood of
    connections took the descriptors a segment roll needed, fencing the
    partition until a restart)."""
    wrapper = tmp_path / "weir-600"
    wrapper.write_text('#!/bin/sh\nulimit -n 600\nexec %s "$@"\n' % weir_bin)
    wrapper.chmod(0o755)
    with Server(str(wrapper), FRAUD_SPEC, data_dir, "--max-connections", 2000) as srv:
        socks = []
        for _ in range(320):
            socks.append(socket.create_connection((srv.host, srv.port)))
        time.sleep(0.5)
        for s in socks:
            s.close()
        time.sleep(0.5)
        assert srv.request("GET", "/healthz")[0] == 200
        srv.post_events([{"card_id": "c1", "amount": 1.0, "merchant": "m", "country": "US",
                          "ts": 1_700_000_000_000}])
        assert srv.stop() == 0
        err = srv.stderr()
    m = re.search(r"the open-file limit is 600 \(hard limit too\): --max-connections lowered from 2000 "
                  r"to (\d+), leaving (\d+) for the logs, outputs and checkpoints of 4 partitions", err)
    assert m and int(m.group(1)) + int(m.group(2)) == 600 and int(m.group(1)) >= 300, err


def wide_spec(tmp_path, partitions):
    spec = tmp_path / ("wide%d.yaml" % partitions)
    spec.write_text(open(FRAUD_SPEC).read().replace("partitions: 4", "partitions: %d" % partitions))
    shutil.copy(FRAUD_SPEC.parent / "fraud.linear.json", tmp_path)
    return spec


def assert_refused_at_limit(weir_bin, spec, data_dir, tmp_path, limit, partitions):
    """`weir run` under `ulimit -n limit` exits 1 naming the limit to set."""
    wrapper = tmp_path / ("weir-%d" % limit)
    wrapper.write_text('#!/bin/sh\nulimit -n %d\nexec %s "$@"\n' % (limit, weir_bin))
    wrapper.chmod(0o755)
    p = subprocess.run([str(wrapper), "run", str(spec), "--data", str(data_dir), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert re.search(r"the open-file limit is %d \(hard limit too\), and weir's own files need about "
                     r"\d+ with %d partitions: raise ulimit -n to at least \d+" % (limit, partitions),
                     p.stderr), p.stderr


def test_a_limit_too_low_for_the_partitions_is_refused(weir_bin, data_dir, tmp_path):
    """weir's own files are counted once its logs are open (with 256
    partitions it held 527 descriptors before any connection, and the
    reserve was a fixed 512: checkpoints failed with EMFILE). A limit that
    leaves too few connections is refused at start, saying what to raise."""
    assert_refused_at_limit(weir_bin, wide_spec(tmp_path, 256), data_dir, tmp_path, 600, 256)


def test_a_limit_too_low_for_the_logs_is_refused_before_they_open(weir_bin, run_weir, data_dir, tmp_path):
    """With a log in each of 600 partitions, `ulimit -n 1024` failed the
    logs' own open ("fsync .../decisions/transactions/415: Too many open
    files", an SRE's find): the check came after it. It is now made before
    too, counting the logs' descriptors, with the same advice."""
    spec = wide_spec(tmp_path, 600)
    evs = "".join(json.dumps({"card_id": "c%d" % i, "amount": 1.0, "merchant": "m", "country": "US",
                              "ts": 1_700_000_000_000 + i}) + "\n" for i in range(3000))
    run_weir(["ingest", spec, "--data", data_dir], input=evs, check=True)
    assert_refused_at_limit(weir_bin, spec, data_dir, tmp_path, 1024, 600)


def test_no_idle_timeout_means_kept_connections_stay(weir_bin, data_dir):
    """--idle-timeout 0 is libmicrohttpd's "never": a kept connection idle
    past --request-timeout is not cut (it was, counted as a 408)."""
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--request-timeout", 500, "--idle-timeout", 0) as srv:
        kept_gets(srv, 2, 1.5)
        assert not metric(srv.metrics(), "weir_http_requests_total", route="other", code="408")
        assert srv.stop() == 0
