"""Generated observation streams for the property-based tests (`test_fuzz_observations.py`) and
the longer benchmark run (`benchmarks/fuzz_observations.py`).

A stream is a list of `Call`s into `Monitor` (`log_step`, `log_epoch`, `log_batch`) or into the
live core both callbacks use (`LiveRun.hold_step` + `flush_steps`, `route_batch` +
`observe_batch` with `torch_live.to_numpy`, `end_epoch`). Values come in every form a user or a
framework hands over: Python, numpy and torch scalars and 0-d tensors, bfloat16/float16/int/bool,
NaN, inf and huge finite values, odd steps and epochs, odd metric names, batches of odd shapes.
A call marked `bad` carries one argument of the wrong kind: it must be refused with a TypeError
or ValueError that names that argument, and change nothing.

`run_stream` plays a stream and returns an `Outcome` that counts what the contract forbids:
exceptions escaping, findings lost on the way to a sink, checks switched off.
"""

from __future__ import annotations

import json
import logging
import math
import random
import struct
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from mlcheck import Monitor
from mlcheck.live import LiveOptions, LiveRun, split_epoch_metrics
from mlcheck.sinks import Sink

try:
    import ml_dtypes
except ImportError:  # optional: numpy's bfloat16 comes with it
    ml_dtypes = None

SPECIAL = [math.nan, math.inf, -math.inf, 1.79e308, -1.79e308, 5e-324, 0.0, -0.0, 1e-9, 1e-4, 65504.0, 1e5]
CHECK_SUBSET = ("train-val-overlap",)  # the full-pass checks a deferred log_batch names


# -- values ----------------------------------------------------------------------------------
#
# Hypothesis draws one 64-bit gene per call, or per run of steps (and the list of them); each gene
# seeds the choices that build its calls. One draw per call keeps generation cheap enough for a few
# thousand streams in CI, and shrinking still drops calls and simplifies genes.

NUMBER_FORMS = ["float", "int", "np16", "np32", "np64", "np0d", "np1", "t32", "t64", "tbf16", "tf16", "t1", "mlbf16"]
NOT_NUMBERS = ["5", b"x", [1.0, 2.0], {"a": 1.0}, object(), True, np.bool_(False), complex(1, 2), np.zeros(3)]
STEP_FORMS = ["int", "np64", "np32", "u64", "t", "float", "np0d"]
ODD_STEPS = [-1, -5, 2**31, 2**53, 2**62, 2**63 - 1]
NOT_STEPS = [None, "5", math.nan, math.inf, 1.5, -0.5, 2**64, -(2**70), True, [1], object(), np.float32(2.5)]
METRIC_NAMES = ["accuracy", "acc", "loss", "val_loss", "auc", "f1", "mae", "val_accuracy", "", "x" * 300, "é/λ", "a b"]
NOT_NAMES = [5, None, ("a",), 1.5]
NOT_METRICS = [5, "accuracy", [0.5]]


def a_float(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(SPECIAL)
    if pick < 0.8:
        return rng.uniform(-10, 10)
    return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # any double, NaNs included


def as_form(x: float, form: str) -> Any:
    """`x` in one of the forms a number arrives in (an int where `x` is finite)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if form == "int":
            return int(x) if math.isfinite(x) and abs(x) < 1e18 else x
        if form in ("np16", "np32", "np64"):
            return {"np16": np.float16, "np32": np.float32, "np64": np.float64}[form](x)
        if form == "np0d":
            return np.array(x)
        if form == "np1":
            return np.array([x])
        if form in ("t32", "t64", "tbf16", "tf16"):
            dtype = {"t32": torch.float32, "t64": torch.float64, "tbf16": torch.bfloat16, "tf16": torch.float16}
            return torch.tensor(x, dtype=dtype[form])
        if form == "t1":
            return torch.tensor([x])
        if form == "mlbf16" and ml_dtypes is not None:
            return np.asarray(x, dtype=ml_dtypes.bfloat16)
        return float(x)


def a_number(rng: random.Random) -> Any:
    return as_form(a_float(rng), rng.choice(NUMBER_FORMS))


def a_step(rng: random.Random, n: int) -> Any:
    """`n`, or now and then an odd integer, in one of the forms a step arrives in."""
    if rng.random() < 0.1:
        n = rng.choice(ODD_STEPS)
    form = rng.choice(STEP_FORMS)
    if form in ("u64", "t"):
        n = abs(n)
    if form == "float" and abs(n) > 2**53:
        form = "int"  # a float this large is not an exact integer
    makers = {
        "int": int,
        "np64": np.int64,
        "np32": lambda v: np.int32(max(min(v, 2**31 - 1), -(2**31))),
        "u64": np.uint64,
        "t": torch.tensor,
        "float": float,  # integral: coerced
        "np0d": np.array,
    }
    return makers[form](n)


def a_name(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return rng.choice(METRIC_NAMES)
    return "".join(rng.choice("abcxyz_/ -é0") for _ in range(rng.randrange(12)))


def a_metrics(rng: random.Random) -> dict[str, Any]:
    return {a_name(rng): a_number(rng) if rng.random() < 0.9 else None for _ in range(rng.randrange(5))}


# -- batches -----------------------------------------------------------------------------------

ARRAY_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "uint8", "int8", "bool"]
FILLS = ["normal", "pixels", "nan", "huge", "constant", "labels"]
_INTS = ("int64", "uint8", "int8", "bool")


@dataclass(frozen=True)
class ArraySpec:
    """A batch array, built when the call is made (so a loader's buffers are fresh each time)."""

    shape: tuple[int, ...]
    dtype: str
    fill: str
    seed: int
    torch: bool
    as_list: bool = False

    def make(self) -> Any:
        rng = np.random.default_rng(self.seed)
        n = int(np.prod(self.shape)) if self.shape else 1
        values = {
            "normal": lambda: rng.normal(size=n),
            "pixels": lambda: rng.integers(0, 256, n).astype(float),
            "nan": lambda: np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "huge": lambda: rng.choice([1.79e308, -1.79e308, np.inf, 1.0], n),
            "constant": lambda: np.full(n, 3.0),
            "labels": lambda: rng.integers(0, 3, n).astype(float),
        }[self.fill]().reshape(self.shape)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if self.dtype in _INTS:
                values = np.asarray(np.nan_to_num(values))
            if self.as_list:
                return values.tolist()
            if self.torch:
                return torch.from_numpy(values.copy()).to(getattr(torch, self.dtype))
            if self.dtype == "bfloat16":
                return values.astype(ml_dtypes.bfloat16) if ml_dtypes is not None else values.astype(np.float32)
            return values.astype(self.dtype)


def an_array(rng: random.Random) -> ArraySpec:
    rows = rng.choice([0, 1, 2, 8, 33])
    shape = rng.choice([(), (rows,), (rows, rng.randrange(13)), (rows, rng.randrange(1, 4), rng.randrange(1, 4))])
    return ArraySpec(
        shape=shape,
        dtype=rng.choice(ARRAY_DTYPES),
        fill=rng.choice(FILLS),
        seed=rng.randrange(2**16),
        torch=rng.random() < 0.5,
        as_list=rng.random() < 0.1,
    )


# -- calls -------------------------------------------------------------------------------------


@dataclass
class Call:
    """One call into mlcheck: `method` of `Monitor` or the live core, its keyword arguments, and
    the argument that is of the wrong kind (None when every argument is valid)."""

    method: str
    kwargs: dict[str, Any]
    bad: str | None = None


def _spoil(rng: random.Random, kwargs: dict[str, Any], candidates: dict[str, Any]) -> str | None:
    """One call in ~12 gets one argument of the wrong kind."""
    if rng.random() >= 0.08:
        return None
    name = rng.choice(sorted(candidates))
    kwargs[name] = candidates[name]()
    return name


def step_call(rng: random.Random, step: int) -> Call:
    kwargs: dict[str, Any] = {"step": a_step(rng, step), "loss": a_number(rng)}
    for name in ("lr", "update_ratio"):
        if rng.random() < 0.5:
            kwargs[name] = a_number(rng) if rng.random() < 0.9 else None
    if rng.random() < 0.1:
        kwargs["epoch"] = a_step(rng, rng.randrange(5))
    if rng.random() < 0.05:
        which = rng.choice(["nonfinite_grads", "nonfinite_weights"])
        kwargs[which] = rng.choice(["layer", ["a.weight", "b.bias"], ("x",), [1, 2]])
    bad = _spoil(
        rng,
        kwargs,
        {
            "step": lambda: rng.choice(NOT_STEPS),
            "loss": lambda: rng.choice(NOT_NUMBERS),
            "lr": lambda: rng.choice(NOT_NUMBERS),
            "update_ratio": lambda: rng.choice(NOT_NUMBERS),
            "epoch": lambda: rng.choice(NOT_STEPS[1:]),
            "nonfinite_grads": lambda: rng.choice([5, 1.5, object()]),
        },
    )
    return Call("log_step", kwargs, bad)


def epoch_call(rng: random.Random, epoch: int, step: int) -> Call:
    kwargs: dict[str, Any] = {"epoch": a_step(rng, epoch)}
    if rng.random() < 0.5:
        kwargs["step"] = a_step(rng, step)
    for name in ("train_loss", "val_loss"):
        if rng.random() < 0.75:
            kwargs[name] = a_number(rng)
    for name in ("train_metrics", "val_metrics"):
        if rng.random() < 0.5:
            kwargs[name] = a_metrics(rng)
    bad = _spoil(
        rng,
        kwargs,
        {
            "epoch": lambda: rng.choice(NOT_STEPS),
            "step": lambda: rng.choice(NOT_STEPS[1:]),
            "train_loss": lambda: rng.choice(NOT_NUMBERS),
            "val_loss": lambda: rng.choice(NOT_NUMBERS),
            "val_metrics": lambda: rng.choice(
                [rng.choice(NOT_METRICS), {rng.choice(NOT_NAMES): 0.5}, {"accuracy": rng.choice(NOT_NUMBERS)}]
            ),
        },
    )
    return Call("log_epoch", kwargs, bad)


def batch_call(rng: random.Random, live: bool, step: int) -> Call:
    kwargs: dict[str, Any] = {
        "inputs": an_array(rng),
        "targets": an_array(rng) if rng.random() < 0.8 else None,
        "split": rng.choice(["train", "train", "val"]),
        "index": rng.randrange(6),
        "input_kind": rng.choice([None, None, "embedding_ids", "rescaled"]),
    }
    if live:
        kwargs["step"] = step
        return Call("observe_batch", kwargs)
    if rng.random() < 0.5:
        kwargs["step"] = a_step(rng, step)
    if rng.random() < 0.25:
        kwargs["checks"], kwargs["defer"] = CHECK_SUBSET, True
    bad = _spoil(
        rng,
        kwargs,
        {
            "split": lambda: rng.choice(["test", 5, None]),
            "step": lambda: rng.choice(NOT_STEPS[1:]),
            "index": lambda: rng.choice([-1, 1.5, "0", None]),
        },
    )
    return Call("log_batch", kwargs, bad)


CURVES = ["constant", "decay", "noisy", "rise", "zero", "spike"]


def a_curve(rng: random.Random, k: int) -> list[float]:
    """`k` loss values shaped like a real curve (flat, decaying, noisy, rising, at zero, spiky),
    at a random scale, so the checks that need many steps get to judge."""
    scale = rng.choice([1e-9, 1e-4, 1.0, 2.3, 1e6, 1.79e308])
    shape = rng.choice(CURVES)
    noise = random.Random(rng.getrandbits(32))
    out = []
    for i in range(k):
        t = i / max(1, k - 1)
        value = {
            "constant": 1.0,
            "decay": math.exp(-4 * t),
            "noisy": 1.0 + 0.3 * noise.gauss(0, 1),
            "rise": math.exp(3 * t),
            "zero": 0.0,
            "spike": 1.0 if noise.random() > 0.05 else 50.0,
        }[shape]
        out.append(value * scale)
    if rng.random() < 0.2:
        out[rng.randrange(k)] = rng.choice([math.nan, math.inf])
    return out


def run_calls(rng: random.Random, step: int, live: bool, tensors: bool, dtype: Any) -> list[Call]:
    """A run of consecutive steps (one gene): a loss curve, a learning rate that is constant,
    decays or is huge, and update ratios now and then."""
    k = rng.choice([8, 40, 150])
    losses = a_curve(rng, k)
    lr0 = rng.choice([1e-3, 0.1, 1.79e308, 0.0, -1e-3])
    lr_shape = rng.choice(["constant", "decay", "none"])
    form = rng.choice(NUMBER_FORMS)
    calls = []
    for i, loss in enumerate(losses):
        lr = None if lr_shape == "none" else lr0 * (1.0 if lr_shape == "constant" else (1 - i / k))
        ratio = rng.choice([1e-3, 1e-7, 0.5, 1.79e308]) if i % 25 == 0 else None
        if live:
            value = torch.tensor(loss, dtype=dtype) if tensors else loss
            calls.append(Call("hold_step", {"step": step + i, "losses": [value], "lr": lr, "update_ratio": ratio}))
        else:
            kwargs = {"step": step + i, "loss": as_form(loss, form), "lr": lr, "update_ratio": ratio}
            calls.append(Call("log_step", kwargs))
    return calls


def live_step_call(rng: random.Random, step: int, tensors: bool, dtype: Any) -> Call:
    raw = [a_float(rng) for _ in range(rng.randrange(4))]
    losses = [torch.tensor(x, dtype=dtype) for x in raw] if tensors else raw
    kwargs: dict[str, Any] = {"step": step, "losses": losses, "scale": rng.choice([1.0, 0.5, 4.0])}
    for name in ("lr", "update_ratio"):
        if rng.random() < 0.5:
            kwargs[name] = a_float(rng)
    if rng.random() < 0.1:
        kwargs["epoch"] = rng.randrange(4)
    if rng.random() < 0.05:
        kwargs["nonfinite"] = {"nonfinite_grads": ["layer.weight"]}
    return Call("hold_step", kwargs)


def live_epoch_call(rng: random.Random, epoch: int, step: int) -> Call:
    logs = {rng.choice(["", "val_", "train_"]) + a_name(rng): a_float(rng) for _ in range(rng.randrange(6))}
    return Call("end_epoch", {"epoch": epoch, "step": step, "logs": logs})


@dataclass
class Stream:
    """A generated run: calls into `Monitor` (`live` False) or the live core (`live` True)."""

    calls: list[Call]
    live: bool = False
    error_filter: bool = False  # played under warnings.simplefilter("error")
    tensors: bool = False  # live losses as torch tensors (Lightning) or floats (Keras)


_DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]


def decode(genes: list[int], head: int, live: bool) -> Stream:
    """The stream that `genes` (one per call) and `head` (the stream's own settings) stand for."""
    top = random.Random(head)
    tensors, dtype = top.random() < 0.5, top.choice(_DTYPES)
    calls: list[Call] = []
    step, epoch = 0, 0
    for gene in genes:
        rng = random.Random(gene)
        kind = rng.choice(["step"] * 6 + ["epoch", "batch", "batch", "run"])
        if kind == "run":
            calls += run_calls(rng, step, live, tensors, dtype)
            step = calls[-1].kwargs["step"] + 1
        elif kind == "step":
            calls.append(live_step_call(rng, step, tensors, dtype) if live else step_call(rng, step))
            step = max(0, step + rng.choice([1, 1, 1, 0, 7, -3]))
        elif kind == "epoch":
            calls.append(live_epoch_call(rng, epoch, step) if live else epoch_call(rng, epoch, step))
            epoch += rng.choice([1, 1, 0, 5])
        else:
            calls.append(batch_call(rng, live, step))
    return Stream(calls, live=live, error_filter=top.random() < 0.25, tensors=tensors)


def streams(live: bool = False, max_genes: int = 40) -> st.SearchStrategy[Stream]:
    genes = st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=max_genes)
    return st.builds(decode, genes, st.integers(0, 2**32 - 1), st.just(live))


# -- playing a stream --------------------------------------------------------------------------


class RecordingSink(Sink):
    def __init__(self) -> None:
        self.emitted: list[Any] = []
        self.closed = False

    def emit(self, finding: Any, run: str | None = None) -> None:
        self.emitted.append(finding)

    def close(self) -> None:
        self.closed = True


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class Outcome:
    calls: int = 0
    rejected: int = 0  # bad arguments refused with a TypeError/ValueError naming them
    accepted_bad: int = 0  # bad arguments taken without a word
    escapes: list[str] = field(default_factory=list)  # anything else raised into the loop
    switched_off: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)  # findings that missed a sink
    findings: int = 0


def _materialise(value: Any) -> Any:
    return value.make() if isinstance(value, ArraySpec) else value


def _call(target: Monitor | LiveRun, stream: Stream, call: Call) -> None:
    kwargs = {k: _materialise(v) for k, v in call.kwargs.items()}
    if not stream.live:
        getattr(target, call.method)(**kwargs)
        return
    from mlcheck.integrations.torch_live import losses_to_floats, to_numpy

    if call.method == "hold_step":
        if target.hold_step(**kwargs):
            target.flush_steps(losses_to_floats if stream.tensors else list)
    elif call.method == "observe_batch":
        route = target.route_batch(kwargs["split"])
        inputs, targets = to_numpy(kwargs.pop("inputs")), to_numpy(kwargs.pop("targets"))
        kwargs.setdefault("step", target.monitor.run.step)
        target.observe_batch(route, inputs, targets, epoch=target.monitor.run.epoch, **kwargs)
    else:
        target.flush_steps(losses_to_floats if stream.tensors else list)
        target.end_epoch(kwargs["epoch"], step=kwargs["step"], metrics=split_epoch_metrics(kwargs["logs"]))
        target.start_epoch()


def _names(exc: BaseException, argument: str) -> bool:
    return isinstance(exc, (TypeError, ValueError)) and argument in str(exc)


def run_stream(stream: Stream) -> Outcome:
    """Plays `stream` into a fresh Monitor (or LiveRun) writing to a temporary log_dir, closes
    it and compares what each sink received with `monitor.findings`."""
    out = Outcome()
    records = _Records()
    logger = logging.getLogger("mlcheck")
    logger.addHandler(records)
    live_logger = logging.getLogger("mlcheck.live")
    live_logger.addHandler(records)
    recorder = RecordingSink()
    try:
        with tempfile.TemporaryDirectory(prefix="mlcheck-fuzz-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("error" if stream.error_filter else "ignore")
            if stream.live:
                target: Any = LiveRun(LiveOptions(), log_dir=tmp, sinks=[recorder])
                monitor = target.monitor
            else:
                target = monitor = Monitor(log_dir=tmp, sinks=[recorder])
            for call in stream.calls:
                out.calls += 1
                try:
                    _call(target, stream, call)
                except Exception as exc:
                    if call.bad is not None and _names(exc, call.bad):
                        out.rejected += 1
                    else:
                        out.escapes.append(f"{call.method}({call.bad or ''}): {type(exc).__name__}: {exc}")
                else:
                    if call.bad is not None:
                        out.accepted_bad += 1
            try:
                if stream.live:
                    from mlcheck.integrations.torch_live import losses_to_floats

                    target.flush_steps(losses_to_floats if stream.tensors else list)
                target.close()
            except Exception as exc:
                out.escapes.append(f"close: {type(exc).__name__}: {exc}")
            out.switched_off = dict(monitor.errors) | {c: "" for c in monitor.disabled if c not in monitor.errors}
            out.findings = len(monitor.findings)
            out.lost = _lost(monitor, recorder, Path(tmp), records.messages)
    finally:
        logger.removeHandler(records)
        live_logger.removeHandler(records)
    return out


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _lost(monitor: Monitor, recorder: RecordingSink, log_dir: Path, messages: list[str]) -> list[str]:
    lost = []
    if recorder.emitted != monitor.findings:
        lost.append(f"recording sink got {len(recorder.emitted)} of {len(monitor.findings)} findings")
    path = log_dir / "findings.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if len(lines) != len(monitor.findings):
        lost.append(f"findings.jsonl has {len(lines)} lines for {len(monitor.findings)} findings")
    for line in lines:
        try:
            _strict_json(line)
        except ValueError as exc:
            lost.append(f"findings.jsonl line is not strict JSON: {exc}")
    lost += [m for m in messages if "sink" in m and "failed" in m]
    return lost
