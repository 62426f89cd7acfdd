"""fastai's `CSVLogger` `history.csv` and timm's `summary.csv` (issue #12, readers20).

fastai (v1 `fastai/callbacks/csv_logger.py`, v2 `fastai/callback/progress.py` in fastai/fastai)
writes `Recorder.metric_names`: `epoch`, `train_loss`, `valid_loss`, the metrics, `time`
(`00:23`, no number). Its metrics carry no split where only validation computes them (the
default, `Recorder(train_metrics=False)`), so `accuracy` there is the validation accuracy; with
`train_metrics=True` they are `train_<name>` and `valid_<name>`. Layout as in
floleuerer/fastai_ulmfit's README (`epoch,train_loss,valid_loss,accuracy,perplexity,time`).

timm's `train.py` (`timm/utils/summary.py`, `update_summary`, huggingface/pytorch-image-models)
writes `output/train/<experiment>/summary.csv`: `epoch`, `train_<metric>` (`train_loss`),
`eval_<metric>` (`eval_loss`, `eval_top1`, `eval_top5`, in percent) and, in later versions,
`lr`. The rows below are the first epochs of an ImageNet run as a timm user published them
(a README's example of its `summary.csv`: 6.85 / 6.64 at epoch 0, top-1 0.87%).
"""

from __future__ import annotations

import math

import mlcheck
from mlcheck.analyze.csvlogs import read_csv_runs


def _fastai(path, header="epoch,train_loss,valid_loss,accuracy,error_rate,time", epochs=12):
    rows = [header]
    for e in range(epochs):
        train, valid = 1.2 * math.exp(-e / 3) + 0.1, 1.0 * math.exp(-e / 4) + 0.15
        acc = 0.6 + 0.03 * e
        rows.append(f"{e},{train:.6f},{valid:.6f},{acc:.6f},{1 - acc:.6f},00:{12 + e % 3:02d}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fastai_metrics_are_validation_metrics(tmp_path):
    # were read as training metrics (`train_metric:accuracy`): fastai computes them on the
    # validation set, and the checks that weigh a validation accuracy against a rising
    # validation loss did not see it
    path = _fastai(tmp_path / "history.csv")
    (run,) = mlcheck.analyze(path).runs
    assert run.format == "fastai-csv" and run.epochs == 12 and run.notes == []
    assert run.series == {
        "epoch_train_loss": "train_loss",
        "val_loss": "valid_loss",
        "val_metric:accuracy": "valid_accuracy",
        "val_metric:error_rate": "valid_error_rate",
    }
    assert not [f for f in run.findings if f.severity.value != "info"]


def test_fastai_na_is_an_empty_cell(tmp_path):
    # fastai writes `#na#` where an epoch skipped validation: was a note per column ("holds text
    # that is not a number ... '#na#'"), as for "1.#QNAN"
    path = _fastai(tmp_path / "history.csv")
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    lines[1] = ",".join([cells[0], cells[1], "#na#", "#na#", "#na#", cells[-1]])
    path.write_text("\n".join(lines) + "\n")
    (run,) = mlcheck.analyze(path).runs
    assert run.notes == [] and run.format == "fastai-csv"


def test_fastai_with_training_metrics_keeps_its_own_names(tmp_path):
    # Recorder(train_metrics=True): train_loss, train_accuracy, valid_loss, valid_accuracy, time
    path = _fastai(tmp_path / "history.csv", header="epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,time")
    fmt, runs, _ = read_csv_runs(path)
    assert fmt == "keras-csv"  # not fastai's default layout: its names already say the split
    assert {"train_accuracy", "valid_accuracy"} <= set(runs[0].scalars)


def test_a_keras_csv_with_a_time_column_is_no_fastai_log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss,accuracy,time\n" + "".join(f"{e},1,1,0.5,{e}\n" for e in range(5)))
    fmt, runs, _ = read_csv_runs(path)
    assert fmt == "keras-csv" and "accuracy" in runs[0].scalars


def test_timm_summary_csv_is_read_with_eval_as_validation(tmp_path):
    rows = [
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr",
        "0,6.85080099105835,6.6424625,0.8720000042724609,3.3400000009155275,0.0001",
        "1,6.17962772505624,4.606329375,14.981999956054688,33.540000026855466,0.0004",
        "2,5.6329280989510675,3.661601875,28.136000048828127,52.41000006835937,0.0007",
        "3,5.105638538088117,3.17984125,36.43999999023438,61.622000014648435,0.001",
        "4,4.978073426655361,2.793064375,43.54799995605469,68.5580000366211,0.001",
        "5,4.5689898899623325,2.530873125,47.813999946289066,73.12199998535156,0.000999",
    ]
    path = tmp_path / "output" / "train" / "20240101-000000-resnet50-224" / "summary.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    result = mlcheck.analyze(tmp_path)  # found in a folder search: it has an epoch column
    (run,) = result.runs
    assert run.name == "output/train/20240101-000000-resnet50-224/summary.csv"
    assert run.format == "keras-csv" and run.epochs == 6
    assert run.series == {
        "epoch_train_loss": "train_loss",
        "val_loss": "eval_loss",
        "val_metric:top1": "eval_top1",
        "val_metric:top5": "eval_top5",
        "lr": "lr",
    }
    # a training loss far above the validation loss (mixup, label smoothing, a warm-up) is no leak
    assert not [f for f in run.findings if f.severity.value != "info"]
