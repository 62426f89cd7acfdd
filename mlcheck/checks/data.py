"""Data checks: what the loaders hand the model (non-finite values, scale, class balance,
shuffling). They read sampled batches (`on_batch`), keep bounded state, and reach a verdict
from the first few batches where they can, so the pre-flight runner can use them too."""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.checks.hashing import PROBE_ABOVE, PROBE_VALUES, probe_positions
from mlcheck.checks.samples import worse_than_rest
from mlcheck.findings import Finding, Severity
from mlcheck.samples import wilson_interval
from mlcheck.task import SQUARED_LOSSES, scale_sensitive_regression

if TYPE_CHECKING:
    from mlcheck.run import BatchObservation, InputRescale, RunState
    from mlcheck.samples import SplitSamples

# Batches larger than this many values are judged on their first samples only: bounded cost
# (a 99th percentile from 32k values is within a fraction of a percent of the batch's).
_MAX_VALUES = 1 << 15
#: ... and of samples larger than that, at least this many values of each sample (at most 32
#: samples then): a batch of many large samples is not read at a handful of places per sample.
_MIN_SAMPLED_VALUES = 1 << 10


# -- shared helpers ----------------------------------------------------------------------------


def class_labels(targets: np.ndarray | None, run: RunState | None = None, max_classes: int = 1000) -> np.ndarray | None:
    """Integer class labels of a batch of classification targets, or None when the targets are
    not (or not clearly) classification labels.

    Accepted: integer or bool labels of shape (N,) or (N, 1); float labels that are all 0 or 1
    (binary targets for a sigmoid output); one-hot or soft-label rows of shape (N, C) that sum
    to 1 (their argmax). Float labels that are whole numbers beyond 0/1 count only when
    `run.info.task == "classification"`; nothing counts when it is "regression". Negative
    integers (ignore-index, unlabelled) are dropped. Sequence or per-pixel labels (N, T, ...) and
    multi-label rows are not judged.
    """
    if targets is None or not isinstance(targets, np.ndarray) or targets.size == 0:
        return None
    task = run.info.task if run is not None else None
    if task == "regression":
        return None
    t = targets
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    kind = t.dtype.kind
    if t.ndim == 1:
        return _labels_1d(t, task, max_classes)
    if t.ndim == 2 and kind in "fiub" and t.shape[1] >= 2:
        rows = t.astype(np.float64, copy=False)
        if (rows >= 0).all() and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3):
            return rows.argmax(axis=1).astype(np.int64)
    return None


def _labels_1d(t: np.ndarray, task: str | None, max_classes: int) -> np.ndarray | None:
    """`class_labels` for a flat vector of targets."""
    kind = t.dtype.kind
    if kind == "b":
        return t.astype(np.int64)
    if kind in "iu":
        labels = t[t >= 0] if kind == "i" else t
        if labels.size and int(labels.max()) >= max_classes and task != "classification":
            return None
        return labels.astype(np.int64, copy=False)
    if kind == "f":
        if not np.isfinite(t).all() or not (t == np.round(t)).all():
            return None
        if ((t == 0) | (t == 1)).all() or (task == "classification" and (t >= 0).all()):
            return t.astype(np.int64)
    return None


def _entropy(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of class counts."""
    counts = np.atleast_2d(counts).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=1)


def chi2_z(statistic: float, dof: int) -> float:
    """A chi-square statistic as a standard-normal z score (large = significant), by the
    Wilson-Hilferty cube-root approximation (1931): the checks that test label counts
    (`unshuffled-data`, `label-shift`, `output-loss-mismatch`) compare it with a z threshold
    instead of carrying a chi-square table or scipy.

    Args:
        statistic: the chi-square statistic (sum of (observed - expected)^2 / expected).
        dof: its degrees of freedom; 0 or fewer give 0.0 (nothing to test).

    Returns:
        About N(0, 1) under the null hypothesis. Against the exact normal quantile of the
        chi-square tail it is within 0.04 at z = 3 for any `dof` >= 1, and reads low further
        out when `dof` is small (4.66 for an exact 5 at `dof` = 1): conservative, never an
        alarm the exact test would not raise there.
    """
    if dof <= 0:
        return 0.0
    k = float(dof)
    return ((statistic / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))


class _LabelHistory:
    """Class counts of the sampled training batches: running totals plus the per-batch counts of
    the most recent `window` batches. Bounded by `max_classes` and `window`."""

    def __init__(self, window: int = 64, max_classes: int = 1000) -> None:
        self.window = window
        self.max_classes = max_classes
        self.totals: dict[int, int] = {}
        self.batches: deque[dict[int, int]] = deque(maxlen=window)
        self.overflow = False  # more distinct classes than max_classes: stop judging

    def add(self, labels: np.ndarray) -> None:
        if self.overflow or labels.size == 0:
            return
        self.add_counts(*np.unique(labels, return_counts=True))

    def add_counts(self, values: np.ndarray, counts: np.ndarray) -> None:
        """`add` of a batch's labels counted already (`BatchObservation.class_counts`: one count
        per batch shared by the checks that count labels)."""
        if self.overflow or not len(values):
            return
        batch = {int(v): int(c) for v, c in zip(values.tolist(), counts.tolist())}
        for v, c in batch.items():
            self.totals[v] = self.totals.get(v, 0) + c
        if len(self.totals) > self.max_classes:
            self.overflow = True
        self.batches.append(batch)

    def state_dict(self) -> dict:
        return {"totals": dict(self.totals), "batches": [dict(b) for b in self.batches], "overflow": self.overflow}

    def load_state_dict(self, state: dict) -> None:
        self.totals = dict(state["totals"])
        self.batches = deque((dict(b) for b in state["batches"]), maxlen=self.window)
        self.overflow = state["overflow"]

    @property
    def samples(self) -> int:
        return sum(self.totals.values())

    def table(self) -> tuple[list[int], np.ndarray]:
        """(classes, K x C count table of the recent batches)."""
        classes = sorted(self.totals)
        index = {c: i for i, c in enumerate(classes)}
        table = np.zeros((len(self.batches), len(classes)), dtype=np.int64)
        for r, batch in enumerate(self.batches):
            for c, n in batch.items():
                table[r, index[c]] = n
        return classes, table

    def heterogeneity_z(self) -> float:
        """How far the recent batches' label mixes differ beyond multinomial noise (chi-square
        test of homogeneity as a z score); about 0 for shuffled data, large for sorted data."""
        _, table = self.table()
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[0] < 2 or table.shape[1] < 2:
            return 0.0
        # Cochran's rule: the chi-square approximation needs expected cells of about 1 or
        # more, so classes rarer than one per batch are pooled (a lone minority label in one
        # batch would otherwise look like a sorted stream)
        share = table.sum(axis=0) / table.sum()
        rare = share * table.sum(axis=1).mean() < 1.0
        if rare.any():
            pooled = table[:, rare].sum(axis=1)
            table = table[:, ~rare]
            if pooled.mean() >= 1.0:  # together the rare classes are common enough to test
                table = np.column_stack([table, pooled])
        if table.shape[1] < 2:
            return 0.0
        expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
        stat = float(((table - expected) ** 2 / expected).sum())
        return chi2_z(stat, (table.shape[0] - 1) * (table.shape[1] - 1))


def _percentile(ordered: np.ndarray, q: float) -> float:
    """`np.percentile(values, q)` (linear interpolation) of values already sorted: the same
    number. A batch's values are bounded (`_MAX_VALUES`), and numpy's vectorised sort of them
    costs less than one partial sort (`np.partition`), so both percentiles below share it."""
    n = len(ordered)
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    # in float64 whatever the values' type: float32 values sorted give the float64 figure
    below, above = float(ordered[lo]), float(ordered[hi])
    return below + (above - below) * (pos - lo)


def _sample_values(x: np.ndarray, float32: bool = False) -> np.ndarray:
    """The batch as a flat float64 array of at most about `_MAX_VALUES` values (bounded cost):
    its first samples whole when one sample holds no more; else the same share of seeded
    positions of every sample (`probe_positions`: runs of a cache line), so a 3x224x224 batch
    is judged on ~32k values from all its images, not on 150k values of its first image.
    `float32`: float32 values stay float32 (no float64 copy: sorts, comparisons, minima, maxima
    and distinct counts of them are those of their float64 values; sums are not)."""
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    per_sample = max(1, flat.shape[1])
    dtype = np.float32 if float32 and x.dtype == np.float32 else np.float64
    if per_sample <= _MAX_VALUES:
        keep = max(1, _MAX_VALUES // per_sample)
        return flat[:keep].astype(dtype, copy=False).ravel()
    rows = flat[: min(len(flat), _MAX_VALUES // _MIN_SAMPLED_VALUES)]
    positions = probe_positions(per_sample, _MAX_VALUES // len(rows))
    return np.take(rows, positions, axis=1).astype(dtype, copy=False).ravel()


def _part(batch: BatchObservation, part: str) -> np.ndarray | None:
    """The batch's inputs or targets; for the inputs of a probe-only observation, the probe."""
    values = getattr(batch, part)
    return batch.probe if values is None and part == "inputs" else values


# -- checks ------------------------------------------------------------------------------------


@register
class NonFiniteInput(Check):
    """NaN or Inf values in the inputs or targets handed to the model.

    What it does:
        Counts NaN and Inf values in every sampled batch of inputs and targets, and names the
        split, step and batch where they first appear, how many values and (for tabular inputs
        of shape (N, features)) which feature columns hold them. In the full pass over the
        first epoch, samples holding more than 1,024 values (images) are looked at on 256
        seeded positions (the probe `train-val-overlap` hashes), so the pass costs the same per
        sample whatever its size: a NaN-filled or widely NaN image is caught there, a lone NaN
        pixel in the sampled batches (the first ones, then one in 100) or through the loss it
        makes non-finite (`nonfinite-loss`).

    Why it matters:
        One NaN input makes the loss NaN, and the next optimizer step spreads NaN into every
        weight: the rest of the run is wasted. Missing values in a table (read as NaN), a
        division by zero or a log of zero in preprocessing are the usual causes.

    How to fix:
        Impute or drop missing values before training (`SimpleImputer`, `df.fillna`,
        `df.dropna`), guard divisions and logs in the preprocessing (`np.log1p`, an epsilon),
        and check the named columns at their source.

    Example:
        df = pd.read_csv("loans.csv")  # empty cells are read as NaN
        df["log_income"] = np.log(df["income"])  # income 0 gives -inf
        cols = ["log_income", "age", "debt"]
        X = torch.tensor(df[cols].values, dtype=torch.float32)
        y = torch.tensor(df["default"].values, dtype=torch.float32)
        loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
        trainer.fit(model, loader)  # NaN loss from the first bad row on

    Use instead:
        df = pd.read_csv("loans.csv")
        df = df.dropna(subset=["income", "age", "debt", "default"])
        df["log_income"] = np.log1p(df["income"])  # finite at 0
        cols = ["log_income", "age", "debt"]
        X = torch.tensor(df[cols].values, dtype=torch.float32)
        y = torch.tensor(df["default"].values, dtype=torch.float32)
        loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
        trainer.fit(model, loader)

    Args:
        max_columns: how many offending feature columns to name in the evidence. Default 10.
    """

    id = "nonfinite-input"
    family = "data"
    severity = Severity.ERROR
    reads_probe = True
    #: one NaN row spoils a step: every batch of the first pass is looked at
    consumes = frozenset({Signal.EVERY_BATCH})

    def __init__(self, max_columns: int = 10) -> None:
        self.max_columns = max_columns
        super().__init__()

    def on_batch(self, merged: BatchObservation, run: RunState) -> Iterable[Finding]:
        for part in ("inputs", "targets"):
            values = _part(merged, part)
            if values is None or values.dtype.kind not in "fc" or values.size == 0:
                continue
            if part == "inputs" and merged.full_pass and values.ndim:
                # the full pass looks at the seeded probe of large samples (the one
                # train-val-overlap hashes), so its cost per sample does not grow with their size;
                # every value of the sampled batches is still looked at
                probe = merged.input_probe(PROBE_VALUES, PROBE_ABOVE)
                if probe.size < values.size and np.isfinite(probe).all():
                    continue
            with np.errstate(all="ignore"):
                # fast path: a finite sum means every value is finite (summed in the values' own
                # type, float16 in float32: no converted copy; a sum that overflows is checked
                # value by value below)
                if np.isfinite(values.sum(dtype=np.float32 if values.dtype == np.float16 else None)):
                    continue
            bad = ~np.isfinite(values)
            n_bad = int(bad.sum())
            if n_bad == 0:  # the sum overflowed, nothing is wrong
                continue
            batch = merged
            if merged.parts:  # batches merged by the monitor: report the first one with the fault
                batch = merged.part_at(int(np.argmax(bad.reshape(len(values), -1).any(axis=1))))
                values = _part(batch, part)
                bad = ~np.isfinite(values)
                n_bad = int(bad.sum())
            n_nan = int(np.isnan(values).sum())
            rows = int(bad.reshape(len(values), -1).any(axis=1).sum()) if values.ndim else 1
            evidence = {
                "split": batch.split,
                "batch_index": batch.index,
                "nan": n_nan,
                "inf": n_bad - n_nan,
                "values": int(values.size),
                "samples_affected": rows,
                "batch_size": len(values) if values.ndim else 1,
            }
            where = ""
            if part == "inputs" and merged.inputs is None:  # the probe of large samples
                evidence["values_looked_at_per_sample"] = int(values.shape[1])
            elif part == "inputs" and values.ndim == 2:
                columns = np.flatnonzero(bad.any(axis=0))
                evidence["columns"] = columns[: self.max_columns].tolist()
                evidence["columns_affected"] = len(columns)
                shown = ", ".join(str(c) for c in columns[: self.max_columns])
                more = f" and {len(columns) - self.max_columns} more" if len(columns) > self.max_columns else ""
                where = f" (feature column{'s' if len(columns) > 1 else ''} {shown}{more})"
            split = "training" if batch.split == "train" else "validation"
            at = f" at step {batch.step}" if batch.step is not None else ""
            yield self.finding(
                f"{split.capitalize()} {part} contain {n_nan} NaN and {n_bad - n_nan} Inf "
                f"values in {rows} of {evidence['batch_size']} samples{where}, batch "
                f"{batch.index}{at}.",
                evidence=evidence,
                hint="Impute or drop missing values before training (SimpleImputer, "
                "df.fillna, df.dropna) and guard divisions and logs in the preprocessing; "
                "one NaN input turns the loss and then every weight into NaN.",
                step=batch.step,
                epoch=batch.epoch,
                key=f"{batch.split}:{part}",
            )


# The other fix for raw pixels: the callbacks take no `input_kind` (only `Monitor.log_batch` does),
# and Keras' adapter reads a Rescaling first layer itself; a torch model has no such layer to read
_RESCALING_LAYER = (
    "make a Rescaling(1/255) layer the model's first (Keras: mlcheck reads it and judges the rescaled "
    "values; with Monitor, pass log_batch(..., input_kind='rescaled'))"
)


#: Channel counts of images: grey and RGB. An image axis of that length beside a "channel" axis
#: as long as a spatial side is the channel axis in the wrong place.
_IMAGE_CHANNELS = (1, 3)


@register
class UnnormalizedInput(Check):
    """Inputs far from unit scale: raw 0-255 pixels, huge features, features on wildly
    different scales; regression targets far from unit scale.

    What it does:
        Looks at the typical large magnitude of each sampled input batch (the 99th percentile
        of |x|, so a lone outlier does not count) and, for tabular float inputs of shape
        (N, features), at the typical magnitude (median |x|) of each feature column. Warns when
        the magnitude is above `max_magnitude` (raw 8-bit pixels sit near 255), below
        `min_magnitude` (e.g. pixels divided by 255 twice), or when the largest and smallest
        column scales differ by more than `max_scale_ratio`. Stays silent for integer inputs of
        shape (N,) or (N, T) (token or category ids for an embedding), for batches the adapter
        marks `input_kind="embedding_ids"` or `"rescaled"` (the model rescales them itself,
        e.g. a Keras `Rescaling` layer), and for images already in [0, 1] or standardised.
        Large inputs that are all non-negative whole numbers past 255, with 50 or more distinct
        values in the sample, are told as possibly token or category ids cast to float (a
        tokenizer's output fed to `Dense` layers): the fix names an embedding first, as a
        scaler would leave id 900 reading as 900x id 1 (evidence `whole_numbers`).
        Where the adapter knows that first layer's map (`RunInfo.input_rescale`: a Keras
        `Rescaling` layer's scale and offset, a `Normalization` layer's mean and variance), the
        values it hands on are judged instead: inputs divided by 255 before a `Rescaling(1/255)`
        are tiny, raw features under a `Normalization` layer never adapted stay raw. A map with
        one scale and offset for every column (`Normalization(axis=None)`: one mean and variance
        over every value) leaves the columns' relative scales as they were, so their column
        scales are judged as the inputs times that one scale (its offset moves every column alike).
        Integer ids fed straight to an embedding whose rows the adapter knows
        (`RunInfo.embedding_rows`: the `input_dim` of a Keras `Embedding` first layer) are an
        ERROR once when an id is negative or at or beyond those rows (key
        `ids-beyond-embedding`: they index no row).
        Images in the wrong layout for the model's first `Conv2D` (`RunInfo.conv_input`: its
        input shape and data format, which the Keras callback reads, and the Lightning callback
        from the first `nn.Conv2d`'s input at the first step) are a WARNING once (key
        `channels-first`): under `channels_last`, a last axis (the channels) as long as a
        spatial side while the first axis is 1 or 3, as `(N, 1, 28, 28)` images read as a 1x28
        image of 28 channels; the mirror under `channels_first` (torch), as `(N, 28, 28, 1)`
        images into `nn.Conv2d(in_channels=28, ...)` read as a 28x1 image of 28 channels. A layout is a data
        preparation slip like a scale, and no other check reads the input's form.
        One data set's scaling problem is one finding: inputs too large and columns apart are
        reported together, naming the splits and kinds of evidence seen when it is raised; a
        second split showing the same problem later only marks it (no second warning); inputs
        that are too small (scaled twice) are a finding of their own.

        The targets are the loss's input: with a regression loss whose size grows with the
        targets (MSE, MAE, Huber, log-cosh; the loss the adapter names, or a run declared or
        inferred as regression when the loss is unknown), the root mean square of the training
        targets seen (at least `min_target_samples` of them) above `max_target_scale` is a
        finding of its own (key `targets`), naming their mean and standard deviation. It is
        this check's because the cause is the data's scale and the fix the inputs' one
        (standardise with training statistics); `loss-at-init` stays silent on such a run, its
        expected first MSE being the mean squared target itself, and `output-loss-mismatch`
        is about outputs that cannot reach the labels, which a linear head can.

    Why it matters:
        Weight initialisations (Glorot, He) and default learning rates assume inputs of order
        one. Inputs in the hundreds saturate activations and make the first steps huge; features
        a thousand times apart get effective learning rates a million times apart, so training
        is slow or unstable and ends worse. The same holds for regression targets: a freshly
        initialised network predicts about 0, so its first MSE is about mean(y^2) (6.9e10 for
        house prices near 2.5e5), the gradients scale with y, and an optimizer that moves each
        weight by about the learning rate per step (Adam) needs a very long time to reach
        outputs of that size; the loss looks stuck and the usual advice (initialisation,
        BatchNorm, a larger rate) points away from the cause.

    How to fix:
        Scale the inputs: divide 8-bit pixels by 255 after casting them to float
        (`x.astype("float32") / 255`: arithmetic on uint8 arrays wraps around modulo 256, so
        `x - 128` turns black 0 into 128 and white 255 into 127; the hint says so for integer
        pixels), or add a `Rescaling(1/255)` layer;
        standardise tabular features with statistics of the training split
        (`StandardScaler().fit(X_train)`), or normalise inside the model
        (`Normalization` layer, `BatchNorm` on the inputs). Standardise regression targets
        with the training split's mean and standard deviation (sklearn's
        `TransformedTargetRegressor(transformer=StandardScaler())` does it and undoes it), or
        predict log(y) for positive, skewed targets such as prices; invert the transform
        before reporting errors in the original units.
        Images in the wrong layout: move the channel axis where the convolution reads it
        (`np.transpose(x, (0, 2, 3, 1))`, `x.permute(0, 2, 3, 1)`) or build the convolutions with
        the layout the data has (`data_format="channels_first"`).

    Example:
        (x_train, y_train), _ = keras.datasets.mnist.load_data()  # uint8, 0-255
        model = keras.Sequential([
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x_train, y_train, epochs=5)

    Use instead:
        (x_train, y_train), _ = keras.datasets.mnist.load_data()
        model = keras.Sequential([
            keras.Input(shape=(28, 28)),
            keras.layers.Rescaling(1 / 255),  # to [0, 1], at inference too
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x_train, y_train, epochs=5)

    Args:
        max_magnitude: warn when the 99th percentile of |inputs| exceeds it. Default 50: 50x
            unit scale; raw 8-bit pixels give ~255, sklearn's 0-16 digit images give 16.
        min_magnitude: warn when the 99th percentile of the non-zero |inputs| is below it.
            Default 0.01: 100x below unit scale; 8-bit pixels divided by 255 twice stay
            under 0.004, while real features of order one (tf-idf weights, returns, [0, 1]
            pixels) have their 99th percentile well above it.
        max_scale_ratio: warn when the largest typical column magnitude (median |x|) exceeds
            the smallest non-zero one this many times. Default 1000: three orders of magnitude;
            standardised columns stay within ~300 even when a value is rare (a 0/1 column with
            1 in 100,000 rows standardises to ~0.003 against ~0.67 for a normal column).
        max_target_scale: warn when the root mean square of the regression targets, sqrt(mean
            y^2) (the square root of the first MSE of a network that starts near 0), exceeds
            it. Default 1000: three orders of magnitude above unit scale, as for the columns.
            Targets in their natural units stay below it: sklearn's diabetes (25-346, 170) and
            linnerud (up to 247, 111), Boston (5-50), California housing in $100k (0.15-5),
            UCI concrete (2-83) and power plant (420-496); house prices in dollars (~2e5),
            daily counts in the thousands or calendar years (~2000) lie above it.
        min_target_samples: training targets to see before judging their scale. Default 32.
    """

    id = "unnormalized-input"
    family = "data"
    severity = Severity.WARNING
    # one data set's scaling problem is one finding (one key), however many splits and kinds of
    # evidence show it: a later sighting in another split only marks it, as for every check

    def __init__(
        self,
        max_magnitude: float = 50.0,
        min_magnitude: float = 0.01,
        max_scale_ratio: float = 1000.0,
        max_columns: int = 4096,
        max_target_scale: float = 1000.0,
        min_target_samples: int = 32,
    ) -> None:
        self.max_magnitude = max_magnitude
        self.min_magnitude = min_magnitude
        self.max_scale_ratio = max_scale_ratio
        self.max_columns = max_columns
        self.max_target_scale = max_target_scale
        self.min_target_samples = min_target_samples
        super().__init__()

    def reset(self) -> None:
        self._column_scale: dict[str, np.ndarray] = {}
        # rows of batches smaller than `_MIN_COLUMN_ROWS`, pooled per split until there are enough
        self._column_rows: dict[str, list[np.ndarray]] = {}
        # what each split showed of each problem: {"scale" | "tiny": {split: {kind: numbers}}}
        self._seen: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        # the training targets seen so far: [count, sum, sum of squares, minimum]; None once judged
        self._targets: list[float] | None = [0.0, 0.0, 0.0, math.inf]
        # the model's first layer whose output was judged in place of the inputs (`RunInfo.input_rescale`)
        self._rescaled_by: InputRescale | None = None

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if self._targets is not None and batch.split == "train" and batch.targets is not None:
            yield from self._target_scale(batch, run)
        yield from self._ids_beyond_embedding(batch, run)
        yield from self._channels_first(batch, run)
        yield from self._input_scale(batch, run.info.input_rescale)

    def _channels_first(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        """WARNING (key `channels-first`), once: the first 2-D convolution (`RunInfo.conv_input`)
        reads its images in the other layout: channels_last, yet the last axis (its channels)
        is as long as a spatial side while the first is 1 or 3, as an (N, 1, 28, 28) image
        reads as a 1x28 image of 28 channels (channels_first, the mirror)."""
        conv = run.info.conv_input
        if "layout" in self._seen or conv is None or len(conv[1]) != 3:
            return
        self._seen["layout"] = {}
        layer, shape, data_format = conv
        if data_format == "channels_last":
            (few, side, channels), meant = shape, (shape[1], shape[2], shape[0])
        else:
            (channels, side, few), meant = shape, (shape[2], shape[0], shape[1])
        if few not in _IMAGE_CHANNELS or channels != side or channels <= max(_IMAGE_CHANNELS):
            return  # the channel axis is not as long as a spatial side, or no image has so few rows
        other = "channels_first" if data_format == "channels_last" else "channels_last"
        if data_format == "channels_last":
            seen, fix = (
                f"a {few}x{side} image of {channels} channels",
                "Move the channel axis last: x = np.transpose(x, (0, 2, 3, 1)) (torch: x.permute(0, 2, 3, 1); "
                f"flat pixels: x.reshape(-1, {meant[0]}, {meant[1]}, {meant[2]})) with keras.Input({meant}), "
                f"or build the convolutions with data_format='{other}' "
                f"(keras.config.set_image_data_format('{other}')).",
            )
        else:
            seen, fix = (
                f"a {side}x{few} image of {channels} channels",
                "Move the channel axis first: x = x.permute(0, 3, 1, 2) (numpy: np.transpose(x, (0, 3, 1, 2))), "
                f"so that the convolution's in_channels is {few}.",
            )
        yield self.finding(
            f"{layer} reads its inputs of shape {tuple(shape)} as {data_format}: {seen}. They look like "
            f"{other} images ({few} channel{'s' if few > 1 else ''} of {side}x{side}) fed in the wrong layout, "
            "which the network still trains on, worse.",
            evidence={"layer": layer, "input_shape": list(shape), "data_format": data_format, "split": batch.split},
            hint=fix,
            step=batch.step,
            epoch=batch.epoch,
            key="channels-first",
        )

    def _ids_beyond_embedding(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        """ERROR (key `ids-beyond-embedding`), once: integer ids fed straight to an embedding
        (`RunInfo.embedding_rows`) at or beyond its rows, or negative: they index no row."""
        rows, x = run.info.embedding_rows, batch.inputs
        if "ids" in self._seen or rows is None or batch.input_kind != "embedding_ids" or x is None or not x.size:
            return
        if x.dtype.kind not in "iu":
            return
        low, high = int(x.min()), int(x.max())
        if 0 <= low and high < rows:
            return
        self._seen["ids"] = {}
        beyond = int(np.count_nonzero((x >= rows) | (x < 0)))
        yield self.finding(
            f"The {_SPLIT_NAMES[batch.split]} inputs are ids up to {high} (lowest {low}), but the embedding they "
            f"index has input_dim={rows} rows (ids 0..{rows - 1}): {beyond} of the {x.size} ids in this batch have "
            "no row (the torch backend fails with 'index out of range'; other backends may read zeros or NaN).",
            evidence={
                "split": batch.split,
                "embedding_rows": rows,
                "max_id": high,
                "min_id": low,
                "ids_beyond": beyond,
                "ids_in_batch": int(x.size),
            },
            hint=f"Give the Embedding input_dim={high + 1} or more (the vocabulary size plus any padding or "
            "out-of-vocabulary ids: `input_dim=len(vocab) + 1` where 0 is padding), or map the ids into "
            "0..input_dim-1.",
            step=batch.step,
            epoch=batch.epoch,
            severity=Severity.ERROR,
            key="ids-beyond-embedding",
        )

    def _target_scale(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        """Regression targets far from unit scale, pooled over the training batches seen until
        `min_target_samples` of them give a verdict (then no more are looked at)."""
        loss = run.info.loss
        # classification, a loss that works on ratios, logs or rates, or no loss named and no
        # regression declared: not judged
        if not scale_sensitive_regression(loss, run.info.task):
            return
        y = batch.targets
        if y.size == 0 or y.dtype.kind not in "fiu":
            return
        values = _sample_values(y)
        values = values[np.isfinite(values)]  # NaN targets: nonfinite-input's business
        pooled = self._targets
        pooled[0] += values.size
        pooled[1] += float(values.sum())
        pooled[2] += float(np.square(values).sum())
        pooled[3] = min(pooled[3], float(values.min())) if values.size else pooled[3]
        n, total, squares, lowest = pooled
        if n < self.min_target_samples:
            return
        self._targets = None  # judged once: the scale of a data set does not change
        mean = total / n
        rms = math.sqrt(squares / n)
        if not rms > self.max_target_scale:
            return
        std = math.sqrt(max(squares / n - mean * mean, 0.0))
        named = f"the {loss} loss" if loss is not None else "the regression loss"
        positive = lowest > 0  # log(y) is an option
        # a network that starts near 0 has a first squared error of about mean(y^2) = rms^2
        first = f"first loss is about {rms * rms:.3g}" if loss in SQUARED_LOSSES else "first loss grows with them"
        yield self.finding(
            f"The regression targets are far from unit scale for {named}: mean {mean:.4g}, standard "
            f"deviation {std:.4g} (root mean square {rms:.4g}, over {self.max_target_scale:g}), so the "
            f"untrained model's {first} and its gradients scale with the targets.",
            evidence={
                "split": "train",
                "loss_name": loss,
                "target_mean": mean,
                "target_std": std,
                "target_rms": rms,
                "targets_seen": int(n),
                "max_target_scale": self.max_target_scale,
            },
            hint="Standardise the targets with the training split's mean and standard deviation "
            "(y - mean) / std"
            + (", or predict log(y) for positive, skewed targets such as prices" if positive else "")
            + "; invert the transform before reporting predictions or errors in the original units "
            "(sklearn: TransformedTargetRegressor(transformer=StandardScaler())). If the model "
            "rescales its outputs itself, suppress 'unnormalized-input' for this run.",
            step=batch.step,
            epoch=batch.epoch,
            key="targets",
        )

    def _input_scale(self, batch: BatchObservation, rescale: InputRescale | None = None) -> Iterable[Finding]:
        """The inputs' magnitude and column scales (keys `scale` and `tiny`). Inputs the model
        rescales itself are judged after that map where it is known (`rescale`, from
        `RunInfo.input_rescale`), else not at all."""
        x = self._judged_inputs(batch, rescale)
        if x is None:
            return
        kind = x.dtype.kind
        if kind not in "fiu" or (kind in "iu" and x.ndim <= 2):
            return  # bool masks; integer (N,) or (N, T) inputs are ids for an embedding
        raw = _sample_values(x, float32=True)  # sorted and compared only: float32 suffices
        finite = np.isfinite(raw)
        if not finite.all():
            raw = raw[finite]
        if raw.size == 0:
            return
        values = np.sort(np.abs(raw))
        problems = set()
        magnitude = _percentile(values, 99)
        if magnitude > self.max_magnitude:
            whole = bool(raw.min() >= 0 and (raw == np.round(raw)).all())
            pixels = whole and bool(raw.max() <= 255 and raw.max() > 1)
            # whole numbers past 8 bits, many distinct: a tokenizer's or encoder's ids fed as numbers?
            ids = whole and raw.max() > 255 and len(np.unique(raw)) >= _MIN_DISTINCT_IDS
            before = self._seen.get("scale", {}).get(batch.split, {}).get("magnitude")
            if before is None or magnitude > before["p99_abs"]:  # the largest batch seen
                self._note("scale", batch.split, "magnitude", p99_abs=magnitude, max_abs=float(values.max()))
            self._note("scale", batch.split, "dtype", pixels=pixels, ids=ids, dtype=str(x.dtype))
            problems.add("scale")
        nonzero = values[np.searchsorted(values, 0.0, side="right") :]  # sorted, as `values`
        if nonzero.size:
            small = _percentile(nonzero, 99)
            if small < self.min_magnitude:
                self._note("tiny", batch.split, "tiny", p99_abs_nonzero=small)
                problems.add("tiny")
        if (
            x.ndim == 2
            and kind == "f"
            and 2 <= x.shape[1] <= self.max_columns
            and self._column_scales(_before_common_offset(batch, rescale, x), batch)
        ):
            problems.add("scale")
        for problem in sorted(problems):
            yield self._report(problem, batch)

    def _judged_inputs(self, batch: BatchObservation, rescale: InputRescale | None) -> np.ndarray | None:
        """The values to judge: the inputs, or what the model's first layer makes of inputs
        marked `"rescaled"` where its map is known; None when there is nothing to judge."""
        x = batch.inputs
        if x is None or x.size == 0 or x.ndim == 0 or batch.input_kind == "embedding_ids":
            return None
        if batch.input_kind != "rescaled":
            return x
        x = _rescaled(x, rescale)
        if x is not None and rescale is not None:
            self._rescaled_by = rescale
        return x

    def _note(self, problem: str, split: str, kind: str, **numbers: Any) -> None:
        self._seen.setdefault(problem, {}).setdefault(split, {})[kind] = numbers

    def _column_scales(self, x: np.ndarray, batch: BatchObservation) -> bool:
        """Notes the column scales of a tabular batch; True when they are too far apart. Batches
        of fewer than `_MIN_COLUMN_ROWS` rows are pooled first."""
        if len(x) < _MIN_COLUMN_ROWS:
            pool = self._column_rows.setdefault(batch.split, [])
            if pool and pool[0].shape[1:] != x.shape[1:]:
                pool.clear()
            pool.append(np.array(x, copy=True))  # the caller's buffer may be reused
            if sum(len(rows) for rows in pool) < _MIN_COLUMN_ROWS:
                return False
            x = np.concatenate(pool)
            pool.clear()
        # a column's scale is its typical magnitude, the median |x| (the largest over the
        # batches seen): neither its max nor its spread, because a standardised column that is
        # constant except for rare values sits at a small offset (-mean/std) in most rows and
        # shows a tiny spread in a batch where one faint value appears
        magnitudes = np.abs(x)
        if np.isfinite(magnitudes.sum()):
            ordered = np.sort(magnitudes, axis=0)  # the median by a sort: faster along axis 0
            typical = 0.5 * (ordered[(len(x) - 1) // 2] + ordered[len(x) // 2])
        else:
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": a column of NaN
                typical = np.nanmedian(np.where(np.isfinite(x), magnitudes, np.nan), axis=0)
        typical = np.nan_to_num(typical.astype(np.float64), nan=0.0)
        previous = self._column_scale.get(batch.split)
        if previous is not None and previous.shape == typical.shape:
            typical = np.maximum(previous, typical)
        self._column_scale[batch.split] = scale = typical
        live = scale > 1e-12  # columns that are mostly zero have no typical scale
        if live.sum() < 2:
            return False
        big, small = int(np.argmax(np.where(live, scale, -np.inf))), int(np.argmin(np.where(live, scale, np.inf)))
        ratio = float(scale[big] / scale[small])
        if ratio <= self.max_scale_ratio:
            return False
        self._note(
            "scale",
            batch.split,
            "columns",
            ratio=ratio,
            largest_column=big,
            largest_scale=float(scale[big]),
            smallest_column=small,
            smallest_scale=float(scale[small]),
        )
        return True

    def _report(self, problem: str, batch: BatchObservation) -> Finding:
        """The one finding of `problem`, naming every split and kind of evidence seen so far."""
        seen = self._seen[problem]
        splits = [s for s in ("train", "val") if s in seen]
        subject = " and ".join(_SPLIT_NAMES[s] for s in splits).capitalize() + " inputs"
        evidence: dict[str, Any] = {"split": ", ".join(splits)}
        where = dict(step=batch.step, epoch=batch.epoch, key=problem)
        if problem == "tiny":
            for s in splits:
                evidence[f"{s}_p99_abs_nonzero"] = seen[s]["tiny"]["p99_abs_nonzero"]
            evidence["min_magnitude"] = self.min_magnitude
            return self.finding(
                f"{subject} are tiny: the 99th percentile of their non-zero magnitudes is "
                f"{_per_split(seen, splits, 'tiny', 'p99_abs_nonzero', '.3g')}, under "
                f"{self.min_magnitude:g} (scaled twice?){self._after_layer(evidence)}.",
                evidence=evidence,
                hint="Check that the inputs are scaled once (e.g. not divided by 255 in "
                "the loader and again by a Rescaling layer); standardise them to unit "
                "scale.",
                **where,
            )
        magnitude = self._magnitude_part(seen, splits, evidence)
        parts = [
            part
            for part in (magnitude, self._columns_part(seen, splits, evidence, first=magnitude is None))
            if part is not None
        ]
        after = self._after_layer(evidence)
        hint = parts[0][1] + ", the same way for every split; if the model rescales its inputs itself, "
        hint += "suppress 'unnormalized-input' for this run."
        if (
            self._rescaled_by is not None
            and self._rescaled_by.over_every_value
            and any("columns" in seen[s] for s in splits)
        ):
            hint = (
                "Build the Normalization layer with one mean and variance per feature (axis=-1, the default) "
                "and adapt it to the training inputs: axis=None computes one mean and variance over every value, "
                "which leaves the columns' relative scales as they were."
            )
        elif self._rescaled_by is not None and not self._rescaled_by.adapted:
            hint = (
                "Adapt the Normalization layer to the training inputs before fit (norm.adapt(x_train)), "
                "or pass mean= and variance= to it; untouched it subtracts 0 and divides by 1."
            )
        return self.finding(
            f"{subject} {', and '.join(text for text, _ in parts)}{after}.", evidence=evidence, hint=hint, **where
        )

    def _after_layer(self, evidence: dict[str, Any]) -> str:
        """The clause naming the model's first layer whose output was judged, if any."""
        if self._rescaled_by is None:
            return ""
        evidence["judged_after"] = self._rescaled_by.layer
        return f", as the model's first layer hands them on (after its {self._rescaled_by.layer})"

    def _magnitude_part(self, seen: dict, splits: list[str], evidence: dict[str, Any]) -> tuple[str, str] | None:
        """The large-magnitude clause of the message and its fix; its numbers go to `evidence`."""
        large = [s for s in splits if "magnitude" in seen[s]]
        if not large:
            return None
        pixels = all(seen[s]["dtype"]["pixels"] for s in large)
        dtypes = {seen[s]["dtype"]["dtype"] for s in large}
        uint8 = ", dtype uint8" if dtypes == {"uint8"} else ""
        what = f"look like raw 8-bit pixel values (whole numbers 0-255{uint8})" if pixels else "are far from unit scale"
        for s in large:
            evidence[f"{s}_p99_abs"] = seen[s]["magnitude"]["p99_abs"]
            evidence[f"{s}_max_abs"] = seen[s]["magnitude"]["max_abs"]
        evidence["dtype"] = ", ".join(sorted(dtypes))
        evidence["max_magnitude"] = self.max_magnitude
        text = (
            f"{what}{_only(large, splits)}: their 99th-percentile magnitude is "
            f"{_per_split(seen, large, 'magnitude', 'p99_abs', '.4g')}, over {self.max_magnitude:g}"
        )
        if pixels and any(d.startswith(("uint", "int")) for d in dtypes):
            # integer pixels: arithmetic before the cast wraps (uint8 `x - 128`: 0 -> 128, 255 -> 127),
            # and NumPy 2 keeps uint8 for a Python int operand, so "centre then divide" goes wrong
            return text, (
                "Cast to float before any arithmetic, then divide: x.astype('float32') / 255 (on uint8 "
                "arrays x - 128 or x * 2 wraps around modulo 256, turning bright pixels dark); or " + _RESCALING_LAYER
            )
        if pixels:
            return text, "Divide the pixels by 255, or " + _RESCALING_LAYER
        if all(seen[s]["dtype"].get("ids") for s in large):
            top = max(seen[s]["magnitude"]["max_abs"] for s in large)
            text += f"; they are all non-negative whole numbers up to {top:.0f}, like token or category ids"
            evidence["whole_numbers"] = True
            return text, (
                "If these are token or category ids, feed them as integers to an embedding (torch "
                f"nn.Embedding({top + 1:.0f}, dim); Keras layers.Embedding(input_dim={top + 1:.0f}, output_dim=...)) "
                "or one-hot encode them: as numbers, id 900 reads as 900x id 1. If they are counts or measurements, "
                "standardise them with training-split statistics (StandardScaler().fit(X_train))"
            )
        return text, "Standardise the inputs with training-split statistics (StandardScaler().fit(X_train))"

    def _columns_part(
        self, seen: dict, splits: list[str], evidence: dict[str, Any], first: bool = False
    ) -> tuple[str, str] | None:
        """The column-scale clause of the message and its fix; its numbers go to `evidence`.
        `first`: the clause follows the subject directly ("Validation inputs have ...")."""
        uneven = [s for s in splits if "columns" in seen[s]]
        if not uneven:
            return None
        for s in uneven:
            columns = seen[s]["columns"]
            evidence[f"{s}_column_ratio"] = columns["ratio"]
            evidence[f"{s}_largest_column"] = columns["largest_column"]
            evidence[f"{s}_smallest_column"] = columns["smallest_column"]
        evidence["column_measure"] = "median |x|" + (
            " x the layer's one scale" if self._rescaled_by and self._rescaled_by.over_every_value else ""
        )
        evidence["max_scale_ratio"] = self.max_scale_ratio
        worst = max((seen[s]["columns"] for s in uneven), key=lambda columns: columns["ratio"])
        text = (
            f"{'have feature columns' if first else 'their feature columns are'} on wildly different "
            f"scales{_only(uneven, splits)}: column "
            f"{worst['largest_column']} is typically {worst['largest_scale']:.4g} in magnitude, column "
            f"{worst['smallest_column']} {worst['smallest_scale']:.3g} ({worst['ratio']:.3g}x)"
        )
        return text, (
            "Standardise each feature with training-split statistics (StandardScaler().fit(X_train), "
            "or a Normalization layer adapted to the training data)"
        )


def _before_common_offset(batch: BatchObservation, rescale: InputRescale | None, judged: np.ndarray) -> np.ndarray:
    """The values whose column scales are judged: `judged`, except under a first-layer map with
    one scale and one offset for every column (a Keras `Normalization(axis=None)`, a scalar
    `Rescaling`), whose offset moves every column alike and so can make columns thousands of
    times apart in spread look alike by their median |x| (breast_cancer's area and smoothness
    both land near (0 - mean) / std): there the inputs times the layer's one scale, whose column
    ratios are the raw inputs' (a common map leaves them as they were)."""
    if batch.input_kind != "rescaled" or rescale is None or batch.inputs is None:
        return judged
    scale, offset = rescale.scale, rescale.offset
    if scale.size != 1 or offset.size != 1 or batch.inputs.dtype.kind not in "fiu":
        return judged
    return batch.inputs.astype(np.float64) * float(scale.ravel()[0])


def _rescaled(x: np.ndarray, rescale: InputRescale | None) -> np.ndarray | None:
    """`x` mapped by the model's first layer (`RunInfo.input_rescale`: scale and offset over the
    last axis), as float64; None when unknown or the shapes do not broadcast."""
    if rescale is None or x.dtype.kind not in "fiu":
        return None
    scale, offset = rescale.scale, rescale.offset
    if (scale.ndim and scale.shape[-1] not in (1, x.shape[-1])) or (
        offset.ndim and offset.shape[-1] not in (1, x.shape[-1])
    ):
        return None
    try:
        return x.astype(np.float64) * scale + offset
    except ValueError:
        return None


#: Rows a column's median |x| needs to stand for its typical magnitude: the median of one row is
#: that row's draw (a validation loader of batch size 1 showed 1.4e-4 for a standardised column,
#: 1.1e4x below another); over 16 rows a standardised column's median |x| falls below 0.01
#: (1/1000 of a typical ~0.67) with probability ~2e-13 (8 of 16 draws of |N(0, 1)| under 0.01).
_MIN_COLUMN_ROWS = 16

#: `class-imbalance`'s unnamed outputs: heads of 3+ units (a 2-unit head over one class is
#: `one-class`'s), judged once the outputs unnamed would all be missing by chance with probability
#: e^-20 were they classes of the uniform share 1/C (`_labels_to_miss`: 20 C labels for one output
#: missing, (1 - 1/C)^(20 C) ~ e^-20; fewer when many are; a rare class may be, so INFO)
_MIN_HEAD_CLASSES = 3
_LABELS_PER_CLASS = 20


def _labels_to_miss(missing: int, classes: int) -> int:
    """Labels after which `missing` of `classes` outputs all unnamed is no chance: were they
    classes of the data at the uniform share 1/C, all would be missing with probability
    (1 - m/C)^n, under e^-`_LABELS_PER_CLASS` from n = 20 / -ln(1 - m/C). One output missing
    needs ~20 C labels (the per-class bound); 90 of 100 (a CIFAR-100 head on digits) 9, so the
    `min_samples` floor decides."""
    return math.ceil(_LABELS_PER_CLASS / -math.log1p(-missing / classes)) if 0 < missing < classes else 0


#: `unnormalized-input`: large whole-number inputs with at least this many distinct values in the
#: sample are told as possible ids (a few distinct large values are codes or years, not a vocabulary)
_MIN_DISTINCT_IDS = 50
#: a class weighed 0 is named once it has this many training labels in the first epoch
_MIN_ZERO_WEIGHTED = 5

#: How findings name the splits.
_SPLIT_NAMES = {"train": "training", "val": "validation"}


def _only(some: list[str], splits: list[str]) -> str:
    """ " (training)" when a clause holds for some of the splits a finding names only."""
    return "" if some == splits else f" ({' and '.join(_SPLIT_NAMES[s] for s in some)})"


def _per_split(seen: dict[str, dict[str, dict[str, Any]]], splits: list[str], kind: str, name: str, spec: str) -> str:
    """One number per split ("255 (training) and 254.5 (validation)"), once when they agree."""
    texts = [format(seen[s][kind][name], spec) for s in splits]
    if len(set(texts)) == 1:
        return texts[0]
    return " and ".join(f"{t} ({_SPLIT_NAMES[s]})" for t, s in zip(texts, splits))


#: classes up to which `class-imbalance` compares the class weights of every pair (k^2 / 2 pairs)
_MAX_PAIRED = 100


def _inverse_counts_reordered(counted: dict[int, int], weights: dict[int, float]) -> bool:
    """The weights are the classes' inverse counts (up to a common scale, each within 10%) in an
    order other than the classes': inverse counts assigned by rank of frequency (pandas'
    `value_counts()`), not by class id."""
    classes = sorted(counted)
    w = np.array([weights[c] for c in classes], float)
    inv = np.array([1.0 / counted[c] for c in classes], float)
    same_values = np.allclose(np.sort(w) / np.sort(w).sum(), np.sort(inv) / np.sort(inv).sum(), rtol=0.1, atol=0)
    return bool(same_values and not np.allclose(w / w.sum(), inv / inv.sum(), rtol=0.1, atol=0))


def _ratio_lower_bound(n_big: int, n_small: int) -> float:
    """A conservative lower bound of the largest/smallest count ratio: the counts moved 3.5
    standard deviations (Poisson, sqrt(n)) towards each other."""
    return (n_big - 3.5 * math.sqrt(n_big)) / (n_small + 3.5 * math.sqrt(n_small) + 1)


@register
class ClassImbalance(Check):
    """The largest class of the training labels far outnumbers the smallest.

    What it does:
        Counts the class labels of the sampled training batches (integer labels, 0/1 targets or
        one-hot rows; regression targets are ignored) and reports the ratio of the largest to
        the smallest observed class once `min_samples` labels were seen. The ratio is judged
        conservatively (counts moved 3.5 standard deviations towards each other), at
        `min_samples` labels, each time the labels seen double, and at the end, so a handful
        of samples cannot raise it, and it is not judged while the batches' label mixes differ
        far beyond chance (sorted data: the first batches do not show the class balance;
        `unshuffled-data` reports that). A whole epoch of training labels (at least
        `min_samples`) that holds a single class is a WARNING of its own (key `one-class`): the
        classifier has nothing to tell apart (a filter such as `y < 1` meant as `y <= 1`).
        Where the model has 3 or more class outputs and an epoch's training labels name only some
        of them, an INFO (key `unnamed-outputs`) lists the classes never seen, once so many labels
        were seen that those outputs, were they classes of the data at the uniform share, would
        all be missing by chance with probability e^-20 (20 labels per output for one output
        missing; 100 labels, `min_samples`, for 90 of a 100-unit head on 10 classes): a class
        merged away (labels scaled to [0, 1] and cast back to int) or dropped by a filter; a
        head wider than the data's classes on purpose is a choice. Labels exactly 0..K-1 under
        a wider head get a hint naming a head sized for another data set.
        Where the loss already weights the classes so that it counts the imbalance under
        `ratio` (the class weights the adapter saw, `RunInfo.class_weights`: Keras'
        `class_weight=`, the `weight=` of a Lightning module's `CrossEntropyLoss` or `NLLLoss`
        attribute, or a module buffer passed as `F.cross_entropy(..., weight=self.class_w)`,
        found by the loss's value; sklearn's 'balanced' weights count it 1:1), the finding
        stays INFO and says so: the fix it would advise is in place. Weights upside down (the
        largest class weighted up, key `weights-inverted`) or overshooting (a smaller class
        counted `overcorrected_ratio` times over a larger one, key `weights-overcorrected`) are
        WARNINGs of their own, after the first epoch. A class whose weight is
        exactly 0 while others weigh more, with 5 or more training labels in the first epoch,
        is a WARNING of its own (key `zero-weight`): the loss never counts its rows, so the
        model learns never to answer it (a hand-made class-weight dict lacking the class, read
        with `.get(c, 0)`, or Keras per-row `sample_weight` 0 for every row of a class); so is a
        class the loss skips as its `ignore_index` (torch's `CrossEntropyLoss(ignore_index=0)`,
        Keras' `ignore_class=0`, copied from padded text onto one label per sample, where 0 is
        a real class). Sequence labels, where the ignored value marks padding, are not judged.

        Whether the imbalance costs the rare class is judged at the end of the run from the
        model's own validation predictions, when the run records them (`weak-slice` or
        `noisy-labels` on; see docs/samples.md): the smallest class's recall in the last
        validation pass against the largest class's. An imbalance of at least `ratio` becomes
        a WARNING when the rare class demonstrably pays for it: its recall's 95% Wilson upper
        bound is under `max_recall` and it is below the largest class's by a one-sided
        two-proportion z-test at `alpha` (`min_val` validation samples of it at least). A rare
        class the model learns well keeps the finding INFO, with both recalls in it.

    Why it matters:
        With a 1:50 imbalance a model that always predicts the majority class is 98% accurate:
        accuracy and the loss look healthy while the minority classes are never learned.

    How to fix:
        Weight the loss by class (`CrossEntropyLoss(weight=...)`, Keras `class_weight=`),
        resample (`WeightedRandomSampler`), and judge the model by per-class recall, F1 or
        balanced accuracy instead of accuracy.

    Example:
        # y_train: 1 fraudulent transaction in 200
        train_ds = TensorDataset(X_train, y_train)
        loader = DataLoader(train_ds, batch_size=256, shuffle=True)
        loss_fn = nn.CrossEntropyLoss()
        trainer.fit(model, loader)
        # 99.5% accuracy: the model answers "not fraud" every time

    Use instead:
        # y_train: 1 fraudulent transaction in 200
        train_ds = TensorDataset(X_train, y_train)
        counts = torch.bincount(y_train)
        weight = (1.0 / counts.float())[y_train]  # each class drawn equally often
        sampler = WeightedRandomSampler(weight, num_samples=len(y_train))
        loader = DataLoader(train_ds, batch_size=256, sampler=sampler)
        loss_fn = nn.CrossEntropyLoss()
        trainer.fit(model, loader)
        # judge it by the rare class's recall or balanced accuracy, not accuracy

    Args:
        ratio: INFO at this largest/smallest ratio. Default 10, SageMaker Debugger's
            ClassImbalance `threshold_imbalance`.
        warn_ratio: WARNING at this ratio (judged on the conservative lower bound of the
            ratio, so a handful of minority labels is enough evidence). Default 20: with the
            minority under 5%, the majority-class guess alone scores over 95% accuracy and an
            unweighted loss barely sees the minority (Google's ML course calls a minority of
            1-20% moderate and under 1% extreme imbalance; with only a few minority labels the
            lower bound of an extreme, ~100:1 sample lands near 20-30).
        min_samples: labels to see before judging. Default 100.
        max_recall: WARNING when the rare class's validation recall is, with 95% confidence,
            under this. Default 0.8: the rare class missed at least one time in five.
        alpha: and significantly below the largest class's recall at this level. Default 0.01.
        min_val: validation samples of the rare class needed to judge its recall. Default 10.
        inverted_ratio: where the class weights the adapter saw (`RunInfo.class_weights`:
            Keras' `class_weight=`, the `weight=` of a Lightning module's `CrossEntropyLoss` or
            `NLLLoss` attribute, or a buffer passed to `F.cross_entropy(weight=)`) weight the
            largest class over the smallest at least as many times as it outnumbers it, and it
            outnumbers it at least this many times, the weights are upside down: a WARNING (key
            `weights-inverted`). So is any other pair of classes so weighted (among up to 100
            classes): weights out of class order (inverse counts in frequency order, pandas'
            `value_counts()` without `.sort_index()`, batch 35's b02) can favour a middle class
            over a rarer one while the extremes look balanced; the hint says so where the weights
            are the inverse counts in another order. Every balancing scheme weights a class down as it grows
            (sklearn's "balanced", w = n / (k n_c), weights
            the smallest class over the largest exactly by the ratio); its inverse doubles the
            imbalance in the loss. "As many times" allows for the counts' sampling error (the
            ratio's lower bound, counts moved 3.5 sd towards each other, as for the imbalance
            itself: weights computed from the whole data set before the split, or stored in
            float32, count), never below this ratio. Default 2: a class at least twice another.
        overcorrected_ratio: the other way round, where the class weights favour a class that
            is smaller in the data so much that the loss counts it over a larger class at least
            this many times (weight x count, with the counts moved 3.5 sd towards each other),
            the weighting has made an imbalance of its own, the other way: a WARNING (key
            `weights-overcorrected`; a weight copied from data far more skewed, `{0: 50, 1: 1}`
            on a 1.7:1 split). Balancing schemes count every class alike (sklearn's "balanced":
            1:1). Default 10, `ratio`'s, SageMaker Debugger's ClassImbalance threshold, here
            for the loss's weighted counts.
    """

    id = "class-imbalance"
    family = "data"
    severity = Severity.INFO
    reads_probe = True  # the labels only
    #: label counts are exact over a full pass; a sample of batches misses rare classes
    consumes = frozenset({Signal.EVERY_BATCH})
    #: a loader that repeats its first batch shows only that batch's classes
    explained_by = frozenset({"train-val-overlap:one-batch"})

    def __init__(
        self,
        ratio: float = 10.0,
        warn_ratio: float = 20.0,
        min_samples: int = 100,
        max_classes: int = 1000,
        max_recall: float = 0.8,
        alpha: float = 0.01,
        min_val: int = 10,
        inverted_ratio: float = 2.0,
        overcorrected_ratio: float = 10.0,
    ) -> None:
        self.inverted_ratio = inverted_ratio
        self.overcorrected_ratio = overcorrected_ratio
        self.max_recall = max_recall
        self.alpha = alpha
        self.min_val = min_val
        self.ratio = ratio
        self.warn_ratio = warn_ratio
        self.min_samples = min_samples
        self.max_classes = max_classes
        super().__init__()

    def reset(self) -> None:
        self._labels = _LabelHistory(max_classes=self.max_classes)
        self._judged_at = 0
        self._last: tuple[int | None, int | None] = (None, None)
        self._one_class_told = False
        self._outputs_told = False
        self._weights_judged = False
        self._overcorrection_judged = False
        self._zeros_judged = False

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        if batch.split != "train":
            return ()
        counted = batch.class_counts(run, self.max_classes)  # shared with the other label counters
        if counted is not None:
            self._labels.add_counts(*counted)
        elif class_labels(batch.targets, run, self.max_classes) is None:
            return ()  # no class labels (counted: none left, as every label ignored, still counts here)
        self._last = (batch.step, batch.epoch)
        if self._labels.samples >= 2 * self._judged_at:  # at min_samples, then each doubling
            return self._judge(run)
        return ()

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return self._judge(run, run.samples.get("val") if run.samples is not None else None)

    def on_epoch(self, run: RunState) -> Iterable[Finding]:
        return [
            *self._zero_weighted(run),
            *self._inverted_weights(run),
            *self._overcorrected_weights(run),
            *self._one_class(run),
            *self._unnamed_outputs(run),
        ]

    def _zero_weighted(self, run: RunState) -> Iterable[Finding]:
        """Once, at the end of the first epoch (a full pass counted): a class whose every
        training label weighs exactly 0 while other classes weigh more (a class-weight dict
        that lacks it, `.get(c, 0)`), or is the loss's `ignore_index` (`RunInfo.ignored_class`,
        meant for padding, copied onto one label per sample where it is a real class): the loss
        never sees its rows, so the model learns never to answer it. Exact: no noise to allow for."""
        weights, history, ignored = run.info.class_weights or {}, self._labels, run.info.ignored_class
        if self._zeros_judged or not (weights or ignored is not None) or history.overflow:
            return
        if history.samples < self.min_samples:
            return
        self._zeros_judged = True
        skipped = {c: 0.0 for c in history.totals if c == ignored}
        weights = {**{c: 1.0 for c in history.totals}, **weights, **skipped} if ignored is not None else weights
        zero = sorted(c for c, n in history.totals.items() if weights.get(c) == 0 and n >= _MIN_ZERO_WEIGHTED)
        weighted = sum(1 for c in history.totals if (weights.get(c) or 0) > 0)
        if not zero or weighted < 1:
            return
        rows = sum(history.totals[c] for c in zero)
        named = ", ".join(str(c) for c in zero[:10]) + (" ..." if len(zero) > 10 else "")
        some = "class" if len(zero) == 1 else "classes"
        by_index = ignored in zero
        how = (
            f"{'is' if len(zero) == 1 else 'include'} the loss's ignore_index={ignored}"
            if by_index
            else ("weighs 0" if len(zero) == 1 else "weigh 0")
        )
        evidence = {
            "zero_weight_classes": zero[:20],
            "zero_weight_rows": rows,
            "samples": history.samples,
        }
        if run.info.class_weights:
            evidence["class_weights"] = {
                int(c): float(f"{w:.6g}") for c, w in sorted(run.info.class_weights.items())[:20]
            }  # float32: 1.2
        if by_index:
            evidence["ignore_index"] = ignored
        yield self.finding(
            f"Every training label of {some} {named} ({rows} of {history.samples} in the first epoch) {how}: "
            f"the loss never counts those rows, so the model is trained only to keep {some} {named} low and "
            "learns never to answer it, while validation still scores it.",
            evidence=evidence,
            hint=(
                f"ignore_index marks padding or unlabelled targets and must be a value no class uses: class {ignored} "
                "is a real label here. Remove it (torch's default is -100) or mark the unlabelled rows with -100."
                if by_index
                else "Give every class a weight above 0: a class-weight dict built by hand may lack a class "
                "(`weights.get(c, 0)`); sklearn's compute_class_weight('balanced', classes=np.unique(y), y=y) covers "
                "them all. If the class is meant to be left out, drop its rows and its output unit instead."
            ),
            step=self._last[0],
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="zero-weight",
        )

    def _weighted_counts(self, run: RunState) -> dict[int, int] | None:
        """The first pass's label counts of the classes given a positive class weight, once the
        pass has counted `min_samples` labels without overflowing; None before then, or where the
        run has no class weights (`_inverted_weights` and `_overcorrected_weights` judge them)."""
        weights, history = run.info.class_weights, self._labels
        if not weights or history.overflow or history.samples < self.min_samples:
            return None
        return {c: n for c, n in history.totals.items() if c in weights and weights[c] > 0}

    def _balanced_weight(self, c: int) -> float:
        """Class `c`'s weight by sklearn's compute_class_weight('balanced'): n / (k n_c)."""
        history = self._labels
        return history.samples / (len(history.totals) * history.totals[c])

    def _inverted_weights(self, run: RunState) -> Iterable[Finding]:
        """Once, at the end of the first epoch (a full pass counted): class weights that weight
        the largest class over the smallest by at least their count ratio."""
        if self._weights_judged or (counted := self._weighted_counts(run)) is None:
            return
        self._weights_judged = True
        if len(counted) < 2:
            return
        weights = run.info.class_weights
        pair = self._inverted_pair(counted, weights)
        if pair is None:
            return  # balanced, or a mild cost choice
        big, small = pair
        ratio, favour = counted[big] / counted[small], weights[big] / weights[small]
        hint = (
            f"Weight the rare class up, as sklearn's compute_class_weight('balanced', ...) does (w = n / (k n_c): "
            f"here class {big} {self._balanced_weight(big):.3g}, class {small} {self._balanced_weight(small):.3g})."
        )
        if _inverse_counts_reordered(counted, weights):
            hint += (
                " The weights are these classes' inverse counts in another order: pandas' value_counts() is "
                "sorted by frequency, not by class id (add .sort_index(), or use np.bincount(y))."
            )
        yield self.finding(
            f"The class weights are upside down: class {big} ({counted[big]} labels) is weighted "
            f"{weights[big]:g} and class {small} ({counted[small]}) {weights[small]:g}, so the loss counts the "
            f"imbalance {ratio:.0f}:1 as {ratio * favour:.0f}:1; the model learns to answer class {big}, and "
            "a training loss so weighted is not comparable with the unweighted validation loss.",
            evidence={
                "largest_class": big,
                "largest_count": counted[big],
                "largest_weight": weights[big],
                "smallest_class": small,
                "smallest_count": counted[small],
                "smallest_weight": weights[small],
                "ratio": ratio,
                "weighted_ratio": ratio * favour,
            },
            hint=hint,
            step=self._last[0],
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="weights-inverted",
        )

    def _inverted_pair(self, counted: dict[int, int], weights: dict[int, float]) -> tuple[int, int] | None:
        """The (larger, smaller) pair of classes whose weights favour the larger one by at least
        their count ratio (conservatively: the ratio's lower bound, never under
        `inverted_ratio`): the largest and smallest classes where they are such a pair, else,
        among up to `_MAX_PAIRED` classes, the pair the loss counts most unevenly (weights out of
        class order, such as inverse counts in frequency order, can favour a middle class over
        a rarer one while the extremes look balanced). None where no pair is inverted."""

        def inverted(a: int, b: int) -> bool:
            # weights computed from other counts (the whole data set before the split, float32
            # `counts / counts.min()`) match this pass's ratio within the counts' sampling error
            least = max(_ratio_lower_bound(counted[a], counted[b]), self.inverted_ratio)
            return counted[a] / counted[b] >= self.inverted_ratio and weights[a] / weights[b] >= least

        big, small = max(counted, key=counted.get), min(counted, key=counted.get)
        if inverted(big, small):
            return big, small
        if len(counted) > _MAX_PAIRED:
            return None
        pairs = [(a, b) for a in counted for b in counted if counted[a] > counted[b] and inverted(a, b)]
        return max(pairs, key=lambda p: weights[p[0]] * counted[p[0]] / (weights[p[1]] * counted[p[1]]), default=None)

    def _overcorrected_weights(self, run: RunState) -> Iterable[Finding]:
        """Once, at the end of the first epoch (a full pass counted): class weights under which
        the loss counts a class that is smaller in the data over a larger one at least
        `overcorrected_ratio` times (weight x count, conservatively): the weighting made an
        imbalance of its own, the other way round."""
        if self._overcorrection_judged or (counted := self._weighted_counts(run)) is None:
            return
        self._overcorrection_judged = True
        if len(counted) < 2:
            return
        weights = run.info.class_weights
        loudest = max(counted, key=lambda c: weights[c] * counted[c])
        quietest = min(counted, key=lambda c: weights[c] * counted[c])
        if counted[loudest] >= counted[quietest]:
            return  # the loss's order is the data's: weighted down, not reversed
        n_small, n_big = counted[loudest], counted[quietest]
        # the smaller count moved down and the larger up by 3.5 sd (Poisson), as for the ratio itself
        counts_low = max(n_small - 3.5 * math.sqrt(n_small), 0.0) / (n_big + 3.5 * math.sqrt(n_big) + 1)
        favour = weights[loudest] / weights[quietest]
        if favour * counts_low < self.overcorrected_ratio:
            return  # balanced, or a cost choice short of a new imbalance
        weighted = favour * n_small / n_big
        fair_loud, fair_quiet = self._balanced_weight(loudest), self._balanced_weight(quietest)
        yield self.finding(
            f"The class weights overshoot: class {loudest} ({n_small} labels) is weighted {weights[loudest]:g} and "
            f"class {quietest} ({n_big}) {weights[quietest]:g}, so the loss counts class {loudest} {weighted:.0f} "
            f"times over class {quietest}, where the data hold it {n_big / n_small:.1f} times less: the weighting "
            f"made a {weighted:.0f}:1 imbalance the other way, and the model learns to answer class {loudest}.",
            evidence={
                "favoured_class": loudest,
                "favoured_count": n_small,
                "favoured_weight": weights[loudest],
                "other_class": quietest,
                "other_count": n_big,
                "other_weight": weights[quietest],
                "count_ratio": n_big / n_small,
                "weighted_ratio": weighted,
            },
            hint=f"Weight each class by n / (k n_c), as sklearn's compute_class_weight('balanced', ...) does "
            f"(here class {loudest} {fair_loud:.3g}, class {quietest} {fair_quiet:.3g}); a weight "
            "taken from another data set's imbalance does not fit this one.",
            step=self._last[0],
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="weights-overcorrected",
        )

    def _one_class(self, run: RunState) -> Iterable[Finding]:
        """A whole epoch's training labels were one class (the first pass counts every batch, so
        sorted data has shown its other classes by then): the classifier has nothing to tell
        apart and learns to answer that class, whatever the input."""
        history = self._labels
        if self._one_class_told or history.overflow or len(history.totals) != 1 or history.samples < self.min_samples:
            return ()
        self._one_class_told = True
        ((only, n),) = history.totals.items()
        yield self.finding(
            f"Every one of the {n} training labels seen in epoch {run.epoch} is class {only}: with one class "
            "there is nothing to learn, and the model scores perfectly by answering it whatever the input.",
            evidence={"class": only, "samples": n, "classes": 1},
            hint="Check the filter or split that built the training labels (a `y < 1` meant as `y <= 1`, a "
            "stratified split on the wrong column, labels overwritten): a classifier needs at least two classes.",
            epoch=run.epoch,
            severity=Severity.WARNING,
            key="one-class",
        )

    def _unnamed_outputs(self, run: RunState) -> Iterable[Finding]:
        """INFO: a whole epoch's training labels name fewer classes than the model has outputs
        (3 or more), every label one of them: a class merged away (labels scaled to [0, 1] and
        cast back to int) or a split without it. INFO only: a head wider than the classes of
        this data set (a 10-unit head trained on digits 0-4 first) is a choice."""
        history, classes = self._labels, run.info.num_classes
        if self._outputs_told or history.overflow or classes is None or classes < _MIN_HEAD_CLASSES:
            return ()
        seen = sorted(history.totals)
        if not 2 <= len(seen) < classes or seen[0] < 0 or seen[-1] >= classes:
            return ()
        n = history.samples
        missing = [c for c in range(classes) if c not in history.totals]
        if n < max(self.min_samples, _labels_to_miss(len(missing), classes)):
            return ()
        self._outputs_told = True
        shown = ", ".join(str(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
        hint = (
            "If the data has those classes, look at how the labels were made: a cast to int after scaling "
            "(0.5 becomes 0), a filter or split that dropped them, a mapping that merged two classes. A head "
            "wider than this data's classes on purpose needs no fix."
        )
        if seen == list(range(len(seen))):  # labels 0..K-1, the outputs past them unnamed
            hint = (
                f"The labels are 0..{len(seen) - 1} and the outputs past them are never named: a head sized for "
                f"another data set's {classes} classes (a num_classes copied from another script)? Give the last "
                f"layer {len(seen)} outputs. " + hint
            )
        yield self.finding(
            f"The model has {classes} class outputs, but the {n} training labels seen by epoch {run.epoch} name "
            f"only {len(seen)} of them: class {shown} never appears, so its output is only ever trained to be low.",
            evidence={"num_classes": classes, "classes_seen": seen[:20], "missing": missing[:20], "samples": n},
            hint=hint,
            epoch=run.epoch,
            severity=Severity.INFO,
            key="unnamed-outputs",
        )

    def _judge(self, run: RunState, val: SplitSamples | None = None) -> Iterable[Finding]:
        history = self._labels
        n = history.samples
        self._judged_at = max(n, self.min_samples // 2)
        if history.overflow or len(history.totals) < 2 or n < self.min_samples:
            return
        if history.heterogeneity_z() > 5.0:
            return  # batches are not random draws: the counts do not show the class balance
        big = max(history.totals, key=history.totals.get)
        small = min(history.totals, key=history.totals.get)
        n_big, n_small = history.totals[big], history.totals[small]
        # the smallest of several class counts is an extreme order statistic, and the verdict is
        # revisited as the counts grow
        conservative = _ratio_lower_bound(n_big, n_small)
        if conservative < self.ratio:
            return
        severity = Severity.WARNING if conservative >= self.warn_ratio else Severity.INFO
        raw = n_big / n_small
        step, epoch = self._last
        weighted = self._weighted_ratio(run, big, small, raw)
        if weighted is not None:
            severity = Severity.INFO  # the loss already balances it: the advice is taken
        cost = self._cost(val, small, big)
        if cost is not None and cost["hurts"]:
            severity = Severity.WARNING
        yield self.finding(
            f"Training labels are imbalanced {raw:.0f}:1: class {big} has {n_big} of the "
            f"{n} labels seen, class {small} only {n_small}."
            + _weighted_text(run, weighted, small, big)
            + _cost_text(cost, small, big),
            evidence={
                "ratio": raw,
                "ratio_lower_bound": conservative,
                "largest_class": big,
                "largest_count": n_big,
                "smallest_class": small,
                "smallest_count": n_small,
                "classes": len(history.totals),
                "samples": n,
                "threshold": self.ratio,
                **({} if weighted is None else {"weighted_ratio": weighted}),
                **({} if cost is None else {k: v for k, v in cost.items() if k != "hurts"}),
            },
            hint=(
                "Weight the loss by class (CrossEntropyLoss(weight=...), class_weight= in "
                "Keras) or resample (WeightedRandomSampler), and track per-class recall, F1 or "
                "balanced accuracy rather than accuracy."
                if weighted is None
                else "Nothing to change in the loss; track per-class recall, F1 or balanced accuracy rather than "
                "accuracy, which the imbalance still flatters."
            )
            + ("" if cost is not None else " Turn on weak-slice to see whether the imbalance costs the rare class."),
            step=step,
            epoch=epoch,
            severity=severity,
            key="imbalance" if cost is None else "imbalance-cost",  # the verdict on its cost: a finding of its own
        )

    def _weighted_ratio(self, run: RunState, big: int, small: int, raw: float) -> float | None:
        """The imbalance as the loss counts it, where the class weights the adapter saw
        (`RunInfo.class_weights`) bring it under `ratio`: the loss already balances the classes
        (sklearn's 'balanced' weights make it 1:1), so the advice to weight it is taken. None
        otherwise, and where the weights are unknown (a weight passed inside the step, a focal
        loss, a sampler: a sampler balances the labels counted here)."""
        weights = run.info.class_weights
        if not weights or weights.get(big, 0) <= 0 or weights.get(small, 0) <= 0:
            return None
        weighted = raw * weights[big] / weights[small]
        return weighted if weighted < self.ratio else None

    def _cost(self, val: SplitSamples | None, small: int, big: int) -> dict | None:
        """The rare and the largest class's recall in the last validation pass, and whether
        the rare one demonstrably pays for the imbalance; None without enough of them."""
        if val is None or not val.size:
            return None
        last = val.column("last_epoch")
        latest = last == last.max()
        labels = val.column("labels")[latest].astype(np.int64)
        right = val.column("last_pred")[latest] == labels
        n_small, n_big = int((labels == small).sum()), int((labels == big).sum())
        if n_small < self.min_val or n_big < self.min_val:
            return None  # too few to judge a recall
        k_small, k_big = int(right[labels == small].sum()), int(right[labels == big].sum())
        _, upper = wilson_interval(k_small, n_small)
        _, p = worse_than_rest(n_small - k_small, n_small, n_big - k_big, n_big)
        return {
            "minority_val_recall": k_small / n_small,
            "minority_val_samples": n_small,
            "minority_recall_high": upper,
            "majority_val_recall": k_big / n_big,
            "recall_gap_p": p,
            "hurts": upper < self.max_recall and p < self.alpha,
        }


def _weighted_text(run: RunState, weighted: float | None, small: int, big: int) -> str:
    if weighted is None:
        return ""
    weights = run.info.class_weights or {}
    return (
        f" The loss's class weights (class {small} {weights[small]:.3g}, class {big} {weights[big]:.3g}) "
        f"count them {weighted:.1f}:1, so the rare class is not drowned out of the loss."
    )


def _cost_text(cost: dict | None, small: int, big: int) -> str:
    if cost is None:
        return ""
    recalls = (
        f"class {small}'s validation recall is {cost['minority_val_recall']:.0%} "
        f"({cost['minority_val_samples']} samples) against {cost['majority_val_recall']:.0%} for class {big}"
    )
    if cost["hurts"]:
        return f" It costs the rare class: {recalls}."
    return f" It does not visibly cost the rare class: {recalls}."


@register
class UnshuffledData(Check):
    """Training batches are far less label-diverse than random batches would be: the training
    data is sorted or not shuffled.

    What it does:
        For each sampled training batch, measures the label entropy (and distinct classes) and
        compares their mean over the batches with what random batches of the same size drawn
        from the label distribution seen so far would show (simulated multinomial draws, so the
        expectation and its noise are exact for any class balance). Warns once at least
        `min_batches` batches are in, when the batches are below `max_diversity_ratio` of the
        expected diversity and `z` standard errors below it. Also warns when the training labels
        seen so far hold less than `max_diversity_ratio` of the distinct classes that as many
        random draws from the validation labels would show, `z` standard deviations short (the
        pre-flight case: a sorted training set starts with one class). Only the training split is judged:
        validation data need not be shuffled.

    Why it matters:
        Batches of one class pull the weights towards that class, then the next class undoes it:
        the loss swings, the model forgets, and the final weights reflect the last classes seen.
        Data sets read from sorted files (MNIST by digit, a table sorted by label) train badly
        without a shuffle.

    How to fix:
        Shuffle every epoch: `DataLoader(..., shuffle=True)`, `model.fit(..., shuffle=True)`
        with arrays, or `dataset.shuffle(buffer)` with a buffer larger than the longest run of
        one label. If batches are grouped by class on purpose (a P x K sampler for metric
        learning), suppress this check.

    Example:
        tf = transforms.Compose([transforms.Resize((224, 224)),
                                 transforms.ToTensor()])
        # ImageFolder lists the samples class folder by class folder
        train_ds = datasets.ImageFolder("data/train", transform=tf)
        val_ds = datasets.ImageFolder("data/val", transform=tf)
        train_loader = DataLoader(train_ds, batch_size=64)  # shuffle=False
        val_loader = DataLoader(val_ds, batch_size=64)
        trainer.fit(model, train_loader, val_loader)

    Use instead:
        tf = transforms.Compose([transforms.Resize((224, 224)),
                                 transforms.ToTensor()])
        train_ds = datasets.ImageFolder("data/train", transform=tf)
        val_ds = datasets.ImageFolder("data/val", transform=tf)
        # a new order every epoch; validation needs none
        train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
        val_loader = DataLoader(val_ds, batch_size=64)
        trainer.fit(model, train_loader, val_loader)

    Args:
        min_batches: training batches needed before judging. Default 3.
        max_diversity_ratio: observed / expected mean label entropy must be below this. Default
            0.5: shuffled data sits at ~1.0 whatever the class balance.
        z: standard errors below the expectation required. Default 5.
        max_classes_per_sorted_batch: the comparison with the validation labels (used when the
            first batches are too uniform to judge on their own) applies only while training
            batches hold at most this many classes on average. Default 1.5: sorted data holds
            one class per batch, two where a class boundary falls inside a batch.
    """

    id = "unshuffled-data"
    family = "data"
    severity = Severity.WARNING

    def __init__(
        self,
        min_batches: int = 3,
        max_diversity_ratio: float = 0.5,
        z: float = 5.0,
        max_classes: int = 1000,
        simulations: int = 400,
        max_classes_per_sorted_batch: float = 1.5,
    ) -> None:
        self.min_batches = min_batches
        self.max_classes_per_sorted_batch = max_classes_per_sorted_batch
        self.max_diversity_ratio = max_diversity_ratio
        self.z = z
        self.max_classes = max_classes
        self.simulations = simulations
        super().__init__()

    def reset(self) -> None:
        self._train = _LabelHistory(max_classes=self.max_classes)
        self._val: dict[int, int] = {}
        self._train_batches = 0
        self._last: tuple[int | None, int | None] = (None, None)
        #: the training batches at the last judgement whose own-mix test found nothing: that test
        #: reads the training labels alone (its draws seeded), so until more come it would find
        #: nothing again (the end's judgement after validation batches: the validation test alone)
        self._mix_clear_at = -1

    def on_batch(self, batch: BatchObservation, run: RunState) -> Iterable[Finding]:
        counted = batch.class_counts(run, self.max_classes)  # shared with the other label counters
        if counted is None:
            return ()
        if batch.split == "val":
            if len(self._val) <= self.max_classes:
                for v, c in zip(*(a.tolist() for a in counted)):
                    self._val[v] = self._val.get(v, 0) + c
            return ()  # judged with the next training batch due, and at the end
        self._train.add_counts(*counted)
        self._train_batches += 1
        self._last = (batch.step, batch.epoch)
        return self._judge() if self._due() else ()

    def _due(self) -> bool:
        """Judged at `min_batches` training batches, then each time their number doubles (and at
        the end): the simulation behind a verdict costs about a millisecond."""
        n = self._train_batches
        return n == self.min_batches or (n > self.min_batches and n & (n - 1) == 0)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        return self._judge(run.samples.get("val") if run.samples is not None else None)

    def _judge(self, val: SplitSamples | None = None) -> Iterable[Finding]:
        history = self._train
        if history.overflow or len(history.batches) < self.min_batches:
            return
        found = None
        if self._mix_clear_at != self._train_batches:
            found = self._against_own_mix(history)
            if found is None:
                self._mix_clear_at = self._train_batches
        if found is None:
            found = self._against_validation(history)
        if found is not None:
            yield found

    def _against_own_mix(self, history: _LabelHistory) -> Finding | None:
        classes, table = history.table()
        sizes = table.sum(axis=1)
        size = int(np.median(sizes))
        table = table[sizes >= max(2, size // 2)]  # a short last batch is naturally less diverse
        if len(table) < self.min_batches or len(classes) < 2:
            return None
        observed = _entropy(table)
        mean = float(observed.mean())
        # no batch of `size` labels over these classes holds more than log(min(size, classes))
        # nats, so neither does the simulated mean: batches above that share of it are diverse
        # whatever the draws, and the draws (two thirds of a first epoch's cost of this check on
        # digits) are skipped; the margin covers the sums' rounding
        if mean > self.max_diversity_ratio * math.log(min(size, len(classes))) * (1 + 1e-9):
            return None
        p = np.array([history.totals[c] for c in classes], dtype=np.float64)
        p /= p.sum()
        rng = np.random.default_rng(0)
        draws = rng.multinomial(size, p, size=self.simulations)
        expected = _entropy(draws)
        mu, sd = float(expected.mean()), float(expected.std())
        if mu <= 0:
            return None
        z = (mu - mean) / max(sd / math.sqrt(len(observed)), 1e-12)
        if mean > self.max_diversity_ratio * mu or z < self.z:
            return None
        distinct = float((table > 0).sum(axis=1).mean())
        expected_distinct = float((draws > 0).sum(axis=1).mean())
        step, epoch = self._last
        return self.finding(
            f"Training batches hold {distinct:.1f} classes on average where random batches of "
            f"{size} drawn from the same labels ({len(classes)} classes in the {len(observed)} batches sampled so "
            f"far) would hold "
            f"{expected_distinct:.1f}: the training data looks sorted or unshuffled.",
            evidence={
                "batches": len(observed),
                "batch_size": size,
                "mean_classes_per_batch": distinct,
                "expected_classes_per_batch": expected_distinct,
                "mean_label_entropy": mean,
                "expected_label_entropy": mu,
                "z": z,
                "classes": len(classes),
            },
            hint="Shuffle the training data every epoch: DataLoader(..., shuffle=True), "
            "model.fit(..., shuffle=True), or dataset.shuffle(buffer) with a buffer longer "
            "than the longest run of one label; suppress 'unshuffled-data' if batches are "
            "grouped by class on purpose.",
            step=step,
            epoch=epoch,
            key="train",
        )

    def _against_validation(self, history: _LabelHistory) -> Finding | None:
        val_total = sum(self._val.values())
        if len(self._val) < 2 or val_total == 0:
            return None
        seen = len(history.totals)
        n = history.samples
        # Sorted data shows one class per batch (two where a boundary falls inside one); a
        # shuffled but imbalanced training set mixes its few classes within batches, and its
        # label mix differing from validation's is not this check's business.
        _, table = history.table()
        if float((table > 0).sum(axis=1).mean()) > self.max_classes_per_sorted_batch:
            return None
        # distinct classes that n random draws from the validation label mix would show
        p = np.array(list(self._val.values()), dtype=np.float64) / val_total
        draws = np.random.default_rng(0).multinomial(n, p, size=self.simulations)
        distinct = (draws > 0).sum(axis=1)
        mu, sd = float(distinct.mean()), float(distinct.std())
        z = (mu - seen) / max(sd, 0.5)
        if seen > self.max_diversity_ratio * mu or z < self.z:
            return None
        step, epoch = self._last
        return self.finding(
            f"The first {n} training labels hold only {seen} class{'es' if seen != 1 else ''} where random draws from "
            f"the validation labels would show {mu:.1f}: the training data looks sorted by "
            f"label (or its label mix differs from validation).",
            evidence={
                "batches": len(history.batches),
                "train_samples": n,
                "train_classes": sorted(history.totals)[:20],
                "val_classes": len(self._val),
                "expected_classes": mu,
                "z": z,
            },
            hint="Shuffle the training data (DataLoader(..., shuffle=True), "
            "model.fit(..., shuffle=True)); if the training split really lacks these "
            "classes, re-split the data with stratification.",
            step=step,
            epoch=epoch,
            key="train",
        )
