"""Per-layer checks: which layer broke, since when, and what to change in it.

Each check reads the per-layer statistics of sampled steps (`Signal.LAYER_STATS`, built by a
layer recorder such as `mlcheck.integrations.torch_layers.LayerRecorder`) and raises one finding
per layer, keyed by the layer's module path. A symptom must hold on `patience` consecutive
sampled steps (TheDeepChecker: every 10 steps, patience 5), so one odd batch never fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.class_prior import SOFT_FLOOR_VALUES
from mlcheck.checks.curve import median, noise, sig
from mlcheck.checks.optimization import training_blew_up
from mlcheck.checks.preflight.harness import kept_random_state, small_batch
from mlcheck.findings import Finding, Severity, format_number
from mlcheck.layers import LayerObservation, LayerStats, NonfiniteOrigin
from mlcheck.task import BINARY_LOSSES, SQUARED_LOSSES

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.run import BatchObservation, RunState

#: Consecutive sampled steps a symptom must hold (TheDeepChecker's patience).
PATIENCE = 5
#: Kinds whose gradients are sparse by design (only the looked-up rows get one), so their
#: gradient size says nothing about vanishing.
SPARSE_GRADIENT_KINDS = frozenset({"Embedding", "EmbeddingBag"})
#: A gradient above this share of the weight norm moves float32 weights at any usual learning
#: rate: a layer that has one and stays put is not in the optimizer (a far smaller gradient
#: rounds away, which is vanishing-gradient's business).
MOVING_GRADIENT = 1e-4
#: Frozen layers after trainable ones are a mistake only while they hold less than this share of
#: the parameters: adapter fine-tuning (LoRA) freezes nearly all of them on purpose.
MAX_FROZEN_SHARE = 0.5
#: ... unless the frozen layer's weights are still a fresh uniform draw (`LayerStats.init_distance`
#: below this): never trained, so not pre-trained either. 1.63 is the Kolmogorov distribution's
#: 1% point; fresh torch-default and glorot_uniform layers measured 0.5-1.0, the same 64x64
#: layers after one epoch of Adam at 1e-3 on digits 14-16 (of SGD at 0.01: 5-8).
UNTRAINED_DISTANCE = 1.63
#: `frozen-parameters`' key (and streak name) for BatchNorm layers in inference mode while the
#: model trains, with running statistics never updated (`LayerStats.running_stats_at_init`).
BATCH_NORM_EVAL = "batchnorm-eval"
#: (how the mode was set, how to undo it) in `batchnorm-eval`'s finding: Keras' layer class is
#: `BatchNormalization`, torch's `BatchNorm1d`/`2d`/`3d` and `SyncBatchNorm`
_BATCH_NORM_KERAS = (
    "Keras: trainable=False on the layer or a model holding it, or called with training=False",
    "Let the BatchNormalization layers train: drop trainable=False on them (or on the model that holds them) "
    "and training=False in the call",
)
_BATCH_NORM_TORCH = (
    ".eval() on them",
    "Remove the .eval() on the BatchNorm layers (Lightning's model.train() before each epoch does not undo a hook "
    "that runs after it, such as on_train_epoch_start)",
)
#: A layer with this share of its units dead is all but gone: a WARNING even while the loss
#: falls (the planted -10 bias: 100%; AUTOTRAINER's dying ReLU: >= 70% zero gradients).
EXTREME_DEAD = 0.9
#: The training loss fell by this share of its initial level: the network learns around its
#: dead units, which is then worth a look (INFO), not a mistake. A dead layer that stops the
#: learning leaves the loss near its start (the planted dead layer: at ln 10); the standard MNIST
#: CNN (Adam 1e-3) with 53-58% of its 64 hidden units dead fell from 2.3 to under 0.6 by then.
LEARNED_FALL = 0.25
#: Training-loss values whose median is a level (the initial one, the recent one).
LEVEL_POINTS = 10
#: `DeadUnits.on_layers`' loss levels before they are read (None is a levels reading: no levels)
_UNREAD = object()
#: Kinds users freeze on purpose inside a trained model (frozen normalisation statistics).
NORMALISATION_KINDS = ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "RMSNorm", "LocalResponseNorm")


def _by_gradient(layers: LayerObservation) -> tuple[list[LayerStats], LayerStats | None]:
    """The trainable weighted layers with a gradient, in forward order, and the reference: the
    last of them that ran in the forward pass (the output layer)."""
    weighted = [s for s in layers.weighted() if s.trainable and s.grad_rms is not None]
    weighted = [s for s in weighted if s.kind not in SPARSE_GRADIENT_KINDS]
    ran = [s for s in weighted if s.order >= 0]
    reference = ran[-1] if ran else None
    if reference is None or not reference.grad_rms or reference.grad_rms != reference.grad_rms:
        return weighted, None  # no usable gradient at the output layer (NaN: another check's business)
    return weighted, reference


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else format_number(value)


class LayerCheck(Check):
    """Shared machinery: per-layer streaks of a symptom over consecutive sampled steps."""

    family: ClassVar[str] = "layers"
    consumes = frozenset({Signal.LAYER_STATS})

    def __init__(self, patience: int = PATIENCE) -> None:
        self.patience = patience
        super().__init__()

    def reset(self) -> None:
        self._since: dict[str, int] = {}  # layer path -> first sampled step of its streak
        self._count: dict[str, int] = {}  # layer path -> length of its streak
        self._fired: list[str] = []

    def streak(self, path: str, held: bool, step: int) -> int:
        """Updates `path`'s streak with this step; returns its length (0 when broken)."""
        if not held:
            self._since.pop(path, None)
            self._count.pop(path, None)
            return 0
        self._since.setdefault(path, step)
        self._count[path] = self._count.get(path, 0) + 1
        return self._count[path]

    def due(self, path: str, length: int) -> bool:
        """True once per layer, when its streak reaches `patience`."""
        if length < self.patience or path in self._fired:
            return False
        self._fired.append(path)
        return True


@register
class VanishingGradient(LayerCheck):
    """Gradients vanish before they reach the first layers: those layers stop learning.

    What it does:
        On each sampled step, compares the root mean square of every weighted layer's gradient
        with that of the last weighted layer of the forward pass. A layer whose gradient is
        below `ratio` of the last layer's and below `floor` in absolute size (AUTOTRAINER:
        |g_first| / |g_last| < 1e-3 and |g_first| < 1e-4) on `patience` consecutive sampled
        steps has a vanished gradient. One finding names the layers it covers, from the input
        side. Embedding tables are skipped (their gradients are sparse by design). A converged
        run, whose gradients are small everywhere, keeps its ratios and stays silent.

    Why it matters:
        Layers whose gradient is a thousandth of the output layer's barely move: the network
        trains as if it were only its last layers deep, and more epochs will not change that.

    How to fix:
        Change the activation of the affected layers (sigmoid/tanh squash gradients by 4x or
        more per layer; use ReLU/GELU), use He or Xavier initialisation instead of a small
        constant scale, add normalisation (BatchNorm/LayerNorm) or residual connections.

    Example:
        layers = []
        for _ in range(10):
            linear = nn.Linear(64, 64)
            nn.init.normal_(linear.weight, std=0.01)
            layers += [linear, nn.Sigmoid()]
        model = nn.Sequential(*layers, nn.Linear(64, 10))

    Use instead:
        layers = []
        for _ in range(10):
            layers += [nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU()]  # default (Kaiming) init
        model = nn.Sequential(*layers, nn.Linear(64, 10))

    Args:
        ratio: gradient RMS relative to the last layer's below which a layer's gradient has
            vanished. Default 1e-3 (AUTOTRAINER).
        floor: and the absolute RMS below which. Default 1e-4 (AUTOTRAINER).
        patience: consecutive sampled steps. Default 5 (TheDeepChecker).
    """

    id = "vanishing-gradient"
    severity = Severity.WARNING
    #: BatchNorm over 2 samples outputs +-1 whatever its input's scale and shift: the layers
    #: before it get almost no gradient
    explained_by = frozenset({"batch-dependence:batchnorm-small-batch"})
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def __init__(self, ratio: float = 1e-3, floor: float = 1e-4, patience: int = PATIENCE) -> None:
        self.ratio = ratio
        self.floor = floor
        super().__init__(patience)

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        weighted, last = _by_gradient(layers)
        if last is None or len(weighted) < 2:
            return []  # nothing to compare with
        reference = last.grad_rms
        vanished = []
        for s in weighted:
            rms = s.grad_rms
            # an exactly zero gradient is a blocked path (dead or saturated units), not a vanished one
            held = s is not last and rms is not None and 0 < rms < self.floor and rms < self.ratio * reference
            if self.streak(s.path, held, layers.step) >= self.patience:
                vanished.append(s)
        # once per run: the layers it covers shift from step to step, the cause does not
        if not vanished or self._fired or not self.due(vanished[0].path, self.patience):
            return []
        first, deepest = vanished[0], vanished[-1]
        span = first.path if first is deepest else f"{first.path} to {deepest.path}"
        rms = first.grad_rms or 0.0
        return [
            self.finding(
                f"Gradients vanish in {len(vanished)} layer(s), {span}: layer {first.name} gets a gradient "
                f"RMS of {_fmt(rms)}, {_fmt(rms / reference)} of the last layer {last.path}'s, on every "
                f"sampled step since step {self._since[first.path]}.",
                evidence={
                    "layer": first.path,
                    "layers_vanished": len(vanished),
                    "deepest_vanished_layer": deepest.path,
                    "grad_rms": rms,
                    "reference_layer": last.path,
                    "reference_grad_rms": reference,
                    "ratio": rms / reference,
                    "since_step": self._since[first.path],
                },
                hint=(
                    f"Change the activation of the layers up to {deepest.path} (sigmoid/tanh to ReLU/GELU), "
                    "use He/Xavier initialisation, add BatchNorm/LayerNorm or residual connections."
                ),
                step=layers.step,
                epoch=layers.epoch,
                key=first.path,
            )
        ]


@register
class ExplodingGradient(LayerCheck):
    """Gradients grow as they flow back: the first layers get far larger gradients than the last.

    What it does:
        On each sampled step, looks at every weighted layer's gradient: more than `ratio` times
        the output layer's gradient RMS (AUTOTRAINER: 70), or a gradient norm more than
        `max_grad_to_weight` times the layer's own weight norm (healthy runs of the test suite
        stay below 1.3, so a step at any usual learning rate rewrites such a layer). On
        `patience` consecutive sampled steps, the layer's gradient explodes; one finding names
        the layer nearest the input.

    Why it matters:
        Each update then overshoots in the first layers: the loss spikes or turns NaN, and a
        learning rate small enough for them is too small for the rest of the network.

    How to fix:
        Use an initialisation scaled to the layer width (He/Xavier; a standard deviation of 1
        multiplies activations by sqrt(width) per layer), add normalisation (BatchNorm /
        LayerNorm), clip gradients (`gradient_clip_val=1.0` in Lightning,
        `torch.nn.utils.clip_grad_norm_`), or lower the learning rate.

    Example:
        layers = []
        for _ in range(6):
            linear = nn.Linear(64, 64)
            nn.init.normal_(linear.weight, std=1.0)
            layers += [linear, nn.ReLU()]
        model = nn.Sequential(*layers, nn.Linear(64, 10))

    Use instead:
        layers = []
        for _ in range(6):
            linear = nn.Linear(64, 64)
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            layers += [linear, nn.BatchNorm1d(64), nn.ReLU()]
        model = nn.Sequential(*layers, nn.Linear(64, 10))

    Args:
        ratio: gradient RMS relative to the output layer's above which a layer's gradient
            explodes. Default 70 (AUTOTRAINER).
        max_grad_to_weight: or its gradient norm over its weight norm above which. Default 10.
            For a loss summed over a batch's rows (`RunInfo.loss_summed_over`), the gradient
            norm per row: summing hands back that many times the mean's gradient by design.
            For a squared regression loss (MSE) above 1, per unit of its root mean square
            error (`_residual_scale`): its gradients carry the targets' units.
        patience: consecutive sampled steps. Default 5 (TheDeepChecker).
    """

    id = "exploding-gradient"
    severity = Severity.WARNING
    #: root causes that, found first, explain it: a loss over regression targets or inputs far
    #: from unit scale (house prices in dollars under MSE) hands back gradients of that scale
    explained_by = frozenset({"nonfinite-input", "unnormalized-input"})
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def __init__(self, ratio: float = 70.0, max_grad_to_weight: float = 10.0, patience: int = PATIENCE) -> None:
        self.ratio = ratio
        self.max_grad_to_weight = max_grad_to_weight
        super().__init__(patience)

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        weighted, last = _by_gradient(layers)
        if last is None:
            return []
        reference = last.grad_rms
        # a loss summed over a batch's rows hands back that many times the mean's gradient, by
        # design (its rate is chosen for it: Adam does not see the scale): judged per row
        rows = run.info.loss_summed_over or 1
        # a squared loss hands back its residual, in the targets' units: judged per unit of it
        rows *= _residual_scale(run)
        exploded = []
        for s in weighted:
            rms, norm, weights = s.grad_rms or 0.0, (s.grad_norm or 0.0) / rows, s.weight_norm
            held = rms > self.ratio * reference or bool(weights and norm > self.max_grad_to_weight * weights)
            if self.streak(s.path, held, layers.step) >= self.patience:
                exploded.append(s)
        if not exploded or self._fired or not self.due(exploded[0].path, self.patience):
            return []
        first = exploded[0]
        rms = first.grad_rms or 0.0
        to_weights = (first.grad_norm or 0.0) / rows / (first.weight_norm or 1.0)
        # name the rule(s) that held: against itself, the output layer's RMS says nothing
        rules = []
        if first.path != last.path and rms > self.ratio * reference:
            rules.append(f"a gradient RMS of {_fmt(rms)}, {_fmt(rms / reference)}x the output layer {last.path}'s")
        if to_weights > self.max_grad_to_weight:
            summed = run.info.loss_summed_over or 1
            per_row = f" (per row of a loss summed over {summed})" if summed > 1 else ""
            if rows > summed:
                per_row += f" (per unit of the loss's root mean square error, {_fmt(rows / summed)})"
            rules.append(f"a gradient norm{per_row} {_fmt(to_weights)}x its weight norm")
        evidence_text = " and ".join(rules) or f"a gradient RMS of {_fmt(rms)}"
        return [
            self.finding(
                f"Gradients explode in {len(exploded)} layer(s) from {first.name}: it gets {evidence_text}, on "
                f"every sampled step since step {self._since[first.path]}.",
                evidence={
                    "layer": first.path,
                    "layers_exploding": len(exploded),
                    "grad_rms": rms,
                    "grad_norm": first.grad_norm,
                    "weight_norm": first.weight_norm,
                    "reference_layer": last.path,
                    "reference_grad_rms": reference,
                    # two ratios, each named for what it divides (the message's "Nx the output
                    # layer's" and "Nx its weight norm"); one key "ratio" held the first while the
                    # message could name the second
                    "grad_rms_to_reference": rms / reference,
                    **({"grad_norm_to_weight_norm": to_weights} if first.weight_norm else {}),
                    "activation_abs_max": first.abs_max,
                    "since_step": self._since[first.path],
                },
                hint=(
                    f"Initialise {first.path} and the layers after it for their width (He/Xavier), add "
                    "BatchNorm/LayerNorm, clip gradients (gradient_clip_val=1.0) or lower the learning rate."
                ),
                step=layers.step,
                epoch=layers.epoch,
                key=first.path,
            )
        ]


@register
class DeadUnits(LayerCheck):
    """Most units of a ReLU layer never activate: they pass no signal and get no gradient.

    What it does:
        For each ReLU-like activation module, counts the units (features, or channels of a
        convolution) that are positive on fewer than 1% of a sampled batch's values (SageMaker
        DeadRelu). It fires when more than `max_dead` of the layer's units are dead on
        `patience` consecutive sampled steps, naming the activation and the weighted layer
        that feeds it. It is a WARNING when the dead units hurt: the training loss has not
        fallen by a quarter of its initial level (median of the first and of the latest 10
        steps, beyond their noise; on soft targets of a binary cross-entropy, a quarter of the
        room above their entropy, the loss's floor: a ReLU autoencoder on pixels falls from
        0.69 to 0.62 above a floor of 0.60), or `extreme_dead` of the layer's units are dead. A run that
        still learns around them gets an INFO: many dead units are common in trained ReLU
        layers (Adam's first steps at the default 1e-3 silence about half of a wide fan-in
        layer's units in a standard MNIST CNN that reaches 90% accuracy); it becomes a WARNING
        if the share later holds at `extreme_dead` or more for `patience` sampled steps.
        A trainable layer (Linear, convolution) whose output units were copies of each other
        when training started (every row of its weight equal, within 1e-6 of its largest value:
        a constant initialisation) and still are after the first training epoch moved them is a
        WARNING (key `symmetric`; `RunInfo.symmetric_units`, read by the Lightning and Keras
        callbacks at the start and at the first epoch's end; a Keras kernel's units are its
        columns): units that start equal get equal gradients, so
        all but one of them are spare for good (NeuraLint's "constant initialisation" rule,
        confirmed on the run). A zero-initialised output layer, whose rows its targets pull
        apart at the first step, is not it.

    Why it matters:
        A dead ReLU outputs zero for every input, so its gradient is zero too and it never
        recovers: the layer's capacity is gone, often after one too-large step or from a bias
        initialised far negative. While the loss keeps falling, the live units carry the task
        and the cost is spare width.

    How to fix:
        Look at the bias and initialisation of the layer that feeds it (a large negative bias
        kills every unit), lower the learning rate, add normalisation before the activation, or
        change the activation to LeakyReLU/GELU, which keep a gradient below zero.

    Example:
        hidden = nn.Linear(64, 128)
        nn.init.constant_(hidden.bias, -10.0)
        model = nn.Sequential(hidden, nn.ReLU(), nn.Linear(128, 10))

    Use instead:
        hidden = nn.Linear(64, 128)  # default initialisation: bias near zero
        model = nn.Sequential(hidden, nn.ReLU(), nn.Linear(128, 10))

    Args:
        max_dead: share of a layer's units that may be dead. Default 0.5 (SageMaker: > 50% of
            the layer; TheDeepChecker: > 50% of the neurons).
        extreme_dead: share of dead units that is a WARNING even while the run learns. Default
            0.9 (AUTOTRAINER's dying ReLU is >= 70% zero gradients; a planted -10 bias kills 100%).
        patience: consecutive sampled steps. Default 5 (TheDeepChecker).
    """

    id = "dead-units"
    severity = Severity.WARNING
    #: the sampled batches only for the soft targets' entropy (`_soft_floor`)
    consumes = frozenset({Signal.LAYER_STATS, Signal.SAMPLED_BATCHES})
    judges_batches = False
    #: BatchNorm's batch statistics at a tiny batch throw the units' inputs around (`net.3` of a
    #: digits MLP with BatchNorm1d at batch 2: half its units dead by epoch 3); a loss summed over
    #: the batch makes each step batch-size times larger (a digits MLP under SGD 0.05 and a summed
    #: custom loss: every unit of the first layer dead by step 25, 18.5% updates)
    explained_by = frozenset({"batch-dependence:batchnorm-small-batch", "loss-at-init:summed"})
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def __init__(self, max_dead: float = 0.5, extreme_dead: float = EXTREME_DEAD, patience: int = PATIENCE) -> None:
        self.max_dead = max_dead
        self.extreme_dead = extreme_dead
        super().__init__(patience)

    def reset(self) -> None:
        super().reset()
        self._alive: dict[str, int] = {}  # layer path -> last sampled step its units were alive
        self._told: dict[str, str] = {}  # layer path -> severity of the finding raised for it
        self._extreme: dict[str, int] = {}  # layer path -> sampled steps in a row with `extreme_dead` dead
        self._initial_loss: float | None = None  # median of the first training losses
        self._symmetric_told = False
        # a binary cross-entropy's training targets, first values: (sum of their entropies, values)
        self._target_entropy = (0.0, 0)

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        """Gathers the soft targets' entropy, the floor a binary cross-entropy falls to
        (`FirstPassLabels.soft_floor`): the same probe `loss-plateau` reads, computed once."""
        if batch.split == "train" and run.info.loss in BINARY_LOSSES and self._target_entropy[1] < SOFT_FLOOR_VALUES:
            got = batch.target_entropy(run.info.target_is_input is True)
            if got is not None:
                self._target_entropy = (self._target_entropy[0] + got[0], self._target_entropy[1] + got[1])
        return ()

    def _soft_floor(self, run: RunState) -> float | None:
        """The training targets' mean binary entropy (None: hard labels, unknown, or a loss
        summed over the batch, whose level is not a mean)."""
        rows = run.info.loss_summed_over
        total, n = self._target_entropy
        return total / n if n and total > 0 and not (rows is not None and rows > 1) else None

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return self._symmetric(run)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return self._symmetric(run)

    def _symmetric(self, run: RunState) -> list[Finding]:
        """Once: layers whose units are copies of each other (`RunInfo.symmetric_units`)."""
        layers = run.info.symmetric_units
        if self._symmetric_told or not layers:
            return []
        self._symmetric_told = True
        named = ", ".join(f"'{path}' ({units} units)" for path, units in layers[:3])
        more = f" and {len(layers) - 3} more" if len(layers) > 3 else ""
        return [
            self.finding(
                f"Every unit of {named}{more} is a copy of the others: their weights were equal when training "
                "started and, after an epoch of training moved them, still are, so each such layer computes one "
                "unit however wide it is (the symmetry that random initialisation breaks was never broken).",
                evidence={"layers": [path for path, _ in layers], "units": [units for _, units in layers]},
                hint="Do not initialise a weight to one constant (nn.init.constant_, ones_, Keras' Constant or "
                "Ones): units that start equal get equal gradients and stay equal. Keep the framework's default "
                "random initialisation, or nn.init.kaiming_uniform_/xavier_uniform_ (a zero-initialised output "
                "layer is fine: its targets pull its rows apart).",
                step=run.step,
                epoch=run.epoch,
                severity=Severity.WARNING,
                key="symmetric",
            )
        ]

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        if self._initial_loss is None:
            self._initial_loss = _initial_loss(run)
        out = []
        levels: Any = _UNREAD  # the run's loss levels, the same for every layer: read once, when needed
        for s in layers:
            if s.dead_units is None or s.nonfinite:
                continue  # NaN outputs are nonfinite-origin's business
            dead = s.dead_units > self.max_dead
            if not dead:
                self._alive[s.path] = layers.step
            length = self.streak(s.path, dead, layers.step)
            # an extreme share must hold for `patience` sampled steps too: one odd batch never warns
            extreme = self._extreme.get(s.path, 0) + 1 if s.dead_units >= self.extreme_dead else 0
            self._extreme[s.path] = extreme
            told = self._told.get(s.path)
            if length < self.patience or told == Severity.WARNING.value:
                continue
            if levels is _UNREAD:
                levels = self._levels(run)
            learned = levels is not None and levels[2] and extreme < self.patience
            severity = Severity.INFO if learned else Severity.WARNING
            if told is None or severity > Severity(told):  # an INFO becomes a WARNING once
                self._told[s.path] = severity.value
                out.append(self._finding(s, layers, run, levels, severity))
        return out

    def _levels(self, run: RunState) -> tuple[float, float, bool] | None:
        """(initial, recent training-loss level, whether it fell by `LEARNED_FALL` of the initial
        level and beyond its noise: the network learns around its dead units); None without
        levels to judge by (or with a loss that can go negative)."""
        initial = self._initial_loss
        y = _recent_losses(run)
        if initial is None or initial <= 0 or len(y) < LEVEL_POINTS:
            return None
        recent = median(y)
        fall = initial - recent
        # on soft targets (a BCE on pixels, soft labels) the loss falls to their entropy, not 0:
        # the fall is measured within the room above it (dead27: a digits ReLU autoencoder falls
        # 0.69 -> 0.62 above a floor of 0.60, 80% of its room but 10% of its initial level)
        floor = self._soft_floor(run)
        room = initial - floor if floor is not None and floor < initial else initial
        return sig(initial), sig(recent), bool(fall >= LEARNED_FALL * room and fall > 3 * noise(y))

    def _finding(
        self,
        s: LayerStats,
        layers: LayerObservation,
        run: RunState,
        levels: tuple[float, float, bool] | None,
        severity: Severity,
    ) -> Finding:
        since, alive = self._since[s.path], self._alive.get(s.path)
        evidence = {
            "layer": s.path,
            "fed_by": s.source,
            "dead_unit_fraction": s.dead_units,  # a share of the units, not a count
            "zero_fraction": s.zero_fraction,
            "output_mean": s.mean,
            "since_step": since,
            "alive_at_step": alive,
        }
        message = (
            f"Layer {s.name}: {s.dead_units:.0%} of its units were active on fewer than 1% of the batch on every "
            f"sampled step since step {since}; they pass no signal and get no gradient."
        )
        if levels is not None:
            evidence |= {"train_loss_initial": levels[0], "train_loss_recent": levels[1]}
        if severity is Severity.INFO and levels is not None:  # the run learns around them: no mistake to fix
            initial, recent, _ = levels
            return self.finding(
                f"{message[:-1]}, but the training loss still fell from {format_number(initial)} to "
                f"{format_number(recent)}: the live units carry the task.",
                evidence=evidence,
                hint=(
                    "Nothing to fix while the run learns: many dead units are common in trained ReLU layers. If "
                    f"the model underfits, widen {_feeder(s)}, add normalisation before {s.path} or change the "
                    "activation to LeakyReLU/GELU, which keeps a gradient below zero."
                ),
                severity=Severity.INFO,
                step=layers.step,
                epoch=layers.epoch,
                key=s.path,
            )
        if levels is not None and not levels[2]:
            initial, recent, _ = levels
            message = (
                f"{message[:-1]}, and the training loss is at {format_number(recent)} (from "
                f"{format_number(initial)} at the start)."
            )
        if alive is None:  # dead from the first look: the layer started that way
            hint = (
                f"Check the bias and initialisation of {_feeder(s)} (a large negative bias kills ReLUs), "
                "lower the learning rate, or change the activation to LeakyReLU/GELU."
            )
        else:  # alive, then dead: an update pushed their inputs below zero for every sample
            largest = _largest_update(run, since)
            evidence["largest_update_ratio"] = largest
            seen = (
                f" (updates of up to {largest:.1%} of the weights in one step; about 0.1% is usual)"
                if largest is not None and largest >= 0.01
                else ""
            )
            hint = (
                f"The units were alive at step {alive} and dead from step {since}: a large update pushed their "
                f"inputs below zero for every sample, the usual sign of a learning rate too high{seen}. Lower "
                "the learning rate (10x), add warmup or gradient clipping, or change the activation to "
                "LeakyReLU/GELU, which keeps a gradient below zero."
                if seen
                else f"The units were alive at step {alive} and dead from step {since}: an update pushed their "
                f"inputs below zero for every sample. Add normalisation before {s.path}, change the activation to "
                "LeakyReLU/GELU (which keeps a gradient below zero), or lower the learning rate or add warmup."
            )
        return self.finding(
            message,
            evidence=evidence,
            hint=hint,
            step=layers.step,
            epoch=layers.epoch,
            key=s.path,
        )


@register
class SaturatedActivations(LayerCheck):
    """Most units of a tanh or sigmoid layer are pinned at their limits, where the slope is ~0.

    What it does:
        For each saturating activation module (tanh, sigmoid, hardtanh, softsign), counts the
        units saturated (slope below 1% of its maximum: |tanh| > 0.995, sigmoid outside
        [0.0025, 0.9975]) on more than 99% of a sampled batch's values (SageMaker
        SaturatedActivation). It fires when more than `max_saturated` of the layer's units are
        saturated on `patience` consecutive sampled steps. The model's final activation is
        skipped: a confident output layer is saturated by design.

    Why it matters:
        A saturated unit passes almost no gradient: the layers before it stop learning, and
        its output carries one bit instead of a value.

    How to fix:
        Normalise the layer's input (scale the data to unit range, add BatchNorm/LayerNorm
        before the activation), initialise the weights that feed it smaller (Xavier), or
        change the activation to ReLU/GELU.

    Example:
        x = torch.tensor(raw_pixels, dtype=torch.float32)  # 0..255
        model = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))

    Use instead:
        x = torch.tensor(raw_pixels / 255.0, dtype=torch.float32)
        model = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))

    Args:
        max_saturated: share of a layer's units that may be saturated. Default 0.5 (SageMaker:
            > 50% of the layer).
        patience: consecutive sampled steps. Default 5 (TheDeepChecker).
    """

    id = "saturated-activations"
    severity = Severity.WARNING
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def __init__(self, max_saturated: float = 0.5, patience: int = PATIENCE) -> None:
        self.max_saturated = max_saturated
        super().__init__(patience)

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        ran = [s for s in layers if s.order >= 0]
        final = max(ran, key=lambda s: s.order).path if ran else None
        out = []
        for s in layers:
            if s.saturated_units is None or s.path == final or s.nonfinite:
                continue
            length = self.streak(s.path, s.saturated_units > self.max_saturated, layers.step)
            if self.due(s.path, length):
                feeder = _feeder(s)
                out.append(
                    self.finding(
                        f"Layer {s.name}: {s.saturated_units:.0%} of its units are saturated (slope below 1% "
                        f"of its maximum on over 99% of the batch) on every sampled step since step "
                        f"{self._since[s.path]} ({s.saturated_fraction or 0.0:.0%} of all its values saturated).",
                        evidence={
                            "layer": s.path,
                            "fed_by": s.source,
                            "saturated_unit_fraction": s.saturated_units,  # a share of the units, not a count
                            "saturated_fraction": s.saturated_fraction,
                            "since_step": self._since[s.path],
                        },
                        hint=(
                            f"Normalise the input of {feeder} (scale the data, add BatchNorm/LayerNorm before "
                            f"{s.path}), initialise it smaller (Xavier), or change the activation to ReLU/GELU."
                        ),
                        step=layers.step,
                        epoch=layers.epoch,
                        key=s.path,
                    )
                )
        return out


@register
class FrozenParameters(LayerCheck):
    """A layer that should learn never moves: frozen by mistake, or held by the optimizer at rest.

    What it does:
        During training, fires for a weighted layer on `patience` consecutive sampled steps when
        either (a) its parameters have `requires_grad=False` (Keras: `trainable=False`) and its
        weights never change, while its input carries a gradient (a trainable layer runs before
        it, so the model trains around it) and the frozen layers after trainable ones hold under
        `max_frozen_share` of the model's parameters; or (b) its parameters are trainable but
        the optimizer step leaves them exactly where they were while other layers move (a
        learning rate of 0 for its group, parameters left out of the optimizer, a gradient that
        is always exactly zero). A group that a scheduler holds at 0 for now, having been built
        with a rate above 0 (`RunInfo.rate_held_at_zero`: a backbone paused while a new head
        warms up, by a LambdaLR's factor of 0), is a pause on purpose and is not named.
        Before training (`mlcheck sanity`), records one training step on a copy of the model
        and names the layers that rule (a) finds (the same function, `frozen_in_gradient_path`),
        so the pre-flight and the live check agree; (b) is `unused-parameters`' business there.
        It needs layers it can hook: torch and Lightning modules, Keras on the torch backend.
        An intentionally frozen pre-trained backbone stays silent: it runs before every trainable
        layer, so its input carries no gradient. So do adapters such as LoRA (most parameters
        frozen on purpose) and frozen normalisation layers. Past `max_frozen_share`, a frozen
        layer is still named when its weights are a fresh uniform initialiser's draw (torch's
        default, Keras' glorot_uniform; `LayerStats.init_distance` under 1.63): never trained,
        it cannot be the pre-trained part of a fine-tuning, a frozen GAN discriminator or a
        perceptual-loss network, whose trained weights are far from that draw.
        Also (key `batchnorm-eval`): BatchNorm layers that run in inference mode during
        `patience` consecutive sampled training steps while their running statistics are still
        exactly their initial mean 0 and variance 1 (never updated), and that either have
        trainable parameters or run after trainable layers (the gradient flows through them):
        a "freeze BatchNorm" step meant for fine-tuning (torch `.eval()`, Keras
        `trainable=False` or `training=False`), applied to a model trained from scratch, so the
        layers normalise nothing. Fine-tuning with frozen BatchNorm loads trained running
        statistics first (not exactly 0 and 1) and stays silent, as does a frozen network fed
        the inputs (a random target, a frozen teacher). Read on sampled steps only: torch reads
        a BatchNorm in inference mode; Keras reads each BatchNormalization's moving statistics
        after the step until they have moved (a training-mode pass moves them at once).

    Why it matters:
        The layer keeps its initial (often random) weights for the whole run: the model is
        weaker than the one you designed and nothing in the loss curve says why.

    How to fix:
        Unfreeze the named layer: `model.get_submodule(PATH).requires_grad_(True)` in torch,
        `layer.trainable = True` in Keras (look for a `requires_grad_(False)`, `trainable=False`
        or `torch.no_grad()` meant for another module), make sure its parameters are in the
        optimizer (`model.parameters()`, not a list built before the layer was added), and give
        its parameter group a learning rate above 0. If it is frozen on purpose, suppress
        `frozen-parameters` (`--suppress frozen-parameters`, `suppress=["frozen-parameters"]`).

    Example:
        model = nn.Sequential(
            nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
        )
        model[2].requires_grad_(False)  # meant model[0]: freeze the input projection

    Use instead:
        model[0].requires_grad_(False)

    Args:
        max_frozen_share: frozen layers that run after trainable ones are a mistake only while
            they hold less than this share of all the parameters. Default 0.5: adapter
            fine-tuning freezes nearly all of them on purpose. A wider frozen layer in a small
            model (one 128x128 layer of a 64-128-128-10 MLP: 63%) is therefore not named.
        patience: consecutive sampled steps. Default 5 (TheDeepChecker).
    """

    id = "frozen-parameters"
    severity = Severity.WARNING
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def __init__(self, max_frozen_share: float = MAX_FROZEN_SHARE, patience: int = PATIENCE) -> None:
        self.max_frozen_share = max_frozen_share
        super().__init__(patience)

    def reset(self) -> None:
        super().reset()
        self._weights: dict[str, float] = {}  # first weight norm seen of each frozen layer

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        weighted = layers.weighted()
        suspects = {s.path for s in frozen_in_gradient_path(layers, self.max_frozen_share)}
        moved = any(s.update_ratio for s in weighted if s.trainable)
        out = []
        paused = set(run.info.rate_held_at_zero or ())  # a scheduler holds their group's rate at 0 on purpose
        for s in weighted:
            reason = None if s.path in paused else self._reason(s, s.path in suspects, moved)
            length = self.streak(s.path, reason is not None, layers.step)
            if reason is not None and self.due(s.path, length):
                out.append(self._finding(s, reason, layers, self._since[s.path]))
        out.extend(self._batch_norm_eval(weighted, layers))
        return out

    def _batch_norm_eval(self, weighted: list[LayerStats], layers: LayerObservation) -> list[Finding]:
        """BatchNorm layers in inference mode (`.eval()`) during training steps whose running
        statistics are still their initial (0, 1): a "freeze BatchNorm" step of a fine-tuning
        recipe applied to a model trained from scratch. They normalise with mean 0 and variance
        1, which is no normalisation at all, in training and in validation. A fine-tuning that
        freezes BatchNorm on purpose loads trained running statistics first (never exactly 0
        and 1), and a frozen BatchNorm of a fixed network (a random target, a frozen teacher)
        is fed the inputs, with no trainable layer before it: neither is named. A BatchNorm with
        no trainable parameter of its own after trainable layers (Keras' `trainable=False`
        freezes the scale and offset too) is named: it sits inside the network that learns."""
        stale = [
            s for s in weighted if s.running_stats_at_init and (s.trainable or s.input_requires_grad) and s.order >= 0
        ]
        length = self.streak(BATCH_NORM_EVAL, bool(stale), layers.step)
        if not stale or not self.due(BATCH_NORM_EVAL, length):
            return []
        since = self._since[BATCH_NORM_EVAL]
        paths = [s.path for s in stale]
        mode, undo = _BATCH_NORM_KERAS if all(s.kind == "BatchNormalization" for s in stale) else _BATCH_NORM_TORCH
        return [
            self.finding(
                f"{len(paths)} BatchNorm layer(s) ({_listed(paths)}) run in inference mode while the model trains "
                f"({mode}), and their running statistics are still their initial values (mean 0, variance 1; since "
                f"step {since}): they normalise nothing, in training or in validation.",
                evidence={"layers": paths, "reason": "batchnorm-eval", "since_step": since},
                hint=f"{undo} (a 'freeze BatchNorm' step is for fine-tuning a network whose trained weights were "
                "loaded first), or load the pretrained weights before freezing them; if it is on purpose, suppress "
                "'frozen-parameters'.",
                step=layers.step,
                epoch=layers.epoch,
                key=BATCH_NORM_EVAL,
            )
        ]

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        """Before training (`mlcheck sanity`): one recorded training step on a clone, judged by
        the same rule as the live check (`frozen_in_gradient_path`). Only the frozen layer can
        be named before training: an optimizer that leaves trainable weights in place is the
        business of `unused-parameters` there."""
        t = ctx.trainable
        with kept_random_state(t):
            batch = small_batch(t)
            if batch is None:
                return []  # no data: the probe and `unused-parameters` already say so
            layers = t.clone().layer_step(batch)
        if layers is None:
            return []  # the framework cannot record layers (Keras on JAX or TensorFlow): nothing to judge
        return [
            self._finding(s, "requires_grad", layers) for s in frozen_in_gradient_path(layers, self.max_frozen_share)
        ]

    def _reason(self, s: LayerStats, suspect: bool, moved: bool) -> str | None:
        if not s.trainable:
            first = self._weights.setdefault(s.path, s.weight_norm or 0.0)
            return "requires_grad" if suspect and s.weight_norm == first else None
        gradient = s.grad_norm is not None and bool(s.weight_norm) and s.grad_norm > MOVING_GRADIENT * s.weight_norm
        if moved and s.update_ratio == 0.0 and gradient:
            return "no_update"
        return None

    def _finding(self, s: LayerStats, reason: str, layers: LayerObservation, since: int | None = None) -> Finding:
        before = [o.path for o in layers.weighted() if o.trainable and 0 <= o.order < s.order]
        if reason == "requires_grad":
            when = "" if since is None else f" (since step {since})"
            fresh = (
                " Its weights are still their initialiser's random draw, so it was never trained either."
                if untrained(s)
                else ""
            )
            message = (
                f"Layer {s.name} never learns: its {s.params} parameters are frozen (requires_grad=False), yet "
                f"trainable layers run before it ({_listed(before)}) and the gradient flows through it{when}.{fresh}"
            )
            hint = (
                f"Unfreeze '{s.path}' and keep it in the optimizer: torch "
                f"model.get_submodule('{s.path}').requires_grad_(True), Keras layer.trainable = True (look "
                "for a requires_grad_(False) or trainable=False meant for another layer); if it is frozen on "
                "purpose, suppress 'frozen-parameters'."
            )
        else:
            message = (
                f"Layer {s.name} never moves: its parameters are trainable but the optimizer step leaves "
                f"them unchanged while other layers move (since step {since})."
            )
            hint = (
                f"Put {s.path}'s parameters in the optimizer (build it from model.parameters() after the "
                "model is complete) and give their group a learning rate above 0."
            )
        evidence = {"layer": s.path, "reason": reason, "params": s.params, "trainable_before": before}
        if s.init_distance is not None:
            evidence["init_distance"] = s.init_distance
        if since is not None:  # live: what the sampled steps measured
            evidence |= {
                "weight_norm": s.weight_norm,
                "grad_norm": s.grad_norm,
                "update_ratio": s.update_ratio,
                "since_step": since,
            }
        return self.finding(
            message,
            evidence=evidence,
            hint=hint,
            step=layers.step if since is not None else None,
            epoch=layers.epoch if since is not None else None,
            key=s.path,
        )


def frozen_in_gradient_path(layers: LayerObservation, max_frozen_share: float = MAX_FROZEN_SHARE) -> list[LayerStats]:
    """The weighted layers that look frozen by mistake, in forward order: the rule of
    `frozen-parameters`, live and before training alike.

    A layer is a suspect when its parameters have requires_grad=False, it is not a
    normalisation layer (frozen statistics are common on purpose), and its forward input
    carries a gradient: a trainable layer runs before it, so the model trains around it. An
    intentionally frozen pre-trained backbone runs before every trainable layer, so its input
    carries none and it is never a suspect. The suspects together must hold under
    `max_frozen_share` of the model's parameters: adapter fine-tuning (LoRA) freezes nearly all
    of them, after trainable ones, on purpose; past that share, only suspects whose weights are
    still their initialiser's uniform draw (`untrained`) are named: pre-trained weights are not.
    """
    weighted = layers.weighted()
    total = sum(s.params for s in weighted) or 1
    inside = [s for s in weighted if not s.trainable and s.input_requires_grad and not _is_norm(s)]
    if sum(s.params for s in inside) / total >= max_frozen_share:
        # most weights frozen on purpose (adapters, a frozen trained discriminator or perceptual
        # net): only a layer still holding its initialiser's draw was frozen by mistake
        return [s for s in inside if untrained(s)]
    return inside


def untrained(s: LayerStats) -> bool:
    """True when the layer's weights are still a fresh uniform initialiser's draw."""
    return s.init_distance is not None and s.init_distance < UNTRAINED_DISTANCE


def _listed(paths: list[str], show: int = 3) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:show])
    return shown + (f" and {len(paths) - show} more" if len(paths) > show else "")


def _is_norm(s: LayerStats) -> bool:
    return any(kind in s.kind for kind in NORMALISATION_KINDS)


@register
class NonfiniteOriginCheck(Check):
    """Names the layer that produced the first NaN or Inf, from finite inputs.

    What it does:
        When the loss turns non-finite, the recorder re-runs the offending batch on a copy of
        the model with hooks on every module and names the first module that produced a NaN
        or Inf from finite inputs: in the forward pass, else in the backward pass (its
        gradient). It reports the ranges of that module's inputs, outputs and weights at that
        step. An infinity a module's input already held may pass through, and so may one that
        the block around the module consumed (a -inf attention mask whose block returns finite
        values); more modules can be allowed by path or class name. It says why where it can:
        a module (a softmax, or the attention block around it) that turns rows that are -inf
        in every position into NaN (and no other row) is named for a fully masked attention
        row, with the module that made the -inf (a mask's -inf is intended; the row masked
        everywhere is the fault);
        a weighted layer whose finite inputs and weights are too large for the float type
        (their bound |x| * |w| * number of weights passes its largest value), or whose weights
        already hold NaN/Inf, is named for weights that grew until they overflowed. Where the
        batch itself held NaN or +Inf (a -inf alone may be a mask), the finding says the data
        carried the value in (`nonfinite-input`) instead of blaming the module where it met
        the model; a NaN in the model's own input names no module at all.

    Why it matters:
        Once a NaN appears it spreads to every later layer and, after one optimizer step, to
        every weight: the parameters holding NaN afterwards say nothing about where it began.

    How to fix:
        Guard the operation in the named module: clamp before `log`/`sqrt`
        (`torch.log(x.clamp_min(1e-8))`), add an epsilon to divisions and norms, use stable
        ops (`log_softmax`, `logsumexp`, `BCEWithLogitsLoss`); for a backward origin, avoid
        `sqrt`/`pow` at 0 (add an epsilon inside). For a fully masked row, leave at least one
        key unmasked in every row (let padding attend to itself) or mask with a large finite
        negative (`torch.finfo(dtype).min`) instead of -inf. For weights that overflowed,
        lower the learning rate or clip gradients (`gradient_clip_val=1.0`, Keras
        `clipnorm=1.0`): the layer's operation is not at fault.

    Example:
        class Scores(nn.Module):
            def forward(self, x):
                return torch.log(torch.relu(x))  # log(0) = -inf for every inactive unit

    Use instead:
        class Scores(nn.Module):
            def forward(self, x):
                return torch.log(torch.relu(x).clamp_min(1e-6))
    """

    id = "nonfinite-origin"
    family = "layers"
    severity = Severity.ERROR
    consumes = frozenset({Signal.LAYER_STATS})
    #: a dropout after the softmax output: the NaN comes from the loss's log(0) or 0/0 after it
    explained_by = frozenset({"nonfinite-input", "output-loss-mismatch:output-dropout"})
    #: on, although the recorder misses its cost target (docs/layers.md): nothing else names the layer
    default = True

    def on_layers(self, layers: LayerObservation, run: RunState) -> Iterable[Finding]:
        origin = layers.origin
        if origin is None:
            return []
        if not origin.path:
            where = f"by code outside any module (after {origin.previous or 'the input'})"
            key = f"outside:{origin.previous}"
        else:
            where = f"by {origin.name} in the {origin.phase} pass"
            key = origin.path
        inputs = "gradient at its output" if origin.phase == "backward" else "inputs"
        weights = f", weights {_range(origin.weight_range)}" if origin.weight_range else ""
        outputs = "gradient at its input" if origin.phase == "backward" else "output"
        message = (
            f"The first {origin.value} at step {layers.step} was produced {where}, from finite {inputs} "
            f"(range {_range(origin.input_range)}; its {outputs} holds {origin.value}, its finite values "
            f"{_range(origin.output_range, 'none')}{weights})."
        )
        if not origin.path and origin.input_range is None and origin.output_range is None:
            # code outside modules has no ranges of its own: "(range none finite; ... its finite values
            # none)" read as if its inputs were not finite either
            message = (
                f"The first {origin.value} at step {layers.step} was produced {where}, from "
                f"{f'the finite output of {origin.previous}' if origin.previous else 'finite inputs'}."
            )
        if origin.cause == "masked-row":  # the -inf row is the cause; its finite values come after
            message = (
                f"The first nan at step {layers.step} was produced {where}, from a row that was -inf in every "
                f"position ({_masked_by(origin)}): a fully masked attention row, whose softmax is 0/0 (finite "
                f"values of its inputs {_range(origin.input_range)}, of its output {_range(origin.output_range)})."
            )
        elif origin.cause == "batch":  # the data's NaN/Inf, not one the model made: "from finite inputs" is untrue
            message = (
                f"The first {origin.value} at step {layers.step} was seen {where}, but the batch of step "
                f"{layers.step} already held NaN/Inf in its inputs or targets (`nonfinite-input`): the data "
                "carried it in; no module's operation made it."
            )
        elif origin.cause in _CAUSES:
            message = message[:-1] + "; " + _CAUSES[origin.cause] + "."
        # an Inf the loss made from finite but huge outputs (a squared error of 1e20 is past
        # float32's 3.4e38) after the training loss rose `BLOWN_UP_FACTOR` x: an overflow of values
        # that grew, whose fix is the step size; guarding the loss's operation would hide it
        grown = training_blew_up(run) if not origin.path and origin.cause is None and origin.value == "inf" else None
        if grown is not None:
            message = (
                f"{message[:-1]}, after the training loss had grown from {grown[0]:.4g} to {grown[1]:.4g}: the "
                "values reaching the loss had grown past the float range."
            )
        evidence = {
            "layer": origin.path or None,
            "kind": origin.kind or None,
            "phase": origin.phase,
            "value": origin.value,
            "input_range": list(origin.input_range) if origin.input_range else None,
            "output_range": list(origin.output_range) if origin.output_range else None,
            "weight_range": list(origin.weight_range) if origin.weight_range else None,
            "previous_layer": origin.previous,
            "cause": "overflow" if grown is not None else origin.cause,
            "masked_by": origin.masked_by,
            **({"first_train_loss": grown[0], "peak_train_loss": grown[1]} if grown is not None else {}),
        }
        return [
            self.finding(
                message,
                # what is known only: the text summary printed "layer=None, kind=None, ..., cause=None"
                evidence={k: v for k, v in evidence.items() if v is not None},
                hint=_grown_hint(origin) if grown is not None else _origin_hint(origin),
                step=layers.step,
                epoch=layers.epoch,
                key=key,
            )
        ]


#: what a `NonfiniteOrigin.cause` adds to the finding's sentence
_CAUSES = {
    "weights": "its own weights already held NaN/Inf: an earlier update broke them",
    "overflow": "its inputs and weights had grown too large for the float type, so their products overflowed",
}


def _masked_by(origin: NonfiniteOrigin) -> str:
    return f"made by layer {origin.masked_by}" if origin.masked_by else "a mask given from outside any module"


def _grown_hint(origin: NonfiniteOrigin) -> str:
    """The fix for an Inf made outside any module after the training loss blew up: the step size
    first (the hint for the loss's own operation named it last, after clamps and epsilons)."""
    after = f" after layer {origin.previous}" if origin.previous else ""
    return (
        "Lower the learning rate or clip gradients (gradient_clip_val=1.0 in Lightning, clipnorm=1.0 in Keras): "
        f"the values reaching the loss{after} grew until it overflowed; standardise regression targets far from "
        "unit scale. Clamping or an epsilon in the loss would hide the growth, not stop it."
    )


def _origin_hint(origin: NonfiniteOrigin) -> str:
    """The fix for where the first NaN/Inf was born, by its cause: a masked row, weights that
    grew past the float range (the optimizer's step size, not the module's operation), or the
    module's operation (guard it)."""
    where = origin.name or (
        f"the code after layer {origin.previous}" if origin.previous else "the loss (code outside any module)"
    )
    if origin.cause == "masked-row":
        mask = f"; if the -inf of layer {origin.masked_by} is no mask, guard its operation" if origin.masked_by else ""
        return (
            f"Leave at least one key unmasked in every row of the mask {origin.name} receives (let padding "
            "positions attend to themselves, drop empty sequences), or mask with a large finite negative "
            f"(torch.finfo(dtype).min) instead of -inf, so a fully masked row gives uniform weights, not NaN{mask}."
        )
    if origin.cause == "batch":
        return (
            "Find where NaN/Inf enter the data and clean or drop those samples (torch.nan_to_num, or a filter "
            f"in the Dataset or input pipeline); {where} is not at fault."
        )
    if origin.cause in ("weights", "overflow"):
        return (
            f"Weights grew until they overflowed (at {where}): lower the learning rate or clip gradients "
            "(gradient_clip_val=1.0 in Lightning, clipnorm=1.0 in Keras), and put a normalisation layer before "
            "it if activations grow from layer to layer; the layer's own operation is not at fault."
        )
    return (
        f"Guard the operation in {where}: clamp before log/sqrt (x.clamp_min(1e-8)), add an epsilon to divisions, "
        "use log_softmax/logsumexp; lower the learning rate if its inputs had grown huge."
    )


def _range(value: tuple[float, float] | None, empty: str = "none finite") -> str:
    return empty if value is None else f"[{_fmt(value[0])}, {_fmt(value[1])}]"


def _largest_update(run: RunState, until: int) -> float | None:
    """The largest update/weight ratio measured up to step `until` (None: none measured).
    About 1e-3 is the usual size (Karpathy, "CS231n: Neural Networks Part 3", "ratio of the
    update magnitudes to the value magnitudes"); 1e-2 and up moves weights fast enough to kill
    ReLUs in one step."""
    x, log_ratio = run.update_ratio.values()
    kept = log_ratio[(x <= until) & np.isfinite(log_ratio)]
    return sig(10 ** float(kept.max())) if len(kept) else None


def _residual_scale(run: RunState) -> float:
    """The root mean square error a squared regression loss's gradients carry (sqrt of the
    median of its last `LEVEL_POINTS` training losses), where it is above 1; else 1.

    MSE's gradient at the output is 2 (prediction - target): on targets in the hundreds
    (`load_diabetes`, 25-346) every layer's gradient is ~50x what the same network gets on
    standardised targets, while the optimizer's rate is chosen for that scale (Adam does not see
    it). A loss with no name counts as squared on a declared regression: MSE is the default of
    regression losses; an absolute or Huber loss only judged more leniently."""
    info = run.info
    if not (info.loss in SQUARED_LOSSES or (info.loss is None and info.task == "regression")):
        return 1.0
    y = _recent_losses(run)
    if not len(y):
        return 1.0
    return max(1.0, float(np.sqrt(max(median(y), 0.0))))


def _initial_loss(run: RunState) -> float | None:
    """The median of the first `LEVEL_POINTS` training losses, once that many are logged one a
    bucket (None before: the first sampled steps come before the series merges buckets)."""
    if run.train_loss.width != 1:
        return 0.0  # merged already (a check added late): no initial level, so it warns as before
    y = _finite_losses(run)
    return median(y[:LEVEL_POINTS]) if len(y) >= LEVEL_POINTS else None


def _finite_losses(run: RunState) -> np.ndarray:
    """The run's finite training losses, in order (a NaN or Inf step says nothing of a level)."""
    _, y = run.train_loss.values()
    return y[np.isfinite(y)]


def _recent_losses(run: RunState) -> np.ndarray:
    """The last `LEVEL_POINTS` finite training losses: the run's recent level."""
    return _finite_losses(run)[-LEVEL_POINTS:]


def _feeder(s: LayerStats) -> str:
    """The layer whose weights feed an activation's output: the one before it (`source`), or
    the layer itself when it applies its own activation (Keras `Dense(..., activation="relu")`)."""
    if s.source:
        return s.source
    return f"{s.path} itself" if s.params else "the layer before it"
