"""`train-val-gap` with the run's own early stopping: real Keras and Lightning fits of a small
regression (scikit-learn's diabetes data, shipped with it) that overfits after a few epochs.

With an early stopping on the validation loss that keeps the best weights, the rise it stops is
INFO; without one, or with one that watches another metric or keeps the last epoch's weights, the
same rise is the WARNING it was, at the same epoch.

The rises of these fits (7% and less, on 89 validation rows) are within the standard error of an
MSE over 89 rows (~15%), which on its own makes a regression's modest rise INFO (`rows_z`, tested in
test_regression_val_rise.py). They exercise the early-stopping rule, so that rule is switched off
here (`TrainValGap(rows_z=0)`) and the default set kept otherwise.
"""

from __future__ import annotations

import warnings

import pytest

from mlcheck import MLCheckWarning, Severity
from mlcheck.checks.base import default_checks
from mlcheck.checks.generalization import TrainValGap
from tests.lightning_trainer import quiet_trainer


def _diabetes(seed: int, n_train: int | None = None):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean()) / y.std()
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.2, random_state=seed)
    return xt[:n_train].astype("float32"), yt[:n_train].astype("float32"), xv.astype("float32"), yv.astype("float32")


def _checks():
    """The default checks, `train-val-gap` without its validation-rows rule (see the docstring)."""
    return [TrainValGap(rows_z=0.0) if c.id == "train-val-gap" else c for c in default_checks()]


def _gap(findings):
    return [(f.severity, f.epoch) for f in findings if f.check == "train-val-gap"]


def _serious(findings):
    return [f.format() for f in findings if f.severity >= Severity.WARNING]


# -- Keras ---------------------------------------------------------------------------------------

# seed 0: validation loss lowest at epoch 4 (0.561), 0.600 by epoch 9, where patience 5 stops it
KERAS_TURN, KERAS_STOP = 4, 9


def _keras_fit(extra: list, epochs: int = 12):
    keras = pytest.importorskip("keras")
    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    xt, yt, xv, yv = _diabetes(0)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    cb = MLCheckCallback(log_dir=None, checks=_checks())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=64, verbose=0, callbacks=[cb, *extra])
    return cb.findings


def test_keras_early_stopping_that_restores_the_best_makes_the_rise_info(tmp_path):
    keras = pytest.importorskip("keras")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    found = _keras_fit([stop], epochs=200)
    assert stop.stopped_epoch == KERAS_STOP  # the run really stopped there
    assert not _serious(found), _serious(found)
    assert _gap(found) == [(Severity.INFO, KERAS_STOP)]
    (info,) = [f for f in found if f.check == "train-val-gap"]
    assert info.evidence["kept_epoch"] == KERAS_TURN == stop.best_epoch
    assert "restore_best_weights=True" in info.message


def test_keras_checkpoint_of_the_best_also_protects(tmp_path):
    keras = pytest.importorskip("keras")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    best = keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor="val_loss", save_best_only=True)
    found = _keras_fit([best, stop], epochs=200)
    assert _gap(found) == [(Severity.INFO, KERAS_STOP)]


@pytest.mark.parametrize(
    "make",
    [
        lambda k: [],
        lambda k: [k.callbacks.EarlyStopping(monitor="val_loss", patience=5)],  # keeps the last epoch
        lambda k: [k.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)],
    ],
    ids=["none", "no-restore", "train-loss"],
)
def test_keras_rise_stays_a_warning_without_protection(make):
    keras = pytest.importorskip("keras")
    found = _keras_fit(make(keras))
    overfit = [f for f in found if f.key != "stop-on-training"]
    assert _gap(overfit) == [(Severity.WARNING, KERAS_STOP)]  # the epoch it always was
    # an early stopping on the training loss is named at the first validation (bugs38)
    told = [(f.severity, f.epoch) for f in found if f.key == "stop-on-training"]
    assert told == ([(Severity.WARNING, 0)] if make(keras) and make(keras)[0].monitor == "loss" else [])


# -- Lightning -----------------------------------------------------------------------------------

# seed 1, 80 training rows, full batch: lowest at epoch 6 (0.578), patience 5 stops it at 11
PL_TURN, PL_STOP = 6, 11


def _lightning_fit(tmp_path, extra: list, max_epochs: int = 14):
    torch = pytest.importorskip("torch")
    lpt = pytest.importorskip("lightning.pytorch")
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    lpt.seed_everything(1, verbose=False)
    xt, yt, xv, yv = _diabetes(1, n_train=80)

    def loader(x, y, shuffle):
        data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)[:, None])
        return torch.utils.data.DataLoader(data, batch_size=80, shuffle=shuffle)

    class Regressor(lpt.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(10, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            loss = nn.functional.mse_loss(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            self.log("val_loss", nn.functional.mse_loss(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    cb = MLCheckCallback(log_dir=False, checks=_checks())
    trainer = quiet_trainer(
        max_epochs=max_epochs,
        callbacks=[cb, *extra],
        enable_checkpointing=any(type(c).__name__ == "ModelCheckpoint" for c in extra),
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Regressor(), loader(xt, yt, True), loader(xv, yv, False))
    return cb.findings, trainer


def test_lightning_early_stopping_with_a_checkpoint_of_the_best_makes_the_rise_info(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss")
    found, trainer = _lightning_fit(tmp_path, [EarlyStopping("val_loss", patience=5), best], max_epochs=60)
    assert trainer.current_epoch == PL_STOP + 1  # stopped by the user's EarlyStopping
    assert not _serious(found), _serious(found)
    assert _gap(found) == [(Severity.INFO, PL_STOP)]
    (info,) = [f for f in found if f.check == "train-val-gap"]
    assert info.evidence["kept_epoch"] == PL_TURN
    assert f"epoch={PL_TURN}" in best.best_model_path  # the checkpoint it names is the one kept
    assert "ModelCheckpoint(monitor='val_loss')" in info.message


@pytest.mark.parametrize("with_stop", [False, True], ids=["none", "stop-without-best-checkpoint"])
def test_lightning_rise_stays_a_warning_without_protection(tmp_path, with_stop):
    from lightning.pytorch.callbacks import EarlyStopping

    extra = [EarlyStopping("val_loss", patience=5)] if with_stop else []
    found, _ = _lightning_fit(tmp_path, extra)
    assert _gap(found) == [(Severity.WARNING, PL_STOP)]
