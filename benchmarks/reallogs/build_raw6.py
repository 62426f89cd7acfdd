"""Adds the runs of split `held-out-6` to the corpus: Ultralytics YOLO `results.csv` files (YOLOv5,
YOLOv8, YOLO11) committed by 22 public repositories that no earlier split read, turned into the
corpus's per-epoch form and labelled by README.md's rules (`build.label`) before mlcheck is run on
them.

    python benchmarks/reallogs/build_raw6.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py`: it rewrites the `held-out-6` rows of
`manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw.py`'s and `build_raw5.py`'s
(epochs numbered 1.. in file order; runs shorter than `build.MIN_EPOCHS` epochs left out; a curve
repeating another's first epochs to 4 significant digits kept once; at most `MAX_PER_REPO` runs of
one repository, in the order listed), read without mlcheck (the `csv` module). What is read from a
`results.csv` (README.md, "held-out-6", written before any check ran on these files):

- the training loss of an epoch is the sum of its `train/<term>_loss` cells (`box`, `obj`, `cls`
  in YOLOv5; `box`, `cls`, `dfl` in YOLOv8 and later), the validation loss the sum of the
  `val/<term>_loss` cells: Ultralytics logs each term already multiplied by its gain, so the sum
  is the loss the optimiser minimised per image; cells are stripped of the padding YOLOv5 and
  early YOLOv8 write;
- the validation metric (README rule 3's "validation accuracy") is `metrics/mAP50-95(B)`
  (YOLOv5: `metrics/mAP_0.5:0.95`), written to the run file as `val_mAP`: a detector that learns
  nothing keeps its mAP near 0 every epoch;
- rows whose cells are not all numbers (a merge conflict's markers committed in the file) are
  left out.

The manifest's `pretrained` column (added by fa26, after the split was labelled and scored) is
what the run's own settings file at the same commit says, read by `mlcheck.analyze`'s reader of
the raw folder (`ultralytics_pretrained`): `true` where `opt.yaml`'s `weights:` or `args.yaml`'s
`model:`/`pretrained:` names a weights file (COCO weights or a previous run's `best.pt`), `false`
for a start from an architecture file or `weights: ''`, `unknown` where neither file is beside
the `results.csv`. The copies in `runs/` keep only the curves; `score.py` passes the column as
`RunInfo.pretrained`, as `mlcheck analyze` on the raw folder would read it. Labels do not use it.
"""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import MIN_EPOCHS, label  # noqa: E402
from build_raw import _git, _id, apply_override, replace_split  # noqa: E402
from build_raw5 import _same_start  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-6"
MAX_PER_REPO = 4
FORMAT = "ultralytics-csv"
_TERM = re.compile(r"^(train|val)/[a-z0-9]+_(loss|om|oo)$")
_MAP = ("metrics/mAP50-95(B)", "metrics/mAP_0.5:0.95")

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build_raw5.OVERRIDES`.
# Made after mlcheck's output on the split had been read (docs/benchmarks.md, branch fa18), for a
# reason in the file itself (its metrics columns), not in mlcheck's finding.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "127158017--yolo_minipro-runs-detect-train-results-csv": (
        "ambiguous",
        None,
        "precision, recall, mAP50 and mAP50-95 exactly 0 at all 100 epochs (a detector that never detects: "
        "rule 3's constant prediction), validation loss 13.218 -> 13.197 (0.16%); rule 3 fails only on the "
        "training loss, which swings 12.18-14.32 from epoch to epoch and ends 5.3% below epoch 2 (13.42 -> 12.71; "
        "10-epoch means 13.28 -> 12.63), and rule 5's 'the training loss fell' holds on that noise (coco8: 4 "
        "training images; a custom architecture from scratch, lr at most 3e-5): not healthy, not a plateau by "
        "the letter of rule 3: ambiguous (not scored)",
    ),
}

# (repo, commit, path): every results.csv of each snapshot, in `git ls-tree` order. Found by
# file name (`find_files` on `runs/detect/train/results.csv` and `runs/train/exp/results.csv`),
# repositories taken in the listing's order, not by their curves.
SOURCES: list[tuple[str, str, str]] = [
    ("0arKes/treinamento-da-rede-YOLO", "ef102fdc555fb4e18d8fafcb6d5d46343923abc7", "runs/train/exp/results.csv"),
    ("0arKes/treinamento-da-rede-YOLO", "ef102fdc555fb4e18d8fafcb6d5d46343923abc7", "runs/train/train3/results.csv"),
    (
        "0arKes/treinamento-da-rede-YOLO",
        "ef102fdc555fb4e18d8fafcb6d5d46343923abc7",
        "runs/train/treino_custom_100epocas/results.csv",
    ),
    ("1WangXT/Pipeline_Defect_Recognition", "ec90ca38f95fd4135deffd53cbbd94365eef1698", "runs/train/exp/results.csv"),
    ("1WangXT/Pipeline_Defect_Recognition", "ec90ca38f95fd4135deffd53cbbd94365eef1698", "runs/train/exp2/results.csv"),
    ("1WangXT/Pipeline_Defect_Recognition", "ec90ca38f95fd4135deffd53cbbd94365eef1698", "runs/train/exp3/results.csv"),
    ("1WangXT/Pipeline_Defect_Recognition", "ec90ca38f95fd4135deffd53cbbd94365eef1698", "runs/train/exp4/results.csv"),
    (
        "483172/yolov5-custom_lego_dataset-2022-06-15",
        "0abdd322d0f098111fcc661fefb04bff3db3ba4e",
        "runs/train/exp/results.csv",
    ),
    (
        "AK1012-tech/Advancing-Multi-Disease-Detection-in-Tomato-Plants",
        "8bde488217a374486594d3f8d690af4e64c9ac72",
        "runs/train/exp/results.csv",
    ),
    ("APINXD/CellDetection", "326954e323369e30436ee0fc58adb825a8a61178", "runs/train/exp/results.csv"),
    ("APINXD/CellDetection", "326954e323369e30436ee0fc58adb825a8a61178", "runs/train/exp2/results.csv"),
    (
        "AdityaS034/YoloV5-Deteksi-Kebiasaan-Pengemudi",
        "8d2afab4dcf929f2cd3a00d00adac2a277d9fd27",
        "runs/train/exp/results.csv",
    ),
    (
        "AhmetKoraySonal/Detection_of_State_of_the_Lid",
        "1f272804da573fa7775e5a7607b9fe3f9aa9ae70",
        "runs/train/exp/results.csv",
    ),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp/results.csv"),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp2/results.csv"),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp3/results.csv"),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp4/results.csv"),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp5/results.csv"),
    ("AlyssaJZ/sweetberry", "90f6133eb6f01011fd8db49de86e96e392d1a1a2", "runs/train/exp6/results.csv"),
    ("AnishJamedar/yolo-detection", "7d233b4ef40eaacc7b920159d10c825a60b97314", "runs/train/exp/results.csv"),
    ("AshotKostanyan/firedetection", "ad0b8a716147d8ad85530cbb2ba991424e9c7199", "runs/train/exp/results.csv"),
    ("AshotKostanyan/firedetection", "ad0b8a716147d8ad85530cbb2ba991424e9c7199", "runs/train/exp2/results.csv"),
    (
        "AstilePeter/Raspberry-Quince-Detector",
        "033f07b930b759085277abc082a43e7aa19b5889",
        "runs/train/detect/exp/results.csv",
    ),
    ("AstilePeter/Raspberry-Quince-Detector", "033f07b930b759085277abc082a43e7aa19b5889", "runs/train/exp/results.csv"),
    ("0012223/ADOS_2024", "433ce2a8dbcd3a91218059a20c3678d8fb8a804d", "runs/detect/train/results.csv"),
    ("07Yatin/anemia2", "7eb5dce67fa4b25944c75d990ba54bf777197d6f", "runs/detect/train/results.csv"),
    ("0zheermao0/stick_tracker", "65d85e2f8ef30a21097ba6885c196ced8950fc51", "runs/detect/train/results.csv"),
    ("1-off/Yolodog", "fa4a643419eac1068067a84c41bf7e4d86501bf0", "runs/detect/train/results.csv"),
    ("127158017-hue/YOLO_MINIPROJ", "7c8e0e39f3ff7a6b1b2b3c35d10ecde9cd50db15", "runs/detect/train/results.csv"),
    ("1543siddhant/ANPR-System-Dev", "5a68782380a51e8a7101751711101023742b74ed", "Weights/results.csv"),
    ("1543siddhant/ANPR-System-Dev", "5a68782380a51e8a7101751711101023742b74ed", "runs/detect/train/results.csv"),
    (
        "1543siddhant/ANPR-System-Dev",
        "5a68782380a51e8a7101751711101023742b74ed",
        "ultralytics/runs/detect/train_model/results.csv",
    ),
    ("20-ank-02/Automated-warehouse-bot", "e54e40defba210c2b2c96495a0dad749499d88b8", "runs/detect/train/results.csv"),
    ("24Musab25/model_training_ida", "bb5b9e0391c99192d6ed1c118c47597230b44656", "runs/detect/train/results.csv"),
    ("24Musab25/model_training_ida", "bb5b9e0391c99192d6ed1c118c47597230b44656", "runs/detect/train5/results.csv"),
    ("24Musab25/model_training_ida", "bb5b9e0391c99192d6ed1c118c47597230b44656", "runs/detect/train6/results.csv"),
    ("27hrs/YOLOv8", "559bb2d3b2fe1ebd59439883ec7537c9db83b0e2", "runs/detect/train/results.csv"),
    ("27hrs/YOLOv8", "559bb2d3b2fe1ebd59439883ec7537c9db83b0e2", "runs/detect/train2/results.csv"),
    ("27hrs/YOLOv8", "559bb2d3b2fe1ebd59439883ec7537c9db83b0e2", "runs/detect/train3/results.csv"),
    ("27hrs/YOLOv8", "559bb2d3b2fe1ebd59439883ec7537c9db83b0e2", "runs/detect/train4/results.csv"),
    ("27hrs/YOLOv8", "559bb2d3b2fe1ebd59439883ec7537c9db83b0e2", "runs/detect/train5/results.csv"),
    ("4Kings-Rakamin/Resume_OCR_YOLOv11", "dac7d4154c9e2f98d6296f35b54e7a9e3b29fae9", "runs/detect/train/results.csv"),
    ("874416635/vehicle-counting", "45b9a8d6d50b1c224e47a52520883a931384e84a", "runs/detect/train/results.csv"),
]


def read_results(text: str) -> list[tuple[float, float, float | None]]:
    """(training loss, validation loss, mAP50-95) per epoch of a results.csv."""
    rows = list(csv.reader(text.splitlines()))
    header = [c.strip() for c in rows[0]]
    train = [k for k, c in enumerate(header) if _TERM.match(c) and c.startswith("train/")]
    val = [k for k, c in enumerate(header) if _TERM.match(c) and c.startswith("val/")]
    found = [header.index(c) for c in _MAP if c in header]
    out = []
    for row in rows[1:]:
        cells = [c.strip() for c in row]
        try:
            t = sum(float(cells[k]) for k in train)
            v = sum(float(cells[k]) for k in val)
            m = float(cells[found[0]]) if found else None
        except (ValueError, IndexError):
            continue  # `<<<<<<< HEAD` and the like
        out.append((t, v, m))
    return out


def _write(
    out: Path, run_id: str, repo: str, path: str, commit: str, fit: list[tuple[float, float, float | None]]
) -> dict:
    with_map = all(m is not None for _, _, m in fit)
    with open(out / f"{run_id}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "loss", "val_loss"] + (["val_mAP"] if with_map else []))
        for e, (t, v, m) in enumerate(fit, 1):
            w.writerow([e, f"{t:.6g}", f"{v:.6g}"] + ([f"{m:.6g}"] if with_map else []))
    t = [float(f"{r[0]:.6g}") for r in fit]
    v = [float(f"{r[1]:.6g}") for r in fit]
    name, onset = label(t, v, [r[2] for r in fit] if with_map else None)
    nan_val = any(not math.isfinite(x) for x in v)
    return {
        "id": run_id,
        "repo": repo,
        "path": path,
        "commit": commit,
        "cell": "",
        "format": FORMAT,
        "epochs": len(fit),
        "label": name,
        "onset": onset if onset is not None else "",
        "split": SPLIT,
        "notes": "validation loss not finite (inf or NaN) from its first epoch"
        if nan_val and not math.isfinite(v[0])
        else "",
    }


def settings_pretrained(git_dir: str, commit: str, path: str) -> str:
    """`true`, `false` or `unknown`: whether the run whose `results.csv` is `path` started from
    trained weights, as the `args.yaml` or `opt.yaml` beside it at `commit` says (module docstring)."""
    import tempfile

    from mlcheck.analyze.csvlogs import ULTRALYTICS_SETTINGS, ultralytics_pretrained

    folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.csv"
        results.write_text("")
        found = False
        for name in ULTRALYTICS_SETTINGS:
            try:
                (Path(tmp) / name).write_bytes(_git(git_dir, "show", f"{commit}:{folder}{name}"))
                found = True
            except subprocess.CalledProcessError:
                continue
        if not found:
            return "unknown"
        return "true" if ultralytics_pretrained(results) else "false"


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: list[tuple[str, ...]] = []
    for repo, commit, path in SOURCES:
        if per_repo.get(repo, 0) >= MAX_PER_REPO:
            continue
        try:
            text = _git(str(root / repo.replace("/", "+") / "repo"), "show", f"{commit}:{path}").decode("utf-8-sig")
        except subprocess.CalledProcessError:
            continue
        fit = read_results(text)
        key = tuple(f"{t:.4g} {v:.4g}" for t, v, _ in fit)
        if len(fit) < MIN_EPOCHS or any(_same_start(key, other) for other in seen):
            continue
        seen.append(key)
        row = _write(out, _id(repo, path, 1, 1), repo, path, commit, fit)
        row["pretrained"] = settings_pretrained(str(root / repo.replace("/", "+") / "repo"), commit, path)
        apply_override(row, OVERRIDES)
        rows.append(row)
        per_repo[repo] = per_repo.get(repo, 0) + 1
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
