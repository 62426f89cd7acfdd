"""`frozen-parameters` on a real Keras fit (torch backend), the /tmp bug shape: a multi-label
classifier whose hidden Dense was set `trainable=False` by mistake holds 71% of the weights, past
the share that adapters freeze on purpose; its weights are still glorot_uniform's draw, so it is
named, and the slow training loss it causes is not blamed on the learning rate alone. The same
layer trained first and then frozen (a fine-tuning) stays silent."""

from __future__ import annotations

import keras
import pytest

from mlcheck import Severity
from mlcheck.integrations.keras import MLCheckCallback

pytestmark = pytest.mark.filterwarnings("ignore")


def _data():
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=800, n_features=20, n_classes=5, n_labels=2, random_state=0)
    return (x / x.max()).astype("float32"), y.astype("float32")


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inp = keras.Input((20,))
    h = keras.layers.Dense(64, activation="relu", name="trunk")(inp)
    h = keras.layers.Dense(64, activation="relu", name="hidden")(h)
    out = keras.layers.Dense(5, activation="sigmoid", name="labels")(h)
    return keras.Model(inp, out)


def _fit(model, tmp_path, epochs: int, callback: bool = True):
    x, y = _data()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["binary_accuracy"])
    cb = MLCheckCallback(log_dir=tmp_path, overfit_batch=False, every_n_steps=5) if callback else None
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb] if cb else [])
    return cb


def test_a_hidden_layer_frozen_at_its_initialisation_is_named(tmp_path):
    model = _model()
    model.get_layer("hidden").trainable = False  # meant another layer
    cb = _fit(model, tmp_path, epochs=4)
    (finding,) = [f for f in cb.findings if f.check == "frozen-parameters"]
    assert finding.evidence["layer"] == "hidden" and finding.severity == Severity.WARNING
    assert finding.evidence["init_distance"] < 1.63 and "never trained" in finding.message
    for f in cb.findings:
        if f.check in ("lr-too-low", "loss-plateau"):
            assert f.evidence.get("likely_cause") == "frozen-parameters", f.format()


def test_a_trained_layer_frozen_for_fine_tuning_stays_silent(tmp_path):
    model = _model()
    _fit(model, tmp_path / "pretrain", epochs=3, callback=False)
    model.get_layer("hidden").trainable = False  # frozen on purpose, trained
    cb = _fit(model, tmp_path / "finetune", epochs=4)
    # measured (the frozen layer's weights are far from their initialiser's draw), and not named
    (hidden,) = [s for s in cb.monitor.run.layers.last.layers if s.path == "hidden"]
    assert hidden.init_distance > 1.63 and not hidden.trainable
    assert not [f for f in cb.findings if f.check == "frozen-parameters"], [f.format() for f in cb.findings]
