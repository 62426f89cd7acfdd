"""Overfit-a-batch's time beside the run's own steps, on a CPU model whose step is slow (issue 13).

A Lightning CNN (conv 3->W->W, pool, conv ->2W, pool, linear) on random 3x32x32 images with 10
random labels, batch 16, plain SGD at `--lr`, `max_epochs=20` of 20 batches (400 planned steps:
the full 100-step train-start budget), stopped after 30 steps. The run's step time is taken from
its own steps 3-30; the train-start phase from the callback's `timing=True` table; the copies'
training steps are counted. `--bug softmax` puts a softmax before `F.cross_entropy` (a model
overfit-a-batch cannot fit: every try runs). Compare trees by putting one first on PYTHONPATH
(`git archive REV | tar -x -C DIR`, then link `DIR/mlcheck/integrations` to `../integrations`):

    OMP_NUM_THREADS=1 python benchmarks/bench_overfit_step_time.py --width 24 --bug softmax

Prints one line: the run's step, the phase in seconds and in run steps, the copies' steps, and
the `overfit-batch` findings.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings

import lightning.pytorch as L
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from mlcheck.integrations.lightning import MLCheckCallback
from mlcheck.integrations.torch import LightningTrainable

for _name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

COPY_STEPS = {"train_step": 0}
_train_step = LightningTrainable.train_step


def _counted(self, batch):
    COPY_STEPS["train_step"] += 1
    return _train_step(self, batch)


LightningTrainable.train_step = _counted


class Net(L.LightningModule):
    def __init__(self, width: int, bug: str | None, lr: float) -> None:
        super().__init__()
        self.bug, self.lr = bug, lr
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * w * 8 * 8, 10),
        )

    def forward(self, x):
        out = self.net(x)
        return out.softmax(-1) if self.bug == "softmax" else out

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class StepTimes(L.Callback):
    def __init__(self, stop: int) -> None:
        self.times: list[float] = []
        self.stop = stop

    def on_train_batch_start(self, trainer, *args) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) > self.stop:
            trainer.should_stop = True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--bug", choices=("softmax",), default=None)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(args.batch * 20, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch * 20,))
    steps = StepTimes(args.steps)
    with tempfile.TemporaryDirectory() as folder:
        cb = MLCheckCallback(log_dir=folder, warn=False, timing=True)
        trainer = L.Trainer(
            max_epochs=20,
            accelerator="cpu",
            callbacks=[cb, steps],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(Net(args.width, args.bug, args.lr), DataLoader(TensorDataset(x, y), batch_size=args.batch))
    t = steps.times
    step = (t[-1] - t[2]) / (len(t) - 3)
    phase = cb.timer.table["overfit_batch"]
    found = [(f.severity.value, f.key, f.evidence.get("steps")) for f in cb.findings if f.check == "overfit-batch"]
    print(
        f"bug={args.bug} run step {1000 * step:.1f} ms; train-start phase {phase:.2f} s = {phase / step:.0f} "
        f"run steps; copy steps {COPY_STEPS['train_step']}; overfit-batch {found}"
    )


if __name__ == "__main__":
    main()
