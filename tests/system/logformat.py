"""A small, independent reader of weir's log files and CLI output, for tests.

It follows the format documented in src/log/log.h (segment = record batches
back to back; index = 16-byte entries ending with an END entry) so that tests
can locate batch boundaries and index entries without trusting weir's code.
It also parses the lines `weir log read` prints and the table of `weir log
stat`, keeping each value's bytes exactly as printed.
"""
import os
import re
import struct
from dataclasses import dataclass, field

BATCH_HEADER = 40
INDEX_ENTRY = 16


@dataclass
class Record:
    type: int
    offset: int
    ts: int
    key: bytes
    value: bytes


@dataclass
class Batch:
    start: int  # byte offset of the batch in its segment file
    end: int  # byte offset just past it
    base: int
    count: int
    first_ts: int
    max_ts: int
    records: list = field(default_factory=list)


def _varint(buf, pos):
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _zigzag(v):
    return (v >> 1) ^ -(v & 1)


def parse_batches(data):
    """Parses the batches of a segment's bytes. Stops (without raising) at
    the first batch that is incomplete; the caller works on valid files."""
    out, pos = [], 0
    while pos + BATCH_HEADER <= len(data):
        base, length, _crc = struct.unpack_from("<QII", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        count, first_ts, max_ts = struct.unpack_from("<Iqq", data, pos + 20)
        b = Batch(pos, end, base, count, first_ts, max_ts)
        q = pos + BATCH_HEADER
        for _ in range(count):
            rlen, q = _varint(data, q)
            rend = q + rlen
            rtype = data[q]
            delta, q = _varint(data, q + 1)
            tsd, q = _varint(data, q)
            klen, q = _varint(data, q)
            key = bytes(data[q:q + klen])
            q += klen
            vlen, q = _varint(data, q)
            value = bytes(data[q:q + vlen])
            b.records.append(Record(rtype, base + delta, first_ts + _zigzag(tsd), key, value))
            q = rend
        out.append(b)
        pos = end
    return out


def read_batches(path):
    with open(path, "rb") as f:
        return parse_batches(f.read())


def parse_index(data):
    """Index entries as (relative offset, file position, max ts before)."""
    return [struct.unpack_from("<IIq", data, i) for i in range(0, len(data) - len(data) % 16, 16)]


def partition_dir(datadir, topic, partition):
    return os.path.join(str(datadir), "log", topic, str(partition))


def segment_files(datadir, topic, partition):
    """Paths of a partition's .seg files, oldest first (the last is active)."""
    d = partition_dir(datadir, topic, partition)
    names = sorted(n for n in os.listdir(d) if re.fullmatch(r"\d{20}\.seg", n))
    return [os.path.join(d, n) for n in names]


def segment_base(path):
    return int(os.path.basename(path)[:20])


_READ_LINE = re.compile(
    rb'\{"partition":(\d+),"offset":(\d+),"ts":(-?\d+),(?:"type":"tick",)?'
    rb'"key":(null|"(?:[^"\\]|\\.)*"),"value":(.*)\}\n?'
)


def parse_read_line(line):
    """(partition, offset, ts, key, value) of a `weir log read` line; key is
    the JSON text printed (b'null' or a quoted string), value the exact
    bytes printed for the value. Raises ValueError if the line has another
    shape."""
    m = _READ_LINE.fullmatch(line)
    if not m:
        raise ValueError("unexpected `weir log read` line: %r" % line[:300])
    return int(m[1]), int(m[2]), int(m[3]), m[4], m[5]


def parse_stat(text):
    """Rows of `weir log stat` as dicts; '-' becomes None."""
    rows = []
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return rows
    header = lines[0].split()
    assert header == ["topic", "part", "segments", "first_offset", "last_offset", "bytes",
                      "first_ts", "last_ts"], "unexpected stat header: %r" % lines[0]
    for l in lines[1:]:
        cells = l.split()
        assert len(cells) == len(header), "unexpected stat row: %r" % l
        row = {"topic": cells[0]}
        for name, cell in zip(header[1:], cells[1:]):
            row[name] = None if cell == "-" else int(cell)
        rows.append(row)
    return rows
