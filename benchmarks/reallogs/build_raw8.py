"""Adds the runs of split `held-out-8` to the corpus (issue 12, branch `corpus20`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message
named, turned into the corpus's per-epoch form and labelled by README.md's rules (`build.label`)
before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw8.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw7.py`: it rewrites the
`held-out-8` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw7.py`'s (one
run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant digits
kept once; at most `MAX_PER_REPO` runs of one repository, in the order listed; rows whose training or
validation loss is empty or `NA` left out), read without mlcheck (the `csv` module, tensorboard's own
event loader, `json`).

How the repositories were found: `find_files` on file names no earlier split had listed by
(`training_history.csv`, `train_log.csv`, `lightning_logs/version_0/hparams.yaml` for Lightning
folders that hold TensorBoard event files, and `trainer_state.json` past the repositories
`build_raw5.py` and `build_raw7.py` took), repositories taken in the listing's order, skipping every
`owner/name` named in `manifest.csv`, `sources.txt`, the `build_raw*.py` scripts, docs/, README.md,
tests/ and `git log --all`; a repository was left out where the snapshot store has none or it is over
the 500 MiB fetch limit. Every file of those names in a snapshot (at the newest commit that holds it)
was listed when it holds a training and a validation loss per epoch (or per evaluation), whatever its
curves; a file without a validation loss (a training loss alone, an RL reward log, a log whose
validation cells are all `NA`) or with fewer than 5 epochs was not. The curves were not looked at
before the list was closed (the first rows of each file were read, for its columns).

Formats:
- `keras-csv`: Keras `CSVLogger` files (`epoch` from 0, Keras names);
- `keras-history-csv`: per-epoch CSVs written by the training script (`pd.DataFrame(history.history)`
  with or without an index column; the author's names: `train_loss`/`val_loss`, `Training Loss`/
  `Validation Loss`, `TrainLoss`/`ValLoss`, `train_loss`/`eval_loss`, `train_loss_total`/`val_loss`
  where the total is the loss minimised; a sweep's file whose hyper-parameter columns repeat on each
  row); accuracy columns are copied where both a training and a validation accuracy are logged as
  fractions (accuracies logged in percent, and a validation accuracy without a training one, are left
  out: rule 3's 2-point spread is read on fractions);
- `lightning-csv` as in `build_raw.py` (an epoch-level training loss);
- `tensorboard`: Lightning TensorBoard folders whose training and validation losses are logged once an
  epoch at the same step (`Loss`/`Loss_val`, `train_loss_epoch`/`val_loss`);
- `tensorboard-steps`: a Lightning TensorBoard folder whose training loss is logged per step only
  (every 50 steps): an epoch's training loss is the mean of the steps logged after the previous
  validation and at or before its own, as `lightning-csv-steps` does for CSV files;
- `trainer-state`: an "epoch" is an evaluation, its training loss the one logged last at or before it.

Not read (another reader's work, issue 12's readers20 branch): no fastai `history.csv`, timm
`summary.csv` or wandb `wandb-history.jsonl` came up in the files listed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import MIN_EPOCHS  # noqa: E402
from build_raw import _event_fits, _git, _id, _keras_fits, _write, apply_override, replace_split  # noqa: E402
from build_raw5 import _fits, _same_start  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-8"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-8 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "duytran04-n9_nhandangb-training-history-csv": (
        "ambiguous",
        None,
        "a model at its class prior, not healthy: training and validation losses settle at 3.479 (the "
        "entropy of the class frequencies; ln 43 = 3.76 for uniform classes) by epoch 8 and stay there to "
        "the 4th digit, validation accuracy 0.050-0.056 at epochs 2-15 (a constant prediction's); rule 3 "
        "fails only because the training loss fell 2.6% from epoch 2 (3.571) while reaching that level, "
        "2% being rule 3's bound. As held-out-5's Zhengzheren77 fits at chance (README): neither healthy "
        "nor, by the letter of rule 3, a plateau; not scored",
    ),
}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {
    "2jogger1-datamining-training-history-csv": (
        "the loss is a composite whose main term is a Gaussian negative log-likelihood (T3.py CompositeLoss), "
        "which can be negative: rule 2's clause on a loss that cannot be negative does not apply; the label "
        "rests on rule 2's explosion clause (epoch 4: 683.3 against 21.76 at epoch 3, above epoch 1's 89.58; "
        "explosions of 30-300x recur to epoch 21)"
    ),
    "njw04-ai-asl-presentation-aug-train-log-csv": (
        "the validation loss rises 13x in the last epoch (0.0193 -> 0.2501); rule 5 calls a run whose minimum "
        "is among its last 3 epochs healthy (rule 6 would call a 10%+ rise with fewer than 3 epochs after the "
        "minimum ambiguous; build.label applies rule 5 first, as on every split)"
    ),
    "njw04-ai-asl-presentation-train-log-csv": (
        "the validation loss rises 200x in the last epoch (0.000173 -> 0.0376); healthy by rule 5 as applied "
        "(minimum among the last 3 epochs), as the note on the aug_train_log run says"
    ),
}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
LOSSES = ("loss", "val_loss")
TV = ("train_loss", "val_loss")
TVA = ("train_loss", "val_loss", "train_acc", "val_acc")
WORDS = ("Training Loss", "Validation Loss", "Training Accuracy", "Validation Accuracy")
H = "keras-history-csv"
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `training_history.csv`, in the listing's order
    ("0Geremias00/PlantasIA", "5d70921281edaac6a7a92ccb1ab56ea4739b13cf", "training_history.csv", H, KERAS),
    ("0Risotto/sentiotech", "9e1638aca95e3c88173d0f82086e598cf5b09452", "training_history.csv", H, TVA),
    ("23011206-beep/deep_learning", "2f97a09b27a438d5963b9d90a8d86ae588c715fc", "training_history.csv", H, TV),
    ("2jogger1/DataMining", "b3340827f41c9a384f72d3dfcf4bfb43894ebee7", "training_history.csv", H, TV),
    ("ABHICHIRU/Zynq-Xcelerate", "222ce820564cffee77e4be599c81b05ebb9bfa4e", "training_history_2d.csv", H, TV),
    *(
        (
            "ADL-202420-G01/streamlit-proyecto",
            commit,
            path,
            H,
            ("train_loss", "val_loss", "train_accuracy", "val_accuracy"),
        )
        for commit, path in (
            ("7c00d7f0b7844ebf58149836c4829e3fa2d5ebe6", "training_history_300.csv"),
            ("dac58e46b603a343cda53b1e24ec0348c526436d", "training_history_50.csv"),
        )
    ),
    ("Aadi12g/Fruit-Freshness-Index", "aef2670a2f91ebc70313154cfa31cb6780e13d22", "training_history.csv", H, KERAS),
    (
        "AbsurdGem/Heart-Disease-Risk-Prediction",
        "59497852f6ceaf3e20c41332655ad59eeaaf35e6",
        "training_history.csv",
        H,
        WORDS,
    ),
    (
        "AbyssDrn/Animal-Sound-Classifier",
        "da0bc80e8b2f5680fd8aa64075a576490acec65c",
        "training_history.csv",
        H,
        KERAS,
    ),
    (
        "Aditya11495/Real-Time-Pest-Detection-using-ResNet-50-and-Vision-Transformer",
        "9913e523c6a62ae3ef39eda5e5efc5caa754288f",
        "training_history.csv",
        H,
        TV,
    ),
    (
        "Ahmed-Hamed-Attallah/CodVeda-Level3-Task3-NN",
        "d48d7c1bd045257f1d7435e729b45be0e9392c99",
        "training_history.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "Akashkalasagond/Alzheimer-Disease-Dementia-Classification-",
        "79152aac9965b6afee4cda37c1382a6e55f35800",
        "training_history.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "Alice030303/machine_learning",
        "35da28644a1e892a75bd08464522fd186b5fa3d5",
        "training_history.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "Amine-Djaboub/EcoBirdCompetition_attempt",
        "8e2775b59d92510fecc468224b4c9d7b3ff36016",
        "training_history.csv",
        H,
        TV,
    ),
    ("Andrew-Chrom/SentimentAnalysis", "8332503169c37868a322f2b699f8da75f56f8ad5", "training_history.csv", H, KERAS),
    *(
        ("Arifoo00/Pneumonia-Detection-Using-EfficientNetB0", commit, path, H, KERAS)
        for commit, path in (
            ("ae3ed5f44ffeb7da5c88c422beb9018bec729d8e", "training_history.csv"),
            ("9d7a45a69a9279e7dc825d5f40b821142474668c", "fine_tuning_history.csv"),
        )
    ),
    ("Aryan-82/Digit_Recognition", "005e01c118d55acdc0110c9586c1bcddb500d2f4", "training_history.csv", H, KERAS),
    ("DBoFury/DinoNN", "b646935b43d697ff228f52532e9a66be82dd72d4", "training_history.csv", H, WORDS),
    (
        "DeV-21/Waste-Classification-Using-CNN",
        "95e7286a26259a4293f7dc3f035360870c8ff6f9",
        "training_history.csv",
        H,
        KERAS,
    ),
    ("DexterGomez/ftc-unet", "84df636eba516f617e23b927cc5f0b50dccacd52", "training_history.csv", "keras-csv", LOSSES),
    ("DuyHiepVP2003/Btl_HTTM", "7298843ef89ced70912a9743e26cffe5564282f7", "training_history.csv", H, LOSSES),
    (
        "DuyTran04/N9_NhanDangBienBaoGiaoThong",
        "da478f76566513d0ffc084d9fe5335d5b118ea9b",
        "training_history.csv",
        H,
        KERAS,
    ),
    *(
        ("EdwinIniguez/Human-Activity-Recognition_UCF101", commit, path, H, TVA)
        for commit, path in (
            ("89f1636ded70f3a38621e2c74e4a80b75439330b", "artifacts/training_history_10cls.csv"),
            ("a498acf2aea96265559ea70288a729afc41b6d5e", "experiments/baselineNclsselect/training_history.csv"),
            ("a498acf2aea96265559ea70288a729afc41b6d5e", "experiments/baselineNclsselect/training_history_10cls.csv"),
        )
    ),
    (
        "Farrell2004/Transformer-Prediction",
        "81a1c26ab271061c81fd270aff283a22047cadb8",
        "training_history.csv",
        H,
        LOSSES,
    ),
    ("Fayedolla/Power-Consumption-", "6047acbc01017b4fe32fd07843f1bf130304436b", "training_history.csv", H, LOSSES),
    (
        "GolfBravoSierra/Projeto-Nimbus",
        "2a28a1349b5fab8e04c3c3ae54f4ba1e751b4b30",
        "training_history.csv",
        H,
        ("train_loss_total", "val_loss", "train_acc", "val_acc"),
    ),
    # one fit of a sweep's file (hyper-parameters repeated on each row)
    (
        "Graphical27/Time-Domain-Electromagnetics",
        "cf449faadd319f7e3e33c5514274cdaa2d9392f0",
        "training_history.csv",
        H,
        TV,
    ),
    ("HERBERT-WH/CifarNumpy", "e85a3948b7c6e72d6e20712b3b0669f7ee18cfee", "training_history.csv", H, TVA),
    (
        "Harishankar00/MIRAI",
        "79cb58771eb8161dc68b2f05f8714d0ab451e450",
        "training_history.csv",
        H,
        ("train_loss", "val_loss", "train_cls_acc", "val_cls_acc"),
    ),
    (
        "HayoungMo/llm_mohayoung_project",
        "0cd15a90943b2b26a44c9c695d7ff4736fe5f9f2",
        "training_history.csv",
        H,
        KERAS,
    ),
    ("HiKami172/pokemons-lenet", "e58eeecd5ce37a5523ab6a7cef6c83a84e52af04", "training_history.csv", H, TVA),
    (
        "HieuITMHG/doanAI",
        "a289ed129aa6f3b44bc7cd3ecbcb3aecec1099fc",
        "training_history.csv",
        H,
        ("train_loss", "val_loss", "train_accuracy", "val_accuracy"),
    ),
    (
        "IndiraFa/uncertainty_muad_dataset",
        "e441f6ab382e19378503f182fd9a4397e934da89",
        "training_history.csv",
        H,
        TV,
    ),
    (
        "IsomorphicAlgo/Histopathologic-Cancer-Detection-Deep-Model",
        "197eb23a2ae8706b08f728a6e0791e71b7f90673",
        "training_history.csv",
        "keras-csv",
        KERAS,
    ),
    # find_files `train_log.csv`, in the listing's order
    *(
        ("Elison-debug/Cmamba_reconstruct", commit, f"ckpt_origin/{run}/train_log.csv", H, ("train_loss", "eval_loss"))
        for commit, run in (
            ("c5db02483eca1154c648bae2ff3bbcf31ed7d4cb", "parity_2100"),
            ("c5db02483eca1154c648bae2ff3bbcf31ed7d4cb", "parity_2100_PE"),
            ("0fa92e4fe5c17be03699d83a7d1e03d51943e904", "parity_delta"),
            ("c5db02483eca1154c648bae2ff3bbcf31ed7d4cb", "parity_ori"),
        )
    ),
    (
        "Faisasa12/plant_disease_classifier",
        "20d410164df33d395352e42825ba0b9f89da9d0c",
        "train_log.csv",
        H,
        ("TrainLoss", "ValLoss"),
    ),
    (
        "Graz-Institute-of-Biology/cc-machine-learning",
        "2fadffdbcaec9b2f147800eaf1925895432386dd",
        "metrics_log.csv",
        H,
        TV,
    ),
    *(
        ("Lokendra2244/RESNET152-QNN_ML", "393d8cfbdb4d56027dd439a2746e110bb3237d03", path, H, TV)
        for path in ("qnn_train_log.csv", "train_log.csv")
    ),
    ("Lxr-max/OSCCC-Detection", "ba68d7793dcd8c34e8ea426196977ad5b8ad17fc", "train_log.csv", H, TV),
    (
        "Mertcan-Gelbal/botanix-training",
        "19a1b30724f96e258bb6d5aa61afc57a16889402",
        "train_log.csv",
        "keras-csv",
        KERAS,
    ),
    *(
        ("NJW04/AI-ASL", "b6fa741dbd24d553c477b1b075f3c4a1057f5a86", f"presentation/{name}", H, TVA)
        for name in ("aug_train_log.csv", "train_log.csv")
    ),
    # Lightning CSVLogger folders beside the TensorBoard ones (find_files `lightning_logs/version_0/hparams.yaml`)
    *(
        ("10sajan10/CS6994FinalProject", "353c47c6d549ff36365c77fb060f84786da802ff", path, "lightning-csv", TV)
        for path in (
            "lightning_logs_air_temperature/version_0/metrics.csv",
            "lightning_logs_discharge/version_1/metrics.csv",
        )
    ),
    # Lightning TensorBoard folders (find_files `lightning_logs/version_0/hparams.yaml`)
    *(
        (
            "18140033613/PCA-kmeans-TFT-time-series-clustering-and-prediction",
            "4007b2c1059185f8a51d9a27479a0a9c59518d45",
            f"TFT-Prediction/lightning_logs/optuna/version_{v}",
            "tensorboard",
            ("train_loss_epoch", "val_loss"),
        )
        for v in (0, 1, 2)
    ),
    (
        "Abdul-AA/Text-Generation-With-LSTM",
        "a27be183979f7ef2501da4bc179837156deea88f",
        "lightning_logs/version_0",
        "tensorboard-steps",
        TV,
    ),
    *(
        (
            "Alan-Wolf-VN/passenger_forecast",
            "29811e99b5aedae22d82c4a9277b640a96d31887",
            f"lightning_logs/version_{v}",
            "tensorboard",
            ("Loss", "Loss_val"),
        )
        for v in (1, 2, 3, 4)
    ),
    # Hugging Face Trainer states (find_files `trainer_state.json`), in the listing's order
    *(
        (repo, commit, "trainer_state.json", "trainer-state", LOSSES)
        for repo, commit in (
            ("ANDA-Researchers/MCFED_DRL", "eb11633b73ad682fd4fcf95bf2525ee8c0eaf335"),
            ("BugraAlmas7/Code-Archaeologist", "0f2ee33affe1c869272289546051b6932a181cf5"),
            ("Dheena731/tinyLlama-finetune", "c9a022f72867a9ed79bfa32f4fb75e5d50fb7bda"),
            ("Hahaazaza/Neiro", "c08fa749c6718f104f304938f2b57bdbe2771e2e"),
            ("Jaong/Checkpoint-of-CPT", "6a9b832a2ca4c5f3b2dc273070e70159e1aadd8f"),
        )
    ),
]


def _event_step_fits(gitdir: str, commit: str, folder: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit from a TensorBoard folder whose training loss is logged per step: per validation point
    (in step order), the mean of the training points logged after the previous validation point and at
    or before its own step, and the validation value; validation points with no training point before
    them left out."""
    import tempfile

    from tensorboard.backend.event_processing import event_file_loader

    names = _git(gitdir, "ls-tree", "-r", "--name-only", commit, "--", folder).decode().splitlines()
    points: dict[str, dict[int, float]] = {columns[0]: {}, columns[1]: {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(n for n in names if "tfevents" in n):
            path = Path(tmp) / "f"
            path.write_bytes(_git(gitdir, "show", f"{commit}:{name}"))
            for event in event_file_loader.LegacyEventFileLoader(str(path)).Load():
                for value in event.summary.value:
                    if value.tag in points and value.WhichOneof("value") == "simple_value":
                        points[value.tag][event.step] = value.simple_value
    train = sorted(points[columns[0]].items())
    rows, before = [], -1
    for step, val in sorted(points[columns[1]].items()):
        got = [v for x, v in train if before < x <= step]
        before = step
        if got:
            rows.append((f"{sum(got) / len(got):.6g}", repr(val)))
    return [rows]


def _fits8(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    if fmt == "keras-csv":
        try:
            text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
        except subprocess.CalledProcessError:
            return []
        return _keras_fits(text, columns)
    if fmt == "tensorboard":
        return _event_fits(gitdir, commit, path, columns)
    if fmt == "tensorboard-steps":
        return _event_step_fits(gitdir, commit, path, columns)
    return _fits(gitdir, commit, path, fmt, columns)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: list[tuple[str, ...]] = []
    for repo, commit, path, fmt, columns in SOURCES:
        fits = _fits8(str(root / repo.replace("/", "+") / "repo"), commit, path, fmt, columns)
        for k, fit in enumerate(fits, 1):
            if per_repo.get(repo, 0) >= MAX_PER_REPO:
                break
            fit = [r for r in fit if r[0] and r[1] and "NA" not in (r[0], r[1])]
            key = tuple(f"{float(r[0]):.4g} {float(r[1]):.4g}" for r in fit)
            if len(fit) < MIN_EPOCHS or any(_same_start(key, other) for other in seen):
                continue
            seen.append(key)
            run_id = _id(repo, path, k, len(fits))
            if any(r["id"] == run_id for r in rows):  # two paths alike in their first 40 characters
                run_id += "-" + re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower())
            row = _write(out, run_id, repo, path, commit, fmt.removesuffix("-steps"), k if len(fits) > 1 else "", fit)
            row["split"] = SPLIT
            if fmt == "tensorboard-steps":
                row["notes"] = "training loss logged per step only: the mean of the epoch's logged steps"
            if run_id in NOTES:
                row["notes"] = (row["notes"] + "; " if row["notes"] else "") + NOTES[run_id]
            apply_override(row, OVERRIDES)
            rows.append(row)
            per_repo[repo] = per_repo.get(repo, 0) + 1
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
