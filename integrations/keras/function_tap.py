"""Shows the Keras callback each batch of a fit whose step is compiled (jax.jit, tf.function,
torch.compile), by wrapping the model's `train_function` and `test_function`: the Python
functions `fit` calls once per step with the data iterator, outside the compiled code.

The wrapper pulls the step's batches from the iterator (concrete host arrays), hands them to the
callback, then calls the original function with the same batches: what is computed, and what is
compiled, does not change. How each backend's functions take their batches is in `backend.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcheck.integrations.keras import backend


class FunctionTap:
    """Wraps `model.train_function` (now) and `model.test_function` (`tap_test`, once `evaluate`
    has made it) for one fit. The wrappers are instance attributes, removed by `restore()`, or
    by themselves when a later fit runs without this callback (a fit that ended in an exception
    calls no `on_train_end`): `fit` hands the model a new `History` each time.

    Args:
        model: the model being fitted.
        before_train: called with each training batch before its step runs.
        before_test: called with each validation batch before its step runs.
    """

    def __init__(self, model: Any, before_train: Callable[[Any], None], before_test: Callable[[Any], None]) -> None:
        self.model = model
        self.active = True
        self.fit_history = getattr(model, "history", None)
        self._before = {"train_function": before_train, "test_function": before_test}
        self._saved: dict[str, Any] = {}
        for attribute in self._before:
            stale = getattr(getattr(model, attribute, None), "_mlcheck_tap", None)
            if stale is not None and not stale.in_this_fit():
                stale.restore()
            # else another MLCheckCallback of this fit tapped it first: this tap goes on top
        self._wrap("train_function")

    def tap_test(self) -> None:
        """Wraps `test_function` if it is there and not wrapped yet (`evaluate` makes it lazily,
        before `on_test_begin`)."""
        if self.active and "test_function" not in self._saved:
            self._wrap("test_function")

    def _wrap(self, attribute: str) -> None:
        original = getattr(self.model, attribute, None)
        if original is None:
            return
        before = self._before[attribute]

        def observe(batch: Any) -> None:
            if self._current():
                before(batch)

        wrapper = backend.tap_function(original, self.model, observe)
        wrapper._mlcheck_tap = self
        self._saved[attribute] = original
        setattr(self.model, attribute, wrapper)

    def in_this_fit(self) -> bool:
        return self.active and getattr(self.model, "history", None) is self.fit_history

    def _current(self) -> bool:
        if self.in_this_fit():
            return True
        self.restore()
        return False

    def restore(self) -> None:
        if not self.active:
            return
        self.active = False
        for attribute, original in self._saved.items():
            if getattr(getattr(self.model, attribute, None), "_mlcheck_tap", None) is self:
                under = getattr(original, "_mlcheck_tap", None)
                while under is not None and not under.active:  # another callback's, restored already
                    original = under._saved[attribute]
                    under = getattr(original, "_mlcheck_tap", None)
                setattr(self.model, attribute, original)
