"""Instructions a fit executes with and without mlcheck, counted by valgrind's callgrind.

Why: on a shared 2-core machine paired wall-clock and even process-CPU ratios of a 1-4 s fit
spread by +-10% or more (a run with the callback came out cheaper than one without it), which
hides the 1-3% the overhead targets are about. The instructions a seeded fit executes hardly
move with machine load, so their ratio is repeatable where time is not.

Method. Each fit runs in its own process under
`valgrind --tool=callgrind --instr-atstart=no`: imports and set-up run uninstrumented (faster,
and not counted); a small C shim (compiled here with gcc against valgrind's `callgrind.h`) is
called through ctypes to zero the counters and start instrumentation just before
`trainer.fit` / `model.fit`, and to stop it and dump the counts just after, so the count is the
fit's alone (every thread's). Before the counted fit, the process runs one uncounted 1-epoch fit
of the same arm, so lazy imports and first-call costs stay out, as the warm-up fits of the
overhead benchmarks do. `PYTHONHASHSEED=0`, one torch thread, `OMP_NUM_THREADS=1`. The per-epoch
cost is the epoch difference `(I(N2) - I(N1)) / (N2 - N1)`, which cancels the fit's fixed part.

Arms (those of `bench_overhead_lightning.py` / `bench_overhead_keras.py`, overfit-a-batch apart):
`none` (no callback), `defaults` (`MLCheckCallback(overfit_batch=False)`: every other default,
the layer checks included), `layers_off` (the defaults with the layer checks suppressed and, in
Lightning, the non-finite origin watch off). Ratios: defaults / none (issue 13's per-step target)
and defaults / layers_off (issue 14's layer statistics target).

Instructions are not time: torch's kernels are memory-bound and vectorised (one AVX2 instruction
does 8 float multiply-adds and may wait on a cache miss), while the Python mlcheck adds runs ~1
instruction per cycle or better, so an instruction ratio weighs mlcheck's share more than a time
ratio does, roughly. Each row carries a native wall (and thread CPU) figure of the same fits, the
minimum over `--wall-reps` fits, for comparison; those depend on the machine's load.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_instructions.py
     [--frameworks lightning,keras] [--models mlp,cnn] [--epochs 1,3] [--extrapolate 10]
     [--repeat 3] [--wall-reps 3] [--jobs 2] [--json-out PATH]
Each process counts a 1-epoch and a 3-epoch fit (after its warm-up); the 10-epoch ratios are
extrapolated with the per-epoch cost, as a 10-epoch CNN fit would take over 5 minutes under
callgrind. Quick (the Lightning MLP at 1 and 2 epochs, two valgrind processes at once, no
repeats; < 10 minutes on an idle 2-core machine): `--quick`.
Needs valgrind (with its headers, `valgrind/callgrind.h`) and gcc; not part of `make bench`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARMS = ("none", "defaults", "layers_off")
HERE = Path(__file__).resolve().parent

_SHIM = r"""
#include <valgrind/callgrind.h>
void mlcheck_bench_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void mlcheck_bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("fit"); }
"""


def build_shim(folder: Path) -> Path:
    """The shared library with the two client requests (no-ops outside valgrind)."""
    source, library = folder / "shim.c", folder / "shim.so"
    source.write_text(_SHIM)
    done = subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(library), str(source)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"gcc could not build the callgrind shim (install valgrind's headers?):\n{done.stderr}")
    return library


# --- the child: one counted fit -------------------------------------------------------------


def _lightning_fit(model: str, epochs: int, arm: str, root: str):
    """A ready-to-call fit of the Lightning digits model, built as `bench_overhead_lightning`."""
    import lightning.pytorch as L
    from bench_overhead_lightning import LAYER_IDS, Classifier, digits_loaders

    from mlcheck.integrations.lightning import MLCheckCallback

    callbacks = {
        "none": [],
        "defaults": [MLCheckCallback(overfit_batch=False)],
        "layers_off": [MLCheckCallback(overfit_batch=False, suppress=list(LAYER_IDS), nonfinite_origin=False)],
    }[arm]
    L.seed_everything(0, verbose=False)
    net = Classifier(model)
    train, val = digits_loaders(image=model.endswith("cnn"), kind=model)
    trainer = L.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        default_root_dir=root,
        logger=L.loggers.TensorBoardLogger(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    return lambda: trainer.fit(net, train, val)


def _keras_fit(model: str, epochs: int, arm: str, root: str):
    """A ready-to-call fit of the Keras digits model, built as `bench_overhead_keras`."""
    from bench_overhead_keras import build, digits

    from mlcheck.checks.base import registry
    from mlcheck.integrations.keras import MLCheckCallback

    layer_ids = [i for i, c in registry().items() if c.family == "layers"]
    callbacks = {
        "none": [],
        "defaults": [MLCheckCallback(log_dir=root, overfit_batch=False)],
        "layers_off": [MLCheckCallback(log_dir=root, overfit_batch=False, suppress=layer_ids)],
    }[arm]
    (xt, yt), (xv, yv) = digits(model == "cnn")
    net = build(model)
    return lambda: net.fit(
        xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks
    )


def child(args: argparse.Namespace) -> None:
    """One uncounted 1-epoch warm-up fit, then one fit per epoch count (each counted and dumped
    apart under valgrind, `--reps` times natively); prints one JSON line."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import torch

    torch.set_num_threads(1)
    make = _lightning_fit if args.framework == "lightning" else _keras_fit
    shim = ctypes.CDLL(args.shim) if args.shim else None
    walls: dict[int, list[float]] = {}
    cpus: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as root:
        make(args.model, 1, args.arm, os.path.join(root, "warm"))()
        for rep in range(args.reps):
            for epochs in args.epochs:
                fit = make(args.model, epochs, args.arm, os.path.join(root, f"{rep}-{epochs}"))
                gc.collect()  # as the overhead benchmarks: a full collection lands on no fit
                if shim is not None:
                    shim.mlcheck_bench_start()
                wall, cpu = time.perf_counter(), time.thread_time()
                fit()
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                if shim is not None:
                    shim.mlcheck_bench_stop()
                walls.setdefault(epochs, []).append(wall)
                cpus.setdefault(epochs, []).append(cpu)
    print(json.dumps({"wall_s": walls, "thread_cpu_s": cpus}), flush=True)


# --- the parent: counts, walls, ratios ------------------------------------------------------

_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.M)


def _self_cost_by_object(dump: Path) -> dict[str, int]:
    """Self instructions per ELF object from a callgrind dump (the interpreter against torch's
    libraries). An object's name comes at its id's first use, in an `ob=` or a `cob=` line; the
    line after `calls=` carries a call's inclusive cost and is skipped."""
    names: dict[str, str] = {}
    costs: dict[str, int] = {}
    current, skip = "", False
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("ob=", "cob=")):
            match = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line)
            if match is None:
                continue
            if match.group(2):
                names[match.group(1)] = os.path.basename(match.group(2))
            if line.startswith("ob="):
                current = match.group(1)
        elif line.startswith("calls="):
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                costs[current] = costs.get(current, 0) + int(parts[1])
    by_name: dict[str, int] = {}
    for key, cost in costs.items():
        by_name[names.get(key, "?")] = by_name.get(names.get(key, "?"), 0) + cost
    return by_name


#: groups of ELF objects, by the start of the file name (the rest: "other", mostly libc's
#: malloc and memcpy, the loader's thread-local lookups, libstdc++)
_GROUPS = {
    "python": ("libpython", "python"),
    "torch": ("libtorch", "libc10", "libgomp"),
    "numpy": ("_multiarray", "_generator", "_pcg64", "_mt19937", "bit_generator", "mtrand", "libscipy_openblas"),
}


def _group(costs: dict[str, int]) -> dict[str, int]:
    """Self instructions per group of objects: the interpreter, torch, numpy, other."""
    groups = dict.fromkeys([*_GROUPS, "other"], 0)
    for name, cost in costs.items():
        group = next((g for g, starts in _GROUPS.items() if name.startswith(starts)), "other")
        groups[group] += cost
    return groups


def _environment() -> dict[str, str]:
    return dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _child_command(framework: str, model: str, epochs: list[int], arm: str) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--child",
        f"--framework={framework}",
        f"--model={model}",
        f"--epochs={','.join(map(str, epochs))}",
        f"--arm={arm}",
    ]


def count(framework: str, model: str, epochs: list[int], arm: str, shim: Path, folder: Path) -> dict:
    """Instructions of each fit (one per epoch count, after a warm-up) in one valgrind process,
    with their split by object and the process's own seconds."""
    out = folder / f"cg.{framework}-{model}-{arm}-{time.monotonic_ns()}"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command += [*_child_command(framework, model, epochs, arm), f"--shim={shim}"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_environment())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    fits = {}
    for number, n in enumerate(epochs, start=1):  # dump k: the client request after fit k
        dump = Path(f"{out}.{number}")
        match = _TOTALS.search(dump.read_bytes())
        if match is None:
            raise RuntimeError(f"no totals in {dump}")
        fits[n] = {"instructions": int(match.group(1)), "by_object": _group(_self_cost_by_object(dump))}
    for path in folder.glob(f"{out.name}*"):
        path.unlink()
    return {"fits": fits, "valgrind_run_s": round(seconds, 1)}


def native(framework: str, model: str, epochs: list[int], arm: str, reps: int) -> dict:
    """The same fits without valgrind, `reps` times in one process: min wall and thread CPU."""
    command = [*_child_command(framework, model, epochs, arm), f"--reps={reps}"]
    done = subprocess.run(command, capture_output=True, text=True, env=_environment())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    row = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{")))
    return {
        int(n): {"wall_s": min(row["wall_s"][n]), "thread_cpu_s": min(row["thread_cpu_s"][n])} for n in row["wall_s"]
    }


def cached_native(cache: Path | None, framework: str, model: str, epochs: list[int], arm: str, reps: int) -> dict:
    """`native`, or the figures a run with the same `--cache` kept."""
    path = cache / f"walls-{framework}-{model}-{arm}-{'_'.join(map(str, epochs))}-{reps}.json" if cache else None
    if path is not None and path.exists():
        return {int(n): row for n, row in json.loads(path.read_text()).items()}
    result = native(framework, model, epochs, arm, reps)
    if path is not None:
        path.write_text(json.dumps(result))
    return result


def run(args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="mlcheck-instr-"))
    shim = build_shim(folder)
    jobs = [(f, m, a, 0) for f in args.frameworks for m in args.models for a in ARMS if a in args.arms]
    first = (args.frameworks[0], args.models[0])
    if "defaults" in args.arms:  # after the first model's arms
        jobs[len(args.arms) : len(args.arms)] = [(*first, "defaults", r) for r in range(1, args.repeat)]
    load = [os.getloadavg()[0]]
    counts: dict = {}
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    def cached_count(f: str, m: str, a: str, r: int) -> dict:
        """`count`, or the result a run with the same `--cache` kept (JSON keys are strings)."""
        path = cache / f"{f}-{m}-{a}-{'_'.join(map(str, args.epochs))}-{r}.json" if cache else None
        if path is not None and path.exists():
            result = json.loads(path.read_text())
            result["fits"] = {int(n): fit for n, fit in result["fits"].items()}
            return result
        result = count(f, m, args.epochs, a, shim, folder)
        if path is not None:
            path.write_text(json.dumps(result))
        return result

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(cached_count, f, m, a, r): (f, m, a, r) for f, m, a, r in jobs}
        for future in concurrent.futures.as_completed(futures):
            f, m, a, r = futures[future]
            result = future.result()
            counts.setdefault((f, m, a), []).append(result)
            fits = ", ".join(f"{n} epochs {c['instructions']:,}" for n, c in result["fits"].items())
            load.append(os.getloadavg()[0])
            print(
                f"  counted {f} {m} {a} #{r}: {fits} ({result['valgrind_run_s']} s in valgrind, load {load[-1]:.1f})",
                file=sys.stderr,
                flush=True,
            )
    if set(args.arms) != set(ARMS):  # a part of the runs (into `--cache`): no ratios
        shutil.rmtree(folder, ignore_errors=True)
        return {}
    walls = {}
    if args.wall_reps:
        for f, m, a, r in jobs:
            if r == 0:
                walls[(f, m, a)] = cached_native(cache, f, m, args.epochs, a, args.wall_reps)
                load.append(os.getloadavg()[0])
    shutil.rmtree(folder, ignore_errors=True)
    return report(args, counts, walls, load)


def report(args: argparse.Namespace, counts: dict, walls: dict, load: list[float]) -> dict:
    rows, per_epoch = [], []
    for framework in args.frameworks:
        for model in args.models:
            fits = {a: counts[(framework, model, a)][0]["fits"] for a in ARMS}
            for n in args.epochs:
                row = {"framework": framework, "model": model, "epochs": n}
                row["instructions"] = {a: fits[a][n]["instructions"] for a in ARMS}
                row["by_object"] = {a: fits[a][n]["by_object"] for a in ARMS}
                i = row["instructions"]
                row["defaults_over_none"] = i["defaults"] / i["none"]
                row["layers_on_over_off"] = i["defaults"] / i["layers_off"]
                if walls:
                    w = {a: walls[(framework, model, a)][n] for a in ARMS}
                    row["native"] = w
                    for clock, key in (("wall", "wall_s"), ("cpu", "thread_cpu_s")):
                        row[f"{clock}_defaults_over_none"] = w["defaults"][key] / w["none"][key]
                        row[f"{clock}_layers_on_over_off"] = w["defaults"][key] / w["layers_off"][key]
                rows.append(row)
            if len(args.epochs) >= 2:
                lo, hi = args.epochs[0], args.epochs[-1]
                diff = {a: (fits[a][hi]["instructions"] - fits[a][lo]["instructions"]) / (hi - lo) for a in ARMS}
                row = {"framework": framework, "model": model, "epochs": [lo, hi], "per_epoch_instructions": diff}
                row["defaults_over_none"] = diff["defaults"] / diff["none"]
                row["layers_on_over_off"] = diff["defaults"] / diff["layers_off"]
                for n in args.extrapolate:  # I(n) = I(hi) + (n - hi) * per epoch
                    at = {a: fits[a][hi]["instructions"] + (n - hi) * diff[a] for a in ARMS}
                    row[f"extrapolated_{n}_epochs"] = {
                        "defaults_over_none": at["defaults"] / at["none"],
                        "layers_on_over_off": at["defaults"] / at["layers_off"],
                    }
                per_epoch.append(row)
    first = (args.frameworks[0], args.models[0], "defaults")
    repeats = {n: [c["fits"][n]["instructions"] for c in counts[first]] for n in args.epochs}
    spread = {n: (max(r) - min(r)) / statistics.median(r) for n, r in repeats.items()}
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "load_average": [round(min(load), 2), round(max(load), 2)],
        "repeatability": {"run": list(first), "instructions": repeats, "max_minus_min_over_median": spread},
        "rows": rows,
        "per_epoch": per_epoch,
    }


def print_report(result: dict) -> None:
    rep = result["repeatability"]
    print(
        f"Instructions per fit (callgrind), {result['date_utc']} UTC, load average "
        f"{result['load_average'][0]}-{result['load_average'][1]} (the counts do not depend on it; the walls do)"
    )
    for n, values in rep["instructions"].items():
        print(
            f"repeatability, {' '.join(rep['run'])} {n} epochs, {len(values)} processes: "
            f"{', '.join(f'{i:,}' for i in values)} (max - min: {100 * rep['max_minus_min_over_median'][n]:.3f}%)"
        )
    print(
        f"{'fit':<22} {'none':>14} {'defaults':>14} {'layers off':>14}  {'defaults/none':>13} {'layers on/off':>13}"
        f"  {'wall d/n':>8} {'on/off':>6}  {'cpu d/n':>7} {'on/off':>6}"
    )
    for row in result["rows"]:
        i = row["instructions"]
        walls = ""
        if "native" in row:
            walls = (
                f"  {row['wall_defaults_over_none']:8.3f} {row['wall_layers_on_over_off']:6.3f}"
                f"  {row['cpu_defaults_over_none']:7.3f} {row['cpu_layers_on_over_off']:6.3f}"
            )
        print(
            f"{row['framework'] + ' ' + row['model'] + ' ' + str(row['epochs']) + 'ep':<22} "
            f"{i['none']:>14,} {i['defaults']:>14,} {i['layers_off']:>14,}  "
            f"{row['defaults_over_none']:13.4f} {row['layers_on_over_off']:13.4f}{walls}"
        )
    for row in result["per_epoch"]:
        d = row["per_epoch_instructions"]
        print(
            f"per epoch ({row['framework']} {row['model']}, fits of {row['epochs'][1]} and {row['epochs'][0]} epochs): "
            f"none {d['none']:,.0f}, defaults {d['defaults']:,.0f}, layers off {d['layers_off']:,.0f}; "
            f"defaults/none {row['defaults_over_none']:.4f}, layers on/off {row['layers_on_over_off']:.4f}"
        )
        for key, value in row.items():
            if key.startswith("extrapolated_"):
                print(
                    f"  {key.replace('_', ' ')}: defaults/none {value['defaults_over_none']:.4f}, "
                    f"layers on/off {value['layers_on_over_off']:.4f}"
                )
    for row in result["rows"]:
        extra = {k: row["by_object"]["defaults"][k] - row["by_object"]["none"][k] for k in row["by_object"]["none"]}
        total = sum(extra.values()) or 1
        shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in extra.items())
        label = f"{row['framework']} {row['model']} {row['epochs']} epochs"
        print(f"where the defaults' extra instructions run ({label}): {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--frameworks", default="lightning", help="comma-separated: lightning, keras")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn (digits, 8x8)")
    parser.add_argument(
        "--epochs", default="1,3", help="comma-separated epoch counts, fits in one process (two or more: per epoch)"
    )
    parser.add_argument(
        "--extrapolate", default="10", help="epoch counts to extrapolate with the per-epoch cost (e.g. 10)"
    )
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated; a part only fills --cache")
    parser.add_argument("--repeat", type=int, default=3, help="counts of the first run's defaults arm (repeatability)")
    parser.add_argument("--wall-reps", type=int, default=3, help="native fits per arm for the wall figure (0: none)")
    parser.add_argument("--jobs", type=int, default=1, help="valgrind processes at once")
    parser.add_argument("--quick", action="store_true", help="Lightning MLP at 1 and 2 epochs, --jobs 2, no repeats")
    parser.add_argument("--json-out", help="write the report as JSON here")
    parser.add_argument(
        "--cache",
        help="folder that keeps each finished count: a run with the same folder and settings reuses "
        "them (an interrupted run resumes; one model at a time, then the whole report)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shim", help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.epochs = [int(e) for e in args.epochs.split(",")]
        child(args)
        return
    if args.quick:
        args.frameworks, args.models, args.epochs, args.repeat = "lightning", "mlp", "1,2", 1
        args.jobs = max(args.jobs, 2)
    if shutil.which("valgrind") is None or shutil.which("gcc") is None:
        parser.error("needs valgrind (with valgrind/callgrind.h) and gcc on PATH")
    args.frameworks = [f for f in args.frameworks.split(",") if f]
    args.models = [m for m in args.models.split(",") if m]
    args.epochs = sorted(int(e) for e in args.epochs.split(",") if e)
    args.extrapolate = [int(e) for e in args.extrapolate.split(",") if e]
    args.arms = [a for a in args.arms.split(",") if a]
    if set(args.arms) - set(ARMS):
        parser.error(f"arms: {', '.join(ARMS)}")
    if set(args.frameworks) - {"lightning", "keras"} or set(args.models) - {"mlp", "cnn"}:
        parser.error("frameworks: lightning, keras; models: mlp, cnn")
    result = run(args)
    if not result:
        return
    print_report(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
