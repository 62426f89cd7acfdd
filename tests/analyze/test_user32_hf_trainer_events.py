"""user32: `mlcheck analyze` on a Hugging Face Trainer's output folder (`report_to=["tensorboard"]`),
its event files under `runs/`, from a real `Trainer.train()`. A run shorter than `logging_steps`
(default 500) logs no `train/loss`, only the run's mean `train/train_loss` once at its end; the
events were read as a training curve of one point ("has 1 epoch(s) and no per-step values"),
"no epoch tag" though `train/epoch` is there, and the advice was Lightning's
(`Trainer(log_every_n_steps=1)`). Now the events are known as the Trainer's: the summary is left
out as it is from `trainer_state.json`, the rows are its evaluations, and the advice names
`TrainingArguments(logging_steps=...)`. With `logging_steps` set, `train/loss` stays the curve."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402


def _tokens(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(10, 100, size=(n, 16))
    labels = rng.integers(0, 2, size=n)
    ids[labels == 1, 1] = 7
    return [{"input_ids": torch.tensor(row), "labels": int(y)} for row, y in zip(ids, labels)]


def _train(out, **args) -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    arguments = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=2,
        per_device_train_batch_size=32,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **args,
    )
    model = BertForSequenceClassification(config)
    Trainer(model=model, args=arguments, train_dataset=_tokens(128, 0), eval_dataset=_tokens(64, 1)).train()


def _analyze(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "mlcheck", "analyze", str(path), "--json"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    return run


def test_user32_trainer_events_shorter_than_logging_steps_get_the_trainers_advice(tmp_path):
    _train(tmp_path / "out")
    run = _analyze(tmp_path / "out" / "runs")
    said = " ".join(run["info"] + run["notes"])
    assert "train_loss" not in run["series"]  # the run's mean is no curve
    assert "logging_steps" in said and "log_every_n_steps" not in said
    assert "Hugging Face Trainer's log" in said and "no epoch tag" not in said


def test_user32_trainer_events_with_logging_steps_keep_the_training_curve(tmp_path):
    _train(tmp_path / "out", logging_steps=1)
    run = _analyze(tmp_path / "out" / "runs")
    assert run["series"]["train_loss"] == "train/loss"
    assert "log_every_n_steps" not in " ".join(run["info"] + run["notes"])
