"""The example specs (examples/) are what a new user reads first: each loads
with the built binary, and what its comments say about it is true — no
comment says a piece that is built (patterns: README, "What is built") is
not built yet, and a spec that says it uses no patterns has none and names
the example that does."""
import pathlib

import yaml

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
SPECS = sorted(EXAMPLES.glob("*/*.yaml"))


def test_example_specs_load(run_weir, tmp_path):
    assert SPECS, EXAMPLES
    for i, spec in enumerate(SPECS):
        rc, out, err = run_weir(["ingest", spec, "--data", tmp_path / str(i)], input=b"")
        assert rc == 0, (spec, err)


def test_example_comments_are_true():
    for spec in SPECS:
        text = spec.read_text()
        comments = " ".join(l for l in text.splitlines() if l.lstrip().startswith("#")).lower()
        assert "not built" not in comments, spec
        if "no patterns" in comments:
            assert not yaml.safe_load(text).get("patterns"), spec
            assert "examples/clicks/clicks.yaml" in text, spec
            assert yaml.safe_load((EXAMPLES / "clicks" / "clicks.yaml").read_text())["patterns"]


def test_fraud_example_remembers_a_card_back_after_its_windows(run_weir, tmp_path):
    """The fraud example's new_country and secs_since read last(country)
    and last(ts): a card back 7 days and an hour later (past its longest
    window) from another country was new_country null and secs_since null,
    and allowed; its ttl (30d) keeps the card's last values."""
    import json
    spec = EXAMPLES / "fraud" / "fraud.yaml"
    t0 = 1_767_225_600_000
    evs = [{"card_id": "c1", "amount": 20.0, "merchant": "m1", "country": "US", "ts": t0},
           {"card_id": "c1", "amount": 6000.0, "merchant": "m2", "country": "RU",
            "ts": t0 + (7 * 24 + 1) * 3600_000}]
    data = tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], input="".join(json.dumps(e) + "\n" for e in evs), check=True)
    out = tmp_path / "rows.ndjson"
    run_weir(["backfill", spec, "--data", data, "--out", out, "--format", "ndjson", "--decisions"], check=True)
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert rows[1]["new_country"] is True and rows[1]["secs_since"] == (7 * 24 + 1) * 3600, rows[1]
    assert rows[1]["decision"] == "review", rows[1]  # amount > 5000 and new_country
