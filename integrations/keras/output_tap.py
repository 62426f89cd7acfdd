"""Brings the predictions of a Keras step that the callback cannot see (a JAX step, jitted or
not) out of the step, for the per-sample checks (`noisy-labels`, `weak-slice`).

JAX's step differentiates through `compute_loss` and is compiled: a Python wrapper there runs
once, while the step is traced, with tracers. The step's `y` and `y_pred` are taken where the
step hands them to its metrics (`_update_metrics_variables`, outside the differentiation) and
returned with the step's logs under a key of mlcheck's own, which the wrapper of the step
function takes out again before Keras sees the logs: one more output of the compiled step, no
value it computes changes, and the step keeps JAX's fast dispatch (the arrays are read to the
host when the recording converts a block, not at each step). Where that cannot work (several
steps per call keep only the last step's logs; a Keras without `_update_metrics_variables`),
the `compute_loss` wrapper puts a host callback into the traced step instead
(`backend.send_to_host`), which runs at every step and costs JAX's slower dispatch path.

Steps compiled before the wrappers were in place would not contain them, so the step functions
are made again for this fit, and the ones Keras had are put back afterwards (a later fit, or an
`evaluate` after `fit`, compiles its own once, without the wrappers). Two callbacks that record
in one fit share the one tap (`OutputTap.attach`): each gets every step's outputs, and the model
is put back when the last of them lets go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcheck.integrations.keras import backend

_MISSING = object()
#: The key of the step's logs under which the wrapped step returns its (y, y_pred).
LOGS_KEY = "_mlcheck_outputs"
#: Where Keras' JAX steps hand (metrics_variables, loss, x, y, y_pred, sample_weight) to the
#: metrics, after the differentiation (Keras 3.x `JAXTrainer`).
_METRICS = "_update_metrics_variables"


class OutputTap:
    """Wraps the steps of `model` as instance attributes for one fit, and has Keras make its
    `train_function` (now) and `test_function` (at the fit's first validation) again from them;
    each step's `(split, y, y_pred)` goes to `receive`, split "train" or "val": from the step
    function's wrapper, right after the step (`tap_test` wraps the test function once
    `evaluate` has made it), or, in the host-callback mode, from inside the step, possibly
    after the step function has returned (`backend.wait_for_host`). `restore()` puts back the
    model's attributes and step functions; a tap left behind by a fit that ended in an exception
    stops once another fit runs (`fit` hands the model a new `History` each time).

    Args:
        model: the model being fitted (`train_function` already made by `fit`).
        receive: called with (split, y, y_pred) for each step; y_pred as the loss gets it.
    """

    def __init__(self, model: Any, receive: Callable[[str, Any, Any], None]) -> None:
        self.model = model
        self.receivers = [receive]
        self.active = True
        self.fit_history = getattr(model, "history", None)
        #: the step's outputs return with its logs; else a host callback sends them
        self.in_logs = int(getattr(model, "steps_per_execution", 1) or 1) == 1 and callable(
            getattr(model, _METRICS, None)
        )
        self._split: str | None = None  # the wrapped step being traced or run
        self._taken: Any = None  # that step's (y, y_pred), where they return with its logs
        names = ("train_step", "test_step", _METRICS if self.in_logs else "compute_loss")
        for attribute in names:
            stale = getattr(model.__dict__.get(attribute), "_mlcheck_outputs", None)
            if stale is not None:
                stale.restore()
        self._saved: dict[str, Any] | None = {name: model.__dict__.get(name, _MISSING) for name in names}
        self._saved_functions = (model.train_function, model.test_function)
        wrappers = {
            "train_step": self._step("train", model.train_step),
            "test_step": self._step("val", model.test_step),
        }
        if self.in_logs:
            wrappers[_METRICS] = self._metrics(getattr(model, _METRICS))
        else:
            wrappers["compute_loss"] = self._compute_loss(model.compute_loss)
        for attribute, wrapper in wrappers.items():
            wrapper._mlcheck_outputs = self
            setattr(model, attribute, wrapper)
        model.make_train_function(force=True)  # a new function, traced with the wrappers
        model.test_function = None  # made again by the fit's first `evaluate`
        self._function = {}  # attribute -> our wrapper of the step function there
        self._wrap_function("train_function", "train")

    @classmethod
    def attach(cls, model: Any, receive: Callable[[str, Any, Any], None]) -> OutputTap:
        """The tap of this fit on `model`, with `receive` added to it (another callback of the same
        fit made it), or a new one: a second tap would restore the first one's wrappers, and the
        first callback would record nothing."""
        tap = getattr(model.__dict__.get("train_step"), "_mlcheck_outputs", None)
        if isinstance(tap, cls) and tap._saved is not None and tap._current():
            tap.receivers.append(receive)
            return tap
        return cls(model, receive)

    def receive(self, split: str, y: Any, y_pred: Any) -> None:
        for receive in self.receivers:
            receive(split, y, y_pred)

    def detach(self, receive: Callable[[str, Any, Any], None]) -> None:
        """`receive` wants no more outputs; the last one to go restores the model."""
        if receive in self.receivers:
            self.receivers.remove(receive)
        if not self.receivers:
            self.restore()

    def tap_test(self) -> None:
        """Wraps the test function `evaluate` has made (before `on_test_begin`), once."""
        if self._saved is not None and "test_function" not in self._function:
            self._wrap_function("test_function", "val")

    # -- the wrappers --------------------------------------------------------------------------

    def _step(self, split: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            outer, self._split, self._taken = self._split, split, None
            try:
                out = original(*args, **kwargs)
                taken = self._taken
                if taken is not None and isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict):
                    out = ({**out[0], LOGS_KEY: taken}, out[1])  # (logs, state), as Keras' JAX steps return
                return out
            finally:
                self._split, self._taken = outer, None

        return step

    def _metrics(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def update_metrics_variables(*args: Any, **kwargs: Any) -> Any:
            # (metrics_variables, unscaled_loss, x, y, y_pred, sample_weight) in Keras 3.x
            if self._split is not None and self._taken is None:  # the step's first call
                y = kwargs.get("y", args[3] if len(args) > 3 else None)
                y_pred = kwargs.get("y_pred", args[4] if len(args) > 4 else None)
                if y is not None and y_pred is not None:
                    self._taken = (y, y_pred)
            return original(*args, **kwargs)

        return update_metrics_variables

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
            if self._current():
                self.receive(split, y, y_pred)

        return received

    def _wrap_function(self, attribute: str, split: str) -> None:
        """The step function Keras made from the wrapped step: takes the step's outputs out of
        its logs (both modes: a step function made before this fit returns none)."""
        original = getattr(self.model, attribute, None)
        if original is None:
            return

        def function(*args: Any) -> Any:
            logs, state = original(*args)
            if isinstance(logs, dict) and LOGS_KEY in logs:
                logs = dict(logs)
                y, y_pred = logs.pop(LOGS_KEY)
                if self._current():
                    self.receive(split, y, y_pred)
            return logs, state

        function._mlcheck_outputs = self
        self._function[attribute] = function
        setattr(self.model, attribute, function)

    def _current(self) -> bool:
        """Whether the fit this tap was made for still runs; a later fit's step restores it."""
        if not self.active:
            return False
        if getattr(self.model, "history", None) is self.fit_history:
            return True
        self.restore(wait=False)  # (waiting here, inside a step, would never end)
        return False

    def restore(self, wait: bool = True) -> None:
        """Puts back the model's own attributes and the step functions Keras had made; `wait`:
        first receive the outputs of the steps still running (host-callback mode)."""
        if self._saved is None:
            return
        if wait and not self.in_logs:
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
