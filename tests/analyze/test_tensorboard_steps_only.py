"""`mlcheck analyze` on the event file of a plain PyTorch loop that logs with `SummaryWriter` at
global steps and writes no epoch tag: its validation points are no epochs (batch 16, fa16 (c))."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch.utils.tensorboard")


def _overfitting_loop(log_dir, epoch_tag: bool) -> list[int]:
    """A real loop that overfits 300 noisy rows: 5 steps an epoch, a validation every 20 steps
    (every 4th epoch); returns the validation steps."""
    from sklearn.datasets import make_classification
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    x, y = make_classification(400, 16, n_informative=6, n_classes=4, class_sep=0.8, flip_y=0.15, random_state=0)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    a, b, c, d = x[:300], x[300:], y[:300], y[300:]
    net = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    writer, step, validated = SummaryWriter(str(log_dir)), 0, []
    for epoch in range(160):
        perm = torch.randperm(len(a))
        for i in range(0, len(a), 64):
            j = perm[i : i + 64]
            loss = F.cross_entropy(net(a[j]), c[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar("loss/train", loss.item(), step)
            if epoch_tag:
                writer.add_scalar("epoch", epoch, step)
            if step % 20 == 0:
                with torch.no_grad():
                    writer.add_scalar("loss/val", F.cross_entropy(net(b), d).item(), step)
                validated.append(step)
    writer.close()
    return validated


def _analyze(path):
    result = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_fa16_an_event_file_without_epoch_tag_names_validations_by_step(tmp_path):
    """Was "rose from its best 1.132 (epoch 2) ... over 5 epochs", "Keep the checkpoint from
    epoch 2", "40 epochs": the 3rd validation is step 60, epoch 12 of the loop."""
    validated = _overfitting_loop(tmp_path / "run", epoch_tag=False)
    out = _analyze(tmp_path / "run")
    (run,) = out["runs"]
    assert run["epochs"] is None and run["steps"] == 800
    gap = [f for f in out["findings"] if f["check"] == "train-val-gap" and f["severity"] == "warning"]
    assert gap, out["findings"]
    for finding in out["findings"]:
        assert finding["epoch"] is None
        assert "epoch" not in finding["message"] + (finding["hint"] or ""), finding
    best = gap[0]["evidence"]["best_step"]
    assert best in validated and "best_epoch" not in gap[0]["evidence"]
    assert f"around step {best}," in gap[0]["message"] and f"Keep the checkpoint from step {best}" in gap[0]["hint"]
    assert any("no epoch tag: its rows are read as steps" in line for line in run["info"])


def test_fa16_an_event_file_with_an_epoch_tag_still_speaks_in_epochs(tmp_path):
    """The same loop writing Lightning's `epoch` scalar: its epochs are known and named."""
    _overfitting_loop(tmp_path / "run", epoch_tag=True)
    out = _analyze(tmp_path / "run")
    (run,) = out["runs"]
    assert run["epochs"] is not None
    gap = [f for f in out["findings"] if f["check"] == "train-val-gap" and f["severity"] == "warning"]
    assert gap and gap[0]["epoch"] is not None and "best_epoch" in gap[0]["evidence"], out["findings"]
    assert f"around epoch {gap[0]['evidence']['best_epoch']}," in gap[0]["message"]
