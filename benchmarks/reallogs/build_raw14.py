"""Adds the runs of split `held-out-14` to the corpus (issue 12, branch `corpus38`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message named,
turned into the corpus's per-epoch form and labelled by README.md's rules (rule 4b as amended from
held-out-12 on: `build.label(..., memorisation_from=2)`) before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw14.py MIRROR_ROOT   # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw13.py`: it rewrites the
`held-out-14` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw9.py`'s, through
its `build_split` (one run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant digits kept
once; at most `MAX_PER_REPO` runs of one repository, in the order listed), read without mlcheck (the `csv`
and `json` modules), relabelled with the amended 4b by `build_raw12._relabel`. Older builders are unchanged.

How the repositories were found: `find_files` on file names no split before had listed by:
`model_log.csv` (20 repositories), `epoch_results.csv` (10), `cnn_history.csv` (3), `history_log.csv` (24),
`learning_curves.csv` (6), `training_curves.csv` (2), `epoch_metrics.json` (3), `log_history.json` (11),
`losses.json` (42), `train_metrics.json` (15), `model_history_log.csv` (15), `keras_history.json` (1),
`fit_history.json` (1) and `lightning_logs/version_2/metrics.csv` (249; the index lists the first 100,
`0Xero7/...` to `ZoroX78/...`; taken in order up to `MichPrencipe/swin2sr`, the rest not read, for time).
Repositories taken in the listing's order, skipping every `owner/name` named in `manifest.csv`,
`sources.txt`, the `build_raw*.py` scripts, docs/, README.md, tests/, examples/ and the commit messages
(ThibaultDieudonne/Comments-and-Pictures-Classification, Tristan-Toye/spam-filter, 0Xero7/slm_training,
10sajan10/CS6994FinalProject, Awritrojit/AIOPS_learning_mnist, BesT1CooKie1/nn_oedometer, ComicDeath/MLP_FPS,
CooperBigFoot/CAMELS-CH, DevilMayHide/LSTM-BADE03_Assignment, DiogoFerreira7/LSTM-Implementation,
Driemann/ml-aos, Goreg12345/nlp2-probing-lms, Jordi6/pytorchLit15min,
ML-Ops-Burnsides-Bitches-Group-51/grape_vine_classification_group_51, Macro1027/Simple-Pendulum-PINN), and
every repository already in the snapshot store (`/work/.mirror`) when this split was started (it held none).
Left out where the store has no snapshot (Shehryarcheema/uav-aerial-object-classification,
JuD4Mo/images-model, jml94-back/puriosa_ai_study, kwonjun99/Furiosa-study__, Ahmed200644/Literature-Check,
hamzabl8r/modelSignTranslator- (over the limit), max-rasskazov/Citizen_science_EEG, Jan21/Krohn-Rhodes-RNN,
MLopsGroup74/MLopsProject, MNGARCIA085/Networking_Anomaly_Detection)
or over the 500 MiB limit (Alkha09/solarpaneldust-detect). Passed over unfetched by name, never by a curve:
GANs (karray/pathology_gan, Dariensg/TOAD-GAN, DominikFle/Conditional-WGAN-Solar-Generation), trading and
stock-market projects in `train_metrics.json`'s and `hist.csv`'s listings, deepmind-research and
JiaqianXie/OpenSTLPlus (size), the RAG/app/tracker names of `history_log.csv`'s, `log_history.json`'s and
`losses.json`'s listings (dashboards, bots, sport and game logs), `training.csv` (1,217 repositories, mostly
data sets: not read) and `hist.csv` (93, mostly histograms: not read).
A file was listed when its header or keys name a training and a validation (or every-epoch test) loss per
epoch; the files fetched and left out, read for their header, keys and row counts only: not a training log
(SX-Arnab/Intrusion-Detection-and-Prevention-System: network flows; ahmedas91/Kaggle_digits: predictions;
rsk20/Odor_Classification_Hybrid_Deep_Learning_App, alandresz/InternationPredict, skerr21/HousingPricePrediction,
corrieelston/house, catebros/ML-fundamentals-2025, wraphierdz/FP_MLxDM: model registries and final figures;
pavan3767/Project-AQI: a drift log; anujsoni9450/Agri-Vision-Final, hehaiwong/2022_CETM46A2,
Proplasma/SmartHomeRecognize: an app's history; zywczak/spam-detection-models-comparison: a scikit-learn
learning curve over training-set sizes; kuldeepbits24/...: one evaluation's ROC), no validation loss
(JeremiahGelb/All-That-Jazz, Iktaniyalol/NeuralNetworkColorizer, bytearchive/cs-653-project, dmarcondes/HSDNN,
rkn2/cnnBricks, sh-lee-010202/reveiw_analyze (an evaluation loss only), Muhammad-Kazim/... (training terms
only), Grog4r/... and MikeynJerry/... (one list of floats), the Lightning folders of Andreus00/WSDS,
David-Drexlin/VICReg-BarlowTwins-Ablation-Study, Dobaersch/PS-Texts_Asterius, GuangMoYi/SparseRecon,
HoseinNasiriShahraki/DeepLearning, KarelVeldkamp/VAE-MIRT-Missing), a training loss logged at a few epochs
only (GajdaMJ/AI-for-Chemistry-Project, Kiran261101/dental-xray-ai), fewer than 5 epochs
(Aamer98/MedUncertainty, Sandhya385/BERT-Multi-Class-Text-Classifier), curves without names
(PereteanuGeorge/distilled: lists under "1", "2", "3"), cross-validation folds (LuciaMellini/...), no
Lightning `metrics.csv` at the snapshot's head (AIRI-Institute/genrisk, AkilanManivannanak/Opendrivefm-1,
ChristianJzB/Projects, DarthDanAmesh/franforecast, Enderlogic/batch_effect, IDZorin/MLOps_SBT,
INSTIG8R/CIBM_Ariadne, InfectionMedicineProteomics/BINN-fork, Kirtan-lokadiya/news_recommendation_system,
Leonardo-Russo/macchinine, MakrisJr/Gaussian_MLP_Ensemble, MehmetDaskaya/lyric-alignment,
MichPrencipe/swin2sr), no such file in the snapshot's history (austinben/ECE470,
math869c/graph_representation_st457, SmallNub/bachelor-thesis, Shaychiuu/Paradime-NAMs,
tomginsberg/drone-tree-id, iug-htw/GPTAndPrejudice, fclairec/geometric-ifc), or a file that is not JSON
(EXOLAB-Intention/NN_Project). The curves were not looked at before the labels were committed (headers, keys,
row counts and epoch columns were read, for the columns and the fits).

Formats (manifest `format`):
- `keras-csv`: Keras `CSVLogger` files (`epoch` then the metrics in alphabetical order; `;`-separated ones
  read as `,`; one whose first line is a title, `model_history_log`, read from its second line; several fits
  appended to one file split where the epoch column falls back to its first value), accuracies copied where
  Keras names them (`accuracy`, `acc`, `categorical_accuracy`);
- `keras-history-csv`: per-epoch CSVs written by training scripts or pandas (`train_loss`/`val_loss`,
  `Train Loss`/`Test Loss`, a saved `History` frame without an epoch column): `build_raw10._appended_fits`;
- `sweep-csv`: one `;`-separated file eleven fits were written to one after the other (`model #`,
  `model name`, `trloss`, `val loss`, `epoch`): `build_raw5._sweep_fits` on `epoch`;
- `keras-history-json`: a dict of per-epoch lists saved as JSON: `build_raw12._history_fit`;
- `lightning-csv`: Lightning `CSVLogger` `metrics.csv` (`build_raw._lightning_epochs`: per epoch the last
  value written of each column, epochs holding both losses); `lightning-csv` read as `-steps` where the
  training loss is logged per step only (`build_raw5._lightning_step_epochs`: the mean of the epoch's logged
  steps; the manifest's `notes` say so).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_raw import _git, _keras_fits, _lightning_epochs  # noqa: E402
from build_raw5 import _lightning_step_epochs, _sweep_fits  # noqa: E402
from build_raw10 import _appended_fits  # noqa: E402
from build_raw12 import _history_fit, relabelled_split  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-14"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-14 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {
    **{
        run_id: (
            "ambiguous",
            None,
            "training loss below zero by its definition, not by a divergence: segmentation_models' "
            "DiceLoss(class_weights=...) is 1 - the class-weighted Dice score, and the weights are scikit-learn's "
            "'balanced' ones (compute_class_weight in the repository's notebook/script), which sum above 1; "
            "rule 2's 'a loss that cannot be negative' does not apply, and "
            "rules 4-5 compare relative changes that a loss crossing zero does not have: not scored",
        )
        for run_id in (
            "souvikuc-brain-tumor--epoch-results-csv-fit1",
            "souvikuc-brain-tumor--epoch-results-csv-fit3",
            "souvikuc-brain-tumor--epoch-results-csv-fit5",
            "souvikuc-sandstone-se-epoch-results-csv",
        )
    }
}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {}

K = "keras-csv"
H = "keras-history-csv"
SW = "sweep-csv"
J = "keras-history-json"
LC = "lightning-csv"
LCS = "lightning-csv-steps"
KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
ACC = ("loss", "val_loss", "acc", "val_acc")
KL = ("loss", "val_loss")
TV = ("train_loss", "val_loss")
ARTURO = "9cfb92fc35508266fba50cf821fd951b49e8ce21"
FARID = "165b0c4f135628845d164975fbb0e6dcd135c416"
FRANCISCO = "904b0f9ade4dc3e3338652c289b7b20327a3f2ae"
FT = ("finetuning/train_loss_epoch", "finetuning/val_loss")
GEORG = "20fc09cf3ea77650ac36e2c3eafbf1e5dae56766"
GIULIA = "4a5a0ced0cbf99b12c5d666f2d0a99ca84108f83"
IAN = "68adc53dab8d2f0326453f9707e2c0323da0bd2c"
STELLAR = "6125ad4a366871f5725cf96ef310a1274e8575c0"
HMM = "794b66a43b86f784609a03e00d23f2e2ae762f01"
EPOCH = ("train_loss_epoch", "val_loss")
RATOS = "ed15df4c37c8fe2b71f544837c4bcaa4ab6ed07b"
METER = "77694bf2afbbc1146ba4e192f21b1d7c0a77e412"
SPOTIFY = "f141dd39c69b263f7d8de6c667315022e67c6cf4"
# (repo, commit, path, format, columns: training loss, validation loss[, accuracy, validation accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `model_log.csv`, in the listing's order
    # image classification (a CNN), Keras CSVLogger
    ("AhmedKhairullah78/CNN-classification", "12fb17ed31932c6c731668daa8fe50b081cd9ec9", "model_log.csv", K, KERAS),
    # medical: brain-tumour MRI classification, a script's per-epoch CSV (`train_acc`/`val_acc` not copied)
    ("eyad6789/Brain-Tumor-Detection", "346aa41dc1d4ce64b3c4f42bad4bf025b95f4f68", "model_log.csv", H, TV),
    # behavioural cloning (steering-angle regression, MSE), Keras CSVLogger
    ("jonalzate/CarND-Behavioral-Cloning-P3", "83c6d3136a2c9e5eb87f4914bc908e0c619b5a25", "model_log.csv", K, KL),
    # music (instrument/genre classification), 50 epochs
    ("krishshah99615/Training-Music", "d6dbf34265d799d1fcd7e0fa5ad508f77429fccc", "model_log.csv", K, KERAS),
    # find_files `epoch_results.csv`, in the listing's order
    # medical segmentation (brain tumour, `iou_score`), several fits appended to one CSVLogger file
    ("souvikuc/Brain-tumor-detection", "1b6f850d766c444021c9500e3ab2f5594f03d254", "epoch_results.csv", K, KL),
    # sandstone micro-CT segmentation, 68 epochs
    ("souvikuc/Sandstone-segmentation", "0465a47b3d0dc89b6e067fec89db33651e5de773", "epoch_results.csv", K, KL),
    # medical: joint diabetic-retinopathy / macular-oedema grading, tested every epoch
    (
        "swatimishra02/Joint-DR-DME-Grading---CANet-Implementation",
        "5af09f9b0d382a9a0ea20d844955cf41e4125fe6",
        "epoch_results.csv",
        H,
        ("Train Loss", "Test Loss"),
    ),
    # find_files `cnn_history.csv`, in the listing's order
    # bird species (transfer learning), a saved History frame without an epoch column
    (
        "basaktamer/P-5-Indian-Bird-Species-Detection-CNN-Transfer-Learning",
        "381434a1d5741bb267e89d528bfeba6e2651b18d",
        "cnn_history.csv",
        H,
        KERAS,
    ),
    # find_files `learning_curves.csv`, in the listing's order
    # clothing-style regression: eleven dense models' fits in one `;`-separated file (the first 4 taken)
    (
        "dschappler/clothing_style_evaluator",
        "d6b8d2416d34f39453d66bc8f547d9b9669242fd",
        "learning_curves.csv",
        SW,
        ("trloss", "val loss"),
    ),
    # find_files `losses.json`, in the listing's order
    # a convolutional VAE on MNIST, 100 epochs
    ("RaniaMostafa0/vae-cnn-mnist", "e91da59245c6cde552b2ba8606b006f45d57d782", "losses.json", J, ("train", "val")),
    # BERT sentiment fine-tuning, 5 epochs
    (
        "surbhi-sahu/sentimentanalysis-bertbase",
        "88592897901053e146128a41767f52b239e4ed72",
        "losses.json",
        J,
        ("training_losses", "validation_losses"),
    ),
    # find_files `model_history_log.csv`, in the listing's order
    # a stock-price LSTM (`Percentage_Accuracy` not copied)
    (
        "Anshul-sh/Stock-Prediction-using-lstm",
        "10185d13f12ea7442aa7117f69055b81eb1162f2",
        "model_history_log.csv",
        K,
        KL,
    ),
    # yoga pose classification, 100 epochs
    ("Cawinchan/yogamirror", "7d50233ea709cc43e1f36a71b5facb8c4d946c10", "model_history_log.csv", K, ACC),
    # molecular docking score regression (`acc` of a regression not copied)
    (
        "FabianoMendonca/molecular-docking-with-deep-learning",
        "ffceb539b1dfb17d632f9ff6ac1604f9824361d9",
        "model_history_log.csv",
        K,
        KL,
    ),
    # Mars terrain segmentation (AI4Mars)
    (
        "Lidbey/AI4Mars",
        "bfed6db13ac43ef38cf0eea066283f6e490a7e4f",
        "model_history_log.csv",
        K,
        ("loss", "val_loss", "categorical_accuracy", "val_categorical_accuracy"),
    ),
    # spoken digits, a `;`-separated CSVLogger file under a title line
    (
        "ManuMollon261297/Speech-Digit-Detector",
        "14c20320eb6d137104c126d496c7e21343029a2e",
        "model_history_log.csv",
        K,
        KERAS,
    ),
    # distracted-driver images (State Farm)
    (
        "infinity052/Distracted-Driver-Detection",
        "84e1f583a6a49be49e685291baf77e2562aea3ca",
        "model_history_log.csv",
        K,
        ACC,
    ),
    # find_files `lightning_logs/version_2/metrics.csv`, in the listing's order; every version folder of the
    # snapshot's head in version order, the first 4 with 5 epochs or more holding both losses
    # process-data regression, 1,000 and 50-89 epochs
    ("ArturoLlorente/capgemini", ARTURO, "lightning_logs/version_1/metrics.csv", LC, EPOCH),
    ("ArturoLlorente/capgemini", ARTURO, "lightning_logs/version_2/metrics.csv", LC, EPOCH),
    ("ArturoLlorente/capgemini", ARTURO, "lightning_logs/version_35/metrics.csv", LC, EPOCH),
    ("ArturoLlorente/capgemini", ARTURO, "lightning_logs/version_37/metrics.csv", LC, EPOCH),
    # self-supervised pre-training's fine-tuning, 5 epochs
    ("FaridHashemian/SSL", FARID, "lightning_logs/version_2/metrics.csv", LC, EPOCH),
    ("FaridHashemian/SSL", FARID, "lightning_logs/version_3/metrics.csv", LC, EPOCH),
    # fine-tuning (`finetuning/` prefix), 5-10 epochs
    ("FranciscoREchevarria/Avance-5", FRANCISCO, "lightning_logs/version_3/metrics.csv", LC, FT),
    ("FranciscoREchevarria/Avance-5", FRANCISCO, "lightning_logs/version_12/metrics.csv", LC, FT),
    ("FranciscoREchevarria/Avance-5", FRANCISCO, "lightning_logs/version_15/metrics.csv", LC, FT),
    # EEG classification (BiLSTM, CNN), 33-334 epochs
    ("GeorgTenzing/EEG_Classification", GEORG, "logs/BiLSTMModel_withBase/version_0/metrics.csv", LC, EPOCH),
    ("GeorgTenzing/EEG_Classification", GEORG, "logs/BiLSTMModel_withBase/version_1/metrics.csv", LC, EPOCH),
    ("GeorgTenzing/EEG_Classification", GEORG, "logs/EEGClassifier/version_0/metrics.csv", LC, EPOCH),
    ("GeorgTenzing/EEG_Classification", GEORG, "logs/EEGClassifier/version_1/metrics.csv", LC, EPOCH),
    # 10 epochs; version 0 logs its training loss per step only
    ("GiuliaScarfia/DataScience", GIULIA, "lightning_logs/version_0/metrics.csv", LCS, TV),
    ("GiuliaScarfia/DataScience", GIULIA, "lightning_logs/version_2/metrics.csv", LC, EPOCH),
    # exoplanet light curves (classification), training loss per step only
    ("IanCarrasco/exoplanet-recognition", IAN, "lightning_logs/version_2/metrics.csv", LCS, TV),
    ("IanCarrasco/exoplanet-recognition", IAN, "lightning_logs/version_3/metrics.csv", LCS, TV),
    ("IanCarrasco/exoplanet-recognition", IAN, "lightning_logs/version_8/metrics.csv", LCS, TV),
    ("IanCarrasco/exoplanet-recognition", IAN, "lightning_logs/version_10/metrics.csv", LCS, TV),
    ("IanCarrasco/exoplanet-recognition", IAN, "lightning_logs/version_14/metrics.csv", LCS, TV),
    # stellar-parameter regression, 15-31 epochs
    ("InquisitorNova/StellarRegression", STELLAR, "lightning_logs/version_1/metrics.csv", LC, TV),
    ("InquisitorNova/StellarRegression", STELLAR, "lightning_logs/version_2/metrics.csv", LC, TV),
    ("InquisitorNova/StellarRegression", STELLAR, "lightning_logs/version_3/metrics.csv", LC, TV),
    ("InquisitorNova/StellarRegression", STELLAR, "lightning_logs/version_4/metrics.csv", LC, TV),
    # a neural hidden Markov model (sequences), 10-50 epochs
    ("JohnBBB42/Hidden_Markov_Miracles", HMM, "lightning_logs/version_7/metrics.csv", LC, EPOCH),
    ("JohnBBB42/Hidden_Markov_Miracles", HMM, "lightning_logs/version_8/metrics.csv", LC, EPOCH),
    ("JohnBBB42/Hidden_Markov_Miracles", HMM, "lightning_logs/version_9/metrics.csv", LC, EPOCH),
    ("JohnBBB42/Hidden_Markov_Miracles", HMM, "lightning_logs/version_10/metrics.csv", LC, EPOCH),
    # rat behaviour (video classification), 10 epochs, training loss per step only
    ("Lucas-023/ratos", RATOS, "lightning_logs/version_0/metrics.csv", LCS, TV),
    ("Lucas-023/ratos", RATOS, "lightning_logs/version_6/metrics.csv", LCS, TV),
    # electricity-meter forecasting, 9-50 epochs
    ("Maximi652/OpenMeter_Analysis", METER, "logs_csv/lightning_logs/version_0/metrics.csv", LC, EPOCH),
    ("Maximi652/OpenMeter_Analysis", METER, "logs_csv/lightning_logs/version_1/metrics.csv", LC, EPOCH),
    ("Maximi652/OpenMeter_Analysis", METER, "logs_csv/lightning_logs/version_3/metrics.csv", LC, EPOCH),
    ("Maximi652/OpenMeter_Analysis", METER, "logs_csv/lightning_logs/version_4/metrics.csv", LC, EPOCH),
    # music popularity / recommendation, 5-7 epochs
    (
        "McGill-MMA-EnterpriseAnalytics/Spotify-Music",
        SPOTIFY,
        "src/models/lightning_logs/version_2/metrics.csv",
        LC,
        EPOCH,
    ),
    (
        "McGill-MMA-EnterpriseAnalytics/Spotify-Music",
        SPOTIFY,
        "src/models/lightning_logs/version_4/metrics.csv",
        LC,
        EPOCH,
    ),
    (
        "McGill-MMA-EnterpriseAnalytics/Spotify-Music",
        SPOTIFY,
        "src/models/lightning_logs/version_5/metrics.csv",
        LC,
        EPOCH,
    ),
    (
        "McGill-MMA-EnterpriseAnalytics/Spotify-Music",
        SPOTIFY,
        "src/models/lightning_logs/version_9/metrics.csv",
        LC,
        EPOCH,
    ),
]


def _fits14(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []
    if fmt == J:
        return _history_fit(text, columns)
    if fmt == LC:
        return _lightning_epochs(text, columns)
    if fmt == LCS:
        return _lightning_step_epochs(text, columns)
    first, _, rest = text.partition("\n")
    if not any(sep in first for sep in ",;"):  # a title line above the header
        text, first = rest, rest.split("\n", 1)[0]
    if ";" in first and "," not in first:
        text = text.replace(";", ",")
    if fmt == K:
        return _keras_fits(text, columns)
    if fmt == SW:
        return _sweep_fits(text, columns, epoch="epoch")
    return _appended_fits(text, columns)


def main(argv: list[str]) -> int:
    relabelled_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits14)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
