"""mlcheck watching a Hugging Face `Trainer`: a 2-layer BERT classifier built from a config (no
download) on token ids made here, with a bug planted: the validation set is a slice of the
training set. mlcheck reports `train-val-overlap` during the first evaluation.

    pip install "mlcheck-train[transformers]"
    python examples/transformers_tiny.py          # ~20 s of CPU
    tensorboard --logdir runs/transformers_tiny    # the Trainer's curves beside mlcheck's findings
    mlcheck analyze runs/transformers_tiny         # the same findings, read back afterwards
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from mlcheck.integrations.transformers import MLCheckCallback

VOCAB, LENGTH = 100, 16
OUTPUT_DIR = (
    "runs/transformers_tiny"  # the Trainer writes its TensorBoard run below it (save_strategy="no": no checkpoints)
)


def token_data(n: int, seed: int) -> list[dict]:
    """Sequences of random token ids; the label says whether token 7 appears in the sequence."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(10, VOCAB, size=(n, LENGTH))
    ids[:, 0] = 2  # [CLS]
    labels = rng.integers(0, 2, size=n)
    where = rng.integers(1, LENGTH, size=n)
    ids[labels == 1, where[labels == 1]] = 7
    return [{"input_ids": torch.tensor(row), "labels": int(y)} for row, y in zip(ids, labels)]


def main() -> None:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=LENGTH,
        num_labels=2,
    )
    train = token_data(512, seed=0)
    val = train[:128]  # the bug: validation copied from training
    cb = MLCheckCallback()
    args = TrainingArguments(
        output_dir=OUTPUT_DIR,
        per_device_train_batch_size=32,
        num_train_epochs=2,
        learning_rate=3e-3,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="tensorboard",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=train,
        eval_dataset=val,
        callbacks=[cb],
    )
    trainer.train()
    print(f"findings (also in {cb.resolved_log_dir}/findings.jsonl and its TensorBoard events):")
    for finding in cb.findings:
        print(" ", finding.format())


if __name__ == "__main__":
    main()
