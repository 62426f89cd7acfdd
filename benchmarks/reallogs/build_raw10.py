"""Adds the runs of split `held-out-10` to the corpus (issue 12, branch `corpus26`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message
named, turned into the corpus's per-epoch form and labelled by README.md's rules (`build.label`)
before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw10.py MIRROR_ROOT   # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw9.py`: it rewrites the
`held-out-10` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw9.py`'s, through
its `build_split` (one run per fit; epochs numbered 1.. in file order; values as written; runs shorter
than `build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant
digits kept once; at most `MAX_PER_REPO` runs of one repository, in the order listed; rows whose
training or validation loss is empty left out, so a file that validates every k-th epoch gives one
point per validation), read without mlcheck (the `csv` module). Older builders are unchanged.

How the repositories were found: `find_files` on file names no split before held-out-8 had listed by
(`losses.csv`, `loss_log.csv`, `epoch_log.csv`, `train_metrics.csv`) and on `train_log.csv` past the repositories
held-out-8 took from the same listing; repositories taken in the listing's order, skipping every
`owner/name` named in `manifest.csv`, `sources.txt`, the `build_raw*.py` scripts, docs/, README.md,
tests/ and `git log --all`, and every repository already in the snapshot store (`/work/.mirror`) when
this split was started; a repository was left out where the store has no snapshot
(harshil-jana/ClarVox, heroforurth/CNN_font_and_nofont, prajwal-tech/Electro-Optical-SAR-Binary-Change-
Detection, AKR-END/ANLP_A1, Rowninator/flashattention, mohanishlande024-png/Results) or it is over the
500 MiB limit (rashmi-raviprasad/springboard, rounakrajsurana/deep-learning-for-recognition,
jkuchtey/glaucoma). Passed over unfetched by name (every one named in README.md, held-out-10):
reinforcement-learning, game, GAN, diffusion and trading projects of each listing, and some others;
`history.json` was not used (its listing is mostly not training logs).
Where the file is gone from the newest commit, the last commit holding it is read.
A file was listed when it holds a training and a validation (or test, evaluated every epoch or every
k epochs) loss; a file without a header naming them (Dhw1233/rPPG_dataset, YHWmz/CV_DA,
kingkong135/paddy-da, w1018979952/PDF, koyappe/MyHAN, dhananjayece244/MTP, mengdie98's
`transfer_train_log.csv`), whose second column may be an accuracy (ReplikantMih/PyTorch: `loss_test`
0.807, 0.807, 0.809, ...), whose two loss columns are not named train and validation
(andyz422/CIFAR_CNN: `loss0`/`loss1`), a training loss alone, per-batch rows, a hyper-parameter table,
or fewer than 5 epochs, was not. The curves were not looked at before the list was closed (the
header and first row of each file were read, for its columns, and its epoch column, for its fits).

Formats (manifest `format`):
- `keras-csv`: Keras `CSVLogger` files (`epoch` from 0, `lr`, `auc`/`pr_auc` columns; one file that
  42 5-epoch fits appended to, its first 4 taken; one written with `;` as its delimiter);
- `keras-history-csv`: per-epoch CSVs written by the training script, with the author's names
  (`train_loss`/`val_loss`, `Train_loss`/`Val_loss`, `training_loss`/`testing_loss` beside a
  `learning_rate`, `train_total`/`val_total` beside `learning_rate`, `trainLoss`/`valLoss`,
  `train`/`valid`, `train loss`/`valid loss`, `Training Loss`/`Validation Loss`, `train_loss`/
  `val_mean_ce`, a header with a space after each comma); values written as PyTorch or TensorFlow
  tensor reprs (`tensor(3.1304, device='cuda:0', grad_fn=...)`, `tf.Tensor(960.0452, shape=(), ...)`)
  are read as the number inside (`_number`); a file with several rows per epoch (a step column) gives
  the epoch's last row (`_last_per_epoch`); a file that validates every 10th epoch gives one point per
  validation, its training loss that epoch's; a file that several runs appended to (its epoch
  column falling back to 1: four of them) gives one run per fit (`_appended_fits`).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_raw import _git, _keras_fits, replace_split  # noqa: E402
from build_raw9 import build_split  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-10"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-10 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    "mahootiha--surrounding_-losses-csv": (
        "healthy",
        None,
        "the loss is MSE minus SSIM (train_reconstruction.py `lossf`: `loss = mse_value - ssim_value`, SSIM "
        "up to 1), negative by construction, and negative from the first epoch (-4.39, validation -5.64): "
        "rule 2's clause on a loss that cannot be negative does not apply, and `build.label`'s `min(t) < 0` "
        "test called it divergence at epoch 101 of 100. Read without it: the training loss falls from -4.39 to "
        "-12.00 and the validation loss from -5.64 to -12.00, its lowest value among the last 3 epochs (rule 5)",
    ),
    "dhavvval-mlproject-losses-csv": (
        "ambiguous",
        None,
        "each row is the loss of one batch drawn from each set (CNNProject.ipynb: `x, y = v_dataloader1()`, "
        "`t_loss = empirical_risk(model, lossfn, x, y)`, the same from `v_dataloader2()` for `v_loss`), every "
        "20 iterations: per-batch noise (training 0.62-1.92 and validation 0.014-1.57 within the first 250 rows). "
        "Rule 2's 3x test fires on one batch at row 88 (1.92 against 0.62 before it) while the mean of each 250 "
        "rows falls steadily (0.88, 0.73, 0.67, ... 0.39); the rules, written for per-epoch means, do not read "
        "such a curve: ambiguous, not scored",
    ),
}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {
    "qianqing26-minivit-train-log-csv": "the training loss is a sum over batches (812 at epoch 1), the "
    "validation loss a mean (1.73): values as written",
    "fikalalif-fault-detect-train-log-csv": "epoch 1 written twice (the script appends), rows kept as written",
    "momna-wahe-vanilladecod-loss-log-csv": "epoch 11 written twice (the script appends), rows kept as written",
    "neehalshar-rbe549-s25-s-loss-log-csv": "epoch 100 written twice (a run resumed from its checkpoint), "
    "rows kept as written",
    **{
        f"dlwangsan-era5windreco-loss-log-csv-fit{k}": "the script appends to loss_log.csv: six runs from epoch 1 "
        "(100, 100, 26, 100, 17 and 2 epochs), the first four taken"
        for k in (1, 2, 3, 4)
    },
    **{
        f"chang3m4n-vit-loss-log-csv-fit{k}": "the file holds four runs from epoch 1 (3, 7, 50 and 20 epochs); "
        "the first is shorter than 5 epochs"
        for k in (2, 3, 4)
    },
}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
LOSSES = ("loss", "val_loss")
TV = ("train_loss", "val_loss")
K = "keras-csv"
H = "keras-history-csv"
T = "tensor-csv"  # a keras-history-csv whose values are tensor reprs
S = "steps-csv"  # a keras-history-csv with several rows per epoch
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `train_log.csv`, in the listing's order, past the repositories held-out-8 took
    ("Nhungnguyen217/ImageClassification", "f56954cac0036fc0b96ffce90a4b6048c0ea3eca", "train_log.csv", K, KERAS),
    # the training loss is a sum over batches, the validation loss a mean (values as written)
    ("QianQing26/MiniViT", "9785001c66331a860c5d49000149dca30d3f54ca", "train_log.csv", H, TV),
    (
        "Younes-Bouchouk/DeepLearningCNN_Traffic-Sign-Classification",
        "2e7521f4b8cc8b3bfc26c6861db6df9d7c70893c",
        "train_log.csv",
        K,
        KERAS,
    ),
    (
        "Wazhee/Image-Segmentation-with-BraTS",
        "ab263c69e74bdf7511e58725cd58ec7c52446bd4",
        "3D UNET Results/train_log.csv",
        H,
        TV,
    ),
    # Epoch 1..10, 15 rows an epoch (a `step` column): the epoch's last row
    (
        "aksagg88/CarND-Traffic-Sign-Classifier-Project",
        "2fe523323dbd40794169097bad157ce558e8d9eb",
        "train_log.csv",
        S,
        ("train_loss", "validation_loss"),
    ),
    (
        "andres-troiano/Multiclass-Text-Classification",
        "4d49dd8bbc82f3dba4a2de56d5873475e5a04cad",
        "train_log.csv",
        K,
        KERAS,
    ),
    (
        "dhruvkumar24-ai/6.-Advanced-Chest-X-Ray-Diagnostic-System",
        "69a15885f4e1be5f74b89577689e8be4ea30a259",
        "train_log.csv",
        K,
        KERAS,
    ),
    (
        "fikalalif/fault-detection-backend",
        "572a788016d431c2751a281368052e9c72675786",
        "train_log.csv",
        H,
        TV,
    ),
    # an emotion classifier trained 2000 epochs, validated every 10th
    *(
        ("haoweilou/EmoSpeech", "55ea0342e5bd1cd8e4f0aa0152a36efa1680ccd3", path, H, TV)
        for path in ("log/classifier/train_log.csv", "log/classifier/train_log_cnn.csv")
    ),
    (
        "hdl0909/classification-of-seeds-by-quality",
        "c411aa1ab341fb41fce977c228231ebbff9e759b",
        "train_log.csv",
        K,
        KERAS,
    ),
    ("kalihman/CarND-Behavioral-Cloning-P3", "f02f99bc8cac66867f0faf373684716eefe18e82", "train_log.csv", K, LOSSES),
    ("nawazishkhan1-nk/cs6353-project", "25a7f02669cdf0bea7f67d5fa2a7fa320e9c594b", "logs/train_log.csv", H, TV),
    ("partiid/Sign-recognition-AI", "78b8eeae73cc7eeb99116ba83f5f0e9bea4a1017", "train_log.csv", K, KERAS),
    (
        "pgifani/Multimodal-Brain-Tumor-Segmentation",
        "6859f91b39c2961ae929c45ef328e76de6f87c9e",
        "train_log.csv",
        H,
        TV,
    ),
    # grapheme-to-phoneme (`val_per`, `val_wacc` beside the losses)
    ("quincyhopper/g2p", "f200553d50817d36063dd3e6fefe9bd871475c2c", "train_log.csv", H, TV),
    (
        "ridhap/Mapping-and-Characterizing-CPIS",
        "7184fd08ddc0c28e6fd6c7d1fb5befa7d1800c61",
        "train_log.csv",
        H,
        ("trainLoss", "valLoss"),
    ),
    # a regression (`mean_absolute_error`)
    ("ritwizsinha/BTP", "e3c03d713100c08f0cb006f3eb19796f8f626259", "train_log.csv", K, LOSSES),
    # 42 fits of 5 epochs appended to one CSVLogger file (`auc` beside the loss)
    ("rvdorokhov/PhotoFilter", "4892a36ddffe596da07fda124699a28bd31fdda3", "train_log.csv", K, LOSSES),
    # `;` as the delimiter
    ("sashulyak/kfl_deepfake", "67bb5a8b25161c91d7693a7b708de142905f3fbf", "train_log.csv", K, LOSSES),
    # find_files `losses.csv`, in the listing's order
    (
        "Andrew-Linville/UNet-SNGP",
        "9201ca1f912aeb5b6667491283b86d61fbf9c7d7",
        "losses.csv",
        T,
        ("Train_loss", "Val_loss"),
    ),
    # a loss-surrogate regression with `learning_rate` (20,000 epochs) and an earlier 1,970-epoch run
    *(
        (
            "JonathanALevine/Capstone",
            commit,
            path,
            H,
            ("training_loss", "testing_loss"),
        )
        for commit, path in (
            ("65790a8b12b9b0db5774a20dc2a5ea1dc0f65716", "losses.csv"),
            ("42a2b4faa40b57a709d61989a68886db2c27516a", "training_losses.csv"),
        )
    ),
    (
        "JornEirikBetten/MA_IN5400",
        "c9006d34d9c081bc1a78b8949621d12b23089a2d",
        "losses.csv",
        H,
        ("training_loss", "validation_loss"),
    ),
    ("ksswd/weld_seg_project", "26440d732cbc4320ca9b77f2a7119439784802d5", "losses.csv", H, TV),
    # a survival model: its losses are negative from the first epoch (values as written)
    (
        "mahootiha-maryam/surrounding_prognosis",
        "d0fe175aae543f9033ba35aed8952c95d1d572b7",
        "losses.csv",
        H,
        ("Training Loss", "Validation Loss"),
    ),
    # chess position evaluation
    (
        "markrobertvandam/DL-ChessEval",
        "ec352a09b26b3af7bf880936bad647200e46a7ed",
        "losses.csv",
        H,
        ("train loss", "val loss"),
    ),
    (
        "misaelmmorales/Drone-Rock-Classification",
        "90e84f2a1dce85ca422300eaab02fa360eee6634",
        "losses.csv",
        H,
        ("train", "valid"),
    ),
    ("sayanmndl21/cnnlstm-oct", "80c40b966803591be747ae5f2d98d36360178399", "losses.csv", H, ("train", "valid")),
    (
        "valeriedaash/cv_project",
        "ad6aab774f829e6ee53adf40e215640318bb434f",
        "losses.csv",
        H,
        ("train loss", "valid loss"),
    ),
    # satellite image translation: four models' 100-epoch runs
    *(
        (
            "wawancenggoro/cnn_l8_s2",
            "4f7780a32f8a095f977788a5a2b7919520ac07b5",
            f"save/20200106/{name}/losses.csv",
            H,
            TV,
        )
        for name in ("sub", "submax", "trans", "transmax")
    ),
    # a forward-forward network beside a backprop one: the forward-forward losses (the backprop
    # training losses are written as lists)
    (
        "IsabelJnz/From-Back-Propagation-To-Forward-Forward",
        "62cd8730ddc7552632145bf6c6ba8a10ee145b67",
        "losses.csv",
        H,
        ("ff_train_losses", "ff_test_losses"),
    ),
    # one row per iteration: the loss of that iteration's training batch and the validation loss
    ("dhavvval/MLProject", "23a4154fad9c3fac997b52aa63225f40c43e0008", "losses.csv", H, ("t_loss", "v_loss")),
    # find_files `loss_log.csv`, in the listing's order
    # wind-field reconstruction (physics-informed: `data_loss`, `phys_loss` beside the losses)
    ("DLWangSan/ERA5WindRecon", "22cb7a2351f3315743a68de418d2989573675ab0", "loss_log.csv", H, TV),
    ("Momna-Waheed/VanillaDecoder", "939a8a1e73bfbd21ae2e7b974620d67d65b0da8a", "loss_log.csv", H, TV),
    # a character-level GPT: one row per evaluation (`step`)
    ("RoshaniPawar16/gpt-from-scratch", "245bd1c90c6fd50ae56df3dc2cbe80c0e6cddaee", "loss_log.csv", H, TV),
    # drug-target binding affinity (a GNN regression), tested every epoch
    (
        "VijayReddy0919/GNN-Based-Drug-Target-Binding-Affinity-Prediction",
        "29f5855ecd89d108215df07d5a1e52a653f5f09c",
        "loss_log.csv",
        H,
        ("Train_Loss", "Test_Loss"),
    ),
    ("chang3m4n/ViT", "1f760ed6ba0c673237795990f822d9a79ab8360c", "loss_log.csv", H, TV),
    # a YOLO-style detector, with and without augmentation
    *(
        (
            "cooler9190/Comp_Vis_Assignment_4",
            "e20a1e52699e7c1732ce42b355bdc2d2a73568ff",
            f"{name}/loss_log.csv",
            H,
            ("train_loss", "validation_loss"),
        )
        for name in ("augmentation", "no_augmentation")
    ),
    # a header with a space after each comma; epoch 100 written twice (a resumed run), rows kept as written
    (
        "neehalsharrma/RBE549-S25-S01",
        "157ab8c7e25069ba01e7a65b3d369af7bd05803e",
        "loss_log.csv",
        H,
        ("train_loss", " test_loss"),
    ),
    # inertial odometry, 800 epochs
    (
        "patrickctrf/multifrequency-odometry",
        "1e1537327df2b3f098c548333de54efe94dd7a54",
        "loss_log.csv",
        H,
        ("training_loss", "val_loss"),
    ),
    # super-resolution (`learning_rate` beside the losses): the total losses the model is trained on
    (
        "ruhalis/upscale-models",
        "de9c27fa29a955dcabf375afe3e8518a0381963e",
        "loss_log.csv",
        H,
        ("train_total", "val_total"),
    ),
    ("suhyeon-gwon/25_ai_final_project", "41f75f8a614f162f5ba366a18f86613551f9c4f7", "loss_log.csv", H, TV),
    (
        "yutan0565/EfficientDet_TensorFlow2",
        "86e315dad1b9842afa042d5f62dd425f9546791a",
        "loss_log.csv",
        T,
        ("train_loss", "valid_loss"),
    ),
    # find_files `train_metrics.csv` (most of its files hold training metrics alone)
    (
        "Jun-yong-lee/Visual-Anomaly-Detection-Classification",
        "f47b67bdcb51a5ef315c2404adbd276d7875da78",
        "train_metrics.csv",
        H,
        ("Train_Loss", "Val_Loss"),
    ),
    # find_files `epoch_log.csv`: next-token prediction (the validation loss is `val_mean_ce`)
    (
        "Sudipa45/bangla-braille-next-token-prediction",
        "394d4d55968decbb116aa8c42f44bc1cfa057d11",
        "epoch_log.csv",
        H,
        ("train_loss", "val_mean_ce"),
    ),
]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf", re.IGNORECASE)


def _number(cell: str) -> str:
    """The number a cell holds: the cell itself, or the first number inside a tensor repr
    (`tensor(3.1304, device='cuda:0')`, `tf.Tensor(960.0452, shape=(), dtype=float32)`)."""
    cell = cell.strip()
    if not cell or "(" not in cell:
        return cell
    found = _NUMBER.search(cell.split("(", 1)[1])
    return found.group(0) if found else ""


def _last_per_epoch(text: str, columns: tuple[str, ...], epoch: str = "Epoch") -> list[list[tuple[str, ...]]]:
    """One fit: per value of the epoch column (in file order), its last row."""
    last: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(text.splitlines()):
        last[row[epoch]] = row
    return [[tuple(row.get(c, "") for c in columns) for row in last.values()]]


def _appended_fits(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """Rows of each fit in a file that several runs appended to (a script opening its log with "a"):
    a new fit where the epoch column (`epoch`, `Epoch`, `ep`) falls below the row before it (an epoch
    written twice, a run resumed from its checkpoint, is kept in the fit); one fit without that column."""
    rows = list(csv.DictReader(text.splitlines()))
    key = next((k for k in (rows[0] if rows else {}) if k and k.strip().lower() in ("epoch", "ep")), None)
    fits: list[list[tuple[str, ...]]] = []
    before = None
    for row in rows:
        e = float(row[key]) if key and row[key].strip() else None
        if not fits or (e is not None and before is not None and e < before):
            fits.append([])
        before = e if e is not None else before
        fits[-1].append(tuple(row.get(c, "") for c in columns))
    return fits


def _fits10(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []
    if fmt == K:
        header = text.split("\n", 1)[0]
        if ";" in header and "," not in header:
            text = text.replace(";", ",")
        return _keras_fits(text, columns)
    if fmt == T:
        return [[tuple(_number(c) for c in r) for r in fit] for fit in _appended_fits(text, columns)]
    if fmt == S:
        return _last_per_epoch(text, columns)
    return _appended_fits(text, columns)


def main(argv: list[str]) -> int:
    rows = build_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits10)
    for row in rows:  # the manifest names the file's format; T and S are how it is read
        if row["format"] in (T, S):
            row["format"] = H
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
