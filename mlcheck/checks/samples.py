"""Per-sample and per-slice checks: which samples and which slices of the data hurt the model.

Both read the per-sample outputs the callbacks capture from the forward passes the model already
makes (`Signal.SAMPLE_OUTPUTS`: true-class probability and prediction per sample and epoch, see
`mlcheck.samples`); no extra training pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcheck.checks.base import Check, Signal, register
from mlcheck.findings import Finding, Severity
from mlcheck.samples import SplitSamples, segment, wilson_interval

if TYPE_CHECKING:
    from mlcheck.run import RunState
    from mlcheck.samples import SampleOutputs, SampleStore

#: Average share of wrong labels Northcutt et al. ("Pervasive Label Errors in Test Sets", NeurIPS
#: 2021) found across 10 widely used, curated benchmark test sets (0.15% MNIST to 10% QuickDraw):
#: the noise level of clean real data. More than this, with confidence, is worth a WARNING.
CLEAN_DATA_NOISE = 0.033
#: Epochs of per-sample history `noisy-labels` keeps (2 bytes per sample each): the early epochs,
#: before a network memorises the wrong labels, are what it reads (Arpit et al. 2017, "A Closer
#: Look at Memorization": networks fit the clean samples first, the noisy ones later).
HISTORY_EPOCHS = 32
#: The validation accuracy has reached its plateau at the first epoch within this many standard
#: errors of its best: with 2% wrong labels on MNIST 5k it crept up by 0.1-0.3 points an epoch
#: for 15 epochs after the model had learnt most wrong labels (seed 1: best at epoch 10, plateau
#: at 4); a whole standard error ends the window early on digits, where memorisation is slow.
PLATEAU_SE = 0.5
#: uint8 level of a probability in that history (step 1/254); `_UNSEEN` marks an epoch in which
#: the sample did not come by.
_HISTORY_LEVELS = 254
_UNSEEN = 255
#: uint8 likeliest other class not known (none given, or a class index of 255 or more)
_NO_CLASS = 255


@register
class NoisyLabels(Check):
    """Training samples whose given label the run itself contradicts: probably mislabelled.

    What it does:
        Follows every training sample through the run (Dataset Cartography, Swayamdipta et
        al. 2020): per epoch, the probability the model gives the sample's given label and
        whether its prediction matches it. A sample is flagged when, over at least
        `min_epochs` epochs, its mean probability of the given label (confidence) stays under
        `max_confidence` and the model predicted that label in under `max_correctness` of the
        epochs: the "hard to learn" corner of the cartography map, where wrong labels gather.
        A network learns the clean samples first and the wrong labels later, by heart (Arpit et
        al. 2017; the idea behind the area under the margin of Pleiss et al. 2020 and the
        learning-time statistics of Toneva et al. 2019), so on a run that memorises them the
        whole-run averages no longer tell them apart. The check therefore also keeps, per
        sample and epoch for the first `history_epochs` epochs, the probability of its label
        and that of its likeliest other class (1 byte each, and the class, 1 byte per sample),
        and, on a run with validation, judges the epochs before memorisation instead: those up
        to the one after the validation accuracy reached its plateau (from then on the model
        gains on its training labels, not on unseen data), the first epoch left out (the model
        learns from scratch in it). Over those epochs, the outputs of a sample not yet learnt
        by heart are near out-of-sample, and a sample is flagged when, on average, the
        probability of its label is under `early_share` of the average its class's samples
        get, or confident learning's test (Northcutt et al. 2021) holds: the probability of
        its likeliest other class j beats that of its label and reaches `other_share` of the
        average probability class j's own samples get (the per-class threshold t_j). Under
        class-conditional noise (the wrong labels of one class all given to another) the model
        learns the flip too, and the probability of a wrong label stays half-plausible, above
        a share of its class's average (itself pulled down by the wrong labels in it); the
        evidence for the true class is what stands out. Runs without validation are judged on
        the whole run only (so is a finished run's `samples.csv`, which holds no per-epoch
        history). The estimated noise rate is the flagged share with
        its 95% Wilson interval; it is a WARNING when that interval lies above the noise of
        clean real data and the model fits the other samples, else INFO; judged at the end of
        the run (a mid-run judgement mixes in the learning phase, where every sample has a low
        confidence). At the end of the run, validation samples are judged the confident-learning way (Northcutt et al.
        2021): out-of-sample predictions that contradict the given label with a probability of
        it under the average the model gives that class's samples. The full ranked list is
        written to `<log_dir>/mlcheck/samples.csv`.

    Why it matters:
        Wrong labels teach the model wrong answers, cap its accuracy and, in the validation
        set, make the metric lie. Curated benchmarks hold 3.3% wrong labels on average;
        scraped or crowd-sourced data far more.

    How to fix:
        Look at the worst ids in `samples.csv` (given vs predicted label) and relabel or drop
        those that are wrong; with many, use a noise-robust loss (label smoothing, a
        generalized cross-entropy) or clean the data with cleanlab.

    Example:
        # labels from a quick crowd-sourcing round, never checked
        trainer.fit(model, DataLoader(TensorDataset(x, y_crowd), shuffle=True))

    Use instead:
        trainer.fit(model, DataLoader(TensorDataset(x, y_crowd), shuffle=True))
        # relabel the flagged ids (see <log_dir>/mlcheck/samples.csv), then train again
        flagged = pandas.read_csv("logs/mlcheck/samples.csv").query("flagged == 1")

    Args:
        min_epochs: epochs a sample must be seen before it is judged. Default 3: the
            cartography statistics need a few epochs to separate.
        max_confidence: flag under this mean probability of the given label. Default 0.5:
            the model prefers another class on average.
        max_correctness: and when predicted right in under this share of epochs. Default 0.5.
        warn_rate: WARNING when the lower end of the noise rate's 95% interval exceeds this.
            Default 0.033, the average label-error rate of 10 curated benchmark test sets
            (Northcutt et al. 2021): more is more noise than clean real data shows.
        min_samples: training samples to see before judging. Default 200.
        min_fit: a WARNING needs the model to predict this share of the unflagged samples right
            (else it is underfitting, and low confidence says nothing about the labels).
            Default 0.95.
        warn_epochs: a WARNING needs samples seen in this many epochs. Default 5: in shorter runs
            the samples a healthy model has not learnt yet look the same as mislabelled ones
            (Dataset Cartography judges training dynamics over a full run).
        learned_share: a WARNING needs the model to have learnt the other samples over the run:
            their mean probability of their label (confidence) must cover this share of the
            way from chance (1 / classes) to certainty. Default 0.6 (0.64 for 10 classes,
            0.8 for 2). A model still learning (few optimizer steps, as under gradient
            accumulation, a low learning rate) is unsure of every sample, and the ones it has
            not learnt yet look mislabelled: measured on clean digits with
            `accumulate_grad_batches=4`, 15% of the samples flagged after 6 epochs, the rest at
            confidence 0.31-0.52 (0.52 after 10 epochs); trained runs, clean or noisy, 0.89-0.91.
        worst: ids named in the message. Default 5.
        early_share: flag a sample whose probability of its label over the epochs before
            memorisation is under this share of its class's average. Default 0.2, measured with
            planted noise (Lightning MLPs, seed 0; docs/benchmarks.md, section 2b): higher
            shares take in the hard clean samples (digits, 5% class-conditional noise: F1 0.92
            on the whole run alone, 0.91 at 0.2, 0.87 at 0.3; MNIST 5k, 2% symmetric: 0.78 at
            0.1, 0.69 at 0.2, 0.59 at 0.3), lower ones miss the wrong labels a class-conditional
            noise makes half-plausible (MNIST 5k, 10%: 0.48 at 0.1, 0.61 at 0.2, 0.72 at 0.3):
            those are what `other_share` finds.
        other_share: flag a sample whose likeliest other class j gets, over those epochs, at
            least this share of the average probability class j's own samples get (confident
            learning's t_j), and more than its label. Default 0.75: the early epochs are in
            sample, the wrong labels partly learnt already, so the evidence for their true class
            falls short of t_j (MNIST 5k, 5% class-conditional: half of the wrong labels under
            it); measured on planted noise (docs/benchmarks.md, section 2b, 2026-12-03): 0.5 takes
            in the samples the model is unsure of (breast_cancer, Lightning 2% class-conditional:
            F1 0.58), 1.0 leaves many wrong labels out (MNIST 5k, 2% class-conditional, seed 1:
            F1 0.47), 0.75 is within 0.05 of cleanlab or better in every setting measured.
        history_epochs: epochs of per-sample history kept, 2 bytes per sample each (and 1 per
            sample for the run); 0 judges the whole run only. Default 32: memorisation starts
            within the first epochs.
    """

    id = "noisy-labels"
    family = "samples"
    severity = Severity.INFO
    consumes = frozenset({Signal.SAMPLE_OUTPUTS})
    #: opt-in for now: on some healthy short runs it still raises warnings (see docs/samples.md)
    default = False
    #: validation labels contradicted class by class, by a model that fits its own: a mapping
    explained_by = frozenset({"label-shift:mapping-differs"})

    def __init__(
        self,
        min_epochs: int = 3,
        max_confidence: float = 0.5,
        max_correctness: float = 0.5,
        warn_rate: float = CLEAN_DATA_NOISE,
        min_samples: int = 200,
        min_fit: float = 0.95,
        warn_epochs: int = 5,
        learned_share: float = 0.6,
        worst: int = 5,
        early_share: float = 0.2,
        history_epochs: int = HISTORY_EPOCHS,
        other_share: float = 0.75,
    ) -> None:
        self.early_share = early_share
        self.other_share = other_share
        self.history_epochs = history_epochs
        self.min_fit = min_fit
        self.learned_share = learned_share
        self.warn_epochs = warn_epochs
        self.min_epochs = min_epochs
        self.max_confidence = max_confidence
        self.max_correctness = max_correctness
        self.warn_rate = warn_rate
        self.min_samples = min_samples
        self.worst = worst
        self._forget_history()  # before Check.__init__: not checkpoint state (see reset)
        super().__init__()

    def reset(self) -> None:
        # The history lines up with the rows of the run's per-sample store, which a checkpoint
        # does not hold: like the store, it starts again when a run resumes, so it is kept out
        # of `state_dict`.
        self._forget_history()

    def _forget_history(self) -> None:
        self._epoch: int | None = None  # the training epoch being recorded
        # per training epoch taken, its number and each store row's probability of its label and
        # of its likeliest other class (uint8 levels, `_UNSEEN` where it did not come by; None
        # for the first epoch, which is not judged: see `early_window`)
        self._history: list[np.ndarray | None] = []
        self._other: list[np.ndarray | None] = []
        self._history_epochs: list[int] = []
        # the same for the epoch being recorded, and each row's likeliest other class (the
        # latest known)
        self._own_now = np.empty(0, np.uint8)
        self._other_now = np.empty(0, np.uint8)
        self._other_class = np.empty(0, np.uint8)
        self._val: list[list[int]] = []  # per validation epoch: [epoch, right, seen]

    def on_samples(self, outputs: SampleOutputs, run: RunState) -> Iterable[Finding]:
        if outputs.split == "val" and outputs.epoch is not None:  # no epoch: no window to find
            right = int(np.count_nonzero(np.asarray(outputs.predicted) == np.asarray(outputs.labels)))
            epoch = int(outputs.epoch)
            if not self._val or self._val[-1][0] != epoch:
                self._val.append([epoch, 0, 0])
            self._val[-1][1] += right
            self._val[-1][2] += len(outputs.ids)
        elif outputs.split == "train":
            if self._epoch is not None and outputs.epoch != self._epoch:
                self._take_epoch()
            self._epoch = outputs.epoch
            if run.samples is not None:
                self._note(outputs, run.samples.get("train"))
        return ()

    def _note(self, outputs: SampleOutputs, train: SplitSamples | None) -> None:
        """Keeps, for the epoch being recorded, each row's probability of its label and of its
        likeliest other class, and that class (without them from the adapter: 1 - the label's
        probability and the predicted class where it is not the label, exact for two classes)."""
        if train is None or not self._history_epochs or len(self._history) >= self.history_epochs:
            return  # the first epoch is not judged (see `early_window`); or the history is full
        rows = train.rows_of(outputs)
        labels = np.asarray(outputs.labels, np.int64)
        own = np.asarray(outputs.true_prob, np.float64)
        if outputs.other_prob is not None:
            other, cls = np.asarray(outputs.other_prob, np.float64), np.asarray(outputs.other_class, np.int64)
        else:
            other = 1.0 - own
            predicted = np.asarray(outputs.predicted, np.int64)
            cls = np.where(predicted != labels, predicted, 1 - labels if int(labels.max(initial=0)) < 2 else -1)
        if len(self._own_now) < train.size:  # a new epoch, or rows new to the store
            self._own_now = _grown(self._own_now, train.size, _UNSEEN)
            self._other_now = _grown(self._other_now, train.size, _UNSEEN)
        if len(self._other_class) < train.size:
            self._other_class = _grown(self._other_class, train.size, _NO_CLASS)
        ok = rows >= 0
        self._own_now[rows[ok]] = _levels(own[ok])
        self._other_now[rows[ok]] = _levels(other[ok])
        known = ok & (cls >= 0) & (cls < _NO_CLASS)  # an unknown class leaves the last one known
        self._other_class[rows[known]] = cls[known].astype(np.uint8)

    def _take_epoch(self) -> None:
        """Adds the epoch just recorded to the history (nothing but its number for the first)."""
        if len(self._history) >= self.history_epochs or self._epoch is None:
            return  # the history is full: the epochs it holds are the early ones it is for
        first = not self._history_epochs
        self._history.append(None if first else self._own_now)
        self._other.append(None if first else self._other_now)
        self._history_epochs.append(int(self._epoch))
        self._own_now, self._other_now = np.empty(0, np.uint8), np.empty(0, np.uint8)

    def early_epochs(self) -> int:
        """How many of the epochs in the history came before memorisation: those up to the one
        after the validation accuracy reached its plateau (within `PLATEAU_SE` standard errors
        of its best; from then on the model gains on its training labels, not on unseen data:
        it learns the wrong ones by heart). 0 without validation."""
        if not self._val or not self._history:
            return 0
        accuracy = np.array([right / seen if seen else 0.0 for _, right, seen in self._val])
        best = int(np.argmax(accuracy))
        se = math.sqrt(accuracy[best] * (1 - accuracy[best]) / max(self._val[best][2], 1))
        reached = self._val[int(np.flatnonzero(accuracy >= accuracy[best] - PLATEAU_SE * se)[0])][0]
        return sum(1 for epoch in self._history_epochs if epoch <= reached + 1)

    def early_window(self) -> range:
        """The epochs of the history `noisy-labels` judges: those before memorisation
        (`early_epochs`) but the first, in which the model learns from scratch and its outputs
        say little about a sample (none is kept for it)."""
        return range(1, max(self.early_epochs(), 1))

    def early_confidence(self, size: int) -> tuple[np.ndarray, int]:
        """(each sample's mean probability of its label over the early window, NaN where never
        seen in it; how many epochs that window holds)."""
        window = self.early_window()
        return _mean_levels([self._history[e] for e in window], size), len(window)

    def early_other(self, size: int) -> np.ndarray:
        """Each sample's mean probability of its likeliest other class over the early window (NaN
        where never seen in it)."""
        return _mean_levels([self._other[e] for e in self.early_window()], size)

    def flagged_train(self, train: SplitSamples) -> tuple[np.ndarray, np.ndarray]:
        """(judged, flagged) boolean masks over the training samples. With the epochs before
        memorisation (a run with validation), over those epochs: a probability of the given
        label under `early_share` of its class's average, or confident learning's off-diagonal
        evidence (`off_diagonal`). Without them, the cartography rule over the whole run; read
        back from samples.csv, the flags the live run wrote."""
        judged = train.column("epochs") >= self.min_epochs
        early, epochs = self.early_confidence(train.size)
        if not epochs:
            if train.recorded_flags is not None:  # read back from samples.csv: what the live run flagged
                return judged, judged & train.recorded_flags
            return judged, judged & (train.confidence() < self.max_confidence) & (
                train.correctness() < self.max_correctness
            )
        labels = train.column("labels").astype(np.int64)
        known = judged & ~np.isnan(early)
        average = _class_means(labels[known], early[known], int(labels.max(initial=0)) + 1)  # per class
        flagged = known & (np.nan_to_num(early, nan=1.0) < self.early_share * average[labels])
        return judged, flagged | (known & self.off_diagonal(labels, early, self.early_other(train.size), average))

    def off_diagonal(self, labels: np.ndarray, own: np.ndarray, other: np.ndarray, average: np.ndarray) -> np.ndarray:
        """Confident learning's test (Northcutt et al. 2021), on the early window: the
        probability of a sample's likeliest other class j reaches `other_share` of the average
        probability class j's own samples get (its per-class threshold t_j, which adapts to a
        class polluted by flips) and beats the probability of the given label."""
        cls = np.full(len(labels), _NO_CLASS, np.int64)
        n = min(len(labels), len(self._other_class))
        cls[:n] = self._other_class[:n]
        known = (cls < len(average)) & ~np.isnan(other)
        threshold = np.where(known, average[np.clip(cls, 0, len(average) - 1)] * self.other_share, np.inf)
        return known & (np.nan_to_num(other) >= threshold) & (np.nan_to_num(other) > np.nan_to_num(own, nan=1.0))

    def learned_confidence(self, run: RunState, train: SplitSamples) -> float:
        """The confidence the unflagged samples need on average for a WARNING (`learned_share`
        of the way from chance to certainty)."""
        classes = run.info.num_classes or int(train.column("labels").max(initial=1)) + 1
        chance = 1.0 / max(classes, 2)
        return chance + self.learned_share * (1.0 - chance)

    @staticmethod
    def flagged_val(val: SplitSamples) -> np.ndarray:
        """Confident-learning style: the latest out-of-sample prediction contradicts the label,
        whose probability is under the class's mean self-confidence (its per-class threshold)."""
        labels = val.column("labels").astype(np.int64)
        prob = val.latest_prob()
        seen = val.column("last_epoch") >= 0
        if not seen.any():
            return seen
        sums = np.bincount(labels[seen], weights=prob[seen])
        counts = np.bincount(labels[seen])
        threshold = (sums / np.maximum(counts, 1))[labels]
        return seen & (val.column("last_pred") != labels) & (prob < threshold)

    def on_end(self, run: RunState) -> Iterable[Finding]:
        self._take_epoch()
        self._epoch = None  # taken: a second call judges the same history
        return self._judge(run, final=True)

    def _judge(self, run: RunState, *, final: bool) -> list[Finding]:
        store = run.samples
        train = store.get("train") if store is not None else None
        if train is None or train.size < self.min_samples:
            return []  # too few samples seen to estimate a rate
        judged, flagged = self.flagged_train(train)
        n, k = int(judged.sum()), int(flagged.sum())
        if n < self.min_samples:
            return []  # too few samples seen for min_epochs yet
        low, high = wilson_interval(k, n)
        rest = judged & ~flagged
        fit = float((train.column("last_pred")[rest] == train.column("labels")[rest]).mean()) if rest.any() else 0.0
        rest_confidence = float(train.confidence()[rest].mean()) if rest.any() else 0.0
        # a model that does not fit the other samples either is underfitting, not seeing noise;
        # nor is one that learnt them only lately and unsurely (still learning: its unlearnt
        # samples look mislabelled); and a short run cannot tell the two apart
        seen = int(train.column("epochs")[judged].max()) if n else 0
        learned = rest_confidence >= self.learned_confidence(run, train)
        warn = low > self.warn_rate and fit >= self.min_fit and learned and seen >= self.warn_epochs
        if not warn and not (final and k):
            return []
        order = np.flatnonzero(flagged)[np.argsort(train.confidence()[flagged], kind="stable")]
        worst = [_describe(train, int(i)) for i in order[: self.worst]]
        val = store.get("val")
        val_flags = int(self.flagged_val(val).sum()) if val is not None and final else None
        rate = k / n
        message = (
            f"{k} of {n} training samples ({rate:.1%}, 95% interval {low:.1%}-{high:.1%}) look mislabelled: "
            f"the model kept contradicting their labels over the epochs"
            + (f" (worst: {'; '.join(w['text'] for w in worst)})." if worst else ".")
        )
        return [
            self.finding(
                message,
                severity=Severity.WARNING if warn else Severity.INFO,
                evidence={
                    "flagged": k,
                    "judged": n,
                    "noise_rate": rate,
                    "noise_rate_low": low,
                    "noise_rate_high": high,
                    "clean_data_rate": self.warn_rate,
                    "fit_of_rest": fit,
                    "confidence_of_rest": rest_confidence,
                    "worst": [{k2: v for k2, v in w.items() if k2 != "text"} for w in worst],
                    "val_flagged": val_flags,
                    "early_epochs": self.early_epochs(),
                    "split": "train",
                },
                hint=(
                    f"See {_table(run)} for the ranked list (given vs predicted label); "
                    "relabel or drop the wrong ones, or train with label smoothing."
                ),
                step=run.step,
                epoch=run.epoch,
            )
        ]

    def rows(self, run: RunState) -> Iterator[dict[str, Any]]:
        """The per-sample table of `samples.csv`: flagged first, then by confidence ascending."""
        store = run.samples
        if store is None:
            return
        rank = 0
        for split in ("train", "val"):
            data = store.get(split)
            if data is None or not data.size:
                continue
            if split == "train":
                flags = self.flagged_train(data)[1]
                score = data.confidence()
            else:
                flags = self.flagged_val(data)
                score = data.latest_prob()
            order = np.lexsort((score, ~flags))
            # the columns as Python lists in the table's order (one conversion per column, not
            # one numpy scalar per cell): the same ints and floats as reading them cell by cell
            wrong, last_pred = data.column("wrong_pred"), data.column("last_pred")
            columns = [
                data.ids,
                data.column("labels"),
                np.where(wrong >= 0, wrong, last_pred),  # `_predicted` for every row
                data.confidence(),
                data.variability(),
                data.correctness(),
                data.column("epochs"),
                data.latest_prob(),
                flags.astype(np.int64),
                last_pred,
                data.column("last_epoch"),
                data.column("previous_right"),
            ]
            for values in zip(*(np.asarray(c)[order].tolist() for c in columns)):
                rank += 1
                sid, given, predicted, conf, var, corr, epochs, last, flagged, last_p, last_e, prev = values
                yield {
                    "rank": rank,
                    "split": split,
                    "id": sid,
                    "given_label": given,
                    "predicted_label": predicted,
                    "confidence": round(conf, 4),
                    "variability": round(var, 4),
                    "correctness": round(corr, 4),
                    "epochs": epochs,
                    "last_prob": round(last, 4),
                    "flagged": flagged,
                    "last_predicted": last_p,
                    "last_epoch": last_e,
                    "previous_right": prev,
                }


def _predicted(data: SplitSamples, i: int) -> int:
    """The class the model prefers for a flagged sample: its latest wrong prediction."""
    wrong = int(data.wrong_pred[i])
    return wrong if wrong >= 0 else int(data.last_pred[i])


def _table(run: RunState) -> str:
    """The run's samples.csv as the hint names it: its path where one is written or was read,
    else where the callbacks write it (a plain `Monitor` writes none)."""
    if run.samples_csv is not None:
        return str(run.samples_csv)
    return "samples.csv (the callbacks write it to <log_dir>/mlcheck/samples.csv)"


def _describe(data: SplitSamples, i: int) -> dict[str, Any]:
    given, predicted = int(data.labels[i]), _predicted(data, i)
    conf = float(data.sum_prob[i]) / max(int(data.epochs[i]), 1)
    sid = int(data.ids[i])
    return {
        "id": sid,
        "given": given,
        "predicted": predicted,
        "confidence": round(conf, 3),
        "text": f"id {sid} labelled {given}, predicted {predicted}",  # as samples.csv writes it
    }


def _grown(levels: np.ndarray, size: int, fill: int) -> np.ndarray:
    """`levels` (uint8) grown to hold `size` rows (by doubling past its first size), new rows `fill`."""
    out = np.full(max(size, 2 * len(levels)) if len(levels) else size, fill, np.uint8)
    out[: len(levels)] = levels
    return out


def _levels(prob: np.ndarray) -> np.ndarray:
    """Probabilities as uint8 history levels (step 1/254)."""
    return np.round(np.clip(prob, 0.0, 1.0) * _HISTORY_LEVELS).astype(np.uint8)


def _mean_levels(epochs: list[np.ndarray | None], size: int) -> np.ndarray:
    """Each row's mean probability over per-epoch uint8 levels (`_UNSEEN` left out; an epoch's
    array may be shorter than `size`: rows new since are unseen in it), NaN where never seen."""
    total, seen = np.zeros(size), np.zeros(size)
    for levels in epochs:
        if levels is None:
            continue
        n = min(len(levels), size)
        here = levels[:n] != _UNSEEN
        total[:n] += np.where(here, levels[:n], 0)
        seen[:n] += here
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, total / np.maximum(seen, 1) / _HISTORY_LEVELS, np.nan)


def _class_means(labels: np.ndarray, values: np.ndarray, classes: int) -> np.ndarray:
    """The mean of `values` per class (0 for a class without samples), indexed by label."""
    sums = np.bincount(labels, weights=values, minlength=classes)
    return sums / np.maximum(np.bincount(labels, minlength=classes), 1)


# -- weak slices ---------------------------------------------------------------------------------


def _upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def worse_than_rest(errors: int, size: int, rest_errors: int, rest_size: int) -> tuple[float, float]:
    """(z, one-sided p) of a two-proportion z-test that the slice's error rate exceeds the
    rest's (pooled variance)."""
    pooled = (errors + rest_errors) / (size + rest_size)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / size + 1 / rest_size))
    z = (errors / size - rest_errors / rest_size) / se
    return z, _upper_tail(z)


def worse_than_rest_in_strata(strata: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    """(z, one-sided p) of the Cochran-Mantel-Haenszel test that a slice's error rate exceeds
    the rest's across independent strata, each `(errors, size, rest_errors, rest_size)`
    (Mantel & Haenszel 1959; Agresti, "Categorical Data Analysis": the test for one association
    shared by several 2x2 tables). Each stratum is compared within itself, so strata whose
    error rates differ (a training pass and a validation pass) do not mix; with one stratum it
    is the pooled two-proportion z-test, up to a factor sqrt((n - 1) / n)."""
    excess, variance = 0.0, 0.0
    for errors, size, rest_errors, rest_size in strata:
        n, wrong = size + rest_size, errors + rest_errors
        if n < 2:
            continue  # no comparison within this stratum
        excess += errors - size * wrong / n
        variance += size * rest_size * wrong * (n - wrong) / (n * n * (n - 1))
    z = excess / math.sqrt(variance) if variance > 0 else 0.0
    return z, _upper_tail(z)


@register
class WeakSlice(Check):
    """A class, a range of an input column, or a slice you named, where the model does much worse.

    What it does:
        Counts, in the last validation pass, each class's errors and mean loss (and those of
        each key your `slice_by=` function returns for a batch), and tests each slice of at
        least `min_size` samples against the rest with a one-sided two-proportion z-test.
        For tabular inputs (2-D float batches of 2 to 64 columns) it also finds slices by
        itself: each column's ranges of the validation values (bottom and top decile,
        quartile, third and half, the second and third quartile and the middle third; 11 a
        column, ranges with the same rows as another tested once), tested the same way; for
        them the validation rows keep their input values (float32, once for the run, not per
        epoch: 120 bytes a row on 30 columns; training rows and wider inputs keep none).
        A class or key the last training pass also counted (`min_size` rows in it and in the
        rest there) is tested on both passes at once with the Cochran-Mantel-Haenszel test, one
        stratum a pass (Mantel & Haenszel 1959): its training rows are other rows of the same
        slice, so a small validation set gains their evidence, and each pass is compared within
        itself, so the lower error of training rows does not mix in.
        Holm's correction runs over every slice tested, in two families at `alpha / 2` each
        when both are tested (classes and slice_by keys; column ranges), so a wide table's
        hundreds of ranges do not drown the few classes. A significant slice whose validation
        error rate exceeds the rest's by at least `warn_gap` is a WARNING; so is one that
        exceeds it by `unfit_gap` when the model fails to fit it in training by as much (a
        harder class is still fitted in training; one that is not has labels or inputs that
        contradict the rest, such as a class with many wrong labels); a significant smaller
        gap is INFO (some classes and ranges are simply harder). Slices that are weak through
        the same rows (a class that holds most of a weak range, a range of another column that
        a shifted subgroup fills) are reported once: WARNINGs first, the largest z first, a
        slice is reported apart only when its rows outside those already reported are weak on
        their own (the others are listed in the finding). Runs without validation use the last
        training pass (classes and keys only). Judged at the end of the run, so early epochs,
        where some classes are not learned yet, raise nothing; a gap is a WARNING only once the
        error over all rows has stopped falling beyond binomial noise (else INFO).

    Why it matters:
        An aggregate metric hides where the model fails: 95% accuracy can be 99% on nine
        classes and 60% on the tenth, or fail one customer segment entirely.

    How to fix:
        Look at the slice's samples: collect more of them, re-weight the loss or resample
        so the slice counts more, and check its labels (`noisy-labels` lists suspicious ids).

    Example:
        cb = MLCheckCallback()
        trainer.fit(model, datamodule=dm)  # "val_acc 0.93": which rows are wrong?

    Use instead:
        # name the slices you care about: a function of the batch, one key per row
        cb = MLCheckCallback(slice_by=lambda batch: batch[0][:, REGION_COLUMN])
        trainer.fit(model, datamodule=dm)
        # on a table, column ranges come without slice_by: "Slice feature 0 in [0.2081, 3.719]
        # (its top third): 48 validation rows, error 60.4% vs 5.3% for the rest ..."

    Args:
        min_size: samples a slice (and the rest) needs to be tested. Default 30, the usual
            floor for the normal approximation of a proportion's test.
        alpha: family-wise significance level after Holm's correction. Default 0.01.
        warn_gap: WARNING when the slice's error rate exceeds the rest's by this much (absolute).
            Default 0.20: the class a healthy model finds hardest trails the rest by up to ~15
            points (digits, a small MLP, 4 epochs: class 1 at 19% against 4%); more is a slice
            that hurts.
        max_findings: slices reported, worst first. Default 5.
        min_passes: passes over the judged split before a gap can be a WARNING. Default 3: in
            the first epochs classes are learnt at different speeds, a gap that closes by itself.
        settled_drop: a slice whose error rate fell by more than this since the previous pass
            is still improving, and stays INFO. Default 0.02 (two points).
        unfit_gap: WARNING from this validation gap when the slice's error rate in the last
            training pass also exceeds the rest's by this much. Default 0.10, measured (docs/
            benchmarks.md, section 2b): a healthy model fits the classes it finds harder (clean
            breast_cancer and digits, 40 and 30 epochs: at most 1 training error a class, while
            malignant rows trail by 9 points on validation); in the fault suite's shorter and
            noisier clean runs a harder class trailed by up to 10.6 points in training, but then
            by 6.8 on validation, and by 11-13 points on validation only with 6-7 in training.
            A class with 30% wrong labels trailed by 13-25 points on validation and 12-25 in
            training. The margin is a few points on each side: one reason the check is opt-in.
        learning_passes: a gap stays INFO while the model is still learning: the error over all
            rows (of the judged split, or of the training passes) fell between one of the last
            `learning_passes` passes and the latest beyond binomial noise. Default 3.
        learning_z: that fall, in standard errors of the difference of two proportions (pooled
            two-sample test). Default 1.96 (5%, two-sided). Round 23 (issue #15): digits MLPs
            at 4-8 epochs raised a WARNING for a range trailing by 22 points while the training
            error still fell (8.9% to 5.6% over 3 passes of 1,400 rows, 3.4 standard errors);
            the planted slices of `bench_label_noise.py --slices` (30-40 epochs) are still found.
    """

    id = "weak-slice"
    family = "samples"
    severity = Severity.INFO
    consumes = frozenset({Signal.SAMPLE_OUTPUTS})
    #: opt-in for now: on some healthy short runs it still raises warnings (see docs/samples.md)
    default = False
    #: a class whose validation samples are read as another: weak, but from the labels' mapping
    explained_by = frozenset({"label-shift:mapping-differs"})

    def __init__(
        self,
        min_size: int = 30,
        alpha: float = 0.01,
        warn_gap: float = 0.20,
        max_findings: int = 5,
        min_passes: int = 3,
        settled_drop: float = 0.02,
        unfit_gap: float = 0.10,
        learning_passes: int = 3,
        learning_z: float = 1.96,
    ) -> None:
        self.learning_passes = learning_passes
        self.learning_z = learning_z
        self.unfit_gap = unfit_gap
        self.min_passes = min_passes
        self.settled_drop = settled_drop
        self.min_size = min_size
        self.alpha = alpha
        self.warn_gap = warn_gap
        self.max_findings = max_findings
        super().__init__()

    def reset(self) -> None:
        # per split: (epoch, {slice name: [size, errors, loss sum]}) of the pass being counted
        self._tallies: dict[str, tuple[int | None, dict[str, list[float]]]] = {}
        # per split: the pass before it, and how many passes were counted
        self._previous: dict[str, dict[str, list[float]]] = {}
        self._passes: dict[str, int] = {}
        # per split: [rows, errors] of each pass over it, all rows together (has the run settled?)
        self._overall: dict[str, list[list[int]]] = {}
        self._outlying: set[str] = set()
        # per split: the store rows of each slice_by key in the pass being counted (to tell
        # whether a key's slice and a class or feature range are the same rows)
        self._key_rows: dict[str, dict[str, list[np.ndarray]]] = {}

    def on_samples(self, outputs: SampleOutputs, run: RunState) -> Iterable[Finding]:
        # the store rows of `slice_by` keys: those the store's add found (`rows_of`), not searched
        # again per merged hand-over
        data = run.samples.get(outputs.split) if outputs.slices is not None and run.samples is not None else None
        rows = None if data is None else data.rows_of(outputs)
        if outputs.slices is not None and outputs.segments is not None:
            start = 0
            for part in segment(outputs):  # the keys' rows kept per hand-over, as they came
                end = start + len(part.ids)
                self._count(part, None if rows is None else rows[start:end])
                start = end
            return ()
        self._count(outputs, rows)
        return ()

    def _count(self, outputs: SampleOutputs, rows: np.ndarray | None) -> None:
        """Tallies one hand-over; `rows`: the store rows of its samples, where `slice_by` keys
        come with them."""
        epoch, table = self._tallies.get(outputs.split, (None, {}))
        if epoch != outputs.epoch:
            if table:
                self._previous[outputs.split] = table
            self._passes[outputs.split] = self._passes.get(outputs.split, 0) + 1
            epoch, table = outputs.epoch, {}  # a new pass: keep only the latest
            self._tallies[outputs.split] = (epoch, table)
            self._key_rows[outputs.split] = {}
            self._overall.setdefault(outputs.split, []).append([0, 0])
        wrong = np.asarray(outputs.predicted) != np.asarray(outputs.labels)
        overall = self._overall[outputs.split][-1]
        overall[0] += len(wrong)
        overall[1] += int(wrong.sum())
        loss = -np.log(np.clip(np.asarray(outputs.true_prob, np.float64), 1e-7, 1.0))
        _tally(table, "class", np.asarray(outputs.labels), wrong, loss, outputs.segments)
        if outputs.slices is not None:
            keys = np.asarray(outputs.slices)
            _tally(table, "slice", keys, wrong, loss)
            if rows is not None:
                values, inverse = np.unique(keys, return_inverse=True)
                held = self._key_rows.setdefault(outputs.split, {})
                for i, value in enumerate(values.tolist()):
                    held.setdefault(f"slice={value}", []).append(rows[inverse == i])

    def load_store(self, store: SampleStore) -> None:
        """Takes the passes to judge from a finished run's per-sample summaries instead of the
        stream (`mlcheck analyze` over samples.csv): each split's last pass from its samples'
        latest predictions, the pass before from whether they were right then, the number of
        passes from how often they were seen. Keys of `slice_by` are not in the summaries."""
        self.reset()
        for split, data in store.splits.items():
            last = data.column("last_epoch")
            latest = last == last.max(initial=-1)
            labels = data.column("labels")[latest].astype(np.int64)
            wrong = data.column("last_pred")[latest] != labels
            loss = -np.log(np.clip(data.latest_prob()[latest], 1e-7, 1.0))
            table: dict[str, list[float]] = {}
            _tally(table, "class", labels, wrong, loss)
            before = latest & (data.column("previous_right") >= 0)
            previous: dict[str, list[float]] = {}
            if before.any():
                was_wrong = data.column("previous_right")[before] == 0
                _tally(previous, "class", data.column("labels")[before], was_wrong, np.zeros(len(was_wrong)))
                self._previous[split] = previous
                self._overall[split] = [[int(before.sum()), int(was_wrong.sum())]]
            self._overall.setdefault(split, []).append([len(wrong), int(wrong.sum())])
            self._tallies[split] = (int(last.max(initial=-1)), table)
            self._passes[split] = int(data.column("epochs")[latest].max(initial=0))

    def on_end(self, run: RunState) -> Iterable[Finding]:
        split = "val" if "val" in self._tallies else "train"
        if split not in self._tallies:
            return []  # no per-sample outputs were captured
        epoch, table = self._tallies[split]
        # the last training pass's tallies: the same classes and keys on other rows (validation judged)
        fitted = self._tallies["train"][1] if split == "val" and "train" in self._tallies else {}
        keyed = self._keyed_tests(table, self._previous.get(split, {}), fitted)
        latest = _LatestPass.of(run.samples, split)
        ranges = self._range_tests(latest) if latest is not None else []
        # Holm within each family (classes and slice_by keys; feature ranges), at alpha over the
        # number of families: every tested slice counts, and the hundreds of ranges of a wide
        # table do not drown the few classes (the family-wise error stays under alpha)
        families = [f for f in (keyed, ranges) if f]
        for family in families:
            for test, q in zip(family, holm([t.p for t in family])):
                test.q = min(1.0, q * len(families))
        self._outlying = _outliers(keyed)
        weak = [t for t in keyed + ranges if t.q < self.alpha]
        for test in weak:
            test.severity = self._severity(test, split)
        if latest is not None:
            weak = self._one_per_weakness(weak, latest, self._key_rows.get(split, {}))
        weak.sort(key=lambda t: t.rest_error - t.error)  # largest gap first
        return [self._finding(t, split, epoch, run) for t in weak[: self.max_findings]]

    def _keyed_tests(
        self, table: dict[str, list[float]], before: dict[str, list[float]], fitted: dict[str, list[float]]
    ) -> list[_SliceTest]:
        """Tests of the classes and of the keys of `slice_by`, from the pass's tallies (and the
        pass `before` it). A slice the last training pass (`fitted`) also counted, with
        `min_size` rows in it and in the rest there, is tested on both passes at once
        (Cochran-Mantel-Haenszel, one stratum a pass): the training rows are other rows, a
        second sample of the same slice."""
        tests = []
        for name, (size, errors, rest_size, rest_errors) in _against_rest(table).items():
            if size < self.min_size or rest_size < self.min_size:
                continue  # too small to test
            strata = [(int(errors), int(size), int(rest_errors), int(rest_size))]
            train = _against_rest(fitted).get(name)
            if train is not None and min(train[0], train[2]) >= self.min_size:
                strata.append((int(train[1]), int(train[0]), int(train[3]), int(train[2])))
            z, p = worse_than_rest(*strata[0]) if len(strata) == 1 else worse_than_rest_in_strata(strata)
            previous = before.get(name)
            tests.append(
                _SliceTest(
                    name,
                    int(size),
                    errors / size,
                    rest_errors / rest_size,
                    table[name][2] / size,
                    z,
                    p,
                    previous_error=previous[1] / previous[0] if previous and previous[0] > 0 else None,
                    train_error=train[1] / train[0] if len(strata) > 1 else None,
                    train_rest_error=train[3] / train[2] if len(strata) > 1 else None,
                )
            )
        return tests

    def _range_tests(self, latest: _LatestPass) -> list[_SliceTest]:
        """Tests of each column's quantile ranges (`FEATURE_RANGES`) over the latest pass's rows;
        a range whose rows are those of another range of its column (tied values) is tested
        once. Each column is sorted once: a range is a run of the sorted rows, its counts
        differences of running sums."""
        if latest.features is None:
            return []
        before = latest.previous_right >= 0
        per_row = np.stack([latest.wrong, latest.loss, before, before & (latest.previous_right == 0)], axis=1).astype(
            np.float64
        )
        tests = []
        for column in range(latest.features.shape[1]):
            values = latest.features[:, column]
            known = np.flatnonzero(np.isfinite(values))
            if len(known) < 2 * self.min_size:
                continue
            order = known[np.argsort(values[known])]
            ranked = values[order]
            sums = np.vstack([np.zeros((1, per_row.shape[1])), np.cumsum(per_row[order], axis=0)])
            cuts = np.quantile(ranked, _RANGE_QUANTILES)
            ends = dict(zip(_RANGE_QUANTILES, np.searchsorted(ranked, cuts, side="right").tolist()))
            ends[None] = None
            seen = set()
            for range_name, low, high in FEATURE_RANGES:
                start = 0 if low is None else ends[low]
                stop = len(ranked) if high is None else ends[high]
                if (
                    stop - start < self.min_size
                    or len(ranked) - (stop - start) < self.min_size
                    or (start, stop) in seen
                ):
                    continue
                seen.add((start, stop))
                inside = sums[stop] - sums[start]
                size = stop - start
                test = latest.range_test(
                    f"feature {column} {range_name}", inside, sums[-1] - inside, size, len(ranked) - size
                )
                test.column, test.low, test.high = column, float(ranked[start]), float(ranked[stop - 1])
                tests.append(test)
        return tests

    def _one_per_weakness(
        self, weak: list[_SliceTest], latest: _LatestPass, key_rows: dict[str, list[np.ndarray]]
    ) -> list[_SliceTest]:
        """The weak slices, one per weakness: taken the keys of slice_by first (each reported:
        the user asked about them), then WARNINGs first, then by z (a scan statistic's
        order: it weighs how much worse a slice is against how many rows it holds, so neither a
        superset that dilutes the weak rows nor a sliver of them comes first), a slice is
        reported only if its rows outside the slices already reported are a weak slice of their
        own against the other rows: at least `min_size` of them, significant after Bonferroni's
        correction over the weak slices, and for a WARNING a gap of `warn_gap` or more; else it
        is the same weakness, named in the evidence (`overlapping`) of the reported slice it
        shares most rows with."""
        kept: list[tuple[_SliceTest, np.ndarray | None]] = []
        covered = np.zeros(len(latest.wrong), bool)
        asked = lambda t: t.name.startswith("slice=")  # noqa: E731 (a key of slice_by: always reported)
        for test in sorted(weak, key=lambda t: (not asked(t), t.severity is not Severity.WARNING, -t.z)):
            rows = latest.mask(test, key_rows)
            if rows is not None and covered.any() and not asked(test):
                host = max((k for k in kept if k[1] is not None), key=lambda k: int((rows & k[1]).sum()))
                gap = self._warn_gap(test) if test.severity is Severity.WARNING else None
                alone = self._weak_alone(rows & ~covered, ~rows & ~covered, latest.wrong, gap, len(weak))
                if (rows & host[1]).any() and not alone:
                    host[0].overlapping.append(test.name)
                    continue
            kept.append((test, rows))
            if rows is not None:
                covered |= rows
        return [t for t, _ in kept]

    def _weak_alone(
        self, rows: np.ndarray, rest: np.ndarray, wrong: np.ndarray, min_gap: float | None, tests: int
    ) -> bool:
        """Whether `rows` are a weak slice against `rest` on their own (for a WARNING, by `min_gap`)."""
        size, rest_size = int(rows.sum()), int(rest.sum())
        if size < self.min_size or rest_size < self.min_size:
            return False
        errors, rest_errors = int(wrong[rows].sum()), int(wrong[rest].sum())
        if min_gap is not None and errors / size - rest_errors / rest_size < min_gap:
            return False
        return worse_than_rest(errors, size, rest_errors, rest_size)[1] * tests < self.alpha

    def _warn_gap(self, test: _SliceTest) -> float:
        """The gap a slice needs for a WARNING: `warn_gap`, or `unfit_gap` for a slice the model
        also fails to fit in training by `unfit_gap` or more. `warn_gap` makes room for classes
        that are harder by nature, but a trained model still fits most of a harder class's
        training rows (clean breast_cancer: 0-1 training errors among 155 malignant rows at the
        end, 4-5 of 57 on validation); a slice it cannot fit either has labels or inputs that
        contradict the rest."""
        if test.train_error is None or test.train_rest_error is None:
            return self.warn_gap
        return self.unfit_gap if test.train_error - test.train_rest_error >= self.unfit_gap else self.warn_gap

    def _severity(self, test: _SliceTest, split: str) -> Severity:
        """WARNING for a gap of `warn_gap` or more (`unfit_gap` for a slice the model cannot fit
        in training either, see `_warn_gap`) that has settled (the run has had `min_passes`
        passes and the slice's error stopped falling) and, for classes and slice_by keys, stands
        out from its siblings (they differ in difficulty by nature); else INFO. Feature ranges
        have no siblings of one kind: the ranges of one column overlap each other."""
        improving = test.previous_error is not None and test.previous_error - test.error > self.settled_drop
        settled = self._passes.get(split, 0) >= self.min_passes and not improving and not self._learning(split)
        if test.column is None:
            settled = settled and test.name in self._outlying
        return Severity.WARNING if test.error - test.rest_error >= self._warn_gap(test) and settled else Severity.INFO

    def _learning(self, split: str) -> bool:
        """Whether the model is still learning: the error rate over all rows of `split`, or of
        the training passes when validation is judged, fell between one of the `learning_passes`
        passes before the latest and the latest by more than `learning_z` standard errors of the
        difference of two binomial proportions (pooled, over each pass's rows: the two-sample
        test of proportions). Classes are learnt at different speeds: while the error still
        falls, a slice's gap can be one not learnt yet (round 23: digits MLPs at 4-8 epochs, a
        feature range trailing by 22 points while the training error still fell from 8.9% to
        5.6% over 3 passes; gone once converged). The training passes are tested too: they
        hold more rows than validation, so a fall shows there first."""
        for name in (split, "train") if split != "train" else (split,):
            history = self._overall.get(name, [])
            if len(history) < 2:
                continue
            size, errors = history[-1]
            for before_size, before_errors in history[-1 - self.learning_passes : -1]:
                if size == 0 or before_size == 0:
                    continue
                pooled = (errors + before_errors) / (size + before_size)
                se = np.sqrt(pooled * (1 - pooled) * (1 / size + 1 / before_size))
                if se > 0 and before_errors / before_size - errors / size > self.learning_z * se:
                    return True
        return False

    def _finding(self, test: _SliceTest, split: str, epoch: int | None, run: RunState) -> Finding:
        gap = test.error - test.rest_error
        where = "validation" if split == "val" else "training"
        if test.column is None:
            trained = (
                f"; {test.train_error:.1%} against {test.train_rest_error:.1%} in the last training pass"
                if test.train_error is not None and test.train_rest_error is not None
                else ""
            )
            label = _slice_label(test.name)
            message = (
                f"The {where} samples of {label} ({test.size}) have an error rate of {test.error:.1%} against "
                f"{test.rest_error:.1%} on the rest (gap {gap:.1%}{trained}; Holm-adjusted p = {test.q:.2g})."
            )
            hint = (
                f"Look at the samples of {label}: collect more of them, re-weight or resample so they count "
                "more, and check their labels (noisy-labels lists suspicious ids)."
            )
        else:
            range_name = test.name.split(" ", 2)[2]
            message = (
                f"Slice feature {test.column} in [{test.low:.4g}, {test.high:.4g}] (its {range_name}): {test.size} "
                f"{where} rows, error {test.error:.1%} vs {test.rest_error:.1%} for the rest (gap {gap:.1%}, "
                f"Holm-adjusted p = {test.q:.2g})."
            )
            hint = (
                f"Look at the rows with input column {test.column} in [{test.low:.4g}, {test.high:.4g}]: collect more "
                "of them, re-weight or resample so they count more, check whether their inputs shifted (a new "
                "source, a unit change) and check their labels (noisy-labels lists suspicious ids)."
            )
        if test.overlapping:
            named = ", ".join(test.overlapping[:3]) + (
                f" and {len(test.overlapping) - 3} more" * (len(test.overlapping) > 3)
            )
            message += f" Weak through these rows only, not reported apart: {named}."
        evidence = {
            "slice": test.name,
            "size": test.size,
            "error_rate": test.error,
            "rest_error_rate": test.rest_error,
            "mean_loss": test.loss,
            "z": test.z,
            "p_value": test.p,
            "p_holm": test.q,
            "split": split,
            "pass_epoch": epoch,
            "overall_error_by_pass": [e / n if n else None for n, e in self._overall.get(split, [])[-4:]],
            "train_error_by_pass": [e / n if n else None for n, e in self._overall.get("train", [])[-4:]],
        }
        if test.column is not None:
            evidence.update({"feature": test.column, "low": test.low, "high": test.high})
        if test.train_error is not None:
            evidence.update({"train_error_rate": test.train_error, "train_rest_error_rate": test.train_rest_error})
        if test.overlapping:
            evidence["overlapping"] = test.overlapping[:MAX_OVERLAPPING]
            evidence["overlapping_count"] = len(test.overlapping)
        return self.finding(
            message,
            severity=test.severity,
            evidence=evidence,
            hint=hint,
            step=run.step,
            epoch=run.epoch,
            key=test.name,
        )


#: Ranges of each input column's validation values tested as slices, by quantile: (name, lower,
#: upper), None for an open end; a range holds the rows above its lower and up to its upper
#: quantile. Tails, quarters and thirds: a subgroup off this grid is found through the range it
#: overlaps most (11 ranges a column; Holm's correction counts each).
FEATURE_RANGES = (
    ("bottom decile", None, 0.1),
    ("bottom quartile", None, 0.25),
    ("bottom third", None, 1 / 3),
    ("bottom half", None, 0.5),
    ("second quartile", 0.25, 0.5),
    ("middle third", 1 / 3, 2 / 3),
    ("third quartile", 0.5, 0.75),
    ("top half", 0.5, None),
    ("top third", 2 / 3, None),
    ("top quartile", 0.75, None),
    ("top decile", 0.9, None),
)
_RANGE_QUANTILES = sorted({q for _, low, high in FEATURE_RANGES for q in (low, high) if q is not None})


#: Names of the slices folded into a reported one kept in its evidence (a shifted subgroup can
#: make a hundred ranges of a wide table weak through the same rows).
MAX_OVERLAPPING = 10


@dataclass
class _SliceTest:
    """One slice's test against the rest of the pass."""

    name: str
    size: int
    error: float
    rest_error: float
    loss: float
    z: float
    p: float
    q: float = 1.0  # Holm-adjusted p
    previous_error: float | None = None  # in the pass before, where known
    # classes and slice_by keys judged on validation: their error rate and the rest's in the
    # last training pass, when it was tested with them (None otherwise)
    train_error: float | None = None
    train_rest_error: float | None = None
    column: int | None = None  # feature ranges: the input column, and the range's observed values
    low: float = 0.0
    high: float = 0.0
    severity: Severity = Severity.INFO
    overlapping: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _LatestPass:
    """The rows of a split's latest pass in the per-sample store: whether each was wrong in it
    and in the pass before (-1: not seen then), its label, its loss and its input values."""

    wrong: np.ndarray
    previous_right: np.ndarray
    labels: np.ndarray
    loss: np.ndarray
    features: np.ndarray | None
    index: np.ndarray  # their rows in the store
    store_size: int

    @classmethod
    def of(cls, store: SampleStore | None, split: str) -> _LatestPass | None:
        data = store.get(split) if store is not None else None
        if data is None or not data.size:
            return None
        last = data.column("last_epoch")
        latest = last == last.max()
        labels = data.column("labels")[latest].astype(np.int64)
        features = data.feature_values()
        return cls(
            wrong=data.column("last_pred")[latest] != labels,
            previous_right=data.column("previous_right")[latest],
            labels=labels,
            # the store keeps the probability in 1/255 steps: 0 stands for anything under half a step
            loss=-np.log(np.clip(data.latest_prob()[latest], 0.5 / 255, 1.0)),
            features=None if features is None else features[latest],
            index=np.flatnonzero(latest),
            store_size=data.size,
        )

    def mask(self, test: _SliceTest, key_rows: dict[str, list[np.ndarray]]) -> np.ndarray | None:
        """The rows of a slice; None for a key of slice_by whose rows are not known."""
        if test.column is not None:
            values = self.features[:, test.column]
            return (values >= test.low) & (values <= test.high)
        kind, _, value = test.name.partition("=")
        if kind == "slice":
            if test.name not in key_rows:
                return None
            rows = np.concatenate(key_rows[test.name])
            inside = np.zeros(self.store_size, bool)
            inside[rows[rows >= 0]] = True
            return inside[self.index]
        try:
            return self.labels == int(float(value))
        except ValueError:
            return None

    @staticmethod
    def range_test(name: str, inside: np.ndarray, rest: np.ndarray, size: int, rest_size: int) -> _SliceTest:
        """The test of a slice of `size` rows against `rest_size` others from their sums over
        rows (errors, loss, seen in the pass before, wrong in it; see `_range_tests`)."""
        errors, rest_errors = int(round(inside[0])), int(round(rest[0]))
        z, p = worse_than_rest(errors, size, rest_errors, rest_size)
        return _SliceTest(
            name,
            size,
            errors / size,
            rest_errors / rest_size,
            float(inside[1] / size),
            z,
            p,
            previous_error=float(inside[3] / inside[2]) if inside[2] > 0 else None,
        )


#: A slice stands out when its error rate exceeds its siblings' median by this many robust
#: standard deviations (1.4826 x MAD; the usual outlier rule for a handful of values).
OUTLIER_SPREADS = 3.0
#: Floor of that spread: error rates of classes a healthy model learns differ by a few points.
MIN_SPREAD = 0.02


def _outliers(tests: list[_SliceTest]) -> set[str]:
    """Names of the slices whose error rate stands out from the other slices of their kind."""
    out: set[str] = set()
    for kind in {t.name.split("=", 1)[0] for t in tests}:
        rows = [t for t in tests if t.name.split("=", 1)[0] == kind]
        if len(rows) < 3:
            out.update(t.name for t in rows)  # two slices: no spread to judge against; the gap decides
            continue
        errors = np.array([t.error for t in rows])
        center = float(np.median(errors))
        spread = max(1.4826 * float(np.median(np.abs(errors - center))), MIN_SPREAD)
        out.update(t.name for t in rows if t.error - center > OUTLIER_SPREADS * spread)
    return out


def _against_rest(table: dict[str, list[float]]) -> dict[str, tuple[float, float, float, float]]:
    """Per slice of a pass's tallies: (size, errors, rest size, rest errors), the rest being the
    other slices of its kind (the other classes, the other keys of slice_by)."""
    total: dict[str, list[float]] = {}
    for name, (size, errors, _) in table.items():
        kind = total.setdefault(name.split("=", 1)[0], [0.0, 0.0])
        kind[0] += size
        kind[1] += errors
    out = {}
    for name, (size, errors, _) in table.items():
        all_size, all_errors = total[name.split("=", 1)[0]]
        out[name] = (size, errors, all_size - size, all_errors - errors)
    return out


#: Integer keys below this (class labels) are counted in bins of their own value, without
#: sorting them first (`np.unique`, most of `weak-slice`'s cost per hand-over); 65,536 bins of
#: float64 at most, 0.5 MiB for a moment.
_DENSE_KEYS = 1 << 16


def _tally(
    table: dict[str, list[float]],
    kind: str,
    keys: np.ndarray,
    wrong: np.ndarray,
    loss: np.ndarray,
    segments: tuple[int, ...] | None = None,
) -> None:
    """Adds each key's rows, errors and summed loss to `table`, keys in sorted order (each bin's
    sum taken in the rows' order, whichever way the bins are found); with `segments` (merged
    hand-overs, `SampleOutputs.segments`), each one's sums added in turn (`_tally_segments`)."""
    if segments is not None and len(segments) > 1:
        return _tally_segments(table, kind, keys, wrong, loss, segments)
    if keys.dtype.kind in "iu" and len(keys) and keys.min() >= 0 and keys.max() < _DENSE_KEYS:
        bins = keys.astype(np.intp, copy=False)
        counts = np.bincount(bins)
        values = np.flatnonzero(counts)
        sizes = counts[values]
        errors = np.bincount(bins, weights=wrong, minlength=len(counts))[values]
        losses = np.bincount(bins, weights=loss, minlength=len(counts))[values]
    else:
        values, inverse = np.unique(keys, return_inverse=True)
        sizes = np.bincount(inverse, minlength=len(values))
        errors = np.bincount(inverse, weights=wrong, minlength=len(values))
        losses = np.bincount(inverse, weights=loss, minlength=len(values))
    for value, size, err, los in zip(values.tolist(), sizes.tolist(), errors.tolist(), losses.tolist()):
        entry = table.setdefault(f"{kind}={value}", [0.0, 0.0, 0.0])
        entry[0] += size
        entry[1] += err
        entry[2] += los


def _tally_segments(
    table: dict[str, list[float]],
    kind: str,
    keys: np.ndarray,
    wrong: np.ndarray,
    loss: np.ndarray,
    segments: tuple[int, ...],
) -> None:
    """`_tally` of each segment in turn, in three `bincount`s for all of them: each (segment,
    key) cell sums its rows in their order from 0, as a segment's own `bincount` does, and the
    table adds the segments' sums one after the other, keys in sorted order within each, so the
    table (its floats and its keys' order) is that of the hand-overs one by one."""
    if keys.dtype.kind in "iu" and len(keys) and keys.min() >= 0 and keys.max() < _DENSE_KEYS:
        bins = keys.astype(np.intp, copy=False)
        width = int(bins.max()) + 1
        names: Any = range(width)
    else:
        names, bins = np.unique(keys, return_inverse=True)
        names, width = names.tolist(), len(names)
        bins = bins.reshape(-1)
    cells = width * len(segments)
    if cells > 4 * len(keys) + 1024:  # many keys (ids as slice keys?): cells mostly empty, taken one by one
        start = 0
        for rows in segments:
            part = slice(start, start + rows)
            _tally(table, kind, keys[part], wrong[part], loss[part])
            start += rows
        return
    cell = np.repeat(np.arange(len(segments)) * width, segments) + bins
    sizes = np.bincount(cell, minlength=cells).reshape(len(segments), width).tolist()
    errors = np.bincount(cell, weights=wrong, minlength=cells).reshape(len(segments), width).tolist()
    losses = np.bincount(cell, weights=loss, minlength=cells).reshape(len(segments), width).tolist()
    for size_row, error_row, loss_row in zip(sizes, errors, losses):
        for j, size in enumerate(size_row):
            if size:
                entry = table.setdefault(f"{kind}={names[j]}", [0.0, 0.0, 0.0])
                entry[0] += size
                entry[1] += error_row[j]
                entry[2] += loss_row[j]


def _slice_label(name: str) -> str:
    """A slice's name as a finding says it: "class=3" -> "class 3", "slice=True" (a key
    `slice_by` returned) -> "the slice_by key True"; other names as they are."""
    kind, _, value = name.partition("=")
    return {"class": f"class {value}", "slice": f"the slice_by key {value}"}.get(kind, name)
