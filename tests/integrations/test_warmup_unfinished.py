"""Batch 26 of new users' programs, b03: a linear warm-up over 20,000 steps (sized for another
data set) on a run of a few hundred steps, stepped every batch. The rate rose all run and ended
at ~2% of the optimizer's configured rate; before, `lr-schedule` judged decays only and said
nothing (the run got `loss-plateau` at the class prior). Now `lr-schedule` tells it once
(WARNING, key `warmup-unfinished`) from the first epoch's end: the rate rose through the whole
record, is under 0.1x the configured rate (Lightning: the groups' `initial_lr`; Keras: the
schedule's warm-up target) and its pace reaches that rate only after the planned steps. Healthy
warm-ups stay silent: one over the first 10% of the run then cosine, one over 1.5 of 3 epochs,
OneCycleLR, and in Keras a `CosineDecay` whose warm-up is sized from the data.
"""

from __future__ import annotations

import os
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

EPOCHS = 3
BATCHES = 15  # 480 rows, batch 32
TOTAL = EPOCHS * BATCHES


def _digits():
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:480]
    return (x[order] / 16.0).astype(np.float32), y[order]


def _warmup_then_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return factor


class Digits(pl.LightningModule):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-2)
        lambda_lr = torch.optim.lr_scheduler.LambdaLR
        sched = {
            "never-ends": lambda _: lambda_lr(opt, lambda s: min(1.0, (s + 1) / 20_000)),  # the bug
            "tenth-then-cosine": lambda _: lambda_lr(opt, _warmup_then_cosine(TOTAL // 10, TOTAL)),
            "half-the-run": lambda _: lambda_lr(opt, _warmup_then_cosine(TOTAL // 2, TOTAL)),
            "one-cycle": lambda _: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=TOTAL),
        }[self.schedule](None)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.mark.parametrize("schedule", ["never-ends", "tenth-then-cosine", "half-the-run", "one-cycle"])
def test_newbugs26_warmup_that_never_ends_is_named(tmp_path, schedule):
    pl.seed_everything(0)
    x, y = _digits()
    loader = DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=False, checks=["lr-schedule"], overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Digits(schedule), loader)
    told = [f for f in cb.findings if f.check == "lr-schedule" and f.severity is not Severity.INFO]
    if schedule != "never-ends":
        assert told == [], [f.format() for f in cb.findings]
        return
    (f,) = told  # before: none
    assert f.severity is Severity.WARNING and f.key == "warmup-unfinished", f.format()
    assert f.evidence["base_lr"] == pytest.approx(1e-2)
    assert f.evidence["share_of_base"] < 0.01 and f.evidence["reaches_base_at_step"] > TOTAL
    # told at the first step judgement (every 32 steps) after the first epoch's end: step 31
    assert f.step < BATCHES + 32


@pytest.mark.parametrize("warmup_steps", [20_000, 30])
def test_keras_cosine_decay_warmup_longer_than_the_run_is_named(tmp_path, warmup_steps, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    x, y = _digits()
    keras.utils.set_random_seed(0)
    epochs, steps = 5, 30  # 480 rows, batch 16
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=epochs * steps, warmup_target=1e-2, warmup_steps=warmup_steps
    )
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(schedule), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = KerasCallback(log_dir=None, checks=["lr-schedule"], overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=[cb])
    told = [f for f in cb.findings if f.check == "lr-schedule" and f.severity is not Severity.INFO]
    if warmup_steps < epochs * steps:
        assert told == [], [f.format() for f in cb.findings]
        return
    (f,) = told  # before: none
    assert f.severity is Severity.WARNING and f.key == "warmup-unfinished", f.format()
    assert f.evidence["base_lr"] == pytest.approx(1e-2, rel=1e-3)  # the schedule read ahead: 0.009999
