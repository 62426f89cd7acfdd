"""`lr-too-low`'s slow fall read from a log of epoch points alone (issue 12, branch `fa35`).

A rate too small moves the weights so little that the loss falls at a steady pace ("linear"
improvements, CS231n); a run stopped long before its model converged falls at a steady pace too,
at a good rate. Only the size of the weights' updates tells the two apart: the live callback
measures it (the update/weight ratio), a log of epoch points has none, and `mlcheck analyze` then
says the finding at INFO, with why. Two healthy real runs were WARNINGs on main:
- held-out-3's `ML-with-skle-11-training-deep-neural-networks-c74-5` (handson-ml3's chapter 11
  `model_B`: SGD 1e-3, 7 steps an epoch, 20 epochs), told at epoch 10 "only 8.3% in 10 epochs";
- held-out-11's `kuangxiaok-ee6483_proje-training-logs-csv-fit4` (a ViT-B/16 from scratch at Adam
  1e-5, DeiT's rate scaled to its batch of 16, 10 epochs), told at epoch 6 "only 9.8% in 6 epochs".
The same fall in a log that holds its steps (a Lightning `metrics.csv` logged every step) is read
as before (a WARNING), and the live path is untouched
(tests/checks/test_lr_too_low_short_runs.py: a Lightning fit at Adam 1e-6 told live)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mlcheck

# the two real runs' copies (benchmarks/reallogs/runs/), training and validation loss per epoch
C74_LOSS = [0.7071, 0.6986, 0.6906, 0.6829, 0.6758, 0.6687, 0.6616, 0.6548, 0.6485, 0.6427]
C74_LOSS += [0.6367, 0.6311, 0.6251, 0.6195, 0.6138, 0.6081, 0.6027, 0.5971, 0.5917, 0.5864]
C74_VAL = [0.7032, 0.6954, 0.6875, 0.68, 0.6729, 0.6656, 0.6587, 0.6523, 0.6463, 0.6402]
C74_VAL += [0.6348, 0.6285, 0.6229, 0.617, 0.6112, 0.6056, 0.5999, 0.5946, 0.5892, 0.5838]
KUANG_LOSS = [0.6712, 0.6516, 0.6394, 0.6206, 0.6054, 0.5916, 0.5798, 0.5591, 0.5435, 0.5268]
KUANG_VAL = [0.6536, 0.6411, 0.6309, 0.6347, 0.5978, 0.5854, 0.5738, 0.5584, 0.5491, 0.5584]


def _csv(path: Path, columns: dict[str, list[float] | np.ndarray]) -> Path:
    """A CSVLogger-form file of these per-epoch columns, epochs counted from 1 as the copies hold them."""
    names = list(columns)
    rows = [",".join([str(e + 1), *(f"{columns[c][e]:.7g}" for c in names)]) for e in range(len(columns[names[0]]))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(["epoch", *names]), *rows]) + "\n")
    return path


def _told(path: Path) -> list[mlcheck.Finding]:
    (run,) = mlcheck.analyze(path).runs
    return [f for f in run.findings if f.check in {"lr-too-low", "loss-plateau"}]


def test_the_two_healthy_real_epoch_logs_are_told_at_info_with_why(tmp_path):
    for name, loss, val, epoch in (("c74-5", C74_LOSS, C74_VAL, 10), ("kuangxiaok", KUANG_LOSS, KUANG_VAL, 6)):
        told = _told(_csv(tmp_path / name / "training.log", {"loss": loss, "val_loss": val}))
        # main: one `lr-too-low` WARNING at this epoch
        assert [(f.check, f.severity.value, f.epoch) for f in told] == [("lr-too-low", "info", epoch)], (name, told)
        (f,) = told
        assert f.evidence["epoch_points_only"] is True and "demoted_in_hindsight" not in f.evidence, f
        assert "only" in f.message and "cannot tell them apart" in f.message, f.message
        assert "update/weight ratio" in f.hint and f.hint.endswith("not holding it low."), f.hint
    # and the whole log says nothing above INFO (the command as users run it)
    (run,) = mlcheck.analyze(tmp_path / "c74-5" / "training.log").runs
    assert not [f for f in run.findings if f.severity.value != "info"], run.findings


def _metrics_csv(path: Path, per_epoch: list[float], steps_per_epoch: int, seed: int = 0) -> Path:
    """A Lightning CSVLogger `metrics.csv`: `train_loss_step` every step around the epoch's level
    (noise 0.3% of it), then the epoch's `train_loss_epoch` and `val_loss` row."""
    rng = np.random.default_rng(seed)
    lines = ["epoch,step,train_loss_step,train_loss_epoch,val_loss"]
    step = 0
    for e, level in enumerate(per_epoch):
        values = level * (1 + rng.normal(0, 0.003, steps_per_epoch))
        for v in values:
            lines.append(f"{e},{step},{v:.6g},,")
            step += 1
        lines.append(f"{e},{step - 1},,{values.mean():.6g},{level - 0.003:.6g}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_same_fall_in_a_log_of_steps_is_read_as_before(tmp_path):
    # c74-5's pace, logged every step (20 steps an epoch, 400 in all): the step stream is there, so
    # the finding is not one read from epoch points alone and keeps its severity
    told = _told(_metrics_csv(tmp_path / "csv" / "version_0" / "metrics.csv", C74_LOSS, 20))
    assert told and not [f for f in told if f.evidence.get("epoch_points_only")], told
    assert {f.severity.value for f in told} == {"warning"}, told
