"""A model or spec path that is not a regular file gets one clear line, at
once: `weir model info /tmp` said "larger than 1 GiB", /dev/zero "empty
file", and a FIFO hung forever (the open waited for a writer); `weir run`
with a spec whose model.path is a directory said the same. Every reader of
a model or spec file now refuses anything but a regular file, naming what
it is, without waiting on a FIFO."""
import os
import shutil

import pytest

from conftest import REPO

FRAUD = REPO / "examples" / "fraud"


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("verb", ["info", "predict", "bench"])
def test_model_verbs_refuse_what_is_not_a_file(run_weir, tmp_path, fifo, verb):
    rows = tmp_path / "rows.csv"
    rows.write_text("amount\n1\n")
    extra = ["--input", rows] if verb == "predict" else []
    for path, kind in ((tmp_path, "a directory"), ("/dev/zero", "a character device"),
                       (fifo, "a FIFO")):
        rc, out, err = run_weir(["model", verb, path] + extra, timeout=20)
        assert rc == 1 and out == "", (path, out, err)
        assert one_line(err) == "weir model %s: %s: not a regular file (%s)" % (verb, path, kind)


def test_model_file_errors_that_were_right_stay(run_weir, tmp_path):
    rc, _, err = run_weir(["model", "info", tmp_path / "nope.json"])
    assert rc == 1 and "nope.json: cannot open: No such file or directory" in one_line(err)
    empty = tmp_path / "e.json"
    empty.write_text("")
    rc, _, err = run_weir(["model", "info", empty])
    assert rc == 1 and one_line(err).endswith("e.json: empty file"), err
    rc, out, err = run_weir(["model", "info", FRAUD / "fraud.model.json"])
    assert rc == 0 and "xgboost" in out, err


def spec_with_model(tmp_path, model_path):
    spec = tmp_path / "fraud.yaml"
    text = (FRAUD / "fraud.yaml").read_text()
    assert "path: fraud.model.json" in text
    spec.write_text(text.replace("path: fraud.model.json", "path: %s" % model_path))
    return spec


@pytest.mark.parametrize("what", ["directory", "fifo"])
def test_run_with_a_model_path_that_is_not_a_file(run_weir, tmp_path, fifo, what):
    target, kind = (tmp_path, "a directory") if what == "directory" else (fifo, "a FIFO")
    spec = spec_with_model(tmp_path, target)
    rc, out, err = run_weir(["run", spec, "--data", tmp_path / "d", "--listen", "127.0.0.1:0"],
                            timeout=20)
    assert rc != 0, (out, err)
    assert one_line(err) == "weir run: model: %s: not a regular file (%s)" % (target, kind)


def test_spec_path_that_is_not_a_file(run_weir, tmp_path, fifo):
    shutil.copy(FRAUD / "fraud.model.json", tmp_path)
    for path, kind in ((tmp_path, "a directory"), (fifo, "a FIFO"),
                       ("/dev/zero", "a character device")):
        for verb in ("ingest", "backfill"):
            args = [verb, path, "--data", tmp_path / "d"]
            if verb == "backfill":
                args += ["--out", tmp_path / "o.csv"]
            rc, out, err = run_weir(args, timeout=20)
            assert rc == 1, (args, out, err)
            assert one_line(err) == "weir %s: %s: not a regular file (%s)" % (verb, path, kind)


def test_predict_input_that_is_a_directory(run_weir, tmp_path):
    rc, _, err = run_weir(["model", "predict", FRAUD / "fraud.model.json", "--input", tmp_path])
    assert rc == 1
    assert one_line(err) == "weir model predict: %s: cannot read: Is a directory" % tmp_path
