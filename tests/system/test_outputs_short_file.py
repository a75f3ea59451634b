"""An output file shorter than the checkpoint recorded (a checkpoint syncs
the outputs first, so only a disk that lost them, a hand, or a start that
emptied them and stopped can do it) makes recovery skip that checkpoint,
naming the file and both lengths, while the log still holds every event:
the replay of the whole log writes the file whole again. (Before, recovery
said so and went on, and the lines were gone for good.)"""
import os
import time

from httputil import SPECS, Server, fraud_events


def test_output_shorter_than_the_checkpoint_is_reported(weir_bin, tmp_path):
    data = tmp_path / "data"
    with Server(weir_bin, SPECS / "fraud.yaml", data) as srv:
        srv.post_events(fraud_events(200, step_ms=120_000))
        time.sleep(0.5)
        assert srv.stop() == 0  # a checkpoint at shutdown records the outputs' ends
    out = data / "outputs" / "hourly_spend.ndjson"
    pristine = out.read_bytes()
    full = len(pristine)
    assert full > 0
    os.truncate(out, full // 2)
    with Server(weir_bin, SPECS / "fraud.yaml", data) as srv:
        assert srv.stop() == 0
        err = srv.stderr()
    want = "checkpoint 1 skipped: %s is %d bytes, shorter than the %d it recorded" % (
        out, full // 2, full)
    assert want in err, err[-2000:]
    assert "replaying the whole log" in err, err[-2000:]
    # (partitions replay side by side: the lines, in another order)
    assert sorted(out.read_bytes().splitlines()) == sorted(pristine.splitlines())
