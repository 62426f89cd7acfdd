"""Keras 3 adapter: `MLCheckCallback` for `model.fit` and `KerasTrainable` for pre-flight checks.

Backend-specific code lives in `backend.py` alone; the rest uses `keras.ops`.
"""

from mlcheck.integrations.keras.callback import MLCheckCallback
from mlcheck.integrations.keras.trainable import KerasTrainable

__all__ = ["KerasTrainable", "MLCheckCallback"]
