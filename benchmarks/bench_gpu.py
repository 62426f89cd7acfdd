"""mlcheck's Lightning callback on a GPU: host syncs, internal errors, overhead, 224x224 first epoch.

Four parts, each a real Lightning fit on `cuda` (or the CPU where there is no GPU, to try the
script; its figures then say nothing about a GPU):

- `syncs`: every host synchronisation a fit makes, caught with
  `torch.cuda.set_sync_debug_mode("warn")` (each synchronising CUDA call warns; the warning's
  Python stack names the caller). Those whose stack passes through mlcheck's own files are
  mlcheck's; each is filed under its training step, and the step under "first epoch" (the full
  first pass), "sampled" (a step where `every_n_steps` statistics or a flush may run: step % 25
  in {0, 24}) or "other". Target (issue 13): 0 mlcheck syncs at "other" steps after the first
  epoch. A digits MLP and a small CNN, with and without the callback.
- `strict`: the same programs and three buggy ones with `MLCheckCallback(strict=True)` (an
  internal error raises instead of switching the check off) on the GPU and on the CPU, same
  seed: the check ids each device reports, side by side.
- `overhead`: paired fit times with and without the callback (alternating order), a CNN on
  3x32x32 inputs and the digits MLP, 3 epochs; the median per-pair ratio.
- `first224`: two epochs of a torchvision ResNet-18 (bf16 mixed precision) on synthetic
  3x224x224 uint8 images (normalised on the device in the step), with and without the callback;
  the first epoch's time, from its start to the second's (the fit's start and end left out),
  holds the full first pass (target: <= 5% added to that epoch).

    python benchmarks/bench_gpu.py --out /tmp/gpu            # all parts, ~5 min on an H200
    python benchmarks/bench_gpu.py --parts syncs,strict --quick   # a CPU try-out

Results: a table per part on stdout and `gpu.json` in --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import statistics
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import mlcheck
import mlcheck.integrations
from mlcheck.integrations.lightning import MLCheckCallback

for _name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
    logging.getLogger(_name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

#: mlcheck's own files, wherever it is installed from: a synchronising call under them is mlcheck's
OWN = tuple(str(Path(m.__file__).parent) + os.sep for m in (mlcheck, mlcheck.integrations))
LIBRARY = str(Path(torch.__file__).parent) + os.sep
EVERY = 25


class Classifier(L.LightningModule):
    def __init__(self, net: nn.Module, lr: float = 1e-3, loss: str = "ce", scale: float | None = None) -> None:
        super().__init__()
        self.net, self.lr, self.loss_kind, self.scale = net, lr, loss, scale

    def forward(self, x):
        if self.scale is not None:  # uint8 images, normalised on the device
            x = x.float() * self.scale
        return self.net(x)

    def _loss(self, x, y):
        out = self(x)
        if self.loss_kind == "softmax_ce":  # bug: probabilities into a from-logits loss
            return F.cross_entropy(torch.softmax(out, dim=1), y)
        if self.loss_kind == "log_relu":  # bug: log of a ReLU's zeros, non-finite from the start
            return F.nll_loss(torch.log(torch.relu(out)), y)
        return F.cross_entropy(out, y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(*batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(*batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def mlp(width: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(width, 128), nn.ReLU(), nn.Linear(128, classes))


def cnn(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, classes),
    )


def digits(seed: int = 0, shuffle_labels: bool = False, noise: float = 0.0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = x[order], y[order].astype(np.int64)
    if shuffle_labels:  # bug: labels no longer belong to their inputs
        y = rng.permutation(y)
    if noise:  # a share of the labels replaced by another class
        flip = rng.random(len(y)) < noise
        y[flip] = (y[flip] + rng.integers(1, 10, size=int(flip.sum()))) % 10
    cut = int(0.8 * len(x))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def images32(n: int, seed: int = 0):
    """Learnable synthetic 3x32x32 images: ten class templates plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(10, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=n)
    x = 0.5 * templates[y] + rng.normal(size=(n, 3, 32, 32)).astype(np.float32)
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def images224(n: int, seed: int = 0):
    """Synthetic 3x224x224 uint8 images (ten class colour casts plus noise) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    cast = rng.integers(0, 96, size=(10, 3, 1, 1), dtype=np.uint8)
    x = rng.integers(0, 160, size=(n, 3, 224, 224), dtype=np.uint8) + cast[y]
    cut = int(0.9 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def loaders(data, batch: int, seed: int):
    (xt, yt), (xv, yv) = data
    gen = torch.Generator().manual_seed(seed)
    pin = torch.cuda.is_available()
    train = DataLoader(
        TensorDataset(torch.as_tensor(xt), torch.as_tensor(yt)),
        batch_size=batch,
        shuffle=True,
        generator=gen,
        pin_memory=pin,
    )
    val = DataLoader(TensorDataset(torch.as_tensor(xv), torch.as_tensor(yv)), batch_size=batch, pin_memory=pin)
    return train, val


class SyncLog:
    """Each synchronising CUDA call of a fit, with the step it came in and, where the call came
    from mlcheck's files, the innermost such frame."""

    def __init__(self) -> None:
        self.step, self.epoch, self.split = -1, -1, "setup"
        self.rows: list[dict] = []

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" not in str(message):
            return
        # the innermost caller outside torch decides: mlcheck's own call, or one of Keras',
        # Lightning's or the user's (also where mlcheck's wrapper of a step is further out)
        own = None
        for frame in reversed(traceback.extract_stack()[:-1]):
            if frame.filename.startswith(LIBRARY) or frame.filename.endswith("warnings.py"):
                continue
            if frame.filename.startswith(OWN):
                own = f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno} {frame.name}"
            break
        self.rows.append({"step": self.step, "epoch": self.epoch, "split": self.split, "own": own})

    def kinds(self) -> dict:
        """mlcheck's syncs by where they came: the first epoch's training steps (the full first
        pass, the train-start checks), a sampled later step (step % every_n_steps == 0), another
        later training step (target 0), or a validation pass or an epoch's end."""

        def kind(r: dict) -> str:
            if r["split"] != "train":
                return "validation or epoch end"
            if r["epoch"] <= 0:
                return "first epoch"
            return "sampled" if r["step"] % EVERY == 0 else "other"

        own = [r for r in self.rows if r["own"]]
        sites: dict[str, dict] = {}
        for r in own:
            site = sites.setdefault(r["own"], {"count": 0, "steps": []})
            site["count"] += 1
            site[kind(r)] = site.get(kind(r), 0) + 1
            if len(site["steps"]) < 6 and (r["epoch"] > 0 or len(site["steps"]) < 2):
                site["steps"].append((r["epoch"], r["step"], r["split"]))
        by_kind = {k: 0 for k in ("first epoch", "sampled", "other", "validation or epoch end")}
        for r in own:
            by_kind[kind(r)] += 1
        return {"syncs": len(self.rows), "mlcheck_syncs": len(own), "by_kind": by_kind, "sites": sites}


@contextlib.contextmanager
def catching_syncs(log: SyncLog):
    """Every synchronising CUDA call inside goes to `log` (nothing else is shown)."""
    old = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = log.show
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.set_sync_debug_mode("default")
            warnings.showwarning = old


class EpochClock(L.Callback):
    """Wall time of each training epoch, its validation included (start to start; the last
    epoch to the fit's end)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.starts.append(time.perf_counter())


class Marker(L.Callback):
    def __init__(self, log: SyncLog) -> None:
        self.sync_log = log

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.sync_log.step, self.sync_log.epoch, self.sync_log.split = (
            trainer.global_step,
            trainer.current_epoch,
            "train",
        )

    def on_validation_start(self, trainer, pl_module):
        self.sync_log.split = "val"

    def on_train_epoch_end(self, trainer, pl_module):
        self.sync_log.split = "epoch_end"


def fit(
    module,
    data,
    *,
    epochs: int,
    batch: int,
    watch: bool,
    device: str,
    seed: int = 0,
    strict: bool = False,
    extra: list | None = None,
    precision: str = "32-true",
    limit: int | None = None,
    overfit: bool = True,
    options: dict | None = None,
) -> dict:
    L.seed_everything(seed, workers=True, verbose=False)
    train, val = loaders(data, batch, seed)
    folder = tempfile.mkdtemp(prefix="mlcheck-gpu-")
    clock = EpochClock()
    callbacks = [clock, *(extra or [])]
    callback = None
    if watch:
        callback = MLCheckCallback(
            log_dir=folder, strict=strict, warn=False, overfit_batch=overfit, timing=True, **(options or {})
        )
        callbacks.append(callback)
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=folder,
        precision=precision,
        limit_train_batches=limit,
        num_sanity_val_steps=0,
        deterministic=False,
    )
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.fit(module, train, val)
    if device == "cuda":
        torch.cuda.synchronize()
    end = time.perf_counter()
    seconds = end - start
    epochs_seconds = [b - a for a, b in zip(clock.starts, [*clock.starts[1:], end])]
    ids: list[str] = []
    if callback is not None and callback.resolved_log_dir is not None:
        path = Path(callback.resolved_log_dir) / "findings.jsonl"
        if path.exists():
            ids = [f"{r['check']}:{r['severity']}" for r in map(json.loads, path.read_text().splitlines())]
    hooks = dict(callback.timer.table) if callback is not None else {}
    return {
        "seconds": seconds,
        "epochs": epochs_seconds,
        "hooks": hooks,
        "findings": sorted(set(ids)),
        "steps": trainer.global_step,
    }


def part_syncs(device: str, quick: bool) -> dict:
    out = {}
    epochs = 2 if quick else 3
    programs = {
        "digits_mlp": (lambda: Classifier(mlp(64, 10)), lambda: digits(), 32),
        "cnn32": (lambda: Classifier(cnn(10)), lambda: images32(1000 if quick else 4000), 64),
    }
    for name, (make, data, batch) in programs.items():
        for watch in (False, True):
            log = SyncLog()
            torch.manual_seed(0)
            module = make()
            with catching_syncs(log):
                result = fit(
                    module, data(), epochs=epochs, batch=batch, watch=watch, device=device, extra=[Marker(log)]
                )
            out[f"{name}/{'mlcheck' if watch else 'none'}"] = {"steps": result["steps"], **log.kinds()}
    return out


def part_strict(devices: list[str], quick: bool) -> dict:
    epochs = 3 if quick else 6
    programs = {
        "digits_mlp (healthy)": (lambda: Classifier(mlp(64, 10)), lambda: digits(), 32),
        "cnn32 (healthy)": (lambda: Classifier(cnn(10)), lambda: images32(1000 if quick else 3000), 64),
        "softmax into CE": (lambda: Classifier(mlp(64, 10), loss="softmax_ce"), lambda: digits(), 32),
        "shuffled labels": (lambda: Classifier(mlp(64, 10)), lambda: digits(shuffle_labels=True), 32),
        "lr 10 (diverges)": (lambda: Classifier(mlp(64, 10), lr=10.0), lambda: digits(), 32),
        "log of relu (non-finite)": (lambda: Classifier(mlp(64, 10), loss="log_relu"), lambda: digits(), 32),
        "10% labels flipped": (lambda: Classifier(mlp(64, 10)), lambda: digits(noise=0.1), 32),
        "log of relu, nonfinite_origin=True": (
            lambda: Classifier(mlp(64, 10), loss="log_relu"),
            lambda: digits(),
            32,
            {"nonfinite_origin": True},
        ),
    }
    out = {}
    for name, (make, data, batch, *options) in programs.items():
        row = {}
        for device in devices:
            torch.manual_seed(0)
            try:
                result = fit(
                    make(),
                    data(),
                    epochs=epochs,
                    batch=batch,
                    watch=True,
                    device=device,
                    strict=True,
                    options=options[0] if options else None,
                )
                row[device] = result["findings"]
            except Exception as exc:  # strict: an internal error of a check raises
                row[device] = [f"RAISED {type(exc).__name__}: {exc}"[:300]]
                traceback.print_exc()
        out[name] = row
    return out


def paired(make, data, *, epochs, batch, device, reps, precision="32-true", limit=None) -> dict:
    """Fit seconds with and without the callback, overfit-a-batch off (measured apart: the
    extra seconds one fit with it on takes, beside 100 of the run's own training steps)."""
    ratios, first, later, times = [], [], [], {"none": [], "mlcheck": []}
    fit(make(), data, epochs=1, batch=batch, watch=False, device=device, precision=precision, limit=limit)  # warm-up
    torch.manual_seed(0)
    with_overfit = fit(
        make(), data, epochs=epochs, batch=batch, watch=True, device=device, precision=precision, limit=limit
    )
    for rep in range(reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        pair = {}
        for watch in order:
            torch.manual_seed(0)
            result = fit(
                make(),
                data,
                epochs=epochs,
                batch=batch,
                watch=watch,
                device=device,
                precision=precision,
                limit=limit,
                overfit=False,
            )
            pair[watch] = result
            steps = result["steps"]
        times["none"].append(pair[False]["seconds"])
        times["mlcheck"].append(pair[True]["seconds"])
        ratios.append(pair[True]["seconds"] / pair[False]["seconds"] - 1)
        first.append(pair[True]["epochs"][0] / pair[False]["epochs"][0] - 1)
        if epochs > 1:
            later.append(sum(pair[True]["epochs"][1:]) / sum(pair[False]["epochs"][1:]) - 1)
        hooks = pair[True]["hooks"]
    step_seconds = statistics.median(times["none"]) / max(steps, 1)  # validation included: an upper bound
    return {
        "overhead_median": statistics.median(ratios),
        "first_epoch_median": statistics.median(first),
        "later_epochs_median": statistics.median(later) if later else None,
        "hooks_ms": {k: round(1000 * v, 1) for k, v in sorted(hooks.items(), key=lambda kv: -kv[1])},
        "ratios": ratios,
        "seconds_none": times["none"],
        "seconds_mlcheck": times["mlcheck"],
        "overfit_batch_seconds": with_overfit["seconds"] - statistics.median(times["mlcheck"]),
        "hundred_steps_seconds": 100 * step_seconds,
    }


def part_overhead(device: str, quick: bool, reps: int) -> dict:
    return {
        "cnn32 3 epochs": paired(
            lambda: Classifier(cnn(10)),
            images32(2000 if quick else 20000),
            epochs=3,
            batch=64,
            device=device,
            reps=reps,
        ),
        "digits_mlp 3 epochs": paired(
            lambda: Classifier(mlp(64, 10)), digits(), epochs=3, batch=32, device=device, reps=reps
        ),
    }


def part_first224(device: str, quick: bool, reps: int) -> dict:
    import torchvision

    n = 256 if quick else 6400
    data = images224(n)

    def make():
        return Classifier(torchvision.models.resnet18(num_classes=10), scale=1 / 255.0)

    precision = "bf16-mixed" if device == "cuda" else "32-true"
    # two epochs: the first one's time (start to start) leaves out the fit's start and end
    result = paired(make, data, epochs=2, batch=64, device=device, reps=reps, precision=precision)
    steps = math.ceil(int(0.9 * n) / 64)
    result["train_steps"] = steps
    result["ms_per_step_none"] = 1000 * statistics.median(result["seconds_none"]) / (2 * steps)
    return result


def part_keras(quick: bool, reps: int) -> dict:  # noqa: C901
    """Keras 3 on its torch backend (on the GPU where there is one): syncs, strict findings and
    the paired overhead of a digits MLP (overfit-a-batch apart), as the Lightning parts."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras-home-"))
    import keras

    from mlcheck.integrations.keras import MLCheckCallback as KerasCallback

    (xt, yt), (xv, yv) = digits()
    epochs = 2 if quick else 3

    def model(bug: bool = False):
        keras.utils.set_random_seed(0)
        m = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10, activation="softmax" if bug else None),  # bug: softmax into from_logits
            ]
        )
        m.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return m

    class KMarker(keras.callbacks.Callback):
        def __init__(self, log: SyncLog) -> None:
            super().__init__()
            self.sync_log, self.step = log, 0

        def on_epoch_begin(self, epoch, logs=None):
            self.sync_log.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            self.sync_log.step, self.sync_log.split = self.step, "train"
            self.step += 1

        def on_test_begin(self, logs=None):
            self.sync_log.split = "val"

        def on_epoch_end(self, epoch, logs=None):
            self.sync_log.split = "epoch_end"

    def kfit(m, *, watch: bool, labels=yt, strict=False, overfit=True, extra=()) -> dict:
        folder = Path(tempfile.mkdtemp(prefix="mlcheck-gpu-keras-"))
        callbacks = list(extra)
        if watch:
            callbacks.append(KerasCallback(log_dir=folder, strict=strict, warn=False, overfit_batch=overfit))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        m.fit(xt, labels, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        path = folder / "findings.jsonl"
        rows = map(json.loads, path.read_text().splitlines()) if path.exists() else ()
        return {"seconds": seconds, "findings": sorted({f"{r['check']}:{r['severity']}" for r in rows})}

    out: dict = {"device": str(keras.src.backend.torch.core.get_device())}
    for watch in (False, True):
        log = SyncLog()
        with catching_syncs(log):
            kfit(model(), watch=watch, extra=[KMarker(log)])
        out[f"syncs/{'mlcheck' if watch else 'none'}"] = log.kinds()
    shuffled = np.random.default_rng(1).permutation(yt)
    for name, make, labels in (
        ("healthy", model, yt),
        ("softmax into from_logits", lambda: model(True), yt),
        ("shuffled labels", model, shuffled),
    ):
        try:
            out[f"strict/{name}"] = kfit(make(), watch=True, labels=labels, strict=True)["findings"]
        except Exception as exc:
            out[f"strict/{name}"] = [f"RAISED {type(exc).__name__}: {exc}"[:300]]
            traceback.print_exc()
    kfit(model(), watch=False)  # warm-up
    with_overfit = kfit(model(), watch=True)["seconds"]
    ratios, times = [], {False: [], True: []}
    for rep in range(reps):
        pair = {}
        for watch in (False, True) if rep % 2 == 0 else (True, False):
            pair[watch] = kfit(model(), watch=watch, overfit=False)["seconds"]
            times[watch].append(pair[watch])
        ratios.append(pair[True] / pair[False] - 1)
    steps = epochs * math.ceil(len(xt) / 32)
    out["overhead digits_mlp"] = {
        "overhead_median": statistics.median(ratios),
        "ratios": ratios,
        "seconds_none": times[False],
        "overfit_batch_seconds": with_overfit - statistics.median(times[True]),
        "hundred_steps_seconds": 100 * statistics.median(times[False]) / steps,
    }
    return out


def print_paired(title: str, r: dict) -> None:
    later = r.get("later_epochs_median")
    print(
        f"{title}: median {100 * r['overhead_median']:+.2f}% (first epoch {100 * r['first_epoch_median']:+.2f}%"
        + (f", later epochs {100 * later:+.2f}%" if later is not None else "")
        + f") pairs {[round(100 * x, 2) for x in r['ratios']]} s none {[round(x, 2) for x in r['seconds_none']]}; "
        f"overfit-batch {r['overfit_batch_seconds']:.2f} s vs 100 steps {r['hundred_steps_seconds']:.2f} s"
    )
    print(f"    hooks (ms, one fit): {r['hooks_ms']}")


def print_sites(sites: dict) -> None:
    for site, n in sorted(sites.items(), key=lambda kv: -kv[1]["count"]):
        kinds = {k: v for k, v in n.items() if k not in ("count", "steps")}
        print(f"    {n['count']:5d} {site} {kinds} e.g. {n['steps']}")


def run_part(part: str, device: str, args: argparse.Namespace, report: dict) -> None:  # noqa: C901
    """Runs one part and prints its table."""
    if part == "syncs":
        report[part] = part_syncs(device, args.quick)
        for name, r in report[part].items():
            print(f"syncs {name}: steps {r['steps']}, all {r['syncs']}, mlcheck {r['mlcheck_syncs']} {r['by_kind']}")
            print_sites(r["sites"])
    elif part == "strict":
        report[part] = part_strict(["cuda", "cpu"] if device == "cuda" else ["cpu"], args.quick)
        for name, row in report[part].items():
            same = len({tuple(v) for v in row.values()}) == 1
            print(f"strict {name}: {'same on each device' if same else 'DIFFERENT'}")
            for dev, ids in row.items():
                print(f"    {dev}: {', '.join(ids) or '-'}")
    elif part == "overhead":
        report[part] = part_overhead(device, args.quick, args.reps)
        for name, r in report[part].items():
            print_paired(f"overhead {name}", r)
    elif part == "first224":
        report[part] = part_first224(device, args.quick, args.reps)
        r = report[part]
        print_paired("first224 (two epochs)", r)
        print(f"    {r['train_steps']} steps, {r['ms_per_step_none']:.1f} ms per step without (incl. validation)")
    elif part == "keras":
        report[part] = r = part_keras(args.quick, args.reps)
        print(f"keras on {r['device']}")
        for key, value in r.items():
            if key.startswith("syncs"):
                print(f"    {key}: all {value['syncs']}, mlcheck {value['mlcheck_syncs']} {value['by_kind']}")
                print_sites(value["sites"])
            elif key.startswith("strict"):
                print(f"    {key}: {value}")
        o = r["overhead digits_mlp"]
        print(
            f"    overhead digits_mlp 3 epochs: median {100 * o['overhead_median']:+.2f}% pairs "
            f"{[round(100 * x, 2) for x in o['ratios']]}; overfit-batch {o['overfit_batch_seconds']:.2f} s vs "
            f"100 steps {o['hundred_steps_seconds']:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="syncs,strict,overhead,first224,keras")
    parser.add_argument("--quick", action="store_true", help="small data, few epochs (a try-out)")
    parser.add_argument("--reps", type=int, default=3, help="pairs per timed case")
    parser.add_argument("--out", default=None, help="folder for gpu.json")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__}
    parts = args.parts.split(",")
    print(f"device: {report['device']}, torch {torch.__version__}", flush=True)
    for part in parts:
        start = time.perf_counter()
        try:
            run_part(part, device, args, report)
        except Exception as exc:  # the next part still runs
            traceback.print_exc()
            report[part] = {"error": f"{type(exc).__name__}: {exc}"}
        report.setdefault("seconds", {})[part] = time.perf_counter() - start
        print(f"[{part}: {report['seconds'][part]:.0f} s]", flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "gpu.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
