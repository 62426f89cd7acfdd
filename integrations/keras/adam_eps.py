"""How much of Adam's normalised step a Keras optimizer's weights take, given its `epsilon`.

The Keras side of `integrations/torch_adam_eps.py`. Keras' Adam (and AdamW) adds `epsilon` to
the uncorrected sqrt(v) (the paper's "epsilon hat"), Nadam to the bias-corrected sqrt(v_hat);
either way a weight's step is its normalised step x sqrt(v) / (sqrt(v) + eps), read here from the
optimizer's own `_velocities` once (at the first training epoch's end), sampled.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mlcheck.checks.learning_rate import adam_state_stride, adam_step_shares


def _adam(optimizer: Any) -> Any:
    """The Adam, AdamW or Nadam the model trains with (a `LossScaleOptimizer`'s inner one), or None."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if isinstance(optimizer, (keras.optimizers.Adam, keras.optimizers.Nadam)) else None


def adam_betas(optimizer: Any) -> tuple[tuple[float, float], ...] | None:
    """((beta_1, beta_2),) for Keras' Adam, AdamW and Nadam (a `LossScaleOptimizer`'s inner
    one), read at train start; None for another optimizer or betas that are not numbers."""
    optimizer = _adam(optimizer)
    if optimizer is None:
        return None
    b1, b2 = getattr(optimizer, "beta_1", None), getattr(optimizer, "beta_2", None)
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (b1, b2)):
        return None  # a callable or tensor: not judged
    return ((float(b1), float(b2)),)


def adam_step_share(optimizer: Any) -> tuple[float, float] | None:
    """(epsilon, median share of Adam's step taken) for Keras' Adam, AdamW and Nadam (a
    `LossScaleOptimizer`'s inner one); weights with no gradient yet (v = 0) are left out. None
    for another optimizer or before any step."""
    optimizer = _adam(optimizer)
    if optimizer is None:
        return None
    eps = float(optimizer.epsilon)
    steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    if steps < 1 or eps < 0:
        return None
    # Nadam divides by sqrt(v_hat) + eps; Adam folds the correction into its rate instead
    correction = 1.0 - float(optimizer.beta_2) ** steps if isinstance(optimizer, keras.optimizers.Nadam) else 1.0
    shares = []
    for v in getattr(optimizer, "_velocities", None) or ():
        flat = np.asarray(keras.ops.convert_to_numpy(v), np.float64).reshape(-1)
        share = adam_step_shares(flat[:: adam_state_stride(flat.size)], eps, correction)
        if share.size:
            shares.append(share)
    if not shares:
        return None
    return eps, float(np.median(np.concatenate(shares)))
