"""train-val-gap on a 38-row validation set in default runs (issue 12, branch valse23).

Batch 20's h07 (wine, Lightning, `accumulate_grad_batches=4`) is healthy, yet its validation loss
went 0.2356 -> 0.2524 (7%) over 38 rows and a default run called it overfitting. The adapters now
sum each validation row's -log p of its class on the device (`Signal.VAL_LOSSES`), so the check
knows the standard error of the validation loss over its rows without the opt-in per-sample
capture: a modest rise within it is INFO. The same in Keras. A real overfitting run on the same
38 rows (its rise far beyond that error) stays a WARNING.
"""

from __future__ import annotations

import warnings

import keras
import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.keras import MLCheckCallback as KerasCallback
from tests.integrations.test_small_val_sample_error import _Net, _wine

torch.set_num_threads(1)


def _lightning_fit(tmp_path, make_net, train_y=None, epochs=15, callbacks_after=(), **trainer_kw):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback
    from tests.lightning_trainer import quiet_trainer

    pl.seed_everything(0)
    net = make_net()
    x, y = _wine()
    ty = y[:140] if train_y is None else train_y
    tr = DataLoader(TensorDataset(x[:140], ty), batch_size=8, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")  # the defaults: no per-sample capture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=epochs, callbacks=[cb, *callbacks_after], **trainer_kw).fit(net, tr, va)
    return [f for f in cb.findings if f.check == "train-val-gap"], cb.live.monitor


def test_valse23_h07_default_run_is_not_warned_about(tmp_path):
    gap, monitor = _lightning_fit(tmp_path, _Net, accumulate_grad_batches=4)
    assert monitor.run.samples is None  # the per-sample capture is off in a default run
    assert all(f.severity is Severity.INFO for f in gap), [(f.severity, f.message) for f in gap]
    rows = monitor.run.val_row_losses
    assert rows is not None and rows.rows == 38 and rows.epoch == 14
    # the rows' mean is the logged validation loss: the same cross-entropy, row by row
    logged = float(monitor.run.val_loss.buckets(include_open=True)["mean"][-1])
    assert abs(rows.mean - logged) <= 1e-4 * logged
    check = next(c for c in monitor.checks if c.id == "train-val-gap")
    # h07's rise (best level 0.2352 around epoch 7, 0.2524 at epoch 12) within the rows' error
    held = check._within_sample_error(monitor.run, 0.2352, 0.2524)
    assert held is not None and held.rows == 38 and held.stderr > 0.2524 - 0.2352


def test_valse23_overfitting_on_the_same_38_rows_is_still_a_warning(tmp_path):
    # a third of the training labels shifted: a wide network memorises them and the validation
    # loss climbs far beyond what 38 rows could explain
    _, y = _wine()
    noisy = y[:140].clone()
    flip = np.random.default_rng(1).permutation(140)[:47]
    noisy[flip] = (noisy[flip] + 1) % 3
    gap, monitor = _lightning_fit(tmp_path, lambda: _Net(width=256, lr=1e-2), train_y=noisy, epochs=40)
    assert monitor.run.val_row_losses is not None and monitor.run.val_row_losses.rows == 38
    assert any(f.severity is Severity.WARNING for f in gap), [(f.severity, f.message) for f in gap]


def _keras_fit(x, y, train_y, epochs, lr):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = KerasCallback(log_dir=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        model.fit(
            x[:140], train_y, validation_data=(x[140:], y[140:]), epochs=epochs, batch_size=8, verbose=0, callbacks=[cb]
        )
    return [f for f in cb.findings if f.check == "train-val-gap"], cb.live.monitor


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="the callback sees Keras' test steps eagerly on the torch backend only"
)
def test_valse23_keras_small_validation_set_rise_within_the_rows_error_is_info():
    x, y = (t.numpy() for t in _wine())
    gap, monitor = _keras_fit(x, y, y[:140], epochs=20, lr=1e-2)
    # the rise (0.2562 -> 0.2886 at epoch 17) is told, as INFO, naming the rows' error
    assert gap and all(f.severity is Severity.INFO for f in gap), [(f.severity, f.message) for f in gap]
    assert any(f.evidence.get("val_rows") == 38 for f in gap), [f.evidence for f in gap]
    rows = monitor.run.val_row_losses
    assert rows is not None and rows.rows == 38 and rows.epoch == 19
    logged = float(monitor.run.val_loss.buckets(include_open=True)["mean"][-1])
    assert abs(rows.mean - logged) <= 1e-3 * logged  # Keras' clipped -log p of the softmax's rows


def test_valse23_lightning_validation_hooks_are_off_during_training(tmp_path):
    # the validation losses' forward hooks are on for the validation passes only: a training
    # step runs through the module without them (no per-step cost)
    import lightning.pytorch as pl

    class Count(pl.Callback):
        def __init__(self):
            self.train, self.val = set(), set()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.train.add(len(pl_module._forward_hooks))

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if not trainer.sanity_checking:
                self.val.add(len(pl_module._forward_hooks))

    count = Count()
    _, monitor = _lightning_fit(tmp_path, _Net, epochs=2, callbacks_after=[count])
    assert monitor.run.val_row_losses is not None
    assert count.train == {0} and count.val == {1}, (count.train, count.val)


class _OneCycleNet(_Net):
    """Batch 35's h03: an MLP under OneCycleLR(max_lr=1e-2) stepped per batch, SGD momentum 0.9."""

    def __init__(self, steps_per_epoch: int, epochs: int):
        pl.LightningModule.__init__(self)  # not _Net's layers: the seeded draws are h03's own
        self.net = torch.nn.Sequential(
            torch.nn.Linear(13, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)
        )
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=1e-3, momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=1e-2, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_miss38_h03_rise_past_the_cap_but_within_the_rows_error_is_info(tmp_path):
    # batch 35's h03 (healthy): on the same 38 rows the validation loss rose past `info_max_rise`
    # (15% of the best) while the rise was within its own paired error over the rows (0.8 of
    # it: one row's -log p carried 87% of the rise): a WARNING before
    from torch.utils.data import DataLoader, TensorDataset

    from mlcheck.integrations.lightning import MLCheckCallback
    from tests.lightning_trainer import quiet_trainer

    pl.seed_everything(0)
    x, y = _wine()
    tr = DataLoader(TensorDataset(x[:140], y[:140]), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(x[140:], y[140:]), batch_size=64)
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        quiet_trainer(max_epochs=30, callbacks=[cb]).fit(_OneCycleNet(len(tr), 30), tr, va)
    gap = [f for f in cb.findings if f.check == "train-val-gap"]
    assert all(f.severity is Severity.INFO for f in gap), [(f.severity, f.message) for f in gap]
    assert gap and all(f.evidence["val_rows"] == 38 for f in gap), [f.evidence for f in gap]
    # the case: the validation loss went on past the cap (h03: 0.2914 -> 0.369 by epoch 29, 27%), still
    # within the rows' error, and the INFO stands (one finding per key: no WARNING follows it)
    check = next(c for c in cb.live.monitor.checks if c.id == "train-val-gap")
    b = cb.live.monitor.run.val_loss.buckets(include_open=True)
    after = b["mean"][b["x1"] >= gap[0].evidence["best_epoch"]]
    best, stderr = gap[0].evidence["best_val_loss"], gap[0].evidence["val_loss_stderr"]
    assert (1 + check.info_max_rise) * best < float(max(after)) < best + stderr, (best, stderr, list(after))
    # past the cap the rise's own error holds it: each row's loss at the best epoch and at the
    # last, paired (h03: one row carries most of the rise)
    run = cb.live.monitor.run
    assert len(run.val_rows_by_epoch) == 30 and run.val_rows_by_epoch[29].rows == 38
    paired = check._within_paired_error(run, gap[0].evidence["best_epoch"], best, float(after[-1]))
    assert paired is not None and paired.paired and float(after[-1]) - best <= paired.stderr, paired
