"""user38: mlcheck's Keras callback and Keras' own `TensorBoard` callback both at their default
`log_dir="logs"`, in one fit.

Both write into `logs/train` and `logs/validation`: mlcheck's file (`....mlcheck`) and, with
TensorFlow installed, Keras' (`....v2`, the same process, its epochs from 0). Before,
`mlcheck analyze logs` took the second file's steps starting again for a second fit: "read as 2
runs, one per fit ... a log folder reused by another fit", the one fit named twice. Now a file
of another writer of the same process joins the fit beside it. Keras' `TensorBoard` needs
TensorFlow, which the test environment of the torch backend does not have, so its file is written
here as Keras 3.15.1's `TensorBoard` writes it (checked against a real one: `epoch_loss` as a
TF2 scalar tensor at steps 0..epochs-1, the name `events.out.tfevents.<time>.<host>.<pid>.<n>.v2`);
the mlcheck side is a real fit. Two fits of one writer in one folder stay two runs
(test_real_layouts' `test_a_keras_log_dir_reused_by_a_second_fit_is_two_runs`, test_keras'
`test_user17_two_fits_into_one_log_dir_keep_their_own_findings_in_mlcheck_analyze`)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from analyze_logs import tensor_event, write_framed  # noqa: E402
from mlcheck.integrations.keras import MLCheckCallback  # noqa: E402


def test_user38_mlcheck_and_keras_tensorboard_in_one_log_dir_are_one_run(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logs = tmp_path / "logs"
    history = model.fit(
        x[:256],
        y[:256],
        validation_data=(x[256:], y[256:]),
        epochs=4,
        callbacks=[MLCheckCallback(log_dir=logs)],
        verbose=0,
    )
    for sub, key in (("train", "loss"), ("validation", "val_loss")):
        ours = next((logs / sub).glob("events.out.tfevents.*.mlcheck"))
        stem = ours.name[: -len(".0.mlcheck")] if ours.name.endswith(".0.mlcheck") else ours.name.rsplit(".", 2)[0]
        events = [tensor_event(e, "epoch_loss", v, metadata=e == 0) for e, v in enumerate(history.history[key])]
        write_framed(logs / sub / f"{stem}.9.v2", events)  # Keras' TensorBoard, the same process

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(logs)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [r["name"] for r in runs] == ["logs"]
    assert "start again" not in done.stdout + done.stderr
