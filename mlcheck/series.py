"""`Series`: a bounded, multi-resolution summary of one scalar curve.

A training run can log millions of steps; mlcheck's memory must stay flat. A `Series` keeps at
most `capacity` buckets. Each bucket summarises `width` consecutive finite values (count, mean,
variance, min, max, first and last x). When the buckets are full, neighbours are merged pairwise
and the width doubles, so the whole curve is always visible at a resolution of about
1/capacity of its length, and recent buckets are as fine as the oldest.
Non-finite values are counted, never averaged in.
"""

from __future__ import annotations

import math
from itertools import chain

import numpy as np

_FIELDS = ("x0", "x1", "n", "mean", "m2", "min", "max", "last")


class Series:
    """Bounded summary of a scalar curve. See the module docstring.

    Args:
        capacity: most buckets kept (even, >= 4). Default 256: enough resolution for trend and
            noise estimates, 16 KB of memory.
        width: values per bucket to start with. Default 1: short curves are kept exactly.
    """

    def __init__(self, capacity: int = 256, width: int = 1) -> None:
        if capacity < 4 or capacity % 2:
            raise ValueError(f"capacity must be an even number >= 4, got {capacity}")
        self.capacity = capacity
        self.width = max(1, int(width))
        self._a = {name: np.zeros(capacity, dtype=np.float64) for name in _FIELDS}
        self.size = 0  # closed buckets
        # closed buckets not yet in `_a` (the last len(_staged) of `size`), one tuple each:
        # closing a bucket is a list append, and the rows reach the arrays in one go when they
        # are read (`_store`). Eight numpy scalar stores per closed bucket were most of a live
        # step's cost in `Monitor.log_step`, where every step closes a bucket of width 1. A
        # tuple of _FIELDS, or (x, value) while `width` is 1: a bucket of one value holds
        # nothing else (x0 = x1, n = 1, mean = min = max = last = value, m2 = 0), and the store
        # then converts two numbers a bucket instead of eight. Every staged row has the current
        # width: the width changes only in `_merge_pairs`, which stores them first.
        self._staged: list[tuple] = []
        # the open bucket
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._x0 = 0.0
        self._last = math.nan
        self.total = 0  # values seen, finite or not
        self.nonfinite = 0
        self.first_nonfinite_x: float | None = None
        # the first finite value, kept exactly: a training loss's value at initialisation, before
        # any update (merged buckets forget it, and the first steps may already have exploded)
        self.first_value: float | None = None
        # a finite value other than the first was added: False for a curve that never moved (a
        # constant learning rate), which a check can rule on without reading the buckets
        self.varied = False
        # the smallest finite value added (inf before any): the least of the buckets' `min`,
        # which merges keep, so a check can rule out a value below some level in one read
        self.lowest = math.inf
        self.last_x: float | None = None
        self.last_value: float = math.nan
        self._cache: tuple | None = None  # (version key, buckets()) of the last read

    # -- adding values -------------------------------------------------------------------------

    def add(self, x: float, value: float) -> bool:
        """Adds one value; returns True when this closed a bucket or the value is non-finite."""
        self.total += 1
        self.last_x = x
        self.last_value = value
        if not math.isfinite(value):
            self.nonfinite += 1
            if self.first_nonfinite_x is None:
                self.first_nonfinite_x = x
            return True
        if self.first_value is None:
            self.first_value = value
        elif value != self.first_value:
            self.varied = True
        if value < self.lowest:
            self.lowest = value
        n = self._n + 1
        if n == 1:
            self._x0 = x
            self._min = self._max = value
            self._mean = value
            self._m2 = 0.0
        else:
            delta = value - self._mean
            self._mean += delta / n
            self._m2 += delta * (value - self._mean)
            if value < self._min:
                self._min = value
            if value > self._max:
                self._max = value
        self._n = n
        self._last = value
        if n >= self.width:
            self._close(x)
            return True
        return False

    def extend(self, xs: np.ndarray, values: np.ndarray) -> None:
        """Adds many values at once (vectorised; same result as calling `add` for each)."""
        xs = np.asarray(xs, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if self.first_value is None:
            finite = np.flatnonzero(np.isfinite(values))
            if len(finite):
                self.first_value = float(values[finite[0]])
        if not self.varied and self.first_value is not None:
            finite_values = values[np.isfinite(values)]
            self.varied = bool(np.any(finite_values != self.first_value))
        i = 0
        total = len(values)
        while i < total:
            if not np.isfinite(values[i]):
                self.add(float(xs[i]), float(values[i]))
                i += 1
                continue
            if self._n:
                i += self._fill_open(xs, values, i)
                continue
            # whole buckets of finite values, vectorised
            room = self.capacity - self.size
            chunk = values[i : i + room * self.width]
            bad = np.flatnonzero(~np.isfinite(chunk))
            if len(bad):
                chunk = chunk[: bad[0]]
            whole = len(chunk) // self.width
            if whole == 0:
                i += self._fill_open(xs, values, i)
                continue
            used = whole * self.width
            self._append_buckets(xs[i : i + used], chunk[:used])
            i += used

    def _fill_open(self, xs: np.ndarray, values: np.ndarray, i: int) -> int:
        """Adds the finite values from `i` on to the open bucket until it closes (or a non-finite
        value comes); the arithmetic of `add`, in a local loop. Returns how many were added (>= 1:
        `values[i]` is finite)."""
        seg = values[i : i + self.width - self._n]
        bad = np.flatnonzero(~np.isfinite(seg))
        vals = (seg[: bad[0]] if len(bad) else seg).tolist()
        n, mean, m2, lo, hi = self._n, self._mean, self._m2, self._min, self._max
        if n == 0:
            self._x0 = float(xs[i])
            n, mean, m2, lo, hi = 1, vals[0], 0.0, vals[0], vals[0]
        for value in vals[1:] if self._n == 0 else vals:
            n += 1
            delta = value - mean
            mean += delta / n
            m2 += delta * (value - mean)
            if value < lo:
                lo = value
            if value > hi:
                hi = value
        m = len(vals)
        if lo < self.lowest:
            self.lowest = lo
        self._n, self._mean, self._m2, self._min, self._max, self._last = n, mean, m2, lo, hi, vals[-1]
        self.total += m
        self.last_x, self.last_value = float(xs[i + m - 1]), vals[-1]
        if n >= self.width:
            self._close(self.last_x)
        return m

    def _append_buckets(self, xs: np.ndarray, values: np.ndarray) -> None:
        with np.errstate(all="ignore"):  # huge finite values overflow to inf: no warning to raise
            self._append(xs, values)

    def _append(self, xs: np.ndarray, values: np.ndarray) -> None:
        self._store()
        w = self.width
        v = values.reshape(-1, w)
        x = xs.reshape(-1, w)
        k = len(v)
        s = slice(self.size, self.size + k)
        a = self._a
        mean = v.mean(axis=1)
        a["x0"][s] = x[:, 0]
        a["x1"][s] = x[:, -1]
        a["n"][s] = w
        a["mean"][s] = mean
        a["m2"][s] = ((v - mean[:, None]) ** 2).sum(axis=1)
        a["min"][s] = v.min(axis=1)
        self.lowest = min(self.lowest, float(a["min"][s].min()))
        a["max"][s] = v.max(axis=1)
        a["last"][s] = v[:, -1]
        self.size += k
        self.total += len(values)
        self.last_x = float(xs[-1])
        self.last_value = float(values[-1])
        if self.size == self.capacity:
            self._compact()

    def _close(self, x: float) -> None:
        if self.width == 1:
            self._staged.append((x, self._last))
        else:
            self._staged.append((self._x0, x, self._n, self._mean, self._m2, self._min, self._max, self._last))
        self.size += 1
        self._n = 0
        if self.size == self.capacity:
            self._compact()

    def _store(self) -> None:
        """Writes the staged buckets into the arrays (the same float64 values one scalar store
        each would write)."""
        staged = self._staged
        if not staged:
            return
        self._staged = []
        s = slice(self.size - len(staged), self.size)
        a = self._a
        # one flat float64 read of the tuples: np.array's nested-sequence discovery costs
        # several times more for the same values
        if self.width == 1:  # (x, value) rows: see `__init__`
            rows = np.fromiter(chain.from_iterable(staged), np.float64, 2 * len(staged)).reshape(-1, 2)
            x, value = rows[:, 0], rows[:, 1]
            a["x0"][s] = a["x1"][s] = x
            a["n"][s] = 1.0
            a["m2"][s] = 0.0
            a["mean"][s] = a["min"][s] = a["max"][s] = a["last"][s] = value
            return
        rows = np.fromiter(chain.from_iterable(staged), np.float64, 8 * len(staged)).reshape(-1, 8)
        for j, name in enumerate(_FIELDS):
            a[name][s] = rows[:, j]

    def _compact(self) -> None:
        """Merges neighbouring buckets pairwise (Chan et al.'s parallel variance update)."""
        with np.errstate(all="ignore"):  # huge finite values overflow to inf: no warning to raise
            self._merge_pairs()

    def _merge_pairs(self) -> None:
        self._store()
        a = self._a
        h = self.capacity // 2
        lo, hi = slice(0, None, 2), slice(1, None, 2)
        n1, n2 = a["n"][lo].copy(), a["n"][hi].copy()
        m1, m2_ = a["mean"][lo].copy(), a["mean"][hi].copy()
        n = n1 + n2
        delta = m2_ - m1
        a["m2"][:h] = a["m2"][lo] + a["m2"][hi] + delta**2 * n1 * n2 / n
        a["mean"][:h] = m1 + delta * n2 / n
        a["n"][:h] = n
        a["x0"][:h] = a["x0"][lo]
        a["x1"][:h] = a["x1"][hi]
        a["min"][:h] = np.minimum(a["min"][lo], a["min"][hi])
        a["max"][:h] = np.maximum(a["max"][lo], a["max"][hi])
        a["last"][:h] = a["last"][hi]
        self.size = h
        self.width *= 2

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.size

    @property
    def finite_count(self) -> int:
        return self.total - self.nonfinite

    def buckets(self, include_open: bool = False) -> dict[str, np.ndarray]:
        """Read-only arrays of the closed buckets (plus the open one when `include_open`):
        x0, x1, n, mean, m2, min, max, last, std. Cached until the series changes, so several
        checks judging at the same step share one copy."""
        include_open = include_open and self._n > 0  # no open bucket: the same arrays, one copy
        key = (self.total, self.size, self.width, self._n, include_open)
        cached = self._cache
        if cached is not None and cached[0] == key:
            return cached[1]
        out = self._buckets(include_open)
        for arr in out.values():
            arr.flags.writeable = False
        self._cache = (key, out)
        return out

    def _buckets(self, include_open: bool) -> dict[str, np.ndarray]:
        self._store()
        if include_open and self._n:
            # the open bucket written into the slot after the closed ones (there is always one:
            # the arrays merge when the last slot closes), so one copy per field, no np.append
            k = self.size
            a = self._a
            out = {}
            for name, value in (
                ("x0", self._x0),
                ("x1", self.last_x),
                ("n", self._n),
                ("mean", self._mean),
                ("m2", self._m2),
                ("min", self._min),
                ("max", self._max),
                ("last", self._last),
            ):
                arr = a[name][: k + 1].copy()
                arr[k] = value
                out[name] = arr
        else:
            out = {name: arr[: self.size].copy() for name, arr in self._a.items()}
        n = out["n"]
        if self.width == 1:  # one value a bucket (the open one is empty): every std is 0.0
            out["std"] = np.zeros(len(n))
        else:
            out["std"] = np.sqrt(np.where(n > 1, out["m2"] / np.maximum(n - 1, 1), 0.0))
        return out

    @property
    def x(self) -> np.ndarray:
        """x (step or epoch) at the end of each closed bucket."""
        self._store()
        return self._a["x1"][: self.size]

    @property
    def means(self) -> np.ndarray:
        self._store()
        return self._a["mean"][: self.size]

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, mean) of closed buckets plus the open one: the curve at the current resolution."""
        b = self.buckets(include_open=True)
        return b["x1"], b["mean"]

    def finite_values(self) -> tuple[np.ndarray, np.ndarray]:
        """`values()` without the buckets whose mean is not finite."""
        x, mean = self.values()
        kept = np.isfinite(mean)
        return x[kept], mean[kept]

    def state_dict(self) -> dict:
        self._store()
        return {
            "capacity": self.capacity,
            "width": self.width,
            "size": self.size,
            "arrays": {k: v[: self.size].tolist() for k, v in self._a.items()},
            "open": [self._n, self._mean, self._m2, self._min, self._max, self._x0, self._last],
            "total": self.total,
            "nonfinite": self.nonfinite,
            "first_nonfinite_x": self.first_nonfinite_x,
            "first_value": self.first_value,
            "varied": self.varied,
            "last_x": self.last_x,
            "last_value": self.last_value,
        }

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["capacity"], state["width"])  # type: ignore[misc]
        self.size = state["size"]
        for k, v in state["arrays"].items():
            self._a[k][: self.size] = v
        (self._n, self._mean, self._m2, self._min, self._max, self._x0, self._last) = state["open"]
        self.total = state["total"]
        self.nonfinite = state["nonfinite"]
        self.first_nonfinite_x = state["first_nonfinite_x"]
        self.first_value = state.get("first_value")  # absent in checkpoints of earlier versions
        self.varied = state.get("varied", True)  # absent there too: taken as moved (judged as before)
        # not saved: the least of the buckets' minimums, the open one's included
        mins = [*state["arrays"]["min"], *([self._min] if self._n else [])]
        self.lowest = float(min(mins)) if mins else math.inf
        self.last_x = state["last_x"]
        self.last_value = state["last_value"]
