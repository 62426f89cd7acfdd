"""Builds the corpus: every Keras printout in the notebooks of `sources.txt`, labelled by README.md's rules.

    python benchmarks/reallogs/build.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo are git snapshots

Writes `manifest.csv` and `runs/<id>.csv`. Deterministic: the same snapshots give the same files.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import notebook_runs  # noqa: E402

HERE = Path(__file__).resolve().parent
MIN_EPOCHS = 5
PLATEAU_EPOCHS = 8  # rule 3: "over at least 8 epochs"
PLATEAU_ACCURACY_SPREAD = 0.02  # rule 3, read from the printout: validation accuracy moves by <= 2 points
ACCURACY = ("accuracy", "acc", "sparse_categorical_accuracy", "binary_accuracy", "categorical_accuracy")

# Where a rule misreads a curve or an author's words decide: id -> (label, onset or None, reason).
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "handson-ml2-13-loading-and-preprocessing-data-c177-1": (
        "ambiguous",
        None,
        "losses in the hundreds beside 0.9 accuracy: the printed loss holds a term the curves do not explain",
    ),
    "deep-learnin-5-3-using-a-pretrained-convnet-c35-2": (
        "overfitting",
        8,
        "fine-tuning from a near-zero loss (0.0003-0.027 jitter) is no explosion; rule 4 gives onset 8",
    ),
    # held-out-3: Keras printed val_loss 0.0000e+00 at epoch 1 (no validation had run yet, a tf.data input of
    # unknown length); rule 4 read that 0 as the validation minimum. The label is rule 4 on epochs 2..n.
    "python-machi-ch16-part1-c48": (
        "overfitting",
        2,
        "val_loss printed as 0 at epoch 1 before any validation ran; rule 4 on epochs 2-10 gives onset 2",
    ),
    "python-machi-ch16-part1-c54-1": (
        "overfitting",
        6,
        "val_loss printed as 0 at epoch 1 before any validation ran; rule 4 on epochs 2-10 gives onset 6",
    ),
}
# What the authors say about a run (id -> note), from the notebooks' own text.
AUTHOR_NOTES: dict[str, str] = {
    "deep-learnin-5-3-using-a-pretrained-convnet-c35-2": "author: val loss not improving, accuracy holds",
    "deep-learnin-3-5-classifying-movie-reviews-c32": "author: overfitting after the fourth epoch",
    "deep-learnin-4-4-overfitting-and-underfitting-c9": "author: original model, starts overfitting after a few epochs",
    "deep-learnin-4-4-overfitting-and-underfitting-c15-2": "author: bigger model overfits at once, noisy val",
    "deep-learnin-6-1-using-word-embeddings-c28-1": "author: model quickly starts overfitting (200 training samples)",
    "deep-learnin-6-1-using-word-embeddings-c32-2": "author: 200 samples, val accuracy ~0.52 (chance)",
    "deep-learnin-5-2-using-convnets-with-small-datasets-c26": "author: characteristic of overfitting",
    # held-out-3 (the notebooks were picked for the NaN / plateau / divergence printout they hold)
    "rickiepark-deep-learnin-chapter05-fundamentals-of-ml-c17-2": "author: MNIST with shuffled labels; "
    "training loss printed as inf every epoch (Keras 3) while training accuracy climbs",
    "rickiepark-deep-learnin-chapter05-fundamentals-of-ml-c32-3": "author: MNIST with a wrongly high "
    "learning rate (RMSprop(1.)); NaN from epoch 1",
    "rickiepark-handson-ml2-10-neural-nets-with-keras-c122-10": "re-run of the handson-ml2 ch. 10 SGD(lr=0.05) "
    "run (divergence in ageron's printout, NaN here)",
    "dsc-tuning-n-index-c11": "author: all the values for training and validation loss are nan: "
    "the algorithm did not converge (inputs not normalized)",
    "dsc-tuning-n-index-c17-1": "author: you still haven't achieved convergence (output not normalized)",
    "ML_DL_with_T-10-neural-nets-with-keras-c125-10": "re-run of the handson-ml2 ch. 10 SGD(lr=0.05) run",
    "ML_DL_with_T-12-custom-models-and-training-with-tenso-c175-8": "exponential output layer on a "
    "regression: val_loss inf from epoch 1, training loss 6e15 falling",
    "ML-with-skle-11-training-deep-neural-networks-c42": "author's text (the book's): the network managed "
    "to learn; the printout is NaN from epoch 1",
    "ML-with-skle-11-training-deep-neural-networks-c47-1": "author: not great at all, we suffered from the "
    "vanishing/exploding gradient problem (val_loss NaN: unscaled training inputs)",
    "ML-with-skle-u-net-c27": "U-Net with a Dice loss: loss 0.4367 and val accuracy ~0.275 for all epochs",
    "ML_Advanced-01-neural-nets-with-keras-c118-10": "re-run of the handson-ml2 ch. 10 SGD(lr=0.05) run: "
    "0.55 then 63.7, then back to ~0.8",
    "python-machi-ch16-part1-c59-2": "author's optional exercise: SimpleRNN on full-length IMDb reviews; "
    "accuracy ~0.50 throughout",
    "neural-netwo-project-c8": "author (README): zero weight initialisation gives no weight updates; "
    "val accuracy 0.10 (CIFAR-10)",
    "tugas-deep-l-deep-learning-week-4-tensorflow-c18": "stacked SimpleRNN on IMDb: loss 0.693 and val "
    "accuracy ~0.50 until early stopping",
}


def label(
    t: list[float], v: list[float], va: list[float] | None = None, memorisation_from: int = 1
) -> tuple[str, int | None]:
    """(label, onset epoch 1-based) by the rules of README.md; `va` is the validation accuracy, if printed.
    `memorisation_from`: the epoch (1-based) whose training loss rule 4b's 10% floor is measured against:
    1 for the splits up to held-out-11, 2 from held-out-12 on ("4b, from held-out-12 on" in README.md)."""
    n = len(t)
    for k in range(n):
        if not (math.isfinite(t[k]) and math.isfinite(v[k])):
            return "nan", k + 1
    for k in range(1, n):
        if t[k] > 3 * min(t[:k]) and t[k] > t[0]:  # near-zero losses that jitter are not explosions
            return "divergence", k + 1
    if (t[-1] > 2 * min(t) and t[-1] > t[0]) or min(t) < 0:
        return "divergence", int(min(range(n), key=lambda k: t[k])) + 2
    if n >= PLATEAU_EPOCHS and _flat(t) and _flat(v) and va and max(va[1:]) - min(va[1:]) <= PLATEAU_ACCURACY_SPREAD:
        return "plateau", 2  # rule 3: a constant prediction scores the same accuracy every epoch
    m = min(range(n), key=lambda k: v[k])  # 0-based
    after = n - 1 - m
    tail = sum(v[n - min(3, after) :]) / min(3, after) if after else v[m]
    if after >= 3 and tail >= 1.10 * v[m] and t[-1] < t[m]:
        return "overfitting", m + 1
    if after >= 3 and t[-1] < 0.1 * t[memorisation_from - 1] and v[m] >= 0.95 * v[0] and tail > v[m]:
        return "overfitting", m + 1  # 4b: memorised, never generalised
    if t[-1] < t[0] and (after < 3 or tail <= 1.05 * v[m]):
        return "healthy", None
    return "ambiguous", None


def _flat(x: list[float]) -> bool:
    """Ends within 2% of its epoch-2 value (rule 3)."""
    return abs(x[-1] - x[1]) <= 0.02 * abs(x[1])


def split_of(run_id: str) -> str:
    return "held-out" if hashlib.sha1(run_id.encode()).hexdigest()[0] in "89abcdef" else "dev"


def _accuracy_key(keys: set[str]) -> str | None:
    return next((k for k in ACCURACY if k in keys and f"val_{k}" in keys), None)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    out.mkdir(exist_ok=True)
    rows, seen, ids = [], set(), set()
    prefixes: dict[str, str] = {}  # the id prefix (a repo's name, cut) -> the repo that has it; a second gets its owner
    for line in (HERE / "sources.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        # tab-separated: repo, commit, then optionally the split of every run read from it, then optionally
        # one notebook (a path may hold spaces): only that notebook is read (the runs added one notebook at a time)
        repo, commit, *rest = line.rstrip("\n").split("\t")
        split = rest[0] if rest and rest[0] else None
        gitdir = str(root / repo.replace("/", "+") / "repo")
        if len(rest) > 1:
            paths = [rest[1]]
        else:
            files = subprocess.run(
                ["git", "-C", gitdir, "ls-tree", "-r", "--name-only", commit],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split("\n")
            paths = sorted(f for f in files if f.endswith(".ipynb"))
        for path in paths:
            for index, (cell, run) in enumerate(notebook_runs(gitdir, path, commit)):
                run = [e for e in run if "loss" in e and "val_loss" in e]
                key = tuple(e["val_loss"] for e in run)
                contiguous = [e["epoch"] for e in run] == list(range(1, len(run) + 1))
                if len(run) < MIN_EPOCHS or key in seen or not contiguous:  # elided output: epochs missing
                    continue
                seen.add(key)
                stem = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")[:40]
                owner, name = repo.split("/")
                first = prefixes.setdefault(name[:12], repo)  # two repos of one name (a re-run of a book's notebooks)
                prefix = name[:12] if first == repo else f"{owner[:12]}-{name[:12]}"
                run_id = f"{prefix}-{stem}-c{cell}" + (f"-{index}" if index else "")
                if run_id in ids:  # the same notebook name in another folder (a docs/ copy)
                    run_id += "-" + re.sub(r"[^a-z0-9]+", "-", str(Path(path).parent).lower()).strip("-")[:20]
                ids.add(run_id)
                rows.append(_write(out, run_id, repo, path, commit, cell, run, split))
    with open(HERE / "manifest.csv", newline="") as fh:  # the raw-format runs: build_raw.py writes them
        rows += [r for r in csv.DictReader(fh) if r["split"] in ("held-out-4", "held-out-5")]
    with open(HERE / "manifest.csv", "w", newline="") as fh:
        # every row's columns (held-out-6's `pretrained` is empty elsewhere)
        writer = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    print(len(rows), "runs", counts)
    return 0


def _write(
    out: Path, run_id: str, repo: str, path: str, commit: str, cell: int, run: list[dict], split: str | None
) -> dict:
    keys = set().union(*run)
    acc = _accuracy_key(keys)
    columns = ["epoch", "loss", "val_loss"] + (["accuracy", "val_accuracy"] if acc else [])
    with open(out / f"{run_id}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for e in run:
            w.writerow(
                [e["epoch"], e["loss"], e["val_loss"]] + ([e.get(acc, ""), e.get(f"val_{acc}", "")] if acc else [])
            )
    t = [e["loss"] for e in run]
    v = [e["val_loss"] for e in run]
    va = [e[f"val_{acc}"] for e in run] if acc and all(f"val_{acc}" in e for e in run) else None
    name, onset = label(t, v, va)
    notes = AUTHOR_NOTES.get(run_id, "")
    if run_id in OVERRIDES:
        name, onset, reason = OVERRIDES[run_id]
        notes = (notes + "; " if notes else "") + f"override: {reason}"
    return {
        "id": run_id,
        "repo": repo,
        "path": path,
        "commit": commit,
        "cell": cell,
        "format": "keras-console",
        "epochs": len(run),
        "label": name,
        "onset": onset if onset is not None else "",
        "split": split or split_of(run_id),
        "notes": notes,
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
