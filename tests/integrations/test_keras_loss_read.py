"""One read of each Keras train step's loss (torch backend, CPU): the NaN watch reads the loss
`compute_loss` returned before its backward pass, and the callback's step loss takes that float
instead of reading the tensor again (issue 13, cost39). Real fits on sklearn's digits; the step
losses the checks see are bit for bit those of a fit whose watch is off (`nonfinite_origin=False`),
where the callback reads each loss itself."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

from mlcheck.integrations.keras import MLCheckCallback
from mlcheck.integrations.keras import backend as keras_backend
from tests.integrations.test_keras import STEPS_PER_EPOCH, data, diverging, fit, mlp

pytestmark = pytest.mark.filterwarnings("ignore")

EPOCHS = 2


def _fit_counting_loss_reads(monkeypatch, make, **options) -> tuple[MLCheckCallback, int]:
    """A fit with the callback; returns it and how often `backend.scalar` read a train loss
    (a tensor that carries a gradient: what `compute_loss` returns)."""
    reads = [0]
    scalar = keras_backend.scalar

    def counting(value):
        if isinstance(value, torch.Tensor) and value.requires_grad:
            reads[0] += 1
        return scalar(value)

    monkeypatch.setattr(keras_backend, "scalar", counting)
    model, *targets = make()
    cb = MLCheckCallback(log_dir=None, overfit_batch=False, **options)
    if targets:
        (xt, _), (xv, _) = data()
        fit(model, cb, train=(xt, targets[0]), val=(xv, targets[1]), epochs=EPOCHS)
    else:
        fit(model, cb, epochs=EPOCHS)
    monkeypatch.setattr(keras_backend, "scalar", scalar)
    return cb, reads[0]


def _step_losses(cb: MLCheckCallback) -> np.ndarray:
    return cb.monitor.run.train_loss.values()[1]


@pytest.mark.parametrize(
    ("make", "watched_to_the_end"), [(lambda: (mlp(),), True), (diverging, False)], ids=["healthy", "diverging"]
)
def test_cost39_the_nan_watch_read_is_the_step_loss(monkeypatch, make, watched_to_the_end):
    watched, watched_reads = _fit_counting_loss_reads(monkeypatch, make)
    unwatched, unwatched_reads = _fit_counting_loss_reads(monkeypatch, make, nonfinite_origin=False)
    steps = EPOCHS * STEPS_PER_EPOCH
    assert unwatched_reads >= steps - 1  # the watch's first read decides it is off
    if watched_to_the_end:
        assert watched_reads == 0  # main: one read a step, after the watch's own
    else:  # once the origin is named the watch stops: the steps after it are read by the callback
        assert 0 < watched_reads < steps - 1
    losses = _step_losses(watched)  # the finite ones: a diverging fit's first 25
    assert len(losses) == (steps if watched_to_the_end else 25)
    np.testing.assert_array_equal(losses, _step_losses(unwatched))
    # the same findings but the origin's (messages name layers by Keras' auto-names, which differ)
    found = [(f.check, f.step, f.severity) for f in watched.findings if f.check != "nonfinite-origin"]
    assert found == [(f.check, f.step, f.severity) for f in unwatched.findings]
    assert keras.config.backend() == "torch"
