"""mlcheck's own functions ranked by the CPU time they spend in a fit, with their calls.

callgrind counts a fit's instructions (`bench_instructions.py`) but, on Python 3.11, sees the
interpreter's C frames, not Python functions. This names them: the same 3-epoch digits fit as
`bench_instructions.py` (its `_lightning_fit` / `_keras_fit`, defaults arm, after one uncounted
1-epoch warm-up fit) runs under `cProfile` with the thread's CPU clock as its timer (time the
process spends waiting for a core under load is not charged). Each mlcheck function
(`mlcheck/`, `integrations/`) is charged its own time plus the time of the C functions and
numpy wrappers it calls directly (a numpy reduction's work belongs to its caller), so the shares
add up to mlcheck's whole Python-level cost without counting a nested function twice. Printed:
the top `--top` with their milliseconds, share of mlcheck's total and calls; with `--inclusive`
also the inclusive ranking (a function with what it calls).

Profiling costs a few microseconds a Python call, so functions called at every step weigh more
here than in the instruction counts: a ranking for names and calls, not a cost figure (the
whole-fit instruction count is the one to compare).

`--value-keys`: `feature-leakage`'s dense value keys (`checks/leakage.py` `_value_keys`, one
binary search per column) against one search over every column laid end to end (the columns as
the real parts and the values as the imaginary parts of complex numbers, which numpy sorts and
searches lexicographically: the same keys), on 512 rows of digits' 64 columns and on the same
rows with Gaussian noise added (~512 distinct values a column); thread CPU per call.

Run: OMP_NUM_THREADS=1 KERAS_BACKEND=torch .venv/bin/python benchmarks/bench_function_rank.py
     [--framework lightning|keras] [--top 15] [--inclusive]
     .venv/bin/python benchmarks/bench_function_rank.py --value-keys
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
ROOT = str(HERE.parent)
OURS = (os.path.join(ROOT, "mlcheck") + os.sep, os.path.join(ROOT, "integrations") + os.sep)


def _ours(filename: str) -> bool:
    return filename.startswith(OURS)


def _charged_to_caller(filename: str) -> bool:
    """C functions (cProfile's "~") and numpy's Python wrappers: their time is their caller's."""
    return filename == "~" or f"{os.sep}numpy{os.sep}" in filename


def profile_fit(framework: str, epochs: int = 3) -> cProfile.Profile:
    """The defaults arm's fit of `bench_instructions.py`, profiled on the thread's CPU clock."""
    sys.path.insert(0, str(HERE))
    import bench_instructions
    import torch

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(1)
    make = bench_instructions._lightning_fit if framework == "lightning" else bench_instructions._keras_fit
    profile = cProfile.Profile(time.thread_time_ns, 1e-9)
    with tempfile.TemporaryDirectory() as root:
        make("mlp", 1, "defaults", os.path.join(root, "warm"))()
        fit = make("mlp", epochs, "defaults", os.path.join(root, "fit"))
        gc.collect()
        profile.enable()
        fit()
        profile.disable()
    return profile


def rank(profile: cProfile.Profile) -> tuple[list[tuple[float, int, str]], list[tuple[float, int, str]], float]:
    """(own ranking: seconds charged, calls, name; inclusive ranking; mlcheck's total seconds)."""
    import pstats

    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    own: dict[tuple, float] = {}
    for key, (_, _, tottime, _, callers) in stats.items():
        if _ours(key[0]):
            own[key] = own.get(key, 0.0) + tottime
        elif _charged_to_caller(key[0]):
            # a C function's own time (its cumulative time holds the Python it calls back, such as a
            # generator `max` drains); a numpy wrapper's cumulative time (the C work it wraps)
            for caller, (_, _, own_time, cumulative) in callers.items():
                if _ours(caller[0]):
                    own[caller] = own.get(caller, 0.0) + (own_time if key[0] == "~" else cumulative)

    def name(key: tuple) -> str:
        return f"{os.path.relpath(key[0], ROOT)}:{key[1]} {key[2]}"

    ranked = sorted(((seconds, stats[key][1], name(key)) for key, seconds in own.items()), reverse=True)
    inclusive = sorted(((v[3], v[1], name(k)) for k, v in stats.items() if _ours(k[0])), reverse=True)
    return ranked, inclusive, sum(own.values())


def value_keys() -> None:
    """`_value_keys` against one complex-number search over all columns: same keys, CPU time."""
    import numpy as np
    from sklearn.datasets import load_digits

    from mlcheck.checks.leakage import _value_keys

    def one_search(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        z = x.T.copy()
        m, n = z.shape
        ordered = np.sort(z, axis=1)
        new = np.empty(ordered.shape, dtype=bool)
        new[:, 0] = True
        np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
        width = new.sum(axis=1)
        start = np.zeros(m, dtype=width.dtype)
        np.cumsum(width[:-1], out=start[1:])
        value = ordered[new]
        hay = np.empty(len(value), dtype=np.complex128)
        hay.real, hay.imag = np.repeat(np.arange(m, dtype=np.float64), width), value
        needles = np.empty((m, n), dtype=np.complex128)
        needles.real, needles.imag = np.arange(m, dtype=np.float64)[:, None], z
        keys = hay.searchsorted(needles.ravel()).astype(width.dtype).reshape(m, n)
        return keys, value, start, width

    rng = np.random.default_rng(0)
    digits = load_digits().data.astype(np.float64)
    digits = digits[rng.choice(len(digits), 512, replace=False)]
    for label, x in (
        ("digits, 17 levels", digits),
        ("digits + noise, ~512 distinct", digits + rng.normal(size=digits.shape)),
    ):
        same = all(np.array_equal(a, b) for a, b in zip(_value_keys(x), one_search(x)))
        times = {}
        for function in (_value_keys, one_search, _value_keys, one_search):
            started = time.thread_time()
            for _ in range(200):
                function(x)
            times.setdefault(function.__name__, []).append((time.thread_time() - started) / 200 * 1e6)
        per_call = {k: round(min(v), 1) for k, v in times.items()}
        ratio = per_call["one_search"] / per_call["_value_keys"]
        print(f"{label}: same keys {same}; us a call {per_call}; ratio {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", choices=("lightning", "keras"), default="lightning")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--inclusive", action="store_true", help="also the inclusive ranking")
    parser.add_argument("--value-keys", action="store_true", help="feature-leakage's keys, two ways")
    args = parser.parse_args()
    if args.value_keys:
        value_keys()
        return
    ranked, inclusive, total = rank(profile_fit(args.framework, args.epochs))
    print(
        f"{args.framework} digits MLP, {args.epochs} epochs: mlcheck's own functions {total * 1e3:.1f} ms of thread CPU"
    )
    for seconds, calls, name in ranked[: args.top]:
        print(f"{seconds * 1e3:8.2f} ms {100 * seconds / total:5.1f}% {calls:6d} calls  {name}")
    if args.inclusive:
        print("inclusive:")
        for seconds, calls, name in inclusive[: args.top]:
            print(f"{seconds * 1e3:8.2f} ms {calls:6d} calls  {name}")


if __name__ == "__main__":
    main()
