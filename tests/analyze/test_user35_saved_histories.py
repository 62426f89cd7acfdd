"""user35: two ways a new user saves a run's history that `mlcheck analyze` refused.

- A Hugging Face Trainer's `log_history` list saved alone under a `*history*.json` name
  (`json.dump(trainer.state.log_history, f)`): refused as "JSON that is not a Keras History dict
  of lists", and a directory holding it had "no saved Keras History". Now read as the Trainer's
  `trainer_state.json` is.
- A Keras History dict's repr saved as a JSON string (`json.dump(str(history.history), f)`):
  refused as "does not look like a metrics CSV". Now read as the History dict it holds.

Both from real fits, through the real `mlcheck` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest


def _analyze(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    return run


def test_user35_a_trainers_log_history_saved_alone_is_read_as_its_trainer_state(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    rng = np.random.default_rng(0)
    ids, labels = rng.integers(10, 100, size=(96, 16)), rng.integers(0, 2, size=96)
    ids[labels == 1, 1] = 7
    data = [{"input_ids": torch.tensor(row), "labels": int(y)} for row, y in zip(ids, labels)]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        eval_strategy="epoch",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(
        model=BertForSequenceClassification(config), args=arguments, train_dataset=data, eval_dataset=data[:32]
    )
    trainer.train()
    folder = tmp_path / "saved"
    folder.mkdir()
    with open(folder / "trainer_history.json", "w") as fh:
        json.dump(trainer.state.log_history, fh, indent=2)

    for path in (folder / "trainer_history.json", folder):  # the file, and a directory scan
        run = _analyze(path)
        assert run["format"] == "hf-trainer-state"
        assert run["series"]["train_loss"] == "train/loss" and run["series"]["val_loss"] == "eval/loss"


def test_user35_a_keras_history_repr_saved_as_a_json_string_is_read(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, validation_split=0.25, epochs=4, verbose=0)
    path = tmp_path / "history.json"
    with open(path, "w") as fh:
        json.dump(str(history.history), fh)  # a string: "{'loss': [...], 'val_loss': [...]}"
    assert path.read_text().startswith("\"{'")

    for target in (path, tmp_path):
        run = _analyze(target)
        assert run["format"] == "keras-history"
        assert run["series"]["epoch_train_loss"] == "loss" and run["series"]["val_loss"] == "val_loss"


def test_user35_a_keras_fits_csvlogger_and_saved_history_are_named_as_keras_loggers(tmp_path):
    """One Keras fit saved twice (its `CSVLogger` file and `json.dump(history.history, f)`) is
    analysed once; the note named Lightning's TensorBoardLogger and CSVLogger as the example."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    history = model.fit(x, y, validation_split=0.25, epochs=4, verbose=0, callbacks=[logger])
    with open(tmp_path / "history.json", "w") as fh:
        json.dump(history.history, fh)

    run = _analyze(tmp_path)
    said = " ".join(run["info"])
    assert "two loggers of one fit" in said and "Keras' CSVLogger" in said and "Lightning" not in said


def test_review38_a_validate_before_fit_is_named_as_such(tmp_path):
    """user35: `trainer.validate(model)` before `fit` logs one more validation loss, at step 0; the
    note called the four losses of three epochs "Lightning's `val_check_interval` below 1, or an
    int". Now it names the validation before the fit; a fit validating twice an epoch keeps its note."""
    pl = pytest.importorskip("lightning.pytorch")
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tests.lightning_trainer import quiet_trainer

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

        def training_step(self, batch, _):
            loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 1e-2)

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
    for root, interval, before in ((tmp_path / "before", 1.0, True), (tmp_path / "twice", 0.5, False)):
        trainer = quiet_trainer(
            max_epochs=3,
            default_root_dir=root,
            logger=pl.loggers.TensorBoardLogger(root),
            log_every_n_steps=2,
            val_check_interval=interval,
        )
        model = Net()
        if before:
            trainer.validate(model, val, verbose=False)
        trainer.fit(model, train, val)
        notes = " ".join(_analyze(root / "lightning_logs")["info"])
        assert ("before the fit's first training step" in notes) is before, notes
        assert ("val_check_interval" in notes) is not before, notes
