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
