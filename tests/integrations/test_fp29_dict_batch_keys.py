"""A dict batch's inputs and targets are read from the keys docs/sanity.md lists ("What mlcheck
passes your model"); the pre-flight findings that judge the loss on them (`loss-at-init`,
`overfit-batch`) now say which keys were read, in evidence `batch_keys` (issue 12, branch fp29):
a user whose dict holds both `image` and `x` sees which one was taken. Real LightningModules,
real data, the checks' own preflight."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_digits

from mlcheck import Severity

PAIRS = [("x", "y"), ("input", "target"), ("image", "label"), ("features", "labels"), ("input_ids", "labels")]


def _trainable(x_key: str, y_key: str, scale: float, lr: float = 1e-3):
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from mlcheck.integrations.torch import LightningTrainable

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)

    class Rows(Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return {x_key: x[i], y_key: y[i]}

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, batch_idx):
            return scale * F.cross_entropy(self(batch[x_key]), batch[y_key])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr)

    return LightningTrainable(Net(), train_data=DataLoader(Rows(), batch_size=32))


@pytest.mark.parametrize(("x_key", "y_key"), PAIRS)
def test_fp29_loss_at_init_names_the_dict_keys_it_read(x_key, y_key):
    from mlcheck.checks.preflight.loss_at_init import LossAtInit
    from mlcheck.preflight_context import Budget, PreflightContext

    ctx = PreflightContext(_trainable(x_key, y_key, scale=100.0), Budget(seconds=120))
    found = [f for f in LossAtInit().preflight(ctx) if f.severity >= Severity.WARNING]
    assert found, "a loss 100x the expected ln(10) at init"
    assert found[0].evidence["batch_keys"] == f"inputs batch[{x_key!r}], targets batch[{y_key!r}]"


def test_fp29_overfit_batch_names_the_dict_keys_it_read():
    from mlcheck.checks.preflight.overfit_batch import OverfitBatch
    from mlcheck.preflight_context import Budget, PreflightContext

    # a rate of 1e-9 (and its 10x retry) cannot move the loss: a finding, with the try's numbers
    ctx = PreflightContext(_trainable("image", "label", scale=1.0, lr=1e-9), Budget(seconds=120))
    found = [f for f in OverfitBatch().preflight(ctx) if "samples" in f.evidence]
    assert found
    assert found[0].evidence["batch_keys"] == "inputs batch['image'], targets batch['label']"
