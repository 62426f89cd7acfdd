"""Adds the runs of split `held-out-9` to the corpus (issue 12, branch `corpus23`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message
named, turned into the corpus's per-epoch form and labelled by README.md's rules (`build.label`)
before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw9.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw8.py`: it rewrites the
`held-out-9` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw8.py`'s (one
run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant digits
kept once; at most `MAX_PER_REPO` runs of one repository, in the order listed; rows whose training or
validation loss is empty or `NA` left out), read without mlcheck (the `csv` module, tensorboard's own
event loader). The loop build_raw5-8 repeat is `build_split` below (used by this script only; the
older builders are unchanged).

How the repositories were found: `find_files` on file names no earlier split had listed by
(`train_history.csv`, `loss_history.csv`, `metrics_history.csv`, `training_metrics.csv`, and
`lightning_logs/version_1/hparams.yaml` for Lightning folders holding TensorBoard event files; also
`outputs/trainer_state.json`, whose 5 snapshots held no evaluation loss), repositories taken in the
listing's order, skipping every `owner/name` named in `manifest.csv`, `sources.txt`, the
`build_raw*.py` scripts, docs/, README.md, tests/, `git log --all`, and every repository already in
the snapshot store (`/work/.mirror`, which other branches fill); a repository was left out where the
snapshot store has none or it is over the 500 MiB fetch limit. Chosen by repository name, never by a
curve: in every listing some were passed over unfetched by name (dashboards, trackers, architecture-
search controllers; 12 of the 32 `loss_history.csv` repositories, for time); of the 193
`training_metrics.csv` repositories only the first ~40 whose names suggest supervised training were
fetched (reinforcement-learning, game and trading projects, and YOLO ones, not), and
four of the `hparams.yaml` listing were passed over unfetched (AllenCell/aics-ml-segmentation,
Arshya-Guru/deepmind-research, Aveouter/Open_Sence_Graph_Generation, BRUH-MAIN/DDGAN). A file was listed when it holds a
training and a validation (or test, evaluated every epoch) loss per epoch or per evaluation, whatever
its curves; a file without a validation loss (a training loss alone, an RL reward log, a
hyper-parameter table, a log with 2-3 evaluations) or with fewer than 5 epochs was not. The curves
were not looked at before the list was closed (the header and first row of each file were read, for
its columns, and the number of points per TensorBoard tag).

Formats:
- `keras-history-csv`: per-epoch CSVs written by the training script (`pd.DataFrame(history.history)`
  with or without an index column; the author's names: `train_loss`/`val_loss`, `train_loss`/
  `valid_loss` (fastai's names), `train_loss`/`test_loss`, `Train Loss`/`Validation Loss`,
  `Train_Loss`/`Val_Loss`, `training_loss`/`validation_loss`, `train_loss`/`dev_loss` (a GPT-2
  pre-training log: one row per evaluation, with `step` and `learning_rate` columns), a header with a
  space after each comma); accuracy columns are copied where both a training and a validation accuracy
  are logged as fractions (percent, a validation accuracy alone, dice or mIoU are not copied);
- `sweep-csv`: one file holding ten models' fits, each from `epoch` 1 (a `model` column names it);
- `tensorboard`: Lightning TensorBoard folders whose training and validation losses are logged once an
  epoch at the same step (`Loss`/`Loss_val` of a 200-epoch labour-forecasting sweep,
  `train_loss_0`/`valid_loss_0`, `train_loss_epoch`/`val_loss` of Temporal Fusion Transformer runs,
  `train_loss_epoch`/`valid_loss` of a market model validated every 100 epochs);
- `tensorboard-steps`: Lightning TensorBoard folders whose training loss is logged per step only
  (`train_loss`; a hydrology model and a forecasting model): an epoch's training loss is the mean of the
  steps logged after the previous validation and at or before its own, as in `build_raw8.py`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import MIN_EPOCHS  # noqa: E402
from build_raw import _git, _id, _write, apply_override, replace_split  # noqa: E402
from build_raw5 import _same_start, _sweep_fits  # noqa: E402
from build_raw8 import _fits8  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-9"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-9 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "rushika-ma-real-world-a-training-metrics-csv": (
        "ambiguous",
        None,
        "the loss is a negative SI-SNR (train_model.ipynb: `si_snr_loss` returns `-si_snr.mean()`), which is "
        "negative whenever the separation beats the mixture: rule 2's clause on a loss that cannot be negative "
        "does not apply (the training loss crosses zero at epoch 66 while falling smoothly from 42.8 to -2.5), "
        "and no explosion clause holds. Read without it: the validation loss bottoms out at 17.96 (epoch 91) "
        "and its last 3 epochs are 8.6% above that, a 5-10% rise: rule 6, ambiguous (the training loss fell "
        "from 42.8 while the validation loss stayed at 18-20 from epoch 20: a wide gap, but not a 10% rise)",
    ),
}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
LOSSES = ("loss", "val_loss")
TV = ("train_loss", "val_loss")
TVA = ("train_loss", "val_loss", "train_acc", "val_acc")
H = "keras-history-csv"
TB = "tensorboard"
TBS = "tensorboard-steps"
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `train_history.csv`, in the listing's order
    ("Alekya-ece/Python_Project", "7e9f5c7ab8c69ebcc6bb1185e75eee9c9c25b513", "train_history.csv", H, KERAS),
    (
        "JosephHuang913/mmAlphabet-Air-Writing-Alphabet-Recognition-System",
        "6cd9d65118cfd6a9a07ae23db0b5da4ed792e0f9",
        "train_history.csv",
        H,
        KERAS,
    ),
    (
        "ThibaultDieudonne/Comments-and-Pictures-Classification",
        "7fae04599de0c5257e9e519f03ba5977c2029434",
        "cnn_train_history.csv",
        H,
        KERAS,
    ),
    (
        "ThibaultDieudonne/Comments-and-Pictures-Classification",
        "7fae04599de0c5257e9e519f03ba5977c2029434",
        "train_history.csv",
        H,
        KERAS,
    ),
    ("WTXwang/AIproject2", "84d982f257f476063a04001e669741424974729a", "output_resnet/train_history.csv", H, KERAS),
    # no epoch index in the values' columns, a space after each comma of the header
    (
        "anoop675/Visual-Question-Answering-System-EasyVQA",
        "977359122ba73a496c41e2f7c1ad7497b0dc7980",
        "train_history.csv",
        H,
        (" train_loss", " val_loss", " train_acc", " val_acc"),
    ),
    ("elliwadler/image_classification", "8e8c3a030d99a4d8b6329dc8f1d7a73b40e73011", "train_history.csv", H, KERAS),
    ("jamshad00758/csy2082", "9a39481e2b5af0f9683db588240e71df06e88156", "train_history.csv", H, TVA),
    ("mrgloom/blob-counting-example", "c70cf9f1cf30471043a672052f87dd8420e6931a", "train_history.csv", H, LOSSES),
    (
        "mrgloom/position-and-radius-estimation",
        "c83e0a994bd7ff872900a4f5fb0a524f3dddbb51",
        "train_history.csv",
        H,
        LOSSES,
    ),
    (
        "nani2357/ANN_Multilayer_notes-implementation",
        "25fd6b72004bef3ccf5dbb30e8b38b5d59125610",
        "train_history.csv",
        H,
        KERAS,
    ),
    # find_files `loss_history.csv`, in the listing's order
    *(
        (
            "ElisonSherton/anime_face_recognition",
            "46dd83cddcd1c480f729cdad76ccf653db44fd81",
            path,
            H,
            ("train_loss", "valid_loss"),
        )
        for path in ("loss_history.csv", "resources/loss_history.csv")
    ),
    ("Iberis-9/deep_plant_project", "a183c297e128296c4f9524f18ad570b9f6e68c9f", "loss_history.csv", H, TV),
    ("RosePY/Graph4ASD-Challenge", "ab1bfa2439422bd6084158bb6deff321a1d04f0c", "loss_history.csv", H, TV),
    # rows every 500 epochs of a physics-informed battery model (`epoch` 500, 1000, ...)
    (
        "SIVAKAMISREEJHA-G/EV-BATTERY",
        "09f60df229e4173341bfaaeb390404762d4a6fda",
        "loss_history.csv",
        H,
        ("train_loss", "test_loss"),
    ),
    ("brainstormm/name_gen", "35ff9b36cd64286965cfb160caccbad671051e5e", "loss_history.csv", H, TV),
    (
        "civond/reef_halo_segmentation",
        "82581e2803d02e037090c4d01c47279fbc07f8ef",
        "loss_history.csv",
        H,
        TV,
    ),
    (
        "drowningkirito/behavioral_cloning_car",
        "46fb4b8e7926c491f6d1242c7d7d39c8a2cb6cf5",
        "loss_history.csv",
        H,
        LOSSES,
    ),
    # a GPT-2 pre-training log: one row per evaluation (`step`, `learning_rate` beside the losses)
    (
        "jaipkapoor99/GPT-2",
        "899fdd8a5c5f6514b5db16706a3174a0a9bbb36f",
        "loss_history.csv",
        H,
        ("train_loss", "dev_loss"),
    ),
    # ten models' fits in one file, each from epoch 1
    (
        "lukasbinau/ITIS---Project---Handwritten-numbers-experiment",
        "f8ee0c8ee6c45d7ed5f5768102f9bad93525413a",
        "loss_history.csv",
        "sweep-csv",
        ("train_loss", "test_loss", "train_acc", "test_acc"),
    ),
    ("smyGitt/PedalAI", "6f82b894677652cc18c2225cdd1d6914adc7b019", "loss_history.csv", H, TV),
    # find_files `metrics_history.csv`
    (
        "gkrusta/Multilayer-Perceptron",
        "aac43e18acf8c6b6492ade544968792fbf821ab7",
        "metrics_history.csv",
        H,
        ("loss", "val_loss", "acc", "val_acc"),
    ),
    # find_files `training_metrics.csv`, in the listing's order (RL and GAN logs, tables without a
    # validation loss, and files of fewer than 5 epochs not listed)
    (
        "DarkEmbers/AlzheimersPrediction",
        "09f036ded2320f16aa73805d8beb6ddc06e1c27d",
        "training_metrics.csv",
        H,
        ("Train Loss", "Validation Loss", "Train Accuracy", "Validation Accuracy"),
    ),
    *(
        (
            "DomenicoVillari3/Remote-sensing-satellite-",
            "c5a5f5835c7edbcaad36482ebf0320a54f96f8f0",
            path,
            H,
            TV,
        )
        for path in ("models/training_metrics.csv", "training_metrics.csv")
    ),
    (
        "EasySarthak1440/modular-image-classification",
        "5f198418d6ff5ea875227dba99406cb51bf3f8db",
        "training_metrics.csv",
        H,
        TVA,
    ),
    (
        "Espacio-root/Transfer-Learning-Tumor",
        "a7e386cb2208885fa267be3d19b0be0e76fe8973",
        "training_metrics.csv",
        H,
        ("Train Loss", "Test Loss"),
    ),
    # a speech-to-text fine-tune (`learning_rate` beside the losses)
    (
        "LF-c/Kinyarwanda-speech-to-text-ASR",
        "b8d90b270235ed582b898f5c498e8a9e7491c4e9",
        "training_metrics.csv",
        H,
        TV,
    ),
    ("Rida-Nuha/blasto_thesis_model", "33b614097a3b2a53eb50c881c9f157fab646f99e", "training_metrics.csv", H, TV),
    # audio source separation
    (
        "Rushika-Madala/Real-world-audio-separation",
        "ae1159c3b3dab35f9a54f733d62f39fe52f3e535",
        "training_metrics.csv",
        H,
        ("Train_Loss", "Val_Loss"),
    ),
    (
        "Sarva-shakti-Singh/Deep-Learning",
        "2ede2223d654bf475b8f6f2d136a517d9513a523",
        "training_metrics.csv",
        H,
        TV,
    ),
    ("be3013/CNN-TransferLearning", "1268a056efe2bb96fc3c34bbcdf4ef9959c259ea", "training_metrics.csv", H, KERAS),
    (
        "bhargavaCharyRudravelli/info_5731_project",
        "a2cb8a9e029aaa3af671b108da5bf0906c3692ee",
        "training_metrics.csv",
        H,
        ("Train Loss", "Val Loss", "Train Accuracy", "Val Accuracy"),
    ),
    (
        "civond/Chest_Xray_Segmentation",
        "d951525cba16261552c942dc3f4bee97a141eb93",
        "training_metrics.csv",
        H,
        ("training_loss", "validation_loss"),
    ),
    (
        "count001/MyProject",
        "cb0b45fa00fb3bbba71b1156b936f0c5839d8f74",
        "training_metrics.csv",
        H,
        ("train_loss", "test_loss", "train_correct_rate", "test_correct_rate"),
    ),
    # Lightning TensorBoard folders (find_files `lightning_logs/version_1/hparams.yaml`, in the
    # listing's order; a sweep's versions in git's order, those with a validation loss)
    *(
        (
            "American-Institutes-for-Research/dsaa-CCC-CCC_Labor_Forecasting",
            "9559ec36a26e55785bee9196a385613627f641ff",
            f"lightning_logs/version_{v}",
            TB,
            ("Loss", "Loss_val"),
        )
        for v in (100, 101, 102, 103, 104, 105)
    ),
    *(
        (
            "AnfimovAleksandr/Kickstarter_projects_analysis_and_prediction",
            "3b4f65d0cb37f7760de89f8dd1c3fac6fe1e7c77",
            f"lightning_logs/version_{v}",
            TB,
            ("train_loss_0", "valid_loss_0"),
        )
        for v in (10, 12, 13, 14, 15, 16)
    ),
    *(
        (
            "Aquilaxc/tft-network",
            "eba5b64c48c32f1ed35a613efb8848e2664928f6",
            f"lightning_logs/lightning_logs/{name}",
            TB,
            ("train_loss_epoch", "val_loss"),
        )
        for name in ("colab_0924", "colab_0925", "colab_0926", "colab_0926_l", "colab_0926_log")
    ),
    *(
        (
            "BenjaminWare/quantathon",
            "056b49aef3d5ce0faa15eb3b815f7e9dee8ece03",
            f"lightning_logs/version_{v}",
            TB,
            ("train_loss_epoch", "valid_loss"),
        )
        for v in (0, 11, 12, 15, 17)
    ),
    # training loss logged per step only (`train_loss`): an epoch's value is the mean of its logged steps
    *(
        ("BFlameSwift/icpr", "d86024c7c2c8b784e424fbc935bf0ebd8457b600", f"lightning_logs/version_{v}", TBS, TV)
        for v in (0, 1)
    ),
    *(
        ("CooperBigFoot/CAMELS-CH", "f8ddfb8f21f5fb145e60dd3c7b6450094581e4f3", f"lightning_logs/version_{v}", TBS, TV)
        for v in (127, 130)
    ),
]


def _fits9(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    if fmt == "sweep-csv":
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
        return _sweep_fits(text, columns, epoch="epoch")
    return _fits8(gitdir, commit, path, fmt, columns)


def build_split(root: Path, sources, split: str, overrides, notes, max_per_repo: int, reader) -> list[dict]:
    """The loop of build_raw5-8: every source's fits read by `reader`, epochs holding both losses
    kept, runs shorter than MIN_EPOCHS or repeating another's first epochs left out, at most
    `max_per_repo` runs a repository, each written to runs/ and labelled; returns the manifest rows."""
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: list[tuple[str, ...]] = []
    for repo, commit, path, fmt, columns in sources:
        fits = reader(str(root / repo.replace("/", "+") / "repo"), commit, path, fmt, columns)
        for k, fit in enumerate(fits, 1):
            if per_repo.get(repo, 0) >= max_per_repo:
                break
            fit = [r for r in fit if r[0] and r[1] and "NA" not in (r[0].strip(), r[1].strip())]
            fit = [tuple(c.strip() for c in r) for r in fit]
            key = tuple(f"{float(r[0]):.4g} {float(r[1]):.4g}" for r in fit)
            if len(fit) < MIN_EPOCHS or any(_same_start(key, other) for other in seen):
                continue
            seen.append(key)
            run_id = _id(repo, path, k, len(fits))
            if any(r["id"] == run_id for r in rows):  # two paths alike in their first 40 characters
                run_id += "-" + re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower())
            row = _write(out, run_id, repo, path, commit, fmt.removesuffix("-steps"), k if len(fits) > 1 else "", fit)
            row["split"] = split
            if fmt.endswith("-steps"):
                row["notes"] = "training loss logged per step only: the mean of the epoch's logged steps"
            if run_id in notes:
                row["notes"] = (row["notes"] + "; " if row["notes"] else "") + notes[run_id]
            apply_override(row, overrides)
            rows.append(row)
            per_repo[repo] = per_repo.get(repo, 0) + 1
    return rows


def main(argv: list[str]) -> int:
    rows = build_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits9)
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
