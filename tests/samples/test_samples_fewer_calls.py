"""The per-sample recording takes fewer calls for the same values (issue 15, store15): Lightning's
reduction of logits skips the ops that would return their input and takes the label's column
once; its five per-row statistics reach the host in two transfers (the int64 columns stacked,
the float32 ones stacked), not one each, and integer targets are not moved at all; the store
keeps whether each sample's latest prediction was right instead of working it out again from
three gathered columns at every add. `samples.csv`, the findings, the TensorBoard events and the
training are those of the paths they replaced (copied here as they were on main, 8b19bb7)."""

from __future__ import annotations

import numpy as np
import pytest
from test_samples_grouped_hand_overs import HOLD_BATCHES, _keras_fit, _lightning_fit, _same_outputs

import mlcheck.samples as samples


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


def _old_add(self, out):
    """`SplitSamples.add` as it was on main (8b19bb7); `last_right`, which it did not have, is
    written as the new `add` writes it, so that a store can go on with either."""
    rows, repeated = self._rows_of(np.asarray(out.ids, np.uint64), np.asarray(out.labels))
    self._last = (out, rows)
    prob = np.clip(np.asarray(out.true_prob, np.float32), 0.0, 1.0)
    pred = np.asarray(out.predicted).astype(np.int16)
    right = pred == np.asarray(out.labels)
    epoch = -1 if out.epoch is None else int(out.epoch)
    before = self.last_epoch[rows] >= 0
    self.previous_right[rows] = np.where(before, self.last_pred[rows] == self.labels[rows], -1)
    if repeated:
        np.add.at(self.sum_prob, rows, prob)
        np.add.at(self.sum_sq, rows, prob * prob)
        np.add.at(self.epochs, rows, 1)
        np.add.at(self.correct, rows, right.astype(np.uint16))
    else:
        self.sum_prob[rows] += prob
        self.sum_sq[rows] += prob * prob
        self.epochs[rows] += np.uint16(1)
        self.correct[rows] += right.astype(np.uint16)
    self.last_prob[rows] = np.round(prob * 255).astype(np.uint8)
    self.last_pred[rows] = pred
    self.last_epoch[rows] = epoch
    wrong = ~right
    self.wrong_pred[rows[wrong]] = pred[wrong]
    if hasattr(self, "last_right"):
        self.last_right[rows] = right
    if out.features is not None and not self._features_off:
        self._keep_features(rows, out.features)


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
    monkeypatch.setattr(samples.SplitSamples, "add", _old_add)
    old = _lightning_fit(tmp_path / "one")
    _same_outputs(tmp_path, new, old)


def _counting_arrays(log):
    """An ndarray subclass that logs the numpy operations on its instances (and on what they
    give) into `log`: ufuncs (operators included), array functions, and indexing by an array."""

    class Counting(np.ndarray):
        def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
            log.append(ufunc.__name__)
            inputs = [np.asarray(i) if isinstance(i, Counting) else i for i in inputs]
            if "out" in kwargs:
                kwargs["out"] = tuple(np.asarray(o) if isinstance(o, Counting) else o for o in kwargs["out"])
            result = getattr(ufunc, method)(*inputs, **kwargs)
            return result.view(Counting) if isinstance(result, np.ndarray) and result.ndim else result

        def __array_function__(self, func, types, args, kwargs):
            log.append(func.__name__)
            result = super().__array_function__(func, (np.ndarray,), args, kwargs)
            return result.view(Counting) if isinstance(result, np.ndarray) and result.ndim else result

        def __getitem__(self, key):
            if isinstance(key, np.ndarray):
                log.append("gather")
            return super().__getitem__(key)

        def __setitem__(self, key, value):
            if isinstance(key, np.ndarray):
                log.append("scatter")
            super().__setitem__(key, value)

    return Counting


def test_store15_store_add_reads_fewer_columns():
    """An add of a block whose ids are all known (every epoch after a split's first): the store's
    columns read and what is worked out from them, counted on the store's own arrays."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 2**63, 1437, dtype=np.uint64)
    labels = rng.integers(0, 10, 1437)
    logs = {}
    for name, add in (("new", samples.SplitSamples.add), ("old", _old_add)):
        store = samples.SplitSamples()
        add(store, samples.SampleOutputs("train", 0, ids, labels, rng.random(1437), rng.integers(0, 10, 1437)))
        logs[name] = log = []
        counting = _counting_arrays(log)
        for field in store._FIELDS:
            setattr(store, field, getattr(store, field).view(counting))
        order = rng.permutation(1437)
        add(store, samples.SampleOutputs("train", 1, ids[order], labels[order], rng.random(1437), labels[order]))
    old = list(logs["old"])
    if "last_right" in samples.SplitSamples._FIELDS:  # main's add did not write it: not its cost
        old.remove("scatter")
    # main gathered the latest epoch, prediction and label of each row, then compared and chose
    # (6 calls); now one gather of whether the row was right, and one scatter to keep it
    assert logs["new"].count("gather") <= logs["old"].count("gather") - 2, logs
    assert not {"greater_equal", "equal", "where"} & set(logs["new"]), logs["new"]
    assert len(logs["new"]) <= len(old) - 4, logs  # 23 -> 19 calls on the store's arrays


def test_store15_store_add_keeps_every_value():
    """The store's columns after many adds of shuffled, partial and repeated blocks, and a store
    read back from its table: those of main's add (`samples.csv` and the checks read nothing
    else)."""
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 2**63, 300, dtype=np.uint64)
    labels = rng.integers(0, 5, 300)
    new, old = samples.SplitSamples(), samples.SplitSamples()
    for epoch in range(30):
        rows = rng.permutation(300)[: rng.integers(1, 300)]
        if epoch % 4 == 3:
            rows = np.concatenate([rows, rows[:7]])  # an id twice in the block
        prob = rng.random(len(rows)).astype(np.float32)
        prob[::13] = [1.5, -0.2, 0.5][epoch % 3]  # probabilities out of range
        predicted = np.where(rng.random(len(rows)) < 0.7, labels[rows], rng.integers(0, 5, len(rows)))
        out = samples.SampleOutputs("train", epoch, ids[rows], labels[rows], prob, predicted)
        new.add(out)
        _old_add(old, out)
    for name in samples.SplitSamples._FIELDS:
        assert np.array_equal(new.column(name), old.column(name)), name
    assert (new.column("previous_right") >= 0).any() and (new.column("previous_right") == 0).any()
    # read back from samples.csv's columns, a store goes on with the same `last_right`
    table = {
        "id": new.ids,
        "given_label": new.column("labels"),
        "predicted_label": np.where(new.column("wrong_pred") >= 0, new.column("wrong_pred"), new.column("last_pred")),
        "confidence": new.confidence(),
        "variability": new.variability(),
        "correctness": new.correctness(),
        "epochs": new.column("epochs"),
        "last_prob": new.latest_prob(),
        "last_predicted": new.column("last_pred"),
        "last_epoch": new.column("last_epoch"),
        "previous_right": new.column("previous_right"),
    }
    back = samples.SplitSamples.from_table({k: np.asarray(v, np.float64) for k, v in table.items()} | {"id": new.ids})
    assert np.array_equal(back.column("last_right"), new.column("last_right"))


def test_store15_keras_records_what_it_recorded_before(tmp_path, monkeypatch):
    import mlcheck.integrations.keras.backend as backend

    if backend.name() != "torch":  # the recording compared runs on torch (see test_samples_hash_calls)
        pytest.skip("the Keras per-sample recording is compared on the torch backend")
    new = _keras_fit(tmp_path / "grouped")
    monkeypatch.setattr(samples.SplitSamples, "add", _old_add)
    old = _keras_fit(tmp_path / "one")
    _same_outputs(tmp_path, new, old)
