"""user35: a sparse `nn.Embedding` trained with `torch.optim.SparseAdam` (manual optimisation,
the dense head under Adam), the usual way to train large embedding tables.

Before: the callback's parameter scan took `torch._foreach_norm` of the embedding's sparse
gradient, which raises `NotImplementedError: Could not run 'aten::linalg_vector_norm' with
arguments from the 'SparseCPU' backend` from `on_before_optimizer_step`: the user's fit died at its
first step. With that fixed, the layer statistics raised the same error inside their guard, and
were switched off with an internal warning. Now the norms of a sparse gradient are those of its
values, and the stale-gradient cosine uses the dense gradients alone: the fit runs, silent."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")

from mlcheck import MLCheckInternalWarning, MLCheckWarning  # noqa: E402
from mlcheck.integrations.lightning import MLCheckCallback  # noqa: E402
from tests.lightning_trainer import quiet_trainer  # noqa: E402


class SparseBag(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.emb = nn.Embedding(50, 16, sparse=True)
        self.out = nn.Linear(16, 4)

    def training_step(self, batch, batch_idx):
        ids, y = batch
        loss = nn.functional.cross_entropy(self.out(self.emb(ids).mean(1)), y)
        sparse, dense = self.optimizers()
        sparse.zero_grad()
        dense.zero_grad()
        self.manual_backward(loss)
        sparse.step()
        dense.step()
        self.log("train_loss", loss)

    def configure_optimizers(self):
        return [torch.optim.SparseAdam(list(self.emb.parameters()), lr=1e-2), torch.optim.Adam(self.out.parameters())]


def test_user35_a_sparse_embedding_under_sparse_adam_trains_with_the_callback(tmp_path):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (512, 6), generator=g)
    y = ((ids < 25).sum(1) >= 3).long()  # learnable from the bag of tokens, by no one token alone
    loader = DataLoader(TensorDataset(ids, y), batch_size=32, shuffle=True)
    torch.manual_seed(0)
    cb = MLCheckCallback(log_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(max_epochs=3, callbacks=[cb]).fit(SparseBag(), loader)
    internal = [str(w.message) for w in caught if issubclass(w.category, MLCheckInternalWarning)]
    assert internal == []
    assert [f for f in cb.findings if f.severity.value != "info"] == []
    assert not [w for w in caught if issubclass(w.category, MLCheckWarning)]
    # the callback ran: its overfit-batch is skipped (an INFO) under manual optimisation
    assert cb.findings and cb.findings[0].check == "overfit-batch"
