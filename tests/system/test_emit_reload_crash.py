"""Emits across a live reload and a crash (issue 6; EMITS FROM THE DECISION
LOG in src/serve/runtime.c). A server decides events under rules A, takes a
checkpoint, decides more under A, reloads rules B (other thresholds, other
rule numbers, an emit added, one removed), decides more, and is killed with
SIGKILL before the next checkpoint. The restart (with B on disk) cuts the
emit files back to the checkpoint and writes them again: each event's emit
line must be the one the live server wrote when it decided it, under the
rules then in force, exactly once. Deciding the events again under B, as
weir did before, loses the lines of events A emitted and B does not; the
added emit's file, unknown to the checkpoint, was kept as the crash left it
and written again after it; the removed emit's lines after the checkpoint
were cut and not written again."""
import json
import shutil

import httputil

RULES_A = (
    "decisions:\n"
    "  - when: amount > 100\n"
    "    then: review\n"
    "    emit: big\n"
    "  - when: merchant == \"m1\" or merchant == \"m2\"\n"
    "    then: flag\n"
    "    emit: gone\n"
    "  - then: allow\n\n"
)
# "huge" fires often, so that its lines pass stdio's buffer and some reach
# the file before the kill.
RULES_B = (
    "decisions:\n"
    "  - when: amount > 60 and amount <= 500\n"
    "    then: block\n"
    "    emit: huge\n"
    "  - when: amount > 500\n"
    "    then: hold\n"
    "    emit: big\n"
    "  - then: allow\n\n"
)
EMIT_OF = {"review": "big", "hold": "big", "block": "huge", "flag": "gone"}


def spec_text(rules):
    src = httputil.FRAUD_SPEC.read_text()
    head = src[: src.index("decisions:")].replace("partitions: 4\n", "partitions: 4\ncheckpoint_interval: 1h\n")
    return head + rules + src[src.index("aggregates:"):]


def score_all(srv, events):
    conn = srv.connection()
    out = []
    for ev in events:
        status, body = srv.json("POST", "/v1/score/" + httputil.SOURCE, json.dumps(ev), conn=conn)
        assert status == 200, body
        out.append(body)
    conn.close()
    return out


def emitted(data, name):
    path = data / "outputs" / (name + ".ndjson")
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_emits_survive_a_reload_and_a_crash(weir_bin, tmp_path):
    shutil.copy(httputil.SPECS / "fraud.linear.json", tmp_path / "fraud.linear.json")
    spec = tmp_path / "emit.yaml"
    spec.write_text(spec_text(RULES_A))
    data = tmp_path / "data"
    events = httputil.fraud_events(900, seed=23)
    e1, e2, e3 = events[:300], events[300:600], events[600:]

    srv = httputil.Server(weir_bin, spec, data)
    try:
        answers = score_all(srv, e1)
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        answers += score_all(srv, e2)
        spec.write_text(spec_text(RULES_B))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200, body
        answers += score_all(srv, e3)
    finally:
        srv.kill()

    # What the live server decided, and so what each emit file must hold.
    want = {"big": set(), "huge": set(), "gone": set()}
    for ev, a in zip(events, answers):
        name = EMIT_OF.get(a["decision"])
        if name:
            want[name].add((a["partition"], a["offset"], a["decision"], a["rule"], a["score"],
                            json.dumps(ev, sort_keys=True)))
    a_only = [a for ev, a in zip(e2, answers[300:600]) if a["decision"] == "review" and ev["amount"] <= 500]
    assert a_only, "some events after the checkpoint must be emitted by A and not by B"
    assert len(want["huge"]) > 40, "B's new emit must fire, past stdio's buffer"
    assert any(a["decision"] == "flag" for a in answers[300:600]), "A's removed emit must fire after the checkpoint"
    huge = data / "outputs" / "huge.ndjson"
    assert huge.exists() and huge.stat().st_size > 0, "some of huge's lines must be on disk at the kill"

    with httputil.Server(weir_bin, spec, data) as srv2:
        assert srv2.has_line("ready")
    assert srv2.returncode == 0

    for name in ("big", "huge", "gone"):
        lines = emitted(data, name)
        got = [(l["partition"], l["offset"], l["decision"], l["rule"], l["score"],
                json.dumps(l["event"], sort_keys=True)) for l in lines]
        assert len(got) == len(set(got)), "%s: a line written twice" % name
        assert set(got) == want[name], "%s: missing %s, extra %s" % (
            name, sorted(want[name] - set(got))[:3], sorted(set(got) - want[name])[:3])


RULES_NONE = (
    "decisions:\n"
    "  - when: amount > 100\n"
    "    then: review\n"
    "  - then: allow\n\n"
)


def test_emits_survive_a_reload_that_removes_every_emit(weir_bin, tmp_path):
    """The spec reloaded, and on disk at the restart, has no emit at all:
    the emits of the events decided before, after the checkpoint, are still
    written again from their decision records (DATA/outputs/.emits says
    some spec here had emits), not cut and lost."""
    shutil.copy(httputil.SPECS / "fraud.linear.json", tmp_path / "fraud.linear.json")
    spec = tmp_path / "emit.yaml"
    spec.write_text(spec_text(RULES_A))
    data = tmp_path / "data"
    events = httputil.fraud_events(600, seed=29)
    srv = httputil.Server(weir_bin, spec, data)
    try:
        answers = score_all(srv, events[:200])
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        answers += score_all(srv, events[200:400])
        spec.write_text(spec_text(RULES_NONE))
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200, body
        score_all(srv, events[400:])
    finally:
        srv.kill()
    want = {"big": set(), "gone": set()}
    for ev, a in zip(events, answers):
        name = EMIT_OF.get(a["decision"])
        if name:
            want[name].add((a["partition"], a["offset"], a["decision"], a["rule"], a["score"],
                            json.dumps(ev, sort_keys=True)))
    assert any(a["decision"] == "review" for a in answers[200:400])
    with httputil.Server(weir_bin, spec, data) as srv2:
        assert srv2.has_line("ready")
    for name in ("big", "gone"):
        got = [(l["partition"], l["offset"], l["decision"], l["rule"], l["score"],
                json.dumps(l["event"], sort_keys=True)) for l in emitted(data, name)]
        assert len(got) == len(set(got)), "%s: a line written twice" % name
        assert set(got) == want[name], "%s: missing %d, extra %d" % (
            name, len(want[name] - set(got)), len(set(got) - want[name]))
