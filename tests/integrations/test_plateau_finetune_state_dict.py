"""`loss-plateau` on a real Lightning fine-tune: a model whose weights come from an earlier
fit of the same model (`load_state_dict`), trained on at a lower rate, starts far below the
chance level and only creeps down; nothing marks it pretrained, so "fell little from its
initial loss" must not count there. A fresh model stalled at a rate far too low still warns."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class Clf(pl.LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def _fit(model, train, val, epochs, cb=None):
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb] if cb else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train, val)


@pytest.mark.parametrize("finetune", [True, False])
def test_finetune_from_state_dict_is_no_plateau(finetune):
    pl.seed_everything(0)
    x, y = make_classification(n_samples=3000, n_features=20, n_informative=10, n_classes=3, random_state=0)
    x = StandardScaler().fit_transform(x).astype(np.float32)
    xs, ys = torch.tensor(x), torch.tensor(y)
    train = DataLoader(TensorDataset(xs[:2400], ys[:2400]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(xs[2400:], ys[2400:]), batch_size=256)
    if finetune:
        pre = Clf(1e-3)
        _fit(pre, train, val, 5)  # an ordinary short fit: loss ~0.4, chance ln 3 = 1.1
        model = Clf(1e-4)  # fine-tuned at a tenth of the rate: falls a few percent
        model.load_state_dict(pre.state_dict())
    else:
        model = Clf(1e-7)  # fresh weights at a rate far too low: stuck at chance
    cb = MLCheckCallback(log_dir=False, checks=["loss-plateau"], overfit_batch=False)
    _fit(model, train, val, 5, cb)
    plateau = [f for f in cb.findings if f.check == "loss-plateau" and f.severity.name == "WARNING"]
    assert cb.live.monitor.run.info.pretrained is None  # nothing told mlcheck the weights were trained
    if finetune:
        assert not plateau, [f.format() for f in cb.findings]
    else:
        assert plateau, [f.format() for f in cb.findings]


def test_slow_finetune_of_a_partly_trained_model_with_small_batches_is_no_plateau():
    # pre-trained for one epoch (loss ~0.9, above half of ln 3: nothing marks it trained), then
    # fine-tuned at 1e-4 with batches of 10: the loss falls 0.92 -> 0.78 over 10 epochs, but at
    # a quarter of the run the last 128 steps' fall (0.056 +- 0.030) was not significant, and
    # "plateaued at 0.87, only 3.9% below its initial 0.905" was raised: the noise left room for
    # a fall of 0.15, far from a stall
    pl.seed_everything(0)
    x, y = make_classification(
        n_samples=1600, n_features=20, n_informative=6, n_classes=3, flip_y=0.1, class_sep=1.0, random_state=0
    )
    x = StandardScaler().fit_transform(x).astype(np.float32)
    xs, ys = torch.tensor(x), torch.tensor(y)
    train = DataLoader(TensorDataset(xs[:1000], ys[:1000]), batch_size=10, shuffle=True)
    val = DataLoader(TensorDataset(xs[1000:], ys[1000:]), batch_size=256)
    pre = Clf(1e-3)
    _fit(pre, train, val, 1)
    model = Clf(1e-4)
    model.load_state_dict(pre.state_dict())
    cb = MLCheckCallback(log_dir=False, checks=["loss-plateau"], overfit_batch=False)
    _fit(model, train, val, 10, cb)
    assert [f for f in cb.findings if f.check == "loss-plateau"] == [], [f.format() for f in cb.findings]
