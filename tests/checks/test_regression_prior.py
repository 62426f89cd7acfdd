"""The constant predictions' squared errors counted over the first pass (`TargetMoments`)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcheck.checks.regression_prior import TargetMoments
from mlcheck.run import BatchObservation


def _batch(index: int, epoch: int = 0) -> BatchObservation:
    return BatchObservation(inputs=None, targets=None, split="train", step=index, epoch=epoch, index=index)


def test_regprior16_levels_equal_the_targets_variance_and_mean_square():
    rng = np.random.default_rng(0)
    y = rng.normal(0.3, [0.1, 0.5, 2.0], size=(1000, 3))
    moments = TargetMoments()
    for i in range(10):
        moments.add(_batch(i), y[i * 100 : (i + 1) * 100])
    moments.add(_batch(0, epoch=1), y[:100] + 50)  # a later epoch: not counted again
    levels = moments.levels()
    assert levels.n == 1000 and levels.outputs == 3 and levels.whole_pass
    assert levels.best == pytest.approx(y.var(axis=0).mean())
    assert levels.zeros == pytest.approx(np.mean(y**2))
    # standard error of the mean of the per-sample squared deviations averaged over outputs
    q = ((y - y.mean(0)) ** 2).mean(axis=1)
    assert levels.best_se == pytest.approx(q.std(ddof=1) / np.sqrt(1000), rel=0.05)
    restored = TargetMoments()
    restored.load_state_dict(moments.state_dict())
    assert restored.levels() == levels


def test_regprior16_targets_of_varying_width_give_no_level():
    moments = TargetMoments()
    moments.add(_batch(0), np.zeros((4, 3)))
    moments.add(_batch(1), np.zeros((4, 5)))  # sequences of another length
    assert moments.levels() is None
