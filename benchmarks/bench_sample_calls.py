"""How many Python-level calls the per-sample recording makes, per step and per block (cProfile).

One fit per framework of `bench_sample_recording.py`'s models (default: the MNIST 5k MLP, 3
epochs) with the default checks plus `NoisyLabels()` and `WeakSlice()`. Two profilers: one on
during each step's calls (Lightning `SampleCapture.arm` and `collect`; Keras
`KerasSampleCapture.begin`, `collect`, `watch_loader`), one during the hand-overs (Lightning
`flush`; Keras `flush` and `_hand_over_closed`, which a step's `collect` may start: its calls
count as the hand-over's). The counts are deterministic for a given data order; cProfile sees
function and method calls, not operator slots (`a[i]`, `a == b` on arrays and tensors), so
the numpy and torch work is under-counted. "numpy-named" and "torch-named" are the calls whose
function or file names say so.

    python benchmarks/bench_sample_calls.py
    python benchmarks/bench_sample_calls.py --frameworks keras --top 30
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import sys
import tempfile
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class _Calls:
    """The two profilers and the calls' counts."""

    def __init__(self) -> None:
        self.step, self.hand_over = cProfile.Profile(), cProfile.Profile()
        self.in_step = self.in_hand_over = 0
        self.count: dict[str, int] = {}

    def wrap(self, cls: type, name: str, hand_over: bool) -> None:
        original = getattr(cls, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            self.count[name] = self.count.get(name, 0) + 1
            if self.in_hand_over or (self.in_step and not hand_over):
                return original(*args, **kwargs)
            if hand_over:
                if self.in_step:
                    self.step.disable()
                self.in_hand_over += 1
                self.hand_over.enable()
            else:
                self.in_step += 1
                self.step.enable()
            try:
                return original(*args, **kwargs)
            finally:
                if hand_over:
                    self.hand_over.disable()
                    self.in_hand_over -= 1
                    if self.in_step:
                        self.step.enable()
                else:
                    self.step.disable()
                    self.in_step -= 1

        setattr(cls, name, wrapper)

    def count_blocks(self, cls: type) -> None:
        original = cls._hand_over

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            self.count["blocks"] = self.count.get("blocks", 0) + 1
            return original(*args, **kwargs)

        cls._hand_over = wrapper


#: Where a call's function is defined, by its file's path: the adapters, the live core and store,
#: the checks, numpy, torch; builtins (`len`, `getattr`, list and dict methods) apart.
_AREAS = (
    ("/integrations/", "adapter"),
    ("/mlcheck/checks/", "checks"),
    ("/mlcheck/", "core"),
    ("/numpy/", "numpy"),
    ("/torch/", "torch"),
)


def _area(path: str, fn: str) -> str:
    if path == "~":
        return "numpy (C)" if "numpy" in fn else "torch (C)" if "torch" in fn else "builtins"
    for part, name in _AREAS:
        if part in path:
            return name
    return "other"


def _summary(profile: cProfile.Profile, per: int, top: int) -> tuple[dict, list[str]]:
    stats = pstats.Stats(profile).stats
    total = sum(v[1] for v in stats.values())

    def named(word: str) -> int:
        return sum(v[1] for (path, _, fn), v in stats.items() if word in path or word in fn)

    row = {
        "calls": total,
        "per": round(total / per, 1),
        "numpy_named_per": round(named("numpy") / per, 1),
        "torch_named_per": round(named("torch") / per, 1),
    }
    areas: dict[str, int] = {}
    for (path, _, fn), v in stats.items():
        area = _area(path, fn)
        areas[area] = areas.get(area, 0) + v[1]
    row["areas_per"] = {k: round(v / per, 1) for k, v in sorted(areas.items(), key=lambda kv: -kv[1])}
    lines = [
        f"    {v[1]:7d}  {os.path.basename(path)}:{line} {fn}"
        for (path, line, fn), v in sorted(stats.items(), key=lambda kv: -kv[1][1])[:top]
    ]
    return row, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frameworks", nargs="+", default=["lightning", "keras"], choices=["lightning", "keras"])
    parser.add_argument("--model", default="mnist-mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--top", type=int, default=0, help="also list the N most called functions of each part")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import bench_sample_recording as recording

    import mlcheck.integrations.keras.samples as keras_samples
    import mlcheck.integrations.torch_samples as torch_samples

    for framework in args.frameworks:
        calls = _Calls()
        if framework == "lightning":
            capture = torch_samples.SampleCapture
            calls.count_blocks(capture)
            calls.wrap(capture, "flush", hand_over=True)
            for name in ("arm", "collect"):
                calls.wrap(capture, name, hand_over=False)
            recording.lightning_fit(args.model, args.epochs, tempfile.mkdtemp())
        else:
            capture = keras_samples.KerasSampleCapture
            calls.count_blocks(capture)
            for name in ("_hand_over_closed", "flush"):
                calls.wrap(capture, name, hand_over=True)
            for name in ("begin", "collect", "watch_loader"):
                calls.wrap(capture, name, hand_over=False)
            recording.keras_fit(args.model, args.epochs, tempfile.mkdtemp())
        steps, blocks = calls.count["collect"], calls.count.get("blocks", 0)
        for part, profile, per, unit in (
            ("steps", calls.step, steps, "step"),
            ("hand-overs", calls.hand_over, max(blocks, 1), "block"),
        ):
            row, lines = _summary(profile, per, args.top)
            print(
                f"{framework} {args.model} {args.epochs} epochs, {part}: {row['calls']} calls, {row['per']} a {unit} "
                f"(numpy-named {row['numpy_named_per']}, torch-named {row['torch_named_per']}); "
                f"{steps} steps, {blocks} blocks; a {unit} by where the function is: {row['areas_per']}",
                flush=True,
            )
            if lines:
                print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
