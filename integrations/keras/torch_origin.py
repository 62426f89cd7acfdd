"""Where a NaN or Inf was born in a Keras model on the torch backend (`nonfinite-origin`).

The torch adapter re-runs the offending batch on a deep copy of the model. A Keras model copies
only through its config: a custom layer needs registered serialisation to be copied at all, and
loses its Python state (a step counter, say) on the way. So here the batch is re-run on the model
itself, right after the step computed its non-finite loss (before its backward pass and optimizer
step), with hooks on every layer, and everything the re-run could change is put back: gradients
are taken with `torch.autograd.grad` (no `.grad` written, no optimizer involved), and the
non-trainable variables (BatchNormalization's moving statistics, Dropout's seed states), the
metrics' variables, torch's random state and the layers' plain Python numbers (counters) are
restored afterwards. Trainable weights are never written. Keras layers are torch modules on this
backend, so torch's forward and full backward hooks see each layer's inputs and outputs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from mlcheck.integrations.torch_layers import _detached, _flags, _OriginSearch, _tensors, carried_in
from mlcheck.layers import NonfiniteOrigin

__all__ = ["locate_nonfinite", "loss_value", "watch_gradient"]

#: Python attribute types a re-run may change on a layer (a call counter) and that are put back.
_PLAIN = (bool, int, float)


def loss_value(loss: Any) -> tuple[float, bool, bool]:
    """(the loss as a float, whether it lives on the CPU, where reading it costs no sync, whether
    that float is the loss itself: one element, read as `backend.scalar` reads it, not a sum)."""
    tensor = loss.detach()
    on_cpu = tensor.device.type == "cpu"
    if tensor.numel() != 1:
        return float(tensor.sum().item()), on_cpu, False
    return tensor.item(), on_cpu, True


def watch_gradient(model: Any, on_nonfinite: Callable[[], None]) -> Any:
    """Calls `on_nonfinite()` when the gradient of the model's first trainable weight is NaN/Inf
    as it lands in a backward pass (before the optimizer step), read as one float64 sum: that
    weight sits on the input side, where a NaN born anywhere downstream arrives. Returns the
    hook's handle (`.remove()`), or None for a model without trainable weights."""
    param = next((v.value for v in model.trainable_variables), None)
    if param is None:
        return None

    def hook(p: torch.Tensor) -> None:
        grad = p.grad
        if grad is not None and not math.isfinite(grad.sum(dtype=torch.float64).item()):
            on_nonfinite()

    return param.register_post_accumulate_grad_hook(hook)


class _Search(_OriginSearch):
    """The torch search over Keras layers: paths nested with "/", a layer's own weights are its
    Keras variables, and their gradients come from `torch.autograd.grad` (`param_grads`, by the
    weight's id), not from `.grad`."""

    separator = "/"

    def __init__(self, paths: dict[Any, str], allow: Iterable[str], capture: bool) -> None:
        super().__init__(None, allow, paths=paths)
        self.seen = {} if capture else None
        #: the gradients of the re-run's loss, by the id of the weight they belong to
        self.param_grads: dict[int, torch.Tensor] = {}

    def weights(self, layer: Any) -> list[torch.Tensor]:
        return [v.value for v in layer.weights]

    def weight_grads(self, layer: Any) -> list[torch.Tensor]:
        return [self.param_grads[id(w)] for w in self.weights(layer) if id(w) in self.param_grads]

    def tensors(self) -> dict[str, Any]:
        """The found layer's input, output and weights of the re-run, detached on the CPU."""
        layer = self.found_module
        if layer is None or self.seen is None:
            return {}
        x, y = self.seen.get(layer, (None, None))
        weights = {v.name: v.value for v in layer.weights}
        return _detached({"input": x, "output": y, "weights": weights})


class _SavedState:
    """What a training-mode forward pass can change besides the trainable weights, to put back."""

    def __init__(self, model: Any, layers: Sequence[Any]) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        self.rng = (torch.get_rng_state(), cuda)
        variables = {id(v): v for v in [*model.non_trainable_variables, *model.metrics_variables]}
        with torch.no_grad():
            self.variables = [(v, v.value.detach().clone()) for v in variables.values()]
        self.plain = [
            (obj, {k: v for k, v in vars(obj).items() if type(v) in _PLAIN})
            for obj in {id(o): o for o in (model, *layers)}.values()
        ]

    def restore(self) -> None:
        for v, value in self.variables:
            # only what changed: a frozen kernel the step saved for its backward pass must keep
            # its version (an in-place write would break the user's backward)
            if not _same(v.value, value):
                v.assign(value)
        for obj, attributes in self.plain:
            for name, value in attributes.items():
                if getattr(obj, name, value) != value:
                    setattr(obj, name, value)
        torch.set_rng_state(self.rng[0])
        if self.rng[1] is not None:
            torch.cuda.set_rng_state_all(self.rng[1])


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN equal to NaN (a variable already holding NaN is not rewritten)."""
    if a.is_floating_point():
        return bool(torch.isclose(a, b, rtol=0.0, atol=0.0, equal_nan=True).all())
    return torch.equal(a, b)


def _compute_loss(model: Any, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
    """The model's loss as its train step computes it, through the class's `compute_loss`: the
    callback's wrapper on the instance must not see the re-run."""
    compute = type(model).compute_loss
    if getattr(model, "_compute_loss_has_training_arg", False):
        return compute(model, x, y, y_pred, sample_weight, training=True)
    return compute(model, x, y, y_pred, sample_weight)


def locate_nonfinite(
    model: Any,
    layers: Sequence[tuple[str, Any]],
    data: tuple[Any, Any, Any],
    *,
    allow: Iterable[str] = (),
    capture: dict[str, Any] | None = None,
) -> NonfiniteOrigin | None:
    """Re-runs a batch through `model` (in training mode) with hooks on `layers` and returns the
    first layer that produced a NaN or Inf from finite inputs: in the forward pass, else in the
    backward pass. The model's weights, gradients, non-trainable and metric variables, torch's
    random state and the layers' plain Python attributes are as they were afterwards.

    Args:
        model: the Keras model, its weights still those that produced the non-finite loss.
        layers: (path, layer) of the layers to watch (`leaf_layers(model)`).
        data: the batch as (x, y, sample_weight).
        allow: layer paths or class names allowed to produce infinities or NaN on purpose; an
            infinity a layer's input already held always passes.
        capture: a dict to fill with the found layer's "input", "output" and "weights" of the
            re-run (CPU tensors), for a breakpoint snapshot. Default None.

    Returns None when the batch's inputs hold NaN/Inf (`nonfinite-input` names them) or nothing
    non-finite appears on the re-run; a value produced outside any layer (in the loss) has
    `path=""` and `previous`, the last layer whose output was finite; where the targets or
    sample weights hold NaN or +Inf, what is found has cause "batch" (the data carried it in).
    """
    x, y, sample_weight = data
    if any(_flags(_tensors(x))):
        return None  # the batch itself: no layer made it
    return carried_in(_rerun(model, layers, data, allow, capture), (y, sample_weight))


def _rerun(
    model: Any,
    layers: Sequence[tuple[str, Any]],
    data: tuple[Any, Any, Any],
    allow: Iterable[str],
    capture: dict[str, Any] | None,
) -> NonfiniteOrigin | None:
    """`locate_nonfinite` on a batch whose inputs are finite."""
    x, y, sample_weight = data
    search = _Search({layer: path for path, layer in layers}, allow, capture is not None)
    saved = _SavedState(model, [layer for _, layer in layers])
    handles = []
    try:
        for _, layer in layers:
            handles.append(layer.register_forward_hook(search.forward_hook, with_kwargs=True))
            handles.append(layer.register_full_backward_hook(search.backward_hook))
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            y_pred = model(x, training=True)
            if search.found is not None:
                return search.found
            loss = _compute_loss(model, x, y, y_pred, sample_weight)
            outside = search.loss_origin(loss)
            if outside is not None:
                return outside
            params = [v.value for v in model.trainable_variables]
            grads = torch.autograd.grad(loss, params, allow_unused=True) if params else ()
        search.param_grads = {id(p): g for p, g in zip(params, grads) if g is not None}
        return search.found or search.parameter_origin()
    finally:
        for handle in handles:
            handle.remove()
        saved.restore()
        if capture is not None:
            capture.update(search.tensors())
