"""`Trainable`: what pre-flight checks need from a model, whatever its framework.

Pre-flight checks (`mlcheck sanity`, and the callbacks' overfit-a-batch) are written once,
against this interface. Implementations live in `mlcheck.integrations` (torch modules,
Lightning modules, Keras models). Batches are opaque framework objects; checks move between
them and numpy with `to_numpy` / `from_numpy`.

The contract that keeps users safe: nothing a check does through a Trainable may change the
user's model, optimizer or random state. Checks train only on `clone()`s, and the runner
restores the random state (`rng_state` / `set_rng_state`) afterwards.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlcheck.layers import LayerObservation


@dataclass(frozen=True)
class LossConfig:
    """How outputs meet the loss, as far as the adapter can tell (None = unknown).

    Attributes:
        loss: a short name of the loss: "cross_entropy", "nll", "bce", "bce_with_logits",
            "mse", "mae", "huber", "sparse_categorical_crossentropy", ... or the class name.
        from_logits: True when the loss applies softmax/sigmoid itself (torch CrossEntropyLoss,
            BCEWithLogitsLoss, Keras from_logits=True), False when it expects probabilities.
        output_activation: the last operation on the outputs: "softmax", "log_softmax",
            "sigmoid", "linear" (none), or None when unknown.
        output_units: width of the model's output (last dimension).
        task: "classification", "regression" or None.
        output_dropout: the rate of a dropout layer that is the model's last layer (after
            `output_activation`), None without one.
        output_normalisation: (layer, activation) where the model's last layer (past trailing
            dropout) is a normalisation layer (BatchNorm, LayerNorm, GroupNorm, ...) placed right
            after a softmax or sigmoid: `layer` its class name, `activation` the one it follows.
            None without one.
        summed_over: the rows (or elements) of the first batch when the loss on it is that many
            times the mean of `loss` (`reduction="sum"`), or, for a loss of no known name, when
            the batch's loss is the sum of its halves' losses (`ADDITIVE_TOLERANCE`): a summed
            loss, whose value is that many times a per-sample one. None when it is a mean or
            unknown.
        label_smoothing: the loss's `label_smoothing` where it is above 0 (Keras'
            categorical and binary cross-entropies, torch's `nn.CrossEntropyLoss` module), else
            None: the targets it trains towards are mixed with the uniform distribution, so its
            loss cannot reach 0.
        class_weights: the weight of each class label (0..C-1) of a class-weighted
            cross-entropy the adapter found by its value, where the weights are not in a loss
            object it can read (torch: a module buffer passed as `F.cross_entropy(...,
            weight=self.class_w)` inside the training step); None otherwise.
        broadcast_warning: the framework's own warning that the loss broadcast outputs and
            targets of different shapes (torch's "Using a target size ... different to the input
            size"), where computing the first batch's loss raised one; else None. An (N, 1)
            output against (N,) targets under an absolute error scores the same paired and
            broadcast while the untrained outputs sit below every target: the warning tells them
            apart.
        unmatched: True when the adapter measured the loss on the first batch and its value
            is none of the common losses of the outputs and the batch's targets (nor a constant
            multiple, a sum over the rows or a class-weighted cross-entropy): the training step
            computes another objective (a cross-entropy on a teacher's softened outputs, a
            penalty added to the loss, a focal or contrastive loss). False when named or not
            measured.
        class_axis_misread: (the last layer's class name, its features) where the model's outputs
            are 3-D, (batch, positions, features) straight from a last `Linear`-like layer whose
            features lie on the last axis, and the loss measured on the first batch is the
            cross-entropy (or NLL) that reads dim 1 as the class axis (`F.cross_entropy(logits,
            y)` on a tagger's (batch, time, classes) logits): the positions are read as the
            classes. Only where the cross-entropy over the last axis is not also the measured
            loss. None otherwise.
        target_is_input: True when the batch holds no targets apart from the inputs (`x` alone,
            `(x,)`) and the loss measured on the first batch is a common loss of the outputs
            against the inputs themselves (`loss` names it): an autoencoder's reconstruction
            loss. Its floor is then the inputs' own (their binary entropy for a binary
            cross-entropy, 0 for an error), and zeroed inputs zero its targets too. False
            otherwise.
        swapped_arguments: (the built-in loss, its value, its value in the right order) where a
            loss of the user's own equals, sample by sample on the first training batch, that
            built-in loss with its two arguments swapped (Keras' `categorical_crossentropy(y_pred,
            y_true)`: the outputs read as the labels, the labels as the prediction), and not the
            built-in in the right order: a custom loss written `def loss(y_pred, y_true)`. The
            values are the batch's means. None otherwise (Keras only: torch's inline losses are
            not called by the adapter).
    """

    loss: str | None = None
    from_logits: bool | None = None
    output_activation: str | None = None
    output_units: int | None = None
    task: str | None = None
    output_dropout: float | None = None
    output_normalisation: tuple[str, str] | None = None
    summed_over: int | None = None
    label_smoothing: float | None = None
    class_weights: tuple[float, ...] | None = None
    broadcast_warning: str | None = None
    unmatched: bool = False
    target_is_input: bool = False
    class_axis_misread: tuple[str, int] | None = None
    swapped_arguments: tuple[str, float, float] | None = None


#: How near a batch's loss must come to the sum of its two halves' losses, relative to it, to be
#: read as a sum over the rows: a float32 sum of a few hundred terms rounds to ~1e-6 of it, a
#: mean is half the sum (off by 50%).
ADDITIVE_TOLERANCE = 1e-3


class CloneRefused(Exception):
    """`Trainable.clone` cannot copy this model (a subclassed Keras model that its config does not
    rebuild), or a copy cannot train on the side (a Lightning `training_step` that reads the
    Trainer the model is attached to). The message says why; `hint`, when given, how to let the
    checks run (else the Keras advice on copyable models). The checks that train a copy then do
    not run, and one INFO finding says so (no internal-error warning)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class BatchUnsplit(TypeError):
    """The adapter cannot tell a batch's inputs from its targets (a dict batch with none of the
    input keys it knows: `{"num": ..., "other": ..., "target": ...}`). A LightningModule's own
    `training_step` takes such a batch as it comes, so the run is fine; only the checks that call
    the model on the inputs alone cannot run, and one INFO finding says so (no internal-error
    warning). The message names the keys; `reason` says it in the words of that finding, `hint`
    how to let the checks run."""

    def __init__(self, message: str, *, reason: str, hint: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.hint = hint


class Trainable(abc.ABC):
    """A model with its loss, optimizer and data, as pre-flight checks see it."""

    #: "torch", "lightning" or "keras".
    framework: str = ""

    # -- data ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def batches(self, split: str = "train", n: int = 1) -> list[Any]:
        """Up to `n` batches from the start of the training ("train") or validation ("val")
        data, in the framework's own form. Empty when there is no such data."""

    def no_batches_reason(self, split: str = "train") -> str | None:
        """Why `batches(split)` came back empty when the data is not (its batches all held 0
        samples, say), in words for the user; None when the data yields no batch at all."""
        return None

    @abc.abstractmethod
    def to_numpy(self, batch: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(inputs, targets) of a batch as numpy arrays (None where not an array)."""

    @abc.abstractmethod
    def from_numpy(self, inputs: np.ndarray, targets: np.ndarray | None) -> Any:
        """A batch in the framework's form built from numpy arrays (same dtypes as the data)."""

    def head(self, batch: Any, size: int) -> Any:
        """The batch's first `size` samples in the framework's form. Through `to_numpy` /
        `from_numpy` here; an adapter whose batches hold targets that are not one array
        (several outputs' targets, a dict) overrides it to keep them."""
        x, y = self.to_numpy(batch)
        if x is None or len(x) <= size:
            return batch
        return self.from_numpy(x[:size], None if y is None else y[:size])

    def with_inputs(self, batch: Any, inputs: np.ndarray) -> Any:
        """`batch` with its inputs replaced by `inputs` (same shape), its targets kept; see `head`."""
        return self.from_numpy(inputs, self.to_numpy(batch)[1])

    # -- model ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def clone(self) -> Trainable:
        """An independent copy of model and optimizer (state included). Training it never
        touches the original. Raises `CloneRefused` when the model cannot be copied."""

    @abc.abstractmethod
    def forward(self, batch: Any) -> np.ndarray:
        """Model outputs for a batch, in inference mode (dropout off, BatchNorm using running
        statistics), without gradients."""

    @abc.abstractmethod
    def loss(self, batch: Any) -> float:
        """The training loss of a batch in inference mode, without an optimizer step."""

    @abc.abstractmethod
    def train_step(self, batch: Any) -> float:
        """One optimizer step on this instance (call it on a clone); returns the loss before
        the step."""

    @abc.abstractmethod
    def gradients(self, batch: Any) -> dict[str, np.ndarray | None]:
        """Gradient of the loss for every trainable parameter by name; None for a parameter that
        gets no gradient. Does not step the optimizer."""

    @abc.abstractmethod
    def input_gradient(self, batch: Any, index: int) -> np.ndarray:
        """d(sum of outputs of sample `index`)/d(inputs), in inference mode: an array shaped
        like the batch's inputs. Rows other than `index` are non-zero only when samples mix."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """Trainable parameters by name, as numpy copies."""

    def frozen_parameters(self) -> dict[str, tuple[int, ...]] | None:
        """Parameters the model holds that are frozen (torch `requires_grad=False`), by name, with
        their shapes; None when unknown."""
        return None

    def optimizer_parameters(self) -> set[str] | None:
        """Names of the trainable parameters the optimizer updates; None when unknown."""
        return None

    def unregistered_parameters(self, batch: Any) -> dict[str, int] | None:
        """Trainable parameters the loss reaches that the model does not register, by the
        attribute that holds their layers (torch: layers kept in a plain Python list, tuple or
        dict instead of `nn.ModuleList` / `nn.ModuleDict`): {attribute path: parameter tensors
        that get a gradient}. They are in no `model.parameters()`, so no optimizer built from it
        updates them. None where the framework registers every layer it is given (Keras)."""
        return None

    def loss_config(self) -> LossConfig:
        return LossConfig()

    def call_convention(self, stage: str, batch: Any) -> str | None:
        """How this adapter calls the user's code at `stage` ("forward" or "loss") where that
        is not the batch as it comes (a dict batch's inputs alone, the first tensor of a tuple
        the model returned): said beside an error in that call, so that a model written for
        the whole batch, or a loss for every output, is told why. None: nothing to say."""
        return None

    def batch_keys(self, batch: Any) -> str | None:
        """Where a dict batch's inputs and targets were read from, in words for a finding's
        evidence (`"inputs batch['image'], targets batch['label']"`); None for any other batch."""
        return None

    def own_training_step(self) -> str | None:
        """The name of a training step of the model's own that replaces the framework's (a Keras
        `train_step` override: "MyModel.train_step"); None where the model trains the framework's
        way. `loss` and `gradients` compute the loss the framework would (Keras: the compiled
        one), which such a step need not use: when that loss fails, the run itself may not."""
        return None

    def batch_norm_layers(self) -> list[str]:
        """Paths of the layers that normalise over the batch while training (BatchNorm in
        training mode: each sample's output then depends on the statistics of its batch-mates),
        as the model is now. Empty when there are none or the framework cannot tell."""
        return []

    def refresh_batch_norm(self, batch: Any) -> bool:
        """Sets the moving statistics of the model's training-mode BatchNorm layers to `batch`'s
        own (one forward pass in training mode, no gradient, the layers' momentum put back), as
        PreciseBN recomputes them (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm"): call
        it on a clone only. True where it changed any layer; False where there is none or the
        framework does not do it (the default)."""
        return False

    def layer_step(self, batch: Any) -> LayerObservation | None:
        """One training step on this instance (call it on a clone), recorded layer by layer as
        the live layer recorder records a sampled step (`mlcheck.layers`); None when the
        framework cannot record layers."""
        return None

    @abc.abstractmethod
    def get_lr(self) -> float | None:
        """The configured learning rate (first parameter group), None when unknown."""

    @abc.abstractmethod
    def set_lr(self, lr: float) -> None:
        """Sets the learning rate of every parameter group (call it on a clone)."""

    def get_weight_decay(self) -> float | None:
        """The optimizer's weight decay (first parameter group), None when unknown or none."""
        return None

    def set_weight_decay(self, value: float) -> None:
        """Sets the optimizer's weight decay (call it on a clone); where `get_weight_decay` is
        None, nothing to set."""
        del value  # no weight decay known here: nothing to set

    # -- random state --------------------------------------------------------------------------

    def rng_state(self) -> Any:
        """Everything random the checks may consume (framework, numpy, Python)."""
        import random

        return (random.getstate(), np.random.get_state())

    def set_rng_state(self, state: Any) -> None:
        import random

        random.setstate(state[0])
        np.random.set_state(state[1])
