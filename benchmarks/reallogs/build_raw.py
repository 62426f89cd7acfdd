"""Adds the runs of split `held-out-4` to the corpus: real logs committed in their own formats
(Keras `CSVLogger` files, Lightning `CSVLogger` `metrics.csv`, TensorBoard event files, Hugging
Face `trainer_state.json`), turned
into the corpus's per-epoch form and labelled by README.md's rules (`build.label`).

    python benchmarks/reallogs/build_raw.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py` (which writes the notebook runs and keeps the `held-out-4` rows as they
are): it rewrites the `held-out-4` rows of `manifest.csv` and their `runs/<id>.csv`. Each source
below names the repository, the commit, the file (or event folder), how to read it and which
columns are the curves. The reading here is independent of mlcheck's (the `csv` module and
tensorboard's own event loader), so a reader bug of mlcheck's cannot shape the labels.

Conventions: one run per fit (a Keras `CSVLogger(append=True)` file whose epoch column falls
back to its first epoch holds several); epochs numbered 1.. in file order; values as written
(CSV text as is, event-file floats printed with `repr`); runs shorter than `build.MIN_EPOCHS`
epochs left out; only epochs with both a training and a validation loss; a curve that repeats
another's losses to 4 significant digits (a sweep re-run with the same seed) kept once. A Lightning run's
training loss per epoch is its epoch-level column (`*_epoch`, or the one logged at the epoch's
last step with the validation loss), never a mean of step values; a Trainer state's "epoch" is
an evaluation, its training loss the one logged last at or before it. Of a repository with many
near-identical sweep runs, the first `MAX_PER_REPO` versions (by version number) with enough
epochs are taken, so one sweep does not make the split.
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

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-4"
MAX_PER_REPO = 6

# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
# Keras CSVLogger files: (repo, commit, path); columns loss, val_loss, accuracy, val_accuracy
KERAS_FILES = [
    ("AbijithT/Lung-Cancer-Detection", "d63f0a674b0fbe6bf931f90c7472f18c7e7fb8d8", "training_log.csv"),
    ("Aditya24jar/Emotion-Detection-Resnet50", "21caba3f7fffb6e86507f6a86938090639f2a2a6", "training.log"),
    ("AhmedZ41/cnn-sleep-apnea-xai", "a6d5ea4f10d3e1b44f293c4709e2e56036d630b8", "training_log.csv"),
    (
        "Aitzaz-Saleem/Detection-of-Tomato-Leaf-Diseases-Using-CNN",
        "2e13bf6399f4a5d39b43853db0fe6640c86887bd",
        "training_log.csv",
    ),
    (
        "AkshatSharma5/Brain_Tumor_Image_Classification_using_CNN",
        "871a4f8e20345ce92020faaa5e9119db783baea0",
        "training_log.csv",
    ),
    ("Dantusaikamal/Deepfake-detection", "d5efbc9df45b4456e3d68f0e2ebd1b06aa96f670", "training_log.csv"),
    (
        "Deepender25/Handwritten-Digit-Recognition---CNN-with-99.65-Accuracy",
        "6a0b14fa966d109d44a7280600f7f38876b422e1",
        "training_log.csv",
    ),
    ("Farru049/Handwritten-Digit-Recognition", "5f1a07cb3229da17045980f93cde8bb09aaa68af", "training_log.csv"),
    ("GalexyBrain/Plant-disease-detection", "7ea415b7937b041f5a653f05d4cccc1b47469f0a", "training_log.csv"),
]
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    *((repo, commit, path, "keras-csv", KERAS) for repo, commit, path in KERAS_FILES),
    (
        "NebusokuDev/mnist_lightning",
        "9bf4986d2cd3dc2a53a6f3f2fcc3610cb201bb54",
        "lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss", "val_loss", "train_acc", "val_acc"),
    ),
    (
        "NebusokuDev/mnist_lightning",
        "9bf4986d2cd3dc2a53a6f3f2fcc3610cb201bb54",
        "lightning_logs/version_1/metrics.csv",
        "lightning-csv",
        ("train_loss", "val_loss", "train_acc", "val_acc"),
    ),
    *(
        (
            "RaduTuodr/NN-Classification---Forest-Cover-Type",
            "e396a4990d6a6f5431917f2eea1a44b870f4aabb",
            f"lightning_logs/version_{v}/metrics.csv",
            "lightning-csv",
            ("train_loss_0", "valid_loss", "train_accuracy", "valid_accuracy"),
        )
        for v in range(0, 42)
    ),
    (
        "HCDescamps/cv-image-classification",
        "ef1c18a39de7b4fcf0a844e9ca398232a3a5c77f",
        "lightning_logs/mnist_cnn/version_0",
        "tensorboard",
        ("train_loss", "val_loss", "", "val_accuracy"),
    ),
    (
        "HCDescamps/cv-image-classification",
        "ef1c18a39de7b4fcf0a844e9ca398232a3a5c77f",
        "lightning_logs/mnist_cnn/version_1",
        "tensorboard",
        ("train_loss", "val_loss", "", "val_accuracy"),
    ),
    (
        "VaheC/Pytorch_Study",
        "31292914ee2cc1cc33be49d4afcd42b0923e9593",
        "runs/simple_lr",
        "tensorboard",
        ("loss_training/loss", "loss_validation/loss"),
    ),
    (
        "huangyuan3h/StockData",
        "4bf14393817d3869ca7b1eed2964930559bc9c10",
        "logs/fit/20220213-124139",
        "tensorboard",
        ("train/epoch_loss", "validation/epoch_loss"),
    ),
]


# Hugging Face Trainer states: (repo, commit, path); an epoch is an evaluation
TRAINER_STATES = [
    ("Merlinmy/Whisper_small_hi", "dc54fe4c62c19ab761b4ff9ad712f6cf202173f7", "trainer_state.json"),
    ("P4P4N1CK/whisper-large-v2-japanese-5k-steps", "484b1d2bbb58a6a2c8c4cf8ede4dc45f988bc79a", "trainer_state.json"),
    ("CoralReefFish/whisper-tiny-nbaiLab", "975bb203671a1e0ba714a7489a9ab7a169c049b0", "trainer_state.json"),
    ("Tanisha-anshu/OpenAi-Whisper-small-Braj", "7aaefa2bc5dedbd539bd1abc4775281730499966", "trainer_state.json"),
    ("anthonyrathe/fixed-whisperv2-flemish", "9a5b89dff5bd5b396caeb678b02592358fce03a5", "trainer_state.json"),
    ("arshiv-web/Financial-News-Sentiment-Analysis", "205e970418c541133e88fc32d30881cef9fb9dbe", "trainer_state.json"),
    ("Tashu014/lora-imdb-distilbert", "b43db57b9033dee045e6f1e984f984c3adb6607b", "trainer_state.json"),
]
SOURCES += [(repo, commit, path, "trainer-state", ("loss", "eval_loss")) for repo, commit, path in TRAINER_STATES]


def _trainer_state_rows(text: str) -> list[list[tuple[str, ...]]]:
    """One fit: per evaluation, the training loss logged last at or before its step (the mean
    over the last `logging_steps`) and the evaluation loss; the end-of-run summary left out."""
    import json

    history = json.loads(text)["log_history"]
    rows, train = [], None
    for entry in sorted(history, key=lambda e: (e.get("step", 0), "eval_loss" in e)):
        if "train_runtime" in entry:
            continue
        if "loss" in entry:
            train = entry["loss"]
        if "eval_loss" in entry and train is not None:
            rows.append((repr(train), repr(entry["eval_loss"])))
    return [rows]


def _git(gitdir: str, *args: str) -> bytes:
    return subprocess.run(["git", "-C", gitdir, *args], capture_output=True, check=True).stdout


def _keras_fits(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """Rows (loss, val_loss[, acc, val_acc]) of each fit: a new fit where the epoch column falls
    back to its first value (`CSVLogger(append=True)` over several fits)."""
    rows = list(csv.DictReader(text.splitlines()))
    fits: list[list[tuple[str, ...]]] = []
    first = rows[0]["epoch"] if rows else None
    for k, row in enumerate(rows):
        if k == 0 or row["epoch"] == first:
            fits.append([])
        fits[-1].append(tuple(row.get(c, "") for c in columns))
    return fits


def _lightning_epochs(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit: per epoch, the last value written of each column, epochs holding both losses."""
    by_epoch: dict[int, dict[str, str]] = {}
    for row in csv.DictReader(text.splitlines()):
        if not row.get("epoch"):
            continue
        slot = by_epoch.setdefault(int(float(row["epoch"])), {})
        for c in columns:
            if row.get(c):
                slot[c] = row[c]
    rows = [tuple(by_epoch[e].get(c, "") for c in columns) for e in sorted(by_epoch)]
    return [[r for r in rows if r[0] and r[1]]]


def _event_fits(gitdir: str, commit: str, folder: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """Per-epoch rows from the event files under `folder`: tags named `<subfolder>/<tag>` below
    it; a tag's steps restarting at its first step in a later file start a new fit (a Keras
    `log_dir` reused by a second `fit`). x of each tag is the epoch or the step; rows pair the
    tags' points in order of x within a fit."""
    import tempfile

    from tensorboard.backend.event_processing import event_file_loader

    names = _git(gitdir, "ls-tree", "-r", "--name-only", commit, "--", folder).decode().splitlines()
    series: dict[str, list[list[tuple[int, float]]]] = {}  # tag -> fits -> (x, value)
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(names, key=lambda n: (n.rsplit("/", 1)[0], n.rsplit(".", 2)[-2:])):
            if "tfevents" not in name:
                continue
            sub = name[len(folder) + 1 :].rsplit("/", 1)[0] if "/" in name[len(folder) + 1 :] else ""
            path = Path(tmp) / "f"
            path.write_bytes(_git(gitdir, "show", f"{commit}:{name}"))
            points: dict[str, list[tuple[int, float]]] = {}
            for event in event_file_loader.LegacyEventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    if value.WhichOneof("value") == "simple_value":
                        number = value.simple_value
                    elif value.WhichOneof("value") == "tensor" and value.tensor.dtype in (1, 2):
                        from tensorboard.util import tensor_util

                        number = float(tensor_util.make_ndarray(value.tensor).ravel()[0])
                    else:
                        continue
                    points.setdefault(f"{sub}/{value.tag}" if sub else value.tag, []).append((event.step, number))
            for tag, got in points.items():
                fits = series.setdefault(tag, [])
                if not fits or (fits[-1] and got[0][0] <= fits[0][0][0] < fits[-1][-1][0]):
                    fits.append([])
                fits[-1].extend(got)
    wanted = [series.get(c, []) if c else [] for c in columns]
    n_fits = max(len(f) for f in wanted[:2])
    out = []
    for k in range(n_fits):
        curves = [sorted(dict(f[k]).items()) if k < len(f) else [] for f in wanted]
        train, val = curves[0], curves[1]
        # an epoch: the x where the training and the validation loss were both logged
        rows = []
        at = dict(train)
        for x, v in val:
            if x not in at:  # a validation outside the fit's epochs (`trainer.validate()` after it)
                continue
            extra = [repr(dict(c)[x]) if c and x in dict(c) else "" for c in curves[2:]]
            rows.append((repr(at[x]), repr(v), *extra))
        out.append(rows)
    return out


def _id(repo: str, path: str, fit: int, fits: int) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-").replace("lightning-logs-", "")[:40].strip("-")
    owner, name = repo.lower().split("/")
    return f"{owner[:10]}-{name[:12]}-{stem}" + (f"-fit{fit}" if fits > 1 else "")


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: set[tuple[str, ...]] = set()
    for repo, commit, path, fmt, columns in SOURCES:
        if per_repo.get(repo, 0) >= MAX_PER_REPO:
            continue
        gitdir = str(root / repo.replace("/", "+") / "repo")
        if fmt == "tensorboard":
            fits = _event_fits(gitdir, commit, path, columns)
        else:
            try:
                text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
            except subprocess.CalledProcessError:
                continue  # a sweep's version number that this commit does not hold
            if fmt == "trainer-state":
                fits = _trainer_state_rows(text)
            else:
                fits = _keras_fits(text, columns) if fmt == "keras-csv" else _lightning_epochs(text, columns)
        took = False
        for k, fit in enumerate(fits, 1):
            # a re-run with the same seed (a sweep's versions) repeats a curve to 4 digits: kept once
            key = tuple(f"{float(r[0]):.4g} {float(r[1]):.4g}" for r in fit)
            if len(fit) < MIN_EPOCHS or key in seen:
                continue
            seen.add(key)
            run_id = _id(repo, path, k, len(fits))
            rows.append(_write(out, run_id, repo, path, commit, fmt, k if len(fits) > 1 else "", fit))
            took = True
        per_repo[repo] = per_repo.get(repo, 0) + took
    replace_split(rows, SPLIT)
    return 0


def apply_override(row: dict, overrides: dict[str, tuple[str, int | None, str]]) -> None:
    """Sets `row`'s label and onset from `overrides` where it names the row's id (a rule's misreading,
    as `build.OVERRIDES`), and adds the reason to its notes."""
    if row["id"] not in overrides:
        return
    label, onset, reason = overrides[row["id"]]
    row["label"], row["onset"] = label, onset if onset is not None else ""
    row["notes"] = (row["notes"] + "; " if row["notes"] else "") + f"override: {reason}"


def _columns(rows: list[dict]) -> list[str]:
    """The manifest's columns: every row's keys in first-seen order (a column one build script
    fills, such as held-out-6's `pretrained`, is empty in the others' rows)."""
    return list(dict.fromkeys(k for r in rows for k in r))


def replace_split(rows: list[dict], split: str, refuse_clashes: bool = False) -> None:
    """Writes `rows` as the manifest's rows of `split` (the other splits' rows kept, in order)
    and prints the count per label; `refuse_clashes`: stop (SystemExit) where a run id is
    already another split's or is given twice."""
    with open(HERE / "manifest.csv", newline="") as fh:
        old = list(csv.DictReader(fh))
    kept = [r for r in old if r["split"] != split]
    # the split's rows go where its old rows began (at the end for a new split), so a rebuild
    # leaves the other splits' order, and the scorer's `--runs` lines, as they were
    at = next((k for k, r in enumerate(old) if r["split"] == split), len(old))
    at -= sum(1 for r in old[:at] if r["split"] == split)
    if refuse_clashes:
        ids = {r["id"] for r in kept}
        given = [r["id"] for r in rows]
        clash = [i for i in given if i in ids] + sorted({i for i in given if given.count(i) > 1})
        if clash:
            raise SystemExit(f"run ids already in the manifest: {clash}")
    with open(HERE / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_columns(kept + rows), lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept[:at] + rows + kept[at:])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    print(len(rows), "runs", counts)


def _write(out: Path, run_id: str, repo: str, path: str, commit: str, fmt: str, fit, fit_rows) -> dict:
    accuracy = len(fit_rows[0]) > 3 and all(r[2] and r[3] for r in fit_rows)
    with open(out / f"{run_id}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "loss", "val_loss"] + (["accuracy", "val_accuracy"] if accuracy else []))
        for e, r in enumerate(fit_rows, 1):
            w.writerow([e, r[0], r[1]] + ([r[2], r[3]] if accuracy else []))
    t = [float(r[0]) for r in fit_rows]
    v = [float(r[1]) for r in fit_rows]
    va = [float(r[3]) for r in fit_rows] if accuracy else None
    name, onset = label(t, v, va)
    nan_val = any(not math.isfinite(x) for x in v)
    return {
        "id": run_id,
        "repo": repo,
        "path": path,
        "commit": commit,
        "cell": fit,  # the fit's number in a file several fits wrote, else empty
        "format": fmt,
        "epochs": len(fit_rows),
        "label": name,
        "onset": onset if onset is not None else "",
        "split": SPLIT,
        "notes": "validation loss NaN from its first epoch" if nan_val else "",
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
