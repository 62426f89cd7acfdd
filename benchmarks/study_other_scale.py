"""How `suspicious-val` splits two losses on different scales (key `other-scale`, INFO) from a
validation loss that is implausibly low (key `val`, WARNING), on synthetic epoch curves.

    .venv/bin/python benchmarks/study_other_scale.py

Fifty seeded 30-epoch runs per shape and per relative noise on each epoch value (2%, 5%, 10%).
Every run's per-sample loss is `floor + a * exp(-t / tau)` (tau 2-10 epochs, floor 0.05-0.5,
a 0.5-2.5), the training loss its mean over the epoch (at the epoch's middle), the validation
loss its value at the epoch's end; the shapes:

- `sum`: the training loss summed over N batches (N in 12, 20, 50, 100, 500), its per-sample
  level drifting down to 0.6-1.0x of validation's over the run (a healthy generalisation gap);
- `leak`: a mean training loss and a validation loss 5x lower that falls away from it (a
  memorised validation set);
- `easy`: a validation loss a constant 0.05-0.2 of the training loss's from the first epoch;
- `flat`: a validation loss flat at 0.02 while training falls;
- `setsS`: both losses summed over their sets, the training set S x the validation set (S 4, 6,
  8, 12: splits of 80/20 to 92/8), the per-sample levels as `sum`'s (branch sv33);
- `leak6`: a leak as `leak` whose validation loss starts 6-9x below training's at the first
  epoch (branch sv33: the floor of `other-scale`, 6x, from above).

Prints the count of runs told by each key ("-": none), one line per shape and noise.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter

import numpy as np

from mlcheck import Monitor
from mlcheck.checks import get_check

RUNS, EPOCHS = 50, 30


def _key(train: np.ndarray, val: np.ndarray) -> str:
    monitor = Monitor(checks=[get_check("suspicious-val")()], warn=False, log_dir=None)
    for epoch, (t, v) in enumerate(zip(train, val)):
        monitor.log_epoch(epoch, train_loss=float(t), val_loss=float(v))
    monitor.close()
    told = [f for f in monitor.findings if f.check == "suspicious-val"]
    return told[0].key if told else "-"


def _curves(shape: str, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    tau, floor, a = rng.uniform(2, 10), rng.uniform(0.05, 0.5), rng.uniform(0.5, 2.5)
    e = np.arange(EPOCHS)
    middle, end = floor + a * np.exp(-(e + 0.5) / tau), floor + a * np.exp(-(e + 1) / tau)
    gap = np.linspace(1, rng.uniform(0.6, 1.0), EPOCHS)

    def noisy(x: np.ndarray) -> np.ndarray:
        return x * (1 + noise * rng.standard_normal(EPOCHS))

    if shape == "sum":
        return noisy(rng.choice([12, 20, 50, 100, 500]) * middle * gap), noisy(end)
    if shape == "leak":
        return noisy(middle), noisy(0.2 * end * np.exp(-e / rng.uniform(2, 8)))
    if shape.startswith("sets"):
        return noisy(int(shape[4:]) * middle * gap), noisy(end)
    if shape == "leak6":
        return noisy(middle), noisy(middle / rng.uniform(6, 9) * np.exp(-e / rng.uniform(2, 8)))
    if shape == "easy":
        return noisy(middle), noisy(rng.uniform(0.05, 0.2) * end)
    return noisy(middle), noisy(np.full(EPOCHS, 0.02))


def main() -> None:
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    for shape in ("sum", "leak", "easy", "flat", "sets4", "sets6", "sets8", "sets12", "leak6"):
        for noise in (0.02, 0.05, 0.1):
            told = Counter(_key(*_curves(shape, noise, np.random.default_rng(seed))) for seed in range(RUNS))
            print(f"{shape:6} noise {noise:.0%}: {dict(sorted(told.items()))}")


if __name__ == "__main__":
    main()
