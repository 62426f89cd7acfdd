"""A new user's own scripts (round 29): an engineer wires mlcheck into an existing Lightning project.

Each test is a real fit, or the real `mlcheck` command on the files a real fit wrote, and failed
before its fix.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from tests.lightning_trainer import quiet_trainer

pytest.importorskip("lightning")


def _digits_module(raw_pixels: bool = False):
    """A LightningDataModule with `setup(stage)` (1,200 / 300 / 297 digits) and a two-layer MLP
    logging `train_loss` and `val_loss`, as a user's existing project has them. `raw_pixels`
    feeds the pixels on a 0-255 scale (a real `unnormalized-input` finding)."""
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset, random_split

    class Digits(pl.LightningDataModule):
        def setup(self, stage=None):
            x, y = load_digits(return_X_y=True)
            x = x / 16.0 * (255.0 if raw_pixels else 1.0)
            data = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))
            split = random_split(data, [1200, 300, 297], generator=torch.Generator().manual_seed(0))
            self.train_set, self.val_set, self.test_set = split

        def train_dataloader(self):
            return DataLoader(self.train_set, batch_size=64, shuffle=True)

        def val_dataloader(self):
            return DataLoader(self.val_set, batch_size=64)

    class Mlp(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", F.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    return Digits(), Mlp()


def test_user29_limit_train_batches_of_one_update_an_epoch_is_not_told_it_is_at_chance_after_two(tmp_path):
    """`Trainer(limit_train_batches=0.1)` on 19 batches an epoch trains one batch an epoch: 15
    epochs are 15 updates. `loss-plateau` took the run for a log whose steps count epochs and
    warned at epoch 2 (2 updates) that training and validation were still at chance (key
    `chance`). Its class-prior verdict (key `val-prior`) is the next test's."""
    import lightning.pytorch as pl

    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0)
    dm, model = _digits_module()
    cb = MLCheckCallback(log_dir=False)  # its train-start checks name the loss the verdicts need
    trainer = quiet_trainer(max_epochs=15, limit_train_batches=0.1, callbacks=[cb])
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 15
    chance = [f for f in cb.findings if f.check == "loss-plateau" and f.key == "chance"]
    assert not chance, [f.format() for f in chance]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_user29_limit_train_batches_of_one_update_an_epoch_is_not_told_it_never_beat_the_class_prior(
    tmp_path, optimizer
):
    """The same healthy run (one update an epoch, 15 epochs) got `Validation never beat predicting
    the class prior` (key `val-prior`) at epoch 5, after 6 updates: under Adam 1e-3 its validation
    loss had come down from 2.30 to 2.279 against a bound of 2.275, falling ~0.004 an update; under
    SGD 0.05 (slower: 2.302 after 6 updates, ~0.003 an update, 2.279 after 15) too. The verdict
    now waits while the curve's own pace would beat the bound by `min_steps` (100) updates
    (`curve.closing_on`); a run as long again would not have been enough for the SGD one."""
    import lightning.pytorch as pl
    import torch

    from mlcheck import Severity
    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0)
    dm, model = _digits_module()
    if optimizer == "sgd":
        model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.05)
    cb = MLCheckCallback(log_dir=False)
    trainer = quiet_trainer(max_epochs=15, limit_train_batches=0.1, callbacks=[cb])
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 15
    loud = [f for f in cb.findings if f.severity >= Severity.WARNING]
    assert not loud, [f.format() for f in loud]


def test_user29_a_fit_resumed_into_a_new_version_says_where_the_earlier_findings_are(tmp_path, caplog):
    """A fit resumed from a checkpoint by a new Trainer logs to a new `version_N`; the end-of-fit
    line counted the finding restored from the checkpoint and said `details in
    version_1/findings.jsonl`, a file that was never written (the finding is in version_0's)."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0)
    dm, model = _digits_module(raw_pixels=True)
    first = MLCheckCallback(overfit_batch=False)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    logger = TensorBoardLogger(tmp_path, name="runs")
    trainer = quiet_trainer(max_epochs=2, callbacks=[first, saver], logger=logger, enable_checkpointing=True)
    trainer.fit(model, datamodule=dm)
    assert "unnormalized-input" in [f.check for f in first.findings]
    first_file = first.resolved_log_dir / "findings.jsonl"
    assert first_file.is_file()

    dm, model = _digits_module(raw_pixels=True)
    second = MLCheckCallback(overfit_batch=False)
    resumed = quiet_trainer(max_epochs=3, callbacks=[second], logger=TensorBoardLogger(tmp_path, name="runs"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mlcheck"):
        resumed.fit(model, datamodule=dm, ckpt_path=saver.last_model_path)
    assert second.resolved_log_dir != first.resolved_log_dir
    assert second.findings[: len(first.findings)] == first.findings
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("mlcheck: checked"))
    assert "raised before the resume in" in line and str(first_file) in line, line
    # the resumed fit's own file is named only where that fit wrote one
    own = second.resolved_log_dir / "findings.jsonl"
    assert own.is_file() or str(own) not in line, line


def test_user29_trainer_validate_after_fit_is_not_read_as_a_second_validation_in_an_epoch(tmp_path):
    """`trainer.fit` then `trainer.validate` on the same Trainer: Lightning logs the validation
    at the fit's last step, in epoch `max_epochs`. `mlcheck analyze` left that point out of the
    curve, but still counted it and noted `holds 7 validation losses in 6 epochs (Lightning's
    val_check_interval below 1, or an int)`, a setting the run never used."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    pl.seed_everything(0)
    dm, model = _digits_module()
    loggers = [TensorBoardLogger(tmp_path, name="tb"), CSVLogger(tmp_path, name="csv")]
    trainer = quiet_trainer(max_epochs=6, logger=loggers, log_every_n_steps=1, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    trainer.validate(model, datamodule=dm, verbose=False)
    for target in (tmp_path, tmp_path / "csv" / "version_0" / "metrics.csv"):
        out = subprocess.run(
            [sys.executable, "-m", "mlcheck", "analyze", str(target)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        text = out.stdout + out.stderr
        assert "6 epochs" in text, text
        assert "val_check_interval" not in text, text
