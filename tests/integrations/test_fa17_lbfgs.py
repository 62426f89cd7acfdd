"""A LightningModule trained with `torch.optim.LBFGS` (full-batch steps, strong Wolfe line search;
/tmp/fa17/l8: multinomial logistic regression on the digits). Lightning hands LBFGS the closure
its `step` requires; mlcheck's copy of the model stepped it without one ("LBFGS.step() missing 1
required positional argument: 'closure'"), then, given one, the copied LBFGS had lost the
`_params` its `__init__` sets (an optimizer's deepcopy keeps defaults, state and groups only):
overfit-batch was switched off with an internal warning. Now the copy's LBFGS gets a closure and
its attributes, so overfit-batch runs: silent on the healthy model, an ERROR on a twin whose
output ignores its inputs. The copy never steps the run's own optimizer (a scheduler's wrapper
of `step`, which holds the original, is not copied over)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlcheck import MLCheckWarning, Severity
from mlcheck.findings import MLCheckInternalWarning
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.integrations.torch import _clone_module_and_optimizers
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)


class _LogReg(pl.LightningModule):
    def __init__(self, blind: bool):
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.blind = blind

    def forward(self, x):
        return self.linear(x * 0 if self.blind else x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y) + 1e-3 * self.linear.weight.pow(2).sum()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.LBFGS(self.parameters(), lr=1.0, max_iter=10, history_size=10, line_search_fn="strong_wolfe")


@pytest.mark.parametrize("blind", [False, True], ids=["healthy", "output-ignores-inputs"])
def test_fa17_lbfgs_module_gets_the_train_start_checks(blind):
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = torch.tensor(x[order] / 16.0, dtype=torch.float32), torch.tensor(y[order])
    train = DataLoader(TensorDataset(x[:1400], y[:1400]), batch_size=1400)
    val = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=400)
    pl.seed_everything(0)
    cb = MLCheckCallback(log_dir=None)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_LogReg(blind), train, val)
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert not internal, internal  # before: overfit-batch switched off (LBFGS.step() without a closure)
    assert not [w for w in caught if issubclass(w.category, MLCheckWarning)] or blind
    fit = [f for f in cb.findings if f.check == "overfit-batch"]
    if blind:
        assert fit and fit[0].severity == Severity.ERROR, [f.format() for f in cb.findings]
    else:
        assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]


def test_fa17_copied_optimizer_never_steps_the_original():
    """The copy's optimizer takes the original's plain attributes, not a scheduler's wrapper of
    `step` (it holds the original optimizer): stepping the copy leaves the original untouched."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), 0.1)
    torch.optim.lr_scheduler.StepLR(opt, 1)  # wraps opt.step with a reference to opt
    before = [p.detach().clone() for p in model.parameters()]
    copy, (copied,) = _clone_module_and_optimizers(model, [opt])
    copy(torch.randn(8, 4)).pow(2).mean().backward()
    copied.step()
    assert not opt.state and not getattr(opt, "_opt_called", False)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert copied.state and any(not torch.equal(a, p) for a, p in zip(before, copy.parameters()))
