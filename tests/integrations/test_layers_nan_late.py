"""The NaN origin when the non-finite loss is read late (with the other losses, every 16 steps):
by then the optimizer has stepped on the NaN and the weights hold it, so the batch is re-run on
a copy with the finite weights the recorder kept from its last finite sampled step."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from mlcheck.integrations.torch_layers import LayerRecorder, locate_nonfinite

sys.path.insert(0, str(Path(__file__).parent))
import layer_faults as faults  # noqa: E402


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4), faults.LogAt(at=0), nn.Linear(4, 2))


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    loss = model(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_origin_reruns_with_the_finite_weights_given():
    model = _model()
    finite = [(p, p.detach().clone()) for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))  # what one optimizer step on a NaN gradient leaves
    x = torch.randn(16, 8)
    broken = locate_nonfinite(model, lambda m: m(x).sum())
    assert broken is not None and broken.path == "0"  # names the first layer holding NaN weights
    found = locate_nonfinite(model, lambda m: m(x).sum(), weights=finite)
    assert found is not None and (found.path, found.phase, found.value) == ("3", "forward", "-inf")
    assert all(torch.isnan(p).all() for p in model.parameters())  # the user's model untouched


def test_recorder_keeps_the_weights_of_its_last_finite_step():
    model = _model()
    model[3].at = 10**6  # healthy for now
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = LayerRecorder(model, keep_weights=True)
    x = torch.randn(16, 8)
    before = [p.detach().clone() for p in model.parameters()]
    recorder.start()
    _step(model, optimizer, x)
    recorder.finish(step=0)
    assert recorder.finite_step == 0
    assert all(torch.equal(kept, b) for (_, kept), b in zip(recorder.finite_weights, before))
    assert recorder.weights_for_rerun() == []  # the weights are finite now: the model's own serve
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    recorder.start()
    _step(model, optimizer, x)
    recorder.finish(step=1)  # its weights were not finite: the kept ones stay
    assert recorder.finite_step == 0
    rerun = recorder.weights_for_rerun()
    assert rerun and all(torch.equal(kept, b) for (_, kept), b in zip(rerun, before))
    recorder.release_weights()
    assert recorder.weights_for_rerun() is None  # nothing finite: no re-run on broken weights
