"""`weir log check DATA` reads a server's decision log (DATA/decisions) as
well as its event log: both are what recovery and `weir verify` read back.
Before, a flipped byte in a decision segment passed the check ("ok") and
was found only by verify. `weir log read DATA --decisions` prints it."""
import glob
import json

from httputil import FRAUD_SPEC, Server, fraud_events
from logformat import read_batches


def test_check_reads_the_decision_log(weir_bin, run_weir, data_dir):
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        srv.post_events(fraud_events(300))
        assert srv.stop() == 0
    rc, out, err = run_weir(["log", "check", data_dir])
    assert rc == 0 and "ok" in out, out + err
    events = int(out.split(" records")[0].rsplit(" ", 1)[1])
    assert events == 600, out  # 300 events and their 300 decisions

    segs = sorted(glob.glob(str(data_dir / "decisions" / "transactions" / "*" / "*.seg")))
    seg = next(s for s in segs if len(read_batches(s)) > 1)
    first = read_batches(seg)[0]
    with open(seg, "r+b") as f:  # inside the first batch, with batches after it: damage
        f.seek(first.start + 40)
        b = f.read(1)
        f.seek(first.start + 40)
        f.write(bytes([b[0] ^ 0x10]))
    rc, out, err = run_weir(["log", "check", data_dir])
    assert rc == 1 and "DAMAGED" in out, out + err
    assert seg in out + err and "byte offset %d" % first.start in out + err, out + err


def test_read_prints_the_decision_log(weir_bin, run_weir, data_dir):
    evs = fraud_events(50)
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        srv.post_events(evs)
        assert srv.stop() == 0
    rc, out, err = run_weir(["log", "read", data_dir, "--topic", "transactions", "--decisions"])
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 50
    for r in recs:
        assert r["value"]["decision"] in ("allow", "review", "block") and r["value"]["model"] == 1, r
    _, out, _ = run_weir(["log", "read", data_dir, "--topic", "transactions"], check=True)
    events = {(e["partition"], e["offset"]): e for e in map(json.loads, out.splitlines())}
    assert {(r["partition"], r["value"]["offset"]) for r in recs} == set(events)
    rc, out, err = run_weir(["log", "read", data_dir / "nothing", "--topic", "transactions", "--decisions"])
    assert rc != 0 and "no decision log" in err, err
