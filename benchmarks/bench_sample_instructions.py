"""Instructions the per-sample recording executes in a fit, counted by callgrind, part by part.

`bench_sample_recording.py` times the capture's calls with the thread CPU clock, which the load
of a shared machine moves by more than the cuts being measured. Here the same fits (its
`keras_fit` / `lightning_fit`: the overhead benchmarks' models, the default checks plus
`NoisyLabels()` and `WeakSlice()`) run under valgrind's callgrind. The imports and a warm-up fit
run uninstrumented; instrumentation is switched on once before the measured fit and stays on,
and callgrind collects only inside the capture's outermost calls (the calls that benchmark
times: Lightning `SampleCapture.arm`, `collect`, `flush`; Keras `KerasSampleCapture.begin`,
`collect`, `flush`, `watch_loader`), each made through the shim's `mlcheck_rec_outer`, which
`--toggle-collect` names. (Switching instrumentation on and off around every call, as this
benchmark first did, makes valgrind discard and re-translate its code each time: an MNIST 5k fit
did not finish in 25-40 minutes at load 25-34.) The count is therefore the recording's own instructions (Python,
numpy, torch), the same for every run of the same fit whatever the load. The parts of
`bench_sample_recording.py --parts` (the reduction, the ids, the store, the two checks, ...) are
each run inside a C function of a small shim (as in `bench_instruction_split.py`), so callgrind's
inclusive count of that function is the part's instructions.

Run (the measured fit runs fully instrumented: a Keras or Lightning MNIST 5k fit of 3 epochs
takes some minutes of CPU under valgrind):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sample_instructions.py
        [--frameworks keras lightning] [--model mnist-mlp|mlp] [--epochs 3] [--json-out PATH]

Figures are instructions per epoch of the fit (the count over the fit divided by its epochs,
the first epoch's own work included); the wrapping adds a few thousand instructions per wrapped
call (`wrapper calls` in the output says how many).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_instruction_split import inclusive_by_part  # noqa: E402  (the same callgrind dump format)

#: the parts of `bench_sample_recording.py --parts`, by the names it gives them
_PART_NAMES: list[str] = []
_CALLS = {"outer": 0, "parts": 0}


def _shim_source(n: int) -> str:
    # a plain C call into `mlcheck_part_<k>` (ctypes' own entry is not seen as a call by callgrind)
    lines = ["#include <Python.h>", "#include <valgrind/callgrind.h>"]
    for k in range(n):
        lines.append(
            f"__attribute__((noinline)) PyObject* mlcheck_part_{k}(PyObject* fn) "
            "{ PyObject* r = PyObject_CallNoArgs(fn); return r; }"
        )
        lines.append(
            f"__attribute__((noinline)) PyObject* part_{k}(PyObject* fn) "
            f"{{ PyObject* r = mlcheck_part_{k}(fn); return r; }}"
        )
    # the capture's outermost calls: `--toggle-collect` collects only inside `mlcheck_rec_outer`,
    # entered from `rec_outer` (the function ctypes enters is not seen as one)
    lines.append(
        "__attribute__((noinline)) PyObject* mlcheck_rec_outer(PyObject* fn) "
        "{ PyObject* r = PyObject_CallNoArgs(fn); return r; }"
    )
    lines.append(
        "__attribute__((noinline)) PyObject* rec_outer(PyObject* fn) { PyObject* r = mlcheck_rec_outer(fn); return r; }"
    )
    lines.append("void start(void) { CALLGRIND_START_INSTRUMENTATION; }")
    lines.append("void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }")
    lines.append("void zero(void) { CALLGRIND_ZERO_STATS; }")
    lines.append('void dump(void) { CALLGRIND_DUMP_STATS_AT("fit"); }')
    return "\n".join(lines) + "\n"


def build_shim(folder: Path, parts: int) -> Path:
    import sysconfig

    source, library = folder / "rec.c", folder / "rec.so"
    source.write_text(_shim_source(parts))
    include = sysconfig.get_paths()["include"]
    command = ["gcc", "-O0", "-fno-optimize-sibling-calls", "-shared", "-fPIC", f"-I{include}"]
    done = subprocess.run([*command, "-o", str(library), str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gcc could not build the shim:\n{done.stderr}")
    return library


#: the most parts the shim holds (`bench_sample_recording._time_parts` wraps fewer)
MAX_PARTS = 24


def _through(c_function, f, a, kw):
    """`f(*a, **kw)` called from inside the shim's C function `c_function` (its result, or its
    exception raised again here)."""
    result = []

    def inner():
        try:
            result.append((True, f(*a, **kw)))
        except BaseException as exc:
            result.append((False, exc))
        return None

    c_function(inner)
    ok, value = result[0]
    if not ok:
        raise value
    return value


def child(args: argparse.Namespace) -> None:
    import logging
    import warnings

    import bench_sample_recording as bsr
    import numpy as np
    import torch

    np.seterr(all="ignore")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    lib = ctypes.PyDLL(args.shim)
    depth = [0]
    on = [False]

    outer = lib.rec_outer
    outer.argtypes, outer.restype = [ctypes.py_object], ctypes.py_object

    def timed(f):  # the outermost recording call runs inside `mlcheck_rec_outer` (collected)
        @functools.wraps(f)
        def wrapper(*a, **kw):
            if depth[0] or not on[0]:
                return f(*a, **kw)
            depth[0] += 1
            _CALLS["outer"] += 1
            try:
                return _through(outer, f, a, kw)
            finally:
                depth[0] -= 1

        return wrapper

    def part(name, f):  # a part runs inside the shim's `part_<k>`
        if name not in _PART_NAMES:
            _PART_NAMES.append(name)
        c_part = getattr(lib, f"part_{_PART_NAMES.index(name)}")
        c_part.argtypes, c_part.restype = [ctypes.py_object], ctypes.py_object
        busy = [False]

        @functools.wraps(f)
        def wrapper(*a, **kw):
            if busy[0]:  # a part that calls itself counts once
                return f(*a, **kw)
            busy[0] = True
            _CALLS["parts"] += 1
            try:
                return _through(c_part, f, a, kw)
            finally:
                busy[0] = False

        return wrapper

    bsr._timed, bsr._part = timed, part
    from mlcheck.integrations.keras.samples import KerasSampleCapture
    from mlcheck.integrations.torch_samples import SampleCapture

    bsr._time_parts()
    bsr._wrap(SampleCapture, ("arm", "collect", "flush"))
    bsr._wrap(
        KerasSampleCapture,
        [n for n in ("begin", "collect", "receive", "flush", "watch_loader") if hasattr(KerasSampleCapture, n)],
    )
    fit = bsr.keras_fit if args.framework == "keras" else bsr.lightning_fit
    fit(args.model, 1, tempfile.mkdtemp())  # warm-up, not counted
    on[0] = True
    _CALLS["outer"] = _CALLS["parts"] = 0
    lib.start()  # once: the measured fit runs instrumented, collected only in `mlcheck_rec_outer`
    lib.zero()
    fit(args.model, args.epochs, tempfile.mkdtemp())
    lib.dump()
    print("PARTS " + json.dumps({"names": _PART_NAMES, "calls": _CALLS}), flush=True)


def measure(framework: str, args: argparse.Namespace, folder: Path, shim: Path) -> dict:
    out = folder / f"cg-{framework}"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no"]
    command += ["--toggle-collect=mlcheck_rec_outer", "--compress-strings=no"]
    command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--child", f"--shim={shim}"]
    command += [f"--framework={framework}", f"--model={args.model}", f"--epochs={args.epochs}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", KERAS_BACKEND="torch", PYTHONHASHSEED="0")
    env.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))
    started, load = time.perf_counter(), os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}):\n{done.stderr[-3000:]}")
    info = json.loads(re.search(r"^PARTS (.*)$", done.stdout, re.M).group(1))
    dump = Path(f"{out}.1")  # the fit's, written by `dump()`
    total = int(re.search(rb"^totals:\s*(\d+)", dump.read_bytes(), re.M).group(1))
    parts = inclusive_by_part(dump)
    per = args.epochs
    return {
        "framework": framework,
        "model": args.model,
        "epochs": args.epochs,
        "recording_instructions": total,
        "per_epoch": round(total / per),
        "parts_per_epoch": {
            name: {"calls": parts.get(k, (0, 0))[0], "instructions": round(parts.get(k, (0, 0))[1] / per)}
            for k, name in enumerate(info["names"])
        },
        "wrapper_calls": info["calls"],
        "load": round(load, 2),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", default=["keras", "lightning"], choices=["keras", "lightning"])
    parser.add_argument("--model", default="mnist-mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json-out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    folder = Path(tempfile.mkdtemp(prefix="mlcheck-rec-"))
    shim = build_shim(folder, MAX_PARTS)
    rows = []
    for framework in args.frameworks:
        row = measure(framework, args, folder, shim)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
