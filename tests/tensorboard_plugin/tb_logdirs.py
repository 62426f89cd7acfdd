"""Log directories for the tab's tests, written by real training runs (a few seconds each) plus
synthetic per-layer scalars and per-sample tables in the shapes the layer and per-sample checks
write (`mlcheck/layers/<module path>/<stat>` scalars, `<run>/mlcheck/samples.csv`).

Layout of `write_logdir(root)`:
    lightning/clean/version_0              Lightning, clean digits MLP: no warning or error
    lightning/leaky_validation/version_0   Lightning, a quarter of the validation rows are training rows
    keras_leaky/train, keras_leaky/validation  Keras 3, validation taken from the training rows
    synthetic/layers_and_samples           layer statistics, samples.csv, noisy-labels and weak-slice findings
"""

from __future__ import annotations

import csv
import logging
import math
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from mlcheck import Finding, Severity
from mlcheck.sinks.tensorboard import TensorBoardSink
from tests.lightning_trainer import quiet_trainer


def _digits(seed: int = 0):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def lightning_run(root: Path, name: str, leak: bool) -> list[Finding]:
    import lightning.pytorch as lpt
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    class Digits(lpt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    lpt.seed_everything(0, verbose=False)
    (xt, yt), (xv, yv) = _digits()
    if leak:  # the bug: 90 of the 360 validation rows are training rows
        xv, yv = np.concatenate([xv[:270], xt[:90]]), np.concatenate([yv[:270], yt[:90]])
    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(xt), torch.tensor(yt)), batch_size=32, shuffle=True
    )
    val = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(xv), torch.tensor(yv)), batch_size=256
    )
    cb = MLCheckCallback(warn=False)
    trainer = quiet_trainer(
        max_epochs=4,
        callbacks=[cb],
        logger=lpt.loggers.TensorBoardLogger(root / "lightning", name=name),
        log_every_n_steps=5,
    )
    trainer.fit(Digits(), train, val)
    return cb.findings


def keras_run(root: Path, name: str) -> list[Finding]:
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    (xt, yt), _ = _digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=str(root / name), warn=False)
    model.fit(xt, yt, validation_data=(xt[:300], yt[:300]), epochs=3, batch_size=64, verbose=0, callbacks=[cb])
    return cb.findings


LAYERS = ("encoder.0", "encoder.2", "encoder.4", "head")
STEPS = range(0, 400, 10)


def synthetic_run(run_dir: Path) -> None:
    """Losses, layer statistics and findings of the layer and per-sample families, written with
    mlcheck's own TensorBoard sink (so steps only go forward), and a samples.csv."""
    sink = TensorBoardSink(run_dir)
    vanishing = Finding(
        check="vanishing-gradient",
        severity=Severity.WARNING,
        message="Gradients of encoder.0 are 1e-6 of those of head: the first layers barely learn.",
        evidence={"layer": "encoder.0", "grad_norm": 1.2e-7, "ratio_to_head": 1e-6},
        hint="Use ReLU instead of sigmoid, add normalisation or residual connections.",
        step=120,
    )
    for step in STEPS:
        decay = math.exp(-step / 150)
        values = {"train_loss": 2.3 * decay + 0.3, "val_loss": 2.3 * decay + 0.45}
        for depth, layer in enumerate(LAYERS):
            values[f"mlcheck/layers/{layer}/grad_norm"] = 10.0 ** (depth - 3) * (1 + 0.2 * math.sin(step))
            values[f"mlcheck/layers/{layer}/dead_units"] = min(32, depth * step // 25)
        sink.scalars(step, values)
        if step == vanishing.step:
            sink.emit(vanishing)
    sink.emit(
        Finding(
            check="noisy-labels",
            severity=Severity.WARNING,
            message="12 training samples are confidently predicted as another class than their label.",
            evidence={"suspects": 12, "ids": "17, 42, 311"},
            hint="Review the samples listed in the mlcheck tab; relabel or drop those that are wrong.",
            step=390,
        )
    )
    sink.emit(
        Finding(
            check="weak-slice",
            severity=Severity.INFO,
            message="Class 8 is much less accurate than the rest.",
            evidence={"slice": "label=8", "accuracy": 0.61, "rest_accuracy": 0.94},
            hint="Look at class 8's samples: more data, augmentation, or label errors.",
            step=390,
        )
    )
    sink.close()
    rng = np.random.default_rng(0)
    out = run_dir / "mlcheck" / "samples.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "given_label", "predicted_label", "confidence", "variability", "correctness"])
        for i in range(1000):
            label = int(rng.integers(0, 10))
            noisy = i in (17, 42, 311)
            writer.writerow(
                [i, label, (label + 3) % 10 if noisy else label, 0.02 if noisy else 0.9, 0.05, 0.0 if noisy else 1.0]
            )


def write_logdir(root: Path) -> dict[str, list[Finding]]:
    """Writes every run above under `root`; returns the findings of each real run by name."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {
            "lightning/clean/version_0": lightning_run(root, "clean", leak=False),
            "lightning/leaky_validation/version_0": lightning_run(root, "leaky_validation", leak=True),
            "keras_leaky": keras_run(root, "keras_leaky"),
        }
    synthetic_run(root / "synthetic" / "layers_and_samples")
    return found
