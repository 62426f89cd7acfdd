"""The store's rows found by a gather of each data set index's row (issue 15, store17): where the
adapter knows each row's data set index besides its id (Lightning's `LoaderIndices`, Keras on
torch through fit's own `DataLoader`, a batch that carries its indices), the store keeps the row
of each index and finds a row it has seen by a gather, not a binary search of the epoch's shuffled
ids. The ids are compared with the gathered rows' ids, so an index that names another sample is
looked up by its id; what the store holds is that of the search, column by column."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from mlcheck.samples import SampleOutputs, SplitSamples, merge_outputs
from tests.lightning_trainer import quiet_trainer

EPOCHS = 3


def _outputs(rng, split, epoch, ids, positions):
    n = len(ids)
    return SampleOutputs(
        split,
        epoch,
        ids,
        labels=rng.integers(0, 5, n),
        true_prob=rng.random(n),
        predicted=rng.integers(0, 5, n),
        other_prob=rng.random(n),
        other_class=rng.integers(0, 5, n),
        positions=positions,
    )


def _columns(store: SplitSamples) -> dict[str, np.ndarray]:
    names = ["ids", *SplitSamples._FIELDS]
    return {n: (store.ids if n == "ids" else store.column(n)).copy() for n in names}


@pytest.mark.parametrize("seed", range(6))
def test_store17_gathered_rows_hold_what_the_search_holds(seed):
    """Epochs of shuffled hand-overs (some merged, some with one content at two indices, one
    epoch whose data set changed under the same indices, some without indices): every column
    equal to the store's without the indices, each epoch after the first gathered."""
    rng = np.random.default_rng(seed)
    size = 300
    contents = rng.integers(0, 2**63, size, dtype=np.uint64)
    contents[:20] = contents[20:40]  # one content at two indices: one id, one row
    gathered, searched = SplitSamples(), SplitSamples()
    for epoch in range(6):
        if epoch == 4:  # another data set under the same indices: its ids are searched
            contents = contents.copy()
            contents[rng.choice(size, 30, replace=False)] = rng.integers(0, 2**63, 30, dtype=np.uint64)
        order = rng.permutation(size)
        cuts = np.sort(rng.choice(np.arange(1, size), 4, replace=False))
        parts = np.split(order, cuts)
        with_positions = [_outputs(rng, "train", epoch, contents[p], p) for p in parts]
        if epoch == 2:  # a hand-over without indices (hashed rows): searched
            with_positions[1] = SampleOutputs(**{**with_positions[1].__dict__, "positions": None})
        without = [SampleOutputs(**{**o.__dict__, "positions": None}) for o in with_positions]
        merge = epoch % 2 == 1
        for a, b in zip(*(merge_outputs(h) if merge else h for h in (with_positions, without))):
            gathered.add(a)
            searched.add(b)
            assert np.array_equal(gathered.rows_of(a), searched.rows_of(b))
    expected = _columns(searched)
    for name, values in _columns(gathered).items():
        assert np.array_equal(values, expected[name]), name
    assert searched.gathers == 0
    assert gathered.gathers >= 5 and gathered.searches < searched.searches


def test_store17_indices_out_of_a_data_sets_range_are_not_kept():
    """Integers far above the number of samples (ids taken for indices) keep no row per index."""
    rng = np.random.default_rng(0)
    store = SplitSamples()
    ids = np.arange(10, dtype=np.uint64) * (1 << 40)
    for epoch in range(2):
        store.add(_outputs(rng, "train", epoch, ids, ids.astype(np.int64)))
    assert store.gathers == 0 and store.searches == 2 and len(store._index_rows) == 0
    store.add(_outputs(rng, "train", 2, ids, np.linspace(0, 1, 10)))  # not integers: searched
    assert store.searches == 3


def _searches(monkeypatch):
    """(split, epoch) of each search of the store's sorted ids (`find_sorted` in mlcheck.samples)."""
    import mlcheck.samples as samples

    calls: list[tuple[str, int]] = []
    now: list = [None]
    add = samples.SampleStore.add
    find = samples.find_sorted

    def adding(self, out):
        now[0] = (out.split, out.epoch)
        return add(self, out)

    def finding(keys, queries):
        if len(keys):  # the split's first hand-over searches nothing
            calls.append(now[0])
        return find(keys, queries)

    monkeypatch.setattr(samples.SampleStore, "add", adding)
    monkeypatch.setattr(samples, "find_sorted", finding)
    return calls


def _lightning_fit(log_dir, *, indexed_batches=False):
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor((x[:800] / 16).astype(np.float32)), torch.tensor(y[:800].astype(np.int64))

    class Indexed(torch.utils.data.Dataset):
        def __init__(self, a, b):
            self.a, self.b = a, b

        def __len__(self):
            return len(self.a)

        def __getitem__(self, i):
            return {"x": self.a[i], "y": self.b[i], "index": i}

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def _xy(self, batch):
            return (batch["x"], batch["y"]) if isinstance(batch, dict) else batch

        def training_step(self, batch, i):
            inputs, targets = self._xy(batch)
            return nn.functional.cross_entropy(self(inputs), targets)

        def validation_step(self, batch, i):
            inputs, targets = self._xy(batch)
            self.log("val_loss", nn.functional.cross_entropy(self(inputs), targets))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle, size):
        data = Indexed(a, b) if indexed_batches else torch.utils.data.TensorDataset(a, b)
        return torch.utils.data.DataLoader(data, batch_size=size, shuffle=shuffle)

    checks = [*default_checks(), NoisyLabels(), WeakSlice()]
    kwargs = {"batch_to_arrays": lambda b: (b["x"], b["y"])} if indexed_batches else {}
    callback = MLCheckCallback(checks=checks, overfit_batch=False, log_dir=log_dir, **kwargs)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[callback], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader(x[:600], y[:600], True, 32), loader(x[600:], y[600:], False, 64))
    return callback


def _same_results(a, b, tmp_path):
    files = [tmp_path / d / "mlcheck" / "samples.csv" for d in (a, b)]
    return files[0].read_bytes() == files[1].read_bytes()


@pytest.mark.parametrize("indexed_batches", [False, True])
def test_store17_lightning_store_gathers_rows_after_the_first_epoch(tmp_path, monkeypatch, indexed_batches):
    """A Lightning fit whose rows' data set indices are known (the loader's, or the batch's own
    `index`): the store searches its ids in each split's first epoch only (main: every epoch),
    and `samples.csv` and the findings are those of searching every epoch."""
    from mlcheck.samples import SplitSamples as Split

    calls = _searches(monkeypatch)
    cb = _lightning_fit(tmp_path / "gathered", indexed_batches=indexed_batches)
    assert not [c for c in calls if c[1] != 0], calls  # main: a search in every epoch after the first
    store = cb.monitor.run.samples
    for split in ("train", "val"):
        assert store.get(split).gathers == EPOCHS - 1, (split, store.get(split).gathers)
    monkeypatch.setattr(Split, "_gathered", lambda self, ids, positions: None)
    reference = _lightning_fit(tmp_path / "searched", indexed_batches=indexed_batches)
    assert any(epoch > 0 for _, epoch in calls)  # the reference searched every epoch
    assert _same_results("gathered", "searched", tmp_path)
    assert [(f.check, f.severity, f.message, f.evidence) for f in cb.findings] == [
        (f.check, f.severity, f.message, f.evidence) for f in reference.findings
    ]


def test_store17_keras_store_gathers_rows_from_fits_loader_indices(tmp_path, monkeypatch):
    """Keras on torch, 256-value rows (ids from fit's own loader's indices): the store searches
    its ids in each split's first epoch only (main: every epoch); `samples.csv` and the findings
    are those of searching every epoch."""
    import keras

    import mlcheck.integrations.keras.backend as backend
    from mlcheck.integrations.keras import MLCheckCallback
    from mlcheck.samples import SplitSamples as Split

    if backend.name() != "torch":  # JAX and TensorFlow iterate arrays without a DataLoader
        pytest.skip("fit draws its arrays through a torch DataLoader on the torch backend only")
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = np.repeat(x[:800] / 16, 4, axis=1).astype(np.float32), y[:800].astype(np.int64)

    def fit(log_dir):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input(shape=(256,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        cb = MLCheckCallback(
            checks=[*default_checks(), NoisyLabels(), WeakSlice()], log_dir=log_dir, overfit_batch=False
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(
                x[:600], y[:600], batch_size=32, shuffle=True, validation_data=(x[600:], y[600:]), epochs=EPOCHS,
                verbose=0, callbacks=[cb],
            )  # fmt: skip
        return cb

    calls = _searches(monkeypatch)
    cb = fit(tmp_path / "gathered")
    assert not [c for c in calls if c[1] != 0], calls  # main: a search in every epoch after the first
    store = cb.monitor.run.samples
    for split in ("train", "val"):
        assert store.get(split).gathers == EPOCHS - 1, (split, store.get(split).gathers)
    monkeypatch.setattr(Split, "_gathered", lambda self, ids, positions: None)
    reference = fit(tmp_path / "searched")
    assert any(epoch > 0 for _, epoch in calls)  # the reference searched every epoch
    assert _same_results("gathered", "searched", tmp_path)
    assert [(f.check, f.severity, f.message, f.evidence) for f in cb.findings] == [
        (f.check, f.severity, f.message, f.evidence) for f in reference.findings
    ]


@pytest.mark.parametrize("merged", [False, True])
def test_store17_weak_slice_keys_take_the_rows_the_store_found(monkeypatch, merged):
    """`weak-slice` with `slice_by=` keys reads each hand-over's store rows from the store's add
    (`rows_of`), per merged segment, instead of searching its ids again (main: one search per
    hand-over or segment); the rows kept per key are the same."""
    import mlcheck.samples as samples
    from mlcheck.run import RunState
    from mlcheck.samples import SampleStore

    rng = np.random.default_rng(3)
    hand_overs = [
        SampleOutputs(
            "val",
            epoch,
            rng.permutation(np.arange(i * 50, i * 50 + 50, dtype=np.uint64)),
            rng.integers(0, 4, 50),
            rng.random(50),
            rng.integers(0, 4, 50),
            slices=rng.choice(np.array(["a", "b", "c"]), 50),
        )
        for epoch in range(2)
        for i in range(3)
    ]
    outputs = merge_outputs(hand_overs) if merged else hand_overs
    check, run = WeakSlice(), RunState()
    run.samples = SampleStore()
    searches: list[int] = []
    find = samples.find_sorted
    for out in outputs:
        run.samples.add(out)
        monkeypatch.setattr(samples, "find_sorted", lambda k, q: searches.append(len(q)) or find(k, q))
        check.on_samples(out, run)
        monkeypatch.setattr(samples, "find_sorted", find)
    assert not searches, searches
    data = run.samples.get("val")
    last = [o for o in hand_overs if o.epoch == 1]
    expected: dict[str, list[list[int]]] = {}
    for out in last:
        rows = data.rows(out.ids)
        for key in sorted(set(out.slices.tolist())):
            expected.setdefault(f"slice={key}", []).append(rows[out.slices == key].tolist())
    assert {k: [r.tolist() for r in v] for k, v in check._key_rows["val"].items()} == expected
