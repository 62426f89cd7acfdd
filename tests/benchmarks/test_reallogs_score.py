"""benchmarks/reallogs/score.py's `--raw` mode and its early-hits line (issue 12, branch score17).

A tiny corpus in tmp_path, laid out as the real one: a manifest, the Keras-form copies in `runs/`,
and a mirror of git snapshots (`<owner>+<name>/repo`) holding the raw files, read by the real
`mlcheck.analyze` in-process, as the scorer does on the real corpus (no network).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# loaded under its own name: `score` is also a function of benchmarks/faults (test_faults_smoke.py)
_SPEC = importlib.util.spec_from_file_location("reallogs_score", ROOT / "benchmarks" / "reallogs" / "score.py")
score = importlib.util.module_from_spec(_SPEC)
sys.modules["reallogs_score"] = score
_SPEC.loader.exec_module(score)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the snapshots are git repositories")


@pytest.fixture(autouse=True)
def _logging_back():
    """score.main() silences logging below ERROR for its run (findings also arrive as log
    records); the tests after these must get it back."""
    yield
    logging.disable(logging.NOTSET)


_YOLO8 = (
    "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
    "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2"
)
_FIELDS = ["id", "repo", "path", "commit", "cell", "format", "epochs", "label", "onset", "split", "notes"]


def _yolo_fine_tune(n: int = 30) -> tuple[np.ndarray, ...]:
    """A YOLO fine-tune from COCO weights: the loss starts near its floor, falls 11% in its first
    10 epochs and then holds, its mAP too: `loss-plateau` on the Keras-form copy (read as a run from scratch),
    silent on the results.csv whose args.yaml names `yolov8n.pt`. (Until fa35 a 5% fall over 30
    epochs, told by `lr-too-low`, which on a log of epoch points alone is now an INFO.)"""
    e = np.arange(n)
    rng = np.random.default_rng(0)
    train = 3.3 + 0.4 * np.exp(-e / 6) + rng.normal(0, 0.02, n)
    val = 3.0 + 0.3 * np.exp(-e / 20) + rng.normal(0, 0.02, n)
    lr = np.where(e < 3, (e + 1) / 3 * 0.01, 0.01 * (1 - e / n) + 1e-4)
    # the mAP at its level from the second epoch on (a detector fine-tuned to a task near COCO's):
    # a validation metric still climbing would make `loss-plateau` stand down on the copy too
    return train, val, np.where(e == 0, 0.30, 0.45), lr


def _yolo_text(train, val, m_ap, lr) -> str:
    columns = _YOLO8.split(",")
    rows = []
    for e in range(len(train)):
        cells = {"epoch": str(e + 1), "time": str(10.0 * (e + 1)), "metrics/mAP50-95(B)": f"{m_ap[e]:.5f}"}
        for term, share in (("box", 0.4), ("cls", 0.3), ("dfl", 0.3)):
            cells[f"train/{term}_loss"] = f"{train[e] * share:.6g}"
            cells[f"val/{term}_loss"] = f"{val[e] * share:.6g}"
        cells.update({f"lr/pg{g}": f"{lr[e]:.6g}" for g in range(3)})
        rows.append(",".join(cells.get(c, "0.5") for c in columns))
    return "\n".join([",".join(columns), *rows]) + "\n"


def _overfitting(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Validation loss lowest at epoch 12 (1-based), then rising 58%; a one-epoch uptick at epoch 4
    while the training loss falls (UMLAUT fires there: 8 epochs before the onset, an early hit)."""
    e = np.arange(n)
    train = np.exp(-e / 8) + 0.1
    val = 0.5 + 0.5 * np.exp(-e / 4) + np.where(e > 11, 0.02 * (e - 11), 0)
    val[3] = val[2] + 0.01
    return train, val


def _commit(repo: Path, files: dict[str, str]) -> str:
    repo.mkdir(parents=True)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "logs"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _copy(runs: Path, run_id: str, train, val, extra: dict[str, list[float]] | None = None) -> None:
    extra = extra or {}
    with open(runs / f"{run_id}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "loss", "val_loss", *extra])
        for k, (t, v) in enumerate(zip(train, val)):
            w.writerow([k + 1, f"{t:.6g}", f"{v:.6g}", *(f"{c[k]:.6g}" for c in extra.values())])


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    """(manifest, mirror): a healthy YOLO fine-tune and an overfitting Keras CSVLogger file (epochs
    from 0, as Keras writes them) in snapshots, and a healthy run whose repository is not there."""
    mirror, corpus = tmp_path / "mirror", tmp_path / "corpus"
    (corpus / "runs").mkdir(parents=True)
    yolo = _yolo_fine_tune()
    # the settings Ultralytics writes beside results.csv: trained weights, so a small fall is a fine-tune's
    yolo_commit = _commit(
        mirror / "acme+yolo" / "repo",
        {"runs/detect/train/results.csv": _yolo_text(*yolo), "runs/detect/train/args.yaml": "model: yolov8n.pt\n"},
    )
    train, val = _overfitting()
    keras_text = "epoch,loss,val_loss\n" + "".join(f"{k},{t:.6g},{v:.6g}\n" for k, (t, v) in enumerate(zip(train, val)))
    keras_commit = _commit(mirror / "acme+keras" / "repo", {"logs/training_log.csv": keras_text})
    # the copies in runs/ as build_raw*.py write them
    yolo_t = [float(f"{x * 0.4:.6g}") + float(f"{x * 0.3:.6g}") * 2 for x in yolo[0]]
    yolo_v = [float(f"{x * 0.4:.6g}") + float(f"{x * 0.3:.6g}") * 2 for x in yolo[1]]
    _copy(corpus / "runs", "acme-yolo-ft", yolo_t, yolo_v, {"val_mAP": list(yolo[2])})
    _copy(corpus / "runs", "acme-keras-ovf", train, val)
    e = np.arange(20)
    _copy(corpus / "runs", "elsewhere-healthy", 1 + np.exp(-e / 5), 1.1 + np.exp(-e / 5))
    rows = [
        ["acme-yolo-ft", "acme/yolo", "runs/detect/train/results.csv", yolo_commit, "", "ultralytics-csv", 30],
        ["acme-keras-ovf", "acme/keras", "logs/training_log.csv", keras_commit, "", "keras-csv", 30],
        ["elsewhere-healthy", "nobody/gone", "training_log.csv", "0" * 40, "", "keras-csv", 20],
    ]
    labels = {
        "acme-yolo-ft": ("healthy", ""),
        "acme-keras-ovf": ("overfitting", 12),
        "elsewhere-healthy": ("healthy", ""),
    }
    with open(corpus / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_FIELDS)
        for row in rows:
            w.writerow([*row, *labels[row[0]], "held-out-9", ""])
    return corpus / "manifest.csv", mirror


def _table(out: str, name: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(f"| {name}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_score17_raw_mode_scores_mlcheck_on_the_raw_files_and_says_which(tmp_path, capsys):
    manifest, mirror = _corpus(tmp_path)
    base = ["--manifest", str(manifest), "--only", "held-out-9", "--runs"]

    assert score.main(base) == 0
    copy = capsys.readouterr().out
    assert score.main([*base, "--raw", str(mirror)]) == 0
    raw = capsys.readouterr().out

    # the copy loses what results.csv's args.yaml says (trained weights): a false alarm there only
    assert _table(copy, "healthy")[1] == "1/2"
    assert _table(raw, "healthy")[1] == "0/2"
    assert "loss-plateau" in next(x for x in copy.splitlines() if "acme-yolo-ft" in x)
    yolo_line = next(x for x in raw.splitlines() if "acme-yolo-ft" in x)
    assert yolo_line.split()[2] == "-" and "[ultralytics-csv]" in yolo_line
    # Keras' 0-based epochs mapped to the manifest's 1-based ones: the same lag as on the copy
    assert _table(copy, "overfitting")[1] == _table(raw, "overfitting")[1]
    assert _table(raw, "overfitting")[1].startswith("1/1, lag +")
    assert "[keras-csv]" in next(x for x in raw.splitlines() if "acme-keras-ovf" in x)
    # the run without a snapshot is scored from its copy, and counted
    assert "[copy]" in next(x for x in raw.splitlines() if "elsewhere-healthy" in x)
    assert "mlcheck on raw files: 2/3 runs; from the copies in runs/: 1 (1 no snapshot)" in raw
    # the baseline rules are scored on the copies in both modes
    assert _table(copy, "overfitting")[2:] == _table(raw, "overfitting")[2:]
    assert _table(copy, "healthy")[2:] == _table(raw, "healthy")[2:]


def test_score17_early_hits_are_counted_beside_the_hits(tmp_path, capsys):
    manifest, _ = _corpus(tmp_path)
    assert score.main(["--manifest", str(manifest), "--only", "held-out-9"]) == 0
    out = capsys.readouterr().out
    early = next(x for x in out.splitlines() if x.startswith("Early hits"))
    # UMLAUT fires at the uptick at epoch 4, 8 epochs before the minimum at 12 (tolerance 3 on 30
    # epochs): a hit in the table, and an early one; mlcheck fires after the minimum
    assert "; UMLAUT 1 (overfitting 1);" in early
    assert early.split(": ", 1)[1].startswith("mlcheck 0;")
    assert _table(out, "overfitting")[3].startswith("1/1, lag -8")
    assert score.early_tolerance(30) == 3 and score.early_tolerance(150) == 15 and score.early_tolerance(8) == 3


# corpus18 added held-out-7, corpus20 held-out-8, corpus23 held-out-9, corpus26 held-out-10, corpus29 held-out-11,
# corpus32 held-out-12, corpus35 held-out-13, corpus38 held-out-14
@pytest.mark.parametrize("last", [7, 8, 9, 10, 11, 12, 13, 14])
def test_held_out_k_scores_the_kth_split_after_every_earlier_one(tmp_path, capsys, last):
    corpus = tmp_path / "corpus"
    (corpus / "runs").mkdir(parents=True)
    splits = ["dev", "held-out", *(f"held-out-{k}" for k in range(2, last + 1))]
    e = np.arange(12)
    with open(corpus / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_FIELDS)
        for k, split in enumerate(splits):
            _copy(corpus / "runs", f"run-{k}", 1 + np.exp(-e / 4), 1.1 + np.exp(-e / 4))
            w.writerow(
                [f"run-{k}", "nobody/gone", "training_log.csv", "0" * 40, "", "keras-csv", 12, "healthy", "", split, ""]
            )
    manifest = ["--manifest", str(corpus / "manifest.csv")]

    assert score.main([*manifest, f"--held-out-{last}"]) == 0
    titles = [x for x in capsys.readouterr().out.splitlines() if x.startswith("**")]
    assert titles == [f"**{split} half (1 runs)**" for split in splits]
    assert score.main([*manifest, f"--held-out-{last - 1}"]) == 0
    assert f"**held-out-{last} half" not in capsys.readouterr().out


def test_corpus18_a_raw_file_analyze_refuses_is_scored_from_its_copy_and_counted(tmp_path, capsys):
    # held-out-7's CamelCase logs stopped the whole `--raw` run with analyze's BadInput before
    # mlcheck read them; a file analyze refuses (here: no column it can take for a loss) is now
    # scored from its copy, as a run without a snapshot is
    manifest, mirror = _corpus(tmp_path)
    commit = _commit(mirror / "acme+odd" / "repo", {"log.csv": "when,objective,holdout\n0,1.0,1.1\n1,0.9,1.0\n"})
    train, val = _overfitting()
    _copy(manifest.parent / "runs", "acme-odd", train, val)
    with open(manifest, "a", newline="") as fh:
        csv.writer(fh).writerow(
            ["acme-odd", "acme/odd", "log.csv", commit, "", "keras-csv", 30, "overfitting", 12, "held-out-9", ""]
        )

    assert score.main(["--manifest", str(manifest), "--only", "held-out-9", "--runs", "--raw", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert "[copy]" in next(x for x in out.splitlines() if "acme-odd" in x)
    assert (
        "mlcheck on raw files: 2/4 runs; from the copies in runs/: 2 (1 analyze cannot read it; 1 no snapshot)" in out
    )


def test_corpus32_a_history_saved_as_json_is_scored_on_its_raw_file(tmp_path, capsys):
    # held-out-12 reads Keras `History` dicts saved with `json.dump(history.history)` (`training_history.json`,
    # manifest format `keras-history-json`); `mlcheck analyze` reads that file, so `--raw` scores it there
    # rather than from its copy
    manifest, mirror = _corpus(tmp_path)
    train, val = _overfitting()
    text = json.dumps({"loss": [float(f"{x:.6g}") for x in train], "val_loss": [float(f"{x:.6g}") for x in val]})
    commit = _commit(mirror / "acme+hist" / "repo", {"training_history.json": text})
    _copy(manifest.parent / "runs", "acme-hist", train, val)
    with open(manifest, "a", newline="") as fh:
        csv.writer(fh).writerow(
            ["acme-hist", "acme/hist", "training_history.json", commit, "", "keras-history-json", 30]
            + ["overfitting", 12, "held-out-9", ""]
        )

    assert score.main(["--manifest", str(manifest), "--only", "held-out-9", "--runs", "--raw", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert "[copy]" not in next(x for x in out.splitlines() if "acme-hist" in x)
    assert "mlcheck on raw files: 3/4 runs; from the copies in runs/: 1 (1 no snapshot)" in out


def test_reader36_nested_epoch_records_are_scored_on_their_raw_file(tmp_path, capsys):
    # held-out-13's `epoch-records-json` runs (per-epoch dicts nested in a larger object) were scored from
    # their copies: `mlcheck analyze` had no reader for them; it reads them now, so `--raw` scores the file
    manifest, mirror = _corpus(tmp_path)
    train, val = _overfitting()
    records = [
        {"epoch": k + 1, "train_loss": float(f"{t:.6g}"), "val_loss": float(f"{v:.6g}")}
        for k, (t, v) in enumerate(zip(train, val))
    ]
    text = json.dumps({"config": {"lr": 0.001}, "history": records}, indent=2)
    commit = _commit(mirror / "acme+recs" / "repo", {"train_history.json": text})
    _copy(manifest.parent / "runs", "acme-recs", train, val)
    with open(manifest, "a", newline="") as fh:
        csv.writer(fh).writerow(
            ["acme-recs", "acme/recs", "train_history.json", commit, "", "epoch-records-json", 30]
            + ["overfitting", 12, "held-out-9", ""]
        )

    assert score.main(["--manifest", str(manifest), "--only", "held-out-9", "--runs", "--raw", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert "[json-epoch-records]" in next(x for x in out.splitlines() if "acme-recs" in x)
    assert "mlcheck on raw files: 3/4 runs; from the copies in runs/: 1 (1 no snapshot)" in out


def test_corpus23_a_folder_whose_checkpoint_the_snapshot_lacks_is_read_from_its_event_files(tmp_path, capsys):
    # held-out-9's BFlameSwift and Aquilaxc TensorBoard folders (and held-out-8's Abdul-AA one) hold a
    # `.ckpt` that the snapshot store left out (it keeps large files listed but absent); `--raw` copied
    # every file of the folder, failed on that one and scored the run from its copy ("not in the
    # snapshot"); a listed file the snapshot does not hold is now skipped unless it is a log
    from torch.utils.tensorboard import SummaryWriter

    manifest, mirror = _corpus(tmp_path)
    repo = mirror / "acme+tb" / "repo"
    train, val = _overfitting()
    writer = SummaryWriter(str(repo / "lightning_logs" / "version_0"))
    for e, (t, v) in enumerate(zip(train, val)):
        writer.add_scalar("train_loss", float(t), e)
        writer.add_scalar("val_loss", float(v), e)
    writer.close()
    ckpt = repo / "lightning_logs" / "version_0" / "checkpoints" / "epoch=29.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights" * 100)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "logs"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(
        [*git, "rev-parse", f"HEAD:lightning_logs/version_0/checkpoints/{ckpt.name}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # listed in the tree, not held
    _copy(manifest.parent / "runs", "acme-tb", train, val)
    with open(manifest, "a", newline="") as fh:
        csv.writer(fh).writerow(
            ["acme-tb", "acme/tb", "lightning_logs/version_0", commit, "", "tensorboard", 30, "overfitting", 12]
            + ["held-out-9", ""]
        )

    assert score.main(["--manifest", str(manifest), "--only", "held-out-9", "--runs", "--raw", str(mirror)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "acme-tb" in x)
    assert "[copy]" not in line and "[tensorboard]" in line
    assert "mlcheck on raw files: 3/4 runs; from the copies in runs/: 1 (1 no snapshot)" in out


@pytest.mark.parametrize(("pretrained", "flagged"), [("true", "0/2"), ("unknown", "1/2"), ("", "1/2")])
def test_fa26_the_manifest_pretrained_column_reaches_the_copy_as_the_raw_folder_would(
    tmp_path, capsys, pretrained, flagged
):
    """A YOLO copy keeps only the curves; the manifest's `pretrained` column (what the run's own
    args.yaml/opt.yaml said) is passed as RunInfo.pretrained in default mode: the fine-tune's copy
    is then scored as its raw folder is (silent); unknown or absent leaves the copy as it was."""
    manifest, _ = _corpus(tmp_path)
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["pretrained"] = pretrained if row["id"] == "acme-yolo-ft" else ""
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*_FIELDS, "pretrained"])
        w.writeheader()
        w.writerows(rows)
    assert score.main(["--manifest", str(manifest), "--only", "held-out-9", "--runs"]) == 0
    out = capsys.readouterr().out
    assert _table(out, "healthy")[1] == flagged
    # the other runs, and the analyze module's reader, as before
    assert _table(out, "overfitting")[1].startswith("1/1, lag +")
    from mlcheck import analyze

    assert analyze._starts_trained.__module__ == "mlcheck.analyze"


def test_fa26_build_raw6_reads_pretrained_from_the_settings_file_at_the_commit(tmp_path):
    """true / false / unknown from the args.yaml or opt.yaml beside each results.csv at its commit."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "reallogs"))
    import build_raw6

    repo = tmp_path / "acme+yolo" / "repo"
    commit = _commit(
        repo,
        {
            "runs/detect/train/results.csv": "x\n",
            "runs/detect/train/args.yaml": "model: runs/detect/train0/weights/best.pt\npretrained: true\n",
            "runs/detect/scratch/results.csv": "x\n",
            "runs/detect/scratch/args.yaml": "model: yolov8n.yaml\npretrained: true\n",
            "runs/train/exp/results.csv": "x\n",
            "runs/train/exp/opt.yaml": "weights: ''\nepochs: 30\n",
            "runs/train/exp2/results.csv": "x\n",
            "runs/train/exp2/opt.yaml": "weights: best.pt\n",
            "runs/bare/results.csv": "x\n",
        },
    )
    got = {
        path: build_raw6.settings_pretrained(str(repo), commit, f"{path}/results.csv")
        for path in ("runs/detect/train", "runs/detect/scratch", "runs/train/exp", "runs/train/exp2", "runs/bare")
    }
    assert got == {
        "runs/detect/train": "true",
        "runs/detect/scratch": "false",
        "runs/train/exp": "false",
        "runs/train/exp2": "true",
        "runs/bare": "unknown",
    }
