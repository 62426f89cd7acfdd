"""Sample ids from the loader's own indices (Lightning): a `(x, y)` batch's rows are hashed
once, in the first epoch that sees them, then their ids are read from the index the loader's
batch sampler gave; the loader yields what it yields without mlcheck, its sampler keeps its
class for `isinstance` and gets it back after the fit, and a data set that changes its rows at
random (augmentation) is hashed every epoch, as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from tests.lightning_trainer import quiet_trainer

EPOCHS = 4


class _Rows:
    """A map-style data set of rows, each with a little random jitter when `jitter`."""

    def __init__(self, a, b, jitter):
        self.a, self.b, self.jitter = a, b, jitter

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        import torch

        row = self.a[i]
        return (row + 0.01 * torch.rand(row.shape) if self.jitter else row), self.b[i]


def _fit(tmp_path, *, callback=True, jitter=False, workers=0, seen=None, one_loader=False):
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor((x[:800] / 16).astype(np.float32)), torch.tensor(y[:800].astype(np.int64))

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, i):
            if seen is not None:
                seen.append(("train", batch[0].numpy().copy()))
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, i):
            if seen is not None and not self.trainer.sanity_checking:
                seen.append(("val", batch[0].numpy().copy()))
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle, size):
        return torch.utils.data.DataLoader(
            _Rows(a, b, jitter), batch_size=size, shuffle=shuffle, num_workers=workers, persistent_workers=workers > 0
        )

    train, val = loader(x[:600], y[:600], True, 32), loader(x[600:], y[600:], False, 64)
    if one_loader:  # the training loader validates too
        val = train
    callbacks = []
    if callback:
        checks = [*default_checks(), NoisyLabels(), WeakSlice()]
        callbacks = [MLCheckCallback(checks=checks, overfit_batch=False, log_dir=tmp_path)]
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=callbacks, accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), train, val)
    return (callbacks[0] if callbacks else None), train, val


def _hashed_rows(monkeypatch):
    """Counts the rows `integrations.torch_samples` hashes. The first pass's fingerprints are not
    taken (`PassFingerprints`, their own test file): the recording hashes the first epoch's rows
    itself, as these counts expect."""
    import mlcheck.integrations.torch_samples as torch_samples
    from mlcheck.live import LiveRun

    monkeypatch.setattr(LiveRun, "keep_pass_fingerprints", lambda self, keep=True: None)

    rows: list[int] = []
    original = torch_samples.sample_ids

    def counting(inputs=None, indices=None):
        if inputs is not None:
            rows.append(len(inputs))
        return original(inputs, indices)

    monkeypatch.setattr(torch_samples, "sample_ids", counting)
    return rows


@pytest.mark.parametrize("workers", [0, 2])
def test_rows_are_hashed_once_and_their_ids_read_from_the_loaders_indices(tmp_path, monkeypatch, workers):
    from torch.utils.data import BatchSampler

    hashed = _hashed_rows(monkeypatch)
    seen: list = []
    cb, train, val = _fit(tmp_path, workers=workers, seen=seen)
    # 800 samples an epoch for 4 epochs (3,200 rows hashed without the loader's indices): each
    # row hashed once, then only the first and last rows of each step. The first epoch's
    # iterator starts before any callback hook; its indices are logged where it has not drawn a
    # batch yet, not where worker processes prefetch: then the training rows are hashed twice
    steps = 2 * EPOCHS * (19 + 4)
    assert sum(hashed) <= (2 if workers else 1) * 600 + 200 + steps, hashed
    store = cb.monitor.run.samples
    for split, size in (("train", 600), ("val", 200)):
        expected = np.concatenate([fingerprints(canonical_rows(x)) for s, x in seen if s == split])
        data = store.get(split)
        assert sorted(data.ids.tolist()) == sorted(set(expected.tolist()))  # the ids are the rows' hashes
        assert data.size == size and data.column("epochs").min() == EPOCHS
    for loader in (train, val):
        assert type(loader.batch_sampler) is BatchSampler  # its own class back
        assert loader.batch_sampler.sampler is loader.sampler  # and its own sampler


def test_the_loader_yields_what_it_yields_without_mlcheck(tmp_path):
    plain: list = []
    watched: list = []
    _fit(tmp_path / "plain", callback=False, seen=plain)
    _fit(tmp_path / "watched", seen=watched)
    assert len(plain) == len(watched)
    assert all(a == b and np.array_equal(x, z) for (a, x), (b, z) in zip(plain, watched))


def test_rows_that_change_under_their_index_are_hashed_every_epoch(tmp_path, monkeypatch):
    hashed = _hashed_rows(monkeypatch)
    seen: list = []
    cb, _, _ = _fit(tmp_path, jitter=True, seen=seen)
    # every epoch's training rows are new rows (random jitter): each is its own sample, as the
    # content hash has always made them; none is given the id its index had in an earlier epoch
    expected = np.concatenate([fingerprints(canonical_rows(x)) for s, x in seen if s == "train"])
    train = cb.monitor.run.samples.get("train")
    assert sorted(train.ids.tolist()) == sorted(set(expected.tolist()))
    assert train.size == EPOCHS * 600
    assert sum(hashed) >= EPOCHS * 800


def test_one_loader_for_training_and_validation_gets_its_class_back(tmp_path):
    from torch.utils.data import BatchSampler

    seen: list = []
    cb, train, _ = _fit(tmp_path, seen=seen, one_loader=True)
    store = cb.monitor.run.samples
    for split in ("train", "val"):
        expected = np.concatenate([fingerprints(canonical_rows(x)) for s, x in seen if s == split])
        assert sorted(store.get(split).ids.tolist()) == sorted(set(expected.tolist()))
        assert store.get(split).column("epochs").min() == EPOCHS
    assert type(train.batch_sampler) is BatchSampler


@pytest.mark.parametrize("jitter", [False, True])
def test_each_steps_first_and_last_rows_are_checked_alike_by_one_gather_or_step_by_step(tmp_path, monkeypatch, jitter):
    # small steps (32 x 64 values here) have their first and last rows taken by one concatenation
    # and one gather, large ones by indexing each step: the same rows, so the same ids, the same
    # samples.csv, and rows that change under their index are caught either way
    import mlcheck.integrations.torch_samples as torch_samples

    assert 32 * 64 < torch_samples._GATHER_BELOW  # the digits steps take the gather
    files = []
    for gather_below, name in ((torch_samples._GATHER_BELOW, "gather"), (0, "steps")):
        monkeypatch.setattr(torch_samples, "_GATHER_BELOW", gather_below)
        cb, _, _ = _fit(tmp_path / name, jitter=jitter)
        train = cb.monitor.run.samples.get("train")
        assert train.size == (EPOCHS * 600 if jitter else 600)  # jittered rows: new samples every epoch
        files.append((tmp_path / name / "mlcheck" / "samples.csv").read_bytes())
    assert files[0] == files[1]
