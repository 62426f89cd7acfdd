"""`stale-gradients` on real training: gradients never zeroed under Lightning manual
optimization and in a plain loop fire; zeroed ones, full-batch gradient descent and gradient
accumulation stay silent."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import MLCheckWarning, Monitor, Severity
from mlcheck.integrations.lightning import MLCheckCallback


def _digits(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return torch.tensor(x[order] / 16, dtype=torch.float32), torch.tensor(y[order])


class Net(pl.LightningModule):
    def __init__(self, *, manual: bool = False, zero_grad: bool = True, lr: float = 0.05) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.automatic_optimization = not manual
        self.zero_grad_each_step = zero_grad
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        if self.automatic_optimization:
            return loss
        opt = self.optimizers()
        if self.zero_grad_each_step:
            opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def _fit(tmp_path, model: Net, *, batch_size: int = 32, epochs: int = 4, **trainer_kw) -> MLCheckCallback:
    pl.seed_everything(0, verbose=False)
    x, y = _digits()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    cb_kw = {k: trainer_kw.pop(k) for k in ("every_n_steps",) if k in trainer_kw}
    cb = MLCheckCallback(log_dir=str(tmp_path / "mlcheck"), **cb_kw)
    trainer = pl.Trainer(
        max_epochs=epochs,
        default_root_dir=str(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[cb],
        **trainer_kw,
    )
    trainer.fit(model, loader)
    return cb


def _stale(cb: MLCheckCallback) -> list:
    return [f for f in cb.findings if f.check == "stale-gradients"]


def test_manual_optimization_without_zero_grad_fires(tmp_path):
    cb = _fit(tmp_path, Net(manual=True, zero_grad=False))
    (finding,) = _stale(cb)
    assert finding.severity == Severity.ERROR  # the loss went wrong too
    assert np.mean(finding.evidence["grad_cosine"]) > 0.9 and finding.evidence["growth"] > 4
    assert "zero_grad" in finding.hint
    assert finding.step <= 100
    # symptoms it explains name it
    for symptom in (f for f in cb.findings if f.check in ("loss-divergence", "lr-too-high")):
        assert symptom.evidence.get("likely_cause") == "stale-gradients", symptom.format()


@pytest.mark.parametrize(
    "case",
    [
        dict(model=dict(manual=True, zero_grad=True)),
        # full-batch gradient descent: consecutive gradients are aligned, but they shrink
        dict(model=dict(lr=0.5), batch_size=1200, epochs=60, every_n_steps=2),
        dict(model=dict(), accumulate_grad_batches=4, epochs=8),
    ],
    ids=["manual-with-zero-grad", "full-batch", "accumulate-grad-batches"],
)
def test_zeroed_gradients_stay_silent(tmp_path, case):
    case = dict(case)
    model = Net(**case.pop("model"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        cb = _fit(tmp_path, model, **case)
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    assert cb.monitor.run.grad_cosine.total >= 3  # measured, and judged healthy


def test_a_learning_rate_too_high_is_not_called_stale_gradients(tmp_path):
    cb = _fit(tmp_path, Net(lr=3.0), epochs=2)
    assert cb.findings and not _stale(cb), [f.format() for f in cb.findings]


def _plain_loop(zero_grad: bool) -> Monitor:
    torch.manual_seed(0)
    x, y = _digits()
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = Monitor()
    previous = None
    for step in range(150):
        idx = torch.randint(0, len(x), (32,))
        if zero_grad:
            opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        kw = {}
        if previous is not None and step % 10 == 1:  # measured now and then, as the callbacks do
            cosine = float(nn.functional.cosine_similarity(grad, previous, 0))
            kw = dict(grad_norm=float(grad.norm()), grad_cosine=cosine)
        previous = grad.clone()
        opt.step()
        monitor.log_step(step, loss=loss.item(), **kw)
    monitor.close()
    return monitor


def test_plain_loop_with_monitor():
    assert [f.check for f in _plain_loop(zero_grad=False).findings if f.severity >= Severity.WARNING] == [
        "stale-gradients"
    ]
    assert not _plain_loop(zero_grad=True).findings
