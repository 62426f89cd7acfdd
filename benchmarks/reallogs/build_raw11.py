"""Adds the runs of split `held-out-11` to the corpus (issue 12, branch `corpus29`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message
named, turned into the corpus's per-epoch form and labelled by README.md's rules (`build.label`)
before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw11.py MIRROR_ROOT   # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw10.py`: it rewrites the
`held-out-11` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw9.py`'s,
through its `build_split` (one run per fit; epochs numbered 1.. in file order; values as written; runs
shorter than `build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4
significant digits kept once; at most `MAX_PER_REPO` runs of one repository, in the order listed; rows
whose training or validation loss is empty left out, so a log that evaluates every k steps gives one
point per evaluation), read without mlcheck (the `csv` module). Older builders are unchanged.

How the repositories were found: `find_files` on file names no split before had listed by:
`loss.csv` (192 repositories; the index lists the first 100, owners `0x2b...` to `e...`),
`learning_curve.csv` (17), `loss_curve.csv` (17), `train_val_loss.csv` (3), `epoch_metrics.csv` (7),
`training_curve.csv` (3), `epoch_losses.csv` (8) and `training_logs.csv` (62: most are Keras
`CSVLogger(separator=';')` files);
repositories taken in the listing's order, skipping every `owner/name` named in `manifest.csv`,
`sources.txt`, the `build_raw*.py` scripts, docs/, README.md and tests/, and every repository already in
the snapshot store (`/work/.mirror`) when this split was started; left out where the store has no
snapshot (Gio71220924/Fraud-Detection, sarathi-aiml/claims-forecast-small-data,
M-Abdullah-Ali-2468/urdu-questions-generator, tanishr008-star/Fish-Diseases_Detection) or it is over the
500 MiB limit (AymanDiego/DELIGHT, GuoooooJing/nasa-cloudstreet-image-classification, qsimeon/worm-graph).
Passed over unfetched by name, never by a curve: reinforcement-learning, game, GAN, trading, DVC/CML template
(`cml_dvc_case` and its copies), scraping and non-ML projects of each listing, and in the `loss.csv` listing,
whose first 100 the index lists (to `elleobrien/2_dvc`), 43 were read or fetched (dtungpka/visl-i3d's snapshot
holds no `loss.csv`) and 57 passed over by name: 0x2b3bfa0/breaking-test, AdrianHsu's two RL repositories,
Amir22010/dvcwithml, Asad-Ismail, Brickea, LinkaG, Nyerca, Skalis07, aravaioli96, chrismaral, davesteps,
elleobrien and Do-Khai (DVC/CML templates), Ashlie0/srlc, Bocklitz-Lab/chunk_twice_embed_once,
CWRU-AutonomousVehiclesLab, CharlesV-s-friend-Suleiman, Chen-chen680/StockAnalysis, Cheshmyar,
ClaudzTheEngineer, Cyletix, DowLucas, Frederikravnborg (CycleGAN), GabrielTalasso (federated), HibaFourati,
Hyukpyo-Hong (scraper), Imsanskar (Boltzmann machine), JackGittes, Janudis/Photo-SLAM, Jrad84, KAHANDA-LAB,
LeaoEduardo (pix2pix), MK040412, MikeyJL (stocks), NCU-DSA-111-1, Nhat-Thanh, Niraj-Bansal, PseudoKiwi,
Rodrigo-NB (spiking), Shengfeng233 and SnakeStars (PINNs), SpencerTSmith, Tanmay4440 (C++), Tsien, Vaibhi1235,
Wizard77-exe, WolfgangPhy, Zhiyan824, aabbcco, affective-brain-lab, akisen, ashwanigpt13, binodbhttr,
caogang/wgan-gp, chinmayabhyankar, dot-memento, for time or by name; the curves of none were seen; in
`training_logs.csv` the RL, chatbot/RAG and LLM-alignment ones (Abhishek-M-N/FDQT-...,
Albatrozx11/CARLA-Self-Driving-DDPG, BeyondWillJ/coco-text2image-ldm, ContraInfinito/ml-infrastart,
FCBayern1/FDI_RL_Panda, KeithAnshilo/Adaptive_Coordination_Plots, Kian76-IT/RAG_Medical_chatBot,
NeelayK/IISERpoly, NicholasCartaxo/melee-reinforce-actor-critic, PrimeCodeWhisperer/ml-agents,
VishalVCool/CGSS-PROJECT, WhittJS/RNN-Pretraining-Java, Zhekman/CyberSecurity-Analytics-MSP,
apollofps/Micrograd, lerrxws/donkey-rl, magthecheck/circ_opt, nhanhqq/LLMonVNSailor2,
nilachenari/GOT-HandOfTheKing-AI-Final-Project, peterbruegger137-byte/Pokemon_AI,
prudvireddy-git/assessment-for-internship, shodan2004/federated-kiosk-clean, vinayykkumar/SafetyEye-...,
vmadhuuu/Dynamic-Pricing, xcoas/car-parking-rl, zbs2004/LEO-RouteAI).
Where the file is gone from the newest commit, the last commit holding it is read.
A file was listed when its header names a training and a validation (or every-epoch test) loss; a file
without a header (BlackWingedKing/Recursive_Neural_Networks, JxdEngineer/Bridge_IS_MLP,
RyosukeTsumura/Anomaly-detection, Shandelier/Movenet-Research-Pipeline, HanSeokhyeon/..., Adam-Ousse/IN104,
seilna/Deep-RDD, Koucha02/ReCurve-NLG, adaming34/EECS-545-Audio-Upscaling, alchemy-lee/CS7319-Course-Project),
a training loss alone (ArjaanBuijk/CarND-Semantic-Segmentation, BeObm/scCGNet, Calx822/advanced_deep_learning,
Maple-NTF/MBLSTM, Tom-Bayz/Single-Shot-multibox-Detector, Virusxxxxxxx/LPRNet_Pytorch, adifire1/F1-...,
adopolis23/SWAD-Thesis-Final, backpropagator/Shakespeare-In-Your-Service, QZJGeorge/STATS507-Final-Project,
dwisdom0/llm_cryptography, Harish-Udayashankar/transformer-translator, Malfrmnsyhh/..., bennh/CV-Project,
krmahi/..., keepdevops/greenline_neuralnet, ggaoshen/graph_wavenet, AbhijayNair/Pothole-Analyzer,
AlexandraVanpaga/ner_and_relations_news_ru, Miguel0ps/MNIST_training, PinkyFishMHM/...), per-batch rows
(diwu1990/cs766, XianfuSUN/CNN, Zou-14/Retinex-DeCNN), a GAN's or a style transfer's losses
(daxborde/style-transformer, duhanlu/AML-project), a table that is not a training log (Aamil-Khan-Mahar/...,
AbeHandler/mimir, Luomin1993/..., NikStoyanov/HeatEqNeural, Projectors3000/..., Yang-Jiaxiang/...,
Muhammadjon-crypto/..., inachenyx/painClassify, icyjayd/sae-protein-design, Tristan-Toye/spam-filter,
zywczak/..., JeetWaral/AI-Flood-Predection, LikeADemonicMind/books_classification,
MatthewJeremiahBarnett/ScalingLawsTransfer, khrlimam/siamese.pytorch, NarimT/A5), a W&B export of many
runs' summary columns (kongwanbianjinyu/Neural-Collapse-For-Large-Number-of-Classes), one evaluation
(TYanglab-NTHU/HGRN), or fewer than 5 epochs (Darknight6039/final_project, Rxzh/temperature_forecast: listed
below, left out by `MIN_EPOCHS`), was not. The curves were not looked at before the list was closed (the
header and first rows of each file were read, for its columns, and its epoch column, for its fits).

Formats (manifest `format`):
- `keras-csv`: Keras `CSVLogger` files (`epoch` from 0; most written with `separator=';'`, read with
  `;` as the delimiter; `acc`/`val_acc` or `accuracy`/`val_accuracy` beside the losses);
- `keras-history-csv`: per-epoch CSVs written by the training script, with the author's names
  (`train_loss`/`val_loss`, `train`/`val` beside a pandas index, `Train Loss`/`Valid Loss`,
  `loss_train`-style names, `Train Losses`/`Test Losses`, `Training Loss`/`Validation Loss` every 250
  steps of a language model, `Train_MAE`/`Val_MAE` of a forecaster trained on MAE, a Keras history
  without an epoch column); accuracy columns are copied where both are logged as fractions (percent, as
  in sarthakvermaa's, serenazheng's and galihraihann's files, is not); a file that several runs appended
  to, or that holds several models' fits one after the other (its epoch column falling back), gives one
  run per fit (`build_raw10._appended_fits`);
- `keras-history-csv` also for satish-25-code's `training_logs.csv`: a Hugging Face `Trainer`'s
  `log_history` saved as CSV (`loss` rows every 500 steps, `eval_loss` rows once an epoch, a summary row):
  an "epoch" is an evaluation, its training loss the one logged last before it, as `trainer-state` is read
  (`_trainer_log_rows`).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_raw import _git, _keras_fits, replace_split  # noqa: E402
from build_raw9 import build_split  # noqa: E402
from build_raw10 import _appended_fits  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-11"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-11 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {
    "shuuchen-floorplan_si-epoch-losses-csv": "the U-Net's curves (`unet_epoch_train_loss`, `unet_epoch_val_loss`) "
    "of a file that also holds the siamese network's",
    "shuuchen-floorplan_si-epoch-losses-csv-epoch-losses": "the siamese network's curves (`sia_epoch_train_loss`, "
    "`sia_epoch_val_loss`) of the file the U-Net's run is read from",
    "zhoujiwhen-errors-300m-epoch-losses-csv": "`epoch_losses.csv` and `loss/epoch_losses.csv` of the same commit "
    "repeat this file's first epochs (446 and 373 rows): left out as repeats",
    "likhitha31-yoga_pose_de-training-logs-csv": "prashant3110/yoga-pose-classification commits the same file "
    "(the same values): left out as a repeat",
    "viivienn-image_classi-models-model-2-training-logs-csv": "models/Model_3's file repeats this one's values: "
    "left out as a repeat",
    "satish-25--english-nepa-training-logs-csv": "a Trainer's log_history saved as CSV: an epoch is an evaluation, "
    "its training loss the one logged last before it (every 500 steps)",
    "chanjbc-janelm-assets-loss-csv": "one row per evaluation, every 250 steps (`Epoch` holds the step)",
    "hdong026-spectra-loss-curve-csv": "the model is trained on MAE (`Train_MAE`, `Val_MAE`)",
    **{
        f"kuangxiaok-ee6483_proje-training-logs-csv-fit{k}": "the file holds seven fits one after the other "
        "(a CNN without dropout on Cats vs Dogs; a CNN with dropout and early stopping, ViT and GoogLeNet, each on "
        "Cats vs Dogs and CIFAR-10), the first four taken"
        for k in (1, 2, 3, 4)
    },
    **{
        f"serenazhen-asl-hand-ges-training-logs-csv-fit{k}": "a sweep of 120 fits (of 10, 15 and 30 "
        "epochs) appended to one file, the first four taken"
        for k in (1, 2, 3, 4)
    },
}

KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
ACC = ("loss", "val_loss", "acc", "val_acc")
TV = ("train_loss", "val_loss")
TVL = ("Training Loss", "Validation Loss")
K = "keras-csv"
H = "keras-history-csv"
HF = "trainer-log-csv"  # a keras-history-csv holding a Trainer's log_history
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `loss.csv`, in the listing's order
    *(
        ("F10rian/Flora_and_Fauna_CNN_Classificatrion", "f43a4082aa5e59b6a2a507f5264208c38f7bdee7", p, H, TV)
        for p in (
            "70_split/loss.csv",
            "80_split/loss.csv",
            "normal_training/loss.csv",
            "training_with_augmentation/loss.csv",
        )
    ),
    # a pandas index column, then `train`, `val`
    ("KKate1/raw_image_processing", "2e735cde39ef112580720ebd6f81ca2506bdcb12", "loss.csv", H, ("train", "val")),
    # text (value detection): `F1 Score`, `Precision`, `Recall` beside the losses
    (
        "ZifanLee/Human-value-detection",
        "81fb3f08cc6ba78ff5507de9073b8636e8abd010",
        "loss.csv",
        H,
        ("Train Loss", "Valid Loss"),
    ),
    # atmospheric chemistry emulator
    ("afahadabdullah/NN_GEOSchem", "b6738f9f0d0f29380c72800c30afa6a8a49b6c74", "loss.csv", H, TV),
    # banking transactions generator (a Keras history without an epoch column)
    ("Hamideh-Mehri/Banksformer", "61ee64c2ed3f3d92d1d85b294a89471c250c1518", "loss.csv", H, ("loss", "val_loss")),
    ("Riku0370/AI_judge", "0ae04ce9dcf54ced9bd1bec1b5ed45e4f1c0aa56", "loss.csv", H, TV),
    # protein-ligand affinity regression, tested every epoch
    (
        "ZzzzzzzSkyward/MultiModalityProteinLigandAffinity",
        "07e6eb95d3dccb1fe491f0b02518866ba24860f3",
        "loss.csv",
        H,
        ("Train Losses", "Test Losses"),
    ),
    # a small language model evaluated every 250 steps (`Epoch` holds the step)
    ("chanjbc/JaneLM", "ce863dee5002aeb95fd75bb57f10f4ca5306eb90", "assets/loss.csv", H, TVL),
    # find_files `learning_curve.csv`, in the listing's order (accuracies in percent: not copied)
    ("galihraihann/TemuBatik", "3cc918302e8ede4cd90c7f03c14a1de15e344e4d", "learning_curve.csv", H, TVL),
    # a chatbot's LSTM (no epoch column)
    ("jckuri/LSTM_Homehelper_Chatbot", "25580840576c5217a52b002ff01a864d166ace60", "learning_curve.csv", H, TVL),
    ("s29602-pj/KNO-CW", "6b8273b47de6dfd98858e9343f384efc5de369f0", "learning_curve.csv", H, KERAS),
    # visual question answering (BLIP fine-tune)
    (
        "slinusc/path-vqa-blip",
        "92260ac9cf75c9110eaac202e1a5fed78d528868",
        "results/learning_curve.csv",
        H,
        ("train_loss", "validation_loss"),
    ),
    # find_files `loss_curve.csv`: a forecaster trained on MAE (`Test_MAE` beside it)
    ("hdong026/SPECTRA", "2d7dae52f2342e1b37c8ba31859bfcb328f2633f", "loss_curve.csv", H, ("Train_MAE", "Val_MAE")),
    # find_files `train_val_loss.csv`: 2,001 epochs (a civil-engineering regression)
    ("elpis51613/civil", "4cc938ac8169c355c689772deefa3bfb55230d30", "train_val_loss.csv", H, TV),
    ("qianshangbushang/tc_rebuy", "7813f1100f916f2d21cd1b92e03ae7534dc8e942", "train_val_loss.csv", H, TV),
    # find_files `epoch_metrics.csv`: a 3-D segmentation with `Learning Rate` beside the losses
    (
        "myalageri22/Automated_Cardiovascular_Segmentation_for_Bioprinting_Project",
        "98f46c0d50e41af3f10c115ab346b76137de40c5",
        "extra_information/data_information/epoch_metrics.csv",
        H,
        TVL,
    ),
    # find_files `epoch_losses.csv`: floor-plan similarity, a U-Net and a siamese network trained together
    # (one file, two models' curves: two runs)
    *(
        ("shuuchen/floorplan_similarity", "6b5a91042a060ef11ef034967ebfcd0edd15afae", "epoch_losses.csv", H, cols)
        for cols in (
            ("unet_epoch_train_loss", "unet_epoch_val_loss"),
            ("sia_epoch_train_loss", "sia_epoch_val_loss"),
        )
    ),
    # self-supervised DINO-style pre-training (`total_loss` and `val_loss` beside its parts); three files
    *(
        ("zhoujiwhen/errors", "e9eba6396249f0fee62bb54404047f5608f9d628", p, H, ("total_loss", "val_loss"))
        for p in ("300M/epoch_losses.csv", "epoch_losses.csv", "loss/epoch_losses.csv")
    ),
    # find_files `training_logs.csv`, in the listing's order
    ("Antikpatel/Cat-Dog-CNN-Classifier", "f04a044ef3fdb0e656faf8f2f40436f7e6d49124", "training_logs.csv", K, ACC),
    (
        "Darknight6039/final_project",
        "aebc4a686e7fb89055b7007f15bd50bc785e4b13",
        "training_logs.csv",
        H,
        TVL,
    ),
    ("Eugenie-uv/CATorDOG", "fb2a11a142544ef03c68dbf6535ffcb0fe8e9cfa", "training_logs.csv", K, ACC),
    # seven fits one after the other (`Model`, `Dataset` columns; `Epoch` from 1 in each)
    (
        "Kuangxiaokao/EE6483_Project",
        "abbbc6175ff83ff4a17adf59f1cc00c82a495fc8",
        "training_logs.csv",
        H,
        ("Train Loss", "Validation Loss", "Train Accuracy", "Validation Accuracy"),
    ),
    ("Likhitha310/Yoga_pose_Detection", "65e9f52f92f1241ebbeb8f1d068bf95eb851c7f5", "training_logs.csv", K, KERAS),
    (
        "Nied11/Phishing-Detection-Deep_Learning",
        "744ad82fbc1264f890e678c7b6d78f60c0fd06f4",
        "training_logs.csv",
        H,
        ("Train Loss", "Val Loss", "Train Accuracy", "Val Accuracy"),
    ),
    (
        "Nivocoegi/NNDL_Project",
        "1d76fc3e7deac3af324b87170e92a0958740630e",
        "Runs/250506_Model-Summary_conv4_lin3_ep50_lr0.001/training_logs.csv",
        H,
        ("train_loss", "val_loss", "train_accuracy", "val_accuracy"),
    ),
    # Arabic next-word prediction
    (
        "RamiIbrahim2002/ArabicPerdictor",
        "18f1e317f95c6bf08563033c2742ecc3cf04f1b5",
        "training_logs.csv",
        H,
        ("training_loss", "validation_loss", "training_accuracy", "validation_accuracy"),
    ),
    # a VAE-GAN temperature forecaster (4 epochs)
    ("Rxzh/temperature_forecast", "6a9e383c52b7004315e86072062372178ddf450e", "training_logs.csv", H, TV),
    ("aakankshamalhotra/covid_detection", "341a09ac6c6b607ea30c8180e4bc1c5da1f05a45", "training_logs.csv", K, KERAS),
    ("aamseek/image-classifier", "39671db1a4f080dbbfecf3b8b2887a21855db06d", "training_logs.csv", K, KERAS),
    ("afrana21/VAEs", "792c0f18cc7fd21dc930e55fad8a518905cd8350", "training_logs.csv", H, TV),
    ("ardianzzz666/KlasifierIkan", "9bcd69ee16543edd79ab9683cac6a067630de94e", "training_logs.csv", K, KERAS),
    (
        "draperkm/CNN_for_digit_recognition",
        "3c3f6864725a9d5d91e28b90cfa23a04e52b7c26",
        "docs/training_logs.csv",
        K,
        KERAS,
    ),
    ("jskim062/tensorfflow_Classification", "16edd9bb5de2504c570dc76082977109d77c051d", "training_logs.csv", K, ACC),
    ("mornville/MNIST_Digit_Recognizer", "5fe6de85286ba57e39c9b57153eb8e3fa910e8e5", "training_logs.csv", K, KERAS),
    # the same values as Likhitha310's file (a copy of one run): left out as a repeat
    (
        "prashant3110/yoga-pose-classification",
        "0a2c03881d23d3f82a04613525837e29d5026970",
        "training_logs.csv",
        K,
        KERAS,
    ),
    (
        "salehbeda41/histopathologic_cancer_detector",
        "a215c75d9b500c87b4cf61af0cdb5853f304075e",
        "Documentation & Logs/training_logs.csv",
        K,
        KERAS,
    ),
    (
        "sarthakvermaa/WCE-curated-colon-disease-classification",
        "63e54f8de06c58bdcb655ce1dabf5e33707806ff",
        "training_logs.csv",
        H,
        ("Train Loss", "Validation Loss"),
    ),
    # English-Nepali translation: a Trainer's log_history as CSV
    (
        "satish-25-code/English-Nepali-NMT",
        "1c2c25826e2000a19c86f12d3fc79c2dcc38cbfc",
        "training_logs.csv",
        HF,
        ("loss", "eval_loss"),
    ),
    ("satwik-math/TransVision", "7a428febae6c00e483c2b02ade11f2dfc668d9c2", "training_logs.csv", K, KERAS),
    # American Sign Language: a sweep of 120 fits appended to one file (accuracies in percent)
    (
        "serenazheng/ASL-Hand-Gesture-Recognition",
        "4373581b8d0219b84b8d138267b891ce36c763d7",
        "training_logs.csv",
        H,
        ("Train Loss", "Val Loss"),
    ),
    ("shibshib/Pruning-Sandbox", "49ec17fa92eb5ad95cf981ce27a42dd7629a010c", "training_logs.csv", K, KERAS),
    *(
        ("viivienn/Image_Classifier_Cats_Dogs", "30d043d9bad6eef564308d46dd8c9b9e49d8331d", p, K, ACC)
        for p in (
            "training_logs.csv",
            "models/Model_1/training_logs.csv",
            "models/Model_2/training_logs.csv",
            "models/Model_3/training_logs.csv",
        )
    ),
]


def _trainer_log_rows(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit from a Trainer's `log_history` saved as CSV: per evaluation (a row with `eval_loss`), the
    training loss logged last at or before its step; the end-of-run summary row (`train_runtime`) left
    out, as `build_raw._trainer_state_rows` reads `trainer_state.json`."""
    loss, val = columns
    rows, train = [], None
    entries = [r for r in csv.DictReader(text.splitlines()) if not (r.get("train_runtime") or "").strip()]
    for row in sorted(entries, key=lambda r: (float(r.get("step") or 0), bool((r.get(val) or "").strip()))):
        if (row.get(loss) or "").strip():
            train = row[loss].strip()
        if (row.get(val) or "").strip() and train is not None:
            rows.append((train, row[val].strip()))
    return [rows]


def _fits11(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []
    header = text.split("\n", 1)[0]
    if ";" in header and "," not in header:
        text = text.replace(";", ",")
    if fmt == K:
        return _keras_fits(text, columns)
    if fmt == HF:
        return _trainer_log_rows(text, columns)
    return _appended_fits(text, columns)


def main(argv: list[str]) -> int:
    rows = build_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits11)
    for row in rows:  # the manifest names the file's format; HF is how it is read
        if row["format"] == HF:
            row["format"] = H
    replace_split(rows, SPLIT, refuse_clashes=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
