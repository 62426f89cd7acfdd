"""What the Lightning callback does differently where the model lives on an accelerator, run
here on the CPU with the accelerator's paths forced on: the full pass's batches reach the host
through `HostCopies` (copies that are never waited for at a step, observed once landed) and the
held losses are read back only at the steps the parameter scan reads (where the host waits for
the device already), not every 16 steps. The findings must be those of the CPU's own paths.
(On a GPU: `benchmarks/bench_gpu.py --parts syncs`, docs/benchmarks.md.)"""

from __future__ import annotations

import json

import lightning.pytorch as lpt
import numpy as np
import torch
from torch import nn

from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.integrations.torch_live import HostCopies
from tests.lightning_trainer import quiet_trainer

SHAPE = (3, 12, 12)


class _SlowEvent:
    """A copy that has landed at the second look (`query`), or once waited for."""

    def __init__(self) -> None:
        self.looks = 0
        self.waited = False

    def record(self) -> None:
        pass

    def query(self) -> bool:
        self.looks += 1
        return self.looks > 1

    def synchronize(self) -> None:
        self.waited = True


def _copies(depth: int = 8) -> HostCopies:
    return HostCopies(depth=depth, device_type="cpu", event=_SlowEvent, pinned=False)


def test_host_copies_observe_in_order_once_landed_without_waiting():
    copies, seen = _copies(), []
    for k in range(3):
        copies.start((torch.full((2, 2), float(k)), torch.tensor([k, k])), lambda x, y: seen.append((x[0, 0], y[0])))
    # each start looks once at every copy in flight: all but the newest have landed
    assert seen == [(0.0, 0), (1.0, 1)]
    assert copies.pending == 1
    copies.drain()
    assert seen == [(0.0, 0), (1.0, 1), (2.0, 2)] and copies.pending == 0
    assert copies.started == 3


def test_host_copies_wait_for_the_oldest_beyond_their_depth():
    copies, seen = HostCopies(depth=1, device_type="cpu", event=_Never, pinned=False), []
    copies.start((torch.zeros(1), None), lambda x, y: seen.append(("a", y)))
    assert seen == []  # in flight, never landed by itself
    copies.start((torch.ones(1), None), lambda x, y: seen.append(("b", y)))
    assert seen == [("a", None)] and copies.pending == 1  # the oldest waited for: the bound


def test_host_copies_wait_for_the_oldest_beyond_their_bytes():
    copies, seen = HostCopies(device_type="cpu", event=_Never, pinned=False, max_bytes=100), []
    copies.start((torch.zeros(20), None), lambda x, y: seen.append(len(x)))  # 80 bytes
    assert seen == []
    copies.start((torch.zeros(10), None), lambda x, y: seen.append(len(x)))  # 120 in flight: over
    assert seen == [20] and copies.pending == 1
    copies.start((torch.zeros(40), None), lambda x, y: seen.append(len(x)))  # 160 bytes alone: goes
    assert seen == [20, 10] and copies.pending == 1


class _Never(_SlowEvent):
    def query(self) -> bool:
        return False


def test_host_copies_want_one_device_of_their_kind():
    copies = _copies()
    assert copies.wanted(torch.zeros(2), None)
    assert not copies.wanted(torch.zeros(2), np.zeros(2))  # an array: the synchronous path
    assert not copies.wanted(None, None)
    assert not HostCopies().wanted(torch.zeros(2))  # CPU tensors: nothing to wait for


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((320, *SHAPE), dtype=np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    xv = rng.random((96, *SHAPE), dtype=np.float32)
    xv[:12] = x[40:52]  # copies of training samples: train-val-overlap from the full pass
    yv = (xv[:, 0].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    return x, y, xv, yv


class _Net(lpt.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(SHAPE)), 32), nn.ReLU(), nn.Linear(32, 2))

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class _AsOnAnAccelerator(MLCheckCallback):
    """The callback with its accelerator paths on, on the CPU; it notes each flush of held
    losses a training step asked for, and whether the parameter scan read that step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flushes: list[bool] = []

    def on_train_start(self, trainer, pl_module):
        super().on_train_start(trainer, pl_module)
        assert self._copies is None  # a CPU module: no copies without a wait to make
        self._losses_on_host = False
        self._copies = _copies()

    def _flush_due(self, due, scanned):
        flush = super()._flush_due(due, scanned)
        if flush:
            self.flushes.append(scanned)
        return flush


def _fit(tmp_path, callback_type, name):
    x, y, xv, yv = _data()
    tensors = torch.utils.data.TensorDataset
    train = torch.utils.data.DataLoader(tensors(torch.tensor(x), torch.tensor(y)), batch_size=16, shuffle=True)
    val = torch.utils.data.DataLoader(tensors(torch.tensor(xv), torch.tensor(yv)), batch_size=16)
    callback = callback_type(log_dir=tmp_path / name, overfit_batch=False, warn=False)
    lpt.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=3, accelerator="cpu", num_sanity_val_steps=0, callbacks=[callback])
    trainer.fit(_Net(), train, val)
    rows = [json.loads(line) for line in (tmp_path / name / "findings.jsonl").read_text().splitlines()]
    return callback, [(r["check"], r["severity"], r["step"], r["message"]) for r in rows]


def test_accelerator_paths_give_the_cpu_paths_findings(tmp_path):
    _, plain = _fit(tmp_path, MLCheckCallback, "cpu")
    forced, found = _fit(tmp_path, _AsOnAnAccelerator, "accelerator")
    assert any(check == "train-val-overlap" for check, *_ in plain)  # the full pass found the copies
    assert found == plain
    # the first epoch's training and validation batches copied without a wait (of 20 and 6; a
    # batch that comes before the task is inferred is observed at once)
    assert 20 <= forced._copies.started <= 20 + 6
    # every flush a step asked for came at a step the scan read (none every 16 steps): 60
    # steps, every_n_steps 25
    assert forced.flushes == [True, True, True]
