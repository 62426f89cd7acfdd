"""The per-sample recording works through its held blocks in runs: Lightning reduces up to
`SampleCapture.REDUCE_BLOCKS` blocks together (one concatenation, one reduction, then one
hand-over per block), and Keras hands its closed blocks over one after the other once
`KerasSampleCapture.REDUCE_BLOCKS` of them are held, not each between two training steps (whose
data evicts the hand-over's code and arrays from the CPU's caches). The blocks, their order and
so `samples.csv`, the findings, the TensorBoard events and the training are those of handing
every block over as it fills."""

from __future__ import annotations

import warnings

import numpy as np

from mlcheck.checks.base import default_checks
from mlcheck.checks.samples import NoisyLabels, WeakSlice
from tests.lightning_trainer import quiet_trainer

EPOCHS = 3
BATCH = 32
HOLD_BATCHES = 2  # small blocks: 10 of the 19 training batches and 4 of the 7 validation ones an epoch


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x[:800] / 16).astype(np.float32), y[:800].astype(np.int64)
    y[:600:20] = (y[:600:20] + 1) % 10  # 5% of the training labels moved to the next class
    return x, y


def _checks():
    return [*default_checks(), NoisyLabels(), WeakSlice()]


def _lightning_fit(log_dir):
    """(callback, final weights) of a Lightning fit on 600 digits, validation on 200 more."""
    import lightning.pytorch as pl
    import torch
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x, y = map(torch.tensor, _digits())

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
    net = Net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(net, loader(x[:600], y[:600], True), loader(x[600:], y[600:], False))
    return cb, [p.detach().clone().numpy() for p in net.parameters()]


def _keras_fit(log_dir):
    """(callback, final weights) of the same fit in Keras, `shuffle=True`."""
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
    return cb, [w.copy() for w in model.get_weights()]


def _findings(cb):
    return [(f.check, f.severity, f.message, f.evidence) for f in cb.findings]


def _events(log_dir):
    """The TensorBoard events under `log_dir`, as text, without their wall times and with the
    folder's own path (which the hints name) written `<log_dir>`."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    text = []
    for path in sorted(log_dir.rglob("*tfevents*")):
        text.append(str(path.parent.relative_to(log_dir)))
        for event in EventFileLoader(str(path)).Load():
            event.wall_time = 0
            text.append(str(event).replace(str(log_dir), "<log_dir>"))
    return text


def _same_outputs(tmp_path, grouped, one_by_one):
    (cb, weights), (reference, reference_weights) = grouped, one_by_one
    csv = [(tmp_path / d / "mlcheck" / "samples.csv").read_bytes() for d in ("grouped", "one")]
    assert csv[0] == csv[1]
    assert _findings(cb) == _findings(reference)
    events = [_events(tmp_path / d) for d in ("grouped", "one")]
    assert events[0] and events[0] == events[1]
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights))
    assert cb.monitor.run.samples.get("train").column("epochs").min() == EPOCHS


def test_lightning_reduces_an_epochs_blocks_together_with_the_same_outputs(tmp_path, monkeypatch):
    import mlcheck.integrations.torch_samples as torch_samples

    monkeypatch.setattr(torch_samples.SampleCapture, "HOLD_BATCHES", HOLD_BATCHES)
    reductions = []
    reduce_outputs = torch_samples.reduce_outputs

    def counting(output, targets):
        reductions.append(len(targets))
        return reduce_outputs(output, targets)

    monkeypatch.setattr(torch_samples, "reduce_outputs", counting)
    grouped = _lightning_fit(tmp_path / "grouped")
    # 14 blocks an epoch (26 batches), held until the epoch's end: one reduction an epoch (with
    # 4 blocks' worth reduced together, before, there were four)
    assert len(reductions) == EPOCHS and sum(reductions) == EPOCHS * 800, reductions
    # the reference: each block reduced and handed over as it fills
    monkeypatch.setattr(torch_samples.SampleCapture, "REDUCE_BLOCKS", 1)
    del reductions[:]
    one_by_one = _lightning_fit(tmp_path / "one")
    assert len(reductions) > 4 * EPOCHS
    _same_outputs(tmp_path, grouped, one_by_one)


def test_keras_hands_its_blocks_over_in_runs_with_the_same_outputs(tmp_path, monkeypatch):
    from mlcheck.integrations.keras.samples import KerasSampleCapture

    monkeypatch.setattr(KerasSampleCapture, "HOLD_BATCHES", HOLD_BATCHES)
    steps = [0]  # steps held so far (seen in compute_loss, or sent from the step on JAX), and at each hand-over
    at_hand_over: list[int] = []
    hold, hand_over = KerasSampleCapture._hold, KerasSampleCapture._hand_over

    def counting_hold(self, *args):
        steps[0] += 1
        return hold(self, *args)

    def counting_hand_over(self, *args):
        at_hand_over.append(steps[0])
        return hand_over(self, *args)

    monkeypatch.setattr(KerasSampleCapture, "_hold", counting_hold)
    monkeypatch.setattr(KerasSampleCapture, "_hand_over", counting_hand_over)
    grouped = _keras_fit(tmp_path / "grouped")
    blocks = len(at_hand_over)
    assert blocks == EPOCHS * 14, at_hand_over  # 10 training and 4 validation blocks an epoch
    # in one run an epoch, at its end (14 blocks, under `REDUCE_BLOCKS`); each between two
    # training steps of its own before
    assert len(set(at_hand_over)) == EPOCHS, at_hand_over
    monkeypatch.setattr(KerasSampleCapture, "REDUCE_BLOCKS", 1)
    del at_hand_over[:]
    one_by_one = _keras_fit(tmp_path / "one")
    assert len(at_hand_over) == blocks and len(set(at_hand_over)) > EPOCHS * 10
    _same_outputs(tmp_path, grouped, one_by_one)
