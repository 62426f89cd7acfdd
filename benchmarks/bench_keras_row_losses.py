"""The Keras validation row-loss capture's own cost per validation pass, on the torch backend:
as it runs (`backend.class_row_loss_sums`, torch calls) and, where this code has it, with the
`keras.ops` path that JAX and TensorFlow use (`ops_class_row_loss_sums`), in one process, on the
same tensors. Run with a `git archive` of another commit first on PYTHONPATH (and
`mlcheck/integrations` linked to its `integrations/`) to count that commit's capture.

Why: a whole Keras fit under callgrind takes ~10 minutes, and the capture is ~1% of it; this
counts the capture alone. A pass is the Keras digits MLP's (`bench_overhead_keras`): 360
validation rows in 12 batches of 32 (the last 8), 10 softmax probabilities a row, integer labels;
`start`, one `collect(x, y, y_pred)` a batch as the step wrapper calls it, `end`.

Instructions: under `valgrind --tool=callgrind --instr-atstart=no` (the shim of
`bench_instructions.py` starts and stops the count around `--passes` passes of each arm; imports
and a warm-up pass uncounted). Time: without valgrind, arms interleaved, `--reps` rounds of
`--passes` passes each, process CPU seconds, the median per pass (noisy on a loaded machine:
give the load).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_keras_row_losses.py [--passes 50]
     [--reps 20] [--no-callgrind]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "mlcheck-keras-home"))

HERE = Path(__file__).resolve().parent
ARMS = ("as_is", "ops")
_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)


def _passes(rows: int = 360, batch: int = 32, classes: int = 10):
    """The (x, y, y_pred) of each validation batch of one pass, as torch tensors."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        logits = rng.normal(0, 2, (n, classes)).astype(np.float32)
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        x = torch.tensor(rng.normal(size=(n, 64)).astype(np.float32))
        batches.append((x, torch.tensor(rng.integers(0, classes, n)), torch.tensor(probs.astype(np.float32))))
    return batches


def _arm(name: str):
    """A capture whose backend calls are the arm's."""
    from mlcheck.integrations.keras import backend
    from mlcheck.integrations.keras.row_losses import KerasValidationLosses

    fast = getattr(backend, "class_row_loss_sums", None)
    calls = getattr(backend, "ops_class_row_loss_sums", fast) if name == "ops" else fast

    def one_pass(capture: KerasValidationLosses, batches) -> tuple[int, float, float]:
        backend.class_row_loss_sums = calls
        try:
            capture.start()
            for x, y, y_pred in batches:
                capture.collect((x, y, y_pred), {})
            return capture.end()
        finally:
            backend.class_row_loss_sums = fast

    return KerasValidationLosses(from_logits=False), one_pass


def child(args: argparse.Namespace) -> None:
    import json

    import torch

    torch.set_num_threads(1)
    batches = _passes()
    arms = {name: _arm(name) for name in ARMS}
    sums = {name: one_pass(capture, batches) for name, (capture, one_pass) in arms.items()}  # warm-up
    if args.shim:
        shim = ctypes.CDLL(args.shim)
        for capture, one_pass in arms.values():
            shim.mlcheck_bench_start()
            for _ in range(args.passes):
                one_pass(capture, batches)
            shim.mlcheck_bench_stop()
        print(json.dumps({"sums": sums}))
        return
    seconds = {name: [] for name in ARMS}
    for _ in range(args.reps):
        for name, (capture, one_pass) in arms.items():
            started = time.process_time()
            for _ in range(args.passes):
                one_pass(capture, batches)
            seconds[name].append((time.process_time() - started) / args.passes)
    print(json.dumps({"sums": sums, "seconds": seconds}))


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=50)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--no-callgrind", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--shim", default="")
    args = parser.parse_args()
    if args.child:
        return child(args)
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    base = [sys.executable, __file__, "--child", f"--passes={args.passes}", f"--reps={args.reps}"]
    native = json.loads(subprocess.run(base, capture_output=True, text=True, env=env, check=True).stdout)
    print(f"sums (rows, sum, sum of squares): {native['sums']}")
    for name in ARMS:
        per_pass = statistics.median(native["seconds"][name])
        print(f"{name:6s} time a pass: median {per_pass * 1e6:8.1f} us over {args.reps} rounds of {args.passes}")
    ratio = [o / t for o, t in zip(native["seconds"]["ops"], native["seconds"]["as_is"], strict=True)]
    print(f"ops / as_is time, paired per round: median {statistics.median(ratio):.2f}")
    if args.no_callgrind:
        return
    sys.path.insert(0, str(HERE))
    from bench_instructions import build_shim

    with tempfile.TemporaryDirectory() as folder:
        shim = build_shim(Path(folder))
        out = Path(folder) / "cg"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        subprocess.run([*command, *base, f"--shim={shim}"], capture_output=True, text=True, env=env, check=True)
        counts = {}
        for number, name in enumerate(ARMS, start=1):
            counts[name] = int(_TOTALS.search(Path(f"{out}.{number}").read_bytes()).group(1)) / args.passes
    for name in ARMS:
        print(f"{name:6s} instructions a pass: {counts[name] / 1e6:8.3f} M ({counts[name] / 12 / 1e3:.0f} k a batch)")
    print(f"ops - as_is a pass: {(counts['ops'] - counts['as_is']) / 1e6:.3f} M")


if __name__ == "__main__":
    main()
