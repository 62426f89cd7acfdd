"""A new user's own scripts (round 26): a data scientist's own kinds of work with the callbacks.

Each test is a real fit or the real `mlcheck` command, and failed before its fix.
"""

from __future__ import annotations

import warnings

import pytest

from mlcheck import Severity
from mlcheck.findings import MLCheckInternalWarning
from tests.lightning_trainer import quiet_trainer

pytest.importorskip("lightning")


def _dict_batch_regression():
    """A LightningModule whose `training_step` takes a dict batch of two inputs and a target
    under keys of the user's own (`num`, `other`, `target`), on load_diabetes."""
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_diabetes
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    x, y = load_diabetes(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)

    class Rows(Dataset):
        def __init__(self, lo, hi):
            self.lo, self.hi = lo, hi

        def __len__(self):
            return self.hi - self.lo

        def __getitem__(self, i):
            i += self.lo
            return {"num": x[i, :6], "other": x[i, 6:], "target": y[i]}

    class TwoInputs(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 16), nn.Linear(4, 16)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(32, 1))

        def forward(self, num, other):
            return self.head(torch.cat([self.a(num), self.b(other)], 1)).squeeze(-1)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.mse_loss(self(batch["num"], batch["other"]), batch["target"])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.mse_loss(self(batch["num"], batch["other"]), batch["target"]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    train = DataLoader(Rows(0, 350), batch_size=32, shuffle=True)
    val = DataLoader(Rows(350, len(x)), batch_size=64)
    return TwoInputs(), train, val


def test_user26_a_dict_batch_of_the_users_own_keys_skips_the_train_start_checks_in_one_info():
    """Before: six tracebacks on stderr and six `MLCheckInternalWarning`s ("check 'overfit-batch'
    failed (TypeError: cannot tell inputs from the batch keys ...)"), one per train-start check,
    for a healthy run whose `training_step` unpacks its dict batch itself. Now: one INFO under
    `overfit-batch` naming the keys and the checks not run, with how to run them."""
    import lightning.pytorch as pl

    from mlcheck.integrations.lightning import MLCheckCallback

    pl.seed_everything(0)
    model, train, val = _dict_batch_regression()
    cb = MLCheckCallback()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(max_epochs=2, callbacks=[cb]).fit(model, train, val)
    internal = [w for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert not internal, [str(w.message) for w in internal]
    assert all(f.severity is Severity.INFO for f in cb.findings), [(f.check, f.message) for f in cb.findings]
    skipped = [f for f in cb.findings if f.check == "overfit-batch"]
    assert len(skipped) == 1, [(f.check, f.message) for f in cb.findings]
    message = skipped[0].message
    assert "(num, other, target)" in message and "not affected" in message
    for other in ("batch-dependence", "loss-at-init", "unused-parameters"):
        assert other in message
    assert "mlcheck_target()" in skipped[0].hint and "x, input" in skipped[0].hint


_DICT_MODEL_FILE = """
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
import lightning.pytorch as pl

g = torch.Generator().manual_seed(0)
X = torch.randn(200, 10, generator=g)
y = X[:, 0] - X[:, 7]


class Rows(Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return {"num": X[i, :6], "other": X[i, 6:], "target": y[i]}


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(4, 16)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(32, 1))

    def forward(self, num, other):
        return self.head(torch.cat([self.a(num), self.b(other)], 1)).squeeze(-1)

    def training_step(self, batch, batch_idx):
        return nn.functional.mse_loss(self(batch["num"], batch["other"]), batch["target"])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


train_loader = DataLoader(Rows(), batch_size=32, shuffle=True)
"""


def test_user26_sanity_on_a_dict_batch_of_the_users_own_keys_does_not_blame_the_forward_pass(tmp_path):
    """Before: `the forward pass of model.py:Net raised TypeError: cannot tell inputs from the
    batch keys ...`: the user's forward pass blamed for mlcheck's own split of the batch. Now
    the one line says the pre-flight checks need the inputs apart, the keys to use for inputs and
    targets, and `mlcheck_target()` (exit 2, as before)."""
    import subprocess
    import sys

    model = tmp_path / "model.py"
    model.write_text(_DICT_MODEL_FILE)
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "forward pass of" not in line and "TypeError" not in line, line
    assert "model.py:Net: the pre-flight checks call the model on a batch's inputs alone" in line, line
    assert "['num', 'other', 'target']" in line and "targets one of y, label" in line and "mlcheck_target()" in line
