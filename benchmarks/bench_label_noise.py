"""How well `noisy-labels` finds planted label noise, beside cleanlab, on the data that ships here.

Symmetric label noise (a label replaced by a different class drawn uniformly) at 0/2/5/10% is
injected into the training split of scikit-learn's digits (1,797 images, 10 classes) and
breast_cancer (569 rows, 2 classes); a small MLP is trained with the callback (Lightning and
Keras 3 on the torch backend), and the samples `noisy-labels` flags are compared with the
injected ones: precision, recall, F1, the finding's severity, the estimated noise rate, the
bytes the per-sample store holds per sample and the training time with the per-sample capture
on and off (paired, same seed).

With `--cleanlab`, cleanlab's `find_label_issues` runs on 5-fold cross-validated probabilities
of the same model (5 extra trainings): install it for the benchmark only,
`pip install cleanlab` (it is no dependency of mlcheck).

    python benchmarks/bench_label_noise.py [--cleanlab] [--frameworks lightning keras] [--seeds 2]

Prints a Markdown table; `--json PATH` writes the rows.
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

EPOCHS = {"digits": 30, "breast_cancer": 40}
RATES = (0.0, 0.02, 0.05, 0.10)


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def inject(y: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric noise: `rate` of the labels replaced by another class, uniformly."""
    rng = np.random.default_rng(seed)
    classes = int(y.max()) + 1
    flip = rng.random(len(y)) < rate
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, classes, flip.sum())) % classes
    return noisy, flip


def train_lightning(xt, yt, xv, yv, epochs, seed, capture=True, log_dir=None):
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

    checks = None if capture else [c for c in _defaults() if c.id not in ("noisy-labels", "weak-slice")]
    cb = MLCheckCallback(checks=checks, log_dir=log_dir or False, overfit_batch=False, timing=True)
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


def train_keras(xt, yt, xv, yv, epochs, seed, capture=True, log_dir=None):
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
    checks = None if capture else [c for c in _defaults() if c.id not in ("noisy-labels", "weak-slice")]
    cb = MLCheckCallback(checks=checks, log_dir=log_dir, overfit_batch=False)
    started = time.perf_counter()
    model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    seconds = time.perf_counter() - started
    return cb, seconds, lambda x: model.predict(x, verbose=0)


TRAIN = {"lightning": train_lightning, "keras": train_keras}


def _defaults():
    from mlcheck.checks.base import default_checks

    return default_checks()


def score(cb, xt, flip) -> dict:
    store = cb.monitor.run.samples
    train = store.get("train")
    _, flagged = NoisyLabels().flagged_train(train)
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
    return _prf(issues, flip) | {"seconds": time.perf_counter() - started}


def run(frameworks, seeds, with_cleanlab, datasets=("digits", "breast_cancer"), rates=RATES) -> list[dict]:
    rows = []
    for data in datasets:
        x, y = load(data)
        n_train = int(0.75 * len(x))
        for framework in frameworks:
            for rate in rates:
                for seed in range(seeds):
                    yt, flip = inject(y[:n_train], rate, seed + 100)
                    xt, xv, yv = x[:n_train], x[n_train:], y[n_train:]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        cb, seconds, _ = TRAIN[framework](xt, yt, xv, yv, EPOCHS[data], seed)
                        base_seconds = None
                        if rate == 0:  # the same run without the per-sample checks, for the overhead
                            _, base_seconds, _ = TRAIN[framework](xt, yt, xv, yv, EPOCHS[data], seed, capture=False)
                    row = {"data": data, "framework": framework, "noise": rate, "seed": seed}
                    row |= score(cb, xt, flip)
                    found = [f for f in cb.findings if f.check == "noisy-labels"]
                    row["severity"] = found[-1].severity.value if found else "-"
                    row["estimated_rate"] = found[-1].evidence["noise_rate"] if found else 0.0
                    row["weak_slice"] = ",".join(
                        f"{f.evidence['slice']}:{f.severity.value}" for f in cb.findings if f.check == "weak-slice"
                    )
                    row["seconds"], row["seconds_without"] = seconds, base_seconds
                    if with_cleanlab and rate > 0:
                        found = cleanlab_scores(framework, xt, yt, xv, yv, EPOCHS[data], seed, flip)
                        row |= {f"cleanlab_{k}": v for k, v in found.items()}
                    timings = cb.timings or {}
                    row["capture_seconds"] = sum(v for k, v in timings.items() if k.startswith("samples"))
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    cols = [
        "data",
        "framework",
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
    parser.add_argument("--cleanlab", action="store_true")
    parser.add_argument("--data", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    rows = run(args.frameworks, args.seeds, args.cleanlab, args.data, args.rates)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
