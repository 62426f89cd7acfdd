"""What the layer checks cost on the steps they do not sample: on the CPU one torch operation a
step, the loss read before backward while the NaN origin is watched, nothing else (the NaN
origin reads the held losses when the live core does, every 16 steps), counted as torch
operations dispatched during real Lightning fits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch.utils._python_dispatch import TorchDispatchMode

from mlcheck.checks.base import default_checks, registry

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
    checks = [c for c in default_checks() if c.id not in faults.LAYER_CHECK_IDS]
    checks += [registry()[i]() for i in faults.LAYER_CHECK_IDS] if layers else []
    kwargs = {"checks": checks}
    with _CountOps() as count:  # every_n_steps beyond the run: only step 0 is sampled
        faults.fit("clean-mlp", tmp_path / f"{epochs}{layers}", epochs=epochs, every_n_steps=10**6, **kwargs)
    return count.ops


def test_unsampled_steps_dispatch_no_operation_of_the_layer_checks(tmp_path):
    added = {epochs: _ops(tmp_path, epochs, True) - _ops(tmp_path, epochs, False) for epochs in (1, 2)}
    # the second epoch's 38 steps, none sampled: one operation a step with the layer checks on,
    # the loss read before backward while the NaN origin is watched on the CPU (review38: the
    # weights that made a loss non-finite are kept before the optimizer steps on it; a CPU
    # scalar, no device to wait for; off the CPU nothing); before it, 0 (a per-step NaN watch
    # that read the loss and reduced a gradient cost 4 operations a step)
    assert added[2] - added[1] == 38, added
