"""Adds the runs of split `held-out-5` to the corpus: real logs committed in their own formats by
repositories no earlier split read, turned into the corpus's per-epoch form and labelled by
README.md's rules (`build.label`) before mlcheck is run on them.

    python benchmarks/reallogs/build_raw5.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py` and `build_raw.py`: it rewrites the `held-out-5` rows of `manifest.csv`
and their `runs/<id>.csv`. The conventions are `build_raw.py`'s (one run per fit, epochs numbered
1.. in file order, values as written, runs shorter than `build.MIN_EPOCHS` epochs left out, a
curve repeating another's losses to 4 significant digits kept once (here also one that repeats
another's first epochs and stops earlier: the first listed is kept), at most `MAX_PER_REPO` runs
of one repository, taken in the order listed), read without mlcheck (the `csv` module,
tensorboard's own event loader, `json`). Formats added here:

- `keras-history-csv`: `pd.DataFrame(history.history).to_csv(...)`: one row per epoch, an unnamed
  index column (or none), Keras' own names (`loss`, `val_loss`, `accuracy`/`acc`) or the
  author's (`train_loss`/`valid_loss`, `Train Loss`/`Validation Loss`); one fit per file.
- `sweep-csv`: one file holding several fits, each a block whose epoch column (`Epoch`) starts
  again at 1 (a hand-written hyper-parameter sweep); the fits are taken in file order.
- `lightning-csv` as in `build_raw.py`, with one addition: where the training loss is logged only
  per step (`self.log("train_loss", loss)` in `training_step`, Lightning's default
  `on_step=True, on_epoch=False`), there is no epoch-level value to take; the epoch's training
  loss is then the mean of the step values the file holds for that epoch (every
  `log_every_n_steps`-th batch), the nearest the file comes to the per-epoch mean Keras prints.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import MIN_EPOCHS  # noqa: E402
from build_raw import (  # noqa: E402
    _event_fits,
    _git,
    _id,
    _lightning_epochs,
    _trainer_state_rows,
    _write,
    apply_override,
    replace_split,
)

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-5"
MAX_PER_REPO = 6

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`. Made
# after mlcheck's output on the split had been read (docs/benchmarks.md, branch real17), each for a
# reason in the curve itself, not in mlcheck's finding.
_AT_CHANCE = (
    "6 epochs at the chance level ln(10) = 2.3026 (training loss {t}, validation loss {v}) "
    "with validation accuracy 0.098-0.103 at every epoch: a constant prediction, which rule 3 calls a plateau "
    "only from 8 epochs; rule 5's 'the training loss fell' holds only through {why}: not healthy, too short "
    "for rule 3: ambiguous (not scored)"
)
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "zhengzhere-cifar10-clas-model-history-csv-fit2": (
        "ambiguous",
        None,
        _AT_CHANCE.format(
            t="2.3069-2.3076 from epoch 2", v="2.3032-2.3134", why="its first epoch's 2.80 (lr 0.025 blew it up)"
        ),
    ),
    "zhengzhere-cifar10-clas-model-history-csv-fit4": (
        "ambiguous",
        None,
        _AT_CHANCE.format(t="2.3028-2.3036", v="2.3026-2.3029", why="a fall of 0.03% (2.30365 -> 2.30285)"),
    ),
}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # pd.DataFrame(history.history).to_csv: Keras History dicts written by their notebooks
    (
        "HoaiHanVu/Sentiment_Classification",
        "5ad472aa81540b2140d6db6713310380a1e8a709",
        "model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "Raavi-Santhosh/Quora-Spam-Classification",
        "d97924f2cbd261b0bcc17034eb3018358a653077",
        "model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "SaurabhNair239/Pneumonia_detection_system",
        "7399d041c253f368a4195209f71dd295114fa6ea",
        "model_history.csv",
        "keras-history-csv",
        ("loss", "val_loss", "acc", "val_acc"),
    ),
    (
        "SaurabhNair239/LSTM-multi-output-forcasting",
        "194702606ff850513ca04ecf8243155703a7ab5c",
        "model_history.csv",
        "keras-history-csv",
        ("loss", "val_loss"),
    ),
    (
        "ravindra-pandey/Diabetic_Retinopathy",
        "a18d7e9b7a4343a07eafcb2f769f55ccd466450e",
        "model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "ravindra-pandey/Diabetic_Retinopathy",
        "a18d7e9b7a4343a07eafcb2f769f55ccd466450e",
        "severity_model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "ravindra-pandey/Diabetic_Retinopathy",
        "08784de9f47fc8d04833a71d6769f06b899cbe8b",
        "binary_model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "ravindra-pandey/Diabetic_Retinopathy",
        "ba8add7f1121856a7b48e862a6a40ed83ac45829",
        "retina_detection_model_history.csv",
        "keras-history-csv",
        KERAS,
    ),
    (
        "amaciag/Energy-Efficiency",
        "ba42be0cbc030aaa72ab3ff390240163aadb2cf7",
        "model_history.csv",
        "keras-history-csv",
        ("loss", "val_loss", "acc", "val_acc"),
    ),
    (
        "panstenos/Sarcasm-Detection-NLP-Tensorflow",
        "91dfa43aafdaf61e774faefaad87c9d9533bfc6e",
        "model_history.csv",
        "keras-history-csv",
        ("train_loss", "valid_loss", "train_acc", "valid_acc"),
    ),
    (
        "panstenos/IMDB-Review-Sentiment-NLP-PyTorch",
        "5646fc867747500dd7ddcb776c21f43e0314466a",
        "model_history.csv",
        "keras-history-csv",
        ("train_loss", "valid_loss", "train_acc", "valid_acc"),
    ),
    (
        "panstenos/IMDB-Review-Sentiment-NLP-PyTorch",
        "af72fb5fa43a67c5b27afe780f2c8d5a9933bbef",
        "bert_model_history.csv",
        "keras-history-csv",
        ("train_loss", "valid_loss", "train_acc", "valid_acc"),
    ),
    (
        "abhay22014/Facial-Expression-Detection",
        "0b7a120da27eeded498db280e45e2892867eb11a",
        "model_history.csv",
        "keras-history-csv",
        ("Train Loss", "Validation Loss", "Train Accuracy", "Validation Accuracy"),
    ),
    # a sweep over optimiser x batch size x learning rate, every fit appended to one file
    (
        "Zhengzheren77/CIFAR10-Classification",
        "593eb0b5540caf35c0a03d0692f71201c5c92c83",
        "model_history.csv",
        "sweep-csv",
        KERAS,
    ),
    # Lightning CSVLogger
    (
        "Kamil-Jan/asl_project",
        "efc7f204ec03a780c0a3d28467b0412f39fbf208",
        "lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss_epoch", "val_loss", "train_acc", "val_acc"),
    ),
    (
        "changhe3/kaggle-housing-prices",
        "6f8dbec640df69c1e4491a45ead5e7c860c052bc",
        "logs/lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss", "val_loss"),
    ),
    (
        "ThoAus/learn-ligthning",
        "da485028b72aed217aaf3b7582cb536a7a84ee92",
        "01_MNIST/lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss", "val_loss", "train_acc", "val_acc"),
    ),
    *(
        (
            "chandanreddy10/Fashion-MNIST",
            "5386af333aca6eb41ca6df38db936d51ece56187",
            f"logs/lightning_logs/version_{v}/metrics.csv",
            "lightning-csv-steps",
            ("train_loss", "val_loss", "", "val_acc"),
        )
        for v in range(0, 26)
    ),
    # Lightning CSVLogger with step and epoch columns (`train_loss_step`/`train_loss_epoch`, `lr-Adam`)
    (
        "prithsha/erav2-session13",
        "0e8b3bcea5da60a389461407c57a870672599dec",
        "logs/lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss_epoch", "valid_loss", "train_acc_epoch", "valid_acc"),
    ),
    *(
        (
            "prithsha/erav2-session13",
            "4ec899101a745fae6af95e582bc2c23957d6cda5",
            f"logs/lightning_logs/version_{v}/metrics.csv",
            "lightning-csv",
            ("train_loss_epoch", "valid_loss", "train_acc_epoch", "valid_acc"),
        )
        for v in (1, 2, 3)
    ),
    # an LSTM sweep whose training loss is logged at every step (up to 60,000 rows a file)
    *(
        (
            "DevilMayHide/LSTM-BADE03_Assignment",
            "57b0132d31a8407a8a623c156cd8e1a1076a7b19",
            f"checkpoints/lightning_logs/version_{v}/metrics.csv",
            "lightning-csv-steps",
            ("train_loss", "val_loss"),
        )
        for v in range(2, 19)
    ),
    # Lightning TensorBoardLogger
    *(
        (
            "ThoAus/learn-ligthning",
            "023f96fc7fa218af3446829cef8204b491c4dbae",
            f"02_MNIST_PY/lightning_logs/version_{v}",
            "tensorboard",
            ("train_loss", "val_loss", "train_acc", "val_acc"),
        )
        for v in (0, 1, 3)
    ),
    # Hugging Face Trainer states: an "epoch" is an evaluation
    (
        "siasio/StressDetection",
        "f1e15b1131bc8f8fe38f1773a7ad0276ed704362",
        "results/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "alicelouis47/VisLungTransformer",
        "3b09f66c27544ce74f733b1e3c4583da8363d8c8",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "eleanorgit/socialIssuesClassifier",
        "4fb8e07a080ae0c5476eb2f813219ac0717c44c4",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "dalu-sun/whisper-small-zh",
        "f514176f8aeaa3901677e67c230a8ceff38f1152",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "hunarbatra/CoVBERT",
        "034a9423a875d9cd7ab76c1dd40b8665f0fd6775",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "P-Zande/nlp-team-4",
        "a4efd7cf5d30d4092aac25174e796aecbf3aa866",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "fabiom91/ConvNeXt_AI_Competition_Platform",
        "51b77c3cd174d309f2763079798ad56e5b6ec657",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "jubaerkhan49/bangla_stt",
        "2a04bbe02307bb173c6fb879bf9c990c44cb4053",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "protonx-mles-01-projects/sentiment-classification-optimization",
        "5185715b829fa0c9ea331e098788685880c77dae",
        "model/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
    (
        "Dude-0313/LogClassifier_Roberta_V1",
        "19b30b0e87bb3a2a9bc94e7027f8774f4fe025c5",
        "output/trainer_state.json",
        "trainer-state",
        ("loss", "eval_loss"),
    ),
]


def _history_fits(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit: a row per epoch in file order (the index column, if any, is not read)."""
    return [[tuple(row.get(c, "") if c else "" for c in columns) for row in csv.DictReader(text.splitlines())]]


def _sweep_fits(text: str, columns: tuple[str, ...], epoch: str = "Epoch") -> list[list[tuple[str, ...]]]:
    """Several fits in one file: a new fit where the epoch column falls back to its first value."""
    rows = list(csv.DictReader(text.splitlines()))
    fits: list[list[tuple[str, ...]]] = []
    first = rows[0][epoch] if rows else None
    for row in rows:
        if not fits or row[epoch] == first:
            fits.append([])
        fits[-1].append(tuple(row.get(c, "") if c else "" for c in columns))
    return fits


def _lightning_step_epochs(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit: per epoch, the mean of the training loss's step values and the last value written of
    each other column; epochs holding both losses."""
    steps: dict[int, list[float]] = {}
    last: dict[int, dict[str, str]] = {}
    for row in csv.DictReader(text.splitlines()):
        if not row.get("epoch"):
            continue
        e = int(float(row["epoch"]))
        if row.get(columns[0]):
            steps.setdefault(e, []).append(float(row[columns[0]]))
        slot = last.setdefault(e, {})
        for c in columns[1:]:
            if c and row.get(c):
                slot[c] = row[c]
    rows = []
    for e in sorted(last):
        if e not in steps or not last[e].get(columns[1]):
            continue
        mean = sum(steps[e]) / len(steps[e])
        rows.append((f"{mean:.6g}", *(last[e].get(c, "") if c else "" for c in columns[1:])))
    return [rows]


def _same_start(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One curve repeats the other from its first epoch: a re-run with the same seed, stopped at
    the same epoch or earlier (chandanreddy10's versions 0 and 14: 13 and 11 epochs, the same
    losses to 4 digits)."""
    k = min(len(a), len(b))
    return a[:k] == b[:k]


def _fits(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    if fmt == "tensorboard":
        return _event_fits(gitdir, commit, path, columns)
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []  # a sweep's version number that this commit does not hold
    readers = {
        "trainer-state": lambda: _trainer_state_rows(text),
        "keras-history-csv": lambda: _history_fits(text, columns),
        "sweep-csv": lambda: _sweep_fits(text, columns),
        "lightning-csv-steps": lambda: _lightning_step_epochs(text, columns),
    }
    return readers.get(fmt, lambda: _lightning_epochs(text, columns))()


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: set[tuple[str, ...]] = set()
    for repo, commit, path, fmt, columns in SOURCES:
        fits = _fits(str(root / repo.replace("/", "+") / "repo"), commit, path, fmt, columns)
        for k, fit in enumerate(fits, 1):
            if per_repo.get(repo, 0) >= MAX_PER_REPO:
                break
            # a re-run with the same seed (a sweep's versions) repeats a curve to 4 digits: kept once
            key = tuple(f"{float(r[0]):.4g} {float(r[1]):.4g}" for r in fit)
            if len(fit) < MIN_EPOCHS or any(_same_start(key, other) for other in seen):
                continue
            seen.add(key)
            run_id = _id(repo, path, k, len(fits))
            row = _write(out, run_id, repo, path, commit, fmt.removesuffix("-steps"), k if len(fits) > 1 else "", fit)
            row["split"] = SPLIT
            if fmt == "lightning-csv-steps":
                row["notes"] = "training loss logged per step only: the mean of the epoch's logged steps"
            apply_override(row, OVERRIDES)
            rows.append(row)
            per_repo[repo] = per_repo.get(repo, 0) + 1
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
