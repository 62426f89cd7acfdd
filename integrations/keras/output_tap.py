"""Sends the predictions of a Keras step that the callback cannot see (a JAX step, jitted or not)
to the host from inside the step, for the per-sample checks (`noisy-labels`, `weak-slice`).

JAX's step differentiates through `compute_loss` and is compiled: a Python wrapper of
`compute_loss` runs once, while the step is traced, with tracers. So the wrapper puts a host
callback into the traced step (`backend.send_to_host`) that hands the `y` and `y_pred` its
`compute_loss` receives to the callback at every step, as concrete arrays; no value the step
computes changes. Steps compiled before the wrapper was in place would not contain it, so the
step functions are made again for this fit, and the ones Keras had are put back afterwards
(a later fit, or an `evaluate` after `fit`, compiles its own once, without the host callback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcheck.integrations.keras import backend

_MISSING = object()


class OutputTap:
    """Wraps `train_step`, `test_step` and `compute_loss` of `model` as instance attributes for
    one fit, and has Keras make its `train_function` (now) and `test_function` (at the fit's
    first validation) again from them. The first `compute_loss` call of each wrapped step sends
    `(split, y, y_pred)` to `receive`, split "train" or "val", from inside the step, possibly
    after the step function has returned (`backend.wait_for_host`). `restore()` puts back the
    model's attributes and step functions; a tap left behind by a fit that ended in an exception
    stops sending once another fit runs (`fit` hands the model a new `History` each time).

    Args:
        model: the model being fitted (`train_function` already made by `fit`).
        receive: called with (split, y, y_pred) for each step; y_pred as `compute_loss` gets it.
    """

    _NAMES = ("train_step", "test_step", "compute_loss")

    def __init__(self, model: Any, receive: Callable[[str, Any, Any], None]) -> None:
        self.model = model
        self.receive = receive
        self.active = True
        self.fit_history = getattr(model, "history", None)
        self._split: str | None = None  # the wrapped step being traced or run
        for attribute in self._NAMES:
            stale = getattr(model.__dict__.get(attribute), "_mlcheck_outputs", None)
            if stale is not None:
                stale.restore()
        self._saved: dict[str, Any] | None = {
            attribute: model.__dict__.get(attribute, _MISSING) for attribute in self._NAMES
        }
        self._saved_functions = (model.train_function, model.test_function)
        wrappers = {
            "train_step": self._step("train", model.train_step),
            "test_step": self._step("val", model.test_step),
            "compute_loss": self._compute_loss(model.compute_loss),
        }
        for attribute, wrapper in wrappers.items():
            wrapper._mlcheck_outputs = self
            setattr(model, attribute, wrapper)
        model.make_train_function(force=True)  # a new function, traced with the wrappers
        model.test_function = None  # made again by the fit's first `evaluate`

    def _step(self, split: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            outer, self._split = self._split, split
            try:
                return original(*args, **kwargs)
            finally:
                self._split = outer

        return step

    def _compute_loss(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def compute_loss(*args: Any, **kwargs: Any) -> Any:
            split, self._split = self._split, None  # the step's first call only
            if split is not None:
                y = kwargs.get("y", args[1] if len(args) > 1 else None)
                y_pred = kwargs.get("y_pred", args[2] if len(args) > 2 else None)
                backend.send_to_host(self._make_receiver(split), y, y_pred)
            return original(*args, **kwargs)

        return compute_loss

    def _make_receiver(self, split: str) -> Callable[[Any, Any], None]:
        def received(y: Any, y_pred: Any) -> None:
            if not self.active:
                return
            if getattr(self.model, "history", None) is self.fit_history:
                self.receive(split, y, y_pred)
            else:  # a later fit, after this one ended in an exception: its next steps run without
                self.restore(wait=False)  # (waiting here, inside a step, would never end)

        return received

    def restore(self, wait: bool = True) -> None:
        """Puts back the model's own attributes and the step functions Keras had made; `wait`:
        first receive the outputs of the steps still running."""
        if self._saved is None:
            return
        if wait:
            backend.wait_for_host()
        self.active = False
        model = self.model
        for attribute, saved in self._saved.items():
            if getattr(model.__dict__.get(attribute), "_mlcheck_outputs", None) is not self:
                continue  # replaced by someone else since
            if saved is _MISSING:
                delattr(model, attribute)
            else:
                setattr(model, attribute, saved)
        model.train_function, model.test_function = self._saved_functions
        self._saved = None
