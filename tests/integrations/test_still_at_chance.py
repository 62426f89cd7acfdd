"""`loss-plateau`'s early verdict on a run still at chance (key `chance`, issue #12, chance23):
digits (10 classes) with its labels shuffled apart from the inputs, trained for real in Lightning
and Keras, keeps its training and validation losses at the class prior and its validation
accuracy at the majority share: a WARNING by the third validation, where the stall rules wait
for 5-10 epochs and the prior's own verdict for 6 validations. The same data with labels in
place starts at chance too, and learns: silent. `mlcheck analyze` reads a 5-epoch log at chance
(accuracy in percent, as nicetea17's wandb runs) the same way, and a log that learns stays silent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

#: a run configured long, as real ones are: the stall rule then waits for a quarter of it (10 epochs)
#: and the prior's verdict for 6 validations; `stop_on="warning"` ends it at the first finding
EPOCHS = 40
#: the healthy runs: long enough for every rule to judge
HEALTHY_EPOCHS = 8


def _digits(shuffled: bool) -> tuple[np.ndarray, np.ndarray]:
    """digits scaled to [0, 1] and shuffled with one permutation; `shuffled`: the labels
    shuffled again on their own (the user's bug)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)
    if shuffled:
        y = y[rng.permutation(len(y))]
    return x, y


def _chance(cb) -> list:
    return [f for f in cb.findings if f.check == "loss-plateau" and f.key == "chance"]


def _lightning_fit(tmp_path, shuffled: bool) -> LightningCallback:
    epochs = EPOCHS if shuffled else HEALTHY_EPOCHS
    x, y = _digits(shuffled)
    n = int(0.8 * len(x))

    class Net(lpt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            out = self(batch[0])
            self.log("val_loss", nn.functional.cross_entropy(out, batch[1]))
            self.log("val_acc", (out.argmax(1) == batch[1]).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def loader(a, b, **kw):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b)), **kw)

    torch.manual_seed(0)
    cb = LightningCallback(log_dir=str(tmp_path), stop_on="warning")
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", category=MLCheckWarning)
        trainer.fit(Net(), loader(x[:n], y[:n], batch_size=32, shuffle=True), loader(x[n:], y[n:], batch_size=128))
    return cb


def _keras_fit(tmp_path, shuffled: bool) -> KerasCallback:
    x, y = _digits(shuffled)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=str(tmp_path), stop_on="warning")
    epochs = EPOCHS if shuffled else HEALTHY_EPOCHS
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=MLCheckWarning)
        model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb])
    return cb


FITS = {"lightning": _lightning_fit, "keras": _keras_fit}


@pytest.mark.parametrize("framework", sorted(FITS))
def test_labels_shuffled_apart_from_inputs_are_told_by_the_third_validation(tmp_path, framework):
    cb = FITS[framework](tmp_path, shuffled=True)
    found = _chance(cb)
    assert len(found) == 1, [f.format() for f in cb.findings]
    f = found[0]
    assert f.severity == Severity.WARNING and f.epoch == 2  # the third validation, epochs from 0
    ev = f.evidence
    assert ev["validations"] == 3 and ev["val_samples"] == 360 and ev["steps"] >= 100
    assert ev["best_val_loss"] >= ev["chance_val_loss_bound"] and ev["train_loss"] >= ev["chance_train_loss_bound"]
    assert ev["best_val_accuracy"] is not None and ev["best_val_accuracy"] <= ev["chance_accuracy_bound"]
    assert "learning rate" in f.hint and "shuffled and split together" in f.hint
    # one cause, one finding: neither the prior's verdict nor a stall repeats it
    assert [g.key for g in cb.findings if g.check == "loss-plateau"] == ["chance"]


@pytest.mark.parametrize("framework", sorted(FITS))
def test_labels_in_place_start_at_chance_learn_and_stay_silent(tmp_path, framework):
    cb = FITS[framework](tmp_path, shuffled=False)
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    plateau = next(c for c in cb.monitor.checks if c.id == "loss-plateau")
    assert plateau._class_prior(cb.monitor.run) is not None  # the levels were known: silent for learning


def _analyze(tmp_path, rows: list[tuple[float, float, float, float]]) -> list[dict]:
    """`mlcheck analyze --json` on a Keras-style CSV log of (loss, accuracy %, val_loss, val_accuracy %)."""
    path = tmp_path / "history.csv"
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    lines += [f"{i},{acc},{loss},{val_acc},{val_loss}" for i, (loss, acc, val_loss, val_acc) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)["findings"]


def test_analyze_tells_a_five_epoch_log_at_chance(tmp_path):
    # nicetea17/CIFAR10-Classifier-AlexNet-and-Resnet18 @20b3cd34, wandb run mp9kzjho: 5 epochs of
    # CIFAR-10 at ln(10), accuracies logged in percent
    rows = [
        (2.8747, 9.528, 2.3866, 10.01),
        (2.3246, 9.99, 2.3087, 10.0),
        (2.3092, 10.488, 2.3037, 11.74),
        (2.3081, 10.346, 2.3029, 10.0),
        (2.3056, 10.284, 2.3004, 10.11),
    ]
    found = [f for f in _analyze(tmp_path, rows) if f["check"] == "loss-plateau"]
    assert [(f["severity"], f["epoch"]) for f in found] == [("warning", 2)], found
    assert "still at chance" in found[0]["message"] and "ln(10)" in found[0]["message"]


def test_analyze_log_that_starts_at_chance_and_learns_is_silent(tmp_path):
    # two epochs at chance (written here), then the same project's run 8zbo9gzs's first three (it learns)
    rows = [
        (2.3100, 10.2, 2.3020, 10.3),
        (2.2950, 11.5, 2.2900, 12.0),
        (1.9484, 24.544, 1.678, 36.65),
        (1.6614, 37.848, 1.6051, 40.29),
        (1.5187, 44.476, 1.4209, 49.39),
    ]
    assert not [f for f in _analyze(tmp_path, rows) if f["severity"] in ("warning", "error")]
