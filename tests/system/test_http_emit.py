"""test_http_emit.py — decision rules with `emit: NAME` (issue 5, item 3):
every event whose matching rule emits is written, with its decision, to
DATA/outputs/NAME.ndjson, and no other event is; rules can read the model's
`class` and `scores[0]` besides `score`."""
import json
import shutil

import httputil


def emit_spec(tmp_path):
    """The HTTP fraud spec with rules that emit and read class/scores[0]."""
    src = httputil.FRAUD_SPEC.read_text()
    head = src[: src.index("decisions:")]
    tail = src[src.index("aggregates:"):]
    rules = (
        "decisions:\n"
        "  - when: scores[0] >= 0.9\n"
        "    then: block\n"
        "    emit: blocked\n"
        "  - when: class == 1 or amount > 5000\n"
        "    then: review\n"
        "    emit: review_queue\n"
        "  - then: allow\n\n"
    )
    shutil.copy(httputil.SPECS / "fraud.linear.json", tmp_path / "fraud.linear.json")
    spec = tmp_path / "emit.yaml"
    spec.write_text(head + rules + tail)
    return spec


def test_emitted_outputs_hold_exactly_the_matching_events(weir_bin, tmp_path):
    spec = emit_spec(tmp_path)
    data = tmp_path / "data"
    events = httputil.fraud_events(600, seed=11)
    answers = []
    with httputil.Server(weir_bin, spec, data) as srv:
        conn = srv.connection()
        for ev in events:
            status, body = srv.json("POST", "/v1/score/transactions", json.dumps(ev), conn=conn)
            assert status == 200, body
            answers.append(body)
    by_decision = {"block": [], "review": []}
    for ev, ans in zip(events, answers):
        if ans["decision"] in by_decision:
            by_decision[ans["decision"]].append((ans["offset"], ans["partition"], ev))
    assert by_decision["block"] and by_decision["review"], "the events should reach both rules"
    for name, decision in (("blocked", "block"), ("review_queue", "review")):
        lines = [json.loads(l) for l in (data / "outputs" / f"{name}.ndjson").read_text().splitlines()]
        got = sorted((l["partition"], l["offset"], json.dumps(l["event"], sort_keys=True)) for l in lines)
        want = sorted((p, o, json.dumps(ev, sort_keys=True)) for o, p, ev in by_decision[decision])
        assert got == want
        assert all(l["decision"] == decision for l in lines)
