"""test_kafka_sink.py — the spec's `sinks: decisions: kafka:`: weir run sends
every record of its decision log to a Kafka topic, once
(src/serve/kafka_sink.h), against librdkafka's mock cluster
(tests/tools/kafka_mock.c, a process of its own) with a real Kafka client
(python3-confluent-kafka) reading the topic.

What must hold:
- every decision record is in the topic exactly once: its value the record
  as logged, its key the event's key, headers naming the weir partition,
  the event's offset and the data directory, in the Kafka partition weir
  partition mod K, in the decision log's order;
- a new data directory (offsets from 0 again) sends its own decisions; a
  record too large for the brokers is said and passed over;
- a weir killed with -9 while it sends, restarted, still puts each record
  in the topic once (it reads the topic's tail to know where it stands);
- a restart sends only what is new;
- without Kafka at start, weir decides over HTTP, and sends once Kafka is
  there;
- the spec's sink is checked, and a reload changing it is refused.
The mock cluster does not hide aborted transactions from read_committed
readers (librdkafka 2.0's mock: no transaction markers), so these tests
check the tail-reading half of exactly-once, which holds on any cluster;
the transactions' half is Kafka's.
Time is never asserted: waits poll until a condition holds or time out."""
import json
import random
import threading
import time
from collections import Counter

import pytest

import httputil
from httputil import Server, metric
from test_kafka_source import KafkaMock, fail

ck = pytest.importorskip("confluent_kafka", reason="python3-confluent-kafka is not installed "
                                                   "(scripts/install-deps.sh)")

TOPIC = "fraud.decisions"
KPARTS = 3  # fewer than weir's 4 partitions: two of them share one


class SinkMock(KafkaMock):
    def __init__(self, weir_bin):
        super().__init__(weir_bin, topics=["%s:%d" % (TOPIC, KPARTS)])


@pytest.fixture
def kafka(weir_bin):
    k = SinkMock(weir_bin)
    yield k
    k.stop()


def spec_file(tmp_path, kafka, sink=None):
    text = (httputil.SPECS / "fraud.yaml").read_text()
    text = text.replace("path: fraud.linear.json", "path: %s" % (httputil.SPECS / "fraud.linear.json"))
    text += sink if sink is not None else (
        '\nsinks:\n  decisions:\n    kafka: {brokers: "%s", config: {linger.ms: 1}}\n' % kafka.bootstrap)
    p = tmp_path / "fraud.yaml"
    p.write_text(text)
    return p


def topic_messages(kafka):
    """[(kafka partition, key, value, {header: value})] of the topic, read
    with read_committed, in each partition's order."""
    c = ck.Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "reader-%d" % time.monotonic_ns(),
                     "isolation.level": "read_committed", "enable.partition.eof": True,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(TOPIC, q, 0) for q in range(KPARTS)])
    out, eof, deadline = [], set(), time.time() + 60
    while len(eof) < KPARTS and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == ck.KafkaError._PARTITION_EOF:
                eof.add(m.partition())
            continue
        out.append((m.partition(), m.key(), m.value(), {k: v.decode() for k, v in m.headers() or []}))
    c.close()
    assert len(eof) == KPARTS, "the topic could not be read to its end"
    return out


def wait_sent(srv, data, timeout=120):
    """Until the decision log is all in the topic (the sink's lag: the whole
    log until it has read the topic's tail)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = srv.metrics()
        if metric(m, "weir_kafka_sink_lag") == 0:
            return m
        time.sleep(0.05)
    fail(srv, "not sent")


def assert_once(kafka, data):
    """The topic holds every decision record of the log exactly once, as
    logged, keyed, placed and ordered as kafka_sink.h says."""
    msgs = topic_messages(kafka)
    ids = Counter((int(h["weir.partition"]), int(h["weir.offset"])) for _, _, _, h in msgs)
    dups = {k: n for k, n in ids.items() if n > 1}
    assert not dups, ("sent twice", len(dups), sorted(dups)[:5])
    logged = {}
    for p, key, rec in httputil.decisions(data):
        logged.setdefault((p, rec["offset"]), (key, rec))
    assert set(ids) == set(logged), ("missing", len(set(logged) - set(ids)), "extra",
                                     len(set(ids) - set(logged)))
    last = {}
    for q, key, value, h in msgs:
        p, off = int(h["weir.partition"]), int(h["weir.offset"])
        assert q == p % KPARTS
        assert key == logged[(p, off)][0]
        assert json.loads(value) == logged[(p, off)][1]
        assert off > last.get(p, -1), "weir partition %d out of order" % p
        last[p] = off
    return msgs


def test_every_decision_goes_to_the_topic_once(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    evs = httputil.fraud_events(2000, seed=1, cards=80)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[:1000])
        for e in evs[1000:1100]:  # scored ones too
            srv.json("POST", "/v1/score/transactions", e)
        srv.post_events(evs[1100:])
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == len(evs)
        assert srv.stop() == 0
    msgs = assert_once(kafka, data)
    assert len(msgs) == len(evs)
    assert (data / "sinks" / "decisions.kafka").read_text().startswith("weir decisions sink 1\n"
                                                                      "topic fraud.decisions\n")


def test_a_restart_sends_only_what_is_new(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    evs = httputil.fraud_events(600, seed=2, cards=40)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[:300])
        wait_sent(srv, data)
        assert srv.stop() == 0
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[300:])
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == 300
        assert srv.stop() == 0
    # and without its saved positions: the topic's tail says the same
    (data / "sinks" / "decisions.kafka").unlink()
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(httputil.fraud_events(50, seed=3, cards=40, start=httputil.T0 + 10**9))
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == 50
        assert srv.stop() == 0
    assert len(assert_once(kafka, data)) == 650


def test_kill9_while_sending_puts_each_decision_in_once(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    evs = httputil.fraud_events(12000, seed=4, cards=300)
    rng = random.Random(9)
    at = 0
    for kill in range(4):
        srv = Server(weir_bin, spec, data)
        stop = threading.Event()

        def post(srv=srv, start=at):  # about 2,000 events a second
            try:
                for i in range(start, len(evs), 100):
                    if stop.is_set():
                        break
                    srv.post_events(evs[i:i + 100])
                    time.sleep(0.05)
            except Exception:
                pass  # killed mid-request

        t = threading.Thread(target=post, daemon=True)
        t.start()
        try:
            # killed once it sends, at a random moment of a transaction
            deadline = time.time() + 30
            while time.time() < deadline and not metric(srv.metrics(), "weir_kafka_sink_messages_total"):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 1.0))
        finally:
            srv.kill()
            stop.set()
            t.join(30)
        srv.stderr()
        at = len(httputil.event_records(data))
    assert at < len(evs)  # (each kill came while events were still arriving)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[at:])
        wait_sent(srv, data)
        assert srv.stop() == 0
    msgs = assert_once(kafka, data)
    assert len(msgs) == len(httputil.event_records(data))


def test_a_new_data_directory_sends_its_own_decisions(weir_bin, kafka, tmp_path):
    """Event offsets start again at 0 in a new data directory: the topic's
    messages of the old one (another weir.log) are not taken for its own."""
    spec = spec_file(tmp_path, kafka)
    old, new = tmp_path / "old", tmp_path / "new"
    with Server(weir_bin, spec, old) as srv:
        srv.post_events(httputil.fraud_events(400, seed=6, cards=40))
        wait_sent(srv, old)
        assert srv.stop() == 0
    with Server(weir_bin, spec, new) as srv:
        srv.post_events(httputil.fraud_events(300, seed=7, cards=40))
        m = wait_sent(srv, new)
        assert metric(m, "weir_kafka_sink_messages_total") == 300
        assert srv.stop() == 0
    # a restart reads the tails, where the old directory's messages are
    # not taken for its own (without its saved positions, the tail alone)
    (new / "sinks" / "decisions.kafka").unlink()
    with Server(weir_bin, spec, new) as srv:
        srv.post_events(httputil.fraud_events(50, seed=8, cards=40, start=httputil.T0 + 10**9))
        m = wait_sent(srv, new)
        assert metric(m, "weir_kafka_sink_messages_total") == 50
        assert srv.stop() == 0
        assert "holds decisions of another data directory" in srv.stderr()
    ids = Counter(h["weir.log"] for _, _, _, h in topic_messages(kafka))
    mine = lambda d: (d / "sinks" / "id").read_text().strip()
    assert ids == {mine(old): 400, mine(new): 350}


def test_a_record_too_large_for_the_brokers_is_said_and_passed_over(weir_bin, kafka, tmp_path):
    """One record over message.max.bytes does not hold back the others."""
    sink = ('\nsinks:\n  decisions:\n    kafka: {brokers: "%s", config: {message.max.bytes: 1500}}\n'
            % kafka.bootstrap)
    spec = spec_file(tmp_path, kafka, sink=sink)
    data = tmp_path / "data"
    evs = httputil.fraud_events(200, seed=8, cards=20)
    big = dict(evs[100], card_id="c" + "x" * 1200)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(evs[:100] + [big] + evs[100:])
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == 200
        assert metric(m, "weir_kafka_sink_skipped_total") == 1
        assert srv.stop() == 0
        assert "is over message.max.bytes: not sent" in srv.stderr()
    with Server(weir_bin, spec, data) as srv:  # passed over for good: not again at a restart
        srv.post_events(httputil.fraud_events(10, seed=9, cards=20, start=httputil.T0 + 10**9))
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == 10
        assert metric(m, "weir_kafka_sink_skipped_total") == 0
        assert srv.stop() == 0
    keys = [k for _, k, _, _ in topic_messages(kafka)]
    assert len(keys) == 210 and big["card_id"].encode() not in keys


def test_kafka_absent_at_start_decides_and_sends_later(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    kafka.command("down 1")
    evs = httputil.fraud_events(200, seed=5, cards=20)
    with Server(weir_bin, spec, data) as srv:
        for e in evs[:20]:
            assert srv.json("POST", "/v1/score/transactions", e)[0] == 200
        srv.post_events(evs[20:])
        time.sleep(0.5)
        assert metric(srv.metrics(), "weir_kafka_sink_messages_total") == 0
        kafka.command("up 1")
        m = wait_sent(srv, data)
        assert metric(m, "weir_kafka_sink_messages_total") == len(evs)
        assert srv.stop() == 0
    assert len(assert_once(kafka, data)) == len(evs)


@pytest.mark.parametrize("sink,message", [
    ('\nsinks:\n  decisions:\n    kafka: {brokers: "%s", config: {transactional.id: x}}\n',
     "sinks decisions kafka config: 'transactional.id' is weir's to set"),
    ('\nsinks:\n  decisions:\n    kafka: {brokers: "%s", topic: "no topic"}\n',
     "sinks decisions kafka topic 'no topic' is not a Kafka topic name"),
    ('\nsinks:\n  late:\n    kafka: {brokers: "%s"}\n', "unknown key 'late'"),
    ('\nsinks:\n  decisions:\n    kafka: {brokers: "%s", config: {sasl.password: x}}\n',
     "is a secret"),
    ('\nsinks:\n  decisions:\n    kafka: {brokers: "%s", config: {enable.partition.eof: "false"}}\n',
     "'enable.partition.eof' is weir's to set"),
])
def test_the_sink_is_checked(weir_bin, run_weir, kafka, tmp_path, sink, message):
    spec = spec_file(tmp_path, kafka, sink=sink % kafka.bootstrap)
    rc, out, err = run_weir(["run", spec, "--data", tmp_path / "data", "--listen", "127.0.0.1:0"])
    assert rc != 0 and message in err, err
    assert "sasl.password: x" not in err or "secret" not in message


def test_a_reload_changing_the_sink_is_refused(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data) as srv:
        spec.write_text(spec.read_text().replace("linger.ms: 1", "linger.ms: 2"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and "sinks decisions kafka changed" in body["error"]["message"], body
        assert srv.stop() == 0
