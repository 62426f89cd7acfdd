"""What held-out-14 of the real-log corpus showed (issue 12, branch real38): four raw layouts
`mlcheck analyze` could not read, a short run whose loss diverged at its last epoch, and a
training loss 1e12x its validation loss blamed on the validation data. Each file is written like
the real one (benchmarks/reallogs/build_raw14.py names the repositories) and read by the command."""

from __future__ import annotations

import json
import subprocess
import sys

# an overfitting run: the validation loss is lowest at the 4th epoch (0-based 3), then climbs
LOSS = [0.9, 0.7, 0.5, 0.4, 0.35, 0.3, 0.27, 0.25, 0.22, 0.2]
VAL = [0.8, 0.6, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def _analyze(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def _loud(payload: dict) -> list[dict]:
    return [f for f in payload["findings"] if f["severity"] != "info"]


def test_a_losses_json_keyed_by_split_is_read_as_the_losses(tmp_path):
    """RaniaMostafa0/vae-cnn-mnist's `losses.json`: `{"train": [...], "val": [...]}`."""
    (tmp_path / "losses.json").write_text(json.dumps({"train": LOSS, "val": VAL}))
    payload = _analyze(tmp_path)
    assert [r["name"] for r in payload["runs"]] == ["losses.json"]
    (finding,) = _loud(payload)
    assert finding["check"] == "train-val-gap" and finding["evidence"]["best_epoch"] == 3


def test_a_loss_settings_json_is_not_taken_for_a_log(tmp_path):
    (tmp_path / "loss_config.json").write_text(json.dumps({"type": "ce", "weight": 0.5}))
    (tmp_path / "history.json").write_text(json.dumps({"loss": LOSS, "val_loss": VAL}))
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert "loss_config.json" not in done.stdout + done.stderr


def test_a_keras_csvlogger_file_under_a_title_line_is_read(tmp_path):
    """ManuMollon261297/Speech-Digit-Detector: `model_history_log` above a `;` CSVLogger header, CRLF."""
    rows = ["model_history_log", "epoch;accuracy;loss;val_accuracy;val_loss"]
    rows += [f"{k};0.5;{t};0.5;{v}" for k, (t, v) in enumerate(zip(LOSS, VAL))]
    (tmp_path / "model_history_log.csv").write_text("\r\n".join(rows) + "\r\n")
    payload = _analyze(tmp_path)
    assert [(r["name"], r["format"]) for r in payload["runs"]] == [("model_history_log.csv", "keras-csv")]
    (finding,) = _loud(payload)
    assert finding["check"] == "train-val-gap" and finding["evidence"]["best_epoch"] == 3


def test_lightning_metrics_under_a_finetuning_namespace_are_read(tmp_path):
    """FranciscoREchevarria/Avance-5: `finetuning/train_loss_step`, `finetuning/train_loss_epoch`,
    `finetuning/val_loss` in a Lightning `metrics.csv`."""
    head = "epoch,finetuning/train_loss_epoch,finetuning/train_loss_step,finetuning/val_loss,step"
    rows, step = [head], 0
    for epoch, (t, v) in enumerate(zip(LOSS, VAL)):
        for _ in range(4):
            step += 10
            rows.append(f"{epoch},,{t},,{step}")
        rows.append(f"{epoch},,,{v},{step}")
        rows.append(f"{epoch},{t},,,{step}")
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    payload = _analyze(tmp_path)
    assert [r["format"] for r in payload["runs"]] == ["lightning-csv"]
    (finding,) = _loud(payload)
    assert finding["check"] == "train-val-gap"


def test_a_sweeps_trloss_column_is_the_training_loss(tmp_path):
    """dschappler/clothing_style_evaluator: `model #;model name;trloss;val loss;epoch`."""
    rows = ["model #;model name;trloss;val loss;epoch"]
    rows += [f"1;dense64;{t * 1000:.0f};{v * 1000:.0f};{k + 1}" for k, (t, v) in enumerate(zip(LOSS, VAL))]
    (tmp_path / "learning_curves.csv").write_text("\n".join(rows) + "\n")
    payload = _analyze(tmp_path)
    (finding,) = _loud(payload)
    assert finding["check"] == "train-val-gap"


def _keras_csv(tmp_path, loss, val):
    rows = ["epoch,loss,val_loss"] + [f"{k},{t},{v}" for k, (t, v) in enumerate(zip(loss, val))]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_a_seven_epoch_run_whose_last_epoch_undid_its_training_is_diverging(tmp_path):
    """FabianoMendonca/molecular-docking-with-deep-learning's curve (7 epochs, too few for the climb)."""
    loss = [3.883, 3.028, 2.756, 2.493, 2.197, 1.889, 3.968]
    val = [2.894, 2.657, 2.518, 2.618, 2.614, 2.872, 3.184]
    (finding,) = _loud(_analyze(_keras_csv(tmp_path, loss, val)))
    assert finding["check"] == "loss-divergence" and finding["severity"] == "error"
    assert finding["evidence"]["best_epoch"] == 5 and finding["evidence"]["initial_loss"] == 3.883


def test_a_short_run_that_rose_and_came_back_or_stayed_below_its_start_is_not_diverging(tmp_path):
    came_back = _keras_csv(tmp_path, [0.121, 0.403, 0.288, 0.233, 0.195, 0.171], [0.047] * 6)
    assert not [f for f in _loud(_analyze(came_back)) if f["check"] == "loss-divergence"]
    below_start = _keras_csv(tmp_path, [3.9, 2.0, 1.5, 1.2, 1.0, 2.5], [2.9, 2.0, 1.6, 1.3, 1.1, 1.1])
    assert not [f for f in _loud(_analyze(below_start)) if f["check"] == "loss-divergence"]


def test_a_training_loss_1e12x_the_validation_loss_is_named_not_the_validation_data(tmp_path):
    """JohnBBB42/Hidden_Markov_Miracles' version 7: training loss 1e12-1e13, validation 49-61."""
    loss = [8.73e13, 1.077e14, 3.549e13, 3.405e13, 2.14e13, 1.034e13, 2.295e13, 1.344e13, 3.08e12, 5.31e12]
    val = [61.3, 60.34, 58.64, 57.28, 55.72, 54.39, 52.94, 51.5, 50.24, 48.84]
    (finding,) = _loud(_analyze(_keras_csv(tmp_path, loss, val)))
    assert finding["check"] == "suspicious-val" and finding["evidence"]["ratio_min"] >= 1000
    assert "training loss itself is broken" in finding["message"] and "leaked or easier" not in finding["message"]
