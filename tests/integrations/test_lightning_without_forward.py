"""A LightningModule without `forward` whose `training_step` calls its submodules one on the
output of the other (`self.head(self.encoder(x))`), on real Lightning fits of the digits. The
train-start checks (overfit-batch, batch-dependence, missing-nonlinearity, output-loss-mismatch)
once skipped with an INFO and the number of classes stayed unknown; the callback now traces the
chain of children on a copy during the first batch and checks through it, leaving the run's
weights as they are without mlcheck. A step that does more between its submodules still skips,
and the INFO says what forward to add."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)

STRICT = False
TRAIN_START = {"overfit-batch", "batch-dependence", "missing-nonlinearity", "output-loss-mismatch"}


class EncoderHead(pl.LightningModule):
    def __init__(self, shape: str) -> None:
        super().__init__()
        self.shape = shape
        self.encoder = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        softmax = [nn.Softmax(dim=1)] if shape == "softmax" else []
        self.head = nn.Sequential(nn.Linear(64, 10), *softmax)
        self.loss_fn = nn.CrossEntropyLoss()

    def _logits(self, x):
        hidden = self.encoder(x)
        if self.shape == "between":
            hidden = F.dropout(hidden, 0.1, self.training)  # a step between the two: no chain
        return self.head(hidden)

    def training_step(self, batch, batch_idx):
        if self.shape == "trainer":
            assert self.trainer.max_epochs  # needs its trainer: a copy without one raises
        loss = self.loss_fn(self._logits(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss_fn(self._logits(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _fit(shape: str, watched: bool = True) -> tuple[MLCheckCallback | None, list[torch.Tensor]]:
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False, strict=STRICT) if watched else None
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb] if cb else [])
    module = EncoderHead(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(
            module,
            DataLoader(TensorDataset(x[:600], y[:600]), batch_size=32, shuffle=True),
            DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=128),
        )
    return cb, [v.detach().clone() for v in module.state_dict().values()]


def test_chain_of_submodules_is_checked_and_the_run_is_unchanged():
    cb, weights = _fit("healthy")
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]
    assert not [f for f in cb.findings if f.key == "skipped"], [f.format() for f in cb.findings]  # was: skipped
    assert cb.live.monitor.run.info.num_classes == 10  # was: None
    _, alone = _fit("healthy", watched=False)
    assert all(torch.equal(a, b) for a, b in zip(weights, alone))


def test_softmax_at_the_end_of_the_chain_is_found():
    cb, _ = _fit("softmax")
    told = [f for f in cb.findings if f.check == "output-loss-mismatch" and f.severity >= Severity.WARNING]
    assert [f.key for f in told] == ["activation-twice"], [f.format() for f in cb.findings]  # was: skipped


def test_a_step_between_submodules_says_which_forward_to_add():
    cb, _ = _fit("between")
    (skipped,) = [f for f in cb.findings if f.key == "skipped"]
    assert skipped.severity == Severity.INFO and skipped.check == "overfit-batch"
    assert all(name in skipped.message for name in TRAIN_START - {"overfit-batch"})
    # was: "let the model take the batch's inputs as the loader yields them" alone
    assert skipped.hint.startswith("EncoderHead defines no forward()") and "def forward(self, x)" in skipped.hint


def test_trace_runs_on_a_copy_without_the_trainer():
    # the trace calls training_step on a copy detached from its trainer: the module's own
    # trainer, mode and logging stay as they were
    from mlcheck.integrations.torch import LightningTrainable

    module = EncoderHead("healthy")
    batch = (torch.rand(8, 64), torch.arange(8))
    trainable = LightningTrainable(module, optimizer=torch.optim.SGD(module.parameters(), 0.1))
    assert [type(s).__name__ for s in trainable.network(batch).steps] == ["Sequential", "Sequential"]
    assert "log" not in module.__dict__ and module.training


def test_a_step_that_needs_its_trainer_is_not_said_to_do_more_between_submodules():
    # the trace's copy has no trainer, so `self.trainer` raises there: the hint says the step
    # could not be traced (and why), not that it does more between its submodules (review12)
    cb, _ = _fit("trainer")
    (skipped,) = [f for f in cb.findings if f.key == "skipped" and f.check == "overfit-batch"]
    assert skipped.severity == Severity.INFO
    # unused-parameters trains a copy through training_step itself: its own INFO says the copy
    # cannot run a step that reads its Trainer (it was an internal error before)
    (unused,) = [f for f in cb.findings if f.key == "skipped" and f.check == "unused-parameters"]
    assert "reads the Trainer" in unused.message
    assert "could not be traced" in skipped.hint and "not attached to a `Trainer`" in skipped.hint, skipped.hint
    assert "does more between" not in skipped.hint and "def forward(self, x)" in skipped.hint


def test_training_step_is_traced_once_per_fit(monkeypatch):
    # the train-start checks' copies and the output-width hook share one trace (each deep copy
    # of the module and extra training_step used to be taken again by every copy that needed
    # the chain, and once more for the hook)
    from mlcheck.integrations.torch import LightningTrainable

    traced = []
    real = LightningTrainable._traced_chain

    def counting(self, batch):
        traced.append(type(self.module).__name__)
        return real(self, batch)

    monkeypatch.setattr(LightningTrainable, "_traced_chain", counting)
    cb, _ = _fit("chain")
    assert traced == ["EncoderHead"]
    assert cb.live.monitor.run.info.num_classes == 10


# -- tensor operations on the inputs before the first submodule (chain12) ----------------------


class Flat(pl.LightningModule):
    """The MNIST tutorials' shape: images in, `training_step` flattens (or scales, or joins two
    inputs) before calling `self.net`, and no forward."""

    def __init__(self, prep: str, softmax: bool = False) -> None:
        super().__init__()
        self.prep = prep
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), *[nn.Softmax(dim=1)] * softmax)

    def _inputs(self, batch):
        x = batch[0]
        if self.prep == "view":
            return x.view(x.size(0), -1)
        if self.prep == "flatten":
            return x.flatten(1)
        if self.prep == "scale":  # uint8 pixels in 0..16
            return x.float().flatten(1) / 16
        if self.prep == "cat":  # two inputs of 32 features each
            return torch.cat([x, batch[1]], dim=1)
        if self.prep == "augment":  # random noise on the training inputs: not the same on a second call
            return x.flatten(1) + 0.05 * torch.randn_like(x.flatten(1)) * self.training
        raise AssertionError(self.prep)

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self.net(self._inputs(batch)), batch[-1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", F.cross_entropy(self.net(self._inputs(batch)), batch[-1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _digits_as(prep: str) -> TensorDataset:
    x, y = load_digits(return_X_y=True)
    images = torch.tensor(x / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    if prep == "scale":
        return TensorDataset(torch.tensor(x, dtype=torch.uint8).reshape(-1, 1, 8, 8), torch.tensor(y))
    if prep == "cat":
        flat = images.flatten(1)
        return TensorDataset(flat[:, :32], flat[:, 32:], torch.tensor(y))
    return TensorDataset(images, torch.tensor(y))


def _fit_flat(prep: str, softmax: bool = False, watched: bool = True):
    data = _digits_as(prep)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=False, strict=STRICT) if watched else None
    trainer = quiet_trainer(max_epochs=1, callbacks=[cb] if cb else [])
    module = Flat(prep, softmax)
    train = torch.utils.data.Subset(data, range(600))
    val = torch.utils.data.Subset(data, range(1400, len(data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(train, batch_size=32, shuffle=True), DataLoader(val, batch_size=128))
    return cb, [v.detach().clone() for v in module.state_dict().values()]


@pytest.mark.parametrize("prep", ["view", "flatten", "scale", "cat"])
def test_tensor_operations_before_the_first_submodule_are_replayed(prep):
    # was: every train-start check skipped with an INFO (the net called on the loader's 8x8
    # images raised a shape error)
    cb, weights = _fit_flat(prep)
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]
    assert not [f for f in cb.findings if f.check == "overfit-batch"], [f.format() for f in cb.findings]
    assert cb.live.monitor.run.info.num_classes == 10
    if prep == "view":
        _, alone = _fit_flat(prep, watched=False)
        assert all(torch.equal(a, b) for a, b in zip(weights, alone))


def test_softmax_after_a_flattening_step_is_found():
    cb, _ = _fit_flat("view", softmax=True)
    told = [f for f in cb.findings if f.check == "output-loss-mismatch" and f.severity >= Severity.WARNING]
    assert [f.key for f in told] == ["activation-twice"], [f.format() for f in cb.findings]  # was: skipped


def test_random_augmentation_before_the_first_submodule_is_held_still():
    # each replay puts the random state back, so noise on the inputs is the same on every call
    # of the checks' forward: it is not taken for a batch dependence or a failure to overfit
    cb, _ = _fit_flat("augment")
    assert [f for f in cb.findings if f.severity >= Severity.WARNING] == [], [f.format() for f in cb.findings]
    assert not [f for f in cb.findings if f.check == "overfit-batch"], [f.format() for f in cb.findings]


def test_a_fixed_batch_size_in_the_step_is_not_replayed():
    from mlcheck.integrations.torch import LightningTrainable

    class FixedView(Flat):
        def _inputs(self, batch):
            return batch[0].view(8, -1)  # right for this batch of 8 alone

    module = FixedView("view")
    batch = (torch.rand(8, 1, 8, 8), torch.arange(8))
    trainable = LightningTrainable(module, optimizer=torch.optim.SGD(module.parameters(), 0.1))
    assert trainable.network(batch) is module.net  # the child itself, as before: no replay
    assert "fixed batch size" in trainable.call_convention("forward", batch)
