"""`stale-gradients` on real training: gradients never zeroed under Lightning manual
optimization, under automatic optimization whose `optimizer_zero_grad` override does nothing,
and in a plain loop fire; zeroed ones, full-batch gradient descent and gradient accumulation
stay silent. Lightning's automatic optimization (its own `optimizer_zero_grad`) rules the bug
out: there a run diverging steadily in one direction (aligned, growing gradients) is not called
stale gradients. The silent cases run where gradients are measured (manual optimization, or an
override that zeroes), so that they test the statistic, not the gate."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import MLCheckWarning, Monitor, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

ROOT = Path(__file__).resolve().parents[2]


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


class NoZeroGrad(Net):
    """Automatic optimization whose `optimizer_zero_grad` override forgets to zero."""

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        pass


class ZeroGradKept(Net):
    """Automatic optimization with an override that zeroes (to zeros rather than None)."""

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        optimizer.zero_grad(set_to_none=False)


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
    first, *later = _stale(cb)
    # the leftover gradient is seen at the optimizer's second and fourth steps
    assert first.step <= 5 and first.evidence["leftover_grad_norm"] > 0, first.format()
    assert [f.severity for f in later] == [Severity.ERROR]  # raised again once the loss went wrong
    assert all("zero_grad" in f.hint for f in (first, *later))
    # step findings carry their epoch, as every other step check's do (38 steps an epoch)
    assert [f.epoch for f in (first, *later)] == [f.step // 38 for f in (first, *later)]
    # symptoms it explains name it
    for symptom in (f for f in cb.findings if f.check in ("loss-divergence", "lr-too-high")):
        assert symptom.evidence.get("likely_cause") == "stale-gradients", symptom.format()


def test_an_optimizer_zero_grad_override_that_does_nothing_fires(tmp_path):
    """Automatic optimization zeroes through `optimizer_zero_grad`: an override that does not
    zero leaves the bug possible, and it is caught and named."""
    cb = _fit(tmp_path, NoZeroGrad())
    first, finding = _stale(cb)  # at once from the leftover gradient, again once the loss went wrong
    assert first.step <= 5 and finding.severity == Severity.ERROR and finding.step <= 100
    assert "optimizer_zero_grad override" in finding.hint and "only delays it" in finding.hint


def _binary_0_255(n: int = 1200) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _digits(n)
    return x, (y == 0).float().mul(255).unsqueeze(1)  # a 0/255 mask fed to BCE as labels


class Bce255(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        loss = nn.functional.binary_cross_entropy_with_logits(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def test_automatic_optimization_never_claims_gradients_never_zeroed(tmp_path):
    """BCE fed 0/255 labels under automatic optimization: the loss runs away below zero in one
    direction, so consecutive gradients point the same way (cosine ~0.997) and grow: the
    pattern of gradients never zeroed, which Lightning rules out here (it zeroes them itself).
    The run is still caught, by the checks that name its cause."""
    pl.seed_everything(0, verbose=False)
    x, y = _binary_0_255()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(log_dir=str(tmp_path / "mlcheck"))
    trainer = quiet_trainer(max_epochs=4, callbacks=[cb], default_root_dir=str(tmp_path))
    trainer.fit(Bce255(), loader)
    assert not _stale(cb), [f.format() for f in _stale(cb)]
    assert cb.monitor.run.info.zeroes_gradients is True
    assert cb.monitor.run.grad_cosine.total == 0  # not even measured: nothing to find
    loud = [f for f in cb.findings if f.severity >= Severity.WARNING]
    assert {"output-loss-mismatch", "loss-divergence"} & {f.check for f in loud}, [f.format() for f in loud]
    assert not any("zero_grad" in (f.hint or "") for f in loud)


@pytest.mark.parametrize(
    "case",
    [
        dict(model=dict(manual=True, zero_grad=True)),
        # full-batch gradient descent: consecutive gradients are aligned, but they shrink
        dict(model=dict(manual=True, lr=0.5), batch_size=1200, epochs=60, every_n_steps=2),
        # accumulation zeroes once per window, through an override: measured, and silent
        dict(model=dict(), override=True, accumulate_grad_batches=4, epochs=8),
    ],
    ids=["manual-with-zero-grad", "full-batch", "accumulate-grad-batches"],
)
def test_zeroed_gradients_stay_silent(tmp_path, case):
    case = dict(case)
    model = (ZeroGradKept if case.pop("override", False) else Net)(**case.pop("model"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        cb = _fit(tmp_path, model, **case)
    assert not [f for f in cb.findings if f.severity >= Severity.WARNING], [f.format() for f in cb.findings]
    assert cb.monitor.run.grad_cosine.total >= 3  # measured, and judged healthy


@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual-measured"])
def test_a_learning_rate_too_high_is_not_called_stale_gradients(tmp_path, manual):
    cb = _fit(tmp_path, Net(lr=3.0, manual=manual), epochs=2)
    assert cb.findings and not _stale(cb), [f.format() for f in cb.findings]
    assert bool(cb.monitor.run.grad_cosine.total) is manual  # measured only where it can be the bug


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


def _readme_loop(tmp_path, *, zero_grad: bool, optimizer_arg: bool) -> Monitor:
    """README's `Monitor` loop as written (its `...` one SGD step on digits, with or without
    `optimizer.zero_grad()`; without `optimizer=` when `optimizer_arg` is False)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "with Monitor(" in b]
    assert "optimizer=optimizer" in block  # what the README shows
    if not optimizer_arg:
        block = block.replace(", optimizer=optimizer", "")
    line = next(ln for ln in block.splitlines() if ln.strip() == "...")
    pad = line[: len(line) - len(line.lstrip())]
    # the validation loss measured after the step (on the batch: this loop has no held-out data),
    # not the training loss itself, which `suspicious-val` calls a copied curve (val-is-train-loss)
    body = [
        "loss = loss_fn(model(x), y)",
        "loss.backward()",
        "optimizer.step()",
        "train_loss = loss.item()",
        "val_loss = loss_fn(model(x).detach(), y).item()",
    ]
    if zero_grad:
        body.insert(0, "optimizer.zero_grad()")
    code = block.replace(line, pad + "; ".join(body), 1).replace('log_dir="runs/exp1"', "log_dir=LOG_DIR")
    torch.manual_seed(0)
    x, y = _digits()
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    namespace = {
        "LOG_DIR": str(tmp_path),
        "loader": [(x[i : i + 32], y[i : i + 32]) for i in range(0, len(x), 32)],
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.05),
        "loss_fn": nn.CrossEntropyLoss(),
        "epochs": 4,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        exec(code, namespace)
    return namespace["monitor"]


def test_readme_loop_without_zero_grad_is_named_with_its_fix(tmp_path):
    """The README's loop passes `optimizer=`: Monitor measures the gradients itself, names the
    missing zero_grad, and the diverging loss it causes points to it instead of to the rate."""
    monitor = _readme_loop(tmp_path, zero_grad=False, optimizer_arg=True)
    stale = _stale(monitor)  # a WARNING at the first aligned, growing gradients; ERROR once the loss rose
    assert stale[-1].severity == Severity.ERROR and all("zero_grad()" in f.hint for f in stale)
    assert stale[0].step <= 30
    assert monitor.run.grad_cosine.total >= 3
    for f in monitor.findings:
        assert f.check == "stale-gradients" or f.evidence.get("likely_cause") == "stale-gradients", f.format()
    assert not _readme_loop(tmp_path / "zeroed", zero_grad=True, optimizer_arg=True).findings


def test_a_diverging_plain_loop_without_gradients_names_zero_grad_first(tmp_path):
    """Without `optimizer=` (and no grad_norm/grad_cosine), nothing tells a missing zero_grad
    from a rate too high: loss-divergence names the zero_grad first, then the rate."""
    monitor = _readme_loop(tmp_path, zero_grad=False, optimizer_arg=False)
    assert not _stale(monitor) and monitor.run.grad_cosine.total == 0
    (divergence,) = [f for f in monitor.findings if f.check == "loss-divergence"]
    assert divergence.hint.startswith("If the loop is hand-written, first check that optimizer.zero_grad()")
    assert divergence.hint.index("zero_grad") < divergence.hint.index("lower the learning rate")


def test_monitor_optimizer_argument_is_checked_and_its_hook_removed_at_close():
    with pytest.raises(TypeError, match=r"Monitor\(optimizer=\.\.\.\) takes a torch.optim.Optimizer"):
        Monitor(optimizer=object())
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(optimizer=opt)
    assert len(opt._optimizer_step_pre_hooks) == 1 and len(opt._optimizer_step_post_hooks) == 1
    monitor.close()
    # the loop goes on with the optimizer as it was
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


# -- the exact signal: the gradient a step applied is still in .grad at the next backward -------


def _wine() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


class WineManual(pl.LightningModule):
    """Manual optimization on wine, as users write it: `zero` says where `zero_grad()` goes
    ("never": forgotten; "after-step-every-4": accumulation over 4 batches)."""

    def __init__(self, zero: str) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
        self.zero = zero

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.manual_backward(loss)
        if self.zero == "never":
            opt.step()
        elif (batch_idx + 1) % 4 == 0:  # accumulation: step and zero every 4 batches
            opt.step()
            opt.zero_grad()
        self.log("train_loss", loss)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)


class TwoOptimizers(pl.LightningModule):
    """GAN-style manual optimization: a generator and a discriminator step in turn, each
    zeroing its own gradients before its backward, the discriminator's loss reaching the
    generator (its input not detached), so the generator's gradient is still in `.grad` at the
    discriminator's backward: gradients carried across another optimizer's step, not across
    their own."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gen = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 13))
        self.disc = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        real = batch[0]
        bce = nn.functional.binary_cross_entropy_with_logits
        z = torch.randn(len(real), 8)
        opt_g.zero_grad()
        g_loss = bce(self.disc(self.gen(z)), torch.ones(len(real), 1))
        self.manual_backward(g_loss)
        opt_g.step()
        opt_d.zero_grad()
        fake = self.gen(z)  # not detached: this backward reaches the generator too
        d_loss = bce(self.disc(real), torch.ones(len(real), 1)) + bce(self.disc(fake), torch.zeros(len(real), 1))
        self.manual_backward(d_loss)
        opt_d.step()
        self.log("train_loss", d_loss)

    def configure_optimizers(self):
        return torch.optim.Adam(self.gen.parameters(), lr=1e-3), torch.optim.Adam(self.disc.parameters(), lr=1e-3)


def _fit_wine(tmp_path, model: pl.LightningModule, epochs: int = 3) -> MLCheckCallback:
    pl.seed_everything(0, verbose=False)
    x, y = _wine()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
    cb = MLCheckCallback(log_dir=str(tmp_path / "mlcheck"))
    trainer = quiet_trainer(max_epochs=epochs, callbacks=[cb], default_root_dir=str(tmp_path))
    trainer.fit(model, loader)
    return cb


def test_manual_optimization_without_zero_grad_on_wine_is_named_at_once(tmp_path):
    """The /tmp bug shape: wine, SGD with momentum, no `opt.zero_grad()`. The gradients' sum
    grows under 4x (the fresh gradients shrink as wine is fitted), below the statistical rule;
    the leftover gradient at the next backward names it by the fourth step."""
    cb = _fit_wine(tmp_path, WineManual("never"))
    first = _stale(cb)[0]
    assert first.step <= 4 and "never zeroed" in first.message, first.format()
    assert first.evidence["leftover_grad_norm"] > 0 and first.evidence["fresh_grad_norm"] > 0
    assert "opt.zero_grad() before self.manual_backward(loss)" in first.hint


@pytest.mark.parametrize(
    "model", [lambda: WineManual("after-step-every-4"), TwoOptimizers], ids=["manual-accumulation", "gan"]
)
def test_gradients_zeroed_between_an_optimizers_steps_stay_silent(tmp_path, model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MLCheckWarning)
        cb = _fit_wine(tmp_path, model())
    assert not _stale(cb), [f.format() for f in _stale(cb)]
    run = cb.monitor.run
    assert run.leftover_grad_norm.total >= 3 and not run.leftover_grad_norm.values()[1].any()  # measured: clean


@pytest.mark.parametrize("zero", ["never", "before-backward", "after-step", "in-place", "accumulate-4"])
def test_plain_loop_leftover_gradients(zero):
    """`Monitor(optimizer=...)` in a plain loop, Adam at a small rate on wine: without zero_grad
    the sum of gradients stays aligned but grows slowly, under the statistical rule; the
    leftover names it. Every way of zeroing, accumulation included, is measured and clean."""
    torch.manual_seed(0)
    x, y = _wine()
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    monitor = Monitor(optimizer=opt)
    for step in range(60):
        idx = torch.randint(0, len(x), (16,))
        if zero == "before-backward":
            opt.zero_grad()
        elif zero == "in-place":
            opt.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        if zero != "accumulate-4" or step % 4 == 3:
            opt.step()
            if zero in ("after-step", "accumulate-4"):
                opt.zero_grad()
        monitor.log_step(step, loss=loss.item())
    monitor.close()
    stale = _stale(monitor)
    if zero == "never":
        assert stale and stale[0].step <= 4 and stale[0].evidence["leftover_grad_norm"] > 0, stale
    else:
        assert not monitor.findings, [f.format() for f in monitor.findings]
        assert monitor.run.leftover_grad_norm.total >= 2


class RingGAN(pl.LightningModule):
    """A tiny GAN on a ring of 8 Gaussians, as its tutorials write it: the discriminator steps
    on real and detached fake samples, then the generator on the non-saturating loss; each
    optimizer zeroes its own gradients; training_step returns nothing (the last backward, the
    generator's, is the loss mlcheck reads). Healthy: the generator's loss climbs from ln 2 to
    ~1.3 and stays there as the discriminator sharpens, and its gradients point one way and
    grow for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.gen = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
        leaky = nn.LeakyReLU(0.2)
        self.disc = nn.Sequential(nn.Linear(2, 64), leaky, nn.Linear(64, 64), leaky, nn.Linear(64, 1))

    def training_step(self, batch, batch_idx):
        (real,) = batch
        opt_g, opt_d = self.optimizers()
        n = len(real)
        fake = self.gen(torch.randn(n, 8))
        bce = nn.functional.binary_cross_entropy_with_logits
        d_loss = bce(self.disc(real), torch.ones(n, 1)) + bce(self.disc(fake.detach()), torch.zeros(n, 1))
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        g_loss = bce(self.disc(fake), torch.ones(n, 1))
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.log_dict({"d_loss": d_loss, "g_loss": g_loss}, on_step=True, on_epoch=True)

    def configure_optimizers(self):
        betas = (0.5, 0.999)
        return torch.optim.Adam(self.gen.parameters(), 1e-3, betas=betas), torch.optim.Adam(
            self.disc.parameters(), 1e-3, betas=betas
        )


def test_healthy10_gan_generator_loss_rising_is_no_warning(tmp_path):
    """Found by a healthy GAN (healthy10 batch): `stale-gradients` WARNING then ERROR from the
    generator's aligned, growing gradients although the exact signal had measured them zeroed,
    and `loss-divergence` ERROR / `loss-plateau` WARNING on the generator's loss. The exact
    signal now rules, and the curve rules speak INFO on a loss that is one of several
    optimizers' objectives (RunInfo.several_objectives)."""
    pl.seed_everything(8, verbose=False)
    rng = np.random.default_rng(8)
    angle = 2 * np.pi * rng.integers(0, 8, 4096) / 8
    ring = np.stack([np.cos(angle), np.sin(angle)], 1) * 2 + 0.05 * rng.standard_normal((4096, 2))
    data = torch.utils.data.TensorDataset(torch.tensor(ring, dtype=torch.float32))
    cb = MLCheckCallback(log_dir=str(tmp_path / "mlcheck"))
    trainer = quiet_trainer(max_epochs=30, callbacks=[cb], default_root_dir=str(tmp_path))
    trainer.fit(RingGAN(), torch.utils.data.DataLoader(data, batch_size=128, shuffle=True))
    serious = [f for f in cb.findings if f.severity >= Severity.WARNING]
    assert serious == [], [f.format() for f in serious]
    run = cb.monitor.run
    assert run.info.several_objectives is True
    assert run.leftover_grad_norm.total >= 3 and not run.leftover_grad_norm.values()[1].any()  # measured: clean
    # the generator's loss did rise and stall: what the curve rules saw is still there, as INFO
    assert {"loss-divergence", "loss-plateau"} & {f.check for f in cb.findings}


def test_healthy10_one_optimizer_manual_loss_keeps_its_severity(tmp_path):
    """One optimizer under manual optimization: its loss is the run's objective; the flag stays
    unset (the run that forgets zero_grad is still named, by the exact signal, above)."""
    cb = _fit_wine(tmp_path, WineManual("after-step-every-4"), epochs=1)
    assert cb.monitor.run.info.several_objectives is None
