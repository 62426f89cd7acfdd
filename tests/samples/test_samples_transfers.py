"""The per-sample capture's cost structure on a real Lightning fit: the steps of an epoch are
held as references and reduced together, once per epoch (training and validation in one
on-device reduction and one transfer to the host), not once per split; and the submodules lose
their forward hooks once the module's own output is known to serve (a hooked module leaves
torch's fast call path)."""

from __future__ import annotations

import warnings

import numpy as np

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from tests.lightning_trainer import quiet_trainer

EPOCHS = 3


def _fit(tmp_path, hooks_seen=None):
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16).astype(np.float32), y.astype(np.int64)

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, i):
            if hooks_seen is not None:
                hooks_seen.append(("train", len(self.net._forward_hooks)))
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, i):
            if hooks_seen is not None:
                hooks_seen.append(("val", len(self.net._forward_hooks)))
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle):
        ds = torch.utils.data.TensorDataset(torch.tensor(a), torch.tensor(b))
        return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=shuffle)

    cb = MLCheckCallback(checks=[*default_checks(), NoisyLabels(), WeakSlice()], overfit_batch=False, log_dir=tmp_path)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader(x[:1500], y[:1500], True), loader(x[1500:], y[1500:], False))
    return cb


def test_lightning_reduces_an_epochs_training_and_validation_outputs_at_once(tmp_path, monkeypatch):
    import mlcheck.integrations.torch_samples as torch_samples

    reduced_rows: list[int] = []
    reduce = torch_samples.reduce_outputs

    def counting(output, targets):
        reduced_rows.append(int(targets.shape[0]))
        return reduce(output, targets)

    monkeypatch.setattr(torch_samples, "reduce_outputs", counting)
    cb = _fit(tmp_path)
    # 24 training batches and 5 validation batches per epoch: one reduction for all 29 (it was
    # one per split, and on a tiny model the fixed cost of each is what the fit notices)
    assert reduced_rows == [1500 + 297] * EPOCHS
    store = cb.monitor.run.samples
    assert store.get("train").column("epochs").min() == EPOCHS  # every sample seen every epoch
    assert store.get("val").column("epochs").min() == EPOCHS


def test_lightning_unhooks_the_submodules_once_the_modules_own_output_serves(tmp_path):
    hooks_seen: list[tuple[str, int]] = []
    cb = _fit(tmp_path, hooks_seen)
    hooked = [step for step in hooks_seen if step[1]]
    # the first training step and the first validation step after Lightning's sanity check (two
    # hooks there: the samples capture's and the validation row losses' for `train-val-gap`)
    assert hooked == [("train", 1), ("val", 2)], hooked[:5]
    assert len(hooks_seen) == 2 + EPOCHS * (24 + 5)  # every step ran (2 sanity-check steps)
    assert cb.monitor.run.samples.get("train").column("epochs").min() == EPOCHS
