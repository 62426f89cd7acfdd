"""What the layer checks cost on the steps they do not sample: the NaN-origin watch reads the
loss once (the live core takes that float instead of the tensor) and one gradient reduction,
counted as torch operations dispatched during real Lightning fits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch.utils._python_dispatch import TorchDispatchMode

from mlcheck.checks.base import default_checks

sys.path.insert(0, str(Path(__file__).parent))
import layer_faults as faults  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def _ops(tmp_path: Path, epochs: int, layers: bool) -> int:
    kwargs = {} if layers else {"checks": default_checks()}
    with _CountOps() as count:  # every_n_steps beyond the run: only step 0 is sampled
        faults.fit("clean-mlp", tmp_path / f"{epochs}{layers}", epochs=epochs, every_n_steps=10**6, **kwargs)
    return count.ops


def test_nan_watch_costs_a_few_operations_per_unsampled_step(tmp_path):
    added = {epochs: _ops(tmp_path, epochs, True) - _ops(tmp_path, epochs, False) for epochs in (1, 2)}
    per_step = (added[2] - added[1]) / 38  # 38 steps an epoch
    # the loss read, one float64 sum of one gradient and its read (checking every gradient: ~10)
    assert per_step <= 4.5, added
