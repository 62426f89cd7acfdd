"""Exact-duplicate detection between training and validation samples in bounded memory.

Each sample becomes an 8-byte fingerprint (`fingerprints`), kept in a sorted uint64 set
(`FingerprintSet`); `SplitOverlap` keeps one set per split and counts the validation
fingerprints that also occur in training. When a split holds more than `capacity`
fingerprints, both splits keep only the fingerprints whose low `level` bits are zero (hash-space
sampling): a sample is kept or dropped in both splits alike, so the overlap share estimated from
what is kept stays unbiased, and memory stays at about 8 bytes per kept sample.
"""

from __future__ import annotations

import functools

import numpy as np

from mlcheck.sorted_keys import find_sorted

_SHIFT32 = np.uint64(32)
_HIGH32 = np.uint64(0xFFFFFFFF00000000)
# Rows are hashed in blocks of at most this many 32-bit words, bounding the uint64 temporary.
_BLOCK_WORDS = 1 << 21
#: Rows of at most this many 32-bit words are widened to uint64 before the product, in blocks of
#: `_WIDEN_BLOCK_WORDS` (256 KiB of uint64, cache-sized): einsum's product of two uint64 operands
#: then runs without the casting buffer it needs for uint32 words times uint64 keys, whose cost
#: per row is the larger the shorter the row. The same integers modulo 2**64 either way (no
#: fingerprint changes). Measured per call (docs/benchmarks.md section 2b, rec38; min of repeated
#: timings): 1,437 rows of 64 words 108 -> 81 us, 384 probes of 32 words 25 -> 16 us, 2,000 rows
#: of 128 words 223 -> 202 us; at 256 words and wider the widened copy costs what it saves or more
#: (784 words: 212 -> 233 us), so wider rows keep the mixed-dtype product.
_WIDEN_WORDS = 128
_WIDEN_BLOCK_WORDS = 1 << 15


class _Keys:
    """Random 64-bit keys of the multilinear hash, grown on demand from a fixed seed, so the
    same sample gets the same fingerprint in every batch, process and run."""

    def __init__(self, seed: int = 0x6D6C636B) -> None:
        self._seed = seed
        self._keys = np.empty((0, 2), dtype=np.uint64)

    def get(self, n: int) -> np.ndarray:
        if len(self._keys) < n:
            size = max(n, 2 * len(self._keys), 256)
            rng = np.random.default_rng(self._seed)
            self._keys = rng.integers(0, np.iinfo(np.uint64).max, size=(size, 2), dtype=np.uint64, endpoint=True)
        return self._keys[:n]


_KEYS = _Keys()


def _width(x: np.ndarray) -> int:
    """The values a sample of `x` holds (the row length of `x` as 2-D rows), also for no samples,
    where `reshape(0, -1)` cannot tell it."""
    return int(np.prod(x.shape[1:], dtype=np.int64))


def canonical_rows(samples: np.ndarray) -> np.ndarray:
    """The samples as a C-contiguous 2-D array (one row per sample) in a canonical dtype:
    floating point becomes float32, so a float64 validation pipeline still matches a float32
    training one; bool becomes uint8; other dtypes are kept."""
    x = np.asarray(samples)
    x = x.reshape(len(x), _width(x)) if x.ndim != 2 else x
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    elif x.dtype.kind == "b":
        x = x.view(np.uint8)
    return np.ascontiguousarray(x)


#: Default first stage of `train-val-overlap`: samples holding more values than `PROBE_ABOVE`
#: (larger than a 32x32 single-channel image; MNIST's 784 and tabular rows are hashed whole)
#: are fingerprinted from `PROBE_VALUES` seeded positions. 256 gathered values cost about 1 us
#: per sample on one core, whatever the sample's size.
PROBE_ABOVE = 1024
PROBE_VALUES = 256

_PROBE_SEED = 0x70726F62
#: The top bit of a fingerprint says how it was made: set for a probe, clear for every value.
PROBE_BIT = np.uint64(1 << 63)
_NOT_PROBE = np.uint64((1 << 63) - 1)


#: Probe positions come in runs of this many consecutive values (64 bytes of float32, one
#: cache line): a gather from a large batch costs a cache miss per run, not per value.
PROBE_RUN = 16


@functools.lru_cache(maxsize=32)
def probe_positions(values: int, count: int) -> np.ndarray:
    """`count` distinct positions among a row's `values`, drawn from a fixed seed and the row
    length alone: the same positions for every row of that length, in every batch and run.
    They come in runs of `PROBE_RUN` consecutive values at seeded places (fewer cache misses
    than scattered values; the second stage, not the probe, tells near-copies apart). Sorted
    and read-only (cached)."""
    rng = np.random.default_rng((_PROBE_SEED, values))
    run = PROBE_RUN if values >= 4 * count else 1
    runs = -(-count // run)
    starts = np.sort(rng.choice(values // run, size=runs, replace=False)) * run
    positions = (starts[:, None] + np.arange(run)).ravel()[:count]
    positions.flags.writeable = False
    return positions


@functools.lru_cache(maxsize=32)
def _probe_runs(values: int, count: int) -> np.ndarray | None:
    """Where `probe_positions(values, count)` are whole runs of `PROBE_RUN` values, each
    starting at a multiple of it, in a row whose length is a multiple of it: the runs' numbers
    in the row read as (values // PROBE_RUN, PROBE_RUN) blocks, so a gather copies 64 bytes per
    run instead of one value at a time (the same values in the same order; about half the CPU
    right after a training step has streamed the batch through the caches: `bench_hashing.py
    --first-epoch --split`). Else None: the gather goes value by value."""
    if values % PROBE_RUN or count % PROBE_RUN:
        return None
    runs = probe_positions(values, count).reshape(-1, PROBE_RUN)
    starts = runs[:, 0]
    if (starts % PROBE_RUN).any() or (runs != starts[:, None] + np.arange(PROBE_RUN)).any():
        return None  # scattered positions (rows shorter than 4 probes)
    numbers = starts // PROBE_RUN
    numbers.flags.writeable = False
    return numbers


def probed(width: int, probe_values: int | None, probe_above: int = 0) -> bool:
    """Whether rows of `width` values are fingerprinted from a probe, not from every value."""
    return probe_values is not None and width > max(probe_values, probe_above)


def probe_rows(samples: np.ndarray, probe_values: int | None, probe_above: int = 0) -> tuple[np.ndarray, int]:
    """(rows to hash, the full row length in values): the samples as 2-D rows, narrowed to
    `probe_positions` when a row holds more than `probe_values` and `probe_above` values (else
    all of them)."""
    x = np.asarray(samples)
    flat = x.reshape(len(x), _width(x))
    width = flat.shape[1]
    if not probed(width, probe_values, probe_above):
        return flat, width
    runs = _probe_runs(width, probe_values)
    if runs is not None:  # splitting the row axis never copies
        blocks = np.take(flat.reshape(len(flat), width // PROBE_RUN, PROBE_RUN), runs, axis=1)
        return blocks.reshape(len(flat), probe_values), width
    return np.take(flat, probe_positions(width, probe_values), axis=1), width


def fingerprints(samples: np.ndarray, probe_values: int | None = None, probe_above: int = 0) -> np.ndarray:
    """One uint64 fingerprint per sample (row of `canonical_rows(samples)`).

    `probe_values`: rows longer than this (and than `probe_above`) are fingerprinted from that
    many seeded positions (`probe_positions`) and their full length, not from every value: the
    cost per sample no longer grows with its size. An exact duplicate still gets the same
    fingerprint (same positions, same values); two rows that differ in a share d of their
    values match with probability up to (1 - d) ** probe_values + 2**-63, so near-copies (a
    watermark, a few edited pixels) match too: `train-val-overlap` confirms every such match
    with the fingerprint of every value (`SecondStage`). A probe fingerprint has its top bit
    set (`PROBE_BIT`), a fingerprint of every value has it clear, so the two never meet.
    Default None: every value is hashed.

    The hash is the strongly universal multilinear family over 32-bit words (Lemire and Kaser,
    "Strongly universal string hashing is fast", 2014): h = (k0 + sum k_i * w_i) mod 2**64, whose
    upper 32 bits collide for two different rows with probability 2**-32; two independent keys
    give 64 bits, one of them spent on `PROBE_BIT`, so a collision between two distinct rows has
    probability 2**-63 whatever the data (the keys are drawn independently of it). The row
    length in bytes is hashed as a last word, so rows of different widths never collide by
    zero-padding. Vectorised: a dot product per row block, about 10M tabular rows/s.
    """
    rows, values = probe_rows(samples, probe_values, probe_above)
    return _hash_rows(rows, values, probe=rows.shape[1] != values)


def probe_fingerprints(probes: np.ndarray, values: int) -> np.ndarray:
    """`fingerprints(samples, probe_values)` of samples already narrowed to their probe
    (`probe_rows`), `values` the length of a whole sample."""
    return _hash_rows(probes, values, probe=True)


@functools.lru_cache(maxsize=8)  # a run hashes rows of a few shapes; a wide one holds 16 B/word
def _row_keys(width: int, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys of a row of `width` words laid out (2, width), so the product reads both operands
    contiguously; the constant term: the length word `nbytes` times its key, plus k0), cached
    per row shape: a batch pays one product and a few whole-array operations, no key set-up."""
    keys = _KEYS.get(width + 2)
    with np.errstate(over="ignore"):
        tail = keys[width] * np.uint64(nbytes) + keys[width + 1]
    rows = np.ascontiguousarray(keys[:width].T)
    rows.flags.writeable = tail.flags.writeable = False
    return rows, tail


def _hash_rows(rows: np.ndarray, values: int, probe: bool) -> np.ndarray:
    rows = canonical_rows(rows)
    n = len(rows)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    # the length hashed is the full row's: a probe and a row of the probe's length differ
    nbytes = rows.dtype.itemsize * values
    if rows.dtype.itemsize % 4 == 0:  # float32, int32, int64...: the bytes are whole words already
        words = rows.view(np.uint32)
    else:  # bytes: zero-padded to whole 32-bit words
        raw = rows.view(np.uint8)
        pad = (-raw.shape[1]) % 4
        if pad:
            raw = np.concatenate([raw, np.zeros((n, pad), dtype=np.uint8)], axis=1)
        words = raw.view(np.uint32)
    keys, tail = _row_keys(words.shape[1], nbytes)
    widen = words.shape[1] <= _WIDEN_WORDS
    block = max(1, (_WIDEN_BLOCK_WORDS if widen else _BLOCK_WORDS) // max(words.shape[1], 1))
    parts = []
    for start in range(0, n, block):
        # (rows, 2), wrapping modulo 2**64; wide rows' words are widened to uint64 as einsum
        # reads them (no widened copy of the block: a third less time than astype and a matrix
        # product), narrow rows' in a cache-sized copy first (`_WIDEN_WORDS`)
        part = words[start : start + block]
        h = np.einsum("ij,kj->ik", part.astype(np.uint64) if widen else part, keys)
        h += tail
        parts.append((h[:, 0] & _HIGH32) | (h[:, 1] >> _SHIFT32))
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out | PROBE_BIT if probe else out & _NOT_PROBE


def constant_rows(samples: np.ndarray) -> np.ndarray:
    """Boolean mask of samples whose values are all equal (all-zero padding, blank images)."""
    x = np.asarray(samples)
    flat = x.reshape(len(x), _width(x))
    if flat.shape[1] == 0:
        return np.ones(len(x), dtype=bool)
    return (flat == flat[:, :1]).all(axis=1)  # NaN != NaN: rows with NaN are not constant


def any_constant_row(rows: np.ndarray) -> bool:
    """`constant_rows(rows).any()` for 2-D rows, cheaper on the usual batch where no row is
    constant: a row whose first and middle values differ is not constant, so the full test runs
    only when some row has those two equal (NaN differs from itself, as in `constant_rows`).
    The pairs are compared as Python numbers: one view and one conversion cost less than numpy's
    comparison and reduction on a few dozen rows, the more so right after a training step has
    evicted numpy's own code and data from the caches (bench_hashing.py --first-epoch --split)."""
    if rows.ndim != 2 or rows.shape[1] < 2:
        return bool(constant_rows(rows).any())
    if not any(pair[0] == pair[1] for pair in rows[:, :: rows.shape[1] // 2].tolist()):
        return False
    return bool(constant_rows(rows).any())


class FingerprintSet:
    """A set of uint64 fingerprints: a large sorted array plus a small sorted delta merged into
    it in place (amortised O(log n) per insert, about 8 bytes per element, ~10 at peak)."""

    def __init__(self) -> None:
        self._main = np.empty(0, dtype=np.uint64)
        self._delta = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._main) + len(self._delta)

    @property
    def nbytes(self) -> int:
        return self._main.nbytes + self._delta.nbytes

    def values(self) -> np.ndarray:
        return np.concatenate([self._main, self._delta])

    def contains(self, queries: np.ndarray) -> np.ndarray:
        return find_sorted(self._main, queries)[1] | find_sorted(self._delta, queries)[1]

    def add_unique(self, fresh: np.ndarray) -> None:
        """Adds sorted, distinct fingerprints that are not in the set yet."""
        if len(fresh) == 0:
            return
        self._delta = np.insert(self._delta, np.searchsorted(self._delta, fresh), fresh)
        if len(self._delta) > max(4096, len(self._main) // 8):
            n = len(self._main)
            main = self._main if self._main.flags.owndata else self._main.copy()
            main.resize(n + len(self._delta), refcheck=False)  # realloc: no second full copy
            main[n:] = self._delta
            main.sort()
            self._main, self._delta = main, np.empty(0, dtype=np.uint64)

    def state_dict(self) -> bytearray:
        """The fingerprints, sorted, as little-endian bytes (8 per fingerprint)."""
        return bytearray(np.sort(self.values()).astype("<u8"))

    def load_state_dict(self, state: bytearray) -> None:
        self._main = np.frombuffer(state, dtype="<u8").astype(np.uint64)
        self._delta = np.empty(0, dtype=np.uint64)

    def keep_where(self, mask_fn) -> None:
        """Keeps only the fingerprints for which `mask_fn(values)` is True."""
        self._main = np.ascontiguousarray(self._main[mask_fn(self._main)])
        self._delta = self._delta[mask_fn(self._delta)]


class SplitOverlap:
    """Fingerprints of the training and validation samples seen so far, and how many distinct
    validation samples also occur in training.

    Args:
        capacity: the most fingerprints kept per split before hash-space sampling halves what is
            kept (default 2**21: 16 MiB per split).
    """

    def __init__(self, capacity: int = 1 << 21) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.level = 0  # a fingerprint is kept when its low `level` bits are all zero
        self.sets = {"train": FingerprintSet(), "val": FingerprintSet()}
        self.matched = 0  # kept distinct validation fingerprints also in training
        self.matched_probes = 0  # ... of them probe fingerprints (`PROBE_BIT`): to be confirmed

    @property
    def scale(self) -> int:
        """How many samples one kept fingerprint stands for."""
        return 1 << self.level

    def kept(self, values: np.ndarray) -> np.ndarray:
        """Which fingerprints hash-space sampling keeps at the current level."""
        if self.level == 0:
            return np.ones(len(values), dtype=bool)
        return (values & np.uint64((1 << self.level) - 1)) == 0

    def add(self, split: str, prints: np.ndarray) -> tuple[int, int]:
        """Adds one batch of fingerprints to `split` ("train" or "val").

        Returns (kept, repeated): how many of the batch's samples survived sampling, and how
        many of those were already in the split (or earlier in the same batch).
        """
        own, other = self.sets[split], self.sets["val" if split == "train" else "train"]
        prints = prints[self.kept(prints)]
        if len(prints) == 0:
            return 0, 0
        distinct, counts = np.unique(prints, return_counts=True)
        present = own.contains(distinct)
        # every row but the first sighting of a fresh fingerprint (was: the copies within the
        # batch plus every row of a known one, so a known print seen k times counted 2k - 1)
        repeated = len(prints) - int(np.count_nonzero(~present))
        fresh = distinct[~present]
        own.add_unique(fresh)
        hits = fresh[other.contains(fresh)]
        self.matched += len(hits)
        self.matched_probes += int(np.count_nonzero(hits & PROBE_BIT))
        while len(own) > self.capacity:
            self._raise_level()
        return len(prints), repeated

    def _raise_level(self) -> None:
        self.level += 1
        for s in self.sets.values():
            s.keep_where(self.kept)
        val = self.sets["val"].values()
        hits = val[self.sets["train"].contains(val)]
        self.matched = len(hits)
        self.matched_probes = int(np.count_nonzero(hits & PROBE_BIT))

    def state_dict(self) -> dict:
        """Plain data for a checkpoint: numbers and bytes, no numpy (torch's `weights_only`
        loader refuses numpy)."""
        return {
            "level": self.level,
            "matched": self.matched,
            "matched_probes": self.matched_probes,
            "sets": {split: s.state_dict() for split, s in self.sets.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.level = state["level"]
        self.matched = state["matched"]
        self.matched_probes = state.get("matched_probes", 0)
        for split, values in state["sets"].items():
            self.sets[split].load_state_dict(values)

    def distinct(self, split: str) -> int:
        """Distinct kept fingerprints of a split (times `scale` estimates the true count)."""
        return len(self.sets[split])

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.sets.values())


class SecondStage:
    """The second stage for samples fingerprinted from a probe: the fingerprint of every value
    (`fingerprints(rows)`) of the samples whose probe fingerprint occurs in both splits,
    compared probe by probe.

    A probe fingerprint seen in both splits makes a candidate; each sample with a candidate's
    probe that passes by has its full fingerprint recorded under that probe and its split. A
    validation sample is confirmed in training when its full fingerprint is among the training
    ones recorded under the same probe; a candidate whose two sides hold only different full
    fingerprints is a near-duplicate (equal on the probe, different elsewhere). The sample seen
    first has usually gone by when the second makes the pair a candidate: its full fingerprint
    comes when it passes again (`awaiting` says how many candidates wait for a split).

    Args:
        capacity: the most candidates held (default 2**16, a few MiB); candidates beyond it are
            counted in `overflow` and not compared.
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self._prints: dict[int, tuple[set[int], set[int]]] = {}  # probe -> (train, val) full prints
        self._missing = {"train": 0, "val": 0}  # candidates with no full fingerprint of that split
        self.confirmed = 0  # distinct (probe, full fingerprint) of validation also in training
        self.overflow = 0
        self._counts: dict[str, int] | None = None  # `counts()` until the next change

    def __len__(self) -> int:
        return len(self._prints)

    def known(self, probes: np.ndarray) -> np.ndarray:
        """Which of `probes` are candidates already."""
        if not self._prints:
            return np.zeros(len(probes), dtype=bool)
        return np.fromiter((p in self._prints for p in probes.tolist()), dtype=bool, count=len(probes))

    def add(self, split: str, probes: np.ndarray, prints: np.ndarray) -> None:
        """Records the full fingerprints `prints` of samples of `split` under their `probes`,
        making new candidates of probes not held yet."""
        side = 0 if split == "train" else 1
        for probe, full in zip(probes.tolist(), prints.tolist()):
            entry = self._prints.get(probe)
            if entry is None:
                if len(self._prints) >= self.capacity:
                    self.overflow += 1
                    continue
                entry = self._prints[probe] = (set(), set())
                self._missing["train"] += 1
                self._missing["val"] += 1
            own = entry[side]
            if full in own:
                continue
            if not own:
                self._missing[split] -= 1
            own.add(full)
            self._counts = None
            if full in entry[1 - side]:  # counted once, when the second side arrives
                self.confirmed += 1

    def expect(self, probes: np.ndarray) -> None:
        """Makes candidates of `probes` whose samples are no longer in hand: their full
        fingerprints come from both splits when the samples pass again."""
        for probe in probes.tolist():
            if probe in self._prints:
                continue
            if len(self._prints) >= self.capacity:
                self.overflow += 1
                continue
            self._prints[probe] = (set(), set())
            self._missing["train"] += 1
            self._missing["val"] += 1
            self._counts = None

    def awaiting(self, split: str) -> int:
        """Candidates waiting for a full fingerprint from `split`."""
        return self._missing[split]

    def counts(self) -> dict[str, int]:
        """Validation candidates: confirmed, near-duplicates (both sides seen, no full match),
        and unconfirmed (a side not seen again: a probe matched in a block of probes has
        neither)."""
        if self._counts is not None:
            return self._counts
        near = unconfirmed = 0
        for train, val in self._prints.values():
            if not (val or train) or (val and not train):
                unconfirmed += 1
            elif val and train and not (val & train):
                near += 1
        self._counts = {"confirmed": self.confirmed, "near_duplicates": near, "unconfirmed": unconfirmed}
        return self._counts

    def keep_where(self, mask_fn) -> None:
        """Keeps only the candidates whose probe `mask_fn(probes)` keeps (hash-space sampling)."""
        if not self._prints:
            return
        probes = np.fromiter(self._prints, dtype=np.uint64, count=len(self._prints))
        entries = [(p, self._prints[p]) for p in probes[mask_fn(probes)].tolist()]
        self._load(entries)

    def _load(self, entries) -> None:
        self._counts = None
        self._prints = {p: (set(t), set(v)) for p, (t, v) in entries}
        self._missing = {
            "train": sum(not t for t, _ in self._prints.values()),
            "val": sum(not v for _, v in self._prints.values()),
        }
        self.confirmed = sum(len(t & v) for t, v in self._prints.values())

    def state_dict(self) -> dict:
        """Plain data for a checkpoint: numbers and lists."""
        return {
            "overflow": self.overflow,
            "candidates": [[p, sorted(t), sorted(v)] for p, (t, v) in self._prints.items()],
        }

    def load_state_dict(self, state: dict) -> None:
        self.overflow = state["overflow"]
        self._load((p, (t, v)) for p, t, v in state["candidates"])
