"""Instructions of the live core's step path (`LiveRun.hold_step` + `flush_steps` + `Monitor.log_step`
with the default checks) under four ways of holding steps, counted by callgrind on a replayed
3-epoch digits stream (135 steps, 45 an epoch), the fit's own torch work left out.

Why: issue 13's structural levers on the step path (cost32's "Left, in numbers"): Keras hands
every step to the checks on its own (`LiveRun(flush_every=1)`), Lightning holds 16; and a held step
is one tuple (steady26's idea: preallocated numpy columns filled by index instead). A whole Keras
fit's count varies by ~2 M from run to run, more than these levers can move, so they are counted
here on the core alone, where counts repeat exactly.

Arms:
- `keras_every`: Keras today, a flush every step.
- `keras_held`: Keras holding as Lightning does: a flush every 16th step of the run and at the
  epoch's end, and before each batch of the first epoch (the full pass: every batch reaches the
  data checks, whose findings carry the run's last step, so the held steps must be handed over
  first for the findings to stay the same); branch cost35's 4908c27 built this into `LiveRun`.
- `lightning_tuple`: a flush every 16th step and at the epoch's end, a tuple a held step (today).
- `lightning_columns`: the same cadence, the held steps' numbers in preallocated numpy columns
  filled by index (`Columns`; stripped: no micro-batch losses, scale, rows, gradients or
  non-finite names, which a real one would also have to carry, so this is its lower bound).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_held_steps.py [--arms A,B] [--json-out F]
Needs valgrind (with `valgrind/callgrind.h`) and gcc, as `bench_instructions.py`.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ARMS = ("keras_every", "keras_held", "lightning_tuple", "lightning_columns")
EPOCHS, PER_EPOCH = 3, 45


def _columns_class():
    from mlcheck.live import LiveRun

    class Columns(LiveRun):
        """Held steps as preallocated numpy columns filled by index (plain steps only)."""

        CAPACITY = 64

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._n = 0
            self._step_col = np.zeros(self.CAPACITY, np.int64)
            self._loss_col = np.zeros(self.CAPACITY)
            self._lr_col = np.zeros(self.CAPACITY)
            self._ratio_col = np.zeros(self.CAPACITY)
            self._epoch_col = np.zeros(self.CAPACITY, np.int64)

        def hold_step(self, step, losses, *, lr=None, update_ratio=None, epoch=None, **_) -> bool:
            n = self._n
            self._step_col[n] = step
            self._loss_col[n] = losses[0]
            self._lr_col[n] = math.nan if lr is None else lr
            self._ratio_col[n] = math.nan if update_ratio is None else update_ratio
            self._epoch_col[n] = epoch
            self._n = n + 1
            return (self.monitor.run.train_loss.total + self._n) % self.flush_every == 0

        def flush_steps(self, to_floats, rescan=None):
            n, self._n = self._n, 0
            log_step, out = self.monitor.log_step, []
            columns = (self._step_col, self._loss_col, self._lr_col, self._ratio_col, self._epoch_col)
            for step, loss, lr, ratio, epoch in zip(*(c[:n].tolist() for c in columns)):
                if math.isfinite(loss):
                    self._epoch_loss_sum += loss * self._rows
                    self._epoch_loss_n += self._rows
                out += log_step(
                    step,
                    loss=loss,
                    lr=None if lr != lr else lr,
                    update_ratio=None if ratio != ratio else ratio,
                    epoch=epoch,
                )
            return out

        @property
        def holding(self) -> bool:
            return self._n > 0

    return Columns


def replay(arm: str):
    """The stream into a fresh LiveRun of the arm; returns it (closed)."""
    from mlcheck.live import LiveOptions, LiveRun, split_epoch_metrics
    from mlcheck.run import RunInfo

    cls = _columns_class() if arm == "lightning_columns" else LiveRun
    info = RunInfo(task="classification", total_steps=EPOCHS * PER_EPOCH)
    live = cls(
        LiveOptions(train_start_checks=False),
        info=info,
        default_sinks=False,
        flush_every=1 if arm == "keras_every" else LiveRun.FLUSH_EVERY,
    )
    noise = np.random.default_rng(0).normal(size=EPOCHS * PER_EPOCH).tolist()
    step = 0
    for epoch in range(EPOCHS):
        live.start_epoch()
        for _ in range(PER_EPOCH):
            if arm == "keras_held" and epoch == 0 and live.holding:
                live.flush_steps(list)  # the full pass's batch reaches the data checks
            loss = 2.3 * 0.99**step * (1 + 0.05 * noise[step])
            ratio = 1e-3 if step % 25 == 0 else None
            if live.hold_step(step, [loss], lr=1e-3, update_ratio=ratio, epoch=epoch):
                live.flush_steps(list)
            step += 1
        live.flush_steps(list)  # the epoch's end
        metrics = split_epoch_metrics({"loss": 1.0, "val_loss": 1.1})
        live.end_epoch(epoch, step=step - 1, metrics=metrics, train_loss_from_steps=False)
        live.end_pass("train")
    live.close()
    return live


def child(arm: str, shim: str) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlcheck").setLevel(logging.ERROR)
    lib = ctypes.CDLL(shim)
    replay(arm)  # warm-up: first-call costs out of the count
    lib.mlcheck_bench_start()
    live = replay(arm)
    lib.mlcheck_bench_stop()
    found = [(f.check, f.step) for f in live.monitor.findings]
    print(json.dumps({"arm": arm, "steps": live.monitor.run.train_loss.total, "findings": found}))


def count(arm: str, folder: Path, shim: Path) -> dict:
    out = folder / f"cg.{arm}"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    cmd += [sys.executable, str(Path(__file__).resolve()), "--child", arm, "--shim", str(shim)]
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the client request's dump ("fit") goes to a file of its own beside the one written at exit
    dumps = [path.read_text() for path in folder.glob(f"cg.{arm}*")]
    totals = [int(line.split()[1]) for text in dumps for line in text.splitlines() if line.startswith("totals:")]
    result["instructions"] = max(totals)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--json-out")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.shim)
        return
    sys.path.insert(0, str(HERE))
    from bench_instructions import build_shim

    rows = []
    with tempfile.TemporaryDirectory(prefix="mlcheck-held-") as tmp:
        shim = build_shim(Path(tmp))
        for arm in args.arms.split(","):
            row = count(arm, Path(tmp), shim)
            rows.append(row)
            print(
                f"{arm:>18}: {row['instructions']:>12,} instructions, {row['steps']} steps, findings {row['findings']}"
            )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"epochs": EPOCHS, "per_epoch": PER_EPOCH, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
