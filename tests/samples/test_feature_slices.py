"""weak-slice's automatic feature ranges on real Lightning and Keras fits of a table
(scikit-learn's breast_cancer, 569 rows, 30 columns): a planted subgroup with shifted inputs is
named by its input range without `slice_by=`, a class with 30% wrong labels is a WARNING, and
clean data raises no WARNING."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from mlcheck.samples import SampleOutputs, SplitSamples, tabular_features
from tests.lightning_trainer import quiet_trainer

EPOCHS = 40
COLUMN = 0  # mean radius


def _breast_cancer(shifted: bool):
    """(xt, yt, xv, yv, group): standardised rows, the last quarter for validation; with
    `shifted`, the validation rows in the top third of column 0 have every other column moved
    one standard deviation towards the other class's mean (the benchmark's planted subgroup)."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    n = int(0.75 * len(x))
    group = np.zeros(len(x), bool)
    group[n:] = x[n:, COLUMN] > np.quantile(x[n:, COLUMN], 2 / 3)
    if shifted:
        cols = np.arange(1, x.shape[1])
        for c in (0, 1):
            own, rest = x[:n][y[:n] == c], x[:n][y[:n] != c]
            x[np.ix_(np.flatnonzero(group & (y == c)), cols)] += np.sign(rest[:, cols].mean(0) - own[:, cols].mean(0))
    return x[:n], y[:n], x[n:], y[n:], group[n:]


def _checks():
    return [*default_checks(), NoisyLabels(), WeakSlice()]


def _lightning(xt, yt, xv, yv, indexed: bool = False):
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    torch.manual_seed(0)

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 2))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, i):
            x, y = (batch["x"], batch["y"]) if indexed else batch
            return nn.functional.cross_entropy(self(x), y)

        def validation_step(self, batch, i):
            x, y = (batch["x"], batch["y"]) if indexed else batch
            self.log("val_loss", nn.functional.cross_entropy(self(x), y))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    class Indexed(torch.utils.data.Dataset):  # the sample id is the data set index
        def __init__(self, x, y):
            self.x, self.y = torch.tensor(x), torch.tensor(y)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"x": self.x[i], "index": i, "y": self.y[i]}

    def loader(x, y, shuffle):
        ds = Indexed(x, y) if indexed else torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
        return torch.utils.data.DataLoader(ds, batch_size=32, shuffle=shuffle)

    cb = MLCheckCallback(checks=_checks(), log_dir=False, overfit_batch=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(MLP(), loader(xt, yt, True), loader(xv, yv, False))
    return cb


def _keras(xt, yt, xv, yv, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(30,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    cb = MLCheckCallback(checks=_checks(), log_dir=False, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(xt, yt, validation_data=(xv, yv), epochs=EPOCHS, batch_size=32, verbose=0, callbacks=[cb])
    return cb


def _weak(cb):
    return [f for f in cb.findings if f.check == "weak-slice"]


def _assert_names_the_subgroup(cb, xv, group):
    warned = [f for f in _weak(cb) if f.severity.value == "warning"]
    ranges = [f for f in warned if "feature" in f.evidence]
    assert ranges, [(f.evidence["slice"], f.severity.value) for f in _weak(cb)]
    best = ranges[0]
    values = xv[:, best.evidence["feature"]]
    rows = (values >= best.evidence["low"]) & (values <= best.evidence["high"])
    assert rows.sum() == best.evidence["size"]
    assert (rows & group).sum() >= 0.75 * rows.sum(), best.message  # the range is the subgroup's rows
    assert best.message.startswith(f"Slice feature {best.evidence['feature']} in [")
    # the class that holds most of the subgroup is the same weakness: folded in, not a second WARNING
    assert not [f for f in warned if f.evidence["slice"].startswith("class=")], [f.message for f in warned]


def test_lightning_names_a_shifted_subgroup_by_its_feature_range():
    xt, yt, xv, yv, group = _breast_cancer(shifted=True)
    cb = _lightning(xt, yt, xv, yv)
    _assert_names_the_subgroup(cb, xv, group)


def test_lightning_batches_with_indices_bring_their_inputs_too():
    xt, yt, xv, yv, group = _breast_cancer(shifted=True)
    cb = _lightning(xt, yt, xv, yv, indexed=True)
    val = cb.monitor.run.samples.get("val")
    assert sorted(val.ids.tolist()) == list(range(len(xv)))  # ids are the indices, not hashes
    _assert_names_the_subgroup(cb, xv, group)


def test_lightning_warns_on_a_class_with_wrong_labels():
    # the benchmark's planted class (bench_label_noise.py --slices, seed 0): benign rows
    # labelled malignant, 30% of class 0's labels wrong, in training and validation. The 143
    # validation rows alone show 21 of 77 wrong against 7 of 66 (gap 16.7 points, z 2.5: under
    # the family-wise bar and the 20-point gap); the training pass is the second sample
    xt, yt, xv, yv, _ = _breast_cancer(shifted=False)
    y = np.concatenate([yt, yv])
    rng = np.random.default_rng(200)
    bad = int(rng.integers(2))
    y[rng.choice(np.flatnonzero(y != bad), int(round(0.3 / 0.7 * (y == bad).sum())), replace=False)] = bad
    yt, yv = y[: len(yt)], y[len(yt) :]
    cb = _lightning(xt, yt, xv, yv)
    warned = {f.evidence["slice"]: f for f in _weak(cb) if f.severity.value == "warning"}
    assert list(warned) == ["class=0"], [f.message for f in _weak(cb)]
    evidence = warned["class=0"].evidence
    assert evidence["train_error_rate"] - evidence["train_rest_error_rate"] >= 0.10
    assert "in the last training pass" in warned["class=0"].message


def test_lightning_clean_table_raises_no_weak_slice_warning():
    xt, yt, xv, yv, _ = _breast_cancer(shifted=False)
    cb = _lightning(xt, yt, xv, yv)
    assert cb.monitor.run.samples.get("val").feature_values() is not None  # the ranges were judged
    assert not [f for f in _weak(cb) if f.severity.value != "info"], [f.message for f in _weak(cb)]


def test_keras_names_a_shifted_subgroup_by_its_feature_range(tmp_path, monkeypatch):
    xt, yt, xv, yv, group = _breast_cancer(shifted=True)
    cb = _keras(xt, yt, xv, yv, tmp_path, monkeypatch)
    _assert_names_the_subgroup(cb, xv, group)


def test_only_validation_rows_of_tables_keep_their_inputs():
    assert tabular_features(np.zeros((4, 30), np.float64)).dtype == np.float32
    assert tabular_features(np.zeros((4, 784), np.float32)) is None  # an image's pixels: not a table
    assert tabular_features(np.zeros((4, 1, 8, 8), np.float32)) is None
    assert tabular_features(np.zeros((4, 30), np.int64)) is None  # token ids
    store = SplitSamples()
    ids = np.arange(5, dtype=np.uint64)
    out = dict(labels=np.zeros(5, int), true_prob=np.full(5, 0.9), predicted=np.zeros(5, int))
    store.add(SampleOutputs("val", 0, ids, features=np.arange(10, dtype=np.float32).reshape(5, 2), **out))
    store.add(SampleOutputs("val", 1, ids + 3, **out))  # rows without inputs: NaN
    values = store.feature_values()
    assert values.shape == (8, 2) and np.isnan(values[5:]).all() and values[4, 1] == 9
    with pytest.raises(ValueError, match="features"):
        SampleOutputs("val", 0, ids, features=np.zeros((4, 2), np.float32), **out)


def test_ranges_with_tied_values_name_the_rows_they_test():
    from mlcheck.monitor import Monitor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    x[:120, 2] = 0.0  # tied values: its bottom decile, quartile and third are the same rows
    y = rng.integers(0, 3, 300)
    weak = x[:, 1] > np.quantile(x[:, 1], 0.75)
    monitor = Monitor(checks=[WeakSlice()])
    for epoch in range(3):
        predicted = np.where(weak & (rng.random(300) < 0.6), (y + 1) % 3, y)
        for start in range(0, 300, 64):
            rows = slice(start, start + 64)
            ids = np.arange(300, dtype=np.uint64)[rows]
            out = SampleOutputs("val", epoch, ids, y[rows], np.full(len(ids), 0.9), predicted[rows], features=x[rows])
            monitor.log_samples(out)
    found = [f for f in monitor.close() if f.check == "weak-slice"]
    assert [f.evidence["slice"] for f in found] == ["feature 1 top quartile"], [f.message for f in found]
    ev = found[0].evidence
    rows = (x[:, 1] >= ev["low"]) & (x[:, 1] <= ev["high"])
    assert (rows == weak).all() and ev["size"] == 75 and found[0].severity.value == "warning"
    assert ev["error_rate"] == (predicted != y)[weak].mean()
