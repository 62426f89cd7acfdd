"""Long logs replay in linear time (issue 13, item 1): a Keras CSVLogger file of N epochs was
judged in full at every epoch by the epoch-curve checks, each judgement reading every bucket of
the run's bounded curves (~0.5 ms an epoch: 300,000 epochs took ~6 minutes). Those checks now
judge at every epoch while each bucket holds one epoch (the first 256) and then once per new
bucket (`curve.epoch_judgement_due`): the same findings on runs of up to 256 epochs, at most a
bucket later on longer ones. Counted, not timed: the bucket rows the checks read."""

from __future__ import annotations

import numpy as np
import pytest

import mlcheck
from mlcheck.checks import curve, generalization, leakage, learning_rate
from mlcheck.series import Series


def _keras_csv(path, epochs, *, diverge_at=None, overfit_at=None, seed=0):
    """A Keras CSVLogger file (its columns, as Keras sorts them): losses falling to a floor with
    5% noise, validation a little above training; the training loss climbing 20-fold from
    `diverge_at`, or the validation loss climbing from `overfit_at` while training falls on."""
    rng = np.random.default_rng(seed)
    e = np.arange(epochs, dtype=float)
    shape = 2.0 * np.exp(-e / (epochs / 5))
    loss = (shape + 0.1) * (1 + 0.05 * rng.standard_normal(epochs))
    val = (shape + 0.15) * (1 + 0.02 * rng.standard_normal(epochs))
    if diverge_at is not None:
        loss[diverge_at:] *= np.linspace(1, 20, epochs - diverge_at)
    if overfit_at is not None:
        val[overfit_at:] += np.linspace(0, 1.0, epochs - overfit_at)
    acc, val_acc = np.clip(1 - loss / 2.2, 0, 1), np.clip(1 - val / 2.2, 0, 1)
    lr = 1e-3 * 0.5 * (1 + np.cos(np.pi * e / epochs))
    rows = ["epoch,accuracy,loss,lr,val_accuracy,val_loss"]
    rows += [f"{i},{acc[i]:.6f},{loss[i]:.6f},{lr[i]:.8g},{val_acc[i]:.6f},{val[i]:.6f}" for i in range(epochs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _rows_read(monkeypatch, path):
    """(findings, bucket rows the checks materialised while replaying `path`)."""
    read = []
    real = Series._buckets

    def counting(self, include_open):
        out = real(self, include_open)
        read.append(len(out["mean"]))
        return out

    monkeypatch.setattr(Series, "_buckets", counting)
    result = mlcheck.analyze(path)
    monkeypatch.setattr(Series, "_buckets", real)
    return [(f.check, f.severity.value, f.epoch) for _, f in result.findings], sum(read)


def _judging_every_epoch(monkeypatch):
    """The judgement schedule before: every epoch."""
    for module in (curve, generalization, leakage, learning_rate):
        monkeypatch.setattr(module, "epoch_judgement_due", lambda series: True)


def test_bucket_rows_read_grow_slower_than_the_epochs(tmp_path, monkeypatch):
    short = _rows_read(monkeypatch, _keras_csv(tmp_path / "short.csv", 600))
    long = _rows_read(monkeypatch, _keras_csv(tmp_path / "long.csv", 2400))
    assert short[0] == long[0] == []  # healthy
    # 4x the epochs: ~1.6x the judgements (256 + 128 log2(N / 256)) of at most 256 rows each
    # (1.81x the rows, with what is still read at every epoch); judging every epoch read ~3.8x
    # the rows, and a judgement whose cost grew with the run would read ~16x
    assert long[1] < 2.5 * short[1], (short[1], long[1])
    _judging_every_epoch(monkeypatch)
    every = _rows_read(monkeypatch, tmp_path / "long.csv")
    assert every[0] == [] and every[1] > 3 * long[1], (every[1], long[1])


@pytest.mark.parametrize(
    ("epochs", "kind", "check"),
    [
        (200, {"diverge_at": 150}, "loss-divergence"),
        (200, {"overfit_at": 120}, "train-val-gap"),
        (2000, {"diverge_at": 1500}, "loss-divergence"),
        (2000, {"overfit_at": 1200}, "train-val-gap"),
    ],
    ids=lambda v: str(v),
)
def test_findings_as_when_judged_every_epoch(tmp_path, monkeypatch, epochs, kind, check):
    """Up to 256 epochs the very same findings; beyond, the same checks, at most a bucket (the
    run's epochs / 128) later."""
    path = _keras_csv(tmp_path / "run.csv", epochs, **kind)
    found, _ = _rows_read(monkeypatch, path)
    _judging_every_epoch(monkeypatch)
    before, _ = _rows_read(monkeypatch, path)
    assert check in {c for c, _, _ in before}
    if epochs <= 256:
        assert found == before
        return
    assert [(c, s) for c, s, _ in found] == [(c, s) for c, s, _ in before]
    width = 2 ** int(np.ceil(np.log2(epochs / 256)))
    for (_, _, now), (_, _, then) in zip(found, before):
        assert then <= now < then + width, (found, before)


class _CountsStepJudgements(mlcheck.Check):
    id = "counts-step-judgements"

    def reset(self) -> None:
        self.steps: list[int] = []

    def on_step(self, run):
        self.steps.append(run.step)
        return ()


def test_a_replay_cut_at_every_epoch_judges_steps_where_a_live_run_does():
    """`Monitor.log_steps` judged the step checks at the end of every block it was given, and
    the replay hands one block per epoch: 100,000 validation points of a 1M-step log were
    100,000 step judgements instead of the ~31,000 evaluation points a live run has (every 32
    steps, then every bucket). Now a block ending short of an evaluation point judges nothing."""
    steps = np.arange(3000)
    loss = 2.0 / (1 + steps / 100) + 0.1
    live, replay = _CountsStepJudgements(), _CountsStepJudgements()
    one = mlcheck.Monitor(checks=[live], warn=False, default_sinks=False)
    for s in steps.tolist():
        one.log_step(s, loss=float(loss[s]), epoch=s // 10)
    blocks = mlcheck.Monitor(checks=[replay], warn=False, default_sinks=False)
    for start in range(0, 3000, 10):  # an epoch every 10 steps
        blocks.log_steps(steps[start : start + 10], loss=loss[start : start + 10], epoch=start // 10)
        blocks.log_epoch(start // 10, step=start + 9, val_loss=float(loss[start + 9]))
    assert replay.steps == live.steps and 0 < len(live.steps) < 3000 // 10
