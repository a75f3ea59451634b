"""`weir backfill --labels FILE` (DESIGN.md's CLI): labels that arrive
apart from the events — a chargeback naming a card and a transaction time —
joined to the rows by key and event time (src/decide/labels.h).

- Every row whose (key, time) has a label line gets its cells, last, in the
  file's column order; the others get empty cells (CSV) or null (NDJSON);
  lines matching no row are counted on stderr.
- A bad file is refused before anything is written, naming the file, the
  line and what is wrong.
"""
import csv
import json
import random
import subprocess

from conftest import REPO

SPEC = REPO / "examples" / "fraud" / "fraud.yaml"


def test_labels_join_by_key_and_time(weir_bin, run_weir, tmp_path):
    events = subprocess.run([weir_bin, "gen", "fraud", "--events", "3000", "--keys", "100"],
                            capture_output=True, check=True).stdout
    data = tmp_path / "data"
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    evs = [json.loads(l) for l in events.splitlines()]
    rnd = random.Random(3)
    picked = {(e["card_id"], e["ts"]): str(rnd.randint(0, 9)) for e in rnd.sample(evs, 400)}
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:  # columns in another order than the spec's
        w = csv.writer(f)
        w.writerow(["chargeback", "ts", "note", "card_id"])
        for (card, ts), v in picked.items():
            w.writerow([v, ts, "a, \"quoted\"\nnote", card])
        w.writerow(["1", "1", "nobody", "c9999999"])
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", tmp_path / "rows.csv",
                           "--labels", labels, "--with", "is_fraud"])
    assert rc == 0, err
    assert "1 lines of %s matched no row" % labels in err, err
    # A time range: the labels outside it could match no row, and are not
    # counted (the one of no event, at time 1, is outside too).
    ts = sorted(e["ts"] for e in evs)
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", tmp_path / "range.csv",
                           "--labels", labels, "--from", ts[1000], "--to", ts[2000]])
    assert rc == 0 and "matched no row" not in err, err
    with open(tmp_path / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-3:] == ["is_fraud", "chargeback", "note"]
    got = {(r["key"], int(r["time"])): r for r in rows}
    assert len(rows) == len(evs)
    for k, r in got.items():
        if k in picked:
            assert (r["chargeback"], r["note"]) == (picked[k], "a, \"quoted\"\nnote"), (k, r)
        else:
            assert (r["chargeback"], r["note"]) == ("", ""), (k, r)

    run_weir(["backfill", SPEC, "--data", data, "--out", tmp_path / "rows.ndjson", "--format",
              "ndjson", "--labels", labels], check=True)
    for r in map(json.loads, (tmp_path / "rows.ndjson").read_text().splitlines()):
        k = (r["key"], r["time"])
        assert r["chargeback"] == (int(picked[k]) if k in picked else None), r


def test_bad_label_files_are_refused(weir_bin, run_weir, tmp_path):
    data = tmp_path / "data"
    events = subprocess.run([weir_bin, "gen", "fraud", "--events", "100"], capture_output=True,
                            check=True).stdout
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    out = tmp_path / "rows.csv"
    out.write_text("old\n")
    cases = [
        ("card_id,ts,y\nc1,5,1\nc2,6,0\nc1,5,0\n", "line 4: a second label line for key 'c1' at time 5 (line 2)"),
        ("card_id,y\nc1,1\n", "the header must name the key column 'card_id', the time column 'ts'"),
        ("card_id,ts,y\nc1,yesterday,1\n", "line 2, column 2: 'yesterday' is not a time"),
        ("card_id,ts,y\nc1,5\n", "line 2: 2 cells, the header has 3"),
        ("card_id,ts,y\nc1,5,\"open\n", "line 2: a quoted cell is not closed"),
        ("card_id,ts,y\nc\"1,5,1\n", "line 2: a quote inside an unquoted cell"),
        ("", "empty (it needs a header line)"),
        ("card_id,ts,y,y\nc1,5,1,2\n", "line 1: column 'y' is named twice"),
        ("card_id,ts,card_id,y\nc1,5,c2,1\n", "line 1: column 'card_id' is named twice"),
        ("card_id,ts,y\n\n\nc1,5,1\nc1,5,0\n", "line 5: a second label line for key 'c1' at time 5 (line 4)"),
        ("card_id,ts,key\nc1,5,1\n", "label column 'key' would repeat a column of the rows"),
        ("card_id,ts,amount_sum_24h\nc1,5,1\n", "label column 'amount_sum_24h' would repeat"),
    ]
    for i, (text, want) in enumerate(cases):
        p = tmp_path / ("l%d.csv" % i)
        p.write_text(text)
        rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--labels", p])
        assert rc != 0 and want in err and str(p) in err, (text, err)
        assert out.read_text() == "old\n"
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--labels", tmp_path])
    assert rc != 0 and "not a regular file" in err, err
    score = tmp_path / "score.csv"
    score.write_text("card_id,ts,score\nc1,5,1\n")
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--labels", score,
                           "--decisions"])
    assert rc != 0 and "label column 'score' would repeat" in err, err
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--decisions", "--with",
                           "decision"])
    assert rc != 0 and "--decisions adds a column 'decision', and --with names it too" in err, err
    rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--matches", out])
    assert rc != 0 and "--out and --matches name the same file" in err, err
    assert out.read_text() == "old\n"


def test_spreadsheet_label_files(weir_bin, run_weir, tmp_path):
    """A byte order mark and old Mac line ends (a lone CR), as spreadsheets
    write them, are read as any CSV."""
    data = tmp_path / "data"
    events = subprocess.run([weir_bin, "gen", "fraud", "--events", "50"], capture_output=True,
                            check=True).stdout
    run_weir(["ingest", SPEC, "--data", data], input=events, check=True)
    first = json.loads(events.splitlines()[0])
    for name, text in (("bom.csv", "\ufeffcard_id,ts,y\n%s,%d,7\n"),
                       ("cr.csv", "card_id,ts,y\r%s,%d,7\r")):
        p = tmp_path / name
        p.write_bytes((text % (first["card_id"], first["ts"])).encode())
        out = tmp_path / (name + ".ndjson")
        rc, _, err = run_weir(["backfill", SPEC, "--data", data, "--out", out, "--format", "ndjson",
                               "--labels", p])
        assert rc == 0 and "matched no row" not in err, (name, err)
        rows = [json.loads(l) for l in out.read_text().splitlines()]
        assert [r["y"] for r in rows if r["key"] == first["card_id"] and r["time"] == first["ts"]] == [7]


def test_int_keys_match_as_ints(run_weir, tmp_path):
    """An int-keyed source's labels are matched by the key's value: a label
    keyed 08 or +8 matched no row of key 8 (only "1 lines matched no row"
    said so); a key that is not an int is refused, naming line and column."""
    spec = tmp_path / "ints.yaml"
    spec.write_text("pipeline: ints\npartitions: 2\nsources:\n  s:\n    key: uid\n    time: ts\n"
                    "    fields: {uid: int, ts: time}\nfeatures:\n  n: count() over 1h\n")
    data = tmp_path / "data"
    run_weir(["ingest", spec, "--data", data], check=True,
             input="".join(json.dumps({"uid": u, "ts": 1000 * (i + 1)}) + "\n"
                           for i, u in enumerate((8, -3, 12))))
    labels = tmp_path / "labels.csv"
    labels.write_text("uid,ts,label\n08,1000,a\n-3,2000,b\n+12,3000,c\n")
    out = tmp_path / "rows.ndjson"
    rc, _, err = run_weir(["backfill", spec, "--data", data, "--out", out, "--format", "ndjson",
                           "--labels", labels])
    assert rc == 0, err
    got = {r["key"]: r["label"] for r in map(json.loads, out.read_text().splitlines())}
    assert got == {8: "a", -3: "b", 12: "c"}, (got, err)
    labels.write_text("uid,ts,label\n8x,1000,a\n")
    rc, _, err = run_weir(["backfill", spec, "--data", data, "--out", out, "--labels", labels])
    assert rc != 0 and "line 2, column 1: '8x' is not an int, and the key field is" in err, err
