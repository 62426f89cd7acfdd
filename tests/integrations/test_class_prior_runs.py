"""`loss-plateau`'s class-prior verdict on real training: breast_cancer with its labels shuffled
apart from the inputs (Keras and Lightning) never beats predicting the class shares on validation
and is reported; the same data with labels in place, an imbalanced subset where accuracy stays
near the majority rate, and a slow learner stay silent."""

from __future__ import annotations

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

EPOCHS = 8


def _data(permute: bool, seed: int = 0, minority: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """breast_cancer standardised and shuffled; `permute`: labels shuffled a second time, on
    their own (the user's bug); `minority`: keep that share of class 0 (malignant)."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    if permute:
        y = y[rng.permutation(len(y))]
    if minority is not None:
        keep = (y == 1) | (rng.random(len(y)) < minority)
        x, y = x[keep], y[keep]
    return x, y


def _keras_fit(tmp_path, x, y, optimizer=None) -> KerasCallback:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=str(tmp_path))
    model.fit(x, y.astype(np.float32), validation_split=0.2, epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[cb])
    return cb


def _prior(cb) -> list:
    return [f for f in cb.findings if f.check == "loss-plateau" and f.key == "val-prior"]


def _silent(fit, judged: bool = True) -> list:
    """The run's findings, failing on any WARNING or ERROR raised as a Python warning, and
    unless the class prior was known (and, with `judged`, compared with and beaten)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        cb = fit()
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    plateau = next(c for c in cb.monitor.checks if c.id == "loss-plateau")
    assert plateau._class_prior(cb.monitor.run) is not None
    assert plateau._prior_judged or not judged  # compared with the prior: silent for beating it
    return cb.findings


@pytest.mark.parametrize("seed", [0, 1])
def test_keras_labels_shuffled_apart_from_inputs_never_beat_the_prior(tmp_path, seed):
    x, y = _data(permute=True, seed=seed)
    cb = _keras_fit(tmp_path, x, y)
    found = _prior(cb)
    assert len(found) == 1, [f.format() for f in cb.findings]
    f = found[0]
    assert f.severity == Severity.WARNING and f.epoch <= 5
    ev = f.evidence
    assert ev["val_samples"] == 114 and ev["validations"] == 6
    assert ev["best_val_loss"] > ev["prior_loss_bound"]
    assert ev["best_val_accuracy"] <= ev["accuracy_bound"]
    assert "training loss fell" in f.message  # it memorised the training labels meanwhile


def test_keras_labels_in_place_are_silent(tmp_path):
    x, y = _data(permute=False)
    assert not _prior_of(_silent(lambda: _keras_fit(tmp_path, x, y)))


def test_keras_imbalanced_run_near_the_majority_rate_is_silent(tmp_path):
    # ~93:7: validation accuracy ends within noise of the majority rate, but the loss beats
    # the labels' entropy by far
    x, y = _data(permute=False, minority=0.08)
    assert not _prior_of(_silent(lambda: _keras_fit(tmp_path, x, y)))


def test_keras_slow_learner_is_silent(tmp_path):
    # plain SGD at 1e-3: the validation loss starts above the prior and comes down slowly
    x, y = _data(permute=False)
    fit = lambda: _keras_fit(tmp_path, x, y, optimizer=keras.optimizers.SGD(1e-3))  # noqa: E731
    assert not _prior_of(_silent(fit, judged=False))  # still coming down at the end: not judged


def _prior_of(findings) -> list:
    return [f for f in findings if f.key == "val-prior"]


def _lightning_fit(tmp_path, permute: bool) -> LightningCallback:
    x, y = _data(permute=permute)
    n = int(0.8 * len(x))

    class Net(lpt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))

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
    cb = LightningCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(Net(), loader(x[:n], y[:n], batch_size=32, shuffle=True), loader(x[n:], y[n:], batch_size=64))
    return cb


def test_lightning_labels_shuffled_apart_from_inputs_never_beat_the_prior(tmp_path):
    cb = _lightning_fit(tmp_path, permute=True)
    found = _prior(cb)
    assert len(found) == 1, [f.format() for f in cb.findings]
    f = found[0]
    assert f.severity == Severity.WARNING and f.epoch <= 5
    assert f.evidence["val_samples"] == 114 and f.evidence["best_val_accuracy"] is not None
    # one finding for one cause: no training-loss plateau after it
    assert [g.key for g in cb.findings if g.check == "loss-plateau"] == ["val-prior"]


def test_lightning_labels_in_place_are_silent(tmp_path):
    assert not _prior_of(_silent(lambda: _lightning_fit(tmp_path, permute=False)))
