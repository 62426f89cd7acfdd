"""Two Lightning `MLCheckCallback`s that differ only in `log_dir` (or `every_n_steps`, ...) share a
Trainer: before, `state_key` held only the checks, `suppress` and `stop_on`, so `Trainer(...)`
refused them ("Found more than one stateful callback ... state_key must be unique"). A checkpoint
saved under the old key (the class name for a callback with the default checks) still resumes."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning
from mlcheck.integrations.lightning import MLCheckCallback

torch.set_num_threads(1)


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-2)


def loaders():
    x = torch.randn(320, 8, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return (
        DataLoader(TensorDataset(x[:256], y[:256]), batch_size=32),
        DataLoader(TensorDataset(x[256:], y[256:]), batch_size=64),
    )


def fit(tmp_path, callbacks, max_epochs, ckpt_path=None):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=callbacks,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        trainer.fit(Net(), *loaders(), ckpt_path=ckpt_path)
    return trainer


def test_small16_callbacks_differing_only_in_log_dir_or_every_n_steps_share_a_trainer(tmp_path):
    a = MLCheckCallback(log_dir=tmp_path / "a", overfit_batch=False)
    b = MLCheckCallback(log_dir=tmp_path / "b", overfit_batch=False)
    c = MLCheckCallback(log_dir=tmp_path / "c", overfit_batch=False, every_n_steps=5)
    assert len({a.state_key, b.state_key, c.state_key}) == 3
    assert MLCheckCallback().state_key == "MLCheckCallback"  # checkpoints of the default keep resuming
    fit(tmp_path, [a, b, c], max_epochs=1)
    for name in "abc":  # each wrote its own TensorBoard file
        assert list((tmp_path / name).glob("events.out.tfevents.*"))


def test_small16_a_checkpoint_saved_under_the_old_key_resumes(tmp_path):
    logs = tmp_path / "logs"
    first = fit(tmp_path, [MLCheckCallback(log_dir=logs, overfit_batch=False)], max_epochs=1)
    saved = first.checkpoint_callback.best_model_path
    checkpoint = torch.load(saved, weights_only=False)
    now = MLCheckCallback(log_dir=logs, overfit_batch=False)
    assert now.state_key != "MLCheckCallback" and now.state_key in checkpoint["callbacks"]
    # as the version before small16 saved it: the state under the class name alone
    state = checkpoint["callbacks"].pop(now.state_key)
    assert state  # the run's state (steps seen, series, checks)
    checkpoint["callbacks"]["MLCheckCallback"] = state
    old = tmp_path / "old-key.ckpt"
    torch.save(checkpoint, old)

    fit(tmp_path, [now], max_epochs=2, ckpt_path=str(old))
    # the old key's state was loaded: the losses of epoch 0 (8 steps) before those of epoch 1
    assert now.live.monitor.run.train_loss.total == 16
    # two callbacks of the old key's configuration: its state could be either's, so neither takes it
    pair = [
        MLCheckCallback(log_dir=logs, overfit_batch=False),
        MLCheckCallback(log_dir=tmp_path / "b", overfit_batch=False),
    ]
    fit(tmp_path, list(pair), max_epochs=2, ckpt_path=str(old))
    assert [cb.live.monitor.run.train_loss.total for cb in pair] == [8, 8]


def test_a_run_resumed_with_an_argument_changed_keeps_its_state(tmp_path):
    """`warn=False` (or any argument) changed between saving and resuming changes the key: the
    checkpoint's one MLCheckCallback state is still the trainer's one callback's."""
    logs = tmp_path / "logs"
    first = fit(tmp_path, [MLCheckCallback(log_dir=logs, overfit_batch=False)], max_epochs=1)
    saved = first.checkpoint_callback.best_model_path
    now = MLCheckCallback(log_dir=logs, overfit_batch=False, every_n_steps=5, warn=False)
    assert now.state_key not in torch.load(saved, weights_only=False)["callbacks"]
    fit(tmp_path, [now], max_epochs=2, ckpt_path=saved)
    assert now.live.monitor.run.train_loss.total == 16  # epoch 0's 8 steps came with the state
