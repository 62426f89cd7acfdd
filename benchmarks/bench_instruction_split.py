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
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_instructions import _environment, _lightning_fit  # noqa: E402

#: (part name, where it lives: "module:Class.method" or a tuple of them). Parts nest: a part
#: that calls another counts the other's instructions too.
PARTS = {
    "hook on_train_batch_end": ("mlcheck.integrations.lightning:MLCheckCallback.on_train_batch_end",),
    "hook on_before_optimizer_step": ("mlcheck.integrations.lightning:MLCheckCallback.on_before_optimizer_step",),
    "hook on_train_batch_start": ("mlcheck.integrations.lightning:MLCheckCallback.on_train_batch_start",),
    "hook on_train_epoch_end": ("mlcheck.integrations.lightning:MLCheckCallback.on_train_epoch_end",),
    "hook on_validation_batch_end": ("mlcheck.integrations.lightning:MLCheckCallback.on_validation_batch_end",),
    "hooks epoch start, validation start/end": (
        "mlcheck.integrations.lightning:MLCheckCallback.on_train_epoch_start",
        "mlcheck.integrations.lightning:MLCheckCallback.on_validation_start",
        "mlcheck.integrations.lightning:MLCheckCallback.on_validation_end",
    ),
    "  _observe_step (hold the loss)": ("mlcheck.integrations.lightning:MLCheckCallback._observe_step",),
    "  _observe_batch (route, arrays)": ("mlcheck.integrations.lightning:MLCheckCallback._observe_batch",),
    "  _flush (losses read, steps handed over)": ("mlcheck.integrations.lightning:MLCheckCallback._flush",),
    "    Monitor.log_step": ("mlcheck.monitor:Monitor.log_step",),
    "      judgements on_step": ("mlcheck.monitor:Monitor._dispatch@on_step",),
    "  Monitor.log_epoch": ("mlcheck.monitor:Monitor.log_epoch",),
    "    judgements on_epoch": ("mlcheck.monitor:Monitor._dispatch@on_epoch",),
    "  Monitor.log_batch (sampled batches)": ("mlcheck.monitor:Monitor.log_batch",),
    "  Monitor.log_pass_batch (first pass)": ("mlcheck.monitor:Monitor.log_pass_batch",),
    "  Monitor.hand_over_deferred": ("mlcheck.monitor:Monitor.hand_over_deferred",),
    "    judgements on_batch": ("mlcheck.monitor:Monitor._dispatch@on_batch",),
    "  layers: recorder start": ("mlcheck.integrations.torch_layers:LayerRecorder.start",),
    "  layers: forward hook": ("mlcheck.integrations.torch_layers:LayerRecorder._on_forward",),
    "  layers: recorder finish": ("mlcheck.integrations.torch_layers:LayerRecorder.finish",),
    "  layers: LiveRun.observe_layers": ("mlcheck.live:LiveRun.observe_layers",),
    "    judgements on_layers": ("mlcheck.monitor:Monitor._dispatch@on_layers",),
    "  scan: before_step, gradients": (
        "mlcheck.integrations.torch_live:ParameterScan.before_step",
        "mlcheck.integrations.torch_live:ParameterScan.gradients",
    ),
    "  scan: after_step, gradient_stats": (
        "mlcheck.integrations.torch_live:ParameterScan.after_step",
        "mlcheck.integrations.torch_live:ParameterScan.gradient_stats",
    ),
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
    # the fit's fixed parts (once a fit: their per-epoch figure is ~0, the 1-epoch fit holds them)
    "hooks fit start, train start": (
        "mlcheck.integrations.lightning:MLCheckCallback.on_fit_start",
        "mlcheck.integrations.lightning:MLCheckCallback.on_train_start",
    ),
    "  _first_batch_start (train-start checks, width)": (
        "mlcheck.integrations.lightning:MLCheckCallback._first_batch_start",
    ),
    "hook on_fit_end": ("mlcheck.integrations.lightning:MLCheckCallback.on_fit_end",),
    "  LiveRun.close": ("mlcheck.live:LiveRun.close",),
    "LiveRun.end_pass (hand-over of a pass)": ("mlcheck.live:LiveRun.end_pass",),
    "calibration (no-op)": (),
    "calibration: nested positional": (),
    "calibration: inner positional": (),
    "calibration: nested keywords": (),
    "calibration: inner keywords": (),
}

#: part indices of the wrapped calls in progress (innermost last), and per part the wrapped
#: calls made inside it at any depth: without and with keyword arguments
_ACTIVE: list[int] = []
NESTED: list[int] = [0] * len(PARTS)
NESTED_KW: list[int] = [0] * len(PARTS)
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
                return True, fn(*args, **kwargs)
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
    """`original` behind the wrapper `install` puts on a method."""

    def wrapper(*args, __original=original, __run=run, **kwargs):
        return __run(__original, args, kwargs)

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
            cls_name, method = attr.split(".")
            cls = getattr(importlib.import_module(module_name), cls_name)
            if hook:  # Monitor._dispatch, one part per hook name
                dispatch[hook] = run
                continue
            wrapper = _wrapped(cls.__dict__[method], run)
            wrapper.__name__ = method
            setattr(cls, method, wrapper)
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
    import mlcheck.integrations.lightning  # noqa: F401  (the classes to wrap)

    calibrations = install(lib)
    nested = {}
    with tempfile.TemporaryDirectory() as root:
        _lightning_fit(args.model, 1, "defaults", os.path.join(root, "warm"))()
        for epochs in args.epochs:
            fit = _lightning_fit(args.model, epochs, "defaults", os.path.join(root, f"f{epochs}"))
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
    folder = Path(tempfile.mkdtemp(prefix="mlcheck-split-"))
    shim = build_shim(folder)
    out = folder / "cg"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--compress-strings=no"]
    command += [f"--callgrind-out-file={out}"]
    command += [sys.executable, __file__, "--child", f"--shim={shim}", f"--model={args.model}"]
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
        "model": args.model,
        "epochs": args.epochs,
        "fit_totals": dict(zip(map(str, args.epochs), totals[: len(args.epochs)])),
        "wrapper_per_call": round(per_call),
        "wrapper_per_nested_call": [round(per_nested), round(per_nested_kw)],
        "valgrind_run_s": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    print(
        f"Lightning digits {args.model}, defaults, {report['date_utc']} UTC, load {report['load_average']}: "
        f"fits {', '.join(f'{e} ep {t:,}' for e, t in report['fit_totals'].items())}; "
        f"wrapper {per_call:,.0f} instructions a call (subtracted); a wrapped call inside a part adds "
        f"{per_nested:,.0f} to it ({per_nested_kw:,.0f} with ten keyword arguments; subtracted in 'wrappers out')"
    )
    print(
        f"{'part':<46} {'calls ' + str(lo):>9} {'calls ' + str(hi):>9} {'instr ' + str(lo):>13} "
        f"{'instr ' + str(hi):>13} {'per epoch':>12} {'nested ' + str(hi):>10} {'wrappers out':>13}"
    )
    for r in rows:
        print(
            f"{r['part']:<46} {r[f'calls_{lo}']:>9,} {r[f'calls_{hi}']:>9,} {r[f'instructions_{lo}']:>13,} "
            f"{r[f'instructions_{hi}']:>13,} {r['per_epoch']:>12,} {r[f'nested_calls_{hi}']:>10,} "
            f"{r['per_epoch_wrappers_out']:>13,}"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
