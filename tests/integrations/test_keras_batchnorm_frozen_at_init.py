"""Keras' `BatchNormalization(trainable=False)` in a network trained from scratch (batch 35's
b04 on Keras): a frozen BatchNormalization runs in inference mode, so its moving statistics stay
exactly at their initial (0, 1) and it normalises nothing. `frozen-parameters` names it (key
`batchnorm-eval`), as it names torch's `.eval()` BatchNorm, from the Keras layer recorder's
`LayerStats.running_stats_at_init`. Controls, silent: the same layer left to train; a pre-trained
backbone holding a BatchNormalization frozen on purpose; and a frozen BatchNormalization after a
trainable layer whose trained statistics were loaded (not 0 and 1)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback

pytestmark = pytest.mark.filterwarnings("ignore")


def _data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x[:960] / 16.0).astype("float32"), y[:960]


def _block(name: str, trainable: bool = True) -> list:
    return [
        keras.layers.Dense(32, name=f"{name}_dense"),
        keras.layers.BatchNormalization(name=f"{name}_bn", trainable=trainable),
        keras.layers.ReLU(name=f"{name}_relu"),
    ]


def _fit(model: keras.Model, log_dir, callback: bool = True) -> MLCheckCallback | None:
    x, y = _data()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    cb = MLCheckCallback(log_dir=log_dir, overfit_batch=False, every_n_steps=5) if callback else None
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[cb] if cb else [])
    return cb


@pytest.mark.parametrize("case", ["frozen-at-init", "trains", "frozen-backbone", "frozen-loaded"])
def test_keras_batchnorm_frozen_at_its_initial_statistics(tmp_path, case):
    keras.utils.set_random_seed(0)
    head = [keras.layers.Dense(10, activation="softmax", name="head")]
    if case == "frozen-backbone":  # pre-trained, then frozen on purpose under a new head
        backbone = keras.Sequential([keras.Input((64,)), *_block("b")], name="backbone")
        _fit(keras.Sequential([backbone, keras.layers.Dense(10, activation="softmax")]), None, callback=False)
        backbone.trainable = False
        model = keras.Sequential([backbone, *head])
    else:
        model = keras.Sequential([keras.Input((64,)), *_block("a", trainable=case == "trains"), *head])
    if case == "frozen-loaded":  # trained statistics (and scale, offset) loaded into the frozen layer
        donor = keras.Sequential([keras.Input((64,)), *_block("d"), keras.layers.Dense(10, activation="softmax")])
        _fit(donor, None, callback=False)
        model.get_layer("a_bn").set_weights(donor.get_layer("d_bn").get_weights())
    cb = _fit(model, tmp_path / "run")
    found = [f for f in cb.findings if f.check == "frozen-parameters"]
    (bn,) = [s for s in cb.monitor.run.layers.last.layers if s.kind == "BatchNormalization"]
    if case != "frozen-at-init":
        assert bn.running_stats_at_init is False  # read, and moved (or loaded)
        assert found == [], [f.format() for f in found]
        return
    assert bn.running_stats_at_init and not bn.trainable and bn.input_requires_grad
    assert [f.key for f in found] == ["batchnorm-eval"]  # was: silent
    assert found[0].severity is Severity.WARNING
    assert found[0].evidence["layers"] == ["a_bn"]
    assert "trainable=False" in found[0].message and "trainable=False" in found[0].hint
