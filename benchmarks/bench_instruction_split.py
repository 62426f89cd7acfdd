"""Instructions a Lightning fit spends in each part of the callback, counted by callgrind.

Why: `bench_instructions.py` counts a whole fit; callgrind cannot name the Python function that
ran an instruction (Python 3.11's interpreter is one C function for all of them), so it cannot
say which part of the callback the instructions went to. Here each part (a hook, the flush, the
step checks' judgements, the layer statistics, the parameter scan, the sinks, ...) is wrapped so
that it runs inside a C function of its own, `part_<k>`, compiled into a small shim: the Python
wrapper calls `part_<k>` through ctypes, which calls back into the wrapped method. Callgrind's
inclusive count of `part_<k>` is then every instruction the part executed (Python, torch, numpy),
with its call count. A part inside another (the flush inside `on_train_batch_end`) counts in
both: the table is a tree, not a sum.

The wrapping costs a few thousand instructions a call inside the part (the call back into
Python); it is measured in the same process (a region of no-op calls, counted apart) and
subtracted per call. The wrapper's cost outside the part (the Python wrapper's argument packing
and the ctypes call: ~6-13 k instructions, more with keyword arguments) lands in the part that
encloses it: each part counts how many wrapped calls ran inside it (positional / with keyword
arguments), a wrapped no-op called inside a calibration part measures what one such call adds,
and the column "wrappers out" subtracts both. The rest of
the defaults' extra instructions (defaults minus no callback, from `bench_instructions.py`) that
no part holds is Lightning's own dispatch of the callback's hooks.

Run (under valgrind; one process, a few minutes on an idle 2-core machine):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_instruction_split.py [--model mlp|cnn]
        [--epochs 1,2] [--json-out PATH]
The per-epoch figure of a part is its count in the longer fit minus the shorter, divided by the
epoch difference (the fit's fixed part and the first pass cancel, as in `bench_instructions.py`).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_instructions import _environment, _keras_fit, _lightning_fit  # noqa: E402

#: (part name, where it lives: "module:Class.method", "module:function" (patched in that module's
#: namespace, where the callers look it up) or a tuple of them). Parts nest: a part that calls
#: another counts the other's instructions too.
_LIGHTNING = "mlcheck.integrations.lightning:MLCheckCallback."
LIGHTNING_PARTS = {
    "hook on_train_batch_end": (_LIGHTNING + "on_train_batch_end",),
    "hook on_before_optimizer_step": (_LIGHTNING + "on_before_optimizer_step",),
    # called at every step while the NaN origin is watched on the CPU (review38), else skipped
    "hook on_before_backward": (_LIGHTNING + "on_before_backward",),
    "hook on_train_batch_start": (_LIGHTNING + "on_train_batch_start",),
    "hook on_train_epoch_end": (_LIGHTNING + "on_train_epoch_end",),
    "hook on_validation_batch_end": (_LIGHTNING + "on_validation_batch_end",),
    "hooks epoch start, validation start/end": (
        _LIGHTNING + "on_train_epoch_start",
        _LIGHTNING + "on_validation_start",
        _LIGHTNING + "on_validation_end",
    ),
    "  _observe_step (hold the loss)": (_LIGHTNING + "_observe_step",),
    "  _observe_batch (route, arrays)": (_LIGHTNING + "_observe_batch",),
    "  _flush (losses read, steps handed over)": (_LIGHTNING + "_flush",),
    "  layers: recorder start": ("mlcheck.integrations.torch_layers:LayerRecorder.start",),
    "  layers: forward hook": ("mlcheck.integrations.torch_layers:LayerRecorder._on_forward",),
    "  layers: recorder finish": ("mlcheck.integrations.torch_layers:LayerRecorder.finish",),
    "  scan: before_step, gradients": (
        "mlcheck.integrations.torch_live:ParameterScan.before_step",
        "mlcheck.integrations.torch_live:ParameterScan.gradients",
    ),
    "  scan: after_step, gradient_stats": (
        "mlcheck.integrations.torch_live:ParameterScan.after_step",
        "mlcheck.integrations.torch_live:ParameterScan.gradient_stats",
    ),
    # the fit's fixed parts (once a fit: their per-epoch figure is ~0, the 1-epoch fit holds them)
    "hooks fit start, train start": (_LIGHTNING + "on_fit_start", _LIGHTNING + "on_train_start"),
    "  _first_batch_start (train-start checks, width)": (_LIGHTNING + "_first_batch_start",),
    "hook on_fit_end": (_LIGHTNING + "on_fit_end",),
}
_KERAS = "mlcheck.integrations.keras.callback:MLCheckCallback."
KERAS_PARTS = {
    "hook on_train_batch_begin": (_KERAS + "on_train_batch_begin",),
    "hook on_train_batch_end": (_KERAS + "on_train_batch_end",),
    "hooks epoch begin, test begin/end": (_KERAS + "on_epoch_begin", _KERAS + "on_test_begin", _KERAS + "on_test_end"),
    "hook on_epoch_end": (_KERAS + "on_epoch_end",),
    "  _before_train_step (the step wrapper's batch)": (_KERAS + "_before_train_step",),
    "  _before_test_step": (_KERAS + "_before_test_step",),
    "    _log_batch (route, arrays)": (_KERAS + "_log_batch",),
    "  _after_train_loss (non-finite origin)": (_KERAS + "_after_train_loss",),
    "  _batch_loss": (_KERAS + "_batch_loss",),
    "  weights: snapshot": ("mlcheck.integrations.keras.scan:WeightScan.snapshot",),
    "  weights: measure": ("mlcheck.integrations.keras.scan:WeightScan.measure",),
    "  current_lr": ("mlcheck.integrations.keras.callback:current_lr",),
    "  layers: recorder start": ("mlcheck.integrations.keras.layers:KerasLayerRecorder.start",),
    "  layers: observe": ("mlcheck.integrations.keras.layers:KerasLayerRecorder.observe",),
    "  layers: after_loss": ("mlcheck.integrations.keras.layers:KerasLayerRecorder.after_loss",),
    "  samples: begin, collect": (
        "mlcheck.integrations.keras.samples:KerasSampleCapture.begin",
        "mlcheck.integrations.keras.samples:KerasSampleCapture.collect",
    ),
    "  samples: flush": ("mlcheck.integrations.keras.samples:KerasSampleCapture.flush",),
    "  validation mode probe (inference_mode_layers)": ("mlcheck.integrations.keras.callback:inference_mode_layers",),
    "  TrainValTensorBoardSink.epoch": ("mlcheck.sinks.tensorboard:TrainValTensorBoardSink.epoch",),
    # the fit's fixed parts
    "hook on_train_begin": (_KERAS + "on_train_begin",),
    "  run_info_facts": ("mlcheck.integrations.keras.callback:run_info_facts",),
    "  TrainValTensorBoardSink.__init__": ("mlcheck.sinks.tensorboard:TrainValTensorBoardSink.__init__",),
    "  _note_early_stopping": (_KERAS + "_note_early_stopping",),
    "  WeightScan.__init__": ("mlcheck.integrations.keras.scan:WeightScan.__init__",),
    "  KerasSampleCapture.__init__": ("mlcheck.integrations.keras.samples:KerasSampleCapture.__init__",),
    "  KerasLayerRecorder.create": ("mlcheck.integrations.keras.layers:KerasLayerRecorder.create",),
    "  _StepWrapper.__init__ (the step wrapped)": ("mlcheck.integrations.keras.callback:_StepWrapper.__init__",),
    "  _warn_unmatched_allow, first_layer_kind": (
        _KERAS + "_warn_unmatched_allow",
        "mlcheck.integrations.keras.callback:first_layer_kind",
    ),
    "  _train_start_checks": (_KERAS + "_train_start_checks",),
    "hook on_train_end": (_KERAS + "on_train_end",),
}
#: parts in the live core, the monitor and the sinks: the same in both frameworks
CORE_PARTS = {
    "    Monitor.log_step": ("mlcheck.monitor:Monitor.log_step",),
    "      judgements on_step": ("mlcheck.monitor:Monitor._dispatch@on_step",),
    "  Monitor.log_epoch": ("mlcheck.monitor:Monitor.log_epoch",),
    "    judgements on_epoch": ("mlcheck.monitor:Monitor._dispatch@on_epoch",),
    "  Monitor.log_batch (sampled batches)": ("mlcheck.monitor:Monitor.log_batch",),
    "  Monitor.log_pass_batch (first pass)": ("mlcheck.monitor:Monitor.log_pass_batch",),
    "  Monitor.hand_over_deferred": ("mlcheck.monitor:Monitor.hand_over_deferred",),
    "    judgements on_batch": ("mlcheck.monitor:Monitor._dispatch@on_batch",),
    "  layers: LiveRun.observe_layers": ("mlcheck.live:LiveRun.observe_layers",),
    "    judgements on_layers": ("mlcheck.monitor:Monitor._dispatch@on_layers",),
    "  LiveRun.hold_step, flush_steps": ("mlcheck.live:LiveRun.hold_step", "mlcheck.live:LiveRun.flush_steps"),
    "  LiveRun.end_epoch": ("mlcheck.live:LiveRun.end_epoch",),
    "  sinks (emit, mark, scalars, layers, flush)": (
        "mlcheck.sinks.tensorboard:TensorBoardSink.emit",
        "mlcheck.sinks.tensorboard:TensorBoardSink.mark",
        "mlcheck.sinks.tensorboard:TensorBoardSink.scalars",
        "mlcheck.sinks.tensorboard:TensorBoardSink.layers",
        "mlcheck.sinks.tensorboard:TensorBoardSink.flush",
        "mlcheck.sinks.jsonl:JsonlSink.emit",
        "mlcheck.sinks.log:LoggingSink.emit",
        "mlcheck.sinks.log:LoggingSink.mark",
    ),
    "  event file writes (add_event)": ("mlcheck.sinks.tensorboard:EventFile.add_event",),
    "LiveRun.end_pass (hand-over of a pass)": ("mlcheck.live:LiveRun.end_pass",),
    # the fit's fixed parts
    "LiveRun.__init__": ("mlcheck.live:LiveRun.__init__",),
    "  configured_checks": ("mlcheck.live:configured_checks",),
    "  Monitor.__init__": ("mlcheck.monitor:Monitor.__init__",),
    "    default_checks (the catalogue built)": ("mlcheck.monitor:default_checks",),
    "  LiveRun.close": ("mlcheck.live:LiveRun.close",),
    "    Monitor.close_checks (on_end judgements)": ("mlcheck.monitor:Monitor.close_checks",),
}
#: each default check's own hooks, one part per check and hook (where its class overrides it)
CHECK_HOOKS = ("__init__", "reset", "on_step", "on_epoch", "on_batch", "on_layers", "on_samples", "on_end")
CALIBRATION_PARTS = {
    "calibration (no-op)": (),
    "calibration: nested positional": (),
    "calibration: inner positional": (),
    "calibration: nested keywords": (),
    "calibration: inner keywords": (),
}


def check_parts() -> dict[str, tuple[str, ...]]:
    """One part per default check and hook its class overrides (`Check.implements`; `__init__`
    and `reset` where the class defines them below `Check`)."""
    from mlcheck.checks.base import Check, default_checks

    out = {}
    for check in default_checks():
        cls = type(check)
        for hook in CHECK_HOOKS:
            if getattr(cls, hook) is getattr(Check, hook, None):
                continue
            out[f"check {check.id}: {hook}"] = (f"{cls.__module__}:{cls.__name__}.{hook}",)
    return out


def parts_of(framework: str) -> dict[str, tuple[str, ...]]:
    """Every part of a fit in `framework`, in a fixed order (parent and child agree on it)."""
    own = LIGHTNING_PARTS if framework == "lightning" else KERAS_PARTS
    return {**own, **CORE_PARTS, **check_parts(), **CALIBRATION_PARTS}


PARTS: dict[str, tuple[str, ...]] = {}

#: part indices of the wrapped calls in progress (innermost last), and per part the wrapped
#: calls made inside it at any depth: without and with keyword arguments
_ACTIVE: list[int] = []
NESTED: list[int] = []
NESTED_KW: list[int] = []
#: inner no-op calls per outer calibration call
_NESTED_CALLS = 20


def _shim_source(n: int) -> str:
    # Each part is two C functions: ctypes' ffi_call enters `part_<k>` in a way callgrind does
    # not see as a call, so `part_<k>` calls `mlcheck_part_<k>` (a plain C call), which calls
    # the Python function with the C API: no ctypes callback trampoline in between.
    lines = ["#include <Python.h>"]
    for k in range(n):
        lines.append(
            f"__attribute__((noinline)) PyObject* mlcheck_part_{k}(PyObject* fn) "
            "{ PyObject* r = PyObject_CallNoArgs(fn); return r; }"
        )
        lines.append(
            f"__attribute__((noinline)) PyObject* part_{k}(PyObject* fn) "
            f"{{ PyObject* r = mlcheck_part_{k}(fn); return r; }}"
        )
    lines.append("#include <valgrind/callgrind.h>")
    lines.append("void start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }")
    lines.append('void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("part"); }')
    return "\n".join(lines) + "\n"


def build_shim(folder: Path) -> Path:
    import sysconfig

    source, library = folder / "parts.c", folder / "parts.so"
    source.write_text(_shim_source(len(PARTS)))
    include = sysconfig.get_paths()["include"]
    command = ["gcc", "-O0", "-fno-optimize-sibling-calls", "-shared", "-fPIC", f"-I{include}"]
    done = subprocess.run([*command, "-o", str(library), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gcc could not build the shim:\n{done.stderr}")
    return library


def _runner(c_part, k: int):
    """Runs fn(*args, **kwargs) inside the C function `c_part` (part `k`); exceptions pass
    through. Counts the call as nested in every part in progress."""

    def run(fn, args, kwargs):
        def inner():
            try:
                value = fn(*args, **kwargs)
                if inspect.isgenerator(value):  # a check's findings: its body runs here, in the part
                    value = iter(list(value))
                return True, value
            except BaseException as exc:  # handed back to the caller below
                return False, exc

        counts = NESTED_KW if kwargs else NESTED
        for a in _ACTIVE:
            counts[a] += 1
        _ACTIVE.append(k)
        try:
            ok, value = c_part(inner)
        finally:
            _ACTIVE.pop()
        if not ok:
            raise value
        return value

    return run


def _wrapped(original, run):
    """`original` behind the wrapper `install` puts on a method (its signature kept: the checks'
    argument validation reads `__init__`'s)."""

    original = getattr(original, "_split_original", original)  # inherited from a wrapped class

    def wrapper(*args, __original=original, __run=run, **kwargs):
        return __run(__original, args, kwargs)

    wrapper = functools.wraps(original)(wrapper)
    wrapper._split_original = original
    return wrapper


def install(lib: ctypes.CDLL) -> object:
    """Wraps every part's methods; returns the no-op calibration callable."""
    import importlib

    calibration = {}
    dispatch: dict[str, object] = {}
    for k, (name, places) in enumerate(PARTS.items()):
        c_part = getattr(lib, f"part_{k}")
        c_part.argtypes, c_part.restype = [ctypes.py_object], ctypes.py_object
        run = _runner(c_part, k)
        if not places:
            calibration[name] = run
        for place in places:
            module_name, _, attr = place.partition(":")
            attr, _, hook = attr.partition("@")
            if hook:  # Monitor._dispatch, one part per hook name
                dispatch[hook] = run
                continue
            module = importlib.import_module(module_name)
            if "." not in attr:  # a function, looked up in this module by its callers
                setattr(module, attr, _wrapped(getattr(module, attr), run))
                continue
            cls_name, method = attr.split(".")
            cls = getattr(module, cls_name)
            original = inspect.getattr_static(cls, method)
            if isinstance(original, (staticmethod, classmethod)):
                setattr(cls, method, type(original)(_wrapped(original.__func__, run)))
            else:  # a method defined here or inherited: this class gets its own wrapper
                setattr(cls, method, _wrapped(getattr(cls, method), run))
    if dispatch:
        from mlcheck.monitor import Monitor

        original = Monitor._dispatch

        def _dispatch(self, hook, *args, **kwargs):
            run = dispatch.get(hook)
            if run is None:
                return original(self, hook, *args, **kwargs)
            return run(original, (self, hook, *args), kwargs)

        Monitor._dispatch = _dispatch
    return _calibrations(calibration)


def _calibrations(runs: dict[str, object]) -> list:
    """The calibration calls: a no-op part alone, and a part that makes `_NESTED_CALLS` calls
    of a wrapped no-op (positional; `Monitor.log_step`'s ten keyword arguments)."""
    inner = _wrapped(lambda *args: None, runs["calibration: inner positional"])
    inner_kw = _wrapped(lambda *args, **kwargs: None, runs["calibration: inner keywords"])
    nested = runs["calibration: nested positional"]
    nested_kw = runs["calibration: nested keywords"]
    kw = dict.fromkeys(("loss", "lr", "update_ratio", "epoch", "a", "b", "c", "d", "e", "f"), 1.0)

    def positional():
        for _ in range(_NESTED_CALLS):
            inner(1)

    def keywords():
        for _ in range(_NESTED_CALLS):
            inner_kw(1, **kw)

    return [
        lambda: runs["calibration (no-op)"](lambda: None, (), {}),
        lambda: nested(positional, (), {}),
        lambda: nested_kw(keywords, (), {}),
    ]


# --- the child --------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    lib = ctypes.PyDLL(args.shim)  # the GIL stays held: the parts call Python
    if args.framework == "lightning":
        import mlcheck.integrations.lightning  # noqa: F401  (the classes to wrap)
    else:
        os.environ.setdefault("KERAS_BACKEND", "torch")  # as bench_overhead_keras
        import mlcheck.integrations.keras.callback  # noqa: F401
    PARTS.update(parts_of(args.framework))
    NESTED[:], NESTED_KW[:] = [0] * len(PARTS), [0] * len(PARTS)
    make = _lightning_fit if args.framework == "lightning" else _keras_fit
    calibrations = install(lib)
    nested = {}
    with tempfile.TemporaryDirectory() as root:
        make(args.model, 1, "defaults", os.path.join(root, "warm"))()
        for epochs in args.epochs:
            fit = make(args.model, epochs, "defaults", os.path.join(root, f"f{epochs}"))
            gc.collect()
            NESTED[:], NESTED_KW[:] = [0] * len(PARTS), [0] * len(PARTS)
            lib.start()
            fit()
            lib.stop()
            nested[epochs] = [NESTED[:], NESTED_KW[:]]
        for calibration in calibrations:
            for _ in range(10):
                calibration()  # warm
        gc.collect()
        lib.start()
        for calibration in calibrations:
            for _ in range(args.calibration_calls):
                calibration()
        lib.stop()
    print("NESTED " + json.dumps(nested), flush=True)
    print("done", flush=True)


# --- the parent -------------------------------------------------------------------------------


def inclusive_by_part(dump: Path) -> dict[int, tuple[int, int]]:
    """part index -> (calls, inclusive instructions), from the call lines into
    `mlcheck_part_<k>` (a dump written with `--compress-strings=no`: names in full)."""
    out: dict[int, list[int]] = {}
    target: int | None = None
    pending_calls: int | None = None
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("cfn="):
            match = re.fullmatch(r"cfn=mlcheck_part_(\d+)", line)
            target = int(match.group(1)) if match else None
        elif line.startswith("calls="):
            pending_calls = int(line.split("=")[1].split()[0])
        elif pending_calls is not None and (line[:1].isdigit() or line[:1] in "+-*"):
            if target is not None:
                row = out.setdefault(target, [0, 0])
                row[0] += pending_calls
                row[1] += int(line.split()[1])
            pending_calls = None
    return {k: (v[0], v[1]) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="lightning", choices=["lightning", "keras"])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--epochs", default="1,2")
    parser.add_argument("--calibration-calls", type=int, default=2000)
    parser.add_argument("--json-out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.epochs = [int(e) for e in str(args.epochs).split(",")]
    if args.child:
        child(args)
        return
    PARTS.update(parts_of(args.framework))
    folder = Path(tempfile.mkdtemp(prefix="mlcheck-split-"))
    shim = build_shim(folder)
    out = folder / "cg"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--compress-strings=no"]
    command += [f"--callgrind-out-file={out}"]
    command += [sys.executable, __file__, "--child", f"--shim={shim}", f"--framework={args.framework}"]
    command += [f"--model={args.model}"]
    command += [f"--epochs={','.join(map(str, args.epochs))}", f"--calibration-calls={args.calibration_calls}"]
    started, load = time.perf_counter(), os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, env=_environment())
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}):\n{done.stderr[-3000:]}")
    totals, parts = [], []
    for number in range(1, len(args.epochs) + 2):
        dump = Path(f"{out}.{number}")
        totals.append(int(re.search(rb"^totals:\s*(\d+)", dump.read_bytes(), re.M).group(1)))
        parts.append(inclusive_by_part(dump))
    names = list(PARTS)
    calib = [
        names.index(n)
        for n in (
            "calibration (no-op)",
            "calibration: nested positional",
            "calibration: inner positional",
            "calibration: nested keywords",
            "calibration: inner keywords",
        )
    ]
    calls, cost = parts[-1].get(calib[0], (0, 0))
    per_call = cost / calls if calls else 0.0

    def nested_cost(outer: int, inner: int) -> float:
        """What one wrapped call inside a part adds to it beyond the callee's own work: the
        wrapper outside the callee's part, and the callee's in-part overhead (`per_call`)."""
        n, c = parts[-1].get(outer, (0, 0))
        _, c_inner = parts[-1].get(inner, (0, 0))
        return (c - n * per_call - c_inner) / (n * _NESTED_CALLS) + per_call if n else 0.0

    per_nested, per_nested_kw = nested_cost(calib[1], calib[2]), nested_cost(calib[3], calib[4])
    counted = json.loads(re.search(r"^NESTED (.*)$", done.stdout, re.M).group(1))
    lo, hi = args.epochs[0], args.epochs[-1]
    rows = []
    for k, name in enumerate(names):
        if k in calib:
            continue
        c1, i1 = parts[0].get(k, (0, 0))
        c2, i2 = parts[len(args.epochs) - 1].get(k, (0, 0))
        net1, net2 = i1 - c1 * per_call, i2 - c2 * per_call
        (p1, w1), (p2, w2) = ((n[0][k], n[1][k]) for n in (counted[str(lo)], counted[str(hi)]))
        out1 = net1 - p1 * per_nested - w1 * per_nested_kw
        out2 = net2 - p2 * per_nested - w2 * per_nested_kw
        rows.append(
            {
                "part": name,
                f"calls_{lo}": c1,
                f"calls_{hi}": c2,
                f"instructions_{lo}": round(net1),
                f"instructions_{hi}": round(net2),
                "per_epoch": round((net2 - net1) / (hi - lo)),
                f"nested_calls_{hi}": p2 + w2,
                f"wrappers_out_{lo}": round(out1),
                f"wrappers_out_{hi}": round(out2),
                "per_epoch_wrappers_out": round((out2 - out1) / (hi - lo)),
            }
        )
    report = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "framework": args.framework,
        "model": args.model,
        "epochs": args.epochs,
        "fit_totals": dict(zip(map(str, args.epochs), totals[: len(args.epochs)])),
        "wrapper_per_call": round(per_call),
        "wrapper_per_nested_call": [round(per_nested), round(per_nested_kw)],
        "valgrind_run_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    print(
        f"{args.framework} digits {args.model}, defaults, {report['date_utc']} UTC, load {report['load_average']}: "
        f"fits {', '.join(f'{e} ep {t:,}' for e, t in report['fit_totals'].items())}; "
        f"wrapper {per_call:,.0f} instructions a call (subtracted); a wrapped call inside a part adds "
        f"{per_nested:,.0f} to it ({per_nested_kw:,.0f} with ten keyword arguments; subtracted in 'wrappers out')"
    )
    width = max(46, *(len(r["part"]) for r in rows))
    print(
        f"{'part':<{width}} {'calls ' + str(lo):>9} {'calls ' + str(hi):>9} {'instr ' + str(lo):>13} "
        f"{'instr ' + str(hi):>13} {'per epoch':>12} {'nested ' + str(hi):>10} {'wrappers out':>13}"
    )
    for r in rows:
        print(
            f"{r['part']:<{width}} {r[f'calls_{lo}']:>9,} {r[f'calls_{hi}']:>9,} {r[f'instructions_{lo}']:>13,} "
            f"{r[f'instructions_{hi}']:>13,} {r['per_epoch']:>12,} {r[f'nested_calls_{hi}']:>10,} "
            f"{r['per_epoch_wrappers_out']:>13,}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
