"""Real training runs that write the logs the analyze tests read back (tiny models, seconds)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tests.lightning_trainer import quiet_trainer


def digits(n: int = 512, seed: int = 0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))[:n]
    return (x[idx] / 16.0).astype(np.float32), y[idx].astype(np.int64)


def lightning_run(
    log_dir: Path,
    logger: str = "tensorboard",
    epochs: int = 4,
    lr: float = 0.05,
    lr_monitor: bool = True,
    on_step: bool = True,
    seed: int = 0,
) -> Path:
    """Trains a tiny MLP on digits with Lightning; returns the logger's log_dir. `logger`:
    "tensorboard", "csv", or both at once: "both" (each logger its own `version_N`, as
    `logger=[TensorBoardLogger(d), CSVLogger(d)]` gives) or "both-one-folder" (the CSV in the
    TensorBoard run's folder); then the TensorBoard logger's log_dir."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    x, y = digits()
    train = TensorDataset(torch.from_numpy(x[:384]), torch.from_numpy(y[:384]))
    val = TensorDataset(torch.from_numpy(x[384:]), torch.from_numpy(y[384:]))

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

        def training_step(self, batch, _):
            xb, yb = batch
            logits = self.net(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            acc = (logits.argmax(1) == yb).float().mean()
            self.log("train_loss", loss, on_step=on_step, on_epoch=True)
            self.log("train_acc", acc, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            xb, yb = batch
            logits = self.net(xb)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, yb))
            self.log("val_acc", (logits.argmax(1) == yb).float().mean())

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=lr)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
            return [opt], [sched]

    if logger in ("tensorboard", "both", "both-one-folder"):
        log = TensorBoardLogger(str(log_dir), name="lightning_logs")
    else:
        log = CSVLogger(str(log_dir), name="lightning_logs")
    loggers = [log]
    if logger.startswith("both"):
        loggers.append(CSVLogger(str(log_dir), name="lightning_logs", version=log.version if "one" in logger else None))
    trainer = quiet_trainer(
        max_epochs=epochs,
        logger=loggers,
        log_every_n_steps=2,
        accelerator="cpu",
        callbacks=[LearningRateMonitor("step")] if lr_monitor else [],
    )
    trainer.fit(Net(), DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=64))
    return Path(log.log_dir)


SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def keras_csv_run(folder: Path, epochs: int = 4, seed: int = 0) -> dict[str, Path]:
    """Trains a tiny Keras MLP on digits with one CSVLogger per separator (the same fit writes
    them all); returns {separator: CSV path}."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(seed)
    x, y = digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    paths = {sep: folder / f"training_{name}.log" for sep, name in SEPARATORS.items()}
    loggers = [keras.callbacks.CSVLogger(str(p), separator=sep) for sep, p in paths.items()]
    history = model.fit(
        x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=epochs, batch_size=32, verbose=0, callbacks=loggers
    )
    # the same fit's History, as users save it: json.dump, and print() pasted into a file
    (folder / "history.json").write_text(json.dumps(history.history))
    (folder / "history.txt").write_text(f"{history.history}\n")
    return paths
