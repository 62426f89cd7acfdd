"""Adds the runs of split `held-out-13` to the corpus (issue 12, branch `corpus35`): real logs committed by
public repositories that no earlier split, build script, test, section of docs/ or commit message named,
turned into the corpus's per-epoch form and labelled by README.md's rules (rule 4b as amended from
held-out-12 on: `build.label(..., memorisation_from=2)`) before mlcheck is run on any of them.

    python benchmarks/reallogs/build_raw13.py MIRROR_ROOT   # MIRROR_ROOT/<owner>+<name>/repo: git snapshots

Run it after `build.py`, `build_raw.py` and `build_raw5.py` to `build_raw12.py`: it rewrites the
`held-out-13` rows of `manifest.csv` and their `runs/<id>.csv`. Conventions are `build_raw9.py`'s, through
its `build_split` (one run per fit; epochs numbered 1.. in file order; values as written; runs shorter than
`build.MIN_EPOCHS` epochs left out; a curve repeating another's first epochs to 4 significant digits kept
once; at most `MAX_PER_REPO` runs of one repository, in the order listed), read without mlcheck (the `json`
module), relabelled with the amended 4b by `build_raw12._relabel`. Older builders are unchanged.

How the repositories were found: `find_files` on JSON file names no split before had listed by (held-out-12
listed by `training_history.json`; earlier splits by CSV names and event files):
`train_history.json` (32 repositories, all listed), `training_log.json` (156; the index lists the first 100,
`3bdulah/...` to `jsmin2439/...`), `train_log.json` (16), `model_history.json` (51) and
`training_metrics.json` (196; the index lists the first 100, `2001welly/...` to `anthonyrenecastro-create/...`)
and `loss_history.json` (30).
Repositories taken in the listing's order, skipping every `owner/name` named in `manifest.csv`,
`sources.txt`, the `build_raw*.py` scripts, docs/, README.md, tests/ and the commit messages, and every
repository already in the snapshot store (`/work/.mirror`) when this split was started (none of the listed
ones was). Left out where the store has no snapshot (Arcuray/Brain_MRI, MariusLiebig/UNet-segmentation-MRI,
PHAMNGOCCHANVU/crowd-emotion-recognition, Painter121/computer-vision-mini-project-scene-classification,
fugifugiforchatgpt-blip/fugifugiOS, greeshmaa7/plant_disease_backend, moikukreja/Smart-Grid-Optimizer,
DrashtiShah23/DATA266-Lab1-Fall2026, LevelUp-Applied-AI/m7-l7a-finetune-sentiment-BatoolMadi,
narayanareddyreyansh/VGAT-Net, yanji211/mnist-mlp-handwriting, ant56-arch/mlb-hit-predictor,
ThePhoenix77/cat-cnn, abhinavmohankumarsaiu/fashion-mnist-classifier, BlayvasD/CellFM-torch,
pokegithub/MY_LLM, theywq/RAR, zelk-oss/forecasting), over the 500 MiB limit
(tonny-starkey/sem-6-project) or over the disk room the store had left when it was asked
(khanhduy1407/cool-detect: the store's disk was full for a few minutes; not asked again).
Passed over unfetched by name, never by a curve: trading, game, RL, robotics, chatbot and LLM-agent projects
(in `train_history.json`'s listing 20070316lbw-netizen/quant-with-myself, harpgmg/last-war-console; in
`training_log.json`'s AITrad3r/RunPod-TCN-PPO, Andrea010725/SAC_carla, BootDevEnjoyer/Asteroids,
KashyapKompella31264/traffic-rl-openenv, Kooryl/exploding-kitten-bot-battle, MPCdesigner/ExtinctionChessRL,
Mariaareadne1/cartpole-policy-gradient, NdeNifty/AviatorBotLTSMPredict, Nijin-P-S/Credit_Assessment_Env,
SyedaFizzah/RL-Project, WolfNegro/bot-trading-ia, daylatmink/rl-training-gold-miner, fionalin0221/super_mario,
harshbhatt7585/rlvr_blackjac, hoang-nguyen714/robo-gym, Hamzahab/ProntoBot, aaravgupta0202/legaloom_env,
Shikhar-0809/incident-response-detective; and the fitness, gym and diary trackers whose "training log" is
not a model's: AlekseevAlek/Training-journal, GaGaGaGala/Training_log_journal, MarvinSchwarze/fitmarv,
SergeySadykovN/Sprint3_Journal, SergeyTsVL/Training_Log, StarzecD/gym-app, ammicc-cmyk's two,
catherineyu8/this-is-going-swimmingly, cdebrier/MyFreedivingPerfo, g3nz0d/jiu-jitsu-training-tracker,
ilka74/TrainingJournal, Javisardignas/Gym-AI-Finder-NN, YuliaKurilenko/project24, Lienar/Practicym5,
Fredlez/qualification, Callmeamps/projects, Anurag0325/..., Ares19v/Code-Autopsy, EwanpenfoldPlymouth/Project,
FinSmartTeam/ai-finsmart, JayAWoods-CiNT/Postura-Ai, KingRajang/AITC, Mokshitavp1/promotionlens,
Purushothamreddy23/fedmed-llm, SayAn1-dls/solar_analysis, Seki16/GDP2-WorldModel, Thr1lleX/pixel-art-generator,
VaishaliTomar99/HumanIntent-AI, Zanggar-T/mistral-lora-finetune, ailoli1314/yanyun_helper,
akyourowngames/A.N.K.I.T.A, anuja2004/Mega_project, avntrr/project_pacmann_ilham-x8rh,
campbellgilbert/anterview_practice, cartaleoni/brain-candy-bot, dani-ange/tp-1, epicshepich/PUNISH,
jslomkowski/llm-hyperparam, jsmin2439/traffic_project, the five other LevelUp-Applied-AI/m7-l7a-... copies of one
assignment (a Trainer's final metrics), for time; in `train_log.json`'s the RL/game/diffusion/VLM ones and the
rest for time; in `model_history.json`'s Touma0216's two, all-upper-case/VeniceChat, andreavillancaUMA/...,
gredjr1-hub/BTC-Predictor, magaramisha341-glitch/..., nakayata21/Kantitatif-Fon-Bot,
thevalorfund/analogledger-public, urban-planning-dashboard/transit4, vishaldhiman28/..., wolfmib/...,
Sanskruti711/gym_footfall_predictor_project (a copy of the fetched one); in `training_metrics.json`'s the
first 21 names that suggest supervised training were fetched, the rest not, for time; in `loss_history.json`'s
AnonKryptiQuz/XSSGAI and marcoajt's two (GANs), ZehZ22/LLM-based-Domain-Randomization (RL),
bento1/simulation_graph_app, michaelsens/LLM-Voice-Control and samirxpikachuio/lVm1 by name, and
wennycooper's two `kkodom_pointnet_*` repositories for time; jaipkapoor99/GPT-2 is named by an earlier split).
A file was listed when its keys name a training and a validation (or every-epoch test) loss per epoch; the
files fetched and left out, read for their keys and list lengths only: a training loss alone or a validation
metric without a loss (KangLinKim/Dacon-rock_appraise, bertshun/testmodel, ADHITHYAN9/deforestation,
Ojas-Rohatgi/Deforestation-Detection, ABHI-310/Unsupervised_TSP_GNN, RajSharma1902/flowerFool,
RobbotiksLife/..., chy1001/504-SAM2-MedSeg-LoRA, BinciLuo/NewsClassification, bozeklab/fish-bouts,
dcasbol/dnmn, Edwin-Viju/Face-Trace, GURUDATTA17/ImageAuthenticityVerification, Dolappo/eng_to_hausa_mlt,
ansamz/MRI_Tumor_Classification_Pytorch, Naufalpc11/Nusantara-Phone-Mapper, malibayram/embedding,
shivansh-arch/minllm, Soumyojyotisaha/RetinaNet, chenbm4/SPheReNet (a validation NME, not a loss), and
three copies of one vision-transformer assignment's log: Gtanikon/DL_Assignment1,
KhanZakirul854/CSE676_Assignment1, aryaa-deshpande/Vision-Transformer), not a
training log (sakuraps1134/heichiku-location: GPS fixes; wakearinouryokusha/unchi-buriburi: a genetic
algorithm; bioshock20129-del/Embeddings: messages; Gitnewbie-tester/AITextDetector, aayushkumbharkar/...,
3bdulah/multimodal-diagnosis (3 epochs), christopherjun979-source/PatternRecognition, graf-julian08/Mini-LLM,
Chay1010/Floralens: summaries; 1064yanzu/snownlp-train: empty; 2043947845/Demo, GunjanGrunge/The-Data-Trainer,
MBaschi/xtream-ai-assignment-developer, NT11ags/titanic_survival_predictor, Sanskruti711/gym_footfall_predictor.,
Awab2000/Credit_Card_Fraud_Detection, kushagra-a-singh/BOSCH-BOROSA-Team-Tarzan, satyasundar/erav3-s4: model
registries; Amithgowdaa/semg-project, Pritiks23/eurosat-hpc-training: final figures; Aorunfa/dinov2_finetune:
per-iteration rows of a self-supervised run; KGraham38/Assignment-10-AI: an RL log; ChengIC/my_patchcore: a
config table; CollinPhipps/llm: lists of integers; JeanBidet/ColorFormer_Colorisation: an empty file;
RKA136/ML_Project, minq02/TEMCellSegmentation, mmuaaz-raza/microgpt: no `loss_history.json` in the snapshot's
history), fewer than 5 epochs (AveryData/hp-widget-classifier, z3573683-lab/..., nullerh/Second_dd2,
StecStecStec/medical-nmt-pl-en, Mayank-Joshi-gg/Knowledge_Distillation, TimkoTomas/DeepNnAssign2), a file
cut short (Jezen5Volk/Eyelid-Modeling and dhairyasheelsutar/Food-11-image-classification: JSON that ends
mid-value) or rows that are not one per epoch (X-futur/FNet-textClassify: JSON lines, several per epoch).
The curves were not looked at before the labels were committed (keys, list lengths and epoch fields were
read, for the columns and the fits).

Formats (manifest `format`):
- `keras-history-json`: a Keras `History` dict saved as JSON (`{"loss": [...], "val_loss": [...]}`; the
  accuracies copied where `accuracy`/`val_accuracy` are Keras' fractions), or another script's per-epoch
  dict of lists (`train_loss`/`val_loss`, `train_losses`/`val_losses`, `train_loss`/`test_loss`);
  `build_raw12._history_fit`, read as `mlcheck.analyze.history` reads it (`analyze` on the raw file);
- `trainer-log-json`: a JSON list of per-epoch dicts (`{"epoch": 1, "train_loss": .., "val_loss": ..}`), the
  held-out-12 name for such lists (`build_raw12._trainer_log_json`: per entry holding the validation loss, the
  training loss logged last at or before it);
- `epoch-records-json` (new): per-epoch dicts nested in a larger JSON object (`{"history": [{"epoch": 1,
  "train_loss": .., "val_loss": ..}, ...], "config": ...}`, `{"epochs": [{"train_loss_avg": .., "valid_loss":
  ..}], "steps": [...]}`, `[{"epoch": 1, "train": {"total": ..}, "val": {"total": ..}}]`): `_records`; not in
  the scorer's `RAW_FORMATS` when this split was built (mlcheck had no reader for it; `--raw` scored these
  from their copies); read by `mlcheck.analyze.history` and scored raw since round 36.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_raw import _git  # noqa: E402
from build_raw12 import _history_fit, _trainer_log_json, relabelled_split  # noqa: E402

HERE = Path(__file__).resolve().parent
SPLIT = "held-out-13"
MAX_PER_REPO = 4

# Where a rule misreads a curve: id -> (label, onset or None, reason), as `build.OVERRIDES`; made
# before mlcheck was run on any held-out-13 file.
OVERRIDES: dict[str, tuple[str, int | None, str]] = {}
# Notes on a label the rules give as they are (no override): id -> note.
NOTES: dict[str, str] = {
    "riccardoda-scenedetect-history-folder-new-model-train-history-j": "loss and validation loss 0.0 and accuracies "
    "0.5 at all 8 epochs (a second model whose loss gave nothing to learn from): rule 3 by its letter (the loss does "
    "not improve, the validation accuracy at a binary task's chance level), no override",
    "259981449--hot_expert_p-train-history-json": "`loss` is the evaluation loss (beside recall@k, ndcg@k), "
    "`train_loss` the training loss",
    "0xsp-image-forger-model-history-json": "TharunPatti2/Image-Forgery-Detection-using-CNN's model_history.json "
    "(a40b876) holds the same values: left out as a repeat",
    "internat-myproject-model-history-json": "a binary model near ln 2 throughout (training loss 0.696 to 0.678); "
    "rule 4 by its letter",
}

J = "keras-history-json"
HJ = "trainer-log-json"
R = "epoch-records-json"
KERAS = ("loss", "val_loss", "accuracy", "val_accuracy")
KL = ("loss", "val_loss")
TV = ("train_loss", "val_loss")
# (repo, commit, path, format, columns): for `R`, (the key holding the records or "" for a top-level list,
# the training loss's key, the validation loss's key), a key of a nested dict written "outer.inner"
SOURCES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    # find_files `train_history.json`, in the listing's order
    # a recommender (recall@k, ndcg@k): `loss` is the evaluation loss beside `train_loss`
    (
        "259981449-netizen/hot_expert_predictor",
        "98be491a64311b24100dc8992a126a560d48a769",
        "train_history.json",
        HJ,
        ("train_loss", "loss"),
    ),
    # Geometry Dash level screenshots (image classification)
    ("ANGELUSD11/GDLvlDetector", "7a42caa1a4bf8d7a1e20a7f57ff14228be23721c", "train_history.json", J, KERAS),
    # audio: music genre classification
    (
        "Aman041902/music_genre_classification",
        "9b7b5d128d161e53fd3a3b26b90a92e3d57e2891",
        "train_history.json",
        J,
        KERAS,
    ),
    # video emotion (CNN-LSTM)
    (
        "Amber016020/EmotionTrack-CNNLSTM",
        "9d1f11241a9c30a1884af4124f0d3a4eca30f534",
        "train_history.json",
        J,
        ("train_losses", "val_losses"),
    ),
    (
        "Bhardwajjyash/Plant_disease_recognition",
        "49182a3c733f903b02e83b4d8366d601130284e1",
        "train_history.json",
        J,
        KERAS,
    ),
    ("Madikhan77/case-1-", "7c90b392c28f5022accc44fec37e07db1cc3ac2f", "train_history.json", J, TV),
    (
        "RiccardoDAndrea/SceneDetect",
        "5fabe23577c6bef6fd0c3d5f1987c005d62a632a",
        "history_folder/train_history.json",
        J,
        KERAS,
    ),
    (
        "RiccardoDAndrea/SceneDetect",
        "5fabe23577c6bef6fd0c3d5f1987c005d62a632a",
        "history_folder/new_model_train_history.json",
        J,
        KERAS,
    ),
    # a multi-task metric-learning model (triplet and margin terms beside the total), removed from the newest commit
    ("adikonn/MaJoT", "e63ac65e6f624a6f23546f3569c69771a87b7303", "train_history.json", HJ, TV),
    (
        "anuragdasgroup97/Leave-disease-detection",
        "ae16601bba35cde470217ebd3bad8f94ab21835a",
        "train_history.json",
        J,
        KERAS,
    ),
    ("kittipat12zxc/Project-CNNs-Group", "656392d4efba35f2750748d0c30cd01b36aed3b4", "train_history.json", J, KERAS),
    # a VMamba image classifier, 93 epochs (`train_acc`/`val_acc` not copied: scale not checked)
    ("marthensolang/VMamba", "bfdf0a2883d35540e8b8424c7f86e08065f76b38", "train_history.json", J, TV),
    # CAD: corner regression (`*_mean_corner_l2` beside the losses, `lr` per epoch), records under `history`
    (
        "yuyuyu0626/cad",
        "4a533adf27293f7a437cbdaa31c4a6e796984e5e",
        "train_history.json",
        R,
        ("history", "train_loss", "val_loss"),
    ),
    # find_files `training_log.json`, in the listing's order
    # pose estimation: keypoint + classification loss (`total`), records with nested `train`/`val`
    (
        "Aedo119/gcp-pose-estimation",
        "b7716f277243dc9219b28d457fb71c4953624d16",
        "training_log.json",
        R,
        ("", "train.total", "val.total"),
    ),
    # translation (seq2seq with teacher forcing; `bleu`, `ppl`, `tf_ratio` per epoch)
    ("Ahamidullin/Dl_transformers_rnn", "00005bc6e6084535646ed638a0f7eea5df715aba", "training_log.json", J, TV),
    # a vision transformer, tested every epoch
    (
        "Mojtaba-Tamizi/VisionTransformer",
        "760f822eabca0a21b838b74116f8dad962c0744b",
        "training_log.json",
        J,
        ("train_loss", "test_loss"),
    ),
    # handwritten text recognition (CTC; `val_cer`)
    ("Shanmuk4622/Hand-Written-Text-reg", "22afda3251f3c5786ba2b2b3a7b9b089938cbf18", "training_log.json", HJ, TV),
    # code clone detection
    (
        "SylvanasW1ndrunner/SHARD-Clone-Detection",
        "8caee23cedcdd3178925541c048f3d697c75f804",
        "training_log.json",
        J,
        TV,
    ),
    # semantic segmentation (`mean_iou` per epoch)
    ("Zaidfarooqui18/AdaptSeg", "29576867062908c7bbd493b2a61cc1cd8209b5da", "training_log.json", J, TV),
    # records under `epochs` beside 9,500 step losses
    (
        "ZhujBlmn/dl-assignment2",
        "bb1e4491a3e3b4726cd8b7cd91412e973113fc0f",
        "training_log.json",
        R,
        ("epochs", "train_loss_avg", "valid_loss"),
    ),
    # a character-level GPT, 5 epochs, records under `history`
    (
        "aryaa-deshpande/TinyGPT",
        "713260653e202684739df1a3aa66fd79cb05479a",
        "training_log.json",
        R,
        ("history", "train_loss", "val_loss"),
    ),
    # grokking on modular arithmetic: an evaluation every few steps (401)
    ("carloslfu/grokking-from-scratch", "1f3904a6f12a5196700d5f035f5c308b25a8d848", "training_log.json", HJ, TV),
    # find_files `train_log.json`, in the listing's order
    # English-French translation (LSTM)
    (
        "MonkeyNerdCoding/English_French_Machine_Translation_LSTM",
        "d644354d11e898a394cef8029917c5c8c67d54f7",
        "train_log.json",
        J,
        TV,
    ),
    # find_files `model_history.json`, in the listing's order
    ("0xsp/image-forgery-detection", "451befad7820404104516a991b609bd8eb0569a5", "model_history.json", J, KERAS),
    (
        "Aakash109-hub/Defective-Product-Classification",
        "2fdc00bb1c1fab59b463925206b141cf5bd4506d",
        "model_history.json",
        J,
        KERAS,
    ),
    (
        "AbdulRahman3e4/Fashion-MNIST-CNN-Model",
        "c57b4c9042fbbba95af0b2d144a5043dd3eb5abb",
        "model_history.json",
        J,
        KERAS,
    ),
    # transfer learning, 100 epochs
    (
        "Degermandal/Global_AI_Hub_Transfer_Learning",
        "5c29763e57c5d771fdddc63d321a170e1d931277",
        "model_history.json",
        J,
        KERAS,
    ),
    ("GeorgeD88/BasicShapeIdentifierNN", "e9daeaf75dc3ad8d408b617fe1358407f4d74297", "model_history.json", J, KERAS),
    ("KKKatrinaa/mnist", "66806a4c4488f2b96d1e8bbbd3aeed70ac1b0a4a", "model_history.json", J, TV),
    # coffee-roast classification on texture (GLCM) features: tabular, 800 epochs
    ("Muhammad-Yunus/GLCM-Scikit-Image", "7e1118f4f90830f2b2b78bd24f554d7018da74c5", "model_history.json", J, KERAS),
    # a stock-price LSTM (regression): the model's file and a test scenario's
    ("RichardoTeddy/BBRI", "01c8941b5c3da8122a9b9b06058394aac2ec7aab", "model_history.json", J, KL),
    ("RichardoTeddy/BBRI", "da0c9588104670f2cde006eadd2ec1fd8df14664", "Skenario Pengujian/model_history.json", J, KL),
    # industrial quality inspection (casting defects)
    (
        "SudhirSude/Industrial-Image-Detection--quality-inspection",
        "884c6f5060739315f132fc5f836ae268b9e45eca",
        "model_history.json",
        J,
        KERAS,
    ),
    (
        "TharunPatti2/Image-Forgery-Detection-using-CNN",
        "a40b8764609ab28b61542c28d4169a3e0fdbf19c",
        "model_history.json",
        J,
        KERAS,
    ),
    # satellite-image segmentation (U-Net; `jaccard_coef`)
    (
        "VivakaNand/Satellite-Imagery-Semantic-Segmentation-U-Net-Model",
        "e142784044775dbdd14930047fcff51f2eed701f",
        "model_history.json",
        J,
        KERAS,
    ),
    # video event detection (LSTM), 5 epochs
    (
        "alperclk/Video-Event-Detection-With-LSTM",
        "4bcb2c08887e0d53518dcf1019e2a89e6979aa7b",
        "model_history.json",
        J,
        KERAS,
    ),
    (
        "angelofv/deep-learning-classification",
        "3eeb5d719c284ef9c6898fb5cb198802182e539c",
        "model_history.json",
        J,
        KERAS,
    ),
    (
        "bhanukart/Casting-image-defect-detection",
        "36899fb9c93f0bf3908b45b057ed46e36592795d",
        "model_history.json",
        J,
        KERAS,
    ),
    ("devyn-miller/ec1cpsc542may3", "0cc099736962c4b1727440ea7e0577a2cbd87cd4", "model_history.json", J, KERAS),
    ("feuerschlucker/amdl", "da320b175841155d1a248c407c1b8842501a6dfe", "model_history.json", J, KL),
    ("internat/Myproject", "cbb828d5834353ae6891d67bf2068fcb84bf23a3", "model_history.json", J, KERAS),
    # medical: brain MRI (OASIS), 50 epochs
    ("raphaelsales/oasisbrains", "5e499bbcd5be6adf780f7f34dc6719e4d21367b8", "model_history.json", J, KERAS),
    # a list of per-epoch dicts (`auc`, `precision` beside the losses)
    ("ratann31/tampered-images-detection", "930d0da0d702ffea9d182f77acd0ca877ef9e1ee", "model_history.json", HJ, KL),
    (
        "rishithaa9/Fruit-classification-and-Ripeness-detection",
        "6015b149966a34aafe6577403a7d02a076fa7404",
        "model_history.json",
        J,
        KERAS,
    ),
    # tabular: telecom churn (an ANN), 39 epochs
    (
        "rupamkgp/telco-customer-churn-prediction_ANN",
        "00f481331d958674ee57bfb812a0e4dc9b103dfe",
        "model_history.json",
        J,
        KERAS,
    ),
    # find_files `training_metrics.json`, in the listing's order
    # medical: skin disease, 83 epochs
    (
        "AyushmanDhara/SkinGuard-CNN-AI--Skin-Disease-Detection-System",
        "5840638f7fb0b288605dad0cda1d40029050db94",
        "training_metrics.json",
        J,
        TV,
    ),
    # handwriting recognition, tested every epoch (`overfit_gap` logged beside the losses)
    (
        "PandaTurtleFalcon/Handwriting-Recognizer",
        "7066fc6ea2e7eebe840a4a2f5d780e1d5cf56393",
        "training_metrics.json",
        HJ,
        ("train_loss", "test_loss"),
    ),
    (
        "RD-Bhowmik/transfer_learning_p2_code",
        "b0d4524f998a155e0f40078726386daa276802d5",
        "training_metrics.json",
        J,
        KERAS,
    ),
    # segmentation robust to artefacts (U-Net)
    ("Snikitha-V/artifact_robust_unet", "aecae0e1273c6be505690009b52a876b019cbc9a", "training_metrics.json", HJ, TV),
    # CNN vs ViT, 50 epochs (a test loss also logged; the validation loss is read)
    ("aamodpaudel/CNN-ViT", "415d35c570681b209c8a8ee9ba9c6448e804f800", "training_metrics.json", HJ, TV),
    # find_files `loss_history.json`, in the listing's order
    # a small language model, 49 evaluations
    ("ARUN18-lang/Archon-SLM", "48759fc1a473c8e3a62eb2881a55a40ce86903d6", "loss_history.json", J, ("train", "val")),
    # RGB-D 6-DoF pose: classification, box, rotation and translation terms (`total`), 300 epochs, two parallel lists
    (
        "korbinshen-pixel/efficient_RGBD_0421",
        "208668a10097ec5d22097130536640a560a47775",
        "loss_history.json",
        R,
        ("", "train[].total", "val[].total"),
    ),
    # music generation
    (
        "lynnlin77/CSCI1470-Melodic-Machines",
        "6a473376618566027a0304189cb9c1a0dd4840e1",
        "loss_history.json",
        J,
        ("train_losses", "val_losses"),
    ),
    # aspect-based sentiment analysis, 5 epochs
    ("phucnguyenhoank/absa-train", "b24f62fcf868f4af16d9f917bb3098308f83b05c", "loss_history.json", J, TV),
    # a small GPT, evaluated every few steps (`steps` beside the losses)
    (
        "pranjalidatascience/MiniGPT",
        "07c6fad61d5e2c364cd2e0d7e271f8626cacab21",
        "loss_history.json",
        J,
        ("train", "val"),
    ),
    ("wennycooper/AIOT_Exercise_3", "24205de3461b6168149fd1b0f8f702ffabb60621", "loss_history.json", J, TV),
]


def _get(entry: dict, key: str):
    for part in key.split("."):
        if not isinstance(entry, dict):
            return None
        entry = entry.get(part)
    return entry


def _records(text: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    """One fit from per-epoch dicts: a JSON list of them, or one under `columns[0]` of a JSON object; the
    training and validation losses are `columns[1]` and `columns[2]` ("outer.inner" for a nested dict;
    "train[].total" for the `total` of each dict of a list under `train`, the two lists read in parallel); an
    entry without both is left out."""
    under, loss, val = columns
    data = json.loads(text)
    if loss.endswith("]") or "[]." in loss:  # two parallel lists of dicts: {"train": [{..}], "val": [{..}]}
        (lk, lsub), (vk, vsub) = loss.split("[]."), val.split("[].")
        data = [{"t": a, "v": b} for a, b in zip(data.get(lk) or [], data.get(vk) or [])]
        loss, val = f"t.{lsub}", f"v.{vsub}"
    records = data.get(under) if under else data
    rows = []
    for entry in records if isinstance(records, list) else []:
        t, v = _get(entry, loss), _get(entry, val)
        if isinstance(t, (int, float)) and isinstance(v, (int, float)):
            rows.append((repr(float(t)), repr(float(v))))
    return [rows]


def _fits13(gitdir: str, commit: str, path: str, fmt: str, columns: tuple[str, ...]) -> list[list[tuple[str, ...]]]:
    try:
        text = _git(gitdir, "show", f"{commit}:{path}").decode("utf-8-sig")
    except subprocess.CalledProcessError:
        return []
    if fmt == J:
        return _history_fit(text, columns)
    if fmt == HJ:
        return _trainer_log_json(text, columns)
    return _records(text, columns)


def main(argv: list[str]) -> int:
    relabelled_split(Path(argv[0]), SOURCES, SPLIT, OVERRIDES, NOTES, MAX_PER_REPO, _fits13)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
