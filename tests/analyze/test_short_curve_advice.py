"""The "too few loss points" note of the real `mlcheck analyze` command advises what fits the
logs it read: Keras' `TensorBoard(update_freq="batch")` only where Keras' TensorBoard callback
wrote them, not for mlcheck's own callback's events or a Keras `CSVLogger` file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tensorboard.summary.writer.event_file_writer import EventFileWriter

from analyze_logs import tensor_event
from analyze_runs import digits


def analyze(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _keras_fit_with_mlcheck(log_dir: Path, epochs: int, **options) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    x, y = digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MLCheckCallback(log_dir=log_dir, overfit_batch=False, **options)
    model.fit(
        x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=epochs, batch_size=8, verbose=0, callbacks=[cb]
    )


def test_mlchecks_own_keras_events_get_its_own_advice(tmp_path):
    _keras_fit_with_mlcheck(tmp_path / "logs", epochs=2)  # 96 steps, `batch_loss` every 25
    out = analyze(tmp_path / "logs")
    assert "too few for" in out and "'train/batch_loss'" in out
    assert "update_freq" not in out and "TensorBoard(" not in out
    assert "MLCheckCallback(every_n_steps=1)" in out
    # ... and that advice works: every step's loss logged, the note is gone
    _keras_fit_with_mlcheck(tmp_path / "dense", epochs=3, every_n_steps=1)  # 144 points: enough
    assert "too few for" not in analyze(tmp_path / "dense")


def test_keras_csvlogger_gets_no_tensorboard_advice(keras_csvs):
    out = analyze(keras_csvs[","])
    assert "too few for" in out and "update_freq" not in out
    assert "CSVLogger" in out and "one row per epoch" in out


def test_keras_tensorboard_callback_events_still_get_update_freq(tmp_path):
    # what Keras' TensorBoard callback writes at its default update_freq="epoch" (it needs
    # TensorFlow, absent here): TF2 tensor scalars `epoch_loss` in train/ and validation/ event
    # files of its own naming (".v2")
    for sub, loss in (("train", 1.0), ("validation", 1.2)):
        writer = EventFileWriter(str(tmp_path / "logs" / sub), filename_suffix=".v2")
        for epoch in range(3):
            writer.add_event(tensor_event(epoch, "epoch_loss", loss / (epoch + 1)))
        writer.close()
    out = analyze(tmp_path / "logs")
    assert "too few for" in out and 'TensorBoard(update_freq="batch")' in out
    assert "log_every_n_steps" not in out


def test_a_trainer_state_gets_the_trainers_own_advice(tmp_path):
    """Round 11: a short `trainer_state.json` was told to use Lightning's `log_every_n_steps`
    and `SummaryWriter.add_scalar`, neither of which a Trainer user has."""
    import json

    history = [{"loss": 2.0 / k, "learning_rate": 1e-4, "epoch": k / 20, "step": 10 * k} for k in range(1, 20)]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    out = analyze(tmp_path / "trainer_state.json")
    assert "too few for" in out and "TrainingArguments(logging_steps=1)" in out
    assert "log_every_n_steps" not in out and "SummaryWriter" not in out
