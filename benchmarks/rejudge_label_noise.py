"""Re-judges the runs `bench_label_noise.py --dump DIR` recorded with `noisy-labels`' rule of
2026-12-02 ("before": the whole-run cartography rule, and the label's probability over the epochs
before memorisation, first epoch included, under `early_share` of its class's average) and with
the check as it is ("after": `NoisyLabels.flagged_train` over the dumped history), so that both
rules are scored on the same training runs (the check does not change training).

    python benchmarks/rejudge_label_noise.py DIR [--other-share 0.75]

Prints one Markdown row per run: flagged before / after, F1 before, precision / recall / F1 after.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

from mlcheck.checks.samples import NoisyLabels
from mlcheck.samples import SplitSamples

_LEVELS, _UNSEEN = 254, 255


def _early_mean(history: np.ndarray, epochs: range) -> np.ndarray:
    rows = history[list(epochs)].astype(np.float64)
    seen = rows != _UNSEEN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen.any(0), np.where(seen, rows, 0).sum(0) / seen.sum(0) / _LEVELS, np.nan)


def before(run: dict, early_share: float = 0.2) -> np.ndarray:
    """The rule of 2026-12-02: cartography over the whole run, or the label's mean probability
    over the early epochs (the first included) under `early_share` of its class's average."""
    judged = run["epochs"] >= 3
    flagged = judged & (run["confidence"] < 0.5) & (run["correctness"] < 0.5)
    epochs = int(run["early_epochs"])
    if epochs:
        labels = run["labels"].astype(np.int64)
        early = _early_mean(run["history"], range(epochs))
        known = judged & ~np.isnan(early)
        sums = np.bincount(labels[known], weights=early[known], minlength=int(labels.max()) + 1)
        average = sums / np.maximum(np.bincount(labels[known], minlength=len(sums)), 1)
        flagged |= known & (np.nan_to_num(early, nan=1.0) < early_share * average[labels])
    return flagged


def after(run: dict, other_share: float) -> np.ndarray:
    """`NoisyLabels.flagged_train` over the dumped history (rows that the store never saw are
    left unflagged)."""
    check = NoisyLabels(other_share=other_share)
    epochs = run["history"].shape[0]
    check._history = [None] + [row for row in run["history"][1:]]
    check._other = [None] + [row for row in run["other"][1:]]
    check._history_epochs = list(range(epochs))
    check._other_class = run["other_class"]
    check.early_epochs = lambda: int(run["early_epochs"])  # the window the live run found
    seen = ~np.isnan(run["epochs"])
    labels = run["labels"].astype(np.int64)
    table = {
        "id": np.arange(len(labels), dtype=np.uint64),
        "given_label": labels,
        "predicted_label": np.nan_to_num(run["last_pred"]),
        "confidence": np.nan_to_num(run["confidence"]),
        "variability": np.nan_to_num(run["variability"]),
        "correctness": np.nan_to_num(run["correctness"]),
        "epochs": np.nan_to_num(run["epochs"]),
        "last_prob": np.nan_to_num(run["last_prob"]),
        "last_predicted": np.nan_to_num(run["last_pred"]),
        "last_epoch": np.full(len(labels), epochs - 1),
        "previous_right": np.full(len(labels), -1),
    }
    return check.flagged_train(SplitSamples.from_table(table))[1] & seen


def _f1(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((flagged & truth).sum())
    precision, recall = tp / max(int(flagged.sum()), 1), tp / max(int(truth.sum()), 1)
    return precision, recall, 2 * precision * recall / (precision + recall) if tp else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--other-share", type=float, default=0.75)
    args = parser.parse_args()
    print("| run | flagged before / after | F1 before | after P / R / F1 |")
    print("|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(args.folder, "*.npz"))):
        run = dict(np.load(path))
        if "other" not in run:
            continue  # recorded before the other-class history existed
        truth = run["flip"].astype(bool)
        old, new = before(run), after(run, args.other_share)
        name = os.path.basename(path)[:-4]
        if truth.any():
            p, r, f = _f1(new, truth)
            print(f"| {name} | {old.sum()} / {new.sum()} | {_f1(old, truth)[2]:.2f} | {p:.2f} / {r:.2f} / {f:.2f} |")
        else:
            print(f"| {name} | {old.sum()} / {new.sum()} | - | - |")


if __name__ == "__main__":
    main()
