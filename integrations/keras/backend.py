"""Everything in the Keras adapter that depends on the Keras backend, in one place.

The rest of the adapter uses `keras.ops` only. What differs between backends:

- how the callback sees a fit's batches: by wrapping `train_step`/`test_step`/`compute_loss`
  where they run eagerly with concrete arrays (`can_observe_steps`: torch without
  `jit_compile`, TensorFlow with `run_eagerly=True`); elsewhere (jax.jit or eager JAX,
  tf.function, torch.compile) by wrapping the Python `train_function`/`test_function` that
  `fit` calls with the data iterator, outside the compiled code (`tap_function`);
- how a copy of the model is kept apart from it (`own_copy`) and whether its steps are
  compiled (`compile_clone_steps`);
- gradients (torch autograd, tf.GradientTape, jax.grad);
- the backend's own global random state;
- per-layer statistics (`layer_recorder`): hooks exist on the torch backend with eager steps
  only (Keras layers are torch modules there); elsewhere the layer checks are skipped;
- `no_grad()`: keeps the adapter's statistics out of torch's autograd graph;
- the weight scan's arithmetic (`flat_float32`, `scan_values`): `keras.ops` everywhere, and on
  torch the same torch calls made directly (`keras.ops` costs ~10-30 us of Python per call);
- where the weights are during a fit (`trainable_values`): JAX's trainer keeps them in a state
  tuple between steps and purges the model's variables, so a callback reads them after
  `model.jax_state_sync()`, the hook Keras provides for callbacks.

The torch and JAX backends are tested in CI (`make test` runs tests/integrations/test_keras.py
under each); TensorFlow in its own virtual environment (see docs/keras.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

_NAME = keras.backend.backend()  # fixed once keras is imported


def name() -> str:
    return _NAME


def can_observe_steps(model: Any) -> bool:
    """True when wrapping `model.train_step`/`test_step`/`compute_loss` shows the batches and the
    loss as concrete arrays without changing what is computed: torch without `jit_compile`,
    TensorFlow with `run_eagerly=True`. Not JAX, even eagerly: its step differentiates through
    `compute_loss`, which then sees tracers, and Keras has moved the model's variables into the
    step's state (`tap_function` handles both)."""
    backend = name()
    if backend == "torch":
        return not bool(getattr(model, "jit_compile", False))
    if backend == "tensorflow":
        return bool(getattr(model, "run_eagerly", False))
    return False


def can_tap_functions(model: Any) -> bool:
    """True when wrapping `model.train_function`/`test_function` (`tap_function`) shows each batch
    on the host before the step runs, compiled or not: the Keras backends whose step functions
    this module knows how to feed."""
    return name() in ("torch", "jax", "tensorflow")


def tap_function(function: Callable[..., Any], model: Any, before_batch: Callable[[Any], None]) -> Callable[..., Any]:
    """`function` (a fit's `train_function` or `test_function`, compiled or not) with
    `before_batch(batch)` called on each batch before it runs; what runs is unchanged.

    The signatures are Keras' own, and so are the paths taken: `train_on_batch` feeds these
    functions a Python iterator on JAX and TensorFlow the same way.

    - torch: `function(data)`, data a list of `steps_per_execution` (always 1) batches.
    - JAX: `function(state, iterator)` pulls its batches with `next()` in Python and hands them
      to the jitted step: the wrapper pulls them first and passes them on in a list iterator, so
      the jitted step sees the very same arrays (no retrace). Keras has moved the model's
      variables into `state` for the step; on the first call they are put back for the duration
      of `before_batch`, because the train-start checks copy the model from them.
    - TensorFlow: `function(iterator)` runs a `tf.function` over a `tf.data` iterator in one
      graph; given any other iterator it runs its compiled one-batch step on each batch
      instead. The wrapper pulls the batches (eager tensors) and passes them in a list
      iterator: the same compiled step, traced once more for the last, smaller batch.
    """
    backend = name()
    if backend == "torch":

        def torch_function(data: Any) -> Any:
            for batch in data:
                before_batch(batch)
            return function(data)

        return torch_function
    if backend == "jax":
        first = [True]

        def jax_function(state: Any, iterator: Any) -> Any:
            batches = _pull(iterator, model)
            with _attached(model, state) if first[0] else contextlib.nullcontext():
                first[0] = False
                for batch in batches:
                    before_batch(batch)
            return function(state, iter(batches))

        return jax_function
    if backend == "tensorflow":

        def tf_function(iterator: Any) -> Any:
            batches = _pull(iterator, model)
            for batch in batches:
                before_batch(batch)
            return function(iter(batches))

        return tf_function
    raise NotImplementedError(f"step functions are not tapped on the {backend!r} Keras backend")


def _pull(iterator: Any, model: Any) -> list[Any]:
    """The batches one call of a step function would take: up to `steps_per_execution`; the
    iterator running dry raises StopIteration as the function itself would."""
    batches = []
    for _ in range(max(1, int(getattr(model, "steps_per_execution", 1) or 1))):
        try:
            batches.append(next(iterator))
        except StopIteration:
            break
    if not batches:
        raise StopIteration
    return batches


@contextlib.contextmanager
def _attached(model: Any, state: Any) -> Iterator[None]:
    """JAX: the model's variables hold `state`'s values (trainable, non-trainable, optimizer and
    metrics variables for a train step; trainable, non-trainable and metrics for a test step)
    while the block runs, as before Keras' trainer moved them out (`_purge_model_variables`
    sets the same `_value` to None), and are emptied again after it."""
    optimizer = getattr(model, "optimizer", None)
    groups = [model.trainable_variables, model.non_trainable_variables]
    if len(state) == 4:
        groups.append(optimizer.variables if optimizer is not None else [])
    groups.append(model.metrics_variables)
    pairs = [(v, value) for group, values in zip(groups, state) for v, value in zip(group, values)]
    saved = [v._value for v, _ in pairs]
    for v, value in pairs:
        if v._value is None:
            v._value = value
    try:
        yield
    finally:
        for (v, _), value in zip(pairs, saved):
            v._value = value


def can_send_outputs(model: Any) -> bool:
    """True where a step that `can_observe_steps` cannot show can send its `compute_loss`
    arguments to the host from inside (`send_to_host`): JAX, jitted or not (its step is traced,
    or differentiated, through `compute_loss`; `jax.debug.callback` works under both)."""
    return name() == "jax"


def outputs_unseen_reason(model: Any) -> str:
    """Why a step's predictions are neither seen (`can_observe_steps`) nor sent
    (`can_send_outputs`) on this backend, and what records them."""
    backend = name()
    if backend == "torch":
        return "the torch Keras backend's steps are compiled (jit_compile=True); compile with jit_compile=False"
    if backend == "tensorflow":
        return (
            "the TensorFlow Keras backend's steps run as a tf.function, which mlcheck does not look into; "
            "compile with run_eagerly=True"
        )
    return f"mlcheck does not know how to see the steps' predictions on the {backend!r} Keras backend"


def send_to_host(receive: Callable[..., None], *values: Any) -> None:
    """Calls `receive(*values)` on the host with the values as concrete arrays (pytrees kept),
    from inside a traced, jitted or differentiated JAX computation: `jax.debug.callback`, which
    changes no value the computation returns and is called on the primal values only under
    `jax.grad`. It may run after the step function has returned (asynchronous dispatch): call
    `wait_for_host()` before relying on every call having arrived."""
    import jax

    jax.debug.callback(receive, *values)


def wait_for_host() -> None:
    """Waits until every `send_to_host` call of the steps dispatched so far has run."""
    if name() == "jax":
        import jax

        jax.effects_barrier()


def step_data(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The `data` argument of a train/test step: `step(data)` on torch and TensorFlow,
    `step(state, data)` on JAX."""
    if "data" in kwargs:
        return kwargs["data"]
    return args[-1] if args else None


def clone_compile_options(model: Any) -> dict[str, Any]:
    """How the copy of a model that the train-start checks train (`KerasTrainable.clone`) runs
    its steps, which it takes a hundred of at most: compiled once on JAX, where an uncompiled
    step dispatches (and on first use compiles) every operation on its own; eagerly on
    TensorFlow, whose `tf.function` trace of a step takes longer than the checks' eager steps;
    never `torch.compile`, which takes longer to compile than the checks take to run."""
    backend = name()
    if backend == "jax":
        return {"run_eagerly": False, "jit_compile": True}
    if backend == "tensorflow":
        return {"run_eagerly": True, "jit_compile": False}
    return {"run_eagerly": bool(getattr(model, "run_eagerly", False)), "jit_compile": False}


def own_copy(value: Any) -> Any:
    """`value` to assign to another model's variable. JAX variables keep the very array they are
    assigned, and a compiled JAX step donates (frees) the arrays of its state: a copy keeps the
    two models apart. The other backends copy on assignment."""
    if name() == "jax":
        import jax

        return jax.device_put(value, may_alias=False)  # a buffer copy; jnp.array(copy=True) compiles one per shape
    return value


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


def flat_float32(tensors: list[Any]) -> Any:
    """The tensors as one float32 vector (a copy). On torch the torch calls that `keras.ops`
    makes (cast, reshape, concatenate; `ops_flat_float32`) without its ~10-30 us of Python per
    call: the same values, a tenth of the time on a small model."""
    if name() == "torch":
        import torch

        if all(isinstance(t, torch.Tensor) for t in tensors):
            return torch.cat(
                [torch.reshape(t if t.dtype == torch.float32 else t.to(torch.float32), (-1,)) for t in tensors]
            )
    return ops_flat_float32(tensors)


def ops_flat_float32(tensors: list[Any]) -> Any:
    """`flat_float32` in `keras.ops`, for every backend."""
    ops = keras.ops
    return ops.concatenate([ops.reshape(ops.cast(t, "float32"), (-1,)) for t in tensors])


def scan_values(weights: Any, grads: Any, before: Any) -> np.ndarray:
    """[all weights finite, all gradients finite (where `grads` is given), |weights - before|^2,
    |before|^2 (where `before` is given)] as float32 numbers, read to the host at once; the
    arguments are `flat_float32` vectors. On torch the torch calls that `keras.ops` makes
    (`ops_scan_values`), without its Python per call."""
    if name() == "torch":
        import torch

        if all(isinstance(t, torch.Tensor) for t in (weights, grads, before) if t is not None):
            parts = [torch.all(torch.isfinite(weights))]
            if grads is not None:
                parts.append(torch.all(torch.isfinite(grads)))
            parts = [part.to(torch.float32) for part in parts]
            if before is not None:
                parts.append(torch.sum(torch.square(weights - before)))
                parts.append(torch.sum(torch.square(before)))
            return to_numpy(torch.stack(parts))
    return ops_scan_values(weights, grads, before)


def ops_scan_values(weights: Any, grads: Any, before: Any) -> np.ndarray:
    """`scan_values` in `keras.ops`, for every backend."""
    ops = keras.ops
    parts = [ops.all(ops.isfinite(weights))]
    if grads is not None:
        parts.append(ops.all(ops.isfinite(grads)))
    parts = [ops.cast(part, "float32") for part in parts]
    if before is not None:
        parts.append(ops.sum(ops.square(weights - before)))
        parts.append(ops.sum(ops.square(before)))
    return to_numpy(ops.stack(parts))


def class_row_loss_sums(ys: list[Any], y_preds: list[Any], from_logits: bool, kind: str) -> Any:
    """[sum, sum of squares] of -log p of each row's class over the batches, a (2,) float32
    tensor left on the device: `y_preds` each (rows, width) scores (or (rows,) for width 1;
    logits where `from_logits`), `ys` their targets; `kind` "binary" (width 1, 0/1 targets of
    any shape with one value a row), "one_hot" ((rows, width) rows) or "sparse" (class indices,
    clamped into the classes). The batches are concatenated and reduced at once. On torch the
    torch calls that Keras' torch backend makes for `ops.binary_crossentropy` /
    `categorical_crossentropy` / `sparse_categorical_crossentropy` (the same values), without
    `keras.ops`' conversion layer per call (`ops_class_row_loss_sums`)."""
    if name() == "torch":
        import torch

        if all(isinstance(t, torch.Tensor) for t in (*ys, *y_preds)):
            with torch.no_grad():
                y = ys[0] if len(ys) == 1 else torch.cat(ys)
                out = (y_preds[0] if len(y_preds) == 1 else torch.cat(y_preds)).float()
                losses = _torch_class_row_losses(torch, y, out, from_logits, kind)
                return torch.stack((losses.sum(), losses.dot(losses)))
    return ops_class_row_loss_sums(ys, y_preds, from_logits, kind)


def _torch_class_row_losses(torch: Any, y: Any, out: Any, from_logits: bool, kind: str) -> Any:
    functional = torch.nn.functional
    eps = keras.backend.epsilon()
    if kind == "binary":
        out, target = out.reshape(-1), y.reshape(-1).float()
        if from_logits:
            return functional.binary_cross_entropy_with_logits(out, target, reduction="none")
        return functional.binary_cross_entropy(out.clamp(eps, 1.0 - eps), target, reduction="none")
    if kind == "one_hot":
        if from_logits:
            log_prob = functional.log_softmax(out, dim=1)
        else:  # Keras normalises the rows to sum 1, clips, then logs
            log_prob = (out / out.sum(dim=1, keepdim=True)).clamp(eps, 1.0 - eps).log()
        return -(y.float() * log_prob).sum(dim=1)
    labels = y.reshape(-1).long().clamp(0, out.shape[1] - 1)
    if from_logits:
        return functional.cross_entropy(out, labels, reduction="none")
    # each row's own class only: Keras' normalise-clip-log of every score, then its pick, for
    # the one score picked (elementwise, so the same values)
    picked = out.gather(1, labels[:, None])[:, 0] / out.sum(dim=1)
    return -picked.clamp(eps, 1.0 - eps).log()


def ops_class_row_loss_sums(ys: list[Any], y_preds: list[Any], from_logits: bool, kind: str) -> Any:
    """`class_row_loss_sums` in `keras.ops`, for every backend."""
    ops = keras.ops
    y = ys[0] if len(ys) == 1 else ops.concatenate(ys)
    y_pred = ops.cast(y_preds[0] if len(y_preds) == 1 else ops.concatenate(y_preds), "float32")
    if kind == "binary":
        labels = ops.cast(ops.reshape(y, (-1, 1)), "float32")
        losses = ops.binary_crossentropy(labels, ops.reshape(y_pred, (-1, 1)), from_logits=from_logits)[:, 0]
    elif kind == "one_hot":
        losses = ops.categorical_crossentropy(ops.cast(y, "float32"), y_pred, from_logits=from_logits)
    else:
        labels = ops.clip(ops.cast(ops.reshape(y, (-1,)), "int32"), 0, y_pred.shape[1] - 1)
        losses = ops.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits)
    return ops.stack([ops.sum(losses), ops.sum(losses * losses)])


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


def held(value: Any) -> Any:
    """A step's tensor kept for later without what it keeps alive: on torch detached (the
    step's autograd graph is freed where it would be without mlcheck), elsewhere as it is."""
    if _NAME == "torch" and getattr(value, "requires_grad", False):
        return value.detach()
    return value


def concat_to_numpy(values: list[Any]) -> np.ndarray:
    """The tensors (or arrays) concatenated along their first axis, as one numpy array: the
    values of `np.concatenate([to_numpy(v) for v in values])`. On torch one `torch.cat` and one
    conversion instead of one conversion per tensor (a few microseconds each, per step)."""
    if _NAME == "torch":
        import torch

        if all(isinstance(v, torch.Tensor) and v.dtype == values[0].dtype for v in values):  # no promotion
            try:
                joined = torch.cat(values) if len(values) > 1 else values[0]
            except RuntimeError:  # shapes or devices differ: one by one, as np.concatenate judges
                joined = None
            if joined is not None:
                return to_numpy(joined)
    return np.concatenate([np.asarray(to_numpy(v)) for v in values])


#: Values per tensor (on average) below which `split_to_numpy` joins the tensors before the
#: conversion: 45 batches of 32 x 64 digits rows converted in 44-53 us joined, 106-184 us one by
#: one; a batch of 64 MNIST images (50,176 values) costs more to copy than to convert alone.
#: One CPU, thread time (docs/benchmarks.md section 2b, 2026-12-04).
SPLIT_BELOW = 1 << 13


def split_to_numpy(values: list[Any]) -> list[np.ndarray]:
    """Each tensor (or array) as a numpy array: the values of `[np.asarray(to_numpy(v)) for v in
    values]`. On torch, tensors of one dtype whose rows have one layout and that are small
    (`SPLIT_BELOW`) are joined by one `torch.cat` and converted once; each is then a view of
    that array (the arrays are read, never written)."""
    if _NAME == "torch" and len(values) > 1:
        import torch

        first = values[0]
        alike = all(type(v) is torch.Tensor and v.dtype == first.dtype and v.ndim > 0 for v in values)
        if alike and sum(v.numel() for v in values) < SPLIT_BELOW * len(values):
            try:
                joined = torch.cat(values)
            except RuntimeError:  # rows of different layouts or devices: one by one
                joined = None
            if joined is not None:
                array = np.asarray(to_numpy(joined))
                ends = np.cumsum([v.shape[0] for v in values]).tolist()
                return [array[start:end] for start, end in zip([0, *ends[:-1]], ends)]
        if (
            alike
            and first.dtype not in (torch.bfloat16, torch.float16)
            and not any(v.requires_grad or not v.is_cpu for v in values)
        ):  # the loader's own CPU batches: `numpy()` gives the view `to_numpy` gives, without its
            # `detach()`, `cpu()` and checks per tensor (a few thousand instructions each)
            return [v.numpy() for v in values]
    return [np.asarray(to_numpy(v)) for v in values]


def scalar(value: Any) -> float:
    """A 0-d tensor as a Python float (detached first on torch, which warns otherwise)."""
    if name() == "torch" and hasattr(value, "detach"):
        return value.detach().item()
    return float(value)


def schedule_reader(schedule: Any) -> Callable[[int], float]:
    """A function step -> the rate a `LearningRateSchedule` gives there, for reading one at many
    steps: on JAX the schedule compiled once with the step traced (an eager call of a schedule
    with a new step costs ~0.1-0.3 s there, as its operations are compiled for each value), else
    the schedule called as it is."""
    if name() != "jax":
        return lambda step: scalar(schedule(step))
    import jax
    import jax.numpy as jnp

    compiled = jax.jit(lambda step: schedule(step))
    eager: list[bool] = []  # set once tracing failed: read eagerly from then on

    def read(step: int) -> float:
        if not eager:
            try:
                return float(compiled(jnp.asarray(step, dtype=jnp.int32)))
            except Exception:  # a schedule with Python control flow on the step: it cannot be traced
                eager.append(True)
        return scalar(schedule(step))

    return read


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


def input_gradient(model: Any, x: Any, index: int, pick: Callable[[Any], Any] = lambda out: out) -> Any:
    """d(weighted sum of the outputs of sample `index`)/d(x) in inference mode, of the output
    `pick` takes of the model's (the first of several); see `_output_weights`. On JAX through
    `model.stateless_call`: a layer that updates its state even so (a BatchNormalization called
    with `training=True` hard-coded) would otherwise leave a tracer in its variables."""
    backend = name()
    if backend == "torch":
        import torch

        xt = keras.ops.convert_to_tensor(x)
        if not torch.is_floating_point(xt):
            raise TypeError("the inputs are not floating point, so they have no gradient")
        xt = xt.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = pick(model(xt, training=False))
            (grad,) = torch.autograd.grad((out[index] * _output_weights(out)).sum(), xt)
        return grad
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = pick(model(xt, training=False))
            target = tf.reduce_sum(out[index] * _output_weights(out))
        return tape.gradient(target, xt)
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def target(v: Any) -> Any:
            out, _ = model.stateless_call(trainable, non_trainable, v, training=False)
            out = pick(out)
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
    serves them (hooks on sampled steps only; Keras is channels-last). Keras' torch
    `train_step` zeroes the gradients at its start, so a step's are still in `.grad` when the
    recorder finishes: read there, without a hook per weight."""
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
            running_stats=_moving_statistics(layer),
        )
        for path, layer, activation, weights in layers
    ]
    return LayerRecorder(model, layers=recorded, channels_last=True, keep_tensors=keep_tensors, grad_hooks=False)


def _moving_statistics(layer: Any) -> tuple[Any, Any] | None:
    """A BatchNormalization layer's (moving mean, moving variance) tensors, updated in place by
    Keras (`assign` copies into them), for `LayerStats.running_stats_at_init`; None for other
    layers and for momentum 1 (statistics that never move, in training mode too)."""
    if not isinstance(layer, keras.layers.BatchNormalization) or not layer.built or layer.momentum >= 1:
        return None
    return layer.moving_mean.value, layer.moving_variance.value


def breakpoint_runner(breakpoints: Any, log_dir: Any) -> Any:
    """What writes the snapshots of tripped breakpoints (`.npz`, under `log_dir`) and opens the
    debugger, for a model `layer_recorder` records (torch backend)."""
    from mlcheck.integrations.torch_breakpoints import TorchBreakpoints

    return TorchBreakpoints(breakpoints, file_format="npz", log_dir=log_dir)


def watch_loaders(iterator: Any, on_loader: Callable[[Any, int | None], None]) -> Callable[[], None] | None:
    """On torch, hands each `DataLoader` that a Keras `EpochIterator` makes (one an epoch, over
    the same arrays: `ArrayDataAdapter.get_torch_dataloader`) to `on_loader` before its pass
    starts, with the number of samples its data adapter holds (Keras' `ArrayDataset` has no
    working `len()`); returns the function that undoes it. None elsewhere (JAX and TensorFlow
    iterate arrays their own way) or where `iterator` makes no loaders."""
    original = getattr(iterator, "_get_iterator", None)
    if _NAME != "torch" or not callable(original):
        return None
    own = iterator.__dict__.get("_get_iterator", _MISSING)
    size = getattr(getattr(iterator, "data_adapter", None), "_num_samples", None)

    def _get_iterator() -> Any:
        loader = original()
        on_loader(loader, size if isinstance(size, int) else None)
        return loader

    iterator._get_iterator = _get_iterator

    def undo() -> None:
        if iterator.__dict__.get("_get_iterator") is not _get_iterator:
            return  # replaced since: left alone
        if own is _MISSING:
            del iterator._get_iterator
        else:
            iterator._get_iterator = own

    return undo


_MISSING = object()


def loader_indices(loader: Any, previous: Any = None, size: int | None = None) -> Any:
    """The data set indices of `loader`'s batches as they are drawn (torch's `LoaderIndices`,
    the Lightning adapter's), the hashes of `previous` carried over; `size`: the data set's
    length where `len(loader.dataset)` fails. None off torch or where the loader's sampler
    cannot be watched."""
    if _NAME != "torch":
        return None
    from mlcheck.integrations.torch_samples import LoaderIndices

    if size is None:
        try:
            size = len(loader.dataset)
        except Exception:  # no length: not watched
            return None
    if isinstance(previous, LoaderIndices) and previous.move_to(loader, size):  # the next epoch's loader
        return previous
    return LoaderIndices.watch(loader, previous, size)
