"""Adds the runs of split `held-out-7` to the corpus: real logs committed in the formats users most
often have on disk (Keras `CSVLogger` files, hand-written per-epoch CSVs, Lightning `metrics.csv`,
Keras TensorBoard folders, Hugging Face `trainer_state.json`) by public repositories that no earlier
split, build script or section of docs/benchmarks.md read, turned into the corpus's per-epoch form and
labelled by README.md's rules (`build.label`) before mlcheck is run on them.

    python benchmarks/reallogs/build_raw7.py MIRROR_ROOT    # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py`, `build_raw5.py` and `build_raw6.py`: it rewrites the
`held-out-7` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw5.py`'s
(one run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant
digits kept once; at most `MAX_PER_REPO` runs of one repository, in the order listed), read without
mlcheck (the `csv` module, tensorboard's own event loader, `json`). The repositories were found by
file name (`find_files` on `lightning_logs/version_0/metrics.csv`, `training_log.csv`,
`trainer_state.json`), taken in the listing's order, skipping every repository named in
`manifest.csv`, `sources.txt`, the `build_raw*.py` scripts, docs/, tests/analyze/ and the git log,
and every repository already in the mirror; a file is listed when it holds a training and a
validation loss per epoch (or per evaluation), whatever its curves. Formats:

- `keras-csv`: Keras `CSVLogger` files (`epoch,loss,val_loss,...`; extra columns such as
  `learning_rate` or a multi-output model's `fused_pred_loss`; the summed `loss` is the curve);
  a file several fits appended to is split where the epoch column falls back;
- `keras-history-csv`: a per-epoch CSV a training script wrote by hand, with the author's names
  (`train_loss`/`val_loss`, `train_mse`/`val_mse`, `train_loss`/`test_loss` where the held-out
  split evaluated every epoch is called test); one fit per file;
- `lightning-csv` as in `build_raw.py` (an epoch-level column) and `lightning-csv-steps` as in
  `build_raw5.py` (a training loss logged per step only: the epoch's mean of its logged steps);
- `tensorboard`: a Keras `TensorBoard` folder (`train/` and `validation/` sub-runs, `epoch_loss`),
  one fit per `fit()` that reused the folder;
- `trainer-state`: an "epoch" is an evaluation, its training loss the one logged last at or
  before it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import MIN_EPOCHS  # noqa: E402
from build_raw import _event_fits, _git, _id, _keras_fits, _write, apply_override, replace_split  # noqa: E402
from build_raw5 import _fits, _same_start, _sweep_fits  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-7"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-7 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "diegoartea-analisisdeta-modelo-trainer-state-json": (
        "overfitting",
        3,
        "rule 2 misreads the Trainer's training loss: each evaluation's training loss is the mean of the last "
        "logging_steps = 10 of its 542 steps (80 examples), jittering 0.0003-0.18 once the model fits "
        "(0.0008, 0.1774, 0.0004, 0.0962, ...), which rule 2 reads as an explosion above the first evaluation's "
        "0.1548; the run's first logged loss is 0.6836 (step 10) and no logged loss comes near it again. "
        "Read without that jitter, rule 4 applies: validation minimum 0.1567 at epoch 3 (the author's own "
        "best_metric, checkpoint-1626), the last 3 epochs 42% above it, training loss 0.0003 at the end",
    ),
}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
LOSSES = ("loss", "val_loss")
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # Keras CSVLogger files (find_files `training_log.csv`)
    (
        "ADITHYADEV2005/Aionos-Diagonostic",
        "46c16d7ae868f3dba96a650f198661f9e1831b4c",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "AVINASHGK16/Multimodal-deepfake-detector",
        "ff7f1a7131034ab7bfa839fbe42f7db64a6732ec",
        "training_log.csv",
        "keras-csv",
        LOSSES,
    ),
    ("Akshat2735/Minor-Project", "dad5ad79dd9b9f346853ed1199f89bd400583148", "training_log.csv", "keras-csv", KERAS),
    (
        "AndreyPrado/Pronostico_Caudales_Extremos",
        "5bc474ec104168937254da794a20e46c13954e7d",
        "training_log.csv",
        "keras-csv",
        LOSSES,
    ),
    (
        "AnggaMarcelio/english-javanese-lstm-attention",
        "c3df53b71c3f03095585df164f3b9a89f462a0af",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "AnnaKompan/multimodal_action-emotion_detection",
        "b4165a1bbc00ce075036618beaa272f48f5a9773",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    ("Arelvee/Solar-Optimization", "b37e17415f2ac34f39aa2b36e79858d43b2e7d80", "training_log.csv", "keras-csv", LOSSES),
    ("ArjunPesaru/DS5220_project", "aa7463f366a75c96a8ad7b43b01bf71f4a3dd4c3", "training_log.csv", "keras-csv", LOSSES),
    ("Batu-end/4cast2", "4a2592d7eec2dd6532392b4633ac5dd5aee3e2e4", "training_log.csv", "keras-csv", LOSSES),
    (
        "BenoitPierson/NLP_binary_classification",
        "2fb621c80c919f85144712e8b0c77f71fb89f73c",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "Cemputus/Knowledge-Engineering-Project",
        "6adb29a2963e34310375eb8986e00f5b1f31ec28",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    *(
        ("ChrisG32123/1DNumericalPDE", "052bf173e7fda2931e609d696b2707b50e253ce7", path, "keras-csv", LOSSES)
        for path in (
            "HDFT Paper/results/training_log.csv",
            "MSU Extension/OOP/HPCC/training_log.csv",
            "training_log.csv",
        )
    ),
    ("Coderamrish/Meenasetu", "f04cb38766c04fc94d3ed5fff477ca4148c07ad1", "training_log.csv", "keras-csv", KERAS),
    (
        "DanielLin94144/DM2020-Lab2-Homework",
        "c309b8c0bb0659d5f61972aeb330c6bf66e1f6fe",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "DylanSie/DM2024-Lab2-Homework",
        "289779d2f6f5e84d576bef3ee4faf64bb9863277",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "EbrahimAhmedDev/SignBridgeAi",
        "43c977b0090c332072fb568b9414ace88140cf8d",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    (
        "ElsanzioKE/deepfake-detector",
        "2e7495925482614b218a6b7d694cc4f47d4ff3bc",
        "training_log.csv",
        "keras-csv",
        KERAS,
    ),
    ("FarrisFoo/ai-mini-project", "559f1fea071541e71acc44f67e937291aef3de3a", "training_log.csv", "keras-csv", KERAS),
    # the same repository's Keras TensorBoard folder (train/ and validation/, one fit per fit())
    (
        "AndreyPrado/Pronostico_Caudales_Extremos",
        "5bc474ec104168937254da794a20e46c13954e7d",
        "logs",
        "tensorboard",
        ("train/epoch_loss", "validation/epoch_loss"),
    ),
    # hand-written per-epoch CSVs (find_files `training_log.csv`; `training_history.csv` beside a
    # Lightning project)
    (
        "1Yangone1/DSC-SE-LightNet",
        "b969a63e4859d14d84760aa8f4556fab028281ae",
        "training_log.csv",
        "keras-history-csv",
        ("train_loss", "test_loss", "train_acc", "test_acc"),
    ),
    (
        "AgungAryansyah/project-intern-kc",
        "d7b0b7efe408d8233509ed2ad7b4f8ad5aa1a966",
        "training_log.csv",
        "keras-history-csv",
        ("train_loss", "val_loss", "train_accuracy", "val_accuracy"),
    ),
    (
        "Alikrnc/Temporal-Link-Prediction",
        "4af8e1f5dd155ddebceef158eb6106e7ce684d7c",
        "training_log.csv",
        "keras-history-csv",
        ("train_loss", "val_loss", "train_acc", "val_acc"),
    ),
    *(
        (
            "Dewey-Wang/HEVisum",
            "42072bf0828102f8087977368e6c0c71442b1c82",
            f"output_folder/fold{k}/training_log.csv",
            "keras-history-csv",
            ("TrainLoss", "ValLoss"),
        )
        for k in range(6)
    ),
    (
        "Eason215xB/MTL_kary",
        "58292a13d40ce2864660a2ee24d76be273c92534",
        "training_log.csv",
        "keras-history-csv",
        ("TrainLoss", "ValLoss"),
    ),
    # `pd.DataFrame(history.history).to_csv(index=False)`: Keras names, no epoch column
    (
        "ElectronicXX/drowsiness-detection-ai",
        "56fefb71b59533e9f96e4ada499773aa8329358e",
        "training_log.csv",
        "keras-history-csv",
        KERAS,
    ),
    # no epoch column, a space after each comma of the header
    (
        "ChengSashankh/trying-GAT",
        "98c43ec263fb68661814dbbabde9e360a130b1b6",
        "training_log.csv",
        "keras-history-csv",
        ("training_loss", " val_loss", " training_acc", " val_acc"),
    ),
    # two models' fits in one file, each from epoch 1 (a `model` column names it)
    (
        "Devbiradar/Betel-Capstone",
        "eeff458f04263cc642ed58eb3eaddd98fb5bb0a0",
        "training_log.csv",
        "sweep-csv-epoch",
        ("train_loss", "val_loss", "train_acc", "val_acc"),
    ),
    (
        "BesT1CooKie1/nn_oedometer",
        "2be9fc1000f5cb6e2cf3d79afacd9fc3015dfa3c",
        "oedo-viewer/viewer_data/training_history.csv",
        "keras-history-csv",
        ("train_mse", "val_mse"),
    ),
    # Lightning CSVLogger (find_files `lightning_logs/version_0/metrics.csv`)
    *(
        (
            "0Xero7/slm_training",
            "cb220b2f9bc7abbec75899387fb674ce8b015696",
            f"lightning_logs/version_{v}/metrics.csv",
            "lightning-csv",
            ("train_loss_epoch", "val_loss"),
        )
        for v in (0, 5)
    ),
    *(
        (
            "10wins13/ISL-Python",
            "107cb98648f5b9ab663bb080786901562bbe9a50",
            path,
            "lightning-csv",
            ("train_loss", "valid_loss"),
        )
        for path in (
            "lightning_logs/version_0/metrics.csv",
            "lightning_logs/version_1/metrics.csv",
            "logs/default/version_2/metrics.csv",
            "logs/default/version_3/metrics.csv",
        )
    ),
    (
        "AfonsoCosta6748/FAP2",
        "67913e04a7d58416f3ce98c496e960f9f6985169",
        "lightning_logs/version_0/metrics.csv",
        "lightning-csv-steps",
        ("train_loss", "val_loss", "", "val_acc"),
    ),
    (
        "CaueSantos1812/Metal-Organic-Prediction",
        "0c2c829d931fb6739107739bf1f37a9b213c81c0",
        "lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("loss", "val_loss"),
    ),
    (
        "Cheng-JY/BachelorProjekt",
        "6bd7f35a3260de5b9fdc7239643c078954a5a5cf",
        "CNN/output/lightning_logs/version_2/metrics.csv",
        "lightning-csv",
        ("train_loss_epoch", "test_loss", "train_acc_step_epoch", "test_acc"),
    ),
    *(
        (
            "Cloudduoduo/SML_Project1",
            "bed3bed890666921e0724cdc2035c87fecce2a18",
            f"lightning_logs/version_{v}/metrics.csv",
            "lightning-csv-steps",
            ("train_loss", "val_loss"),
        )
        for v in (0, 1)
    ),
    *(
        (
            "ComicDeath/MLP_FPS",
            "cddf7dc6b28e567ef6ea5237db961f5933692042",
            f"lightning_logs/version_{v}/metrics.csv",
            "lightning-csv-steps",
            ("train_loss", "val_loss"),
        )
        for v in (1, 2, 3, 4)
    ),
    *(
        (
            "Driemann/ml-aos",
            "80ac29e0734dfe6cd4d1a2aac32bf43fd793fbef",
            f"lightning_logs/version_{v}/metrics.csv",
            "lightning-csv-steps",
            ("train_loss", "val_loss"),
        )
        for v in (1, 2, 3, 4)
    ),
    (
        "Kleinschock/Gaze_Detection_Correction",
        "4fe082d7fc7e701b631fc1c63cf8f5b9d19d452a",
        "lightning_logs/version_0/metrics.csv",
        "lightning-csv",
        ("train_loss_epoch", "val_loss", "train_acc", "val_acc"),
    ),
    # Lightning TensorBoardLogger folders (`train/loss_epoch`, `val/loss`)
    *(
        (
            "DevTorch/genome-lab-project",
            "8bcff2e1cc677916c82f6bd01b4fa962c72791c3",
            f"lightning_logs/version_{v}",
            "tensorboard",
            ("train/loss_epoch", "val/loss", "train/acc_epoch", "val/acc"),
        )
        for v in (2, 3, 4, 5)
    ),
    # Hugging Face Trainer states (find_files `trainer_state.json`): an "epoch" is an evaluation
    (
        "Anitha1406/English_To_Colloquial_Telugu_Translation_model",
        "2967a72144e0365b3833271e6664fdecb881f90a",
        "trainer_state.json",
        "trainer-state",
        LOSSES,
    ),
    (
        "Dev-debasish-09/Nlp_Body_washdata",
        "c8caf0adc4fadebf3ab1d46bd820ae91d5cafecc",
        "trainer_state.json",
        "trainer-state",
        LOSSES,
    ),
    (
        "DiegoArteagaMendoza/AnalisisDeTacticasEnSoftwareClinicoUtilizandoCodeBERT",
        "5485cd5dac6e3e6b41b9cd8373ecc33b28d13217",
        "modelo/trainer_state.json",
        "trainer-state",
        LOSSES,
    ),
    (
        "DrAliya/NLP-SPAM-FRAUD-MULTITEXT-TWEETS",
        "628af16d58826082302adab0bda056f561e086b6",
        "trainer_state.json",
        "trainer-state",
        LOSSES,
    ),
    (
        "MaximilianoPona/image_classification_irrigation_systems",
        "70f5fc755866abad70ebb80d71a03195e60abd39",
        "trainer_state.json",
        "trainer-state",
        LOSSES,
    ),
]


def _fits7(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    if fmt == "keras-csv":
        try:
            text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
        except subprocess.CalledProcessError:
            return []
        return _keras_fits(text, columns)
    if fmt == "tensorboard":
        return _event_fits(gitdir, commit, path, columns)
    if fmt == "sweep-csv-epoch":
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
        return _sweep_fits(text, columns, epoch="epoch")
    return _fits(gitdir, commit, path, fmt, columns)


def main(argv: list[str]) -> int:
    root = Path(argv[0])
    out = HERE / "runs"
    rows: list[dict] = []
    per_repo: dict[str, int] = {}
    seen: list[tuple[str, ...]] = []
    for repo, commit, path, fmt, columns in SOURCES:
        fits = _fits7(str(root / repo.replace("/", "+") / "repo"), commit, path, fmt, columns)
        for k, fit in enumerate(fits, 1):
            if per_repo.get(repo, 0) >= MAX_PER_REPO:
                break
            # epochs holding both losses (Keras' CSVLogger writes `NA` for a value not logged that epoch)
            fit = [r for r in fit if r[0] and r[1] and "NA" not in (r[0], r[1])]
            key = tuple(f"{float(r[0]):.4g} {float(r[1]):.4g}" for r in fit)
            if len(fit) < MIN_EPOCHS or any(_same_start(key, other) for other in seen):
                continue
            seen.append(key)
            run_id = _id(repo, path, k, len(fits))
            row = _write(
                out,
                run_id,
                repo,
                path,
                commit,
                fmt.removesuffix("-steps").removesuffix("-epoch"),
                k if len(fits) > 1 else "",
                fit,
            )
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
