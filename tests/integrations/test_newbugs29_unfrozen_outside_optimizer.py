"""Batch 29 of new users' programs, b01: a layer unfrozen after the optimizer was built without it.

A "warm-up freeze": the body is frozen (`requires_grad=False`), the optimizer is built over
`filter(lambda p: p.requires_grad, self.parameters())` (the head alone), and the body is unfrozen
at a later epoch's start. From then on the body gets gradients but is in no parameter group, so
it never moves. `unused-parameters`' train-start look (key `not-in-optimizer`) sees a frozen body
and is right to stay silent; now the adapter looks again at each epoch's first step, while any
parameter frozen at the start remains unjudged, and names those now trainable, in no group and
given a gradient (key `unfrozen-not-in-optimizer`). Unfreezing done right stays silent: the optimizer built over
every parameter (frozen ones included), Lightning's `BaseFinetuning` adding the unfrozen layers to
the optimizer, a body frozen for the whole run, and one made trainable that gets no gradient (a
teacher run under no_grad).
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

UNFREEZE_AT = 1


class WarmupFreeze(pl.LightningModule):
    """The body frozen at the start and unfrozen at epoch `UNFREEZE_AT` (by the module itself
    when `unfreeze`, else by a callback)."""

    def __init__(self, filtered: bool, unfreeze: bool = True):
        super().__init__()
        self.filtered, self.unfreeze = filtered, unfreeze
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)
        self.body.requires_grad_(False)

    def forward(self, x):
        return self.head(self.body(x))

    def on_train_epoch_start(self):
        if self.unfreeze and self.current_epoch == UNFREEZE_AT:
            self.body.requires_grad_(True)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        params = filter(lambda p: p.requires_grad, self.parameters()) if self.filtered else self.parameters()
        return torch.optim.Adam(params, lr=1e-3)


class TeacherUnfrozen(WarmupFreeze):
    """The frozen part is a teacher run under no_grad: made trainable later (a stray
    `requires_grad_(True)`), it still gets no gradient, so nothing is lost by its absence from
    the optimizer."""

    def forward(self, x):
        with torch.no_grad():
            h = self.body(x)
        return self.head(h)


class Finetune(BaseFinetuning):
    """Lightning's own gradual unfreezing: the body frozen before training, unfrozen and added
    to the optimizer as a new parameter group at epoch `UNFREEZE_AT`."""

    def freeze_before_training(self, pl_module):
        self.freeze(pl_module.body)

    def finetune_function(self, pl_module, current_epoch, optimizer):
        if current_epoch == UNFREEZE_AT:
            self.unfreeze_and_add_param_group(pl_module.body, optimizer, lr=1e-3)


def _fit(tmp_path, module, callbacks=(), epochs=3):
    pl.seed_everything(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    loader = DataLoader(TensorDataset(x[:640], y[:640]), batch_size=64, shuffle=True)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(max_epochs=epochs, callbacks=[cb, *callbacks]).fit(module, loader)
    told = [w for w in caught if issubclass(w.category, MLCheckWarning)]
    return cb, told


def _unfrozen(cb):
    return [f for f in cb.findings if f.check == "unused-parameters" and f.key == "unfrozen-not-in-optimizer"]


def test_body_unfrozen_outside_the_filtered_optimizer_is_named(tmp_path):
    cb, told = _fit(tmp_path, WarmupFreeze(filtered=True))
    found = _unfrozen(cb)
    assert len(found) == 1, [(f.check, f.key, f.message) for f in cb.findings]
    f = found[0]
    assert f.severity is Severity.WARNING
    assert f.epoch == UNFREEZE_AT  # at the unfreezing epoch's first step, not a symptom's later
    assert f.evidence["parameters"] == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]
    assert "body.0.weight" in f.message and "no optimizer" in f.message
    assert "add_param_group" in f.hint
    assert any("frozen at the start were made trainable" in str(w.message) for w in told)
    # the train-start look saw the body frozen: nothing to say then
    assert not [f for f in cb.findings if f.key == "not-in-optimizer"]


@pytest.mark.parametrize(
    "module, callbacks",
    [
        pytest.param(lambda: WarmupFreeze(filtered=False), (), id="optimizer-over-every-parameter"),
        pytest.param(lambda: WarmupFreeze(filtered=True, unfreeze=False), (Finetune,), id="base-finetuning"),
        pytest.param(lambda: WarmupFreeze(filtered=True, unfreeze=False), (), id="frozen-for-the-whole-run"),
        pytest.param(lambda: TeacherUnfrozen(filtered=True), (), id="unfrozen-but-given-no-gradient"),
    ],
)
def test_unfreezing_done_right_stays_silent(tmp_path, module, callbacks):
    net = module()
    cb, told = _fit(tmp_path, net, [c() for c in callbacks])
    assert not _unfrozen(cb), [(f.check, f.key, f.message) for f in cb.findings]
    assert not [f for f in cb.findings if f.check == "unused-parameters"]
    assert not [w for w in told if "unused-parameters" in str(w.message)]
    if callbacks:  # the callback did unfreeze the body, into the optimizer
        assert all(p.requires_grad for p in net.body.parameters())
