"""Sample ids from the first pass's fingerprints (`PassFingerprints`): in the first epoch the live
core's full-pass checks (`train-val-overlap`, `feature-leakage`) fingerprint every row of small
samples, which is the very id the per-sample recording gives a row (`sample_ids`), so the
recording takes those fingerprints and hashes only each batch's first and last rows to check
them. `samples.csv` is the one of hashing every row; a batch index that names another batch
fails that check, and every row is hashed as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlcheck.checks.base import default_checks
from mlcheck.checks.hashing import canonical_rows, fingerprints
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from mlcheck.samples import PassFingerprints
from tests.lightning_trainer import quiet_trainer

EPOCHS = 3
BATCH = 32
TRAIN_STEPS, VAL_STEPS = 19, 7  # 600 and 200 rows in batches of 32


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:800] / 16).astype(np.float32), y[:800].astype(np.int64)


def _checks():
    return [*default_checks(), NoisyLabels(), WeakSlice()]


def _lightning_fit(log_dir):
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = _digits()
    x, y = torch.tensor(x), torch.tensor(y)

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, i):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def validation_step(self, batch, i):
            self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    def loader(a, b, shuffle):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(a, b), batch_size=BATCH, shuffle=shuffle)

    cb = MLCheckCallback(checks=_checks(), overfit_batch=False, log_dir=log_dir)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader(x[:600], y[:600], True), loader(x[600:], y[600:], False))
    return cb


def _keras_fit(log_dir):
    import keras

    from mlcheck.integrations.keras import MLCheckCallback

    x, y = _digits()
    keras.backend.clear_session()  # the layers' names (in the TensorBoard tags) the same in every fit
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=(64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    cb = MLCheckCallback(checks=_checks(), log_dir=log_dir, overfit_batch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            x[:600],
            y[:600],
            batch_size=BATCH,
            shuffle=True,
            validation_data=(x[600:], y[600:]),
            epochs=EPOCHS,
            verbose=0,
            callbacks=[cb],
        )
    return cb


FITS = {"lightning": _lightning_fit, "keras": _keras_fit}


def _hashed_rows(monkeypatch, framework):
    """Counts the rows the framework's recording hashes itself."""
    if framework == "lightning":
        import mlcheck.integrations.torch_samples as module
    else:
        import mlcheck.integrations.keras.samples as module
    rows: list[int] = []
    original = module.sample_ids

    def counting(inputs=None, indices=None):
        if inputs is not None:
            rows.append(len(inputs))
        return original(inputs, indices)

    monkeypatch.setattr(module, "sample_ids", counting)
    return rows


def _without_pass_fingerprints(monkeypatch):
    from mlcheck.live import LiveRun

    monkeypatch.setattr(LiveRun, "keep_pass_fingerprints", lambda self, keep=True: None)


def _findings(cb):
    return [(f.check, f.severity, f.message, f.evidence) for f in cb.findings]


def _events(log_dir):
    """The TensorBoard events mlcheck wrote under `log_dir`, as text, without their wall times
    and with the folder's own path (which the hints name) written `<log_dir>`."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    text = []
    for path in sorted(log_dir.rglob("*tfevents*")):
        text.append(str(path.parent.relative_to(log_dir)))
        for event in EventFileLoader(str(path)).Load():
            event.wall_time = 0
            text.append(str(event).replace(str(log_dir), "<log_dir>"))
    return text


@pytest.mark.parametrize("framework", ["lightning", "keras"])
def test_the_first_epochs_ids_come_from_the_first_pass(tmp_path, monkeypatch, framework):
    hashed = _hashed_rows(monkeypatch, framework)
    cb = FITS[framework](tmp_path / "pass")
    taken = sum(hashed)
    x, _ = _digits()
    store = cb.monitor.run.samples
    for split, rows in (("train", x[:600]), ("val", x[600:])):
        data = store.get(split)
        assert sorted(data.ids.tolist()) == sorted(set(fingerprints(canonical_rows(rows)).tolist()))
        assert data.column("epochs").min() == EPOCHS
    # the same run with every row hashed by the recording
    _without_pass_fingerprints(monkeypatch)
    del hashed[:]
    plain = FITS[framework](tmp_path / "hashed")
    steps = TRAIN_STEPS + VAL_STEPS
    # the first epoch's 800 rows are not hashed again: only each batch's first and last rows
    assert taken <= sum(hashed) - 800 + 2 * steps, (taken, sum(hashed))
    if framework == "lightning":  # later: the ids the loader's indices gave in the first epoch
        assert taken <= 2 * EPOCHS * steps, taken
    else:  # 64-value rows are hashed whole every epoch after the first (no probe)
        assert taken <= (EPOCHS - 1) * 800 + 2 * steps, taken
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("pass", "hashed")]
    assert csv[0] == csv[1]
    assert _findings(cb) == _findings(plain)
    events = [_events(tmp_path / d) for d in ("pass", "hashed")]
    assert events[0] and events[0] == events[1]


@pytest.mark.parametrize("framework", ["lightning", "keras"])
def test_fingerprints_kept_under_another_batchs_index_are_caught(tmp_path, monkeypatch, framework):
    # each batch's fingerprints kept under the next batch's index: the check of the first and
    # last rows fails, the recording stops taking them and hashes every row, as without them
    original = PassFingerprints.keep

    def shifted(self, split, epoch, parts, prints):
        original(self, split, epoch, [(start, index + 1) for start, index in parts], prints)

    hashed = _hashed_rows(monkeypatch, framework)
    monkeypatch.setattr(PassFingerprints, "keep", shifted)
    FITS[framework](tmp_path / "shifted")
    caught = sum(hashed)
    monkeypatch.setattr(PassFingerprints, "keep", original)
    _without_pass_fingerprints(monkeypatch)
    del hashed[:]
    FITS[framework](tmp_path / "hashed")
    assert caught >= sum(hashed)  # every row hashed, and the rows of the failed check
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("shifted", "hashed")]
    assert csv[0] == csv[1]


def test_pass_fingerprints_keeps_one_epoch_per_split_and_gives_each_batch_once():
    kept = PassFingerprints()
    prints = np.arange(10, dtype=np.uint64)
    kept.keep("train", 0, [(0, 3), (4, 4), (7, 5)], prints)  # three merged batches: 4, 3 and 3 rows
    kept.keep("val", 0, [(0, 0)], prints[:2])
    assert kept.holds("train", 0) and not kept.holds("train", 1) and not kept.holds("test", 0)
    found = kept.take("train", 0, [4, 3, 9], [3, 4, 2])
    assert found[0].tolist() == [4, 5, 6] and found[1].tolist() == [0, 1, 2, 3] and found[2] is None
    assert kept.take("train", 0, [3, 4], [4, 3]) is None  # taken once
    assert kept.take("train", 0, [5], [2]) is None  # a batch of another size: not this one
    assert kept.take("train", 1, [5], [3]) is None  # another epoch
    kept.keep("train", 1, [(0, 0)], prints[:3])  # a new pass: the last one's leftovers go
    assert kept.take("train", 0, [5], [3]) is None
    assert kept.take("train", 1, [0], [3])[0].tolist() == [0, 1, 2]
    assert kept.take("val", 0, [0, None], [2, 5])[0].tolist() == [0, 1]
