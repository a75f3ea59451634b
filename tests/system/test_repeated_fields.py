"""An event that names one of its source's fields twice
(`{"card_id":"a","card_id":"b",...}`) is refused at the edge: weir (as
cJSON) would read the first, Python's json and most parsers the last, so a
training job reading the raw log would key it otherwise. /v1/score answers
400, /v1/events lists it among "rejected" (400 when nothing was accepted),
`weir ingest` reports the line; the message names the field, and nothing of
the event reaches the log or the state. Members the source does not declare
may repeat (nobody reads them).

Replay is not the edge: an event already in a log (accepted by an older
weir, or written by `weir log append`, which knows no schema) is decoded as
before, the first occurrence counting, so recovery and backfill rebuild the
state those binaries built."""
import json

from httputil import FRAUD_SPEC, SOURCE, Server, backfill, event_records

SCORE = "/v1/score/" + SOURCE
EVENTS = "/v1/events/" + SOURCE
T0 = 1_700_000_000_000


def event(card, i, **extra):
    return dict({"card_id": card, "amount": 10.0 + i, "merchant": "m1", "country": "US",
                 "ts": T0 + i * 1000}, **extra)


# Texts, as json.dumps cannot repeat a member. The first occurrence of each
# repeated field is the one the old decoder kept.
DUP_KEY = ('{"card_id":"dup-a","card_id":"dup-b","amount":5.5,"merchant":"m1","country":"US",'
           '"ts":%d}' % T0)
DUP_AMOUNT = ('{"card_id":"dup-c","amount":5.5,"merchant":"m1","amount":7.5,"country":"US",'
              '"ts":%d}' % T0)
DUP_TS = '{"card_id":"dup-d","ts":%d,"amount":5.5,"merchant":"m1","country":"US","ts":%d}' % (T0, T0 + 1)


def twice(field):
    return "field '%s' appears twice" % field


def test_http_refuses_a_repeated_field(weir_bin, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        for text, field in ((DUP_KEY, "card_id"), (DUP_AMOUNT, "amount"), (DUP_TS, "ts")):
            status, body = srv.json("POST", SCORE, text)
            assert status == 400 and body["error"]["code"] == "invalid_event", (text, body)
            assert twice(field) in body["error"]["message"], body
            # one event to /v1/events: its only event rejected, so 400
            status, body = srv.json("POST", EVENTS, text)
            assert status == 400 and body["error"]["code"] == "invalid_events", body
            assert body["accepted"] == 0 and body["rejected_count"] == 1, body
            assert twice(field) in body["rejected"][0]["error"], body
        # in a batch, as any bad event: the others are accepted
        good = [event("ok-1", 1), event("ok-2", 2), event("ok-3", 3), event("ok-4", 4)]
        status, body = srv.json("POST", EVENTS, "[%s,%s,%s]" % (json.dumps(good[0]), DUP_KEY,
                                                                json.dumps(good[1])))
        assert status == 200 and body["accepted"] == 2 and body["rejected_count"] == 1, body
        assert body["rejected"][0]["index"] == 1 and twice("card_id") in body["rejected"][0]["error"]
        ndjson = "\n".join([json.dumps(good[2]), DUP_AMOUNT, json.dumps(good[3])])
        status, _, data = srv.request("POST", EVENTS, ndjson,
                                      {"Content-Type": "application/x-ndjson"})
        body = json.loads(data)
        assert status == 200 and body["accepted"] == 2 and body["rejected_count"] == 1, body
        assert body["rejected"][0]["line"] == 2 and twice("amount") in body["rejected"][0]["error"]
        # a member the source does not declare may repeat
        note = json.dumps(event("ok-5", 5))[:-1] + ',"note":1,"note":2}'
        status, body = srv.json("POST", SCORE, note)
        assert status == 200 and body["decision"], body
        # nothing of a refused event is in the state ...
        for card in ("dup-a", "dup-b", "dup-c", "dup-d"):
            status, body = srv.json("GET", "/v1/features/%s/%s" % (SOURCE, card))
            assert status == 200 and body["found"] is False, card
        assert srv.stop() == 0
    # ... or in the log
    logged = sorted(json.loads(r.value)["card_id"] for r in event_records(data_dir).values())
    assert logged == ["ok-1", "ok-2", "ok-3", "ok-4", "ok-5"]


def test_ingest_refuses_a_repeated_field(run_weir, data_dir):
    lines = [json.dumps(event("ok-1", 1)), DUP_KEY, DUP_AMOUNT, DUP_TS, json.dumps(event("ok-2", 2))]
    rc, out, err = run_weir(["ingest", FRAUD_SPEC, "--data", data_dir],
                            input="".join(l + "\n" for l in lines))
    assert rc == 1, err
    msgs = [l for l in err.splitlines() if l.startswith("weir ingest: line")]
    assert len(msgs) == 3, err
    for msg, (no, field) in zip(msgs, ((2, "card_id"), (3, "amount"), (4, "ts"))):
        assert msg.startswith("weir ingest: line %d: %s" % (no, twice(field))), msg
    logged = sorted(json.loads(r.value)["card_id"] for r in event_records(data_dir).values())
    assert logged == ["ok-1", "ok-2"]


def test_replay_takes_the_first_of_a_repeated_field(weir_bin, run_weir, data_dir, tmp_path):
    # Logged without a schema, as an older weir accepted it: the key
    # partitions by the first card_id, as the old decoder read it.
    lines = [json.dumps(event("ok-1", 1)), DUP_KEY, DUP_AMOUNT]
    run_weir(["log", "append", data_dir, "--topic", SOURCE, "--partitions", 4, "--key", "card_id"],
             input="".join(l + "\n" for l in lines), check=True)
    rows = sorted(backfill(run_weir, FRAUD_SPEC, data_dir, tmp_path).values(), key=lambda r: r["key"])
    assert [(r["key"], r["amount_sum_24h"]) for r in rows] == [("dup-a", 5.5), ("dup-c", 5.5),
                                                               ("ok-1", 11.0)], rows
    # `weir run` replays the log at start (deciding the events) the same way
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        for card, found in (("dup-a", True), ("dup-b", False), ("dup-c", True)):
            status, body = srv.json("GET", "/v1/features/%s/%s" % (SOURCE, card))
            assert status == 200 and body["found"] is found, (card, body)
        status, body = srv.json("GET", "/v1/features/%s/dup-c" % SOURCE)
        assert body["features"]["amount_sum_24h"] == 5.5, body
        assert srv.stop() == 0


# A NUL in a string: cJSON ends its strings at it, so "nk\u0000A" was read
# as "nk" and shared that key's state with "nk", "nk\u0000B", ... The edge
# refuses it, naming the byte; an escaped backslash before u0000 is text.
NUL_KEY = '{"card_id":"nk\\u0000A","amount":5.5,"merchant":"m1","country":"US","ts":%d}' % T0
NOT_NUL = '{"card_id":"nk\\\\u0000A","amount":5.5,"merchant":"m1","country":"US","ts":%d}' % T0


def test_a_nul_in_a_string_is_refused(weir_bin, run_weir, data_dir, tmp_path):
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        status, body = srv.json("POST", SCORE, NUL_KEY)
        assert status == 400 and body["error"]["code"] == "invalid_event", body
        assert "(NUL) or a raw control byte at byte 14" in body["error"]["message"], body
        # the raw byte too (cJSON takes it in a string, and ends the string there)
        status, _, data = srv.request("POST", SCORE, NUL_KEY.replace("\\u0000", "\0").encode())
        assert status == 400 and b"at byte 14" in data, data
        status, body = srv.json("POST", EVENTS, "[%s]" % NUL_KEY)
        assert status == 400 and body["rejected_count"] == 1, body
        status, body = srv.json("POST", SCORE, NOT_NUL)
        assert status == 200 and body["key"] == "nk\\u0000A", body
        assert srv.stop() == 0
    assert [json.loads(r.value)["card_id"] for r in event_records(data_dir).values()] == ["nk\\u0000A"]
    rc, out, err = run_weir(["ingest", FRAUD_SPEC, "--data", tmp_path / "d2"],
                            input=NUL_KEY + "\n" + NOT_NUL + "\n{bad\n")
    assert rc == 1
    assert "line 1: a string holds \\u0000 (NUL) or a raw control byte at byte 14" in err, err
    assert "line 3: malformed JSON near byte" in err, err


def test_text_that_is_not_utf8_is_refused(weir_bin, run_weir, data_dir, tmp_path):
    """JSON text is UTF-8 (RFC 8259): an event with other bytes is refused,
    naming the byte, instead of being logged and echoed into outputs a
    strict JSON reader cannot read."""
    bad = b'{"card_id":"bad\xff\xfe","amount":5.5,"merchant":"m1","country":"US","ts":%d}' % T0
    good = '{"card_id":"caf\u00e9-\u20ac","amount":5.5,"merchant":"m1","country":"US","ts":%d}' % T0
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        status, _, data = srv.request("POST", SCORE, bad)
        body = json.loads(data)
        assert status == 400 and "not UTF-8 at byte 15" in body["error"]["message"], body
        status, body = srv.json("POST", SCORE, good.encode())
        assert status == 200 and body["key"] == "caf\u00e9-\u20ac", body
        assert srv.stop() == 0
    assert [json.loads(r.value)["card_id"] for r in event_records(data_dir).values()] == ["caf\u00e9-\u20ac"]
    rc, out, err = run_weir(["ingest", FRAUD_SPEC, "--data", tmp_path / "d2"], input=bad + b"\n")
    assert rc == 1 and "line 1: not UTF-8 at byte 15" in err, err


def test_nesting_past_the_limit_is_named(weir_bin, run_weir, data_dir, tmp_path):
    """An event nesting arrays deeper than the 1,000 levels the JSON parser
    takes is refused saying so (it was "malformed JSON near byte N")."""
    deep = '{"card_id":"d","amount":1.5,"merchant":"m1","country":"US","ts":%d,"x":%s1%s}' % (
        T0, "[" * 1001, "]" * 1001)
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        status, body = srv.json("POST", SCORE, deep)
        assert status == 400 and "nested deeper than 1000 levels" in body["error"]["message"], body
    rc, _, err = run_weir(["ingest", FRAUD_SPEC, "--data", tmp_path / "d2"], input=deep + "\n")
    assert rc == 1 and "line 1: arrays or objects nested deeper than 1000 levels" in err, err
