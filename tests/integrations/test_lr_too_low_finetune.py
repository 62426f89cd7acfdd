"""`lr-too-low` on a real Lightning fine-tune: a model whose weights come from an earlier fit of
the same model (`load_state_dict`, which leaves no trace mlcheck can read), trained on at a
normal rate, starts far below the chance level and keeps creeping down: "falls steadily but
slowly" is what fine-tuning looks like there, not a rate too low. The "started trained" fact is
the one `loss-plateau` uses (`mlcheck.checks.class_prior.starts_trained`). A fresh model at a
rate 1000x too low still gets `lr-too-low`."""

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

CLASSES = 5


class Clf(pl.LightningModule):
    def __init__(self, lr):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, CLASSES))

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
def test_finetune_from_state_dict_is_not_lr_too_low(finetune):
    pl.seed_everything(0)
    x, y = make_classification(
        n_samples=6000, n_features=20, n_informative=12, n_classes=CLASSES, class_sep=0.8, random_state=0
    )
    x = StandardScaler().fit_transform(x).astype(np.float32)
    xs, ys = torch.tensor(x), torch.tensor(y)
    train = DataLoader(TensorDataset(xs[:4800], ys[:4800]), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(xs[4800:], ys[4800:]), batch_size=256)
    if finetune:
        model = Clf(3e-4)  # to be fine-tuned at a usual Adam rate: falls ~12% more, steadily
        pre = Clf(1e-3)
        _fit(pre, train, val, 10)  # an ordinary fit: loss ~0.52, chance ln 5 = 1.61
        model.load_state_dict(pre.state_dict())
    else:
        model = Clf(1e-6)  # fresh weights at a rate 1000x below Adam's usual 1e-3
    cb = MLCheckCallback(log_dir=False)
    _fit(model, train, val, 15, cb)
    assert cb.live.monitor.run.info.pretrained is None  # nothing told mlcheck the weights were trained
    if finetune:
        loud = [f.format() for f in cb.findings if f.severity.name != "INFO"]
        assert not loud, loud  # was: lr-too-low "falls steadily but slowly: only 15.9% in 1056 steps"
    else:
        assert any(f.check == "lr-too-low" and f.severity.name == "WARNING" for f in cb.findings), [
            f.format() for f in cb.findings
        ]
