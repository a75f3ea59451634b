"""A segment written in another batch format (another magic byte, a CRC32C
that holds: what a newer weir leaves for an older one after a rollback) is
not a torn tail. Its first batch was "an impossible batch header", and in
the active segment nothing valid followed it, so the next open cut the
whole segment to 0 bytes and `weir log check` said ok. Now check, read and
every open refuse it, naming the file, and the bytes stay as they were."""
import pathlib
import struct

from logformat import read_batches, segment_files

TOPIC = "c"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def to_magic_3(path):
    """Every batch of the segment with magic 3 and its CRC made to hold (2
    is this weir's too: a batch with Kafka source records)."""
    b = bytearray(path.read_bytes())
    for batch in read_batches(path):
        pos = batch.start
        length = struct.unpack_from("<I", b, pos + 8)[0]
        assert b[pos + 16] == 1
        b[pos + 16] = 3
        struct.pack_into("<I", b, pos + 12, crc32c(bytes(b[pos + 16:pos + 12 + length])))
    path.write_bytes(bytes(b))
    return bytes(b)


def test_another_formats_segment_is_refused_not_cut(run_weir, tmp_path):
    d = tmp_path / "data"
    lines = "".join('{"user":"u%d","n":%d}\n' % (i % 5, i) for i in range(300))
    run_weir(["log", "append", d, "--topic", TOPIC, "--partitions", "1", "--key", "user",
              "--segment-bytes", "4096", "--batch", "20"], input=lines, check=True)
    segs = [pathlib.Path(p) for p in segment_files(d, TOPIC, 0)]
    assert len(segs) >= 3
    for seg in (segs[-1], segs[0]):  # the active segment, then a closed one
        before = to_magic_3(seg)
        rc, out, err = run_weir(["log", "check", d])
        assert rc == 1, out + err
        assert "%s: byte offset 0: a batch of another format" % seg in out + err, out + err
        assert "torn tail" not in out + err
        rc, out, err = run_weir(["log", "read", d, "--topic", TOPIC])
        assert rc != 0 and "a batch of another format" in err, err
        rc, out, err = run_weir(["log", "append", d, "--topic", TOPIC, "--partitions", "1",
                                 "--key", "user"], input='{"user":"u1","n":1}\n')
        assert rc != 0 and "a batch of another format" in err, err
        assert seg.read_bytes() == before, "the segment was changed"
