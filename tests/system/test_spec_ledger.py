"""test_spec_ledger.py — every decision names the spec text it was decided
under (DATA/specs: a version per text, for good; the texts in DATA/specs.d),
as it names its model. A record said "rule": 2, and after a reload that
changed the rules nothing told which rule 2 had decided: an audit of a
blocked card months later could not read the rules as they were, and
`weir verify` showed the reload's changes as differences without a word.
Now verify recomputes a record with the rules of the spec that decided it
when that text has the same fields, features and definitions (a reload of
rules), and names the version in a difference when it does not."""
import json
import shutil

from httputil import FRAUD_SPEC, SOURCE, Server, decisions, fraud_events

# A rule that reviews every event under 100 instead of allowing it.
STRICTER = """  - when: amount < 100
    then: review
    reason: small amounts reviewed
  - then: allow
"""


def test_decisions_name_their_spec_version_and_verify_says_which(weir_bin, run_weir, data_dir, tmp_path):
    spec = tmp_path / "fraud.yaml"
    shutil.copy(FRAUD_SPEC, spec)
    shutil.copy(FRAUD_SPEC.parent / "fraud.linear.json", tmp_path)
    text_a = spec.read_text()
    text_b = text_a.replace("  - then: allow\n", STRICTER)
    assert text_b != text_a
    evs = fraud_events(40, cards=5)
    small = [e for e in evs if e["amount"] < 100]
    assert small, "the events need amounts under 100"

    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.has_line("; spec 1")
        status, body = srv.json("POST", "/v1/score/" + SOURCE, evs[0])
        assert status == 200 and body["spec"] == 1, body
        srv.post_events(evs[1:20])
        spec.write_text(text_b)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec"] == "replaced" and body["spec_version"] == 2, body
        srv.post_events(evs[20:])
        status, body = srv.json("POST", "/v1/score/" + SOURCE, dict(small[0], ts=evs[-1]["ts"] + 1000))
        assert status == 200 and body["spec"] == 2 and body["decision"] == "review", body
        m = srv.metrics()
        assert m[("weir_spec_version", frozenset())] == 2
    recs = sorted((d["offset"], p, d["spec"]) for p, _, d in decisions(data_dir))
    assert sorted(set(s for _, _, s in recs)) == [1, 2]
    assert sum(s == 1 for _, _, s in recs) == 20 and sum(s == 2 for _, _, s in recs) == 21

    # The ledger: a line per text, each text kept as it was.
    lines = [l for l in (data_dir / "specs").read_text().splitlines() if not l.startswith("#")]
    assert [l.split()[0] for l in lines] == ["1", "2"], lines
    assert all(l.split()[3] == str(spec) for l in lines), lines
    assert (data_dir / "specs.d" / "1.yaml").read_text() == text_a
    assert (data_dir / "specs.d" / "2.yaml").read_text() == text_b

    # The same text is the same version at a restart; no line is added.
    spec.write_text(text_a)
    with Server(weir_bin, spec, data_dir) as srv:
        assert srv.has_line("; spec 1")
        status, body = srv.json("POST", "/v1/score/" + SOURCE, dict(evs[0], ts=evs[-1]["ts"] + 5000))
        assert status == 200 and body["spec"] == 1, body
    assert len([l for l in (data_dir / "specs").read_text().splitlines() if not l.startswith("#")]) == 2

    # verify with the stricter spec: the events decided under version 1 are
    # recomputed with version 1's rules (the same fields and features): the
    # reload is not a difference.
    spec.write_text(text_b)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir, "--show", "1000"])
    assert rc == 0 and ", 0 different" in out, (out, err)
    assert ("21 of them decided under another spec version whose fields and features are this "
            "spec's, recomputed with its rules (its text in %s/specs.d)" % data_dir) in out, out
    # ... and with version 1's rules on version 2's records, they would differ:
    # what verify checks is the rules that decided, not the last ones
    spec.write_text(text_a)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir, "--show", "1000"])
    assert rc == 0 and "21 of them decided under another spec version" in out, (out, err)

    # A spec whose features are not the decided text's: its rules would
    # read other features, so the records are checked against this spec, and
    # each difference says which spec decided and where its text is.
    text_c = text_b.replace("features:\n", "features:\n  extra_n_1h: count() over 1h\n", 1)
    assert text_c != text_b
    spec.write_text(text_c)
    rc, out, err = run_weir(["verify", spec, "--data", data_dir, "--show", "1000"])
    assert rc == 1, (out, err)
    diffs = [l for l in out.splitlines() if "decided under spec version 1" in l]
    assert diffs, out
    for l in diffs:
        assert ("(decided under spec version 1, its text in %s/specs.d/1.yaml; the offline spec "
                "never decided here)" % data_dir) in l, l
    assert ("42 of the decisions checked were made under another spec version than %s (a text "
            "that never decided here)" % spec) in out, out

    # A kept text deleted since: it cannot be recomputed with; the difference
    # says there is none to read.
    spec.write_text(text_b)
    (data_dir / "specs.d" / "1.yaml").unlink()
    rc, out, err = run_weir(["verify", spec, "--data", data_dir, "--show", "1000"])
    assert rc == 1 and "decision allow online, review offline" in out, (out, err)
    assert "(decided under spec version 1, %s/specs.d has no text of it; offline is version 2)" % data_dir in out, out


def test_a_changed_definition_under_the_same_name_is_not_recomputed_with_the_old_rules(
        weir_bin, run_weir, data_dir, tmp_path):
    """A reload that changes what a feature means (same name) made features
    the old rules never read: verify checks those records against the given
    spec, and each difference names the version that decided (it used to
    recompute them with the old rules, silently)."""
    spec = tmp_path / "fraud.yaml"
    shutil.copy(FRAUD_SPEC, spec)
    shutil.copy(FRAUD_SPEC.parent / "fraud.linear.json", tmp_path)
    text_a = spec.read_text()
    text_b = text_a.replace("amount / (amount_avg_7d + 1)", "amount / (amount_avg_7d + 2)")
    assert text_b != text_a
    evs = fraud_events(30, cards=5)
    with Server(weir_bin, spec, data_dir) as srv:
        srv.post_events(evs[:15])
        spec.write_text(text_b)
        status, body = srv.json("POST", "/v1/admin/reload")
        assert status == 200 and body["spec_version"] == 2, body
        srv.post_events(evs[15:])
    rc, out, err = run_weir(["verify", spec, "--data", data_dir, "--show", "1000"])
    assert rc == 1, (out, err)
    diffs = [l for l in out.splitlines() if "feature amount_ratio" in l]
    assert len(diffs) == 15, out  # the records of version 1: the ratio is another
    assert all("decided under spec version 1, its text in" in l for l in diffs), diffs
    assert "recomputed with its rules" not in out, out
