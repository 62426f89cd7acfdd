"""A new user's own scripts (round 26): `mlcheck sanity` on a model file whose entry point is
misspelt. The real command, as a subprocess; the test failed before its fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")

_MISSPELT = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def mlcheck_targets():
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {
        "model": model,
        "train_data": DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True),
        "loss": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
    }
"""


def test_user26_a_misspelt_mlcheck_target_is_named_in_the_error(tmp_path):
    """Before: exit 2, `found no model to check in model.py: no mlcheck_target() function, ...`,
    with the user's `mlcheck_targets()` right there and not named. Now the error leads with it:
    rename it, or choose it with `model.py:mlcheck_targets` (which then runs)."""
    model = tmp_path / "model.py"
    model.write_text(_MISSPELT)
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(model)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "model.py defines mlcheck_targets(), but mlcheck looks for mlcheck_target()" in line, line
    assert "`mlcheck sanity model.py:mlcheck_targets`" in line, line
