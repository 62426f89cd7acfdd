"""`Monitor` fed a step counter that restarts every epoch (`for step, batch in enumerate(loader)`,
a common hand-loop mistake): said once, and the steps count on, so the checks, the findings and
the curves mlcheck writes hold one run in order (they held epochs laid over each other, and the
curves kept the first epoch only). A global step is left as given, without a word."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

import mlcheck
from mlcheck import Monitor
from mlcheck.findings import MLCheckInternalWarning

EPOCHS = 4


def _loop(log_dir, *, restart: bool) -> tuple[Monitor, list[warnings.WarningMessage]]:
    """A real hand-written loop: an MLP on digits, 44 steps an epoch, SGD."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16, dtype=torch.float32), torch.tensor(y)
    data = torch.utils.data.TensorDataset(x[:1400], y[:1400])
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    global_step = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Monitor(log_dir=log_dir, optimizer=optimizer) as monitor:
            for epoch in range(EPOCHS):
                for i, (xb, yb) in enumerate(loader):
                    step = i if restart else global_step
                    monitor.log_batch(xb, yb, step=step, epoch=epoch)
                    optimizer.zero_grad()
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    loss.backward()
                    optimizer.step()
                    monitor.log_step(step, loss=loss.item(), lr=0.05, epoch=epoch)
                    global_step += 1
                with torch.no_grad():
                    val_loss = nn.functional.cross_entropy(model(x[1400:]), y[1400:]).item()
                monitor.log_epoch(epoch, val_loss=val_loss)
    return monitor, [w for w in caught if issubclass(w.category, MLCheckInternalWarning)]


def test_a_step_counter_that_restarts_each_epoch_counts_on(tmp_path):
    monitor, said = _loop(tmp_path / "restart", restart=True)
    (notice,) = said  # once, though it restarted at every epoch
    assert "was given step 0 at epoch 1 after step 43" in str(notice.message)
    assert "step 0 is step 44" in str(notice.message)
    steps, _ = monitor.run.train_loss.values()
    assert (np.diff(steps) > 0).all() and steps[-1] == EPOCHS * 44 - 1  # was: 43, epochs interleaved
    # the curves written hold every epoch (was: the first; later points were at or before it)
    (run,) = mlcheck.analyze(tmp_path / "restart").runs
    assert run.epochs == EPOCHS and run.steps == EPOCHS * 44 - 1


def test_a_global_step_is_taken_as_given_without_a_word(tmp_path):
    monitor, said = _loop(tmp_path / "global", restart=False)
    assert said == []
    steps, _ = monitor.run.train_loss.values()
    assert steps[-1] == EPOCHS * 44 - 1
    assert monitor.findings == [] or all(f.severity.value == "info" for f in monitor.findings)
