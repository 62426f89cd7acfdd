"""The framework-free per-sample store, the numpy reduction of class scores and the checks'
statistics, on small hand-made inputs."""

from __future__ import annotations

import numpy as np

from mlcheck import Monitor
from mlcheck.checks.samples import NoisyLabels, WeakSlice, holm, worse_than_rest, worse_than_rest_in_strata
from mlcheck.live import LiveOptions, LiveRun
from mlcheck.samples import SampleOutputs, SplitSamples, reduce_scores, sample_ids, wilson_interval


def test_store_summarises_each_sample_over_epochs_by_id():
    store = SplitSamples()
    for epoch, probs in enumerate(([0.2, 0.9, 0.1], [0.4, 0.7, 0.3])):
        order = [2, 0, 1] if epoch else [0, 1, 2]  # shuffled: ids, not positions, identify samples
        ids = np.array([10, 20, 30], np.uint64)[order]
        store.add(
            SampleOutputs(
                "train",
                epoch,
                ids,
                np.array([1, 0, 2])[order],
                np.array(probs)[order],
                np.array([0, 0, 1])[order],
            )
        )
    row = {int(i): k for k, i in enumerate(store.ids)}
    conf, var, corr = store.confidence(), store.variability(), store.correctness()
    assert np.isclose(conf[row[10]], 0.3) and np.isclose(var[row[10]], 0.1)
    assert np.isclose(conf[row[20]], 0.8) and corr[row[20]] == 1.0
    assert corr[row[30]] == 0.0 and store.wrong_pred[row[30]] == 1
    assert store.BYTES_PER_SAMPLE <= 48  # one summary per sample, whatever the number of epochs


def test_reduce_scores_reads_logits_probabilities_and_one_hot():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    labels, prob, pred, other, other_class = reduce_scores(logits, np.array([0, 2]))
    assert list(labels) == [0, 2] and list(pred) == [0, 1]
    assert np.isclose(prob[0], np.exp(2) / np.exp([2, 0, -1]).sum())
    # the likeliest class other than the label: the runner-up when the label wins, else the winner
    assert list(other_class) == [1, 1] and np.isclose(other[1], np.exp(3) / np.exp([0, 3, 0]).sum())
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    _, prob, _, other, other_class = reduce_scores(probs, np.eye(3)[[0, 1]])
    assert np.allclose(prob, [0.7, 0.8]) and np.allclose(other, [0.2, 0.1]) and list(other_class) == [1, 0]
    _, prob, pred, other, other_class = reduce_scores(np.array([[0.9], [0.2]]), np.array([1.0, 1.0]))  # sigmoid
    assert np.allclose(prob, [0.9, 0.2]) and list(pred) == [1, 0]
    assert np.allclose(other, [0.1, 0.8]) and list(other_class) == [0, 0]
    assert isinstance(reduce_scores(np.zeros((4, 3, 2)), np.zeros(4)), str)
    assert isinstance(reduce_scores(np.zeros((2, 3)), np.array([0.5, 1.2])), str)  # regression


def test_ids_are_content_hashes_unless_indices_are_given():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert (sample_ids(x) == sample_ids(x[[0, 1, 2, 3, 4]].astype(np.float64))).all()
    assert len(set(sample_ids(x).tolist())) == 5
    assert list(sample_ids(indices=np.array([4, 7]))) == [4, 7]


def test_statistics():
    low, high = wilson_interval(10, 100)
    assert 0.05 < low < 0.1 < high < 0.18
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    z, p = worse_than_rest(30, 100, 30, 900)
    assert z > 5 and p < 1e-6


def _run_epochs(live, n=400, noisy=(), epochs=6, rng=None):
    rng = rng or np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    labels = np.arange(n) % 4
    for epoch in range(epochs):
        # a model that learns the other samples: their mean probability 0.75 over the run
        prob = np.clip(0.55 + 0.08 * epoch + rng.normal(0, 0.05, n), 0, 1)
        prob[list(noisy)] = 0.05
        pred = np.where(prob > 0.3, labels, (labels + 1) % 4)
        live.observe_samples("train", epoch, labels=labels, true_prob=prob, predicted=pred, inputs=x)
        live.monitor.log_epoch(epoch, train_loss=1.0)
    return x


def test_noisy_labels_counts_flagged_samples_and_warns_above_clean_noise(tmp_path):
    live = LiveRun(LiveOptions(), [NoisyLabels()], log_dir=tmp_path)
    x = _run_epochs(live, noisy=range(0, 400, 10))  # 10% contradicted every epoch
    found = live.close()
    (finding,) = [f for f in found if f.check == "noisy-labels"]
    assert finding.severity.value == "warning" and finding.evidence["flagged"] == 40
    assert finding.evidence["noise_rate_low"] > 0.033
    rows = (tmp_path / "mlcheck" / "samples.csv").read_text().splitlines()
    assert rows[0].startswith("rank,split,id,given_label,predicted_label,confidence")
    flagged_ids = {int(r.split(",")[2]) for r in rows[1:41]}
    assert flagged_ids == set(sample_ids(x[::10]).tolist())


def test_noisy_labels_stays_info_at_the_noise_of_clean_data():
    live = LiveRun(LiveOptions(), [NoisyLabels()], default_sinks=False)
    _run_epochs(live, noisy=range(0, 400, 100))  # 1%
    found = [f for f in live.close() if f.check == "noisy-labels"]
    assert [f.severity.value for f in found] == ["info"]


def test_weak_slice_finds_a_bad_class_and_a_bad_user_slice_with_holm():
    monitor = Monitor([WeakSlice()], default_sinks=False)
    rng = np.random.default_rng(1)
    n = 1000
    labels = np.arange(n) % 5
    region = rng.integers(0, 4, n)
    wrong = rng.random(n) < 0.03
    wrong |= (labels == 3) & (rng.random(n) < 0.35)
    wrong |= (region == 2) & (rng.random(n) < 0.25)
    pred = np.where(wrong, (labels + 1) % 5, labels)
    ids = np.arange(n, dtype=np.uint64)
    probs = np.where(wrong, 0.2, 0.9)
    early = Monitor([WeakSlice()], default_sinks=False)  # one pass: a model still learning
    early.log_samples(SampleOutputs("val", 0, ids, labels, probs, pred, slices=region))
    assert {f.severity.value for f in early.close()} == {"info"}
    for epoch in range(3):  # the same gaps three passes in a row: settled
        monitor.log_samples(SampleOutputs("val", epoch, ids, labels, probs, pred, slices=region))
    found = monitor.close()
    names = {f.evidence["slice"]: f.severity.value for f in found}
    assert names.get("class=3") == "warning" and names.get("slice=2") == "warning"
    assert all(k in ("class=3", "slice=2") for k in names)


def _two_class_pass(split: str, epoch: int, tallies: tuple[tuple[int, int], tuple[int, int]]) -> SampleOutputs:
    """One pass over a two-class split with the given (rows, errors) per class."""
    labels = np.concatenate([np.full(rows, c) for c, (rows, _) in enumerate(tallies)])
    wrong = np.concatenate([np.arange(rows) < errors for rows, errors in tallies])
    offset = 0 if split == "train" else 10_000  # other rows than the training ones
    ids = np.arange(offset, offset + len(labels), dtype=np.uint64)
    return SampleOutputs(split, epoch, ids, labels, np.where(wrong, 0.3, 0.9), np.where(wrong, 1 - labels, labels))


def _weak_slices_of(val: tuple, train: tuple, passes: int = 4) -> dict[str, str]:
    monitor = Monitor([WeakSlice()], default_sinks=False)
    for epoch in range(passes):
        monitor.log_samples(_two_class_pass("train", epoch, train))
        monitor.log_samples(_two_class_pass("val", epoch, val))
    return {f.evidence["slice"]: f.severity.value for f in monitor.close()}


def test_weak_slice_warns_on_a_class_the_model_cannot_fit_in_training_either():
    # breast_cancer with 30% of class 0's labels wrong (Lightning, seed 0, end of the run):
    # 21 of 77 validation rows wrong against 7 of 66 (gap 16.7 points, z 2.5: under the
    # family-wise bar on validation alone), and 41 of 226 training rows against 4 of 200
    assert _weak_slices_of(val=((77, 21), (66, 7)), train=((226, 41), (200, 4))) == {"class=0": "warning"}
    # the same validation tallies on their own (no training pass counted): no WARNING
    assert _weak_slices_of(val=((77, 21), (66, 7)), train=((5, 0), (5, 0))).get("class=0") != "warning"


def test_weak_slice_keeps_a_harder_class_the_model_fits_in_training_below_warning():
    # clean breast_cancer: malignant rows are harder (5 of 57 wrong on validation, 0 of 86
    # benign) but fitted in training (1 of 155 against 0 of 271): at most INFO
    assert "warning" not in _weak_slices_of(val=((57, 5), (86, 0)), train=((155, 1), (271, 0))).values()
    # a class 15 points worse on validation but fitted in training: under warn_gap, INFO
    assert _weak_slices_of(val=((80, 14), (80, 2)), train=((240, 2), (240, 1))) == {"class=0": "info"}


def test_cochran_mantel_haenszel_adds_strata_and_reduces_to_the_pooled_test():
    z1, _ = worse_than_rest(21, 77, 7, 66)
    z_one, _ = worse_than_rest_in_strata([(21, 77, 7, 66)])
    assert np.isclose(z_one, z1 * np.sqrt(142 / 143))
    z_both, p_both = worse_than_rest_in_strata([(21, 77, 7, 66), (41, 226, 4, 200)])
    assert z_both > 5 > z1 and p_both < 1e-6
    # strata with different base rates are compared within themselves: no slice effect in
    # either, none in all (pooling them would show one: the slice has more rows where errors abound)
    z_none, _ = worse_than_rest_in_strata([(30, 100, 3, 10), (1, 10, 10, 100)])
    assert abs(z_none) < 1e-9


def test_a_repeated_id_counts_each_time_whether_the_store_knows_it_or_not():
    # identity guard for the lookup without sorting: a repeat among known ids (found by stamping
    # their rows) and one among new ids (found by np.unique) both take np.add.at's path
    store = SplitSamples()
    ids = np.array([1, 2, 3], np.uint64)
    store.add(SampleOutputs("train", 0, ids, np.array([0, 1, 2]), np.array([0.5, 0.5, 0.5]), np.array([0, 1, 2])))
    batch = np.array([2, 9, 2, 9, 3], np.uint64)  # 2 known twice, 9 new twice
    prob = np.array([0.25, 0.5, 0.75, 0.125, 1.0])
    store.add(SampleOutputs("train", 1, batch, np.array([1, 4, 1, 4, 2]), prob, np.array([1, 4, 0, 0, 2])))
    row = {int(i): k for k, i in enumerate(store.ids)}
    assert store.size == 4 and list(store.rows(np.array([9, 7, 2], np.uint64))) == [row[9], -1, row[2]]
    assert store.epochs[row[2]] == 3 and store.sum_prob[row[2]] == np.float32(0.5 + 0.25 + 0.75)
    assert store.epochs[row[9]] == 2 and store.sum_prob[row[9]] == np.float32(0.5 + 0.125)
    assert store.correct[row[2]] == 2 and store.correct[row[9]] == 1 and store.epochs[row[1]] == 1


def test_weak_slice_tallies_integer_keys_in_bins_as_sorted_keys_do():
    # identity guard for the bins of small non-negative integers (class labels): the same entries,
    # in the same (sorted) order, with the same float sums as np.unique's path gives
    from mlcheck.checks.samples import _DENSE_KEYS, _tally

    def by_sorting(table, kind, keys, wrong, loss):
        values, inverse = np.unique(keys, return_inverse=True)
        for i, value in enumerate(values.tolist()):
            entry = table.setdefault(f"{kind}={value}", [0.0, 0.0, 0.0])
            entry[0] += float((inverse == i).sum())
            entry[1] += np.bincount(inverse, weights=wrong)[i]
            entry[2] += np.bincount(inverse, weights=loss)[i]

    rng = np.random.default_rng(0)
    for dtype, high in ((np.int64, 10), (np.int16, 3), (np.uint8, 200), (np.uint64, 7), (np.int64, _DENSE_KEYS + 5)):
        fast, slow = {}, {}
        for _ in range(3):  # entries accumulate over blocks
            keys = rng.integers(0, high, 300).astype(dtype)
            if dtype is np.int64 and high == 10:
                keys[:3] = -1  # a negative key: sorted, not binned
            wrong, loss = rng.random(300) < 0.3, -np.log(rng.random(300))
            _tally(fast, "class", keys, wrong, loss)
            by_sorting(slow, "class", keys, wrong, loss)
        assert list(fast) == list(slow) and fast == slow, dtype
    empty: dict = {}
    _tally(empty, "class", np.array([], np.int64), np.array([], bool), np.array([]))
    assert empty == {}


def test_reduce_scores_takes_rows_within_allclose_bounds_as_probabilities():
    # rows summing to within 1e-3 (+ 1e-5) of 1 are taken as they are, np.allclose's bound
    near = np.array([[0.6, 0.401], [0.5, 0.501]])  # sums 1.001, 1.001
    _, prob, *_ = reduce_scores(near, np.array([0, 1]))
    assert np.array_equal(prob, [0.6, 0.501])
    beyond = np.array([[0.6, 0.402], [0.5, 0.5]])  # 1.002: taken for logits, a softmax
    _, prob, *_ = reduce_scores(beyond, np.array([0, 1]))
    assert np.isclose(prob[0], 1 / (1 + np.exp(0.402 - 0.6))) and prob[1] == 0.5
    for bad in (np.inf, np.nan):  # not probabilities either: a softmax, NaN in that row
        _, prob, *_ = reduce_scores(np.array([[bad, 0.0], [0.5, 0.5]]), np.array([0, 1]))
        assert np.isnan(prob[0]) and prob[1] == 0.5
