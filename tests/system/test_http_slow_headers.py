"""Slowloris: a client that trickles its headers a byte group at a time
(each within the idle timeout) gets a 408 once --request-timeout has passed
since it connected, and its connection is closed; before, it held one of
--max-connections for as long as it kept trickling. A keep-alive
connection idle between requests is not cut by it (the idle timeout
governs that)."""
import socket
import time

from httputil import FRAUD_SPEC, Server, metric


def read_all(sock, until):
    """Bytes read from sock until EOF or the time `until` (monotonic)."""
    data = b""
    while time.monotonic() < until:
        sock.settimeout(max(0.05, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_trickled_headers_get_408_and_the_connection_closes(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--request-timeout", 1000, "--idle-timeout", 60) as srv:
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        got = b""
        # Far longer than the limit: the server must end it, not this loop.
        stop = time.monotonic() + 30
        closed = False
        while time.monotonic() < stop:
            try:
                s.sendall(b"X-Slow: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            s.settimeout(0.3)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        s.close()
        assert closed, "the server kept a trickling connection open for 30 s"
        assert got.startswith(b"HTTP/1.1 408"), got
        assert b'"code":"request_timeout"' in got and b"headers did not arrive in time" in got, got

        # A connection that says nothing at all is closed the same way.
        s = socket.create_connection((srv.host, srv.port))
        got = read_all(s, time.monotonic() + 30)
        s.close()
        assert got.startswith(b"HTTP/1.1 408"), got

        # Keep-alive: idle longer than the limit between two requests is fine.
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(10)
        first = s.recv(65536)  # the whole small answer, on loopback
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(2.5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        rest = read_all(s, time.monotonic() + 10)
        s.close()
        assert b"HTTP/1.1 200" in rest, (first, rest)

        m = srv.metrics()
        assert metric(m, "weir_http_requests_total", route="other", code="408") == 2
        assert srv.stop() == 0
