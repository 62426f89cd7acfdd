"""The class prior as a validation baseline (`loss-plateau`, key "val-prior"): the numbers of
`ClassPrior`, the boundaries of `prior_beaten`, and when the check judges at all."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcheck import Monitor, RunInfo, Severity
from mlcheck.checks.class_prior import ClassPrior, is_plain_accuracy, prior_beaten
from mlcheck.checks.optimization import LossPlateau

# breast_cancer's shares: 357 benign (1), 212 malignant (0); an 80/20 split of them
TRAIN = {0: 170, 1: 285}
VAL = {0: 42, 1: 72}


def test_prior_numbers_are_the_entropies_and_shares_of_the_counts():
    prior = ClassPrior.of(TRAIN, VAL)
    p = 285 / 455
    q = 72 / 114
    assert prior.entropy == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    assert prior.loss == pytest.approx(-(q * math.log(p) + (1 - q) * math.log(1 - p)))
    assert prior.val_entropy == pytest.approx(-(q * math.log(q) + (1 - q) * math.log(1 - q)))
    assert prior.val_entropy <= prior.loss  # Gibbs: no constant prediction beats the val shares
    assert (prior.majority_class, prior.majority_rate, prior.n_val) == (1, pytest.approx(q), 114)
    # z^2 / 2n below the validation labels' entropy
    assert prior.loss_bound(3.0) == pytest.approx(prior.val_entropy - 9 / 228)
    assert prior.accuracy_margin(3.0) == pytest.approx(3 * math.sqrt(q * (1 - q) / 114))


@pytest.mark.parametrize(
    ("train", "val"),
    [
        ({1: 100}, {1: 20}),  # one class: nothing to predict
        ({0: 50, 1: 50}, {}),  # no validation labels
        ({0: 50, 1: 50}, {0: 10, 2: 10}),  # a validation class training never saw (label-shift)
    ],
)
def test_no_prior_without_two_classes_and_matching_splits(train, val):
    assert ClassPrior.of(train, val) is None


def test_boundaries_of_beating_the_prior():
    prior = ClassPrior.of(TRAIN, VAL)
    bound = prior.loss_bound(3.0)
    eps = 1e-9
    assert not prior_beaten(prior, bound + eps, None, 3.0).beaten
    assert prior_beaten(prior, bound - eps, None, 3.0).loss_beaten
    assert not prior_beaten(prior, math.nan, None, 3.0).beaten  # a NaN loss beats nothing
    # accuracy: the majority rate plus 3 binomial standard errors
    acc_bound = prior.majority_rate + prior.accuracy_margin(3.0)
    assert not prior_beaten(prior, 1.0, acc_bound - eps, 3.0).beaten
    beaten = prior_beaten(prior, 1.0, acc_bound + eps, 3.0)
    assert beaten.accuracy_beaten and not beaten.loss_beaten and beaten.beaten
    # logged in percent
    assert prior_beaten(prior, 1.0, 100 * (acc_bound + 1e-6), 3.0).accuracy_beaten
    assert not prior_beaten(prior, 1.0, 100 * (acc_bound - 1e-6), 3.0).accuracy_beaten
    # more validation samples, a tighter bound: the same scores now beat it
    big = ClassPrior.of(TRAIN, {0: 4200, 1: 7200})
    assert big.loss_bound(3.0) > bound and prior_beaten(big, bound + 0.02, None, 3.0).loss_beaten


def test_imbalanced_model_slightly_above_majority_beats_the_prior_on_loss():
    # 93:7 with 76 validation samples: accuracy 0.947 is within noise of the 0.934 majority
    # rate, but a loss of 0.15 is far below the labels' entropy of 0.243
    prior = ClassPrior.of({0: 20, 1: 280}, {0: 5, 1: 71})
    verdict = prior_beaten(prior, 0.15, 0.947, 3.0)
    assert not verdict.accuracy_beaten and verdict.loss_beaten


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("val_accuracy", True),
        ("accuracy", True),
        ("val_acc", True),
        ("val_binary_accuracy", True),
        ("sparse_categorical_accuracy", True),
        ("val_balanced_accuracy", False),
        ("val_top5_acc", False),
        ("val_auc", False),
    ],
)
def test_plain_accuracy_names(name, plain):
    assert is_plain_accuracy(name) is plain


# -- the check on a Monitor ------------------------------------------------------------------


def _run(
    val_losses,
    *,
    val_acc=None,
    loss="binary_crossentropy",
    train=TRAIN,
    val=VAL,
    contiguous=True,
    **kwargs,
):
    """A run with labels counted over a first pass of both splits, then one epoch per value."""
    info = RunInfo(task="classification", num_classes=2, loss=loss)
    monitor = Monitor([LossPlateau(**kwargs)], default_sinks=False, info=info)
    rng = np.random.default_rng(0)
    for split, counts in (("train", train), ("val", val)):
        labels = rng.permutation(np.concatenate([np.full(n, c) for c, n in counts.items()]))
        for i, chunk in enumerate(np.array_split(labels, 8)):
            index = i if contiguous or i < 3 else i + 10
            monitor.log_batch(np.zeros((len(chunk), 3), np.float32), chunk, split=split, epoch=0, index=index)
    found = []
    for epoch, v in enumerate(val_losses):
        metrics = {} if val_acc is None else {"accuracy": val_acc[epoch]}
        train_loss = 0.69 - 0.02 * epoch  # memorising: the training loss falls
        found += monitor.log_epoch(epoch, train_loss=train_loss, val_loss=v, val_metrics=metrics)
    return [f for f in found if f.key == "val-prior"]


# memorisation: a dip near the prior, then up (breast_cancer with labels permuted)
MEMORISING = [0.64, 0.62, 0.621, 0.624, 0.648, 0.637, 0.63, 0.639]


def test_a_validation_loss_that_never_beats_the_prior_fires_once_at_the_sixth_validation():
    found = _run(MEMORISING, val_acc=[0.63, 0.63, 0.63, 0.62, 0.6, 0.64, 0.62, 0.6])
    assert len(found) == 1
    f = found[0]
    assert f.check == "loss-plateau" and f.severity == Severity.WARNING and f.epoch == 5
    ev = f.evidence
    assert ev["best_val_loss"] == 0.62 and ev["best_epoch"] == 1 and ev["val_samples"] == 114
    assert ev["majority_rate"] == pytest.approx(72 / 114, abs=1e-4) and ev["best_val_accuracy"] == 0.64
    assert "class prior" in f.message and "0.62" in f.message and "114 validation labels" in f.message
    assert "training loss fell" in f.message
    assert "shuffled and split together" in f.hint
    assert len(_run(MEMORISING + [0.64] * 10)) == 1  # once, however long the run goes on


def test_too_few_validations_are_not_judged():
    assert _run(MEMORISING[:5]) == []
    assert len(_run(MEMORISING[:5], min_validations=5)) == 1


def test_a_loss_below_the_bound_once_is_silent():
    prior = ClassPrior.of(TRAIN, VAL)
    losses = list(MEMORISING)
    losses[2] = prior.loss_bound(3.0) - 0.001
    assert _run(losses) == []
    losses[2] = prior.loss_bound(3.0) + 0.001
    assert len(_run(losses)) == 1


def test_an_accuracy_beyond_the_majority_rate_is_silent():
    acc = [0.63] * 8
    acc[3] = 0.632 + 3 * math.sqrt(0.632 * 0.368 / 114) + 0.005
    assert _run(MEMORISING, val_acc=acc) == []


def test_a_slow_learner_still_coming_down_waits():
    # near the prior for six epochs, but falling steadily: judged once it stops falling
    slow = [0.68, 0.665, 0.65, 0.635, 0.62, 0.605, 0.59, 0.575]
    assert _run(slow) == []


@pytest.mark.parametrize("loss", [None, "mse", "hinge", "binary_focal_crossentropy"])
def test_only_log_losses_are_set_against_the_prior(loss):
    assert _run(MEMORISING, loss=loss) == []


def test_a_sample_of_batches_gives_no_prior():
    assert _run(MEMORISING, contiguous=False) == []


def test_state_survives_a_checkpoint():
    check = LossPlateau()
    monitor = Monitor([check], default_sinks=False, info=RunInfo(task="classification", loss="bce"))
    monitor.log_batch(np.zeros((4, 1)), np.array([0, 1, 1, 1]), split="train", epoch=0, index=0)
    state = check.state_dict()
    fresh = LossPlateau()
    fresh.load_state_dict(state)
    assert fresh._labels.train.counts == {0: 1, 1: 3}


# -- the training-loss plateau at the training labels' entropy --------------------------------


def _train_plateau(level: float):
    """95:5 labels counted over a first pass; a training loss that falls from ln 2 to `level`
    within 40 steps and stays there (with noise) for 560 more; validation flat."""
    info = RunInfo(task="classification", num_classes=2, loss="bce", total_steps=600, max_epochs=10)
    monitor = Monitor([LossPlateau()], default_sinks=False, info=info)
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.r_[np.zeros(30, int), np.ones(570, int)])
    for i, chunk in enumerate(np.split(labels, 10)):
        monitor.log_batch(np.zeros((60, 3), np.float32), chunk, split="train", epoch=0, index=i)
    steps = np.arange(600)
    loss = np.where(steps < 40, 0.69 + (level - 0.69) * steps / 40, level) + rng.normal(0, 0.01, 600)
    found = []
    for epoch in range(10):
        found += monitor.log_steps(steps[epoch * 60 : (epoch + 1) * 60], loss=loss[epoch * 60 : (epoch + 1) * 60])
        found += monitor.log_epoch(epoch, step=epoch * 60 + 59, val_loss=level + 0.01)
    found += monitor.close()
    return [f for f in found if f.key == "train"]


def test_a_training_loss_stalled_at_the_label_entropy_is_a_plateau():
    # 95:5: the entropy is 0.199, far under 0.9 ln 2, and the loss fell 71% from ln 2: without
    # the prior it looked converged
    found = _train_plateau(0.2)
    assert len(found) == 1 and found[0].severity == Severity.WARNING
    assert found[0].evidence["prior_entropy"] == pytest.approx(0.1985, abs=1e-3)
    assert "entropy of the training labels" in found[0].message


def test_a_training_loss_stalled_below_the_label_entropy_is_not():
    # a hard imbalanced task (click-through-like) learns a little beyond the shares: not poor
    assert _train_plateau(0.17) == []


@pytest.mark.parametrize(("first_loss", "off"), [(32 * 2.4, False), (32 * 2.3026 * 3, True)])
def test_a_summed_loss_starts_off_chance_only_against_its_own_scale(first_loss, off):
    # a loss summed over 32 rows starts near 32 ln(10): on its own scale, not off chance (the
    # rules reading ln(C) keep judging it); three times that scale still is off chance
    from mlcheck.checks.class_prior import starts_off_chance

    info = RunInfo(task="classification", num_classes=10, loss="cross_entropy", loss_summed_over=32)
    monitor = Monitor([], default_sinks=False, info=info)
    monitor.log_steps(np.arange(1, 41), loss=np.linspace(first_loss, first_loss / 4, 40))
    ratio = starts_off_chance(monitor.run)
    assert (ratio is not None) == off
    if off:
        assert ratio == pytest.approx(3.0, rel=1e-3)
