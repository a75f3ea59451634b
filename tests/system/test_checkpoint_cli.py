"""`weir checkpoint DIR` as a user meets it: the listing, --verify, --json, and
the exit status and reason for every kind of damage.

The stores are written here by a small, independent writer of the format
documented in src/log/checkpoint.h (part files with a block CRC table and a
trailer, a text MANIFEST with its own CRC). Why not checkpoints written by
weir itself: the C writer is covered by tests/unit/log_checkpoint_test.c
(round trip, a crash after every step, damage); what this file adds is that
the documented format is complete and exact enough for another program to
write checkpoints the binary accepts, with no test-only option in the binary
and no dependence on the unit-test executables. Damage is then made byte by
byte where the test wants it.
"""
import json
import os
import struct

import pytest

BLOCK = 65536

# --- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 -------------------

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def test_crc32c_vector():
    # RFC 3720 B.4: 32 bytes of zeros.
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"123456789") == 0xE3069283


# --- an independent writer ---------------------------------------------------

def part_file(partition, log_offset, decision_offset, blob, meta=()):
    kv = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<I", len(v)) + v for k, v in meta)
    data = struct.pack("<IHHIIQQ", 0x504B4357, 1, 0, partition, len(kv), log_offset,
                       decision_offset) + kv + blob
    table = b"".join(struct.pack("<I", crc32c(data[i:i + BLOCK]))
                     for i in range(0, len(data), BLOCK))
    nblocks = (len(data) + BLOCK - 1) // BLOCK
    tail = table + struct.pack("<QI", len(blob), nblocks)
    crc = crc32c(tail)
    return data + tail + struct.pack("<I", crc), crc


def escape(b):
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x25 else "%%%02x" % c for c in b)


def write_checkpoint(datadir, ckpt_id, parts, pipeline="fraud", created_ms=1700000000000,
                     meta=(), suffix=""):
    """parts: list of (log_offset, decision_offset, blob). Returns the directory."""
    d = datadir / "checkpoints" / ("%020d%s" % (ckpt_id, suffix))
    d.mkdir(parents=True)
    lines = ["weir-checkpoint 1", "id %d" % ckpt_id, "created_ms %d" % created_ms,
             "pipeline " + escape(pipeline.encode()), "partitions %d" % len(parts)]
    lines += ["meta %s %s" % (k, escape(v)) for k, v in meta]
    for p, (lo, do, blob) in enumerate(parts):
        data, crc = part_file(p, lo, do, blob, [(b"watermark", b"%d" % (lo * 10))])
        (d / ("part-%05d" % p)).write_bytes(data)
        lines.append("part %d part-%05d %d %08x %d %d" % (p, p, len(data), crc, lo, do))
    body = ("\n".join(lines) + "\n").encode()
    (d / "MANIFEST").write_bytes(body + b"end %08x\n" % crc32c(body))
    return d


def blob(n, seed):
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


@pytest.fixture
def store(data_dir):
    """Two checkpoints: 1 (older) and 2 (newest, with a multi-block part)."""
    write_checkpoint(data_dir, 1, [(100, 10, blob(50, 1)), (200, 20, b"")])
    write_checkpoint(data_dir, 2, [(150, 15, blob(200000, 2)), (260, 26, blob(7, 3))],
                     pipeline="fraud demo", meta=[("spec_hash", b"abc 1"), ("lines", b"a 1\nb 2\n")],
                     created_ms=1700000001234)
    return data_dir


def listing(run_weir, d, *flags):
    rc, out, err = run_weir(["checkpoint", str(d), "--json"] + list(flags))
    return rc, json.loads(out), err


def flip(path, pos):
    b = bytearray(path.read_bytes())
    b[pos] ^= 0x20
    path.write_bytes(bytes(b))


# --- tests -------------------------------------------------------------------

def test_help(run_weir):
    rc, out, err = run_weir(["checkpoint", "--help"])
    assert rc == 0 and err == ""
    assert out.startswith("usage: weir checkpoint DIR")
    rc, out, _ = run_weir(["--help"])
    assert "checkpoint" in out


@pytest.mark.parametrize("args,word", [
    ([], "missing DIR"),
    (["{d}", "--frobnicate"], "--frobnicate"),
    (["{d}/nope"], "no such directory"),
    (["{d}", "{d}"], "extra"),
])
def test_mistakes_one_line(run_weir, data_dir, args, word):
    rc, out, err = run_weir(["checkpoint"] + [a.format(d=data_dir) for a in args])
    assert rc == 1
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("weir checkpoint: ") and word in lines[0], err


def test_empty_store(run_weir, data_dir):
    rc, out, err = run_weir(["checkpoint", str(data_dir)])
    assert rc == 0, err
    assert "no checkpoints" in out
    rc, j, _ = listing(run_weir, data_dir)
    assert rc == 0 and j["checkpoints"] == []


@pytest.mark.parametrize("verify", [False, True])
def test_lists_newest_first_with_offsets_and_sizes(run_weir, store, verify):
    flags = ["--verify"] if verify else []
    rc, j, err = listing(run_weir, store, *flags)
    assert rc == 0, err
    assert j["check"] == ("full" if verify else "quick")
    cps = j["checkpoints"]
    assert [c["id"] for c in cps] == [2, 1]
    assert all(c["valid"] and c["problem"] is None for c in cps)
    new = cps[0]
    assert new["pipeline"] == "fraud demo" and new["partitions"] == 2
    assert new["created_ms"] == 1700000001234
    assert new["meta"] == {"spec_hash": "abc 1", "lines": "a 1\nb 2\n"}
    assert [(p["log_offset"], p["decision_offset"]) for p in new["parts"]] == [(150, 15), (260, 26)]
    d = store / "checkpoints" / ("%020d" % 2)
    for p in new["parts"]:
        f = d / ("part-%05d" % p["partition"])
        assert p["bytes"] == f.stat().st_size
        assert p["crc"] == "%08x" % struct.unpack("<I", f.read_bytes()[-4:])[0]
    assert new["bytes"] == sum(f.stat().st_size for f in d.iterdir())

    rc, out, err = run_weir(["checkpoint", str(store)] + flags)
    assert rc == 0 and err == ""
    blocks = out.split("\n\n")
    assert blocks[0].startswith("checkpoint 2  written 2023-11-14T22:13:21.234Z  pipeline fraud demo")
    assert ("verified" if verify else "valid (quick check)") in blocks[0].splitlines()[0]
    assert "meta spec_hash=abc 1" in blocks[0]
    assert "meta lines=a 1\n    b 2\n" in blocks[0]  # a value of lines, a line each
    row = blocks[0].splitlines()[-1].split()
    assert row[:3] == ["1", "260", "26"]
    assert blocks[1].startswith("checkpoint 1  ")


def test_flipped_blob_byte_needs_verify_and_names_the_block(run_weir, store):
    f = store / "checkpoints" / ("%020d" % 2) / "part-00000"
    pos = 70000  # in the second 64 KiB block
    flip(f, pos)
    # The quick check reads headers and tables, not the blocks: still valid.
    rc, j, _ = listing(run_weir, store)
    assert rc == 0 and j["checkpoints"][0]["valid"]
    rc, j, err = listing(run_weir, store, "--verify")
    assert rc == 1
    bad = j["checkpoints"][0]
    assert not bad["valid"] and j["checkpoints"][1]["valid"]
    assert str(f) in bad["problem"]
    assert "bytes [65536, 131072) (block 1)" in bad["problem"]
    assert err.strip() == "weir checkpoint: checkpoint 2 is invalid: " + bad["problem"]
    rc, out, err = run_weir(["checkpoint", str(store), "--verify"])
    assert rc == 1 and "INVALID: " in out and "verified" in out  # 1 still verifies


@pytest.mark.parametrize("what", ["truncate", "header", "table", "manifest", "missing", "swap"])
def test_damage_is_found_without_verify(run_weir, store, what):
    d = store / "checkpoints" / ("%020d" % 2)
    part = d / "part-00001"
    size = part.stat().st_size
    if what == "truncate":
        part.write_bytes(part.read_bytes()[:size - 3])
        want = ["part-00001", "cut short at byte %d" % (size - 3)]
    elif what == "header":
        flip(part, 9)  # caught by --verify as block 0; the quick check sees the header
        want = ["part-00001", "byte"]
    elif what == "table":
        flip(part, size - 18)
        want = ["part-00001", "fail their CRC32C"]
    elif what == "manifest":
        flip(d / "MANIFEST", 40)
        want = ["MANIFEST", "fail the CRC32C"]
    elif what == "missing":
        part.unlink()
        want = ["part-00001", "missing"]
    else:  # a valid part file of another checkpoint
        other = store / "checkpoints" / ("%020d" % 1) / "part-00001"
        part.write_bytes(other.read_bytes())
        want = ["part-00001"]
    for flags in ([], ["--verify"]):
        rc, j, err = listing(run_weir, store, *flags)
        assert rc == 1, (what, flags)
        bad = j["checkpoints"][0]
        assert bad["id"] == 2 and not bad["valid"]
        for w in want:
            assert w in bad["problem"], (w, bad["problem"])
        assert j["checkpoints"][1]["valid"]
        assert "checkpoint 2 is invalid" in err


def test_unfinished_is_noted_and_left_alone(run_weir, store):
    tmp = write_checkpoint(store, 3, [(1, 1, b"x")], suffix=".tmp")
    (tmp / "MANIFEST").unlink()
    rc, out, err = run_weir(["checkpoint", str(store)])
    assert rc == 0, err
    assert "00000000000000000003.tmp is an unfinished checkpoint" in out
    assert tmp.exists()  # read-only: removal is the writer's job
    rc, j, _ = listing(run_weir, store)
    assert j["unfinished"] == ["00000000000000000003.tmp"]
    assert [c["id"] for c in j["checkpoints"]] == [2, 1]


def test_wrong_id_in_manifest(run_weir, data_dir):
    d = write_checkpoint(data_dir, 5, [(1, 1, b"abc")])
    os.rename(d, data_dir / "checkpoints" / ("%020d" % 6))
    rc, j, _ = listing(run_weir, data_dir)
    assert rc == 1
    assert "names checkpoint 5 but lies in 6" in j["checkpoints"][0]["problem"]


# --- DIR that is no data directory -------------------------------------------
# `weir checkpoint MI/checkpoints` (the store itself) printed "no checkpoints
# in MI/checkpoints/checkpoints" and exited 0; a file said "no such
# directory". Each now says what is wrong and exits 1; a data directory that
# has no checkpoints yet is still an empty list and exit 0.

def test_the_checkpoints_directory_itself(run_weir, store):
    for d in (store / "checkpoints", str(store / "checkpoints") + "/"):
        rc, out, err = run_weir(["checkpoint", d])
        assert rc == 1 and out == "", err
        assert err.strip() == ("weir checkpoint: %s looks like a checkpoints directory itself; "
                               "did you mean its parent, %s?" % (d, store)), err
    # a store with no checkpoint yet is known by its name
    fresh = store.parent / "fresh" / "checkpoints"
    fresh.mkdir(parents=True)
    (fresh / "LOCK").write_bytes(b"")
    rc, out, err = run_weir(["checkpoint", fresh])
    assert rc == 1 and "did you mean its parent, %s?" % fresh.parent in err, err


def test_a_file(run_weir, data_dir):
    f = data_dir / "spec.yaml"
    f.write_text("pipeline: x\n")
    rc, out, err = run_weir(["checkpoint", f])
    assert rc == 1 and out == ""
    assert err.strip() == "weir checkpoint: %s: not a directory (a regular file)" % f


def test_a_folder_that_is_no_data_directory(run_weir, data_dir):
    (data_dir / "notes.txt").write_text("hello\n")
    rc, out, err = run_weir(["checkpoint", data_dir])
    assert rc == 1 and out == ""
    assert err.strip() == ("weir checkpoint: %s has no checkpoints/ directory: "
                           "is it a data directory?" % data_dir)


def test_a_data_directory_with_a_log_and_no_checkpoints_yet(run_weir, data_dir):
    run_weir(["log", "append", data_dir, "--topic", "t"], input='{"a":1}\n', check=True)
    rc, out, err = run_weir(["checkpoint", data_dir])
    assert rc == 0 and err == "", err
    assert out.strip() == "no checkpoints in %s/checkpoints" % data_dir
    rc, j, _ = listing(run_weir, data_dir)
    assert rc == 0 and j["checkpoints"] == []
    assert not (data_dir / "checkpoints").exists()  # read-only


def test_a_long_meta_value_is_summed_up(weir_bin, run_weir, data_dir):
    """A checkpoint carries its spec (a meta value of 2 KB, 50 lines): the
    listing printed all of it for every checkpoint. A value over 400 bytes
    shows its first line and its size; --json has it whole."""
    from httputil import FRAUD_SPEC, Server
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        assert srv.stop() == 0
    rc, out, err = run_weir(["checkpoint", data_dir], check=True)
    spec_line = [l for l in out.splitlines() if l.startswith("  meta spec=")]
    assert len(spec_line) == 1, out
    text = FRAUD_SPEC.read_text()
    assert spec_line[0] == "  meta spec=%s ... (%d bytes; --json has them)" % (text.splitlines()[0], len(text))
    assert len(out.splitlines()) < 20, out
    rc, out, err = run_weir(["checkpoint", data_dir, "--json"], check=True)
    assert json.loads(out)["checkpoints"][0]["meta"]["spec"] == text


def test_a_deleted_checkpoints_directory_is_named_and_ids_go_on(weir_bin, data_dir):
    """DATA/checkpoints deleted under a running weir: a checkpoint said only
    'cannot create .../00000000000000000001.tmp: No such file or directory',
    and once the directory was back, ids started again at 1 (the SRE's find:
    weir_checkpoint_last_id went backwards)."""
    import shutil
    from httputil import FRAUD_SPEC, Server
    with Server(weir_bin, FRAUD_SPEC, data_dir) as srv:
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200, body
        first = body["checkpoint"]
        shutil.rmtree(data_dir / "checkpoints")
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 500 and "checkpoints directory" in body["error"]["message"] \
            and "is gone" in body["error"]["message"], body
        (data_dir / "checkpoints").mkdir()
        status, body = srv.json("POST", "/v1/admin/checkpoint")
        assert status == 200 and body["checkpoint"] == first + 1, body
        srv.kill()
