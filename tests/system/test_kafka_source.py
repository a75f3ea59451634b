"""test_kafka_source.py — a source's `kafka:`: weir run takes the source's
events from a Kafka topic (src/serve/kafka_source.h), against librdkafka's
mock cluster (tests/tools/kafka_mock.c: real brokers on loopback, in a
process of their own) and a real Kafka client (python3-confluent-kafka) as
the producer.

What must hold:
- every message of the topic is in weir's event log exactly once (none
  lost, none twice), decided once, with HTTP events beside them; weir
  verify recomputes every decision;
- a weir killed with -9 while it reads, restarted, still logs every message
  exactly once (the marks in its log skip what a redelivery brings again);
- a weir reading in a new group (no committed offsets) starts from the marks
  its checkpoint or its log replay hold, and logs nothing again;
- a bad message is named (topic, partition, offset, why), counted and
  passed over; messages refused for memory are read again later, not lost;
- without Kafka at start, weir serves HTTP and reads once Kafka is there;
- the spec's kafka: is checked, and a reload changing it is refused.
Time is never asserted: waits poll until a condition holds or time out."""
import json
import os
import pathlib
import random
import shutil
import subprocess
import threading
import time
from collections import Counter

import pytest

import httputil
from httputil import Server, metric

ck = pytest.importorskip("confluent_kafka", reason="python3-confluent-kafka is not installed "
                                                   "(scripts/install-deps.sh)")

TOPIC = "payments"
PARTITIONS = 4
# The mock's groups take a restarted member back after its session timeout
# (it has no static membership): the shortest it takes well.
FAST_GROUP = '{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}'


def mock_bin(weir_bin):
    path = os.environ.get("WEIR_KAFKA_MOCK") or str(pathlib.Path(weir_bin).parent / "weir-kafka-mock")
    if not os.access(path, os.X_OK):
        pytest.skip("weir-kafka-mock not built next to %s (cmake --build build)" % weir_bin)
    return path


class KafkaMock:
    """librdkafka's mock cluster with TOPIC of PARTITIONS partitions."""

    def __init__(self, weir_bin, same_id=False, topics=None):
        # the mock's cluster id comes from an address: without address
        # randomization (setarch -R) every mock has the same one, as a
        # topic deleted and made again in one cluster
        pre = ["setarch", os.uname().machine, "-R"] if same_id else []
        self.proc = subprocess.Popen(pre + [mock_bin(weir_bin)] + (topics or ["%s:%d" % (TOPIC, PARTITIONS)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("bootstrap "), line
        self.bootstrap = line.split()[1]

    def cluster_id(self):
        return ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": "id"}).list_topics(
            timeout=10).cluster_id

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def produce(self, evs, raw=None, partitions=None):
        """Each event keyed by its card, as a payment service would; raw:
        (key, value bytes or None) messages sent as they are; partitions:
        each event's Kafka partition, each message a batch of its own."""
        p = ck.Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0 if partitions else 5})
        for i, e in enumerate(evs):
            extra = {"partition": partitions[i]} if partitions else {}
            p.produce(TOPIC, key=e["card_id"].encode(), value=json.dumps(e).encode(), **extra)
            if partitions:
                p.flush(10)
            p.poll(0)
        for key, value in raw or ():
            p.produce(TOPIC, key=key, value=value)
        assert p.flush(30) == 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def kafka(weir_bin):
    k = KafkaMock(weir_bin)
    yield k
    k.stop()


def spec_file(tmp_path, kafka, group="g", config=FAST_GROUP, name="fraud.yaml", partitions=4):
    text = (httputil.SPECS / "fraud.yaml").read_text()
    text = text.replace("partitions: 4\n", "partitions: %d\n" % partitions, 1)
    text = text.replace("path: fraud.linear.json", "path: %s" % (httputil.SPECS / "fraud.linear.json"))
    line = '    kafka: {brokers: "%s", topic: %s, group: %s, config: %s}\n' % (
        kafka.bootstrap, TOPIC, group, config)
    text = text.replace("    fields:\n", line + "    fields:\n", 1)
    p = tmp_path / name
    p.write_text(text)
    return p


def fail(srv, what):
    """Fails with the server's Kafka metrics and what it said (it is killed)."""
    m = {k: v for k, v in srv.metrics().items() if "kafka" in k[0]}
    stacks = ""
    if shutil.which("gdb"):  # where its threads are, for a stall
        stacks = subprocess.run(["gdb", "-p", str(srv.proc.pid), "-batch", "-ex", "thread apply all bt"],
                                capture_output=True, text=True, timeout=60).stdout
    srv.kill()
    raise AssertionError("%s: %r; stderr: %s; threads: %s" % (what, m, srv.stderr()[-3000:], stacks))


def wait_drained(srv, timeout=120):
    """Until every partition is assigned and nothing is left to read."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = srv.metrics()
        if metric(m, "weir_kafka_assigned_partitions") == PARTITIONS and metric(m, "weir_kafka_lag") == 0:
            return m
        time.sleep(0.05)
    fail(srv, "not drained")


def wait_logged(srv, n, timeout=120):
    """Until n messages were logged in this run, and nothing is left to read."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = srv.metrics()
        if (metric(m, "weir_kafka_messages_total", outcome="logged") == n and
                metric(m, "weir_kafka_assigned_partitions") == PARTITIONS and
                metric(m, "weir_kafka_lag") == 0):
            return m
        time.sleep(0.05)
    fail(srv, "not logged")


def logged_events(data_dir):
    """Counter of the event log's events (their JSON values, canonical)."""
    return Counter(json.dumps(json.loads(r.value), sort_keys=True)
                   for r in httputil.event_records(data_dir).values())


def canon(evs):
    return Counter(json.dumps(e, sort_keys=True) for e in evs)


def assert_once(data_dir, evs):
    """The event log holds exactly evs (each once), each with one decision."""
    got = logged_events(data_dir)
    want = canon(evs)
    assert got == want, ("missing", sum((want - got).values()), "extra", sum((got - want).values()))
    decided = Counter((p, rec["offset"]) for p, _, rec in httputil.decisions(data_dir))
    assert set(decided) == set(httputil.event_records(data_dir)) and max(decided.values()) == 1


def test_topic_events_are_logged_once_and_decided(weir_bin, run_weir, kafka, tmp_path):
    evs = httputil.fraud_events(3000, seed=1, cards=60)
    kafka.produce(evs)
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    http = httputil.fraud_events(40, seed=2, cards=10, start=httputil.T0 + 10**9)
    with Server(weir_bin, spec, data) as srv:
        srv.post_events(http)
        m = wait_logged(srv, len(evs))
        assert metric(m, "weir_kafka_messages_total", outcome="logged_before") == 0
        assert metric(m, "weir_events_accepted_total", source="transactions") == len(evs) + len(http)
        assert srv.stop() == 0
        err = srv.stderr()
    assert "reading 4 partitions of 'payments' in group 'g'" in err, err
    assert_once(data, evs + http)
    # the marks are in the log, beside the events, naming the topic
    sources = [json.loads(r.value) for recs in httputil.log_records(data).values() for r in recs if r.type == 2]
    assert sources and all(s["kafka"] == TOPIC for s in sources)
    per = {}
    for s in sources:
        per[s["partition"]] = max(per.get(s["partition"], -1), s["offset"])
    assert sum(o + 1 for o in per.values()) == len(evs)  # the newest offset of each Kafka partition
    rc, out, err = run_weir(["verify", spec, "--data", data])
    assert rc == 0, out + err
    rc, out, err = run_weir(["log", "read", data, "--topic", "transactions"])
    assert rc == 0 and '"type":"source"' in out


def test_nothing_left_to_read_is_a_lag_of_zero(weir_bin, kafka, tmp_path):
    """A weir restarted reads new messages of one partition only: once they
    are logged its lag is 0, the partitions that gave it nothing since the
    assignment counted from where it began (librdkafka gives no position
    before a message)."""
    evs = httputil.fraud_events(400, seed=16, cards=40)
    kafka.produce(evs)
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data) as srv:
        wait_logged(srv, len(evs))
        assert srv.stop() == 0
    more = httputil.fraud_events(100, seed=17, cards=40, start=httputil.T0 + 10**9)
    kafka.produce(more, partitions=[0] * len(more))
    with Server(weir_bin, spec, data) as srv:
        wait_logged(srv, len(more), timeout=60)
        assert srv.stop() == 0
    assert_once(data, evs + more)


def test_kill9_while_reading_logs_every_message_once(weir_bin, run_weir, kafka, tmp_path):
    evs = httputil.fraud_events(20000, seed=3, cards=300)
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    done = threading.Event()

    def produce():  # about 2,000 messages a second, while weir is killed and restarted
        for i in range(0, len(evs), 200):
            kafka.produce(evs[i:i + 200])
            time.sleep(0.1)
        done.set()

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    rng = random.Random(7)
    for kill in range(3):
        srv = Server(weir_bin, spec, data)
        try:
            # killed once it is reading, at a random moment of a round
            deadline = time.time() + 60
            while time.time() < deadline and not metric(srv.metrics(), "weir_kafka_messages_total",
                                                         outcome="logged"):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.05, 1.5))
        finally:
            srv.kill()
        srv.stderr()
    t.join(120)
    assert done.is_set()
    with Server(weir_bin, spec, data) as srv:
        # (the log, not the lag gauge: a CI run once saw the gauge count
        # partitions read whole in earlier runs as all to read)
        deadline = time.time() + 120
        while time.time() < deadline and len(httputil.event_records(data)) < len(evs):
            time.sleep(0.1)
        assert srv.stop() == 0
    assert_once(data, evs)
    rc, out, err = run_weir(["verify", spec, "--data", data])
    assert rc == 0, out + err


@pytest.mark.parametrize("from_checkpoint", [True, False])
def test_a_new_group_starts_from_the_marks(weir_bin, run_weir, kafka, tmp_path, from_checkpoint):
    """No committed offsets (a new group): weir reads each partition from
    its marks, which the shutdown checkpoint holds, or (checkpoints gone)
    the replay of the log rebuilds; nothing is logged twice."""
    evs = httputil.fraud_events(4000, seed=4, cards=200)
    kafka.produce(evs)
    data = tmp_path / "data"
    with Server(weir_bin, spec_file(tmp_path, kafka, group="first"), data) as srv:
        wait_logged(srv, len(evs))
        assert srv.stop() == 0
    assert_once(data, evs)
    if not from_checkpoint:
        shutil.rmtree(data / "checkpoints")
        (data / "checkpoints").mkdir()
    more = httputil.fraud_events(500, seed=5, cards=200, start=httputil.T0 + 10**9)
    kafka.produce(more)
    with Server(weir_bin, spec_file(tmp_path, kafka, group="second"), data) as srv:
        m = wait_logged(srv, len(more))
        # what the marks said was logged was read again and skipped, or not read at all
        assert metric(m, "weir_kafka_messages_total", outcome="logged_before") < len(evs)
        assert srv.stop() == 0
        err = srv.stderr()
    assert ("no checkpoint" in err) != from_checkpoint, err
    assert_once(data, evs + more)


def test_bad_messages_are_named_and_passed_over(weir_bin, kafka, tmp_path):
    good = httputil.fraud_events(2, seed=6, cards=1)
    # one Kafka partition for all (one key), so that offsets are known
    key = good[0]["card_id"].encode()
    kafka.produce([], raw=[(key, json.dumps(good[0]).encode()),
                           (key, b"not json"),
                           (key, b'{"amount": 1.5, "ts": 1700000000000}'),
                           (key, json.dumps(dict(good[1], amount="lots")).encode()),
                           (key, None),
                           (key, json.dumps(good[1]).encode())])
    data = tmp_path / "data"
    with Server(weir_bin, spec_file(tmp_path, kafka), data) as srv:
        m = wait_logged(srv, 2)
        assert metric(m, "weir_kafka_messages_total", outcome="bad") == 4
        assert srv.stop() == 0
        err = srv.stderr()
    lines = [l for l in err.splitlines() if "passed over" in l]
    assert len(lines) == 4, err
    for off, why in zip((1, 2, 3, 4), ("malformed JSON", "card_id", "amount", "without a value")):
        line = lines[off - 1]
        assert "topic 'payments' partition " in line and "offset %d:" % off in line and why in line, line
    assert_once(data, good)


def test_messages_refused_for_memory_are_read_again(weir_bin, kafka, tmp_path):
    evs = httputil.fraud_events(300, seed=8, cards=300)
    kafka.produce(evs)
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    with Server(weir_bin, spec, data, "--max-memory", "1M") as srv:
        deadline = time.time() + 60
        while time.time() < deadline and not metric(srv.metrics(), "weir_kafka_messages_total", outcome="refused"):
            time.sleep(0.05)
        assert metric(srv.metrics(), "weir_kafka_messages_total", outcome="refused") > 0
        assert srv.stop() == 0
    assert len(httputil.event_records(data)) < len(evs)
    with Server(weir_bin, spec, data) as srv:  # no budget now: they are read again
        deadline = time.time() + 60
        while time.time() < deadline and len(httputil.event_records(data)) < len(evs):
            time.sleep(0.05)
        assert srv.stop() == 0
    assert_once(data, evs)


def test_a_refused_message_is_not_passed_by_later_ones(weir_bin, kafka, tmp_path):
    """Over the budget, weir refuses events of keys it holds no state for
    and takes the others. A refused message of a new key is followed, in
    its Kafka partition, by ones of held keys, interleaved with another
    Kafka partition's: those later ones must wait with it (were they
    logged, the weir partition's mark would pass the refused one, and its
    retry would skip it as logged)."""
    one = '{"max.partition.fetch.bytes": "1", "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}'
    spec = spec_file(tmp_path, kafka, config=one, partitions=1)
    data = tmp_path / "data"
    T = httputil.T0

    def ev(card, i):
        return {"card_id": card, "amount": 1.0 + i, "merchant": "m1", "country": "US", "ts": T + i * 1000}

    first = [ev("held-0", 0), ev("held-1", 1)]
    kafka.produce(first, partitions=[0, 1])
    with Server(weir_bin, spec, data) as srv:
        m = wait_logged(srv, 2)
        heap = metric(m, "weir_heap_bytes")
        assert srv.stop() == 0
    later, parts = [ev("new-0", 10)], [0]
    for i in range(20):
        later += [ev("held-1", 20 + 2 * i), ev("held-0", 21 + 2 * i)]
        parts += [1, 0]
    kafka.produce(later, partitions=parts)
    # a budget of the heap: new keys refused, held ones taken
    with Server(weir_bin, spec, data, "--max-memory", int(heap)) as srv:
        deadline = time.time() + 60
        while time.time() < deadline:
            m = srv.metrics()
            if (metric(m, "weir_kafka_messages_total", outcome="refused") and
                    metric(m, "weir_kafka_messages_total", outcome="logged") >= 20):
                break
            time.sleep(0.05)
        assert metric(m, "weir_kafka_messages_total", outcome="refused") > 0, m
        assert srv.stop() == 0
    with Server(weir_bin, spec, data) as srv:  # no budget: the refused ones are read again
        deadline = time.time() + 60
        while time.time() < deadline and len(httputil.event_records(data)) < len(first + later):
            time.sleep(0.05)
        assert srv.stop() == 0
    assert_once(data, first + later)


def test_marks_of_another_cluster_skip_nothing(weir_bin, kafka, tmp_path):
    """weir moved to another cluster, whose partitions hold more messages
    than weir's marks of the old one: its offsets are another count, and
    the old marks must not make weir skip them (the cluster id tells)."""
    evs = httputil.fraud_events(200, seed=11, cards=40)
    kafka.produce(evs)
    data = tmp_path / "data"
    with Server(weir_bin, spec_file(tmp_path, kafka), data) as srv:
        wait_logged(srv, len(evs))
        assert srv.stop() == 0
    other = KafkaMock(weir_bin)
    try:
        if other.cluster_id() == kafka.cluster_id():
            pytest.skip("the two mock clusters have one id (no address randomization here)")
        more = httputil.fraud_events(800, seed=12, cards=40, start=httputil.T0 + 10**9)
        other.produce(more)
        with Server(weir_bin, spec_file(tmp_path, other), data) as srv:
            m = wait_logged(srv, len(more))
            assert metric(m, "weir_kafka_messages_total", outcome="logged_before") == 0
            assert srv.stop() == 0
            err = srv.stderr()
        assert "marks of another Kafka cluster" in err, err
    finally:
        other.stop()
    assert_once(data, evs + more)


def test_a_topic_made_again_starts_over_for_good(weir_bin, tmp_path):
    """The topic deleted and made again in the same cluster (two mocks with
    one id): its offsets start over below weir's marks, which are dropped;
    and they stay dropped across a kill -9 and a replay from a checkpoint
    that still holds them (the drop is logged)."""
    old = KafkaMock(weir_bin, same_id=True)
    data = tmp_path / "data"
    first = httputil.fraud_events(800, seed=13, cards=40)
    try:
        old.produce(first)
        with Server(weir_bin, spec_file(tmp_path, old), data) as srv:
            wait_logged(srv, len(first))
            assert srv.stop() == 0  # a checkpoint with the old topic's marks
        old_id = old.cluster_id()
    finally:
        old.stop()
    new = KafkaMock(weir_bin, same_id=True)
    try:
        if new.cluster_id() != old_id:
            pytest.skip("setarch -R did not give the two mock clusters one id")
        second = httputil.fraud_events(40, seed=14, cards=40, start=httputil.T0 + 10**9)
        new.produce(second)
        spec = spec_file(tmp_path, new)
        srv = Server(weir_bin, spec, data)
        try:
            wait_logged(srv, len(second))
        finally:
            srv.kill()  # before a checkpoint takes the drop in
        assert "its marks are dropped" in srv.stderr()
        third = httputil.fraud_events(800, seed=15, cards=40, start=httputil.T0 + 2 * 10**9)
        new.produce(third)
        with Server(weir_bin, spec, data) as srv:
            wait_logged(srv, len(third))
            assert srv.stop() == 0
    finally:
        new.stop()
    assert_once(data, first + second + third)


def test_without_kafka_at_start_weir_serves_then_reads(weir_bin, kafka, tmp_path):
    kafka.command("down 1")
    spec = spec_file(tmp_path, kafka)
    data = tmp_path / "data"
    evs = httputil.fraud_events(100, seed=9, cards=20)
    with Server(weir_bin, spec, data) as srv:
        http = httputil.fraud_events(5, seed=10, cards=5)
        srv.post_events(http)  # HTTP does not wait for Kafka
        kafka.command("up 1")
        kafka.produce(evs)
        wait_logged(srv, len(evs))
        assert srv.stop() == 0
    assert_once(data, evs + http)


def test_kafka_spec_is_checked(weir_bin, run_weir, kafka, tmp_path):
    data = tmp_path / "data"
    bad = spec_file(tmp_path, kafka, config='{"fetch.wait.max.ms": "soon"}', name="bad.yaml")
    rc, out, err = run_weir(["run", bad, "--data", data, "--listen", "127.0.0.1:0"])
    assert rc != 0 and "fetch.wait.max.ms" in err, err
    owned = spec_file(tmp_path, kafka, config='{"enable.auto.commit": "false"}', name="owned.yaml")
    rc, out, err = run_weir(["run", owned, "--data", data, "--listen", "127.0.0.1:0"])
    assert rc != 0 and "'enable.auto.commit' is weir's to set" in err, err
    secret = spec_file(tmp_path, kafka, config='{"sasl.password": "hunter2"}', name="secret.yaml")
    rc, out, err = run_weir(["run", secret, "--data", data, "--listen", "127.0.0.1:0"])
    assert rc != 0 and "is a secret" in err and "hunter2" not in err, err


def test_a_reload_changing_kafka_is_refused(weir_bin, kafka, tmp_path):
    spec = spec_file(tmp_path, kafka)
    with Server(weir_bin, spec, tmp_path / "data") as srv:
        spec.write_text(spec.read_text().replace("group: g,", "group: other,"))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 422 and "kafka changed" in body["error"]["message"], body
        assert srv.stop() == 0
