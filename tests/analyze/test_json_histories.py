"""Training histories real projects save as JSON, which `mlcheck analyze` refused (issue 12;
held-out-12 and held-out-13 of the real-log corpus): a list of per-epoch records, such records
nested in a larger object, a Hugging Face Trainer's `log_history` list saved alone, a History
dict's repr saved as a JSON string, and a dict holding two fits' or two heads' curves."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mlcheck
from mlcheck.analyze.csvlogs import read_csv_log
from mlcheck.errors import BadInput

# a run that overfits: the validation loss is lowest at the 4th epoch (0-based 3), then climbs
LOSS = [0.9, 0.7, 0.5, 0.4, 0.35, 0.3, 0.27, 0.25, 0.22, 0.2]
VAL = [0.8, 0.6, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# a healthy run: both fall and level off together
HEALTHY_LOSS = [1.0, 0.7, 0.55, 0.47, 0.42, 0.39, 0.37, 0.36, 0.355, 0.35]
HEALTHY_VAL = [0.95, 0.72, 0.6, 0.52, 0.48, 0.46, 0.45, 0.445, 0.44, 0.438]


def _records(loss, val, **extra):
    return [{"epoch": k + 1, "train_loss": t, "val_loss": v, **extra} for k, (t, v) in enumerate(zip(loss, val))]


def test_a_list_of_per_epoch_records_is_read_and_its_overfitting_found_by_the_command(tmp_path):
    path = tmp_path / "training_log.json"
    path.write_text(json.dumps(_records(LOSS, VAL, seconds=1.5, note="ok"), indent=2))
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [(r["name"], r["format"]) for r in payload["runs"]] == [("training_log.json", "json-epoch-records")]
    (finding,) = [f for f in payload["findings"] if f["severity"] != "info"]
    assert finding["check"] == "train-val-gap" and finding["evidence"]["best_epoch"] == 3
    assert "Traceback" not in done.stderr


def test_a_folder_search_reads_records_named_like_a_history(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train_history.json").write_text(json.dumps(_records(LOSS, VAL), indent=2))
    run = mlcheck.analyze.run(tmp_path)
    assert [(r.name, r.format) for r in run.runs] == [("a/train_history.json", "json-epoch-records")]


def test_records_read_as_the_history_dict_of_the_same_fit(tmp_path):
    """Epochs from 0 (the records' `epoch` from 1), the same floats; `epoch` and text are no curves."""
    records = tmp_path / "train_log.json"
    records.write_text(json.dumps(_records(LOSS, VAL, model="cnn")))
    lists = tmp_path / "history.json"
    lists.write_text(json.dumps({"train_loss": LOSS, "val_loss": VAL}))
    fmt, curves, columns = read_csv_log(records)
    assert fmt == "json-epoch-records" and columns == ["train_loss", "val_loss"]
    _, from_lists, _ = read_csv_log(lists)
    for name in columns:
        np.testing.assert_array_equal(curves[name].steps, from_lists[name].steps)
        np.testing.assert_array_equal(curves[name].values, from_lists[name].values)


@pytest.mark.parametrize(
    "document",
    [
        lambda recs: {"config": {"lr": 0.001, "epochs": 10}, "history": recs},
        lambda recs: {"steps": [2.0, 1.5, 1.2], "epochs": recs},  # a per-step list beside them: not the run
    ],
)
def test_records_nested_in_a_larger_object_are_read(tmp_path, document):
    path = tmp_path / "train_history.json"
    path.write_text(json.dumps(document(_records(LOSS, VAL)), indent=4))
    run = mlcheck.analyze.run(path)
    (one,) = run.runs
    assert one.format == "json-epoch-records" and one.epochs == 10
    assert [f.check for _, f in run.findings if f.severity >= mlcheck.Severity.WARNING] == ["train-val-gap"]


def test_nested_splits_epoch_from_zero_and_nonfinite_strings(tmp_path):
    path = tmp_path / "log.json"
    rows = [{"epoch": k, "train": {"loss": t}, "val": {"loss": v}} for k, (t, v) in enumerate(zip(LOSS, VAL))]
    rows[4]["val"]["loss"] = "nan"  # strict JSON writers' NaN
    path.write_text(json.dumps(rows))
    fmt, curves, columns = read_csv_log(path)
    assert fmt == "json-epoch-records" and columns == ["train/loss", "val/loss"]
    assert curves["val/loss"].steps.tolist() == list(range(10))  # `epoch` from 0 kept as written
    assert np.isnan(curves["val/loss"].values[4])


def test_records_whose_epochs_do_not_increase_are_taken_in_order(tmp_path):
    path = tmp_path / "log.json"
    rows = _records(LOSS, VAL)
    rows[5]["epoch"] = 2  # a second fit appended, or a typo: the list's order is the run's
    path.write_text(json.dumps(rows))
    _, curves, _ = read_csv_log(path)
    assert curves["val_loss"].steps.tolist() == list(range(10))


def test_a_healthy_run_saved_as_records_stays_silent(tmp_path):
    path = tmp_path / "training_metrics.json"
    path.write_text(json.dumps(_records(HEALTHY_LOSS, HEALTHY_VAL, train_accuracy=0.9, val_accuracy=0.88)))
    run = mlcheck.analyze.run(path)
    assert run.runs[0].epochs == 10
    assert not [f for _, f in run.findings if f.severity >= mlcheck.Severity.WARNING]


def test_two_lists_of_records_are_refused_naming_what_to_save(tmp_path):
    path = tmp_path / "log.json"
    path.write_text(json.dumps({"first": _records(LOSS, VAL), "second": _records(LOSS, VAL)}))
    with pytest.raises(BadInput, match=r"2 lists of records \(first, second\)"):
        mlcheck.analyze.run(path)


def test_one_list_of_records_per_split_is_read_side_by_side(tmp_path):
    path = tmp_path / "loss_history.json"
    path.write_text(json.dumps({"train": [{"loss": t} for t in LOSS], "val": [{"loss": v} for v in VAL]}))
    fmt, curves, columns = read_csv_log(path)
    assert fmt == "json-epoch-records" and columns == ["train/loss", "val/loss"]
    np.testing.assert_array_equal(curves["val/loss"].values, VAL)


def test_a_trainer_log_history_list_saved_alone_is_read_as_a_trainer_state(tmp_path):
    """`json.dump(trainer.state.log_history, f)`: step rows with `loss`, evaluation rows with
    `eval_loss`, interleaved, and the end-of-training summary."""
    history = []
    for k in range(1, 9):
        history.append(
            {"loss": 1.0 / k, "grad_norm": 2.0, "learning_rate": 2e-5, "epoch": k - 0.5, "step": 50 * k - 25}
        )
        history.append({"eval_loss": 1.1 / k, "eval_accuracy": 0.5 + k / 20, "epoch": float(k), "step": 50 * k})
    history.append({"train_runtime": 10.0, "train_loss": 0.4, "epoch": 8.0, "step": 400})
    path = tmp_path / "training_history.json"
    path.write_text(json.dumps(history))
    fmt, curves, _ = read_csv_log(path)
    assert fmt == "hf-trainer-state"
    assert curves["eval/loss"].steps.tolist() == [50 * k for k in range(1, 9)]
    assert curves["train/loss"].steps.tolist()[:2] == [25, 75] and "train/train_loss" not in curves
    run = mlcheck.analyze.run(path)
    assert not [f for _, f in run.findings if f.severity >= mlcheck.Severity.WARNING]


def test_a_loops_records_with_a_step_stay_records(tmp_path):
    # a step and an epoch beside a `val_loss` the Trainer never writes: a loop's own records
    path = tmp_path / "log.json"
    path.write_text(json.dumps([{**r, "step": 90 * r["epoch"]} for r in _records(LOSS, VAL)]))
    fmt, _, columns = read_csv_log(path)
    assert fmt == "json-epoch-records" and "step" in columns


def test_a_history_repr_saved_as_a_json_string_is_read(tmp_path):
    path = tmp_path / "training_history.json"
    path.write_text(json.dumps(str({"loss": LOSS, "val_loss": VAL})))  # json.dump(str(history.history), f)
    fmt, curves, columns = read_csv_log(path)
    assert fmt == "keras-history" and columns == ["loss", "val_loss"]
    np.testing.assert_array_equal(curves["val_loss"].values, VAL)


def test_two_heads_and_a_fine_tuning_fit_in_one_dict_are_one_run_each(tmp_path):
    heads = tmp_path / "heads_history.json"
    heads.write_text(
        json.dumps(
            {
                "reg_loss": HEALTHY_LOSS,
                "reg_val_loss": HEALTHY_VAL,
                "reg_mae": HEALTHY_LOSS,
                "cls_loss": LOSS[:8],
                "cls_val_loss": VAL[:8],
            }
        )
    )
    run = mlcheck.analyze.run(heads)
    assert [(r.name, r.epochs) for r in run.runs] == [
        ("heads_history.json (reg_*)", 10),
        ("heads_history.json (cls_*)", 8),
    ]
    assert [(name, f.check) for name, f in run.findings if f.severity >= mlcheck.Severity.WARNING] == [
        ("heads_history.json (cls_*)", "train-val-gap")
    ]
    tuned = tmp_path / "tuned_history.json"
    tuned.write_text(
        json.dumps(
            {"loss": LOSS, "val_loss": VAL, "fine_tune_loss": HEALTHY_LOSS[:6], "fine_tune_val_loss": HEALTHY_VAL[:6]}
        )
    )
    assert [(r.name, r.epochs) for r in mlcheck.analyze.run(tuned).runs] == [
        ("tuned_history.json (unprefixed)", 10),
        ("tuned_history.json (fine_tune_*)", 6),
    ]


def test_keras_multi_output_names_are_one_run(tmp_path):
    # Keras names an output's validation loss `val_<output>_loss`: one model, one run
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"loss": LOSS, "out_loss": LOSS, "val_loss": VAL, "val_out_loss": VAL}))
    assert len(mlcheck.analyze.run(path).runs) == 1
