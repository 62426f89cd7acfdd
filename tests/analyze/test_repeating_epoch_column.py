"""A CSV whose `Epoch` column repeats beside a pandas index that counts its rows (issue 12;
docs/benchmarks.md, held-out-12's LyricLab): each row is an evaluation, and the rows are the
run's axis, so a spike logged in one row is not hidden behind the epoch's last row."""

from __future__ import annotations

import numpy as np

import mlcheck

HEADER = ",Epoch,Learning Rate,sub_epoch,Training Loss,Valid. Loss\n"


def _sweep_rows(spike: bool) -> str:
    """laasyaaprasad/LyricLab's `training_stats.csv` layout: a loop over the number of epochs to
    run (`Epoch`: 2, then 5, then 8) and the learning rate, one row per evaluation (`sub_epoch`),
    saved with `pd.DataFrame(rows).to_csv(path)`. The losses fall from 6.9 to ~3.2; with `spike`,
    the training loss jumps 6x at one row (and validation's with it) and recovers within three."""
    rng = np.random.default_rng(0)
    rows, k = [], 0
    for epochs in (2, 5, 8):
        for sub in range(1, epochs + 1):
            train = 3.2 + 3.7 * np.exp(-k / 2) + 0.05 * rng.standard_normal()
            val = 2.9 + 1.2 * np.exp(-k / 3) + 0.05 * rng.standard_normal()
            if spike and k in (9, 10):
                train, val = train * (6.0 if k == 9 else 4.5), val * (6.0 if k == 9 else 1.4)
            rows.append(f"{k},{epochs},{0.1 / (1 + sub):.4g},{sub},{train:.6g},{val:.6g}\n")
            k += 1
    return "".join(rows)


def test_rows_are_the_axis_where_epoch_repeats_beside_a_counting_index(tmp_path):
    path = tmp_path / "training_stats.csv"
    path.write_text(HEADER + _sweep_rows(spike=True))

    (run,) = mlcheck.analyze(path).runs

    # 15 rows, 15 points: read by `Epoch` there were 3 (the last row of each value)
    assert run.epochs == 15, run.epochs
    found = [f for f in run.findings if f.check == "loss-divergence"]
    assert found and found[0].severity.value == "error", run.findings
    assert any("each row is read as an epoch" in note for note in run.notes), run.notes


def test_the_same_layout_without_a_spike_stays_silent(tmp_path):
    path = tmp_path / "training_stats.csv"
    path.write_text(HEADER + _sweep_rows(spike=False))

    (run,) = mlcheck.analyze(path).runs

    assert run.epochs == 15, run.epochs
    assert not [f for f in run.findings if f.severity.value != "info"], run.findings


def test_an_epoch_split_over_a_training_row_and_a_validation_row_is_still_one_epoch(tmp_path):
    # a frame built from one dict per logged value: the training row and the validation row of an
    # epoch share its number and are filled differently, so the epoch joins them (as before)
    path = tmp_path / "history.csv"
    lines = [",epoch,train_loss,val_loss\n"]
    for e in range(12):
        lines.append(f"{2 * e},{e},{1.0 / (e + 1):.6g},\n")
        lines.append(f"{2 * e + 1},{e},,{1.1 / (e + 1):.6g}\n")
    path.write_text("".join(lines))

    (run,) = mlcheck.analyze(path).runs

    assert run.epochs == 12, run.epochs
    assert not any("each row is read as an epoch" in note for note in run.notes)
