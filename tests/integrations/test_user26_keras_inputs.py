"""A new user's own scripts (round 26): a Keras functional model with two named inputs.

Each test is a real fit or the real `mlcheck` command, and failed before its fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlcheck import Severity

keras = pytest.importorskip("keras")

_TWO_INPUTS_FILE = """
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras

rng = np.random.default_rng(0)
xa = rng.normal(size=(256, 8)).astype("float32")
xb = rng.normal(size=(256, 4)).astype("float32")
y_train = ((xa[:, 0] + xb[:, 0]) > 0).astype("int64")
x_train = {"a": xa, "b": xb}

ia, ib = keras.Input((8,), name="a"), keras.Input((4,), name="b")
dense = [keras.layers.Dense(16, activation="relu")(ia), keras.layers.Dense(16, activation="relu")(ib)]
h = keras.layers.Concatenate()(dense)
model = keras.Model([ia, ib], keras.layers.Dense(2)(h))
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
"""


def test_user26_sanity_finds_a_keras_model_whose_x_train_is_a_dict_of_named_inputs(tmp_path):
    """Before: exit 2, `found no complete target ... Keras model `model` (not usable: no training
    arrays (looked for x_train/X_train and y_train)); torch module `model` (not usable: ...)`:
    x_train was there (a dict of the named inputs, as `fit` takes it), and the same Keras model
    was listed a second time as a torch module (Keras' torch backend). Now: the model is checked
    (exit 0), and the checks that perturb one input array say the inputs are not one array
    instead of "it needs floating-point array inputs"."""
    model = tmp_path / "model.py"
    model.write_text(_TWO_INPUTS_FILE)
    env = {**os.environ, "KERAS_BACKEND": "torch", "KERAS_HOME": str(tmp_path / "keras-home")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlcheck",
            "sanity",
            str(model),
            "--json",
            "--select",
            "missing-nonlinearity,batch-dependence,loss-at-init",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    findings = json.loads(done.stdout)["findings"]
    skipped = {f["check"]: f["message"] for f in findings if f["message"].startswith("Skipped:")}
    assert set(skipped) == {"missing-nonlinearity", "batch-dependence"}, findings
    for message in skipped.values():
        assert "not one array (several inputs" in message and "floating-point array inputs" not in message
        assert message.endswith("and this check perturbs one input array."), message


def test_user26_a_live_keras_fit_on_two_named_inputs_says_why_missing_nonlinearity_did_not_run(tmp_path):
    """The live callback on the same model: its one INFO named a need the inputs meet ("it needs
    floating-point array inputs of 8+ samples"); now it says they are not one array."""
    import numpy as np

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(256, 8)).astype("float32")
    xb = rng.normal(size=(256, 4)).astype("float32")
    y = ((xa[:, 0] + xb[:, 0]) > 0).astype("int64")
    ia, ib = keras.Input((8,), name="a"), keras.Input((4,), name="b")
    dense = [keras.layers.Dense(16, activation="relu")(ia), keras.layers.Dense(16, activation="relu")(ib)]
    model = keras.Model([ia, ib], keras.layers.Dense(2)(keras.layers.Concatenate()(dense)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=str(tmp_path / "logs"))
    model.fit({"a": xa, "b": xb}, y, epochs=2, batch_size=32, callbacks=[cb], verbose=0)
    assert all(f.severity is Severity.INFO for f in cb.findings), [(f.check, f.message) for f in cb.findings]
    skipped = [f for f in cb.findings if f.check == "missing-nonlinearity"]
    assert len(skipped) == 1 and "not one array (several inputs" in skipped[0].message, skipped
    assert skipped[0].message.endswith("of another kind), and this check perturbs one input array."), skipped
