"""`label-shift` judges whole passes only: a sample of batches from sorted data is silent."""

import numpy as np

from mlcheck import Monitor
from mlcheck.checks.label_shift import LabelShift


def _run(val_indices, val_labels_of):
    monitor = Monitor([LabelShift()], default_sinks=False)
    labels = np.repeat(np.arange(10), 40)
    rng = np.random.default_rng(0)
    for i, chunk in enumerate(np.split(rng.permutation(labels), 20)):
        monitor.log_batch(np.zeros((len(chunk), 2)), chunk, split="train", epoch=0, index=i)
    for i in val_indices:
        monitor.log_batch(np.zeros((20, 2)), np.full(20, val_labels_of(i)), split="val", epoch=0, index=i)
    monitor.log_epoch(0, train_loss=1.0, val_loss=1.0)
    return [f.check for f in monitor.findings]


def test_whole_validation_pass_of_other_classes_fires():
    assert _run(range(6), lambda i: 8 + i % 2) == ["label-shift"]


def test_whole_validation_pass_like_training_is_silent():
    assert _run(range(10), lambda i: i) == []


def test_sampled_batches_of_sorted_validation_data_are_silent():
    # batches 0-2, then 100: what the callbacks sample when the full pass is off
    assert _run([0, 1, 2, 100], lambda i: 0) == []


def test_loss_plateau_and_label_shift_count_each_batch_once(monkeypatch):
    """Both checks need the first pass's class counts: a batch's labels are read once for both,
    and label-shift's verdict is the same as when it runs alone."""
    import mlcheck.checks.data as data
    from mlcheck.checks import label_shift, optimization
    from mlcheck.checks.optimization import LossPlateau

    reads = []
    real = data.class_labels

    def counted(targets, *args, **kwargs):
        reads.append(len(targets))
        return real(targets, *args, **kwargs)

    # wherever it is read from (the checks read it themselves before they shared the counts)
    for module in (data, label_shift, optimization):
        monkeypatch.setattr(module, "class_labels", counted, raising=False)
    monitor = Monitor([LossPlateau(), LabelShift()], default_sinks=False)
    labels = np.repeat(np.arange(10), 40)
    rng = np.random.default_rng(0)
    for i, chunk in enumerate(np.split(rng.permutation(labels), 20)):
        monitor.log_batch(np.zeros((len(chunk), 2)), chunk, split="train", epoch=0, index=i)
    for i in range(6):
        monitor.log_batch(np.zeros((20, 2)), np.full(20, 8 + i % 2), split="val", epoch=0, index=i)
    monitor.log_epoch(0, train_loss=1.0, val_loss=1.0)
    assert len(reads) == 26
    assert [f.check for f in monitor.findings] == ["label-shift"]


def _two_class_findings(train_counts, val_counts):
    """Findings of label-shift on whole passes of two classes with the given counts."""
    monitor = Monitor([LabelShift()], default_sinks=False)
    rng = np.random.default_rng(0)
    for split, counts in (("train", train_counts), ("val", val_counts)):
        labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        for i, chunk in enumerate(np.array_split(labels, max(1, len(labels) // 32))):
            monitor.log_batch(np.zeros((len(chunk), 2)), chunk, split=split, epoch=0, index=i)
    monitor.log_epoch(0, train_loss=1.0, val_loss=1.0)
    return [f for f in monitor.findings if f.check == "label-shift"]


def test_training_resampled_to_balance_is_info_not_warning():
    """batch 26's h07: 'is it a 0' oversampled 8x in training (after the split), validation 9:1."""
    # oversampled to equal, oversampled part of the way, undersampled
    for train_counts, val_counts in (([1260, 1120], [360, 40]), ([1000, 700], [380, 20]), ([140, 140], [360, 40])):
        found = _two_class_findings(train_counts, val_counts)
        assert [(f.severity.value, f.key) for f in found] == [("info", "rebalanced")], (train_counts, found)
        assert "resampled on purpose" in found[0].message


def test_training_skewed_past_balance_or_missing_a_class_keeps_the_warning():
    # training's minority became the majority: not a move towards equal shares
    assert [f.key for f in _two_class_findings([300, 900], [360, 40])] == ["label-shift"]
    # validation the rarer class's: training moved away from balance
    assert [f.key for f in _two_class_findings([700, 700], [40, 360])] == ["rebalanced"]
    found = _two_class_findings([700, 700], [400, 0])  # a class missing from validation
    assert [(f.severity.value, f.key) for f in found] == [("warning", "label-shift")]
