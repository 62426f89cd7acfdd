"""Everything in the Keras adapter that depends on the Keras backend, in one place.

The rest of the adapter uses `keras.ops` only. What differs between backends:

- whether a fit's train and test steps run eagerly enough for the callback to see their
  batches as concrete arrays (`can_observe_steps`): the torch backend without `jit_compile`,
  and the TensorFlow and JAX backends with `run_eagerly=True`. A compiled step (tf.function,
  jax.jit, torch.compile) hands the callback symbolic values, so there the batches come from
  the data passed to the callback instead;
- gradients (torch autograd, tf.GradientTape, jax.grad);
- the backend's own global random state;
- per-layer statistics (`layer_recorder`): hooks exist on the torch backend with eager steps
  only (Keras layers are torch modules there); elsewhere the layer checks are skipped;
- `no_grad()`: keeps the adapter's statistics out of torch's autograd graph;
- where the weights are during a fit (`trainable_values`): JAX's trainer keeps them in a state
  tuple between steps and purges the model's variables, so a callback reads them after
  `model.jax_state_sync()`, the hook Keras provides for callbacks.

The torch and JAX backends are tested in CI (`make test` runs tests/integrations/test_keras.py
under each); TensorFlow is not installed there (see docs/keras.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

_NAME = keras.backend.backend()  # fixed once keras is imported


def name() -> str:
    return _NAME


def can_observe_steps(model: Any) -> bool:
    """True when wrapping `model.train_step`/`test_step` shows the batches as concrete arrays
    without changing what is computed."""
    backend = name()
    if backend == "torch":
        return not bool(getattr(model, "jit_compile", False))
    if backend in ("tensorflow", "jax"):
        return bool(getattr(model, "run_eagerly", False))
    return False


def step_data(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The `data` argument of a train/test step: `step(data)` on torch and TensorFlow,
    `step(state, data)` on JAX."""
    if "data" in kwargs:
        return kwargs["data"]
    return args[-1] if args else None


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    if name() == "torch":
        import torch

        with torch.no_grad():
            yield
    else:
        yield


def trainable_values(model: Any) -> list[Any]:
    """The current values of the model's trainable variables, also mid-fit."""
    if name() == "jax":
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()  # mid-fit the values live in the trainer's state; a no-op when in sync
    return [v.value for v in model.trainable_variables]


def to_numpy(value: Any) -> Any:
    """A tensor (or Keras variable) as a numpy array; zero-copy for CPU torch tensors, which
    `keras.ops.convert_to_numpy` copies (with a numpy 2 DeprecationWarning per call)."""
    if name() == "torch":
        import torch

        value = getattr(value, "value", value)  # a Keras variable's torch tensor
        if isinstance(value, torch.Tensor):
            value = value.detach()
            if value.dtype in (torch.bfloat16, torch.float16):
                value = value.float()
            return value.cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(value))


def scalar(value: Any) -> float:
    """A 0-d tensor as a Python float (detached first on torch, which warns otherwise)."""
    if name() == "torch" and hasattr(value, "detach"):
        return value.detach().item()
    return float(value)


def last_gradients(model: Any) -> list[Any] | None:
    """The gradients the last train step left on the trainable variables (torch keeps them in
    `.grad` until the next step zeroes them); None where the backend does not keep them."""
    if name() != "torch":
        return None
    return [getattr(v.value, "grad", None) for v in model.trainable_variables]


def gradients(model: Any, x: Any, y: Any, sample_weight: Any = None) -> tuple[float, list[Any]]:
    """(loss, gradient per trainable variable, None where it gets none), in training mode,
    without touching the optimizer or any stored gradient."""
    variables = model.trainable_variables
    backend = name()
    if backend == "torch":
        import torch

        with torch.enable_grad():
            loss = _loss(model, x, y, sample_weight, training=True)
            params = [v.value for v in variables]
            grads = torch.autograd.grad(loss, params, allow_unused=True) if params else []
        return float(loss.detach()), list(grads)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _loss(model, x, y, sample_weight, training=True)
        grads = tape.gradient(loss, variables)
        return float(loss), list(grads)
    if backend == "jax":
        import jax

        trainable = [v.value for v in variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(trainable_values: list[Any]) -> Any:
            y_pred, _ = model.stateless_call(trainable_values, non_trainable, x, training=True)
            return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)

        loss, grads = jax.value_and_grad(loss_fn)(trainable)
        return float(loss), list(grads)
    raise NotImplementedError(f"gradients are not available on the {backend!r} Keras backend")


def _output_weights(out: Any) -> Any:
    """Weights 1..2 across the output units: the plain sum of a softmax output is constant
    (its gradient is zero), a weighted sum is not."""
    units = int(np.prod(out.shape[1:])) if len(out.shape) > 1 else 1
    w = np.linspace(1.0, 2.0, units, dtype="float32").reshape(out.shape[1:]) if units > 1 else 1.0
    return keras.ops.convert_to_tensor(w, dtype=out.dtype) if units > 1 else 1.0


def input_gradient(model: Any, x: Any, index: int) -> Any:
    """d(weighted sum of the outputs of sample `index`)/d(x) in inference mode; see
    `_output_weights`."""
    backend = name()
    if backend == "torch":
        import torch

        xt = keras.ops.convert_to_tensor(x)
        if not torch.is_floating_point(xt):
            raise TypeError("the inputs are not floating point, so they have no gradient")
        xt = xt.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(xt, training=False)
            (grad,) = torch.autograd.grad((out[index] * _output_weights(out)).sum(), xt)
        return grad
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = model(xt, training=False)
            target = tf.reduce_sum(out[index] * _output_weights(out))
        return tape.gradient(target, xt)
    if backend == "jax":
        import jax

        def target(v: Any) -> Any:
            out = model(v, training=False)
            return (out[index] * _output_weights(out)).sum()

        return jax.grad(target)(x)
    raise NotImplementedError(f"input gradients are not available on the {backend!r} backend")


def _loss(model: Any, x: Any, y: Any, sample_weight: Any, training: bool) -> Any:
    y_pred = model(x, training=training)
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)


def rng_state() -> Any:
    """The backend's own global random state (Keras' seed generators are handled by the
    caller, since they are Keras variables)."""
    backend = name()
    if backend == "torch":
        import torch

        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return (torch.get_rng_state(), cuda)
    if backend == "tensorflow":
        return None  # Keras 3 draws TensorFlow randomness from its own seed generators
    return None


def set_rng_state(state: Any) -> None:
    if name() == "torch" and state is not None:
        import torch

        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state_all(state[1])


def layer_recorder(
    model: Any, layers: list[tuple[str, Any, str | None, list[Any]]], *, keep_tensors: bool = False
) -> Any:
    """A recorder of per-layer statistics over `layers` ((path, layer, activation, weights)),
    or None where the backend has nothing to hook: on the torch backend with eager steps,
    Keras layers are torch modules and their weights torch parameters, so the torch recorder
    serves them (hooks on sampled steps only; Keras is channels-last)."""
    if name() != "torch" or not can_observe_steps(model):
        return None
    from mlcheck.integrations.torch_layers import LayerRecorder, RecordedLayer

    recorded = [
        RecordedLayer(
            path,
            layer,
            kind=type(layer).__name__,
            activation=activation,
            params=[(v.name, v.value) for v in weights],
        )
        for path, layer, activation, weights in layers
    ]
    return LayerRecorder(model, layers=recorded, channels_last=True, keep_tensors=keep_tensors)


def breakpoint_runner(breakpoints: Any, log_dir: Any) -> Any:
    """What writes the snapshots of tripped breakpoints (`.npz`, under `log_dir`) and opens the
    debugger, for a model `layer_recorder` records (torch backend)."""
    from mlcheck.integrations.torch_breakpoints import TorchBreakpoints

    return TorchBreakpoints(breakpoints, file_format="npz", log_dir=log_dir)
