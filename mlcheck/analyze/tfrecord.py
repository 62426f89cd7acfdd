"""TFRecord framing, the container of TensorBoard event files, read and written with numpy.

Each record is: length (uint64, little-endian), masked CRC-32C of the length (uint32), the data,
masked CRC-32C of the data (uint32). Readers here check the length's CRC (cheap: 8 bytes, done
for many records at once) but not the data's: a record whose data fails to parse is corruption
anyway, and checking every byte is what makes other readers slow.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable

import numpy as np

HEADER = 12  # length + its crc
FOOTER = 4  # data crc
_U64 = struct.Struct("<Q")


def _crc_table() -> np.ndarray:
    poly = 0x82F63B78  # CRC-32C (Castagnoli), reflected
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table[i] = crc
    return table


_TABLE = _crc_table()


@functools.cache
def _table16() -> np.ndarray:
    """The CRC state after two bytes of zeros from each 16-bit state: one lookup per two bytes
    (1.5x faster over rows of ~50 bytes than a lookup per byte)."""
    i = np.arange(1 << 16, dtype=np.uint32)
    s = _TABLE[i & 0xFF] ^ (i >> 8)
    return _TABLE[s & 0xFF] ^ (s >> 8)


def crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-32C of each row of a (n, length) uint8 array, all rows at once."""
    crc = np.full(len(rows), 0xFFFFFFFF, dtype=np.uint32)
    pairs = rows.shape[1] // 2
    if pairs:
        table, sixteen = _table16(), np.uint32(16)
        words = np.ascontiguousarray(rows[:, : 2 * pairs]).view("<u2").astype(np.uint32)
        for j in range(pairs):
            crc = table[(crc ^ words[:, j]) & 0xFFFF] ^ (crc >> sixteen)
    if rows.shape[1] % 2:
        crc = _TABLE[(crc ^ rows[:, -1]) & 0xFF] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(0xFFFFFFFF)


def mask(crc: np.ndarray) -> np.ndarray:
    """TFRecord's masking of a CRC (rotate right by 15, add a constant), modulo 2**32."""
    crc = crc.astype(np.uint64)
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return ((rotated + 0xA282EAD8) & 0xFFFFFFFF).astype(np.uint32)


def encode_records(payloads: Iterable[bytes]) -> bytes:
    """Frames payloads as TFRecords with valid checksums (fast for many records: rows of equal
    length are checksummed together). Used to write test and benchmark logs."""
    payloads = list(payloads)
    n = len(payloads)
    lengths = np.array([len(p) for p in payloads], dtype=np.uint64)
    headers = lengths.astype("<u8").view(np.uint8).reshape(n, 8)
    header_crc = mask(crc32c_rows(headers))
    data_crc = np.zeros(n, dtype=np.uint32)
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        rows = np.frombuffer(b"".join(payloads[i] for i in idx), dtype=np.uint8).reshape(len(idx), int(length))
        data_crc[idx] = mask(crc32c_rows(rows))
    out = bytearray()
    hc = header_crc.astype("<u4").tobytes()
    dc = data_crc.astype("<u4").tobytes()
    hb = headers.tobytes()
    for i, p in enumerate(payloads):
        out += hb[8 * i : 8 * i + 8]
        out += hc[4 * i : 4 * i + 4]
        out += p
        out += dc[4 * i : 4 * i + 4]
    return bytes(out)


class Framing:
    """Where the complete records of a buffer are.

    Attributes:
        starts: offset of each record's data in the buffer.
        lengths: length of each record's data.
        end: offset just past the last complete record (the rest is a partial record).
        bad_at: offset of a record whose length fails its checksum (corruption), else None.
    """

    __slots__ = ("starts", "lengths", "end", "bad_at")

    def __init__(self, starts: np.ndarray, lengths: np.ndarray, end: int, bad_at: int | None) -> None:
        self.starts = starts
        self.lengths = lengths
        self.end = end
        self.bad_at = bad_at


def frame(buf: bytes, base: int = 0) -> Framing:
    """Splits `buf` into records. Stops at a partial record at the end (`end` < len(buf)) or at
    the first record whose length fails its checksum (`bad_at`, an offset from `base`).

    Logs repeat a few record lengths in a fixed pattern (one tag after another, step after step),
    so after reading a handful of records one by one, the rest of a repeating stretch is found
    and checked with one vectorised comparison.
    """
    n = len(buf)
    starts: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    pos = 0
    probe_s: list[int] = []
    probe_l: list[int] = []
    unpack = _U64.unpack_from
    while pos + HEADER <= n:
        length = unpack(buf, pos)[0]
        end = pos + HEADER + length + FOOTER
        if end > n:
            break
        probe_s.append(pos + HEADER)
        probe_l.append(length)
        pos = end
        if len(probe_l) < 16:
            continue
        # look for a period p in the last 16 lengths and extend it vectorised
        stretch = _repeat(buf, pos, probe_l)
        if stretch is not None:
            s, ls, pos = stretch
            starts.append(np.asarray(probe_s, dtype=np.int64))
            lengths.append(np.asarray(probe_l, dtype=np.int64))
            starts.append(s)
            lengths.append(ls)
        else:
            starts.append(np.asarray(probe_s, dtype=np.int64))
            lengths.append(np.asarray(probe_l, dtype=np.int64))
        probe_s, probe_l = [], []
    if probe_l:
        starts.append(np.asarray(probe_s, dtype=np.int64))
        lengths.append(np.asarray(probe_l, dtype=np.int64))
    st = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    ln = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    bad_at = None
    if len(st):
        bad = _bad_headers(buf, st, ln)
        if len(bad):
            first = int(bad[0])
            bad_at = base + int(st[first]) - HEADER
            st, ln = st[:first], ln[:first]
            pos = int(st[-1] + ln[-1] + FOOTER) if first else 0
    if bad_at is None and pos + HEADER <= n:
        # a record that runs past the end: partial (live run) if its length is genuine
        header = np.frombuffer(buf, dtype=np.uint8, count=8, offset=pos)[None, :]
        stored = struct.unpack_from("<I", buf, pos + 8)[0]
        if int(mask(crc32c_rows(header))[0]) != stored:
            bad_at = base + pos
    return Framing(st, ln, pos, bad_at)


def record_length(buf: bytes) -> int | None:
    """The data length claimed by the record header at the start of `buf` (None when `buf` is
    shorter than a header). Its checksum is not checked here: `frame` does that."""
    if len(buf) < HEADER:
        return None
    return _U64.unpack_from(buf, 0)[0]


def _repeat(buf: bytes, pos: int, probe: list[int]) -> tuple[np.ndarray, np.ndarray, int] | None:
    """If the last lengths repeat with a period p <= 8, finds how many more periods follow at
    `pos` with the same lengths; returns (starts, lengths, new pos) of those records."""
    tail = probe[-16:]
    for p in range(1, 9):
        if all(tail[i] == tail[i + p] for i in range(16 - p)):
            break
    else:
        return None
    pattern = tail[-p:]
    stride = sum(pattern) + p * (HEADER + FOOTER)
    count = (len(buf) - pos) // stride
    if count < 2:
        return None
    ok = np.ones(count, dtype=bool)
    offset = 0
    for length in pattern:
        col = np.ndarray((count,), dtype="<u8", buffer=buf, offset=pos + offset, strides=(stride,))
        ok &= col == length
        offset += HEADER + length + FOOTER
    m = count if ok.all() else int(np.argmin(ok))
    if m == 0:
        return None
    rel = np.cumsum([0] + [HEADER + L + FOOTER for L in pattern[:-1]]) + HEADER
    starts = (pos + np.arange(m, dtype=np.int64)[:, None] * stride + rel[None, :]).reshape(-1)
    lengths = np.tile(np.asarray(pattern, dtype=np.int64), m)
    return starts, lengths, pos + m * stride


def _bad_headers(buf: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices of records whose length does not match its checksum. A length's checksum
    depends on the length alone, and a log has few distinct lengths: each is computed once."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    at = starts - 4
    stored = np.zeros(len(at), dtype=np.uint32)
    for j in range(4):
        stored |= np.take(arr, at + j).astype(np.uint32) << np.uint32(8 * j)
    if lengths.max() < 1 << 16:  # the usual case: a lookup table by length, no sort
        distinct = np.flatnonzero(np.bincount(lengths))
        table = np.zeros(int(lengths.max()) + 1, dtype=np.uint32)
        table[distinct] = mask(crc32c_rows(distinct.astype("<u8").view(np.uint8).reshape(-1, 8)))
        expected = table[lengths]
    else:
        distinct, inverse = np.unique(lengths, return_inverse=True)
        expected = mask(crc32c_rows(distinct.astype("<u8").view(np.uint8).reshape(-1, 8)))[inverse]
    return np.flatnonzero(expected != stored)
