"""`KerasTrainable`: a compiled Keras 3 model with its data, as pre-flight checks see it.

Everything here uses `keras.ops`; gradients and the backend's random state come from
`mlcheck.integrations.keras.backend`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from mlcheck import task as task_facts
from mlcheck.integrations.keras import backend
from mlcheck.run import InputRescale
from mlcheck.trainable import ADDITIVE_TOLERANCE, CloneRefused, LossConfig, Trainable

if TYPE_CHECKING:
    from mlcheck.layers import LayerObservation

logger = logging.getLogger(__name__)

_SOFTMAX_LAYERS = {"Softmax": "softmax"}


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def loss_config(model: Any) -> LossConfig:
    """Reads the compiled loss (name, `from_logits`) and the last layer's activation."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    name: str | None = None
    from_logits: bool | None = None
    smoothing: float | None = None
    if isinstance(loss, str):
        name, from_logits = loss, False
    elif isinstance(loss, keras.losses.Loss):
        config = loss.get_config() if hasattr(loss, "get_config") else {}
        name = _snake(type(loss).__name__)
        if "from_logits" in config:
            from_logits = bool(config["from_logits"])
        elif task_facts.is_known_loss(name):
            from_logits = False
        value = config.get("label_smoothing")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
            smoothing = float(value)
    elif callable(loss):
        name = getattr(loss, "__name__", None)
        from_logits = False if task_facts.is_known_loss(name) else None
    units = _output_units(model)
    return LossConfig(
        loss=task_facts.canonical_loss(name),
        from_logits=from_logits,
        output_activation=_output_activation(model),
        output_units=units,
        task=task_facts.from_loss(name, units).task,
        output_dropout=_output_dropout(model),
        output_normalisation=_output_normalisation(model),
        label_smoothing=smoothing,
    )


#: Keras' built-in losses whose value changes when their two arguments are swapped, by name
#: (the squared, absolute, Huber and log-cosh errors and the cosine similarity are symmetric)
_ORDERED_LOSSES = (
    ("categorical_crossentropy", keras.losses.categorical_crossentropy),
    ("binary_crossentropy", keras.losses.binary_crossentropy),
    ("kl_divergence", keras.losses.kl_divergence),
    ("poisson", keras.losses.poisson),
    ("mean_absolute_percentage_error", keras.losses.mean_absolute_percentage_error),
    ("hinge", keras.losses.hinge),
    ("squared_hinge", keras.losses.squared_hinge),
    ("categorical_hinge", keras.losses.categorical_hinge),
)
#: float32 rounding of one computation done twice in another order stays far inside this
_SAME_LOSS_RTOL = 1e-5
#: the two orders of a built-in must differ by more than this share for its order to tell
_ORDER_MATTERS = 1e-2


def _same(a: np.ndarray, b: np.ndarray, rtol: float = _SAME_LOSS_RTOL) -> bool:
    return bool(np.allclose(a, b, rtol=rtol, atol=1e-6))


def _own_loss(model: Any) -> Callable[[Any, Any], Any] | None:
    """The compiled loss where it is the user's own (a function or `Loss` subclass defined outside
    Keras); None for a built-in, a name, several losses or none."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, str) or not callable(loss):
        return None
    module = getattr(loss if not isinstance(loss, keras.losses.Loss) else type(loss), "__module__", "") or ""
    return None if module.split(".")[0] == "keras" else loss


def _reduction(model: Any) -> str | None:
    """The `reduction` of the one compiled loss object ("sum", "sum_over_batch_size", ...); None
    for a loss given by name or as a function (Keras averages those over the batch), or several."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    reduction = getattr(loss, "reduction", None) if isinstance(loss, keras.losses.Loss) else None
    return reduction if isinstance(reduction, str) else None


def _output_units(model: Any) -> int | None:
    try:
        shape = model.output_shape
    except Exception:  # subclassed or unbuilt models have none
        return None
    if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def _trailing_dropout(layers: list[Any]) -> int:
    """How many of the last layers are dropout layers (Dropout, SpatialDropout2D, AlphaDropout,
    GaussianDropout, ...): identity at inference, so the output activation is the one before."""
    count = 0
    while count < len(layers) and type(layers[-1 - count]).__name__.endswith("Dropout"):
        count += 1
    return count


def _output_dropout(model: Any) -> float | None:
    """The rate of a dropout layer placed after the model's output layer, None without one."""
    layers = list(getattr(model, "layers", None) or [])
    if not _trailing_dropout(layers) or len(layers) < 2:
        return None
    rate = getattr(layers[-1], "rate", None)
    return float(rate) if isinstance(rate, (int, float)) else None


#: normalisation layers that re-centre and re-scale what they are given (Keras' preprocessing
#: `Normalization` is an input layer's business, not this)
_NORMALISATION_LAYERS = frozenset(
    {"BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization"}
)


def _output_normalisation(model: Any) -> tuple[str, str] | None:
    """(layer class, activation) where the model's last layer, past trailing dropout, is a
    normalisation layer right after a softmax or sigmoid (`LossConfig.output_normalisation`)."""
    layers = list(getattr(model, "layers", None) or [])
    layers = layers[: len(layers) - _trailing_dropout(layers)]
    if len(layers) < 2 or type(layers[-1]).__name__ not in _NORMALISATION_LAYERS:
        return None
    before = _layer_activation(layers[-2])
    return (type(layers[-1]).__name__, before) if before in ("softmax", "sigmoid") else None


def _output_activation(model: Any) -> str | None:
    layers = list(getattr(model, "layers", None) or [])
    layers = layers[: len(layers) - _trailing_dropout(layers)]
    if not layers:
        return None
    return _layer_activation(layers[-1])


def _layer_activation(last: Any) -> str | None:
    """The activation a layer applies last: a softmax layer's, or its `activation` argument's."""
    kind = type(last).__name__
    if kind in _SOFTMAX_LAYERS:
        return _SOFTMAX_LAYERS[kind]
    activation = getattr(last, "activation", None)
    if activation is None:
        return None
    act = getattr(activation, "__name__", None) or str(activation)
    return {"linear": "linear", "softmax": "softmax", "sigmoid": "sigmoid", "log_softmax": "log_softmax"}.get(act, act)


def first_layer_kind(model: Any) -> str | None:
    """ "embedding_ids" when the inputs go straight into an embedding layer (Embedding,
    EmbeddingBag or a subclass), "rescaled" when into a Rescaling or Normalization layer, else
    None (`mlcheck.task.input_kind_of_model`)."""
    layers = getattr(model, "layers", []) or []
    return task_facts.input_kind_of_model((type(layer) for layer in layers), ordered=True)


def run_info_facts(model: Any) -> dict[str, Any]:
    """task, num_classes, has_scheduler and the loss's name as far as the compiled model tells."""
    config = loss_config(model)
    facts = task_facts.from_loss(config.loss, config.output_units, task=config.task)
    scheduled = has_schedule(getattr(model, "optimizer", None))
    # Without a schedule object the rate may still be changed by a callback
    # (ReduceLROnPlateau, LearningRateScheduler), so "no schedule" is never certain.
    return {
        "task": facts.task,
        "num_classes": facts.num_classes,
        "has_scheduler": True if scheduled else None,
        "loss": config.loss,
        "grad_clip": _grad_clip(getattr(model, "optimizer", None)),
        "embedding_rows": _embedding_rows(model),
        "input_rescale": input_rescale(model),
        # a schedule object's peak ahead (a warm-up's target); a plain rate may be set by a
        # callback (LearningRateScheduler) from another base, so it is not taken as the peak
        "base_lr": configured_lr(model.optimizer) if scheduled else None,
    }


def input_rescale(model: Any) -> InputRescale | None:
    """(scale, offset, description) of the affine map the first layer applies to each input
    value (`RunInfo.input_rescale`): a `Rescaling` layer's, or a `Normalization` layer's over the
    last axis (mean 0 and variance 1 when it was never adapted: the inputs pass unchanged) or,
    with `axis=None`, its one mean and variance over every value.
    None for any other first layer, an inverted or not-yet-built Normalization, or values that
    cannot be read."""
    if first_layer_kind(model) != "rescaled":
        return None
    layer = next((v for v in getattr(model, "layers", []) or [] if not isinstance(v, keras.layers.InputLayer)), None)
    try:
        if isinstance(layer, keras.layers.Rescaling):
            scale, offset = _f64(layer.scale), _f64(layer.offset)
            shown = f"{float(scale.ravel()[0]):.4g}" if scale.size == 1 else "per channel"
            return InputRescale(scale, offset, f"Rescaling(scale={shown}) layer '{layer.name}'")
        if not isinstance(layer, keras.layers.Normalization) or getattr(layer, "invert", False):
            return None
        axis = tuple(getattr(layer, "axis", (-1,)) or ())
        if axis not in ((-1,), ()):
            return None
        if getattr(layer, "input_mean", None) is not None:
            mean, variance = _f64(layer.input_mean), _f64(layer.input_variance)
            adapted = True
        elif getattr(layer, "built", False) and hasattr(layer, "adapt_mean"):
            mean, variance = _f64(layer.adapt_mean), _f64(layer.adapt_variance)
            adapted = not (np.all(mean == 0) and np.all(variance == 1))
        else:
            return None
        if mean.ndim > 1 or variance.shape != mean.shape or (axis == () and mean.size != 1):
            return None
        scale = 1.0 / np.maximum(np.sqrt(variance), keras.config.epsilon())
        # axis=None: one mean and variance over every value, so the columns keep their relative scales
        what = f"Normalization{'(axis=None)' if axis == () else ''} layer '{layer.name}'" + (
            "" if adapted else ", never adapted: mean 0, variance 1, so it passes the inputs through unchanged"
        )
        return InputRescale(scale, -mean * scale, what, over_every_value=axis == (), adapted=adapted)
    except Exception:
        return None


def _f64(value: Any) -> np.ndarray:
    """A number, list, array, tensor or variable as a float64 numpy array."""
    if isinstance(value, (int, float, list, tuple, np.ndarray, np.generic)):
        return np.asarray(value, np.float64)
    return np.asarray(backend.to_numpy(value), np.float64)


def _embedding_rows(model: Any) -> int | None:
    """`input_dim` of the Embedding the inputs go straight into (the first layer), else None."""
    if first_layer_kind(model) != "embedding_ids":
        return None
    for layer in getattr(model, "layers", []) or []:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        rows = getattr(layer, "input_dim", None)
        return int(rows) if isinstance(rows, int) and not isinstance(rows, bool) and rows > 0 else None
    return None


def _grad_clip(optimizer: Any) -> float | None:
    """The optimizer's clipping threshold (`clipnorm`, `global_clipnorm`, `clipvalue`; the
    smallest set), None without one."""
    values = [getattr(optimizer, name, None) for name in ("clipnorm", "global_clipnorm", "clipvalue")]
    values = [float(v) for v in values if isinstance(v, (int, float)) and v > 0]
    return min(values) if values else None


def current_lr(optimizer: Any) -> float | None:
    """The learning rate the optimizer uses at its current iteration (schedules evaluated)."""
    if optimizer is None:
        return None
    try:
        return backend.scalar(optimizer.learning_rate)
    except Exception:
        return None


#: Steps ahead of the current one at which `configured_lr` reads a schedule: 0 and each power
#: of 2 up to 2^20 (a million steps, longer than the runs mlcheck watches): 22 calls, a
#: warm-up's end found within 2x (a cosine warming up over 1500 steps then decaying over 1000
#: read 0.68x its peak), then narrowed down (`_REFINE_CALLS`).
_SCHEDULE_STEPS = (0, *(2**k for k in range(21)))
#: Calls of a ternary search for the peak between the sampled steps either side of the highest
#: (a warm-up then a decay is unimodal there): the bracket shrinks to 2/3 each two calls, so 40
#: narrow 2^20 steps to ~300 and a bracket of a few thousand steps to its peak within a step or two.
_REFINE_CALLS = 40


def configured_lr(optimizer: Any) -> float | None:
    """The rate the optimizer is configured to train at: a plain rate's value; for a
    `LearningRateSchedule`, the largest it gives from the current step on (over
    `_SCHEDULE_STEPS` ahead, then searched between the two sampled steps either side of the
    highest): a warm-up's target, a decay's current rate. As torch's schedulers
    keep the base rate in `initial_lr`: the rate at the first step of a warm-up (1e-5 of an
    lr-finder-like ramp) is not what the run trains at."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return current_lr(optimizer)
    try:
        now = int(backend.scalar(optimizer.iterations.value))
        rate_at = _finite_reader(backend.schedule_reader(schedule))
        rates = [rate_at(now + step) for step in _SCHEDULE_STEPS]
        if not any(math.isfinite(r) for r in rates):
            return current_lr(optimizer)
        best = max(range(len(rates)), key=rates.__getitem__)
        lo, hi = _SCHEDULE_STEPS[max(best - 1, 0)], _SCHEDULE_STEPS[min(best + 1, len(rates) - 1)]
        return max(rates[best], _peak_between(rate_at, now + lo, now + hi))
    except Exception:  # a schedule that cannot be read at other steps: the current rate
        return current_lr(optimizer)


def _finite_reader(read: Callable[[int], float]) -> Callable[[int], float]:
    """`read`, with a rate that is not finite taken as -inf (never the highest)."""

    def finite(step: int) -> float:
        rate = read(step)
        return rate if rate is not None and math.isfinite(rate) else -math.inf

    return finite


def _peak_between(rate_at: Callable[[int], float], lo: int, hi: int) -> float:
    """The highest rate a ternary search finds on the steps [lo, hi] (a warm-up's end between
    two sampled steps), in at most `_REFINE_CALLS` calls; never above the schedule's own."""
    best = -math.inf
    for _ in range(_REFINE_CALLS // 2):
        if hi - lo < 3:
            break
        a, b = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        ra, rb = rate_at(a), rate_at(b)
        best = max(best, ra, rb)
        if ra < rb:
            lo = a
        else:
            hi = b
    return max([best, *(rate_at(step) for step in range(lo, min(hi, lo + 3) + 1))])


#: Epochs from the start for which the Keras callback takes a `LearningRateSchedule`'s rate at
#: every step (`scheduled_rates`), where it otherwise reads the rate every `every_n_steps`:
#: `lr-schedule`'s `cycles` needs 3 returns to the peak at 2 or more cycles an epoch, so 2 epochs
#: of single steps hold them; a read every 25 steps cannot see a cycle of 20
RATE_TABLE_EPOCHS = 2
#: at most this many steps in the table (32 KiB of float64): one vectorised call of the schedule,
#: ~2-20 ms for 2,000 steps on torch (ExponentialDecay, CosineDecayRestarts)
RATE_TABLE_STEPS = 4096
#: a schedule that does not take a vector of steps (a warm-up's `ops.cond`, PiecewiseConstantDecay)
#: is called once a step, 0.1-0.8 ms a call on torch: at most this many calls (<= ~0.2 s once)
RATE_TABLE_CALLS = 256


def scheduled_rates(optimizer: Any, start: int, count: int) -> np.ndarray | None:
    """The rates a `LearningRateSchedule` set as the optimizer's `learning_rate` gives at the
    steps `start` .. `start + count - 1` (the rate each of those optimizer steps trains with), as
    float64; None for a plain rate or a callable (a `LearningRateScheduler` callback changes the
    plain rate once an epoch at most), under gradient accumulation (the schedule then counts
    other steps), or where the schedule cannot be read. A schedule is a pure function of the
    step: read once at train start, it costs nothing on the per-step path."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if count < 1 or not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return None
    if getattr(optimizer, "gradient_accumulation_steps", None):
        return None
    steps = np.arange(start, start + count, dtype=np.int64)
    try:
        rates = np.asarray(keras.ops.convert_to_numpy(schedule(keras.ops.convert_to_tensor(steps))), np.float64)
        if rates.shape == steps.shape:
            return rates
    except Exception:  # a schedule with control flow on the step: one call a step, fewer steps
        pass
    read = backend.schedule_reader(schedule)
    return np.asarray([read(int(s)) for s in steps[:RATE_TABLE_CALLS]], np.float64)


def has_schedule(optimizer: Any) -> bool:
    """True when the learning rate is a LearningRateSchedule or a callable (evaluated per step),
    False for a plain variable."""
    lr = getattr(optimizer, "_learning_rate", None)
    return isinstance(lr, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(lr) and not isinstance(lr, keras.Variable)
    )


def to_numpy(value: Any) -> np.ndarray | None:
    """A single tensor or array as numpy; None for nested structures (dicts, lists)."""
    if value is None or isinstance(value, (dict, list, tuple)):
        return None
    if isinstance(value, np.ndarray):
        return value
    try:
        return backend.to_numpy(value)
    except Exception:
        return None


def unpack(batch: Any) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) of a batch as Keras hands it to a step."""
    if isinstance(batch, tuple):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
    if isinstance(batch, list) and len(batch) in (2, 3):
        return unpack(tuple(batch))
    return batch, None, None


def _overridden_train_step(model: Any) -> Any:
    """The model class's own `train_step` (defined by it or a base other than Keras'), else None."""
    own = getattr(type(model), "train_step", None)
    return None if own is None or own is getattr(keras.Model, "train_step", None) else own


class _packed_as_fit:
    """While a step runs through `train_on_batch`, a `train_step` override of the model's class
    gets its data packed as `fit` packs it: `train_on_batch` always hands `(x, y, sample_weight)`,
    where `fit` hands `(x, y)` when there are no sample weights and `x` alone when there are no
    targets either (keras.utils.pack_x_y_sample_weight), so an override written for `fit` as the Keras
    guides write it (`x, y = data`) raised "too many values to unpack" in mlcheck's steps. The
    override is put back as it was afterwards."""

    def __init__(self, model: Any, w: Any) -> None:
        self.model = model
        self.active = w is None and _overridden_train_step(model) is not None

    def __enter__(self) -> None:
        if not self.active:
            return
        self.saved = self.model.__dict__.get("train_step", _MISSING)
        original = self.model.train_step

        def train_step(*args: Any, **kwargs: Any) -> Any:
            # the data is the last positional argument (the JAX trainer passes its state first)
            if args and isinstance(args[-1], tuple) and len(args[-1]) == 3 and args[-1][2] is None:
                args = (*args[:-1], keras.utils.pack_x_y_sample_weight(args[-1][0], args[-1][1]))
            return original(*args, **kwargs)

        self.model.train_step = train_step

    def __exit__(self, *exc: Any) -> None:
        if not self.active:
            return
        if self.saved is _MISSING:
            if "train_step" in self.model.__dict__:
                delattr(self.model, "train_step")
        else:
            self.model.train_step = self.saved


_MISSING = object()


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _batches_from(data: Any, batch_size: int, n: int) -> list[Any]:
    """The first `n` batches of arrays `(x, y[, w])`, a list of batches, or any iterable of
    batches (a tf.data.Dataset, a PyDataset, a torch DataLoader, a generator)."""
    if data is None or n <= 0:
        return []
    if (
        isinstance(data, list)
        and 2 <= len(data) <= 3
        and all(_is_array(a) for a in data)
        and len({len(a) for a in data}) == 1
    ):
        data = tuple(data)  # [x, y] rather than a list of batches
    if isinstance(data, tuple) and data and all(_is_array(a) or a is None for a in data):
        arrays = data
        total = len(arrays[0])
        return [
            tuple(None if a is None else a[i : i + batch_size] for a in arrays)
            for i in range(0, min(total, n * batch_size), batch_size)
        ]
    total = _nested_rows(data)
    if total is not None:  # ({"a": xa, "b": xb}, y) or (x, (y1, y2)): named inputs, several outputs
        return [_sliced(data, i, i + batch_size) for i in range(0, min(total, n * batch_size), batch_size)]
    if _is_array(data):
        return [(data[i : i + batch_size],) for i in range(0, min(len(data), n * batch_size), batch_size)]
    if isinstance(data, list):
        return [b if isinstance(b, tuple) else tuple(b) if isinstance(b, list) else b for b in data[:n]]
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "num_batches"):
        return [data[i] for i in range(min(n, len(data)))]  # keras.utils.PyDataset
    out = []
    for batch in data:
        out.append(tuple(batch) if isinstance(batch, list) else batch)
        if len(out) >= n:
            break
    return out


_DATA_FORMS = (
    "arrays (x, y) or (x, y, sample_weight), x alone, a list of batches, or a dataset "
    "(tf.data.Dataset, keras.utils.PyDataset, a torch DataLoader: any iterable of batches)"
)


def data_argument(name: str, data: Any) -> Any:
    """`data` when it is a form `_batches_from` reads (or None); else a TypeError naming the
    argument `name` (`train_data`, `validation_data`) and the forms it takes, raised where the
    callback is built rather than where the data is first batched, mid-fit. A string, a number,
    a dict or a set would be read as batches of characters, keys or nothing; arrays of
    different lengths in one `(x, y)` would be sliced into batches that do not match (ValueError)."""
    if data is None or _is_array(data):
        return data
    if isinstance(data, (tuple, list)):
        if isinstance(data, tuple) and data and all(_is_array(a) or a is None for a in data):
            rows = [len(a) for a in data if a is not None]
            if len(set(rows)) > 1:
                raise ValueError(f"{name}'s arrays have different lengths ({', '.join(map(str, rows))} rows)")
            return data
        if _nested_rows(data) is not None:
            return data
        bad = next((b for b in data if not (_is_array(b) or isinstance(b, (tuple, list, dict)))), _MISSING)
        if bad is _MISSING:
            return data  # a list (or tuple) of batches
        raise TypeError(f"{name} must be {_DATA_FORMS}; got a {type(data).__name__} holding {reprlib.repr(bad)}")
    if isinstance(data, (str, bytes, Mapping, set, frozenset)) or not isinstance(data, Iterable):
        if not (hasattr(data, "__getitem__") and hasattr(data, "__len__") and hasattr(data, "num_batches")):
            raise TypeError(f"{name} must be {_DATA_FORMS}; got {reprlib.repr(data)}")
    return data


def _nested_rows(data: Any) -> int | None:
    """The rows of `(x, y[, w])` arrays where x is an array or a dict of arrays (a model's named
    inputs) and y or w may be a dict, list or tuple of arrays (several outputs), all with as many
    rows; None for anything else (a tuple whose first item is a batch is a tuple of batches)."""
    if not (isinstance(data, tuple) and 2 <= len(data) <= 3 and (_is_array(data[0]) or isinstance(data[0], dict))):
        return None
    rows = {_rows(part) for part in data if part is not None}
    return rows.pop() if len(rows) == 1 and None not in rows else None


def _rows(value: Any) -> int | None:
    """The leading length of an array, or of a dict, list or tuple of arrays that share it."""
    if _is_array(value):
        return len(value)
    parts = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) else []
    rows = {_rows(part) for part in parts}
    return rows.pop() if len(rows) == 1 and None not in rows else None


def _sliced(value: Any, start: int, stop: int) -> Any:
    """Rows start:stop of every array in `value`, keeping its structure (dicts, lists, tuples,
    as `keras.tree` walks them)."""
    return keras.tree.map_structure(lambda a: a[start:stop] if np.ndim(a) else a, value)


def _first_output(out: Any) -> Any:
    """The prediction the checks judge of a model with several outputs: its first, as the torch
    adapter takes the first tensor of a tuple (a dict's first value, in the model's order)."""
    if isinstance(out, dict):
        return next(iter(out.values())) if out else out
    if isinstance(out, (list, tuple)) and out:
        return out[0]
    return out


def _tensors(value: Any) -> Any:
    """`value` as backend tensors, keeping its structure: a model with named or several inputs
    (or outputs) takes a dict, list or tuple of arrays, which is no one array."""
    return None if value is None else keras.tree.map_structure(keras.ops.convert_to_tensor, value)


class KerasTrainable(Trainable):
    """A compiled Keras 3 model with its training (and validation) data.

    Args:
        model: a Keras model. When it is not compiled yet, `loss` and `optimizer` compile it.
        train_data: arrays `(x, y)` or `(x, y, sample_weight)`, a list of batches, or any
            iterable of batches (tf.data.Dataset, keras.utils.PyDataset, torch DataLoader).
        val_data: the same for validation, optional.
        batch_size: batch size used to slice arrays. Default 32, Keras' own default.
        loss / optimizer: compile arguments for a model that is not compiled.
    """

    framework = "keras"

    def __init__(
        self,
        model: Any,
        train_data: Any = None,
        val_data: Any = None,
        *,
        batch_size: int = 32,
        loss: Any = None,
        optimizer: Any = None,
    ) -> None:
        if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
            if loss is None:
                raise ValueError(
                    "The Keras model is not compiled: call model.compile(optimizer=..., "
                    "loss=...) or pass loss= and optimizer= with it."
                )
            model.compile(optimizer=optimizer or "adam", loss=loss)
        self.model = model
        self.train_data = train_data
        self.val_data = val_data
        self.batch_size = batch_size
        #: a clone's variables under the paths of the model it copies (`clone`): a subclassed
        #: model rebuilt from its config gets new layer names, and `unused-parameters` matches
        #: the clone's gradients with the original's optimizer by path
        self._paths: dict[int, str] = {}
        self._summed: tuple[int | None] | None = None  # (`_summed_over`,) once counted
        self._additive: bool | None = None  # (`_adds_up`) once tried

    def _path(self, variable: Any) -> str:
        return self._paths.get(id(variable), variable.path)

    # -- data ----------------------------------------------------------------------------------

    def batches(self, split: str = "train", n: int = 1) -> list[Any]:
        data = self.train_data if split == "train" else self.val_data
        return _batches_from(data, self.batch_size, n)

    def to_numpy(self, batch: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        x, y, _ = unpack(batch)
        return to_numpy(x), to_numpy(y)

    def from_numpy(self, inputs: np.ndarray, targets: np.ndarray | None) -> Any:
        return (inputs, targets)

    def head(self, batch: Any, size: int) -> Any:
        """The first `size` samples of every array in the batch: targets of several outputs (a
        list or dict), named inputs and sample weights keep their structure, which `to_numpy`
        cannot give back."""
        return _sliced(batch, 0, size)

    def with_inputs(self, batch: Any, inputs: np.ndarray) -> Any:
        _, y, w = unpack(batch)
        return (inputs, y) if w is None else (inputs, y, w)

    # -- model ---------------------------------------------------------------------------------

    def clone(self) -> KerasTrainable:
        """Model copied with `keras.models.clone_model` (or from its config), weights copied,
        a fresh optimizer of the same class and config with its variables copied."""
        model = self.model
        # The model is the user's own, in memory, not an untrusted file: Lambda layers may be
        # rebuilt from their Python functions.
        with _unsafe_deserialization():
            try:
                copy = keras.models.clone_model(model, clone_function=_clone_layer)
            except Exception:  # subclassed models without a functional graph
                copy = _from_own_config(model)
        if not copy.built:
            x, _, _ = unpack(self.batches("train", 1)[0]) if self.batches("train", 1) else (None,) * 3
            if x is None:
                raise ValueError("cannot build a copy of an unbuilt model without training data")
            copy(x[:1], training=False)
        shapes = [tuple(w.shape) for w in model.weights]
        if [tuple(w.shape) for w in copy.weights] != shapes:
            raise CloneRefused(
                f"{type(model).__name__}.from_config(get_config()) builds a model whose weights differ "
                f"from this one's ({len(copy.weights)} weights against {len(shapes)}, or other shapes): "
                "its get_config() does not return the arguments it was built with"
            )
        for mine, theirs in zip(copy.weights, model.weights):
            mine.assign(backend.own_copy(theirs.value))  # tensor to tensor: no numpy round trip
        _finalize_states(copy)
        optimizer = model.optimizer
        fresh = _fresh_optimizer(optimizer)
        copy.compile(optimizer=fresh, loss=model.loss, **backend.clone_compile_options(model))
        if optimizer.built:
            fresh.build(copy.trainable_variables)
            for mine, theirs in zip(fresh.variables, optimizer.variables):
                mine.assign(backend.own_copy(theirs.value))
        clone = KerasTrainable(copy, self.train_data, self.val_data, batch_size=self.batch_size)
        clone._paths = {id(mine): self._path(theirs) for mine, theirs in zip(copy.weights, model.weights)}
        return clone

    def forward(self, batch: Any) -> np.ndarray:
        x, _, _ = unpack(batch)
        with backend.no_grad():
            return np.array(backend.to_numpy(_first_output(self.model(x, training=False))))

    def loss(self, batch: Any) -> float:
        x, y, w = unpack(batch)
        with backend.no_grad():
            y_pred = self.model(x, training=False)
            _require_loss(self.model)
            value = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=w)
        return backend.scalar(value)

    def own_training_step(self) -> str | None:
        """`MyModel.train_step` where the model's class (or a base of it other than Keras' own)
        overrides `train_step`."""
        if _overridden_train_step(self.model) is None:
            return None
        defined_by = next((c for c in type(self.model).__mro__ if "train_step" in c.__dict__), type(self.model))
        return f"{defined_by.__name__}.train_step"

    def train_step(self, batch: Any) -> float:
        x, y, w = unpack(batch)
        with _packed_as_fit(self.model, w):
            logs = self.model.train_on_batch(x, y, sample_weight=w, return_dict=True)
        if "loss" not in logs:  # a train_step override may return other names
            return self.loss(batch)
        return float(logs["loss"])

    def batch_norm_layers(self) -> list[str]:
        # a BatchNormalization layer set trainable=False runs in inference mode (Keras 3)
        return [
            layer.path
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
        ]

    def refresh_batch_norm(self, batch: Any) -> bool:
        """Keras' BatchNormalization keeps 99% of its moving statistics per step (momentum
        0.99): after the 100 steps of a one-batch fit, 0.99^100 = 37% of them are still the
        initial (0, 1), so an inference-mode loss scores a network the fit never ran. One pass
        at momentum 0 sets them to the batch's own (the layers' momentum put back after)."""
        layers = [
            layer
            for layer in self.model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable and layer.momentum > 0
        ]
        if not layers:
            return False
        x, _, _ = unpack(batch)
        saved = [layer.momentum for layer in layers]
        try:
            for layer in layers:
                layer.momentum = 0.0
            with backend.no_grad():
                self.model(x, training=True)
        finally:
            for layer, momentum in zip(layers, saved):
                layer.momentum = momentum
        return True

    def layer_step(self, batch: Any) -> LayerObservation | None:
        """On the torch backend with eager steps (where the live callback records layers too);
        None elsewhere."""
        from mlcheck.integrations.keras.layers import recorded_layers  # it imports this module

        recorder = backend.layer_recorder(self.model, recorded_layers(self.model))
        if recorder is None:
            return None
        recorder.start()
        try:
            self.train_step(batch)
        except BaseException:
            recorder.abort()
            raise
        return recorder.finish(step=0)

    def gradients(self, batch: Any) -> dict[str, np.ndarray | None]:
        x, y, w = unpack(batch)
        _require_loss(self.model)
        _, grads = backend.gradients(self.model, _tensors(x), _tensors(y), w)
        return {
            self._path(v): None if g is None else np.array(backend.to_numpy(g))
            for v, g in zip(self.model.trainable_variables, grads)
        }

    def input_gradient(self, batch: Any, index: int) -> np.ndarray:
        """Of a weighted sum (weights 1..2 across the output units) of sample `index`'s
        outputs: the plain sum of a softmax output is constant, so its gradient is zero."""
        x, _, _ = unpack(batch)
        # a multi-output model: its first output
        return np.array(backend.to_numpy(backend.input_gradient(self.model, x, index, pick=_first_output)))

    def parameters(self) -> dict[str, np.ndarray]:
        return {self._path(v): np.array(backend.to_numpy(v.value)) for v in self.model.trainable_variables}

    def optimizer_parameters(self) -> set[str] | None:
        optimizer = self.model.optimizer
        if optimizer is None:
            return set()
        # A built Keras optimizer knows the variables it updates; an unbuilt one will be built
        # by fit() with every trainable variable of the model.
        variables = getattr(optimizer, "_trainable_variables", None) if optimizer.built else None
        if variables is None:
            variables = self.model.trainable_variables
        return {v.path for v in variables}

    def loss_config(self) -> LossConfig:
        config = loss_config(self.model)
        if _reduction(self.model) == "sum" or (not task_facts.is_known_loss(config.loss) and self._adds_up()):
            config = dataclasses.replace(config, summed_over=self._summed_over())
        own = _own_loss(self.model)
        if own is not None:
            config = dataclasses.replace(config, swapped_arguments=self._swapped_arguments(own))
        return config

    def _swapped_arguments(self, loss: Callable[[Any, Any], Any]) -> tuple[str, float, float] | None:
        """`LossConfig.swapped_arguments`: the user's loss called as Keras calls it,
        `loss(y_true, y_pred)`, on the first training batch (outputs of an inference pass), beside
        each built-in loss whose value changes with the order of its arguments, in both orders;
        the one it equals only swapped, sample by sample (or as a mean, for a loss that reduces
        the batch itself). Once, at train start: nothing at the steps."""
        found = self.batches("train", 1)
        if not found:
            return None
        x, y, _ = unpack(found[0])
        if y is None or isinstance(y, (list, tuple, dict)):
            return None  # several outputs or none: not judged
        with backend.no_grad():
            y_pred = self.model(x, training=False)
            if isinstance(y_pred, (list, tuple, dict)):
                return None
            y_true = keras.ops.convert_to_tensor(y, dtype=y_pred.dtype)
            if tuple(y_true.shape) != tuple(y_pred.shape):
                return None  # swapping needs two arrays of one shape (class indices cannot be swapped)
            try:
                own = np.asarray(backend.to_numpy(loss(y_true, y_pred)), dtype=np.float64)
            except Exception:  # a loss that raises on its own inputs: the fit will say so
                return None
            for name, builtin in _ORDERED_LOSSES:
                right = np.asarray(backend.to_numpy(builtin(y_true, y_pred)), dtype=np.float64)
                swapped = np.asarray(backend.to_numpy(builtin(y_pred, y_true)), dtype=np.float64)
                if own.size == 1:  # reduced by the user's own function: compared as means
                    right, swapped = right.mean(keepdims=True), swapped.mean(keepdims=True)
                if own.shape != swapped.shape or not np.all(np.isfinite(swapped)):
                    continue
                if _same(own, swapped) and not _same(own, right, _ORDER_MATTERS):
                    return name, float(own.mean()), float(right.mean())
        return None

    def _adds_up(self) -> bool:
        """Whether the loss of the first training batch is the sum of its two halves' losses, to
        float rounding (`ADDITIVE_TOLERANCE`): a loss of no known name (a custom function
        ending in `keras.ops.sum`) that adds its rows up where Keras' own losses average them.
        A mean gives half that sum; a batch statistic or a regularisation term, neither."""
        if self._additive is None:
            self._additive = False
            found = self.batches("train", 1)
            x, _, _ = unpack(found[0]) if found else (None,) * 3
            rows = _rows(x)
            if rows is not None and rows >= 2:
                half = rows // 2
                try:
                    whole, first, second = (
                        self.loss(_sliced(found[0], a, b)) for a, b in ((0, 2 * half), (0, half), (half, 2 * half))
                    )
                except Exception:  # a loss that cannot take part of a batch: unknown
                    logger.debug("mlcheck: the halves' losses could not be computed", exc_info=True)
                else:
                    self._additive = (
                        first > 0 and second > 0 and abs(whole - (first + second)) <= ADDITIVE_TOLERANCE * whole
                    )
        return self._additive

    def _summed_over(self) -> int | None:
        """The per-sample losses a `reduction="sum"` loss adds up on the first training batch:
        one per row, or per position of a sequence output (Keras losses reduce the last axis
        first); None where that is one, or the batch cannot be had."""
        if self._summed is None:
            found = self.batches("train", 1)
            shape = self.forward(found[0]).shape if found else ()
            count = math.prod(shape[:-1]) if len(shape) >= 2 else 1
            self._summed = (count if count > 1 else None,)
        return self._summed[0]

    def input_kind(self) -> str | None:
        """What the first layer does with the inputs (`first_layer_kind`)."""
        return first_layer_kind(self.model)

    def get_lr(self) -> float | None:
        return configured_lr(self.model.optimizer)

    def set_lr(self, lr: float) -> None:
        optimizer = self.model.optimizer
        if isinstance(getattr(optimizer, "_learning_rate", None), keras.Variable):
            optimizer.learning_rate = lr
        else:  # a schedule or callable: replace it with a constant rate (on a clone)
            optimizer._learning_rate = float(lr)

    def get_weight_decay(self) -> float | None:
        value = getattr(self.model.optimizer, "weight_decay", None)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def set_weight_decay(self, value: float) -> None:
        optimizer = self.model.optimizer
        if getattr(optimizer, "weight_decay", None) is not None:
            optimizer.weight_decay = value

    # -- random state --------------------------------------------------------------------------

    def rng_state(self, variables: bool = True) -> Any:
        """Python, numpy, the backend's global generator, Keras' global seed generator and the
        seed generators of the model's layers (dropout, noise); and the moving statistics of its
        BatchNormalization layers, which an inference call updates where the model hard-codes
        `training=True` (the checks' calls would otherwise change the user's run). Without
        `variables`, the last two are left to a caller that keeps every non-trainable variable
        of the model itself (`inference_mode_layers`): one copy of them, not two."""
        kept = [*_seed_variables(self.model), *_moving_statistics(self.model)] if variables else []
        return {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "backend": backend.rng_state(),
            "keras_global": _global_seed_generator_state(),
            "seeds": [(v, np.array(backend.to_numpy(v.value))) for v in kept],
        }

    def set_rng_state(self, state: Any) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        backend.set_rng_state(state["backend"])
        _set_global_seed_generator_state(state["keras_global"])
        for variable, value in state["seeds"]:
            variable.assign(value)


def _require_loss(model: Any) -> None:
    """Raises Keras' own "No loss to compute" error for a model compiled without a loss (and
    with no regularisation losses), as `compute_loss` does on torch and TensorFlow: on JAX it
    returns a constant 0 instead, which the train-start checks would train and judge as if it
    were the model's loss. A class's own `compute_loss` is left to compute what it computes."""
    if (
        backend.name() == "jax"
        and getattr(model, "_compile_loss", None) is None
        and type(model).compute_loss is keras.Model.compute_loss
        and not model.losses
    ):
        raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")


def _fresh_optimizer(optimizer: Any) -> Any:
    """A new optimizer of the same class and config, without its state. A learning-rate schedule
    (or callable) is handed over as the very object, not rebuilt from its config: a user's own
    schedule class is often unregistered (`from_config` cannot locate it) or has no `get_config`
    (Keras' base class raises), and a schedule is a function of the step that holds no state."""
    rate = getattr(optimizer, "_learning_rate", None)
    if rate is None or isinstance(rate, keras.Variable) or not callable(rate):
        return type(optimizer).from_config(optimizer.get_config())
    # get_config reads a plain rate for a moment (no tracking: object.__setattr__), so it serialises
    # no schedule; the very object is put back before anything else runs
    object.__setattr__(optimizer, "_learning_rate", 0.0)
    try:
        config = optimizer.get_config()
    finally:
        object.__setattr__(optimizer, "_learning_rate", rate)
    config["learning_rate"] = rate
    return type(optimizer).from_config(config)


def _from_own_config(model: Any) -> Any:
    """A subclassed model rebuilt from its config. Keras' default `get_config` records the
    constructor's arguments and adds its own base keys (`trainable`, `dtype`), which
    `from_config` passes back to the constructor: an `__init__` without `**kwargs` (common in
    hand-written subclasses) refuses them. Then it is called with the keys its signature takes."""
    import inspect

    try:
        config = model.get_config()
    except Exception as exc:  # a constructor argument Keras cannot serialise
        raise CloneRefused(f"{type(model).__name__}.get_config() raised {type(exc).__name__}: {exc}") from exc
    try:
        return type(model).from_config(config)
    except TypeError as exc:
        params = inspect.signature(type(model).__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            try:
                return type(model)(**{k: v for k, v in config.items() if k in params and k != "self"})
            except Exception:  # reported as the refusal below
                pass
        raise CloneRefused(f"{type(model).__name__}.from_config(get_config()) raised TypeError: {exc}") from exc


def _finalize_states(model: Any) -> None:
    """Layers that keep constants derived from their state variables (an adapted
    `Normalization`'s mean and variance, set by `finalize_state()` after `adapt()` or loading)
    rebuild them from the variables just copied, as Keras does after loading weights. On torch
    those constants share the variables' storage; on JAX and TensorFlow they stayed those of the
    fresh layer (mean 0, variance 1), so a copy saw raw inputs and could not fit a batch."""
    layers = model._flatten_layers(include_self=False) if hasattr(model, "_flatten_layers") else model.layers
    for layer in layers:
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            try:
                finalize()
            except Exception:  # a layer's own bookkeeping: the copy is still usable without it
                pass


def _clone_layer(layer: Any) -> Any:
    """A fresh layer of the same config; a Lambda keeps its own Python function (rebuilding it
    from the config loses the function's globals)."""
    if isinstance(layer, keras.layers.Lambda):
        return keras.layers.Lambda(
            layer.function,
            output_shape=getattr(layer, "_output_shape", None),
            mask=getattr(layer, "mask", None),
            arguments=getattr(layer, "arguments", None),
            name=layer.name,
        )
    return layer.__class__.from_config(layer.get_config())


def _unsafe_deserialization() -> Any:
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # a Keras without it: its default applies
        import contextlib

        return contextlib.nullcontext()
    return SafeModeScope(False)


def _seed_variables(model: Any) -> Sequence[Any]:
    """The state variables of the model's SeedGenerators: in `model.variables` (all state,
    seeds included) but not in `model.weights`."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed_generator" in v.path]


def _moving_statistics(model: Any) -> Sequence[Any]:
    """The non-trainable variables of the model's BatchNormalization layers (moving mean and
    variance): small, and the only weights a forward pass itself updates in Keras' own layers."""
    return [
        v
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
        for v in layer.non_trainable_variables
    ]


def _global_seed_generator_state() -> tuple[Any, Any]:
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR

    generator = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    if generator is None:
        return None, None
    return generator, np.array(backend.to_numpy(generator.state.value))


def _set_global_seed_generator_state(saved: tuple[Any, Any]) -> None:
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR

    generator, value = saved
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, generator)
    if generator is not None:
        generator.state.assign(value)


def batches_of(data: Any, batch_size: int, n: int) -> list[Any]:
    """Public alias of the batching rule, used by the callback for data passed to it."""
    return _batches_from(data, batch_size, n)
