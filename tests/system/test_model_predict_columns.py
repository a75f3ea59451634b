"""`weir model predict --input FILE` reads only the model's inputs from a CSV
with a header: the help says extra columns are ignored, and they must be
whatever they hold (never parsed). The case users met: the CSV that
`weir backfill --with amount` writes, whose `key` column is a string
("c0001422"), failed with 'line 2, column 3: "c0001422" is not a number'.
A label written as a word (--label-col) is left unparsed too."""
import csv
import json
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
SPEC = REPO / "examples" / "fraud" / "fraud.yaml"
MODEL = REPO / "examples" / "fraud" / "fraud.model.json"
LINEAR = REPO / "tests" / "system" / "models" / "linear_good.json"


def scores(out):
    return [float(l) for l in out.splitlines()]


def test_backfill_output_predicts(run_weir, tmp_path):
    data = tmp_path / "data"
    rc, events, err = run_weir(["gen", "fraud", "--events", 600, "--seed", 3])
    assert rc == 0, err
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    kp = tmp_path / "kp.csv"
    run_weir(["backfill", SPEC, "--data", data, "--with", "amount", "--out", kp], check=True)
    with open(kp) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 600 and not rows[0]["key"].replace(".", "").isdigit(), rows[0]

    rc, out, err = run_weir(["model", "predict", MODEL, "--input", kp])
    assert rc == 0, err
    got = scores(out)
    assert len(got) == 600 and all(0.0 <= s <= 1.0 for s in got)

    # The same rows with only the model's columns, in its order, score the same.
    rc, info, err = run_weir(["model", "info", MODEL, "--json"])
    assert rc == 0, err
    names = json.loads(info)["feature_names"]
    only = tmp_path / "only.csv"
    with open(only, "w") as f:
        f.write(",".join(names) + "\n")
        for r in rows:
            f.write(",".join(r[n] for n in names) + "\n")
    rc, out2, err = run_weir(["model", "predict", MODEL, "--input", only])
    assert rc == 0, err
    assert scores(out2) == got


def test_unread_columns_may_hold_anything(run_weir, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text('note,amount,when,count\n'
                 'a "word",1.5,2026-01-01T00:00:00Z,2\n'
                 ',-3,yesterday,0\n')
    rc, out, err = run_weir(["model", "predict", LINEAR, "--input", f])
    assert rc == 0, err
    assert len(scores(out)) == 2


def test_an_input_that_is_not_a_number_names_its_column_in_the_file(run_weir, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("key,amount,count\nc1,1.5,2\nc2,lots,1\n")
    rc, out, err = run_weir(["model", "predict", LINEAR, "--input", f])
    assert rc == 1 and out == ""
    assert 'line 3, column 2: "lots" is not a number' in err, err


def test_a_label_written_as_a_word_is_not_read(run_weir, tmp_path):
    with_label = tmp_path / "l.csv"
    with_label.write_text("label,amount,count\nfraud,1.5,2\nok,0.5,1\n")
    plain = tmp_path / "p.csv"
    plain.write_text("amount,count\n1.5,2\n0.5,1\n")
    rc, out, err = run_weir(["model", "predict", LINEAR, "--input", with_label, "--label-col", "0"])
    assert rc == 0, err
    rc, want, err2 = run_weir(["model", "predict", LINEAR, "--input", plain])
    assert rc == 0, err2
    assert out == want
    # Without a header, the word in the label column does not make the
    # first row a header: both rows are scored by position.
    nohead = tmp_path / "n.csv"
    nohead.write_text("fraud,1.5,2\nok,0.5,1\n")
    rc, out, err = run_weir(["model", "predict", LINEAR, "--input", nohead, "--label-col", "0"])
    assert rc == 0, err
    assert out == want
    rc, out, err = run_weir(["model", "predict", LINEAR, "--input", plain, "--label-col", "5"])
    assert rc == 1 and "--label-col 5: the input has 2 columns" in err, err


def test_backfill_writes_the_models_field_inputs(run_weir, tmp_path):
    """Every model input is a column of `weir backfill` rows, the event
    fields among them (amount) as the model is given them: the fraud
    example's model was trained without `amount` (train.py read the missing
    column as NaN), and `weir model predict` refused the rows. --with names
    that repeat a column, or --from not before --to, are refused."""
    data = tmp_path / "data"
    rc, events, err = run_weir(["gen", "fraud", "--events", 300, "--seed", 4])
    assert rc == 0, err
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    rows_csv = tmp_path / "rows.csv"
    run_weir(["backfill", SPEC, "--data", data, "--out", rows_csv, "--with", "is_fraud"], check=True)
    with open(rows_csv) as f:
        rows = list(csv.DictReader(f))
    by_time = {json.loads(l)["ts"]: json.loads(l)["amount"] for l in events.splitlines()}
    assert all(float(r["amount"]) == by_time[int(r["time"])] for r in rows)
    rc, out, err = run_weir(["model", "predict", MODEL, "--input", rows_csv])
    assert rc == 0 and len(scores(out)) == 300, err
    # The committed model learnt from amount (its trees split on it).
    m = json.loads(MODEL.read_text())["learner"]
    amount = m["feature_names"].index("amount")
    assert any(f == amount and left != -1  # (a leaf's split index means nothing)
               for t in m["gradient_booster"]["model"]["trees"]
               for f, left in zip(t["split_indices"], t["left_children"]))
    for args, want in ((["--with", "txn_count_1h"], "--with txn_count_1h would repeat"),
                       (["--with", "is_fraud,is_fraud"], "--with is_fraud would repeat"),
                       (["--with", "late"], "--with late would repeat"),
                       (["--from", "2000", "--to", "1000"], "is not before --to")):
        rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", tmp_path / "x.csv"] + args)
        assert rc == 1 and want in err, (args, err)


def test_a_field_input_named_like_a_row_column_is_refused(run_weir, tmp_path):
    """A model input that is an event field named like one of the rows'
    own columns (time, offset) would repeat that column: refused, naming it."""
    (tmp_path / "m.json").write_text('{"format": "weir-linear", "weights": {"time": 1.0}}')
    spec = tmp_path / "s.yaml"
    spec.write_text("pipeline: p\npartitions: 1\nsources:\n  ev:\n    key: k\n    time: ts\n"
                    "    fields: {k: string, time: float, ts: time}\n"
                    "features:\n  n: count() over 1h\n"
                    "model:\n  path: m.json\n  inputs: [time]\n")
    data = tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], input='{"k":"a","time":1.5,"ts":1000}\n', check=True)
    rc, _, err = run_weir(["backfill", spec, "--data", data, "--out", tmp_path / "x.csv"])
    assert rc == 1 and "model input 'time' is an event field named like a column" in err, err


def test_names_that_would_repeat_a_member_are_refused(run_weir, tmp_path):
    """A feature named like a column every backfill row starts with, or a
    select named like a member every window line has, would repeat it (JSON
    readers keep one or the other): the spec loader refuses both, naming
    them (a feature was refused by backfill only, after serving)."""
    head = ("pipeline: p\npartitions: 1\nsources:\n  ev:\n    key: k\n    time: ts\n"
            "    fields: {k: string, i: int, ts: time}\n")
    spec = tmp_path / "f.yaml"
    spec.write_text(head + "features:\n  time: i + 1\n")
    rc, _, err = run_weir(["ingest", spec, "--data", tmp_path / "data"], input='{"k":"a","i":1,"ts":1000}\n')
    assert rc != 0 and "f.yaml:9:3: feature 'time' is named like a column every training row" in err, err
    sel = tmp_path / "s.yaml"
    sel.write_text(head + "features:\n  n: count() over 1h\naggregates:\n  ag:\n"
                   "    window: tumbling 1h\n    select: {key: count()}\n")
    rc, _, err = run_weir(["ingest", sel, "--data", tmp_path / "d2"], input=b"")
    assert rc != 0 and "s.yaml:13:14" in err and "select 'key' is written by weir itself" in err, err


def test_headerless_rows_with_too_few_columns_are_refused(run_weir, tmp_path):
    """A headerless CSV one column short of the model was scored with the
    last feature missing (exit 0): only libsvm rows may leave features out.
    Too few and too many columns are refused alike, naming both counts."""
    rc, info, err = run_weir(["model", "info", MODEL, "--json"])
    assert rc == 0, err
    nfeat = len(json.loads(info)["feature_names"])
    for cols in (nfeat - 1, nfeat + 2):
        path = tmp_path / ("c%d.csv" % cols)
        path.write_text(",".join(["1.5"] * cols) + "\n")
        rc, out, err = run_weir(["model", "predict", MODEL, "--input", path])
        assert rc != 0 and out == "", (cols, out)
        assert "has %d columns but the model has %d features" % (cols, nfeat) in err, err
    # libsvm rows may still leave the last features out
    path = tmp_path / "r.libsvm"
    path.write_text("0 0:1.5 1:2\n")
    rc, out, err = run_weir(["model", "predict", MODEL, "--input", path])
    assert rc == 0 and len(scores(out)) == 1, err


def test_libsvm_indexes_past_the_model_are_refused_as_read(run_weir, tmp_path):
    """libsvm rows are made dense: twelve lines "0 16000000:1" (153 bytes)
    took 1.7 GB before the column count was checked (a fuzzer's find). An
    index past the model's features (and one more, for the label hint) is
    refused as the file is read, naming the line; a label column one past
    the features still gets its hint."""
    rc, info, err = run_weir(["model", "info", MODEL, "--json"])
    assert rc == 0, err
    nfeat = len(json.loads(info)["feature_names"])
    path = tmp_path / "wide.libsvm"
    path.write_text("0 1:1\n" + "0 16000000:1\n" * 12)
    rc, out, err = run_weir(["model", "predict", MODEL, "--input", path])
    assert rc != 0 and out == "", out
    assert "line 2: index 16000000 is out of range: the model's rows have indexes below %d" % (nfeat + 1) in err, err
    path.write_text("0 0:1 %d:1\n" % nfeat)
    rc, out, err = run_weir(["model", "predict", MODEL, "--input", path])
    assert rc != 0 and "(a label column? see --label-col)" in err, err
