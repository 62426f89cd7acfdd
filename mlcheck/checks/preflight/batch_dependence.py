"""`batch-dependence`: does one sample's output depend on other samples' inputs?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.preflight.harness import (
    SMALL_BATCH,
    inputs_unfit,
    kept_random_state,
    skipped,
    small_batch,
)
from mlcheck.findings import Finding, Severity

if TYPE_CHECKING:
    from mlcheck.preflight_context import PreflightContext
    from mlcheck.trainable import Trainable

#: BatchNorm's batch statistics are too noisy below this many samples per batch: Wu & He 2018,
#: "Group Normalization" (Fig. 1; ResNet-50 on ImageNet): BN's error grows sharply as the batch
#: falls below 8-16, and at 2 it is 10.6 points above GroupNorm's (Ioffe & Szegedy 2015 assume
#: the batch statistics estimate the data's).
BATCHNORM_MIN_BATCH = 8


@register
class BatchDependence(Check):
    """One sample's output depends on other samples' inputs.

    What it does:
        In inference mode (so BatchNorm uses its running statistics and is not flagged), takes
        the gradient of sample i's outputs with respect to the whole batch of inputs, for the
        first and the last sample of a small batch. Every row but i's must be exactly zero; it
        fires when another row's gradient exceeds `tol` times sample i's own. Where the mixing
        runs one way (the first sample reads no other, the last every sample before it), a
        recurrence runs along the batch axis, and the finding names torch's RNNs fed
        (batch, time, features) without `batch_first=True` (evidence `direction`).

        BatchNorm layers in training mode mix samples by design; they are judged apart: an
        INFO (key `batchnorm-small-batch`) where the training batches hold fewer than
        `batchnorm_min_batch` samples. This part also runs at the callbacks' train start, on
        the live batch size (the mixing test is pre-flight only); `loss-plateau`,
        `lr-too-low` and `train-val-gap` then name it as the likely cause of theirs.

    Why it matters:
        Samples must not mix. A `view`/`reshape` that swaps the batch and feature axes (e.g.
        `x.view(features, batch).t()`), a softmax or normalisation over `dim=0`, or a mean over
        the batch inside forward make each prediction depend on whichever samples share its
        batch: the model trains on garbage and predicts differently at other batch sizes
        (Karpathy's backprop-to-the-input test; TheDeepChecker). The training loss then
        usually sits at chance, with nothing else to say why: the callbacks run this check at
        train start too, on the first batch (two input gradients of 16 samples).

    How to fix:
        Use `permute`/`transpose` rather than `view` to reorder axes, keep the batch axis
        first, and check the `dim=` of softmax, normalisation and reductions. BatchNorm at
        a tiny batch: make the batch 16 or more, or use GroupNorm / LayerNorm, or freeze the
        BatchNorm layers (`.eval()`) when fine-tuning. Each sample is normalised by the mean
        and variance of a handful of samples: training is noisy (a stalled loss that looks
        like a low learning rate), and the running statistics evaluation uses differ from
        the batch statistics training used (validation loss above training loss from the
        first epoch, which looks like overfitting).

    Args:
        batch_size: samples in the batch. Default 16.
        tol: relative size of another sample's gradient that counts as mixing. Default 1e-6:
            exact zeros are expected, float32 rounding stays far below this.
        batchnorm_min_batch: the INFO on BatchNorm layers in training mode where the first
            training batch holds fewer samples than this. Default 8: below 8-16 samples BN's
            error grows sharply (Wu & He 2018, "Group Normalization", Fig. 1).

    Example:
        # (batch, time, features) -> (time, batch, features) for nn.LSTM
        x = x.view(x.shape[1], x.shape[0], x.shape[2])  # reshapes: samples get mixed
        out, _ = self.lstm(x)

    Use instead:
        x = x.permute(1, 0, 2)  # or x.transpose(0, 1): moves axes, keeps samples apart
        out, _ = self.lstm(x)
    """

    id = "batch-dependence"
    family = "pre-flight"
    severity = Severity.WARNING
    #: at train start too: the BatchNorm fact, and the two input gradients of 16 samples (a
    #: reshape that mixes samples otherwise shows only as a loss stuck at chance)
    consumes = frozenset({Signal.PREFLIGHT, Signal.TRAIN_START})

    def __init__(
        self, batch_size: int = SMALL_BATCH, tol: float = 1e-6, batchnorm_min_batch: int = BATCHNORM_MIN_BATCH
    ):
        self.batch_size, self.tol = batch_size, tol
        self.batchnorm_min_batch = batchnorm_min_batch
        super().__init__()

    def preflight(self, ctx: PreflightContext) -> Iterable[Finding]:
        t = ctx.trainable
        return self._batchnorm_small_batch(t) + self._mixing(t, live=ctx.interface == "live")

    def _batchnorm_small_batch(self, t: Trainable) -> list[Finding]:
        """BatchNorm layers in training mode, and a first training batch too small for their
        batch statistics."""
        layers = t.batch_norm_layers()
        batches = t.batches("train", 1) if layers else []
        x = t.to_numpy(batches[0])[0] if batches else None
        if x is None or not x.ndim or len(x) >= self.batchnorm_min_batch:
            return []  # no BatchNorm training, inputs whose batch size is unknown, or large enough
        n = len(x)
        named = ", ".join(f"`{name}`" for name in layers[:3]) + (
            f" and {len(layers) - 3} more" if len(layers) > 3 else ""
        )
        return [
            self.finding(
                f"The model trains {len(layers)} BatchNorm layer(s) ({named}) on batches of {n} sample(s): each "
                "sample is normalised by the mean and variance of its batch, which a batch this small estimates "
                "poorly, so training is noisy and the running statistics used at evaluation differ from the batch "
                "statistics used in training.",
                evidence={"batch": n, "batchnorm_layers": len(layers), "min_batch": self.batchnorm_min_batch},
                hint=f"Train on batches of {self.batchnorm_min_batch} or more (16+ where memory allows), or use "
                "GroupNorm/LayerNorm instead of BatchNorm (or freeze it with .eval() when fine-tuning); a plateau or a "
                "validation loss above the training loss may then go away.",
                severity=Severity.INFO,
                key="batchnorm-small-batch",
            )
        ]

    def _mixing(self, t: Trainable, live: bool) -> list[Finding]:
        """The gradient test in inference mode: another sample's input reaches sample i's output.
        Live (a run's own data), nothing is said where the test cannot apply."""
        with kept_random_state(t):
            batch = small_batch(t, self.batch_size)
            if batch is None:
                return [] if live else [skipped(self, "there is no training data")]
            x, _ = t.to_numpy(batch)
            unfit = inputs_unfit(x, 2)
            if unfit is not None:
                return [] if live else [skipped(self, unfit)]
            n = len(x)
            # sample i's own gradient and the largest one from each other sample, first and last
            grads = {i: self._row_gradients(t, batch, i, n) for i in (0, n - 1)}
        read = {i: others > self.tol * own for i, (own, others) in grads.items() if own > 0}
        mixed = {i: others for i, others in read.items() if others.any()}
        if not mixed:
            return []
        i = min(mixed)
        own, others = grads[i]
        evidence: dict[str, object] = {
            "sample": i,
            "other_samples_involved": int(mixed[i].sum()),
            "own_gradient": own,
            "largest_other_gradient": float(others.max()),
            "batch": n,
        }
        hint = (
            "Look for a view/reshape that swaps batch and feature axes (use "
            "permute/transpose), or a softmax/normalisation/mean over dim=0."
        )
        message = (
            f"The output of sample {i} depends on the inputs of {evidence['other_samples_involved']} other "
            "sample(s) in its batch: samples are mixed inside the model."
        )
        if _one_direction(mixed, grads, n):
            # the first sample reads no other, the last reads those before it (or the reverse):
            # a recurrence runs along the batch axis; torch's RNNs read (time, batch, features)
            earlier = 0 not in mixed
            evidence["direction"] = "earlier-samples" if earlier else "later-samples"
            clean, side = (0, "before") if earlier else (n - 1, "after")
            message = (
                f"The output of sample {i} depends on the inputs of all {evidence['other_samples_involved']} samples "
                f"{side} it in its batch, and sample {clean}'s on no other: something runs along the batch axis as if "
                "it were time, most often an RNN fed (batch, time, features) that expects (time, batch, features)."
            )
            hint = (
                "Pass batch_first=True to nn.LSTM/nn.GRU/nn.RNN when the inputs are (batch, time, features) "
                "(torch's default is batch_first=False), or transpose the inputs to (time, batch, features) with "
                "x.transpose(0, 1); otherwise look for a cumsum/cumprod or scan over dim=0."
            )
        return [self.finding(message, evidence=evidence, hint=hint)]

    @staticmethod
    def _row_gradients(t: Trainable, batch: object, i: int, n: int) -> tuple[float, np.ndarray]:
        """Sample i's largest input gradient of its own outputs, and each other sample's
        largest one (n - 1 values); own 0 where the gradient is 0 or not finite."""
        grad = np.abs(np.asarray(t.input_gradient(batch, i), dtype=np.float64)).reshape(n, -1)
        own = float(grad[i].max())
        if not math.isfinite(own):
            own = 0.0
        return own, np.delete(grad, i, axis=0).max(axis=1)


def _one_direction(mixed: dict[int, np.ndarray], grads: dict[int, tuple[float, np.ndarray]], n: int) -> bool:
    """Whether the mixing runs one way along the batch: of the first and last samples (the two
    tested), one has a gradient of its own and reads no other sample, and the other reads every
    sample before (or after) it. A reshape that swaps axes or a mean over the batch mixes both
    ends alike."""
    if len(mixed) != 1 or n < 3:
        return False
    clean = n - 1 if 0 in mixed else 0
    return grads[clean][0] > 0 and all(bool(read.all()) for read in mixed.values())
