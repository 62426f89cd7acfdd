"""Lightning's per-sample reduction and its transfer to the host take fewer torch calls for the
same values (issue 15, store15): the reduction of logits skips the ops that would return their
input and takes the label's column once; its five per-row statistics reach the host in two
transfers (the int64 columns stacked, the float32 ones stacked), not one each, and integer
targets are not moved at all. `samples.csv`, the findings, the TensorBoard events and the
training are those of the paths they replaced (copied here as they were on main, 8b19bb7)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_samples_grouped_hand_overs import HOLD_BATCHES, _lightning_fit, _same_outputs

from tests.lightning_trainer import quiet_trainer


def _old_reduce_outputs(output, targets):
    """`reduce_outputs` as it was on main (8b19bb7)."""
    import torch

    if output.ndim == 1:
        output = output[:, None]
    rows = targets.shape[0] if targets.ndim else 0
    if output.ndim != 2 or output.shape[0] != rows:
        return f"the model's output has shape {tuple(output.shape)}, not (batch={rows}, classes)"
    with torch.no_grad():
        out = output.detach().float()
        y = targets.detach()
        if y.ndim == 2 and y.shape[1] == out.shape[1] > 1:
            y = y.argmax(dim=1)
        y = y.reshape(rows, -1)[:, 0]
        labels = y.round().long() if y.is_floating_point() else y.long()
        if out.shape[1] == 1:
            p1 = out[:, 0]
            in_range = ((p1 >= 0) & (p1 <= 1)).all()
            p1 = torch.where(in_range, p1, torch.sigmoid(p1))
            probs = torch.stack([1 - p1, p1], dim=1)
        elif not rows or (bool(out.min() >= 0) and bool((out.sum(dim=1) - 1).abs().max() < 1e-3)):
            probs = out
        else:
            safe = labels.clamp(0, out.shape[1] - 1)[:, None]
            top, predicted = out.max(dim=1)
            shifted = out - top[:, None]
            norm = shifted.exp().sum(dim=1).log()
            true_prob = torch.exp(shifted.gather(1, safe)[:, 0] - norm)
            other_logit, other_class = shifted.scatter(1, safe, -torch.inf).max(dim=1)
            other_prob = torch.exp(other_logit - norm)
            other_class = torch.where(other_prob > 0, other_class, (safe[:, 0] == 0).long())
            predicted = torch.where(norm.isnan(), 0, predicted)
            return labels, true_prob, predicted, y, other_prob, other_class
        safe = labels.clamp(0, probs.shape[1] - 1)
        true_prob = probs.gather(1, safe[:, None])[:, 0]
        others = probs.scatter(1, safe[:, None], -1.0)
        other_prob, other_class = others.max(dim=1)
        return labels, true_prob, probs.argmax(dim=1), y, other_prob.clamp(min=0.0), other_class


def _old_to_host(reduced):
    """The five statistics moved one `to_numpy` each, as main's `flush` moved them."""
    from mlcheck.integrations.torch_live import to_numpy

    labels, true_prob, predicted, _, other_prob, other_class = reduced
    return tuple(to_numpy(t) for t in (labels, true_prob, predicted, other_prob, other_class))


def _torch_calls(log):
    """A torch function mode that counts the torch calls made under it into `log` (by name),
    attribute reads (`shape`, `dtype`: no op) aside."""
    from torch.overrides import TorchFunctionMode

    class Counting(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", str(func))
            if name != "__get__":
                log[name] = log.get(name, 0) + 1
            return func(*args, **(kwargs or {}))

    return Counting()


def test_store15_logits_reduction_takes_fewer_torch_calls_for_the_same_values():
    torch = pytest.importorskip("torch")
    from test_samples_reduction import _logits

    from mlcheck.integrations.torch_samples import reduce_outputs

    logits = torch.randn(1797, 10, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 10, (1797,), generator=torch.Generator().manual_seed(1))
    new, old = {}, {}
    with _torch_calls(new):
        reduce_outputs(logits, targets)
    with _torch_calls(old):
        _old_reduce_outputs(logits, targets)
    # float32 logits and int64 labels: no detach, float, reshape or long of what is already so;
    # the label's column taken once; the fallback class a bool promoted by `where`
    assert sum(new.values()) <= sum(old.values()) - 8, (new, old)
    assert not {"detach", "float", "long", "reshape"} & set(new), new
    # the same values, bit for bit, over the draws (ties, saturated and NaN rows) of the
    # reduction's own test, one-hot and float targets, probabilities and a single column
    generator = torch.Generator().manual_seed(0)
    cases = [_logits(generator, trial) for trial in range(300)]
    probs = torch.softmax(torch.randn(50, 4, generator=generator), dim=1)
    labels = torch.randint(0, 4, (50,), generator=generator)
    cases += [
        (logits[:40].double(), torch.nn.functional.one_hot(targets[:40], 10)),
        (logits[:40], targets[:40].float()),
        (logits[:40], targets[:40, None].int()),
        (probs, labels),
        (torch.sigmoid(torch.randn(30, generator=generator)), labels[:30].clamp(max=1).float()),
        (torch.randn(30, 1, generator=generator), labels[:30].clamp(max=1)),
        (logits[:40].requires_grad_(), targets[:40]),
    ]
    for output, target in cases:
        for a, b in zip(reduce_outputs(output, target), _old_reduce_outputs(output, target)):
            assert a.dtype == b.dtype and not a.requires_grad and torch.equal(a.isnan(), b.isnan())
            assert torch.equal(a[~a.isnan()], b[~b.isnan()])


def test_store15_lightning_moves_a_flushs_statistics_in_two_transfers(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    import mlcheck.integrations.torch_samples as torch_samples

    monkeypatch.setattr(torch_samples.SampleCapture, "HOLD_BATCHES", HOLD_BATCHES)  # 14 blocks an epoch
    per_flush: list[dict] = []  # torch calls of each flush, its hand-overs and the ends' hashes aside
    flush, hand_over, hash_ends = (
        torch_samples.SampleCapture.flush,
        torch_samples.SampleCapture._hand_over,
        torch_samples.SampleCapture._hash_ends,
    )
    mode: list = []

    def counting_flush(self, *args, **kwargs):
        if mode:  # the flush of all but the last block, inside another
            return flush(self, *args, **kwargs)
        per_flush.append({})
        mode.append(_torch_calls(per_flush[-1]))
        try:
            with mode[-1]:
                return flush(self, *args, **kwargs)
        finally:
            mode.pop()

    def uncounted(function):
        def call(self, *args):
            from torch.overrides import _pop_mode_temporarily

            with _pop_mode_temporarily():
                return function(self, *args)

        return call

    monkeypatch.setattr(torch_samples.SampleCapture, "flush", counting_flush)
    monkeypatch.setattr(torch_samples.SampleCapture, "_hand_over", uncounted(hand_over))
    monkeypatch.setattr(torch_samples.SampleCapture, "_hash_ends", uncounted(hash_ends))
    new = _lightning_fit(tmp_path / "grouped")
    reduced = [calls for calls in per_flush if calls.get("cat")]
    assert reduced
    # five statistics of int64 and float32 rows: two transfers (one each before), and the integer
    # targets are not moved at all (they were, to be told from regression targets)
    assert all(calls.get("numpy") == 2 for calls in reduced), reduced
    # the reference: main's reduction and its transfers one by one
    monkeypatch.setattr(torch_samples, "reduce_outputs", _old_reduce_outputs)
    monkeypatch.setattr(torch_samples, "_to_host", _old_to_host)
    del per_flush[:]
    old = _lightning_fit(tmp_path / "one")
    assert all(calls.get("numpy") == 5 for calls in per_flush if calls.get("cat")), per_flush
    _same_outputs(tmp_path, new, old)


def test_store15_lightning_records_what_it_recorded_before(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    import mlcheck.integrations.torch_samples as torch_samples

    new = _lightning_fit(tmp_path / "grouped")
    monkeypatch.setattr(torch_samples, "reduce_outputs", _old_reduce_outputs)
    monkeypatch.setattr(torch_samples, "_to_host", _old_to_host)
    old = _lightning_fit(tmp_path / "one")
    _same_outputs(tmp_path, new, old)


def _one_output_fit(log_dir, targets):
    """A Lightning fit of a one-output model on 600 digits, on float `targets` (one per row)."""
    import lightning.pytorch as pl
    import torch
    from test_samples_grouped_hand_overs import _checks, _digits
    from torch import nn

    from mlcheck.integrations.lightning import MLCheckCallback

    x = torch.tensor(_digits()[0][:600])
    y = torch.tensor(targets, dtype=torch.float32)

    class Net(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 1))

        def forward(self, inputs):
            return self.net(inputs)[:, 0]

        def training_step(self, batch, i):
            return nn.functional.binary_cross_entropy_with_logits(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    cb = MLCheckCallback(checks=_checks(), overfit_batch=False, log_dir=log_dir)
    pl.seed_everything(0, verbose=False)
    trainer = quiet_trainer(max_epochs=2, callbacks=[cb], accelerator="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Net(), loader)
    return cb


def test_store15_float_targets_are_still_told_from_class_ids(tmp_path):
    """Only floating targets are moved to the host now, to be told from class ids: whole-valued
    ones are recorded as classes, others (regression) switch the recording off, as before."""
    pytest.importorskip("lightning")
    from test_samples_grouped_hand_overs import _digits

    labels = (_digits()[1][:600] % 2).astype(np.float32)  # 0.0 / 1.0: classes
    cb = _one_output_fit(tmp_path / "classes", labels)
    assert cb._samples is not None and not cb._samples.off
    assert cb.monitor.run.samples.get("train").column("epochs").min() == 2
    soft = labels * 0.8 + 0.1  # 0.1 / 0.9: not class ids
    cb = _one_output_fit(tmp_path / "soft", soft)
    assert cb._samples.off and cb.monitor.run.samples is None
