"""An output file shorter than the checkpoint recorded (a checkpoint syncs
the outputs first, so only a disk that lost them, or a hand, can do it) is
said so at recovery, naming the file and both lengths, instead of passing
in silence."""
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
    full = out.stat().st_size
    assert full > 0
    os.truncate(out, full // 2)
    with Server(weir_bin, SPECS / "fraud.yaml", data) as srv:
        assert srv.stop() == 0
        err = srv.stderr()
    want = "%s is %d bytes, shorter than the %d the checkpoint recorded" % (out, full // 2, full)
    assert want in err, err[-2000:]
