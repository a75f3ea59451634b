"""ckptutil.py — helpers for the checkpoint system tests
(test_checkpoint_crash.py, test_checkpoint_atomicity.py): the fraud spec with
checkpoint settings, what `weir run` says about recovery, the checkpoint
directory as it is on disk, and the reference
everything is compared with — oracle.py run over the event log exactly as it
is on disk (events and ticks, per partition in offset order), so the expected
features, aggregates on close and `GET /v1/features` answers follow from the
logged events alone and from no code of weir's."""
import json
import os
import pathlib
import re
import shutil

import oracle as o
from httputil import FRAUD_SPEC, SOURCE, decisions, log_records
from oracle import Agg, Feature, OnClose, agg_feature, select_agg

H = o.H
CKPT_DIR = "checkpoints"
_RECOVERED = re.compile(r"weir run: recovery: checkpoint (\d+): replaying from offsets \[([0-9, ]*)\]")
_SKIPPED = re.compile(r"weir run: recovery: checkpoint (\d+) skipped: (.*)")
_NONE = re.compile(r"weir run: recovery: (?:no checkpoint|no usable checkpoint|cannot list .*); "
                   r"replaying the whole log")
_CRASHED = re.compile(r"WEIR_CKPT_CRASH_AT=(\d+): (?:the server dies|exiting) after (\S+) (.*)")


# ---- the spec ----

def fraud_spec(tmp_path, interval="1s", guarantee=None, name="fraud-ckpt.yaml"):
    """A copy of httputil's FRAUD_SPEC (and its model) in tmp_path with
    `checkpoint_interval: interval` and, if given, `guarantee: guarantee`."""
    d = pathlib.Path(tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    for f in FRAUD_SPEC.parent.iterdir():
        if f.suffix == ".json":
            shutil.copy(f, d / f.name)
    text = FRAUD_SPEC.read_text()
    extra = "checkpoint_interval: %s\n" % interval
    if guarantee:
        extra += "guarantee: %s\n" % guarantee
    assert "\npartitions: 4\n" in text
    text = text.replace("\npartitions: 4\n", "\npartitions: 4\n" + extra, 1)
    path = d / name
    path.write_text(text)
    return path


def fraud_oracle_spec():
    """FRAUD_SPEC's features and its hourly_spend aggregate, for oracle.py."""
    fields = {"card_id": "string", "amount": "float", "merchant": "string", "country": "string",
              "ts": "time"}
    F = [
        agg_feature("txn_count_1h", Agg("count", None, H), fields),
        agg_feature("amount_sum_24h", Agg("sum", "amount", 24 * H), fields),
        agg_feature("amount_avg_7d", Agg("avg", "amount", 7 * 24 * H, H), fields),
        agg_feature("merchants_24h", Agg("distinct", "merchant", 24 * H), fields),
        Feature("amount_ratio", "amount / (amount_avg_7d + 1)",
                lambda e: o.fop(e["amount"], o.fop(e["amount_avg_7d"], 1, "+"), "/"), "float",
                deps=["amount_avg_7d"]),
        Feature("new_country", "country != last(country)",
                lambda e: o.cmp(e["country"], "!=", e.prev("country")), "bool"),
        Feature("secs_since", "seconds(ts - last(ts))",
                lambda e: o.seconds_(o.isub(e["ts"], e.prev("ts"))), "float"),
    ]
    hourly = OnClose("hourly_spend", "tumbling", size=H, selects=[
        select_agg("total", Agg("sum", "amount"), fields), select_agg("n", Agg("count"), fields)])
    return o.Spec("fraud", 4, SOURCE, "card_id", "ts", 30 * o.S, fields, F, [hourly])


# ---- the oracle over the log on disk ----

class LogOracle:
    """oracle.Oracle fed with the event log of data_dir as it is on disk:
    each partition's records in offset order, events applied (or found
    late) and ticks moving time, as weir's replay does. .rows_by_pos maps
    (partition, offset) to the oracle's row of that event; .ids maps the
    `id` field of each logged event to its positions."""

    def __init__(self, data_dir, spec=None):
        self.spec = spec or fraud_oracle_spec()
        self.orc = o.Oracle(self.spec)
        self.ids = {}
        self.events = 0
        for p, recs in sorted(log_records(data_dir).items()):
            for r in recs:
                part = self.orc.parts[p]
                assert part["offset"] == r.offset, \
                    "partition %d: record offset %d, oracle at %d" % (p, r.offset, part["offset"])
                if r.type == 1:
                    self.orc._tick(p, json.loads(r.value)["time"])
                    continue
                obj, fields = o.decode_line(self.spec, r.value.decode())
                assert o.partition_of(fields[self.spec.key], self.spec.partitions) == p
                self.orc._event(p, obj, fields)
                self.events += 1
                if "id" in obj:
                    self.ids.setdefault(obj["id"], []).append((p, r.offset))
        self.rows_by_pos = {(r["partition"], r["offset"]): r for r in self.orc.rows}

    def lookup(self, key):
        """What GET /v1/features/{source}/{key} must answer now (engine.h,
        engine_part_lookup): the features as of the partition's newest time
        without an event (fields null), from the key's state — none if the
        key has no state or its state is past its TTL."""
        spec = self.spec
        p = o.partition_of(key, spec.partitions)
        part = self.orc.parts[p]
        st = part["keys"].get(key)
        qt = part["max"]
        if qt is None:
            st, qt = None, 0
        elif st is not None and st.newest is not None and \
                st.newest < qt - spec.lateness - (spec.longest + spec.lateness):
            st = None
        fields = {name: None for name in spec.fields}
        feats = self.orc._features(fields, st, qt)
        return {"found": st is not None,
                "features": {f.name: v for f, v in zip(spec.features, feats)}}

    def compare_features(self, pos, got, where):
        """Mismatches between the oracle's features of the event at pos and
        got (a dict name -> value, e.g. a decision's "features")."""
        row = self.rows_by_pos[pos]
        errs = []
        for f, v in zip(self.spec.features, row["features"]):
            if f.name not in got:
                errs.append("%s: no feature %s" % (where, f.name))
            elif not o.same_value(f.type, v, got[f.name], f.approx):
                errs.append("%s p%d/o%d key=%r: %s expected %r, got %r"
                            % (where, pos[0], pos[1], row["key"], f.name, v, got[f.name]))
        return errs


def compare_lookup(orc, key, body):
    """Mismatches between the oracle's lookup of key and a GET
    /v1/features body."""
    exp = orc.lookup(key)
    errs = []
    if body.get("found") != exp["found"]:
        errs.append("key %r: found %r, oracle %r" % (key, body.get("found"), exp["found"]))
    ftypes = {f.name: f for f in orc.spec.features}
    for name, v in exp["features"].items():
        got = body.get("features", {}).get(name, "<absent>")
        if not o.same_value(ftypes[name].type, v, got, ftypes[name].approx):
            errs.append("key %r: %s expected %r, weir %r" % (key, name, v, got))
    return errs


def check_outputs(data_dir, orc):
    """DATA/outputs equals the oracle's: every hourly_spend window the
    watermark closed, once, with the oracle's values; every late event once.
    (Recovery cuts the files back to where the checkpoint it uses saw them
    end and replays with outputs on, so nothing is written twice.)"""
    out = pathlib.Path(data_dir) / "outputs"
    got = o.read_ndjson(out / "hourly_spend.ndjson") if (out / "hourly_spend.ndjson").exists() else []
    errs = o.compare_closed(orc.spec, orc.orc.closed, got)
    assert not errs, "aggregates on close differ from the oracle:\n" + "\n".join(errs)
    late = o.read_ndjson(out / "late.ndjson") if (out / "late.ndjson").exists() else []
    errs = o.compare_late(orc.orc.late, late)
    assert not errs and len(late) == len(orc.orc.late), \
        "late output differs from the oracle (%d lines, oracle %d):\n%s" \
        % (len(late), len(orc.orc.late), "\n".join(errs))
    return len(got), len(late)


def check_state(data, looked):
    """looked (GET /v1/features of every key) equals the oracle's view of
    the log on disk, and so do the output files (after the server stopped)."""
    orc = LogOracle(data)
    errs = []
    for k, body in looked.items():
        errs += compare_lookup(orc, k, body)
    assert not errs, "recovered state differs from the oracle:\n" + "\n".join(errs[:20])
    windows, _ = check_outputs(data, orc)
    assert windows > 0
    return orc


# ---- decisions ----

def decision_counts(data_dir):
    """({(partition, offset): [decision, ...]}, logged events) — every
    decision of the decision log by the event it is for."""
    logged = {}
    for p, recs in log_records(data_dir).items():
        for r in recs:
            if r.type == 0:
                logged[(p, r.offset)] = r
    by_pos = {}
    for part, key, d in decisions(data_dir):
        pos = (part, d["offset"])
        assert pos in logged, "a decision for an event that is not logged: %s" % (pos,)
        assert key == logged[pos].key, "decision key %r for event key %r" % (key, logged[pos].key)
        by_pos.setdefault(pos, []).append(d)
    return by_pos, logged


def check_exactly_one_decision(data_dir):
    by_pos, logged = decision_counts(data_dir)
    twice = sorted(p for p, ds in by_pos.items() if len(ds) > 1)
    missing = sorted(set(logged) - set(by_pos))
    assert not twice, "%d events with more than one decision, e.g. %s" % (len(twice), twice[:10])
    assert not missing, "%d logged events without a decision, e.g. %s" % (len(missing), missing[:10])
    return {p: ds[0] for p, ds in by_pos.items()}, logged


# ---- what weir run said ----

def recovery_lines(stderr):
    """[(kind, id, detail)] of the recovery lines in stderr: ("checkpoint",
    id, [offsets]), ("skipped", id, reason), ("none", None, None)."""
    out = []
    for line in stderr.splitlines():
        m = _RECOVERED.search(line)
        if m:
            offs = [int(x) for x in m.group(2).replace(" ", "").split(",") if x]
            out.append(("checkpoint", int(m.group(1)), offs))
            continue
        m = _SKIPPED.search(line)
        if m:
            out.append(("skipped", int(m.group(1)), m.group(2)))
            continue
        if _NONE.search(line):
            out.append(("none", None, None))
    return out


def recovered_from(stderr):
    """(id, offsets) of the checkpoint recovery used, (0, None) when it
    replayed the whole log; fails unless stderr says exactly one of them."""
    used = [l for l in recovery_lines(stderr) if l[0] != "skipped"]
    assert len(used) == 1, "expected one recovery line, stderr:\n" + stderr[-3000:]
    kind, cid, offs = used[0]
    return (cid, offs) if kind == "checkpoint" else (0, None)


def crash_step(stderr):
    """(step, kind, path) of the WEIR_CKPT_CRASH_AT line in stderr, or None."""
    m = _CRASHED.search(stderr)
    return (int(m.group(1)), m.group(2), m.group(3).strip()) if m else None


# ---- the checkpoint directory ----

def ckpt_root(data_dir):
    return pathlib.Path(data_dir) / CKPT_DIR


def checkpoint_ids(data_dir):
    """Ids of the published checkpoints (directories with their final
    name), newest first."""
    root = ckpt_root(data_dir)
    if not root.exists():
        return []
    return sorted((int(n) for n in os.listdir(root) if re.fullmatch(r"\d{20}", n)), reverse=True)


def checkpoint_in_progress(data_dir):
    """Whether a checkpoint is being written (an <id>.tmp directory)."""
    root = ckpt_root(data_dir)
    try:
        return any(n.endswith(".tmp") for n in os.listdir(root))
    except FileNotFoundError:
        return False


def checkpoint_dir(data_dir, cid):
    return ckpt_root(data_dir) / ("%020d" % cid)


def list_checkpoints(run_weir, data_dir, verify=True):
    """(exit status, parsed `weir checkpoint DIR [--verify] --json`, stderr)."""
    args = ["checkpoint", str(data_dir), "--json"] + (["--verify"] if verify else [])
    rc, out, err = run_weir(args)
    return rc, json.loads(out), err


def copy_data(src, dst):
    """A copy of data directory src at dst (a crash test's starting point)."""
    shutil.copytree(src, dst, symlinks=True)
    return pathlib.Path(dst)
