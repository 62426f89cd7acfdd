"""Instructions the first pass's data checks spend, check by check and part by part (issue 13).

Why: `bench_instruction_split.py` counts each check's `on_batch` inside a whole fit (minutes
under valgrind, one figure per check). Here the batches a fit hands the data checks in its first
epoch are recorded once (a 1-epoch digits fit, Lightning or Keras, natively), then replayed to
fresh instances of the data checks in the monitor's order, sharing each observation as the
monitor does, under callgrind: each check's `on_batch` and the parts inside it (hashing, the
judgements, the sorts) run in C functions of their own (the shim of `bench_instruction_split`),
so their inclusive counts are read off one dump in seconds. The replay is repeated `--reps`
times after one uncounted warm replay; the table gives instructions per replay. Parts nest.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_first_pass_split.py [--framework keras]
        [--reps 3] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_instruction_split as split  # noqa: E402
from bench_instructions import _environment, _keras_fit, _lightning_fit  # noqa: E402

#: the checks the first pass hands its batches to, and the parts inside them
DATA_CHECKS = (
    "feature-leakage",
    "nonfinite-input",
    "train-val-overlap",
    "unnormalized-input",
    "unshuffled-data",
    "class-imbalance",
    "label-shift",
)
INNER_PARTS = {
    "  hashing.fingerprints (every value)": ("mlcheck.checks.hashing:fingerprints",),
    "  BatchObservation.input_fingerprints": ("mlcheck.run:BatchObservation.input_fingerprints",),
    "  feature-leakage: _add (reservoir)": ("mlcheck.checks.leakage:FeatureLeakage._add",),
    "  feature-leakage: _judge": ("mlcheck.checks.leakage:FeatureLeakage._judge",),
    "    feature-leakage: scores": ("mlcheck.checks.leakage:FeatureLeakage.scores",),
    "      _value_keys": ("mlcheck.checks.leakage:_value_keys",),
    "      _lookup_columns": ("mlcheck.checks.leakage:_lookup_columns",),
    "      _lookup_fold": ("mlcheck.checks.leakage:_lookup_fold",),
    "      _single_feature_predictions": ("mlcheck.checks.leakage:_single_feature_predictions",),
    "  class_labels": ("mlcheck.checks.data:class_labels",),
    "  train-val-overlap: _add (sets)": ("mlcheck.checks.leakage:TrainValOverlap._add",),
    "  train-val-overlap: _judge": ("mlcheck.checks.leakage:TrainValOverlap._judge",),
    "  train-val-overlap: _keep_first_rows": ("mlcheck.checks.leakage:TrainValOverlap._keep_first_rows",),
    "  train-val-overlap: _second_stage": ("mlcheck.checks.leakage:TrainValOverlap._second_stage",),
    "  constant_rows": ("mlcheck.checks.hashing:constant_rows",),
    "  unnormalized-input: _input_scale": ("mlcheck.checks.data:UnnormalizedInput._input_scale",),
    "    _column_scales": ("mlcheck.checks.data:UnnormalizedInput._column_scales",),
    "  unnormalized-input: _target_scale": ("mlcheck.checks.data:UnnormalizedInput._target_scale",),
    "  unshuffled-data: _judge": ("mlcheck.checks.data:UnshuffledData._judge",),
    "    _against_own_mix": ("mlcheck.checks.data:UnshuffledData._against_own_mix",),
    "    _against_validation": ("mlcheck.checks.data:UnshuffledData._against_validation",),
    "  _LabelHistory.add": ("mlcheck.checks.data:_LabelHistory.add",),
}


_FIELDS = ("inputs", "targets", "split", "step", "epoch", "index", "input_kind", "parts", "full_pass", "probe")
_FIELDS += ("sample_values",)


def record(framework: str, path: Path) -> None:
    """A 1-epoch digits MLP fit with the defaults; every observation the monitor hands the data
    checks' `on_batch` (before any check saw it), with the check ids it went to, pickled."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    if framework == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
    import numpy as np

    from mlcheck.monitor import Monitor

    calls: list = []
    original = Monitor._dispatch

    def _dispatch(self, hook, *args, only=None):
        if hook == "on_batch":
            batch = args[0]
            ids = [c.id for c in self._hooks[hook] if (only is None or c.id in only) and c.id in DATA_CHECKS]
            fields = {k: getattr(batch, k) for k in _FIELDS}
            fields = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in fields.items()}
            calls.append((fields, ids, self.run.info))
        return original(self, hook, *args, only=only)

    Monitor._dispatch = _dispatch
    make = _lightning_fit if framework == "lightning" else _keras_fit
    with tempfile.TemporaryDirectory() as root:
        make("mlp", 1, "defaults", root)()
    path.write_bytes(pickle.dumps(calls))


def replay(calls: list) -> None:
    """The recorded observations to fresh data checks, in the monitor's order, then their
    `on_end` (feature-leakage and unshuffled-data judge there too)."""
    from mlcheck.checks.base import default_checks
    from mlcheck.run import BatchObservation, RunState

    checks = [c for c in default_checks() if c.id in DATA_CHECKS]
    run = RunState(calls[0][2])
    for fields, ids, _ in calls:
        batch = BatchObservation(**fields)
        for check in checks:
            if check.id in ids:
                list(check.on_batch(batch, run) or ())
    for check in checks:
        list(check.on_end(run) or ())


def child(args: argparse.Namespace) -> None:
    calls = pickle.loads(Path(args.calls).read_bytes())
    import mlcheck.checks.base as base

    parts = {}
    for check in base.default_checks():
        if check.id in DATA_CHECKS:
            cls = type(check)
            parts[f"check {check.id}: on_batch"] = (f"{cls.__module__}:{cls.__name__}.on_batch",)
            if cls.on_end is not base.Check.on_end:
                parts[f"check {check.id}: on_end"] = (f"{cls.__module__}:{cls.__name__}.on_end",)
    parts.update(INNER_PARTS)
    parts.update(split.CALIBRATION_PARTS)  # `install` builds its calibration calls from them
    parts["replay (all)"] = ()
    split.PARTS.clear()
    split.PARTS.update(parts)
    split.NESTED[:], split.NESTED_KW[:] = [0] * len(parts), [0] * len(parts)
    lib = ctypes.PyDLL(args.shim)
    split.install(lib)
    whole = split._runner(getattr(lib, f"part_{len(parts) - 1}"), len(parts) - 1)
    getattr(lib, f"part_{len(parts) - 1}").argtypes = [ctypes.py_object]
    getattr(lib, f"part_{len(parts) - 1}").restype = ctypes.py_object
    replay(calls)  # warm
    gc.collect()
    lib.start()
    for _ in range(args.reps):
        whole(replay, (calls,), {})
    lib.stop()
    print("PARTS " + json.dumps(list(parts)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="lightning", choices=["lightning", "keras"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--calls", help="a recording to replay (recorded there first when missing; default: a new one)")
    parser.add_argument("--json-out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        calls = Path(args.calls) if args.calls else folder / "calls.pkl"
        if not calls.exists():
            record(args.framework, calls)
        split.PARTS.clear()
        most = len(INNER_PARTS) + len(split.CALIBRATION_PARTS) + 3 * len(DATA_CHECKS)  # the shim's parts
        split.PARTS.update({str(k): () for k in range(most)})
        shim = split.build_shim(folder)
        out = folder / "cg"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--compress-strings=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--child", f"--shim={shim}"]
        command += [f"--calls={calls}", f"--reps={args.reps}"]
        started = time.time()
        done = subprocess.run(command, capture_output=True, text=True, env=_environment())
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        names = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("PARTS "))[6:])
        dumps = sorted(folder.glob("cg*"))
        counts = split.inclusive_by_part(dumps[-1])
        load = os.getloadavg()[0]
        print(
            f"{args.framework} digits mlp, first epoch's data-check observations replayed, {args.reps} reps, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, load {load:.1f}"
        )
        print(f"{'part':58s} {'calls/rep':>10s} {'instr/rep':>14s}")
        table = {}
        for k, name in enumerate(names):
            calls_k, instr = counts.get(k, (0, 0))
            table[name] = {"calls": calls_k / args.reps, "instructions": instr / args.reps}
            print(f"{name:58s} {calls_k / args.reps:10.1f} {instr / args.reps:14,.0f}")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
