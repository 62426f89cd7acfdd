"""Adds the runs of split `held-out-12` to the corpus (issue 12, branch `corpus32`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message
named, turned into the corpus's per-epoch form and labelled by README.md's rules before mlcheck is run
on any of them, with rule 4b as amended for held-out-12 on (the 10% training-loss floor measured against
epoch 2: `build.label(..., memorisation_from=2)`; README.md, "4b, from held-out-12 on").

    python benchmarks/reallogs/build_raw12.py MIRROR_ROOT   # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw11.py`: it rewrites the
`held-out-12` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw9.py`'s, through
its `build_split` (one run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant digits kept
once; at most `MAX_PER_REPO` runs of one repository, in the order listed; rows whose training or
validation loss is empty left out), read without mlcheck (the `csv` and `json` modules). Older builders
are unchanged; the labels `build_split` gives by the rules as first written are then replaced by the
amended 4b's (`_relabel`), and a run whose label the amendment changes says so in `notes`.

How the repositories were found: `find_files` on file names no split before had listed by:
`training_results.csv` (143 repositories; the index lists the first 100, `2026-hanyang-...` to
`italoaa/...`), `training_stats.csv` (41; the name the BERT fine-tuning tutorials save their per-epoch
table under) and `training_history.json` (579; the index lists the first 100, `065010-AmanMalhi/...` to
`JOSE-MDG/...`: Keras `History` dicts saved with `json.dump(history.history)`, and other per-epoch dicts and
lists; taken in the listing's order up to `Cass490/Qft-eeg`, for time). Repositories taken in the listing's
order, skipping every `owner/name` named in `manifest.csv`, `sources.txt`, the `build_raw*.py` scripts,
docs/, README.md, tests/ and the commit messages, and every repository already in the snapshot store
(`/work/.mirror`) when this split was started (An-Sadek/KHDL2211_DL); left out where the store has no
snapshot (Dnntello/Prodigy_ML_04, IwkooO/ai4mi_project_group8, ballsun1003/news_category_classification,
2023surajkumar-design/Knowledge-distillation, 2025-Gachon-capstone/Omni-GNN, 42Wor/aceflow,
AKANKSHASUBHASHPAWAR/product-image-classifier, AbdulkaderHelwan/Diff-EEG,
Anish-Shinde-1/AIDS-II-Siamese-CNN-for-Signature-Forgery-Detection) or it is over the 500 MiB limit
(IgorGMMazo/trabalho-redes-neurais, NickAllenov-DE/WB-ML-Photo-Classification,
Richard-Yan-UCB/datasci281_final_project, Kqvudp/KLTN-GSEDroid, Arunbalaji6768/DefectoScan).
Passed over unfetched by name, never by a curve: reinforcement-learning, game, trading, robotics-simulation,
chatbot and GAN projects of each listing (in `training_results.csv`'s: 2026-hanyang-embodied-ai/...,
20bhayward/5100-Final-Project (read: an RL reward log), 2273008/TA-DATASET-..., 25sal/anduel,
AkgunOnur/DroneSwarm_MotionPlanning, AllanGamal/stock-predictor-ML, Ankit-06679/Trading_using_LNNs,
Anophel/csgo-predictions, Ashisane/RLM-Based-MAS, Browochka/dvc, ChristineYamin/14_Emergency_RL_System,
DucDuc2004/Neural-Network-using-Cuda, Dx-Alz-xD/MeridianSOS, EDA-Teaching-RJH/..., GgbNnD/tankalg,
Irakoze-Hortance/deep-q-networks, John-Akech/Deep-Q-learning-With-Atari, Joshua-0922/Drone-Bombard-Simulation,
LupinBupin/Ethical-Autonomous-Driving-CARLA, MaryamEzat/... (SAS), MasonBeale/IR_Project2_COS470,
Meihaoshiwu/Moonlight, NamanKarki-nbk/Sales-forecasting, OmarGomaa27/survival-game, PrittoRuban/...,
QuantumCode2000/sap-ai, RealAI-RAI/safety-critical-rl, Rizama-Victor/..., SQUADRON-LEADER/PriceGenius-AI,
ShreeyaKalebere/POTHOLE, SurgeousJP/Titanic-MachineLearningKaggle, Tzu-YaoLin/EV2GYM-Master-Thesis,
Vinietta/praktika_mtusi_2026, Vwviper3/gesture_snake_game, abirtarchoun2/DataPreparation, ahmad-alpha/fyp,
anub-dota/flids, boombot11/diffuseMix-main, brtkpo/saliency-gan, buruzaemon/nextgen, daehan2yang/pacman,
derex-cmd/ccdm, edemdev7/Scrapping_Test, elmahsieh/LogisticRegressionTraining, fenix-hub/ai-for-automation,
flammarionick/Heimdall-FaceRecognition, giannisdaras/Celeste, gorelikroman/training-app, gothamza's three,
hapinza/..., hassanabrar2026-dot/SMILES-CORRECT, hazard3045/PyCatan, irk1/compressed-sensing,
isabeldelahiguera/tfm-ova-vs-multisalida, italoaa/Mnist-from-scratch: by name or for time; in
`training_stats.csv`'s the RL, game and bot ones: Kucze3205, Kurumi1102, Minionbtw, Not-Buddy/FerricSort,
TJwantsaB, Terabold's two, VedxntR18 (chatbot), ZackHiRo/SGAN-IDS (GAN), adamerikoff, bmaltais and dzaczek
(slbot), daesun06, francesco-fortunato (DQN), kfn-d0 (snake), praveenilango (for time), sabrine-aouimeur,
tobogranyte; in `training_history.json`'s BaochaiXue/AShareGPT (trading) and Beatrice0399/conntect4 (game)).
A file was listed when its keys or header name a training and a validation (or every-epoch test) loss; the
files that do not, read (keys or header and first rows) and left out: a table that is not a training log
(ALPilapil/baby_logic_lm, Aichai314/..., AthillaZaidan/spectral-genre, MiirHo3eIN's two, Muthuworkspace/...,
MohammadAlbaddawi98/..., ReedGAOOO/SDCN_DLAA, Time2Wall/NLPAdv, abdullahejazjanjua/FoD,
cookfishbro/SLDL-Miniproject1, danny-vo/EE460J-Kaggle (a grid search), edouardrolland/Plume_Detection,
SirrahErydya/LightfieldVAE, Mycsina/suecann (neuro-evolution fitness), YinYinPhyo/... (a message log),
AdamJ-3141/Dissertation (a genetic algorithm)), an accuracy or training loss alone
(AbdullahPogla/DL-Ball-Classification, DAIDASEN/Foundation-Model, Tarseus/VisCongnitiveProject,
MultiPrice/PytorchMetricLearning, Talha-Naveed/Markhor-Infyma, k7srivatsan/MoE,
lcesaratto/german-articles-correction, mwong009/bigdataTO,
AI-LAB-AGH/PSL-Translator, Cass490/Qft-eeg), evaluations alone (YanKarpov/little_language_model), no header
(Giovannicus/InferenceAPI, mpejcoch/dogbreed), per-step rows (mkan1/gpt-financial-analysis: an OpenAI
fine-tune's step table), cells written as Python lists (bperosa/Spotify), several runs interleaved row by row
(Aakashkumar-07/Semantic-Scene-Segmentation: epochs 1-15 of several runs mixed, not separable), an RL log
(ethanhmaness/cosc517finalproject, emdezla/Gloop), an empty file (EE347/lab-8-...), a file absent from the
snapshot (AleksanderAmid/EEN210-Digital-Health-P, AAP16403/Transition-state, AlexPT2k22/AI_SE2,
AliBavarchee/LOCP_i_project, Asmaathabet/..., Janny9114/..., JaxRaffnix/Neuronale-Netze,
YupengLing77/6000Qgroup_proj), or fewer than 5 epochs (CHAB-Sreylen/KhmerText_Line_Detection,
gmaurer08/FDS-Final-Project, antidianuj/toxity_ranker, AleenaTerasa/COVID-CNN-CLASSIFIER,
ByteBoss123/FEA-Thermal-Surrogate-: listed below where read, left out by `MIN_EPOCHS`). The curves were not
looked at before the labels were committed (the keys or header, list lengths and epoch column of each file
were read, for its columns and its fits; DFGANDP's, AbdullahPogla's, 20bhayward's, ALPilapil's and
Aakashkumar-07's files were shown whole by the index's `read_file` while the header was looked for).

Formats (manifest `format`):
- `keras-history-json`: a Keras `History` dict saved as JSON (`{"loss": [...], "val_loss": [...], ...}`;
  `learning_rate`/`lr` beside the losses in several; `accuracy`/`val_accuracy` copied, Keras' fractions), or
  another script's per-epoch dict of lists (`train_loss`/`val_loss`, `coil_train_losses`/`coil_val_losses`);
  one saved as a JSON string holding the dict's Python repr (Abhash-Chakraborty/AgroHealth); dicts holding two
  fits (`reg_*` and `cls_*` heads trained one after the other; a base fit and its `fine_tune_*` fit) give two
  runs; read as `mlcheck.analyze.history` reads it (`analyze` on the raw file);
- `trainer-log-json`: a Hugging Face `Trainer`'s `log_history` saved as a JSON list (AnnieSang): an "epoch"
  is an evaluation, its training loss the one logged last before it (`build_raw11._trainer_log_rows`' rule);
- `keras-csv`: a Keras `CSVLogger` file (camlaedtke/cityscapes_cv, `training_stats.csv` at an older commit);
- `keras-history-csv`: per-epoch CSVs written by training scripts (`train_loss`/`val_loss`,
  `Train Loss`/`Test Loss`, `Train Objective`/`Testing Objective`, `Training Loss`/`Valid. Loss` of the BERT
  tutorials' table, `TrainingLoss`/`ValidationLoss` beside `Model`/`Dataset` columns of eight fits one after
  the other, `train_loss`/`dev_loss` beside a pandas index, a Keras history without an epoch column);
  accuracies are not copied (their scale, fraction or percent, was not checked);
- `ultralytics-csv`: a YOLOv8 `results.csv` saved as `training_results.csv` (BhaveshMukheja): training and
  validation losses are the sums of the box, class and DFL losses, as `build_raw6.py` reads them.
"""

from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import label  # noqa: E402
from build_raw import _git, _keras_fits, apply_override, replace_split  # noqa: E402
from build_raw9 import build_split  # noqa: E402
from build_raw10 import _appended_fits  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-12"
MAX_PER_REPO = 4
MEMORISATION_FROM = 2  # rule 4b, from held-out-12 on: the 10% floor measured against epoch 2

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-12 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {
    "bhaveshmuk-btp-codes-training-results-csv": "a YOLOv8 results.csv: training and validation losses are the sums "
    "of the box, class and DFL losses",
    "onesn1pe-symbolicgpt-training-results-csv": "`original model details/training_results.csv` (b11049a) holds the "
    "same values: left out as a repeat",
    "00pjh-klue-bert-tu-training-stats-csv": "`klue-bert-tuning(torch)/training_stats.csv` (caf5aa1) holds the same "
    "values: left out as a repeat",
    "camlaedtke-cityscapes_c-training-stats-csv": "a Keras CSVLogger file, emptied by a later commit",
    "laasyaapra-lyriclab-training-stats-csv": "a row per evaluation (`sub_epoch`), `Learning Rate` beside the losses",
    **{
        f"metehanber-pretrained-e-training-stats-csv-fit{k}": "the file holds eight fits one after the other "
        "(`Model`, `Dataset` columns), the first four taken"
        for k in (1, 2, 3, 4)
    },
    "tomelf-rnn-pos-tagg-training-stats-csv": "1,000 epochs; emptied by a later commit, whose four per-rate files "
    "follow (the fourth, lstm_lr-0.5, left out by the 4-run cap)",
    "065010-ama-hdfc-lstm-pr-training-history-json": "the regression head's fit (`reg_loss`, `reg_val_loss`) of a "
    "dict that also holds the classification head's",
    "065010-ama-hdfc-lstm-pr-training-history-json-training-history": "the classification head's fit (`cls_loss`, "
    "`cls_val_loss`) of the dict the regression head's run is read from",
    "2303a52442-plant-nutrie-training-history-json": "the base fit of a dict that also holds its fine-tuning fit",
    "2303a52442-plant-nutrie-training-history-json-training-history": "the fine-tuning fit (`fine_tune_*`) that "
    "follows the base fit in the same dict",
    "abhash-cha-agrohealth-training-history-json": "a JSON string holding the History dict's Python repr",
    "anniesang-movie-sentim-training-history-json": "a Trainer's log_history saved as a JSON list: an epoch is an "
    "evaluation, its training loss the one logged last before it",
}

K = "keras-csv"
H = "keras-history-csv"
J = "keras-history-json"
HJ = "trainer-log-json"
Y = "ultralytics-csv"
KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
TV = ("train_loss", "val_loss")
TVL = ("Training Loss", "Valid. Loss")
# (repo, commit, path, format, columns: loss, val_loss[, accuracy, val_accuracy])
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `training_results.csv`, in the listing's order
    # YOLOv8 detection, 292 epochs (`lr/pg0..2` beside the losses)
    ("BhaveshMukheja/BTP-Codes", "fca3e3eb0a7a8a02b3278b68916f25701967d04e", "training_results.csv", Y, ()),
    # CAPTCHA rotation regression (no epoch column)
    (
        "DFGANDP/Rotnet-Captcha-Solver",
        "7390673b23396eaba37b305d3ae687607a87386e",
        "training_results.csv",
        H,
        ("Train Loss", "Test Loss"),
    ),
    (
        "FMayi/HW2_Deep_learning",
        "ab685c84b1d22862ec58201fd5b39b5f3120f6fd",
        "training_results.csv",
        H,
        ("Train Objective", "Testing Objective"),
    ),
    # symbolic regression with a GPT; the file at the root was removed later, its copy kept in a folder
    (
        "OneSn1pe/symbolicgpt",
        "e0e2b5b4264ff6356950a581957ce83e096ffe5a",
        "training_results.csv",
        H,
        ("Train Loss", "Validation Loss"),
    ),
    (
        "OneSn1pe/symbolicgpt",
        "b11049aaceff5720d24c9b3a7347c0b1ec35f281",
        "original model details/training_results.csv",
        H,
        ("Train Loss", "Validation Loss"),
    ),
    # medical: dysphagia diagnosis, tested every epoch
    (
        "SpriteWithoutIce/Dysphagia-Diagnostic",
        "0a6af62b1c16ead1fe30034860d34cab7915fb72",
        "training_results.csv",
        H,
        ("Train Loss", "Test Loss"),
    ),
    # medical: kidney-stone detection, 600 epochs
    (
        "aysshaalj/Automated-Kidney-Stone-Detection-",
        "dfc6c205a2c1efd8df122a614807eda7b400f6ae",
        "training_results.csv",
        H,
        TV,
    ),
    # satellite ship detection
    (
        "gabriel-n-carvalho/ship-detection-binary-classifier",
        "433ab4c40ec7225952c41c634c322b0989f290b2",
        "training_results.csv",
        H,
        TV,
    ),
    # find_files `training_stats.csv`, in the listing's order
    # Korean BERT (KLUE) fine-tuning: the tutorial's table, two copies
    ("00PJH/klue-bert-tunning", "fd341c25c2ec509db9ecbdb1cdc8b1632842a772", "training_stats.csv", H, TVL),
    (
        "00PJH/klue-bert-tunning",
        "caf5aa147b2815c9e0405a9ce0f29f7a0c599be3",
        "klue-bert-tuning(torch)/training_stats.csv",
        H,
        TVL,
    ),
    # EEG classification (no epoch column)
    ("SamuelJanas/eeg-alcoholics", "7dc8697ef4f3f74906ab08c2a1ff641bdc016188", "training_stats.csv", H, TV),
    # Cityscapes segmentation: a Keras CSVLogger file (`iou_macro_coef` beside the losses), gone from the newest commit
    ("camlaedtke/cityscapes_cv", "880885dfe9f84200730308e0e7f0d12c21bbea44", "training_stats.csv", K, KERAS),
    # lyrics generation (GPT-2 fine-tune): a row per sub-epoch, `Learning Rate` beside the losses
    ("laasyaaprasad/LyricLab", "f0411811a00a19d44541e12a3aaad960d623ded5", "training_stats.csv", H, TVL),
    # eight fits one after the other (`Model`, `Dataset` columns; `Epoch` from 1 in each)
    (
        "metehanberker1/pretrained-encoders-spurious-learning-analysis",
        "803586bb2c16d3f93d0b92cfe587b1d884850d68",
        "training_stats.csv",
        H,
        ("TrainingLoss", "ValidationLoss"),
    ),
    (
        "nithinprasad94/ENGG6600_DL_Final_Project",
        "bf9fd87d8559dda1e637d5546d920ca55e64c986",
        "training_stats.csv",
        H,
        TV,
    ),
    # a Keras history without an epoch column
    (
        "temkorsh-oss/Neuralnetwork",
        "c99692de297b158760d9bbce1062c4f0238ed644",
        "training_stats.csv",
        H,
        ("loss", "val_loss"),
    ),
    # part-of-speech tagging (LSTM, bi-LSTM; learning rates 0.1, 0.5), 100 to 1,000 epochs; a pandas index
    (
        "tomelf/RNN-POS-Tagger-TLE",
        "80c97fcaee89b80726ea9fc542269824ac949e7b",
        "training_stats.csv",
        H,
        ("train_loss", "dev_loss"),
    ),
    *(
        ("tomelf/RNN-POS-Tagger-TLE", "bf1c6f10b2bfb9516095f5158a1850c042de451d", p, H, ("train_loss", "dev_loss"))
        for p in (
            "bi-lstm_lr-0.1_training_stats.csv",
            "bi-lstm_lr-0.5_training_stats.csv",
            "lstm_lr-0.1_training_stats.csv",
            "lstm_lr-0.5_training_stats.csv",
        )
    ),
    # find_files `training_history.json`, in the listing's order
    # text sentiment
    (
        "065010-AmanMalhi/groww-sentiment-analyser",
        "02c72b7c4588b791ac7d18495eb39a1003ac811e",
        "training_history.json",
        J,
        KERAS,
    ),
    # a stock-price LSTM: a regression head, then a classification head (two fits)
    (
        "065010-AmanMalhi/hdfc-lstm-predictor",
        "9050de2f5fea16a8230930b3d63e8afed5a0aea6",
        "training_history.json",
        J,
        ("reg_loss", "reg_val_loss"),
    ),
    (
        "065010-AmanMalhi/hdfc-lstm-predictor",
        "9050de2f5fea16a8230930b3d63e8afed5a0aea6",
        "training_history.json",
        J,
        ("cls_loss", "cls_val_loss", "cls_accuracy", "cls_val_accuracy"),
    ),
    # a base fit and its fine-tuning fit (`fine_tune_*`)
    (
        "2303A52442/plant-nutrient-classifier",
        "c4c683951d9790460eaea2a53a99454efc718ff0",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "2303A52442/plant-nutrient-classifier",
        "c4c683951d9790460eaea2a53a99454efc718ff0",
        "training_history.json",
        J,
        ("fine_tune_loss", "fine_tune_val_loss", "fine_tune_accuracy", "fine_tune_val_accuracy"),
    ),
    (
        "7Sumant/Plant-Disease-Detection-System",
        "7b75efa10f0a64215dd5d9881273b935d0d4a055",
        "training_history.json",
        J,
        KERAS,
    ),
    ("96-Shivendra/deepfakeDetectIV", "563499aa5d40fa5a6dca35f2228d537f92d5076a", "training_history.json", J, KERAS),
    # the dict's Python repr saved as a JSON string
    ("Abhash-Chakraborty/AgroHealth", "92b03183ba00d0c79641133f6a37b4df434640b5", "training_history.json", J, KERAS),
    # near-accident driving scenarios (a CoIL imitation model's losses)
    (
        "AbhijnasriBS/Investigation-of-Near-accident-Car-driving-Scenario-ML",
        "42405657d9c4c3c36cf3fcc19592edf49154d3ec",
        "training_history.json",
        J,
        ("coil_train_losses", "coil_val_losses"),
    ),
    (
        "Abhishek-2027/AI-based-plant-disease-prediction-and-Consultation-",
        "2406d02845545fa5db6cc383c7b47ec4cf24293e",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "AbhishekGarg0507/Plant_Disease_prediction",
        "a6f0fae81733cfa6b4ea1fee72033572ce49bbf7",
        "training_history.json",
        J,
        KERAS,
    ),
    # a regression trained on MSE (`mae` beside it), satellite communication
    (
        "Aditya1265/sattelite_ai_communication",
        "4110e4ba387e286e91bbf09527670a8379cc143d",
        "training_history.json",
        J,
        ("loss", "val_loss"),
    ),
    ("Akshat-Raii/PlantShield", "4b19c3fad21f659728728b5c461fc63c623c64ef", "training_history.json", J, KERAS),
    # network intrusion detection (tabular)
    ("Akshath6060/sian-ids", "a2ed1c34d9c231e3fcd1593ca8442f8239c94fc6", "training_history.json", J, KERAS),
    (
        "AleenaTerasa/COVID-CNN-CLASSIFIER",
        "f8fcd2cfecbc9b211888f0b513ab324b34373008",
        "training_history.json",
        J,
        KERAS,
    ),
    # Armenian sentiment, 150 epochs with `learning_rate`
    ("AlenGevorgyan/ArSen", "8fe2954d71fcf34e2a96921e9ee2d6a373b52953", "training_history.json", J, TV),
    (
        "AlexMisra1/Coral-Anomaly-Detector",
        "fd355ed1a0e61aa3f8ba3d736ddc6a5ef9fac694",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "AlphaeusNg/Car-Type-Classification-Service",
        "b0116ac7f93fdfb66eaba2100690c1fcda2e2fe5",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "Aman001-creator/MobileNetV2-Model",
        "14b046db517cf2ed0321e9df90effc186230a8e9",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "Aman23000/Image-Classification-System-",
        "3914b46a5799758d2792c6b12727a67f78c3956f",
        "training_history.json",
        J,
        TV,
    ),
    ("Amd36/face_recognition", "bc4eec42351a9add994afd0de7323eb458123ce7", "training_history.json", J, KERAS),
    (
        "Anmol123433/Animal-Classification-100classes-",
        "c88a3fee93d681a4e785ea2e8b9553a7d7860b9b",
        "training_history.json",
        J,
        KERAS,
    ),
    # a Trainer's log_history as a JSON list (movie-review sentiment)
    (
        "AnnieSang/movie-sentiment-analyzer",
        "eb8181235e5b04431f37dd77ada9d836e1d7908a",
        "training_history.json",
        HJ,
        ("loss", "eval_loss"),
    ),
    # lip reading (video to text, CTC), `learning_rate` beside the losses
    (
        "AnshSareen/Deep-Learning-Based-Lip-Reading",
        "3984b2c6a14d8902ea7fe632d45c99e6eaba4267",
        "training_history.json",
        J,
        TV,
    ),
    ("AntarcBall/handwriting_classify", "6b292d7c94292588760fc13b4737e70334e8e3de", "training_history.json", J, TV),
    (
        "AntaresMugisho/MaizeDiseaseDetection",
        "06b5f4e0953e8fa59e989e07c7a452a2393ba431",
        "training_history.json",
        J,
        KERAS,
    ),
    # medical: brain-tumour MRI
    (
        "Anway-Kapoor/BrainTumorClassification",
        "cb2a696799626e2c4575b5eecf49ab0fd0993feb",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "ArijitDev001/Digit-Recognition-System",
        "f8c73a232b163dfcf008840d5d617c2beba34c95",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "Arsh-yusuf/AICTE-Internship-Potato-Project",
        "cbf734d63ca94069b39ad0cc6746601204d67127",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "Asthaasu/IESA-DeepTech-Hackathon-",
        "22ba8c0c1a51bf7eefc99669973248370a92d534",
        "training_history.json",
        J,
        KERAS,
    ),
    (
        "Ayush-Debnath/Plant-Disease-Recognition",
        "54da48b11f19c2fca693ddb92f0ee9dc99a323ae",
        "training_history.json",
        J,
        KERAS,
    ),
    ("BhavanaBaalebail/innovitus", "0222a5aa9824473bcb9099f0c4164b5367f228e3", "training_history.json", J, TV),
    # tabular: CNC milling tool wear
    (
        "Bhuvaneswari-DS/cnc_milling_final_projects",
        "c6290c04c9515ce83c67aa56017aa360919e1417",
        "training_history.json",
        J,
        KERAS,
    ),
    # a thermal-simulation surrogate (one epoch): left out by MIN_EPOCHS
    ("ByteBoss123/FEA-Thermal-Surrogate-", "e6658a5b3d830e1d23fcab7eeaa3eeba467b4929", "training_history.json", HJ, TV),
    ("Carnival02/Botaniq_Lens", "f74a976c344fd9661787d24c3162bccf14817c94", "training_history.json", J, KERAS),
]


def _history_fit(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit from a dict of per-epoch lists saved as JSON (or as a JSON string holding the dict's
    Python repr): the rows of `columns`, as long as the shortest of them; the accuracies only where
    both are there."""
    data = json.loads(text)
    if isinstance(data, str):
        data = ast.literal_eval(data)
    cols = [c for c in columns if isinstance(data.get(c), list)]
    if cols[:2] != list(columns[:2]):
        return []
    if len(cols) < 4:
        cols = cols[:2]
    n = min(len(data[c]) for c in cols)
    return [[tuple(repr(float(data[c][k])) for c in cols) for k in range(n)]]


def _trainer_log_json(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit from a `log_history` list (or a list of per-epoch dicts): per entry holding the validation
    loss, the training loss logged last at or before it (`build_raw11._trainer_log_rows`' rule)."""
    loss, val = columns
    rows, train = [], None
    for entry in json.loads(text):
        if entry.get(loss) is not None:
            train = repr(float(entry[loss]))
        if entry.get(val) is not None and train is not None:
            rows.append((train, repr(float(entry[val]))))
    return [rows]


def _ultralytics(text: str) -> list[list[tuple[str, ...]]]:
    """One fit from a YOLO `results.csv`: per epoch the sums of the `train/*_loss` and `val/*_loss`
    columns (box, class, DFL), as `build_raw6.py` reads them."""
    reader = csv.DictReader(text.splitlines(), skipinitialspace=True)
    rows = []
    for row in reader:
        cells = {k.strip(): v for k, v in row.items() if k}
        train = [k for k in cells if k.startswith("train/") and k.endswith("_loss")]
        val = [k for k in cells if k.startswith("val/") and k.endswith("_loss")]
        t = sum(float(cells[k]) for k in train)
        v = sum(float(cells[k]) for k in val)
        rows.append((f"{t:.6g}", f"{v:.6g}"))
    return [rows]


def _fits12(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []
    if fmt == J:
        return _history_fit(text, columns)
    if fmt == HJ:
        return _trainer_log_json(text, columns)
    if fmt == Y:
        return _ultralytics(text)
    header = text.split("\n", 1)[0]
    if ";" in header and "," not in header:
        text = text.replace(";", ",")
    if fmt == K:
        return _keras_fits(text, columns)
    return _appended_fits(text, columns)


def _relabel(row: dict) -> None:
    """The row's label and onset by the rules with 4b as amended for held-out-12 on; the label the rules
    as first written give is kept in `notes` where the two differ."""
    with open(HERE / "runs" / f"{row['id']}.csv", newline="") as fh:
        epochs = list(csv.DictReader(fh))
    t = [float(e["loss"]) for e in epochs]
    v = [float(e["val_loss"]) for e in epochs]
    va = [float(e["val_accuracy"]) for e in epochs] if epochs and "val_accuracy" in epochs[0] else None
    name, onset = label(t, v, va, memorisation_from=MEMORISATION_FROM)
    if (name, onset if onset is not None else "") != (row["label"], row["onset"]):
        note = f"rule 4b as first written (floor against epoch 1) gives {row['label']}"
        row["notes"] = (row["notes"] + "; " if row["notes"] else "") + note
    row["label"], row["onset"] = name, onset if onset is not None else ""


def relabelled_split(root: Path, sources, split: str, overrides, notes, max_per_repo: int, reader) -> None:
    """`build_split`'s rows relabelled with 4b as amended (`_relabel`), `overrides` applied after it, written
    as the manifest's rows of `split` (the builders from held-out-12 on)."""
    rows = build_split(root, sources, split, {}, notes, max_per_repo, reader)
    for row in rows:
        _relabel(row)
        apply_override(row, overrides)
    replace_split(rows, split, refuse_clashes=True)


def main(argv: list[str]) -> int:
    relabelled_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits12)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
