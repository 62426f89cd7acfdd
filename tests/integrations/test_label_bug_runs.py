"""Label bugs from users' programs, on real Keras and Lightning fits of the digits:

- labels counted from 1 (1..10) for a 10-unit classifier: the loss raises on the first batch, so
  the train-start checks cannot run. `output-loss-mismatch` names the 1-based labels, and the
  checks the loss stopped are one INFO finding, not "check failed" internal warnings with
  tracebacks that blame mlcheck (the same for NaN inputs fed to a loss that refuses them);
- a filter that leaves one class (`y < 1` meant as `y <= 1`): `class-imbalance` warns (key
  `one-class`) after the first epoch; two classes, and sorted data, stay silent.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as lpt
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from mlcheck.monitor import MLCheckInternalWarning
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:640]
    return (x[order] / 16.0).astype(np.float32), y[order]


def _keras_fit(tmp_path, x, y, *, units, activation, loss, epochs=1, shuffle=True):
    """Fits a small MLP; returns the callback and the internal warnings raised."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile(optimizer="adam", loss=loss)
    cb = KerasCallback(log_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(
                x, y, validation_split=0.2, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb], shuffle=shuffle
            )
        except (IndexError, RuntimeError) as exc:  # the user's loss refusing the batch, as without mlcheck
            cb.raised = exc
    return cb, [w for w in caught if issubclass(w.category, MLCheckInternalWarning)]


def _loss_stopped(cb):
    return [f for f in cb.findings if f.check == "overfit-batch" and f.key == "skipped" and "loss raised" in f.message]


def test_keras_one_based_labels_are_named_and_blame_no_check(tmp_path, digits):
    x, y = digits
    cb, internal = _keras_fit(
        tmp_path, x, y + 1, units=10, activation="softmax", loss="sparse_categorical_crossentropy"
    )
    assert isinstance(cb.raised, IndexError)  # Keras' own error still reaches the user
    # the first step is a recorded layer step: its global forward hook came off with the error
    assert not torch.nn.modules.module._global_forward_hooks
    assert internal == []  # before: 'unused-parameters' and 'overfit-batch' "failed" with tracebacks
    (labels,) = [f for f in cb.findings if f.key == "labels-range"]
    assert labels.severity is Severity.ERROR and "1-based" in labels.message and "y - 1" in labels.hint
    (stopped,) = _loss_stopped(cb)
    assert (
        stopped.severity is Severity.INFO and "IndexError" in stopped.message and "unused-parameters" in stopped.message
    )


def test_keras_nan_column_into_binary_crossentropy_blames_no_check(tmp_path, digits):
    x, y = digits
    x = x.copy()
    x[:, 0] = np.nan  # a constant column standardised by hand: 0 / 0
    cb, internal = _keras_fit(
        tmp_path, x, (y == 0).astype(np.float32), units=1, activation="sigmoid", loss="binary_crossentropy"
    )
    assert isinstance(cb.raised, RuntimeError)  # torch's BCE refuses NaN probabilities
    assert internal == []
    assert any(f.check == "nonfinite-input" and f.severity is Severity.ERROR for f in cb.findings)
    assert _loss_stopped(cb)


def test_keras_zero_based_labels_stay_quiet(tmp_path, digits):
    x, y = digits
    cb, internal = _keras_fit(tmp_path, x, y, units=10, activation="softmax", loss="sparse_categorical_crossentropy")
    assert not hasattr(cb, "raised") and internal == []
    assert not [f for f in cb.findings if f.key == "labels-range" or f in _loss_stopped(cb)]


class _Net(lpt.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize("shift", [1, 0])
def test_lightning_one_based_labels(tmp_path, digits, shift):
    x, y = digits
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y + shift)), batch_size=32, shuffle=True)
    cb = LightningCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if shift:
            with pytest.raises(IndexError):
                trainer.fit(_Net(), loader)
        else:
            trainer.fit(_Net(), loader)
    assert [w for w in caught if issubclass(w.category, MLCheckInternalWarning)] == []
    labels = [f for f in cb.findings if f.key == "labels-range"]
    if shift:
        assert len(labels) == 1 and "1-based" in labels[0].message
        assert _loss_stopped(cb)
    else:
        assert labels == [] and _loss_stopped(cb) == []


@pytest.mark.parametrize(("keep", "warned"), [(lambda y: y < 1, True), (lambda y: y <= 1, False)])
def test_keras_one_class_after_a_filter(tmp_path, keep, warned):
    x, y = load_digits(return_X_y=True)
    mask = keep(y)
    x, y = (x[mask] / 16.0).astype(np.float32), y[mask].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        cb, internal = _keras_fit(tmp_path, x, y, units=1, activation="sigmoid", loss="binary_crossentropy", epochs=2)
    one = [f for f in cb.findings if f.check == "class-imbalance" and f.key == "one-class"]
    assert internal == []
    if warned:  # before: silent, with a validation accuracy of 1.0
        assert len(one) == 1 and one[0].severity is Severity.WARNING and one[0].epoch == 0
    else:
        assert one == [] and not [f for f in cb.findings if f.severity >= Severity.WARNING]


def test_keras_sorted_labels_are_not_one_class(tmp_path, digits):
    """Data sorted by label and not shuffled: the first batches hold one class, a whole epoch all."""
    x, y = digits
    order = np.argsort(y, kind="stable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        cb, _ = _keras_fit(
            tmp_path,
            x[order],
            y[order],
            units=10,
            activation="softmax",
            loss="sparse_categorical_crossentropy",
            shuffle=False,
        )
    assert not [f for f in cb.findings if f.key == "one-class"]


class _CastsInTrainingStep(lpt.LightningModule):
    """A common shape: the loader yields int64 pixels, training_step casts them; forward
    itself refuses the raw batch."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x.float() / 16), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_lightning_forward_refusing_the_raw_batch_is_one_info_not_internal_errors(tmp_path, digits):
    x, y = digits
    pixels = torch.tensor(np.rint(x * 16).astype(np.int64))
    loader = DataLoader(TensorDataset(pixels, torch.tensor(y)), batch_size=32, shuffle=True)
    torch.manual_seed(0)
    cb = LightningCallback(log_dir=str(tmp_path))
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_CastsInTrainingStep(), loader)
    # before: 'overfit-batch' and 'output-loss-mismatch' "failed" with tracebacks, as mlcheck's fault
    assert [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)] == []
    (skipped,) = [f for f in cb.findings if f.check == "overfit-batch"]
    assert skipped.severity is Severity.INFO and "as the loader yields them" in skipped.message
    assert "RuntimeError" in skipped.message and "output-loss-mismatch" in skipped.message
    assert "mlcheck_target()" in skipped.hint
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
