"""Synthetic observation streams, one per check that keeps per-run state, for the resume tests
in `test_check_state.py`; run as a script it resumes them in a fresh process.

Each stream makes its check fire after the checkpoint, on evidence that partly comes from
before it, so a check that loses its state on resume raises something else (or nothing).

    python tests/checks/check_streams.py DIR

loads `DIR/<check-id>.pt` (a `Monitor.state_dict()` saved with `torch.save` after the first
`split` events) with `torch.load(..., weights_only=True)`, as Lightning loads a checkpoint,
feeds the remaining events to a fresh monitor, closes it and writes the findings to
`DIR/<check-id>.json`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcheck import Monitor, RunInfo
from mlcheck.checks.base import Check, get_check
from mlcheck.samples import SampleOutputs

Event = tuple[str, dict[str, Any]]  # ("step" | "epoch" | "batch", keyword arguments)


@dataclass
class Stream:
    """Events for one check; the checkpoint is taken after the first `split` of them."""

    make_check: Callable[[], Check]
    events: list[Event]
    split: int
    info: dict[str, Any] = field(default_factory=dict)

    def monitor(self) -> Monitor:
        return Monitor(checks=[self.make_check()], warn=False, strict=True, info=RunInfo(**self.info))


def feed(monitor: Monitor, events: list[Event]) -> None:
    log = {
        "step": monitor.log_step,
        "epoch": monitor.log_epoch,
        "batch": monitor.log_batch,
        "layers": monitor.log_layers,
        "samples": lambda **kw: monitor.log_samples(SampleOutputs(**kw)),
    }
    for kind, kwargs in events:
        log[kind](**kwargs)


def findings_json(monitor: Monitor) -> list[dict]:
    """The findings as JSON data (what `findings.jsonl` holds), so runs compare exactly."""
    return json.loads(json.dumps([f.to_dict() | {"key": f.key} for f in monitor.findings]))


# -- curves --------------------------------------------------------------------------------------


def _noisy(clean: np.ndarray, rel: float = 0.1, seed: int = 0, df: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    eps = rng.standard_t(df, len(clean)) / math.sqrt(df / (df - 2))
    return np.maximum(clean * (1 + rel * eps), clean * 0.05)


def _converging(n: int, l0: float = 2.3, floor: float = 0.05, tau: float = 0.15) -> np.ndarray:
    return floor + (l0 - floor) * np.exp(-np.arange(n) / (tau * n))


def _steps(loss=None, lr=None, ratio=None) -> list[Event]:
    n = len(loss if loss is not None else lr)
    out = []
    for i in range(n):
        kw: dict[str, Any] = {"step": i}
        if loss is not None:
            kw["loss"] = float(loss[i])
        if lr is not None:
            kw["lr"] = float(lr[i])
        if ratio is not None and np.isfinite(ratio[i]):
            kw["update_ratio"] = float(ratio[i])
        out.append(("step", kw))
    return out


def _nonfinite_loss() -> Stream:
    loss = _converging(300)
    loss[137] = np.nan
    return Stream(lambda: get_check("nonfinite-loss")(), _steps(loss), split=100)


def _loss_divergence() -> Stream:
    t = np.arange(1500)
    clean = _converging(1500)
    clean = np.where(t >= 800, clean[800] * np.exp((t - 800) / 120.0).clip(max=40), clean)
    return Stream(lambda: get_check("loss-divergence")(), _steps(_noisy(clean)), split=700)


def _loss_plateau() -> Stream:
    loss = _noisy(np.full(1500, math.log(10)), 0.05)
    return Stream(
        lambda: get_check("loss-plateau")(),
        _steps(loss),
        split=300,
        info={"task": "classification", "num_classes": 10, "total_steps": 1500},
    )


def _lr_too_high() -> Stream:
    n = 600
    loss = _noisy(np.full(n, 2.2), 0.3)
    ratio = np.full(n, np.nan)
    ratio[::10] = 10 ** np.random.default_rng(0).normal(-0.5, 0.2, n)[::10]
    return Stream(lambda: get_check("lr-too-high")(), _steps(loss, ratio=ratio), split=150)


def _lr_too_low() -> Stream:
    n = 2000
    loss = _noisy(2.3 * (1 - 0.12 * np.arange(n) / n), 0.03)
    return Stream(lambda: get_check("lr-too-low")(), _steps(loss), split=700)


def _lr_schedule() -> Stream:
    n = 2000
    t = np.arange(n)
    lr = np.where(t < 600, 1e-3 * 0.5 * (1 + np.cos(np.pi * t / 600)), 0.0)
    return Stream(
        lambda: get_check("lr-schedule")(),
        _steps(_noisy(_converging(n), 0.05), lr=lr),
        split=500,
        info={"total_steps": n, "has_scheduler": True},
    )


def _train_val_gap() -> Stream:
    rng = np.random.default_rng(0)
    rows = []
    for e in range(30):
        train = 0.05 + 2.2 * math.exp(-(e + 1) / 4)
        val = 0.35 + 2.0 * math.exp(-(e + 1) / 4) + 0.04 * max(0, e - 12)
        rows.append(("epoch", {"epoch": e, "train_loss": train, "val_loss": val * (1 + 0.01 * rng.standard_normal())}))
    return Stream(lambda: get_check("train-val-gap")(), rows, split=14)


def _suspicious_val() -> Stream:
    rows = [("epoch", {"epoch": e, "train_loss": 1.2 + 1.1 * math.exp(-e), "val_loss": 0.05}) for e in range(8)]
    return Stream(lambda: get_check("suspicious-val")(), rows, split=2)


# -- batches -------------------------------------------------------------------------------------


def _batches(xs, ys=None, split="train", epoch=0, first_step=0) -> list[Event]:
    return [
        (
            "batch",
            {
                "inputs": x,
                "targets": None if ys is None else ys[i],
                "split": split,
                "step": first_step + i,
                "epoch": epoch,
                "index": i,
            },
        )
        for i, x in enumerate(xs)
    ]


def _train_val_overlap() -> Stream:
    # training rows before the checkpoint; validation after it repeats half of them
    rng = np.random.default_rng(0)
    train = rng.normal(size=(10, 32, 8)).astype(np.float32)
    val = np.concatenate([train[:2].reshape(-1, 8), rng.normal(size=(64, 8)).astype(np.float32)])
    events = _batches(train) + _batches(val.reshape(4, 32, 8), split="val", first_step=9)
    return Stream(lambda: get_check("train-val-overlap")(), events, split=10)


def _class_imbalance() -> Stream:
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 16)) < 0.03).astype(np.int64)
    labels[5, 0] = labels[30, 0] = 1  # a minority seen before and after the checkpoint
    x = rng.normal(size=(40, 16, 4)).astype(np.float32)
    return Stream(lambda: get_check("class-imbalance")(), _batches(x, labels), split=4)


def _unshuffled_data() -> Stream:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)[:, None].repeat(16, axis=1)  # sorted: one class a batch
    x = rng.normal(size=(40, 16, 4)).astype(np.float32)
    return Stream(lambda: get_check("unshuffled-data")(), _batches(x, labels), split=2)


def _label_shift() -> Stream:
    # training batches of every class before the checkpoint; validation of classes 8-9 after it
    rng = np.random.default_rng(0)
    train = rng.permutation(np.repeat(np.arange(10), 16)).reshape(10, 16)
    val = np.repeat([8, 9], 32).reshape(4, 16)
    x = rng.normal(size=(14, 16, 4)).astype(np.float32)
    events = _batches(x[:10], train) + _batches(x[10:], val, split="val", first_step=9)
    return Stream(lambda: get_check("label-shift")(), [*events, ("epoch", {"epoch": 0, "val_loss": 1.0})], split=12)


def _feature_leakage() -> Stream:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=(20, 32))
    x = rng.normal(size=(20, 32, 4))
    x[..., 2] = y + 0.001 * rng.normal(size=y.shape)  # the label, barely disguised
    # judged at 200 rows seen: 128 of them before the checkpoint
    return Stream(lambda: get_check("feature-leakage")(), _batches(x, y), split=4)


def _unnormalized_input() -> Stream:
    # column 0 is small before the checkpoint and zero after; columns 1-2 zero before, large
    # after: only the scales kept across the checkpoint show the 200x spread
    rng = np.random.default_rng(0)
    before = np.zeros((4, 32, 3))
    before[..., 0] = rng.normal(0, 0.05, size=(4, 32))
    after = np.zeros((4, 32, 3))
    after[..., 1:] = rng.normal(0, 10, size=(4, 32, 2))
    # regression targets: 16 a batch, 48 of them before the checkpoint, so their pooled scale
    # is judged after it (at 64: over min_target_samples, raised to 64 here)
    targets = (2.5e5 + 7e4 * rng.normal(size=(8, 16))).astype(np.float32)
    return Stream(
        lambda: get_check("unnormalized-input")(max_scale_ratio=100, min_target_samples=64),
        _batches(np.concatenate([before, after]), targets),
        split=3,
        info={"loss": "mse"},
    )


def _output_loss_mismatch() -> Stream:
    # class-indices: the train-start pre-flight (not part of a stream) armed the pooling of the
    # labels of a one-unit MSE model; 160 digit labels pooled across the checkpoint (judged at
    # 128), then an epoch that logs an accuracy confirms them
    class Armed(get_check("output-loss-mismatch")):
        def reset(self) -> None:
            super().reset()
            self._index_loss = "mse"

    rng = np.random.default_rng(0)
    labels = rng.permutation(np.tile(np.arange(10), 16)).reshape(10, 16).astype(np.float32)
    events = _batches(rng.normal(size=(10, 16, 4)), labels)
    events.append(("epoch", {"epoch": 0, "step": 9, "train_loss": 2.4, "val_loss": 2.5, "val_metrics": {"acc": 0.11}}))
    return Stream(Armed, events, split=4, info={"loss": "mse"})


# -- layers: streaks of sampled steps that span the checkpoint -----------------------------------


def _layer_events(bad: Callable[[int], list], good: Callable[[int], list], n: int = 8) -> list[Event]:
    from mlcheck.layers import LayerObservation

    events = []
    for i in range(n):
        step = 10 * i
        layers = bad(step) if i >= 2 else good(step)
        events.append(("layers", {"layers": LayerObservation(step=step, layers=tuple(layers))}))
    return events


def _weighted(path: str, order: int, rms: float, **kw: Any) -> Any:
    from mlcheck.layers import LayerStats

    kw.setdefault("weight_norm", 1.0)
    kw.setdefault("trainable", True)
    return LayerStats(path, "Linear", order=order, params=100, grad_norm=rms * 10, **kw)


def _gradient_stream(check_id: str, first_rms: float) -> Stream:
    def layers(rms: float) -> Callable[[int], list]:
        return lambda step: [_weighted("a", 0, rms), _weighted("b", 1, 1e-2)]

    return Stream(lambda: get_check(check_id)(), _layer_events(layers(first_rms), layers(1e-2)), split=4)


def _activation_stream(check_id: str, field_name: str) -> Stream:
    from mlcheck.layers import LayerStats

    def layers(share: float) -> Callable[[int], list]:
        kind, act = ("ReLU", "relu") if field_name == "dead_units" else ("Tanh", "tanh")
        return lambda step: [
            _weighted("fc", 0, 1e-2),
            LayerStats("act", kind, activation=act, order=1, source="fc", **{field_name: share}),
            _weighted("out", 2, 1e-2),
        ]

    return Stream(lambda: get_check(check_id)(), _layer_events(layers(1.0), layers(0.0)), split=4)


def _frozen_parameters() -> Stream:
    def layers(frozen: bool) -> Callable[[int], list]:
        return lambda step: [
            _weighted("a", 0, 1e-2, update_ratio=1e-3),
            _weighted("b", 1, 0.0, trainable=not frozen, input_requires_grad=True),
            _weighted("c", 2, 1e-2, update_ratio=1e-3, input_requires_grad=True),
            _weighted("d", 3, 1e-2, update_ratio=1e-3, input_requires_grad=True),
        ]

    return Stream(lambda: get_check("frozen-parameters")(), _layer_events(layers(True), layers(False)), split=4)


def _weak_slice() -> Stream:
    rng = np.random.default_rng(0)
    events: list[Event] = []
    for epoch in range(2):
        for b in range(10):
            labels = rng.integers(0, 4, 64)
            wrong = (rng.random(64) < 0.03) | ((labels == 2) & (rng.random(64) < 0.4))
            ids = np.arange(b * 64, (b + 1) * 64, dtype=np.uint64)
            pred = np.where(wrong, (labels + 1) % 4, labels)
            events.append(
                (
                    "samples",
                    dict(
                        split="val",
                        epoch=epoch,
                        ids=ids,
                        labels=labels,
                        true_prob=np.where(wrong, 0.2, 0.9),
                        predicted=pred,
                    ),
                )
            )
    return Stream(lambda: get_check("weak-slice")(), events, split=15)


STREAMS: dict[str, Callable[[], Stream]] = {
    "dead-units": lambda: _activation_stream("dead-units", "dead_units"),
    "exploding-gradient": lambda: _gradient_stream("exploding-gradient", 10.0),
    "frozen-parameters": _frozen_parameters,
    "saturated-activations": lambda: _activation_stream("saturated-activations", "saturated_units"),
    "vanishing-gradient": lambda: _gradient_stream("vanishing-gradient", 1e-9),
    "class-imbalance": _class_imbalance,
    "feature-leakage": _feature_leakage,
    "label-shift": _label_shift,
    "loss-divergence": _loss_divergence,
    "loss-plateau": _loss_plateau,
    "lr-schedule": _lr_schedule,
    "lr-too-high": _lr_too_high,
    "lr-too-low": _lr_too_low,
    "nonfinite-loss": _nonfinite_loss,
    "suspicious-val": _suspicious_val,
    "train-val-gap": _train_val_gap,
    "train-val-overlap": _train_val_overlap,
    "unnormalized-input": _unnormalized_input,
    "output-loss-mismatch": _output_loss_mismatch,
    "weak-slice": _weak_slice,
    "unshuffled-data": _unshuffled_data,
}


def resume_all(directory: Path) -> None:
    import torch

    for check_id, make in STREAMS.items():
        stream = make()
        state = torch.load(directory / f"{check_id}.pt", weights_only=True)
        monitor = stream.monitor()
        monitor.load_state_dict(state)
        feed(monitor, stream.events[stream.split :])
        monitor.close()
        (directory / f"{check_id}.json").write_text(json.dumps(findings_json(monitor)))


if __name__ == "__main__":
    resume_all(Path(sys.argv[1]))
