"""Dropout and BatchNorm left in training mode at validation, on real Lightning fits of the
digits: a `validation_step` that calls `self.model.train()`, and a network whose `train()`
ignores `mode=False`. Validation then goes through dropout and batch statistics (its loss sits
above training's, which reads as overfitting). The callback reads the layers' modes once, at the
first validation batch, and `train-val-gap` says so (key `train-mode-validation`); a module
left alone, where Lightning puts it in evaluation mode for validation, stays silent. Keras: a
subclassed model whose `call` hands its layers `training=True`; the callback calls the model for
inference twice on the first validation batch and names the layers whose state moved or whose
outputs are random, leaving the run's results unchanged."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer


def _fit(tmp_path, bug: str, *, watched: bool = True, weights: list | None = None) -> MLCheckCallback | None:
    import lightning.pytorch as pl

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = [nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10)]
            self.body = nn.Sequential(*layers)

        def forward(self, x):
            return self.body(x)

        def train(self, mode: bool = True):
            return super().train(True if bug == "train-override" else mode)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = Net()

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            if bug == "train-in-validation-step":
                self.model.train()
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-3)

    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=str(tmp_path)) if watched else None
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb] if cb else [])
    train = DataLoader(TensorDataset(x[:600], y[:600]), batch_size=32, shuffle=True)
    module = Module()
    trainer.fit(module, train, DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64))
    if weights is not None:
        weights.extend(v.detach().clone() for v in module.state_dict().values())
    return cb


@pytest.mark.parametrize("bug", ["train-in-validation-step", "train-override"])
def test_layers_in_training_mode_at_validation_are_named(tmp_path, bug):
    cb = _fit(tmp_path, bug)
    (told,) = [f for f in cb.findings if f.key == "train-mode-validation"]  # was: not noticed
    assert told.check == "train-val-gap" and told.severity == Severity.WARNING and told.epoch == 0
    assert told.evidence["layers"] == ["model.body.1 (BatchNorm1d)", "model.body.3 (Dropout)"]
    assert "dropout and the batch statistics of BatchNorm" in told.message and "validation_step" in told.hint


def test_train_start_checks_leave_a_module_stuck_in_training_mode_as_they_found_it(tmp_path):
    # their inference calls run in training mode on a module whose train() ignores mode=False:
    # BatchNorm's running statistics moved, and the run went on with others than without mlcheck
    watched, alone = [], []
    _fit(tmp_path, "train-override", weights=watched)
    _fit(tmp_path, "train-override", watched=False, weights=alone)
    assert all(torch.equal(a, b) for a, b in zip(watched, alone))


def test_evaluation_mode_at_validation_stays_silent(tmp_path):
    cb = _fit(tmp_path, "none")
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == []


# -- Keras: a layer called with training=True in a subclassed model's call ------------------------


def _keras_fit(tmp_path, hard_coded: bool, *, watched: bool = True, **options):
    import keras

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype("float32")

    class Net(keras.Model):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(64, activation="relu")
            self.norm = keras.layers.BatchNormalization()
            self.drop = keras.layers.Dropout(0.5)
            self.out = keras.layers.Dense(10, activation="softmax")

        def call(self, x, training=None):
            mode = True if hard_coded else training
            return self.out(self.drop(self.norm(self.hidden(x), training=mode), training=mode))

    keras.utils.set_random_seed(0)
    model = Net()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = _keras_callback(log_dir=str(tmp_path), **options) if watched else None
    model.fit(
        x[:600],
        y[:600],
        validation_data=(x[1400:], y[1400:]),
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[cb] if cb else [],
    )
    return cb, model


def _keras_callback(**kw):
    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    return KerasCallback(**kw)


def test_keras_layers_hard_coded_to_training_are_named_and_training_is_unchanged(tmp_path):
    # the train-start checks on: their inference calls of the user's model moved the statistics of
    # a BatchNorm hard-coded to training until KerasTrainable.rng_state kept them too
    cb, model = _keras_fit(tmp_path, hard_coded=True)
    (told,) = [f for f in cb.findings if f.key == "train-mode-validation"]  # was: not noticed
    assert told.check == "train-val-gap" and told.severity == Severity.WARNING
    assert [name.split(" ")[1] for name in told.evidence["layers"]] == ["(BatchNormalization)", "(Dropout)"]
    _, alone = _keras_fit(tmp_path, hard_coded=True, watched=False)
    # the probe's and the train-start checks' inference calls moved nothing the run goes on with:
    # same weights, same statistics
    for mine, theirs in zip(model.variables, alone.variables):
        assert (mine.numpy() == theirs.numpy()).all(), mine.path


def test_keras_inference_mode_stays_silent(tmp_path):
    cb, _ = _keras_fit(tmp_path, hard_coded=False)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]


def test_keras_probe_leaves_healthy_and_stateful_models_alone():
    import keras
    import numpy as np

    from mlcheck.integrations.keras.layers import inference_mode_layers

    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")

    def model(stateful: bool):
        shape = {"batch_size": 4} if stateful else {}
        layers = [keras.layers.LSTM(8, dropout=0.3, stateful=stateful), keras.layers.Dropout(0.5)]
        net = keras.Sequential([keras.Input((5, 3), **shape), *layers, keras.layers.BatchNormalization()])
        net.compile("adam", "mse")
        net(x)
        return net

    assert inference_mode_layers(model(stateful=False), x) == ()  # dropout and BatchNorm at inference
    stateful = model(stateful=True)
    before = [np.array(s) for s in keras.tree.flatten(stateful.layers[0].states)]
    assert inference_mode_layers(stateful, x) == ()  # not called: its state would move for good
    assert all((a == np.array(b)).all() for a, b in zip(before, keras.tree.flatten(stateful.layers[0].states)))


def test_keras_probe_calls_no_model_with_nothing_to_blame(monkeypatch):
    """Only BatchNorm layers (moved statistics) and layers with a seed generator (random numbers
    reaching the output) can be named: a model with neither is not called at all (two inference
    calls of a run's fixed cost), one with either is, as before."""
    import keras
    import numpy as np

    from mlcheck.integrations.keras import layers as keras_layers

    calls = []
    real = keras_layers._InferenceProbe.output

    def counted(self):
        calls.append(self.model.name)
        return real(self)

    monkeypatch.setattr(keras_layers._InferenceProbe, "output", counted)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")

    def model(*middle):
        net = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), *middle, keras.layers.Dense(2)]
        )
        net.compile("adam", "mse")
        net(x)
        return net

    assert keras_layers.inference_mode_layers(model(), x) == () and calls == []
    assert keras_layers.inference_mode_layers(model(keras.layers.Dropout(0.5)), x) == () and len(calls) == 2
    calls.clear()
    assert keras_layers.inference_mode_layers(model(keras.layers.BatchNormalization()), x) == () and calls


@pytest.mark.parametrize("seed", [None, 3])
def test_keras_probe_names_the_layer_whose_randomness_reaches_the_output(seed):
    # an LSTM with dropout beside a dropout hard-coded to training: once every layer with a seed
    # generator was named when the outputs differed (the LSTM too, on torch and JAX)
    import keras
    import numpy as np

    from mlcheck.integrations.keras.layers import inference_mode_layers

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = keras.layers.LSTM(8, dropout=0.3)
            self.drop = keras.layers.Dropout(0.5, seed=seed)
            self.out = keras.layers.Dense(2)

        def call(self, x, training=None):
            return self.out(self.drop(self.lstm(x, training=training), training=True))

    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    net = Net()
    net.compile("adam", "mse")
    net(x)
    before = [keras.ops.convert_to_numpy(v.value) for v in net.variables]
    assert [name.split(" ")[1] for name in inference_mode_layers(net, x)] == ["(Dropout)"]
    assert all((a == keras.ops.convert_to_numpy(v.value)).all() for a, v in zip(before, net.variables))
