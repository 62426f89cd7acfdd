"""Per-layer statistics of a Keras model on sampled steps, for the same layer checks as torch.

Which layers are recorded, what they are called and which activation each applies is decided
here with Keras' own API; how their outputs and gradients are read is the backend's business
(`backend.layer_recorder`): on the torch backend with eager steps, Keras layers are torch
modules, so the torch recorder's hooks (attached on sampled steps only, removed afterwards, one
host transfer) serve them. On other backends, or with a compiled step, there is nothing to hook:
the callback says so once (log, INFO) and records no layer statistics.

The same recorder watches each train step's loss for `nonfinite-origin`: where it is NaN/Inf,
the batch is re-run with hooks on every layer to name the one that produced it
(`torch_origin.locate_nonfinite`: a recorder exists on the torch backend with eager steps only).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np

from mlcheck.breakpoints import Breakpoints
from mlcheck.integrations.keras import backend
from mlcheck.integrations.keras.trainable import KerasTrainable, unpack
from mlcheck.layers import LayerObservation

logger = logging.getLogger(__name__)

__all__ = ["KerasLayerRecorder", "keras_activation", "leaf_layers", "recorded_layers"]

#: Keras activation functions (by `__name__`) the layer checks judge.
_ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "hard_sigmoid": "hardsigmoid",
    "hard_tanh": "hardtanh",
    "softsign": "softsign",
}


def keras_activation(layer: Any) -> str | None:
    """The activation a layer applies to its output ("relu", "tanh", ...), None otherwise: a
    `ReLU` layer (plain, or capped at 6), an `Activation` layer, or a layer built with
    `activation=` (`Dense(64, activation="relu")`)."""
    if isinstance(layer, keras.layers.ReLU):
        if getattr(layer, "negative_slope", 0.0) or getattr(layer, "threshold", 0.0):
            return None  # leaky or thresholded: its zeros are not "dead" by the same rule
        cap = getattr(layer, "max_value", None)
        return "relu" if cap is None else "relu6" if float(cap) == 6.0 else None
    fn = getattr(layer, "activation", None)
    return _ACTIVATIONS.get(getattr(fn, "__name__", ""))


def leaf_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) of the layers inside `model`, nested models flattened ("encoder/dense_1");
    a layer that is not a model counts as one layer with all its weights."""
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer, path + "/")
        else:
            yield path, layer


def inference_mode_layers(model: Any, x: Any) -> tuple[str, ...]:
    """The layers that act as in training when the model is called for inference (a layer called
    with `training=True` hard-coded in a subclassed model's `call`), each as "path (class)":
    BatchNorm layers whose moving statistics an inference call moved, and the layers whose random
    numbers reach the output.

    `model(x, training=False)` is called, its other state put back, and called again with the
    random generators left where the first call moved them: equal outputs mean nothing random
    reaches the output (a layer may still draw, as Keras' LSTM draws its dropout mask at
    inference on JAX and throws it away). Outputs that differ are traced to their layers by one
    more call in which each layer with a seed generator runs twice on its input: the layers
    whose two outputs differ (whether they draw from their own seed or, an unseeded dropout on
    torch, from the backend's global generator). A model with a stateful RNN is not called (its
    state is no variable of the model: the calls would move it for good): nothing. The model's
    state and every random generator are put back after, so training goes on exactly as it
    would have."""
    layers = list(leaf_layers(model))
    if any(getattr(layer, "stateful", False) for _, layer in layers):
        return ()
    if not any(_blamable(layer) for _, layer in layers):
        return ()  # nothing the calls could name: not called (two model calls a run saved)
    probe = _InferenceProbe(model, x)
    try:
        with backend.no_grad():
            blamed = probe.blamed(layers)
    finally:
        probe.put_back()
        probe.rng.set_rng_state(probe.random_state)
    return tuple(f"{path} ({type(layer).__name__})" for path, layer in layers if path in blamed)


class _InferenceProbe:
    """The inference calls of `inference_mode_layers` and the state they move."""

    def __init__(self, model: Any, x: Any) -> None:
        self.model, self.x = model, x
        self.state = [v for v in model.variables if not v.trainable]  # moving statistics, seeds
        self.saved = [np.array(backend.to_numpy(v.value)) for v in self.state]
        self.rng = KerasTrainable(model)
        self.random_state = self.rng.rng_state(variables=False)  # seeds and statistics are in `saved`

    def output(self) -> np.ndarray:
        return np.asarray(backend.to_numpy(keras.tree.flatten(self.model(self.x, training=False))[0]))

    def put_back(self, keep: set[int] | None = None) -> None:
        for variable, value in zip(self.state, self.saved):
            if keep is None or id(variable) not in keep:
                variable.assign(value)

    def blamed(self, layers: list[tuple[str, Any]]) -> set[str]:
        first = self.output()
        moved = {id(v) for v, old in zip(self.state, self.saved) if not np.array_equal(backend.to_numpy(v.value), old)}
        blamed = {
            path
            for path, layer in layers
            if isinstance(layer, keras.layers.BatchNormalization) and {id(v) for v in layer.variables} & moved
        }
        self.put_back(keep={id(v) for v in self.state if _is_seed(v)})  # the generators go on from there
        if not _differs(first, self.output()):
            return blamed
        return blamed | self._random_layers(layers)

    def _random_layers(self, layers: list[tuple[str, Any]]) -> set[str]:
        """The layers with a seed generator whose output, for one and the same input, differs
        between two calls: each such layer's `call` is run twice within one more model call."""
        differing: set[str] = set()

        def twice(path: str, call: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                out = call(*args, **kwargs)
                again = call(*args, **kwargs)
                pairs = zip(keras.tree.flatten(out), keras.tree.flatten(again))
                if any(_differs(backend.to_numpy(a), backend.to_numpy(b)) for a, b in pairs):
                    differing.add(path)
                return out

            return wrapper

        seeded = [(path, layer) for path, layer in layers if _seeded(layer)]
        self.put_back(keep={id(v) for v in self.state if _is_seed(v)})
        try:
            for path, layer in seeded:
                layer.__dict__["call"] = twice(path, layer.call)
            self.output()
        finally:
            for _, layer in seeded:
                layer.__dict__.pop("call", None)
        return differing


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    # float32 rounding of one computation repeated stays far inside this
    return not np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def _is_seed(variable: Any) -> bool:
    return "seed_generator" in variable.path


def _seeded(layer: Any) -> bool:
    """Whether the layer draws random numbers from a seed generator of its own (Dropout, noise)."""
    return any(_is_seed(v) for v in layer.variables)


def _blamable(layer: Any) -> bool:
    """Whether `inference_mode_layers` could name the layer: a BatchNorm layer (its moving
    statistics) or a layer with a seed generator (its random numbers); no other is named."""
    return isinstance(layer, keras.layers.BatchNormalization) or _seeded(layer)


def recorded_layers(model: Any) -> list[tuple[str, Any, str | None, list[Any]]]:
    """The layers the recorder watches, as (path, layer, activation, weights): those with
    weights and the activations."""
    return [
        (path, layer, keras_activation(layer), _own_weights(layer))
        for path, layer in leaf_layers(model)
        if keras_activation(layer) or layer.weights
    ]


def _own_weights(layer: Any) -> list[Any]:
    """The weights a layer learns, or would if it were not frozen: its trainable ones (not
    BatchNorm's moving statistics), else all of them (a layer frozen with `trainable=False`)."""
    return list(layer.trainable_weights) or list(layer.weights)


class KerasLayerRecorder:
    """Records the Keras model's layers on the steps the live core samples.

    Args:
        recorder: the backend's recorder (`backend.layer_recorder`).
    """

    def __init__(self, recorder: Any, breakpoints: Any = None, model: Any = None, allow: Iterable[str] = ()) -> None:
        self._recorder = recorder
        #: the backend's breakpoint runner (`backend.breakpoint_runner`), or None
        self.breakpoints = breakpoints
        self._model = model
        #: every layer, with or without weights (a custom layer computing log(0) has none)
        self._all_layers = list(leaf_layers(model)) if model is not None else []
        self._allow = tuple(allow)
        self._watch: bool | None = None  # decided on the first loss (where it lives)
        self._sentinel: Any = None  # the gradient hook of the NaN watch, for the fit
        self._pending: tuple[Any, ...] | None = None  # this step's (live, step, epoch, batch)

    @classmethod
    def create(
        cls, model: Any, breakpoints: Breakpoints | None = None, log_dir: Any = None, allow: Iterable[str] = ()
    ) -> KerasLayerRecorder | None:
        """A recorder for `model`, or None (logged once) where the backend or a compiled step
        leaves nothing to hook. With `breakpoints`, tripped ones write `.npz` snapshots under
        `log_dir`. `allow`: layer paths or class names allowed to produce NaN/Inf on purpose."""
        recorder = backend.layer_recorder(model, recorded_layers(model), keep_tensors=breakpoints is not None)
        if recorder is None:
            logger.info(
                "mlcheck: per-layer statistics need the torch Keras backend with eager steps (not %s%s); "
                "the layer checks (nonfinite-origin included) are skipped for this run",
                backend.name(),
                ", jit_compile" if backend.name() == "torch" else "",
            )
            return None
        runner = None if breakpoints is None else backend.breakpoint_runner(breakpoints, log_dir)
        return cls(recorder, runner, model, allow)

    def due(self, live: Any, step: int) -> bool:
        """Records this step: the live core samples it, or breakpoints (which need no check) are set."""
        return live.layer_step_due(step) or (self.breakpoints is not None and step % live.layer_every == 0)

    def observe(self, live: Any, step: int, epoch: int | None, batch: Any) -> None:
        """After a recorded step: its statistics to the checks, then the breakpoints."""
        observation = live.guard("layers", self.finish, step, epoch)
        if observation is None:
            return
        found = live.guard("layers", live.observe_layers, observation)
        if self.breakpoints is not None:
            self.breakpoints.on_layers(live.monitor, observation, found, self._recorder, batch)

    def after_loss(self, live: Any, step: int, epoch: int | None, loss: Any, batch: Any) -> float | None:
        """Inside a train step, right after its loss was computed (before backward and the
        optimizer step, so the weights are still those that produced it): where the NaN watch
        is on (`LiveRun.watch_loss`: on the CPU by default), names the layer that produced a
        NaN/Inf loss (`nonfinite-origin`); for a finite loss, the step's first gradient is
        checked as it lands in the backward pass (a NaN born there reaches it), before the
        optimizer step. Returns the loss as the float it read, where it read a one-element loss
        (the callback's step loss then takes it: one read a step, not two), else None."""
        if self._watch is False or loss is None:
            return None
        from mlcheck.integrations.keras import torch_origin  # a recorder exists on torch only

        value, on_cpu, whole = torch_origin.loss_value(loss)
        read = value if whole else None
        if self._watch is None:
            self._watch = live.watch_loss(on_cpu)
            if not self._watch:
                return read
        if math.isfinite(value):
            self._pending = (live, step, epoch, batch)
            if self._sentinel is None:
                self._sentinel = torch_origin.watch_gradient(self._model, self._gradient_nonfinite)
            return read
        self._locate(live, step, epoch, batch)
        return read

    def _gradient_nonfinite(self) -> None:
        """The watched gradient of this step is NaN/Inf (called inside the backward pass)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            live = pending[0]
            live.guard("nonfinite origin", self._locate, *pending)

    def _locate(self, live: Any, step: int, epoch: int | None, batch: Any) -> None:
        from mlcheck.integrations.keras import torch_origin

        recording = self._recorder.recording
        self._recorder.remove_hooks()  # the re-run must not feed this step's statistics
        data = unpack(batch)
        capture: dict[str, Any] | None = {} if self.breakpoints is not None else None
        found = live.observe_nonfinite_loss(
            step,
            epoch,
            lambda: torch_origin.locate_nonfinite(
                self._model, self._all_layers, data, allow=self._allow, capture=capture
            ),
        )
        if self.breakpoints is not None:
            self.breakpoints.on_origin(live.monitor, found, capture or {}, self._model, batch)
        if recording:
            self._recorder.abort()  # a NaN step's statistics would only repeat the finding
        self._watch = live.watch_loss(True)
        if not self._watch:
            self._unwatch()

    def _unwatch(self) -> None:
        if self._sentinel is not None:
            self._sentinel.remove()
            self._sentinel = None
        self._pending = None

    @property
    def recording(self) -> bool:
        return bool(self._recorder.recording)

    def start(self) -> None:
        """Attaches the hooks for the coming train step (before `train_step`)."""
        self._recorder.start()

    def finish(self, step: int, epoch: int | None) -> LayerObservation:
        """Detaches them after the step and returns its statistics."""
        return self._recorder.finish(step, epoch)

    def abort(self) -> None:
        """Detaches every hook (a recording's and the NaN watch's): at the end of a fit."""
        self._recorder.abort()
        self._unwatch()
