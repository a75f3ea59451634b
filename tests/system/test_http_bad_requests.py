"""`weir run` under bad requests: each kind gets the right 4xx (or 503) and a
JSON error; over 10,000 of them mixed with good requests leave the server
up, the good requests' results exactly the backfill rows, and nothing of a
rejected request in the log or the state."""
import concurrent.futures
import json
import random
import socket
import time

import pytest

from httputil import FRAUD_SPEC, SOURCE, Server, backfill, decisions, event_records, fraud_events, metric, same_value

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": "Bearer " + TOKEN}
SCORE = "/v1/score/" + SOURCE
EVENTS = "/v1/events/" + SOURCE
GOOD = {"card_id": "g1", "amount": 12.5, "merchant": "m1", "country": "US", "ts": 1_700_000_000_000}


def evil(i):
    """A valid event whose key only rejected requests carry."""
    return {"card_id": "evil-%d" % i, "amount": 1.0, "merchant": "x", "country": "US", "ts": 1_700_000_000_000 + i}


def raw(srv, data, read_timeout=10):
    """Sends bytes on a fresh socket; returns (status, body bytes) of the response."""
    s = socket.create_connection((srv.host, srv.port), timeout=read_timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                clen = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if clen and len(body) >= clen[0]:
                    break
        head, _, body = buf.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body
    finally:
        s.close()


def error_code(body):
    return json.loads(body)["error"]["code"]


@pytest.fixture
def server(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--max-body", 4096, "--max-batch", 10, "--request-timeout", 500,
                "--max-headers", 50, "--max-header-bytes", 4096, env={"WEIR_API_TOKEN": TOKEN}) as srv:
        yield srv


def test_each_bad_request_gets_its_status_and_a_json_error(server, data_dir):
    srv = server
    cases = [
        ("malformed JSON", SCORE, '{"card_id": "evil-1", "amount": 1', 400, "malformed_json"),
        ("trailing garbage", SCORE, json.dumps(evil(2)) + " x", 400, "malformed_json"),
        ("not an object", SCORE, json.dumps([evil(3)]), 400, "not_an_object"),
        ("wrong type", SCORE, json.dumps(dict(evil(4), amount="12")), 400, "invalid_event"),
        ("wrong time", SCORE, json.dumps(dict(evil(5), ts="yesterday")), 400, "invalid_event"),
        ("missing key", SCORE, json.dumps({k: v for k, v in evil(6).items() if k != "card_id"}), 400,
         "invalid_event"),
        ("null key", SCORE, json.dumps(dict(evil(7), card_id=None)), 400, "invalid_event"),
        ("empty body", SCORE, "", 400, "empty_body"),
        ("unknown source", "/v1/score/payments", json.dumps(evil(8)), 404, "unknown_source"),
        ("unknown source (events)", "/v1/events/payments", json.dumps(evil(9)), 404, "unknown_source"),
        ("all events bad", EVENTS, json.dumps([dict(evil(10), amount="x"), 5]), 400, "invalid_events"),
        ("malformed batch", EVENTS, '[{"card_id": "evil-11"', 400, "malformed_json"),
        ("too many events", EVENTS, json.dumps([evil(100 + i) for i in range(11)]), 413, "too_many_events"),
        ("oversize body", SCORE, json.dumps(dict(evil(12), pad="x" * 5000)), 413, "body_too_large"),
    ]
    for name, path, body, status, code in cases:
        got, hdrs, data = srv.request("POST", path, body, AUTH)
        assert got == status, (name, data)
        assert hdrs["content-type"] == "application/json", name
        assert error_code(data) == code, (name, data)
        assert json.loads(data)["error"]["message"], name
    missing = {k: v for k, v in evil(6).items() if k != "card_id"}
    _, _, data = srv.request("POST", SCORE, json.dumps(missing), AUTH)
    assert "card_id" in json.loads(data)["error"]["message"]
    _, _, data = srv.request("POST", SCORE, json.dumps(dict(evil(4), amount="12")), AUTH)
    assert "amount" in json.loads(data)["error"]["message"]
    # The scheme is case-insensitive (RFC 7235); the token is not.
    status, _, data = srv.request("GET", "/v1/features/%s/nobody" % SOURCE, None,
                                  {"Authorization": "bEARER " + TOKEN})
    assert status == 200, data
    # one or more spaces after the scheme (RFC 6750 2.1)
    status, _, data = srv.request("GET", "/v1/features/%s/nobody" % SOURCE, None,
                                  {"Authorization": "Bearer   " + TOKEN})
    assert status == 200, data
    status, _, data = srv.request("GET", "/v1/features/%s/nobody" % SOURCE, None,
                                  {"Authorization": "Bearer " + TOKEN.upper()})
    assert status == 401, data

    # Chunked upload over the limit: 413 once the upload ends.
    body = json.dumps(dict(evil(13), pad="y" * 6000)).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 1000]), body[i:i + 1000]) for i in range(0, len(body), 1000))
    status, data = raw(srv, b"POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % (SCORE.encode(), TOKEN.encode(), chunks))
    assert status == 413 and error_code(data) == "body_too_large"

    # Headers: too many fields, too many bytes (JSON, from weir), and more
    # than libmicrohttpd's connection memory (its own 431).
    many = {"X-Pad-%d" % i: "v" for i in range(60)}
    status, hdrs, data = srv.request("POST", SCORE, json.dumps(evil(14)), dict(AUTH, **many))
    assert status == 431 and error_code(data) == "headers_too_large"
    status, hdrs, data = srv.request("POST", SCORE, json.dumps(evil(15)), dict(AUTH, **{"X-Big": "b" * 5000}))
    assert status == 431 and error_code(data) == "headers_too_large"
    status, _ = raw(srv, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: " + b"h" * 300_000 + b"\r\n\r\n")
    assert status == 431

    # A client that sends its headers and then stalls: 408 after --request-timeout.
    status, data = raw(srv, b"POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Length: 200\r\n\r\n"
                            b'{"card_id": "evil-16"' % (SCORE.encode(), TOKEN.encode()))
    assert status == 408 and error_code(data) == "request_timeout"

    # Tokens: missing, wrong, wrong scheme, a prefix of the right one.
    for hdrs in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + TOKEN},
                 {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": "Bearer " + TOKEN + "x"}):
        status, h, data = srv.request("POST", SCORE, json.dumps(evil(17)), hdrs)
        assert status == 401 and error_code(data) == "unauthorized" and h["www-authenticate"] == "Bearer"
    status, _, data = srv.request("GET", "/v1/features/%s/g1" % SOURCE)
    assert status == 401
    # Routes outside /v1 need no token.
    assert srv.request("GET", "/healthz")[0] == 200
    assert srv.request("GET", "/metrics")[0] == 200

    # Nothing of the above reached the log or the state.
    assert srv.json("POST", SCORE, GOOD, AUTH)[0] == 200
    for i in list(range(0, 20)) + list(range(100, 111)):
        status, body = srv.json("GET", "/v1/features/%s/evil-%d" % (SOURCE, i), headers=AUTH)
        assert status == 200 and body["found"] is False, i
    m = srv.metrics()
    assert metric(m, "weir_events_accepted_total", source=SOURCE) == 1
    assert metric(m, "weir_http_requests_total", route="score", code="408") == 1
    assert metric(m, "weir_http_requests_total", route="score", code="401") >= 5
    assert srv.stop() == 0
    logged = event_records(data_dir)
    assert [json.loads(r.value) for r in logged.values()] == [GOOD]
    assert len(decisions(data_dir)) == 1


def test_overload_is_503_with_retry_after(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir, "--max-inflight", 1, "--request-timeout", 3000) as srv:
        # One request holds the only slot: its body never comes.
        s = socket.create_connection((srv.host, srv.port))
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" % SCORE.encode())
        time.sleep(0.2)
        status, hdrs, data = srv.request("POST", SCORE, json.dumps(GOOD))
        assert status == 503 and hdrs["retry-after"] == "1" and error_code(data) == "overloaded"
        # The probes and the metrics are answered all the same: a busy
        # server is not a dead one (a liveness probe would restart it).
        for path in ("/healthz", "/readyz", "/metrics"):
            assert srv.request("GET", path)[0] == 200, path
        s.close()
        deadline = time.time() + 10
        while srv.request("POST", SCORE, json.dumps(GOOD))[0] != 200:
            assert time.time() < deadline
            time.sleep(0.05)


def bad_request(i, rng):
    """The i-th bad request: (method, path, body, headers, expected status)."""
    k = i % 12
    e = evil(i)
    if k == 0:
        return "POST", SCORE, json.dumps(e)[:-3], AUTH, 400
    if k == 1:
        return "POST", SCORE, json.dumps(dict(e, amount=rng.choice(["1", True, [1], {"a": 1}]))), AUTH, 400
    if k == 2:
        drop = rng.choice(["card_id", "ts"])
        return "POST", SCORE, json.dumps({x: v for x, v in e.items() if x != drop}), AUTH, 400
    if k == 3:
        return "POST", "/v1/score/nope%d" % i, json.dumps(e), AUTH, 404
    if k == 4:
        return "POST", SCORE, json.dumps(dict(e, pad="p" * 5000)), AUTH, 413
    if k == 5:
        return "POST", SCORE, json.dumps(e), {}, 401
    if k == 6:
        return "POST", SCORE, json.dumps(e), {"Authorization": "Bearer x" + TOKEN}, 401
    if k == 7:
        return "POST", EVENTS, json.dumps([evil(i * 100 + j) for j in range(11)]), AUTH, 413
    if k == 8:
        return "POST", EVENTS, "\n".join(["{bad", json.dumps(dict(e, ts="noon"))]), AUTH, 400
    if k == 9:
        return "POST", SCORE, json.dumps(e), dict(AUTH, **{"X-P%d" % j: "v" for j in range(120)}), 431
    if k == 10:
        return "GET", SCORE, None, AUTH, 405
    return "POST", SCORE, "\x00\xff" + json.dumps(e), AUTH, 400


def test_ten_thousand_bad_requests_mixed_with_good(weir_bin, run_weir, data_dir, tmp_path):
    n_bad, good_events = 10_200, fraud_events(1200, seed=21, cards=80)
    rng = random.Random(5)
    work = [("bad", i) for i in range(n_bad)] + [("good", i) for i in range(len(good_events))]
    rng.shuffle(work)
    # Good events of a card must be sent in order by one client: keep each
    # card on one of the client threads.
    lanes = [[] for _ in range(8)]
    for kind, i in work:
        lane = hash(good_events[i]["card_id"]) % 8 if kind == "good" else i % 8
        lanes[lane].append((kind, i))

    with Server(weir_bin, FRAUD_SPEC, data_dir, "--max-body", 4096, "--max-batch", 10,
                env={"WEIR_API_TOKEN": TOKEN}) as srv:
        def run_lane(items):
            r = random.Random(len(items))
            conn = srv.connection()
            served, wrong = [], []
            for kind, i in items:
                if kind == "good":
                    if i % 3:
                        status, _, data = srv.request("POST", SCORE, json.dumps(good_events[i]), AUTH, conn)
                        assert status == 200, data
                        served.append((i, json.loads(data)))
                    else:
                        status, _, data = srv.request("POST", EVENTS, json.dumps(good_events[i]), AUTH, conn)
                        assert status == 200 and json.loads(data)["accepted"] == 1, data
                    continue
                method, path, body, hdrs, want = bad_request(i, r)
                try:
                    status, h, data = srv.request(method, path, body, hdrs, conn)
                except (ConnectionError, OSError):
                    conn.close()
                    conn = srv.connection()
                    status, h, data = srv.request(method, path, body, hdrs, conn)
                if status != want or not data or "error" not in json.loads(data):
                    wrong.append((i, want, status, data[:200]))
                if h.get("connection", "").lower() == "close":
                    conn.close()
                    conn = srv.connection()
            conn.close()
            return served, wrong

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(run_lane, lanes))
        wrong = [w for _, ws in results for w in ws]
        assert not wrong, wrong[:5]
        served = {}
        for s, _ in results:
            for i, body in s:
                served[(body["partition"], body["offset"])] = (i, body)

        # Still up, still right.
        assert srv.request("GET", "/healthz")[0] == 200
        m = srv.metrics()
        assert metric(m, "weir_events_accepted_total", source=SOURCE) == len(good_events)
        rejected = sum(v for (n, l), v in m.items() if n == "weir_events_rejected_total")
        assert rejected >= n_bad * 4 // 12
        for i in range(0, n_bad, 97):
            status, body = srv.json("GET", "/v1/features/%s/evil-%d" % (SOURCE, i), headers=AUTH)
            assert body["found"] is False
        assert srv.stop() == 0

    logged = event_records(data_dir)
    assert len(logged) == len(good_events)
    key = lambda e: json.dumps(e, sort_keys=True)
    assert sorted(key(json.loads(r.value)) for r in logged.values()) == sorted(map(key, good_events))
    assert len(decisions(data_dir)) == len(good_events)
    rows = backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path)
    assert len(rows) == len(good_events)
    for pos, (i, body) in served.items():
        assert body["key"] == good_events[i]["card_id"]
        for name, v in body["features"].items():
            assert same_value(v, rows[pos][name]), (pos, name)


def test_ambiguous_framing_is_refused(server, data_dir):
    """A body whose length can be read two ways — Content-Length with
    Transfer-Encoding, two Transfer-Encodings, two Content-Lengths that
    differ — is how requests are smuggled past a proxy: 400, nothing
    logged. A coding other than chunked: 501 at once (it waited for the
    request timeout)."""
    body = json.dumps(dict(GOOD, card_id="smuggled")).encode()
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n" % (SCORE.encode(), TOKEN.encode())
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    for extra, payload in ((b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(chunked), chunked),
                           (b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(chunked), chunked),
                           (b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body) + 1), body),
                           (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked)):
        status, data = raw(server, head + extra + b"\r\n" + payload)
        assert status == 400 and error_code(data) == "ambiguous_framing", (extra, status, data)
    status, data = raw(server, head + b"Transfer-Encoding: gzip\r\n\r\n" + body)
    assert status == 501 and error_code(data) == "unsupported_transfer_encoding", (status, data)
    # Two equal Content-Lengths read one way: accepted.
    status, data = raw(server, head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body)) + body)
    assert status == 200, data
    status, body = server.json("GET", "/v1/features/%s/smuggled" % SOURCE, headers=AUTH)
    assert status == 200 and body["features"]["txn_count_1h"] == 1, body


def test_host_is_required_once_in_http_1_1(server, data_dir):
    """RFC 9112 3.2: an HTTP/1.1 request without a Host, or with two, is a
    MUST-400 (two Hosts are read two ways by the proxies in front, as two
    lengths are); HTTP/1.0 had no Host and is served without one."""
    one = json.dumps(dict(GOOD, card_id="hostless")).encode()
    auth = b"Authorization: Bearer %s\r\nContent-Length: %d\r\n" % (TOKEN.encode(), len(one))
    for version, hosts in ((b"1.1", b""), (b"1.1", b"Host: a\r\nHost: b\r\n"), (b"1.0", b"Host: a\r\nHost: a\r\n")):
        status, data = raw(server, b"POST %s HTTP/%s\r\n%s%s\r\n" % (SCORE.encode(), version, hosts, auth) + one)
        assert status == 400 and error_code(data) == "bad_host", (version, hosts, status, data)
    assert event_records(data_dir) == {}, "a refused request logged an event"
    status, data = raw(server, b"POST %s HTTP/1.0\r\n%s\r\n" % (SCORE.encode(), auth) + one)
    assert status == 200, data
    status, data = raw(server, b"GET /healthz HTTP/1.1\r\nhOsT: x\r\nConnection: close\r\n\r\n")
    assert status == 200, data


def test_the_api_users_finds(server, data_dir):
    """What an integrator found (each case: status, error code, nothing
    logged where refused):
      - a pretty-printed JSON array with a comma missing had the elements
        alone on their lines logged, with a 200 (read as NDJSON);
      - white space before a header's colon ("Transfer-Encoding : chunked")
        passed the framing check: a MUST-400 (RFC 9112 5.1);
      - a Content-Encoding (gzip) was ignored: the body read as text;
      - an empty key was taken, a state no GET could name;
      - rejected listed the first 100 events only."""
    events = "/v1/events/" + SOURCE
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n" % (SCORE.encode(), TOKEN.encode())
    good = [dict(GOOD, card_id="arr%d" % i, ts=GOOD["ts"] + i) for i in range(3)]
    pretty = json.dumps(good, indent=2).replace("},\n", "}\n", 1)  # one comma missing
    status, body = server.json("POST", events, pretty.encode(),
                               headers=dict(AUTH, **{"Content-Type": "application/json"}))
    assert status == 400 and body["error"]["code"] == "malformed_json", body
    assert "nothing was logged" in body["error"]["message"]
    one = json.dumps(dict(GOOD, card_id="spaced")).encode()
    for name in (b"Transfer-Encoding : chunked\r\nContent-Length: %d" % len(one), b"Content-Length : %d" % len(one)):
        status, data = raw(server, head + name + b"\r\n\r\n" + one)
        assert status == 400 and error_code(data) == "bad_header", (name, status, data)
    status, data = raw(server, head + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(one) + one)
    assert status == 415 and error_code(data) == "unsupported_content_encoding", (status, data)
    status, body = server.json("POST", SCORE, dict(GOOD, card_id=""), headers=AUTH)
    assert status == 400 and "field 'card_id': the key is empty" in body["error"]["message"], body
    assert event_records(data_dir) == {}, "a refused request logged an event"
    # a 501 and the admin checkpoint have labels of their own (they were "other")
    status, data = raw(server, head + b"Transfer-Encoding: gzip\r\n\r\n" + one)
    assert status == 501, data
    assert server.json("POST", "/v1/admin/checkpoint", headers=AUTH)[0] == 200
    m = server.metrics()
    assert metric(m, "weir_http_requests_total", route="score", code="501") == 1
    assert metric(m, "weir_http_requests_total", route="checkpoint", code="200") == 1


def test_every_rejected_event_is_listed(weir_bin, data_dir):
    """rejected listed the first 100 bad events of a batch: a client could
    not tell which of the others to fix and send again."""
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        batch = [dict(GOOD, card_id="ok%d" % i, ts=GOOD["ts"] + i) if i % 2 else {"card_id": "x%d" % i}
                 for i in range(300)]
        status, body = srv.json("POST", "/v1/events/" + SOURCE, batch)
        assert status == 200 and body["accepted"] == 150, body
        assert [r["index"] for r in body["rejected"]] == list(range(0, 300, 2)), body["rejected"][-3:]
        # the first 100 with their error, the others by number alone
        assert all("error" in r for r in body["rejected"][:100]), body["rejected"][:3]
        assert not any("error" in r for r in body["rejected"][100:]), body["rejected"][100:103]
        assert srv.stop() == 0


def test_an_oversize_body_gets_its_413(weir_bin, data_dir):
    """With Content-Length and no Expect, a body over --max-body (up to 8x
    it) is read and dropped, then answered 413: refused at once, the socket
    was closed while the client still wrote, and Python's http.client saw
    a connection reset instead of the JSON 413 (RFC 9112 9.6), which the
    README says a client may retry. (Past 8x it is refused at once; whether
    the client reads that answer is up to TCP.)"""
    import http.client
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        for size in (1_100_000, 4_000_000):
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
            try:
                c.request("POST", EVENTS, body=b"[" + b" " * (size - 2) + b"]")
                r = c.getresponse()
                assert r.status == 413 and error_code(r.read()) == "body_too_large", size
            finally:
                c.close()
        # a Content-Encoding too: 415 once the body is read, not a reset; and
        # none on a request without a body (a probe)
        c = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
        try:
            c.request("POST", EVENTS, body=b"x" * 1_000_000, headers={"Content-Encoding": "gzip"})
            r = c.getresponse()
            assert r.status == 415 and error_code(r.read()) == "unsupported_content_encoding"
            c.request("GET", "/healthz", headers={"Content-Encoding": "gzip"})
            r = c.getresponse()
            assert r.status == 200, r.read()
            r.read()
        finally:
            c.close()
        assert srv.stop() == 0
