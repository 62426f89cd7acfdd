"""The torch adapter's reduction of logits to per-row statistics: taken without a softmax over
every class (the costliest op of the reduction on a CPU at a few classes), and equal to the
softmax's statistics within float32 rounding, its classes exactly (ties, saturated rows and
NaN rows included)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _softmax_reference(output, targets):
    """The reduction as it was taken from the full softmax (the values it must keep)."""
    labels = targets.long()
    probs = torch.softmax(output.float(), dim=1)
    safe = labels.clamp(0, probs.shape[1] - 1)
    true_prob = probs.gather(1, safe[:, None])[:, 0]
    other_prob, other_class = probs.scatter(1, safe[:, None], -1.0).max(dim=1)
    return labels, true_prob, probs.argmax(dim=1), targets, other_prob.clamp(min=0.0), other_class


def _logits(generator, trial):
    rows = int(torch.randint(1, 300, (1,), generator=generator))
    classes = int(torch.randint(2, 40, (1,), generator=generator))
    scale = 10 ** float(torch.empty(1).uniform_(-2, 2.5, generator=generator))  # up to saturated rows
    logits = torch.randn(rows, classes, generator=generator) * scale
    if trial % 5 == 0:
        logits[:, 1] = logits[:, 0]  # tied classes
    if trial % 7 == 0:
        logits[0, int(torch.randint(0, classes, (1,), generator=generator))] = float("nan")
    if trial % 11 == 0:
        logits = logits.round()  # more ties
    return logits, torch.randint(0, classes, (rows,), generator=generator)


def test_logits_are_reduced_without_a_softmax_over_every_class(monkeypatch):
    from mlcheck.integrations import torch_samples

    def no_softmax(*args, **kwargs):
        raise AssertionError("softmax over every class")

    monkeypatch.setattr(torch, "softmax", no_softmax)
    monkeypatch.setattr(torch.Tensor, "softmax", no_softmax)
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    reduced = torch_samples.reduce_outputs(logits, torch.tensor([0, 1]))
    _, true_prob, predicted, _, other_prob, other_class = reduced
    expected = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(true_prob.numpy(), expected[[0, 1], [0, 1]], rtol=1e-6)
    np.testing.assert_allclose(other_prob.numpy(), expected[[0, 1], [2, 2]], rtol=1e-6)
    assert predicted.tolist() == [0, 2] and other_class.tolist() == [2, 2]


def test_logits_reduction_keeps_the_softmax_values_within_rounding():
    from mlcheck.integrations.torch_samples import reduce_outputs

    generator = torch.Generator().manual_seed(0)
    saturated = 0
    for trial in range(300):
        logits, targets = _logits(generator, trial)
        new = reduce_outputs(logits, targets)
        old = _softmax_reference(logits, targets)
        for position in (0, 2, 3, 5):  # labels, predicted class, targets, other class: exact
            assert torch.equal(new[position], old[position]), (trial, position)
        for position in (1, 4):  # the label's and the likeliest other class's probability
            assert torch.equal(new[position].isnan(), old[position].isnan()), (trial, position)
            finite = ~old[position].isnan()
            difference = (new[position][finite] - old[position][finite]).abs()
            assert not finite.any() or float(difference.max()) <= 1e-6, trial
        saturated += int((old[4] == 0).sum())
    assert saturated > 100  # rows whose other classes underflow to 0 (their tie) were tried
