"""The per-step path every default run pays, kept cheap without changing what the checks see:
every step's loss and learning rate reach the checks on a real Lightning fit; the torch
parameter scan gives the numbers of the plain formulas with one norm pass and no per-value host
reads; the Keras weight scan's torch path equals its `keras.ops` path bit for bit."""

from __future__ import annotations

import collections
import math
import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from mlcheck.integrations.keras import backend as keras_backend
from mlcheck.integrations.keras.scan import WeightScan
from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.integrations.torch_live import ParameterScan, losses_to_floats
from tests.lightning_trainer import quiet_trainer


def _digits(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))[:n]
    return (x[order] / 16).astype(np.float32), y[order].astype(np.int64)


class _Recorder(pl.LightningModule):
    """Keeps each optimizer step's loss and the learning rate it steps with; the learning rate
    changes at every step (a per-step schedule), so a step fed twice or skipped shows."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.losses: list[float] = []
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.losses.append(float(loss.detach()))
        return loss

    def on_before_optimizer_step(self, optimizer):
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + 0.01 * step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_every_step_loss_and_lr_reach_the_checks_on_a_lightning_fit(tmp_path):
    x, y = _digits()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=32, shuffle=True
    )
    pl.seed_everything(0, verbose=False)
    module = _Recorder()
    cb = MLCheckCallback(overfit_batch=False, log_dir=False)
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb], default_root_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|LeafSpec).*")
        trainer.fit(module, loader)
    steps = trainer.global_step
    assert steps == 3 * 19 == len(module.losses) == len(module.lrs)  # 19 batches: flushes fall mid-epoch
    run = cb.monitor.run
    # short curves are kept exactly (one value per bucket): each step once, in order, unchanged
    loss, lr = run.train_loss.buckets(), run.lr.buckets()
    assert loss["x1"].tolist() == lr["x1"].tolist() == list(range(steps))
    assert loss["last"].tolist() == module.losses
    assert lr["last"].tolist() == module.lrs
    assert len(set(module.lrs)) == steps  # the schedule really moved at every step
    # the scans, every 25 steps: an update ratio at steps 0, 25, 50
    assert run.update_ratio.buckets()["x1"].tolist() == [0, 25, 50]


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.__name__.split(".")[0]] += 1
        return func(*args, **(kwargs or {}))


def _net(layers: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(16, 16) for _ in range(layers)])
    return net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("layers", [2, 6])
def test_parameter_scan_is_one_norm_pass_and_no_per_value_reads(layers):
    net, opt = _net(layers)
    net(torch.randn(8, 16)).sum().backward()
    with _CountOps() as counted:
        ParameterScan(net).before_step(opt, 0, scaled=False)
    ops = dict(counted.ops)
    per_param = {k: ops.pop(k) for k in ("detach", "clone")}
    assert per_param == {"detach": 2 * layers, "clone": 2 * layers}  # the snapshot of the weights
    # gradients and weights in one norm pass; what it decides is read to the host in one go
    # (a tolist), never value by value (item/bool: one device sync each on an accelerator)
    assert ops == {"_foreach_norm": 1, "stack": 2, "linalg_vector_norm": 1}


def _reference_ratio(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """|W_after - W_before| / |W_before|, the norms taken per tensor and then over them."""
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(before))))
    diff = torch._foreach_sub(after, before)
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(diff)))) / norm


def test_parameter_scan_gives_the_plain_formulas_numbers():
    net, opt = _net(3)
    scan = ParameterScan(net)
    params = list(net.parameters())
    torch.manual_seed(1)
    kept: tuple[int, list[torch.Tensor]] | None = None  # the gradient a measuring step compares with
    measured = []
    for step in range(20):
        opt.zero_grad()
        loss = net(torch.randn(8, 16)).pow(2).mean()
        if step == 15:
            loss = loss * math.nan
        loss.backward()
        grads = [p.grad.clone() for p in params]
        before = [p.detach().clone() for p in params]
        scanned = step % 5 == 0  # as the callback calls it, with every_n_steps=5
        wanted = scanned or scan.wants_gradients(step)
        if scanned:
            scan.before_step(opt, step, scaled=False)
        if wanted:
            scan.gradients(opt, step)
        opt.step()
        ratio, nonfinite = scan.after_step(step)
        norm, cosine = scan.gradient_stats(step)
        if scanned and step != 15:
            assert ratio == _reference_ratio(before, [p.detach() for p in params])
        else:
            assert ratio is None  # not scanned, or NaN gradients: no ratio from that step
        names = ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
        assert nonfinite == ({"nonfinite_grads": names} if step == 15 else {})
        expected = (None, None)
        if wanted and kept is not None and kept[0] == step - 1:
            flat_now, flat_kept = (torch.cat([g.reshape(-1) for g in gs]) for gs in (grads, kept[1]))
            if step != 16:  # compared with the NaN gradient of step 15: nothing to report
                expected = (
                    float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))),
                    float(nn.functional.cosine_similarity(flat_now, flat_kept, dim=0)),
                )
                measured.append(step)
            kept = None
        elif wanted:
            kept = (step, grads)
        assert (norm, cosine) == expected
    assert measured == [1, 3, 5, 9, 11]  # after a scan or an early step (2, 4, 8), each kept once


def test_losses_read_on_the_cpu_are_the_floats_of_one_stacked_read():
    losses = [torch.tensor(0.1), torch.tensor([2.5e-8]), torch.tensor(1 / 3, dtype=torch.bfloat16), 0.25]
    stacked = torch.stack([t.reshape(()) for t in losses[:3]]).double().tolist()
    assert losses_to_floats(losses) == [*stacked, 0.25]
    assert all(type(v) is float for v in losses_to_floats([torch.tensor(2), torch.tensor(3.0)]))


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch path of the Keras weight scan")
def test_keras_weight_scan_on_torch_equals_its_keras_ops_path():
    x, y = _digits(320)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    scan = WeightScan(model)
    compared: list[int] = []

    class Compare(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            scan.snapshot()
            if batch == 6:  # a NaN weight: the finiteness flags must agree too
                kernel = model.trainable_variables[0]
                value = keras.ops.convert_to_numpy(kernel.value).copy()
                value[0, 0] = np.nan
                kernel.assign(value)

        def on_train_batch_end(self, batch, logs=None):
            values = keras_backend.trainable_values(model)
            grads = [g for g in keras_backend.last_gradients(model) if g is not None]
            with torch.no_grad():  # as the scan runs
                flat, flat_grads = keras_backend.flat_float32(values), keras_backend.flat_float32(grads)
                same = np.testing.assert_array_equal  # bit for bit, NaN where NaN
                same(flat.numpy(), keras_backend.ops_flat_float32(values).numpy())
                same(flat_grads.numpy(), keras_backend.ops_flat_float32(grads).numpy())
                fast = keras_backend.scan_values(flat, flat_grads, scan.before)
                same(fast, keras_backend.ops_scan_values(flat, flat_grads, scan.before))
            compared.append(int(fast[0]))
            scan.before = None

    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Compare()])
    assert len(compared) == 10 and compared[:6] == [1] * 6 and compared[6] == 0
