"""`loss-divergence` does not advise gradient clipping to a run that clips already
(`RunInfo.grad_clip`): its hint names the threshold that did not hold the loss."""

from __future__ import annotations

import numpy as np
import pytest

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.optimization import LossDivergence


def _diverging(clip: float | None):
    rng = np.random.default_rng(0)
    steps = np.arange(600)
    loss = np.concatenate([np.linspace(2.3, 0.5, 300), np.linspace(0.5, 4.0, 300)])
    loss = loss * (1 + 0.02 * rng.standard_normal(600))
    info = RunInfo(task="classification", num_classes=10, loss="cross_entropy", grad_clip=clip)
    monitor = Monitor([LossDivergence()], default_sinks=False, info=info)
    found = monitor.log_steps(steps, loss=loss) + monitor.close()
    return [f for f in found if f.check == "loss-divergence" and f.severity >= Severity.WARNING]


@pytest.mark.parametrize("clip", [0.5, None])
def test_the_hint_names_the_clipping_that_is_on(clip):
    found = _diverging(clip)
    assert found
    hint = found[0].hint
    if clip is None:
        assert "clipping at" not in hint and "clipping" in hint
    else:
        assert "clipping at 0.5 that is on" in hint and found[0].evidence["grad_clip"] == 0.5
