"""noisy-labels under class-conditional noise (each class's wrong labels all go to one other
class), on planted per-sample dynamics fed to the check as the callbacks feed it: the wrong labels
look half-plausible before memorisation (the model learns the flip too), so a threshold on the
probability of the given label alone misses them; confident learning's per-class threshold on the
likeliest other class (t_j, the average its own samples get) finds them."""

from __future__ import annotations

import numpy as np

from mlcheck.checks.samples import NoisyLabels
from mlcheck.run import RunInfo, RunState
from mlcheck.samples import SampleOutputs, SampleStore

CLASSES, TRAIN, VAL, EPOCHS, PLATEAU, MEMORISED = 4, 1200, 400, 12, 3, 5
FLIP_RATES = (0.2, 0.1, 0.15, 0.05)  # per class, each into the next class


def _planted(seed: int = 0):
    """(true class, given label, flipped, hard) per training row: class-conditional flips, and 5%
    of the clean rows hard to learn (the model spreads them over the other classes)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, CLASSES, TRAIN)
    flip = rng.random(TRAIN) < np.take(FLIP_RATES, truth)
    given = np.where(flip, (truth + 1) % CLASSES, truth)
    hard = ~flip & (rng.random(TRAIN) < 0.05)
    return truth, given, flip, hard


def _epoch_outputs(epoch: int, truth, given, flip, hard, rng):
    """Each row's probability of its label, of its likeliest other class and that class in one
    epoch: clean rows learnt within `PLATEAU` epochs; flipped ones half-plausible until
    `MEMORISED` (their true class likeliest), then learnt by heart; hard ones unsure throughout."""
    learnt = min(epoch / PLATEAU, 1.0)
    jitter = rng.normal(0, 0.04, TRAIN)
    own = np.clip(0.4 + 0.5 * learnt + jitter, 0.01, 0.99)
    other = (1 - own) * 0.7
    other_class = (given + 1 + rng.integers(0, CLASSES - 1, TRAIN)) % CLASSES
    noisy_early = epoch < MEMORISED
    own = np.where(flip, np.clip((0.25 if noisy_early else 0.95) + jitter, 0.01, 0.99), own)
    other = np.where(flip, np.clip((0.65 if noisy_early else 0.03) + jitter, 0.0, 0.99), other)
    other_class = np.where(flip, truth, other_class)
    own = np.where(hard, np.clip(0.3 + jitter, 0.01, 0.99), own)
    other = np.where(hard, 0.25, other)
    predicted = np.where(own >= other, given, other_class)
    return own, other, other_class, predicted


def _run(check: NoisyLabels) -> tuple[RunState, np.ndarray]:
    truth, given, flip, hard = _planted()
    rng = np.random.default_rng(1)
    run = RunState(RunInfo(task="classification", num_classes=CLASSES))
    run.samples = SampleStore()
    ids = np.arange(TRAIN, dtype=np.uint64) * 7919 + 1
    val_ids = np.arange(VAL, dtype=np.uint64) * 104729 + 3
    val_labels = rng.integers(0, CLASSES, VAL)
    for epoch in range(EPOCHS):
        own, other, other_class, predicted = _epoch_outputs(epoch, truth, given, flip, hard, rng)
        order = rng.permutation(TRAIN)
        for start in range(0, TRAIN, 50):
            rows = order[start : start + 50]
            out = SampleOutputs(
                "train",
                epoch,
                ids[rows],
                given[rows],
                own[rows],
                predicted[rows],
                other_prob=other[rows],
                other_class=other_class[rows],
            )
            run.samples.add(out)
            check.on_samples(out, run)
        # validation accuracy climbs to its plateau at epoch PLATEAU and stays there
        right = rng.permutation(VAL) < round(VAL * (0.6 + 0.3 * min(epoch / PLATEAU, 1.0)))
        val_pred = np.where(right, val_labels, (val_labels + 1) % CLASSES)
        val = SampleOutputs("val", epoch, val_ids, val_labels, np.where(right, 0.9, 0.1), val_pred)
        run.samples.add(val)
        check.on_samples(val, run)
    check.on_end(run)
    train = run.samples.get("train")
    where = {int(i): r for r, i in enumerate(train.ids.tolist())}
    flagged = check.flagged_train(train)[1][[where[int(i)] for i in ids]]
    return run, flagged, flip, hard


def _precision_recall(flagged, flip):
    tp = int((flagged & flip).sum())
    return tp / max(int(flagged.sum()), 1), tp / int(flip.sum())


def test_class_conditional_wrong_labels_are_found_by_the_other_class_threshold():
    check = NoisyLabels()
    _, flagged, flip, hard = _run(check)
    assert check.early_epochs() < EPOCHS  # the window ends before memorisation
    precision, recall = _precision_recall(flagged, flip)
    assert precision > 0.9 and recall > 0.9, (precision, recall)
    assert not (flagged & hard).any()  # unsure of a hard sample is not evidence for one other class


def test_without_the_other_class_threshold_the_half_plausible_wrong_labels_are_missed():
    # the rule before confident learning's threshold: the given label's probability under a share
    # of its class's average, and the whole-run cartography rule (here memorised: not flagged)
    _, flagged, flip, _ = _run(NoisyLabels(other_share=float("inf")))
    assert _precision_recall(flagged, flip)[1] < 0.1


def test_the_first_epoch_is_left_out_and_the_other_class_kept_one_byte_a_sample_and_epoch():
    check = NoisyLabels()
    run, _, _, _ = _run(check)
    train = run.samples.get("train")
    assert check._other[0] is None  # the first epoch: the model learns from scratch
    assert all(levels.dtype == np.uint8 and len(levels) == train.size for levels in check._other[1:])
    assert len(check._other) == len(check._history) == EPOCHS
    assert check._other_class.dtype == np.uint8 and (check._other_class[: train.size] < CLASSES).all()
    assert check.early_window() == range(1, check.early_epochs())
