"""Scores mlcheck and the rules it is compared with on the labelled real runs of this folder.

    .venv/bin/python benchmarks/reallogs/score.py               # the dev half
    .venv/bin/python benchmarks/reallogs/score.py --held-out    # dev and held-out (already looked at)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-2  # plus the runs added later (score it last)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-3  # plus the NaN / plateau / divergence hunt
    .venv/bin/python benchmarks/reallogs/score.py --held-out-4  # plus the logs read in their own formats
    .venv/bin/python benchmarks/reallogs/score.py --held-out-5  # plus the fifth set (new repositories, raw formats)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-6  # plus the sixth (Ultralytics YOLO results.csv)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-7  # plus the seventh (38 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-8  # plus the eighth (50 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-9  # plus the ninth (39 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-10 # plus the tenth (44 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-11 # plus the eleventh (39 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-12 # plus the twelfth (46 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-13 # plus the thirteenth (53 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --held-out-14 # plus the fourteenth (27 more repositories' logs)
    .venv/bin/python benchmarks/reallogs/score.py --only held-out-3   # one split alone
    .venv/bin/python benchmarks/reallogs/score.py --runs        # plus one line per run
    .venv/bin/python benchmarks/reallogs/score.py --held-out-6 --raw   # mlcheck on the raw files

Every run goes through `mlcheck.analyze.run(runs/<id>.csv)` (what `mlcheck analyze` does), and
through Keras EarlyStopping(patience=3), a UMLAUT-style overfitting rule, SageMaker Debugger's
Overfit and LossNotDecreasing rules, and Prechelt's GL5 and PQ2, re-implemented below on the
same epoch curves. Labels, onsets and the rules are described in README.md.

`--raw [MIRROR]` scores mlcheck on the file the run was read from (`repo`, `commit`, `path` of
the manifest; MIRROR/<owner>+<name>/repo a git snapshot, as the `build_raw*.py` scripts read
them), in its own format: `mlcheck.analyze.run` on that file, written out of the snapshot with
the settings Ultralytics and Lightning save beside it (`args.yaml`, `opt.yaml` and
YOLOv5's `hyp.yaml`, `hparams.yaml`),
so what analyze learns from the format (a YOLO run's pretrained start and augmented training, a
Trainer state's steps, a logged learning rate) reaches the score. A finding's epoch (or step)
is mapped to the run's epochs as the manifest numbers them: the k-th epoch of the file holding
a validation loss is epoch k. Runs without a snapshot (every notebook printout), or whose raw
file analyze reads as a different number of fits or epochs than the manifest, are scored from
their copy in `runs/`, and counted. The baseline rules are scored on the copies either way.

The copies keep only the curves; where the manifest's `pretrained` column says what the run's own
settings said (held-out-6's YOLO runs, from the `args.yaml` or `opt.yaml` beside the results.csv
at its commit: build_raw6.py), the copy is read with it as `RunInfo.pretrained`, as `mlcheck
analyze` on the raw folder reads it. A measurement fix (2026-12-05, fa26), not a change to mlcheck.

"Early hits" (a line under each table): hits more than `early_tolerance(n)` epochs before the
labelled onset (max(3, n // 10) on an n-epoch run), for mlcheck and every rule: such a firing
is not a detection of that symptom (the validation loss went on improving for more than the 3
epochs README's rule 4 asks of a rise; on long runs a tenth of the run leaves room for a
near-tie between two minima). They are counted inside the hits above, as before.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import math
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYMPTOMS = ("overfitting", "divergence", "nan", "plateau")
# which mlcheck check detects which symptom
CHECKS = {
    "overfitting": {"train-val-gap"},
    "divergence": {"loss-divergence", "lr-too-high"},
    "nan": {"nonfinite-loss"},
    "plateau": {"loss-plateau"},
}


MIRROR = Path("/work/.mirror")
# manifest formats whose raw file `mlcheck analyze` reads (the notebook printouts are not files)
RAW_FORMATS = {
    "keras-csv",
    "keras-history-csv",
    "keras-history-json",
    "trainer-log-json",
    # per-epoch records nested in a JSON object: read since round 36 (mlcheck.analyze.history)
    "epoch-records-json",
    "sweep-csv",
    "lightning-csv",
    "tensorboard",
    "trainer-state",
    "ultralytics-csv",
}
# files the tools save beside a log, which analyze reads with it (YOLO's pretrained start, its mosaics)
BESIDE = ("args.yaml", "opt.yaml", "hyp.yaml", "hparams.yaml")


def early_tolerance(epochs: int) -> int:
    """Epochs a hit may come before the labelled onset and still count as on time."""
    return max(3, epochs // 10)


def read_run(run_id: str, runs_dir: Path | None = None) -> tuple[list[float], list[float]]:
    with open((runs_dir or HERE / "runs") / f"{run_id}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["loss"]) for r in rows], [float(r["val_loss"]) for r in rows]


# Each rule returns the first epoch (1-based) it fires at, or None.


def early_stopping(t: list[float], v: list[float], patience: int = 3) -> int | None:
    """keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, min_delta=0)."""
    best, wait = math.inf, 0
    for k, value in enumerate(v, start=1):
        if value < best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return k
    return None


def umlaut(t: list[float], v: list[float]) -> int | None:
    """UMLAUT-style overfitting heuristic (reconstructed from its description): the validation loss
    rose since the previous epoch while the training loss fell."""
    for k in range(1, len(v)):
        if v[k] > v[k - 1] and t[k] < t[k - 1]:
            return k + 1
    return None


def sagemaker_overfit(t: list[float], v: list[float], ratio_threshold: float = 0.1, patience: int = 1) -> int | None:
    """SageMaker Debugger Overfit: (val - train) / train above ratio_threshold for `patience` evaluations."""
    run = 0
    for k, (a, b) in enumerate(zip(t, v), start=1):
        run = run + 1 if a > 0 and (b - a) / a > ratio_threshold else 0
        if run >= patience:
            return k
    return None


def sagemaker_loss_not_decreasing(
    t: list[float], v: list[float], num_steps: int = 10, diff_percent: float = 0.1
) -> int | None:
    """SageMaker Debugger LossNotDecreasing on the training loss, judged every num_steps epochs."""
    for k in range(num_steps, len(t), num_steps):
        if t[k] > t[k - num_steps] * (1 - diff_percent / 100):
            return k + 1
    return None


def prechelt_gl(t: list[float], v: list[float], alpha: float = 5.0) -> int | None:
    """Prechelt's GL_alpha: 100 (v / min v so far - 1) > alpha."""
    best = math.inf
    for k, value in enumerate(v, start=1):
        best = min(best, value)
        if best > 0 and 100 * (value / best - 1) > alpha:
            return k
    return None


def prechelt_pq(t: list[float], v: list[float], alpha: float = 2.0, strip: int = 5) -> int | None:
    """Prechelt's PQ_alpha: GL / P_strip > alpha, judged at the end of each training strip."""
    best = math.inf
    for k, value in enumerate(v, start=1):
        best = min(best, value)
        if k % strip or best <= 0:
            continue
        window = t[k - strip : k]
        progress = 1000 * (sum(window) / (strip * min(window)) - 1) if min(window) > 0 else math.inf
        gl = 100 * (value / best - 1)
        if progress > 0 and gl / progress > alpha:
            return k
    return None


RULES: dict[str, Callable[[list[float], list[float]], int | None]] = {
    "Keras ES(3)": early_stopping,
    "UMLAUT": umlaut,
    "SM Overfit": sagemaker_overfit,
    "SM LossNotDecr": sagemaker_loss_not_decreasing,
    "Prechelt GL5": prechelt_gl,
    "Prechelt PQ2": prechelt_pq,
}
# which symptom a rule is meant for; elsewhere its column shows "-" (its alarms on healthy runs count)
RULE_SYMPTOMS = {"SM LossNotDecr": {"plateau"}}


# the manifest's `pretrained` column (held-out-6's YOLO runs: what the run's own `args.yaml` or
# `opt.yaml` says, build_raw6.py) -> RunInfo.pretrained; empty or `unknown`: not known (None)
PRETRAINED = {"true": True, "false": False}


@contextlib.contextmanager
def _starting(pretrained: bool | None) -> Iterator[None]:
    """analyze reads the copy as if the run's settings file were beside it: the copy keeps only
    the curves, and a YOLO run's raw folder tells a fine-tune (`RunInfo.pretrained`)."""
    from mlcheck import analyze

    if pretrained is None:
        yield
        return
    original = analyze._starts_trained
    analyze._starts_trained = lambda path, fmt: pretrained
    try:
        yield
    finally:
        analyze._starts_trained = original


def mlcheck_findings(run_id: str, runs_dir: Path | None = None, pretrained: bool | None = None) -> list:
    import mlcheck
    from mlcheck import Severity

    with _starting(pretrained):
        result = mlcheck.analyze.run(str((runs_dir or HERE / "runs") / f"{run_id}.csv"))
    return [f for run in result.runs for f in run.findings if f.severity >= Severity.WARNING]


@dataclass
class Raw:
    """Where `--raw` found each run's raw file, and what it scored from the copies instead."""

    mirror: Path
    folder: Path  # where the raw files are written out of the snapshots
    read: dict[str, int] = field(default_factory=dict)  # split -> runs scored on their raw file
    copies: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> why -> runs

    def fall_back(self, split: str, why: str) -> None:
        self.copies.setdefault(split, {}).setdefault(why, 0)
        self.copies[split][why] += 1


def raw_file(row: dict, mirror: Path, folder: Path) -> Path | str:
    """The run's raw file (or event folder), written out of its snapshot under `folder` with the
    settings files beside it; or why there is none."""
    if row["format"] not in RAW_FORMATS:
        return f"format {row['format']} (no file)"
    gitdir = mirror / row["repo"].replace("/", "+") / "repo"
    if not gitdir.is_dir():
        return "no snapshot"
    commit, path = row["commit"], row["path"]

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(gitdir), *args], capture_output=True, check=True).stdout

    try:
        names = git("ls-tree", "-r", "--name-only", commit, "--", path).decode().splitlines()
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if names == [path]:  # a file: the settings saved beside it too
            siblings = git("ls-tree", "--name-only", commit, "--", f"{parent}/" if parent else ".").decode()
            names += [n for n in siblings.splitlines() if n.rsplit("/", 1)[-1] in BESIDE]
        elif not names:
            return "not in the snapshot"
        dest = folder / row["id"]
        for name in names:
            try:
                data = git("show", f"{commit}:{name}")
            except subprocess.CalledProcessError:
                if name == path or "tfevents" in name:
                    raise
                continue  # listed but not held (the store leaves out large files: a checkpoint), not a log
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    except subprocess.CalledProcessError:
        return "not in the snapshot"
    return dest / path


@contextlib.contextmanager
def _replayed_curves() -> Iterator[list]:
    """The curves `mlcheck.analyze.run` replays, in the order of its runs (observed, not changed)."""
    import mlcheck.analyze as analyze

    seen: list = []
    original = analyze.replay_curves

    def replay(curves, *args, **kwargs):
        seen.append(curves)
        return original(curves, *args, **kwargs)

    analyze.replay_curves = replay
    try:
        yield seen
    finally:
        analyze.replay_curves = original


def _same(a: float, b: float) -> bool:
    """One validation loss, as analyze read it and as the copy holds it (4 significant digits)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.isnan(a) == math.isnan(b) and (math.isnan(a) or a == b)
    return abs(a - b) <= 5e-4 * max(abs(a), abs(b)) + 1e-12


def _aligned(points: list[float], copy: list[float]) -> list[int | None] | None:
    """The manifest's epoch (1-based) of each validation point analyze read, found by its value in
    the copy's validation losses, in order; None for a point the copy does not hold. None where
    the shorter of the two is not matched whole (the raw reading and the copy's differ: then the
    raw file is not scored). The copy can hold a point analyze leaves out (a Trainer's
    `evaluate()` after the fit, at the last step again) and the reverse."""
    out: list[int | None] = []
    j = 0
    for value in points:
        k = j
        while k < len(copy) and not _same(value, copy[k]):
            k += 1
        if k == len(copy):
            out.append(None)
        else:
            out.append(k + 1)
            j = k + 1
    matched = sum(e is not None for e in out)
    return out if matched == min(len(points), len(copy)) and matched else None


def raw_findings(row: dict, source: Path, copy: list[float]) -> tuple[list[tuple[object, int | None]], str] | str:
    """mlcheck's WARNING/ERROR findings on the raw file, each with the manifest's epoch it falls
    at (None where the finding names neither an epoch nor a step), and the format analyze read;
    or why the raw file cannot be scored against the manifest's epochs (`copy`: the validation
    losses of `runs/<id>.csv`, which the raw file's are aligned with)."""
    import mlcheck
    from mlcheck import Severity
    from mlcheck.errors import BadInput

    with _replayed_curves() as seen:
        try:
            result = mlcheck.analyze.run(str(source))
        except BadInput:  # what `mlcheck analyze` exits 2 on: the copy is scored, and counted
            return "analyze cannot read it"
    fit = int(row["cell"]) if row["cell"] else 1
    if len(seen) != len(result.runs) or fit > len(result.runs):
        return f"{len(result.runs)} fits read"
    run, curves = result.runs[fit - 1], seen[fit - 1]
    points = [r for r in curves.epochs if r.val_loss is not None]
    epochs = _aligned([r.val_loss for r in points], copy)
    if epochs is None:
        return f"{len(points)} validation points, not the copy's {len(copy)} epochs"

    def epoch_of(finding) -> int | None:
        # a finding falls at the first point at or after its epoch (or step), and that point at
        # the manifest's epoch it was aligned with (or the next aligned one)
        if finding.epoch is not None and not curves.by_step:
            at = [k for k, r in enumerate(points) if r.epoch >= finding.epoch]
        elif finding.step is not None:
            at = [k for k, r in enumerate(points) if r.step is not None and r.step >= finding.step]
        else:
            return None
        later = [epochs[k] for k in at if epochs[k] is not None]
        return later[0] if later else len(copy)

    found = [(f, epoch_of(f)) for f in run.findings if f.severity >= Severity.WARNING]
    return found, run.format


def score(rows: list[dict], raw: Raw | None = None, runs_dir: Path | None = None) -> dict:
    """{detector: {label: [(detected, lag or None, run id, checks, epochs)]}}; `raw`: mlcheck on the
    raw files where there are (`--raw`)."""
    out: dict = {}
    for row in rows:
        label, run_id = row["label"], row["id"]
        onset = int(row["onset"]) if row["onset"] else None
        t, v = read_run(run_id, runs_dir)
        found, where = None, "copy"
        if raw is not None:
            source = raw_file(row, raw.mirror, raw.folder)
            got = raw_findings(row, source, v) if isinstance(source, Path) else source
            if isinstance(got, str):
                raw.fall_back(row["split"], got)
            else:
                found, where = got[0], got[1]
                raw.read[row["split"]] = raw.read.get(row["split"], 0) + 1
        if found is None:
            pretrained = PRETRAINED.get(row.get("pretrained") or "")
            found = [(f, f.epoch) for f in mlcheck_findings(run_id, runs_dir, pretrained)]
        if label == "healthy":
            fired = min((e for _, e in found if e is not None), default=None)
            hit = bool(found)
        else:
            mine = [e for f, e in found if f.check in CHECKS[label]]
            hit = bool(mine)
            fired = min((e for e in mine if e is not None), default=None)
        checks = ",".join(sorted({f.check for f, _ in found}))
        out.setdefault("mlcheck", {}).setdefault(label, []).append(
            (hit, _lag(fired, onset), run_id, checks + (f" [{where}]" if raw is not None else ""), len(t))
        )
        for name, rule in RULES.items():
            at = rule(t, v)
            out.setdefault(name, {}).setdefault(label, []).append((at is not None, _lag(at, onset), run_id, "", len(t)))
    return out


def _lag(fired: int | None, onset: int | None) -> int | None:
    return None if fired is None or onset is None else fired - onset


def table(result: dict, title: str) -> str:
    detectors = ["mlcheck", *RULES]
    lines = [
        f"**{title}**",
        "",
        "| symptom (runs) | " + " | ".join(detectors) + " |",
        "|---" * (len(detectors) + 1) + "|",
    ]
    labels = [s for s in SYMPTOMS if any(s in result[d] for d in detectors)]
    for label in labels:
        n = len(result["mlcheck"][label])
        cells = []
        for d in detectors:
            if d in RULE_SYMPTOMS and label not in RULE_SYMPTOMS[d]:
                cells.append("-")
                continue
            got = result[d][label]
            hits = [lag for hit, lag, *_ in got if hit]
            lags = [lag for lag in hits if lag is not None]
            lag = f", lag {statistics.median(lags):+g}" if lags else ""
            cells.append(f"{len(hits)}/{n}{lag}")
        lines.append(f"| {label} ({n}) | " + " | ".join(cells) + " |")
    n = len(result["mlcheck"].get("healthy", []))
    cells = [f"{sum(hit for hit, *_ in result[d].get('healthy', []))}/{n}" for d in detectors]
    lines.append(f"| healthy: false alarms ({n}) | " + " | ".join(cells) + " |")
    lines += ["", early_line(result, detectors, labels)]
    return "\n".join(lines)


def early_line(result: dict, detectors: list[str], labels: list[str]) -> str:
    """Hits more than `early_tolerance` epochs before the onset, per detector (inside its hits)."""
    cells = []
    for d in detectors:
        by_label = {}
        for label in labels:
            if d in RULE_SYMPTOMS and label not in RULE_SYMPTOMS[d]:
                continue
            early = [
                run_id
                for hit, lag, run_id, _, n in result[d][label]
                if hit and lag is not None and lag < -early_tolerance(n)
            ]
            if early:
                by_label[label] = len(early)
        total = sum(by_label.values())
        cells.append(f"{d} {total}" + (f" ({', '.join(f'{k} {v}' for k, v in by_label.items())})" if total else ""))
    return "Early hits (more than max(3, epochs // 10) epochs before the onset): " + "; ".join(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--held-out", action="store_true", help="score the held-out half too (do this last)")
    p.add_argument("--held-out-2", action="store_true", help="score the second held-out set too (do this last)")
    p.add_argument("--held-out-3", action="store_true", help="score the third held-out set too (do this last)")
    p.add_argument("--held-out-4", action="store_true", help="score the raw-format logs too (do this last)")
    p.add_argument("--held-out-5", action="store_true", help="score the fifth held-out set too (do this last)")
    p.add_argument("--held-out-6", action="store_true", help="score the sixth held-out set too (do this last)")
    p.add_argument("--held-out-7", action="store_true", help="score the seventh held-out set too (do this last)")
    p.add_argument("--held-out-8", action="store_true", help="score the eighth held-out set too (do this last)")
    p.add_argument("--held-out-9", action="store_true", help="score the ninth held-out set too (do this last)")
    p.add_argument("--held-out-10", action="store_true", help="score the tenth held-out set too (do this last)")
    p.add_argument("--held-out-11", action="store_true", help="score the eleventh held-out set too (do this last)")
    p.add_argument("--held-out-12", action="store_true", help="score the twelfth held-out set too (do this last)")
    p.add_argument("--held-out-13", action="store_true", help="score the thirteenth held-out set too (do this last)")
    p.add_argument("--held-out-14", action="store_true", help="score the fourteenth held-out set too (do this last)")
    p.add_argument("--only", metavar="SPLIT", help="score this split alone")
    p.add_argument("--runs", action="store_true", help="print one line per scored run (mlcheck)")
    p.add_argument(
        "--raw",
        nargs="?",
        const=str(MIRROR),
        metavar="MIRROR",
        help=f"score mlcheck on each run's raw file where MIRROR/<owner>+<name>/repo holds it (default {MIRROR})",
    )
    p.add_argument("--manifest", default=str(HERE / "manifest.csv"), help="the manifest (runs/ beside it)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")  # findings also arrive as warnings; they are counted here
    runs_dir = Path(args.manifest).parent / "runs"
    with open(args.manifest, newline="") as fh:
        manifest = [r for r in csv.DictReader(fh) if r["label"] != "ambiguous"]
    counts: dict = {}
    for r in manifest:
        counts.setdefault(r["split"], {}).setdefault(r["label"], 0)
        counts[r["split"]][r["label"]] += 1
    print(f"Real runs scored (ambiguous runs left out): {counts}\n")
    print("Cells: detected/runs and median lag in epochs after the onset (overfitting: the validation-loss")
    print("minimum); healthy: runs with a WARNING/ERROR (mlcheck) or on which the rule fired.\n")
    # each --held-out-K scores split K and every split before it
    flags = [args.held_out, args.held_out_2, args.held_out_3, args.held_out_4]
    flags += [args.held_out_5, args.held_out_6, args.held_out_7, args.held_out_8, args.held_out_9, args.held_out_10]
    flags += [args.held_out_11, args.held_out_12, args.held_out_13, args.held_out_14]
    names = ["held-out", *(f"held-out-{k}" for k in range(2, 15))]
    splits = ["dev"] + [name for k, name in enumerate(names) if any(flags[k:])]
    if args.only:
        splits = [args.only]
    with tempfile.TemporaryDirectory(prefix="reallogs-raw-") as tmp:
        raw = Raw(Path(args.raw), Path(tmp)) if args.raw else None
        if raw is not None:
            print(f"mlcheck scored on the raw files under {raw.mirror} where there are (--raw)\n")
        for split in splits:
            rows = [r for r in manifest if r["split"] == split]
            result = score(rows, raw, runs_dir)
            print(table(result, f"{split} half ({len(rows)} runs)") + "\n")
            if raw is not None:
                copies = raw.copies.get(split, {})
                why = "; ".join(f"{v} {k}" for k, v in sorted(copies.items()))
                print(
                    f"mlcheck on raw files: {raw.read.get(split, 0)}/{len(rows)} runs; "
                    f"from the copies in runs/: {sum(copies.values())}" + (f" ({why})" if why else "") + "\n"
                )
            if args.runs:
                for label, got in sorted(result["mlcheck"].items()):
                    for hit, lag, run_id, checks, _ in got:
                        print(f"  {split:8} {label:11} {'HIT ' if hit else '-   '} lag {lag!s:>4}  {run_id}  {checks}")
                print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
