"""A module whose `forward(x, lengths)` is fed `(x, lengths, y)` batches (padded sequences with
their lengths, batch 17's healthy l1): the train-start checks called it with the batch's first
element alone, it raised TypeError, and the checks that call the model were skipped (live:
loss-at-init, output-loss-mismatch and overfit-batch switched off, an INFO; `mlcheck sanity`:
exit 2), so a real bug in such a model went unsaid. Now, where the forward's signature refuses
the inputs alone, the checks call it with the inputs and the batch's middle elements, which
follow the rows of the batches they build: a log-softmax over the batch axis is named, live and
in `mlcheck sanity`, and the healthy twin (over the classes) stays silent, skipping nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mlcheck import MLCheckWarning, Severity
from mlcheck.integrations.lightning import MLCheckCallback
from tests.lightning_trainer import quiet_trainer

torch.set_num_threads(1)
FIXTURES = Path(__file__).parents[1] / "sanity" / "fixtures"
sys.path.insert(0, str(FIXTURES))

from lengths_lightning import MaskedMean, loaders  # noqa: E402


def fit(dim: int, tmp_path: Path, weights: list | None = None, watched: bool = True) -> list:
    torch.manual_seed(0)
    train, val = loaders()
    cb = MLCheckCallback(log_dir=tmp_path / "logs")
    trainer = quiet_trainer(max_epochs=3, callbacks=[cb] if watched else [], default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLCheckWarning)
        module = MaskedMean(dim)
        trainer.fit(module, train, val)
    if weights is not None:
        weights.extend(v.detach().clone() for v in module.state_dict().values())
    return cb.findings


def skipped_for_the_call(findings: list) -> list:
    return [f for f in findings if "TypeError" in f.message or "lengths" in f.message]


def test_known18_forward_x_lengths_is_checked_live(tmp_path):
    buggy = fit(0, tmp_path / "buggy")
    named = {f.check for f in buggy if f.severity >= Severity.WARNING}
    assert "batch-dependence" in named or "output-loss-mismatch" in named, buggy
    assert not skipped_for_the_call(buggy), buggy

    watched: list = []
    healthy = fit(1, tmp_path / "healthy", watched)
    assert not [f for f in healthy if f.severity >= Severity.WARNING], healthy
    assert not skipped_for_the_call(healthy), healthy  # was: overfit-batch INFO "missing 1 ... 'lengths'"
    # the checks that now run train copies: the run itself is the same, weight for weight
    alone: list = []
    fit(1, tmp_path / "alone", alone, watched=False)
    assert all(torch.equal(a, b) for a, b in zip(watched, alone, strict=True))


def sanity(dim: int) -> tuple[int, list[dict]]:
    proc = subprocess.run(
        [sys.executable, "-m", "mlcheck", "sanity", str(FIXTURES / "lengths_lightning.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLCHECK_LENGTHS_DIM": str(dim), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


@pytest.mark.parametrize("dim", [0, 1])
def test_known18_forward_x_lengths_is_checked_by_sanity(dim):
    _, findings = sanity(dim)
    assert not [f for f in findings if "TypeError" in f["message"]], findings
    warned = {f["check"] for f in findings if f["severity"] in ("warning", "error")}
    if dim == 0:  # batch-dependence skips token ids (not floating-point inputs)
        assert "output-loss-mismatch" in warned, findings
    else:
        assert not warned, findings


def test_known18_a_plain_module_with_forward_x_lengths_gets_its_lengths():
    """The plain torch path (`TorchTrainable`, as `mlcheck sanity` builds it from a target dict):
    outputs and loss of an `(x, lengths, y)` batch, also of the smaller batches the checks cut
    (`from_numpy` keeps a row's length with its row)."""
    from mlcheck.integrations.torch import TorchTrainable

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 8, padding_idx=0)
            self.out = nn.Linear(8, 2)

        def forward(self, x, lengths):
            mask = (torch.arange(x.shape[1])[None] < lengths[:, None]).float()
            return self.out((self.embed(x) * mask[..., None]).sum(1) / lengths[:, None].float())

    torch.manual_seed(0)
    train, _ = loaders()
    t = TorchTrainable(Net(), nn.CrossEntropyLoss(), None, train)
    (batch,) = t.batches("train", 1)
    assert t.forward(batch).shape == (32, 2)  # raised TypeError: missing 'lengths'
    assert np.isfinite(t.loss(batch))
    x, y = t.to_numpy(batch)
    small = t.from_numpy(x[:5], y[:5])
    assert torch.equal(small[1], batch[1][:5]) and t.forward(small).shape == (5, 2)
