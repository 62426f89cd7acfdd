"""Log layouts met in public repositories' committed logs (docs/benchmarks.md, section 1, "raw
formats", 2026-12-03), each written here in the shape its logger gives it, with its source named:
PyTorch's `add_scalars` sub-writer folders, Keras' `evaluation_*_vs_iterations` validation tags,
Hugging Face Trainer's one-point `train/train_loss`, and a validation loss logged under a
`train/` namespace."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

import mlcheck
from analyze_logs import interleave, scalar_event, tensor_event, write_framed, write_with_writer
from mlcheck.analyze.tags import classify


def _overfitting(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Training loss falling all run; validation loss lowest at epoch 10, then 40% above it."""
    epochs = np.arange(n)
    train = 0.9 * np.exp(-epochs / 8) + 0.05
    val = 0.35 + 0.002 * (epochs - 10) ** 2 / 4 + 0.1 * np.exp(-epochs / 3)
    return train, val


def test_add_scalars_subwriters_are_one_run_with_a_validation_curve(tmp_path):
    # VaheC/Pytorch_Study@3129291 runs/simple_lr (Godoy's "PyTorch Step-by-Step"):
    # writer.add_scalars("loss", {"training": loss, "validation": val_loss}, epoch) writes tag
    # "loss" into runs/simple_lr/loss_training/ and runs/simple_lr/loss_validation/, and the
    # writer's own folder holds only the graph
    run = tmp_path / "runs" / "simple_lr"
    train, val = _overfitting()
    write_with_writer(run, [])
    write_with_writer(run / "loss_training", [scalar_event(e, "loss", v) for e, v in enumerate(train)])
    write_with_writer(run / "loss_validation", [scalar_event(e, "loss", v) for e, v in enumerate(val)])

    result = mlcheck.analyze(tmp_path / "runs")

    assert [r.name for r in result.runs] == ["simple_lr"]
    assert result.unreadable == []  # the graph-only folder is the run's own, not a run without scalars
    (r,) = result.runs
    assert r.series["val_loss"] == "loss/validation"
    assert r.series["epoch_train_loss"] == "loss/training"
    assert "train-val-gap" in {f.check for f in r.findings if f.severity.value != "info"}


def test_a_lone_folder_of_one_word_is_no_subwriter(tmp_path):
    # `<word>_<key>` folders need a sibling sharing the word and the tag named by it
    train, _ = _overfitting()
    write_with_writer(tmp_path / "loss_a", [scalar_event(e, "loss", v) for e, v in enumerate(train)])
    write_with_writer(tmp_path / "run_b", [scalar_event(e, "loss", v) for e, v in enumerate(train)])
    names = sorted(r.name for r in mlcheck.analyze(tmp_path).runs)
    assert names == ["loss_a", "run_b"]


def test_keras_evaluation_vs_iterations_is_not_a_metric(tmp_path):
    # huangyuan3h/StockData@4bf1439 logs/fit/<time>/validation: Keras' TensorBoard callback
    # (TF 2.2+) writes `evaluation_<metric>_vs_iterations` at the training step beside
    # `epoch_<metric>` at the epoch; read as a metric, its steps made 20 epochs into 41
    n, steps_per_epoch = 20, 25
    train, val = _overfitting(n)
    write_with_writer(
        tmp_path / "train",
        [tensor_event(e, "epoch_loss", v, metadata=e == 0) for e, v in enumerate(train)]
        + [tensor_event(e, "epoch_mae", v, metadata=e == 0) for e, v in enumerate(train)],
    )
    write_with_writer(
        tmp_path / "validation",
        [tensor_event(e, "epoch_loss", v, metadata=e == 0) for e, v in enumerate(val)]
        + [tensor_event(e, "epoch_mae", v, metadata=e == 0) for e, v in enumerate(val)]
        + [tensor_event((e + 1) * steps_per_epoch, "evaluation_loss_vs_iterations", v) for e, v in enumerate(val)]
        + [tensor_event((e + 1) * steps_per_epoch, "evaluation_mae_vs_iterations", v) for e, v in enumerate(val)],
    )

    (r,) = mlcheck.analyze(tmp_path).runs

    assert r.epochs == n
    assert not any("vs_iterations" in tag for tag in r.series.values())
    assert r.series["val_loss"] == "validation/epoch_loss"


def test_hugging_face_run_summary_is_no_epoch_loss(tmp_path):
    # 10844110/t5-summarization-demo@bf0ebb2 runs/<date>_<host>/: the Trainer logs train/loss,
    # train/learning_rate, train/grad_norm and train/epoch every `logging_steps`, one
    # train/train_loss (the mean over the whole run) with train/train_runtime at the end, and
    # the eval/* scalars from a second writer at the last step
    steps = np.arange(500, 60001, 500)
    loss = 2.0 * np.exp(-steps / 20000) + 0.8
    curves = {
        "train/loss": (steps, loss),
        "train/learning_rate": (steps, 5e-5 * (1 - steps / 60001)),
        "train/epoch": (steps, steps / 20000),
        "train/train_loss": ([60001], [float(loss.mean())]),
        "train/train_runtime": ([60001], [5471.3]),
    }
    write_with_writer(tmp_path / "runs" / "Mar24_22-23-40_host", interleave(curves))
    evals = [scalar_event(60001, "eval/loss", 1.63), scalar_event(60001, "eval/rouge1", 41.6)]
    write_with_writer(tmp_path / "runs" / "Mar24_22-23-40_host", evals)

    (r,) = mlcheck.analyze(tmp_path / "runs").runs

    assert r.series["train_loss"] == "train/loss"
    assert r.series["val_loss"] == "eval/loss"
    assert "epoch_train_loss" not in r.series  # train/train_loss is no curve


def test_validation_loss_under_a_train_namespace():
    # harbecke/HexHex hex/utils/summary.py charts 'train/train_loss' with 'train/val_loss':
    # the split word nearest the metric names the split
    assert classify("train/val_loss").role == "val_loss"
    assert classify("train/train_loss").role == "loss"
    assert classify("validation/epoch_loss").role == "val_loss"
    assert classify("val/loss").role == "val_loss"
    assert classify("Loss/train").role == "loss"


def _keras_fit(log_dir, train, val, counter):
    """One Keras fit writing to `log_dir`: a new file per sub-run, epochs from 0, named as TF
    names them (the writer's counter last: 9 before 10, as for two fits of one second)."""
    for k, (sub, curve) in enumerate((("train", train), ("validation", val))):
        events = [tensor_event(e, "epoch_loss", v, metadata=e == 0) for e, v in enumerate(curve)]
        write_framed(log_dir / sub / f"events.out.tfevents.1644728510.host.73068.{counter + k}.v2", events)


def test_a_keras_log_dir_reused_by_a_second_fit_is_two_runs(tmp_path):
    # huangyuan3h/StockData@4bf1439 logs/fit/20220213-124139: two model.fit calls with one
    # TensorBoard(log_dir=...), each a new file in train/ and validation/, epochs 0..19 both
    # times; read as one run, the second fit's values overwrote the first's
    first_train, first_val = _overfitting(20)
    second_train = 0.7 * first_train
    second_val = np.linspace(0.6, 0.3, 20)
    _keras_fit(tmp_path, first_train, first_val, 8)
    _keras_fit(tmp_path, second_train, second_val, 10)

    result = mlcheck.analyze(tmp_path)

    assert [r.name for r in result.runs] == [f"{tmp_path.name} (fit 1 of 2)", f"{tmp_path.name} (fit 2 of 2)"]
    assert "start again" in " ".join(result.runs[0].info)
    gaps = [{f.check for f in r.findings if f.severity.value != "info"} for r in result.runs]
    assert "train-val-gap" in gaps[0]  # the first fit's overfitting, no longer hidden by the second
    assert "train-val-gap" not in gaps[1]


def test_lightning_files_of_one_version_stay_one_run(tmp_path):
    # HCDescamps/cv-image-classification@ef1c18a lightning_logs/mnist_cnn/version_0: fit, then
    # trainer.validate() and trainer.test(), each a new file, each with hp_metric at step 0;
    # and a run resumed from a checkpoint starts its file at a later step
    train, val = _overfitting(10)
    steps = [(e + 1) * 100 - 1 for e in range(10)]
    fit = [scalar_event(0, "hp_metric", -1.0)]
    fit += [scalar_event(s, "train_loss", t) for s, t in zip(steps[:6], train)]
    fit += [scalar_event(s, "val_loss", v) for s, v in zip(steps[:6], val)]
    resumed = [scalar_event(0, "hp_metric", -1.0)]
    resumed += [scalar_event(s, "train_loss", t) for s, t in zip(steps[5:], train[5:])]
    resumed += [scalar_event(s, "val_loss", v) for s, v in zip(steps[5:], val[5:])]
    test = [scalar_event(0, "hp_metric", -1.0), scalar_event(1000, "test_loss", 0.4)]
    for k, events in enumerate((fit, resumed, test)):
        for event in events:
            event.wall_time = 1.7e9 + 1e5 * k + event.step
        write_with_writer(tmp_path / "version_0", events)

    (r,) = mlcheck.analyze(tmp_path).runs

    assert r.name == "version_0"
    assert r.epochs == 10


def test_a_keras_training_log_in_a_folder_is_found(tmp_path):
    # Aditya24jar/Emotion-Detection-Resnet50@21caba3 commits `training.log`, the name of Keras'
    # own CSVLogger example; a text log beside it (355705/Emotion-detection's `training.log`,
    # Python logging lines) is not a metrics file
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    train, val = _overfitting(17)
    rows += [f"{e},{0.4 + 0.02 * e},{t},{0.45 + 0.01 * e},{v}" for e, (t, v) in enumerate(zip(train, val))]
    (tmp_path / "training.log").write_text("\n".join(rows) + "\n")
    text = tmp_path / "text"
    text.mkdir()
    (text / "training.log").write_text(
        "2025-05-16 01:32:59,799 - INFO - Loading data...\n2025-05-16 01:33:00,009 - INFO - Epoch 1 loss 0.5\n"
    )

    result = mlcheck.analyze(tmp_path)

    assert [r.name for r in result.runs] == ["training.log"]
    assert result.runs[0].format == "keras-csv"
    assert result.unreadable == []


def test_a_python_logging_file_given_by_name_is_called_a_text_log(tmp_path):
    # 355705/Emotion-detection@e84592f and AdityaJ87/Face_Emotion_Detection@c6b45c0 commit a
    # `training.log` of Python logging lines; read as a CSV, its "columns" were a time stamp
    # and a message
    path = tmp_path / "training.log"
    path.write_text(
        "2025-05-16 01:32:59,799 - INFO - Downloaded NLTK stopwords and wordnet\n"
        "2025-05-16 01:32:59,806 - INFO - Loading data...\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "is a text log, not a metrics CSV" in done.stderr, done.stderr


def _trainer_state(path, evals, train, last_step, epochs=None):
    """A trainer_state.json as Hugging Face's Trainer writes it (keys sorted, indent 2); `epochs`
    the run's epochs (default: one per evaluation), each entry's `epoch` its fraction of them."""
    import json

    epochs = len(evals) if epochs is None else epochs
    history = [
        {"epoch": s / last_step * epochs, "grad_norm": 1.5, "learning_rate": 1e-5, "loss": v, "step": s}
        for s, v in train
    ]
    history += [
        {"epoch": s / last_step * epochs, "eval_loss": v, "eval_runtime": 90.1, "eval_wer": 40.0, "step": s}
        for s, v in evals
    ]
    history.sort(key=lambda e: (e["step"], "eval_loss" in e))
    history.append(
        {
            "epoch": float(epochs),
            "step": last_step,
            "total_flos": 1e18,
            "train_loss": 0.1,
            "train_runtime": 1000.0,
            "train_samples_per_second": 9.0,
            "train_steps_per_second": 1.0,
        }
    )
    state = {"best_metric": None, "epoch": float(epochs), "global_step": last_step, "log_history": history}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2, sort_keys=True))


def test_hugging_face_trainer_state_is_read_once_per_output_folder(tmp_path):
    # Merlinmy/Whisper_small_hi@dc54fe4 and P4P4N1CK/whisper-large-v2-japanese-5k-steps@484b1d2
    # commit the Trainer's trainer_state.json: the training loss every 25 steps, an evaluation
    # every 1000 (eval_loss 0.31 lowest at the first, 0.41 at the fifth, training loss -> 0.001),
    # the summary last; every checkpoint-<step>/ holds the history up to its step
    steps = np.arange(25, 5001, 25)
    train = list(zip(steps.tolist(), (0.9 * np.exp(-steps / 600) + 0.001).tolist()))
    evals = [(1000, 0.3075), (2000, 0.33), (3000, 0.37), (4000, 0.4097), (5000, 0.41)]
    out = tmp_path / "whisper-small-hi"
    _trainer_state(out / "trainer_state.json", evals, train, 5000)
    for k in (1000, 4000):  # the checkpoints' copies, cut at their step
        _trainer_state(out / f"checkpoint-{k}" / "trainer_state.json", evals[: k // 1000], train[: k // 25], k)

    result = mlcheck.analyze(tmp_path)

    (r,) = result.runs  # the output folder's own state, not one run per checkpoint
    assert r.format == "hf-trainer-state"
    assert r.path == str(out / "trainer_state.json")
    assert r.series["train_loss"] == "train/loss"
    assert r.series["val_loss"] == "eval/loss"
    assert "epoch_train_loss" not in r.series  # the summary's train_loss is left out
    assert "train-val-gap" in {f.check for f in r.findings if f.severity.value != "info"}


def test_a_trainer_state_of_checkpoints_only_is_the_last_checkpoints(tmp_path):
    steps = np.arange(10, 301, 10)
    train = list(zip(steps.tolist(), np.linspace(1.0, 0.2, len(steps)).tolist()))
    for k in (100, 200, 300):
        _trainer_state(tmp_path / "out" / f"checkpoint-{k}" / "trainer_state.json", [(k, 0.5)], train[: k // 10], k)
    (r,) = mlcheck.analyze(tmp_path).runs
    assert r.name == "out/checkpoint-300/trainer_state.json"


def _slow_fine_tune(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, loss, lr) shaped like 10844110/t5-summarization-demo@bf0ebb2's trainer_state.json:
    a pretrained T5 fine-tuned for 215,000 steps at 5e-5 decaying linearly, the loss logged every
    500 steps, its means over tenths of the run 1.876, 1.847, 1.829, 1.808, 1.795, ... 1.769 with
    noise 0.014 (a pretrained model starts near its floor)."""
    steps = np.arange(500, 215001, 500)
    rng = np.random.default_rng(seed)
    loss = 1.76 + 0.12 * np.exp(-steps / 70000) + rng.normal(0, 0.014, len(steps))
    return steps, loss, 5e-5 * (1 - steps / 215001)


def test_a_hugging_face_fine_tune_that_falls_slowly_is_no_plateau(tmp_path):
    # The Trainer fine-tunes pretrained models: a fall of a tenth over the run is what that looks
    # like, not a stall nor a rate too low (RunInfo.pretrained). Both of its log formats.
    steps, loss, lr = _slow_fine_tune()
    train = list(zip(steps.tolist(), loss.tolist()))
    _trainer_state(tmp_path / "hf" / "trainer_state.json", [(215000, 1.63)], train, 215000)
    curves = {"train/loss": (steps, loss), "train/learning_rate": (steps, lr), "train/epoch": (steps, steps / 72000)}
    write_with_writer(tmp_path / "tb" / "Mar24_22-23-40_host", interleave(curves))

    for path in (tmp_path / "hf", tmp_path / "tb"):
        done = subprocess.run(
            [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert '"severity": "warning"' not in done.stdout and '"severity": "error"' not in done.stdout, done.stdout


def test_the_same_slow_fall_from_scratch_is_still_a_plateau(tmp_path):
    # the healthy counterpart's mirror: the same curve under plain tags (a run from scratch, as
    # far as the log tells) still stalls at a poor level, 10% under its first value
    steps, loss, lr = _slow_fine_tune()
    write_with_writer(tmp_path / "run", interleave({"loss": (steps, loss), "lr": (steps, lr)}))
    (r,) = mlcheck.analyze(tmp_path).runs
    assert {f.check for f in r.findings if f.severity.value == "warning"} & {"loss-plateau", "lr-too-low"}


def test_the_same_slow_fall_resumed_from_a_checkpoint_is_no_plateau(tmp_path):
    # Lightning's fit(ckpt_path=...) logs its new version's steps on from the checkpoint's: a log
    # that starts 250,000 steps in (500 logging intervals, more than its own span) continues a
    # trained model, whose loss starts near its floor (RunInfo.pretrained)
    steps, loss, lr = _slow_fine_tune()
    write_with_writer(tmp_path / "run", interleave({"loss": (steps + 250000, loss), "lr": (steps + 250000, lr)}))
    (r,) = mlcheck.analyze(tmp_path).runs
    assert [f for f in r.findings if f.severity.value != "info"] == []


def _lightning_csv(path, train_tag: str, val_tag: str, train, val, steps_per_epoch: int = 50):
    """A Lightning `CSVLogger` metrics.csv: a training row every 10 steps, a validation row at
    each epoch's end, each in its own row with the other cells empty."""
    rows = [f"epoch,step,{train_tag},{val_tag}"]
    for e, (t, v) in enumerate(zip(train, val)):
        for k in range(10, steps_per_epoch + 1, 10):
            rows.append(f"{e},{e * steps_per_epoch + k - 1},{t * (1 + 0.1 * (1 - k / steps_per_epoch))},")
        rows.append(f"{e},{(e + 1) * steps_per_epoch - 1},,{v}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def test_a_loss_named_by_its_kind_is_the_training_loss(tmp_path):
    # Eve-ning/opal-v2@b0297e8 lightning_logs/version_0/metrics.csv: columns
    # epoch, lr-Adam, step, train/nll_loss, val/rmse_loss; before: "no loss curve found", exit 2.
    # The validation column is another quantity (an RMSE beside an NLL): not a validation loss
    train, val = _overfitting(12)
    _lightning_csv(tmp_path / "version_0" / "metrics.csv", "train/nll_loss", "val/rmse_loss", train, val)

    (r,) = mlcheck.analyze(tmp_path).runs

    assert r.series.get("train_loss") == "train/nll_loss"
    assert "val_loss" not in r.series
    assert classify("val/rmse_loss").role == "val_loss"  # kept out by the run, not by the name
    assert classify("train/best_loss").role == "ignore"  # a running minimum, not the curve


def test_a_loss_named_alike_in_both_splits_is_read_in_both(tmp_path):
    # the same module logging self.log("train/bce_loss") and self.log("val/bce_loss")
    train, val = _overfitting(12)
    _lightning_csv(tmp_path / "version_0" / "metrics.csv", "train/bce_loss", "val/bce_loss", train, val)

    (r,) = mlcheck.analyze(tmp_path).runs

    assert r.series.get("train_loss") == "train/bce_loss"
    assert r.series.get("val_loss") == "val/bce_loss"


def test_terms_of_a_loss_are_not_the_loss(tmp_path):
    # a VAE logging train/recon_loss and train/kl_loss (the KL term rises in a healthy run):
    # neither is taken for the loss; beside a plain `loss`, a qualified one never wins
    path = tmp_path / "metrics.csv"
    rows = ["epoch,step,train/recon_loss,train/kl_loss"]
    rows += [f"{e // 5},{e},{1.0 / (1 + e)},{0.01 * e}" for e in range(50)]
    path.write_text("\n".join(rows) + "\n")
    plain = tmp_path / "plain" / "metrics.csv"
    train, val = _overfitting(12)
    _lightning_csv(plain, "train_loss", "val/mse_loss", train, val)

    out = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    (r,) = mlcheck.analyze(plain.parent).runs

    assert out.returncode == 2 and "no loss curve found" in out.stderr
    assert r.series.get("train_loss") == "train_loss"
    assert "val_loss" not in r.series


def test_a_loss_in_the_thousands_beside_an_accuracy_is_read(tmp_path):
    # DexplovateCode/WheezeDetectionAI@6d758f0 runs/ (add_scalars("Loss", {"train", "val"}) and
    # "Acc"): a training loss of 3.7e6, then 133-2,732, accuracy 0.0; the chance-level test took
    # exp() of the loss: "could not be read (OverflowError: math range error); please report this"
    train = [3743668.25, 133.379, 2005.373, 187.235, 2732.31, 646.674, 1574.271, 963.764, 601.722]
    val = [41.394, 32.41, 35.53, 36.589, 42.205, 46.33, 47.945, 48.771, 49.486]
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"]
    rows += [f"{e},0.0,{t},0.0,{v}" for e, (t, v) in enumerate(zip(train, val))]
    (tmp_path / "training_log.csv").write_text("\n".join(rows) + "\n")

    result = mlcheck.analyze(tmp_path)

    assert result.unreadable == []
    assert [r.epochs for r in result.runs] == [9]


def test_a_lightning_0_6_test_tube_metrics_csv_is_named_for_its_logger(tmp_path):
    # Jhko725/Contact-Point-Detection@419b215 lightning_logs/version_0/metrics.csv: Lightning
    # 0.6's default TestTubeLogger (test_tube's `Experiment`) writes `train_loss,epoch,created_at`,
    # one row per log call, the step kept in its `tf/` event files only; it was announced as
    # `keras-csv`. Read as before: x is the epoch column
    path = tmp_path / "version_0" / "metrics.csv"
    path.parent.mkdir()
    train, _ = _overfitting(12)
    rows = ["train_loss,epoch,created_at"]
    rows += [f"{v},{e},2020-02-03 14:{8 + e:02d}:30.980366" for e, v in enumerate(train)]
    path.write_text("\n".join(rows) + "\n")

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["format"] == "test-tube-csv"
    assert run["epochs"] == 12 and run["steps"] is None
    assert run["series"] == {"epoch_train_loss": "train_loss"}


def _history_rows(n: int = 20) -> list[tuple[float, float, float, float]]:
    """Per epoch: loss, accuracy, val_loss, val_accuracy of a run that overfits from epoch 10."""
    train, val = _overfitting(n)
    val_accuracy = [0.7 + 0.005 * e if e <= 10 else 0.75 - 0.01 * (e - 10) for e in range(n)]
    return [(t, 0.6 + 0.015 * e, v, va) for e, (t, v, va) in enumerate(zip(train, val, val_accuracy))]


def test_real16_a_history_saved_by_pandas_with_its_index_is_read(tmp_path):
    # HoaiHanVu/Sentiment_Classification@5ad472a, Raavi-Santhosh/Quora-Spam-Classification@d97924f,
    # ravindra-pandey/Diabetic_Retinopathy@a18d7e9 (and 5 more in held-out-5) commit
    # `pd.DataFrame(history.history).to_csv("model_history.csv")`: the frame's index is written as
    # a first column without a name (`,loss,accuracy,val_loss,val_accuracy,lr`), which was refused
    # ("does not look like a metrics CSV"); a file read back and saved again names it `Unnamed: 0`
    rows = _history_rows()
    for header in ("", "Unnamed: 0"):
        path = tmp_path / (header or "blank") / "model_history.csv"
        path.parent.mkdir()
        lines = [f"{header},loss,accuracy,val_loss,val_accuracy,lr"]
        lines += [f"{e},{t},{a},{v},{va},0.001" for e, (t, a, v, va) in enumerate(rows)]
        path.write_text("\n".join(lines) + "\n")

        (run,) = mlcheck.analyze(path).runs

        assert run.format == "keras-csv"
        assert run.series["epoch_train_loss"] == "loss" and run.series["val_loss"] == "val_loss"
        assert run.epochs == len(rows)
        assert "train-val-gap" in {f.check for f in run.findings if f.severity.value != "info"}


def test_real16_a_pandas_history_beside_an_epoch_column_keeps_the_epochs(tmp_path):
    # the index column left out where the frame has an epoch column of its own (epochs from 1)
    rows = _history_rows(12)
    path = tmp_path / "history.csv"
    lines = [",epoch,loss,val_loss"] + [f"{k},{k + 1},{t},{v}" for k, (t, _, v, _) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")

    (run,) = mlcheck.analyze(path).runs

    assert run.epochs == 12
    assert run.series == {"epoch_train_loss": "loss", "val_loss": "val_loss"}


def test_real16_a_pandas_history_csv_in_a_folder_is_found(tmp_path):
    # a directory scan read CSVs with an epoch or step column only (others are data sets); a
    # `*history*.csv` with a loss column is a saved History (panstenos/IMDB-Review-Sentiment-NLP-PyTorch
    # @5646fc8 `model_history.csv`: `train_loss,valid_loss,train_acc,valid_acc`, no index)
    rows = _history_rows(12)
    (tmp_path / "model_history.csv").write_text(
        "\n".join(["train_loss,valid_loss,train_acc,valid_acc"] + [f"{t},{v},{a},{va}" for t, a, v, va in rows]) + "\n"
    )
    (tmp_path / "history_of_prices.csv").write_text("date,price\n2024-01-01,3.5\n2024-01-02,3.6\n")
    (tmp_path / "train.csv").write_text("text,label,loss_weight\nhello,1,0.5\n")

    result = mlcheck.analyze(tmp_path)

    assert [r.name for r in result.runs] == ["model_history.csv"]
    assert result.runs[0].series["val_loss"] == "valid_loss"


def test_real16_column_names_in_words_are_read():
    # abhay22014/Facial-Expression-Detection@0b7a120 model_history.csv: `Epoch,Train Accuracy,
    # Validation Accuracy,Train Loss,Validation Loss` (a history written by hand) was "no loss
    # curve found"; words separated by spaces are read as by `_` and `/`
    assert classify("Train Loss").role == "loss"
    assert classify("Validation Loss").role == "val_loss"
    assert (classify("Train Accuracy").role, classify("Train Accuracy").metric) == ("train_metric", "accuracy")
    assert (classify("Validation Accuracy").role, classify("Validation Accuracy").metric) == ("val_metric", "accuracy")


def test_real16_a_hand_written_history_with_worded_columns_is_analysed(tmp_path):
    rows = _history_rows()
    path = tmp_path / "model_history.csv"
    lines = ["Epoch,Train Accuracy,Validation Accuracy,Train Loss,Validation Loss"]
    lines += [f"{e + 1},{a},{va},{t},{v}" for e, (t, a, v, va) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["series"]["epoch_train_loss"] == "Train Loss" and run["series"]["val_loss"] == "Validation Loss"
    assert run["epochs"] == len(rows)


def test_realfa16_a_trainer_states_rows_are_its_evaluations_named_by_step(tmp_path):
    # jubaerkhan49/bangla_stt (held-out-5): 5 epochs, the loss logged every 25 steps, an evaluation
    # every 50, was read as "80 epochs" (the logging points taken for epochs, the union of both
    # curves' steps as rows) and findings named "epoch 12" for the twelfth evaluation. Its rows are
    # its evaluations, named by their steps; the training loss is the stream logged between them.
    steps = np.arange(25, 2001, 25)
    train = list(zip(steps.tolist(), (0.9 * np.exp(-steps / 300) + 0.01).tolist()))
    evals = [(int(s), float(0.3 + 0.004 * ((s - 600) / 50) ** 2 / 4)) for s in range(50, 2001, 50)]
    _trainer_state(tmp_path / "run" / "trainer_state.json", evals, train, 2000, epochs=5)

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (r,) = json.loads(done.stdout)["runs"]
    assert r["epochs"] is None and r["steps"] == 2000
    assert r["series"]["train_loss"] == "train/loss" and "epoch_train_loss" not in r["series"]
    assert any("its 40 evaluations" in line for line in r["info"]), r["info"]
    (gap,) = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "train-val-gap"]
    assert "epoch 12" not in gap["message"] and "step 600 (epoch 1.5)" in gap["message"], gap["message"]
    assert gap["evidence"]["best_step"] == 600


def test_realfa16_llama_factory_trainer_log_is_read_as_a_trainers(tmp_path):
    # agosalvez/tfm-lora-specialized-adapter@21662a7 results/trainer_log.jsonl: LLaMA-Factory's
    # LogCallback writes one JSON object a line per logging step (current_steps, loss, lr, epoch,
    # progress and times) and per evaluation (eval_loss). Was refused: "starts like a Keras
    # History dict but holds no metric with a list of numbers".
    lines = []
    for s in range(10, 1001, 10):
        progress = {"total_steps": 1000, "epoch": s / 100, "percentage": s / 10, "elapsed_time": "0:01:00"}
        lines.append({"current_steps": s, "loss": 0.9 * math.exp(-s / 150) + 0.01, "lr": 5e-5, **progress})
        if s % 50 == 0:
            lines.append({"current_steps": s, "eval_loss": 0.3 + 0.001 * ((s - 300) / 50) ** 2, **progress})
    path = tmp_path / "results" / "trainer_log.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = mlcheck.analyze(path)
    (r,) = result.runs
    assert r.format == "llamafactory-trainer-log"
    assert r.series["train_loss"] == "train/loss" and r.series["val_loss"] == "eval/loss"
    assert r.series["lr"] == "train/learning_rate"
    (gap,) = [f for f in r.findings if f.check == "train-val-gap"]
    assert "step 300 (epoch 3)" in gap.message, gap.message  # LLaMA-Factory logs the Trainer's epoch too


def test_review38_a_short_llama_factory_log_is_advised_as_a_trainers(tmp_path):
    # review38: the advice for a short training curve asked whether the log was a Trainer's with a
    # predicate of its own (trainer_state.json or the Trainer's TensorBoard tags), so LLaMA-Factory's
    # log of a Trainer run got Lightning's `log_every_n_steps`; one predicate (`RunLog.from_hf_trainer`)
    lines = [
        {"current_steps": s, "loss": 0.9 * math.exp(-s / 150) + 0.01, "epoch": s / 100} for s in range(10, 201, 10)
    ]
    path = tmp_path / "trainer_log.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    (r,) = mlcheck.analyze(path).runs
    assert r.format == "llamafactory-trainer-log"
    (short,) = [line for line in r.info if "too few for" in line]
    assert "logging_steps" in short and "log_every_n_steps" not in short, short


def test_realfa16_a_jsonl_of_no_objects_named_as_a_trainer_log_says_so(tmp_path):
    path = tmp_path / "trainer_log.jsonl"
    path.write_text("[1, 2]\nnot json\n")
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "trainer_log.jsonl" in done.stderr and "Keras History" not in done.stderr, done.stderr


def test_real17_a_trainer_states_findings_say_its_fractional_epoch(tmp_path):
    # protonx-mles-01-projects/sentiment-classification-optimization (held-out-5): an evaluation every
    # 500 steps of 2,500-step epochs; findings said "step 1500" where the Trainer's own `epoch` field
    # said 0.6 (and "epoch 3" before the rows were read as evaluations). The Trainer's fractional epoch
    # is read (`train/epoch`, as its TensorBoard callback names it): "step 1500 (epoch 0.6)".
    steps = np.arange(50, 10001, 50)
    train = list(zip(steps.tolist(), (0.6 * np.exp(-steps / 1500) + 0.01).tolist()))
    evals = [(int(s), float(0.2 + 0.02 * ((s - 1500) / 500) ** 2 / 4)) for s in range(500, 10001, 500)]
    path = tmp_path / "model" / "trainer_state.json"
    _trainer_state(path, evals, train, 10000, epochs=4)

    (r,) = mlcheck.analyze(path).runs
    assert "train/epoch" not in r.series.values()  # an axis, not a curve
    (gap,) = [f for f in r.findings if f.check == "train-val-gap"]
    assert "around step 1500 (epoch 0.6)" in gap.message, gap.message
    assert "step 1500 (epoch 0.6)" in gap.hint, gap.hint
    assert gap.evidence["best_step"] == 1500 and gap.evidence["best_epoch"] == 0.6
    assert gap.epoch is None  # the finding's own epoch stays a whole one or none

    # a state whose entries hold no epoch (written by other code) is told by step alone, as before
    state = json.loads(path.read_text())
    for entry in state["log_history"]:
        entry.pop("epoch", None)
    path.write_text(json.dumps(state))
    (gap,) = [f for f in mlcheck.analyze(path).runs[0].findings if f.check == "train-val-gap"]
    assert "around step 1500," in gap.message and "epoch" not in gap.message, gap.message


def test_real17_a_trainers_tensorboard_folder_says_its_fractional_epoch_too(tmp_path):
    # The Trainer's TensorBoard callback writes the same `epoch` as train/epoch at every logging step
    # (and eval/epoch at each evaluation): its runs are told "step 1500 (epoch 0.6)" alike.
    steps = np.arange(50, 10001, 50)
    evals = np.arange(500, 10001, 500)
    curves = {
        "train/loss": (steps, 0.6 * np.exp(-steps / 1500) + 0.01),
        "train/learning_rate": (steps, 5e-5 * (1 - steps / 10001)),
        "train/epoch": (steps, steps / 2500),
        "eval/loss": (evals, 0.2 + 0.02 * ((evals - 1500) / 500) ** 2 / 4),
        "eval/epoch": (evals, evals / 2500),
    }
    write_with_writer(tmp_path / "runs" / "Mar24_22-23-40_host", interleave(curves))

    (r,) = mlcheck.analyze(tmp_path / "runs").runs
    assert r.epochs is None and r.series["val_loss"] == "eval/loss"
    (gap,) = [f for f in r.findings if f.check == "train-val-gap"]
    assert "around step 1500 (epoch 0.6)" in gap.message, gap.message
    assert gap.evidence["best_step"] == 1500 and gap.evidence["best_epoch"] == 0.6


# --- corpus17: formats of other training tools (issue 12; docs/benchmarks.md, held-out-6) ---


_YOLO8 = (
    "epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),"
    "metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2"
)
_YOLO5 = (
    "epoch,train/box_loss,train/obj_loss,train/cls_loss,metrics/precision,metrics/recall,metrics/mAP_0.5,"
    "metrics/mAP_0.5:0.95,val/box_loss,val/obj_loss,val/cls_loss,x/lr0,x/lr1,x/lr2"
)
_YOLO10 = (
    "epoch,train/box_om,train/cls_om,train/dfl_om,train/box_oo,train/cls_oo,train/dfl_oo,metrics/precision(B),"
    "metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_om,val/cls_om,val/dfl_om,val/box_oo,"
    "val/cls_oo,val/dfl_oo,lr/pg0,lr/pg1,lr/pg2"
)


def _yolo_file(path, header: str, padded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An Ultralytics results.csv of the overfitting run (the loss split into terms of 1/2, 1/3,
    1/6 of it, in each head for YOLOv10); YOLOv5 and early YOLOv8 pad every cell to 20
    characters (01-Zhangsaisai/Wheat-Weed-Detection-YOLOv8@89ec33d, 1666sApple/Drowsiness-Detector
    @59b566b, 4prince8/Object_Detection_Yolov10@0553e6d hold these layouts)."""
    train, val = _overfitting()
    columns = header.split(",")
    terms = [c for c in columns if c.startswith(("train/", "val/"))]
    shares = {"box": 0.5, "cls": 1 / 3, "obj": 1 / 6, "dfl": 1 / 6}
    heads = 2 if "train/box_oo" in columns else 1
    lines = []
    for e, (t, v) in enumerate(zip(train, val)):
        cells = []
        for c in columns:
            if c == "epoch":
                cells.append(str(e + 1))
            elif c in terms:
                share = shares[c.split("/")[1].split("_")[0]] / heads
                cells.append(f"{(t if c.startswith('train/') else v) * share:.6g}")
            elif "mAP" in c:
                cells.append(f"{0.3 + 0.01 * min(e, 10):.5f}")
            else:
                cells.append("0.5")
        lines.append(cells)
    if padded:
        text = "\n".join(",".join(f"{c:>20}" for c in row) for row in [columns, *lines])
    else:
        text = "\n".join(",".join(row) for row in [columns, *lines])
    path.write_text(text + "\n")
    return train, val


def test_corpus17_an_ultralytics_results_csv_is_read_as_the_sums_of_its_loss_terms(tmp_path):
    # Ultralytics YOLO writes runs/detect/train/results.csv: the loss as its terms
    # (`train/box_loss`, `train/cls_loss`, `train/dfl_loss`; YOLOv5 `train/obj_loss`; YOLOv10 each
    # term twice, `_om` and `_oo`), the same on the validation set, the mAP under `metrics/`. It
    # was refused: "no loss curve found (columns: epoch, ..., train/box_loss, ...)"
    for header, padded in ((_YOLO8, False), (_YOLO8, True), (_YOLO5, True), (_YOLO10, True)):
        path = tmp_path / f"{len(header)}-{padded}" / "results.csv"
        path.parent.mkdir()
        train, val = _yolo_file(path, header, padded)

        (run,) = mlcheck.analyze(path).runs

        assert run.format == "ultralytics-csv"
        assert run.series["epoch_train_loss"] == "train/loss" and run.series["val_loss"] == "val/loss"
        assert run.series["val_metric:map"] == "val/mAP"
        assert not any(role.startswith("train_metric") for role in run.series), run.series
        assert run.epochs == len(train)
        gap = [f for f in run.findings if f.check == "train-val-gap" and f.severity.value != "info"]
        assert gap, run.findings
        # the sum of the terms, to the written digits: the best level near the validation minimum
        assert abs(gap[0].evidence["best_epoch"] - 11) <= 2, gap[0].evidence


def test_corpus17_a_yolo_runs_folder_is_searched_and_other_csvs_keep_their_reading(tmp_path):
    (tmp_path / "runs" / "detect" / "train").mkdir(parents=True)
    _yolo_file(tmp_path / "runs" / "detect" / "train" / "results.csv", _YOLO8)
    # a CSV with one `<word>_loss` per split and a `metrics/` column is no YOLO log: read as before
    (tmp_path / "other.csv").write_text(
        "epoch,train/box_loss,val/box_loss,metrics/accuracy\n"
        + "\n".join(f"{e},{1 / (e + 1)},{1 / (e + 1)},0.5" for e in range(8))
        + "\n"
    )

    result = mlcheck.analyze(tmp_path)

    formats = {r.name: r.format for r in result.runs}
    assert formats["runs/detect/train/results.csv"] == "ultralytics-csv"
    assert formats["other.csv"] == "keras-csv"


def _d2_lines(n: int = 150, blow_up_at: int | None = None) -> list[str]:
    """detectron2's metrics.json (its JSONWriter, every 20 iterations; Ghailen-Ben-Achour/
    detectron2_detection@7715970 `output/metrics.json` holds this layout): `iteration`,
    `total_loss` and its terms, batch statistics under `fast_rcnn/`, an evaluation's `bbox/AP`
    in the line of its iteration; a line of its own after the last iteration."""
    lines = []
    for k in range(n):
        it = 20 * k + 19
        loss = 2.5 * math.exp(-it / 800) + 0.3 + 0.02 * math.sin(k)
        if blow_up_at is not None and it >= blow_up_at:
            loss *= 10 ** min(6, (it - blow_up_at) / 100 + 1)
        entry = {"data_time": 0.005, "eta_seconds": 100.0, "fast_rcnn/cls_accuracy": 0.9, "iteration": it}
        entry |= {"loss_box_reg": loss / 3, "loss_cls": loss / 2, "loss_rpn_cls": loss / 12, "loss_rpn_loc": loss / 12}
        entry |= {"lr": 0.00025, "rpn/num_pos_anchors": 35.0, "time": 1.2, "total_loss": loss}
        if (it + 1) % 500 == 0:
            entry |= {"bbox/AP": 20 + it / 200, "bbox/AP50": 40 + it / 200, "bbox/APs": float("nan")}
        lines.append(json.dumps(entry))
    lines.append(json.dumps({"bbox/AP": 40.0, "bbox/AP50": 60.0, "iteration": 20 * n}))
    return lines


def test_corpus17_detectron2_metrics_json_is_read(tmp_path):
    # detectron2's output/metrics.json was refused by name ("starts like a Keras History dict but
    # holds no metric with a list of numbers") and passed over in a folder
    healthy, exploding = tmp_path / "healthy" / "output", tmp_path / "exploding" / "output"
    for folder, blow in ((healthy, None), (exploding, 1500)):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("\n".join(_d2_lines(blow_up_at=blow)) + "\n")
        (folder / "last_checkpoint").write_text("model_final.pth")

    result = mlcheck.analyze(tmp_path)

    runs = {r.name: r for r in result.runs}
    assert set(runs) == {"healthy/output/metrics.json", "exploding/output/metrics.json"}
    good, bad = runs["healthy/output/metrics.json"], runs["exploding/output/metrics.json"]
    assert good.format == "detectron2-json" and good.steps == 20 * 150 - 1
    assert good.series["train_loss"] == "total_loss" and good.series["lr"] == "lr"
    assert not [f for f in good.findings if f.severity.value != "info"], good.findings
    assert "loss-divergence" in {f.check for f in bad.findings if f.severity.value == "error"}, bad.findings


def _mmdet2_lines(epochs: int = 30, per_epoch: int = 200, interval: int = 50) -> list[str]:
    """MMDetection 2.x's <timestamp>.log.json (TextLoggerHook): an env_info/config line, train
    entries every `interval` iterations with `iter` from 1 in each epoch, and, with workflow
    [('train', 1), ('val', 1)], a val entry per epoch holding the validation loss (overfitting
    from epoch 11 here) beside the evaluation's bbox_mAP."""
    train, val = _overfitting(epochs)
    lines = [json.dumps({"env_info": "sys.platform: linux\nPython: 3.8", "config": "model = dict()", "seed": 0})]
    for e in range(1, epochs + 1):
        for it in range(interval, per_epoch + 1, interval):
            loss = float(train[e - 1]) * (1 + 0.01 * math.sin(it))
            entry = {"mode": "train", "epoch": e, "iter": it, "lr": 0.02, "memory": 3000, "data_time": 0.01}
            entry |= {"loss_cls": loss / 2, "acc": 90.0, "loss_bbox": loss / 2, "loss": loss, "time": 0.4}
            lines.append(json.dumps(entry))
        lines.append(json.dumps({"mode": "val", "epoch": e, "iter": 125, "lr": 0.02, "loss": float(val[e - 1])}))
        lines.append(
            json.dumps({"mode": "val", "epoch": e, "iter": 125, "lr": 0.02, "bbox_mAP": 0.3, "bbox_mAP_50": 0.5})
        )
    return lines


def test_corpus17_mmdetection_log_json_is_read_with_its_epochs_and_validation_loss(tmp_path):
    path = tmp_path / "work_dirs" / "faster_rcnn" / "20230101_120000.log.json"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(_mmdet2_lines()) + "\n")
    (path.parent / "20230101_120000.log").write_text("2023-01-01 12:00:00,000 - mmdet - INFO - Environment info:\n")

    result = mlcheck.analyze(tmp_path)

    (run,) = result.runs
    assert run.format == "mmdet-log-json"
    assert run.series["train_loss"] == "loss" and run.series["val_loss"] == "val/loss"
    assert run.epochs == 30 and run.steps == 30 * 200
    gap = [f for f in run.findings if f.check == "train-val-gap" and f.severity.value != "info"]
    assert gap, run.findings


def test_corpus17_mmengine_scalars_json_places_validations_at_their_epochs_end(tmp_path):
    # MMEngine's vis_data/scalars.json (duanbo320/openmmlab_camp@a44bd37): training lines with
    # `step` (the iteration) and `epoch`; validation lines without a loss whose `step` is the epoch
    path = tmp_path / "20230605_200941" / "vis_data" / "scalars.json"
    path.parent.mkdir(parents=True)
    lines = []
    for e in range(1, 13):
        for it in range(1, 21):
            step = (e - 1) * 20 + it
            loss = 1.5 * math.exp(-step / 80) + 0.3
            lines.append(
                json.dumps(
                    {
                        "lr": 0.02,
                        "data_time": 0.01,
                        "loss": loss,
                        "loss_kpt": loss,
                        "time": 0.4,
                        "epoch": e,
                        "iter": step,
                        "step": step,
                    }
                )
            )
        lines.append(json.dumps({"coco/AP": 0.3 + e / 100, "PCK": 0.5, "data_time": 0.1, "time": 0.1, "step": e}))
    path.write_text("\n".join(lines) + "\n")

    (run,) = mlcheck.analyze(tmp_path).runs

    assert run.format == "mmengine-json" and run.steps == 240 and run.epochs == 12
    assert run.series["val_metric:coco_ap"] == "val/coco_AP"
    fmt, scalars, _ = read_json_lines_for_test(path)
    assert list(scalars["val/coco_AP"].steps) == [20 * e for e in range(1, 13)]
    assert not [f for f in run.findings if f.severity.value != "info"], run.findings


def read_json_lines_for_test(path):
    from mlcheck.analyze.jsonlogs import read_json_lines

    return read_json_lines(path)


def _mlflow_run(run: Path, names: dict[str, list[float]]) -> None:
    """An MLflow file store's run (`mlflow.keras.autolog()`: `loss`, `val_loss`, ... per epoch):
    `metrics/<name>` a line per value, `<timestamp ms> <value> <step>`; `params/`, `meta.yaml`."""
    (run / "metrics").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text(f"run_id: {run.name}\nstatus: 3\n")
    (run / "params" / "epochs").write_text("30")
    for name, values in names.items():
        (run / "metrics" / name).write_text(
            "".join(f"{1700000000000 + 1000 * e} {v} {e}\n" for e, v in enumerate(values))
        )


def test_corpus17_an_mlflow_file_store_run_is_read(tmp_path):
    # mlruns/<experiment>/<run id>/metrics/<name> was passed over in a folder ("holds no
    # TensorBoard event files ... and no metrics CSV") and refused by path ("does not look like
    # a metrics CSV (header '1700000000000 1.2 0'...)")
    train, val = _overfitting()
    overfit = tmp_path / "mlruns" / "1" / "3f2a"
    _mlflow_run(overfit, {"loss": list(train), "val_loss": list(val), "accuracy": [0.5 + e / 100 for e in range(30)]})
    healthy = tmp_path / "mlruns" / "1" / "9c1d"
    _mlflow_run(healthy, {"loss": list(train), "val_loss": list(train * 1.1 + 0.02)})

    result = mlcheck.analyze(tmp_path)

    runs = {r.name: r for r in result.runs}
    assert set(runs) == {"mlruns/1/3f2a", "mlruns/1/9c1d"}
    assert runs["mlruns/1/3f2a"].format == "mlflow"
    assert runs["mlruns/1/3f2a"].series["val_loss"] == "val_loss"
    assert "train-val-gap" in {f.check for f in runs["mlruns/1/3f2a"].findings if f.severity.value != "info"}
    assert not [f for f in runs["mlruns/1/9c1d"].findings if f.severity.value != "info"]
    # one metric file given by path is its run
    (one,) = mlcheck.analyze(overfit / "metrics" / "loss").runs
    assert one.name == "3f2a" and one.epochs == 30


def test_corpus17_a_nanogpt_printed_log_is_read(tmp_path):
    # nanoGPT prints `iter N: loss X, time Tms, mfu M%` and, every eval_interval,
    # `step N: train loss X, val loss Y`; saved as train.log it was "no loss curve found
    # (columns: iter 0: loss 4.2874, mfu ..., time ...)"
    lines = ["Overriding config with config/train_shakespeare_char.py:", "number of parameters: 10.65M"]
    for it in range(0, 3001, 10):
        loss = 4.2 * math.exp(-it / 700) + 1.0
        if it >= 2000:
            loss = float("nan") if it >= 2500 else loss * (1 + (it - 2000) / 50)
        if it % 250 == 0:
            lines.append(f"step {it}: train loss {loss:.4f}, val loss {loss + 0.05:.4f}")
        lines.append(f"iter {it}: loss {loss:.4f}, time 35.21ms, mfu 12.34%")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.log").write_text("\n".join(lines) + "\n")

    (run,) = mlcheck.analyze(tmp_path).runs

    assert run.format == "printed-log" and run.steps == 3000
    assert run.series["train_loss"] == "loss" and run.series["val_loss"] == "val_loss"
    checks = {f.check for f in run.findings if f.severity.value == "error"}
    assert "nonfinite-loss" in checks, run.findings


def test_corpus17_too_few_points_are_told_with_the_tools_own_setting(tmp_path):
    # the note on a loss logged too rarely named Lightning's `log_every_n_steps` for every format;
    # a YOLO results.csv of 5 epochs and a detectron2 metrics.json of 15 lines name their own
    yolo = tmp_path / "yolo" / "results.csv"
    yolo.parent.mkdir()
    _yolo_file(yolo, _YOLO8)
    yolo.write_text("\n".join(yolo.read_text().splitlines()[:6]) + "\n")
    d2 = tmp_path / "d2" / "metrics.json"
    d2.parent.mkdir()
    d2.write_text("\n".join(_d2_lines(15)) + "\n")

    (short_yolo,) = mlcheck.analyze(yolo).runs
    (short_d2,) = mlcheck.analyze(d2).runs

    assert any("Ultralytics writes one results.csv row per epoch" in line for line in short_yolo.info), short_yolo.info
    assert any("PeriodicWriter" in line for line in short_d2.info), short_d2.info
    assert not any("log_every_n_steps" in line for line in short_yolo.info + short_d2.info)


# --- yolofa17: false alarms on Ultralytics YOLO logs (issue 12; docs/benchmarks.md, held-out-6) ---


def _yolo_run(path: Path, train, val, m_ap, lr) -> None:
    """A YOLOv8 results.csv of the given per-epoch curves (each loss split 0.4/0.3/0.3 into its
    box, cls and dfl terms; the lr in each of its three parameter groups)."""
    columns = _YOLO8.split(",")
    rows = []
    for e in range(len(train)):
        cells = {"epoch": str(e + 1), "time": str(10.0 * (e + 1)), "metrics/mAP50-95(B)": f"{m_ap[e]:.5f}"}
        for term, share in (("box", 0.4), ("cls", 0.3), ("dfl", 0.3)):
            cells[f"train/{term}_loss"] = f"{train[e] * share:.6g}"
            cells[f"val/{term}_loss"] = f"{val[e] * share:.6g}"
        cells.update({f"lr/pg{g}": f"{lr[e]:.6g}" for g in range(3)})
        rows.append(",".join(cells.get(c, "0.5") for c in columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(columns), *rows]) + "\n")


def _yolo_fine_tune(n: int = 30) -> tuple[np.ndarray, ...]:
    """(train, val, mAP, lr) of a YOLO fine-tune from COCO weights (2024uce0062-sys/crack-detection-ai
    `runs/detect/train-4`, AlyssaJZ/sweetberry's `best.pt` fine-tunes): the loss starts near its
    floor and falls 5% in 30 epochs (3.7 -> 3.5, noise 0.02), the validation loss with it, the
    mAP climbing; 3 warm-up epochs, then a linear decay (Ultralytics' defaults)."""
    e = np.arange(n)
    rng = np.random.default_rng(0)
    train = 3.3 + 0.4 * np.exp(-e / 25) + rng.normal(0, 0.02, n)
    val = 3.0 + 0.3 * np.exp(-e / 20) + rng.normal(0, 0.02, n)
    lr = np.where(e < 3, (e + 1) / 3 * 0.01, 0.01 * (1 - e / n) + 1e-4)
    return train, val, 0.45 - 0.15 * np.exp(-e / 10), lr


def _warnings(path: Path) -> set[str]:
    (run,) = mlcheck.analyze(path).runs
    return {f.check for f in run.findings if f.severity.value != "info"}


def test_yolofa17_a_yolo_fine_tune_that_falls_slowly_is_no_plateau(tmp_path):
    # Ultralytics starts from COCO-pretrained weights by default (`YOLO("yolov8n.pt")`, YOLOv5's
    # `--weights yolov5s.pt`): the loss starts near its floor and a fall of 5% is a fine-tune's,
    # not a stall nor a rate too low (RunInfo.pretrained, as for the Hugging Face Trainer). It
    # was `lr-too-low` "only 5.4% in 15 epochs". The settings saved beside results.csv say so
    # (args.yaml `model:` a weights file, or `pretrained:` one; opt.yaml `weights:`); where
    # there is none, the documented default holds. The command as users run it, on the first.
    settings = {
        "none": None,
        "v8-coco": ("args.yaml", "task: detect\nmode: train\nmodel: yolov8n.pt\nepochs: 30\npretrained: true\n"),
        "v8-own-best": ("args.yaml", "model: runs/detect/train/weights/best.pt\npretrained: true\n"),
        "v8-loaded": ("args.yaml", "model: yolov8n.yaml\npretrained: yolov8n.pt\n"),
        "v5-coco": ("opt.yaml", "weights: yolov5s.pt\ncfg: ''\nepochs: 30\n"),
    }
    for name, setting in settings.items():
        path = tmp_path / name / "results.csv"
        _yolo_run(path, *_yolo_fine_tune())
        if setting is not None:
            (path.parent / setting[0]).write_text(setting[1])
        if name == "none":
            done = subprocess.run(
                [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert '"severity": "warning"' not in done.stdout and '"severity": "error"' not in done.stdout, done.stdout
        assert _warnings(path) == set(), name


def test_yolofa17_the_same_slow_fall_from_scratch_is_still_told(tmp_path):
    # a YOLO model built from its architecture file (`YOLO("yolov8n.yaml")`, whose
    # `pretrained: true` then loads nothing) or YOLOv5's `--weights ''` starts from random
    # weights: the same 5% fall is a slow start there, still told
    for name, setting in {
        "v8-scratch": ("args.yaml", "model: yolov8n.yaml\npretrained: true\n"),
        "v5-scratch": ("opt.yaml", "weights: ''\ncfg: ./models/yolov5s.yaml\n"),
    }.items():
        path = tmp_path / name / "results.csv"
        _yolo_run(path, *_yolo_fine_tune())
        (path.parent / setting[0]).write_text(setting[1])
        # told: a results.csv holds epoch points alone, so `lr-too-low` says so at INFO (fa35)
        (run,) = mlcheck.analyze(path).runs
        told = [f for f in run.findings if f.check in {"loss-plateau", "lr-too-low"}]
        assert [(f.check, f.severity.value) for f in told] == [("lr-too-low", "info")], (name, told)
        assert told[0].evidence.get("epoch_points_only") is True, (name, told)


def test_yolofa17_a_yolo_validation_loss_far_below_training_is_info_not_a_leak(tmp_path):
    # YOLO trains on mosaics of 4 augmented images and validates on clean ones: a validation loss
    # far below the training loss is its normal state (07Yatin/anemia2 `runs/detect/train`: the
    # training loss 113 -> 50s, the validation loss near 12, "22% of the training loss ... looks
    # leaked or easier" was a WARNING). The YOLO file says so at INFO; the same curves in a Keras
    # CSV (nothing says the training inputs are augmented) still warn of a leak.
    e = np.arange(30)
    train = 50 + 60 * np.exp(-e / 3)
    val = 11 + np.exp(-e / 10)
    m_ap = 0.5 - 0.4 * np.exp(-e / 5)
    yolo = tmp_path / "yolo" / "results.csv"
    _yolo_run(yolo, train, val, m_ap, np.full(30, 0.01))
    keras = tmp_path / "keras" / "training.log"
    keras.parent.mkdir()
    keras.write_text("epoch,loss,val_loss\n" + "".join(f"{k},{t:.6g},{v:.6g}\n" for k, t, v in zip(e, train, val)))

    (yolo_run,) = mlcheck.analyze(yolo).runs
    (keras_run,) = mlcheck.analyze(keras).runs

    told = [f for f in yolo_run.findings if f.check == "suspicious-val"]
    assert told and {f.severity.value for f in told} == {"info"}, yolo_run.findings
    assert "does not mean a leak" in told[0].message and told[0].evidence["ratio"] < 0.25
    assert [f for f in yolo_run.findings if f.severity.value != "info"] == []
    assert any(f.check == "suspicious-val" and f.severity.value == "warning" for f in keras_run.findings)


def _yolo_long_run(overfit: bool) -> tuple[np.ndarray, ...]:
    """(train, val, mAP, lr) of a 120-epoch YOLO run whose validation loss jumps 0.6 for six
    epochs early (epochs 21-26, the mAP dipping with it) and falls again for 90 more, as in
    1leo23/yolo_Battery `runs/detect/train` (200 epochs, a rise at epoch 59, its lowest at 172):
    with `overfit`, the validation loss also climbs 0.02 an epoch from epoch 81 to the end."""
    n = 120
    e = np.arange(n)
    rng = np.random.default_rng(1)
    train = 2.0 + 4.0 * np.exp(-e / 30) + rng.normal(0, 0.02, n)
    bump = np.where((e >= 20) & (e < 26), 0.6 * np.sin(np.pi * (e - 19) / 7), 0.0)
    val = 2.2 + 2.8 * np.exp(-e / 35) + rng.normal(0, 0.03, n) + bump
    if overfit:
        val = val + np.where(e >= 80, 0.02 * (e - 80), 0.0)
    m_ap = 0.5 - 0.4 * np.exp(-e / 20) - 0.1 * bump
    lr = np.where(e < 3, (e + 1) / 3 * 0.01, 0.01 * (1 - e / n) + 1e-4)
    return train, val, m_ap, lr


def test_yolofa17_an_early_rise_that_passed_is_no_overfitting_and_a_later_one_is(tmp_path):
    # A rise the rest of the log undoes (the validation loss back below the best it rose from, by
    # as much as the rise had to exceed) was instability, not overfitting: analyze, which reads
    # the whole log, says so at INFO (it was a WARNING at epoch 23 of 120); the check judges
    # afresh from there, so a real rise later in the same run is still a WARNING.
    for overfit in (False, True):
        path = tmp_path / str(overfit) / "results.csv"
        _yolo_run(path, *_yolo_long_run(overfit))
        (run,) = mlcheck.analyze(path).runs
        gap = [f for f in run.findings if f.check == "train-val-gap"]
        first = [f for f in gap if f.key == "overfit"]
        assert first and first[0].epoch < 30 and first[0].severity.value == "info", gap
        assert "the rise passed" in first[0].message
        assert any(f.key.startswith("overfit-passed") for f in gap), gap
        warned = [f for f in run.findings if f.severity.value != "info"]
        if overfit:
            assert [f.check for f in warned] == ["train-val-gap"] and warned[0].epoch > 80, warned
            assert warned[0].evidence["best_epoch"] > 60, warned[0].evidence
        else:
            assert warned == [], warned


def test_msg17_a_held_metrics_best_is_told_as_a_level_and_its_best_point(tmp_path):
    # arshiv-web/Financial-News-Sentiment-Analysis (held-out-4) trainer_state.json, its numbers
    # rounded: the INFO said "Validation macro_f1 has not dropped (best 0.2369, recent 0.2369)"
    # while the log's best eval_macro_f1 is 0.2461 (step 8280). 0.2369 is the best mean of 3
    # validations in a row (the check's patience), not a value the log holds: told as a level,
    # with the best point beside it.

    train = [1.497, 1.49, 1.475, 1.407, 1.338, 1.363, 1.339, 1.327, 1.32, 1.304]
    train += [1.233, 1.308, 1.266, 1.246, 1.232, 1.22, 1.152, 1.183, 1.171, 1.157]
    val = [1.4883, 1.3673, 1.3262, 1.3700, 1.3609, 1.4345, 1.4409, 1.4814, 1.5085, 1.4856]
    f1 = [0.1897, 0.1638, 0.1847, 0.2130, 0.2030, 0.2076, 0.2292, 0.2461, 0.2354, 0.2347]
    history = [
        {"epoch": s / 1035, "learning_rate": 2e-5, "loss": v, "step": s} for s, v in zip(range(500, 10001, 500), train)
    ]
    history += [
        {"epoch": float(k + 1), "eval_loss": v, "eval_macro_f1": m, "step": 1035 * (k + 1)}
        for k, (v, m) in enumerate(zip(val, f1))
    ]
    history.sort(key=lambda e: (e["step"], "eval_loss" in e))
    state = {"best_metric": 0.2461, "epoch": 10.0, "global_step": 10350, "log_history": history}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state, indent=2, sort_keys=True))

    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", "--json", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (gap,) = [f for f in json.loads(done.stdout)["findings"] if f["check"] == "train-val-gap"]
    message = gap["message"]
    assert "best 0.2369" not in message, message
    assert "best level 0.2369 over 3 validations" in message, message
    assert "best point 0.2461 at step 8280" in message, message


def test_corpus18_camelcase_columns_of_a_hand_written_log_are_read(tmp_path):
    # a training loop writing its own per-epoch CSV in CamelCase (Dewey-Wang/HEVisum's
    # `output_folder/fold0/training_log.csv`, Eason215xB/MTL_kary's `training_log.csv`, held-out-7):
    # refused before, "no loss curve found (columns: Epoch, LR, TrainLoss, ValLoss, ValSpearman)"
    train, val = _overfitting()
    path = tmp_path / "training_log.csv"
    path.write_text(
        "Epoch,TrainLoss,ValLoss,ValSpearman,mIoU,LR\n"
        + "".join(f"{e + 1},{t:.6g},{v:.6g},0.4,0.01,0.001\n" for e, (t, v) in enumerate(zip(train, val)))
    )

    (run,) = mlcheck.analyze(path).runs

    assert run.series["val_loss"] == "ValLoss" and run.series["lr"] == "LR", run.series
    assert run.series.get("epoch_train_loss", run.series.get("loss")) == "TrainLoss", run.series
    assert run.epochs == len(train)
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings
    # a lower-case start (`valLoss`) is CamelCase too; `mAP50-95(B)`, `mIoU`, `LR` keep their reading
    assert classify("valLoss").role == "val_loss" and classify("trainLoss").role == classify("train_loss").role
    for name in ("mAP50-95(B)", "mIoU", "LR", "Train Loss", "val_loss"):
        assert classify(name) == classify(name.lower()), name


def test_corpus18_a_test_curve_logged_every_epoch_is_the_validation_curve_where_there_is_none(tmp_path):
    # a PyTorch loop that evaluates its held-out split every epoch and calls it test
    # (1Yangone1/DSC-SE-LightNet's `training_log.csv`, held-out-7): its `test_loss` was ignored, so
    # the run had no validation curve and `train-val-gap` could not judge it
    train, val = _overfitting()
    rows = "".join(f"{e + 1},{t:.6g},0.9,{v:.6g},0.8\n" for e, (t, v) in enumerate(zip(train, val)))
    path = tmp_path / "training_log.csv"
    path.write_text("epoch,train_loss,train_acc,test_loss,test_acc\n" + rows)

    (run,) = mlcheck.analyze(path).runs

    assert run.series["val_loss"] == "test_loss" and run.series["val_metric:acc"] == "test_acc", run.series
    assert any("'test_loss', logged at 30 points, is read as the validation loss" in i for i in run.info), run.info
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings

    # beside a validation curve, or logged once (Lightning's `trainer.test()` after the fit), a test
    # curve stays ignored
    both = tmp_path / "both.csv"
    both.write_text(
        "epoch,train_loss,val_loss,test_loss\n"
        + "".join(f"{e + 1},{t:.6g},{v:.6g},{v * 2:.6g}\n" for e, (t, v) in enumerate(zip(train, val)))
    )
    once = tmp_path / "once.csv"
    once.write_text(
        "epoch,train_loss,test_loss\n"
        + "".join(f"{e + 1},{t:.6g},\n" for e, t in enumerate(train))
        + f"{len(train)},,{val[-1]:.6g}\n"
    )
    (run,) = mlcheck.analyze(both).runs
    assert run.series["val_loss"] == "val_loss" and not any("test_loss" in i for i in run.info)
    (run,) = mlcheck.analyze(once).runs
    assert "val_loss" not in run.series and not any("test_loss" in i for i in run.info), run.series


# --- fa18: what the YOLO settings say of the mosaics (issue 12; docs/benchmarks.md, held-out-6) ---


def test_fa18_yolo_settings_that_turn_the_mosaics_off_make_a_low_validation_loss_a_warning_again(tmp_path):
    # RunInfo.augmented_train stands for YOLO's 4-image mosaics. `mosaic: 0` (args.yaml, YOLOv5's
    # hyp.yaml or the `hyp:` block of its opt.yaml) builds none, and `close_mosaic` equal to
    # `epochs` turns them off at the first epoch (Ultralytics closes them at epoch
    # `epochs - close_mosaic`): the training images are then no harder than validation's, and a
    # validation loss at 22% of the training loss is told as a WARNING, as in a Keras CSV. The
    # usual settings (`mosaic: 1.0`; `close_mosaic: 10` of 30 epochs; a `close_mosaic` above
    # `epochs`, which matches no epoch and leaves the mosaics on) stay INFO.
    e = np.arange(30)
    train = 50 + 60 * np.exp(-e / 3)
    val = 11 + np.exp(-e / 10)
    m_ap = 0.5 - 0.4 * np.exp(-e / 5)
    v5_opt = "weights: yolov5s.pt\nhyp:\n  lr0: 0.01\n  mosaic: {}\n  mixup: 0.0\nepochs: 30\n"
    settings = {
        "v8-mosaic-0": ({"args.yaml": "model: yolov8n.pt\nepochs: 30\nclose_mosaic: 10\nmosaic: 0.0\n"}, "warning"),
        "v8-closed-from-the-start": (
            {"args.yaml": "model: yolov8n.pt\nepochs: 30\nclose_mosaic: 30\nmosaic: 1.0\n"},
            "warning",
        ),
        "v5-hyp-mosaic-0": ({"opt.yaml": v5_opt.format("1.0"), "hyp.yaml": "lr0: 0.01\nmosaic: 0\n"}, "warning"),
        "v5-opt-mosaic-0": ({"opt.yaml": v5_opt.format("0.0")}, "warning"),
        "v8-default": ({"args.yaml": "model: yolov8n.pt\nepochs: 30\nclose_mosaic: 10\nmosaic: 1.0\n"}, "info"),
        "v8-close-past-the-end": (
            {"args.yaml": "model: yolov8n.pt\nepochs: 30\nclose_mosaic: 50\nmosaic: 1.0\n"},
            "info",
        ),
        "v5-default": ({"opt.yaml": v5_opt.format("1.0"), "hyp.yaml": "lr0: 0.01\nmosaic: 1.0\n"}, "info"),
    }
    for name, (files, expected) in settings.items():
        path = tmp_path / name / "results.csv"
        _yolo_run(path, train, val, m_ap, np.full(30, 0.01))
        for file, text in files.items():
            (path.parent / file).write_text(text)
        (run,) = mlcheck.analyze(path).runs
        told = [f for f in run.findings if f.check == "suspicious-val"]
        assert told and {f.severity.value for f in told} == {expected}, (name, run.findings)
        assert ("does not mean a leak" in told[0].message) == (expected == "info"), (name, told[0].message)


def _spike_then_back(end: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) of 50 epochs whose validation loss reaches its best around epoch 5, spikes 40%
    at epochs 6-12 (a WARNING at 7) and comes back slowly, as held-out-6's APINXD/CellDetection
    `runs/train/exp` (best level 0.863, a spike to 1.30, 0.851 over its last 3 epochs). `end`:
    "at-best" (its last 3 validations its lowest), "above" (rising 0.008 an epoch from epoch 35:
    overfitting at the end), "lower-before" (back below the spike's best, but a lower level at
    epochs 30-32 than at the end: the end is no best)."""
    n = 50
    e = np.arange(n)
    rng = np.random.default_rng(3)
    train = 0.62 - 0.15 * e / n + rng.normal(0, 0.04, n)
    val = 0.84 + 0.27 * np.exp(-e / 2.5) + rng.normal(0, np.where(e < 13, 0.012, 0.006), n)
    val += np.where((e >= 6) & (e < 13), 0.42 * np.sin(np.pi * (e - 5) / 8), 0.0)
    val += np.where(e >= 13, 0.08 * np.exp(-(e - 13) / 12) - 0.001 * (e - 13), 0.0)
    val[-3:] = val[:-3].min() - np.array([0.001, 0.003, 0.002])
    if end == "above":
        val += np.where(e >= 35, 0.008 * (e - 35), 0.0)
    if end == "lower-before":
        val[30:33] = val[-3:].min() - 0.004
    return train, val


def test_fa18_a_rise_whose_log_ends_at_its_best_is_info_and_one_that_does_not_still_warns(tmp_path):
    # A train-val-gap WARNING whose rise the log later undid, back below the best level it named
    # though not by the margin `overfit-passed` asks,, stood at the end of analyze (held-out-6:
    # APINXD/CellDetection `exp`, 1WangXT/Pipeline_Defect_Recognition `exp3`; held-out-5's
    # prithsha version 3 in its per-epoch form). Where the log ends at its lowest level (the mean
    # of its last 3 validations, the lowest such mean of the run), the last checkpoint is the
    # run's best and the rise did not last: INFO. A log that ends above that level (overfitting
    # at the end), or back below the WARNING's best but above a lower level reached before (the
    # end is no best), still warns.
    # over39: the spike's WARNING is an INFO in all three (the loss came back below the best level it
    # named: "the rise passed"); "above"'s rise at the end is told again (`overfit-2`), and
    # "lower-before" ends 0.004 over a lower level it reached before, which is no rise
    expected = {"at-best": "info", "above": "info", "lower-before": "info"}
    for end, severity in expected.items():
        train, val = _spike_then_back(end)
        path = tmp_path / f"{end}.log"
        path.write_text(
            "epoch,loss,val_loss\n" + "".join(f"{k},{t:.6g},{v:.6g}\n" for k, (t, v) in enumerate(zip(train, val)))
        )
        (run,) = mlcheck.analyze(path).runs
        gap = [f for f in run.findings if f.check == "train-val-gap" and f.key == "overfit"]
        assert gap and gap[0].epoch == 7, (end, run.findings)
        assert gap[0].severity.value == severity, (end, gap[0])
        told = "the rise did not last" in gap[0].message or "the rise passed" in gap[0].message
        assert told, (end, gap[0].message)
        again = [f.epoch for f in run.findings if f.key == "overfit-2" and f.severity.value == "warning"]
        assert bool(again) == (end == "above") and all(e > 35 for e in again), (end, run.findings)
        assert [f.check for f in run.findings if f.severity.value != "info"] == (
            ["train-val-gap"] if end == "above" else []
        ), (end, run.findings)


def _lightning_metrics(
    path: Path, epoch_loss: np.ndarray, names: tuple[str, str, str], extra: str | None = None
) -> None:
    """A Lightning CSVLogger metrics.csv of len(epoch_loss) epochs of 340 steps: the per-step
    training loss `names[0]` logged every 50 steps (`log_every_n_steps=50`: 6-7 points an epoch),
    the per-epoch one `names[1]`, the validation loss `names[2]` and `valid_accuracy` at each
    epoch's end (0.631 throughout: a constant prediction), as RaduTuodr/NN-Classification---Forest-Cover-Type
    `lightning_logs/version_2` (held-out-4). `extra`: one more per-epoch column, the same values."""
    step_name, epoch_name, val_name = names
    header = ["epoch", "step", step_name, epoch_name, val_name, "valid_accuracy"] + ([extra] if extra else [])
    rows = []
    rng = np.random.default_rng(5)
    for e, level in enumerate(epoch_loss):
        for s in range(49, 340, 50):
            cells = {"epoch": e, "step": 340 * e + s, step_name: f"{level + rng.normal(0, 0.01):.6g}"}
            rows.append(cells)
        end = {"epoch": e, "step": 340 * e + 339, epoch_name: f"{level:.6g}", val_name: f"{0.82 - 0.002 * e:.6g}"}
        end["valid_accuracy"] = "0.631"
        if extra:
            end[extra] = f"{level:.6g}"
        rows.append(end)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(r.get(c, "")) for c in header) + "\n" for r in rows))


def test_fa18_an_epoch_level_training_loss_is_judged_where_the_step_stream_is_too_short(tmp_path):
    # A per-step training loss logged every 50 steps has 61 points in 9 epochs: too few for
    # loss-plateau (100), which then said nothing, leaving the per-epoch column unread (Lightning's
    # `train_loss_epoch`; pytorch_tabular's `train_loss_0`, the loss of its one output). The epoch
    # column is long enough for every loss-curve check: it is judged, and the stalled run (the loss
    # 0.88 -> 0.82 and flat, the accuracy constant) is a plateau. A healthy fall stays silent, and
    # so does `train_loss_0` beside a `train_loss_1` (one term of a sum, not the loss).
    e = np.arange(9)
    stalled = 0.817 + 0.066 * np.exp(-2 * e)
    falling = 0.9 * np.exp(-e / 3) + 0.05
    layouts = {
        "lightning": ("train_loss_step", "train_loss_epoch", "val_loss", None),
        "tabular": ("train_loss", "train_loss_0", "valid_loss", None),
        "tabular-two-outputs": ("train_loss", "train_loss_0", "valid_loss", "train_loss_1"),
    }
    for name, (step_name, epoch_name, val_name, extra) in layouts.items():
        for shape, curve in (("stalled", stalled), ("falling", falling)):
            path = tmp_path / name / shape / "metrics.csv"
            _lightning_metrics(path, curve, (step_name, epoch_name, val_name), extra)
            result = mlcheck.analyze(path)
            (run,) = result.runs
            plateau = [f for f in run.findings if f.check == "loss-plateau" and f.severity.value == "warning"]
            judged = shape == "stalled" and extra is None
            assert bool(plateau) == judged, (name, shape, run.findings)
            assert any("judged instead" in line for line in run.info) == (extra is None), (name, shape, run.info)


# --- yolo19: YOLO's rate and a step stream logged less than once an epoch (issue 12) ---


def _yolo_rates_file(path: Path, header: str, bias_group: int | None, weights: np.ndarray) -> np.ndarray:
    """An Ultralytics results.csv of a 30-epoch run from scratch whose loss stalls (0.17, noise
    0.002), the learning rate of each parameter group as Ultralytics logs it (`x/lr{k}`, `lr/pg{k}`):
    the biases' group (`bias_group`) falls from `warmup_bias_lr` 0.1 to the schedule over the 3
    warm-up epochs while every other group rises from 0 (`weights`: the rate after each epoch).
    Returns the weights' rate written."""
    columns = header.split(",")
    rates = [c for c in columns if c.startswith(("x/lr", "lr/pg"))]
    n = len(weights)
    e = np.arange(n)
    rng = np.random.default_rng(0)
    train, val = 0.17 + rng.normal(0, 0.002, n), 0.16 + rng.normal(0, 0.002, n)
    bias = np.where(e < 3, 0.1 + (weights - 0.1) * np.minimum((e + 1) / 3, 1), weights)
    rows = []
    for k in range(n):
        cells = {"epoch": str(k), "time": str(10.0 * (k + 1))}
        for c in columns:
            if c.startswith(("train/", "val/")):
                term = c.split("/")[1].split("_")[0]
                share = {"box": 0.5, "cls": 1 / 3, "obj": 1 / 6, "dfl": 1 / 6}[term]
                cells[c] = f"{(train[k] if c.startswith('train/') else val[k]) * share:.6g}"
        for g, c in enumerate(rates):
            cells[c] = f"{(bias if g == bias_group else weights)[k]:.6g}"
        rows.append(",".join(cells.get(c, "0") for c in columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(columns), *rows]) + "\n")
    (path.parent / "opt.yaml").write_text("weights: ''\ncfg: yolov5s.yaml\nepochs: 30\n")  # from scratch
    return weights


def test_yolo19_a_yolo_warm_up_is_read_from_the_weights_rate_not_the_biases(tmp_path):
    # Ultralytics' bias group falls from warmup_bias_lr 0.1 during the warm-up while the weights'
    # groups rise from 0; it is group 0 in YOLOv5's smart_optimizer and earlier Ultralytics, group 2
    # in YOLOv5 before it and in the current trainer; group 1 is never the biases'. Read as group
    # 0, a stall at epoch 8 of 30 (rate 0.0074 of the schedule's 0.0093 peak) was blamed on a rate
    # "fallen to 0.00736, 0.11x its peak of 0.07": the biases' warm-up start. Read from the
    # weights' group, the plateau keeps its WARNING with the usual advice; a rate that did fall (a
    # schedule that halves it every epoch) is still named, in every layout.
    n = 30
    e = np.arange(n)
    linear = 0.01 * ((1 - e / n) * 0.99 + 0.01)  # lr0 0.01, lrf 0.01: Ultralytics' defaults
    warm = np.where(e < 3, linear * (e + 1) / 3, linear)
    halving = np.where(e < 3, warm, 0.0093 * 0.5 ** (e - 2.0))
    layouts = {
        "v5": (_YOLO5, 0),  # smart_optimizer: biases, weights with decay, BN weights
        "v5-before-smart-optimizer": (_YOLO5, 2),  # BN weights, weights with decay, biases
        "v8": (_YOLO8, 0),  # BaseTrainer.build_optimizer before the current order
        "current": (_YOLO8, 2),  # optim.<name>(params=[weights, BN weights, biases])
    }
    for name, (header, bias_group) in layouts.items():
        for schedule, weights in (("linear", warm), ("halving", halving)):
            path = tmp_path / name / schedule / "results.csv"
            written = _yolo_rates_file(path, header, bias_group, weights)
            (run,) = mlcheck.analyze(path).runs
            (plateau,) = [f for f in run.findings if f.check == "loss-plateau"]
            assert plateau.severity.value == "warning", (name, schedule, plateau)
            assert run.series["lr"] == "lr", (name, run.series)
            fallen = "The learning rate has fallen to" in plateau.hint
            assert fallen == (schedule == "halving"), (name, schedule, plateau.hint)
            if fallen:
                assert f"its peak of {written.max():.3g}" in plateau.hint, (name, plateau.hint)
            assert "peak of 0.07" not in plateau.hint and "peak of 0.1" not in plateau.hint, (name, plateau.hint)


def _sparse_logs(folder: Path, points: list[tuple[int, int, float]]) -> tuple[Path, Path]:
    """A Lightning CSVLogger metrics.csv and a TensorBoardLogger event file of `train_loss` alone
    (no validation), each point (epoch, step, value) in its own row beside Lightning's `epoch`."""
    csv_path = folder / "csv" / "metrics.csv"
    csv_path.parent.mkdir(parents=True)
    csv_path.write_text("epoch,step,train_loss\n" + "".join(f"{e},{s},{v}\n" for e, s, v in points))
    steps = np.array([s for _, s, _ in points])
    curves = {
        "train_loss": (steps, np.array([v for _, _, v in points])),
        "epoch": (steps, np.array([float(e) for e, _, _ in points])),
    }
    write_with_writer(folder / "tb", interleave(curves))
    return csv_path, folder / "tb"


def test_yolo19_a_loss_logged_every_n_steps_fewer_than_once_an_epoch_is_a_step_stream(tmp_path):
    # Trainer(limit_val_batches=0, log_every_n_steps=50) over 30-batch epochs, 6 epochs (a real
    # fit's metrics.csv: rows at steps 49, 99, 149 in epochs 1, 3, 4): no validation curve marks
    # the epochs' ends, and the count of points fitted the epochs, so the stream was read as an
    # epoch curve ("has 3 epoch(s) and no per-step values", "4 epochs"). The epoch column beside
    # the step tells them apart: evenly spaced steps whose epochs skip unevenly are a step stream.
    # A value logged every other epoch (steps and epochs both even) and one with an epoch missing
    # (steps and epochs skip together) stay epoch curves.
    stream = [(1, 49, 0.372), (3, 99, 0.215), (4, 149, 0.182)]
    every_other = [(e, 30 * (e + 1) - 1, 0.5 - 0.02 * e) for e in (1, 3, 5, 7)]
    missing = [(e, 30 * (e + 1) - 1, 0.5 - 0.02 * e) for e in (0, 1, 2, 4, 5)]
    for name, points, per_step in (
        ("stream", stream, True),
        ("every-other", every_other, False),
        ("missing", missing, False),
    ):
        for path in _sparse_logs(tmp_path / name, points):
            (run,) = mlcheck.analyze(path).runs
            key = "train_loss" if per_step else "epoch_train_loss"
            assert run.series.get(key) == "train_loss", (name, path, run.series)
            if per_step:
                assert run.epochs is None, (name, path, run.epochs)
                assert any("has 3 logged point(s)" in line for line in run.info), (name, path, run.info)
                assert not any("epoch(s) and no per-step values" in line for line in run.info), (name, run.info)
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path / "stream" / "csv" / "metrics.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "(lightning-csv, to step 149)" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "4 epochs" not in done.stdout + done.stderr


def test_corpus20_a_total_loss_named_loss_total_is_the_training_loss(tmp_path):
    # a training loop that logs its summed objective and one of its terms per epoch
    # (GolfBravoSierra/Projeto-Nimbus's `training_history.csv`, held-out-8:
    # `epoch,train_loss_total,train_loss_ce,val_loss,train_acc,val_acc`): analyze read no training
    # loss ("only the validation loss"), so `train-val-gap` could not compare the two
    train, val = _overfitting()
    rows = "".join(f"{e + 1},{t:.6g},{t * 0.6:.6g},{v:.6g},0.9,0.6\n" for e, (t, v) in enumerate(zip(train, val)))
    path = tmp_path / "training_history.csv"
    path.write_text("epoch,train_loss_total,train_loss_ce,val_loss,train_acc,val_acc\n" + rows)

    (run,) = mlcheck.analyze(path).runs

    assert run.series.get("epoch_train_loss", run.series.get("loss")) == "train_loss_total", run.series
    assert run.series["val_loss"] == "val_loss", run.series
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings
    # `loss_total` is `total_loss` in the other word order, at every split and level
    for name in ("loss_total", "train/loss_total", "val_loss_total", "train_loss_total_epoch"):
        assert classify(name) == classify(name.replace("loss_total", "total_loss")), name


# held-out-8 `aryan-82-digit_recogn` (MNIST, Keras CSVLogger history) and held-out-9
# `elisonsher-anime_face_r` (fastai), their epoch, training and validation losses as logged
_ARYAN_82 = [
    (0.32096, 0.053175), (0.10336, 0.044493), (0.082662, 0.032289), (0.069216, 0.024671), (0.059428, 0.024581),
    (0.056237, 0.026176), (0.048597, 0.028956), (0.040656, 0.022528), (0.036518, 0.021304), (0.033302, 0.020082),
    (0.034027, 0.023548), (0.035178, 0.022622), (0.033789, 0.022257), (0.030154, 0.020669), (0.028468, 0.019447),
    (0.030441, 0.01919), (0.030634, 0.020378), (0.029019, 0.021325), (0.029843, 0.023171), (0.025735, 0.016127),
]  # fmt: skip
_ELISON = [
    (0.90696, 0.51021), (0.33855, 0.29299), (0.20224, 0.2394), (0.1538, 0.16645), (0.15074, 0.18426),
    (0.12305, 0.15046), (0.11768, 0.14943), (0.0973, 0.19392), (0.10233, 0.16431), (0.06919, 0.18541),
    (0.07846, 0.15675), (0.07627, 0.13363), (0.07096, 0.16417), (0.05461, 0.15114), (0.04195, 0.13094),
    (0.05038, 0.12088), (0.04986, 0.11881), (0.05706, 0.14488), (0.0412, 0.15702), (0.03602, 0.12519),
    (0.04728, 0.11055), (0.04378, 0.10771), (0.03429, 0.10416), (0.03705, 0.15325), (0.03348, 0.11367),
]  # fmt: skip


def test_fa24_a_rise_whose_log_reaches_its_single_lowest_epoch_at_the_end_is_info(tmp_path):
    # A train-val-gap WARNING on a noisy validation loss whose log then reaches its single lowest
    # epoch within its last 3 (README rule 5 of benchmarks/reallogs: healthy) stood at the end of
    # analyze: the mean of the last 3 validations carries the noise of the epochs around that
    # minimum, so it is not the lowest 3-epoch mean of the run. The checkpoint the WARNING points
    # to is no better than the end: INFO. The same logs cut where the lowest epoch is earlier, or
    # where the epoch reached is no lower than the best epoch the WARNING named, still warn.
    cases = {
        "aryan-all": (_ARYAN_82, "info"),  # ends at its minimum (0.01613 at 20)
        "aryan-to-19": (_ARYAN_82[:19], "warning"),  # minimum at 16, 3 epochs before the end
        "elison-all": (_ELISON, "info"),  # minimum 0.1042 at 23 of 25
        "elison-to-19": (_ELISON[:19], "warning"),  # minimum at 17 is the best epoch named itself
    }
    for name, (rows, severity) in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text("epoch,loss,val_loss\n" + "".join(f"{k},{t},{v}\n" for k, (t, v) in enumerate(rows, 1)))
        (run,) = mlcheck.analyze(path).runs
        gap = [f for f in run.findings if f.check == "train-val-gap" and f.key == "overfit"]
        assert gap and gap[0].epoch == 19, (name, run.findings)
        assert gap[0].severity.value == severity, (name, gap[0])
        # over39: the check's own "rise passed" (back to the best level's mean) may tell it first
        told = "ends at its best epoch" in gap[0].message or "the rise passed" in gap[0].message
        assert told == (severity == "info"), (name, gap[0].message)


# --- corpus26: `testing_` as the test split's word (issue 12; docs/benchmarks.md, held-out-10) ---


def test_corpus26_a_testing_loss_beside_a_training_loss_is_read_as_the_validation_curve(tmp_path):
    # held-out-10's JonathanALevine/Capstone writes `training_loss,testing_loss` (a pandas frame with
    # its index column): `training` was the train split's word but `testing` was no split word, so
    # `testing_loss` was read as a qualified training loss ("testing" loss) and the run had no
    # validation curve; it is now a test curve, read as the validation loss as `test_loss` is
    train, val = _overfitting()
    path = tmp_path / "training_losses.csv"
    path.write_text(
        ",training_loss,testing_loss\n" + "".join(f"{e},{t:.6g},{v:.6g}\n" for e, (t, v) in enumerate(zip(train, val)))
    )

    (run,) = mlcheck.analyze(path).runs

    assert run.series["val_loss"] == "testing_loss" and "training_loss" in run.series.values(), run.series
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings
    assert classify("testing_accuracy").role == "ignore" and classify("training_accuracy").role == "train_metric"


# --- corpus29: `Losses` as the loss word (issue 12; docs/benchmarks.md, held-out-11) ---


def test_corpus29_train_losses_and_test_losses_columns_are_the_loss_curves(tmp_path):
    # held-out-11's ZzzzzzzSkyward/MultiModalityProteinLigandAffinity writes `Train Losses,Test Losses`
    # (the names of the lists its loop appended each epoch's loss to, no epoch column): `losses` was no
    # loss word, so analyze found no loss curve and refused the file; they are now the training loss
    # and the test curve read as the validation loss (tested every epoch, as `test_loss` is)
    train, val = _overfitting()
    path = tmp_path / "loss.csv"
    path.write_text("Train Losses,Test Losses\n" + "".join(f"{t:.6g},{v:.6g}\n" for t, v in zip(train, val)))

    (run,) = mlcheck.analyze(path).runs

    assert run.series["val_loss"] == "Test Losses" and "Train Losses" in run.series.values(), run.series
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings
    # a loss named by its kind in several words stays unread, as before (`ff_train_losses`)
    assert classify("ff_train_losses").role == "ignore" and classify("val_losses").role == "val_loss"


# --- corpus32: `dev` as the validation split's word (issue 12; docs/benchmarks.md, held-out-12) ---


def test_corpus32_dev_loss_beside_train_loss_is_the_validation_curve(tmp_path):
    # held-out-12's tomelf/RNN-POS-Tagger-TLE saves a pandas frame `,dev_accuracy,dev_loss,train_accuracy,
    # train_loss` (an unnamed index column, one row an epoch): `dev` (the name NLP corpora give their
    # validation split, CoNLL's `dev` file) was no split word, so analyze read a training loss alone and
    # no validation curve; `dev_loss` and `dev_accuracy` are now the validation loss and metric
    train, val = _overfitting()
    path = tmp_path / "training_stats.csv"
    rows = "".join(
        f"{k},{0.9 - v / 10:.6g},{v:.6g},{0.95 - t / 10:.6g},{t:.6g}\n" for k, (t, v) in enumerate(zip(train, val))
    )
    path.write_text(",dev_accuracy,dev_loss,train_accuracy,train_loss\n" + rows)

    (run,) = mlcheck.analyze(path).runs

    assert run.series["val_loss"] == "dev_loss" and "train_loss" in run.series.values(), run.series
    assert any(f.check == "train-val-gap" and f.severity.value != "info" for f in run.findings), run.findings
    assert classify("dev_accuracy").role == "val_metric" and classify("loss_dev").role == "val_loss"
    # a word that only holds `dev` stays what it was
    assert classify("device_loss").role == "loss" and classify("std_dev").role == "ignore"
