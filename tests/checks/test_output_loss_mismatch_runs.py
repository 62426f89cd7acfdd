"""`output-loss-mismatch` on shapes of bug that users' own programs have (Lightning and Keras runs
with `MLCheckCallback()` on tiny data): a softmax fed to a per-unit binary loss, a softmax taken
over the batch axis, and a ReLU regression head with targets below zero. Each has its healthy twin
that must stay silent."""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning
from mlcheck.findings import Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from mlcheck.integrations.lightning import MLCheckCallback as LightningCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


def keys(findings):
    """Keys of the WARNING/ERROR output-loss-mismatch findings."""
    return {f.key for f in findings if f.check == "output-loss-mismatch" and f.severity >= Severity.WARNING}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    return (x[order] / 16.0).astype(np.float32), y[order]


# -- Keras: softmax into binary_crossentropy -------------------------------------------------------


def keras_fit(model, x, y, loss):
    keras.utils.set_random_seed(0)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    cb = KerasCallback(log_dir=None, checks=["output-loss-mismatch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    return cb.findings


@pytest.mark.parametrize(
    ("units", "activation", "expected"),
    [
        (10, "softmax", {"softmax-binary-loss"}),  # one class per sample, judged unit by unit
        (10, "sigmoid", set()),  # multi-label: sigmoid + binary loss is right
        (2, "softmax", set()),  # two units: exactly twice the categorical loss, harmless
    ],
)
def test_keras_softmax_into_binary_crossentropy(digits, units, activation, expected):
    x, y = digits
    if units == 2:
        y = y % 2
    onehot = keras.utils.to_categorical(y, units)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    assert keys(keras_fit(model, x, onehot, "binary_crossentropy")) == expected


# -- Keras: soft labels into sparse_categorical_crossentropy -----------------------------------------


@pytest.mark.parametrize(
    ("smoothing", "expected"),
    [
        (0.1, {"labels-fractional"}),  # 0.05 / 0.95: the loss casts both to class 0
        (0.0, set()),  # the same labels as whole numbers, stored as float32
    ],
)
def test_keras_fractional_labels_into_sparse_crossentropy(digits, smoothing, expected):
    """Hand-smoothed binary labels (y * 0.9 + 0.05) given to sparse_categorical_crossentropy train
    every sample as class 0: Keras truncates the labels to integers. Float labels that are whole
    numbers are ordinary class ids."""
    x, y = digits
    y = ((y % 2) * (1.0 - smoothing) + smoothing / 2).astype(np.float32)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2, activation="softmax")]
    )
    findings = keras_fit(model, x, y, "sparse_categorical_crossentropy")
    assert keys(findings) == expected
    if expected:
        (finding,) = [f for f in findings if f.key == "labels-fractional"]
        assert finding.severity is Severity.ERROR
        assert finding.evidence["classes_after_cast"] == [0]
        assert "read as class 0" in finding.message


# -- Lightning: log_softmax over the batch axis; ReLU regression head ------------------------------


class SeqClassifier(pl.LightningModule):
    """A GRU over the digits' 8 rows, normalised over `dim` before NLLLoss."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.gru = nn.GRU(8, 16, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        _, h = self.gru(x.view(-1, 8, 8))
        return F.log_softmax(self.head(h[-1]), dim=self.dim)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.nll_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


class Regressor(pl.LightningModule):
    """An MLP regression head that ends in `head` (a ReLU by mistake, or nothing)."""

    def __init__(self, head):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), *head)

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def lightning_fit(module, x, y):
    pl.seed_everything(0)
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = LightningCallback(log_dir=None, checks=["output-loss-mismatch"])
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(module, loader)
    return cb.findings


@pytest.mark.parametrize(("dim", "expected"), [(0, {"wrong-axis"}), (1, set())])
def test_lightning_log_softmax_over_the_batch_axis(digits, dim, expected):
    x, y = digits
    found = lightning_fit(SeqClassifier(dim), x, y)
    assert keys(found) == expected
    if expected:
        (f,) = [f for f in found if f.key == "wrong-axis"]
        assert f.evidence["output_shape"] == [32, 10] and "dim" in f.hint


@pytest.fixture(scope="module")
def diabetes():
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return x, ((y - y.mean()) / y.std()).astype(np.float32), (y / y.max()).astype(np.float32)


@pytest.mark.parametrize(
    ("head", "targets", "expected"),
    [
        ((nn.ReLU(),), "standardised", {"target-range"}),  # about half the targets below 0
        ((), "standardised", set()),  # linear head: any target reachable
        ((nn.ReLU(),), "positive", set()),  # ReLU head, targets all >= 0: reachable
    ],
)
def test_lightning_bounded_regression_head(diabetes, head, targets, expected):
    x, standardised, positive = diabetes
    y = standardised if targets == "standardised" else positive
    found = lightning_fit(Regressor(head), x, y)
    assert keys(found) == expected
    if expected:
        (f,) = [f for f in found if f.key == "target-range"]
        assert f.evidence["output_range"][0] == 0.0 and 0.2 < f.evidence["share_outside"] < 0.8


# -- Lightning: a module without forward (training_step calls self.net directly) --------------------


class NoForward(pl.LightningModule):
    """All parameters in `self.net`; training_step calls it directly, the module has no forward."""

    def __init__(self, softmax):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), *([nn.Softmax(dim=1)] * softmax))
        self.loss_fn = nn.CrossEntropyLoss()  # no parameters: not a candidate for the model

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize(("softmax", "expected"), [(True, {"activation-twice"}), (False, set())])
def test_lightning_module_without_forward_is_checked_through_its_network(digits, softmax, expected, caplog):
    x, y = digits
    with caplog.at_level("WARNING", logger="mlcheck"):
        found = lightning_fit(NoForward(softmax), x, y)
    assert keys(found) == expected
    assert "switched off" not in caplog.text  # the check ran, not failed on the missing forward


# -- a ReLU or tanh on the logits of a from-logits loss (`bounded-logits`) ----------------------


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("relu", {"bounded-logits"}),  # Dense(10, activation="relu") + from_logits=True
        ("tanh", {"bounded-logits"}),  # confidence capped: CE >= log(1 + 9 e^-2) = 0.75
        (None, set()),  # raw logits: right
    ],
)
def test_keras_rectified_logits_into_a_from_logits_loss(digits, activation, expected):
    x, y = digits
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation=activation)(hidden))
    found = keras_fit(model, x, y, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert keys(found) == expected


class RectifiedLogits(pl.LightningModule):
    """Logits through a ReLU: a module at the end, or `F.relu` in forward (no module to name)."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        layers = [nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)]
        self.net = nn.Sequential(*layers, nn.ReLU()) if how == "module" else nn.Sequential(*layers)

    def forward(self, x):
        out = self.net(x)
        return F.relu(out) if self.how == "functional" else out

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize(
    ("how", "expected"), [("module", {"bounded-logits"}), ("functional", {"bounded-logits"}), ("none", set())]
)
def test_lightning_relu_on_the_logits_of_cross_entropy(digits, how, expected):
    x, y = digits
    found = lightning_fit(RectifiedLogits(how), x, y)
    assert keys(found) == expected


# -- Lightning: a sigmoid, not a softmax, before CrossEntropyLoss (/tmp/bugs10/b06) ---------------


class SigmoidIntoCrossEntropy(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10), nn.Sigmoid())
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_sigmoid_before_cross_entropy_is_not_called_a_softmax_twice(digits):
    """The finding said the loss's softmax 'is applied twice' after a sigmoid, and its fix named
    Keras' from_logits in a torch program; now it says the softmax runs on outputs the sigmoid
    squeezed into [0, 1], and the torch alternative."""
    x, y = digits
    found = lightning_fit(SigmoidIntoCrossEntropy(), x, y)
    (f,) = [f for f in found if f.check == "output-loss-mismatch" and f.key == "activation-twice"]
    assert "squeezed into [0, 1]" in f.message and "applied twice" not in f.message
    assert "Keras" not in f.hint and "from_logits" not in f.hint


# -- Lightning: softmax outputs, the log taken in training_step before NLLLoss -----------------------


class SoftmaxThenNLL(pl.LightningModule):
    """An MLP whose forward returns softmax probabilities; training_step feeds `nn.NLLLoss` either
    their log (`torch.log`: log of softmax then NLL is cross-entropy, a correct program) or the
    probabilities themselves (the bug of /tmp/bugs10/b04)."""

    def __init__(self, take_log):
        super().__init__()
        self.take_log = take_log
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.loss_fn = nn.NLLLoss()

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        p = self(x)
        loss = self.loss_fn(torch.log(p) if self.take_log else p, y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


@pytest.mark.parametrize(("take_log", "expected"), [(True, set()), (False, {"nll-input"})])
def test_lightning_log_of_softmax_taken_in_training_step(digits, take_log, expected):
    """Before, both got `nll-input` ("NLLLoss expects log-probabilities, but the model outputs
    probabilities"): the check read the declared NLLLoss and the softmax outputs, not the loss
    the step computes. Now the loss on the first batch tells them apart."""
    x, y = digits
    found = lightning_fit(SoftmaxThenNLL(take_log), x, y)
    assert keys(found) == expected
