"""Broken specs through the binary (issue 3): `weir ingest` and
`weir backfill` with a spec that does not load print `FILE:LINE:COL:
message` on stderr (the message of tests/unit/specs/broken/<name>.expected),
exit non-zero and create nothing: neither the data directory nor anything in
it, nor the --out file. The stdin events are never read into a log.
"""
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "unit" / "specs" / "broken"
LOCAL = pathlib.Path(__file__).resolve().parent / "specs" / "broken"
CASES = sorted(BROKEN.glob("*.yaml")) + sorted(LOCAL.glob("*.yaml"))

EVENT = '{"card_id": "c1", "amount": 5.0, "ts": 1767225600000}\n'


def expected(spec):
    text = spec.with_suffix(".expected").read_text().strip()
    assert text.count(":") >= 2, text
    return text


def test_enough_broken_specs():
    assert len(CASES) >= 20


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.stem)
def test_ingest_refuses_broken_spec(run_weir, data_dir, spec):
    want = "%s:%s" % (spec, expected(spec))
    fresh = data_dir / "new"
    rc, out, err = run_weir(["ingest", spec, "--data", fresh], input=EVENT)
    assert rc != 0
    assert want in err, "expected %r on stderr, got %r" % (want, err)
    assert len([l for l in err.splitlines() if l.strip()]) == 1, err
    assert not fresh.exists(), "a refused spec created %s" % fresh
    rc, out, err = run_weir(["ingest", spec, "--data", data_dir], input=EVENT)
    assert rc != 0 and want in err
    assert list(data_dir.iterdir()) == [], "a refused spec created files in DIR"


@pytest.mark.parametrize("spec", CASES[::4], ids=lambda p: p.stem)
def test_backfill_refuses_broken_spec(run_weir, data_dir, spec):
    want = "%s:%s" % (spec, expected(spec))
    out_file = data_dir.parent / "out.csv"
    rc, out, err = run_weir(["backfill", spec, "--data", data_dir, "--out", out_file])
    assert rc != 0
    assert want in err, "expected %r on stderr, got %r" % (want, err)
    assert not out_file.exists()
    assert list(data_dir.iterdir()) == []


def test_relative_spec_path_is_named_as_given(run_weir, data_dir):
    spec = BROKEN / "type_error.yaml"
    rel = spec.relative_to(REPO)
    rc, out, err = run_weir(["ingest", rel, "--data", data_dir], input=EVENT, cwd=REPO)
    assert rc != 0
    assert "%s:%s" % (rel, expected(spec)) in err, err


def test_missing_spec_file(run_weir, data_dir):
    missing = data_dir.parent / "no-such-spec.yaml"
    rc, out, err = run_weir(["ingest", missing, "--data", data_dir], input=EVENT)
    assert rc != 0
    assert str(missing) in err
    assert list(data_dir.iterdir()) == []
